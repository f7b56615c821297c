/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the PDG config: defaults, real configs, validation. */
#include "vt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vizfs/conf.h"
#include "vizfs/palette.h"

#define BASE "/base/dir"

static struct vz_conf *parse(const char *json)
{
	struct vz_conf *c = NULL;
	int rc = vz_conf_parse(json, strlen(json), "t.json", BASE, &c);

	if (rc) {
		fprintf(stderr, "unexpected failure (%d) for %s: %s\n", rc,
			json, vz_err_msg());
		return NULL;
	}
	return c;
}

/* Parse must fail with VZ_E_CONFIG and name @p key (and @p also). */
static void expect_err(const char *json, const char *key, const char *also)
{
	struct vz_conf *c = (struct vz_conf *)1;
	int rc = vz_conf_parse(json, strlen(json), "t.json", BASE, &c);

	VT_EQ_INT(rc, VZ_E_CONFIG);
	VT_CHECK(c == NULL);
	if (!strstr(vz_err_msg(), key) || !strstr(vz_err_msg(), "t.json") ||
	    (also && !strstr(vz_err_msg(), also))) {
		vt_failed++;
		fprintf(stderr, "json %s: message '%s' lacks '%s'/'%s'\n", json,
			vz_err_msg(), key, also ? also : "");
	}
	vt_checks++;
	if (rc == 0)
		vz_conf_free(c);
}

/* ---- stderr capture (vz_log writes warnings there) --------------------- */

static int saved_fd = -1;
static char cap_path[PATH_MAX];

static void capture_begin(void)
{
	int fd;

	snprintf(cap_path, sizeof cap_path, "%s/stderr.txt", vt_tmpdir());
	fflush(stderr);
	saved_fd = dup(2);
	fd = open(cap_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 2);
	close(fd);
}

static char *capture_end(void)
{
	static char buf[8192];
	size_t n;
	FILE *f;

	fflush(stderr);
	dup2(saved_fd, 2);
	close(saved_fd);
	f = fopen(cap_path, "r");
	n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	buf[n] = '\0';
	if (f)
		fclose(f);
	unlink(cap_path);
	return buf;
}

static int count_sub(const char *s, const char *sub)
{
	int n = 0;
	for (const char *p = s; (p = strstr(p, sub)); p += strlen(sub))
		n++;
	return n;
}

/* ---- tests ------------------------------------------------------------- */

static void test_defaults(void)
{
	struct vz_conf *c = parse("{}");
	const struct vz_stat *s;

	VT_CHECK(c != NULL);
	if (!c)
		return;
	VT_CHECK(strcmp(c->path, "t.json") == 0);
	VT_CHECK(strcmp(c->base_dir, BASE) == 0);
	VT_CHECK(strcmp(c->dir_input, BASE "/input") == 0);
	VT_CHECK(strcmp(c->dir_staged, BASE "/staged") == 0);
	VT_CHECK(strcmp(c->dir_geotiff, BASE "/geotiff") == 0);
	VT_CHECK(strcmp(c->dir_web_tiles, BASE "/web_tiles") == 0);
	VT_CHECK(strcmp(c->dir_footprints, BASE "/footprints") == 0);
	VT_CHECK(strcmp(c->ext_input, ".shp") == 0);
	VT_CHECK(strcmp(c->ext_staged, ".gpkg") == 0);
	VT_CHECK(strcmp(c->ext_web_tiles, ".png") == 0);
	VT_CHECK(strcmp(c->ext_footprints, ".gpkg") == 0);
	VT_CHECK(strcmp(c->filename_staging_summary,
			BASE "/staging_summary.csv") == 0);
	VT_CHECK(strcmp(c->filename_rasters_summary,
			BASE "/rasters_summary.csv") == 0);
	VT_CHECK(strcmp(c->filename_rasterization_events,
			BASE "/rasterization_events.csv") == 0);
	VT_CHECK(c->input_crs == NULL);
	VT_CHECK(c->has_simplify);
	VT_NEAR(c->simplify_tolerance, 0.0001, 0);
	VT_CHECK(strcmp(c->tms_id, "WGS1984Quad") == 0);
	VT_CHECK(c->tms && c->tms->kind == VZ_TMS_WGS1984QUAD);
	VT_EQ_INT(c->n_path_parts, 5);
	VT_EQ_INT(c->path_parts[0], VZ_PART_STYLE);
	VT_EQ_INT(c->path_parts[1], VZ_PART_TMS);
	VT_EQ_INT(c->path_parts[2], VZ_PART_Z);
	VT_EQ_INT(c->path_parts[3], VZ_PART_X);
	VT_EQ_INT(c->path_parts[4], VZ_PART_Y);
	VT_EQ_INT(c->z_min, 0);
	VT_EQ_INT(c->z_max, 13);
	VT_EQ_INT(c->tile_w, 256);
	VT_EQ_INT(c->tile_h, 256);
	VT_CHECK(c->dedup_method == NULL);
	VT_EQ_INT(c->n_attrs, 0);
	VT_CHECK(strcmp(c->cache_dir, BASE "/.vizfs-cache") == 0);
	VT_EQ_INT(c->cache_map_size, 1ll << 30);
	VT_EQ_INT(c->workers, 0);
	VT_EQ_INT(c->range_mode, VZ_RANGE_PER_ZOOM);
	VT_EQ_INT(strlen(c->fingerprint), 32);

	VT_EQ_INT(c->n_stats, 2);
	s = &c->stats[0];
	VT_CHECK(strcmp(s->name, "polygon_count") == 0);
	VT_EQ_INT(s->weight_by, VZ_WEIGHT_COUNT);
	VT_CHECK(strcmp(s->property, "centroids_per_pixel") == 0);
	VT_EQ_INT(s->prop, VZ_PROP_CENTROIDS_PER_PIXEL);
	VT_EQ_INT(s->attr, -1);
	VT_EQ_INT(s->agg, VZ_AGG_SUM);
	VT_EQ_INT(s->resample, VZ_RS_SUM);
	VT_CHECK(s->val_range.set[0] && !s->val_range.set[1]);
	VT_NEAR(s->val_range.v[0], 0, 0);
	VT_CHECK(s->has_nodata);
	VT_NEAR(s->nodata_val, 0, 0);
	VT_CHECK(strcmp(s->nodata_color, "#ffffff00") == 0);
	VT_CHECK(s->palette == NULL && s->n_palette == 0);
	for (int z = 0; z <= VZ_MAX_ZOOM; z++)
		VT_CHECK(!s->z_range[z].set[0] && !s->z_range[z].set[1]);

	s = &c->stats[1];
	VT_CHECK(strcmp(s->name, "coverage") == 0);
	VT_EQ_INT(s->weight_by, VZ_WEIGHT_AREA);
	VT_CHECK(strcmp(s->property, "area_per_pixel_area") == 0);
	VT_EQ_INT(s->prop, VZ_PROP_AREA_PER_PIXEL_AREA);
	VT_EQ_INT(s->attr, -1);
	VT_EQ_INT(s->agg, VZ_AGG_SUM);
	VT_EQ_INT(s->resample, VZ_RS_AVERAGE);
	VT_CHECK(s->val_range.set[0] && s->val_range.set[1]);
	VT_NEAR(s->val_range.v[0], 0, 0);
	VT_NEAR(s->val_range.v[1], 1, 0);
	VT_CHECK(s->has_nodata);
	VT_NEAR(s->nodata_val, 0, 0);
	VT_CHECK(strcmp(s->nodata_color, "#ffffff00") == 0);
	VT_CHECK(s->palette == NULL);

	VT_EQ_INT(vz_conf_stat_index(c, "coverage"), 1);
	VT_EQ_INT(vz_conf_stat_index(c, "polygon_count"), 0);
	VT_EQ_INT(vz_conf_stat_index(c, "nope"), -1);
	vz_conf_free(c);
	vz_conf_free(NULL);
}

static void test_user_stat_replaces_defaults(void)
{
	struct vz_conf *c = parse(
		"{\"statistics\": [{\"name\": \"a\", \"weight_by\": \"area\","
		" \"property\": \"Area\", \"aggregation_method\": \"mean\","
		" \"resampling_method\": \"nearest\"}, {\"name\": \"b\","
		" \"weight_by\": \"count\", \"property\": \"Date\","
		" \"aggregation_method\": \"max\", \"resampling_method\":"
		" \"max\"}, {\"name\": \"c\", \"weight_by\": \"count\","
		" \"property\": \"Area\", \"aggregation_method\": \"var\","
		" \"resampling_method\": \"rms\", \"nodata_val\": -1.5}]}");

	VT_CHECK(c != NULL);
	if (!c)
		return;
	VT_EQ_INT(c->n_stats, 3);
	VT_EQ_INT(c->n_attrs, 2);
	VT_CHECK(strcmp(c->attrs[0], "Area") == 0);
	VT_CHECK(strcmp(c->attrs[1], "Date") == 0);
	VT_EQ_INT(c->stats[0].prop, VZ_PROP_ATTRIBUTE);
	VT_EQ_INT(c->stats[0].attr, 0);
	VT_EQ_INT(c->stats[1].attr, 1);
	VT_EQ_INT(c->stats[2].attr, 0);
	VT_EQ_INT(c->stats[0].agg, VZ_AGG_MEAN);
	VT_EQ_INT(c->stats[0].resample, VZ_RS_NEAREST);
	VT_EQ_INT(c->stats[2].agg, VZ_AGG_VAR);
	VT_EQ_INT(c->stats[2].resample, VZ_RS_RMS);
	/* optional keys absent -> None semantics, not the defaults' values */
	VT_CHECK(!c->stats[0].has_nodata);
	VT_CHECK(!c->stats[0].val_range.set[0] &&
		 !c->stats[0].val_range.set[1]);
	VT_CHECK(c->stats[0].palette == NULL);
	VT_CHECK(strcmp(c->stats[0].nodata_color, "#ffffff00") == 0);
	VT_CHECK(c->stats[2].has_nodata);
	VT_NEAR(c->stats[2].nodata_val, -1.5, 0);
	vz_conf_free(c);
}

static void test_enum_names(void)
{
	char json[512];

	for (int a = VZ_AGG_SUM; a <= VZ_AGG_ALL; a++) {
		struct vz_conf *c;
		snprintf(json, sizeof json,
			 "{\"statistics\": [{\"name\": \"s\", \"weight_by\":"
			 " \"count\", \"property\": \"A\", "
			 "\"aggregation_method\": \"%s\", "
			 "\"resampling_method\": \"sum\"}]}",
			 vz_agg_name((enum vz_agg)a));
		c = parse(json);
		VT_CHECK(c && c->stats[0].agg == (enum vz_agg)a);
		vz_conf_free(c);
	}
	for (int r = VZ_RS_NEAREST; r <= VZ_RS_GAUSS; r++) {
		struct vz_conf *c;
		snprintf(json, sizeof json,
			 "{\"statistics\": [{\"name\": \"s\", \"weight_by\":"
			 " \"count\", \"property\": \"A\", "
			 "\"aggregation_method\": \"sum\", "
			 "\"resampling_method\": \"%s\"}]}",
			 vz_resample_name((enum vz_resample)r));
		c = parse(json);
		VT_CHECK(c && c->stats[0].resample == (enum vz_resample)r);
		vz_conf_free(c);
	}
	VT_CHECK(strcmp(vz_agg_name(VZ_AGG_STD), "std") == 0);
	VT_CHECK(strcmp(vz_agg_name(VZ_AGG_MEAN), "mean") == 0);
	VT_CHECK(strcmp(vz_resample_name(VZ_RS_AVERAGE), "average") == 0);
	VT_CHECK(strcmp(vz_resample_name(VZ_RS_MED), "med") == 0);
	VT_CHECK(strcmp(vz_resample_name(VZ_RS_NEAREST), "nearest") == 0);
}

#define STAT_OK                                                                \
	"\"name\": \"s\", \"weight_by\": \"count\", \"property\": \"A\", "     \
	"\"aggregation_method\": \"sum\", \"resampling_method\": \"sum\""
#define ONE_STAT(extra) "{\"statistics\": [{" STAT_OK extra "}]}"

static void test_errors(void)
{
	/* JSON syntax and top level */
	expect_err("{\"tms_id\": \"WorldCRS84Quad\",\n \"z_range\": [0 1]}",
		   "line 2", NULL);
	expect_err("{\"a\": 1,}", "invalid JSON", NULL);
	expect_err("{\"a\": 1} trailing", "invalid JSON", NULL);
	expect_err("{\"a\": ", "end of input", NULL);
	expect_err("[1, 2]", "JSON object", NULL);
	expect_err("", "invalid JSON", NULL);

	/* plain types of accepted keys */
	expect_err("{\"dir_input\": 5}", "dir_input", "expected a string");
	expect_err("{\"dir_staged\": null}", "dir_staged", "null");
	expect_err("{\"overwrite\": \"yes\"}", "overwrite", NULL);
	expect_err("{\"z_coord\": \"0\"}", "z_coord", NULL);
	expect_err("{\"prop_area\": 1}", "prop_area", NULL);
	expect_err("{\"deduplicate_keep_rules\": {}}", "deduplicate_keep_rules",
		   NULL);
	expect_err("{\"ext_web_tiles\": \".jpg\"}", "ext_web_tiles",
		   "not supported");
	expect_err("{\"ext_staged\": \".shp\"}", "ext_staged", NULL);

	/* tms */
	expect_err("{\"tms_id\": \"UPSArctic3413Quad\"}", "tms_id",
		   "WorldCRS84Quad, WGS1984Quad, WebMercatorQuad");
	expect_err("{\"tms_id\": 3}", "tms_id", "WebMercatorQuad");
	expect_err("{\"tms_id\": \"worldcrs84quad\"}", "tms_id", NULL);

	/* z_range */
	expect_err("{\"z_range\": [5, 3]}", "z_range", NULL);
	expect_err("{\"z_range\": [0, 25]}", "z_range[1]", "got 25");
	expect_err("{\"z_range\": [-1, 3]}", "z_range[0]", NULL);
	expect_err("{\"z_range\": [0]}", "z_range", NULL);
	expect_err("{\"z_range\": [0, 1.5]}", "z_range[1]", NULL);
	expect_err("{\"z_range\": [0, \"3\"]}", "z_range[1]", NULL);
	expect_err("{\"z_range\": [0, 99999999999999999999]}", "z_range[1]",
		   NULL);
	expect_err("{\"z_range\": \"0-3\"}", "z_range", NULL);

	/* tile_size */
	expect_err("{\"tile_size\": [256]}", "tile_size", NULL);
	expect_err("{\"tile_size\": [0, 256]}", "tile_size[0]", NULL);
	expect_err("{\"tile_size\": [255, 256]}", "tile_size[0]", "even");
	expect_err("{\"tile_size\": [256, 8192]}", "tile_size[1]", NULL);
	expect_err("{\"tile_size\": [256, -256]}", "tile_size[1]", NULL);

	/* tile_path_structure */
	expect_err("{\"tile_path_structure\": [\"style\", \"tms\", \"x\","
		   " \"y\"]}",
		   "tile_path_structure", NULL);
	expect_err("{\"tile_path_structure\": [\"z\", \"x\", \"y\", "
		   "\"style\"]}",
		   "tile_path_structure", NULL);
	expect_err("{\"tile_path_structure\": [\"z\", \"x\", \"x\"]}",
		   "tile_path_structure[2]", "twice");
	expect_err("{\"tile_path_structure\": [\"tms\", \"z\", \"x\", "
		   "\"y\", \"style\"]}",
		   "tile_path_structure", NULL);
	expect_err("{\"tile_path_structure\": [\"foo\", \"z\", \"x\", "
		   "\"y\"]}",
		   "tile_path_structure[0]", NULL);
	expect_err("{\"tile_path_structure\": \"z/x/y\"}",
		   "tile_path_structure", NULL);
	/* two default statistics without style: paths would collide */
	expect_err("{\"tile_path_structure\": [\"tms\", \"z\", \"x\", "
		   "\"y\"]}",
		   "tile_path_structure", "style");

	/* simplify / crs */
	expect_err("{\"simplify_tolerance\": -1}", "simplify_tolerance", NULL);
	expect_err("{\"simplify_tolerance\": \"0.1\"}", "simplify_tolerance",
		   NULL);
	expect_err("{\"input_crs\": 4326}", "input_crs", NULL);

	/* statistics list */
	expect_err("{\"statistics\": []}", "statistics", NULL);
	expect_err("{\"statistics\": {}}", "statistics", NULL);
	expect_err("{\"statistics\": [5]}", "statistics[0]", NULL);
	expect_err("{\"statistics\": [{" STAT_OK "}, {" STAT_OK "}]}",
		   "statistics[1].name", "duplicate");
	expect_err("{\"statistics\": [{\"name\": \"s\", \"weight_by\": "
		   "\"count\", \"property\": \"A\", \"aggregation_method\": "
		   "\"sum\"}]}",
		   "statistics[0].resampling_method", "missing");
	expect_err("{\"statistics\": [{\"weight_by\": \"count\"}]}",
		   "statistics[0].name", "missing");
	expect_err("{\"statistics\": [{\"name\": \"a/b\", \"weight_by\": "
		   "\"count\", \"property\": \"A\", \"aggregation_method\": "
		   "\"sum\", \"resampling_method\": \"sum\"}]}",
		   "statistics[0].name", NULL);
	expect_err("{\"statistics\": [{\"name\": \"..\", \"weight_by\": "
		   "\"count\", \"property\": \"A\", \"aggregation_method\": "
		   "\"sum\", \"resampling_method\": \"sum\"}]}",
		   "statistics[0].name", NULL);
	expect_err("{\"statistics\": [{\"name\": \"\", \"weight_by\": "
		   "\"count\", \"property\": \"A\", \"aggregation_method\": "
		   "\"sum\", \"resampling_method\": \"sum\"}]}",
		   "statistics[0].name", NULL);
	expect_err("{\"statistics\": [{\"name\": \"s\", \"weight_by\": "
		   "\"pixel\", \"property\": \"A\", \"aggregation_method\": "
		   "\"sum\", \"resampling_method\": \"sum\"}]}",
		   "statistics[0].weight_by", "'pixel'");
	expect_err("{\"statistics\": [{\"name\": \"s\", \"weight_by\": "
		   "\"count\", \"property\": \"A\", \"aggregation_method\": "
		   "\"idxmin\", \"resampling_method\": \"sum\"}]}",
		   "statistics[0].aggregation_method", "not supported yet");
	expect_err("{\"statistics\": [{\"name\": \"s\", \"weight_by\": "
		   "\"count\", \"property\": \"A\", \"aggregation_method\": "
		   "\"ohlc\", \"resampling_method\": \"sum\"}]}",
		   "statistics[0].aggregation_method", "not supported yet");
	expect_err("{\"statistics\": [{\"name\": \"s\", \"weight_by\": "
		   "\"count\", \"property\": \"A\", \"aggregation_method\": "
		   "\"total\", \"resampling_method\": \"sum\"}]}",
		   "statistics[0].aggregation_method", "one of");
	expect_err("{\"statistics\": [{\"name\": \"s\", \"weight_by\": "
		   "\"count\", \"property\": \"A\", \"aggregation_method\": "
		   "\"sum\", \"resampling_method\": \"cubicspline\"}]}",
		   "statistics[0].resampling_method", "one of");
	expect_err("{\"statistics\": [{\"name\": \"s\", \"weight_by\": "
		   "\"count\", \"property\": \"A\", \"aggregation_method\": "
		   "\"sum\", \"resampling_method\": \"bicubic\"}]}",
		   "statistics[0].resampling_method", "one of");
	expect_err("{\"statistics\": [{\"name\": \"s\", \"weight_by\": "
		   "\"count\", \"property\": \"A\", \"aggregation_method\": "
		   "\"sum\", \"resampling_method\": \"near\"}]}",
		   "statistics[0].resampling_method", "one of");
	expect_err("{\"statistics\": [{\"name\": \"s\", \"weight_by\": "
		   "\"count\", \"property\": \"\", \"aggregation_method\": "
		   "\"sum\", \"resampling_method\": \"sum\"}]}",
		   "statistics[0].property", NULL);

	/* optional statistic fields */
	expect_err(ONE_STAT(", \"val_range\": [2, 1]"),
		   "statistics[0].val_range", "less than");
	expect_err(ONE_STAT(", \"val_range\": [1, 1]"),
		   "statistics[0].val_range", NULL);
	expect_err(ONE_STAT(", \"val_range\": [0]"), "statistics[0].val_range",
		   NULL);
	expect_err(ONE_STAT(", \"val_range\": [0, \"1\"]"),
		   "statistics[0].val_range[1]", NULL);
	expect_err(ONE_STAT(", \"val_range\": [NaN, 1]"),
		   "statistics[0].val_range[0]", NULL);
	expect_err(ONE_STAT(", \"val_range\": [0, 1e999]"),
		   "statistics[0].val_range[1]", NULL);
	expect_err(ONE_STAT(", \"palette\": \"viridis\""),
		   "statistics[0].palette",
		   "named colormaps are not supported yet; give a list of "
		   "colours");
	expect_err(ONE_STAT(", \"palette\": []"), "statistics[0].palette",
		   NULL);
	expect_err(ONE_STAT(", \"palette\": [\"#fff\", 3]"),
		   "statistics[0].palette[1]", NULL);
	expect_err(ONE_STAT(", \"nodata_val\": \"0\""),
		   "statistics[0].nodata_val", NULL);
	expect_err(ONE_STAT(", \"nodata_val\": true"),
		   "statistics[0].nodata_val", NULL);
	expect_err(ONE_STAT(", \"nodata_color\": 0"),
		   "statistics[0].nodata_color", NULL);
	expect_err(ONE_STAT(", \"z_config\": []"), "statistics[0].z_config",
		   NULL);
	expect_err(ONE_STAT(", \"z_config\": {\"x\": {}}"),
		   "statistics[0].z_config.x", NULL);
	expect_err(ONE_STAT(", \"z_config\": {\"25\": {}}"),
		   "statistics[0].z_config.25", NULL);
	expect_err(ONE_STAT(", \"z_config\": {\"-1\": {}}"),
		   "statistics[0].z_config.-1", NULL);
	expect_err(ONE_STAT(", \"z_config\": {\"05\": {}}"),
		   "statistics[0].z_config.05", NULL);
	expect_err(ONE_STAT(", \"z_config\": {\"1.0\": {}}"),
		   "statistics[0].z_config.1.0", NULL);
	expect_err(ONE_STAT(", \"z_config\": {\"3\": [1, 2]}"),
		   "statistics[0].z_config.3", NULL);
	expect_err(ONE_STAT(", \"z_config\": {\"3\": {\"val_range\": "
			    "[5, 2]}}"),
		   "statistics[0].z_config.3.val_range", NULL);

	/* dedup */
	expect_err("{\"deduplicate_method\": \"neighbor\"}",
		   "deduplicate_keep_rules", "deduplicate_method 'neighbor'");
	expect_err("{\"deduplicate_method\": \"neighbors\"}",
		   "deduplicate_method", NULL);
	expect_err("{\"deduplicate_at\": 3}", "deduplicate_at", NULL);

	/* vizfs keys */
	expect_err("{\"vizfs_cache_map_size\": 1000}", "vizfs_cache_map_size",
		   NULL);
	expect_err("{\"vizfs_cache_map_size\": \"1G\"}", "vizfs_cache_map_size",
		   NULL);
	expect_err("{\"vizfs_workers\": -1}", "vizfs_workers", NULL);
	expect_err("{\"vizfs_range_mode\": \"global\"}", "vizfs_range_mode",
		   "per_zoom");
	expect_err("{\"vizfs_cache_dir\": \"\"}", "vizfs_cache_dir", NULL);
}

static void test_colors(void)
{
	struct vz_color col;
	int rc = vz_color_parse("definitely-not-a-colour", &col);

	if (rc == -ENOSYS) {
		/* palette module not there yet: colours are accepted */
		struct vz_conf *c =
			parse(ONE_STAT(", \"palette\": [\"#fff\", \"bogus\"]"));
		VT_CHECK(c != NULL);
		vz_conf_free(c);
		return;
	}
	VT_EQ_INT(rc, VZ_E_CONFIG);
	expect_err("{\"statistics\": [{" STAT_OK "}, {\"name\": \"t\", "
		   "\"weight_by\": \"count\", \"property\": \"A\", "
		   "\"aggregation_method\": \"sum\", \"resampling_method\": "
		   "\"sum\", \"palette\": [\"#fff\", \"red\", \"nonsense\"]}],"
		   " \"tile_path_structure\": [\"style\", \"z\", \"x\", "
		   "\"y\"]}",
		   "statistics[1].palette[2]", NULL);
	expect_err(ONE_STAT(", \"nodata_color\": \"#12345\""),
		   "statistics[0].nodata_color", NULL);
}

static void test_unknown_key_warns(void)
{
	struct vz_conf *c;
	char *log;
	int lvl = vz_log_get_level();

	vz_log_set_level(VZ_LOG_INFO);
	capture_begin();
	c = parse("{\"frobnicate\": 1, \"vizfs_turbo\": true, "
		  "\"prop_custom\": \"x\", \"title\": \"T\", \"statistics\": "
		  "[{" STAT_OK ", \"colour\": \"red\", \"z_config\": {\"2\": "
		  "{\"val_range\": [0, 1], \"extra\": 1}}}]}");
	log = capture_end();
	vz_log_set_level(lvl);
	VT_CHECK(c != NULL);
	VT_EQ_INT(count_sub(log, "unknown key"), 4);
	VT_CHECK(strstr(log, "config t.json: unknown key 'frobnicate' "
			     "ignored") != NULL);
	VT_CHECK(strstr(log, "'vizfs_turbo'") != NULL);
	VT_CHECK(strstr(log, "'statistics[0].colour'") != NULL);
	VT_CHECK(strstr(log, "'statistics[0].z_config.2.extra'") != NULL);
	VT_CHECK(strstr(log, "prop_custom") == NULL);
	VT_CHECK(strstr(log, "title") == NULL);
	if (c)
		VT_CHECK(c->stats[0].z_range[2].set[1]);
	vz_conf_free(c);
}

static void test_every_key(void)
{
	char path[PATH_MAX];
	struct vz_conf *c = NULL;
	char *log;
	int rc;

	snprintf(path, sizeof path, "%s/tests/data/conf/every_key.json",
		 vt_srcroot());
	capture_begin();
	rc = vz_conf_load(path, &c);
	log = capture_end();
	VT_EQ_INT(rc, 0);
	if (rc) {
		fprintf(stderr, "%s\n", vz_err_msg());
		return;
	}
	VT_EQ_INT(count_sub(log, "unknown key"), 0);
	VT_CHECK(strcmp(c->input_crs, "EPSG:3413") == 0);
	VT_CHECK(!c->has_simplify);
	VT_CHECK(c->tms->kind == VZ_TMS_WEBMERCATORQUAD);
	VT_EQ_INT(c->n_path_parts, 5);
	VT_EQ_INT(c->path_parts[0], VZ_PART_TMS);
	VT_EQ_INT(c->path_parts[1], VZ_PART_STYLE);
	VT_EQ_INT(c->path_parts[2], VZ_PART_Y);
	VT_EQ_INT(c->path_parts[3], VZ_PART_X);
	VT_EQ_INT(c->path_parts[4], VZ_PART_Z);
	VT_EQ_INT(c->z_min, 2);
	VT_EQ_INT(c->z_max, 4);
	/* tile_size is (height, width) */
	VT_EQ_INT(c->tile_h, 128);
	VT_EQ_INT(c->tile_w, 512);
	VT_CHECK(strcmp(c->cache_dir, "/var/cache/vizfs") == 0);
	VT_EQ_INT(c->cache_map_size, 1048576);
	VT_EQ_INT(c->workers, 3);
	VT_EQ_INT(c->range_mode, VZ_RANGE_PER_TILE);
	VT_EQ_INT(c->n_stats, 4);
	VT_EQ_INT(c->n_attrs, 2);
	VT_CHECK(strcmp(c->attrs[0], "permanent_water") == 0);
	VT_CHECK(strcmp(c->attrs[1], "ChangeRateNet_myr-1") == 0);
	VT_EQ_INT(c->stats[0].attr, -1);
	VT_EQ_INT(c->stats[1].attr, 0);
	VT_EQ_INT(c->stats[2].attr, 0);
	VT_EQ_INT(c->stats[3].attr, 1);
	VT_EQ_INT(c->stats[3].agg, VZ_AGG_STD);
	VT_EQ_INT(c->stats[3].resample, VZ_RS_Q3);
	VT_EQ_INT(c->stats[1].n_palette, 2);
	VT_CHECK(strcmp(c->stats[1].palette[1], "#0000ff") == 0);
	vz_conf_free(c);
}

static void test_ranges(void)
{
	struct vz_conf *c = parse(ONE_STAT(
		", \"val_range\": [0, null], \"z_config\": {\"3\": "
		"{\"val_range\": [null, 42.5]}, \"12\": {\"val_range\": "
		"[-1, 7]}, \"24\": {\"val_range\": null}, \"0\": {}}"));
	struct vz_range r;

	VT_CHECK(c != NULL);
	if (!c)
		return;
	vz_conf_range(c, 0, 3, &r);
	VT_CHECK(r.set[0] && r.set[1]);
	VT_NEAR(r.v[0], 0, 0);
	VT_NEAR(r.v[1], 42.5, 0);
	vz_conf_range(c, 0, 12, &r);
	VT_CHECK(r.set[0] && r.set[1]);
	VT_NEAR(r.v[0], -1, 0);
	VT_NEAR(r.v[1], 7, 0);
	for (int z = 0; z <= VZ_MAX_ZOOM; z++) {
		if (z == 3 || z == 12)
			continue;
		vz_conf_range(c, 0, z, &r);
		VT_CHECK(r.set[0] && !r.set[1]);
		VT_NEAR(r.v[0], 0, 0);
	}
	/* out-of-range indices give an empty range, not a crash */
	vz_conf_range(c, 5, 3, &r);
	VT_CHECK(!r.set[0] && !r.set[1]);
	vz_conf_range(c, 0, 99, &r);
	VT_CHECK(r.set[0] && !r.set[1]);
	vz_conf_free(c);

	/* no val_range at all */
	c = parse(ONE_STAT(", \"val_range\": null"));
	VT_CHECK(c != NULL);
	if (c) {
		vz_conf_range(c, 0, 0, &r);
		VT_CHECK(!r.set[0] && !r.set[1]);
	}
	vz_conf_free(c);
}

static void fp_of(const char *json, char out[33])
{
	struct vz_conf *c = parse(json);

	if (!c) {
		vt_failed++;
		snprintf(out, 33, "parse-failed");
		return;
	}
	memcpy(out, c->fingerprint, 33);
	vz_conf_free(c);
}

static void test_fingerprint(void)
{
	/* each variant changes one output-relevant thing */
	static const char *const variants[] = {
		"{}",
		"{\"tms_id\": \"WorldCRS84Quad\"}",
		"{\"z_range\": [0, 12]}",
		"{\"z_range\": [1, 13]}",
		"{\"tile_size\": [256, 128]}",
		"{\"tile_size\": [128, 256]}",
		"{\"simplify_tolerance\": null}",
		"{\"simplify_tolerance\": 0.001}",
		"{\"input_crs\": \"EPSG:3413\"}",
		"{\"tile_path_structure\": [\"tms\", \"style\", \"z\", \"x\", "
		"\"y\"]}",
		"{\"tile_path_structure\": [\"style\", \"z\", \"x\", \"y\"]}",
		"{\"vizfs_range_mode\": \"per_tile\"}",
		"{\"dir_input\": \"other\"}",
		"{\"ext_input\": \".gpkg\"}",
		"{\"dir_staged\": \"stg\"}",
		ONE_STAT(""),
		ONE_STAT(", \"val_range\": [0, 1]"),
		ONE_STAT(", \"val_range\": [0, 2]"),
		ONE_STAT(", \"val_range\": [null, 1]"),
		ONE_STAT(", \"palette\": [\"#000\", \"#fff\"]"),
		ONE_STAT(", \"palette\": [\"#fff\", \"#000\"]"),
		ONE_STAT(", \"nodata_val\": 0"),
		ONE_STAT(", \"nodata_val\": 1"),
		ONE_STAT(", \"nodata_color\": \"#00000000\""),
		ONE_STAT(", \"z_config\": {\"3\": {\"val_range\": [0, 5]}}"),
		ONE_STAT(", \"z_config\": {\"4\": {\"val_range\": [0, 5]}}"),
		"{\"statistics\": [{\"name\": \"t\", \"weight_by\": \"count\","
		" \"property\": \"A\", \"aggregation_method\": \"sum\", "
		"\"resampling_method\": \"sum\"}]}",
		"{\"statistics\": [{\"name\": \"s\", \"weight_by\": \"area\","
		" \"property\": \"A\", \"aggregation_method\": \"sum\", "
		"\"resampling_method\": \"sum\"}]}",
		"{\"statistics\": [{\"name\": \"s\", \"weight_by\": \"count\","
		" \"property\": \"B\", \"aggregation_method\": \"sum\", "
		"\"resampling_method\": \"sum\"}]}",
		"{\"statistics\": [{\"name\": \"s\", \"weight_by\": \"count\","
		" \"property\": \"A\", \"aggregation_method\": \"max\", "
		"\"resampling_method\": \"sum\"}]}",
		"{\"statistics\": [{\"name\": \"s\", \"weight_by\": \"count\","
		" \"property\": \"A\", \"aggregation_method\": \"sum\", "
		"\"resampling_method\": \"max\"}]}",
	};
	char fp[VZ_ARRAY_SIZE(variants)][33], a[33], b[33];

	for (size_t i = 0; i < VZ_ARRAY_SIZE(variants); i++)
		fp_of(variants[i], fp[i]);
	for (size_t i = 0; i < VZ_ARRAY_SIZE(variants); i++) {
		for (size_t j = i + 1; j < VZ_ARRAY_SIZE(variants); j++) {
			vt_checks++;
			if (strcmp(fp[i], fp[j]) == 0) {
				vt_failed++;
				fprintf(stderr, "same fingerprint: %s / %s\n",
					variants[i], variants[j]);
			}
		}
	}
	/* stable */
	fp_of(variants[20], a);
	VT_CHECK(strcmp(a, fp[20]) == 0);
	/* the explicit defaults are the defaults */
	fp_of("{\"tms_id\": \"WGS1984Quad\", \"z_range\": [0, 13], "
	      "\"tile_size\": [256, 256], \"simplify_tolerance\": 0.0001, "
	      "\"input_crs\": null}",
	      a);
	VT_CHECK(strcmp(a, fp[0]) == 0);
	/* not output-relevant */
	fp_of("{\"vizfs_cache_dir\": \"/elsewhere\", \"vizfs_workers\": 7, "
	      "\"vizfs_cache_map_size\": 2097152, \"title\": \"x\", \"doi\": "
	      "\"y\", \"overwrite\": true, \"dir_output\": \"o\", "
	      "\"filename_rasters_summary\": \"r.csv\", \"geometricError\": 3}",
	      b);
	VT_CHECK(strcmp(b, fp[0]) == 0);
	/* key order does not matter */
	fp_of("{\"z_range\": [1, 3], \"tms_id\": \"WorldCRS84Quad\"}", a);
	fp_of("{\"tms_id\": \"WorldCRS84Quad\", \"z_range\": [1, 3]}", b);
	VT_CHECK(strcmp(a, b) == 0);
	/* -0.0 and 0 are the same value */
	fp_of(ONE_STAT(", \"nodata_val\": -0.0"), a);
	VT_CHECK(strcmp(a, fp[21]) == 0);
}

static void test_relative_paths(void)
{
	char dir[PATH_MAX], path[PATH_MAX + 32], want[PATH_MAX + 64];
	struct vz_conf *c = NULL;
	int rc;

	snprintf(dir, sizeof dir, "%s/tests/data/conf", vt_srcroot());
	snprintf(path, sizeof path, "%s/relative.json", dir);
	rc = vz_conf_load(path, &c);
	VT_EQ_INT(rc, 0);
	if (rc) {
		fprintf(stderr, "%s\n", vz_err_msg());
		return;
	}
	VT_CHECK(c->base_dir[0] == '/');
	VT_CHECK(strcmp(c->path, path) == 0);
	snprintf(want, sizeof want, "%s/polygons", c->base_dir);
	VT_CHECK(strcmp(c->dir_input, want) == 0);
	snprintf(want, sizeof want, "%s/out/staged", c->base_dir);
	VT_CHECK(strcmp(c->dir_staged, want) == 0);
	VT_CHECK(strcmp(c->dir_geotiff, "/abs/geotiff") == 0);
	snprintf(want, sizeof want, "%s/../web", c->base_dir);
	VT_CHECK(strcmp(c->dir_web_tiles, want) == 0);
	snprintf(want, sizeof want, "%s/sums/rasters.csv", c->base_dir);
	VT_CHECK(strcmp(c->filename_rasters_summary, want) == 0);
	snprintf(want, sizeof want, "%s/staging_summary.csv", c->base_dir);
	VT_CHECK(strcmp(c->filename_staging_summary, want) == 0);
	snprintf(want, sizeof want, "%s/cache", c->base_dir);
	VT_CHECK(strcmp(c->cache_dir, want) == 0);
	VT_EQ_INT(c->n_path_parts, 3);
	VT_EQ_INT(c->stats[0].attr, 0);
	VT_CHECK(!c->stats[0].has_nodata);
	VT_CHECK(strcmp(c->stats[0].nodata_color, "#ffffff00") == 0);
	VT_CHECK(!c->stats[0].val_range.set[0]);
	VT_NEAR(c->stats[0].val_range.v[1], 100.5, 0);
	VT_EQ_INT(c->stats[0].n_palette, 2);
	VT_CHECK(strcmp(c->stats[0].palette[1], "rgb(0 0 255 / 0.5)") == 0);
	vz_conf_free(c);

	/* a relative config path: base_dir is made absolute from the cwd */
	{
		char cwd[PATH_MAX], here[PATH_MAX];
		if (getcwd(cwd, sizeof cwd) && chdir(dir) == 0 &&
		    getcwd(here, sizeof here)) {
			rc = vz_conf_load("relative.json", &c);
			VT_EQ_INT(rc, 0);
			if (!rc) {
				VT_CHECK(strcmp(c->base_dir, here) == 0);
				snprintf(want, sizeof want, "%s/polygons",
					 here);
				VT_CHECK(strcmp(c->dir_input, want) == 0);
			}
			vz_conf_free(c);
			VT_CHECK(chdir(cwd) == 0);
		}
	}

	/* vz_conf_parse: explicit base, trailing slashes, "." dirs */
	c = parse("{\"dir_input\": \".\", \"dir_staged\": \"/app/staged/\","
		  " \"dir_geotiff\": \"a/./b//c/\"}");
	VT_CHECK(c != NULL);
	if (c) {
		VT_CHECK(strcmp(c->dir_input, BASE) == 0);
		VT_CHECK(strcmp(c->dir_staged, "/app/staged") == 0);
		VT_CHECK(strcmp(c->dir_geotiff, BASE "/a/b/c") == 0);
	}
	vz_conf_free(c);

	/* base_dir NULL -> cwd */
	{
		char cwd[PATH_MAX];
		c = NULL;
		rc = vz_conf_parse("{}", 2, NULL, NULL, &c);
		VT_EQ_INT(rc, 0);
		if (!rc && getcwd(cwd, sizeof cwd)) {
			VT_CHECK(strcmp(c->base_dir, cwd) == 0);
			VT_CHECK(strcmp(c->path, "<string>") == 0);
		}
		vz_conf_free(c);
	}
}

static void test_json_edges(void)
{
	struct vz_conf *c = NULL;
	/* a UTF-8 BOM and a length that counts the terminator are fine */
	static const char bom[] = "\xef\xbb\xbf{\"z_range\": [1, 2]}";

	VT_EQ_INT(vz_conf_parse(bom, strlen(bom), "b", "/", &c), 0);
	VT_CHECK(c && c->z_max == 2);
	vz_conf_free(c);
	c = NULL;
	VT_EQ_INT(vz_conf_parse("{}", 3, "n", "/", &c), 0);
	vz_conf_free(c);
	c = NULL;
	VT_EQ_INT(vz_conf_parse("{}\0x", 4, "n", "/", &c), VZ_E_CONFIG);
	VT_CHECK(c == NULL);
	/* numbers: integral doubles count as integers, fractions do not */
	c = parse("{\"z_range\": [0, 5.0], \"vizfs_workers\": 2e0}");
	VT_CHECK(c && c->z_max == 5 && c->workers == 2);
	vz_conf_free(c);
	/* comments, single quotes and leading zeros are not JSON */
	expect_err("{\"z_range\": [0, 3] /* c */}", "invalid JSON", NULL);
	expect_err("{\"z_range\": [0, 03]}", "invalid JSON", NULL);
}

static void test_load_errors(void)
{
	char path[PATH_MAX];
	struct vz_conf *c = (struct vz_conf *)1;
	int rc;

	rc = vz_conf_load("/nonexistent/vizfs/config.json", &c);
	VT_EQ_INT(rc, -ENOENT);
	VT_CHECK(c == NULL);
	VT_CHECK(strstr(vz_err_msg(), "/nonexistent/vizfs/config.json"));

	snprintf(path, sizeof path, "%s/tests/data/conf/bad_syntax.json",
		 vt_srcroot());
	rc = vz_conf_load(path, &c);
	VT_EQ_INT(rc, VZ_E_CONFIG);
	VT_CHECK(strstr(vz_err_msg(), "bad_syntax.json") != NULL);
	VT_CHECK(strstr(vz_err_msg(), "line 4") != NULL);

	snprintf(path, sizeof path, "%s/tests/data/conf", vt_srcroot());
	rc = vz_conf_load(path, &c);
	VT_CHECK(rc != 0);
}

/* The seed configs and the minimal example's config__updated.json. */
static void test_shared_configs(void)
{
	char shared[PATH_MAX], path[PATH_MAX + 64];
	struct vz_conf *c = NULL;
	struct vz_range r;
	struct stat st;
	int rc;

	snprintf(shared, sizeof shared, "%s/../shared", vt_srcroot());
	if (stat(shared, &st) != 0) {
		printf("note: %s absent, shared configs not tested\n", shared);
		return;
	}

	snprintf(path, sizeof path, "%s/seed/viz_config.json", shared);
	if (stat(path, &st) == 0) {
		rc = vz_conf_load(path, &c);
		VT_EQ_INT(rc, 0);
		if (!rc) {
			const struct vz_stat *s = &c->stats[0];
			VT_CHECK(strcmp(c->tms_id, "WGS1984Quad") == 0);
			VT_EQ_INT(c->z_max, 7);
			VT_NEAR(c->simplify_tolerance, 0.1, 0);
			VT_CHECK(strcmp(c->dir_staged, "/app/staged") == 0);
			VT_CHECK(strcmp(c->ext_input, ".gpkg") == 0);
			VT_EQ_INT(c->n_stats, 1);
			VT_CHECK(strcmp(s->name, "change_rate") == 0);
			VT_EQ_INT(s->weight_by, VZ_WEIGHT_AREA);
			VT_EQ_INT(s->prop, VZ_PROP_ATTRIBUTE);
			VT_EQ_INT(s->agg, VZ_AGG_MIN);
			VT_EQ_INT(s->resample, VZ_RS_MODE);
			VT_EQ_INT(c->n_attrs, 1);
			VT_CHECK(strcmp(c->attrs[0], "ChangeRateNet_myr-1") ==
				 0);
			VT_EQ_INT(s->n_palette, 7);
			VT_CHECK(strcmp(s->palette[6], "#0000ff") == 0);
			VT_NEAR(s->val_range.v[0], -2, 0);
			VT_NEAR(s->val_range.v[1], 2, 0);
		} else {
			fprintf(stderr, "%s\n", vz_err_msg());
		}
		vz_conf_free(c);
	}

	snprintf(path, sizeof path, "%s/seed/workflow_config.json", shared);
	if (stat(path, &st) == 0) {
		rc = vz_conf_load(path, &c);
		VT_EQ_INT(rc, 0);
		if (!rc) {
			VT_EQ_INT(c->z_max, 9);
			VT_CHECK(strcmp(c->stats[0].name, "iwp_coverage") == 0);
			VT_EQ_INT(c->stats[0].prop,
				  VZ_PROP_AREA_PER_PIXEL_AREA);
			VT_CHECK(strcmp(c->stats[0].palette[0], "#f8ff1f1A") ==
				 0);
			VT_CHECK(strcmp(c->dir_web_tiles,
					"/mnt/k8s-dev-pdg/web_tiles") == 0);
		} else {
			fprintf(stderr, "%s\n", vz_err_msg());
		}
		vz_conf_free(c);
	}

	snprintf(path, sizeof path,
		 "%s/data/pdg-minimal-example/config__updated.json", shared);
	if (stat(path, &st) == 0) {
		rc = vz_conf_load(path, &c);
		VT_EQ_INT(rc, 0);
		if (!rc) {
			VT_CHECK(strcmp(c->tms_id, "WorldCRS84Quad") == 0);
			VT_EQ_INT(c->z_max, 13);
			VT_EQ_INT(c->n_stats, 2);
			/* z_config with string keys -> per-zoom maxima */
			VT_CHECK(!c->stats[0].z_range[5].set[0]);
			VT_NEAR(c->stats[0].z_range[5].v[1], 1693.9999999645554,
				0);
			VT_NEAR(c->stats[0].z_range[10].v[1],
				10.999999998264483, 0);
			vz_conf_range(c, 0, 0, &r);
			VT_CHECK(r.set[0] && r.set[1]);
			VT_NEAR(r.v[0], 0, 0);
			VT_NEAR(r.v[1], 6200.999999976127, 0);
			vz_conf_range(c, 0, 13, &r);
			VT_NEAR(r.v[1], 1.0, 0);
			vz_conf_range(c, 0, 14, &r);
			VT_CHECK(r.set[0] && !r.set[1]);
			vz_conf_range(c, 1, 5, &r);
			VT_CHECK(r.set[0] && r.set[1]);
			VT_NEAR(r.v[1], 1, 0);
		} else {
			fprintf(stderr, "%s\n", vz_err_msg());
		}
		vz_conf_free(c);
	}
}

/* Random byte edits of a full config: only 0 or VZ_E_CONFIG, never a
 * crash, and every failure explains itself. */
static void test_mutations(void)
{
	char path[PATH_MAX], *src = NULL, *buf;
	size_t len = 0;
	uint64_t rng = 88172645463325252ull;
	int lvl = vz_log_get_level(), bad = 0, ok = 0;
	FILE *f;

	snprintf(path, sizeof path, "%s/tests/data/conf/every_key.json",
		 vt_srcroot());
	f = fopen(path, "r");
	if (!f) {
		vt_failed++;
		return;
	}
	src = malloc(1 << 16);
	len = fread(src, 1, (1 << 16) - 1, f);
	fclose(f);
	buf = malloc(len + 8);
	vz_log_set_level(VZ_LOG_ERR);
	for (int i = 0; i < 3000; i++) {
		struct vz_conf *c = NULL;
		size_t n = len;
		int rc;

		memcpy(buf, src, len);
		for (int e = 0; e < 1 + i % 4; e++) {
			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			buf[rng % n] =
				"0123456789-.,:\"[]{}nulx /e"[(rng >> 32) % 27];
		}
		rc = vz_conf_parse(buf, n, "m.json", "/", &c);
		if (rc == 0)
			ok++;
		else if (rc != VZ_E_CONFIG || !strstr(vz_err_msg(), "m.json"))
			bad++;
		vz_conf_free(c);
	}
	vz_log_set_level(lvl);
	VT_EQ_INT(bad, 0);
	VT_CHECK(ok > 0);
	free(buf);
	free(src);
}

int main(void)
{
	test_defaults();
	test_user_stat_replaces_defaults();
	test_enum_names();
	test_errors();
	test_colors();
	test_unknown_key_warns();
	test_every_key();
	test_ranges();
	test_fingerprint();
	test_relative_paths();
	test_json_edges();
	test_load_errors();
	test_shared_configs();
	test_mutations();
	return vt_done("test_conf");
}
