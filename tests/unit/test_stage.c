/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of staged blobs, input discovery, staging and the sample generator. */
#include "vt.h"

#include <errno.h>
#include <fcntl.h>
#include <cpl_error.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <geos_c.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vizfs/input.h"
#include "vizfs/sample.h"
#include "vizfs/stage.h"
#include "vizfs/staged.h"

#define ZMAX 15

static const char *tmp;
static GEOSContextHandle_t gh;

/* ---------------------------------------------------------------------- */
/* Helpers */

/* A path below the temporary directory; freed at the end of main. */
static char *allocs[256];
static int n_allocs;

static char *pathf(const char *rel)
{
	char buf[1024];
	snprintf(buf, sizeof buf, "%s/%s", tmp, rel);
	if (n_allocs == (int)VZ_ARRAY_SIZE(allocs)) {
		fprintf(stderr, "pathf: too many paths\n");
		exit(1);
	}
	return allocs[n_allocs++] = strdup(buf);
}

static void mkdirp(const char *path)
{
	char p[1024];
	snprintf(p, sizeof p, "%s", path);
	for (char *s = p + 1; *s; s++) {
		if (*s == '/') {
			*s = '\0';
			mkdir(p, 0777);
			*s = '/';
		}
	}
	mkdir(p, 0777);
}

static void write_file(const char *path, size_t n)
{
	FILE *f = fopen(path, "wb");
	for (size_t i = 0; i < n; i++)
		fputc('x', f);
	fclose(f);
}

/* A hand-built config (the conf module is tested elsewhere). */
struct tconf {
	struct vz_conf c;
	struct vz_stat stats[2];
	char *attrs[2];
};

static void tconf_init(struct tconf *t, const char *attr)
{
	memset(t, 0, sizeof *t);
	t->c.dir_input = pathf("in");
	t->c.dir_staged = pathf("staged");
	t->c.ext_input = (char *)".gpkg";
	t->c.ext_staged = (char *)".gpkg";
	t->c.tms = vz_tms_find("WorldCRS84Quad");
	t->c.tms_id = (char *)"WorldCRS84Quad";
	t->c.z_min = 0;
	t->c.z_max = ZMAX;
	t->c.tile_w = t->c.tile_h = 256;
	t->c.stats = t->stats;
	t->stats[0].name = (char *)"polygon_count";
	t->stats[0].prop = VZ_PROP_CENTROIDS_PER_PIXEL;
	t->stats[0].attr = -1;
	t->c.n_stats = 1;
	if (attr) {
		t->attrs[0] = (char *)attr;
		t->c.attrs = t->attrs;
		t->c.n_attrs = 1;
		t->stats[1].name = (char *)"mean_rate";
		t->stats[1].prop = VZ_PROP_ATTRIBUTE;
		t->stats[1].attr = 0;
		t->stats[1].property = (char *)attr;
		t->c.n_stats = 2;
	}
}

/* Everything a staging run emitted, in emission order. */
struct emitted {
	struct vz_tile_key *keys;
	struct vz_buf *blobs;
	uint64_t *starts;
	size_t n, cap;
};

static int collect(void *ud, const struct vz_tile_key *tile, uint32_t input,
		   uint64_t start, const struct vz_buf *blob)
{
	struct emitted *e = ud;
	(void)input;
	if (e->n == e->cap) {
		e->cap = e->cap ? 2 * e->cap : 64;
		e->keys = realloc(e->keys, e->cap * sizeof *e->keys);
		e->blobs = realloc(e->blobs, e->cap * sizeof *e->blobs);
		e->starts = realloc(e->starts, e->cap * sizeof *e->starts);
	}
	e->keys[e->n] = *tile;
	e->starts[e->n] = start;
	memset(&e->blobs[e->n], 0, sizeof e->blobs[0]);
	vz_buf_append(&e->blobs[e->n], blob->data, blob->len);
	e->n++;
	return 0;
}

static void emitted_free(struct emitted *e)
{
	for (size_t i = 0; i < e->n; i++)
		vz_buf_free(&e->blobs[i]);
	free(e->keys);
	free(e->blobs);
	free(e->starts);
	memset(e, 0, sizeof *e);
}

static int stage_file(const struct vz_conf *c, const char *path, uint64_t chunk,
		      struct emitted *e, struct vz_stage_stats *stats)
{
	struct vz_input in = {.path = (char *)path, .relname = (char *)"x"};
	struct vz_stager *st;
	uint64_t n = 0;
	int rc;

	memset(stats, 0, sizeof *stats);
	rc = vz_stager_new(c, &st);
	if (rc)
		return rc;
	rc = vz_stage_count(st, &in, &n);
	for (uint64_t s = 0; !rc && s < n; s += chunk)
		rc = vz_stage_range(st, &in, 0, s, chunk, collect, e, stats);
	vz_stager_free(st);
	return rc;
}

/* Stage @p path in chunks of 137 features and compare, tile by tile, with
 * the records of a single-range run @p whole.  @return mismatches. */
static int chunked_mismatches(const struct vz_conf *c, const char *path,
			      const struct emitted *whole,
			      const struct vz_stage_stats *ws)
{
	struct emitted ed = {0};
	struct vz_stage_stats sd;
	int bad = 0;

	if (stage_file(c, path, 137, &ed, &sd) != 0)
		return 1000000;
	bad += sd.rows != ws->rows;
	bad += sd.polygons != ws->polygons;
	bad += sd.features != ws->features;
	if (bad)
		fprintf(stderr, "chunked: rows %llu/%llu features %llu/%llu\n",
			(unsigned long long)sd.rows,
			(unsigned long long)ws->rows,
			(unsigned long long)sd.features,
			(unsigned long long)ws->features);
	for (size_t i = 0; i < whole->n; i++) {
		struct vz_buf cat = {0};
		struct vz_staged_iter it;
		struct vz_staged_rec r;
		vz_staged_begin(&cat, (uint32_t)c->n_attrs);
		for (size_t j = 0; j < ed.n; j++) {
			if (ed.keys[j].x != whole->keys[i].x ||
			    ed.keys[j].y != whole->keys[i].y)
				continue;
			vz_staged_iter_init(&it, ed.blobs[j].data,
					    ed.blobs[j].len);
			while (vz_staged_next(&it, &r) == 1)
				vz_staged_append(&cat, &r);
		}
		bad += !(cat.len == whole->blobs[i].len &&
			 memcmp(cat.data, whole->blobs[i].data, cat.len) == 0);
		vz_buf_free(&cat);
	}
	for (size_t j = 0; j < ed.n; j++)
		bad += ed.starts[j] % 137 != 0;
	emitted_free(&ed);
	return bad;
}

static int count_records(const struct vz_buf *b)
{
	struct vz_staged_iter it;
	struct vz_staged_rec r;
	int n = 0, rc;

	if (vz_staged_iter_init(&it, b->data, b->len))
		return -1;
	while ((rc = vz_staged_next(&it, &r)) == 1)
		n++;
	return rc < 0 ? -1 : n;
}

/* ---------------------------------------------------------------------- */
/* Blob format */

static void test_blob(void)
{
	enum {
		N = 300,
		NA = 3
	};
	struct vz_buf b = {0};
	struct vz_staged_iter it;
	struct vz_staged_rec r;
	size_t bounds[N + 1];
	uint64_t s = 12345;
	int rc, n = 0;

	VT_EQ_INT(vz_staged_begin(&b, NA), 0);
	bounds[0] = b.len;
	for (int i = 0; i < N; i++) {
		double xy[2 * 40], attrs[NA];
		uint32_t rl[3];
		struct vz_staged_rec w = {0};
		uint32_t nr = 1 + (uint32_t)(i % 3), np = 0;

		for (uint32_t k = 0; k < nr; k++) {
			rl[k] = 3 + (uint32_t)((i + k) % 9);
			np += rl[k];
		}
		for (uint32_t k = 0; k < 2 * np; k++) {
			s = s * 6364136223846793005ULL + 1442695040888963407ULL;
			xy[k] = (double)(s >> 11) * 1e-12 + i;
		}
		attrs[0] = i;
		attrs[1] = (i % 5 == 0) ? NAN : -i * 0.5;
		attrs[2] = 1e300;
		w.poly.cx = i + 0.25;
		w.poly.cy = -i - 0.5;
		w.poly.area = i * 1e-9;
		w.poly.attrs = attrs;
		w.poly.n_rings = nr;
		w.poly.ring_len = rl;
		w.poly.xy = xy;
		w.fid = (int64_t)i * 1000 - 7;
		w.input = (uint32_t)i % 4;
		w.part = (uint32_t)i % 2;
		VT_EQ_INT(vz_staged_append(&b, &w), 0);
		bounds[i + 1] = b.len;
	}
	VT_EQ_INT(b.len % 8, 0);

	/* Round trip: regenerate the same sequence and compare. */
	s = 12345;
	VT_EQ_INT(vz_staged_iter_init(&it, b.data, b.len), 0);
	VT_EQ_INT(it.n_attrs, NA);
	while ((rc = vz_staged_next(&it, &r)) == 1) {
		int i = n++;
		uint32_t nr = 1 + (uint32_t)(i % 3), np = 0, bad = 0;
		if (i >= N)
			break;
		VT_EQ_INT(r.poly.n_rings, nr);
		for (uint32_t k = 0; k < nr && k < r.poly.n_rings; k++) {
			VT_EQ_INT(r.poly.ring_len[k], 3 + (i + k) % 9);
			np += 3 + (uint32_t)((i + k) % 9);
		}
		for (uint32_t k = 0; k < 2 * np; k++) {
			s = s * 6364136223846793005ULL + 1442695040888963407ULL;
			if (r.poly.xy[k] != (double)(s >> 11) * 1e-12 + i)
				bad++;
		}
		VT_EQ_INT(bad, 0);
		VT_CHECK(r.poly.cx == i + 0.25 && r.poly.cy == -i - 0.5);
		VT_CHECK(r.poly.area == i * 1e-9);
		VT_CHECK(r.poly.attrs[0] == i);
		VT_CHECK(i % 5 == 0 ? isnan(r.poly.attrs[1]) :
				      r.poly.attrs[1] == -i * 0.5);
		VT_CHECK(r.poly.attrs[2] == 1e300);
		VT_EQ_INT(r.fid, (int64_t)i * 1000 - 7);
		VT_EQ_INT(r.input, i % 4);
		VT_EQ_INT(r.part, i % 2);
	}
	VT_EQ_INT(rc, 0);
	VT_EQ_INT(n, N);
	/* At the end the iterator stays at the end. */
	VT_EQ_INT(vz_staged_next(&it, &r), 0);

	/* Every truncation: whole records come back, then the end exactly at
	 * a record boundary, VZ_E_CACHE otherwise; never reads past len (the
	 * copy is sized exactly so ASan/valgrind would see an overread). */
	{
		int wrong = 0;
		for (size_t len = 0; len < b.len;
		     len += (len < 2000 ? 8 : 56)) {
			uint8_t *cp = malloc(len ? len : 8);
			int k = 0, boundary = 0, expect;
			memcpy(cp, b.data, len);
			for (int i = 0; i <= N; i++)
				if (bounds[i] == len)
					boundary = 1, expect = i;
			rc = vz_staged_iter_init(&it, cp, len);
			if (len < 8) {
				if (rc != VZ_E_CACHE)
					wrong++;
				free(cp);
				continue;
			}
			while ((rc = vz_staged_next(&it, &r)) == 1)
				k++;
			if (boundary ? (rc != 0 || k != expect) :
				       (rc != VZ_E_CACHE))
				wrong++;
			free(cp);
		}
		VT_EQ_INT(wrong, 0);
	}
	/* Corruptions. */
	{
		uint8_t *cp = malloc(b.len);
		uint32_t v;

		memcpy(cp, b.data, b.len);
		cp[0] = 'X';
		VT_EQ_INT(vz_staged_iter_init(&it, cp, b.len), VZ_E_CACHE);

		/* n_points of the first record much too large */
		memcpy(cp, b.data, b.len);
		v = 0x7fffffff;
		memcpy(cp + 8 + 24 + NA * 8 + 8 + 12, &v, 4);
		VT_EQ_INT(vz_staged_iter_init(&it, cp, b.len), 0);
		VT_EQ_INT(vz_staged_next(&it, &r), VZ_E_CACHE);
		VT_EQ_INT(vz_staged_next(&it, &r), 0);

		/* n_rings huge */
		memcpy(cp, b.data, b.len);
		v = 0xffffffff;
		memcpy(cp + 8 + 24 + NA * 8 + 8 + 8, &v, 4);
		VT_EQ_INT(vz_staged_iter_init(&it, cp, b.len), 0);
		VT_EQ_INT(vz_staged_next(&it, &r), VZ_E_CACHE);

		/* a ring length that does not add up */
		memcpy(cp, b.data, b.len);
		v = 5000;
		memcpy(cp + 8 + 24 + NA * 8 + 8 + 16, &v, 4);
		VT_EQ_INT(vz_staged_iter_init(&it, cp, b.len), 0);
		VT_EQ_INT(vz_staged_next(&it, &r), VZ_E_CACHE);

		/* n_attrs changed: the record no longer parses */
		memcpy(cp, b.data, b.len);
		v = NA + 1000;
		memcpy(cp + 4, &v, 4);
		rc = vz_staged_iter_init(&it, cp, b.len);
		if (rc == 0) {
			int k = 0;
			while ((rc = vz_staged_next(&it, &r)) == 1)
				k++;
		}
		VT_EQ_INT(rc, VZ_E_CACHE);

		/* misaligned start */
		VT_EQ_INT(vz_staged_iter_init(&it, b.data + 4, b.len - 8),
			  VZ_E_CACHE);
		VT_EQ_INT(vz_staged_iter_init(&it, NULL, 0), VZ_E_CACHE);
		free(cp);
	}
	/* Appending to a buffer without header is refused. */
	{
		struct vz_buf e = {0};
		struct vz_staged_rec w = {0};
		VT_CHECK(vz_staged_append(&e, &w) != 0);
		VT_EQ_INT(vz_staged_begin(&e, 0), 0);
		VT_CHECK(vz_staged_begin(&e, 0) != 0);
		vz_buf_free(&e);
	}
	vz_buf_free(&b);
}

/* ---------------------------------------------------------------------- */
/* Input discovery */

static void test_discover(void)
{
	struct tconf t;
	struct vz_inputs *in = NULL;
	char fp1[33];
	int rc;

	tconf_init(&t, NULL);
	t.c.dir_input = pathf("disc/in");
	t.c.dir_staged = pathf("disc/staged");
	t.c.ext_input = (char *)".shp";
	t.c.z_max = 13;

	/* Nothing at all (directories missing). */
	rc = vz_inputs_discover(&t.c, NULL, 0, VZ_INPUT_AUTO, &in);
	VT_EQ_INT(rc, -ENOENT);
	VT_CHECK(in == NULL);
	VT_CHECK(strstr(vz_err_msg(), t.c.dir_input) != NULL);
	VT_CHECK(strstr(vz_err_msg(), t.c.dir_staged) != NULL);

	mkdirp(pathf("disc/in/sub/deeper"));
	mkdirp(pathf("disc/in/sub/.hidden"));
	mkdirp(pathf("disc/in/.vizfs-cache"));
	write_file(pathf("disc/in/b.shp"), 100);
	write_file(pathf("disc/in/b.dbf"), 20);
	write_file(pathf("disc/in/b.shx"), 3);
	write_file(pathf("disc/in/b.prj"), 4);
	write_file(pathf("disc/in/sub/deeper/a.shp"), 50);
	write_file(pathf("disc/in/sub/.hidden/c.shp"), 50);
	write_file(pathf("disc/in/.vizfs-cache/d.shp"), 50);
	write_file(pathf("disc/in/notes.txt"), 5);
	write_file(pathf("disc/in/e.shp.bak"), 5);

	rc = vz_inputs_discover(&t.c, NULL, 0, VZ_INPUT_AUTO, &in);
	VT_EQ_INT(rc, 0);
	if (in) {
		VT_EQ_INT(in->n, 2);
		VT_CHECK(!in->prestaged);
		if (in->n == 2) {
			VT_CHECK(strcmp(in->v[0].relname, "b.shp") == 0);
			VT_CHECK(strcmp(in->v[1].relname, "sub/deeper/a.shp") ==
				 0);
			VT_EQ_INT(in->v[0].size, 127);
			VT_EQ_INT(in->v[1].size, 50);
			VT_CHECK(strcmp(in->v[0].path,
					pathf("disc/in/b.shp")) == 0);
			VT_CHECK(!in->v[0].prestaged);
		}
		memcpy(fp1, in->fingerprint, 33);
		VT_EQ_INT(strlen(fp1), 32);
		vz_inputs_free(in);
	}
	/* Same tree, same fingerprint; a changed .dbf changes it. */
	rc = vz_inputs_discover(&t.c, NULL, 0, VZ_INPUT_RAW, &in);
	VT_EQ_INT(rc, 0);
	if (in) {
		VT_CHECK(strcmp(in->fingerprint, fp1) == 0);
		vz_inputs_free(in);
	}
	write_file(pathf("disc/in/b.dbf"), 21);
	rc = vz_inputs_discover(&t.c, NULL, 0, VZ_INPUT_RAW, &in);
	VT_EQ_INT(rc, 0);
	if (in) {
		VT_CHECK(strcmp(in->fingerprint, fp1) != 0);
		VT_EQ_INT(in->v[0].size, 128);
		vz_inputs_free(in);
	}

	/* Explicit file list: relnames relative to dir_input, sorted. */
	{
		const char *files[] = {pathf("disc/in/sub/deeper/a.shp"),
				       pathf("disc/in/b.shp")};
		rc = vz_inputs_discover(&t.c, files, 2, VZ_INPUT_RAW, &in);
		VT_EQ_INT(rc, 0);
		if (in) {
			VT_EQ_INT(in->n, 2);
			VT_CHECK(strcmp(in->v[0].relname, "b.shp") == 0);
			vz_inputs_free(in);
		}
		files[1] = pathf("disc/in/missing.shp");
		rc = vz_inputs_discover(&t.c, files, 2, VZ_INPUT_RAW, &in);
		VT_EQ_INT(rc, VZ_E_INPUT);
		VT_CHECK(strstr(vz_err_msg(), "missing.shp") != NULL);
	}

	/* Staged tree: AUTO falls back to it when no raw files exist. */
	t.c.ext_input = (char *)".geojson";
	rc = vz_inputs_discover(&t.c, NULL, 0, VZ_INPUT_RAW, &in);
	VT_EQ_INT(rc, -ENOENT);
	rc = vz_inputs_discover(&t.c, NULL, 0, VZ_INPUT_AUTO, &in);
	VT_EQ_INT(rc, -ENOENT);
	mkdirp(pathf("disc/staged/WorldCRS84Quad/13/1524"));
	mkdirp(pathf("disc/staged/WorldCRS84Quad/13/1525"));
	mkdirp(pathf("disc/staged/WorldCRS84Quad/13/x12"));
	mkdirp(pathf("disc/staged/WorldCRS84Quad/12/762"));
	write_file(pathf("disc/staged/WorldCRS84Quad/13/1524/910.gpkg"), 10);
	write_file(pathf("disc/staged/WorldCRS84Quad/13/1524/911.gpkg"), 10);
	write_file(pathf("disc/staged/WorldCRS84Quad/13/1525/910.gpkg"), 10);
	write_file(pathf("disc/staged/WorldCRS84Quad/13/1525/9x1.gpkg"), 10);
	write_file(pathf("disc/staged/WorldCRS84Quad/13/1525/+12.gpkg"), 10);
	write_file(pathf("disc/staged/WorldCRS84Quad/13/1525/.gpkg"), 10);
	write_file(pathf("disc/staged/WorldCRS84Quad/13/1525/99999.gpkg"),
		   10); /* row beyond the matrix at z13 */
	write_file(pathf("disc/staged/WorldCRS84Quad/13/x12/5.gpkg"), 10);
	write_file(pathf("disc/staged/WorldCRS84Quad/12/762/455.gpkg"), 10);
	write_file(pathf("disc/staged/WorldCRS84Quad/13/1524/912.tif"), 10);
	rc = vz_inputs_discover(&t.c, NULL, 0, VZ_INPUT_AUTO, &in);
	VT_EQ_INT(rc, 0);
	if (in) {
		VT_CHECK(in->prestaged);
		VT_EQ_INT(in->n, 3);
		if (in->n == 3) {
			VT_CHECK(in->v[0].prestaged);
			VT_EQ_INT(in->v[0].key.x, 1524);
			VT_EQ_INT(in->v[0].key.y, 910);
			VT_EQ_INT(in->v[0].key.z, 13);
			VT_EQ_INT(in->v[1].key.y, 911);
			VT_EQ_INT(in->v[2].key.x, 1525);
			VT_EQ_INT(in->v[2].key.y, 910);
		}
		vz_inputs_free(in);
	}
	rc = vz_inputs_discover(&t.c, NULL, 0, VZ_INPUT_STAGED, &in);
	VT_EQ_INT(rc, 0);
	if (in) {
		VT_EQ_INT(in->n, 3);
		vz_inputs_free(in);
	}
	/* RAW mode never looks at the staged tree. */
	rc = vz_inputs_discover(&t.c, NULL, 0, VZ_INPUT_RAW, &in);
	VT_EQ_INT(rc, -ENOENT);
	/* With raw files present AUTO takes them, STAGED the tree. */
	t.c.ext_input = (char *)".shp";
	rc = vz_inputs_discover(&t.c, NULL, 0, VZ_INPUT_AUTO, &in);
	VT_EQ_INT(rc, 0);
	if (in) {
		VT_CHECK(!in->prestaged);
		VT_EQ_INT(in->n, 2);
		vz_inputs_free(in);
	}
	vz_inputs_free(NULL);
}

/* ---------------------------------------------------------------------- */
/* Sample files and staging */

static OGRGeometryH read_geom_copy(OGRFeatureH f)
{
	OGRGeometryH g = OGR_F_GetGeometryRef(f);
	return g ? OGR_G_Clone(g) : NULL;
}

static GEOSGeometry *to_geos(OGRGeometryH g)
{
	int n = OGR_G_WkbSize(g);
	unsigned char *w = malloc((size_t)n);
	GEOSWKBReader *rd = GEOSWKBReader_create_r(gh);
	GEOSGeometry *res;

	OGR_G_ExportToWkb(g, wkbNDR, w);
	res = GEOSWKBReader_read_r(gh, rd, w, (size_t)n);
	GEOSWKBReader_destroy_r(gh, rd);
	free(w);
	return res;
}

/* Record lookup over the emitted blobs: for each (fid, part) which tiles
 * hold it and with what centroid/area. */
struct seen {
	int n_tiles;
	int ctile_copies;
	uint32_t tiles_x[16], tiles_y[16];
	double cx, cy, area, attr;
	uint32_t n_rings;
};

static void test_sample_and_stage(void)
{
	enum {
		NFEAT = 2000
	};
	struct vz_sample_opts o = {.n = NFEAT,
				   .west = -150.0,
				   .south = 70.0,
				   .east = -149.99,
				   .north = 70.01,
				   .seed = 42};
	const char *pa = pathf("sample_a.gpkg"), *pb = pathf("sample_b.gpkg"),
		   *pc = pathf("sample_c.gpkg");
	struct emitted ea = {0}, eb = {0}, ec = {0};
	struct vz_stage_stats sa, sb, sc;
	struct tconf t;
	const struct vz_tms *tms = vz_tms_find("WorldCRS84Quad");
	int rc;

	tconf_init(&t, "ChangeRateNet_myr-1");
	VT_EQ_INT(vz_sample_write(&o, pa), 0);
	VT_EQ_INT(vz_sample_write(&o, pb), 0);
	o.seed = 43;
	VT_EQ_INT(vz_sample_write(&o, pc), 0);
	/* An existing file is refused with its name. */
	VT_EQ_INT(vz_sample_write(&o, pc), VZ_E_ENCODE);
	VT_CHECK(strstr(vz_err_msg(), "sample_c.gpkg") != NULL);
	VT_EQ_INT(vz_sample_write(&o, pathf("nodir/x/y.gpkg")), VZ_E_ENCODE);

	/* Deterministic: identical staged output for identical options. */
	VT_EQ_INT(stage_file(&t.c, pa, 100000, &ea, &sa), 0);
	VT_EQ_INT(stage_file(&t.c, pb, 100000, &eb, &sb), 0);
	VT_EQ_INT(stage_file(&t.c, pc, 100000, &ec, &sc), 0);
	VT_EQ_INT(sa.features, NFEAT);
	VT_CHECK(ea.n > 1); /* the sample crosses tile edges */
	VT_EQ_INT(ea.n, eb.n);
	{
		int same = ea.n == eb.n, diff = ea.n != ec.n;
		for (size_t i = 0; same && i < ea.n; i++)
			same = ea.keys[i].x == eb.keys[i].x &&
			       ea.keys[i].y == eb.keys[i].y &&
			       ea.blobs[i].len == eb.blobs[i].len &&
			       memcmp(ea.blobs[i].data, eb.blobs[i].data,
				      ea.blobs[i].len) == 0;
		for (size_t i = 0; !diff && i < ea.n; i++)
			diff = ea.blobs[i].len != ec.blobs[i].len ||
			       memcmp(ea.blobs[i].data, ec.blobs[i].data,
				      ea.blobs[i].len) != 0;
		VT_CHECK(same);
		VT_CHECK(diff);
	}
	/* Tiles emitted in ascending (x, y) order within the range. */
	for (size_t i = 1; i < ea.n; i++)
		VT_CHECK(ea.keys[i - 1].x < ea.keys[i].x ||
			 (ea.keys[i - 1].x == ea.keys[i].x &&
			  ea.keys[i - 1].y < ea.keys[i].y));

	/* Staged in chunks of 137 features: the same records per tile. */
	VT_EQ_INT(chunked_mismatches(&t.c, pa, &ea, &sa), 0);
	/* Same with FIDs that have gaps (GeoPackage OFFSET positioning). */
	{
		const char *pg = pathf("sample_gaps.gpkg");
		struct emitted eg = {0};
		struct vz_stage_stats sg;
		GDALDatasetH ds;
		OGRLayerH l;

		o.seed = 42;
		VT_EQ_INT(vz_sample_write(&o, pg), 0);
		ds = GDALOpenEx(pg, GDAL_OF_VECTOR | GDAL_OF_UPDATE, NULL, NULL,
				NULL);
		l = GDALDatasetGetLayer(ds, 0);
		for (int64_t fid = 1; fid <= NFEAT; fid += 7)
			VT_EQ_INT(OGR_L_DeleteFeature(l, fid), OGRERR_NONE);
		VT_EQ_INT(OGR_L_DeleteFeature(l, 138), OGRERR_NONE);
		VT_EQ_INT(OGR_L_DeleteFeature(l, 139), OGRERR_NONE);
		GDALClose(ds);
		VT_EQ_INT(stage_file(&t.c, pg, 100000, &eg, &sg), 0);
		VT_EQ_INT(sg.features, NFEAT - (NFEAT + 6) / 7 - 2);
		VT_EQ_INT(chunked_mismatches(&t.c, pg, &eg, &sg), 0);
		emitted_free(&eg);
	}

	/* Against an independent computation from the file: reproject with
	 * OGR, centroid/area with GEOS, tiles by closed-box intersection. */
	{
		struct seen *seen = calloc(NFEAT * 2, sizeof *seen);
		GDALDatasetH ds =
			GDALOpenEx(pa, GDAL_OF_VECTOR, NULL, NULL, NULL);
		OGRLayerH l = GDALDatasetGetLayer(ds, 0);
		OGRSpatialReferenceH dst = OSRNewSpatialReference(NULL);
		OGRCoordinateTransformationH ct;
		OGRFeatureH f;
		int bad_tiles = 0, bad_ctile = 0, bad_geom = 0, n_multi = 0;
		int n_holes = 0, n_null = 0, bad_attr = 0, n_feat = 0;

		OSRSetFromUserInput(dst, "EPSG:4326");
		OSRSetAxisMappingStrategy(dst, OAMS_TRADITIONAL_GIS_ORDER);
		{
			OGRSpatialReferenceH s =
				OSRClone(OGR_L_GetSpatialRef(l));
			OSRSetAxisMappingStrategy(s,
						  OAMS_TRADITIONAL_GIS_ORDER);
			ct = OCTNewCoordinateTransformation(s, dst);
			OSRDestroySpatialReference(s);
		}
		for (size_t i = 0; i < ea.n; i++) {
			struct vz_staged_iter it;
			struct vz_staged_rec r;
			vz_staged_iter_init(&it, ea.blobs[i].data,
					    ea.blobs[i].len);
			while (vz_staged_next(&it, &r) == 1) {
				struct seen *s;
				struct vz_tile_key ck;
				if (r.fid < 1 || r.fid > NFEAT || r.part > 1) {
					bad_tiles++;
					continue;
				}
				s = &seen[(r.fid - 1) * 2 + r.part];
				if (s->n_tiles < 16) {
					s->tiles_x[s->n_tiles] = ea.keys[i].x;
					s->tiles_y[s->n_tiles] = ea.keys[i].y;
				}
				s->n_tiles++;
				s->cx = r.poly.cx;
				s->cy = r.poly.cy;
				s->area = r.poly.area;
				s->attr = r.poly.attrs[0];
				s->n_rings = r.poly.n_rings;
				vz_tms_point_tile(tms, ZMAX, r.poly.cx,
						  r.poly.cy, &ck);
				if (ck.x == ea.keys[i].x &&
				    ck.y == ea.keys[i].y)
					s->ctile_copies++;
			}
		}
		while ((f = OGR_L_GetNextFeature(l))) {
			OGRGeometryH g = read_geom_copy(f);
			int64_t fid = OGR_F_GetFID(f);
			int multi = wkbFlatten(OGR_G_GetGeometryType(g)) ==
				    wkbMultiPolygon;
			int np = multi ? OGR_G_GetGeometryCount(g) : 1;
			int isnull = !OGR_F_IsFieldSetAndNotNull(f, 0);
			double val = OGR_F_GetFieldAsDouble(f, 0);

			n_feat++;
			n_multi += multi;
			n_null += isnull;
			OGR_G_Transform(g, ct);
			for (int p = 0; p < np; p++) {
				OGRGeometryH pg =
					multi ? OGR_G_GetGeometryRef(g, p) : g;
				GEOSGeometry *gg = to_geos(pg), *c;
				struct seen *s = &seen[(fid - 1) * 2 + p];
				double area, cx, cy;
				struct vz_tile_key ck;
				int expect = 0, found = 0;

				n_holes += OGR_G_GetGeometryCount(pg) > 1;
				GEOSArea_r(gh, gg, &area);
				c = GEOSGetCentroid_r(gh, gg);
				GEOSGeomGetX_r(gh, c, &cx);
				GEOSGeomGetY_r(gh, c, &cy);
				GEOSGeom_destroy_r(gh, c);
				if (fabs(s->area - area) > 1e-12 * area ||
				    fabs(s->cx - cx) > 1e-12 ||
				    fabs(s->cy - cy) > 1e-12 ||
				    s->n_rings !=
					    (uint32_t)OGR_G_GetGeometryCount(
						    pg))
					bad_geom++;
				if (isnull ? !isnan(s->attr) : s->attr != val)
					bad_attr++;
				/* brute force over a window of tiles */
				vz_tms_point_tile(tms, ZMAX, cx, cy, &ck);
				for (uint32_t x = ck.x - 2; x <= ck.x + 2; x++)
					for (uint32_t y = ck.y - 2;
					     y <= ck.y + 2; y++) {
						struct vz_tile_key k = {x, y,
									ZMAX};
						struct vz_bbox b;
						GEOSGeometry *box;
						int hit, have = 0;
						vz_tms_bounds(tms, &k, &b);
						box = GEOSGeom_createRectangle_r(
							gh, b.left, b.bottom,
							b.right, b.top);
						hit = GEOSIntersects_r(
							      gh, gg, box) == 1;
						GEOSGeom_destroy_r(gh, box);
						hit |= x == ck.x && y == ck.y;
						for (int j = 0;
						     j < s->n_tiles && j < 16;
						     j++)
							have |= s->tiles_x[j] ==
									x &&
								s->tiles_y[j] ==
									y;
						expect += hit;
						found += have;
						if (hit != have)
							bad_tiles++;
					}
				if (s->n_tiles != expect || found != expect)
					bad_tiles++;
				if (s->ctile_copies != 1)
					bad_ctile++;
				GEOSGeom_destroy_r(gh, gg);
			}
			OGR_G_DestroyGeometry(g);
			OGR_F_Destroy(f);
		}
		VT_EQ_INT(n_feat, NFEAT);
		VT_EQ_INT(bad_tiles, 0);
		VT_EQ_INT(bad_ctile, 0);
		VT_EQ_INT(bad_geom, 0);
		VT_EQ_INT(bad_attr, 0);
		VT_CHECK(n_multi > 0);
		VT_CHECK(n_holes > 0);
		VT_CHECK(n_null > 0);
		VT_EQ_INT(sa.multi_exploded, n_multi);
		VT_EQ_INT(sa.polygons, NFEAT + n_multi);
		VT_EQ_INT(sa.null_attrs, n_null);
		VT_EQ_INT(sa.skipped_invalid + sa.skipped_type +
				  sa.skipped_empty + sa.skipped_outside,
			  0);
		VT_CHECK(sa.rows > sa.polygons);
		OCTDestroyCoordinateTransformation(ct);
		OSRDestroySpatialReference(dst);
		GDALClose(ds);
		free(seen);
	}

	/* Write one tile as a PDG staged GeoPackage and read it back. */
	{
		struct vz_input inp = {.path = (char *)pa,
				       .relname = (char *)"sub/sample_a.gpkg"};
		struct vz_inputs inputs = {.v = &inp, .n = 1};
		struct vz_stager *st = NULL;
		struct vz_buf back = {0};
		struct vz_stage_stats ps = {0};
		char out[1024], lname[16];
		size_t best = 0;
		int nrec, within = 0;

		for (size_t i = 1; i < ea.n; i++)
			if (ea.blobs[i].len > ea.blobs[best].len)
				best = i;
		nrec = count_records(&ea.blobs[best]);
		snprintf(out, sizeof out,
			 "%s/wstaged/WorldCRS84Quad/%d/%u/%u.gpkg", tmp, ZMAX,
			 ea.keys[best].x, ea.keys[best].y);
		VT_EQ_INT(vz_stager_new(&t.c, &st), 0);
		rc = vz_stage_write_gpkg(st, out, &ea.keys[best], &inputs,
					 &ea.blobs[best], 1);
		VT_EQ_INT(rc, 0);
		{
			GDALDatasetH ds = GDALOpenEx(out, GDAL_OF_VECTOR, NULL,
						     NULL, NULL);
			OGRLayerH l = ds ? GDALDatasetGetLayer(ds, 0) : NULL;
			static const char *const cols[] = {
				"ChangeRateNet_myr-1",
				"staging_area",
				"staging_centroid_x",
				"staging_centroid_y",
				"staging_filename",
				"staging_identifier",
				"staging_centroid_tile",
				"staging_tile",
				"staging_centroid_within_tile"};
			OGRFeatureDefnH fd;
			OGRFeatureH f;
			char ktile[64];

			VT_CHECK(l != NULL);
			if (!l)
				goto skip;
			snprintf(lname, sizeof lname, "%u", ea.keys[best].y);
			VT_CHECK(strcmp(OGR_L_GetName(l), lname) == 0);
			VT_EQ_INT(OGR_L_GetFeatureCount(l, 1), nrec);
			VT_EQ_INT(wkbFlatten(OGR_L_GetGeomType(l)), wkbPolygon);
			fd = OGR_L_GetLayerDefn(l);
			for (size_t i = 0; i < VZ_ARRAY_SIZE(cols); i++)
				VT_CHECK(OGR_FD_GetFieldIndex(fd, cols[i]) >=
					 0);
			VT_EQ_INT(OGR_Fld_GetSubType(OGR_FD_GetFieldDefn(
					  fd, OGR_FD_GetFieldIndex(
						      fd, "staging_centroid_"
							  "within_tile"))),
				  OFSTBoolean);
			snprintf(ktile, sizeof ktile, "Tile(x=%u, y=%u, z=%d)",
				 ea.keys[best].x, ea.keys[best].y, ZMAX);
			while ((f = OGR_L_GetNextFeature(l))) {
				double cx = OGR_F_GetFieldAsDouble(
					f, OGR_FD_GetFieldIndex(
						   fd, "staging_centroid_x"));
				double cy = OGR_F_GetFieldAsDouble(
					f, OGR_FD_GetFieldIndex(
						   fd, "staging_centroid_y"));
				int w = OGR_F_GetFieldAsInteger(
					f, OGR_FD_GetFieldIndex(
						   fd, "staging_centroid_"
						       "within_tile"));
				struct vz_tile_key ck;
				vz_tms_point_tile(tms, ZMAX, cx, cy, &ck);
				VT_EQ_INT(w, ck.x == ea.keys[best].x &&
						     ck.y == ea.keys[best].y);
				within += w;
				VT_CHECK(
					strcmp(OGR_F_GetFieldAsString(
						       f,
						       OGR_FD_GetFieldIndex(
							       fd,
							       "staging_tile")),
					       ktile) == 0);
				VT_CHECK(strcmp(OGR_F_GetFieldAsString(
							f, OGR_FD_GetFieldIndex(
								   fd,
								   "staging_"
								   "filename")),
						"sub/sample_a.gpkg") == 0);
				VT_EQ_INT(
					strlen(OGR_F_GetFieldAsString(
						f, OGR_FD_GetFieldIndex(
							   fd, "staging_"
							       "identifier"))),
					36);
				OGR_F_Destroy(f);
			}
			VT_CHECK(within > 0 && within < nrec);
skip:
			if (ds)
				GDALClose(ds);
		}
		/* ... and as a pre-staged input: same centroids and areas. */
		{
			struct vz_input pin = {.path = out,
					       .relname = (char *)"x",
					       .prestaged = true,
					       .key = ea.keys[best]};
			struct vz_staged_iter i1, i2;
			struct vz_staged_rec r1, r2;
			int diff = 0, n = 0;

			rc = vz_stage_prestaged(st, &pin, 0, &back, &ps);
			VT_EQ_INT(rc, 0);
			VT_EQ_INT(ps.polygons, nrec);
			VT_EQ_INT(count_records(&back), nrec);
			vz_staged_iter_init(&i1, back.data, back.len);
			vz_staged_iter_init(&i2, ea.blobs[best].data,
					    ea.blobs[best].len);
			while (vz_staged_next(&i1, &r1) == 1 &&
			       vz_staged_next(&i2, &r2) == 1) {
				n++;
				diff += r1.poly.cx != r2.poly.cx ||
					r1.poly.cy != r2.poly.cy ||
					r1.poly.area != r2.poly.area ||
					r1.poly.n_rings != r2.poly.n_rings ||
					!(r1.poly.attrs[0] ==
						  r2.poly.attrs[0] ||
					  (isnan(r1.poly.attrs[0]) &&
					   isnan(r2.poly.attrs[0])));
			}
			VT_EQ_INT(n, nrec);
			VT_EQ_INT(diff, 0);
		}
		/* /vsimem/ paths stay in memory (the export module uses them). */
		{
			const char *vp = "/vsimem/test_stage/a/b/1.gpkg";
			GDALDatasetH ds;
			VT_EQ_INT(vz_stage_write_gpkg(st, vp, &ea.keys[best],
						      &inputs, &ea.blobs[best],
						      1),
				  0);
			ds = GDALOpenEx(vp, GDAL_OF_VECTOR, NULL, NULL, NULL);
			VT_CHECK(ds != NULL);
			if (ds) {
				VT_EQ_INT(OGR_L_GetFeatureCount(
						  GDALDatasetGetLayer(ds, 0),
						  1),
					  nrec);
				GDALClose(ds);
			}
			VT_CHECK(access("/vsimem/test_stage", F_OK) != 0);
			VSIUnlink(vp);
		}
		/* An unwritable path fails with its name. */
		rc = vz_stage_write_gpkg(st, "/proc/nope/1.gpkg",
					 &ea.keys[best], &inputs,
					 &ea.blobs[best], 1);
		VT_EQ_INT(rc, VZ_E_ENCODE);
		VT_CHECK(strstr(vz_err_msg(), "/proc/nope/1.gpkg") != NULL);
		vz_buf_free(&back);
		vz_stager_free(st);
	}

	/* A missing attribute column names the attribute and statistic. */
	{
		struct tconf t2;
		struct emitted e = {0};
		struct vz_stage_stats s;
		tconf_init(&t2, "NoSuchColumn");
		rc = stage_file(&t2.c, pa, 1000, &e, &s);
		VT_EQ_INT(rc, VZ_E_INPUT);
		VT_CHECK(strstr(vz_err_msg(), "NoSuchColumn") != NULL);
		VT_CHECK(strstr(vz_err_msg(), "mean_rate") != NULL);
		VT_CHECK(strstr(vz_err_msg(), "sample_a.gpkg") != NULL);
		VT_EQ_INT(e.n, 0);
		emitted_free(&e);
	}
	/* Simplification runs and keeps every polygon. */
	{
		struct emitted e = {0};
		struct vz_stage_stats s;
		t.c.has_simplify = true;
		t.c.simplify_tolerance = 0.5; /* metres, input CRS */
		VT_EQ_INT(stage_file(&t.c, pa, 100000, &e, &s), 0);
		VT_EQ_INT(s.polygons, sa.polygons);
		t.c.has_simplify = false;
		emitted_free(&e);
	}
	emitted_free(&ea);
	emitted_free(&eb);
	emitted_free(&ec);
}

/* ---------------------------------------------------------------------- */
/* Odd geometries, CRS errors, large polygons */

static OGRGeometryH wkt(const char *s)
{
	OGRGeometryH g = NULL;
	char *p = (char *)s;
	OGR_G_CreateFromWkt(&p, NULL, &g);
	return g;
}

static void write_layer(const char *drv, const char *path, const char *crs,
			const char *const *wkts, size_t n)
{
	GDALDatasetH ds = GDALCreate(GDALGetDriverByName(drv), path, 0, 0, 0,
				     GDT_Unknown, NULL);
	OGRSpatialReferenceH srs = NULL;
	OGRLayerH l;
	OGRFieldDefnH fl;

	CPLPushErrorHandler(CPLQuietErrorHandler);
	if (crs) {
		srs = OSRNewSpatialReference(NULL);
		OSRSetFromUserInput(srs, crs);
	}
	l = GDALDatasetCreateLayer(ds, "t", srs, wkbUnknown, NULL);
	fl = OGR_Fld_Create("val", OFTString);
	OGR_L_CreateField(l, fl, 1);
	OGR_Fld_Destroy(fl);
	/* a column named like a PDG staging property: warned, ignored */
	fl = OGR_Fld_Create("Staging_Area", OFTReal);
	OGR_L_CreateField(l, fl, 1);
	OGR_Fld_Destroy(fl);
	for (size_t i = 0; i < n; i++) {
		OGRFeatureH f = OGR_F_Create(OGR_L_GetLayerDefn(l));
		char v[32];
		if (wkts[i] && strcmp(wkts[i], "NAN") == 0) {
			/* WKT cannot say NaN: build the ring by hand */
			OGRGeometryH g = OGR_G_CreateGeometry(wkbPolygon);
			OGRGeometryH r = OGR_G_CreateGeometry(wkbLinearRing);
			OGR_G_AddPoint_2D(r, -150.004, 70.004);
			OGR_G_AddPoint_2D(r, NAN, 70.004);
			OGR_G_AddPoint_2D(r, -150.003, 70.005);
			OGR_G_AddPoint_2D(r, -150.004, 70.004);
			OGR_G_AddGeometryDirectly(g, r);
			OGR_F_SetGeometryDirectly(f, g);
		} else if (wkts[i]) {
			OGR_F_SetGeometryDirectly(f, wkt(wkts[i]));
		}
		snprintf(v, sizeof v, i % 2 ? "%zu.5" : "n/a", i);
		OGR_F_SetFieldString(f, 0, v);
		VT_EQ_INT(OGR_L_CreateFeature(l, f), OGRERR_NONE);
		OGR_F_Destroy(f);
	}
	if (srs)
		OSRDestroySpatialReference(srs);
	GDALClose(ds);
	CPLPopErrorHandler();
}

static void test_odd_geometries(void)
{
	/* Near 70N, -150E, inside one or two z15 tiles. */
	static const char *const geoms[] = {
		"POINT (-150.001 70.001)",
		"LINESTRING (-150.001 70.001, -150.002 70.002)",
		NULL,
		"POLYGON EMPTY",
		/* bow-tie: repaired into two triangles */
		"POLYGON ((-150.0 70.0, -149.999 70.001, -149.999 70.0, "
		"-150.0 70.001, -150.0 70.0))",
		"POLYGON ((-150.002 70.002, -150.001 70.002, -150.001 70.003, "
		"-150.002 70.002))",
		"MULTIPOLYGON (((-150.01 70.01, -150.009 70.01, -150.009 "
		"70.011, -150.01 70.01)), ((-150.02 70.02, -150.019 70.02, "
		"-150.019 70.021, -150.02 70.02)))",
		"GEOMETRYCOLLECTION (POINT (1 2), POLYGON ((-150.03 70.03, "
		"-150.029 70.03, -150.029 70.031, -150.03 70.03)))",
		"NAN",
		/* a sliver of zero area: repaired to nothing */
		"POLYGON ((-150.005 70.005, -150.004 70.005, -150.003 70.005, "
		"-150.005 70.005))",
		/* a curve: linearized */
		"CURVEPOLYGON (CIRCULARSTRING (-150.006 70.006, -150.0055 "
		"70.0065, -150.005 70.006, -150.0055 70.0055, -150.006 "
		"70.006))",
		/* outside the WorldCRS84Quad extent */
		"POLYGON ((200 95, 201 95, 201 96, 200 95))",
	};
	const char *gp = pathf("odd.gpkg");
	const char *jp = pathf("odd.geojson");
	struct tconf t;
	struct emitted e = {0}, e2 = {0}, e3 = {0};
	struct vz_stage_stats s, s2, s3;
	int rc;

	tconf_init(&t, "val");
	write_layer("GPKG", gp, "EPSG:4326", geoms, VZ_ARRAY_SIZE(geoms));
	rc = stage_file(&t.c, gp, 100, &e, &s);
	VT_EQ_INT(rc, 0);
	VT_EQ_INT(s.features, VZ_ARRAY_SIZE(geoms));
	VT_EQ_INT(s.skipped_type, 2);
	VT_EQ_INT(s.skipped_empty, 2);
	VT_EQ_INT(s.skipped_invalid, 2); /* NaN, zero-area sliver */
	VT_EQ_INT(s.repaired, 1);	 /* the bow-tie (the sliver fails) */
	VT_EQ_INT(s.multi_exploded, 2);
	VT_EQ_INT(s.skipped_outside, 1);
	/* bow-tie 2 + triangle 1 + multi 2 + collection 1 + curve 1 */
	VT_EQ_INT(s.polygons, 7);
	/* "n/a" is not a number, "7.5" is */
	VT_CHECK(s.null_attrs > 0);
	{
		int parts1 = 0, got75 = 0;
		for (size_t i = 0; i < e.n; i++) {
			struct vz_staged_iter it;
			struct vz_staged_rec r;
			vz_staged_iter_init(&it, e.blobs[i].data,
					    e.blobs[i].len);
			while (vz_staged_next(&it, &r) == 1) {
				parts1 += r.part == 1;
				if (r.fid == 8)
					got75 += r.poly.attrs[0] == 7.5;
				if (r.fid == 7)
					VT_CHECK(isnan(r.poly.attrs[0]));
			}
		}
		VT_CHECK(parts1 >= 2); /* bow-tie and multipolygon */
		VT_CHECK(got75 >= 1);
	}
	/* One feature at a time gives the same counters. */
	rc = stage_file(&t.c, gp, 1, &e2, &s2);
	VT_EQ_INT(rc, 0);
	VT_EQ_INT(s2.polygons, s.polygons);
	VT_EQ_INT(s2.rows, s.rows);

	/* GeoJSON: non-GPKG positioning; NaN cannot be written there. */
	{
		const char *g2[VZ_ARRAY_SIZE(geoms)];
		size_t n = 0;
		for (size_t i = 0; i < VZ_ARRAY_SIZE(geoms); i++)
			if (!geoms[i] || strcmp(geoms[i], "NAN") != 0)
				g2[n++] = geoms[i];
		write_layer("GeoJSON", jp, "EPSG:4326", g2, n);
		rc = stage_file(&t.c, jp, 3, &e3, &s3);
		VT_EQ_INT(rc, 0);
		VT_EQ_INT(s3.features, n);
		VT_EQ_INT(s3.polygons, 7);
		VT_EQ_INT(s3.rows, s.rows);
	}
	emitted_free(&e);
	emitted_free(&e2);
	emitted_free(&e3);

	/* No CRS in the file and none configured: VZ_E_CRS naming it. */
	{
		const char *sp = pathf("nocrs.shp");
		const char *one[] = {geoms[5]};
		write_layer("ESRI Shapefile", sp, NULL, one, 1);
		tconf_init(&t, NULL);
		rc = stage_file(&t.c, sp, 10, &e, &s);
		VT_EQ_INT(rc, VZ_E_CRS);
		VT_CHECK(strstr(vz_err_msg(), "nocrs.shp") != NULL);
		emitted_free(&e);
		t.c.input_crs = (char *)"EPSG:4326";
		rc = stage_file(&t.c, sp, 10, &e, &s);
		VT_EQ_INT(rc, 0);
		VT_EQ_INT(s.polygons, 1);
		emitted_free(&e);
		t.c.input_crs = (char *)"EPSG:999999";
		{
			struct vz_stager *st = NULL;
			VT_EQ_INT(vz_stager_new(&t.c, &st), VZ_E_CRS);
			VT_CHECK(st == NULL);
		}
	}
	/* WebMercator: beyond +-85.05 deg is outside, never a crash. */
	{
		static const char *const merc[] = {
			"POLYGON ((10 86, 11 86, 11 87, 10 86))",
			"POLYGON ((10 89.9, 11 89.9, 11 90, 10 89.9))",
			"POLYGON ((10 84, 11 84, 11 86, 10 84))",
			"POLYGON ((10 -90, 11 -90, 11 -89, 10 -90))",
			"POLYGON ((10 50, 11 50, 11 51, 10 50))",
		};
		const char *mp = pathf("merc.gpkg");
		write_layer("GPKG", mp, "EPSG:4326", merc, VZ_ARRAY_SIZE(merc));
		tconf_init(&t, NULL);
		t.c.tms = vz_tms_find("WebMercatorQuad");
		t.c.tms_id = (char *)"WebMercatorQuad";
		t.c.z_max = 6;
		rc = stage_file(&t.c, mp, 10, &e, &s);
		VT_EQ_INT(rc, 0);
		VT_EQ_INT(s.skipped_outside, 3);
		VT_EQ_INT(s.polygons, 2);
		for (size_t i = 0; i < e.n; i++) {
			VT_CHECK(e.keys[i].x < 64 && e.keys[i].y < 64);
			VT_EQ_INT(e.keys[i].z, 6);
		}
		emitted_free(&e);
	}
	/* Unreadable input. */
	{
		struct vz_input in = {.path = (char *)pathf("nope.gpkg")};
		struct vz_stager *st = NULL;
		uint64_t n;
		tconf_init(&t, NULL);
		VT_EQ_INT(vz_stager_new(&t.c, &st), 0);
		VT_EQ_INT(vz_stage_count(st, &in, &n), VZ_E_INPUT);
		VT_CHECK(strstr(vz_err_msg(), "nope.gpkg") != NULL);
		vz_stager_free(st);
	}
}

/* A big polygon with many vertices spanning many tiles is clipped per
 * tile: each piece is the polygon within the tile, the tiles are those with
 * a non-empty intersection, and the pieces add up to the whole area. */
static void test_large_polygon(void)
{
	enum {
		NV = 2000
	};
	const char *gp = pathf("big.gpkg");
	char *w = malloc(NV * 64 + 64), *p = w;
	const char *one[1];
	struct tconf t;
	struct emitted e = {0};
	struct vz_stage_stats s;
	GEOSWKTReader *rd = GEOSWKTReader_create_r(gh);
	GEOSGeometry *poly;
	double sum = 0, area = 0, rec_area = -1;
	int rc, full_copies = 0, bad_piece = 0, expect_tiles = 0;
	uint32_t x0, y0, x1, y1;
	struct vz_bbox env;

	if (!w)
		abort();
	/* A 12-armed star around (-150, 70), radius 0.021..0.039 deg. */
	p += sprintf(p, "POLYGON ((");
	for (int i = 0; i <= NV; i++) {
		double a = 2 * M_PI * (i % NV) / NV;
		double r = 0.03 * (1 + 0.3 * cos(12 * a));
		p += sprintf(p, "%s%.12f %.12f", i ? ", " : "",
			     -150 + r * cos(a), 70 + r * sin(a));
	}
	sprintf(p, "))");
	one[0] = w;
	write_layer("GPKG", gp, "EPSG:4326", one, 1);
	poly = GEOSWKTReader_read_r(gh, rd, w);
	GEOSArea_r(gh, poly, &area);
	tconf_init(&t, NULL);
	rc = stage_file(&t.c, gp, 10, &e, &s);
	VT_EQ_INT(rc, 0);
	VT_EQ_INT(s.polygons, 1);
	VT_CHECK(e.n > 20);
	VT_EQ_INT(s.rows, e.n);
	for (size_t i = 0; i < e.n; i++) {
		struct vz_staged_iter it;
		struct vz_staged_rec r;
		struct vz_bbox b;
		GEOSGeometry *box, *inter;
		double ia = 0;

		vz_tms_bounds(t.c.tms, &e.keys[i], &b);
		box = GEOSGeom_createRectangle_r(gh, b.left, b.bottom, b.right,
						 b.top);
		inter = GEOSIntersection_r(gh, poly, box);
		GEOSArea_r(gh, inter, &ia);
		GEOSGeom_destroy_r(gh, inter);
		GEOSGeom_destroy_r(gh, box);
		sum += ia;
		VT_EQ_INT(count_records(&e.blobs[i]), 1);
		vz_staged_iter_init(&it, e.blobs[i].data, e.blobs[i].len);
		while (vz_staged_next(&it, &r) == 1) {
			uint32_t np = 0;
			double a2 = 0;
			size_t off = 0;

			rec_area = r.poly.area;
			for (uint32_t k = 0; k < r.poly.n_rings; k++)
				np += r.poly.ring_len[k];
			if (np > NV) {
				full_copies++;
				continue;
			}
			for (uint32_t k = 0; k < r.poly.n_rings; k++) {
				const double *xy = r.poly.xy + 2 * off;
				uint32_t n = r.poly.ring_len[k];
				double ra = 0;
				/* relative to the first point: no
				 * cancellation at (-150, 70) */
				for (uint32_t j = 0; j < n; j++) {
					uint32_t j2 = (j + 1) % n;
					double ax = xy[2 * j] - xy[0];
					double ay = xy[2 * j + 1] - xy[1];
					double bx = xy[2 * j2] - xy[0];
					double by = xy[2 * j2 + 1] - xy[1];
					ra += ax * by - bx * ay;
				}
				a2 += k ? -fabs(ra) / 2 : fabs(ra) / 2;
				off += n;
			}
			if (fabs(a2 - ia) > 1e-9 * area) {
				bad_piece++;
				fprintf(stderr,
					"tile %u/%u: piece %.17g, "
					"expected %.17g, %u rings\n",
					e.keys[i].x, e.keys[i].y, a2, ia,
					r.poly.n_rings);
			}
		}
	}
	/* The tiles with a piece of the polygon, by brute force. */
	GEOSGeom_getXMin_r(gh, poly, &env.left);
	GEOSGeom_getXMax_r(gh, poly, &env.right);
	GEOSGeom_getYMin_r(gh, poly, &env.bottom);
	GEOSGeom_getYMax_r(gh, poly, &env.top);
	vz_tms_tile_range(t.c.tms, ZMAX, &env, &x0, &y0, &x1, &y1);
	for (uint32_t x = x0; x <= x1; x++)
		for (uint32_t y = y0; y <= y1; y++) {
			struct vz_tile_key k = {x, y, ZMAX};
			struct vz_bbox b;
			GEOSGeometry *box;
			vz_tms_bounds(t.c.tms, &k, &b);
			box = GEOSGeom_createRectangle_r(gh, b.left, b.bottom,
							 b.right, b.top);
			expect_tiles += GEOSIntersects_r(gh, poly, box) == 1;
			GEOSGeom_destroy_r(gh, box);
		}
	VT_EQ_INT(e.n, expect_tiles);
	VT_EQ_INT(bad_piece, 0);
	VT_CHECK(full_copies < (int)e.n / 4);
	VT_NEAR(rec_area, area, 1e-15);
	VT_NEAR(sum, area, 1e-12 * area);
	GEOSGeom_destroy_r(gh, poly);
	GEOSWKTReader_destroy_r(gh, rd);
	emitted_free(&e);
	free(w);
}

/* A C-shaped polygon whose centroid lies in a tile it does not touch: that
 * tile still gets exactly one copy (deliberate fix, counts are conserved),
 * with few vertices (whole copies) and with many (clipped pieces). */
static void test_concave(void)
{
	for (int pass = 0; pass < 2; pass++) {
		int na = pass ? 400 : 40, rc, in_ctile = 0, hits = 0;
		const struct vz_tms *tms = vz_tms_find("WorldCRS84Quad");
		const char *gp = pathf(pass ? "c400.gpkg" : "c40.gpkg");
		char *w = malloc((size_t)na * 128 + 64), *p = w;
		struct vz_tile_key ck, rk;
		struct vz_stage_stats st;
		struct emitted e = {0};
		struct vz_bbox b;
		struct tconf t;
		const char *one[1];
		double span, cx, cy;
		GEOSWKTReader *rd = GEOSWKTReader_create_r(gh);
		GEOSGeometry *poly, *cen;

		if (!w)
			abort();
		vz_tms_point_tile(tms, ZMAX, -150.0001, 70.0001, &ck);
		vz_tms_bounds(tms, &ck, &b);
		span = b.right - b.left;
		cx = (b.left + b.right) / 2;
		cy = (b.bottom + b.top) / 2;
		p += sprintf(p, "POLYGON ((");
		for (int i = 0; i < 2 * na; i++) {
			int j = i < na ? i : 2 * na - 1 - i;
			double a = (20 + 320.0 * j / (na - 1)) * M_PI / 180;
			double r = (i < na ? 1.2 : 1.1) * span;
			p += sprintf(p, "%.15f %.15f, ", cx + r * cos(a),
				     cy + r * sin(a));
		}
		p += sprintf(p, "%.15f %.15f))",
			     cx + 1.2 * span * cos(M_PI / 9),
			     cy + 1.2 * span * sin(M_PI / 9));
		one[0] = w;
		write_layer("GPKG", gp, "EPSG:4326", one, 1);
		poly = GEOSWKTReader_read_r(gh, rd, w);
		cen = GEOSGetCentroid_r(gh, poly);
		GEOSGeomGetX_r(gh, cen, &cx);
		GEOSGeomGetY_r(gh, cen, &cy);
		GEOSGeom_destroy_r(gh, cen);
		vz_tms_point_tile(tms, ZMAX, cx, cy, &rk);
		VT_CHECK(rk.x == ck.x && rk.y == ck.y);
		tconf_init(&t, NULL);
		rc = stage_file(&t.c, gp, 10, &e, &st);
		VT_EQ_INT(rc, 0);
		for (size_t i = 0; i < e.n; i++) {
			GEOSGeometry *box;
			vz_tms_bounds(tms, &e.keys[i], &b);
			box = GEOSGeom_createRectangle_r(gh, b.left, b.bottom,
							 b.right, b.top);
			if (e.keys[i].x == ck.x && e.keys[i].y == ck.y) {
				in_ctile += count_records(&e.blobs[i]);
				VT_EQ_INT(GEOSIntersects_r(gh, poly, box), 0);
			} else {
				hits += GEOSIntersects_r(gh, poly, box) == 1;
			}
			GEOSGeom_destroy_r(gh, box);
		}
		VT_EQ_INT(in_ctile, 1);
		VT_EQ_INT(hits, (int)e.n - 1);
		VT_EQ_INT(st.rows, e.n);
		VT_CHECK(e.n >= 9);
		GEOSGeom_destroy_r(gh, poly);
		GEOSWKTReader_destroy_r(gh, rd);
		emitted_free(&e);
		free(w);
	}
}

/* Stagers in concurrent threads (own GEOS, PROJ, GDAL handles and error
 * handlers) produce the bytes a single thread produces. */
struct thr {
	const struct vz_conf *c;
	const char *path;
	struct emitted e;
	struct vz_stage_stats s;
	int rc;
};

static void *thr_main(void *ud)
{
	struct thr *t = ud;
	t->rc = stage_file(t->c, t->path, 250, &t->e, &t->s);
	return NULL;
}

static void test_threads(void)
{
	struct vz_sample_opts o = {.n = 1500,
				   .west = 20.0,
				   .south = 68.0,
				   .east = 20.01,
				   .north = 68.01,
				   .seed = 7};
	const char *pa = pathf("thr.gpkg");
	struct thr t[4];
	pthread_t tid[4];
	struct tconf tc;

	VT_EQ_INT(vz_sample_write(&o, pa), 0);
	tconf_init(&tc, "Class");
	tc.c.has_simplify = true;
	tc.c.simplify_tolerance = 0.3;
	for (int i = 0; i < 4; i++) {
		memset(&t[i], 0, sizeof t[i]);
		t[i].c = &tc.c;
		t[i].path = pa;
		pthread_create(&tid[i], NULL, thr_main, &t[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(tid[i], NULL);
	for (int i = 0; i < 4; i++) {
		int same = t[i].e.n == t[0].e.n;
		VT_EQ_INT(t[i].rc, 0);
		VT_EQ_INT(t[i].s.features, 1500);
		for (size_t j = 0; same && j < t[0].e.n; j++)
			same = t[i].e.keys[j].x == t[0].e.keys[j].x &&
			       t[i].e.keys[j].y == t[0].e.keys[j].y &&
			       t[i].e.blobs[j].len == t[0].e.blobs[j].len &&
			       memcmp(t[i].e.blobs[j].data,
				      t[0].e.blobs[j].data,
				      t[0].e.blobs[j].len) == 0;
		VT_CHECK(same);
	}
	for (int i = 0; i < 4; i++)
		emitted_free(&t[i].e);
}

/* Random, mostly broken polygons (self-intersections, duplicate points,
 * spikes, holes outside the shell, rings of 1-3 points): staging never
 * fails or crashes, and whatever it emits is finite and inside its tile's
 * neighbourhood. */
static void test_random_geometries(void)
{
	enum {
		NF = 400
	};
	const char *gp = pathf("random.gpkg");
	GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GPKG"), gp, 0, 0, 0,
				     GDT_Unknown, NULL);
	OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
	uint64_t r = 99;
	struct emitted e = {0};
	struct vz_stage_stats s;
	struct tconf t;
	OGRLayerH l;
	int bad = 0;

	CPLPushErrorHandler(CPLQuietErrorHandler);
	OSRSetFromUserInput(srs, "EPSG:4326");
	l = GDALDatasetCreateLayer(ds, "r", srs, wkbUnknown, NULL);
	for (int i = 0; i < NF; i++) {
		OGRFeatureH f = OGR_F_Create(OGR_L_GetLayerDefn(l));
		OGRGeometryH g = OGR_G_CreateGeometry(wkbPolygon);
		int nr = 1 + (int)(r % 3);
		for (int k = 0; k < nr; k++) {
			OGRGeometryH ring = OGR_G_CreateGeometry(wkbLinearRing);
			int np;
			r = r * 6364136223846793005ULL + 1442695040888963407ULL;
			np = 1 + (int)((r >> 33) % 12);
			for (int j = 0; j < np; j++) {
				double x, y;
				r = r * 6364136223846793005ULL +
				    1442695040888963407ULL;
				x = -150 + (double)((r >> 20) % 1000) * 2e-5;
				y = 70 + (double)((r >> 40) % 1000) * 2e-5;
				if (j > 0 && (r >> 7) % 5 == 0) /* duplicate */
					OGR_G_GetPoint(ring, j - 1, &x, &y,
						       NULL);
				OGR_G_AddPoint_2D(ring, x, y);
			}
			if ((r >> 11) % 2)
				OGR_G_CloseRings(ring);
			OGR_G_AddGeometryDirectly(g, ring);
		}
		OGR_F_SetGeometryDirectly(f, g);
		VT_EQ_INT(OGR_L_CreateFeature(l, f), OGRERR_NONE);
		OGR_F_Destroy(f);
	}
	OSRDestroySpatialReference(srs);
	GDALClose(ds);
	CPLPopErrorHandler();

	tconf_init(&t, NULL);
	t.c.has_simplify = true;
	t.c.simplify_tolerance = 1e-4;
	VT_EQ_INT(stage_file(&t.c, gp, 57, &e, &s), 0);
	VT_EQ_INT(s.features, NF);
	VT_CHECK(s.polygons > 0);
	VT_CHECK(s.repaired > 0);
	VT_CHECK(s.skipped_invalid > 0);
	for (size_t i = 0; i < e.n; i++) {
		struct vz_staged_iter it;
		struct vz_staged_rec rec;
		struct vz_bbox b;
		int rc;

		vz_tms_bounds(t.c.tms, &e.keys[i], &b);
		vz_staged_iter_init(&it, e.blobs[i].data, e.blobs[i].len);
		while ((rc = vz_staged_next(&it, &rec)) == 1) {
			uint32_t np = 0;
			bad += !isfinite(rec.poly.cx) || !isfinite(rec.poly.cy);
			bad += !(rec.poly.area >= 0) || rec.poly.n_rings == 0;
			for (uint32_t k = 0; k < rec.poly.n_rings; k++)
				np += rec.poly.ring_len[k];
			for (uint32_t k = 0; k < 2 * np; k++)
				bad += !isfinite(rec.poly.xy[k]);
		}
		bad += rc != 0;
	}
	VT_EQ_INT(bad, 0);
	emitted_free(&e);
}

/* ---------------------------------------------------------------------- */
/* Pre-staged PDG tiles */

static void test_prestaged_example(void)
{
	const char *p = "/work/shared/data/pdg-minimal-example/staged/"
			"WorldCRS84Quad/13/1524/910.gpkg";
	struct vz_input in = {.path = (char *)p,
			      .relname =
				      (char *)"WorldCRS84Quad/13/1524/910.gpkg",
			      .prestaged = true,
			      .key = {1524, 910, 13}};
	struct vz_stage_stats s = {0};
	struct vz_stager *st = NULL;
	struct vz_buf blob = {0};
	struct vz_staged_iter it;
	struct vz_staged_rec r;
	struct tconf t;
	int n = 0, in_tile = 0, pos_area = 0;

	if (access(p, R_OK) != 0) {
		printf("skip: %s absent\n", p);
		return;
	}
	tconf_init(&t, NULL);
	t.c.z_max = 13;
	/* input_crs describes raw inputs: it must not apply to staged tiles */
	t.c.input_crs = (char *)"EPSG:3413";
	VT_EQ_INT(vz_stager_new(&t.c, &st), 0);
	VT_EQ_INT(vz_stage_prestaged(st, &in, 3, &blob, &s), 0);
	VT_EQ_INT(s.features, 1551);
	VT_EQ_INT(s.polygons, 1551);
	VT_EQ_INT(vz_staged_iter_init(&it, blob.data, blob.len), 0);
	while (vz_staged_next(&it, &r) == 1) {
		struct vz_tile_key k;
		n++;
		vz_tms_point_tile(t.c.tms, 13, r.poly.cx, r.poly.cy, &k);
		in_tile += k.x == 1524 && k.y == 910;
		pos_area += r.poly.area > 0;
		VT_EQ_INT(r.input, 3);
	}
	VT_EQ_INT(n, 1551);
	VT_EQ_INT(in_tile, 1551); /* spec §11.2: every centroid inside */
	VT_EQ_INT(pos_area, 1551);
	/* A second file appends to the same blob. */
	VT_EQ_INT(vz_stage_prestaged(st, &in, 3, &blob, &s), 0);
	VT_EQ_INT(count_records(&blob), 3102);
	vz_buf_free(&blob);
	vz_stager_free(st);
}

int main(void)
{
	GDALAllRegister();
	gh = GEOS_init_r();
	tmp = vt_tmpdir();
	vz_log_set_level(VZ_LOG_ERR);

	test_blob();
	test_discover();
	test_sample_and_stage();
	test_odd_geometries();
	test_large_polygon();
	test_concave();
	test_threads();
	test_random_geometries();
	test_prestaged_example();

	GEOS_finish_r(gh);
	{
		char cmd[1100];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmp);
	}
	for (int i = 0; i < n_allocs; i++)
		free(allocs[i]);
	return vt_done("test_stage");
}
