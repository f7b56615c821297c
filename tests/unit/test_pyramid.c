/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of parent tiles: every resampling method on hand-built children. */
#include "vt.h"

#include <stdlib.h>
#include <string.h>

#include "vizfs/pyramid.h"

static const enum vz_resample methods[] = {
	VZ_RS_NEAREST, VZ_RS_AVERAGE, VZ_RS_SUM, VZ_RS_MIN, VZ_RS_MAX,
	VZ_RS_MODE,    VZ_RS_MED,     VZ_RS_Q1,	 VZ_RS_Q3,  VZ_RS_RMS,
};
#define NM 10

static struct vz_conf *mkconf(uint32_t w, uint32_t h, size_t n,
			      const enum vz_resample *m)
{
	struct vz_conf *c = calloc(1, sizeof(*c));

	c->tile_w = w;
	c->tile_h = h;
	c->n_stats = n;
	c->stats = calloc(n, sizeof(*c->stats));
	for (size_t i = 0; i < n; i++) {
		c->stats[i].name = (char *)"s";
		c->stats[i].resample = m[i];
	}
	return c;
}

static void freeconf(struct vz_conf *c)
{
	free(c->stats);
	free(c);
}

/*
 * One 2x2 block (UL, UR, LL, LR) and the expected value per method in the
 * order of methods[]: near, average, sum, min, max, mode, med, q1, q3, rms.
 * The order statistics, mode and near of the first eight blocks are what
 * gdal.Warp (GDAL 3.6.2) gives on an aligned 2x2 -> 1x1 warp.
 */
struct block {
	double v[4];
	double e[NM];
};

static const struct block blocks[12] = {
	{{1, 2, 3, 4}, {4, 2.5, 10, 1, 4, 1, 2, 1, 3, 0}},
	{{4, 3, 2, 1}, {1, 2.5, 10, 1, 4, 4, 2, 1, 3, 0}},
	{{1, 2, 2, 1}, {1, 1.5, 6, 1, 2, 2, 1, 1, 2, 0}},
	{{0, 0, 5, 7}, {7, 3, 12, 0, 7, 0, 0, 0, 5, 0}},
	{{5, 7, 7, 5}, {5, 6, 24, 5, 7, 7, 5, 5, 7, 0}},
	{{1, 1, 2, 2}, {2, 1.5, 6, 1, 2, 1, 1, 1, 2, 0}},
	{{2, 1, 1, 2}, {2, 1.5, 6, 1, 2, 1, 1, 1, 2, 0}},
	{{3, 1, 4, 2}, {2, 2.5, 10, 1, 4, 3, 2, 1, 3, 0}},
	{{-1, -4, 9, 0}, {0, 1, 4, -4, 9, -1, -1, -4, 0, 0}},
	{{0.5, 0.5, 0.5, 0.5}, {0.5, 0.5, 2, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0}},
	{{1e-9, 0, 0, 0}, {0, 2.5e-10, 1e-9, 0, 1e-9, 0, 0, 0, 0, 0}},
	{{8, 8, 8, 8}, {8, 8, 32, 8, 8, 8, 8, 8, 8, 0}},
};

static double rms(const double v[4])
{
	return sqrt((v[0] * v[0] + v[1] * v[1] + v[2] * v[2] + v[3] * v[3]) /
		    4);
}

/* 4x4 tiles: children UL, UR, LR carry three blocks' worth each (every
 * block used once), LL is missing. */
static void test_methods(void)
{
	struct vz_conf *c = mkconf(4, 4, NM, methods);
	double *ch[4] = {NULL, NULL, NULL, NULL};
	double *par = calloc(NM * 16, sizeof(double));
	/* which block sits at (child, br, bc); -1 = zero block */
	int at[4][2][2];
	int b = 0;

	for (int q = 0; q < 4; q++) {
		if (q == 2) {
			memset(at[q], -1, sizeof(at[q]));
			continue;
		}
		ch[q] = calloc(NM * 16, sizeof(double));
		for (int br = 0; br < 2; br++)
			for (int bc = 0; bc < 2; bc++) {
				int id = b < 12 ? b++ : -1;

				at[q][br][bc] = id;
				if (id < 0)
					continue;
				for (int k = 0; k < NM; k++) {
					double *p = ch[q] + k * 16;
					const double *v = blocks[id].v;

					p[(2 * br) * 4 + 2 * bc] = v[0];
					p[(2 * br) * 4 + 2 * bc + 1] = v[1];
					p[(2 * br + 1) * 4 + 2 * bc] = v[2];
					p[(2 * br + 1) * 4 + 2 * bc + 1] = v[3];
				}
			}
	}
	vz_pyramid_parent(c, (const double *const *)ch, par);
	for (int q = 0; q < 4; q++)
		for (int br = 0; br < 2; br++)
			for (int bc = 0; bc < 2; bc++) {
				int id = at[q][br][bc];
				int py = (q & 2 ? 2 : 0) + br;
				int px = (q & 1 ? 2 : 0) + bc;

				for (int k = 0; k < NM; k++) {
					double e, g = par[k * 16 + py * 4 + px];

					if (id < 0)
						e = 0;
					else if (methods[k] == VZ_RS_RMS)
						e = rms(blocks[id].v);
					else
						e = blocks[id].e[k];
					if (fabs(g - e) > 1e-15) {
						VT_NEAR(g, e, 1e-15);
						fprintf(stderr,
							"method %d block %d\n",
							k, id);
					}
					vt_checks++;
				}
			}
	VT_NEAR(par[9 * 16 + 0], sqrt(7.5), 1e-15);
	for (int q = 0; q < 4; q++)
		free(ch[q]);
	free(par);
	freeconf(c);
}

/* Quadrant placement on a non-square tile, several stats, all children
 * missing, and conservation of totals by sum. */
static void test_layout_and_sum(void)
{
	enum vz_resample m[2] = {VZ_RS_SUM, VZ_RS_AVERAGE};
	struct vz_conf *c = mkconf(8, 4, 2, m);
	double *ch[4], *par = calloc(2 * 32, sizeof(double));
	const double *none[4] = {NULL, NULL, NULL, NULL};
	uint64_t s = 12345;
	double tot = 0;

	for (int q = 0; q < 4; q++) {
		ch[q] = calloc(2 * 32, sizeof(double));
		for (int i = 0; i < 32; i++) {
			s = s * 6364136223846793005ULL + 1442695040888963407ULL;
			double v = (double)(s >> 40) / (1 << 20);

			ch[q][i] = v;	       /* plane 0: random */
			ch[q][32 + i] = q + 1; /* plane 1: child id */
			if (q != 1)
				tot += v;
		}
	}
	free(ch[1]);
	ch[1] = NULL; /* UR missing */
	vz_pyramid_parent(c, (const double *const *)ch, par);
	double ps = 0;
	for (int i = 0; i < 32; i++)
		ps += par[i];
	VT_NEAR(ps, tot, 1e-9);
	/* plane 1 (average of constant children): quadrant = child id */
	for (int y = 0; y < 4; y++)
		for (int x = 0; x < 8; x++) {
			int q = (y >= 2 ? 2 : 0) + (x >= 4 ? 1 : 0);
			double e = q == 1 ? 0 : q + 1;

			VT_NEAR(par[32 + y * 8 + x], e, 0);
		}
	/* LR child block at rows 0..1, cols 2..3 -> parent (2 + 0, 4 + 1) */
	VT_NEAR(par[2 * 8 + 5],
		ch[3][0 * 8 + 2] + ch[3][0 * 8 + 3] + ch[3][1 * 8 + 2] +
			ch[3][1 * 8 + 3],
		1e-15);
	vz_pyramid_parent(c, none, par);
	int nz = 0;
	for (int i = 0; i < 64; i++)
		nz += par[i] != 0;
	VT_EQ_INT(nz, 0);
	for (int q = 0; q < 4; q++)
		free(ch[q]);
	free(par);
	freeconf(c);
}

int main(void)
{
	test_methods();
	test_layout_and_sum();
	return vt_done("test_pyramid");
}
