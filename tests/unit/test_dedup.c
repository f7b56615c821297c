/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of deduplication: neighbor, footprints, footprint clip, config. */
#include "vt.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gdal.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

#include "vizfs/conf.h"
#include "vizfs/dedup.h"
#include "vizfs/geotiff.h"
#include "vizfs/staged.h"

static const char *tmp;
static const struct vz_tile_key tile = {.x = 1, .y = 1, .z = 10};

/* ---- helpers ------------------------------------------------------------ */

static struct vz_conf *conf(const char *json)
{
	struct vz_conf *c = NULL;
	int rc = vz_conf_parse(json, strlen(json), "t.json", tmp, &c);

	if (rc)
		fprintf(stderr, "config failed (%d): %s\n", rc, vz_err_msg());
	VT_EQ_INT(rc, 0);
	return c;
}

/* Parsing must fail naming @p key (and containing @p also). */
static void conf_err(const char *json, const char *key, const char *also)
{
	struct vz_conf *c = NULL;
	int rc = vz_conf_parse(json, strlen(json), "t.json", tmp, &c);

	VT_EQ_INT(rc, VZ_E_CONFIG);
	VT_CHECK(c == NULL);
	if (!strstr(vz_err_msg(), key) ||
	    (also && !strstr(vz_err_msg(), also))) {
		vt_failed++;
		fprintf(stderr, "%s: message '%s' lacks '%s'/'%s'\n", json,
			vz_err_msg(), key, also ? also : "");
	}
	vt_checks++;
	vz_conf_free(c);
}

/* Inputs a.gpkg, b.gpkg, c.gpkg (relnames; no files needed). */
static struct vz_input in_v[3];
static struct vz_inputs inputs = {.v = in_v, .n = 3};

static void inputs_init(void)
{
	static char names[3][16] = {"a.gpkg", "b.gpkg", "sub/c.gpkg"};
	for (int i = 0; i < 3; i++) {
		in_v[i].relname = names[i];
		in_v[i].path = names[i];
	}
}

/* Records of one test tile: up to 8 blobs (any input mix per blob). */
struct recs {
	struct vz_buf blob[8];
	size_t n;
	uint32_t n_attrs;
};

static void recs_init(struct recs *r, uint32_t n_attrs)
{
	memset(r, 0, sizeof *r);
	r->n_attrs = n_attrs;
}

static void recs_free(struct recs *r)
{
	for (size_t i = 0; i < VZ_ARRAY_SIZE(r->blob); i++)
		vz_buf_free(&r->blob[i]);
}

/* Append a rectangle [x0,x1]x[y0,y1] from @p input, feature @p fid, with
 * attribute values @p attrs, to blob @p b. */
static void rect(struct recs *r, size_t b, uint32_t input, int64_t fid,
		 double x0, double y0, double x1, double y1,
		 const double *attrs)
{
	double xy[10] = {x0, y0, x1, y0, x1, y1, x0, y1, x0, y0};
	uint32_t len = 5;
	struct vz_staged_rec rec = {0};

	if (r->blob[b].len == 0)
		vz_staged_begin(&r->blob[b], r->n_attrs);
	if (b + 1 > r->n)
		r->n = b + 1;
	rec.poly.cx = (x0 + x1) / 2;
	rec.poly.cy = (y0 + y1) / 2;
	rec.poly.area = (x1 - x0) * (y1 - y0);
	rec.poly.attrs = attrs;
	rec.poly.n_rings = 1;
	rec.poly.ring_len = &len;
	rec.poly.xy = xy;
	rec.fid = fid;
	rec.input = input;
	VT_EQ_INT(vz_staged_append(&r->blob[b], &rec), 0);
}

/* Set the staged area of the first record of blob @p b (as if the
 * geometry were the part of a polygon of @p area clipped to the tile). */
static void clipped_area(struct recs *r, size_t b, double area)
{
	/* record layout (staged.h): header 8 bytes, then cx, cy, area */
	memcpy(r->blob[b].data + 8 + 2 * sizeof(double), &area, sizeof area);
}

/* Flags of the records as a string of '0'/'1' in record order. */
static const char *flags(const struct vz_conf *c, struct recs *r)
{
	static char out[64];
	struct vz_dedup *d = NULL;
	struct vz_buf f = {0};
	int rc;

	out[0] = '\0';
	rc = vz_dedup_new(c, &d);
	VT_EQ_INT(rc, 0);
	if (rc)
		return out;
	rc = vz_dedup_flags(d, &tile, &inputs, r->blob, r->n, &f);
	if (rc)
		fprintf(stderr, "dedup failed (%d): %s\n", rc, vz_err_msg());
	VT_EQ_INT(rc, 0);
	for (size_t i = 0; i < f.len && i + 1 < sizeof out; i++)
		out[i] = f.data[i] ? '1' : '0';
	out[f.len < sizeof out ? f.len : sizeof out - 1] = '\0';
	vz_buf_free(&f);
	vz_dedup_free(d);
	return out;
}

#define VT_FLAGS(c, r, want)                                                   \
	do {                                                                   \
		const char *got_ = flags(c, r);                                \
		vt_checks++;                                                   \
		if (strcmp(got_, want)) {                                      \
			vt_failed++;                                           \
			fprintf(stderr, "%s:%d: flags %s, expected %s\n",      \
				__FILE__, __LINE__, got_, want);               \
		}                                                              \
	} while (0)

#define NEIGHBOR(extra)                                                        \
	"{\"deduplicate_method\": \"neighbor\", "                              \
	"\"deduplicate_at\": [\"raster\"], "                                   \
	"\"deduplicate_clip_to_footprint\": false, " extra "}"

/* ---- neighbor ----------------------------------------------------------- */

static void test_neighbor_keep_rules(void)
{
	struct vz_conf *c = conf(NEIGHBOR(
		"\"deduplicate_keep_rules\": [[\"Date\", \"larger\"]]"));
	static const double d5[] = {5}, d7[] = {7}, dnan[] = {NAN};
	struct recs r;

	if (!c)
		return;
	VT_EQ_INT(c->n_attrs, 1);
	VT_CHECK(strcmp(c->attrs[0], "Date") == 0);
	VT_EQ_INT(c->keep_rules[0].attr, 0);
	VT_CHECK(vz_dedup_enabled(c) && vz_dedup_removes(c));
	VT_CHECK(!vz_dedup_removes_staged(c));

	/* identical squares in a and b: the larger Date (b) stays; a square
	 * of a overlapping nothing stays */
	recs_init(&r, 1);
	rect(&r, 0, 0, 1, 0, 0, 1, 1, d5);
	rect(&r, 0, 0, 2, 5, 5, 6, 6, d5);
	rect(&r, 1, 1, 1, 0, 0, 1, 1, d7);
	VT_FLAGS(c, &r, "100");
	recs_free(&r);

	/* the same with the smaller Date kept */
	vz_conf_free(c);
	c = conf(NEIGHBOR(
		"\"deduplicate_keep_rules\": [[\"Date\", \"smaller\"]]"));
	recs_init(&r, 1);
	rect(&r, 0, 0, 1, 0, 0, 1, 1, d5);
	rect(&r, 0, 0, 2, 5, 5, 6, 6, d5);
	rect(&r, 1, 1, 1, 0, 0, 1, 1, d7);
	VT_FLAGS(c, &r, "001");
	recs_free(&r);

	/* NaN (NULL) sorts last in both directions: it loses */
	recs_init(&r, 1);
	rect(&r, 0, 0, 1, 0, 0, 1, 1, dnan);
	rect(&r, 1, 1, 1, 0, 0, 1, 1, d7);
	VT_FLAGS(c, &r, "10");
	recs_free(&r);
	vz_conf_free(c);
}

static void test_neighbor_same_file_and_ties(void)
{
	struct vz_conf *c = conf(NEIGHBOR(
		"\"deduplicate_keep_rules\": [[\"Date\", \"larger\"]]"));
	static const double d5[] = {5};
	struct recs r;

	if (!c)
		return;
	/* overlapping polygons of one file are never compared */
	recs_init(&r, 1);
	rect(&r, 0, 0, 1, 0, 0, 1, 1, d5);
	rect(&r, 0, 0, 2, 0, 0, 1, 1, d5);
	rect(&r, 1, 0, 3, 0.1, 0, 1.1, 1, d5);
	VT_FLAGS(c, &r, "000");
	recs_free(&r);

	/* ties: the lower input index stays, whatever the blob order */
	recs_init(&r, 1);
	rect(&r, 0, 1, 9, 0, 0, 1, 1, d5);
	rect(&r, 1, 0, 4, 0, 0, 1, 1, d5);
	VT_FLAGS(c, &r, "10");
	recs_free(&r);
	recs_init(&r, 1);
	rect(&r, 0, 0, 4, 0, 0, 1, 1, d5);
	rect(&r, 1, 1, 9, 0, 0, 1, 1, d5);
	VT_FLAGS(c, &r, "01");
	recs_free(&r);
	/* ... then the lower fid: a's fid 2 and 3 both equal b's polygon */
	recs_init(&r, 1);
	rect(&r, 0, 1, 1, 0, 0, 1, 1, d5);
	rect(&r, 1, 0, 3, 0, 0, 1, 1, d5);
	rect(&r, 1, 0, 2, 0, 0, 1, 1, d5);
	VT_FLAGS(c, &r, "100");
	recs_free(&r);

	/* touching (no polygonal intersection) is not a duplicate */
	recs_init(&r, 1);
	rect(&r, 0, 0, 1, 0, 0, 1, 1, d5);
	rect(&r, 0, 1, 1, 1, 0, 2, 1, d5);
	VT_FLAGS(c, &r, "00");
	recs_free(&r);
	vz_conf_free(c);
}

static void test_neighbor_overlap(void)
{
	struct vz_conf *both = conf(NEIGHBOR(
		"\"deduplicate_keep_rules\": [[\"staging_area\", \"larger\"]]"));
	struct vz_conf *either = conf(NEIGHBOR(
		"\"deduplicate_keep_rules\": [[\"staging_area\", \"larger\"]], "
		"\"deduplicate_overlap_both\": false"));
	struct vz_conf *t2 = conf(NEIGHBOR(
		"\"deduplicate_keep_rules\": [[\"staging_area\", \"larger\"]], "
		"\"deduplicate_overlap_tolerance\": 0.2"));
	struct recs r;

	if (!both || !either || !t2)
		goto out;
	VT_EQ_INT(both->n_attrs, 0);
	VT_EQ_INT(both->keep_rules[0].src, VZ_KEEP_AREA);
	/* a small square inside a big one: ratio 1 for the small, 0.25 for
	 * the big one; 'both' at 0.5 keeps both, 'either' removes the small
	 * one (smaller staging_area) */
	recs_init(&r, 0);
	rect(&r, 0, 0, 1, 0, 0, 2, 2, NULL);
	rect(&r, 1, 1, 1, 0.5, 0.5, 1.5, 1.5, NULL);
	VT_FLAGS(both, &r, "00");
	VT_FLAGS(either, &r, "01");
	/* both ratios exceed 0.2: removed with 'both' too */
	VT_FLAGS(t2, &r, "01");
	recs_free(&r);

	/* equal squares shifted by 40% and 60%: overlap ratio 0.6 / 0.4 */
	recs_init(&r, 0);
	rect(&r, 0, 0, 1, 0, 0, 1, 1, NULL);
	rect(&r, 0, 0, 2, 10, 0, 11, 1, NULL);
	rect(&r, 1, 1, 1, 0.4, 0, 1.4, 1, NULL);
	rect(&r, 1, 1, 2, 10.6, 0, 11.6, 1, NULL);
	VT_FLAGS(both, &r, "0010");
	recs_free(&r);

	/* a large polygon staged clipped to the tile (its staging_area is
	 * 4x the part here) and its duplicate: compared within the tile (the
	 * whole-area ratio would be 0.25); the larger staging_area stays */
	recs_init(&r, 0);
	rect(&r, 0, 0, 1, 0, 0, 1, 1, NULL);
	rect(&r, 1, 1, 1, 0, 0, 1, 1, NULL);
	clipped_area(&r, 0, 4);
	VT_FLAGS(both, &r, "01");
	recs_free(&r);
	/* ... 60% of its part here covered by b: ratios 0.6 and 1 */
	recs_init(&r, 0);
	rect(&r, 0, 0, 1, 0, 0, 1, 1, NULL);
	rect(&r, 1, 1, 1, 0, 0, 0.6, 1, NULL);
	clipped_area(&r, 0, 4);
	VT_FLAGS(both, &r, "01");
	recs_free(&r);
out:
	vz_conf_free(both);
	vz_conf_free(either);
	vz_conf_free(t2);
}

static void test_neighbor_centroid(void)
{
	/* degrees at the equator: 1e-4 deg ~ 11.13 m in EPSG:3857 */
	struct vz_conf *near = conf(NEIGHBOR(
		"\"deduplicate_keep_rules\": [[\"staging_filename\", "
		"\"larger\"]], \"deduplicate_overlap_tolerance\": null, "
		"\"deduplicate_centroid_tolerance\": 12"));
	struct vz_conf *far = conf(NEIGHBOR(
		"\"deduplicate_keep_rules\": [[\"staging_filename\", "
		"\"larger\"]], \"deduplicate_overlap_tolerance\": null, "
		"\"deduplicate_centroid_tolerance\": 10"));
	struct vz_conf *units = conf(NEIGHBOR(
		"\"deduplicate_keep_rules\": [[\"staging_filename\", "
		"\"larger\"]], \"deduplicate_overlap_tolerance\": null, "
		"\"deduplicate_centroid_tolerance\": 0.00011, "
		"\"deduplicate_distance_crs\": null"));
	struct recs r;

	if (!near || !far || !units)
		goto out;
	VT_EQ_INT(near->keep_rules[0].src, VZ_KEEP_FILENAME);
	recs_init(&r, 0);
	rect(&r, 0, 0, 1, 0, 0, 0.001, 0.001, NULL);
	rect(&r, 0, 1, 1, 0.0001, 0, 0.0011, 0.001, NULL);
	/* the larger staging_filename (b.gpkg) stays */
	VT_FLAGS(near, &r, "10");
	VT_FLAGS(far, &r, "00");
	/* null distance CRS: TMS CRS units (degrees) */
	VT_FLAGS(units, &r, "10");
	recs_free(&r);
out:
	vz_conf_free(near);
	vz_conf_free(far);
	vz_conf_free(units);
}

static void test_neighbor_three_files(void)
{
	struct vz_conf *c = conf(NEIGHBOR(
		"\"deduplicate_keep_rules\": [[\"Date\", \"larger\"]]"));
	static const double d1[] = {1}, d2[] = {2}, d3[] = {3};
	struct recs r;

	if (!c)
		return;
	/* a(3) beats b(2) beats c(1) on one spot: only a stays.  On a
	 * second spot b(2) meets c(3): c stays. */
	recs_init(&r, 1);
	rect(&r, 0, 2, 1, 0, 0, 1, 1, d1);
	rect(&r, 0, 2, 2, 5, 5, 6, 6, d3);
	rect(&r, 1, 1, 1, 0, 0, 1, 1, d2);
	rect(&r, 1, 1, 2, 5, 5, 6, 6, d2);
	rect(&r, 2, 0, 1, 0, 0, 1, 1, d3);
	VT_FLAGS(c, &r, "10110");
	recs_free(&r);

	/* a polygon removed in pair (a, b) takes no part in (b, c): b loses
	 * to a (overlap 0.6), so c, which b would beat (overlap 0.6), stays;
	 * a and c overlap only 0.2 */
	recs_init(&r, 1);
	rect(&r, 0, 0, 1, 0, 0, 1, 1, d3);
	rect(&r, 0, 1, 1, 0.4, 0, 1.4, 1, d2);
	rect(&r, 0, 2, 1, 0.8, 0, 1.8, 1, d1);
	VT_FLAGS(c, &r, "010");
	recs_free(&r);
	vz_conf_free(c);
}

/* ---- footprints --------------------------------------------------------- */

/* Write a footprint GeoPackage with one rectangle row per (box, date). */
static void footprint(const char *rel, int epsg, const double *boxes,
		      const char *const *dates, int n)
{
	char path[1024], dir[1024], *slash;
	GDALDriverH drv = GDALGetDriverByName("GPKG");
	OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
	GDALDatasetH ds;
	OGRLayerH l;
	OGRFieldDefnH fl;

	snprintf(path, sizeof path, "%s/footprints/%s", tmp, rel);
	snprintf(dir, sizeof dir, "%s", path);
	slash = strrchr(dir, '/');
	*slash = '\0';
	mkdir(dir, 0777);
	OSRImportFromEPSG(srs, epsg);
	OSRSetAxisMappingStrategy(srs, OAMS_TRADITIONAL_GIS_ORDER);
	ds = GDALCreate(drv, path, 0, 0, 0, GDT_Unknown, NULL);
	VT_CHECK(ds != NULL);
	if (!ds)
		return;
	l = GDALDatasetCreateLayer(ds, "fp", srs, wkbPolygon, NULL);
	fl = OGR_Fld_Create("Date", OFTString);
	OGR_L_CreateField(l, fl, TRUE);
	OGR_Fld_Destroy(fl);
	for (int i = 0; i < n; i++) {
		const double *b = boxes + 4 * i;
		OGRFeatureH f = OGR_F_Create(OGR_L_GetLayerDefn(l));
		OGRGeometryH g = OGR_G_CreateGeometry(wkbPolygon);
		OGRGeometryH ring = OGR_G_CreateGeometry(wkbLinearRing);
		double x[5] = {b[0], b[2], b[2], b[0], b[0]};
		double y[5] = {b[1], b[1], b[3], b[3], b[1]};

		for (int k = 0; k < 5; k++)
			OGR_G_AddPoint_2D(ring, x[k], y[k]);
		OGR_G_AddGeometryDirectly(g, ring);
		OGR_F_SetGeometryDirectly(f, g);
		OGR_F_SetFieldString(f, 0, dates[i]);
		VT_EQ_INT(OGR_L_CreateFeature(l, f), OGRERR_NONE);
		OGR_F_Destroy(f);
	}
	GDALClose(ds);
	OSRDestroySpatialReference(srs);
}

#define FOOTPRINTS(extra)                                                      \
	"{\"deduplicate_method\": \"footprints\", "                            \
	"\"deduplicate_at\": [\"staging\"], "                                  \
	"\"deduplicate_keep_rules\": [[\"Date\", \"larger\"]], " extra "}"

static void test_footprints(void)
{
	/* a: [0,2]x[0,2] dated 2020 (two rows, the later wins), in EPSG:3857
	 * metres to exercise the reprojection; b: [1,3]x[0,2] dated 2021 */
	static const double box_a[] = {0, 0, 1, 2, 1, 0, 2, 2};
	static const char *const date_a[] = {"2019-01-01", "2020-06-01"};
	static const double box_b[] = {1, 0, 3, 2};
	static const char *const date_b[] = {"2021-01-01"};
	double m[8];
	struct vz_conf *c, *old, *clip;
	struct recs r;

	/* degrees -> EPSG:3857 metres (spherical Mercator) */
	for (int i = 0; i < 8; i += 2) {
		m[i] = box_a[i] * 6378137.0 * M_PI / 180;
		m[i + 1] = 6378137.0 *
			   log(tan(M_PI / 4 + box_a[i + 1] * M_PI / 360));
	}
	footprint("a.gpkg", 3857, m, date_a, 2);
	footprint("b.gpkg", 4326, box_b, date_b, 1);
	c = conf(FOOTPRINTS("\"deduplicate_clip_to_footprint\": false"));
	old = conf("{\"deduplicate_method\": \"footprints\", "
		   "\"deduplicate_keep_rules\": [[\"Date\", \"smaller\"]], "
		   "\"deduplicate_clip_to_footprint\": false}");
	clip = conf(FOOTPRINTS("\"deduplicate_clip_to_footprint\": true"));
	if (!c || !old || !clip)
		goto out;
	VT_CHECK(vz_dedup_removes_staged(c));
	/* footprint keep rules do not add staged attributes */
	VT_EQ_INT(c->n_attrs, 0);

	recs_init(&r, 0);
	rect(&r, 0, 0, 1, 0.2, 0.2, 0.4, 0.4, NULL); /* a, outside overlap */
	rect(&r, 0, 0, 2, 1.2, 0.2, 1.4, 0.4, NULL); /* a, in the overlap */
	rect(&r, 0, 0, 3, 0.9, 1.2, 1.1, 1.4, NULL); /* a, crossing into it */
	rect(&r, 1, 1, 1, 1.2, 0.2, 1.4, 0.4, NULL); /* b, in the overlap */
	rect(&r, 1, 1, 2, 2.5, 0.2, 2.7, 0.4, NULL); /* b, outside */
	/* b (2021) is preferred: a loses what touches [1,2]x[0,2] */
	VT_FLAGS(c, &r, "01100");
	/* 'smaller' prefers a: b loses its polygon in the overlap */
	VT_FLAGS(old, &r, "00010");
	recs_free(&r);

	/* clip (default on): a polygon of b outside b's footprint is flagged;
	 * c has no footprint file: warned about, never flagged */
	recs_init(&r, 0);
	rect(&r, 0, 1, 1, 5, 5, 6, 6, NULL);	     /* b, outside */
	rect(&r, 0, 1, 2, 2.5, 0.2, 2.7, 0.4, NULL); /* b, inside */
	rect(&r, 1, 2, 1, 1.2, 0.2, 1.4, 0.4, NULL); /* c */
	rect(&r, 1, 2, 2, 50, 50, 51, 51, NULL);     /* c */
	VT_FLAGS(clip, &r, "1000");
	recs_free(&r);
out:
	vz_conf_free(c);
	vz_conf_free(old);
	vz_conf_free(clip);
}

/* A context notices a footprint file that changed (or appeared). */
static void test_footprint_change(void)
{
	static const double box_b[] = {1, 0, 2, 2};
	static const double box_c[] = {0, 0, 100, 100};
	static const char *const date[] = {"2021-01-01"};
	struct vz_conf *c = conf(FOOTPRINTS("\"deduplicate_at\": null"));
	struct vz_conf *c2 = NULL, *c3 = NULL;
	struct vz_dedup *d = NULL;
	struct vz_buf f = {0};
	char path[1024];
	struct recs r;

	if (!c || vz_dedup_new(c, &d))
		goto out;
	recs_init(&r, 0);
	rect(&r, 0, 0, 1, 1.2, 0.2, 1.4, 0.4, NULL); /* a, in overlap */
	rect(&r, 0, 1, 1, 2.5, 0.2, 2.7, 0.4, NULL); /* b */
	rect(&r, 1, 2, 1, 50, 50, 51, 51, NULL);     /* c, no footprint */
	VT_EQ_INT(vz_dedup_flags(d, &tile, &inputs, r.blob, r.n, &f), 0);
	VT_CHECK(f.len == 3 && f.data[0] && !f.data[1] && !f.data[2]);
	/* the footprint files are part of the config fingerprint */
	c2 = conf(FOOTPRINTS("\"deduplicate_at\": null"));
	VT_CHECK(c2 && strcmp(c->fingerprint, c2->fingerprint) == 0);
	/* b's footprint shrinks to [1,2]: its polygon at x 2.5 is now
	 * outside it; c's footprint appears (tying with b, after it by
	 * name): c's polygon lies outside every overlap and stays */
	snprintf(path, sizeof path, "%s/footprints/b.gpkg", tmp);
	unlink(path);
	usleep(10000);
	footprint("b.gpkg", 4326, box_b, date, 1);
	footprint("sub/c.gpkg", 4326, box_c, date, 1);
	VT_EQ_INT(vz_dedup_flags(d, &tile, &inputs, r.blob, r.n, &f), 0);
	VT_CHECK(f.len == 3 && f.data[0] && f.data[1] && !f.data[2]);
	c3 = conf(FOOTPRINTS("\"deduplicate_at\": null"));
	VT_CHECK(c2 && c3 && strcmp(c2->fingerprint, c3->fingerprint));
	recs_free(&r);
	snprintf(path, sizeof path, "%s/footprints/sub/c.gpkg", tmp);
	unlink(path);
out:
	vz_buf_free(&f);
	vz_dedup_free(d);
	vz_conf_free(c);
	vz_conf_free(c2);
	vz_conf_free(c3);
}

static void test_clip_with_neighbor(void)
{
	/* the clip also runs for 'neighbor' (spec Q21); a clipped polygon
	 * takes no part in the comparison, so b's duplicate of it stays */
	struct vz_conf *c =
		conf("{\"deduplicate_method\": \"neighbor\", "
		     "\"deduplicate_keep_rules\": [[\"staging_filename\", "
		     "\"smaller\"]]}");
	struct recs r;

	if (!c)
		return;
	VT_CHECK(c->clip_to_footprint);
	VT_CHECK(!vz_dedup_removes(c));
	recs_init(&r, 0);
	rect(&r, 0, 0, 1, 2.2, 0.2, 2.4, 0.4, NULL); /* a, outside a's fp */
	rect(&r, 0, 0, 2, 0.2, 0.2, 0.4, 0.4, NULL); /* a, inside */
	rect(&r, 1, 1, 1, 2.2, 0.2, 2.4, 0.4, NULL); /* b, inside b's fp */
	rect(&r, 1, 1, 2, 0.2, 0.2, 0.4, 0.4, NULL); /* b, outside */
	rect(&r, 1, 1, 3, 1.5, 0.2, 1.7, 0.4, NULL); /* b, inside, dup */
	rect(&r, 1, 0, 3, 1.5, 0.2, 1.7, 0.4, NULL); /* a, inside, kept */
	VT_FLAGS(c, &r, "100110");
	recs_free(&r);
	vz_conf_free(c);
}

static void test_footprint_path(void)
{
	struct vz_conf *c = conf("{\"dir_footprints\": \"fp\", "
				 "\"ext_footprints\": \".shp\"}");
	char *p;

	if (!c)
		return;
	p = vz_dedup_footprint_path(c, "x/y/scene.a.gpkg");
	VT_CHECK(p && strstr(p, "/fp/x/y/scene.a.shp") &&
		 strncmp(p, tmp, strlen(tmp)) == 0);
	free(p);
	p = vz_dedup_footprint_path(c, "/.hidden/");
	VT_CHECK(p && strstr(p, "/fp/.hidden.shp"));
	free(p);
	vz_conf_free(c);
}

/* ---- config ------------------------------------------------------------- */

static void test_config(void)
{
	struct vz_conf *a, *b, *n1, *n2;

	conf_err("{\"deduplicate_method\": \"neighbor\"}",
		 "deduplicate_keep_rules", "neighbor");
	conf_err("{\"deduplicate_method\": \"neighbor\", "
		 "\"deduplicate_keep_rules\": []}",
		 "deduplicate_keep_rules", "required");
	conf_err("{\"deduplicate_keep_rules\": [\"Date\"]}",
		 "deduplicate_keep_rules[0]", "pair");
	conf_err("{\"deduplicate_keep_rules\": [[\"Date\", \"bigger\"]]}",
		 "deduplicate_keep_rules[0]", "'larger' or 'smaller'");
	conf_err("{\"deduplicate_keep_rules\": [[1, \"larger\"]]}",
		 "deduplicate_keep_rules[0]", "property");
	conf_err("{\"deduplicate_keep_rules\": [[\"a\", \"larger\", 3]]}",
		 "deduplicate_keep_rules[0]", NULL);
	conf_err("{\"deduplicate_keep_rules\": \"Date\"}",
		 "deduplicate_keep_rules", NULL);
	conf_err("{\"deduplicate_method\": \"neighbor\", "
		 "\"deduplicate_keep_rules\": [[\"staging_tile\", "
		 "\"larger\"]]}",
		 "deduplicate_keep_rules[0]", "staging_tile");
	conf_err("{\"deduplicate_method\": \"neighbors\"}",
		 "deduplicate_method", "'neighbor' or 'footprints'");
	conf_err("{\"deduplicate_at\": [\"rasters\"]}", "deduplicate_at[0]",
		 NULL);
	conf_err("{\"deduplicate_at\": 3}", "deduplicate_at", NULL);
	conf_err("{\"deduplicate_overlap_tolerance\": \"0.5\"}",
		 "deduplicate_overlap_tolerance", NULL);
	conf_err("{\"deduplicate_overlap_both\": 1}",
		 "deduplicate_overlap_both", NULL);
	conf_err("{\"deduplicate_centroid_tolerance\": -1}",
		 "deduplicate_centroid_tolerance", NULL);
	conf_err("{\"deduplicate_clip_to_footprint\": \"yes\"}",
		 "deduplicate_clip_to_footprint", NULL);
	conf_err("{\"deduplicate_method\": \"neighbor\", "
		 "\"deduplicate_keep_rules\": [[\"a\", \"larger\"]], "
		 "\"deduplicate_centroid_tolerance\": 5, "
		 "\"deduplicate_distance_crs\": \"EPSG:999999\"}",
		 "deduplicate_distance_crs", "EPSG:999999");

	/* a bare-string deduplicate_at is ignored (warning), as by the PDG */
	a = conf("{\"deduplicate_method\": \"neighbor\", "
		 "\"deduplicate_keep_rules\": [[\"a\", \"larger\"]], "
		 "\"deduplicate_at\": \"staging\"}");
	if (a) {
		VT_EQ_INT(a->dedup_at, 0);
		VT_CHECK(vz_dedup_enabled(a) && !vz_dedup_removes(a));
	}
	/* keep-rule attributes join the statistic attributes once */
	b = conf("{\"deduplicate_method\": \"neighbor\", "
		 "\"deduplicate_at\": [\"staging\", \"3dtiles\"], "
		 "\"deduplicate_keep_rules\": [[\"x\", \"larger\"], "
		 "[\"Area\", \"smaller\"], [\"staging_centroid_y\", "
		 "\"larger\"]], \"statistics\": [{\"name\": \"s\", "
		 "\"weight_by\": \"area\", \"property\": \"Area\", "
		 "\"aggregation_method\": \"sum\", \"resampling_method\": "
		 "\"sum\"}]}");
	if (b) {
		VT_EQ_INT(b->n_attrs, 2);
		VT_CHECK(!strcmp(b->attrs[0], "Area") &&
			 !strcmp(b->attrs[1], "x"));
		VT_EQ_INT(b->keep_rules[0].attr, 1);
		VT_EQ_INT(b->keep_rules[1].attr, 0);
		VT_EQ_INT(b->keep_rules[2].src, VZ_KEEP_CENTROID_Y);
		VT_EQ_INT(b->dedup_at,
			  VZ_DEDUP_AT_STAGING | VZ_DEDUP_AT_3DTILES);
		VT_CHECK(vz_dedup_removes(b) && vz_dedup_removes_staged(b));
		VT_CHECK(strcmp(a ? a->fingerprint : "", b->fingerprint));
	}
	vz_conf_free(a);
	vz_conf_free(b);
	/* without a method the dedup keys do not change the fingerprint;
	 * with one, every key does */
	a = conf("{}");
	b = conf("{\"deduplicate_overlap_tolerance\": 0.9, "
		 "\"deduplicate_keep_rules\": [[\"a\", \"larger\"]]}");
	n1 = conf(NEIGHBOR("\"deduplicate_keep_rules\": [[\"a\", "
			   "\"larger\"]]"));
	n2 = conf(NEIGHBOR("\"deduplicate_keep_rules\": [[\"a\", "
			   "\"larger\"]], \"deduplicate_overlap_tolerance\": "
			   "0.9"));
	if (a && b && n1 && n2) {
		VT_CHECK(strcmp(a->fingerprint, b->fingerprint) == 0);
		VT_CHECK(strcmp(a->fingerprint, n1->fingerprint));
		VT_CHECK(strcmp(n1->fingerprint, n2->fingerprint));
		VT_CHECK(!vz_dedup_enabled(a) && !vz_dedup_removes(a));
		VT_CHECK(a->clip_to_footprint && a->overlap_both &&
			 a->has_overlap_tol && !a->has_centroid_tol);
		VT_NEAR(a->overlap_tol, 0.5, 0);
		VT_CHECK(a->distance_crs &&
			 !strcmp(a->distance_crs, "EPSG:3857"));
	}
	vz_conf_free(a);
	vz_conf_free(b);
	vz_conf_free(n1);
	vz_conf_free(n2);
}

/* ---- per-thread contexts ------------------------------------------------ */

static void test_tile_tls(void)
{
	struct vz_conf *c = conf(NEIGHBOR(
		"\"deduplicate_keep_rules\": [[\"staging_area\", \"larger\"]]"));
	struct vz_conf *c2 = conf(NEIGHBOR(
		"\"deduplicate_keep_rules\": [[\"staging_area\", \"smaller\"]], "
		"\"deduplicate_overlap_both\": false"));
	struct vz_buf f = {0};
	struct recs r;

	if (!c || !c2)
		goto out;
	recs_init(&r, 0);
	rect(&r, 0, 0, 1, 0, 0, 2, 2, NULL);
	rect(&r, 1, 1, 1, 0.1, 0.1, 1.9, 1.9, NULL);
	/* same answers as an explicit context; switching configs works */
	VT_EQ_INT(vz_dedup_tile(c, &tile, &inputs, r.blob, r.n, &f), 0);
	VT_EQ_INT(f.len, 2);
	VT_CHECK(f.len == 2 && !f.data[0] && f.data[1]);
	VT_EQ_INT(vz_dedup_tile(c2, &tile, &inputs, r.blob, r.n, &f), 0);
	VT_CHECK(f.len == 2 && f.data[0] && !f.data[1]);
	VT_EQ_INT(vz_dedup_tile(c, &tile, &inputs, r.blob, r.n, &f), 0);
	VT_CHECK(f.len == 2 && !f.data[0] && f.data[1]);
	/* an input index out of range is a corrupt record */
	inputs.n = 1;
	VT_EQ_INT(vz_dedup_tile(c, &tile, &inputs, r.blob, r.n, &f),
		  VZ_E_CACHE);
	inputs.n = 3;
	recs_free(&r);
	vz_buf_free(&f);
out:
	vz_conf_free(c);
	vz_conf_free(c2);
}

int main(void)
{
	char cmd[512];
	int rc;

	tmp = vt_tmpdir();
	vz_gdal_init();
	inputs_init();
	test_config();
	test_footprint_path();
	test_neighbor_keep_rules();
	test_neighbor_same_file_and_ties();
	test_neighbor_overlap();
	test_neighbor_centroid();
	test_neighbor_three_files();
	test_footprints();
	test_clip_with_neighbor();
	test_footprint_change();
	test_tile_tls();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	rc = system(cmd);
	(void)rc;
	return vt_done("test_dedup");
}
