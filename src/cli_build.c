/* SPDX-License-Identifier: Apache-2.0 */
/* Batch subcommands: prefetch, export, render, info, sample. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build_i.h"
#include "cli.h"
#include "vizfs/geotiff.h"
#include "vizfs/path.h"
#include "vizfs/sample.h"

struct opts {
	const char *cmd;
	long workers;
	bool quiet, json, zset, prom;
	long zmin, zmax;
	enum vz_input_mode mode;
	const char *cache;
	const char *output;
	long shard_i, shard_n; /* --shard I/N; shard_n 0: none */
	char **pos; /* positional arguments */
	int n_pos;
};

enum {
	OPT_STAGED = 256,
	OPT_RAW,
	OPT_CACHE,
	OPT_JSON,
	OPT_SHARD,
	OPT_PROM,
};

static const struct option long_opts[] = {
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{"workers", required_argument, NULL, 'w'},
	{"zoom", required_argument, NULL, 'z'},
	{"quiet", no_argument, NULL, 'q'},
	{"staged", no_argument, NULL, OPT_STAGED},
	{"raw", no_argument, NULL, OPT_RAW},
	{"cache", required_argument, NULL, OPT_CACHE},
	{"json", no_argument, NULL, OPT_JSON},
	{"output", required_argument, NULL, 'o'},
	{"shard", required_argument, NULL, OPT_SHARD},
	{"prometheus", no_argument, NULL, OPT_PROM},
	{NULL, 0, NULL, 0},
};

/* Which options each command takes (by long name). */
static bool takes(const char *cmd, const char *opt)
{
	static const char *const table[][2] = {
		{"prefetch", "workers zoom quiet json staged raw cache shard"},
		{"merge", "workers quiet json staged raw cache"},
		{"export", "workers quiet json staged raw cache"},
		{"render", "workers staged raw cache output"},
		{"info", "json prometheus staged raw cache"},
	};
	for (size_t i = 0; i < VZ_ARRAY_SIZE(table); i++) {
		if (strcmp(table[i][0], cmd))
			continue;
		const char *p = table[i][1];
		size_t n = strlen(opt);
		while ((p = strstr(p, opt))) {
			if ((p == table[i][1] || p[-1] == ' ') &&
			    (p[n] == ' ' || p[n] == '\0'))
				return true;
			p += n;
		}
	}
	return false;
}

static const char *const help_text[][2] = {
	{"prefetch",
	 "usage: vizfs prefetch CONFIG [OPTIONS] [FILE...]\n"
	 "\nBuild the whole pyramid (staging, max-zoom rasters, parents, PNGs)"
	 " into the\ncache named by the config (vizfs_cache_dir, default "
	 ".vizfs-cache next to it).\nResumes whatever an earlier run left; a "
	 "second run with unchanged inputs does\nno work. FILE... replaces "
	 "dir_input/ext_input discovery.\n\n"
	 "  -w, --workers N   worker threads (default: all CPUs)\n"
	 "  -z, --zoom A-B    only build zooms A..B (deeper levels are built"
	 " as needed)\n"
	 "  -q, --quiet       no progress output\n"
	 "      --json        no progress; a JSON summary on stdout at the end\n"
	 "      --staged      read dir_staged as a pre-staged PDG tree "
	 "(rasterize only)\n"
	 "      --raw         never fall back to a pre-staged tree\n"
	 "      --cache DIR   cache directory (overrides vizfs_cache_dir)\n"
	 "      --shard I/N   build shard I of N (0 <= I < N) into its own "
	 "--cache: whole\n"
	 "                    subtrees below a split zoom, balanced by input "
	 "volume;\n"
	 "                    combine the N caches with vizfs merge\n"},
	{"merge",
	 "usage: vizfs merge CONFIG --cache OUT [OPTIONS] SHARD_DIR...\n"
	 "\nCombine the caches of a sharded build (vizfs prefetch --shard I/N "
	 "--cache DIR)\ninto the cache OUT (default: the config's "
	 "vizfs_cache_dir): checks that all N\nshards are there, complete and "
	 "built from the same config and inputs, copies\ntheir tiles and builds"
	 " the levels above the split zoom.  The result is the\nsame as a "
	 "single vizfs prefetch; OUT can be mounted, exported or resumed.\n\n"
	 "  -w, --workers N   worker threads (default: all CPUs)\n"
	 "  -q, --quiet       no progress output\n"
	 "      --cache OUT   the merged cache\n"
	 "      --staged, --raw   as for prefetch\n"},
	{"export",
	 "usage: vizfs export CONFIG DIR [OPTIONS]\n"
	 "\nWrite the PDG directory tree to DIR: geotiff/…, web_tiles/…, "
	 "staged/…\n(GeoPackages of the max zoom), staging_summary.csv and "
	 "rasters_summary.csv.\nBuilds whatever the cache is missing first.\n\n"
	 "  -w, --workers N   worker threads (default: all CPUs)\n"
	 "  -q, --quiet       no progress output\n"
	 "      --staged, --raw, --cache DIR   as for prefetch\n"},
	{"render",
	 "usage: vizfs render CONFIG TILEPATH [OPTIONS]\n"
	 "\nWrite one file of the tree to stdout, computing it if needed, e.g."
	 "\n  vizfs render config.json web_tiles/coverage/WorldCRS84Quad/5/3/2"
	 ".png > t.png\nTILEPATH may also be staging_summary.csv or "
	 "rasters_summary.csv.\n\n"
	 "  -o, --output FILE write to FILE instead of stdout\n"
	 "  -w, --workers N   worker threads when a whole zoom is needed\n"
	 "      --staged, --raw, --cache DIR   as for prefetch\n"},
	{"info",
	 "usage: vizfs info CONFIG [OPTIONS]\n"
	 "\nShow the inputs and the cache state per zoom: tiles of the pyramid,"
	 " rendered,\nPNG files, sizes. Never writes to the cache.\n\n"
	 "      --json        machine-readable output\n"
	 "      --prometheus  Prometheus text format (for a node exporter's "
	 "textfile\n"
	 "                    collector; a mount serves .vizfs/metrics)\n"
	 "      --staged, --raw, --cache DIR   as for prefetch\n"},
};

static void print_help(const char *cmd)
{
	for (size_t i = 0; i < VZ_ARRAY_SIZE(help_text); i++)
		if (!strcmp(help_text[i][0], cmd))
			fputs(help_text[i][1], stdout);
	fputs("\n  -h, --help        this text\n"
	      "  -V, --version     version of vizfs and its libraries\n"
	      "\nExit status: 0 ok, 1 usage error, 2 runtime failure.\n",
	      stdout);
}

/* @return -1 to continue, else the exit code. */
static int parse_opts(struct opts *o, int argc, char **argv)
{
	int c, idx;

	memset(o, 0, sizeof *o);
	o->cmd = argv[0];
	o->mode = VZ_INPUT_AUTO;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hVw:z:qo:", long_opts, &idx)) !=
	       -1) {
		const char *name = NULL;
		for (const struct option *lo = long_opts; lo->name; lo++)
			if (lo->val == c)
				name = lo->name;
		if (c == '?')
			return vz_cli_usage_error(o->cmd, "unknown option '%s'",
						  argv[optind - 1]);
		if (c == ':')
			return vz_cli_usage_error(o->cmd,
						  "option '%s' needs a value",
						  argv[optind - 1]);
		if (c == 'h') {
			print_help(o->cmd);
			return VZ_EXIT_OK;
		}
		if (c == 'V') {
			vz_cli_version();
			return VZ_EXIT_OK;
		}
		if (name && !takes(o->cmd, name))
			return vz_cli_usage_error(
				o->cmd, "option --%s does not apply here", name);
		switch (c) {
		case 'w':
			if (!vz_cli_int(optarg, 1, 1024, &o->workers))
				return vz_cli_usage_error(
					o->cmd,
					"--workers: expected an integer 1..1024,"
					" got '%s'",
					optarg);
			break;
		case 'z': {
			char *dash = strchr(optarg, '-');
			char a[16] = "", b[16] = "";
			if (dash && dash - optarg < 15 && strlen(dash) < 16) {
				memcpy(a, optarg, (size_t)(dash - optarg));
				strcpy(b, dash + 1);
			} else if (!dash && strlen(optarg) < 16) {
				strcpy(a, optarg);
				strcpy(b, optarg);
			}
			if (!vz_cli_int(a, 0, VZ_MAX_ZOOM, &o->zmin) ||
			    !vz_cli_int(b, 0, VZ_MAX_ZOOM, &o->zmax) ||
			    o->zmin > o->zmax)
				return vz_cli_usage_error(
					o->cmd,
					"--zoom: expected A-B with 0 <= A <= B "
					"<= %d, got '%s'",
					VZ_MAX_ZOOM, optarg);
			o->zset = true;
			break;
		}
		case 'q':
			o->quiet = true;
			break;
		case 'o':
			o->output = optarg;
			break;
		case OPT_STAGED:
			o->mode = VZ_INPUT_STAGED;
			break;
		case OPT_RAW:
			o->mode = VZ_INPUT_RAW;
			break;
		case OPT_CACHE:
			o->cache = optarg;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_PROM:
			o->prom = true;
			break;
		case OPT_SHARD:
			if (sscanf(optarg, "%ld/%ld", &o->shard_i,
				   &o->shard_n) != 2 ||
			    !strchr(optarg, '/') || o->shard_n < 1 ||
			    o->shard_n > 65536 || o->shard_i < 0 ||
			    o->shard_i >= o->shard_n)
				return vz_cli_usage_error(
					o->cmd,
					"--shard: expected I/N with 0 <= I < N, "
					"got '%s'",
					optarg);
			break;
		}
	}
	o->pos = argv + optind;
	o->n_pos = argc - optind;
	return -1;
}

struct session {
	struct vz_conf *conf;
	struct vz_builder *b;
	struct vz_progress prog;
};

static int open_session(struct opts *o, struct session *s, bool read_only,
			const char *const *files, size_t n_files)
{
	struct vz_build_opts bo = {0};
	int rc;

	memset(s, 0, sizeof *s);
	rc = vz_conf_load(o->pos[0], &s->conf);
	if (rc)
		return vz_cli_fail(o->cmd, rc);
	if (o->zset &&
	    (o->zmin < s->conf->z_min || o->zmax > s->conf->z_max))
		return vz_cli_usage_error(o->cmd,
					  "--zoom %ld-%ld is outside the "
					  "config's z_range [%d, %d]",
					  o->zmin, o->zmax, s->conf->z_min,
					  s->conf->z_max);
	vz_progress_init(&s->prog, o->quiet || o->json);
	bo.workers = (int)o->workers;
	bo.mode = o->mode;
	bo.files = files;
	bo.n_files = n_files;
	bo.cache_dir = o->cache;
	bo.progress = vz_progress_cb;
	bo.progress_ud = &s->prog;
	bo.cancel = &vz_cli_cancel;
	bo.read_only = read_only;
	bo.shard_index = (int)o->shard_i;
	bo.shard_count = (int)o->shard_n;
	vz_cli_catch_signals();
	rc = vz_builder_open(s->conf, &bo, &s->b);
	if (rc)
		return vz_cli_fail(o->cmd, rc);
	return -1;
}

static void close_session(struct session *s)
{
	vz_progress_end(&s->prog);
	VZ_FREEF(vz_builder_close, s->b);
	VZ_FREEF(vz_conf_free, s->conf);
}

int vz_cli_prefetch(int argc, char **argv)
{
	struct opts o;
	struct session s;
	struct vz_info info;
	uint64_t tiles = 0;
	double t0 = vz_now();
	int rc;

	if ((rc = parse_opts(&o, argc, argv)) >= 0)
		return rc;
	if (o.n_pos < 1)
		return vz_cli_usage_error(o.cmd, "missing CONFIG");
	if (o.shard_n && !o.cache)
		return vz_cli_usage_error(o.cmd, "--shard needs --cache DIR "
						 "(one cache per shard)");
	if (o.shard_n && o.zset)
		return vz_cli_usage_error(o.cmd, "--shard and --zoom exclude "
						 "each other");
	if (o.n_pos > 1 && o.mode == VZ_INPUT_STAGED)
		return vz_cli_usage_error(o.cmd,
					  "FILE arguments and --staged exclude "
					  "each other");
	if ((rc = open_session(&o, &s, false,
			       (const char *const *)o.pos + 1,
			       (size_t)(o.n_pos - 1))) >= 0) {
		close_session(&s);
		return rc;
	}
	rc = vz_builder_prefetch(s.b, o.zset ? (int)o.zmin : s.conf->z_min,
				 o.zset ? (int)o.zmax : s.conf->z_max);
	vz_progress_end(&s.prog);
	if (rc) {
		int ex = vz_cli_fail(o.cmd, rc);
		close_session(&s);
		return ex;
	}
	if (o.json && vz_builder_info(s.b, &info) == 0) {
		uint64_t chunks, rendered, pngs;
		vz_builder_counters(s.b, &chunks, &rendered, &pngs);
		for (int z = s.conf->z_min; z <= s.conf->z_max; z++)
			tiles += info.z[z].bands;
		printf("{\"command\": \"prefetch\", \"tiles\": %" PRIu64
		       ", \"staged_chunks\": %" PRIu64 ", \"rendered\": %" PRIu64
		       ", \"pngs\": %" PRIu64 ", \"seconds\": %.3f}\n",
		       tiles, chunks, rendered, pngs, vz_now() - t0);
	} else if (!o.quiet && vz_builder_info(s.b, &info) == 0) {
		uint64_t chunks, rendered, pngs;
		vz_builder_counters(s.b, &chunks, &rendered, &pngs);
		for (int z = s.conf->z_min; z <= s.conf->z_max; z++)
			tiles += info.z[z].bands;
		fprintf(stderr,
			"vizfs prefetch: %" PRIu64 " tiles in the cache (z%d-%d)"
			" from %zu input%s; this run staged %" PRIu64
			" chunks, rendered %" PRIu64 " tiles and %" PRIu64
			" PNGs in %.1f s; cache %s\n",
			tiles, s.conf->z_min, s.conf->z_max, info.n_inputs,
			info.n_inputs == 1 ? "" : "s", chunks, rendered, pngs,
			vz_now() - t0, o.cache ? o.cache : s.conf->cache_dir);
	}
	close_session(&s);
	return VZ_EXIT_OK;
}

int vz_cli_merge(int argc, char **argv)
{
	struct opts o;
	struct session s;
	int rc;

	if ((rc = parse_opts(&o, argc, argv)) >= 0)
		return rc;
	if (o.n_pos < 2)
		return vz_cli_usage_error(o.cmd, "missing CONFIG or SHARD_DIR");
	if ((rc = open_session(&o, &s, false, NULL, 0)) >= 0) {
		close_session(&s);
		return rc;
	}
	rc = vz_builder_merge(s.b, (const char *const *)o.pos + 1,
			      (size_t)(o.n_pos - 1));
	vz_progress_end(&s.prog);
	if (rc) {
		int ex = vz_cli_fail(o.cmd, rc);
		close_session(&s);
		return ex;
	}
	if (o.json)
		printf("{\"command\": \"merge\", \"shards\": %d, \"cache\": "
		       "\"%s\"}\n",
		       o.n_pos - 1, o.cache ? o.cache : s.conf->cache_dir);
	else if (!o.quiet)
		fprintf(stderr, "vizfs merge: %d shard caches merged into %s\n",
			o.n_pos - 1, o.cache ? o.cache : s.conf->cache_dir);
	close_session(&s);
	return VZ_EXIT_OK;
}

int vz_cli_export(int argc, char **argv)
{
	struct opts o;
	struct session s;
	int rc;

	if ((rc = parse_opts(&o, argc, argv)) >= 0)
		return rc;
	if (o.n_pos != 2)
		return vz_cli_usage_error(o.cmd, o.n_pos < 2
							 ? "missing CONFIG or DIR"
							 : "too many arguments");
	if ((rc = open_session(&o, &s, false, NULL, 0)) >= 0) {
		close_session(&s);
		return rc;
	}
	rc = vz_builder_export(s.b, o.pos[1]);
	vz_progress_end(&s.prog);
	if (rc) {
		int ex = vz_cli_fail(o.cmd, rc);
		close_session(&s);
		return ex;
	}
	if (o.json)
		printf("{\"command\": \"export\", \"dir\": \"%s\"}\n",
		       o.pos[1]);
	else if (!o.quiet)
		fprintf(stderr, "vizfs export: wrote %s\n", o.pos[1]);
	close_session(&s);
	return VZ_EXIT_OK;
}

static int write_all(FILE *f, const struct vz_buf *b)
{
	return fwrite(b->data, 1, b->len, f) == b->len && fflush(f) == 0 ? 0
									 : -EIO;
}

int vz_cli_render(int argc, char **argv)
{
	struct opts o;
	struct session s;
	struct vz_tile_ref ref;
	struct vz_buf out = {0};
	const char *p;
	FILE *f = stdout;
	int rc, ex = VZ_EXIT_OK;

	if ((rc = parse_opts(&o, argc, argv)) >= 0)
		return rc;
	if (o.n_pos != 2)
		return vz_cli_usage_error(o.cmd, o.n_pos < 2
							 ? "missing CONFIG or "
							   "TILEPATH"
							 : "too many arguments");
	o.quiet = true;
	if ((rc = open_session(&o, &s, false, NULL, 0)) >= 0) {
		close_session(&s);
		return rc;
	}
	p = o.pos[1];
	while (*p == '/')
		p++;
	if (!strcmp(p, "staging_summary.csv") ||
	    !strcmp(p, "rasters_summary.csv")) {
		rc = vz_builder_prefetch(s.b, s.conf->z_min, s.conf->z_max);
		if (!rc)
			rc = p[0] == 's' ? vz_builder_staging_csv(s.b, &out)
					 : vz_builder_rasters_csv(s.b, &out);
	} else if (vz_path_parse(s.conf, p, &ref) != 0) {
		ex = vz_cli_usage_error(o.cmd,
					"'%s' is not a tile path of this config "
					"(expected e.g. geotiff/%s/%d/0/0.tif)",
					o.pos[1], s.conf->tms_id,
					s.conf->z_min);
		goto out;
	} else {
		rc = vz_builder_get(s.b, &ref, &out);
		if (rc == -ENOENT) {
			fprintf(stderr,
				"vizfs render: %s: no such tile (no data there)"
				"\n",
				o.pos[1]);
			ex = VZ_EXIT_FAIL;
			goto out;
		}
	}
	if (rc) {
		ex = vz_cli_fail(o.cmd, rc);
		goto out;
	}
	if (o.output) {
		f = fopen(o.output, "wb");
		if (!f) {
			fprintf(stderr, "vizfs render: %s: %s\n", o.output,
				strerror(errno));
			ex = VZ_EXIT_FAIL;
			goto out;
		}
	} else if (isatty(STDOUT_FILENO) && strstr(p, ".csv") == NULL) {
		fprintf(stderr, "vizfs render: refusing to write binary tile "
				"data to a terminal; redirect stdout or use -o "
				"FILE\n");
		ex = VZ_EXIT_USAGE;
		goto out;
	}
	if (write_all(f, &out)) {
		fprintf(stderr, "vizfs render: write failed: %s\n",
			strerror(errno));
		ex = VZ_EXIT_FAIL;
	}
	if (f != stdout)
		fclose(f);
out:
	vz_buf_free(&out);
	close_session(&s);
	return ex;
}

static void human(uint64_t n, char *out, size_t len)
{
	const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	int i = 0;
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(out, len, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

int vz_cli_info(int argc, char **argv)
{
	struct opts o;
	struct session s;
	struct vz_info in;
	const struct vz_inputs *inputs;
	uint64_t t_tiles = 0, t_bands = 0, t_pngs = 0;
	char h1[32], h2[32];
	int rc;

	if ((rc = parse_opts(&o, argc, argv)) >= 0)
		return rc;
	if (o.n_pos != 1)
		return vz_cli_usage_error(o.cmd, o.n_pos < 1
							 ? "missing CONFIG"
							 : "too many arguments");
	o.quiet = true;
	if ((rc = open_session(&o, &s, true, NULL, 0)) >= 0) {
		close_session(&s);
		return rc;
	}
	vz_builder_info(s.b, &in);
	inputs = vz_builder_inputs(s.b);
	for (int z = s.conf->z_min; z <= s.conf->z_max; z++) {
		t_tiles += in.z[z].tiles;
		t_bands += in.z[z].bands;
		t_pngs += in.z[z].pngs;
	}
	if (o.prom) {
		printf("# HELP vizfs_cache_fresh 1 if the cache matches the "
		       "config and inputs.\n# TYPE vizfs_cache_fresh gauge\n"
		       "vizfs_cache_fresh %d\n",
		       in.fresh);
		printf("# HELP vizfs_cache_bytes Size of the LMDB data file.\n"
		       "# TYPE vizfs_cache_bytes gauge\nvizfs_cache_bytes %" PRIu64
		       "\n",
		       in.file_bytes);
		printf("# HELP vizfs_stage_features Features read by staging.\n"
		       "# TYPE vizfs_stage_features gauge\n"
		       "vizfs_stage_features %" PRIu64 "\n"
		       "# HELP vizfs_stage_skipped Features skipped by staging.\n"
		       "# TYPE vizfs_stage_skipped gauge\n"
		       "vizfs_stage_skipped %" PRIu64 "\n"
		       "# HELP vizfs_stage_seconds Time of the last staging run.\n"
		       "# TYPE vizfs_stage_seconds gauge\n"
		       "vizfs_stage_seconds %.3f\n",
		       in.stage.features,
		       in.stage.skipped_invalid + in.stage.skipped_type +
			       in.stage.skipped_empty + in.stage.skipped_outside,
		       in.stage_seconds);
		printf("# HELP vizfs_tiles Tiles of the pyramid per zoom.\n"
		       "# TYPE vizfs_tiles gauge\n");
		for (int z = s.conf->z_min; z <= s.conf->z_max; z++)
			printf("vizfs_tiles{z=\"%d\"} %" PRIu64 "\n", z,
			       in.z[z].tiles);
		printf("# HELP vizfs_tiles_done Tiles rendered per zoom.\n"
		       "# TYPE vizfs_tiles_done gauge\n");
		for (int z = s.conf->z_min; z <= s.conf->z_max; z++)
			printf("vizfs_tiles_done{z=\"%d\"} %" PRIu64 "\n", z,
			       in.z[z].bands);
		printf("# HELP vizfs_pngs PNG files per zoom.\n"
		       "# TYPE vizfs_pngs gauge\n");
		for (int z = s.conf->z_min; z <= s.conf->z_max; z++)
			printf("vizfs_pngs{z=\"%d\"} %" PRIu64 "\n", z,
			       in.z[z].pngs);
		printf("# HELP vizfs_level_seconds Time the last build of a "
		       "zoom's rasters took.\n# TYPE vizfs_level_seconds gauge\n");
		for (int z = s.conf->z_min; z <= s.conf->z_max; z++)
			printf("vizfs_level_seconds{z=\"%d\"} %.3f\n", z,
			       in.z[z].seconds);
		close_session(&s);
		return VZ_EXIT_OK;
	}
	if (o.json) {
		printf("{\"config\": \"%s\", \"cache\": \"%s\", \"fresh\": %s, "
		       "\"staged\": %s, \"prestaged\": %s, \"inputs\": %zu, "
		       "\"polygons\": %" PRIu64 ", \"features\": %" PRIu64
		       ", \"staged_rows\": %" PRIu64
		       ", \"skipped\": %" PRIu64 ", \"repaired\": %" PRIu64
		       ", \"tiles\": %" PRIu64 ", \"rendered\": %" PRIu64
		       ", \"pngs\": %" PRIu64 ", \"cache_bytes\": %" PRIu64
		       ", \"stage_seconds\": %.3f, \"zooms\": [",
		       s.conf->path, o.cache ? o.cache : s.conf->cache_dir,
		       in.fresh ? "true" : "false",
		       in.staged ? "true" : "false",
		       in.prestaged ? "true" : "false", in.n_inputs,
		       in.stage.polygons, in.stage.features, in.stage.rows,
		       in.stage.skipped_invalid + in.stage.skipped_type +
			       in.stage.skipped_empty +
			       in.stage.skipped_outside,
		       in.stage.repaired, t_tiles, t_bands, t_pngs,
		       in.file_bytes, in.stage_seconds);
		for (int z = s.conf->z_min; z <= s.conf->z_max; z++)
			printf("%s{\"z\": %d, \"tiles\": %" PRIu64
			       ", \"rendered\": %" PRIu64 ", \"pngs\": %" PRIu64
			       ", \"band_bytes\": %" PRIu64
			       ", \"png_bytes\": %" PRIu64
			       ", \"seconds\": %.3f}",
			       z == s.conf->z_min ? "" : ", ", z,
			       in.z[z].tiles, in.z[z].bands, in.z[z].pngs,
			       in.z[z].band_bytes, in.z[z].png_bytes,
			       in.z[z].seconds);
		printf("]}\n");
		close_session(&s);
		return VZ_EXIT_OK;
	}
	human(in.file_bytes, h1, sizeof h1);
	printf("config    %s (%s, z%d-%d, %ux%u px, %zu statistic%s)\n",
	       s.conf->path, s.conf->tms_id, s.conf->z_min, s.conf->z_max,
	       s.conf->tile_w, s.conf->tile_h, s.conf->n_stats,
	       s.conf->n_stats == 1 ? "" : "s");
	printf("inputs    %zu %s file%s%s\n", inputs->n,
	       inputs->prestaged ? "pre-staged" : "vector",
	       inputs->n == 1 ? "" : "s",
	       in.fresh ? "" : " (changed since the cache was built)");
	printf("cache     %s, %s\n", o.cache ? o.cache : s.conf->cache_dir,
	       h1);
	if (!in.fresh) {
		printf("state     stale or empty: run 'vizfs prefetch %s'\n",
		       s.conf->path);
		close_session(&s);
		return VZ_EXIT_OK;
	}
	printf("staging   %s: %" PRIu64 " features -> %" PRIu64
	       " polygons, %" PRIu64 " tile rows; skipped %" PRIu64
	       " (type %" PRIu64 ", empty %" PRIu64 ", invalid %" PRIu64
	       ", outside %" PRIu64 "), repaired %" PRIu64 "\n",
	       in.staged ? "complete" : "incomplete", in.stage.features,
	       in.stage.polygons, in.stage.rows,
	       in.stage.skipped_type + in.stage.skipped_empty +
		       in.stage.skipped_invalid + in.stage.skipped_outside,
	       in.stage.skipped_type, in.stage.skipped_empty,
	       in.stage.skipped_invalid, in.stage.skipped_outside,
	       in.stage.repaired);
	printf("\n%4s %10s %10s %10s %12s %12s\n", "z", "tiles", "rendered",
	       "pngs", "band bytes", "png bytes");
	for (int z = s.conf->z_max; z >= s.conf->z_min; z--) {
		human(in.z[z].band_bytes, h1, sizeof h1);
		human(in.z[z].png_bytes, h2, sizeof h2);
		printf("%4d %10" PRIu64 " %10" PRIu64 " %10" PRIu64
		       " %12s %12s\n",
		       z, in.z[z].tiles, in.z[z].bands, in.z[z].pngs, h1, h2);
	}
	printf("%4s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n", "all",
	       t_tiles, t_bands, t_pngs);
	close_session(&s);
	return VZ_EXIT_OK;
}

static void sample_progress(void *ud, uint64_t done, uint64_t total)
{
	vz_progress_cb(ud, "sample", done, total);
}

int vz_cli_sample(int argc, char **argv)
{
	static const struct option so[] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"count", required_argument, NULL, 'n'},
		{"bbox", required_argument, NULL, 'b'},
		{"seed", required_argument, NULL, 's'},
		{"crs", required_argument, NULL, 'c'},
		{"cell", required_argument, NULL, 'm'},
		{"quiet", no_argument, NULL, 'q'},
		{NULL, 0, NULL, 0},
	};
	struct vz_sample_opts o = {
		.n = 10000,
		.west = -150.6,
		.south = 70.2,
		.east = -150.4,
		.north = 70.4,
		.seed = 1,
		.crs = "EPSG:3413",
		.cell_m = 12,
	};
	struct vz_progress prog;
	bool quiet = false;
	int c, rc;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hVn:b:s:c:m:q", so, NULL)) !=
	       -1) {
		char *end;
		switch (c) {
		case 'h':
			printf("usage: vizfs sample OUT.gpkg [OPTIONS]\n\n"
			       "Write a deterministic synthetic set of "
			       "ice-wedge-like polygons (irregular\n4-8 vertex"
			       " cells packed like polygonal tundra, a few holes"
			       " and MultiPolygons,\nattributes "
			       "ChangeRateNet_myr-1, Area, Class) as a "
			       "GeoPackage.\n\n"
			       "  -n, --count N      polygons (default 10000)\n"
			       "  -b, --bbox W,S,E,N lon/lat box, filled row by "
			       "row from the south-west,\n"
			       "                     extended north when too "
			       "small (default "
			       "-150.6,70.2,-150.4,70.4)\n"
			       "  -s, --seed S       random seed (default 1)\n"
			       "  -c, --crs CRS      output CRS (default "
			       "EPSG:3413, metres)\n"
			       "  -m, --cell M       mean cell size in metres "
			       "(default 12)\n"
			       "  -q, --quiet        no progress output\n"
			       "  -h, --help, -V, --version\n"
			       "\nExit status: 0 ok, 1 usage error, 2 runtime "
			       "failure.\n");
			return VZ_EXIT_OK;
		case 'V':
			vz_cli_version();
			return VZ_EXIT_OK;
		case 'n': {
			long long v;
			errno = 0;
			v = strtoll(optarg, &end, 10);
			if (errno || *end || v < 1 || v > 1000000000LL)
				return vz_cli_usage_error(
					"sample",
					"--count: expected 1..1000000000, got "
					"'%s'",
					optarg);
			o.n = (uint64_t)v;
			break;
		}
		case 'b':
			if (sscanf(optarg, "%lf,%lf,%lf,%lf", &o.west, &o.south,
				   &o.east, &o.north) != 4 ||
			    !(o.west < o.east && o.south < o.north &&
			      o.west >= -180 && o.east <= 180 &&
			      o.south >= -90 && o.north <= 90))
				return vz_cli_usage_error(
					"sample",
					"--bbox: expected W,S,E,N in degrees "
					"with W<E and S<N, got '%s'",
					optarg);
			break;
		case 's': {
			unsigned long long v;
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || *end || !*optarg)
				return vz_cli_usage_error(
					"sample", "--seed: expected an integer, "
						  "got '%s'",
					optarg);
			o.seed = v;
			break;
		}
		case 'c':
			o.crs = optarg;
			break;
		case 'm':
			o.cell_m = strtod(optarg, &end);
			if (*end || !(o.cell_m >= 0.5 && o.cell_m <= 10000))
				return vz_cli_usage_error(
					"sample",
					"--cell: expected metres in 0.5..10000, "
					"got '%s'",
					optarg);
			break;
		case 'q':
			quiet = true;
			break;
		case ':':
			return vz_cli_usage_error("sample",
						  "option '%s' needs a value",
						  argv[optind - 1]);
		default:
			return vz_cli_usage_error("sample",
						  "unknown option '%s'",
						  argv[optind - 1]);
		}
	}
	if (argc - optind != 1)
		return vz_cli_usage_error("sample", argc - optind < 1
							    ? "missing OUT.gpkg"
							    : "too many "
							      "arguments");
	{
		/* Create the output's parent directories, like cp -D. */
		char dir[4096];
		char *slash;
		snprintf(dir, sizeof dir, "%s", argv[optind]);
		slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			rc = vz_mkdir_p(dir);
			if (rc) {
				fprintf(stderr, "vizfs sample: %s: %s\n", dir,
					strerror(-rc));
				return VZ_EXIT_FAIL;
			}
		}
	}
	vz_gdal_init();
	vz_progress_init(&prog, quiet);
	o.progress = sample_progress;
	o.progress_ud = &prog;
	rc = vz_sample_write(&o, argv[optind]);
	vz_progress_end(&prog);
	if (rc)
		return vz_cli_fail("sample", rc);
	if (!quiet)
		fprintf(stderr, "vizfs sample: wrote %" PRIu64 " polygons to %s\n",
			o.n, argv[optind]);
	return VZ_EXIT_OK;
}
