/* SPDX-License-Identifier: Apache-2.0 */
/* Staging (spec §2): read, explode, repair, simplify, reproject, assign. */
#define GEOS_USE_ONLY_R_API
#include "gdal_i.h"
#include "vizfs/stage.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cpl_error.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <geos_c.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

#include "vizfs/dedup.h"

/* Polygons with more points than this are clipped to each tile they span. */
#define CLIP_MIN_POINTS 256
/* Candidate tile blocks larger than this use a prepared geometry. */
#define PREPARE_MIN_TILES 4

static const char *const staging_props[] = {
	"staging_area",	      "staging_centroid_x",
	"staging_centroid_y", "staging_filename",
	"staging_identifier", "staging_centroid_tile",
	"staging_tile",	      "staging_centroid_within_tile",
	"staging_duplicated",
};

/* One source CRS and its transformation to the TMS CRS. */
struct xform {
	OGRSpatialReferenceH srs;
	OGRCoordinateTransformationH ct; /* NULL: same CRS, no transform */
};

/* The input a stager has open (cached between ranges of one file). */
struct src {
	char *path;
	GDALDatasetH ds;
	OGRLayerH layer;
	int64_t n_features;
	int fid_contig; /* -1 unknown, 0 no, 1 FIDs are 1..n, 2 GPKG */
	char *fid_col;
	int *attr_idx;	/* field index per vz_conf.attrs */
	int *attr_type; /* OGRFieldType per vz_conf.attrs */
	bool attrs_ok;
	struct xform *xf; /* NULL until the CRS was resolved */
	bool crs_checked;
	int crs_rc;
	int idx_cx, idx_cy, idx_area; /* pre-staged centroid/area columns */
};

/* Coordinates of one polygon: rings back to back, x,y interleaved. */
struct rings {
	double *xy;
	uint32_t *len;
	size_t n_pts, n_rings, cap_pts, cap_rings;
};

struct tile_slot {
	uint32_t x, y;
	struct vz_buf blob;
};

/* Per-range map from tile to its blob (open addressing on (x, y)). */
struct tile_map {
	struct tile_slot *slots;
	size_t n, cap; /* dense slots */
	int32_t *hash; /* index into slots or -1 */
	size_t hcap;
};

struct vz_stager {
	const struct vz_conf *c;
	GEOSContextHandle_t geos;
	char geos_msg[512];
	char cpl_msg[512];
	bool cpl_failed;
	OGRSpatialReferenceH tms_srs;
	OGRSpatialReferenceH input_srs; /* conf input_crs, NULL if unset */
	struct xform **xf; /* cached transformations, stable pointers */
	size_t n_xf;
	struct src src;
	struct rings r_in, r_out;
	double *attrs;
	uint64_t attr_nulls; /* per feature scratch */
	struct tile_map map;
	const uint8_t *need; /* per feature of the next range, or NULL */
};

/* ---------------------------------------------------------------------- */
/* Foreign error channels */

static void geos_msg_handler(const char *msg, void *ud)
{
	struct vz_stager *st = ud;
	snprintf(st->geos_msg, sizeof st->geos_msg, "%s", msg);
}

static void geos_notice_handler(const char *msg, void *ud)
{
	(void)msg;
	(void)ud;
}

static void CPL_STDCALL cpl_handler(CPLErr e, CPLErrorNum n, const char *msg)
{
	struct vz_stager *st = CPLGetErrorHandlerUserData();

	(void)n;
	if (!st || e < CE_Warning)
		return;
	if (e >= CE_Failure) {
		st->cpl_failed = true;
		snprintf(st->cpl_msg, sizeof st->cpl_msg, "%s", msg);
	} else if (!st->cpl_msg[0]) {
		snprintf(st->cpl_msg, sizeof st->cpl_msg, "%s", msg);
	}
}

static void guard_begin(struct vz_stager *st)
{
	st->cpl_msg[0] = '\0';
	st->cpl_failed = false;
	CPLPushErrorHandlerEx(cpl_handler, st);
}

static void guard_end(struct vz_stager *st)
{
	CPLPopErrorHandler();
}

/* ---------------------------------------------------------------------- */
/* Small containers */

static int rings_reserve(struct rings *r, size_t pts, size_t nr)
{
	if (r->n_pts + pts > r->cap_pts) {
		size_t cap = r->cap_pts ? r->cap_pts : 256;
		double *p;
		while (cap < r->n_pts + pts)
			cap *= 2;
		p = realloc(r->xy, cap * 2 * sizeof *p);
		if (!p)
			return -ENOMEM;
		r->xy = p;
		r->cap_pts = cap;
	}
	if (r->n_rings + nr > r->cap_rings) {
		size_t cap = r->cap_rings ? r->cap_rings : 16;
		uint32_t *p;
		while (cap < r->n_rings + nr)
			cap *= 2;
		p = realloc(r->len, cap * sizeof *p);
		if (!p)
			return -ENOMEM;
		r->len = p;
		r->cap_rings = cap;
	}
	return 0;
}

static void rings_reset(struct rings *r)
{
	r->n_pts = r->n_rings = 0;
}

static void rings_free(struct rings *r)
{
	free(r->xy);
	free(r->len);
	memset(r, 0, sizeof *r);
}

static void map_reset(struct tile_map *m)
{
	for (size_t i = 0; i < m->n; i++)
		vz_buf_free(&m->slots[i].blob);
	m->n = 0;
	for (size_t i = 0; i < m->hcap; i++)
		m->hash[i] = -1;
}

static void map_free(struct tile_map *m)
{
	map_reset(m);
	free(m->slots);
	free(m->hash);
	memset(m, 0, sizeof *m);
}

static size_t map_hash(uint32_t x, uint32_t y, size_t hcap)
{
	uint64_t h = ((uint64_t)x << 32 | y) * 0x9e3779b97f4a7c15ULL;
	return (size_t)(h >> 20) & (hcap - 1);
}

static int map_rehash(struct tile_map *m, size_t hcap)
{
	int32_t *h = malloc(hcap * sizeof *h);
	if (!h)
		return -ENOMEM;
	for (size_t i = 0; i < hcap; i++)
		h[i] = -1;
	for (size_t i = 0; i < m->n; i++) {
		size_t j = map_hash(m->slots[i].x, m->slots[i].y, hcap);
		while (h[j] >= 0)
			j = (j + 1) & (hcap - 1);
		h[j] = (int32_t)i;
	}
	free(m->hash);
	m->hash = h;
	m->hcap = hcap;
	return 0;
}

/* The blob of tile (x, y), created (with its header) on first use. */
static struct vz_buf *map_get(struct tile_map *m, uint32_t x, uint32_t y,
			      uint32_t n_attrs)
{
	size_t j;

	if ((m->n + 1) * 2 > m->hcap &&
	    map_rehash(m, m->hcap ? 2 * m->hcap : 64))
		return NULL;
	j = map_hash(x, y, m->hcap);
	while (m->hash[j] >= 0) {
		struct tile_slot *s = &m->slots[m->hash[j]];
		if (s->x == x && s->y == y)
			return &s->blob;
		j = (j + 1) & (m->hcap - 1);
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 16;
		struct tile_slot *s = realloc(m->slots, cap * sizeof *s);
		if (!s)
			return NULL;
		m->slots = s;
		m->cap = cap;
	}
	memset(&m->slots[m->n], 0, sizeof m->slots[0]);
	m->slots[m->n].x = x;
	m->slots[m->n].y = y;
	if (vz_staged_begin(&m->slots[m->n].blob, n_attrs))
		return NULL;
	m->hash[j] = (int32_t)m->n;
	return &m->slots[m->n++].blob;
}

static int cmp_slot(const void *a, const void *b)
{
	const struct tile_slot *p = a, *q = b;
	if (p->x != q->x)
		return p->x < q->x ? -1 : 1;
	if (p->y != q->y)
		return p->y < q->y ? -1 : 1;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Stager lifecycle */

static void src_close(struct src *s)
{
	VZ_FREEF(GDALClose, s->ds);
	free(s->path);
	free(s->fid_col);
	free(s->attr_idx);
	free(s->attr_type);
	memset(s, 0, sizeof *s);
}

int vz_stager_new(const struct vz_conf *c, struct vz_stager **out)
{
	struct vz_stager *st;
	int rc;

	*out = NULL;
	st = calloc(1, sizeof *st);
	if (!st)
		return -ENOMEM;
	st->c = c;
	guard_begin(st);
	st->geos = GEOS_init_r();
	if (!st->geos) {
		rc = -ENOMEM;
		goto err;
	}
	GEOSContext_setErrorMessageHandler_r(st->geos, geos_msg_handler, st);
	GEOSContext_setNoticeMessageHandler_r(st->geos, geos_notice_handler,
					      st);
	st->tms_srs = vz_srs_from(c->tms->crs);
	if (!st->tms_srs) {
		vz_err_set("TMS %s: cannot create CRS %s: %s", c->tms->id,
			   c->tms->crs, st->cpl_msg);
		rc = VZ_E_CRS;
		goto err;
	}
	if (c->input_crs && c->input_crs[0]) {
		st->input_srs = vz_srs_from(c->input_crs);
		if (!st->input_srs) {
			vz_err_set("input_crs '%s' is not a usable CRS: %s",
				   c->input_crs, st->cpl_msg);
			rc = VZ_E_CRS;
			goto err;
		}
	}
	if (c->n_attrs) {
		st->attrs = calloc(c->n_attrs, sizeof *st->attrs);
		if (!st->attrs) {
			rc = -ENOMEM;
			goto err;
		}
	}
	guard_end(st);
	*out = st;
	return 0;
err:
	guard_end(st);
	vz_stager_free(st);
	return rc;
}

void vz_stager_free(struct vz_stager *st)
{
	if (!st)
		return;
	src_close(&st->src);
	for (size_t i = 0; i < st->n_xf; i++) {
		if (st->xf[i]->ct)
			OCTDestroyCoordinateTransformation(st->xf[i]->ct);
		OSRDestroySpatialReference(st->xf[i]->srs);
		free(st->xf[i]);
	}
	free(st->xf);
	VZ_FREEF(OSRDestroySpatialReference, st->tms_srs);
	VZ_FREEF(OSRDestroySpatialReference, st->input_srs);
	if (st->geos)
		GEOS_finish_r(st->geos);
	rings_free(&st->r_in);
	rings_free(&st->r_out);
	map_free(&st->map);
	free(st->attrs);
	free(st);
}

void vz_stage_stats_add(struct vz_stage_stats *acc,
			const struct vz_stage_stats *s)
{
	acc->features += s->features;
	acc->polygons += s->polygons;
	acc->multi_exploded += s->multi_exploded;
	acc->repaired += s->repaired;
	acc->skipped_invalid += s->skipped_invalid;
	acc->skipped_type += s->skipped_type;
	acc->skipped_empty += s->skipped_empty;
	acc->skipped_outside += s->skipped_outside;
	acc->null_attrs += s->null_attrs;
	acc->rows += s->rows;
}

/* ---------------------------------------------------------------------- */
/* Opening inputs */

/* The cached transformation from @p srs (borrowed) to the TMS CRS. */
static int get_xform(struct vz_stager *st, OGRSpatialReferenceH srs,
		     const char *path, struct xform **out)
{
	struct xform **v, *x;

	for (size_t i = 0; i < st->n_xf; i++) {
		if (OSRIsSame(st->xf[i]->srs, srs)) {
			*out = st->xf[i];
			return 0;
		}
	}
	v = realloc(st->xf, (st->n_xf + 1) * sizeof *v);
	if (!v)
		return -ENOMEM;
	st->xf = v;
	x = calloc(1, sizeof *x);
	if (!x)
		return -ENOMEM;
	x->srs = OSRClone(srs);
	if (!x->srs) {
		free(x);
		return -ENOMEM;
	}
	OSRSetAxisMappingStrategy(x->srs, OAMS_TRADITIONAL_GIS_ORDER);
	if (!OSRIsSame(x->srs, st->tms_srs)) {
		x->ct = OCTNewCoordinateTransformation(x->srs, st->tms_srs);
		if (!x->ct) {
			OSRDestroySpatialReference(x->srs);
			free(x);
			vz_err_set("%s: cannot transform its CRS to %s: %s",
				   path, st->c->tms->crs, st->cpl_msg);
			return VZ_E_CRS;
		}
	}
	st->xf[st->n_xf++] = x;
	*out = x;
	return 0;
}

static int fid_contiguity(struct vz_stager *st, struct src *s)
{
	GDALDriverH drv = GDALGetDatasetDriver(s->ds);
	const char *col = OGR_L_GetFIDColumn(s->layer);
	char sql[1024];
	OGRLayerH res;
	OGRFeatureH f;
	int ok = 0;

	if (!drv || strcmp(GDALGetDriverShortName(drv), "GPKG") != 0 || !col ||
	    !col[0] || strchr(col, '"') || strchr(OGR_L_GetName(s->layer), '"'))
		return 0;
	snprintf(sql, sizeof sql,
		 "SELECT MIN(\"%s\"), MAX(\"%s\"), COUNT(*) FROM \"%s\"", col,
		 col, OGR_L_GetName(s->layer));
	res = GDALDatasetExecuteSQL(s->ds, sql, NULL, NULL);
	if (!res)
		return 0;
	f = OGR_L_GetNextFeature(res);
	if (f) {
		int64_t lo = OGR_F_GetFieldAsInteger64(f, 0);
		int64_t hi = OGR_F_GetFieldAsInteger64(f, 1);
		int64_t n = OGR_F_GetFieldAsInteger64(f, 2);
		ok = n == s->n_features && (n == 0 || (lo == 1 && hi == n)) ?
			     1 :
			     2;
		OGR_F_Destroy(f);
	}
	GDALDatasetReleaseResultSet(s->ds, res);
	s->fid_col = strdup(col);
	if (!s->fid_col)
		ok = 0;
	(void)st;
	return ok;
}

/* The FID at ordinal @p start of a GeoPackage layer whose FIDs have gaps
 * (SQLite walks the rowid b-tree; no feature is decoded).  The CAST keeps
 * OGR from turning the selected column into the result's FID.
 * @return 0, or -ENOENT if there is no such feature. */
static int gpkg_fid_at(struct src *s, uint64_t start, int64_t *fid)
{
	char sql[1024];
	OGRLayerH res;
	OGRFeatureH f;
	int rc = -ENOENT;

	snprintf(sql, sizeof sql,
		 "SELECT CAST(\"%s\" AS INTEGER) AS v FROM \"%s\" "
		 "ORDER BY \"%s\" LIMIT 1 OFFSET %llu",
		 s->fid_col, OGR_L_GetName(s->layer), s->fid_col,
		 (unsigned long long)start);
	res = GDALDatasetExecuteSQL(s->ds, sql, NULL, NULL);
	if (!res)
		return -EIO;
	f = OGR_L_GetNextFeature(res);
	if (f) {
		if (OGR_F_IsFieldSetAndNotNull(f, 0)) {
			*fid = OGR_F_GetFieldAsInteger64(f, 0);
			rc = 0;
		}
		OGR_F_Destroy(f);
	}
	GDALDatasetReleaseResultSet(s->ds, res);
	return rc;
}

/* Open @p path (or reuse the cached dataset) and its first layer. */
static int src_open(struct vz_stager *st, const char *path)
{
	struct src *s = &st->src;

	if (s->ds && strcmp(s->path, path) == 0) {
		OGR_L_SetAttributeFilter(s->layer, NULL);
		OGR_L_ResetReading(s->layer);
		return 0;
	}
	src_close(s);
	s->path = strdup(path);
	if (!s->path)
		return -ENOMEM;
	s->ds = GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL,
			   NULL);
	if (!s->ds) {
		vz_err_set("%s: cannot open as a vector file: %s", path,
			   st->cpl_msg[0] ? st->cpl_msg : "unknown format");
		src_close(s);
		return VZ_E_INPUT;
	}
	if (GDALDatasetGetLayerCount(s->ds) < 1 ||
	    !(s->layer = GDALDatasetGetLayer(s->ds, 0))) {
		vz_err_set("%s: no layer in the file", path);
		src_close(s);
		return VZ_E_INPUT;
	}
	s->n_features = OGR_L_GetFeatureCount(s->layer, TRUE);
	s->fid_contig = -1;
	s->idx_cx = s->idx_cy = s->idx_area = -1;
	return 0;
}

static void list_fields(OGRFeatureDefnH fd, char *buf, size_t n)
{
	size_t used = 0;
	buf[0] = '\0';
	for (int i = 0; i < OGR_FD_GetFieldCount(fd) && used + 1 < n; i++) {
		int w = snprintf(
			buf + used, n - used, "%s%s", i ? ", " : "",
			OGR_Fld_GetNameRef(OGR_FD_GetFieldDefn(fd, i)));
		if (w < 0)
			break;
		used += (size_t)w;
	}
	if (used >= n && n > 4)
		strcpy(buf + n - 4, "...");
}

/* What needs attribute @p a: "statistic 'name'" or the keep rules. */
static void user_of_attr(const struct vz_conf *c, size_t a, char *buf,
			 size_t n)
{
	for (size_t i = 0; i < c->n_stats; i++) {
		if (c->stats[i].prop == VZ_PROP_ATTRIBUTE &&
		    c->stats[i].attr == (int)a) {
			snprintf(buf, n, "statistic '%s'", c->stats[i].name);
			return;
		}
	}
	snprintf(buf, n, "deduplicate_keep_rules");
}

/* Field indices of the statistic attributes; warn about staging_* columns
 * (we never read them, spec §2.2 step 1 made the PDG fail here). */
static int src_attrs(struct vz_stager *st, bool warn_props)
{
	const struct vz_conf *c = st->c;
	struct src *s = &st->src;
	OGRFeatureDefnH fd = OGR_L_GetLayerDefn(s->layer);

	if (s->attrs_ok)
		return 0;
	if (warn_props) {
		for (int i = 0; i < OGR_FD_GetFieldCount(fd); i++) {
			const char *nm =
				OGR_Fld_GetNameRef(OGR_FD_GetFieldDefn(fd, i));
			for (size_t j = 0; j < VZ_ARRAY_SIZE(staging_props);
			     j++) {
				if (strcasecmp(nm, staging_props[j]) == 0) {
					vz_log(VZ_LOG_WARN,
					       "%s: column '%s' is ignored "
					       "(vizfs computes it)",
					       s->path, nm);
					j = VZ_ARRAY_SIZE(staging_props);
				}
			}
		}
	}
	if (c->n_attrs) {
		s->attr_idx = calloc(c->n_attrs, sizeof *s->attr_idx);
		s->attr_type = calloc(c->n_attrs, sizeof *s->attr_type);
		if (!s->attr_idx || !s->attr_type)
			return -ENOMEM;
	}
	for (size_t a = 0; a < c->n_attrs; a++) {
		int i = OGR_FD_GetFieldIndex(fd, c->attrs[a]);
		if (i < 0) {
			char fields[512], user[160];
			list_fields(fd, fields, sizeof fields);
			user_of_attr(c, a, user, sizeof user);
			vz_err_set("%s: attribute '%s' used by %s not found "
				   "(fields: %s)",
				   s->path, c->attrs[a], user, fields);
			return VZ_E_INPUT;
		}
		s->attr_idx[a] = i;
		s->attr_type[a] =
			(int)OGR_Fld_GetType(OGR_FD_GetFieldDefn(fd, i));
	}
	s->attrs_ok = true;
	return 0;
}

/* The layer's transformation.  Raw inputs: input_crs overrides the file's
 * CRS.  Pre-staged tiles: the file's CRS, else the TMS CRS (input_crs
 * describes the raw inputs, not vizfs/PDG output). */
static int src_crs(struct vz_stager *st, bool prestaged)
{
	struct src *s = &st->src;
	OGRSpatialReferenceH srs;

	if (s->crs_checked)
		return s->crs_rc;
	s->crs_checked = true;
	if (prestaged) {
		srs = OGR_L_GetSpatialRef(s->layer);
		if (!srs)
			srs = st->tms_srs;
	} else {
		srs = st->input_srs ? st->input_srs :
				      OGR_L_GetSpatialRef(s->layer);
	}
	if (!srs) {
		vz_err_set("%s: no CRS in the file and no input_crs in the "
			   "config",
			   s->path);
		s->crs_rc = VZ_E_CRS;
		return s->crs_rc;
	}
	s->crs_rc = get_xform(st, srs, s->path, &s->xf);
	return s->crs_rc;
}

int vz_stage_count(struct vz_stager *st, const struct vz_input *in, uint64_t *n)
{
	int rc;

	guard_begin(st);
	rc = src_open(st, in->path);
	if (!rc && st->src.n_features < 0) {
		vz_err_set("%s: cannot count features: %s", in->path,
			   st->cpl_msg);
		rc = VZ_E_INPUT;
	}
	if (!rc)
		*n = (uint64_t)st->src.n_features;
	guard_end(st);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Geometry helpers */

/* Append the rings of an OGR polygon to @p r (closing them), checking that
 * every coordinate is finite.  @return 0, 1 for non-finite, -ENOMEM. */
static int rings_from_ogr(struct rings *r, OGRGeometryH poly)
{
	int nr = OGR_G_GetGeometryCount(poly);

	rings_reset(r);
	for (int i = 0; i < nr; i++) {
		OGRGeometryH ring = OGR_G_GetGeometryRef(poly, i);
		int np = ring ? OGR_G_GetPointCount(ring) : 0;
		double *p;

		if (np <= 0) {
			if (i == 0)
				return 0; /* empty exterior: empty polygon */
			continue;
		}
		if (rings_reserve(r, (size_t)np + 1, 1))
			return -ENOMEM;
		p = r->xy + 2 * r->n_pts;
		OGR_G_GetPoints(ring, p, 2 * sizeof(double), p + 1,
				2 * sizeof(double), NULL, 0);
		for (int k = 0; k < 2 * np; k++)
			if (!isfinite(p[k]))
				return 1;
		if (p[0] != p[2 * np - 2] || p[1] != p[2 * np - 1]) {
			p[2 * np] = p[0];
			p[2 * np + 1] = p[1];
			np++;
		}
		r->len[r->n_rings++] = (uint32_t)np;
		r->n_pts += (size_t)np;
	}
	return 0;
}

/* Append the rings of a GEOS polygon to @p r. */
static int rings_from_geos(struct vz_stager *st, struct rings *r,
			   const GEOSGeometry *g)
{
	int nh = GEOSGetNumInteriorRings_r(st->geos, g);

	rings_reset(r);
	if (nh < 0)
		return VZ_E_GEOM;
	for (int i = -1; i < nh; i++) {
		const GEOSGeometry *ring =
			i < 0 ? GEOSGetExteriorRing_r(st->geos, g) :
				GEOSGetInteriorRingN_r(st->geos, g, i);
		const GEOSCoordSequence *seq;
		unsigned int np = 0;

		if (!ring)
			return VZ_E_GEOM;
		seq = GEOSGeom_getCoordSeq_r(st->geos, ring);
		if (!seq || !GEOSCoordSeq_getSize_r(st->geos, seq, &np))
			return VZ_E_GEOM;
		if (np == 0)
			continue;
		if (rings_reserve(r, np, 1))
			return -ENOMEM;
		if (!GEOSCoordSeq_copyToBuffer_r(st->geos, seq,
						 r->xy + 2 * r->n_pts, 0, 0))
			return VZ_E_GEOM;
		r->len[r->n_rings++] = np;
		r->n_pts += np;
	}
	return 0;
}

/* A GEOS polygon from closed rings; holes with fewer than 4 points are
 * dropped (*dropped set).  NULL when the exterior is degenerate. */
static GEOSGeometry *poly_from_rings(struct vz_stager *st,
				     const struct rings *r, bool *dropped)
{
	GEOSContextHandle_t h = st->geos;
	GEOSGeometry *shell = NULL, **holes = NULL;
	GEOSGeometry *res = NULL;
	unsigned int nh = 0;
	size_t off = 0;

	if (r->n_rings == 0 || r->len[0] < 4)
		return NULL;
	if (r->n_rings > 1) {
		holes = malloc((r->n_rings - 1) * sizeof *holes);
		if (!holes)
			return NULL;
	}
	for (size_t i = 0; i < r->n_rings; i++) {
		GEOSCoordSequence *seq;
		GEOSGeometry *ring;

		if (r->len[i] < 4) {
			*dropped = true;
			off += r->len[i];
			continue;
		}
		seq = GEOSCoordSeq_copyFromBuffer_r(h, r->xy + 2 * off,
						    r->len[i], 0, 0);
		off += r->len[i];
		ring = seq ? GEOSGeom_createLinearRing_r(h, seq) : NULL;
		if (!ring)
			goto out;
		if (i == 0)
			shell = ring;
		else
			holes[nh++] = ring;
	}
	res = GEOSGeom_createPolygon_r(h, shell, holes, nh);
	shell = NULL;
	nh = 0;
out:
	if (shell)
		GEOSGeom_destroy_r(h, shell);
	for (unsigned int i = 0; i < nh; i++)
		GEOSGeom_destroy_r(h, holes[i]);
	free(holes);
	return res;
}

struct geom_list {
	GEOSGeometry **v;
	size_t n, cap;
};

static int glist_push(struct geom_list *l, GEOSGeometry *g)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;
		GEOSGeometry **v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = g;
	return 0;
}

static void glist_free(GEOSContextHandle_t h, struct geom_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		GEOSGeom_destroy_r(h, l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

/* Clone every non-empty polygon of @p g (recursing into collections). */
static int collect_polys(GEOSContextHandle_t h, const GEOSGeometry *g,
			 struct geom_list *out)
{
	int t = GEOSGeomTypeId_r(h, g);

	if (t == GEOS_POLYGON) {
		GEOSGeometry *c;
		if (GEOSisEmpty_r(h, g) != 0)
			return 0;
		c = GEOSGeom_clone_r(h, g);
		if (!c || glist_push(out, c)) {
			if (c)
				GEOSGeom_destroy_r(h, c);
			return -ENOMEM;
		}
		return 0;
	}
	if (t == GEOS_MULTIPOLYGON || t == GEOS_GEOMETRYCOLLECTION) {
		int n = GEOSGetNumGeometries_r(h, g);
		for (int i = 0; i < n; i++) {
			int rc = collect_polys(h, GEOSGetGeometryN_r(h, g, i),
					       out);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* Polygon members of an OGR geometry (collections flattened). */
static int collect_ogr(OGRGeometryH g, OGRGeometryH *v, size_t *n, size_t cap,
		       int depth)
{
	OGRwkbGeometryType t = wkbFlatten(OGR_G_GetGeometryType(g));

	if (t == wkbPolygon || t == wkbTriangle) {
		if (*n < cap)
			v[*n] = g;
		(*n)++;
		return 0;
	}
	if ((t == wkbMultiPolygon || t == wkbGeometryCollection ||
	     t == wkbPolyhedralSurface || t == wkbTIN) &&
	    depth < 16) {
		int m = OGR_G_GetGeometryCount(g);
		for (int i = 0; i < m; i++)
			collect_ogr(OGR_G_GetGeometryRef(g, i), v, n, cap,
				    depth + 1);
	}
	return 0;
}

/* Scratch for coordinate transformation, reused across polygons. */
struct okbuf {
	int *v;
	double *xy; /* x[cap] then y[cap] */
	size_t cap;
};

static void okbuf_free(struct okbuf *ok)
{
	free(ok->v);
	free(ok->xy);
	memset(ok, 0, sizeof *ok);
}

/* Transform r in place to the TMS CRS.  @return 0, or 1 if any point
 * failed or left the finite range. */
static int transform_rings(struct xform *xf, struct rings *r, struct okbuf *ok)
{
	size_t n = r->n_pts;
	double *x, *y;

	if (!xf->ct || n == 0)
		return 0;
	if (n > INT32_MAX)
		return 1;
	if (ok->cap < n) {
		int *v = realloc(ok->v, n * sizeof *v);
		double *xy;
		if (!v)
			return -ENOMEM;
		ok->v = v;
		xy = realloc(ok->xy, 2 * n * sizeof *xy);
		if (!xy)
			return -ENOMEM;
		ok->xy = xy;
		ok->cap = n;
	}
	/* x and y are interleaved in r: transform separate arrays. */
	x = ok->xy;
	y = ok->xy + ok->cap;
	for (size_t i = 0; i < n; i++) {
		x[i] = r->xy[2 * i];
		y[i] = r->xy[2 * i + 1];
	}
	if (!OCTTransformEx(xf->ct, (int)n, x, y, NULL, ok->v))
		return 1;
	for (size_t i = 0; i < n; i++) {
		if (!ok->v[i] || !isfinite(x[i]) || !isfinite(y[i]))
			return 1;
		r->xy[2 * i] = x[i];
		r->xy[2 * i + 1] = y[i];
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Tile assignment */

struct assign {
	struct vz_stager *st;
	const GEOSGeometry *full;	  /* whole polygon, TMS CRS */
	const struct rings *full_rings;	  /* its coordinates */
	const GEOSPreparedGeometry *prep; /* of full, or NULL */
	bool clip;
	struct vz_staged_rec rec; /* template: centroid, area, ids */
	struct vz_tile_key ctile;
	bool has_ctile, ctile_done;
	uint64_t rows;
	int err;
};

static void block_box(const struct vz_tms *t, int z, uint32_t x0, uint32_t y0,
		      uint32_t x1, uint32_t y1, struct vz_bbox *b)
{
	struct vz_tile_key a = {x0, y0, (uint8_t)z}, c = {x1, y1, (uint8_t)z};
	struct vz_bbox ba, bc;

	vz_tms_bounds(t, &a, &ba);
	vz_tms_bounds(t, &c, &bc);
	b->left = ba.left;
	b->top = ba.top;
	b->right = bc.right;
	b->bottom = bc.bottom;
}

static int emit_rec(struct assign *a, uint32_t x, uint32_t y,
		    const struct rings *r)
{
	struct vz_stager *st = a->st;
	struct vz_buf *blob = map_get(&st->map, x, y, (uint32_t)st->c->n_attrs);
	struct vz_staged_rec rec = a->rec;

	if (!blob)
		return -ENOMEM;
	rec.poly.n_rings = (uint32_t)r->n_rings;
	rec.poly.ring_len = r->len;
	rec.poly.xy = r->xy;
	if (a->has_ctile && x == a->ctile.x && y == a->ctile.y)
		a->ctile_done = true;
	a->rows++;
	return vz_staged_append(blob, &rec);
}

static int leaf(struct assign *a, const GEOSGeometry *g, uint32_t x, uint32_t y)
{
	struct vz_stager *st = a->st;
	GEOSContextHandle_t h = st->geos;
	const GEOSGeometry *one = NULL;
	struct vz_bbox b;
	GEOSGeometry *c;
	int rc, t;

	if (!a->clip)
		return emit_rec(a, x, y, a->full_rings);
	block_box(st->c->tms, st->c->z_max, x, y, x, y, &b);
	c = GEOSClipByRect_r(h, g, b.left, b.bottom, b.right, b.top);
	if (!c) /* GEOS failed on this geometry: keep it whole */
		return emit_rec(a, x, y, a->full_rings);
	if (GEOSisEmpty_r(h, c) != 0) {
		GEOSGeom_destroy_r(h, c);
		return 0;
	}
	t = GEOSGeomTypeId_r(h, c);
	if (t == GEOS_POLYGON) {
		one = c;
	} else if (t == GEOS_MULTIPOLYGON || t == GEOS_GEOMETRYCOLLECTION) {
		int n = GEOSGetNumGeometries_r(h, c), np = 0;
		for (int i = 0; i < n; i++) {
			const GEOSGeometry *m = GEOSGetGeometryN_r(h, c, i);
			if (GEOSGeomTypeId_r(h, m) == GEOS_POLYGON &&
			    !GEOSisEmpty_r(h, m)) {
				one = m;
				np++;
			}
		}
		if (np == 0) { /* only lines/points: mere touching */
			GEOSGeom_destroy_r(h, c);
			return 0;
		}
		if (np > 1) /* several pieces: one record must hold all */
			one = NULL;
	}
	if (one) {
		rc = rings_from_geos(st, &st->r_out, one);
		if (!rc)
			rc = emit_rec(a, x, y, &st->r_out);
	} else {
		rc = emit_rec(a, x, y, a->full_rings);
	}
	GEOSGeom_destroy_r(h, c);
	return rc;
}

static int block(struct assign *a, const GEOSGeometry *g, uint32_t x0,
		 uint32_t y0, uint32_t x1, uint32_t y1)
{
	struct vz_stager *st = a->st;
	GEOSContextHandle_t h = st->geos;
	uint32_t bx[2][2], by[2][2];
	int nb = 2;

	if (x0 == x1 && y0 == y1)
		return leaf(a, g, x0, y0);
	if (x1 - x0 >= y1 - y0) {
		uint32_t m = x0 + (x1 - x0) / 2;
		bx[0][0] = x0, bx[0][1] = m, bx[1][0] = m + 1, bx[1][1] = x1;
		by[0][0] = by[1][0] = y0;
		by[0][1] = by[1][1] = y1;
	} else {
		uint32_t m = y0 + (y1 - y0) / 2;
		by[0][0] = y0, by[0][1] = m, by[1][0] = m + 1, by[1][1] = y1;
		bx[0][0] = bx[1][0] = x0;
		bx[0][1] = bx[1][1] = x1;
	}
	for (int i = 0; i < nb; i++) {
		struct vz_bbox b;
		int rc = 0;

		block_box(st->c->tms, st->c->z_max, bx[i][0], by[i][0],
			  bx[i][1], by[i][1], &b);
		if (a->clip) {
			GEOSGeometry *c = GEOSClipByRect_r(
				h, g, b.left, b.bottom, b.right, b.top);
			if (!c) {
				rc = block(a, g, bx[i][0], by[i][0], bx[i][1],
					   by[i][1]);
			} else {
				if (!GEOSisEmpty_r(h, c))
					rc = block(a, c, bx[i][0], by[i][0],
						   bx[i][1], by[i][1]);
				GEOSGeom_destroy_r(h, c);
			}
		} else {
			GEOSGeometry *box = GEOSGeom_createRectangle_r(
				h, b.left, b.bottom, b.right, b.top);
			char hit;
			if (!box)
				return VZ_E_GEOM;
			hit = a->prep ? GEOSPreparedIntersects_r(h, a->prep,
								 box) :
					GEOSIntersects_r(h, g, box);
			GEOSGeom_destroy_r(h, box);
			/* 2 = GEOS exception: keep the copy, it is harmless */
			if (hit)
				rc = block(a, g, bx[i][0], by[i][0], bx[i][1],
					   by[i][1]);
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* Assign one polygon (TMS CRS) to the max-z tiles it intersects. */
static int assign_poly(struct assign *a, GEOSGeometry *g, const struct rings *r)
{
	struct vz_stager *st = a->st;
	const struct vz_conf *c = st->c;
	GEOSContextHandle_t h = st->geos;
	struct vz_bbox env = {INFINITY, INFINITY, -INFINITY, -INFINITY}, root;
	struct vz_bbox ext;
	uint32_t x0, y0, x1, y1;
	uint64_t ntiles;
	int rc = 0;

	for (size_t i = 0; i < r->n_pts; i++) {
		double x = r->xy[2 * i], y = r->xy[2 * i + 1];
		env.left = fmin(env.left, x);
		env.right = fmax(env.right, x);
		env.bottom = fmin(env.bottom, y);
		env.top = fmax(env.top, y);
	}
	if (vz_tms_tile_range(c->tms, c->z_max, &env, &x0, &y0, &x1, &y1))
		return 0;
	ntiles = (uint64_t)(x1 - x0 + 1) * (y1 - y0 + 1);
	a->full = g;
	a->full_rings = r;
	a->clip = ntiles > 1 && r->n_pts > CLIP_MIN_POINTS;
	a->has_ctile = vz_tms_point_tile(c->tms, c->z_max, a->rec.poly.cx,
					 a->rec.poly.cy, &a->ctile) == 0;
	a->ctile_done = false;
	a->rows = 0;
	vz_tms_extent(c->tms, &ext);
	block_box(c->tms, c->z_max, x0, y0, x1, y1, &root);
	if (!a->clip && ntiles > PREPARE_MIN_TILES)
		a->prep = GEOSPrepare_r(h, g);
	if (env.left >= root.left && env.right <= root.right &&
	    env.bottom >= root.bottom && env.top <= root.top) {
		rc = block(a, g, x0, y0, x1, y1);
	} else if (a->clip) {
		GEOSGeometry *cl = GEOSClipByRect_r(
			h, g, root.left, root.bottom, root.right, root.top);
		if (cl && !GEOSisEmpty_r(h, cl))
			rc = block(a, cl, x0, y0, x1, y1);
		if (cl)
			GEOSGeom_destroy_r(h, cl);
	} else {
		/* Partly outside the matrix: test the root block too. */
		GEOSGeometry *box = GEOSGeom_createRectangle_r(
			h, root.left, root.bottom, root.right, root.top);
		char hit = box ? GEOSIntersects_r(h, g, box) : 0;
		if (box)
			GEOSGeom_destroy_r(h, box);
		if (hit == 1)
			rc = block(a, g, x0, y0, x1, y1);
	}
	if (a->prep) {
		GEOSPreparedGeom_destroy_r(h, a->prep);
		a->prep = NULL;
	}
	/* Deliberate fix: the tile owning the centroid always gets a copy,
	 * even when a concave polygon does not touch it, so that centroid
	 * counts are conserved. */
	if (!rc && a->rows && a->has_ctile && !a->ctile_done)
		rc = emit_rec(a, a->ctile.x, a->ctile.y, r);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Features */

static double field_value(OGRFeatureH f, int idx, int type, bool *null)
{
	const char *s;
	char *end;
	double v;

	*null = false;
	if (!OGR_F_IsFieldSetAndNotNull(f, idx))
		goto null;
	switch (type) {
	case OFTInteger:
	case OFTInteger64:
	case OFTReal:
		return OGR_F_GetFieldAsDouble(f, idx);
	case OFTString:
		s = OGR_F_GetFieldAsString(f, idx);
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			goto null;
		v = strtod(s, &end);
		while (*end == ' ' || *end == '\t')
			end++;
		if (*end || end == s)
			goto null;
		return v;
	default:
		break;
	}
null:
	*null = true;
	return NAN;
}

static void read_attrs(struct vz_stager *st, OGRFeatureH f,
		       struct vz_stage_stats *stats)
{
	for (size_t a = 0; a < st->c->n_attrs; a++) {
		bool null;
		st->attrs[a] = field_value(f, st->src.attr_idx[a],
					   st->src.attr_type[a], &null);
		if (null)
			stats->null_attrs++;
	}
}

/* Stage one polygon part (input CRS, closed rings in st->r_in). */
static int stage_part(struct vz_stager *st, GEOSGeometry *p, struct assign *a,
		      uint32_t *part, struct vz_stage_stats *stats,
		      struct okbuf *ok)
{
	GEOSContextHandle_t h = st->geos;
	GEOSGeometry *q = p, *t = NULL, *cen = NULL;
	struct rings *r = &st->r_in;
	bool dropped = false;
	int rc = 0;

	if (st->c->has_simplify) {
		q = GEOSTopologyPreserveSimplify_r(h, p,
						   st->c->simplify_tolerance);
		if (!q) {
			stats->skipped_invalid++;
			return 0;
		}
	}
	if (GEOSisEmpty_r(h, q) != 0 ||
	    GEOSGeomTypeId_r(h, q) != GEOS_POLYGON) {
		stats->skipped_empty++;
		goto out;
	}
	rc = rings_from_geos(st, r, q);
	if (rc)
		goto out;
	rc = transform_rings(st->src.xf, r, ok);
	if (rc == 1) {
		stats->skipped_outside++;
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	if (st->src.xf->ct) {
		t = poly_from_rings(st, r, &dropped);
		if (!t) {
			stats->skipped_invalid++;
			goto out;
		}
	}
	{
		const GEOSGeometry *tg = t ? t : q;
		double area = 0, cx, cy;

		cen = GEOSGetCentroid_r(h, tg);
		if (!cen || GEOSisEmpty_r(h, cen) != 0 ||
		    !GEOSGeomGetX_r(h, cen, &cx) ||
		    !GEOSGeomGetY_r(h, cen, &cy) || !GEOSArea_r(h, tg, &area) ||
		    !isfinite(cx) || !isfinite(cy)) {
			stats->skipped_invalid++;
			goto out;
		}
		a->rec.poly.cx = cx;
		a->rec.poly.cy = cy;
		a->rec.poly.area = area;
		a->rec.part = *part;
		rc = assign_poly(a, (GEOSGeometry *)tg, r);
		if (rc)
			goto out;
		if (a->rows) {
			stats->polygons++;
			stats->rows += a->rows;
			(*part)++;
		} else {
			stats->skipped_outside++;
		}
	}
out:
	if (cen)
		GEOSGeom_destroy_r(h, cen);
	if (t)
		GEOSGeom_destroy_r(h, t);
	if (q != p)
		GEOSGeom_destroy_r(h, q);
	return rc;
}

static int stage_feature(struct vz_stager *st, OGRFeatureH f, uint32_t idx,
			 struct vz_stage_stats *stats, struct okbuf *ok)
{
	GEOSContextHandle_t h = st->geos;
	OGRGeometryH g = OGR_F_GetGeometryRef(f), lin = NULL;
	OGRGeometryH parts_small[8], *parts = parts_small;
	size_t n = 0, staged_before = stats->polygons;
	uint32_t part = 0;
	struct assign a;
	int rc = 0;

	stats->features++;
	if (!g || OGR_G_IsEmpty(g)) {
		stats->skipped_empty++;
		return 0;
	}
	if (OGR_GT_IsNonLinear(OGR_G_GetGeometryType(g))) {
		lin = OGR_G_GetLinearGeometry(g, 0, NULL);
		if (!lin) {
			stats->skipped_invalid++;
			return 0;
		}
		g = lin;
	}
	collect_ogr(g, parts, &n, VZ_ARRAY_SIZE(parts_small), 0);
	if (n > VZ_ARRAY_SIZE(parts_small)) {
		size_t m = 0;
		parts = malloc(n * sizeof *parts);
		if (!parts) {
			rc = -ENOMEM;
			goto out;
		}
		collect_ogr(g, parts, &m, n, 0);
	}
	if (n == 0) {
		stats->skipped_type++;
		goto out;
	}
	if (wkbFlatten(OGR_G_GetGeometryType(g)) != wkbPolygon)
		stats->multi_exploded++;
	read_attrs(st, f, stats);
	memset(&a, 0, sizeof a);
	a.st = st;
	a.rec.fid = OGR_F_GetFID(f);
	a.rec.input = idx;
	a.rec.poly.attrs = st->attrs;
	for (size_t i = 0; i < n && !rc; i++) {
		struct geom_list valid = {0};
		bool dropped = false;
		GEOSGeometry *p;
		char v;

		rc = rings_from_ogr(&st->r_in, parts[i]);
		if (rc == 1) {
			stats->skipped_invalid++;
			rc = 0;
			continue;
		}
		if (rc)
			break;
		if (st->r_in.n_rings == 0) {
			stats->skipped_empty++;
			continue;
		}
		p = poly_from_rings(st, &st->r_in, &dropped);
		if (!p) {
			stats->skipped_invalid++;
			continue;
		}
		v = dropped ? 0 : GEOSisValid_r(h, p);
		if (v == 1) {
			rc = stage_part(st, p, &a, &part, stats, ok);
			GEOSGeom_destroy_r(h, p);
			continue;
		}
		{
			GEOSGeometry *mv = GEOSMakeValid_r(h, p);
			GEOSGeom_destroy_r(h, p);
			if (mv) {
				rc = collect_polys(h, mv, &valid);
				GEOSGeom_destroy_r(h, mv);
			}
		}
		if (!rc && valid.n == 0)
			stats->skipped_invalid++;
		else if (!rc)
			stats->repaired++;
		for (size_t j = 0; j < valid.n && !rc; j++)
			rc = stage_part(st, valid.v[j], &a, &part, stats, ok);
		glist_free(h, &valid);
	}
	(void)staged_before;
out:
	if (parts != parts_small)
		free(parts);
	if (lin)
		OGR_G_DestroyGeometry(lin);
	return rc;
}

static int emit_all(struct vz_stager *st, uint32_t idx, uint64_t start,
		    vz_stage_emit_fn emit, void *ud)
{
	struct tile_map *m = &st->map;
	int rc = 0;

	if (m->n > 1)
		qsort(m->slots, m->n, sizeof m->slots[0], cmp_slot);
	for (size_t i = 0; i < m->n && !rc; i++) {
		struct vz_tile_key k = {m->slots[i].x, m->slots[i].y,
					(uint8_t)st->c->z_max};
		rc = emit(ud, &k, idx, start, &m->slots[i].blob);
	}
	/* The hash now points at the wrong slots: drop everything. */
	map_reset(m);
	return rc;
}

/* Position the open layer at ordinal @p start for reading @p count
 * features; *skip = features still to skip by hand.  @return 0, 1 when
 * there is nothing to read, or an error. */
static int src_seek(struct vz_stager *st, uint64_t start, uint64_t count,
		    uint64_t *skip)
{
	struct src *s = &st->src;

	*skip = 0;
	if (count == 0 ||
	    (s->n_features >= 0 && start >= (uint64_t)s->n_features))
		return 1;
	if (s->fid_contig < 0)
		s->fid_contig = fid_contiguity(st, s);
	if (s->fid_contig == 1) {
		char filter[512];
		snprintf(filter, sizeof filter,
			 "\"%s\" >= %llu AND \"%s\" <= %llu", s->fid_col,
			 (unsigned long long)start + 1, s->fid_col,
			 (unsigned long long)(start + count));
		if (OGR_L_SetAttributeFilter(s->layer, filter) != OGRERR_NONE)
			s->fid_contig = 0;
	} else if (s->fid_contig == 2 && start > 0) {
		/* FIDs with gaps: start at the FID of ordinal @start and read
		 * @count features in FID order from there. */
		char filter[512];
		int64_t fid0 = 0;
		int r = gpkg_fid_at(s, start, &fid0);
		if (r == -ENOENT)
			return 1;
		snprintf(filter, sizeof filter, "\"%s\" >= %lld", s->fid_col,
			 (long long)fid0);
		if (r ||
		    OGR_L_SetAttributeFilter(s->layer, filter) != OGRERR_NONE)
			s->fid_contig = 0;
	}
	if (s->fid_contig == 0 && start > 0 &&
	    OGR_L_SetNextByIndex(s->layer, (GIntBig)start) != OGRERR_NONE) {
		OGR_L_ResetReading(s->layer);
		*skip = start;
	}
	return 0;
}

void vz_stager_set_filter(struct vz_stager *st, const uint8_t *need)
{
	st->need = need;
}

int vz_stage_range(struct vz_stager *st, const struct vz_input *in,
		   uint32_t idx, uint64_t start, uint64_t count,
		   vz_stage_emit_fn emit, void *ud,
		   struct vz_stage_stats *stats)
{
	struct src *s = &st->src;
	struct okbuf ok = {0};
	uint64_t done = 0, skip = 0;
	OGRFeatureH f;
	int rc;

	guard_begin(st);
	map_reset(&st->map);
	rc = src_open(st, in->path);
	if (!rc)
		rc = src_crs(st, false);
	if (!rc)
		rc = src_attrs(st, true);
	if (rc)
		goto out;
	rc = src_seek(st, start, count, &skip);
	if (rc) {
		rc = rc > 0 ? 0 : rc; /* 1: nothing to read */
		goto out;
	}
	st->cpl_failed = false;
	while (done < count && (f = OGR_L_GetNextFeature(s->layer))) {
		if (skip) {
			skip--;
			OGR_F_Destroy(f);
			continue;
		}
		if (st->need && !(st->need[done >> 3] & (1u << (done & 7)))) {
			/* a sharded build: no tile of this shard needs it */
			OGR_F_Destroy(f);
			done++;
			continue;
		}
		rc = stage_feature(st, f, idx, stats, &ok);
		OGR_F_Destroy(f);
		done++;
		if (rc) {
			if (rc != -ENOMEM)
				vz_err_prefix(
					"%s: feature %llu", in->path,
					(unsigned long long)(start + done - 1));
			goto out;
		}
	}
	if (st->cpl_failed) {
		vz_err_set("%s: read error after feature %llu: %s", in->path,
			   (unsigned long long)(start + done), st->cpl_msg);
		rc = VZ_E_INPUT;
		goto out;
	}
	rc = emit_all(st, idx, start, emit, ud);
out:
	if (s->layer)
		OGR_L_SetAttributeFilter(s->layer, NULL);
	map_reset(&st->map);
	okbuf_free(&ok);
	guard_end(st);
	return rc;
}

int vz_stage_envelopes(struct vz_stager *st, const struct vz_input *in,
		       uint64_t start, uint64_t count, vz_envelope_fn fn,
		       void *ud)
{
	struct src *s = &st->src;
	uint64_t done = 0, skip = 0;
	const char *ignore[] = {"OGR_STYLE", NULL};
	OGRFeatureH f;
	int rc;

	guard_begin(st);
	rc = src_open(st, in->path);
	if (!rc)
		rc = src_crs(st, false);
	if (rc)
		goto out;
	rc = src_seek(st, start, count, &skip);
	if (rc) {
		rc = rc > 0 ? 0 : rc;
		goto out;
	}
	/* Attributes are not needed here: read geometry only. */
	{
		OGRFeatureDefnH fd = OGR_L_GetLayerDefn(s->layer);
		int nf = OGR_FD_GetFieldCount(fd);
		const char **names = calloc((size_t)nf + 2, sizeof *names);
		if (names) {
			for (int i = 0; i < nf; i++)
				names[i] = OGR_Fld_GetNameRef(
					OGR_FD_GetFieldDefn(fd, i));
			names[nf] = ignore[0];
			OGR_L_SetIgnoredFields(s->layer, names);
			free(names);
		}
	}
	while (done < count && (f = OGR_L_GetNextFeature(s->layer))) {
		OGRGeometryH g = OGR_F_GetGeometryRef(f);
		OGREnvelope e;
		if (skip) {
			skip--;
			OGR_F_Destroy(f);
			continue;
		}
		if (g && !OGR_G_IsEmpty(g)) {
			double x[9], y[9];
			struct vz_bbox b = {INFINITY, INFINITY, -INFINITY,
					    -INFINITY};
			int n = 0, ok[9];
			OGR_G_GetEnvelope(g, &e);
			/* corners, edge midpoints and the centre */
			for (int i = 0; i < 3; i++)
				for (int j = 0; j < 3; j++) {
					x[n] = e.MinX + (e.MaxX - e.MinX) * i / 2;
					y[n] = e.MinY + (e.MaxY - e.MinY) * j / 2;
					n++;
				}
			if (s->xf && s->xf->ct)
				OCTTransformEx(s->xf->ct, n, x, y, NULL, ok);
			else
				for (int i = 0; i < n; i++)
					ok[i] = 1;
			for (int i = 0; i < n; i++) {
				if (!ok[i] || !isfinite(x[i]) || !isfinite(y[i]))
					continue;
				b.left = fmin(b.left, x[i]);
				b.right = fmax(b.right, x[i]);
				b.bottom = fmin(b.bottom, y[i]);
				b.top = fmax(b.top, y[i]);
			}
			if (b.left <= b.right)
				rc = fn(ud, start + done, &b);
		}
		OGR_F_Destroy(f);
		done++;
		if (rc)
			break;
	}
out:
	if (s->layer) {
		OGR_L_SetAttributeFilter(s->layer, NULL);
		OGR_L_SetIgnoredFields(s->layer, NULL);
	}
	guard_end(st);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Pre-staged tiles */

int vz_stage_prestaged(struct vz_stager *st, const struct vz_input *in,
		       uint32_t idx, struct vz_buf *blob,
		       struct vz_stage_stats *stats)
{
	GEOSContextHandle_t h = st->geos;
	struct src *s = &st->src;
	struct okbuf ok = {0};
	OGRFeatureDefnH fd;
	OGRFeatureH f;
	int rc;

	guard_begin(st);
	rc = src_open(st, in->path);
	if (!rc)
		rc = src_crs(st, true);
	if (!rc)
		rc = src_attrs(st, false);
	if (rc)
		goto out;
	if (blob->len == 0) {
		rc = vz_staged_begin(blob, (uint32_t)st->c->n_attrs);
		if (rc)
			goto out;
	}
	fd = OGR_L_GetLayerDefn(s->layer);
	s->idx_cx = OGR_FD_GetFieldIndex(fd, "staging_centroid_x");
	s->idx_cy = OGR_FD_GetFieldIndex(fd, "staging_centroid_y");
	s->idx_area = OGR_FD_GetFieldIndex(fd, "staging_area");
	st->cpl_failed = false;
	while (!rc && (f = OGR_L_GetNextFeature(s->layer))) {
		OGRGeometryH g = OGR_F_GetGeometryRef(f), parts[1];
		OGRwkbGeometryType t;
		int np = 1;

		stats->features++;
		t = g ? wkbFlatten(OGR_G_GetGeometryType(g)) : wkbUnknown;
		if (!g || OGR_G_IsEmpty(g)) {
			stats->skipped_empty++;
			OGR_F_Destroy(f);
			continue;
		}
		if (t == wkbMultiPolygon) {
			np = OGR_G_GetGeometryCount(g);
			stats->multi_exploded++;
		} else if (t != wkbPolygon) {
			stats->skipped_type++;
			OGR_F_Destroy(f);
			continue;
		}
		read_attrs(st, f, stats);
		for (int i = 0; i < np && !rc; i++) {
			struct vz_staged_rec rec = {0};
			bool cols = np == 1 && !s->xf->ct, dropped = false;
			GEOSGeometry *p = NULL;
			bool null;

			parts[0] = t == wkbPolygon ? g :
						     OGR_G_GetGeometryRef(g, i);
			rc = rings_from_ogr(&st->r_in, parts[0]);
			if (rc == 1 || (!rc && st->r_in.n_rings == 0)) {
				if (rc)
					stats->skipped_invalid++;
				else
					stats->skipped_empty++;
				rc = 0;
				continue;
			}
			if (rc)
				break;
			rc = transform_rings(s->xf, &st->r_in, &ok);
			if (rc == 1) {
				stats->skipped_outside++;
				rc = 0;
				continue;
			}
			if (rc)
				break;
			rec.poly.cx = rec.poly.cy = rec.poly.area = NAN;
			if (cols && s->idx_cx >= 0 && s->idx_cy >= 0) {
				rec.poly.cx = field_value(f, s->idx_cx, OFTReal,
							  &null);
				if (!null)
					rec.poly.cy = field_value(
						f, s->idx_cy, OFTReal, &null);
				if (null)
					rec.poly.cx = rec.poly.cy = NAN;
			}
			if (cols && s->idx_area >= 0)
				rec.poly.area = field_value(f, s->idx_area,
							    OFTReal, &null);
			if (isnan(rec.poly.cx) || isnan(rec.poly.area)) {
				GEOSGeometry *c;
				double x = NAN, y = NAN, ar = NAN;

				p = poly_from_rings(st, &st->r_in, &dropped);
				c = p ? GEOSGetCentroid_r(h, p) : NULL;
				if (c && !GEOSisEmpty_r(h, c)) {
					GEOSGeomGetX_r(h, c, &x);
					GEOSGeomGetY_r(h, c, &y);
				}
				if (c)
					GEOSGeom_destroy_r(h, c);
				if (p)
					GEOSArea_r(h, p, &ar);
				if (isnan(rec.poly.cx)) {
					rec.poly.cx = x;
					rec.poly.cy = y;
				}
				if (isnan(rec.poly.area))
					rec.poly.area = ar;
				if (p)
					GEOSGeom_destroy_r(h, p);
			}
			if (!isfinite(rec.poly.cx) || !isfinite(rec.poly.cy) ||
			    !isfinite(rec.poly.area)) {
				stats->skipped_invalid++;
				continue;
			}
			rec.poly.attrs = st->attrs;
			rec.poly.n_rings = (uint32_t)st->r_in.n_rings;
			rec.poly.ring_len = st->r_in.len;
			rec.poly.xy = st->r_in.xy;
			rec.fid = OGR_F_GetFID(f);
			rec.input = idx;
			rec.part = (uint32_t)i;
			rc = vz_staged_append(blob, &rec);
			if (!rc) {
				stats->polygons++;
				stats->rows++;
			}
		}
		OGR_F_Destroy(f);
	}
	if (!rc && st->cpl_failed) {
		vz_err_set("%s: read error: %s", in->path, st->cpl_msg);
		rc = VZ_E_INPUT;
	}
out:
	okbuf_free(&ok);
	guard_end(st);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Writing PDG staged GeoPackages */

static void tile_str(char *buf, size_t n, const struct vz_tile_key *k)
{
	snprintf(buf, n, "Tile(x=%u, y=%u, z=%u)", k->x, k->y, k->z);
}

/* Deterministic identifier (deliberately not the PDG's random uuid4). */
static void identifier(char out[37], const char *relname, int64_t fid,
		       uint32_t part)
{
	struct vz_hash hs;
	char hex[33];

	vz_hash_init(&hs);
	vz_hash_str(&hs, relname);
	vz_hash_u64(&hs, (uint64_t)fid);
	vz_hash_u64(&hs, part);
	vz_hash_hex(&hs, hex);
	hex[12] = '8'; /* UUID version 8: custom */
	hex[16] = "89ab"[hex[16] % 4];
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
		 hex + 16, hex + 20);
}

/* Create the parent directories of @p path (through VSI, so that /vsimem/
 * paths stay in memory). */
static int mkdirs_for(const char *path)
{
	char *p = strdup(path), *slash;
	VSIStatBufL sb;
	int rc = 0;

	if (!p)
		return -ENOMEM;
	slash = strrchr(p, '/');
	if (slash && slash != p) {
		*slash = '\0';
		if (VSIStatL(p, &sb) != 0 && VSIMkdirRecursive(p, 0777) != 0)
			rc = -EIO;
	}
	free(p);
	return rc;
}

static OGRGeometryH ogr_poly(const struct vz_poly *p)
{
	OGRGeometryH g = OGR_G_CreateGeometry(wkbPolygon);
	size_t off = 0;

	if (!g)
		return NULL;
	for (uint32_t i = 0; i < p->n_rings; i++) {
		OGRGeometryH r = OGR_G_CreateGeometry(wkbLinearRing);
		const double *xy = p->xy + 2 * off;
		if (!r) {
			OGR_G_DestroyGeometry(g);
			return NULL;
		}
		OGR_G_SetPoints(r, (int)p->ring_len[i], xy, 2 * sizeof(double),
				xy + 1, 2 * sizeof(double), NULL, 0);
		off += p->ring_len[i];
		OGR_G_AddGeometryDirectly(g, r);
	}
	OGR_G_CloseRings(g);
	return g;
}

int vz_stage_write_gpkg(struct vz_stager *st, const char *path,
			const struct vz_tile_key *k,
			const struct vz_inputs *inputs,
			const struct vz_buf *blobs, size_t n)
{
	static const char *const reals[] = {
		"staging_area", "staging_centroid_x", "staging_centroid_y"};
	static const char *const strs[] = {"staging_filename",
					   "staging_identifier",
					   "staging_centroid_tile",
					   "staging_tile"};
	const struct vz_conf *c = st->c;
	GDALDriverH drv;
	GDALDatasetH ds = NULL;
	OGRSpatialReferenceH srs = NULL;
	OGRLayerH layer;
	OGRFeatureH feat = NULL;
	char lname[16], ktile[64], ctile[64], ident[37];
	int base, rc = 0;
	VSIStatBufL sb;
	/* staging_duplicated: only with a dedup method, as in the PDG; with
	 * 'staging' in deduplicate_at the flagged rows are left out (§2.5) */
	bool dedup = vz_dedup_enabled(c) && !inputs->prestaged;
	bool drop_dups = dedup && vz_dedup_removes_staged(c);
	struct vz_buf dup = {0};
	size_t ri = 0;

	if (dedup && (rc = vz_dedup_tile(c, k, inputs, blobs, n, &dup)))
		return rc;
	guard_begin(st);
	if (mkdirs_for(path) != 0) {
		vz_err_set("%s: cannot create parent directory", path);
		rc = VZ_E_ENCODE;
		goto out;
	}
	if (VSIStatL(path, &sb) == 0 && VSIUnlink(path) != 0) {
		vz_err_set("%s: cannot replace: %s", path, strerror(errno));
		rc = VZ_E_ENCODE;
		goto out;
	}
	drv = GDALGetDriverByName("GPKG");
	srs = vz_srs_from(c->tms->kind == VZ_TMS_WORLDCRS84QUAD ? "OGC:CRS84" :
							       c->tms->crs);
	if (!drv || !srs) {
		vz_err_set("%s: GPKG driver or TMS CRS unavailable", path);
		rc = VZ_E_ENCODE;
		goto out;
	}
	ds = GDALCreate(drv, path, 0, 0, 0, GDT_Unknown, NULL);
	if (!ds) {
		vz_err_set("%s: cannot create: %s", path, st->cpl_msg);
		rc = VZ_E_ENCODE;
		goto out;
	}
	snprintf(lname, sizeof lname, "%u", k->y);
	layer = GDALDatasetCreateLayer(ds, lname, srs, wkbPolygon, NULL);
	if (!layer)
		goto fail;
	for (size_t a = 0; a < c->n_attrs; a++) {
		OGRFieldDefnH fl = OGR_Fld_Create(c->attrs[a], OFTReal);
		OGRErr e = OGR_L_CreateField(layer, fl, TRUE);
		OGR_Fld_Destroy(fl);
		if (e != OGRERR_NONE)
			goto fail;
	}
	for (size_t i = 0; i < VZ_ARRAY_SIZE(reals) + VZ_ARRAY_SIZE(strs) + 1;
	     i++) {
		OGRFieldDefnH fl;
		OGRErr e;
		if (i < 3)
			fl = OGR_Fld_Create(reals[i], OFTReal);
		else if (i < 7)
			fl = OGR_Fld_Create(strs[i - 3], OFTString);
		else {
			fl = OGR_Fld_Create("staging_centroid_within_tile",
					    OFTInteger);
			OGR_Fld_SetSubType(fl, OFSTBoolean);
		}
		e = OGR_L_CreateField(layer, fl, TRUE);
		OGR_Fld_Destroy(fl);
		if (e != OGRERR_NONE)
			goto fail;
	}
	if (dedup) {
		OGRFieldDefnH fl = OGR_Fld_Create("staging_duplicated",
						  OFTInteger);
		OGRErr e;

		OGR_Fld_SetSubType(fl, OFSTBoolean);
		e = OGR_L_CreateField(layer, fl, TRUE);
		OGR_Fld_Destroy(fl);
		if (e != OGRERR_NONE)
			goto fail;
	}
	base = (int)c->n_attrs;
	feat = OGR_F_Create(OGR_L_GetLayerDefn(layer));
	if (!feat || GDALDatasetStartTransaction(ds, FALSE) != OGRERR_NONE)
		goto fail;
	tile_str(ktile, sizeof ktile, k);
	for (size_t b = 0; b < n; b++) {
		struct vz_staged_iter it;
		struct vz_staged_rec r;
		int more;

		if (blobs[b].len == 0)
			continue;
		rc = vz_staged_iter_init(&it, blobs[b].data, blobs[b].len);
		if (rc)
			goto rollback;
		if (it.n_attrs != c->n_attrs) {
			vz_err_set("staged blob has %u attributes, config %zu",
				   it.n_attrs, c->n_attrs);
			rc = VZ_E_CACHE;
			goto rollback;
		}
		while ((more = vz_staged_next(&it, &r)) == 1) {
			const char *rel = r.input < inputs->n ?
						  inputs->v[r.input].relname :
						  "";
			struct vz_tile_key ck;
			bool has_ck, is_dup = false;
			OGRGeometryH g;

			if (dedup)
				is_dup = ri < dup.len && dup.data[ri++];
			if (drop_dups && is_dup)
				continue;
			if (dedup)
				OGR_F_SetFieldInteger(feat, base + 8, is_dup);
			has_ck = vz_tms_point_tile(c->tms, k->z, r.poly.cx,
						   r.poly.cy, &ck) == 0;
			if (has_ck)
				tile_str(ctile, sizeof ctile, &ck);
			identifier(ident, rel, r.fid, r.part);
			for (size_t a = 0; a < c->n_attrs; a++) {
				if (isnan(r.poly.attrs[a]))
					OGR_F_SetFieldNull(feat, (int)a);
				else
					OGR_F_SetFieldDouble(feat, (int)a,
							     r.poly.attrs[a]);
			}
			OGR_F_SetFieldDouble(feat, base, r.poly.area);
			OGR_F_SetFieldDouble(feat, base + 1, r.poly.cx);
			OGR_F_SetFieldDouble(feat, base + 2, r.poly.cy);
			OGR_F_SetFieldString(feat, base + 3, rel);
			OGR_F_SetFieldString(feat, base + 4, ident);
			if (has_ck)
				OGR_F_SetFieldString(feat, base + 5, ctile);
			else
				OGR_F_SetFieldNull(feat, base + 5);
			OGR_F_SetFieldString(feat, base + 6, ktile);
			OGR_F_SetFieldInteger(feat, base + 7,
					      has_ck && ck.x == k->x &&
						      ck.y == k->y);
			g = ogr_poly(&r.poly);
			if (!g) {
				rc = -ENOMEM;
				goto rollback;
			}
			OGR_F_SetGeometryDirectly(feat, g);
			OGR_F_SetFID(feat, OGRNullFID);
			if (OGR_L_CreateFeature(layer, feat) != OGRERR_NONE) {
				vz_err_set("%s: cannot write feature: %s", path,
					   st->cpl_msg);
				rc = VZ_E_ENCODE;
				goto rollback;
			}
		}
		if (more < 0) {
			rc = more;
			goto rollback;
		}
	}
	if (GDALDatasetCommitTransaction(ds) != OGRERR_NONE)
		goto fail;
	OGR_F_Destroy(feat);
	feat = NULL;
	st->cpl_failed = false;
	GDALClose(ds);
	ds = NULL;
	if (st->cpl_failed)
		goto fail;
	goto out;
rollback:
	GDALDatasetRollbackTransaction(ds);
	goto cleanup;
fail:
	vz_err_set("%s: cannot write staged GeoPackage: %s", path,
		   st->cpl_msg[0] ? st->cpl_msg : "unknown GDAL error");
	rc = VZ_E_ENCODE;
cleanup:
	if (feat)
		OGR_F_Destroy(feat);
	if (ds)
		GDALClose(ds);
	VSIUnlink(path);
out:
	VZ_FREEF(OSRDestroySpatialReference, srs);
	guard_end(st);
	vz_buf_free(&dup);
	return rc;
}
