/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: tile path parser and formatter (the FUSE lookup boundary). */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz_common.h"
#include "vizfs/conf.h"
#include "vizfs/path.h"

#define STAT(n)                                                                \
	"{\"name\": \"" n "\", \"weight_by\": \"count\", \"property\": "       \
	"\"centroids_per_pixel\", \"aggregation_method\": \"sum\", "           \
	"\"resampling_method\": \"sum\"}"

/* Layouts the parser must handle: PDG default, the short single-statistic
 * form, deep zooms on WebMercatorQuad, and style without tms. */
static const char *const configs[] = {
	"{\"statistics\": [" STAT("coverage") ", " STAT(
		"polygon_count") ", " STAT("x") "]}",
	"{\"tms_id\": \"WebMercatorQuad\", \"z_range\": [3, 24], "
	"\"tile_path_structure\": [\"z\", \"x\", \"y\"], "
	"\"statistics\": [" STAT("only") "]}",
	"{\"tms_id\": \"WGS1984Quad\", \"z_range\": [0, 24], "
	"\"tile_path_structure\": [\"style\", \"z\", \"x\", \"y\"], "
	"\"statistics\": [" STAT("a") ", " STAT("a.b") "]}",
	"{\"tms_id\": \"WorldCRS84Quad\", \"z_range\": [5, 5], "
	"\"tile_path_structure\": [\"tms\", \"style\", \"z\", \"x\", \"y\"], "
	"\"statistics\": [" STAT("s1") ", " STAT("s2") "]}",
};

#define N_CONF (sizeof configs / sizeof configs[0])
#define MAX_IN 8192

static struct vz_conf *conf[N_CONF];

static void init(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	vz_log_set_level(VZ_LOG_ERR);
	for (size_t i = 0; i < N_CONF; i++) {
		if (vz_conf_parse(configs[i], strlen(configs[i]), "fuzz",
				  "/fuzz", &conf[i]) != 0) {
			fprintf(stderr, "fuzz_path: config %zu: %s\n", i,
				vz_err_msg());
			abort();
		}
	}
}

static bool same_ref(const struct vz_tile_ref *a, const struct vz_tile_ref *b)
{
	return a->kind == b->kind && a->stat == b->stat &&
	       a->key.z == b->key.z && a->key.x == b->key.x &&
	       a->key.y == b->key.y;
}

/* A parsed path is a real tile and prints back to exactly the input. */
static void check_parsed(const struct vz_conf *c, const char *path,
			 const struct vz_tile_ref *r)
{
	char buf[MAX_IN + 64];
	struct vz_tile_ref back;
	const char *rel = path[0] == '/' ? path + 1 : path;
	int n;

	FZ_CHECK(r->kind == VZ_KIND_STAGED || r->kind == VZ_KIND_GEOTIFF ||
		 r->kind == VZ_KIND_PNG);
	FZ_CHECK(r->key.z >= c->z_min && r->key.z <= c->z_max);
	FZ_CHECK(vz_tms_valid(c->tms, &r->key));
	if (r->kind == VZ_KIND_PNG)
		FZ_CHECK(r->stat >= 0 && (size_t)r->stat < c->n_stats);
	else
		FZ_CHECK(r->stat == -1);
	if (r->kind == VZ_KIND_STAGED)
		FZ_CHECK(r->key.z == c->z_max);
	FZ_CHECK(!strstr(rel, "..") && !strstr(rel, "//") &&
		 !strstr(rel, "/./") && rel[0] != '.');
	n = vz_path_format(c, r, buf, sizeof buf);
	FZ_CHECK(n >= 0 && (size_t)n == strlen(rel) && !strcmp(buf, rel));
	FZ_CHECK(vz_path_parse(c, buf, &back) == 0 && same_ref(r, &back));
}

/* The other direction: a valid ref built from the input bytes formats to
 * a path that parses back to it; a small buffer is refused cleanly. */
static void check_ref(const struct vz_conf *c, const uint8_t *d, size_t n)
{
	struct vz_tile_ref r, back;
	char buf[256], tiny[8];
	uint32_t v[3] = {0, 0, 0};
	int len;

	if (n < 14)
		return;
	memset(&r, 0, sizeof r);
	r.kind = (enum vz_kind)(d[0] % 3);
	r.stat = r.kind == VZ_KIND_PNG ? (int)(d[1] % c->n_stats) : -1;
	for (int i = 0; i < 3; i++)
		memcpy(&v[i], d + 2 + 4 * i, 4);
	r.key.z = (uint8_t)(c->z_min +
			    v[0] % (uint32_t)(c->z_max - c->z_min + 1));
	if (r.kind == VZ_KIND_STAGED)
		r.key.z = (uint8_t)c->z_max;
	r.key.x = v[1] % vz_tms_cols(c->tms, r.key.z);
	r.key.y = v[2] % vz_tms_rows(c->tms, r.key.z);
	len = vz_path_format(c, &r, buf, sizeof buf);
	FZ_CHECK(len > 0 && (size_t)len == strlen(buf));
	FZ_CHECK(vz_path_parse(c, buf, &back) == 0 && same_ref(&r, &back));
	FZ_CHECK(vz_path_format(c, &r, tiny, sizeof tiny) == -ENAMETOOLONG);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vz_tile_ref r;
	char *path;

	init();
	if (size > MAX_IN)
		return 0;
	/* exact-size copy, so that ASan sees any read past the NUL */
	path = malloc(size + 1);
	if (!path)
		return 0;
	memcpy(path, data, size);
	path[size] = '\0';
	for (size_t i = 0; i < N_CONF; i++) {
		memset(&r, 0xa5, sizeof r);
		if (vz_path_parse(conf[i], path, &r) == 0)
			check_parsed(conf[i], path, &r);
		check_ref(conf[i], data, size);
	}
	free(path);
	return 0;
}
