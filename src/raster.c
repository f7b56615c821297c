/* SPDX-License-Identifier: Apache-2.0 */
/* Max-zoom rasterization: centroid counts, exact coverage, attribute stats. */
#include "vizfs/raster.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
 * Exact coverage uses a signed-area accumulation buffer, as exact-coverage
 * font rasterizers do.  Coordinates are pixel coordinates: x to the east,
 * y to the south, one unit per pixel.  Every ring edge is cut at pixel rows
 * and columns; a piece lying inside one cell with vertical extent dy
 * deposits dy * (the part of the cell right of it) into that cell and the
 * rest of dy into the next cell, so that a prefix sum along the row gives,
 * for each cell, the exact signed area of the polygon inside it.  Pieces
 * left of the target cover whole rows and go into its first cell; pieces
 * right of it are dropped; rows outside it are skipped.  Rings are given a
 * sign so that every polygon has winding +1 inside (holes -1), hence
 * overlapping polygons add up and a polygon covering the whole tile costs
 * one deposit per row.
 */

/* Pixel coordinates beyond this are treated like NaN (the polygon is
 * skipped): no real map has them, and it keeps every difference finite. */
#define COORD_MAX 1e150
/* Coverage below this is rounding noise of the accumulation. */
#define COV_EPS 1e-12
/* Value lists (median, nunique…): first allocation, and the capacity kept
 * from one tile to the next (bigger arenas are released in begin()). */
#define LIST_MIN 4096
#define LIST_KEEP ((size_t)1 << 20)

/* Map from CRS coordinates to the pixel coordinates of a target window. */
struct grid {
	double left, top, pw, ph; /* tile origin and pixel size */
	double ox, oy;		  /* window origin in tile pixels */
};

/* An accumulation window: nr rows of nc cells plus one spill cell. */
struct target {
	double *acc;
	size_t stride; /* nc + 1 */
	uint32_t nc, nr;
};

enum stat_mode {
	MODE_CENTROID, /* weight_by count: the pixel holding the centroid */
	MODE_GLOBAL,   /* weight_by area, area keyword, sum: shared buffer */
	MODE_PIECE,    /* weight_by area otherwise: per-polygon pieces */
};

/* Per-pixel accumulator of one statistic.  a: sum, min/max/first/last
 * value, running mean, product, any flag or number of zeros (all); b:
 * running sum of squared deviations (Welford); n: number of members
 * (non-NULL values, or all members for size/prod/all).
 *
 * Statistics that need every value of a pixel (median, quantile, nunique,
 * skew, mad) append (pixel, value) pairs to an arena kept across tiles;
 * finish() groups them by pixel with a stable counting sort into the
 * shared scratch r->lsorted.  Memory is proportional to the number of
 * (polygon, pixel) members of the tile, as in pandas' group-by. */
struct stat_acc {
	enum stat_mode mode;
	double *a, *b;
	uint32_t *n;
	bool list;
	uint32_t *lpix;
	double *lval;
	size_t ln, lcap;
};

struct vz_raster {
	const struct vz_conf *c;
	uint32_t w, h;
	bool valid; /* tile has a usable pixel grid */
	struct vz_bbox tile;
	double pw, ph, cell_area;
	double stepx, stepy; /* numpy linspace steps of the fences */
	bool need_global, need_piece;
	double *cov; /* (w + 1) * h accumulation for MODE_GLOBAL */
	double *win; /* (w + 1) * h per-polygon scratch, kept zeroed */
	struct stat_acc *st;
	bool need_list;
	size_t *loff;	    /* w * h: start of each pixel's values */
	double *lsorted;    /* values grouped by pixel */
	size_t lsorted_cap; /* >= every list's lcap */
};

static inline double px_x(const struct grid *g, double x)
{
	return (x - g->left) / g->pw - g->ox;
}

static inline double px_y(const struct grid *g, double y)
{
	return (g->top - y) / g->ph - g->oy;
}

/* Deposit a piece lying in cell c between xs and xe with signed height v. */
static inline void cell(double *row, uint32_t c, double xs, double xe, double v)
{
	double frac = 0.5 * (xs + xe) - (double)c;

	row[c] += v * (1.0 - frac);
	row[c + 1] += v * frac;
}

/* One edge piece inside row band r (ya < yb in the band, any x order);
 * m is the ring's sign. */
static void row_piece(const struct target *t, uint32_t r, double xa, double ya,
		      double xb, double yb, double m)
{
	double *row = t->acc + (size_t)r * t->stride;
	double nc = t->nc;
	double xl, yl, xr, yr, span, x, y, xend;
	uint32_t c;

	if (yb <= ya)
		return;
	if (xa <= 0 && xb <= 0) {
		row[0] += m * (yb - ya);
		return;
	}
	if (xa >= nc && xb >= nc)
		return;
	if (xa <= xb) {
		xl = xa, yl = ya, xr = xb, yr = yb;
	} else {
		xl = xb, yl = yb, xr = xa, yr = ya;
	}
	if (xl >= 0 && xr <= nc) {
		double fc = floor(xl);

		if (xr <= fc + 1) {
			cell(row, (uint32_t)fc, xl, xr, m * (yb - ya));
			return;
		}
	}
	/* Here xl < xr: walk left to right over the column fences. */
	span = xr - xl;
	x = xl;
	y = yl;
	if (x < 0) {
		double y2 = yl + (yr - yl) * ((0 - xl) / span);

		row[0] += m * fabs(y2 - y);
		x = 0;
		y = y2;
	}
	xend = xr < nc ? xr : nc;
	c = (uint32_t)floor(x);
	while (x < xend) {
		double nx = (double)c + 1 < xend ? (double)c + 1 : xend;
		double ny = nx >= xr ? yr : yl + (yr - yl) * ((nx - xl) / span);

		cell(row, c, x, nx, m * fabs(ny - y));
		x = nx;
		y = ny;
		c++;
	}
}

/* Accumulate edge (x0,y0)-(x1,y1) (pixel coordinates) with sign m. */
static void edge(const struct target *t, double x0, double y0, double x1,
		 double y1, double m)
{
	double nr = t->nr, ya, yb, dx, dy, sx, sy;
	uint32_t r, rend;

	if (y0 == y1)
		return;
	if (y0 > y1) {
		double tx = x0, ty = y0;

		x0 = x1, y0 = y1, x1 = tx, y1 = ty;
		m = -m;
	}
	if (y1 <= 0 || y0 >= nr)
		return;
	if (x0 >= t->nc && x1 >= t->nc)
		return;
	ya = y0 > 0 ? y0 : 0;
	yb = y1 < nr ? y1 : nr;
	r = (uint32_t)floor(ya);
	rend = (uint32_t)ceil(yb);
	if (x0 <= 0 && x1 <= 0) {
		/* Left of the target: whole rows, one deposit each. */
		for (; r < rend; r++) {
			double lo = ya > r ? ya : r;
			double hi = yb < r + 1.0 ? yb : r + 1.0;

			t->acc[(size_t)r * t->stride] += m * (hi - lo);
		}
		return;
	}
	dx = x1 - x0;
	dy = y1 - y0;
	sy = ya;
	sx = ya > y0 ? x0 + dx * ((ya - y0) / dy) : x0;
	for (; r < rend; r++) {
		double ny = yb < r + 1.0 ? yb : r + 1.0;
		double nx = ny >= y1 ? x1 : x0 + dx * ((ny - y0) / dy);

		row_piece(t, r, sx, sy, nx, ny, m);
		sx = nx;
		sy = ny;
	}
}

/* Points of ring k without a closing duplicate; returns the count. */
static uint32_t ring_points(const double *pts, uint32_t n)
{
	if (n >= 2 && pts[0] == pts[2 * (n - 1)] &&
	    pts[1] == pts[2 * (n - 1) + 1])
		n--;
	return n;
}

/*
 * Check a polygon's coordinates and find its pixel bounding box (tile
 * pixels).  @return false when the polygon must be skipped (no rings,
 * NaN/inf or absurdly large coordinates).
 */
static bool poly_scan(const struct vz_poly *p, const struct grid *g,
		      double bb[4])
{
	const double *pts = p->xy;
	bool any = false;

	if (!p->n_rings || !p->ring_len || !p->xy)
		return false;
	bb[0] = bb[1] = INFINITY;
	bb[2] = bb[3] = -INFINITY;
	for (uint32_t k = 0; k < p->n_rings; k++) {
		uint32_t n = p->ring_len[k];

		for (uint32_t i = 0; i < n; i++) {
			double x = px_x(g, pts[2 * i]);
			double y = px_y(g, pts[2 * i + 1]);

			if (!(fabs(x) <= COORD_MAX && fabs(y) <= COORD_MAX))
				return false;
			bb[0] = fmin(bb[0], x);
			bb[1] = fmin(bb[1], y);
			bb[2] = fmax(bb[2], x);
			bb[3] = fmax(bb[3], y);
			any = true;
		}
		pts += 2 * (size_t)n;
	}
	return any;
}

/* Twice the signed area of a ring in pixel coordinates (y down). */
static double ring_area2(const double *pts, uint32_t n, const struct grid *g)
{
	double x0 = px_x(g, pts[0]), y0 = px_y(g, pts[1]), s = 0;

	for (uint32_t i = 1; i + 1 < n; i++) {
		double xa = px_x(g, pts[2 * i]) - x0;
		double ya = px_y(g, pts[2 * i + 1]) - y0;
		double xb = px_x(g, pts[2 * i + 2]) - x0;
		double yb = px_y(g, pts[2 * i + 3]) - y0;

		s += xa * yb - xb * ya;
	}
	return s;
}

/*
 * Accumulate all rings of a (scanned) polygon into @p t.  In pixel space
 * (y down) a ring with negative shoelace area deposits positive coverage,
 * so exteriors get the sign making them positive and holes the other one.
 * Degenerate rings (< 3 points, zero area) are skipped; a degenerate
 * exterior skips the polygon.
 */
static void poly_accumulate(const struct vz_poly *p, const struct grid *g,
			    const struct target *t)
{
	const double *pts = p->xy;

	for (uint32_t k = 0; k < p->n_rings; k++) {
		uint32_t len = p->ring_len[k];
		uint32_t n = ring_points(pts, len);
		double a2, m;

		a2 = n >= 3 ? ring_area2(pts, n, g) : 0;
		if (a2 == 0 || !isfinite(a2)) {
			if (k == 0)
				return;
			pts += 2 * (size_t)len;
			continue;
		}
		m = a2 < 0 ? 1.0 : -1.0;
		if (k > 0)
			m = -m;
		double xp = px_x(g, pts[2 * (n - 1)]);
		double yp = px_y(g, pts[2 * (n - 1) + 1]);
		for (uint32_t i = 0; i < n; i++) {
			double x = px_x(g, pts[2 * i]);
			double y = px_y(g, pts[2 * i + 1]);

			edge(t, xp, yp, x, y, m);
			xp = x;
			yp = y;
		}
		pts += 2 * (size_t)len;
	}
}

/* Pixel window [c0,c1) x [r0,r1) of a bounding box on a w x h tile, made
 * one column wider than the box so that no edge lies on its east side.
 * @return false when empty. */
static bool window(const double bb[4], uint32_t w, uint32_t h, uint32_t *c0,
		   uint32_t *r0, uint32_t *c1, uint32_t *r1)
{
	if (bb[2] <= 0 || bb[3] <= 0 || bb[0] >= w || bb[1] >= h)
		return false;
	*c0 = bb[0] <= 0 ? 0 : (uint32_t)floor(bb[0]);
	*r0 = bb[1] <= 0 ? 0 : (uint32_t)floor(bb[1]);
	*c1 = bb[2] + 1 >= w ? w : (uint32_t)floor(bb[2]) + 1;
	*r1 = bb[3] >= h ? h : (uint32_t)ceil(bb[3]);
	return *c1 > *c0 && *r1 > *r0;
}

int vz_coverage(const struct vz_poly *p, const struct vz_bbox *box, uint32_t w,
		uint32_t h, double *cov)
{
	struct grid g = {box->left,
			 box->top,
			 (box->right - box->left) / w,
			 (box->top - box->bottom) / h,
			 0,
			 0};
	struct target t;
	double bb[4];

	if (!w || !h)
		return -EINVAL;
	if (!(g.pw > 0 && g.ph > 0 && isfinite(g.pw) && isfinite(g.ph)))
		return 0;
	if (!poly_scan(p, &g, bb))
		return 0;
	t.nc = w;
	t.nr = h;
	t.stride = (size_t)w + 1;
	t.acc = calloc(t.stride * h, sizeof(double));
	if (!t.acc)
		return -ENOMEM;
	poly_accumulate(p, &g, &t);
	for (uint32_t r = 0; r < h; r++) {
		const double *row = t.acc + r * t.stride;
		double s = 0;

		for (uint32_t c = 0; c < w; c++) {
			s += row[c];
			cov[(size_t)r * w + c] += s;
		}
	}
	free(t.acc);
	return 0;
}

static bool agg_list(enum vz_agg a)
{
	return a == VZ_AGG_MEDIAN || a == VZ_AGG_QUANTILE ||
	       a == VZ_AGG_NUNIQUE || a == VZ_AGG_SKEW || a == VZ_AGG_MAD;
}

static bool agg_welford(enum vz_agg a)
{
	return a == VZ_AGG_STD || a == VZ_AGG_VAR || a == VZ_AGG_SEM;
}

static void list_release(struct vz_raster *r)
{
	for (size_t i = 0; i < r->c->n_stats; i++) {
		struct stat_acc *a = &r->st[i];

		VZ_FREEF(free, a->lpix);
		VZ_FREEF(free, a->lval);
		a->ln = a->lcap = 0;
	}
	VZ_FREEF(free, r->lsorted);
	r->lsorted_cap = 0;
}

static enum stat_mode stat_mode(const struct vz_stat *s)
{
	if (s->weight_by == VZ_WEIGHT_COUNT)
		return MODE_CENTROID;
	if (s->agg == VZ_AGG_SUM && (s->prop == VZ_PROP_AREA_PER_PIXEL_AREA ||
				     s->prop == VZ_PROP_AREA_WITHIN_PIXEL))
		return MODE_GLOBAL;
	return MODE_PIECE;
}

void vz_raster_free(struct vz_raster *r)
{
	if (!r)
		return;
	if (r->st) {
		list_release(r);
		for (size_t i = 0; i < r->c->n_stats; i++) {
			free(r->st[i].a);
			free(r->st[i].b);
			free(r->st[i].n);
		}
		free(r->st);
	}
	free(r->loff);
	free(r->cov);
	free(r->win);
	free(r);
}

int vz_raster_new(const struct vz_conf *c, struct vz_raster **out)
{
	struct vz_raster *r;
	size_t npx, nacc;

	*out = NULL;
	if (!c->tile_w || !c->tile_h) {
		vz_err_set("raster: tile_size %ux%u is empty", c->tile_h,
			   c->tile_w);
		return -EINVAL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->c = c;
	r->w = c->tile_w;
	r->h = c->tile_h;
	npx = (size_t)r->w * r->h;
	nacc = ((size_t)r->w + 1) * r->h;
	r->st = calloc(c->n_stats ? c->n_stats : 1, sizeof(*r->st));
	if (!r->st)
		goto nomem;
	for (size_t i = 0; i < c->n_stats; i++) {
		struct stat_acc *a = &r->st[i];
		enum vz_agg agg = c->stats[i].agg;

		a->mode = stat_mode(&c->stats[i]);
		if (a->mode == MODE_GLOBAL) {
			r->need_global = true;
			continue;
		}
		if (a->mode == MODE_PIECE)
			r->need_piece = true;
		a->a = malloc(npx * sizeof(double));
		a->n = malloc(npx * sizeof(uint32_t));
		if (!a->a || !a->n)
			goto nomem;
		if (agg_welford(agg)) {
			a->b = malloc(npx * sizeof(double));
			if (!a->b)
				goto nomem;
		}
		a->list = agg_list(agg);
		r->need_list |= a->list;
	}
	if (r->need_list) {
		if (npx > UINT32_MAX) {
			vz_raster_free(r);
			vz_err_set("raster: tile_size %ux%u is too large for "
				   "aggregation methods that keep values",
				   c->tile_h, c->tile_w);
			return -EINVAL;
		}
		r->loff = malloc(npx * sizeof(size_t));
		if (!r->loff)
			goto nomem;
	}
	if (r->need_global) {
		r->cov = malloc(nacc * sizeof(double));
		if (!r->cov)
			goto nomem;
	}
	if (r->need_piece) {
		r->win = calloc(nacc, sizeof(double));
		if (!r->win)
			goto nomem;
	}
	*out = r;
	return 0;
nomem:
	vz_raster_free(r);
	vz_err_set("raster: out of memory for a %ux%u tile", c->tile_w,
		   c->tile_h);
	return -ENOMEM;
}

void vz_raster_begin(struct vz_raster *r, const struct vz_bbox *tile)
{
	size_t npx = (size_t)r->w * r->h;

	r->tile = *tile;
	r->pw = (tile->right - tile->left) / r->w;
	r->ph = (tile->top - tile->bottom) / r->h;
	r->stepx = r->pw;
	r->stepy = r->ph;
	r->cell_area = r->pw * r->ph;
	r->valid = r->pw > 0 && r->ph > 0 && isfinite(r->pw) &&
		   isfinite(r->ph) && r->cell_area > 0;
	if (r->cov)
		memset(r->cov, 0, ((size_t)r->w + 1) * r->h * sizeof(double));
	if (r->lsorted_cap > LIST_KEEP)
		list_release(r); /* an exceptional tile: give it back */
	for (size_t i = 0; i < r->c->n_stats; i++) {
		struct stat_acc *a = &r->st[i];

		if (a->mode == MODE_GLOBAL)
			continue;
		memset(a->a, 0, npx * sizeof(double));
		memset(a->n, 0, npx * sizeof(uint32_t));
		if (a->b)
			memset(a->b, 0, npx * sizeof(double));
		a->ln = 0;
	}
}

/* Column fence i as numpy.linspace(left, right, w + 1) computes it. */
static double fence_x(const struct vz_raster *r, uint32_t i)
{
	return i == r->w ? r->tile.right : (double)i * r->stepx + r->tile.left;
}

/* Row fence j (j = 0 north) of linspace(bottom, top, h + 1) reversed. */
static double fence_y(const struct vz_raster *r, uint32_t j)
{
	uint32_t k = r->h - j;

	return k == r->h ? r->tile.top : (double)k * r->stepy + r->tile.bottom;
}

/*
 * The pixel owning a centroid (spec §6.4): cols[c] < x <= cols[c+1] and
 * rows[r+1] <= y < rows[r].  The estimate from a division is corrected
 * against the fences themselves so the rule is exact.  @return -1 outside.
 */
static long centroid_pixel(const struct vz_raster *r, double x, double y)
{
	double ex, ey;
	uint32_t i, j;

	if (!isfinite(x) || !isfinite(y))
		return -1;
	if (!(x > r->tile.left && x <= r->tile.right && y >= r->tile.bottom &&
	      y < r->tile.top))
		return -1;
	/* i = first fence index with fence_x(i) >= x, in [1, w] */
	ex = ceil((x - r->tile.left) / r->stepx);
	i = ex < 1 ? 1 : ex > r->w ? r->w : (uint32_t)ex;
	while (i > 1 && fence_x(r, i - 1) >= x)
		i--;
	while (i < r->w && fence_x(r, i) < x)
		i++;
	if (fence_x(r, i) < x || fence_x(r, i - 1) >= x)
		return -1;
	/* j = first row fence with fence_y(j) <= y, in [1, h] */
	ey = ceil((r->tile.top - y) / r->stepy);
	j = ey < 1 ? 1 : ey > r->h ? r->h : (uint32_t)ey;
	while (j > 1 && fence_y(r, j - 1) <= y)
		j--;
	while (j < r->h && fence_y(r, j) > y)
		j++;
	if (fence_y(r, j) > y || fence_y(r, j - 1) <= y)
		return -1;
	return (long)(j - 1) * r->w + (long)(i - 1);
}

/* Grow a value list (and the shared grouping scratch) by doubling. */
static int list_grow(struct vz_raster *r, struct stat_acc *a)
{
	size_t cap = a->lcap ? 2 * a->lcap : LIST_MIN;
	uint32_t *pix;
	double *val;

	if (cap > UINT32_MAX)
		return -ENOMEM;
	pix = realloc(a->lpix, cap * sizeof(*pix));
	if (!pix)
		return -ENOMEM;
	a->lpix = pix;
	val = realloc(a->lval, cap * sizeof(*val));
	if (!val)
		return -ENOMEM;
	a->lval = val;
	if (cap > r->lsorted_cap) {
		val = realloc(r->lsorted, cap * sizeof(*val));
		if (!val)
			return -ENOMEM;
		r->lsorted = val;
		r->lsorted_cap = cap;
	}
	a->lcap = cap;
	return 0;
}

/*
 * Add value @p v (NaN = NULL) of one member to pixel @p i.  NULLs are
 * skipped as pandas' reductions skip them, but they are members for size
 * and make a group for prod (empty product 1) and all (vacuously true).
 * @return 0 or -ENOMEM (value lists only).
 */
static int feed(struct vz_raster *r, struct stat_acc *a, enum vz_agg agg,
		size_t i, double v)
{
	uint32_t n = a->n[i];

	if (isnan(v)) {
		if (agg == VZ_AGG_SIZE || agg == VZ_AGG_ALL ||
		    agg == VZ_AGG_PROD) {
			if (!n && agg == VZ_AGG_PROD)
				a->a[i] = 1;
			a->n[i] = n + 1;
		}
		return 0;
	}
	if (a->list) {
		if (a->ln == a->lcap) {
			int rc = list_grow(r, a);

			if (rc)
				return rc;
		}
		a->lpix[a->ln] = (uint32_t)i;
		a->lval[a->ln++] = v;
		a->n[i] = n + 1;
		return 0;
	}
	switch (agg) {
	case VZ_AGG_SUM:
	case VZ_AGG_MEAN:
		a->a[i] += v;
		break;
	case VZ_AGG_MIN:
		if (!n || v < a->a[i])
			a->a[i] = v;
		break;
	case VZ_AGG_MAX:
		if (!n || v > a->a[i])
			a->a[i] = v;
		break;
	case VZ_AGG_COUNT:
	case VZ_AGG_SIZE:
		break;
	case VZ_AGG_FIRST:
		if (!n)
			a->a[i] = v;
		break;
	case VZ_AGG_LAST:
		a->a[i] = v;
		break;
	case VZ_AGG_STD:
	case VZ_AGG_VAR:
	case VZ_AGG_SEM: {
		double d = v - a->a[i];

		a->a[i] += d / (n + 1);
		a->b[i] += d * (v - a->a[i]);
		break;
	}
	case VZ_AGG_PROD:
		a->a[i] = n ? a->a[i] * v : v;
		break;
	case VZ_AGG_ANY:
		if (v != 0)
			a->a[i] = 1;
		break;
	case VZ_AGG_ALL:
		if (v == 0)
			a->a[i] += 1;
		break;
	case VZ_AGG_MEDIAN:
	case VZ_AGG_NUNIQUE:
	case VZ_AGG_SKEW:
	case VZ_AGG_QUANTILE:
	case VZ_AGG_MAD:
		break; /* value lists, above */
	}
	a->n[i] = n + 1;
	return 0;
}

static double attr_value(const struct vz_poly *p, int attr)
{
	if (!p->attrs || attr < 0)
		return NAN;
	return p->attrs[attr];
}

/* Value a polygon contributes to a MODE_CENTROID statistic. */
static double centroid_value(const struct vz_raster *r, const struct vz_stat *s,
			     const struct vz_poly *p)
{
	switch (s->prop) {
	case VZ_PROP_CENTROIDS_PER_PIXEL:
		return 1.0;
	case VZ_PROP_AREA_PER_PIXEL_AREA:
		return p->area / r->cell_area;
	case VZ_PROP_AREA_WITHIN_PIXEL:
		return p->area;
	case VZ_PROP_ATTRIBUTE:
		break;
	}
	return attr_value(p, s->attr);
}

/* Value of a piece with coverage fraction f for a MODE_PIECE statistic. */
static double piece_value(const struct vz_raster *r, const struct vz_stat *s,
			  const struct vz_poly *p, double f)
{
	switch (s->prop) {
	case VZ_PROP_CENTROIDS_PER_PIXEL:
		return 1.0;
	case VZ_PROP_AREA_PER_PIXEL_AREA:
		return f;
	case VZ_PROP_AREA_WITHIN_PIXEL:
		return f * r->cell_area;
	case VZ_PROP_ATTRIBUTE:
		break;
	}
	return attr_value(p, s->attr);
}

/*
 * Rasterize one polygon into the scratch window over its pixel box, feed
 * every pixel holding a non-zero piece to the MODE_PIECE statistics, move
 * the deposits into the shared buffer (if any) and leave the window zeroed
 * (also after a failure).  @return 0 or -ENOMEM.
 */
static int add_pieces(struct vz_raster *r, const struct vz_poly *p,
		      const struct grid *tg, const double bb[4])
{
	const struct vz_conf *c = r->c;
	uint32_t c0, r0, c1, r1;
	struct grid g = *tg;
	struct target t;
	int rc = 0;

	if (!window(bb, r->w, r->h, &c0, &r0, &c1, &r1))
		return 0;
	g.ox = c0;
	g.oy = r0;
	t.acc = r->win;
	t.nc = c1 - c0;
	t.nr = r1 - r0;
	t.stride = (size_t)t.nc + 1;
	poly_accumulate(p, &g, &t);
	for (uint32_t y = 0; y < t.nr; y++) {
		double *row = t.acc + (size_t)y * t.stride;
		double *grow =
			r->cov ? r->cov + (size_t)(r0 + y) * (r->w + 1) + c0 :
				 NULL;
		double s = 0;

		for (uint32_t x = 0; x < t.nc; x++) {
			size_t i = (size_t)(r0 + y) * r->w + c0 + x;

			if (row[x] != 0) {
				if (grow)
					grow[x] += row[x];
				s += row[x];
				row[x] = 0;
			}
			if (!(s > COV_EPS) || rc)
				continue;
			for (size_t k = 0; k < c->n_stats && !rc; k++) {
				const struct vz_stat *st = &c->stats[k];

				if (r->st[k].mode != MODE_PIECE)
					continue;
				rc = feed(r, &r->st[k], st->agg, i,
					  piece_value(r, st, p, s));
			}
		}
		if (grow)
			grow[t.nc] += row[t.nc];
		row[t.nc] = 0;
	}
	return rc;
}

int vz_raster_add(struct vz_raster *r, const struct vz_poly *p)
{
	const struct vz_conf *c = r->c;
	struct grid g = {r->tile.left, r->tile.top, r->pw, r->ph, 0, 0};
	long pix = -2;
	double bb[4];
	int rc;

	if (!r->valid)
		return 0;
	for (size_t k = 0; k < c->n_stats; k++) {
		const struct vz_stat *st = &c->stats[k];

		if (r->st[k].mode != MODE_CENTROID)
			continue;
		if (pix == -2)
			pix = centroid_pixel(r, p->cx, p->cy);
		if (pix < 0)
			break;
		rc = feed(r, &r->st[k], st->agg, (size_t)pix,
			  centroid_value(r, st, p));
		if (rc)
			goto nomem;
	}
	if (!r->need_global && !r->need_piece)
		return 0;
	if (!poly_scan(p, &g, bb))
		return 0;
	if (r->need_piece) {
		if ((rc = add_pieces(r, p, &g, bb)))
			goto nomem;
	} else {
		struct target t = {r->cov, (size_t)r->w + 1, r->w, r->h};

		poly_accumulate(p, &g, &t);
	}
	return 0;
nomem:
	vz_err_set("raster: out of memory for the per-pixel values of a "
		   "%ux%u tile",
		   c->tile_w, c->tile_h);
	return rc;
}

static double result(const struct stat_acc *a, enum vz_agg agg, size_t i)
{
	uint32_t n = a->n[i];

	if (!n)
		return 0;
	switch (agg) {
	case VZ_AGG_MEAN:
		return a->a[i] / n;
	case VZ_AGG_COUNT:
	case VZ_AGG_SIZE:
		return n;
	case VZ_AGG_STD:
		return n > 1 ? sqrt(a->b[i] / (n - 1)) : 0;
	case VZ_AGG_VAR:
		return n > 1 ? a->b[i] / (n - 1) : 0;
	case VZ_AGG_SEM:
		return n > 1 ? sqrt(a->b[i] / (n - 1)) / sqrt(n) : 0;
	case VZ_AGG_ALL:
		return a->a[i] == 0 ? 1 : 0;
	default:
		return a->a[i];
	}
}

static int cmp_double(const void *pa, const void *pb)
{
	double a = *(const double *)pa, b = *(const double *)pb;

	return (a > b) - (a < b);
}

static void sort_values(double *v, size_t n)
{
	if (n > 16) {
		qsort(v, n, sizeof(*v), cmp_double);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		double x = v[i];
		size_t j = i;

		while (j > 0 && v[j - 1] > x) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
}

/* Sum in member order (pandas sums a group in row order). */
static double mean_of(const double *v, size_t n)
{
	double s = 0;

	for (size_t i = 0; i < n; i++)
		s += v[i];
	return s / (double)n;
}

/*
 * pandas' skew (nanops.nanskew): adjusted Fisher-Pearson coefficient from
 * the central moments, moments below 1e-14 taken as 0; fewer than three
 * values would be NaN and are 0 here, as std/var with one value (Q16).
 */
static double skew_of(const double *v, size_t n)
{
	double mean, m2 = 0, m3 = 0;

	if (n < 3)
		return 0;
	mean = mean_of(v, n);
	for (size_t i = 0; i < n; i++) {
		double d = v[i] - mean, d2 = d * d;

		m2 += d2;
		m3 += d2 * d;
	}
	if (fabs(m2) < 1e-14)
		m2 = 0;
	if (fabs(m3) < 1e-14)
		m3 = 0;
	if (m2 == 0)
		return 0;
	return ((double)n * sqrt((double)n - 1) / ((double)n - 2)) *
	       (m3 / pow(m2, 1.5));
}

/* A value-list statistic of one pixel's @p n values (member order). */
static double list_result(enum vz_agg agg, double *v, size_t n)
{
	size_t k, u;
	double mean, s;

	switch (agg) {
	case VZ_AGG_MEDIAN:
		/* pandas' group median: mean of the two middle values */
		sort_values(v, n);
		if (n % 2)
			return v[n / 2];
		return (v[n / 2] + v[n / 2 - 1]) / 2;
	case VZ_AGG_QUANTILE:
		/* pandas' quantile(0.5), linear: v[k] + (v[k+1]-v[k])*frac */
		sort_values(v, n);
		k = (n - 1) / 2;
		if ((n - 1) % 2 == 0)
			return v[k];
		return v[k] + (v[k + 1] - v[k]) * 0.5;
	case VZ_AGG_NUNIQUE:
		sort_values(v, n);
		u = 1;
		for (k = 1; k < n; k++)
			u += v[k] != v[k - 1];
		return (double)u;
	case VZ_AGG_SKEW:
		return skew_of(v, n);
	case VZ_AGG_MAD:
		/* pandas < 2: (x - x.mean()).abs().mean() */
		mean = mean_of(v, n);
		s = 0;
		for (k = 0; k < n; k++)
			s += fabs(v[k] - mean);
		return s / (double)n;
	default:
		return 0;
	}
}

/* Group a list statistic's values by pixel (stable counting sort) and
 * write its band. */
static void list_finish(struct vz_raster *r, const struct stat_acc *a,
			enum vz_agg agg, double *out)
{
	size_t npx = (size_t)r->w * r->h, end = 0;
	size_t *off = r->loff;
	double *v = r->lsorted;

	for (size_t i = 0; i < npx; i++) {
		end += a->n[i];
		off[i] = end;
	}
	/* backwards with pre-decrement: stable, leaves off[] = starts */
	for (size_t e = a->ln; e-- > 0;)
		v[--off[a->lpix[e]]] = a->lval[e];
	for (size_t i = 0; i < npx; i++)
		out[i] = a->n[i] ? list_result(agg, v + off[i], a->n[i]) : 0;
}

void vz_raster_finish(struct vz_raster *r, double *bands)
{
	const struct vz_conf *c = r->c;
	size_t npx = (size_t)r->w * r->h;

	for (size_t k = 0; k < c->n_stats; k++) {
		const struct vz_stat *st = &c->stats[k];
		const struct stat_acc *a = &r->st[k];
		double *out = bands + k * npx;

		if (a->mode != MODE_GLOBAL && a->list && r->valid) {
			list_finish(r, a, st->agg, out);
			continue;
		}
		if (a->mode != MODE_GLOBAL) {
			for (size_t i = 0; i < npx; i++)
				out[i] = r->valid ? result(a, st->agg, i) : 0;
			continue;
		}
		double scale = st->prop == VZ_PROP_AREA_WITHIN_PIXEL ?
				       r->cell_area :
				       1.0;

		for (uint32_t y = 0; y < r->h; y++) {
			const double *row = r->cov + (size_t)y * (r->w + 1);
			double s = 0;

			for (uint32_t x = 0; x < r->w; x++) {
				s += row[x];
				out[(size_t)y * r->w + x] =
					fabs(s) < COV_EPS ? 0.0 : s * scale;
			}
		}
	}
}
