/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of the rasterizer: exact coverage against GEOS, centroid rule, stats. */
#include "vt.h"

#include <errno.h>
#include <geos_c.h>
#include <gdal.h>
#include <ogr_api.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vizfs/raster.h"

#define MAXP 4096
#define MAXR 16

/* A test polygon: storage behind a struct vz_poly. */
struct tpoly {
	double xy[2 * MAXP];
	uint32_t ring_len[MAXR];
	uint32_t n_rings;
	size_t n_pts;
	double attrs[4];
	struct vz_poly p;
};

static GEOSContextHandle_t gh;

static void geos_msg(const char *fmt, ...)
{
	(void)fmt;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static double urand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

static void tp_init(struct tpoly *t)
{
	memset(t, 0, sizeof(*t));
	for (int i = 0; i < 4; i++)
		t->attrs[i] = NAN;
}

static void tp_ring_begin(struct tpoly *t)
{
	t->ring_len[t->n_rings++] = 0;
}

static void tp_pt(struct tpoly *t, double x, double y)
{
	t->xy[2 * t->n_pts] = x;
	t->xy[2 * t->n_pts + 1] = y;
	t->n_pts++;
	t->ring_len[t->n_rings - 1]++;
}

/* Add a closed ring of points (x[i], y[i]); reversed/closed on request. */
static void tp_ring(struct tpoly *t, const double *x, const double *y, int n,
		    bool reverse, bool close)
{
	tp_ring_begin(t);
	for (int i = 0; i < n; i++) {
		int j = reverse ? n - 1 - i : i;

		tp_pt(t, x[j], y[j]);
	}
	if (close)
		tp_pt(t, x[reverse ? n - 1 : 0], y[reverse ? n - 1 : 0]);
}

static void tp_rect(struct tpoly *t, double x0, double y0, double x1, double y1,
		    bool reverse)
{
	double x[4] = {x0, x1, x1, x0}, y[4] = {y0, y0, y1, y1};

	tp_ring(t, x, y, 4, reverse, false);
}

static const struct vz_poly *tp_poly(struct tpoly *t)
{
	t->p.n_rings = t->n_rings;
	t->p.ring_len = t->ring_len;
	t->p.xy = t->xy;
	t->p.attrs = t->attrs;
	return &t->p;
}

static GEOSGeometry *geos_ring(const double *xy, uint32_t n)
{
	bool closed = xy[0] == xy[2 * (n - 1)] && xy[1] == xy[2 * n - 1];
	uint32_t m = closed ? n : n + 1;
	GEOSCoordSequence *s = GEOSCoordSeq_create_r(gh, m, 2);

	for (uint32_t i = 0; i < m; i++) {
		uint32_t j = i % n;

		GEOSCoordSeq_setXY_r(gh, s, i, xy[2 * j], xy[2 * j + 1]);
	}
	return GEOSGeom_createLinearRing_r(gh, s);
}

static GEOSGeometry *tp_geos(const struct tpoly *t)
{
	GEOSGeometry *holes[MAXR];
	const double *xy = t->xy;
	GEOSGeometry *shell = geos_ring(xy, t->ring_len[0]);

	xy += 2 * t->ring_len[0];
	for (uint32_t k = 1; k < t->n_rings; k++) {
		holes[k - 1] = geos_ring(xy, t->ring_len[k]);
		xy += 2 * t->ring_len[k];
	}
	return GEOSGeom_createPolygon_r(gh, shell, holes, t->n_rings - 1);
}

/* Set the polygon's centroid and area from GEOS. */
static void tp_centroid(struct tpoly *t)
{
	GEOSGeometry *g = tp_geos(t);
	GEOSGeometry *c = GEOSGetCentroid_r(gh, g);

	GEOSGeomGetX_r(gh, c, &t->p.cx);
	GEOSGeomGetY_r(gh, c, &t->p.cy);
	GEOSArea_r(gh, g, &t->p.area);
	GEOSGeom_destroy_r(gh, c);
	GEOSGeom_destroy_r(gh, g);
}

/* Expected coverage fraction of every pixel: GEOS area of polygon ∩ pixel
 * box / pixel area (prepared predicates only skip pixels fully inside or
 * fully outside). */
static void geos_coverage(GEOSGeometry *g, const struct vz_bbox *b, uint32_t w,
			  uint32_t h, double *out)
{
	const GEOSPreparedGeometry *pg = GEOSPrepare_r(gh, g);
	double pw = (b->right - b->left) / w, ph = (b->top - b->bottom) / h;
	double ex0, ey0, ex1, ey1;

	GEOSGeom_getXMin_r(gh, g, &ex0);
	GEOSGeom_getYMin_r(gh, g, &ey0);
	GEOSGeom_getXMax_r(gh, g, &ex1);
	GEOSGeom_getYMax_r(gh, g, &ey1);
	for (uint32_t r = 0; r < h; r++) {
		for (uint32_t c = 0; c < w; c++) {
			double x0 = b->left + c * pw,
			       x1 = b->left + (c + 1) * pw;
			double y1 = b->top - r * ph, y0 = b->top - (r + 1) * ph;
			double a = 0;

			out[r * w + c] = 0;
			if (x1 < ex0 || x0 > ex1 || y1 < ey0 || y0 > ey1)
				continue;
			GEOSGeometry *box =
				GEOSGeom_createRectangle_r(gh, x0, y0, x1, y1);
			if (GEOSPreparedContainsProperly_r(gh, pg, box)) {
				a = (x1 - x0) * (y1 - y0);
			} else if (GEOSPreparedIntersects_r(gh, pg, box)) {
				GEOSGeometry *i =
					GEOSIntersection_r(gh, g, box);

				GEOSArea_r(gh, i, &a);
				GEOSGeom_destroy_r(gh, i);
			}
			GEOSGeom_destroy_r(gh, box);
			out[r * w + c] = a / ((x1 - x0) * (y1 - y0));
		}
	}
	GEOSPreparedGeom_destroy_r(gh, pg);
}

/* Compare vz_coverage with GEOS for one polygon; returns max abs diff. */
static double check_cov(const char *what, struct tpoly *t,
			const struct vz_bbox *b, uint32_t w, uint32_t h)
{
	double *got = calloc((size_t)w * h, sizeof(double));
	double *exp = calloc((size_t)w * h, sizeof(double));
	GEOSGeometry *g = tp_geos(t);
	double maxd = 0;
	size_t bad = 0;

	VT_EQ_INT(vz_coverage(tp_poly(t), b, w, h, got), 0);
	geos_coverage(g, b, w, h, exp);
	for (size_t i = 0; i < (size_t)w * h; i++) {
		double d = fabs(got[i] - exp[i]);

		if (d > maxd)
			maxd = d;
		if (d > 1e-9 && bad++ < 3)
			fprintf(stderr,
				"%s: pixel %zu/%zu got %.17g exp %.17g\n", what,
				i % w, i / w, got[i], exp[i]);
	}
	vt_checks++;
	if (bad) {
		vt_failed++;
		fprintf(stderr, "%s: %zu pixels off, max diff %g\n", what, bad,
			maxd);
	}
	GEOSGeom_destroy_r(gh, g);
	free(got);
	free(exp);
	return maxd;
}

/* Random star-shaped ring around (cx, cy): radii in [rmin, rmax]. */
static void star(double cx, double cy, double rmin, double rmax, int n,
		 double *x, double *y)
{
	for (int i = 0; i < n; i++) {
		double a = 2 * M_PI * (i + 0.5 * urand()) / n;
		double rad = rmin + (rmax - rmin) * urand();

		x[i] = cx + rad * cos(a);
		y[i] = cy + rad * sin(a);
	}
}

static void test_coverage_geos(const struct vz_bbox *b, uint32_t w, uint32_t h,
			       int rounds)
{
	double sx = b->right - b->left, sy = b->top - b->bottom;
	double x[256], y[256], hx[32], hy[32];
	struct tpoly *t = malloc(sizeof(*t));
	char what[96];
	double worst = 0;

	for (int k = 0; k < rounds; k++) {
		int kind = k % 9, n = 3 + (int)(urand() * 60);
		bool rev = urand() < 0.5, close = urand() < 0.5;
		double cx = b->left + sx * (-0.2 + 1.4 * urand());
		double cy = b->bottom + sy * (-0.2 + 1.4 * urand());
		double rad = sx * (0.02 + 0.5 * urand());

		tp_init(t);
		switch (kind) {
		case 0: /* convex */
			star(cx, cy, rad, rad, n, x, y);
			tp_ring(t, x, y, n, rev, close);
			break;
		case 1: /* concave star */
			star(cx, cy, 0.2 * rad, rad, n, x, y);
			tp_ring(t, x, y, n, rev, close);
			break;
		case 2: /* star with two holes (any orientation) */
			n = 16 + (int)(urand() * 40);
			star(cx, cy, 0.5 * rad, rad, n, x, y);
			tp_ring(t, x, y, n, rev, close);
			star(cx - 0.2 * rad, cy, 0.1 * rad, 0.1 * rad, 12, hx,
			     hy);
			tp_ring(t, hx, hy, 12, urand() < 0.5, urand() < 0.5);
			star(cx + 0.2 * rad, cy, 0.02 * rad, 0.1 * rad, 20, hx,
			     hy);
			tp_ring(t, hx, hy, 20, urand() < 0.5, urand() < 0.5);
			break;
		case 3: /* partly outside: centred on a corner or edge */
			cx = urand() < 0.5 ? b->left : b->right;
			cy = b->bottom + sy * urand();
			star(cx, cy, 0.3 * rad, 2 * rad, n, x, y);
			tp_ring(t, x, y, n, rev, close);
			break;
		case 4: /* covering the whole tile */
			n += 12;
			star(b->left + sx / 2, b->bottom + sy / 2, sx, 3 * sx,
			     n, x, y);
			tp_ring(t, x, y, n, rev, close);
			break;
		case 5: /* whole tile inside, with a hole inside the tile */
			n += 12;
			star(b->left + sx / 2, b->bottom + sy / 2, sx, 3 * sx,
			     n, x, y);
			tp_ring(t, x, y, n, rev, close);
			star(b->left + sx * (0.25 + 0.5 * urand()),
			     b->bottom + sy / 2, 0.05 * sx, 0.2 * sx, 10, hx,
			     hy);
			tp_ring(t, hx, hy, 10, !rev, close);
			break;
		case 6: { /* sliver: a long thin triangle */
			double ang = urand() * M_PI, len = sx * urand();
			double wd = sx / w * 1e-6 * (1 + urand());

			x[0] = cx;
			y[0] = cy;
			x[1] = cx + len * cos(ang);
			y[1] = cy + len * sin(ang);
			x[2] = x[1] - wd * sin(ang);
			y[2] = y[1] + wd * cos(ang);
			tp_ring(t, x, y, 3, rev, close);
			break;
		}
		case 7: { /* pixel-aligned rectangle */
			double pw = sx / w, ph = sy / h;
			int c0 = (int)(urand() * w), r0 = (int)(urand() * h);
			int c1 = c0 + 1 + (int)(urand() * 5);
			int r1 = r0 + 1 + (int)(urand() * 5);

			tp_rect(t, b->left + c0 * pw, b->top - r1 * ph,
				b->left + c1 * pw, b->top - r0 * ph, rev);
			break;
		}
		case 8: /* tiny polygon inside one pixel or on a fence */
			star(cx, cy, sx / w * 1e-3, sx / w * 0.3, n, x, y);
			tp_ring(t, x, y, n, rev, close);
			break;
		}
		snprintf(what, sizeof what, "%ux%u kind %d round %d", w, h,
			 kind, k);
		double d = check_cov(what, t, b, w, h);
		if (d > worst)
			worst = d;
	}
	printf("coverage %ux%u: %d polygons, max |diff| vs GEOS %.3g\n", w, h,
	       rounds, worst);
	free(t);
}

/* ---- configurations built by hand ---- */

static struct vz_conf *mkconf(uint32_t w, uint32_t h, size_t n,
			      const struct vz_stat *st)
{
	struct vz_conf *c = calloc(1, sizeof(*c));

	c->tile_w = w;
	c->tile_h = h;
	c->n_stats = n;
	c->stats = calloc(n, sizeof(*st));
	memcpy(c->stats, st, n * sizeof(*st));
	c->n_attrs = 4;
	return c;
}

static void freeconf(struct vz_conf *c)
{
	free(c->stats);
	free(c);
}

static struct vz_stat mkstat(enum vz_weight wb, enum vz_prop prop, int attr,
			     enum vz_agg agg)
{
	struct vz_stat s;

	memset(&s, 0, sizeof(s));
	s.name = (char *)"s";
	s.weight_by = wb;
	s.prop = prop;
	s.attr = attr;
	s.agg = agg;
	return s;
}

/* A small square polygon around (x, y) with a given centroid. */
static void sq_at(struct tpoly *t, double x, double y, double half)
{
	tp_init(t);
	tp_rect(t, x - half, y - half, x + half, y + half, false);
	t->p.cx = x;
	t->p.cy = y;
	t->p.area = 4 * half * half;
}

static void test_count_rule(void)
{
	struct vz_stat s = mkstat(VZ_WEIGHT_COUNT, VZ_PROP_CENTROIDS_PER_PIXEL,
				  -1, VZ_AGG_SUM);
	struct vz_conf *c = mkconf(16, 16, 1, &s);
	struct vz_bbox b = {0, 0, 16, 16};
	struct vz_raster *r;
	double out[256];
	struct tpoly t;
	/* centroid -> expected (col, row) or -1 dropped */
	const struct {
		double x, y;
		int col, row;
	} cs[] = {
		{3.5, 12.5, 3, 3},   /* plain pixel centre */
		{3.0, 12.5, 2, 3},   /* vertical pixel edge -> west */
		{5.5, 10.0, 5, 5},   /* horizontal edge -> north (row 5) */
		{7.0, 9.0, 6, 6},    /* pixel corner -> north-west */
		{0.0, 8.5, -1, -1},  /* tile west edge: dropped */
		{8.5, 16.0, -1, -1}, /* tile north edge: dropped */
		{16.0, 8.5, 15, 7},  /* tile east edge: kept */
		{8.5, 0.0, 8, 15},   /* tile south edge: kept */
		{16.0, 0.0, 15, 15}, /* south-east corner: kept */
		{0.0, 16.0, -1, -1}, /* north-west corner: dropped */
		{16.5, 8.5, -1, -1}, /* outside */
		{NAN, 8.5, -1, -1},  /* no centroid */
	};
	int expect[256] = {0};

	VT_EQ_INT(vz_raster_new(c, &r), 0);
	vz_raster_begin(r, &b);
	for (size_t i = 0; i < VZ_ARRAY_SIZE(cs); i++) {
		sq_at(&t, isnan(cs[i].x) ? 4 : cs[i].x, cs[i].y, 0.25);
		t.p.cx = cs[i].x;
		VT_EQ_INT(vz_raster_add(r, tp_poly(&t)), 0);
		if (cs[i].col >= 0)
			expect[cs[i].row * 16 + cs[i].col]++;
	}
	vz_raster_finish(r, out);
	for (int i = 0; i < 256; i++)
		if (out[i] != expect[i]) {
			VT_CHECK(out[i] == expect[i]);
			fprintf(stderr, "count pixel %d/%d: %g != %d\n", i % 16,
				i / 16, out[i], expect[i]);
		}
	VT_CHECK(out[3 * 16 + 3] == 1);

	/* Fences on a non-dyadic tile are numpy linspace values: a centroid
	 * placed exactly on fence i goes to column i - 1. */
	struct vz_bbox rb = {-146.513671875, 70.0048828125 - 0.02197265625,
			     -146.513671875 + 0.02197265625, 70.0048828125};
	struct vz_bbox ob = {0.1, 0.3, 0.4, 0.7};
	const struct vz_bbox *boxes[2] = {&rb, &ob};

	for (int bi = 0; bi < 2; bi++) {
		const struct vz_bbox *bx = boxes[bi];
		double step = (bx->right - bx->left) / 16;
		double stepy = (bx->top - bx->bottom) / 16;

		vz_raster_begin(r, bx);
		memset(expect, 0, sizeof(expect));
		for (int i = 1; i <= 16; i++) {
			/* column fence i and row fence j (0 = north) */
			int j = 17 - i, k = 16 - j;
			double fx = i == 16 ? bx->right : i * step + bx->left;
			double fy = k == 16 ? bx->top : k * stepy + bx->bottom;

			sq_at(&t, fx, fy, step / 8);
			vz_raster_add(r, tp_poly(&t));
			/* west of the vertical fence, north of the horizontal */
			expect[(j - 1) * 16 + (i - 1)]++;
		}
		/* and on the outer north fence: dropped */
		sq_at(&t, bx->left + step / 2, bx->top, step / 8);
		vz_raster_add(r, tp_poly(&t));
		vz_raster_finish(r, out);
		int bad = 0;
		for (int i = 0; i < 256; i++)
			bad += out[i] != expect[i];
		VT_EQ_INT(bad, 0);
	}
	vz_raster_free(r);
	freeconf(c);
}

static void test_count_attrs(void)
{
	struct vz_stat st[] = {
		mkstat(VZ_WEIGHT_COUNT, VZ_PROP_ATTRIBUTE, 1, VZ_AGG_SUM),
		mkstat(VZ_WEIGHT_COUNT, VZ_PROP_ATTRIBUTE, 1, VZ_AGG_MEAN),
		mkstat(VZ_WEIGHT_COUNT, VZ_PROP_ATTRIBUTE, 1, VZ_AGG_MIN),
		mkstat(VZ_WEIGHT_COUNT, VZ_PROP_ATTRIBUTE, 1, VZ_AGG_MAX),
		mkstat(VZ_WEIGHT_COUNT, VZ_PROP_ATTRIBUTE, 1, VZ_AGG_STD),
		mkstat(VZ_WEIGHT_COUNT, VZ_PROP_ATTRIBUTE, 1, VZ_AGG_VAR),
		mkstat(VZ_WEIGHT_COUNT, VZ_PROP_ATTRIBUTE, 1, VZ_AGG_COUNT),
		mkstat(VZ_WEIGHT_COUNT, VZ_PROP_ATTRIBUTE, 1, VZ_AGG_FIRST),
		mkstat(VZ_WEIGHT_COUNT, VZ_PROP_ATTRIBUTE, 1, VZ_AGG_LAST),
		mkstat(VZ_WEIGHT_COUNT, VZ_PROP_CENTROIDS_PER_PIXEL, -1,
		       VZ_AGG_SUM),
	};
	size_t ns = VZ_ARRAY_SIZE(st);
	struct vz_conf *c = mkconf(8, 4, ns, st);
	struct vz_bbox b = {10, 20, 18, 24};
	double *out = calloc(ns * 32, sizeof(double));
	struct vz_raster *r;
	struct tpoly t;
	/* pixel (col 2, row 1) = x in (12,13], y in [22,23) */
	const double vals[] = {4, NAN, 1, 7, 2};
	double var;

	VT_EQ_INT(vz_raster_new(c, &r), 0);
	vz_raster_begin(r, &b);
	for (size_t i = 0; i < VZ_ARRAY_SIZE(vals); i++) {
		sq_at(&t, 12.5, 22.5, 0.2);
		t.attrs[1] = vals[i];
		vz_raster_add(r, tp_poly(&t));
	}
	/* a single member in pixel (5, 3): std/var 0, not NaN */
	sq_at(&t, 15.5, 20.5, 0.2);
	t.attrs[1] = -3;
	vz_raster_add(r, tp_poly(&t));
	/* only a NULL in pixel (0, 0): no member for attribute stats */
	sq_at(&t, 10.5, 23.5, 0.2);
	vz_raster_add(r, tp_poly(&t));
	vz_raster_finish(r, out);

	size_t p = 1 * 8 + 2, q = 3 * 8 + 5;
	/* values 4, 1, 7, 2: mean 3.5, sample variance 7 */
	var = ((0.5 * 0.5) + (2.5 * 2.5) + (3.5 * 3.5) + (1.5 * 1.5)) / 3;
	VT_NEAR(out[0 * 32 + p], 14, 1e-12);
	VT_NEAR(out[1 * 32 + p], 3.5, 1e-12);
	VT_NEAR(out[2 * 32 + p], 1, 0);
	VT_NEAR(out[3 * 32 + p], 7, 0);
	VT_NEAR(out[4 * 32 + p], sqrt(var), 1e-12);
	VT_NEAR(out[5 * 32 + p], var, 1e-12);
	VT_NEAR(out[6 * 32 + p], 4, 0);
	VT_NEAR(out[7 * 32 + p], 4, 0);
	VT_NEAR(out[8 * 32 + p], 2, 0);
	VT_NEAR(out[9 * 32 + p], 5, 0); /* NULL polygons still count */
	VT_NEAR(out[0 * 32 + q], -3, 0);
	VT_NEAR(out[1 * 32 + q], -3, 0);
	VT_NEAR(out[4 * 32 + q], 0, 0);
	VT_NEAR(out[5 * 32 + q], 0, 0);
	VT_NEAR(out[6 * 32 + q], 1, 0);
	for (size_t k = 0; k < 9; k++)
		VT_NEAR(out[k * 32 + 0], 0, 0);
	VT_NEAR(out[9 * 32 + 0], 1, 0);
	/* nothing else is set */
	double tot = 0;
	for (size_t i = 0; i < 32; i++)
		tot += out[9 * 32 + i];
	VT_NEAR(tot, 7, 0);
	for (size_t i = 0; i < ns * 32; i++)
		VT_CHECK(!isnan(out[i]));

	/* begin() resets everything */
	vz_raster_begin(r, &b);
	vz_raster_finish(r, out);
	int nz = 0;
	for (size_t i = 0; i < ns * 32; i++)
		nz += out[i] != 0;
	VT_EQ_INT(nz, 0);
	vz_raster_free(r);
	freeconf(c);
	free(out);
}

static void test_area_attrs(void)
{
	struct vz_stat st[] = {
		mkstat(VZ_WEIGHT_AREA, VZ_PROP_AREA_PER_PIXEL_AREA, -1,
		       VZ_AGG_SUM),
		mkstat(VZ_WEIGHT_AREA, VZ_PROP_ATTRIBUTE, 0, VZ_AGG_MAX),
		mkstat(VZ_WEIGHT_AREA, VZ_PROP_ATTRIBUTE, 0, VZ_AGG_MIN),
		mkstat(VZ_WEIGHT_AREA, VZ_PROP_ATTRIBUTE, 0, VZ_AGG_SUM),
		mkstat(VZ_WEIGHT_AREA, VZ_PROP_ATTRIBUTE, 0, VZ_AGG_MEAN),
		mkstat(VZ_WEIGHT_AREA, VZ_PROP_ATTRIBUTE, 0, VZ_AGG_STD),
		mkstat(VZ_WEIGHT_AREA, VZ_PROP_AREA_PER_PIXEL_AREA, -1,
		       VZ_AGG_MEAN),
		mkstat(VZ_WEIGHT_AREA, VZ_PROP_AREA_WITHIN_PIXEL, -1,
		       VZ_AGG_SUM),
		mkstat(VZ_WEIGHT_AREA, VZ_PROP_AREA_PER_PIXEL_AREA, -1,
		       VZ_AGG_COUNT),
	};
	size_t ns = VZ_ARRAY_SIZE(st), np = 64;
	struct vz_conf *c = mkconf(8, 8, ns, st);
	/* pixels 0.5 x 0.25 CRS units */
	struct vz_bbox b = {0, 0, 4, 2};
	double *out = calloc(ns * np, sizeof(double));
	struct vz_raster *r;
	struct tpoly t;

	VT_EQ_INT(vz_raster_new(c, &r), 0);
	vz_raster_begin(r, &b);
	/* A: cols 0..3 fully, rows 0..1 (x 0..2, y 1.5..2), value 10 */
	tp_init(&t);
	tp_rect(&t, 0, 1.5, 2, 2, true);
	t.attrs[0] = 10;
	vz_raster_add(r, tp_poly(&t));
	/* B: half of pixel (1, 1) and pixel (2, 1) ... x 0.75..1.5,
	 * y 1.5..1.75: touches A's pixels, value 4; its edge x = 1.5 lies on
	 * the fence between cols 2 and 3, so col 3 must not count it. */
	tp_init(&t);
	tp_rect(&t, 0.75, 1.5, 1.5, 1.75, false);
	t.attrs[0] = 4;
	vz_raster_add(r, tp_poly(&t));
	/* C: NULL attribute over pixel (1, 1) quarter */
	tp_init(&t);
	tp_rect(&t, 0.5, 1.5, 0.75, 1.625, false);
	vz_raster_add(r, tp_poly(&t));
	vz_raster_finish(r, out);

	size_t p11 = 1 * 8 + 1, p21 = 1 * 8 + 2, p31 = 1 * 8 + 3;
	size_t p00 = 0, p41 = 1 * 8 + 4;
	/* coverage */
	VT_NEAR(out[0 * np + p11], 1 + 0.5 + 0.25, 1e-12);
	VT_NEAR(out[0 * np + p21], 2, 1e-12);
	VT_NEAR(out[0 * np + p31], 1, 1e-12);
	VT_NEAR(out[0 * np + p00], 1, 1e-12);
	VT_NEAR(out[0 * np + p41], 0, 0);
	/* max/min/sum/mean/std of the attribute over touching polygons */
	VT_NEAR(out[1 * np + p11], 10, 0);
	VT_NEAR(out[2 * np + p11], 4, 0);
	VT_NEAR(out[3 * np + p11], 14, 0);
	VT_NEAR(out[4 * np + p11], 7, 0);
	VT_NEAR(out[5 * np + p11], sqrt(18), 1e-12);
	VT_NEAR(out[2 * np + p31], 10, 0); /* B only touches col 3 */
	VT_NEAR(out[3 * np + p31], 10, 0);
	VT_NEAR(out[5 * np + p31], 0, 0);
	VT_NEAR(out[1 * np + p41], 0, 0);
	/* mean of piece fractions: (1 + 0.5 + 0.25) / 3 */
	VT_NEAR(out[6 * np + p11], 1.75 / 3, 1e-12);
	VT_NEAR(out[6 * np + p21], 1, 1e-12);
	/* area within pixel = fraction * 0.125 */
	VT_NEAR(out[7 * np + p11], 1.75 * 0.125, 1e-12);
	/* number of polygons with a piece */
	VT_NEAR(out[8 * np + p11], 3, 0);
	VT_NEAR(out[8 * np + p21], 2, 0);
	VT_NEAR(out[8 * np + p31], 1, 0);
	VT_NEAR(out[8 * np + p41], 0, 0);
	vz_raster_free(r);
	freeconf(c);
	free(out);
}

/* first/last follow the order of vz_raster_add; area keywords in count
 * mode put the whole polygon's area at its centroid pixel. */
static void test_order_and_mixed(void)
{
	struct vz_stat st[] = {
		mkstat(VZ_WEIGHT_AREA, VZ_PROP_ATTRIBUTE, 2, VZ_AGG_FIRST),
		mkstat(VZ_WEIGHT_AREA, VZ_PROP_ATTRIBUTE, 2, VZ_AGG_LAST),
		mkstat(VZ_WEIGHT_COUNT, VZ_PROP_AREA_PER_PIXEL_AREA, -1,
		       VZ_AGG_SUM),
		mkstat(VZ_WEIGHT_COUNT, VZ_PROP_AREA_WITHIN_PIXEL, -1,
		       VZ_AGG_MAX),
		mkstat(VZ_WEIGHT_AREA, VZ_PROP_CENTROIDS_PER_PIXEL, -1,
		       VZ_AGG_SUM),
	};
	struct vz_conf *c = mkconf(4, 4, 5, st);
	struct vz_bbox b = {0, 0, 8, 8}; /* pixels 2 x 2 */
	double out[5 * 16];
	struct vz_raster *r;
	struct tpoly t;

	VT_EQ_INT(vz_raster_new(c, &r), 0);
	vz_raster_begin(r, &b);
	for (int i = 0; i < 3; i++) {
		tp_init(&t);
		tp_rect(&t, 1, 1, 3 + i, 3, i == 1); /* spans cols 0..1(2) */
		t.p.cx = 2.5;
		t.p.cy = 2.5;
		t.p.area = 2.0 * (2 + i);
		t.attrs[2] = 10 + i;
		vz_raster_add(r, tp_poly(&t));
	}
	vz_raster_finish(r, out);
	/* pixel (col 0, row 3) = x 0..2, y 0..2: all three polygons */
	VT_NEAR(out[0 * 16 + 12], 10, 0);
	VT_NEAR(out[1 * 16 + 12], 12, 0);
	/* pixel (col 2, row 3): only the third polygon reaches x 4..5 */
	VT_NEAR(out[0 * 16 + 14], 12, 0);
	VT_NEAR(out[1 * 16 + 14], 12, 0);
	/* centroids (2.5, 2.5) -> col 1, row 2; areas 4, 6, 8 over 4 */
	VT_NEAR(out[2 * 16 + 9], (4 + 6 + 8) / 4.0, 1e-12);
	VT_NEAR(out[3 * 16 + 9], 8, 0);
	VT_NEAR(out[2 * 16 + 12], 0, 0);
	/* area mode with centroids_per_pixel: polygons with a piece */
	VT_NEAR(out[4 * 16 + 12], 3, 0);
	VT_NEAR(out[4 * 16 + 13], 3, 0);
	VT_NEAR(out[4 * 16 + 14], 1, 0);
	VT_NEAR(out[4 * 16 + 15], 0, 0);
	vz_raster_free(r);
	freeconf(c);
}

/* Overlaps add up; the direct and the windowed paths agree; tiny values
 * are exactly 0; degenerate input does not crash. */
static void test_overlap_and_degenerate(void)
{
	struct vz_stat st[] = {
		mkstat(VZ_WEIGHT_AREA, VZ_PROP_AREA_PER_PIXEL_AREA, -1,
		       VZ_AGG_SUM),
		mkstat(VZ_WEIGHT_AREA, VZ_PROP_ATTRIBUTE, 0, VZ_AGG_MAX),
	};
	struct vz_conf *c1 = mkconf(16, 16, 1, st);
	struct vz_conf *c2 = mkconf(16, 16, 2, st);
	struct vz_bbox b = {0, 0, 16, 16};
	double o1[256], o2[512];
	struct vz_raster *r1, *r2;
	struct tpoly *t = malloc(sizeof(*t));
	double x[64], y[64];

	VT_EQ_INT(vz_raster_new(c1, &r1), 0);
	VT_EQ_INT(vz_raster_new(c2, &r2), 0);
	vz_raster_begin(r1, &b);
	vz_raster_begin(r2, &b);
	for (int k = 0; k < 40; k++) {
		tp_init(t);
		star(16 * urand(), 16 * urand(), 1, 6, 30, x, y);
		tp_ring(t, x, y, 30, urand() < 0.5, urand() < 0.5);
		t->attrs[0] = k;
		vz_raster_add(r1, tp_poly(t));
		vz_raster_add(r2, tp_poly(t));
	}
	vz_raster_finish(r1, o1);
	vz_raster_finish(r2, o2);
	double maxd = 0;
	for (int i = 0; i < 256; i++)
		maxd = fmax(maxd, fabs(o1[i] - o2[i]));
	VT_NEAR(maxd, 0, 1e-12);

	vz_raster_begin(r1, &b);
	for (int k = 0; k < 3; k++) {
		tp_init(t);
		tp_rect(t, 2, 2, 4.5, 4, k == 1);
		vz_raster_add(r1, tp_poly(t));
	}
	vz_raster_finish(r1, o1);
	VT_NEAR(o1[12 * 16 + 2], 3, 1e-12);
	VT_NEAR(o1[12 * 16 + 4], 1.5, 1e-12);
	VT_NEAR(o1[12 * 16 + 5], 0, 0);

	/* a sliver far below 1e-12 of a pixel is stored as exactly 0 */
	vz_raster_begin(r1, &b);
	tp_init(t);
	tp_rect(t, 3.2, 3.2, 3.2 + 1e-8, 3.2 + 1e-7, false);
	vz_raster_add(r1, tp_poly(t));
	vz_raster_finish(r1, o1);
	int nz = 0;
	for (int i = 0; i < 256; i++)
		nz += o1[i] != 0;
	VT_EQ_INT(nz, 0);

	/* degenerate rings: none may crash or leave anything behind */
	vz_raster_begin(r2, &b);
	tp_init(t); /* two points */
	tp_ring_begin(t);
	tp_pt(t, 1, 1);
	tp_pt(t, 5, 5);
	vz_raster_add(r2, tp_poly(t));
	tp_init(t); /* repeated point */
	tp_ring_begin(t);
	for (int i = 0; i < 5; i++)
		tp_pt(t, 3, 3);
	vz_raster_add(r2, tp_poly(t));
	tp_init(t); /* collinear, zero area */
	tp_ring_begin(t);
	tp_pt(t, 1, 1);
	tp_pt(t, 2, 2);
	tp_pt(t, 9, 9);
	tp_pt(t, 1, 1);
	vz_raster_add(r2, tp_poly(t));
	tp_init(t); /* NaN and inf coordinates */
	tp_rect(t, 1, 1, NAN, 5, false);
	vz_raster_add(r2, tp_poly(t));
	tp_init(t);
	tp_rect(t, 1, 1, INFINITY, 5, false);
	vz_raster_add(r2, tp_poly(t));
	tp_init(t); /* no rings at all */
	vz_raster_add(r2, tp_poly(t));
	tp_init(t); /* one-point ring */
	tp_ring_begin(t);
	tp_pt(t, 1, 1);
	vz_raster_add(r2, tp_poly(t));
	tp_init(t); /* empty ring */
	tp_ring_begin(t);
	vz_raster_add(r2, tp_poly(t));
	vz_raster_finish(r2, o2);
	nz = 0;
	for (int i = 0; i < 512; i++)
		nz += o2[i] != 0;
	VT_EQ_INT(nz, 0);

	/* huge coordinates: a 1e100-sized square still covers everything;
	 * beyond the sane range the polygon is skipped without harm */
	vz_raster_begin(r2, &b);
	tp_init(t);
	tp_rect(t, -1e100, -1e100, 1e100, 1e100, true);
	t->attrs[0] = 5;
	vz_raster_add(r2, tp_poly(t));
	tp_init(t);
	tp_rect(t, -1e300, -1e300, 1e300, 1e300, true);
	vz_raster_add(r2, tp_poly(t));
	vz_raster_finish(r2, o2);
	int ok = 1;
	for (int i = 0; i < 256; i++)
		ok &= fabs(o2[i] - 1) < 1e-9 && o2[256 + i] == 5;
	VT_CHECK(ok);

	/* a degenerate hole is ignored, the exterior still counts */
	vz_raster_begin(r1, &b);
	tp_init(t);
	tp_rect(t, 0, 0, 4, 4, false);
	tp_ring_begin(t);
	tp_pt(t, 1, 1);
	tp_pt(t, 2, 2);
	vz_raster_add(r1, tp_poly(t));
	vz_raster_finish(r1, o1);
	double s = 0;
	for (int i = 0; i < 256; i++)
		s += o1[i];
	VT_NEAR(s, 16, 1e-12);

	free(t);
	vz_raster_free(r1);
	vz_raster_free(r2);
	freeconf(c1);
	freeconf(c2);
}

/* A polygon covering the whole tile costs one deposit per row: 20000 of
 * them on 256x256 finish far below what per-pixel work would need. */
static void test_cost(void)
{
	struct vz_stat s = mkstat(VZ_WEIGHT_AREA, VZ_PROP_AREA_PER_PIXEL_AREA,
				  -1, VZ_AGG_SUM);
	struct vz_conf *c = mkconf(256, 256, 1, &s);
	struct vz_bbox b = {0, 0, 1, 1};
	double *out = malloc(256 * 256 * sizeof(double));
	struct vz_raster *r;
	struct tpoly t;
	double t0 = vz_now();
	int n = 20000;

	VT_EQ_INT(vz_raster_new(c, &r), 0);
	vz_raster_begin(r, &b);
	tp_init(&t);
	tp_rect(&t, -10, -10, 10, 10, false);
	for (int i = 0; i < n; i++)
		vz_raster_add(r, tp_poly(&t));
	vz_raster_finish(r, out);
	double dt = vz_now() - t0;
	printf("%d whole-tile polygons on 256x256: %.3f s\n", n, dt);
	VT_CHECK(dt < 3.0);
	VT_NEAR(out[0], n, 1e-6);
	VT_NEAR(out[256 * 256 - 1], n, 1e-6);

	/* a 400000-vertex ring around the tile with a 50000-vertex hole
	 * inside it: fast, and the hole's area is subtracted exactly */
	static double bx[400000 * 2];
	uint32_t lens[2] = {400000, 50000};
	struct vz_poly bp = {0};
	double hole2 = 0;

	for (int i = 0; i < 400000; i++) {
		double a = 2 * M_PI * i / 400000;

		bx[2 * i] = 0.5 + 5 * cos(a);
		bx[2 * i + 1] = 0.5 + 5 * sin(a);
	}
	static double hx[50000 * 2];
	for (int i = 0; i < 50000; i++) {
		double a = 2 * M_PI * i / 50000;

		hx[2 * i] = 0.4 + 0.3 * cos(a);
		hx[2 * i + 1] = 0.55 + 0.2 * sin(a);
	}
	for (int i = 0; i < 50000; i++) {
		int j = (i + 1) % 50000;

		hole2 += hx[2 * i] * hx[2 * j + 1] - hx[2 * j] * hx[2 * i + 1];
	}
	double *xy = malloc(450000 * 2 * sizeof(double));
	memcpy(xy, bx, sizeof(bx));
	memcpy(xy + 800000, hx, sizeof(hx));
	bp.n_rings = 2;
	bp.ring_len = lens;
	bp.xy = xy;
	bp.cx = bp.cy = NAN;
	t0 = vz_now();
	vz_raster_begin(r, &b);
	VT_EQ_INT(vz_raster_add(r, &bp), 0);
	vz_raster_finish(r, out);
	dt = vz_now() - t0;
	double tot = 0;
	for (int i = 0; i < 256 * 256; i++)
		tot += out[i];
	printf("450000-vertex polygon on 256x256: %.3f s\n", dt);
	VT_CHECK(dt < 3.0);
	/* pixel area is 1/65536 of the unit tile */
	VT_NEAR(tot, 65536 * (1 - fabs(hole2) / 2), 1e-6);
	VT_NEAR(out[0], 1, 1e-12);
	VT_NEAR(out[115 * 256 + 102], 0, 1e-12);
	free(xy);
	vz_raster_free(r);
	freeconf(c);
	free(out);
}

/* ---- one real staged tile against the reference GeoTIFF ---- */

static int load_poly(OGRGeometryH g, struct tpoly *t)
{
	tp_init(t);
	int nr = OGR_G_GetGeometryCount(g);

	if (nr < 1 || nr > MAXR)
		return -1;
	for (int k = 0; k < nr; k++) {
		OGRGeometryH ring = OGR_G_GetGeometryRef(g, k);
		int n = OGR_G_GetPointCount(ring);

		if (t->n_pts + n > MAXP)
			return -1;
		tp_ring_begin(t);
		for (int i = 0; i < n; i++)
			tp_pt(t, OGR_G_GetX(ring, i), OGR_G_GetY(ring, i));
	}
	return 0;
}

/* Rasterize staged tile 13/x/y and compare both bands with the reference
 * GeoTIFF; @return the number of polygons, -1 when the data is absent. */
static int real_tile(uint32_t tx, uint32_t ty, bool use_gt, double *sum_cnt,
		     double *sum_cov)
{
	char gpkg[1024], tif[1024];
	const char *root = vt_srcroot();
	const char *rel = "../shared/data/pdg-minimal-example";
	const char *tms = "WorldCRS84Quad/13";

	snprintf(gpkg, sizeof gpkg, "%s/%s/staged/%s/%u/%u.gpkg", root, rel,
		 tms, tx, ty);
	snprintf(tif, sizeof tif, "%s/%s/geotiff/%s/%u/%u.tif", root, rel, tms,
		 tx, ty);
	if (access(gpkg, R_OK) || access(tif, R_OK)) {
		printf("skip real tile: %s not found\n", gpkg);
		return -1;
	}
	GDALAllRegister();
	GDALDatasetH ds = GDALOpenEx(gpkg, GDAL_OF_VECTOR | GDAL_OF_READONLY,
				     NULL, NULL, NULL);
	GDALDatasetH rs = GDALOpen(tif, GA_ReadOnly);
	VT_CHECK(ds && rs);
	if (!ds || !rs)
		return 0;

	struct vz_stat st[] = {
		mkstat(VZ_WEIGHT_COUNT, VZ_PROP_CENTROIDS_PER_PIXEL, -1,
		       VZ_AGG_SUM),
		mkstat(VZ_WEIGHT_AREA, VZ_PROP_AREA_PER_PIXEL_AREA, -1,
		       VZ_AGG_SUM),
	};
	struct vz_conf *c = mkconf(256, 256, 2, st);
	struct vz_bbox b;
	const double size = 0.02197265625;
	size_t np = 256 * 256;
	double *out = calloc(2 * np, sizeof(double));
	double *ref = calloc(2 * np, sizeof(double));
	struct tpoly *t = malloc(sizeof(*t));
	struct vz_raster *r;
	OGRLayerH lyr = GDALDatasetGetLayer(ds, 0);
	OGRFeatureH f;
	int nfeat = 0, skipped = 0;

	/* tile bounds as in the brief: -180 + x * size, 90 - y * size */
	b.left = -180 + tx * size;
	b.top = 90 - ty * size;
	b.right = b.left + size;
	b.bottom = b.top - size;
	if (use_gt) {
		/* the reference's own grid (morecantile bounds, ~1e-13 off) */
		double gt[6];

		VT_EQ_INT(GDALGetGeoTransform(rs, gt), CE_None);
		b.left = gt[0];
		b.top = gt[3];
		b.right = gt[0] + 256 * gt[1];
		b.bottom = gt[3] + 256 * gt[5];
	}
	VT_EQ_INT(vz_raster_new(c, &r), 0);
	vz_raster_begin(r, &b);
	OGR_L_ResetReading(lyr);
	while ((f = OGR_L_GetNextFeature(lyr))) {
		OGRGeometryH g = OGR_F_GetGeometryRef(f);

		if (g && load_poly(g, t) == 0) {
			tp_centroid(t);
			VT_EQ_INT(vz_raster_add(r, tp_poly(t)), 0);
			nfeat++;
		} else {
			skipped++;
		}
		OGR_F_Destroy(f);
	}
	vz_raster_finish(r, out);
	VT_EQ_INT(skipped, 0);
	for (int k = 0; k < 2; k++) {
		GDALRasterBandH band = GDALGetRasterBand(rs, k + 1);
		VT_EQ_INT(GDALRasterIO(band, GF_Read, 0, 0, 256, 256,
				       ref + k * np, 256, 256, GDT_Float64, 0,
				       0),
			  CE_None);
	}
	size_t cnt_bad = 0, zero_bad = 0;
	double cov_max = 0;
	*sum_cnt = *sum_cov = 0;
	for (size_t i = 0; i < np; i++) {
		cnt_bad += out[i] != ref[i];
		cov_max = fmax(cov_max, fabs(out[np + i] - ref[np + i]));
		zero_bad += (out[np + i] == 0) != (ref[np + i] == 0);
		*sum_cnt += out[i];
		*sum_cov += out[np + i];
	}
	printf("real tile 13/%u/%u%s: %d polygons, count mismatches %zu, "
	       "coverage max |diff| %.3g, zero/non-zero mismatches %zu, "
	       "sums %.0f / %.6f\n",
	       tx, ty, use_gt ? " (reference grid)" : "", nfeat, cnt_bad,
	       cov_max, zero_bad, *sum_cnt, *sum_cov);
	VT_EQ_INT(cnt_bad, 0);
	/* exact bounds differ from the reference grid by ~1e-13 degrees,
	 * i.e. ~2e-9 pixels per edge; on its own grid the port is exact */
	VT_NEAR(cov_max, 0, use_gt ? 1e-9 : 1e-6);
	VT_EQ_INT(zero_bad, 0);
	vz_raster_free(r);
	freeconf(c);
	free(out);
	free(ref);
	free(t);
	GDALClose(ds);
	GDALClose(rs);
	return nfeat;
}

static void test_real_tiles(void)
{
	double cnt, cov;

	/* feature counts and band sums from the spec (§11.2) */
	if (real_tile(1524, 910, false, &cnt, &cov) < 0)
		return;
	VT_NEAR(cnt, 1551, 0);
	VT_NEAR(cov, 7520.842585, 1e-5);
	VT_EQ_INT(real_tile(1525, 911, false, &cnt, &cov), 1516);
	VT_NEAR(cnt, 1516, 0);
	VT_NEAR(cov, 8876.843336, 1e-5);
	VT_EQ_INT(real_tile(1524, 911, false, &cnt, &cov), 1440);
	VT_NEAR(cnt, 1440, 0);
	VT_EQ_INT(real_tile(1525, 910, false, &cnt, &cov), 1694);
	VT_NEAR(cnt, 1694, 0);
	VT_EQ_INT(real_tile(1524, 910, true, &cnt, &cov), 1551);
	VT_EQ_INT(real_tile(1525, 911, true, &cnt, &cov), 1516);
}

/* Argument errors are reported, not crashed on. */
static void test_errors(void)
{
	struct vz_stat s = mkstat(VZ_WEIGHT_AREA, VZ_PROP_AREA_PER_PIXEL_AREA,
				  -1, VZ_AGG_SUM);
	struct vz_conf *c = mkconf(0, 16, 1, &s);
	struct vz_bbox b = {0, 0, 1, 1}, flat = {0, 0, 1, 0};
	struct vz_raster *r = (struct vz_raster *)&b;
	double cov[16] = {0}, out[16];
	struct tpoly t;

	VT_EQ_INT(vz_raster_new(c, &r), -EINVAL);
	VT_CHECK(r == NULL);
	vz_raster_free(NULL);
	tp_init(&t);
	tp_rect(&t, 0, 0, 1, 1, false);
	VT_EQ_INT(vz_coverage(tp_poly(&t), &b, 0, 4, cov), -EINVAL);
	/* an empty tile box gives an all-zero raster */
	VT_EQ_INT(vz_coverage(tp_poly(&t), &flat, 4, 4, cov), 0);
	c->tile_w = 4;
	c->tile_h = 4;
	VT_EQ_INT(vz_raster_new(c, &r), 0);
	vz_raster_begin(r, &flat);
	VT_EQ_INT(vz_raster_add(r, tp_poly(&t)), 0);
	vz_raster_finish(r, out);
	int nz = 0;
	for (int i = 0; i < 16; i++)
		nz += (cov[i] != 0) + (out[i] != 0);
	VT_EQ_INT(nz, 0);
	vz_raster_free(r);
	freeconf(c);
}

/* ---- aggregations that need every value of a pixel ---- */

static const enum vz_agg new_aggs[] = {
	VZ_AGG_MEDIAN, VZ_AGG_NUNIQUE, VZ_AGG_PROD,	VZ_AGG_SIZE,
	VZ_AGG_SEM,    VZ_AGG_SKEW,    VZ_AGG_QUANTILE, VZ_AGG_MAD,
	VZ_AGG_ANY,    VZ_AGG_ALL,     VZ_AGG_COUNT,
};
#define NA 11

/*
 * Groups of attribute values and what pandas 1.5.3 gives for
 *   df.groupby('g').agg(x=('v', METHOD))
 * in the order of new_aggs[] (observed with python3-pandas; NaN results
 * are 0 in vizfs, as std/var with one member, spec Q16).
 */
static const struct {
	int n;
	double v[5];
	double e[NA];
} groups[] = {
	{5,
	 {4, NAN, 1, 7, 2},
	 {3, 4, 56, 5, 1.3228756555322954, 0.8639187954496622, 3, 2, 1, 1, 4}},
	{4,
	 {0, 0, 5, NAN},
	 {0, 2, 0, 4, 1.6666666666666667, 1.732050807568877, 0,
	  2.222222222222222, 1, 0, 3}},
	{1, {NAN}, {0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0}},
	{1, {3}, {3, 1, 3, 1, 0, 0, 3, 0, 1, 1, 1}},
	{2, {1, 2}, {1.5, 2, 2, 2, 0.5, 0, 1.5, 0.5, 1, 1, 2}},
	{3, {5, 5, 5}, {5, 1, 125, 3, 0, 0, 5, 0, 1, 1, 3}},
};

static struct vz_conf *agg_conf(enum vz_weight wb, int attr, uint32_t w,
				uint32_t h)
{
	struct vz_stat st[NA];

	for (int k = 0; k < NA; k++)
		st[k] = mkstat(wb, VZ_PROP_ATTRIBUTE, attr, new_aggs[k]);
	return mkconf(w, h, NA, st);
}

static void test_pandas_groups(void)
{
	for (int mode = 0; mode < 2; mode++) {
		enum vz_weight wb = mode ? VZ_WEIGHT_AREA : VZ_WEIGHT_COUNT;
		struct vz_conf *c = agg_conf(wb, 3, 8, 1);
		struct vz_bbox b = {0, 0, 8, 1};
		double out[NA * 8];
		struct vz_raster *r;
		struct tpoly t;

		VT_EQ_INT(vz_raster_new(c, &r), 0);
		vz_raster_begin(r, &b);
		/* group g -> pixel g: squares inside the pixel */
		for (size_t g = 0; g < VZ_ARRAY_SIZE(groups); g++)
			for (int i = 0; i < groups[g].n; i++) {
				sq_at(&t, g + 0.5, 0.5, 0.3);
				t.attrs[3] = groups[g].v[i];
				VT_EQ_INT(vz_raster_add(r, tp_poly(&t)), 0);
			}
		vz_raster_finish(r, out);
		for (size_t g = 0; g < VZ_ARRAY_SIZE(groups); g++)
			for (int k = 0; k < NA; k++) {
				double got = out[k * 8 + g];

				if (fabs(got - groups[g].e[k]) > 1e-14) {
					VT_NEAR(got, groups[g].e[k], 1e-14);
					fprintf(stderr,
						"mode %d group %zu %s\n", mode,
						g, vz_agg_name(new_aggs[k]));
				}
				vt_checks++;
			}
		/* pixels 6, 7: no member at all -> 0 everywhere */
		for (int k = 0; k < NA; k++) {
			VT_NEAR(out[k * 8 + 6], 0, 0);
			VT_NEAR(out[k * 8 + 7], 0, 0);
		}
		vz_raster_free(r);
		freeconf(c);
	}
}

/* Plain reference implementations over one pixel's members. */
static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double ref_agg(enum vz_agg a, const double *all, int nall)
{
	double v[512], s = 0, m, d2 = 0, d3 = 0, ad = 0, p = 1;
	int n = 0, zeros = 0, u;

	for (int i = 0; i < nall; i++)
		if (!isnan(all[i]))
			v[n++] = all[i];
	if (a == VZ_AGG_SIZE)
		return nall;
	if (a == VZ_AGG_PROD) {
		for (int i = 0; i < n; i++)
			p *= v[i];
		return nall ? p : 0;
	}
	for (int i = 0; i < n; i++)
		zeros += v[i] == 0;
	if (a == VZ_AGG_ALL)
		return nall && !zeros ? 1 : 0;
	if (!n)
		return 0;
	for (int i = 0; i < n; i++)
		s += v[i];
	m = s / n;
	for (int i = 0; i < n; i++) {
		d2 += (v[i] - m) * (v[i] - m);
		d3 += (v[i] - m) * (v[i] - m) * (v[i] - m);
		ad += fabs(v[i] - m);
	}
	switch (a) {
	case VZ_AGG_COUNT:
		return n;
	case VZ_AGG_ANY:
		return zeros < n;
	case VZ_AGG_MAD:
		return ad / n;
	case VZ_AGG_SEM:
		return n > 1 ? sqrt(d2 / (n - 1) / n) : 0;
	case VZ_AGG_SKEW:
		if (n < 3 || fabs(d2) < 1e-14)
			return 0;
		return n * sqrt(n - 1.0) / (n - 2) * (d3 / pow(d2, 1.5));
	default:
		break;
	}
	qsort(v, n, sizeof(double), cmp_d);
	if (a == VZ_AGG_NUNIQUE) {
		u = 1;
		for (int i = 1; i < n; i++)
			u += v[i] != v[i - 1];
		return u;
	}
	/* median and quantile(0.5) */
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/*
 * Random members on a 16x16 tile, both weight modes in one rasterizer
 * (separate arenas), compared with the reference per pixel.  Area mode
 * uses rectangles on a quarter-pixel lattice, so which pixels a polygon
 * has a non-empty piece in is known exactly.  Values come from a small set
 * (duplicates for nunique, zeros for any/all) with NULLs.  The same
 * rasterizer is reused for several tiles with growing member counts, so
 * the arena grows (LIST_MIN 4096) and is reused.
 */
static void test_random_members(void)
{
	const uint32_t w = 16, h = 16, npx = 256;
	struct vz_stat st[2 * NA];
	struct vz_conf *c;
	struct vz_bbox b = {0, 0, 16, 16};
	double *out = calloc(2 * NA * npx, sizeof(double));
	/* members per pixel, per mode */
	static double mem[2][256][512];
	static int nm[2][256];
	struct vz_raster *r;
	struct tpoly t;
	double worst = 0;

	for (int k = 0; k < NA; k++) {
		st[k] = mkstat(VZ_WEIGHT_COUNT, VZ_PROP_ATTRIBUTE, 0,
			       new_aggs[k]);
		st[NA + k] = mkstat(VZ_WEIGHT_AREA, VZ_PROP_ATTRIBUTE, 1,
				    new_aggs[k]);
	}
	c = mkconf(w, h, 2 * NA, st);
	VT_EQ_INT(vz_raster_new(c, &r), 0);
	for (int tile = 0; tile < 4; tile++) {
		int npoly = 40 + tile * 60;

		memset(nm, 0, sizeof(nm));
		vz_raster_begin(r, &b);
		for (int i = 0; i < npoly; i++) {
			int x0 = (int)(urand() * 60), y0 = (int)(urand() * 60);
			int x1 = x0 + 1 + (int)(urand() * 12);
			int y1 = y0 + 1 + (int)(urand() * 12);
			double cx, cy;

			x1 = x1 > 64 ? 64 : x1;
			y1 = y1 > 64 ? 64 : y1;
			tp_init(&t);
			tp_rect(&t, x0 / 4.0, y0 / 4.0, x1 / 4.0, y1 / 4.0,
				i % 2);
			cx = (x0 + x1) / 8.0;
			cy = (y0 + y1) / 8.0;
			t.p.cx = cx;
			t.p.cy = cy;
			t.p.area = (x1 - x0) * (y1 - y0) / 16.0;
			for (int a = 0; a < 2; a++) {
				double u = urand();

				t.attrs[a] = u < 0.1  ? NAN :
					     u < 0.25 ? 0 :
							(int)(urand() * 6) - 2;
			}
			VT_EQ_INT(vz_raster_add(r, tp_poly(&t)), 0);
			/* centroid pixel (never on a fence: x.125 etc.
			 * only when (x0 + x1) is odd; fences handled by
			 * the rule "west / north") */
			int col = (int)ceil(cx) - 1,
			    row = 16 - (int)floor(cy) - 1;

			if (cx > 0 && cx <= 16 && cy >= 0 && cy < 16) {
				int p = row * 16 + col;

				mem[0][p][nm[0][p]++] = t.attrs[0];
			}
			for (int py = 0; py < 16; py++)
				for (int px = 0; px < 16; px++) {
					/* pixel x px..px+1, y 15-py..16-py */
					if (x0 < 4 * (px + 1) && x1 > 4 * px &&
					    y0 < 4 * (16 - py) &&
					    y1 > 4 * (15 - py)) {
						int p = py * 16 + px;

						mem[1][p][nm[1][p]++] =
							t.attrs[1];
					}
				}
		}
		vz_raster_finish(r, out);
		for (int m = 0; m < 2; m++)
			for (int k = 0; k < NA; k++)
				for (uint32_t p = 0; p < npx; p++) {
					double e = ref_agg(new_aggs[k],
							   mem[m][p], nm[m][p]);
					double g = out[(m * NA + k) * npx + p];
					double d = fabs(g - e);

					if (d > 1e-12 * (1 + fabs(e))) {
						VT_NEAR(g, e, 1e-12);
						fprintf(stderr,
							"tile %d mode %d %s "
							"pixel %u (%d members)\n",
							tile, m,
							vz_agg_name(
								new_aggs[k]),
							p, nm[m][p]);
					}
					worst = fmax(worst, d);
					vt_checks++;
				}
	}
	printf("random members: max |diff| vs reference %.3g\n", worst);
	vz_raster_free(r);
	freeconf(c);
	free(out);
}

/*
 * Arena life cycle: a tile with more than LIST_KEEP (2^20) members grows
 * the arena, the next begin() releases it, and a small tile afterwards
 * gives the same bands as a fresh rasterizer.
 */
static void test_arena_reuse(void)
{
	struct vz_stat st[2] = {
		mkstat(VZ_WEIGHT_AREA, VZ_PROP_ATTRIBUTE, 0, VZ_AGG_MEDIAN),
		mkstat(VZ_WEIGHT_AREA, VZ_PROP_ATTRIBUTE, 0, VZ_AGG_NUNIQUE),
	};
	struct vz_conf *c = mkconf(256, 256, 2, st);
	struct vz_bbox b = {0, 0, 256, 256};
	size_t npx = 65536;
	double *out = calloc(2 * npx, sizeof(double));
	double *ref = calloc(2 * npx, sizeof(double));
	struct vz_raster *r, *fresh;
	struct tpoly t;

	VT_EQ_INT(vz_raster_new(c, &r), 0);
	vz_raster_begin(r, &b);
	/* 17 tile-covering polygons: 17 * 65536 > 2^20 members */
	for (int i = 0; i < 17; i++) {
		tp_init(&t);
		tp_rect(&t, -1, -1, 257, 257, false);
		t.attrs[0] = i % 5;
		VT_EQ_INT(vz_raster_add(r, tp_poly(&t)), 0);
	}
	vz_raster_finish(r, out);
	/* i % 5 for i = 0..16: 0 and 1 four times, 2, 3, 4 three times;
	 * the 9th of 17 sorted values is 2 */
	int bad = 0;
	for (size_t i = 0; i < npx; i++)
		bad += out[i] != 2 || out[npx + i] != 5;
	VT_EQ_INT(bad, 0);

	/* then a small tile, on the reused rasterizer and a fresh one */
	VT_EQ_INT(vz_raster_new(c, &fresh), 0);
	struct vz_raster *both[2] = {r, fresh};
	for (int j = 0; j < 2; j++) {
		vz_raster_begin(both[j], &b);
		for (int i = 0; i < 50; i++) {
			tp_init(&t);
			double x = (i * 37) % 250, y = (i * 91) % 250;

			tp_rect(&t, x, y, x + 1 + i % 7, y + 1 + i % 5, false);
			t.attrs[0] = i % 3 ? i % 4 : NAN;
			VT_EQ_INT(vz_raster_add(both[j], tp_poly(&t)), 0);
		}
		vz_raster_finish(both[j], j ? ref : out);
	}
	VT_CHECK(memcmp(out, ref, 2 * npx * sizeof(double)) == 0);
	vz_raster_free(r);
	vz_raster_free(fresh);
	freeconf(c);
	free(out);
	free(ref);
}

int main(void)
{
	struct vz_bbox unit = {0, 0, 16, 16};
	struct vz_bbox geo = {-146.513671875, 70.0048828125 - 0.02197265625,
			      -146.513671875 + 0.02197265625, 70.0048828125};
	struct vz_bbox odd = {0.1, -0.35, 0.93, 0.47};

	gh = GEOS_init_r();
	GEOSContext_setErrorHandler_r(gh, geos_msg);
	GEOSContext_setNoticeHandler_r(gh, geos_msg);

	test_coverage_geos(&unit, 16, 16, 400);
	test_coverage_geos(&odd, 16, 16, 200);
	test_coverage_geos(&geo, 256, 256, 60);
	test_count_rule();
	test_count_attrs();
	test_area_attrs();
	test_order_and_mixed();
	test_pandas_groups();
	test_random_members();
	test_arena_reuse();
	test_overlap_and_degenerate();
	test_cost();
	test_errors();
	test_real_tiles();

	GEOS_finish_r(gh);
	return vt_done("test_raster");
}
