/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the WMTS capabilities, the legends and the viewer site. */
#include "vt.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cpl_minixml.h>
#include <cpl_string.h>
#include <gdal.h>
#include <json-c/json.h>

#include "vizfs/conf.h"
#include "vizfs/geotiff.h"
#include "vizfs/palette.h"
#include "vizfs/path.h"
#include "vizfs/png.h"
#include "vizfs/wmts.h"

/* OGC WMTS 1.0.0 Annex E: z0 scale denominators of the well-known sets
 * (256-pixel tiles); independent of the code under test. */
#define SCALE_CRS84_Z0 279541132.0143589
#define SCALE_MERC_Z0 559082264.0287178

#define STATS                                                                  \
	"\"statistics\": ["                                                    \
	"{\"name\": \"coverage\", \"weight_by\": \"area\", \"property\": "     \
	"\"area_per_pixel_area\", \"aggregation_method\": \"sum\", "           \
	"\"resampling_method\": \"average\", \"val_range\": [0, 1], "          \
	"\"palette\": [\"#f8ff1f1A\", \"#f8ff1f\"], \"nodata_val\": 0},"       \
	"{\"name\": \"polygon count\", \"weight_by\": \"count\", "             \
	"\"property\": \"centroids_per_pixel\", \"aggregation_method\": "      \
	"\"sum\", \"resampling_method\": \"sum\", \"val_range\": [0, null], "  \
	"\"z_config\": {\"3\": {\"val_range\": [null, 7]}}}]"

static struct vz_conf *conf(const char *tms, const char *extra)
{
	char json[4096];
	struct vz_conf *c = NULL;

	snprintf(json, sizeof json,
		 "{\"tms_id\": \"%s\", \"z_range\": [0, 5], "
		 "\"tile_size\": [256, 256], %s " STATS "}",
		 tms, extra ? extra : "");
	if (vz_conf_parse(json, strlen(json), "/x/my tiles.json", "/base",
			  &c)) {
		fprintf(stderr, "config failed: %s\n", vz_err_msg());
		vt_failed++;
		return NULL;
	}
	return c;
}

/* A pyramid: at z5 tiles x 3..5, y 2..4 (9 tiles, one missing), and their
 * parents up to z0. */
struct pyr {
	struct vz_tile_key k[6][16];
	size_t n[6];
};

static int cmp_key(const void *a, const void *b)
{
	const struct vz_tile_key *p = a, *q = b;

	if (p->x != q->x)
		return p->x < q->x ? -1 : 1;
	return p->y < q->y ? -1 : p->y > q->y;
}

static void make_pyr(struct pyr *p, struct vz_wmts_input *in)
{
	memset(p, 0, sizeof *p);
	memset(in, 0, sizeof *in);
	for (uint32_t x = 3; x <= 5; x++)
		for (uint32_t y = 2; y <= 4; y++)
			if (!(x == 4 && y == 3))
				p->k[5][p->n[5]++] =
					(struct vz_tile_key){x, y, 5};
	for (int z = 4; z >= 0; z--) {
		for (size_t i = 0; i < p->n[z + 1]; i++) {
			struct vz_tile_key par;
			bool dup = false;
			vz_tms_parent(&p->k[z + 1][i], &par);
			for (size_t j = 0; j < p->n[z]; j++)
				dup |= p->k[z][j].x == par.x &&
				       p->k[z][j].y == par.y;
			if (!dup)
				p->k[z][p->n[z]++] = par;
		}
		qsort(p->k[z], p->n[z], sizeof p->k[z][0], cmp_key);
	}
	for (int z = 0; z <= 5; z++) {
		in->level[z].keys = p->k[z];
		in->level[z].n = p->n[z];
	}
}

static CPLXMLNode *parse_caps(const struct vz_buf *b)
{
	char *s = malloc(b->len + 1);
	CPLXMLNode *x;

	memcpy(s, b->data, b->len);
	s[b->len] = '\0';
	CPLPushErrorHandler(CPLQuietErrorHandler);
	x = CPLParseXMLString(s);
	CPLPopErrorHandler();
	free(s);
	VT_CHECK(x != NULL);
	if (x)
		CPLStripXMLNamespace(x, NULL, TRUE);
	return x;
}

static CPLXMLNode *child(CPLXMLNode *n, const char *name, int idx)
{
	for (CPLXMLNode *c = n ? n->psChild : NULL; c; c = c->psNext)
		if (c->eType == CXT_Element && strcmp(c->pszValue, name) == 0 &&
		    idx-- == 0)
			return c;
	return NULL;
}

static int count(CPLXMLNode *n, const char *name)
{
	int k = 0;

	while (child(n, name, k))
		k++;
	return k;
}

static void two(const char *s, double *a, double *b)
{
	*a = *b = NAN;
	if (s)
		sscanf(s, "%lf %lf", a, b);
}

/* the template with {TileMatrix} etc. replaced == vz_path_format() */
static void check_template(const struct vz_conf *c, int stat, const char *tmpl,
			   const struct vz_tile_key *k)
{
	char want[512], got[512], num[3][16];
	struct vz_tile_ref r = {stat >= 0 ? VZ_KIND_PNG : VZ_KIND_GEOTIFF, stat,
				*k};
	const char *keys[3] = {"{TileMatrix}", "{TileCol}", "{TileRow}"};
	size_t o = 0;

	snprintf(num[0], sizeof num[0], "%u", (unsigned)k->z);
	snprintf(num[1], sizeof num[1], "%u", k->x);
	snprintf(num[2], sizeof num[2], "%u", k->y);
	for (const char *p = tmpl; *p && o + 16 < sizeof got;) {
		int hit = -1;
		for (int i = 0; i < 3; i++)
			if (strncmp(p, keys[i], strlen(keys[i])) == 0)
				hit = i;
		if (hit >= 0) {
			o += (size_t)sprintf(got + o, "%s", num[hit]);
			p += strlen(keys[hit]);
		} else if (strncmp(p, "%20", 3) == 0) {
			got[o++] = ' ';
			p += 3;
		} else {
			got[o++] = *p++;
		}
	}
	got[o] = '\0';
	VT_CHECK(vz_path_format(c, &r, want, sizeof want) > 0);
	vt_checks++;
	if (strcmp(got, want) != 0) {
		vt_failed++;
		fprintf(stderr, "template %s gives %s, want %s\n", tmpl, got,
			want);
	}
}

static void test_crs84(void)
{
	struct vz_conf *c = conf("WorldCRS84Quad", NULL);
	struct vz_wmts_input in;
	struct vz_buf b = {0};
	struct pyr p;
	CPLXMLNode *x, *cont, *tms;
	double a, d;

	if (!c)
		return;
	make_pyr(&p, &in);
	VT_EQ_INT(vz_wmts_capabilities(c, &in, &b), 0);
	x = parse_caps(&b);
	cont = CPLGetXMLNode(x, "=Capabilities.Contents");
	VT_CHECK(cont != NULL);
	VT_EQ_INT(count(cont, "Layer"), 2);
	VT_EQ_INT(count(cont, "TileMatrixSet"), 1);

	tms = child(cont, "TileMatrixSet", 0);
	VT_CHECK(strcmp(CPLGetXMLValue(tms, "Identifier", ""),
			"WorldCRS84Quad") == 0);
	VT_CHECK(strcmp(CPLGetXMLValue(tms, "SupportedCRS", ""),
			"urn:ogc:def:crs:OGC:1.3:CRS84") == 0);
	VT_EQ_INT(count(tms, "TileMatrix"), 6);
	for (int z = 0; z <= 5; z++) {
		CPLXMLNode *m = child(tms, "TileMatrix", z);
		VT_EQ_INT(atoi(CPLGetXMLValue(m, "Identifier", "-1")), z);
		/* 2x1 at z0: 2^(z+1) x 2^z */
		VT_EQ_INT(atol(CPLGetXMLValue(m, "MatrixWidth", "0")), 2L << z);
		VT_EQ_INT(atol(CPLGetXMLValue(m, "MatrixHeight", "0")),
			  1L << z);
		VT_EQ_INT(atoi(CPLGetXMLValue(m, "TileWidth", "0")), 256);
		VT_NEAR(CPLAtof(CPLGetXMLValue(m, "ScaleDenominator", "0")),
			SCALE_CRS84_Z0 / (1 << z), 1e-6);
		VT_CHECK(strcmp(CPLGetXMLValue(m, "TopLeftCorner", ""),
				"-180 90") == 0);
	}
	/* numbers are written positionally, shortest round trip */
	VT_CHECK(strstr((const char *)b.data, "<ScaleDenominator>"
					      "279541132.0143589<") != NULL);

	for (int s = 0; s < 2; s++) {
		CPLXMLNode *l = child(cont, "Layer", s);
		CPLXMLNode *lim = child(child(l, "TileMatrixSetLink", 0),
					"TileMatrixSetLimits", 0);
		const char *t = CPLGetXMLValue(l, "ResourceURL.template", "");
		VT_CHECK(strcmp(CPLGetXMLValue(l, "Identifier", ""),
				c->stats[s].name) == 0);
		VT_CHECK(strcmp(CPLGetXMLValue(l, "Format", ""), "image/png") ==
			 0);
		VT_CHECK(strcmp(CPLGetXMLValue(l,
					       "TileMatrixSetLink."
					       "TileMatrixSet",
					       ""),
				"WorldCRS84Quad") == 0);
		for (int z = 0; z <= 5; z++)
			for (size_t i = 0; i < p.n[z]; i++)
				check_template(c, s, t, &p.k[z][i]);
		/* limits: min/max of the index per zoom */
		VT_EQ_INT(count(lim, "TileMatrixLimits"), 6);
		for (int z = 0; z <= 5; z++) {
			CPLXMLNode *m = child(lim, "TileMatrixLimits", z);
			uint32_t x0 = UINT32_MAX, x1 = 0, y0 = UINT32_MAX,
				 y1 = 0;
			for (size_t i = 0; i < p.n[z]; i++) {
				x0 = p.k[z][i].x < x0 ? p.k[z][i].x : x0;
				x1 = p.k[z][i].x > x1 ? p.k[z][i].x : x1;
				y0 = p.k[z][i].y < y0 ? p.k[z][i].y : y0;
				y1 = p.k[z][i].y > y1 ? p.k[z][i].y : y1;
			}
			VT_EQ_INT(atoi(CPLGetXMLValue(m, "TileMatrix", "")), z);
			VT_EQ_INT(atol(CPLGetXMLValue(m, "MinTileCol", "")),
				  x0);
			VT_EQ_INT(atol(CPLGetXMLValue(m, "MaxTileCol", "")),
				  x1);
			VT_EQ_INT(atol(CPLGetXMLValue(m, "MinTileRow", "")),
				  y0);
			VT_EQ_INT(atol(CPLGetXMLValue(m, "MaxTileRow", "")),
				  y1);
		}
		/* z5 tiles 3..5 x 2..4, 180/32 degrees each */
		two(CPLGetXMLValue(l, "WGS84BoundingBox.LowerCorner", NULL), &a,
		    &d);
		VT_NEAR(a, -180 + 3 * 5.625, 1e-8);
		VT_NEAR(d, 90 - 5 * 5.625, 1e-8);
		two(CPLGetXMLValue(l, "WGS84BoundingBox.UpperCorner", NULL), &a,
		    &d);
		VT_NEAR(a, -180 + 6 * 5.625, 1e-8);
		VT_NEAR(d, 90 - 2 * 5.625, 1e-8);
		VT_CHECK(strstr(CPLGetXMLValue(l, "Style.LegendURL.href", ""),
				"viewer/legend-") != NULL);
	}
	/* the stat name with a blank is percent-encoded in the URL */
	VT_CHECK(strstr(CPLGetXMLValue(child(cont, "Layer", 1),
				       "ResourceURL.template", ""),
			"web_tiles/polygon%20count/WorldCRS84Quad/"
			"{TileMatrix}/{TileCol}/{TileRow}.png") != NULL);
	/* the legend text carries the range, with the z_config override */
	VT_CHECK(strstr(CPLGetXMLValue(child(cont, "Layer", 0), "Abstract", ""),
			"from 0 to 1") != NULL);
	VT_CHECK(strstr(CPLGetXMLValue(child(cont, "Layer", 1), "Abstract", ""),
			"z3: 0 to 7; z4: 0 to the maximum of the zoom level") !=
		 NULL);
	VT_CHECK(strstr((const char *)b.data, "xlink:href=\"viewer/legend-"
					      "polygon%20count.png\"") != NULL);
	CPLDestroyXMLNode(x);
	vz_buf_free(&b);

	/* a base URL prefixes every URL */
	in.base_url = "https://example.org/tiles";
	VT_EQ_INT(vz_wmts_capabilities(c, &in, &b), 0);
	x = parse_caps(&b);
	VT_CHECK(strcmp(CPLGetXMLValue(
				x, "=Capabilities.ServiceMetadataURL.href", ""),
			"https://example.org/tiles/WMTSCapabilities.xml") == 0);
	VT_CHECK(strncmp(CPLGetXMLValue(x,
					"=Capabilities.Contents.Layer."
					"ResourceURL.template",
					""),
			 "https://example.org/tiles/web_tiles/coverage/",
			 45) == 0);
	CPLDestroyXMLNode(x);
	vz_buf_free(&b);
	vz_conf_free(c);
}

static void test_wgs84_axis_order(void)
{
	struct vz_conf *c = conf("WGS1984Quad", NULL);
	struct vz_wmts_input in;
	struct vz_buf b = {0};
	struct pyr p;
	CPLXMLNode *x, *tms, *l;
	double a, d;

	if (!c)
		return;
	make_pyr(&p, &in);
	VT_EQ_INT(vz_wmts_capabilities(c, &in, &b), 0);
	x = parse_caps(&b);
	tms = CPLGetXMLNode(x, "=Capabilities.Contents.TileMatrixSet");
	VT_CHECK(strcmp(CPLGetXMLValue(tms, "SupportedCRS", ""),
			"urn:ogc:def:crs:EPSG::4326") == 0);
	for (int z = 0; z <= 5; z++) {
		CPLXMLNode *m = child(tms, "TileMatrix", z);
		/* EPSG:4326 is lat,lon: the corner is "90 -180" */
		VT_CHECK(strcmp(CPLGetXMLValue(m, "TopLeftCorner", ""),
				"90 -180") == 0);
		VT_EQ_INT(atol(CPLGetXMLValue(m, "MatrixWidth", "0")), 2L << z);
	}
	l = CPLGetXMLNode(x, "=Capabilities.Contents.Layer");
	/* WGS84BoundingBox stays lon,lat; the EPSG:4326 box is lat,lon */
	two(CPLGetXMLValue(l, "WGS84BoundingBox.LowerCorner", NULL), &a, &d);
	VT_NEAR(a, -163.125, 1e-8);
	VT_NEAR(d, 61.875, 1e-8);
	two(CPLGetXMLValue(l, "BoundingBox.LowerCorner", NULL), &a, &d);
	VT_NEAR(a, 61.875, 1e-12);
	VT_NEAR(d, -163.125, 1e-12);
	CPLDestroyXMLNode(x);
	vz_buf_free(&b);
	vz_conf_free(c);
}

static void test_webmercator(void)
{
	struct vz_conf *c = conf("WebMercatorQuad", NULL);
	struct vz_wmts_input in;
	struct vz_buf b = {0};
	struct pyr p;
	CPLXMLNode *x, *tms, *l;
	double a, d;

	if (!c)
		return;
	/* WebMercatorQuad has 2^z columns: keep x below 32 at z5 */
	make_pyr(&p, &in);
	VT_EQ_INT(vz_wmts_capabilities(c, &in, &b), 0);
	x = parse_caps(&b);
	tms = CPLGetXMLNode(x, "=Capabilities.Contents.TileMatrixSet");
	VT_CHECK(strcmp(CPLGetXMLValue(tms, "SupportedCRS", ""),
			"urn:ogc:def:crs:EPSG::3857") == 0);
	for (int z = 0; z <= 5; z++) {
		CPLXMLNode *m = child(tms, "TileMatrix", z);
		VT_EQ_INT(atol(CPLGetXMLValue(m, "MatrixWidth", "0")), 1L << z);
		VT_EQ_INT(atol(CPLGetXMLValue(m, "MatrixHeight", "0")),
			  1L << z);
		VT_NEAR(CPLAtof(CPLGetXMLValue(m, "ScaleDenominator", "0")),
			SCALE_MERC_Z0 / (1 << z), 1e-6);
		VT_CHECK(strcmp(CPLGetXMLValue(m, "TopLeftCorner", ""),
				"-20037508.342789244 20037508.342789244") == 0);
	}
	l = CPLGetXMLNode(x, "=Capabilities.Contents.Layer");
	/* x 3..5 of 32 columns: lon -180 + 3 * 11.25; row 2 top latitude */
	two(CPLGetXMLValue(l, "WGS84BoundingBox.LowerCorner", NULL), &a, &d);
	VT_NEAR(a, -180 + 3 * 11.25, 1e-7);
	VT_NEAR(d, atan(sinh(M_PI * (1 - 2 * 5.0 / 32))) * 180 / M_PI, 1e-7);
	two(CPLGetXMLValue(l, "WGS84BoundingBox.UpperCorner", NULL), &a, &d);
	VT_NEAR(a, -180 + 6 * 11.25, 1e-7);
	VT_NEAR(d, atan(sinh(M_PI * (1 - 2 * 2.0 / 32))) * 180 / M_PI, 1e-7);
	CPLDestroyXMLNode(x);
	vz_buf_free(&b);
	vz_conf_free(c);
}

/* GDAL's WMTS driver reads the document: layers as subdatasets, the
 * extent of the most precise matrix and its resolution. */
static void test_gdal_reads_it(const char *tms, double px)
{
	struct vz_conf *c = conf(tms, NULL);
	struct vz_wmts_input in;
	struct vz_buf b = {0};
	struct pyr p;
	char path[512], name[600];
	GDALDatasetH ds;
	double gt[6];
	FILE *f;

	if (!c)
		return;
	make_pyr(&p, &in);
	VT_EQ_INT(vz_wmts_capabilities(c, &in, &b), 0);
	snprintf(path, sizeof path, "%s/caps-%s.xml", vt_tmpdir(), tms);
	f = fopen(path, "w");
	VT_CHECK(f && fwrite(b.data, 1, b.len, f) == b.len);
	if (f)
		fclose(f);
	snprintf(name, sizeof name, "WMTS:%s", path);
	ds = GDALOpen(name, GA_ReadOnly);
	VT_CHECK(ds != NULL);
	if (ds) {
		char **sub = GDALGetMetadata(ds, "SUBDATASETS");
		VT_EQ_INT(CSLCount(sub), 4); /* NAME + DESC per layer */
		VT_CHECK(CSLFetchNameValue(sub, "SUBDATASET_2_NAME") &&
			 strstr(CSLFetchNameValue(sub, "SUBDATASET_2_NAME"),
				"polygon count"));
		GDALClose(ds);
	}
	snprintf(name, sizeof name, "WMTS:%s,layer=coverage", path);
	ds = GDALOpen(name, GA_ReadOnly);
	VT_CHECK(ds != NULL);
	if (ds) {
		VT_EQ_INT(GDALGetRasterXSize(ds), 3 * 256);
		VT_EQ_INT(GDALGetRasterYSize(ds), 3 * 256);
		VT_EQ_INT(GDALGetRasterCount(ds), 4);
		VT_EQ_INT(GDALGetGeoTransform(ds, gt), CE_None);
		VT_NEAR(gt[1], px, px * 1e-9);
		VT_NEAR(gt[5], -px, px * 1e-9);
		VT_NEAR(gt[0],
			(-180 + 3 * 5.625) * (px > 1 ? 0 : 1) +
				(px > 1 ? -20037508.342789244 + 3 * 256 * px :
					  0),
			px * 1e-3);
		GDALClose(ds);
	}
	vz_buf_free(&b);
	vz_conf_free(c);
}

static void test_short_paths(void)
{
	struct vz_conf *c = NULL;
	const char *json =
		"{\"tile_path_structure\": [\"z\", \"x\", \"y\"], "
		"\"z_range\": [2, 4], \"statistics\": [{\"name\": \"n\", "
		"\"weight_by\": \"count\", \"property\": "
		"\"centroids_per_pixel\", \"aggregation_method\": \"sum\", "
		"\"resampling_method\": \"sum\"}]}";
	char t[256];
	struct vz_tile_key k = {7, 3, 4};
	struct vz_wmts_input in;
	struct vz_buf b = {0};
	CPLXMLNode *x, *tms;

	if (vz_conf_parse(json, strlen(json), "s", "/base", &c)) {
		vt_failed++;
		return;
	}
	VT_EQ_INT(vz_wmts_template(c, 0, "{TileMatrix}", "{TileCol}",
				   "{TileRow}", t, sizeof t),
		  (long long)strlen("web_tiles/{TileMatrix}/{TileCol}/"
				    "{TileRow}.png"));
	check_template(c, 0, t, &k);
	VT_CHECK(vz_wmts_template(c, -1, "{TileMatrix}", "{TileCol}",
				  "{TileRow}", t, sizeof t) > 0);
	check_template(c, -1, t, &k);
	VT_EQ_INT(vz_wmts_template(c, 0, "{z}", "{x}", "{y}", t, 10),
		  -ENAMETOOLONG);
	VT_EQ_INT(vz_wmts_template(c, 1, "{z}", "{x}", "{y}", t, sizeof t),
		  -EINVAL);

	/* an empty index: the matrix set's extent, levels 2..4 only */
	memset(&in, 0, sizeof in);
	VT_EQ_INT(vz_wmts_capabilities(c, &in, &b), 0);
	x = parse_caps(&b);
	tms = CPLGetXMLNode(x, "=Capabilities.Contents.TileMatrixSet");
	VT_EQ_INT(count(tms, "TileMatrix"), 3);
	VT_EQ_INT(atoi(CPLGetXMLValue(child(tms, "TileMatrix", 0), "Identifier",
				      "")),
		  2);
	VT_CHECK(strcmp(CPLGetXMLValue(x,
				       "=Capabilities.Contents.Layer."
				       "WGS84BoundingBox.LowerCorner",
				       ""),
			"-180.000000000 -90.000000000") == 0);
	CPLDestroyXMLNode(x);
	vz_buf_free(&b);
	vz_conf_free(c);
}

/* index.html's embedded configuration */
static json_object *page_config(const struct vz_wmts_file *f)
{
	const char *tag = "<script id=\"vizfs-config\" "
			  "type=\"application/json\">";
	char *s = strndup((const char *)f->data, f->len), *a, *e;
	json_object *j = NULL;

	a = strstr(s, tag);
	e = a ? strstr(a, "</script>") : NULL;
	VT_CHECK(a && e);
	if (a && e) {
		*e = '\0';
		j = json_tokener_parse(a + strlen(tag));
	}
	VT_CHECK(j != NULL);
	free(s);
	return j;
}

static void test_site(void)
{
	struct vz_conf *c = conf("WorldCRS84Quad", NULL);
	struct vz_wmts_input in;
	struct vz_wmts_site *site = NULL;
	const struct vz_wmts_file *f;
	double zr[VZ_MAX_ZOOM + 1][VZ_MAX_STATS][2];
	bool zok[VZ_MAX_ZOOM + 1] = {0};
	struct vz_lut lut;
	struct vz_buf rgba = {0};
	uint32_t w, h;
	struct pyr p;
	char dir[512], path[700];
	struct stat st;

	if (!c)
		return;
	make_pyr(&p, &in);
	memset(zr, 0, sizeof zr);
	zr[4][1][0] = 0;
	zr[4][1][1] = 42.5;
	zok[4] = true;
	in.zrange = (const double(*)[VZ_MAX_STATS][2])zr;
	in.zrange_ok = zok;
	in.title = "A & B <test>";
	VT_EQ_INT(vz_wmts_site_new(c, &in, &site), 0);
	if (!site)
		return;
	VT_CHECK(vz_wmts_site_find(site, "WMTSCapabilities.xml") != NULL);
	VT_CHECK(vz_wmts_site_find(site, "/WMTSCapabilities.xml") != NULL);
	VT_CHECK(vz_wmts_site_find(site, "nothing") == NULL);
	VT_CHECK(vz_wmts_site_is_dir(site, "viewer"));
	VT_CHECK(!vz_wmts_site_is_dir(site, "view"));
	VT_CHECK(!vz_wmts_site_is_dir(site, "index.html"));
	/* root files first, then viewer/ sorted */
	for (size_t i = 0; i + 1 < vz_wmts_site_count(site); i++) {
		const char *a = vz_wmts_site_file(site, i)->path;
		const char *b = vz_wmts_site_file(site, i + 1)->path;
		bool ra = !strchr(a, '/'), rb = !strchr(b, '/');
		VT_CHECK(ra > rb || (ra == rb && strcmp(a, b) < 0));
	}
	VT_CHECK(vz_wmts_site_file(site, vz_wmts_site_count(site)) == NULL);

	/* legends: LUT entry i in column i */
	f = vz_wmts_site_find(site, "viewer/legend-polygon count.png");
	VT_CHECK(f != NULL);
	VT_EQ_INT(vz_lut_build(NULL, 0, NULL, &lut), 0);
	if (f && vz_png_decode(f->data, f->len, &w, &h, &rgba) == 0) {
		VT_EQ_INT(w, 256);
		VT_EQ_INT(h, 16);
		for (int i = 0; i < 256; i += 51)
			VT_CHECK(memcmp(rgba.data + 4 * (5 * 256 + i),
					lut.rgba[i], 4) == 0);
	} else {
		VT_CHECK(!"legend decodes");
	}
	vz_buf_free(&rgba);

	f = vz_wmts_site_find(site, "index.html");
	VT_EQ_INT(f != NULL, vz_wmts_have_viewer());
	if (f) {
		json_object *j = page_config(f), *v, *s1, *r;
		VT_CHECK(strstr((const char *)f->data,
				"<title>A &amp; B &lt;test&gt;</title>"));
		VT_CHECK(json_object_object_get_ex(j, "zmax", &v) &&
			 json_object_get_int(v) == 5);
		VT_CHECK(json_object_object_get_ex(j, "crs", &v) &&
			 strcmp(json_object_get_string(v), "EPSG4326") == 0);
		VT_CHECK(json_object_object_get_ex(j, "title", &v) &&
			 strcmp(json_object_get_string(v), "A & B <test>") ==
				 0);
		/* every tile listed, at its zoom */
		VT_CHECK(json_object_object_get_ex(j, "tiles", &v));
		for (int z = 0; z <= 5; z++)
			VT_EQ_INT(json_object_array_length(
					  json_object_array_get_idx(v, z)),
				  2 * p.n[z]);
		VT_CHECK(json_object_object_get_ex(j, "tif", &v) &&
			 strcmp(json_object_get_string(v),
				"geotiff/WorldCRS84Quad/{z}/{x}/{y}.tif") == 0);
		json_object_object_get_ex(j, "stats", &v);
		s1 = json_object_array_get_idx(v, 1);
		VT_CHECK(json_object_object_get_ex(s1, "png", &r) &&
			 strcmp(json_object_get_string(r),
				"web_tiles/polygon%20count/WorldCRS84Quad/{z}/"
				"{x}/{y}.png") == 0);
		VT_CHECK(json_object_object_get_ex(s1, "lut", &r) &&
			 strlen(json_object_get_string(r)) == 257 * 8);
		/* ranges: configured min, z3 override, computed z4 max */
		json_object_object_get_ex(s1, "ranges", &r);
		VT_NEAR(json_object_get_double(json_object_array_get_idx(
				json_object_array_get_idx(r, 3), 1)),
			7, 0);
		VT_NEAR(json_object_get_double(json_object_array_get_idx(
				json_object_array_get_idx(r, 4), 1)),
			42.5, 0);
		VT_CHECK(json_object_get_type(json_object_array_get_idx(
				 json_object_array_get_idx(r, 5), 1)) ==
			 json_type_null);
		json_object_put(j);
		VT_CHECK(vz_wmts_site_find(site, "viewer/leaflet.js") != NULL);
		VT_CHECK(vz_wmts_site_find(site, "viewer/vizfs.js") != NULL);
		VT_CHECK(vz_wmts_site_find(site, "viewer/layers.png") != NULL);
	}

	/* written out: every file with its bytes */
	snprintf(dir, sizeof dir, "%s/site", vt_tmpdir());
	VT_EQ_INT(vz_wmts_site_write(site, dir), 0);
	for (size_t i = 0; i < vz_wmts_site_count(site); i++) {
		f = vz_wmts_site_file(site, i);
		snprintf(path, sizeof path, "%s/%s", dir, f->path);
		VT_CHECK(stat(path, &st) == 0 && (size_t)st.st_size == f->len);
	}
	snprintf(path, sizeof path, "%s/none/x", vt_tmpdir());
	VT_CHECK(vz_wmts_site_write(site, path) < 0);
	vz_wmts_site_free(site);
	vz_wmts_site_free(NULL);
	vz_conf_free(c);
}

int main(void)
{
	vz_gdal_init();
	test_crs84();
	test_wgs84_axis_order();
	test_webmercator();
	test_gdal_reads_it("WorldCRS84Quad", 180.0 / 32 / 256);
	test_gdal_reads_it("WGS1984Quad", 180.0 / 32 / 256);
	test_gdal_reads_it("WebMercatorQuad",
			   2 * 20037508.342789244 / 32 / 256);
	test_short_paths();
	test_site();
	return vt_done("test_wmts");
}
