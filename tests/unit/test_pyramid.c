/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of parent tiles: every resampling method on hand-built children. */
#include "vt.h"

#include <pthread.h>
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

/* ---- GDAL kernels ------------------------------------------------------ */

static const enum vz_resample kernels[] = {
	VZ_RS_BILINEAR, VZ_RS_CUBIC, VZ_RS_CUBIC_SPLINE,
	VZ_RS_LANCZOS,	VZ_RS_GAUSS,
};
#define NK 5

static uint64_t rng = 88172645463325252ULL;

static double rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

/* Four w x h children (n_stats planes each) filled by @p f. */
static void fill(double *ch[4], size_t n, uint32_t w, uint32_t h,
		 double (*f)(int q, uint32_t x, uint32_t y))
{
	for (int q = 0; q < 4; q++) {
		if (!ch[q])
			continue;
		for (size_t k = 0; k < n; k++)
			for (uint32_t y = 0; y < h; y++)
				for (uint32_t x = 0; x < w; x++)
					ch[q][k * w * h + y * w + x] =
						f(q, x, y);
	}
}

static double f_const(int q, uint32_t x, uint32_t y)
{
	(void)q, (void)x, (void)y;
	return 3.25;
}

static double f_rand(int q, uint32_t x, uint32_t y)
{
	(void)q, (void)x, (void)y;
	return rnd() * 10 - 2;
}

/* Value = merged column index (0 .. 2w-1) on 8-wide children. */
static double f_ramp8(int q, uint32_t x, uint32_t y)
{
	(void)y;
	return (q & 1) * 8.0 + x;
}

static double **alloc_children(size_t n, uint32_t w, uint32_t h,
			       unsigned present)
{
	double **ch = calloc(4, sizeof(*ch));

	for (int q = 0; q < 4; q++)
		if (present >> q & 1)
			ch[q] = calloc(n * w * h, sizeof(double));
	return ch;
}

static void free_children(double **ch)
{
	for (int q = 0; q < 4; q++)
		free(ch[q]);
	free(ch);
}

static int build(const struct vz_conf *c, double **ch, double *par)
{
	return vz_pyramid_build(c, (const double *const *)ch, par);
}

/* A constant over the whole merged grid stays that constant. */
static void test_kernel_constant(void)
{
	struct vz_conf *c = mkconf(16, 8, NK, kernels);
	double **ch = alloc_children(NK, 16, 8, 0xf);
	double *par = calloc(NK * 128, sizeof(double));

	fill(ch, NK, 16, 8, f_const);
	VT_EQ_INT(build(c, ch, par), 0);
	for (int k = 0; k < NK; k++) {
		double worst = 0;

		for (int i = 0; i < 128; i++)
			worst = fmax(worst, fabs(par[k * 128 + i] - 3.25));
		/* gauss works in float32; 3.25 is exact there too */
		VT_NEAR(worst, 0, 1e-12);
	}
	free_children(ch);
	free(par);
	freeconf(c);
}

/* parent(a*A + b*B) == a*parent(A) + b*parent(B), with a child missing. */
static void test_kernel_linear(void)
{
	const uint32_t w = 8, h = 8, npx = 64;
	struct vz_conf *c = mkconf(w, h, NK, kernels);
	double **A = alloc_children(NK, w, h, 0xb), **B, **S;
	double *pa = calloc(NK * npx, sizeof(double));
	double *pb = calloc(NK * npx, sizeof(double));
	double *ps = calloc(NK * npx, sizeof(double));

	B = alloc_children(NK, w, h, 0xb);
	S = alloc_children(NK, w, h, 0xb);
	fill(A, NK, w, h, f_rand);
	fill(B, NK, w, h, f_rand);
	for (int q = 0; q < 4; q++)
		for (size_t i = 0; A[q] && i < NK * npx; i++)
			S[q][i] = 2 * A[q][i] - 0.5 * B[q][i];
	VT_EQ_INT(build(c, A, pa), 0);
	VT_EQ_INT(build(c, B, pb), 0);
	VT_EQ_INT(build(c, S, ps), 0);
	for (int k = 0; k < NK; k++) {
		double worst = 0,
		       tol = kernels[k] == VZ_RS_GAUSS ? 1e-5 : 1e-12;

		for (uint32_t i = 0; i < npx; i++) {
			size_t j = k * npx + i;

			worst = fmax(worst,
				     fabs(ps[j] - (2 * pa[j] - 0.5 * pb[j])));
		}
		VT_NEAR(worst, 0, tol);
	}
	free_children(A);
	free_children(B);
	free_children(S);
	free(pa);
	free(pb);
	free(ps);
	freeconf(c);
}

/*
 * Left-right mirror: bilinear, cubic and cubicspline are symmetric about
 * the parent pixel centre.  GDAL 3.6.2's lanczos and gauss are not: for a
 * 2:1 downsampling lanczos is centred on the block's west (north) child
 * pixel and gauss on its lower-right one (impulse responses observed with
 * gdal.Warp / gdal.Translate; see test_kernel_ramp and test_kernel_gdal).
 */
static void test_kernel_mirror(void)
{
	const uint32_t w = 8, h = 4, npx = 32;
	struct vz_conf *c = mkconf(w, h, 3, kernels);
	double **A = alloc_children(3, w, h, 0xf);
	double **M = alloc_children(3, w, h, 0xf);
	double *pa = calloc(3 * npx, sizeof(double));
	double *pm = calloc(3 * npx, sizeof(double));

	fill(A, 3, w, h, f_rand);
	for (int q = 0; q < 4; q++)
		for (size_t k = 0; k < 3; k++)
			for (uint32_t y = 0; y < h; y++)
				for (uint32_t x = 0; x < w; x++)
					M[q ^ 1][k * npx + y * w + (w - 1 - x)] =
						A[q][k * npx + y * w + x];
	VT_EQ_INT(build(c, A, pa), 0);
	VT_EQ_INT(build(c, M, pm), 0);
	for (int k = 0; k < 3; k++) {
		double worst = 0;

		for (uint32_t y = 0; y < h; y++)
			for (uint32_t x = 0; x < w; x++)
				worst = fmax(
					worst,
					fabs(pa[k * npx + y * w + x] -
					     pm[k * npx + y * w + (w - 1 - x)]));
		VT_NEAR(worst, 0, 1e-12);
	}
	free_children(A);
	free_children(M);
	free(pa);
	free(pm);
	freeconf(c);
}

/*
 * A 1-D linear profile, value = merged column j: a symmetric normalised
 * kernel gives the value between the block's two columns, 2i + 0.5, where
 * its support lies inside the raster: parent columns [lo, hi).  GDAL's
 * lanczos, centred on the block's west column, gives 2i.  (gdal.Warp of
 * the same 16x16 ramp to 8x8, row 3: bilinear 0.7143 2.5 4.5 … 12.5
 * 14.2857; cubic 0.5439 2.4595 4.5 … 12.5405 14.4561; cubicspline 0.9079
 * 2.5046 4.5 … 12.4954 14.0921; lanczos 0.2166 1.8652 4.0617 6 8 10
 * 11.9383 14.1348.)
 */
static void test_kernel_ramp(void)
{
	const uint32_t w = 8, h = 8, npx = 64;
	struct vz_conf *c = mkconf(w, h, 4, kernels);
	double **ch = alloc_children(4, w, h, 0xf);
	double *par = calloc(4 * npx, sizeof(double));
	static const uint32_t lo[4] = {1, 2, 2, 3}, hi[4] = {7, 6, 6, 6};
	static const double off[4] = {0.5, 0.5, 0.5, 0};

	fill(ch, 4, w, h, f_ramp8);
	VT_EQ_INT(build(c, ch, par), 0);
	for (int k = 0; k < 4; k++)
		for (uint32_t y = 0; y < h; y++)
			for (uint32_t x = lo[k]; x < hi[k]; x++)
				VT_NEAR(par[k * npx + y * w + x],
					2.0 * x + off[k], 1e-12);
	/* and near the edges the kernels do differ from that */
	VT_CHECK(fabs(par[0] - 0.5) > 0.1);
	VT_CHECK(fabs(par[npx + 1] - 2.5) > 0.01);
	free_children(ch);
	free(par);
	freeconf(c);
}

/*
 * Missing children: as rasterio.merge builds the union of the children
 * that exist, a lone UL child is the whole source raster, its edge is a
 * raster edge (no zeros leak in) and the other quadrants stay exactly 0.
 */
static void test_kernel_missing(void)
{
	const uint32_t w = 8, h = 8, npx = 64;
	struct vz_conf *c = mkconf(w, h, NK, kernels);
	double **ch = alloc_children(NK, w, h, 0x1);
	double *par = calloc(NK * npx, sizeof(double));
	const double *none[4] = {NULL, NULL, NULL, NULL};

	fill(ch, NK, w, h, f_const);
	VT_EQ_INT(build(c, ch, par), 0);
	for (int k = 0; k < NK; k++)
		for (uint32_t y = 0; y < h; y++)
			for (uint32_t x = 0; x < w; x++) {
				double e = x < w / 2 && y < h / 2 ? 3.25 : 0;

				VT_NEAR(par[k * npx + y * w + x], e, 1e-12);
			}
	for (size_t i = 0; i < NK * npx; i++)
		par[i] = 9;
	VT_EQ_INT(vz_pyramid_build(c, none, par), 0);
	int nz = 0;
	for (size_t i = 0; i < NK * npx; i++)
		nz += par[i] != 0;
	VT_EQ_INT(nz, 0);
	free_children(ch);
	free(par);
	freeconf(c);
}

/*
 * Numbers observed with Python (python3-gdal, GDAL 3.6.2) emulating the
 * PDG: children georeferenced with their real WorldCRS84Quad bounds (z3,
 * parent 2/5/2), merged like rasterio.merge (union of the existing
 * children, missing = 0), then gdal.Warp(dst, src, resampleAlg=ALG,
 * warpOptions=['INIT_DEST=NO_DATA', 'NUM_THREADS=1']) onto the parent's
 * 4x4 grid.  gauss: gdal.Translate(width=4, height=4, resampleAlg='gauss')
 * of the merged 8x8 raster (GDAL computes gauss in float32).
 * Children: UL = 0..15 row-major, UR missing, LL = 2, LR = 8 on the
 * pixels with odd row + column, else 0.
 */
static const double observed[NK][16] = {
	{3.5714285714285716, 4.5, 0.7321428571428571, 0, 8.875, 8.96875,
	 1.734375, 0.5714285714285714, 3.3392857142857144, 3.46875, 3.453125,
	 3.5714285714285716, 2, 2.3214285714285716, 3.8214285714285716,
	 3.9183673469387754},
	{2.9825808371702176, 4.4837401657485341, 0.37282111759099207,
	 -0.12646837415311357, 9.8240739244923354, 10.600974940743281,
	 1.0047256302082557, 0.2017414904444193, 2.923733057624271,
	 3.0124774526318929, 3.6123194347132572, 3.838952520960889,
	 1.8317256350554088, 2.0749260916624932, 3.9975121565079723,
	 3.9768736541727212},
	{4.5032140536223677, 4.595366627841095, 1.249620344880606,
	 0.018102051096014468, 7.8625701124537413, 7.2099053356428557,
	 2.3929565230694436, 0.86648566788760106, 3.9648042327596555,
	 3.9484947024336678, 3.3791656821732174, 3.2992503786019847,
	 2.0217871860653878, 2.4782538181404585, 3.6847293338079461,
	 3.898108105991998},
	{0.69772550150315626, 2.6751480176051055, 1.0600756875940076,
	 -0.14651081062283464, 8.323153288519098, 10.969388862831476,
	 2.7181002301594464, -0.82809773757117677, 5.0043524509487591,
	 5.5432590650829034, 3.420966983347836, 2.9920529445258994,
	 1.4135126079290989, 1.1432612906691089, 3.5884177675288353,
	 4.3268441900172121},
	{5, 5, 0, 0, 9.25, 7.875, 1, 1.3333333730697632, 2, 2.5, 4, 4, 2,
	 2.8333332538604736, 4, 3.5555555820465088},
};

static double f_observed(int q, uint32_t x, uint32_t y)
{
	if (q == 0)
		return y * 4.0 + x;
	if (q == 2)
		return 2;
	return (x + y) % 2 ? 8 : 0;
}

static void test_kernel_gdal(void)
{
	struct vz_conf *c = mkconf(4, 4, NK, kernels);
	double **ch = alloc_children(NK, 4, 4, 0xd);
	double *par = calloc(NK * 16, sizeof(double));

	fill(ch, NK, 4, 4, f_observed);
	VT_EQ_INT(build(c, ch, par), 0);
	for (int k = 0; k < NK; k++)
		for (int i = 0; i < 16; i++)
			VT_NEAR(par[k * 16 + i], observed[k][i], 1e-12);
	free_children(ch);
	free(par);
	freeconf(c);
}

/* Kernel and exact statistics side by side keep their own planes. */
static void test_kernel_mixed(void)
{
	enum vz_resample m[3] = {VZ_RS_SUM, VZ_RS_LANCZOS, VZ_RS_AVERAGE};
	struct vz_conf *c = mkconf(4, 4, 3, m);
	struct vz_conf *one = mkconf(4, 4, 1, m + 1);
	double **ch = alloc_children(3, 4, 4, 0xd);
	double **ch1 = alloc_children(1, 4, 4, 0xd);
	double *par = calloc(3 * 16, sizeof(double)), p1[16];

	fill(ch, 3, 4, 4, f_observed);
	fill(ch1, 1, 4, 4, f_observed);
	VT_EQ_INT(build(c, ch, par), 0);
	VT_EQ_INT(build(one, ch1, p1), 0);
	for (int i = 0; i < 16; i++)
		VT_NEAR(par[16 + i], p1[i], 0);
	/* UL child block (0,0) = 0 1 4 5 */
	VT_NEAR(par[0], 10, 0);
	VT_NEAR(par[32], 2.5, 0);
	/* void wrapper gives the same bytes */
	double *par2 = calloc(3 * 16, sizeof(double));
	vz_pyramid_parent(c, (const double *const *)ch, par2);
	VT_CHECK(memcmp(par, par2, 3 * 16 * sizeof(double)) == 0);
	free(par2);
	free_children(ch);
	free_children(ch1);
	free(par);
	freeconf(c);
	freeconf(one);
}

/* Concurrent parents (one MEM dataset per call) give identical bytes. */
struct tjob {
	const struct vz_conf *c;
	double **ch;
	double *out;
	int rc;
};

static void *tmain(void *arg)
{
	struct tjob *j = arg;

	for (int it = 0; it < 20 && !j->rc; it++)
		j->rc = build(j->c, j->ch, j->out);
	return NULL;
}

static void test_kernel_threads(void)
{
	const uint32_t w = 32, h = 32, npx = w * h;
	struct vz_conf *c = mkconf(w, h, NK, kernels);
	double **ch = alloc_children(NK, w, h, 0xe);
	double *ref = calloc(NK * npx, sizeof(double));
	struct tjob j[8];
	pthread_t t[8];

	fill(ch, NK, w, h, f_rand);
	VT_EQ_INT(build(c, ch, ref), 0);
	for (int i = 0; i < 8; i++) {
		j[i] = (struct tjob){c, ch, calloc(NK * npx, sizeof(double)),
				     0};
		pthread_create(&t[i], NULL, tmain, &j[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		VT_EQ_INT(j[i].rc, 0);
		VT_CHECK(memcmp(j[i].out, ref, NK * npx * sizeof(double)) == 0);
		free(j[i].out);
	}
	free_children(ch);
	free(ref);
	freeconf(c);
}

int main(void)
{
	test_methods();
	test_layout_and_sum();
	test_kernel_constant();
	test_kernel_linear();
	test_kernel_mirror();
	test_kernel_ramp();
	test_kernel_missing();
	test_kernel_gdal();
	test_kernel_mixed();
	test_kernel_threads();
	return vt_done("test_pyramid");
}
