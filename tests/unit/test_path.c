/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for tree paths: known layouts, round trips, strict parsing. */
#include "vt.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vizfs/conf.h"
#include "vizfs/path.h"

#define STAT(n)                                                                \
	"{\"name\": \"" n "\", \"weight_by\": \"count\", \"property\": "       \
	"\"centroids_per_pixel\", \"aggregation_method\": \"sum\", "           \
	"\"resampling_method\": \"sum\"}"

static struct vz_conf *conf(const char *json)
{
	struct vz_conf *c = NULL;

	if (vz_conf_parse(json, strlen(json), "path-test", "/base", &c)) {
		fprintf(stderr, "config failed: %s\n", vz_err_msg());
		vt_failed++;
		return NULL;
	}
	return c;
}

static struct vz_tile_ref ref(enum vz_kind kind, int stat, uint32_t z,
			      uint32_t x, uint32_t y)
{
	struct vz_tile_ref r;

	memset(&r, 0, sizeof r);
	r.kind = kind;
	r.stat = stat;
	r.key.z = (uint8_t)z;
	r.key.x = x;
	r.key.y = y;
	return r;
}

static void expect_format(const struct vz_conf *c, struct vz_tile_ref r,
			  const char *want)
{
	char buf[256];
	int n = vz_path_format(c, &r, buf, sizeof buf);
	struct vz_tile_ref back;

	VT_EQ_INT(n, (long long)strlen(want));
	vt_checks++;
	if (n < 0 || strcmp(buf, want) != 0) {
		vt_failed++;
		fprintf(stderr, "format: got '%s', want '%s'\n",
			n < 0 ? "(error)" : buf, want);
	}
	VT_EQ_INT(vz_path_parse(c, want, &back), 0);
	VT_EQ_INT(back.kind, r.kind);
	VT_EQ_INT(back.stat, r.kind == VZ_KIND_PNG ? r.stat : -1);
	VT_EQ_INT(back.key.z, r.key.z);
	VT_EQ_INT(back.key.x, r.key.x);
	VT_EQ_INT(back.key.y, r.key.y);
}

static void expect_enoent(const struct vz_conf *c, const char *p)
{
	struct vz_tile_ref r;
	int rc = vz_path_parse(c, p, &r);

	vt_checks++;
	if (rc != -ENOENT) {
		vt_failed++;
		fprintf(stderr, "parse('%s') = %d, expected -ENOENT\n", p, rc);
	}
}

static void test_known_layouts(void)
{
	struct vz_conf *c;

	/* PDG default structure and statistics */
	c = conf("{\"tms_id\": \"WorldCRS84Quad\"}");
	if (!c)
		return;
	expect_format(c, ref(VZ_KIND_PNG, 1, 5, 3, 2),
		      "web_tiles/coverage/WorldCRS84Quad/5/3/2.png");
	expect_format(c, ref(VZ_KIND_PNG, 0, 5, 3, 2),
		      "web_tiles/polygon_count/WorldCRS84Quad/5/3/2.png");
	expect_format(c, ref(VZ_KIND_GEOTIFF, -1, 5, 3, 2),
		      "geotiff/WorldCRS84Quad/5/3/2.tif");
	expect_format(c, ref(VZ_KIND_STAGED, -1, 13, 1524, 910),
		      "staged/WorldCRS84Quad/13/1524/910.gpkg");
	expect_format(c, ref(VZ_KIND_GEOTIFF, -1, 0, 0, 0),
		      "geotiff/WorldCRS84Quad/0/0/0.tif");
	expect_format(c, ref(VZ_KIND_GEOTIFF, -1, 0, 1, 0),
		      "geotiff/WorldCRS84Quad/0/1/0.tif");
	/* geotiff refs ignore a stat index */
	expect_format(c, ref(VZ_KIND_GEOTIFF, 1, 5, 3, 2),
		      "geotiff/WorldCRS84Quad/5/3/2.tif");
	vz_conf_free(c);

	/* short structure with one statistic */
	c = conf("{\"tms_id\": \"WorldCRS84Quad\", \"tile_path_structure\": "
		 "[\"z\", \"x\", \"y\"], \"statistics\": [" STAT("n") "]}");
	if (!c)
		return;
	expect_format(c, ref(VZ_KIND_PNG, 0, 5, 3, 2), "web_tiles/5/3/2.png");
	expect_format(c, ref(VZ_KIND_GEOTIFF, -1, 5, 3, 2),
		      "geotiff/5/3/2.tif");
	expect_format(c, ref(VZ_KIND_STAGED, -1, 13, 7, 9),
		      "staged/13/7/9.gpkg");
	vz_conf_free(c);

	/* the tms component is the configured id; odd orders */
	c = conf("{\"tile_path_structure\": [\"tms\", \"style\", \"y\", "
		 "\"x\", \"z\"], \"z_range\": [2, 6]}");
	if (!c)
		return;
	expect_format(c, ref(VZ_KIND_PNG, 1, 5, 3, 2),
		      "web_tiles/WGS1984Quad/coverage/2/3/5.png");
	expect_format(c, ref(VZ_KIND_GEOTIFF, -1, 5, 3, 2),
		      "geotiff/WGS1984Quad/2/3/5.tif");
	expect_format(c, ref(VZ_KIND_STAGED, -1, 6, 3, 2),
		      "staged/WGS1984Quad/2/3/6.gpkg");
	vz_conf_free(c);

	/* style without tms */
	c = conf("{\"tms_id\": \"WebMercatorQuad\", \"tile_path_structure\":"
		 " [\"style\", \"x\", \"z\", \"y\"]}");
	if (!c)
		return;
	expect_format(c, ref(VZ_KIND_PNG, 0, 4, 15, 1),
		      "web_tiles/polygon_count/15/4/1.png");
	expect_format(c, ref(VZ_KIND_GEOTIFF, -1, 4, 15, 1),
		      "geotiff/15/4/1.tif");
	vz_conf_free(c);
}

static void test_format_errors(void)
{
	struct vz_conf *c = conf("{\"tms_id\": \"WorldCRS84Quad\"}");
	struct vz_tile_ref r = ref(VZ_KIND_PNG, 1, 5, 3, 2);
	const char *want = "web_tiles/coverage/WorldCRS84Quad/5/3/2.png";
	size_t len = strlen(want);
	char buf[128];

	if (!c)
		return;
	VT_EQ_INT(vz_path_format(c, &r, buf, len + 1), (long long)len);
	VT_CHECK(strcmp(buf, want) == 0);
	VT_EQ_INT(vz_path_format(c, &r, buf, len), -ENAMETOOLONG);
	VT_EQ_INT(vz_path_format(c, &r, buf, 1), -ENAMETOOLONG);
	VT_EQ_INT(vz_path_format(c, &r, NULL, 0), -ENAMETOOLONG);
	r.stat = 2;
	VT_CHECK(vz_path_format(c, &r, buf, sizeof buf) < 0);
	r.stat = -1;
	VT_CHECK(vz_path_format(c, &r, buf, sizeof buf) < 0);
	vz_conf_free(c);
}

static void test_malformed(void)
{
	static const char *const bad[] = {
		"",
		"/",
		"//",
		"web_tiles",
		"web_tiles/",
		"geotiff",
		"rasters_summary.csv",
		"web_tiles/coverage",
		"web_tiles/coverage/WorldCRS84Quad/5/3",
		"web_tiles/coverage/WorldCRS84Quad/5/3/",
		"web_tiles/coverage/WorldCRS84Quad/5/3/2.png/",
		"web_tiles/coverage/WorldCRS84Quad/5/3/2.png//",
		"//web_tiles/coverage/WorldCRS84Quad/5/3/2.png",
		"web_tiles//coverage/WorldCRS84Quad/5/3/2.png",
		"web_tiles/coverage/WorldCRS84Quad/5/3//2.png",
		"web_tiles/coverage/WorldCRS84Quad/5/3/2/1.png",
		"web_tiles/coverage/WorldCRS84Quad/5/3/02.png",
		"web_tiles/coverage/WorldCRS84Quad/05/3/2.png",
		"web_tiles/coverage/WorldCRS84Quad/5/03/2.png",
		"web_tiles/coverage/WorldCRS84Quad/5/00/2.png",
		"web_tiles/coverage/WorldCRS84Quad/+5/3/2.png",
		"web_tiles/coverage/WorldCRS84Quad/5/-3/2.png",
		"web_tiles/coverage/WorldCRS84Quad/5/3/-0.png",
		"web_tiles/coverage/WorldCRS84Quad/5/ 3/2.png",
		"web_tiles/coverage/WorldCRS84Quad/5/3 /2.png",
		"web_tiles/coverage/WorldCRS84Quad/5/0x3/2.png",
		"web_tiles/coverage/WorldCRS84Quad/5/3e0/2.png",
		"web_tiles/coverage/WorldCRS84Quad/5/3.0/2.png",
		"web_tiles/coverage/WorldCRS84Quad/5/3/2.PNG",
		"web_tiles/coverage/WorldCRS84Quad/5/3/2.png.png",
		"web_tiles/coverage/WorldCRS84Quad/5/3/2..png",
		"web_tiles/coverage/WorldCRS84Quad/5/3/2.tif",
		"web_tiles/coverage/WorldCRS84Quad/5/3/2",
		"web_tiles/coverage/WorldCRS84Quad/5/3/.png",
		"web_tiles/coverage/WorldCRS84Quad/5/3/png",
		"web_tiles/coverage/WorldCRS84Quad/5/3/2.png ",
		"web_tiles/coverage/WorldCRS84Quad/5/3/2.png\n",
		"web_tiles/coverage/WorldCRS84Quad/5/3/2.pn",
		"web_tiles/coverage/WGS1984Quad/5/3/2.png",
		"web_tiles/coverage/worldcrs84quad/5/3/2.png",
		"web_tiles/Coverage/WorldCRS84Quad/5/3/2.png",
		"web_tiles/unknown/WorldCRS84Quad/5/3/2.png",
		"web_tiles/WorldCRS84Quad/coverage/5/3/2.png",
		"web_tiles/WorldCRS84Quad/5/3/2.png",
		"web_tiles/./coverage/WorldCRS84Quad/5/3/2.png",
		"web_tiles/coverage/./WorldCRS84Quad/5/3/2.png",
		"web_tiles/../web_tiles/coverage/WorldCRS84Quad/5/3/2.png",
		"web_tiles/coverage/../coverage/WorldCRS84Quad/5/3/2.png",
		"web_tiles/coverage/WorldCRS84Quad/5/3/../2.png",
		"./web_tiles/coverage/WorldCRS84Quad/5/3/2.png",
		"../web_tiles/coverage/WorldCRS84Quad/5/3/2.png",
		"Web_tiles/coverage/WorldCRS84Quad/5/3/2.png",
		"web_tiles /coverage/WorldCRS84Quad/5/3/2.png",
		/* out of range for the TMS (z5: 64 x 32) and for z_range */
		"web_tiles/coverage/WorldCRS84Quad/5/64/2.png",
		"web_tiles/coverage/WorldCRS84Quad/5/3/32.png",
		"web_tiles/coverage/WorldCRS84Quad/0/2/0.png",
		"web_tiles/coverage/WorldCRS84Quad/0/0/1.png",
		"web_tiles/coverage/WorldCRS84Quad/1/3/2.png",
		"web_tiles/coverage/WorldCRS84Quad/14/0/0.png",
		"web_tiles/coverage/WorldCRS84Quad/24/0/0.png",
		"web_tiles/coverage/WorldCRS84Quad/25/0/0.png",
		"web_tiles/coverage/WorldCRS84Quad/256/0/0.png",
		"web_tiles/coverage/WorldCRS84Quad/261/0/0.png",
		"web_tiles/coverage/WorldCRS84Quad/4294967301/0/0.png",
		"web_tiles/coverage/WorldCRS84Quad/5/4294967296/2.png",
		"web_tiles/coverage/WorldCRS84Quad/5/4294967299/2.png",
		"web_tiles/coverage/WorldCRS84Quad/5/18446744073709551619/2.png",
		"web_tiles/coverage/WorldCRS84Quad/5/99999999999/2.png",
		"web_tiles/coverage/WorldCRS84Quad/5/3/4294967298.png",
		/* geotiff and staged */
		"geotiff/coverage/WorldCRS84Quad/5/3/2.tif",
		"geotiff/WorldCRS84Quad/5/3/2.png",
		"geotiff/WorldCRS84Quad/5/3/2.tiff",
		"geotiff/WorldCRS84Quad/5/3/2.TIF",
		"geotiffs/WorldCRS84Quad/5/3/2.tif",
		"geotiff/WorldCRS84Quad/5/3/2.tif/",
		"staged/WorldCRS84Quad/12/1/1.gpkg",
		"staged/WorldCRS84Quad/0/0/0.gpkg",
		"staged/WorldCRS84Quad/13/1524/910.tif",
		"staged/coverage/WorldCRS84Quad/13/1524/910.gpkg",
		"staged/WorldCRS84Quad/13/16384/0.gpkg",
		"staged/WorldCRS84Quad/13/0/8192.gpkg",
		"staged/WorldCRS84Quad/13/1524/910.gpkg.gpkg",
	};
	struct vz_conf *c = conf("{\"tms_id\": \"WorldCRS84Quad\", "
				 "\"z_range\": [2, 13]}");
	struct vz_tile_ref r;
	char longp[9000];

	if (!c)
		return;
	for (size_t i = 0; i < VZ_ARRAY_SIZE(bad); i++)
		expect_enoent(c, bad[i]);
	/* the good twins of the bad paths above do parse */
	VT_EQ_INT(vz_path_parse(c,
				"web_tiles/coverage/WorldCRS84Quad/5/63/"
				"31.png",
				&r),
		  0);
	VT_EQ_INT(vz_path_parse(c,
				"/web_tiles/coverage/WorldCRS84Quad/2/0/"
				"0.png",
				&r),
		  0);
	VT_EQ_INT(vz_path_parse(c, "staged/WorldCRS84Quad/13/16383/8191.gpkg",
				&r),
		  0);
	VT_EQ_INT(r.kind, VZ_KIND_STAGED);
	VT_EQ_INT(r.stat, -1);
	VT_EQ_INT(r.key.x, 16383);
	VT_EQ_INT(r.key.y, 8191);
	/* an embedded NUL ends the string: what is left is a valid path */
	VT_EQ_INT(vz_path_parse(c, "geotiff/WorldCRS84Quad/5/3/2.tif\0/x", &r),
		  0);
	/* z below z_range */
	expect_enoent(c, "geotiff/WorldCRS84Quad/1/0/0.tif");
	expect_enoent(c, "geotiff/WorldCRS84Quad/0/0/0.tif");
	/* very long input */
	memset(longp, 'a', sizeof longp - 1);
	longp[sizeof longp - 1] = '\0';
	expect_enoent(c, longp);
	memcpy(longp, "web_tiles/", 10);
	expect_enoent(c, longp);
	VT_EQ_INT(vz_path_parse(NULL, "geotiff/WorldCRS84Quad/5/3/2.tif", &r),
		  -ENOENT);
	VT_EQ_INT(vz_path_parse(c, NULL, &r), -ENOENT);
	vz_conf_free(c);

	/* single statistic without style: no style component accepted */
	c = conf("{\"tile_path_structure\": [\"z\", \"x\", \"y\"], "
		 "\"statistics\": [" STAT("s") "]}");
	if (!c)
		return;
	expect_enoent(c, "web_tiles/s/5/3/2.png");
	expect_enoent(c, "web_tiles/WGS1984Quad/5/3/2.png");
	expect_enoent(c, "geotiff/WGS1984Quad/5/3/2.tif");
	expect_enoent(c, "web_tiles/5/3/2.tif");
	expect_enoent(c, "web_tiles/5/3/2.png/x");
	VT_EQ_INT(vz_path_parse(c, "web_tiles/5/3/2.png", &r), 0);
	VT_EQ_INT(r.stat, 0);
	vz_conf_free(c);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return n ? (uint32_t)(rng % n) : 0;
}

/* format -> parse over many keys of every kind. */
static void round_trip_conf(const struct vz_conf *c)
{
	char buf[512], slash[520];
	struct vz_tile_ref r, back;
	int bad = 0;

	for (int z = c->z_min; z <= c->z_max; z++) {
		uint32_t cols = vz_tms_cols(c->tms, z);
		uint32_t rows = vz_tms_rows(c->tms, z);

		for (int i = 0; i < 40; i++) {
			uint32_t x = i == 0 ? 0 : i == 1 ? cols - 1 : rnd(cols);
			uint32_t y = i == 0 ? 0 : i == 1 ? rows - 1 : rnd(rows);
			enum vz_kind k = (enum vz_kind)(i % 3);
			int n;

			if (k == VZ_KIND_STAGED && z != c->z_max)
				k = VZ_KIND_GEOTIFF;
			r = ref(k, k == VZ_KIND_PNG ? (int)rnd(c->n_stats) : -1,
				(uint32_t)z, x, y);
			n = vz_path_format(c, &r, buf, sizeof buf);
			if (n <= 0 || vz_path_parse(c, buf, &back) != 0 ||
			    back.key.x != x || back.key.y != y ||
			    back.key.z != z || back.kind != r.kind ||
			    back.stat != r.stat) {
				if (bad++ < 5)
					fprintf(stderr, "round trip: %s\n",
						buf);
				continue;
			}
			snprintf(slash, sizeof slash, "/%s", buf);
			if (vz_path_parse(c, slash, &back) != 0 ||
			    back.key.x != x || back.key.y != y) {
				if (bad++ < 5)
					fprintf(stderr, "round trip: %s\n",
						slash);
			}
			/* one past the matrix is not a tile */
			r.key.x = cols;
			if (vz_path_format(c, &r, buf, sizeof buf) > 0 &&
			    vz_path_parse(c, buf, &back) != -ENOENT) {
				if (bad++ < 5)
					fprintf(stderr, "accepted: %s\n", buf);
			}
		}
	}
	VT_EQ_INT(bad, 0);
}

/*
 * parse -> format: random edits of valid paths.  Whatever the parser
 * accepts must be exactly what the formatter writes for the result.
 */
static void mutate_conf(const struct vz_conf *c)
{
	static const char alphabet[] = "0123456789/.-+ _aegnpst";
	char buf[512], out[512];
	struct vz_tile_ref r, back;
	int bad = 0, accepted = 0;

	for (int i = 0; i < 20000; i++) {
		int z = c->z_min +
			(int)rnd((uint32_t)(c->z_max - c->z_min + 1));
		enum vz_kind k = (enum vz_kind)rnd(3);
		size_t len;
		int edits = 1 + (int)rnd(3);

		if (k == VZ_KIND_STAGED)
			z = c->z_max;
		r = ref(k, k == VZ_KIND_PNG ? (int)rnd(c->n_stats) : -1,
			(uint32_t)z, rnd(vz_tms_cols(c->tms, z)),
			rnd(vz_tms_rows(c->tms, z)));
		if (vz_path_format(c, &r, buf, sizeof buf) <= 0)
			continue;
		for (int e = 0; e < edits; e++) {
			len = strlen(buf);
			size_t at = rnd((uint32_t)len + 1);
			char ch = alphabet[rnd(sizeof alphabet - 1)];

			switch (rnd(3)) {
			case 0: /* replace */
				if (at < len)
					buf[at] = ch;
				break;
			case 1: /* insert */
				if (len + 2 < sizeof buf) {
					memmove(buf + at + 1, buf + at,
						len - at + 1);
					buf[at] = ch;
				}
				break;
			default: /* delete */
				if (at < len)
					memmove(buf + at, buf + at + 1,
						len - at);
				break;
			}
		}
		if (vz_path_parse(c, buf, &back) != 0)
			continue;
		accepted++;
		if (vz_path_format(c, &back, out, sizeof out) <= 0 ||
		    strcmp(out, buf[0] == '/' ? buf + 1 : buf) != 0) {
			if (bad++ < 5)
				fprintf(stderr,
					"accepted '%s' formats as '%s'\n", buf,
					out);
		}
	}
	VT_EQ_INT(bad, 0);
	/* some edits (digit changes) keep the path valid */
	VT_CHECK(accepted > 0);
}

static void test_round_trips(void)
{
	static const char *const confs[] = {
		"{\"tms_id\": \"WorldCRS84Quad\"}",
		"{\"tms_id\": \"WebMercatorQuad\", \"z_range\": [0, 24]}",
		"{\"tms_id\": \"WorldCRS84Quad\", \"z_range\": [20, 24]}",
		"{\"z_range\": [3, 3], \"tile_path_structure\": [\"style\", "
		"\"z\", \"x\", \"y\"]}",
		"{\"z_range\": [0, 9], \"tile_path_structure\": [\"tms\", "
		"\"style\", \"x\", \"y\", \"z\"]}",
		"{\"tile_path_structure\": [\"y\", \"z\", \"x\"], "
		"\"statistics\": [" STAT("only") "]}",
		"{\"tile_path_structure\": [\"tms\", \"x\", \"y\", \"z\"], "
		"\"statistics\": [" STAT("only") "]}",
		"{\"tile_path_structure\": [\"style\", \"tms\", \"z\", \"x\", "
		"\"y\"], \"statistics\": [" STAT("a b") ", " STAT("7") ", " STAT(
			"x.y") ", " STAT("...") ", " STAT("WGS1984Quad") "]}",
	};

	for (size_t i = 0; i < VZ_ARRAY_SIZE(confs); i++) {
		struct vz_conf *c = conf(confs[i]);
		if (!c)
			continue;
		round_trip_conf(c);
		mutate_conf(c);
		vz_conf_free(c);
	}
}

int main(void)
{
	test_known_layouts();
	test_format_errors();
	test_malformed();
	test_round_trips();
	return vt_done("test_path");
}
