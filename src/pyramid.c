/* SPDX-License-Identifier: Apache-2.0 */
/* Parent tiles from their four children by exact 2x2 block operations. */
#include "vizfs/pyramid.h"

#include <math.h>
#include <stddef.h>

/*
 * Each parent pixel combines one 2x2 block v[0..3] = UL, UR, LL, LR of one
 * child; a missing child is all zeros, and zeros always take part (spec §7).
 * The order statistics follow GDAL 3.6's warper on an aligned 2:1 grid,
 * which picks element floor(q * (n - 1)) of the sorted block:
 *   q1  = sorted[0] (smallest),  med = sorted[1] (lower median),
 *   q3  = sorted[2] (third smallest).
 * (Checked with gdal.Warp -r q1/med/q3 on 2x2 -> 1x1 blocks.)
 */

static void sort4(const double v[4], double s[4])
{
	for (int i = 0; i < 4; i++) {
		double x = v[i];
		int j = i;

		while (j > 0 && s[j - 1] > x) {
			s[j] = s[j - 1];
			j--;
		}
		s[j] = x;
	}
}

/* GDAL's mode: scan UL, UR, LL, LR counting equal values; the value whose
 * count first exceeds the best count so far wins (all distinct -> UL). */
static double mode4(const double v[4])
{
	int best = 0, best_n = 0;

	for (int i = 0; i < 4; i++) {
		int n = 0;

		for (int j = 0; j <= i; j++)
			n += v[j] == v[i];
		if (n > best_n) {
			best_n = n;
			best = i;
		}
	}
	return v[best];
}

static double combine(enum vz_resample m, const double v[4])
{
	double s[4];

	switch (m) {
	case VZ_RS_NEAREST:
		return v[3];
	case VZ_RS_AVERAGE:
		return ((v[0] + v[1]) + (v[2] + v[3])) / 4;
	case VZ_RS_SUM:
		return (v[0] + v[1]) + (v[2] + v[3]);
	case VZ_RS_MIN:
		return fmin(fmin(v[0], v[1]), fmin(v[2], v[3]));
	case VZ_RS_MAX:
		return fmax(fmax(v[0], v[1]), fmax(v[2], v[3]));
	case VZ_RS_MODE:
		return mode4(v);
	case VZ_RS_MED:
		sort4(v, s);
		return s[1];
	case VZ_RS_Q1:
		sort4(v, s);
		return s[0];
	case VZ_RS_Q3:
		sort4(v, s);
		return s[2];
	case VZ_RS_RMS:
		return sqrt(((v[0] * v[0] + v[1] * v[1]) +
			     (v[2] * v[2] + v[3] * v[3])) /
			    4);
	}
	return 0;
}

void vz_pyramid_parent(const struct vz_conf *c, const double *const child[4],
		       double *parent)
{
	size_t w = c->tile_w, h = c->tile_h, hw = w / 2, hh = h / 2;
	size_t npx = w * h;

	for (size_t k = 0; k < c->n_stats; k++) {
		enum vz_resample m = c->stats[k].resample;
		double *out = parent + k * npx;

		for (int q = 0; q < 4; q++) {
			const double *ch = child[q] ? child[q] + k * npx : NULL;
			size_t px0 = (q & 1) ? hw : 0, py0 = (q & 2) ? hh : 0;

			for (size_t y = 0; y < hh; y++) {
				double *orow = out + (py0 + y) * w + px0;

				if (!ch) {
					double zero[4] = {0, 0, 0, 0};
					double z = combine(m, zero);

					for (size_t x = 0; x < hw; x++)
						orow[x] = z;
					continue;
				}
				const double *r0 = ch + 2 * y * w;
				const double *r1 = r0 + w;

				for (size_t x = 0; x < hw; x++) {
					double v[4] = {r0[2 * x], r0[2 * x + 1],
						       r1[2 * x],
						       r1[2 * x + 1]};

					orow[x] = combine(m, v);
				}
			}
		}
	}
}
