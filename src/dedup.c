/* SPDX-License-Identifier: Apache-2.0 */
/* Deduplication of overlapping inputs (spec §3): neighbor, footprints, clip. */
#define GEOS_USE_ONLY_R_API
#include "gdal_i.h"
#include "vizfs/dedup.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cpl_error.h>
#include <gdal.h>
#include <geos_c.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>
#include <proj.h>

#include "vizfs/geotiff.h"
#include "vizfs/staged.h"

/* Room for a warning naming an input. */
#define PATH_MAX_MSG 1200

/* Footprint files kept per context before the cache is emptied (only
 * between tiles: a tile's groups point into it). */
#define MAX_CACHED_FOOTPRINTS 1024

/* One keep-rule value of a footprint row. */
struct fpval {
	bool null, num;
	double d;
	char *s;
};

/* Intersection of two footprints (cached: footprints are large). */
struct fp_overlap {
	uint64_t other;	 /* serial of the other footprint */
	GEOSGeometry *g; /* NULL: no intersection */
	const GEOSPreparedGeometry *prep;
};

/* One footprint file, reprojected to the TMS CRS. */
struct fp {
	char *path;
	uint64_t serial;
	int64_t size, mtime_ns;
	GEOSGeometry *g; /* union of the rows; NULL: missing or unusable */
	const GEOSPreparedGeometry *prep;
	struct fpval *best; /* n_keep_rules values of the preferred row */
	struct fp_overlap *ov;
	size_t n_ov;
};

/* One staged record of the tile. */
struct item {
	struct vz_poly poly;
	int64_t fid;
	uint32_t input, part;
	double minx, miny, maxx, maxy;
	GEOSGeometry *g; /* built on first use */
	bool has_d;
	double dx, dy;	   /* centroid in deduplicate_distance_crs */
	double ratio_area; /* 0 until computed */
	bool flag;
	bool lose; /* loses in the current pair of files */
};

/* The records of one input file present in the tile. */
struct group {
	uint32_t input;
	const char *relname;
	struct fp *fp; /* NULL without a usable footprint */
	size_t rank;   /* footprints: preference, 0 = most preferred */
	size_t *idx;   /* item indices */
	size_t n;
};

struct vz_dedup {
	const struct vz_conf *c;
	char conf_fp[33];
	bool neighbor;
	GEOSContextHandle_t geos;
	char geos_msg[256];
	GEOSWKBReader *wkb;
	/* PROJ directly, with a context of our own: OGR objects would use
	 * GDAL's per-thread PROJ context, which may be gone when a thread's
	 * context is freed at thread exit */
	PJ_CONTEXT *pj_ctx;
	PJ *to_dist; /* TMS CRS -> distance CRS; NULL: TMS CRS units */
	struct fp **fps;
	size_t n_fps, cap_fps;
	uint64_t serial;
	/* per tile scratch */
	struct item *items;
	size_t n_items, cap_items;
	struct group *groups;
	size_t n_groups;
	size_t *idx;
	const struct vz_inputs *in;
	const struct vz_tile_key *key;
	struct vz_dedup *next; /* registry of thread contexts */
};

/* ---- warnings issued once per process ---------------------------------- */

static pthread_mutex_t warn_lock = PTHREAD_MUTEX_INITIALIZER;
static char **warned; /* guarded by warn_lock: paths already warned about */
static size_t n_warned;

/* Log "footprint <path>: <msg>" once per process (every worker thread
 * meets the same footprints). */
static void warn_once(const char *path, const char *msg)
{
	bool seen = false, kept = false;
	char **w, *line = NULL;

	if (asprintf(&line, "footprint %s: %s", path, msg) < 0)
		return;
	pthread_mutex_lock(&warn_lock);
	for (size_t i = 0; i < n_warned && !seen; i++)
		seen = strcmp(warned[i], line) == 0;
	if (!seen && (w = realloc(warned, (n_warned + 1) * sizeof *w))) {
		warned = w;
		warned[n_warned++] = line;
		kept = true;
	}
	pthread_mutex_unlock(&warn_lock);
	if (!seen)
		vz_log(VZ_LOG_WARN, "dedup: %s", line);
	if (!kept)
		free(line);
}

/* ---- config queries ----------------------------------------------------- */

bool vz_dedup_enabled(const struct vz_conf *c)
{
	return c && c->dedup_method != NULL;
}

bool vz_dedup_removes(const struct vz_conf *c)
{
	return vz_dedup_enabled(c) &&
	       (c->dedup_at & (VZ_DEDUP_AT_STAGING | VZ_DEDUP_AT_RASTER));
}

bool vz_dedup_removes_staged(const struct vz_conf *c)
{
	return vz_dedup_enabled(c) && (c->dedup_at & VZ_DEDUP_AT_STAGING);
}

char *vz_dedup_footprint_path(const struct vz_conf *c, const char *relname)
{
	const char *s = relname, *e, *base, *dot = NULL;
	char *out;

	/* strip '/' from both ends, then os.path.splitext() */
	while (*s == '/')
		s++;
	e = s + strlen(s);
	while (e > s && e[-1] == '/')
		e--;
	base = s;
	for (const char *p = s; p < e; p++)
		if (*p == '/')
			base = p + 1;
	for (const char *p = base; p < e; p++)
		if (*p == '.')
			dot = p;
	if (dot) {
		/* leading dots of the base name do not start an extension */
		const char *q = base;
		while (q < e && *q == '.')
			q++;
		if (dot >= q)
			e = dot;
	}
	if (asprintf(&out, "%s/%.*s%s", c->dir_footprints, (int)(e - s), s,
		     c->ext_footprints) < 0)
		return NULL;
	return out;
}

/* ---- context ------------------------------------------------------------ */

static void geos_msg_handler(const char *msg, void *ud)
{
	struct vz_dedup *d = ud;

	snprintf(d->geos_msg, sizeof d->geos_msg, "%s", msg);
}

static void geos_notice_handler(const char *msg, void *ud)
{
	(void)msg;
	(void)ud;
}

static void fp_free(GEOSContextHandle_t h, struct fp *f, size_t n_rules)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n_ov; i++) {
		if (f->ov[i].prep)
			GEOSPreparedGeom_destroy_r(h, f->ov[i].prep);
		if (f->ov[i].g)
			GEOSGeom_destroy_r(h, f->ov[i].g);
	}
	free(f->ov);
	if (f->prep)
		GEOSPreparedGeom_destroy_r(h, f->prep);
	if (f->g)
		GEOSGeom_destroy_r(h, f->g);
	if (f->best)
		for (size_t i = 0; i < n_rules; i++)
			free(f->best[i].s);
	free(f->best);
	free(f->path);
	free(f);
}

static void fps_clear(struct vz_dedup *d)
{
	for (size_t i = 0; i < d->n_fps; i++)
		fp_free(d->geos, d->fps[i], d->c->n_keep_rules);
	d->n_fps = 0;
}

int vz_dedup_new(const struct vz_conf *c, struct vz_dedup **out)
{
	struct vz_dedup *d;
	int rc = -ENOMEM;

	*out = NULL;
	vz_gdal_init();
	if (!(d = calloc(1, sizeof *d)))
		return -ENOMEM;
	d->c = c;
	memcpy(d->conf_fp, c->fingerprint, sizeof d->conf_fp);
	d->neighbor = c->dedup_method && !strcmp(c->dedup_method, "neighbor");
	if (!(d->geos = GEOS_init_r()))
		goto fail;
	GEOSContext_setErrorMessageHandler_r(d->geos, geos_msg_handler, d);
	GEOSContext_setNoticeMessageHandler_r(d->geos, geos_notice_handler, d);
	if (!(d->wkb = GEOSWKBReader_create_r(d->geos)))
		goto fail;
	if (d->neighbor && c->has_centroid_tol && c->distance_crs) {
		PJ *p = NULL;

		if (!(d->pj_ctx = proj_context_create()))
			goto fail;
		proj_log_level(d->pj_ctx, PJ_LOG_NONE);
		p = proj_create_crs_to_crs(d->pj_ctx, c->tms->crs,
					   c->distance_crs, NULL);
		if (p) {
			/* lon/lat (x, y) order like the staged coordinates */
			d->to_dist =
				proj_normalize_for_visualization(d->pj_ctx, p);
			proj_destroy(p);
		}
		if (!d->to_dist) {
			vz_err_set("config %s: deduplicate_distance_crs: no "
				   "transformation from %s to '%s'",
				   c->path, c->tms->crs, c->distance_crs);
			rc = VZ_E_CRS;
			goto fail;
		}
	}
	*out = d;
	return 0;
fail:
	vz_dedup_free(d);
	return rc;
}

void vz_dedup_free(struct vz_dedup *d)
{
	if (!d)
		return;
	if (d->geos) {
		fps_clear(d);
		if (d->wkb)
			GEOSWKBReader_destroy_r(d->geos, d->wkb);
		GEOS_finish_r(d->geos);
	}
	free(d->fps);
	if (d->to_dist)
		proj_destroy(d->to_dist);
	if (d->pj_ctx)
		proj_context_destroy(d->pj_ctx);
	free(d->items);
	free(d->groups);
	free(d->idx);
	free(d);
}

/* ---- footprints --------------------------------------------------------- */

/* A value of field @p i of @p f for keep-rule comparisons. */
static void fpval_read(OGRFeatureH f, int i, int type, struct fpval *v)
{
	memset(v, 0, sizeof *v);
	if (i < 0 || !OGR_F_IsFieldSetAndNotNull(f, i)) {
		v->null = true;
		return;
	}
	if (type == OFTInteger || type == OFTInteger64 || type == OFTReal) {
		v->num = true;
		v->d = OGR_F_GetFieldAsDouble(f, i);
		v->null = isnan(v->d);
		return;
	}
	/* dates and strings compare as text (ISO-like dates sort right) */
	v->s = strdup(OGR_F_GetFieldAsString(f, i));
	v->null = v->s == NULL;
}

/* pandas sort_values order of one key: nulls last, then by direction. */
static int fpval_cmp(const struct fpval *a, const struct fpval *b, bool larger)
{
	int r;

	if (a->null || b->null)
		return (int)a->null - (int)b->null;
	if (a->num && b->num)
		r = a->d < b->d ? -1 : a->d > b->d;
	else if (!a->num && !b->num)
		r = strcmp(a->s, b->s);
	else
		r = a->num ? -1 : 1; /* mixed types: numbers first */
	return larger ? -r : r;
}

static int fprow_cmp(const struct vz_conf *c, const struct fpval *a,
		     const struct fpval *b)
{
	for (size_t i = 0; i < c->n_keep_rules; i++) {
		int r = fpval_cmp(&a[i], &b[i], c->keep_rules[i].larger);
		if (r)
			return r;
	}
	return 0;
}

static void fpvals_free(struct fpval *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i].s);
	free(v);
}

/* Read footprint file f->path: union of its polygons in the TMS CRS and the
 * keep-rule values of its preferred row.  A file that cannot be used leaves
 * f->g NULL (warned about once). */
static int fp_load(struct vz_dedup *d, struct fp *f)
{
	const struct vz_conf *c = d->c;
	/* keep rules name footprint properties only for 'footprints' */
	size_t nr = d->neighbor ? 0 : c->n_keep_rules;
	GDALDatasetH ds = NULL;
	OGRLayerH layer;
	OGRFeatureDefnH fd;
	OGRSpatialReferenceH src = NULL, tms = vz_srs_from(c->tms->crs);
	OGRCoordinateTransformationH ct = NULL;
	OGRFeatureH feat;
	GEOSGeometry **parts = NULL, *coll;
	struct fpval *row = NULL;
	int *fidx = NULL, *ftype = NULL;
	size_t n = 0, cap = 0;
	unsigned char *wkb = NULL;
	size_t wkb_cap = 0;
	const char *why = NULL;
	char whybuf[300];
	int rc = 0;

	if (!tms || (nr && (!(fidx = calloc(nr, sizeof *fidx)) ||
			    !(ftype = calloc(nr, sizeof *ftype)) ||
			    !(row = calloc(nr, sizeof *row)) ||
			    !(f->best = calloc(nr, sizeof *f->best))))) {
		rc = -ENOMEM;
		goto out;
	}
	CPLPushErrorHandler(CPLQuietErrorHandler);
	ds = GDALOpenEx(f->path, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL,
			NULL);
	CPLPopErrorHandler();
	if (!ds) {
		snprintf(whybuf, sizeof whybuf, "cannot be read: %s",
			 CPLGetLastErrorMsg());
		why = whybuf;
		goto out;
	}
	if (GDALDatasetGetLayerCount(ds) < 1 ||
	    !(layer = GDALDatasetGetLayer(ds, 0))) {
		why = "has no layer";
		goto out;
	}
	fd = OGR_L_GetLayerDefn(layer);
	if (OGR_L_GetSpatialRef(layer)) {
		src = OSRClone(OGR_L_GetSpatialRef(layer));
		OSRSetAxisMappingStrategy(src, OAMS_TRADITIONAL_GIS_ORDER);
		if (!OSRIsSame(src, tms)) {
			CPLPushErrorHandler(CPLQuietErrorHandler);
			ct = OCTNewCoordinateTransformation(src, tms);
			CPLPopErrorHandler();
			if (!ct) {
				why = "no transformation to the TMS CRS";
				goto out;
			}
		}
	} else if (c->input_crs) {
		/* like the inputs: input_crs stands for a missing CRS */
		src = vz_srs_from(c->input_crs);
		if (src && !OSRIsSame(src, tms))
			ct = OCTNewCoordinateTransformation(src, tms);
		if (!src || (!OSRIsSame(src, tms) && !ct)) {
			why = "has no CRS and input_crs cannot be used";
			goto out;
		}
	} else {
		why = "has no CRS (and input_crs is not set)";
		goto out;
	}
	for (size_t r = 0; r < nr; r++) {
		fidx[r] = OGR_FD_GetFieldIndex(fd, c->keep_rules[r].property);
		if (fidx[r] < 0) {
			snprintf(whybuf, sizeof whybuf,
				 "no field '%s' for deduplicate_keep_rules "
				 "(treated as null)",
				 c->keep_rules[r].property);
			warn_once(f->path, whybuf);
		} else {
			ftype[r] = (int)OGR_Fld_GetType(
				OGR_FD_GetFieldDefn(fd, fidx[r]));
		}
	}
	for (size_t r = 0; r < nr; r++)
		f->best[r].null = true;
	OGR_L_ResetReading(layer);
	while ((feat = OGR_L_GetNextFeature(layer))) {
		OGRGeometryH g = OGR_F_GetGeometryRef(feat);
		GEOSGeometry *gg = NULL;
		size_t sz;

		if (g && !OGR_G_IsEmpty(g)) {
			OGRGeometryH cl = OGR_G_Clone(g);
			bool ok = cl && (!ct || OGR_G_Transform(cl, ct) ==
							OGRERR_NONE);
			sz = ok ? (size_t)OGR_G_WkbSize(cl) : 0;
			if (ok && sz > wkb_cap) {
				unsigned char *nw = realloc(wkb, sz);
				if (nw) {
					wkb = nw;
					wkb_cap = sz;
				}
			}
			if (ok && sz <= wkb_cap &&
			    OGR_G_ExportToWkb(cl, wkbNDR, wkb) == OGRERR_NONE)
				gg = GEOSWKBReader_read_r(d->geos, d->wkb, wkb,
							  sz);
			if (cl)
				OGR_G_DestroyGeometry(cl);
			if (gg && !GEOSisValid_r(d->geos, gg)) {
				GEOSGeometry *v = GEOSMakeValid_r(d->geos, gg);
				GEOSGeom_destroy_r(d->geos, gg);
				gg = v;
			}
		}
		for (size_t r = 0; r < nr; r++)
			fpval_read(feat, fidx[r], ftype[r], &row[r]);
		if (nr && fprow_cmp(c, row, f->best) < 0) {
			for (size_t r = 0; r < nr; r++) {
				free(f->best[r].s);
				f->best[r] = row[r];
				row[r].s = NULL;
			}
		}
		for (size_t r = 0; r < nr; r++)
			VZ_FREEF(free, row[r].s);
		OGR_F_Destroy(feat);
		if (!gg)
			continue;
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 16;
			GEOSGeometry **np = realloc(parts, nc * sizeof *np);
			if (!np) {
				GEOSGeom_destroy_r(d->geos, gg);
				rc = -ENOMEM;
				goto out;
			}
			parts = np;
			cap = nc;
		}
		parts[n++] = gg;
	}
	if (n == 0) {
		why = "has no usable geometry";
		goto out;
	}
	coll = GEOSGeom_createCollection_r(d->geos, GEOS_GEOMETRYCOLLECTION,
					   parts, (unsigned)n);
	if (!coll) {
		rc = VZ_E_GEOM;
		goto out;
	}
	n = 0; /* owned by coll now */
	f->g = GEOSUnaryUnion_r(d->geos, coll);
	GEOSGeom_destroy_r(d->geos, coll);
	if (!f->g) {
		snprintf(whybuf, sizeof whybuf, "union of the rows failed: %s",
			 d->geos_msg);
		why = whybuf;
		goto out;
	}
	f->prep = GEOSPrepare_r(d->geos, f->g);
	if (!f->prep)
		rc = VZ_E_GEOM;
out:
	for (size_t i = 0; i < n; i++)
		GEOSGeom_destroy_r(d->geos, parts[i]);
	free(parts);
	free(wkb);
	fpvals_free(row, nr);
	free(fidx);
	free(ftype);
	if (ct)
		OCTDestroyCoordinateTransformation(ct);
	if (src)
		OSRDestroySpatialReference(src);
	if (tms)
		OSRDestroySpatialReference(tms);
	if (ds)
		GDALClose(ds);
	if (why) {
		char msg[400];
		snprintf(msg, sizeof msg,
			 "%s; its file is left out of the footprint clip and "
			 "comparison",
			 why);
		warn_once(f->path, msg);
	}
	return rc;
}

static int64_t mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* The footprint of input @p relname, (re)loaded when its file changed;
 * *out is NULL when it is missing or unusable. */
static int fp_get(struct vz_dedup *d, const char *relname, struct fp **out)
{
	char *path = vz_dedup_footprint_path(d->c, relname);
	struct stat st;
	struct fp *f = NULL;
	bool exists;
	int rc;

	*out = NULL;
	if (!path)
		return -ENOMEM;
	exists = stat(path, &st) == 0 && !S_ISDIR(st.st_mode);
	for (size_t i = 0; i < d->n_fps; i++) {
		struct fp *e = d->fps[i];
		if (strcmp(e->path, path))
			continue;
		if ((!exists && e->size < 0) ||
		    (exists && e->size == (int64_t)st.st_size &&
		     e->mtime_ns == mtime_ns(&st))) {
			free(path);
			*out = e->g ? e : NULL;
			return 0;
		}
		/* changed: reload it (overlaps cached with others name its
		 * old serial and are never matched again) */
		fp_free(d->geos, e, d->c->n_keep_rules);
		d->fps[i] = d->fps[--d->n_fps];
		break;
	}
	if (d->n_fps == d->cap_fps) {
		size_t nc = d->cap_fps ? 2 * d->cap_fps : 16;
		struct fp **nf = realloc(d->fps, nc * sizeof *nf);
		if (!nf) {
			free(path);
			return -ENOMEM;
		}
		d->fps = nf;
		d->cap_fps = nc;
	}
	if (!(f = calloc(1, sizeof *f))) {
		free(path);
		return -ENOMEM;
	}
	f->path = path;
	f->serial = ++d->serial;
	f->size = -1;
	if (exists) {
		f->size = (int64_t)st.st_size;
		f->mtime_ns = mtime_ns(&st);
		if ((rc = fp_load(d, f))) {
			fp_free(d->geos, f, d->c->n_keep_rules);
			return rc;
		}
	} else {
		char msg[PATH_MAX_MSG];
		snprintf(msg, sizeof msg,
			 "missing (expected for input '%s' from "
			 "dir_footprints/ext_footprints); that file is left "
			 "out of the footprint clip and comparison",
			 relname);
		warn_once(path, msg);
	}
	d->fps[d->n_fps++] = f;
	*out = f->g ? f : NULL;
	return 0;
}

/* Cached intersection of two footprints (prepared), NULL when empty. */
static int fp_overlap(struct vz_dedup *d, struct fp *a, struct fp *b,
		      const GEOSPreparedGeometry **out)
{
	struct fp_overlap *o, *nv;
	GEOSGeometry *g;

	*out = NULL;
	if (a->serial > b->serial) {
		struct fp *t = a;
		a = b;
		b = t;
	}
	for (size_t i = 0; i < a->n_ov; i++) {
		if (a->ov[i].other == b->serial) {
			*out = a->ov[i].prep;
			return 0;
		}
	}
	if (!(nv = realloc(a->ov, (a->n_ov + 1) * sizeof *nv)))
		return -ENOMEM;
	a->ov = nv;
	o = &a->ov[a->n_ov];
	memset(o, 0, sizeof *o);
	o->other = b->serial;
	g = GEOSIntersection_r(d->geos, a->g, b->g);
	if (!g) {
		vz_err_set("dedup: intersection of footprints %s and %s "
			   "failed: %s",
			   a->path, b->path, d->geos_msg);
		return VZ_E_GEOM;
	}
	if (GEOSisEmpty_r(d->geos, g) == 1) {
		GEOSGeom_destroy_r(d->geos, g);
	} else {
		o->g = g;
		if (!(o->prep = GEOSPrepare_r(d->geos, g)))
			return VZ_E_GEOM;
	}
	a->n_ov++;
	*out = o->prep;
	return 0;
}

/* ---- records ------------------------------------------------------------ */

/* A GEOS polygon of the record (rings closed if they are not). */
static GEOSGeometry *item_geom(struct vz_dedup *d, struct item *it)
{
	GEOSContextHandle_t h = d->geos;
	const struct vz_poly *p = &it->poly;
	GEOSGeometry **rings = NULL, *g = NULL;
	size_t off = 0;
	uint32_t nr = 0;

	if (it->g)
		return it->g;
	if (p->n_rings == 0 || !(rings = calloc(p->n_rings, sizeof *rings)))
		return NULL;
	for (; nr < p->n_rings; nr++) {
		const double *xy = p->xy + 2 * off;
		uint32_t len = p->ring_len[nr];
		bool closed = len > 0 && xy[0] == xy[2 * (len - 1)] &&
			      xy[1] == xy[2 * (len - 1) + 1];
		uint32_t m = closed ? len : len + 1;
		GEOSCoordSequence *cs;

		off += len;
		if (len < 3 || !(cs = GEOSCoordSeq_create_r(h, m, 2)))
			goto fail;
		for (uint32_t i = 0; i < m; i++) {
			uint32_t j = i < len ? i : 0;
			GEOSCoordSeq_setXY_r(h, cs, i, xy[2 * j],
					     xy[2 * j + 1]);
		}
		if (!(rings[nr] = GEOSGeom_createLinearRing_r(h, cs)))
			goto fail;
	}
	g = GEOSGeom_createPolygon_r(h, rings[0], rings + 1, nr - 1);
	if (g)
		nr = 0; /* rings owned by g */
fail:
	for (uint32_t i = 0; i < nr; i++)
		if (rings[i])
			GEOSGeom_destroy_r(h, rings[i]);
	free(rings);
	it->g = g;
	return g;
}

static void items_release(struct vz_dedup *d)
{
	for (size_t i = 0; i < d->n_items; i++) {
		if (d->items[i].g)
			GEOSGeom_destroy_r(d->geos, d->items[i].g);
		d->items[i].g = NULL;
	}
	d->n_items = 0;
}

static void env_of(struct item *it)
{
	const struct vz_poly *p = &it->poly;
	size_t n;

	it->minx = it->miny = INFINITY;
	it->maxx = it->maxy = -INFINITY;
	/* the exterior ring bounds the polygon */
	n = p->n_rings ? p->ring_len[0] : 0;
	for (size_t i = 0; i < n; i++) {
		double x = p->xy[2 * i], y = p->xy[2 * i + 1];
		it->minx = fmin(it->minx, x);
		it->maxx = fmax(it->maxx, x);
		it->miny = fmin(it->miny, y);
		it->maxy = fmax(it->maxy, y);
	}
}

/* Decode every record of the tile into d->items. */
static int collect(struct vz_dedup *d, const struct vz_buf *blobs, size_t n)
{
	for (size_t b = 0; b < n; b++) {
		struct vz_staged_iter it;
		struct vz_staged_rec r;
		int more;

		if (blobs[b].len == 0)
			continue;
		if (vz_staged_iter_init(&it, blobs[b].data, blobs[b].len) ||
		    it.n_attrs != d->c->n_attrs)
			return VZ_E_CACHE;
		while ((more = vz_staged_next(&it, &r)) == 1) {
			struct item *e;

			if (r.input >= d->in->n)
				return VZ_E_CACHE;
			if (d->n_items == d->cap_items) {
				size_t nc = d->cap_items ? 2 * d->cap_items :
							   256;
				struct item *ni =
					realloc(d->items, nc * sizeof *ni);
				if (!ni)
					return -ENOMEM;
				d->items = ni;
				d->cap_items = nc;
			}
			e = &d->items[d->n_items++];
			memset(e, 0, sizeof *e);
			e->poly = r.poly;
			e->fid = r.fid;
			e->input = r.input;
			e->part = r.part;
			env_of(e);
		}
		if (more < 0)
			return VZ_E_CACHE;
	}
	return 0;
}

/* Items by (group order, input, fid, part): group order is the PDG's
 * groupby order, staging_filename ascending. */
static int cmp_item_input(const void *pa, const void *pb, void *ud)
{
	const struct vz_dedup *d = ud;
	size_t ia = *(const size_t *)pa, ib = *(const size_t *)pb;
	const struct item *a = &d->items[ia], *b = &d->items[ib];
	int r;

	if (a->input != b->input) {
		r = strcmp(d->in->v[a->input].relname,
			   d->in->v[b->input].relname);
		if (r)
			return r;
		return a->input < b->input ? -1 : 1;
	}
	if (a->fid != b->fid)
		return a->fid < b->fid ? -1 : 1;
	if (a->part != b->part)
		return a->part < b->part ? -1 : 1;
	return (ia > ib) - (ia < ib);
}

/* Split the items into groups (one per input file), in relname order. */
static int make_groups(struct vz_dedup *d)
{
	size_t n = d->n_items, g = 0;

	VZ_FREEF(free, d->idx);
	VZ_FREEF(free, d->groups);
	d->n_groups = 0;
	if (!(d->idx = malloc((n ? n : 1) * sizeof *d->idx)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		d->idx[i] = i;
	qsort_r(d->idx, n, sizeof *d->idx, cmp_item_input, d);
	for (size_t i = 0; i < n; i++)
		if (i == 0 ||
		    d->items[d->idx[i]].input != d->items[d->idx[i - 1]].input)
			g++;
	if (!(d->groups = calloc(g ? g : 1, sizeof *d->groups)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct item *it = &d->items[d->idx[i]];
		struct group *gr;

		if (i == 0 || it->input != d->items[d->idx[i - 1]].input) {
			gr = &d->groups[d->n_groups++];
			gr->input = it->input;
			gr->relname = d->in->v[it->input].relname;
			gr->idx = &d->idx[i];
		}
		gr = &d->groups[d->n_groups - 1];
		gr->n++;
	}
	return 0;
}

/* ---- footprint clip (spec §2.2 step 4) ---------------------------------- */

static int clip(struct vz_dedup *d)
{
	for (size_t gi = 0; gi < d->n_groups; gi++) {
		struct group *g = &d->groups[gi];

		if (!g->fp)
			continue;
		for (size_t i = 0; i < g->n; i++) {
			struct item *it = &d->items[g->idx[i]];
			GEOSGeometry *pg = item_geom(d, it);
			char r;

			if (!pg)
				return VZ_E_GEOM;
			r = GEOSPreparedIntersects_r(d->geos, g->fp->prep, pg);
			if (r == 2)
				return VZ_E_GEOM;
			if (!r)
				it->flag = true;
		}
	}
	return 0;
}

/* ---- neighbor (spec §3.2) ----------------------------------------------- */

/* Keep-rule order of two records: < 0 when @p a is kept over @p b.  pandas
 * sorts NaN last whatever the direction; ties (the PDG's unstable sort)
 * go to the lower (input index, fid, part). */
static int keep_cmp(const struct vz_dedup *d, const struct item *a,
		    const struct item *b)
{
	const struct vz_conf *c = d->c;

	for (size_t i = 0; i < c->n_keep_rules; i++) {
		const struct vz_keep_rule *k = &c->keep_rules[i];
		double va = 0, vb = 0;
		int r = 0;

		switch (k->src) {
		case VZ_KEEP_ATTR:
			va = a->poly.attrs[k->attr];
			vb = b->poly.attrs[k->attr];
			break;
		case VZ_KEEP_AREA:
			va = a->poly.area;
			vb = b->poly.area;
			break;
		case VZ_KEEP_CENTROID_X:
			va = a->poly.cx;
			vb = b->poly.cx;
			break;
		case VZ_KEEP_CENTROID_Y:
			va = a->poly.cy;
			vb = b->poly.cy;
			break;
		case VZ_KEEP_FILENAME:
			r = strcmp(d->in->v[a->input].relname,
				   d->in->v[b->input].relname);
			break;
		}
		if (k->src != VZ_KEEP_FILENAME) {
			if (isnan(va) || isnan(vb)) {
				if (isnan(va) != isnan(vb))
					return isnan(va) ? 1 : -1;
				continue;
			}
			r = va < vb ? -1 : va > vb;
		}
		if (r)
			return k->larger ? -r : r;
	}
	if (a->input != b->input)
		return a->input < b->input ? -1 : 1;
	if (a->fid != b->fid)
		return a->fid < b->fid ? -1 : 1;
	return a->part < b->part ? -1 : a->part > b->part;
}

static void centroid_d(struct vz_dedup *d, struct item *it)
{
	double x = it->poly.cx, y = it->poly.cy;

	if (it->has_d)
		return;
	it->has_d = true;
	if (d->to_dist) {
		PJ_COORD p =
			proj_trans(d->to_dist, PJ_FWD, proj_coord(x, y, 0, 0));
		x = p.xy.x;
		y = p.xy.y;
		/* failed (HUGE_VAL): distance unknown, never within tolerance */
		if (!isfinite(x) || !isfinite(y))
			x = y = NAN;
	}
	it->dx = x;
	it->dy = y;
}

/*
 * The area an overlap is measured against: staging_area, the whole
 * polygon's area, as the PDG does.  Large polygons (many vertices over
 * several tiles) are staged clipped to each tile, so only their part in
 * this tile can intersect here: for them the ratio is taken within the
 * tile (against the clipped area), or a large duplicate would go unnoticed
 * in tiles holding a small part of it.
 */
static double ratio_area(struct vz_dedup *d, struct item *it,
			 const GEOSGeometry *g)
{
	double a = 0;

	if (it->ratio_area > 0)
		return it->ratio_area;
	if (!GEOSArea_r(d->geos, g, &a) || !(a > 0))
		a = it->poly.area;
	it->ratio_area = a < it->poly.area * (1 - 1e-6) ? a : it->poly.area;
	return it->ratio_area;
}

/* Is (a, b) a duplicate pair?  @return 1, 0, or an error. */
static int dup_pair(struct vz_dedup *d, struct item *a, struct item *b)
{
	const struct vz_conf *c = d->c;
	GEOSGeometry *ga = item_geom(d, a), *gb = item_geom(d, b), *x;
	double ia = 0;

	if (!ga || !gb)
		return VZ_E_GEOM;
	/* overlay(how='intersection') keeps polygonal results only: a pair
	 * that merely touches is not compared */
	x = GEOSIntersection_r(d->geos, ga, gb);
	if (!x) {
		vz_log(VZ_LOG_WARN,
		       "dedup: tile %u/%u/%u: intersection of %s fid %lld "
		       "and %s fid %lld failed (%s); not compared",
		       d->key->z, d->key->x, d->key->y,
		       d->in->v[a->input].relname, (long long)a->fid,
		       d->in->v[b->input].relname, (long long)b->fid,
		       d->geos_msg);
		return 0;
	}
	if (!GEOSArea_r(d->geos, x, &ia))
		ia = 0;
	GEOSGeom_destroy_r(d->geos, x);
	if (!(ia > 0))
		return 0;
	if (c->has_overlap_tol) {
		bool r1 = ia / ratio_area(d, a, ga) > c->overlap_tol;
		bool r2 = ia / ratio_area(d, b, gb) > c->overlap_tol;
		if (c->overlap_both ? !(r1 && r2) : !(r1 || r2))
			return 0;
	}
	if (c->has_centroid_tol) {
		centroid_d(d, a);
		centroid_d(d, b);
		if (!(hypot(a->dx - b->dx, a->dy - b->dy) <= c->centroid_tol))
			return 0;
	}
	return 1;
}

static int cmp_minx(const void *pa, const void *pb, void *ud)
{
	const struct item *items = ud;
	const struct item *a = &items[*(const size_t *)pa];
	const struct item *b = &items[*(const size_t *)pb];
	size_t ia = *(const size_t *)pa, ib = *(const size_t *)pb;

	if (a->minx != b->minx)
		return a->minx < b->minx ? -1 : 1;
	return (ia > ib) - (ia < ib);
}

/* Candidate pairs of two files by a sweep over envelope minx. */
static int compare_files(struct vz_dedup *d, const struct group *g1,
			 const struct group *g2)
{
	size_t *a = NULL, *b = NULL, *act_a = NULL, *act_b = NULL;
	size_t na = 0, nb = 0, i = 0, j = 0, n_act_a = 0, n_act_b = 0;
	int rc = -ENOMEM;

	a = malloc((g1->n + 1) * sizeof *a);
	b = malloc((g2->n + 1) * sizeof *b);
	act_a = malloc((g1->n + 1) * sizeof *act_a);
	act_b = malloc((g2->n + 1) * sizeof *act_b);
	if (!a || !b || !act_a || !act_b)
		goto out;
	/* polygons already flagged (clip, earlier pairs) take no part */
	for (size_t k = 0; k < g1->n; k++)
		if (!d->items[g1->idx[k]].flag)
			a[na++] = g1->idx[k];
	for (size_t k = 0; k < g2->n; k++)
		if (!d->items[g2->idx[k]].flag)
			b[nb++] = g2->idx[k];
	rc = 0;
	if (!na || !nb)
		goto out;
	qsort_r(a, na, sizeof *a, cmp_minx, d->items);
	qsort_r(b, nb, sizeof *b, cmp_minx, d->items);
	while (i < na || j < nb) {
		bool from_a =
			j == nb ||
			(i < na && d->items[a[i]].minx <= d->items[b[j]].minx);
		size_t cur = from_a ? a[i++] : b[j++];
		struct item *it = &d->items[cur];
		size_t *other = from_a ? act_b : act_a;
		size_t *n_other = from_a ? &n_act_b : &n_act_a;
		size_t w = 0;

		for (size_t k = 0; k < *n_other; k++) {
			struct item *o = &d->items[other[k]];
			struct item *p1, *p2;

			if (o->maxx < it->minx)
				continue; /* expired for every later item */
			other[w++] = other[k];
			if (o->maxy < it->miny || o->miny > it->maxy)
				continue;
			p1 = from_a ? it : o;
			p2 = from_a ? o : it;
			rc = dup_pair(d, p1, p2);
			if (rc < 0)
				goto out;
			if (rc == 1) {
				/* the first row after the keep-rule sort
				 * stays; a polygon may lose in one pair and
				 * still win another within this file pair */
				if (keep_cmp(d, p1, p2) <= 0)
					p2->lose = true;
				else
					p1->lose = true;
			}
			rc = 0;
		}
		*n_other = w;
		if (from_a)
			act_a[n_act_a++] = cur;
		else
			act_b[n_act_b++] = cur;
	}
	for (size_t k = 0; k < na; k++)
		if (d->items[a[k]].lose)
			d->items[a[k]].flag = true;
	for (size_t k = 0; k < nb; k++)
		if (d->items[b[k]].lose)
			d->items[b[k]].flag = true;
out:
	free(a);
	free(b);
	free(act_a);
	free(act_b);
	return rc;
}

static int neighbor(struct vz_dedup *d)
{
	int rc;

	for (size_t i = 0; i < d->n_groups; i++)
		for (size_t j = i + 1; j < d->n_groups; j++)
			if ((rc = compare_files(d, &d->groups[i],
						&d->groups[j])))
				return rc;
	return 0;
}

/* ---- footprints (spec §3.3) --------------------------------------------- */

static int cmp_rank(const void *pa, const void *pb, void *ud)
{
	const struct vz_dedup *d = ud;
	const struct group *a = &d->groups[*(const size_t *)pa];
	const struct group *b = &d->groups[*(const size_t *)pb];
	int r = fprow_cmp(d->c, a->fp->best, b->fp->best);

	if (r)
		return r;
	/* ties: group (staging_filename) order */
	return (*(const size_t *)pa > *(const size_t *)pb) -
	       (*(const size_t *)pa < *(const size_t *)pb);
}

static int footprints(struct vz_dedup *d)
{
	size_t *order, n = 0;
	int rc = 0;

	if (!(order = malloc((d->n_groups + 1) * sizeof *order)))
		return -ENOMEM;
	for (size_t i = 0; i < d->n_groups; i++)
		if (d->groups[i].fp)
			order[n++] = i;
	qsort_r(order, n, sizeof *order, cmp_rank, d);
	for (size_t r = 0; r < n; r++)
		d->groups[order[r]].rank = r;
	free(order);
	for (size_t i = 0; i < d->n_groups && !rc; i++) {
		for (size_t j = i + 1; j < d->n_groups && !rc; j++) {
			struct group *g1 = &d->groups[i], *g2 = &d->groups[j];
			struct group *lose;
			const GEOSPreparedGeometry *ov;

			if (!g1->fp || !g2->fp)
				continue;
			if ((rc = fp_overlap(d, g1->fp, g2->fp, &ov)) || !ov)
				continue;
			lose = g2->rank > g1->rank ? g2 : g1;
			for (size_t k = 0; k < lose->n; k++) {
				struct item *it = &d->items[lose->idx[k]];
				GEOSGeometry *pg;
				char x;

				if (it->flag)
					continue;
				if (!(pg = item_geom(d, it)))
					return VZ_E_GEOM;
				x = GEOSPreparedIntersects_r(d->geos, ov, pg);
				if (x == 2)
					return VZ_E_GEOM;
				it->flag = x == 1;
			}
		}
	}
	return rc;
}

/* ---- driver ------------------------------------------------------------- */

int vz_dedup_flags(struct vz_dedup *d, const struct vz_tile_key *k,
		   const struct vz_inputs *in, const struct vz_buf *blobs,
		   size_t n, struct vz_buf *flags)
{
	const struct vz_conf *c = d->c;
	int rc;

	vz_buf_reset(flags);
	d->in = in;
	d->key = k;
	d->n_items = 0;
	d->geos_msg[0] = '\0';
	if ((rc = collect(d, blobs, n))) {
		if (rc == VZ_E_CACHE)
			vz_err_set("dedup: tile %u/%u/%u: corrupt staged "
				   "records (attributes or input index do not "
				   "match the config and inputs)",
				   k->z, k->x, k->y);
		goto out;
	}
	if (d->n_fps > MAX_CACHED_FOOTPRINTS)
		fps_clear(d);
	if (vz_dedup_enabled(c) && d->n_items) {
		if ((rc = make_groups(d)))
			goto out;
		/* footprints are needed by the clip and by the method */
		if (c->clip_to_footprint || !d->neighbor)
			for (size_t i = 0; i < d->n_groups; i++)
				if ((rc = fp_get(d, d->groups[i].relname,
						 &d->groups[i].fp)))
					goto out;
		if (c->clip_to_footprint && (rc = clip(d)))
			goto geom;
		if (d->n_groups > 1) {
			rc = d->neighbor ? neighbor(d) : footprints(d);
			if (rc)
				goto geom;
		}
	}
	if ((rc = vz_buf_reserve(flags, d->n_items + 1)))
		goto out;
	for (size_t i = 0; i < d->n_items; i++)
		flags->data[i] = d->items[i].flag;
	flags->len = d->n_items;
	goto out;
geom:
	if (rc == VZ_E_GEOM)
		vz_err_set("dedup: tile %u/%u/%u: geometry operation failed: "
			   "%s",
			   k->z, k->x, k->y, d->geos_msg);
out:
	items_release(d);
	return rc;
}

/* ---- per-thread contexts ------------------------------------------------ */

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static bool tls_ok;
/* Every live thread context, so that they stay reachable (leak checkers)
 * until their thread exits. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vz_dedup *registry; /* guarded by reg_lock */

static void reg_remove(struct vz_dedup *d)
{
	pthread_mutex_lock(&reg_lock);
	for (struct vz_dedup **p = &registry; *p; p = &(*p)->next) {
		if (*p == d) {
			*p = d->next;
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
}

static void tls_free(void *p)
{
	reg_remove(p);
	vz_dedup_free(p);
}

static void tls_init(void)
{
	tls_ok = pthread_key_create(&tls_key, tls_free) == 0;
}

int vz_dedup_tile(const struct vz_conf *c, const struct vz_tile_key *k,
		  const struct vz_inputs *in, const struct vz_buf *blobs,
		  size_t n, struct vz_buf *flags)
{
	struct vz_dedup *d;
	int rc;

	pthread_once(&tls_once, tls_init);
	if (!tls_ok)
		return -ENOMEM;
	d = pthread_getspecific(tls_key);
	if (d && (d->c != c ||
		  memcmp(d->conf_fp, c->fingerprint, sizeof d->conf_fp))) {
		pthread_setspecific(tls_key, NULL);
		tls_free(d);
		d = NULL;
	}
	if (!d) {
		if ((rc = vz_dedup_new(c, &d)))
			return rc;
		if (pthread_setspecific(tls_key, d)) {
			vz_dedup_free(d);
			return -ENOMEM;
		}
		pthread_mutex_lock(&reg_lock);
		d->next = registry;
		registry = d;
		pthread_mutex_unlock(&reg_lock);
	}
	return vz_dedup_flags(d, k, in, blobs, n, flags);
}
