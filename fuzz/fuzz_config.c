/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the PDG JSON config parser and what it promises to callers. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz_common.h"
#include "vizfs/conf.h"
#include "vizfs/path.h"
#include "vizfs/tms.h"

#define MAX_IN (256 * 1024)

static void check_range(const struct vz_range *r)
{
	for (int e = 0; e < 2; e++)
		if (r->set[e])
			FZ_CHECK(isfinite(r->v[e]));
}

/* Invariants of an accepted config, as the rest of vizfs relies on them. */
static void check_conf(const struct vz_conf *c)
{
	struct vz_tile_ref r, back;
	char buf[4096];

	FZ_CHECK(c->tms && c->tms_id && vz_tms_find(c->tms->id) == c->tms);
	FZ_CHECK(c->z_min >= 0 && c->z_min <= c->z_max &&
		 c->z_max <= VZ_MAX_ZOOM);
	FZ_CHECK(c->tile_w >= 1 && c->tile_h >= 1 && c->tile_w <= 65536 &&
		 c->tile_h <= 65536);
	FZ_CHECK(c->n_stats >= 1 && c->n_stats <= VZ_MAX_STATS);
	FZ_CHECK(c->n_path_parts >= 3 && c->n_path_parts <= 5);
	FZ_CHECK(strlen(c->fingerprint) == 32);
	FZ_CHECK(c->dir_input && c->ext_input && c->ext_input[0]);
	FZ_CHECK(c->cache_dir && c->cache_dir[0]);
	if (c->has_simplify)
		FZ_CHECK(isfinite(c->simplify_tolerance) &&
			 c->simplify_tolerance >= 0);
	for (size_t s = 0; s < c->n_stats; s++) {
		const struct vz_stat *st = &c->stats[s];

		FZ_CHECK(st->name && st->name[0] && !strchr(st->name, '/') &&
			 strcmp(st->name, ".") && strcmp(st->name, ".."));
		FZ_CHECK(vz_conf_stat_index(c, st->name) == (int)s);
		FZ_CHECK(st->nodata_color);
		FZ_CHECK(st->prop != VZ_PROP_ATTRIBUTE ||
			 (st->attr >= 0 && (size_t)st->attr < c->n_attrs));
		FZ_CHECK(vz_agg_name(st->agg) &&
			 vz_resample_name(st->resample));
		check_range(&st->val_range);
		for (int z = c->z_min; z <= c->z_max; z++) {
			struct vz_range rr;

			check_range(&st->z_range[z]);
			vz_conf_range(c, (int)s, z, &rr);
			check_range(&rr);
		}
		for (size_t p = 0; p < st->n_palette; p++)
			FZ_CHECK(st->palette[p]);
	}

	/* every statistic and kind has a path that parses back */
	memset(&r, 0, sizeof r);
	r.key.z = (uint8_t)c->z_max;
	r.key.x = vz_tms_cols(c->tms, c->z_max) - 1;
	r.key.y = vz_tms_rows(c->tms, c->z_max) - 1;
	for (int k = VZ_KIND_STAGED; k <= VZ_KIND_PNG; k++) {
		for (size_t s = 0; s < (k == VZ_KIND_PNG ? c->n_stats : 1);
		     s++) {
			int n;

			r.kind = (enum vz_kind)k;
			r.stat = k == VZ_KIND_PNG ? (int)s : -1;
			n = vz_path_format(c, &r, buf, sizeof buf);
			if (n == -ENAMETOOLONG)
				continue; /* very long statistic names */
			FZ_CHECK(n > 0);
			FZ_CHECK(vz_path_parse(c, buf, &back) == 0);
			FZ_CHECK(back.kind == r.kind && back.stat == r.stat &&
				 back.key.z == r.key.z &&
				 back.key.x == r.key.x &&
				 back.key.y == r.key.y);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	struct vz_conf *c = NULL;
	char *json;
	int rc;

	if (!quiet) {
		vz_log_set_level(VZ_LOG_ERR); /* unknown-key warnings */
		quiet = true;
	}
	if (size > MAX_IN)
		return 0;
	/* exact size, no terminator: the parser takes a length */
	json = malloc(size ? size : 1);
	if (!json)
		return 0;
	memcpy(json, data, size);
	vz_err_clear();
	rc = vz_conf_parse(json, size, "fuzz.json", "/fuzz", &c);
	if (rc == 0) {
		FZ_CHECK(c != NULL);
		check_conf(c);
		vz_conf_free(c);
	} else {
		FZ_CHECK(rc == VZ_E_CONFIG || rc == -ENOMEM);
		FZ_CHECK(rc == -ENOMEM || vz_err_msg()[0] != '\0');
	}
	free(json);
	return 0;
}
