/* SPDX-License-Identifier: Apache-2.0 */
/* The pipeline: stage -> max-z bands -> parents -> PNGs, memoised in LMDB. */
#include "vizfs/build.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "build_i.h"
#include "vizfs/dedup.h"
#include "vizfs/geotiff.h"
#include "vizfs/palette.h"
#include "vizfs/png.h"
#include "vizfs/pool.h"
#include "vizfs/pyramid.h"
#include "vizfs/raster.h"
#include "vizfs/staged.h"


static const char META_FINGERPRINT[] = "fingerprint";
static const char META_INDEXED[] = "indexed";

/* ---- worker contexts ---------------------------------------------------- */

static int wctx_init(void *ud, int idx, void **out)
{
	struct vz_builder *b = ud;
	struct vz_wctx *w;
	int rc;

	(void)idx;
	w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	w->b = b;
	rc = vz_stager_new(b->c, &w->st);
	if (!rc)
		rc = vz_raster_new(b->c, &w->ras);
	if (!rc) {
		w->bands = malloc(b->tile_bytes);
		w->rgba = malloc((size_t)b->plane * 4);
		if (!w->bands || !w->rgba)
			rc = -ENOMEM;
	}
	for (int i = 0; i < 4 && !rc; i++) {
		w->child[i] = malloc(b->tile_bytes);
		if (!w->child[i])
			rc = -ENOMEM;
	}
	if (rc) {
		vz_wctx_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

void vz_wctx_free(struct vz_wctx *w)
{
	if (!w)
		return;
	vz_stager_free(w->st);
	vz_raster_free(w->ras);
	free(w->bands);
	free(w->rgba);
	for (int i = 0; i < 4; i++)
		free(w->child[i]);
	vz_buf_free(&w->blobs);
	vz_buf_free(&w->enc);
	vz_buf_free(&w->png);
	vz_buf_free(&w->tmp);
	vz_buf_free(&w->spans);
	free(w);
}

static void wctx_fini(void *ud, void *ctx)
{
	(void)ud;
	vz_wctx_free(ctx);
}

int vz_builder_pool(struct vz_builder *b, struct vz_pool **out)
{
	int rc;

	if (!b->pool) {
		rc = vz_pool_start(b->workers, wctx_init, wctx_fini, b,
				   &b->pool);
		if (rc) {
			vz_err_set("cannot start %d workers: %s", b->workers,
				   vz_strerror(rc));
			return rc;
		}
	}
	*out = b->pool;
	return 0;
}

int vz_builder_wctx_new(struct vz_builder *b, struct vz_wctx **out)
{
	void *ctx;
	int rc = wctx_init(b, -1, &ctx);
	*out = rc ? NULL : ctx;
	return rc;
}

static int main_ctx(struct vz_builder *b, struct vz_wctx **out)
{
	int rc;

	if (!b->main) {
		void *ctx;
		rc = wctx_init(b, -1, &ctx);
		if (rc)
			return rc;
		b->main = ctx;
	}
	*out = b->main;
	return 0;
}

static void progress(struct vz_builder *b, const char *phase, uint64_t done,
		     uint64_t total)
{
	if (b->o.progress)
		b->o.progress(b->o.progress_ud, phase, done, total);
}

struct prog_ud {
	struct vz_builder *b;
	const char *phase;
};

static void pool_progress(void *ud, size_t done, size_t total)
{
	struct prog_ud *p = ud;
	progress(p->b, p->phase, done, total);
}

static int cancelled(const struct vz_builder *b)
{
	return b->o.cancel && __atomic_load_n(b->o.cancel, __ATOMIC_RELAXED);
}

/* ---- open / close ------------------------------------------------------- */

static int meta_get_str(struct vz_builder *b, const char *key, char *out,
			size_t n)
{
	struct vz_buf v = {0};
	int rc = vz_cache_get(b->cache, VZ_DB_META, key, strlen(key), &v);
	if (rc == 0) {
		size_t l = v.len < n - 1 ? v.len : n - 1;
		memcpy(out, v.data, l);
		out[l] = '\0';
	}
	vz_buf_free(&v);
	return rc;
}

static int meta_put(struct vz_builder *b, const char *key, const void *val,
		    size_t len)
{
	struct vz_cache_op op = {VZ_DB_META, key, strlen(key), val, len};
	return vz_cache_apply(b->cache, &op, 1);
}

static int lock_cache(struct vz_builder *b, const char *dir)
{
	char path[4096];

	snprintf(path, sizeof path, "%s/vizfs.lock", dir);
	b->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (b->lock_fd < 0) {
		int e = errno;
		vz_err_set("cache %s: cannot create lock file: %s", dir,
			   strerror(e));
		return -e;
	}
	if (flock(b->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		if (e == EWOULDBLOCK) {
			vz_err_set("cache %s is in use by another vizfs "
				   "process (prefetch or mount); wait for it "
				   "or use another vizfs_cache_dir",
				   dir);
			return -EBUSY;
		}
		vz_err_set("cache %s: lock: %s", dir, strerror(e));
		return -e;
	}
	return 0;
}

static int mkdir_p(const char *path)
{
	char tmp[4096];
	size_t n = strlen(path);

	if (n >= sizeof tmp)
		return -ENAMETOOLONG;
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int vz_mkdir_p(const char *path)
{
	return mkdir_p(path);
}

static int detect_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

int vz_builder_open(const struct vz_conf *c, const struct vz_build_opts *o,
		    struct vz_builder **out)
{
	struct vz_builder *b;
	struct vz_cache_opts co = {0};
	char want[80], have[80];
	int rc;

	*out = NULL;
	vz_gdal_init();
	b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	b->c = c;
	b->o = *o;
	b->lock_fd = -1;
	b->plane = (size_t)c->tile_w * c->tile_h;
	b->tile_bytes = b->plane * c->n_stats * sizeof(double);
	b->workers = o->workers > 0 ? o->workers
		     : c->workers > 0 ? c->workers
				      : detect_cpus();
	pthread_mutex_init(&b->lock, NULL);
	b->cache_dir = strdup(o->cache_dir ? o->cache_dir : c->cache_dir);
	b->luts = calloc(c->n_stats ? c->n_stats : 1, sizeof *b->luts);
	if (!b->cache_dir || !b->luts) {
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t s = 0; s < c->n_stats; s++) {
		rc = vz_lut_build((const char *const *)c->stats[s].palette,
				  c->stats[s].n_palette,
				  c->stats[s].nodata_color, &b->luts[s]);
		if (rc) {
			vz_err_prefix("statistics[%zu] '%s'", s,
				      c->stats[s].name);
			goto fail;
		}
	}

	rc = vz_inputs_discover(c, o->files, o->n_files, o->mode, &b->in);
	if (rc)
		goto fail;

	if (!o->read_only) {
		rc = mkdir_p(b->cache_dir);
		if (rc) {
			vz_err_set("cache %s: cannot create: %s", b->cache_dir,
				   strerror(-rc));
			goto fail;
		}
		rc = lock_cache(b, b->cache_dir);
		if (rc)
			goto fail;
	}
	co.dir = b->cache_dir;
	co.map_size = c->cache_map_size;
	co.read_only = o->read_only;
	if (o->read_only && access(b->cache_dir, F_OK) != 0) {
		/* Nothing built yet: report an empty, stale cache. */
		*out = b;
		return 0;
	}
	rc = vz_cache_open(&co, &b->cache);
	if (rc)
		goto fail;

	b->shard_i = o->shard_index;
	b->shard_n = o->shard_count;
	if (b->shard_n)
		snprintf(want, sizeof want, "%s:%s:shard=%d/%d", c->fingerprint,
			 b->in->fingerprint, b->shard_i, b->shard_n);
	else
		snprintf(want, sizeof want, "%s:%s", c->fingerprint,
			 b->in->fingerprint);
	rc = meta_get_str(b, META_FINGERPRINT, have, sizeof have);
	if (rc && rc != -ENOENT)
		goto fail;
	b->fresh = rc == 0 && strcmp(want, have) == 0;
	if (!b->fresh && !o->read_only) {
		static const enum vz_db all[] = {VZ_DB_META,  VZ_DB_STAGED,
						 VZ_DB_INDEX, VZ_DB_BAND,
						 VZ_DB_TILE,  VZ_DB_SUMMARY};
		if (rc == 0)
			vz_log(VZ_LOG_INFO,
			       "config or inputs changed since the cache in "
			       "%s was built: rebuilding",
			       b->cache_dir);
		rc = vz_cache_clear(b->cache, all, VZ_ARRAY_SIZE(all));
		if (!rc)
			rc = meta_put(b, META_FINGERPRINT, want, strlen(want));
		if (rc)
			goto fail;
		b->fresh = true;
	}
	if (!o->read_only) {
		rc = vz_writer_start(b->cache, &b->wr);
		if (rc)
			goto fail;
	}
	*out = b;
	return 0;
fail:
	vz_builder_close(b);
	return rc;
}

void vz_builder_close(struct vz_builder *b)
{
	if (!b)
		return;
	VZ_FREEF(vz_pool_stop, b->pool);
	if (b->wr) {
		int rc = vz_writer_stop(b->wr);
		if (rc)
			vz_log(VZ_LOG_ERR, "cache %s: final commit failed: %s",
			       b->cache_dir, vz_err_msg());
		b->wr = NULL;
	}
	VZ_FREEF(vz_wctx_free, b->main);
	VZ_FREEF(vz_cache_close, b->cache);
	for (size_t i = 0; b->feat_need && b->in && i < b->in->n; i++)
		free(b->feat_need[i]);
	free(b->feat_need);
	VZ_FREEF(vz_inputs_free, b->in);
	for (int z = 0; z <= VZ_MAX_ZOOM; z++)
		free(b->level[z].k);
	if (b->lock_fd >= 0)
		close(b->lock_fd);
	free(b->luts);
	free(b->own);
	free(b->chunk_need);
	free(b->cache_dir);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

const struct vz_inputs *vz_builder_inputs(const struct vz_builder *b)
{
	return b->in;
}

/* ---- staging ------------------------------------------------------------ */

struct stage_task {
	uint32_t input;
	uint64_t start, count;
};

struct stage_job {
	struct vz_builder *b;
	struct stage_task *t;
	size_t n;
	int n_failed_inputs;
	char *failed; /* per input: a task failed */
};

static void stage_marker(char *key, size_t n, uint32_t input, uint64_t start)
{
	snprintf(key, n, "stg/%08" PRIu32 "/%016" PRIu64, input, start);
}

static int emit_blob(void *ud, const struct vz_tile_key *tile, uint32_t input,
		     uint64_t start, const struct vz_buf *blob)
{
	struct vz_builder *b = ud;
	uint8_t key[VZ_KEY_TILE_LEN + 12];

	if (!vz_shard_owns(b, tile))
		return 0; /* another shard's subtree */
	vz_key_tile(key, tile);
	vz_put_be32(key + 9, input);
	vz_put_be32(key + 13, (uint32_t)(start >> 32));
	vz_put_be32(key + 17, (uint32_t)start);
	return vz_writer_put(b->wr, VZ_DB_STAGED, key, sizeof key, blob->data,
			     blob->len);
}

/* Every 64 units of work (a tile, or 1/16 of a staging chunk), drop the
 * LMDB pages read so far from the resident set: a long level otherwise
 * maps the whole database (the pages stay in the page cache). */
static void maybe_trim(struct vz_builder *b, unsigned weight)
{
	if (b && atomic_fetch_add(&b->trim_units, weight) % 64 + weight >= 64)
		vz_cache_trim(b->cache);
}

/* Features dropped or attributes unreadable in one chunk: say so, naming
 * the file, instead of leaving it to `vizfs info`. */
static void warn_skipped(const struct vz_input *in, const struct stage_task *t,
			 const struct vz_stage_stats *s)
{
	uint64_t n = s->skipped_type + s->skipped_empty + s->skipped_invalid +
		     s->skipped_outside;

	if (n)
		vz_log(VZ_LOG_WARN,
		       "%s: features %" PRIu64 "-%" PRIu64 ": %" PRIu64
		       " geometries skipped (%" PRIu64
		       " not polygonal, %" PRIu64 " empty or NULL, %" PRIu64
		       " invalid, %" PRIu64 " outside the TMS extent%s)",
		       in->path, t->start, t->start + t->count - 1, n,
		       s->skipped_type, s->skipped_empty, s->skipped_invalid,
		       s->skipped_outside,
		       s->polygons == 0 && s->skipped_outside ?
			       "; is input_crs right?" :
			       "");
	if (s->null_attrs)
		vz_log(VZ_LOG_WARN,
		       "%s: features %" PRIu64 "-%" PRIu64 ": %" PRIu64
		       " NULL or non-numeric values of statistic attributes "
		       "(counted as missing)",
		       in->path, t->start, t->start + t->count - 1,
		       s->null_attrs);
}

static int stage_one(void *ud, void *ctx, size_t i)
{
	struct stage_job *j = ud;
	struct vz_builder *b = j->b;
	struct vz_wctx *w = ctx;
	const struct stage_task *t = &j->t[i];
	const struct vz_input *in = &b->in->v[t->input];
	struct vz_stage_stats st = {0};
	char key[64];
	int rc;

	if (in->prestaged) {
		vz_buf_reset(&w->blobs);
		rc = vz_stage_prestaged(w->st, in, t->input, &w->blobs, &st);
		if (!rc && w->blobs.len > 8)
			rc = emit_blob(b, &in->key, t->input, 0, &w->blobs);
	} else {
		/* A shard stages only the features its tiles need. */
		if (b->feat_need && b->feat_need[t->input])
			vz_stager_set_filter(w->st,
					     b->feat_need[t->input] + t->start / 8);
		rc = vz_stage_range(w->st, in, t->input, t->start, t->count,
				    emit_blob, b, &st);
		vz_stager_set_filter(w->st, NULL);
	}
	if (rc) {
		const char *msg = vz_err_msg()[0] ? vz_err_msg()
						  : vz_strerror(rc);
		vz_log(VZ_LOG_ERR, "staging %s: %s", in->path, msg);
		/* Final until the file changes (which changes the
		 * fingerprint): later runs do not retry it. */
		snprintf(key, sizeof key, "failed/%08" PRIu32, t->input);
		vz_writer_put(b->wr, VZ_DB_META, key, strlen(key), msg,
			      strlen(msg));
		pthread_mutex_lock(&b->lock);
		if (!j->failed[t->input]) {
			j->failed[t->input] = 1;
			j->n_failed_inputs++;
		}
		pthread_mutex_unlock(&b->lock);
		return rc;
	}
	warn_skipped(in, t, &st);
	/* The marker is queued after the chunk's blobs, so a commit that
	 * holds the marker holds the blobs too; a redo rewrites the same
	 * keys with the same bytes. */
	stage_marker(key, sizeof key, t->input, t->start);
	atomic_fetch_add(&b->n_staged_chunks, 1);
	maybe_trim(b, 16);
	return vz_writer_put(b->wr, VZ_DB_META, key, strlen(key), &st,
			     sizeof st);
}

static int sum_stage_stats(void *ud, const uint8_t *k, size_t kl,
			   const uint8_t *v, size_t vl)
{
	struct vz_stage_stats *acc = ud, s;

	(void)k;
	(void)kl;
	if (vl == sizeof s) {
		memcpy(&s, v, sizeof s);
		vz_stage_stats_add(acc, &s);
	}
	return 0;
}

void vz_builder_stage_stats(const struct vz_builder *b,
			    struct vz_stage_stats *out)
{
	memset(out, 0, sizeof *out);
	vz_cache_scan(b->cache, VZ_DB_META, "stg/", 4, sum_stage_stats, out);
}

static int add_level_key(struct vz_level *l, const struct vz_tile_key *k)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		struct vz_tile_key *p = realloc(l->k, cap * sizeof *p);
		if (!p)
			return -ENOMEM;
		l->k = p;
		l->cap = cap;
	}
	l->k[l->n++] = *k;
	return 0;
}

static int collect_staged_tiles(void *ud, const uint8_t *k, size_t kl,
				const uint8_t *v, size_t vl)
{
	struct vz_level *l = ud;
	struct vz_tile_key key;

	(void)v;
	(void)vl;
	if (kl < VZ_KEY_TILE_LEN)
		return VZ_E_CACHE;
	vz_key_tile_parse(k, &key);
	if (l->n && l->k[l->n - 1].x == key.x && l->k[l->n - 1].y == key.y &&
	    l->k[l->n - 1].z == key.z)
		return 0;
	return add_level_key(l, &key);
}

static int collect_index(void *ud, const uint8_t *k, size_t kl,
			 const uint8_t *v, size_t vl)
{
	struct vz_level *l = ud;
	struct vz_tile_key key;

	(void)v;
	(void)vl;
	if (kl != VZ_KEY_TILE_LEN)
		return VZ_E_CACHE;
	vz_key_tile_parse(k, &key);
	return add_level_key(l, &key);
}

static int cmp_key(const void *a, const void *b)
{
	const struct vz_tile_key *p = a, *q = b;
	if (p->x != q->x)
		return p->x < q->x ? -1 : 1;
	if (p->y != q->y)
		return p->y < q->y ? -1 : 1;
	return 0;
}

static void free_levels(struct vz_builder *b)
{
	for (int z = 0; z <= VZ_MAX_ZOOM; z++) {
		free(b->level[z].k);
		memset(&b->level[z], 0, sizeof b->level[z]);
	}
}

/* The pyramid's tiles: the staged max-z tiles and all their ancestors. */
static int build_index(struct vz_builder *b)
{
	const struct vz_conf *c = b->c;
	uint8_t prefix = (uint8_t)c->z_max;
	int rc;

	free_levels(b);
	rc = vz_cache_scan(b->cache, VZ_DB_STAGED, &prefix, 1,
			   collect_staged_tiles, &b->level[c->z_max]);
	if (rc)
		return rc;
	for (int z = c->z_max - 1; z >= c->z_min; z--) {
		struct vz_level *src = &b->level[z + 1], *dst = &b->level[z];
		for (size_t i = 0; i < src->n; i++) {
			struct vz_tile_key p;
			vz_tms_parent(&src->k[i], &p);
			rc = add_level_key(dst, &p);
			if (rc)
				return rc;
		}
		if (dst->n)
			qsort(dst->k, dst->n, sizeof *dst->k, cmp_key);
		size_t m = 0;
		for (size_t i = 0; i < dst->n; i++)
			if (m == 0 || cmp_key(&dst->k[m - 1], &dst->k[i]))
				dst->k[m++] = dst->k[i];
		dst->n = m;
	}
	for (int z = c->z_min; z <= c->z_max; z++) {
		for (size_t i = 0; i < b->level[z].n; i++) {
			uint8_t key[VZ_KEY_TILE_LEN];
			uint8_t flag = 1;
			vz_key_tile(key, &b->level[z].k[i]);
			rc = vz_writer_put(b->wr, VZ_DB_INDEX, key, sizeof key,
					   &flag, 1);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static int load_index(struct vz_builder *b)
{
	free_levels(b);
	for (int z = b->c->z_min; z <= b->c->z_max; z++) {
		uint8_t prefix = (uint8_t)z;
		int rc = vz_cache_scan(b->cache, VZ_DB_INDEX, &prefix, 1,
				       collect_index, &b->level[z]);
		if (rc)
			return rc;
	}
	return 0;
}

static void now_string(char *out, size_t n)
{
	struct timespec ts;
	struct tm tm;

	char day[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(day, sizeof day, "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(out, n, "%.20s.%06d", day, (int)(ts.tv_nsec / 1000));
}

int vz_builder_finish_staging(struct vz_builder *b)
{
	int rc;

	progress(b, "index", 0, 1);
	rc = build_index(b);
	if (!rc)
		rc = vz_writer_flush(b->wr);
	if (!rc)
		rc = meta_put(b, META_INDEXED, "1", 1);
	if (!rc) {
		b->indexed = true;
		progress(b, "index", 1, 1);
	}
	return rc;
}

int vz_builder_stage(struct vz_builder *b)
{
	struct stage_job j = {b, NULL, 0, 0, NULL};
	struct prog_ud pu = {b, "staging"};
	double t0 = vz_now();
	struct vz_pool *pool;
	struct vz_wctx *mw;
	char flag[8];
	size_t cap = 0;
	int rc;

	if (b->indexed)
		return 0;
	if (!b->cache) {
		vz_err_set("cache %s is not built yet (run vizfs prefetch)",
			   b->cache_dir);
		return -ENOENT;
	}
	if (meta_get_str(b, META_INDEXED, flag, sizeof flag) == 0) {
		rc = load_index(b);
		if (!rc)
			b->indexed = true;
		return rc;
	}
	if (b->o.read_only) {
		vz_err_set("cache %s is not built yet (run vizfs prefetch)",
			   b->cache_dir);
		return -ENOENT;
	}
	rc = main_ctx(b, &mw);
	if (rc)
		return rc;
	j.failed = calloc(b->in->n ? b->in->n : 1, 1);
	if (!j.failed)
		return -ENOMEM;

	/* A shard first plans its part: the same plan in every shard. */
	if (b->shard_n) {
		char key[40];
		rc = vz_shard_plan(b);
		if (rc)
			goto out;
		snprintf(key, sizeof key, "%d/%d", b->shard_i, b->shard_n);
		rc = meta_put(b, "shard", key, strlen(key));
		if (!rc)
			rc = meta_put(b, "shardplan", b->plan_hash,
				      strlen(b->plan_hash));
		if (!rc)
			rc = meta_put(b, "shardsplit", &b->split_z,
				      sizeof b->split_z);
		if (rc)
			goto out;
	}
	/* Split inputs into tasks; count features in this thread. */
	for (size_t i = 0, chunk = 0; i < b->in->n; i++) {
		const struct vz_input *in = &b->in->v[i];
		uint64_t n = 1, step = 1;
		char key[64];

		snprintf(key, sizeof key, "stgtime/%08zu", i);
		if (vz_cache_has(b->cache, VZ_DB_META, key, strlen(key)) != 1) {
			char ts[40];
			now_string(ts, sizeof ts);
			rc = meta_put(b, key, ts, strlen(ts));
			if (rc)
				goto out;
		}
		{
			/* An input that failed in an earlier run and has not
			 * changed since (same fingerprint) fails again: say so
			 * instead of retrying and rebuilding every time. */
			struct vz_buf fv = {0};
			snprintf(key, sizeof key, "failed/%08zu", i);
			if (vz_cache_get(b->cache, VZ_DB_META, key, strlen(key),
					 &fv) == 0) {
				vz_log(VZ_LOG_ERR,
				       "staging %s: %.*s (from an earlier run; "
				       "fix the file, or touch it, to retry)",
				       in->path, (int)fv.len,
				       (const char *)fv.data);
				vz_buf_free(&fv);
				j.failed[i] = 1;
				j.n_failed_inputs++;
				continue;
			}
			vz_buf_free(&fv);
		}
		if (!in->prestaged) {
			rc = vz_stage_count(mw->st, in, &n);
			if (rc) {
				vz_log(VZ_LOG_ERR, "staging %s: %s", in->path,
				       vz_err_msg());
				rc = meta_put(b, key, vz_err_msg(),
					      strlen(vz_err_msg()));
				if (rc)
					goto out;
				j.failed[i] = 1;
				j.n_failed_inputs++;
				continue;
			}
			if (n == 0)
				vz_log(VZ_LOG_WARN, "%s: no features",
				       in->path);
			step = VZ_STAGE_CHUNK;
		}
		if (in->prestaged && !vz_shard_owns(b, &in->key))
			continue;
		for (uint64_t s = 0; s < n; s += step) {
			char mk[64];
			if (!in->prestaged && b->shard_n &&
			    !b->chunk_need[chunk++])
				continue; /* no feature of ours in it */
			stage_marker(mk, sizeof mk, (uint32_t)i, s);
			if (vz_cache_has(b->cache, VZ_DB_META, mk,
					 strlen(mk)) == 1)
				continue;
			if (j.n == cap) {
				size_t nc = cap ? cap * 2 : 256;
				struct stage_task *p =
					realloc(j.t, nc * sizeof *p);
				if (!p) {
					rc = -ENOMEM;
					goto out;
				}
				j.t = p;
				cap = nc;
			}
			j.t[j.n].input = (uint32_t)i;
			j.t[j.n].start = s;
			j.t[j.n].count = n - s < step ? n - s : step;
			j.n++;
		}
	}
	/* Tiles rendered before staging was complete must not survive
	 * staging more data (a run killed while staging after an earlier
	 * partial run): drop them. */
	if (j.n) {
		static const enum vz_db derived[] = {VZ_DB_INDEX, VZ_DB_BAND,
						     VZ_DB_TILE, VZ_DB_SUMMARY};
		uint64_t nb = 0, bytes = 0;
		if (vz_cache_stat(b->cache, VZ_DB_BAND, &nb, &bytes) == 0 &&
		    nb > 0) {
			vz_log(VZ_LOG_INFO, "staging was incomplete: dropping "
					    "%llu rendered tiles",
			       (unsigned long long)nb);
			rc = vz_cache_clear(b->cache, derived,
					    VZ_ARRAY_SIZE(derived));
			if (rc)
				goto out;
		}
	}
	rc = vz_builder_pool(b, &pool);
	if (rc)
		goto out;
	rc = vz_pool_for(pool, j.n, stage_one, &j, pool_progress, &pu,
			 b->o.cancel);
	vz_cache_trim(b->cache);
	if (cancelled(b)) {
		rc = -ECANCELED;
		goto out;
	}
	{
		int frc = vz_writer_flush(b->wr);
		if (frc) {
			rc = frc;
			goto out;
		}
	}
	if (j.n_failed_inputs) {
		progress(b, "index", 0, 1);
		rc = build_index(b);
		if (!rc)
			rc = vz_writer_flush(b->wr);
		if (rc)
			goto out;
		progress(b, "index", 1, 1);
		vz_err_set("%d of %zu input files could not be staged (see the "
			   "errors above); tiles were built from the others",
			   j.n_failed_inputs, b->in->n);
		b->partial = true;
		rc = VZ_E_INPUT;
	} else {
		rc = vz_builder_finish_staging(b);
		if (rc)
			goto out;
	}
	if (!rc && j.n) {
		double dt = vz_now() - t0;
		rc = meta_put(b, "time/stage", &dt, sizeof dt);
	}
	b->indexed = true;
out:
	free(j.t);
	free(j.failed);
	return rc;
}

/* ---- bands -------------------------------------------------------------- */

/* k-th smallest of v[0..n) (reorders v), Hoare selection. */
static double select_kth(double *v, size_t n, size_t k)
{
	size_t lo = 0, hi = n - 1;

	while (lo < hi) {
		double pivot = v[lo + (hi - lo) / 2];
		size_t i = lo, j = hi;
		while (i <= j) {
			while (v[i] < pivot)
				i++;
			while (v[j] > pivot)
				j--;
			if (i <= j) {
				double t = v[i];
				v[i] = v[j];
				v[j] = t;
				i++;
				if (j == 0)
					break;
				j--;
			}
		}
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			return v[k];
	}
	return v[k];
}

/* k-th smallest value of a band.  Tiles are mostly zeros: count them and
 * select among the negative or positive values only. */
static double band_kth(const double *v, size_t n, double *tmp, size_t k)
{
	size_t neg = 0, zero = 0, m = 0;

	for (size_t i = 0; i < n; i++) {
		if (v[i] < 0)
			neg++;
		else if (v[i] == 0)
			zero++;
	}
	if (k >= neg && k < neg + zero)
		return 0.0;
	if (k < neg) {
		for (size_t i = 0; i < n; i++)
			if (v[i] < 0)
				tmp[m++] = v[i];
		return select_kth(tmp, m, k);
	}
	for (size_t i = 0; i < n; i++)
		if (!(v[i] <= 0)) /* positives and NaN */
			tmp[m++] = v[i];
	return select_kth(tmp, m, k - neg - zero);
}

/* min, max, mean, median, std (ddof 0), var, sum over all pixels; the
 * median as numpy does (mean of the two middle values for even n), only
 * when @p tmp is given (else NaN: it is costly and only the CSV needs it). */
void vz_band_stats(const double *v, size_t n, double *tmp, double out[7])
{
	double mn = INFINITY, mx = -INFINITY, sum = 0, mean, ss = 0;

	for (size_t i = 0; i < n; i++) {
		double x = v[i];
		if (x < mn)
			mn = x;
		if (x > mx)
			mx = x;
		sum += x;
	}
	mean = sum / (double)n;
	for (size_t i = 0; i < n; i++)
		ss += (v[i] - mean) * (v[i] - mean);
	out[0] = mn;
	out[1] = mx;
	out[2] = mean;
	if (!tmp)
		out[3] = NAN;
	else if (n % 2)
		out[3] = band_kth(v, n, tmp, n / 2);
	else
		out[3] = (band_kth(v, n, tmp, n / 2 - 1) +
			  band_kth(v, n, tmp, n / 2)) /
			 2;
	out[5] = ss / (double)n;
	out[4] = sqrt(out[5]);
	out[6] = sum;
}

static int staged_blob(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		       size_t vl)
{
	struct vz_wctx *w = ud;
	size_t span[2] = {w->blobs.len, vl};
	int rc;

	(void)k;
	(void)kl;
	/* Blobs are multiples of 8 bytes; copying keeps each one aligned. */
	if (vl % 8)
		return VZ_E_CACHE;
	rc = vz_buf_append(&w->blobs, v, vl);
	if (!rc)
		rc = vz_buf_append(&w->spans, span, sizeof span);
	return rc;
}

/* Copy every staged blob of tile k into w->blobs (spans in w->spans). */
int vz_builder_gather_staged(struct vz_builder *b, struct vz_wctx *w,
			     const struct vz_tile_key *k)
{
	uint8_t prefix[VZ_KEY_TILE_LEN];

	vz_buf_reset(&w->blobs);
	vz_buf_reset(&w->spans);
	vz_key_tile(prefix, k);
	return vz_cache_scan(b->cache, VZ_DB_STAGED, prefix, sizeof prefix,
			     staged_blob, w);
}

/*
 * Duplicate flags (spec §3) of the staged records gathered in w, one byte
 * per record in gather order.  The PDG drops flagged rows before
 * rasterizing for deduplicate_at 'staging' and 'raster' alike, so one
 * per-tile computation over all records gives its result (dedup.h).
 */
static int dedup_flags(struct vz_builder *b, struct vz_wctx *w,
		       const struct vz_tile_key *k, struct vz_buf *flags)
{
	const size_t *span = (const size_t *)w->spans.data;
	size_t n = w->spans.len / (2 * sizeof *span);
	struct vz_buf *views = calloc(n ? n : 1, sizeof *views);
	int rc;

	if (!views)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		views[i].data = w->blobs.data + span[2 * i];
		views[i].len = span[2 * i + 1];
	}
	rc = vz_dedup_tile(b->c, k, b->in, views, n, flags);
	free(views);
	return rc;
}

int vz_builder_rasterize(struct vz_builder *b, struct vz_wctx *w,
			  const struct vz_tile_key *k, double *bands)
{
	struct vz_staged_iter it;
	struct vz_staged_rec rec;
	struct vz_buf dup = {0};
	struct vz_bbox box;
	const size_t *span;
	size_t n_spans, r = 0;
	int rc;

	rc = vz_builder_gather_staged(b, w, k);
	if (rc)
		return rc;
	if (vz_dedup_removes(b->c) && !b->in->prestaged &&
	    (rc = dedup_flags(b, w, k, &dup)))
		goto out;
	vz_tms_bounds(b->c->tms, k, &box);
	vz_raster_begin(w->ras, &box);
	span = (const size_t *)w->spans.data;
	n_spans = w->spans.len / (2 * sizeof *span);
	for (size_t i = 0; i < n_spans; i++) {
		rc = vz_staged_iter_init(&it, w->blobs.data + span[2 * i],
					 span[2 * i + 1]);
		if (rc)
			goto corrupt;
		while ((rc = vz_staged_next(&it, &rec)) == 1) {
			if (dup.data && r < dup.len && dup.data[r++])
				continue;
			rc = vz_raster_add(w->ras, &rec.poly);
			if (rc)
				goto out;
		}
		if (rc < 0)
			goto corrupt;
	}
	vz_raster_finish(w->ras, bands);
	rc = 0;
	goto out;
corrupt:
	vz_err_set("cache %s: corrupt staged entry of tile %u/%u/%u",
		   b->cache_dir, k->z, k->x, k->y);
out:
	vz_buf_free(&dup);
	return rc;
}

bool vz_builder_in_index(struct vz_builder *b, const struct vz_tile_key *k)
{
	struct vz_level *l;

	if (k->z < b->c->z_min || k->z > b->c->z_max)
		return false;
	l = &b->level[k->z];
	return bsearch(k, l->k, l->n, sizeof *l->k, cmp_key) != NULL;
}

int vz_builder_read_band(struct vz_builder *b, struct vz_wctx *w,
		     const struct vz_tile_key *k, double *bands)
{
	uint8_t key[VZ_KEY_TILE_LEN];
	int rc;

	vz_key_tile(key, k);
	rc = vz_cache_get(b->cache, VZ_DB_BAND, key, sizeof key, &w->enc);
	if (rc)
		return rc;
	rc = vz_bands_decode(w->enc.data, w->enc.len, bands,
			     b->plane * b->c->n_stats);
	if (rc)
		vz_err_set("cache %s: corrupt band entry %u/%u/%u",
			   b->cache_dir, k->z, k->x, k->y);
	return rc;
}

/* Colour range of statistic s for a tile at zoom z. */
static void png_range(struct vz_builder *b, int s, int z, const double *band,
		      double *mn, double *mx)
{
	struct vz_range r;

	vz_conf_range(b->c, s, z, &r);
	for (int e = 0; e < 2; e++) {
		if (r.set[e])
			continue;
		if (b->c->range_mode == VZ_RANGE_PER_ZOOM &&
		    b->zrange_ok[z]) {
			r.v[e] = b->zrange[z][s][e];
			continue;
		}
		/* per tile: nanmin/nanmax over the finite values */
		double v = e ? -INFINITY : INFINITY;
		for (size_t i = 0; i < b->plane; i++) {
			double x = band[i];
			if (!isfinite(x))
				continue;
			if (e ? x > v : x < v)
				v = x;
		}
		r.v[e] = isfinite(v) ? v : 0;
	}
	*mn = r.v[0];
	*mx = r.v[1];
}

int vz_builder_encode_png(struct vz_builder *b, struct vz_wctx *w, int s, int z,
		      const double *bands, struct vz_buf *out)
{
	const struct vz_stat *st = &b->c->stats[s];
	const double *band = bands + (size_t)s * b->plane;
	double mn, mx;

	png_range(b, s, z, band, &mn, &mx);
	vz_lut_apply(&b->luts[s], band, b->plane, mn, mx, st->has_nodata,
		     st->nodata_val, w->rgba);
	vz_buf_reset(out);
	return vz_png_encode(w->rgba, b->c->tile_w, b->c->tile_h, out);
}

/* A statistic whose colour range at zoom z depends on every tile of the
 * zoom (per-zoom mode with an unset end); its PNGs wait for the level. */
bool vz_builder_zoom_stat(const struct vz_builder *b, int s, int z)
{
	struct vz_range r;

	if (b->c->range_mode != VZ_RANGE_PER_ZOOM)
		return false;
	vz_conf_range(b->c, s, z, &r);
	return !(r.set[0] && r.set[1]);
}

/* Index of the last zoom statistic at z, or -1 when there is none. */
static int last_zoom_stat(const struct vz_builder *b, int z)
{
	for (int s = (int)b->c->n_stats - 1; s >= 0; s--)
		if (vz_builder_zoom_stat(b, s, z))
			return s;
	return -1;
}

/* Encode and queue the PNGs of one tile: the statistics whose range is
 * known from the config or the tile (zoom == false) or those needing the
 * zoom's range (zoom == true). */
static int put_pngs(struct vz_builder *b, struct vz_wctx *w,
		    const struct vz_tile_key *k, const double *bands, bool zoom)
{
	for (size_t s = 0; s < b->c->n_stats; s++) {
		uint8_t key[VZ_KEY_TILE_LEN + 1];
		int rc;

		if (vz_builder_zoom_stat(b, (int)s, k->z) != zoom)
			continue;
		rc = vz_builder_encode_png(b, w, (int)s, k->z, bands, &w->png);
		if (rc)
			return rc;
		atomic_fetch_add(&b->n_pngs, 1);
		vz_key_tile(key, k);
		key[VZ_KEY_TILE_LEN] = (uint8_t)s;
		rc = vz_writer_put(b->wr, VZ_DB_TILE, key, sizeof key,
				   w->png.data, w->png.len);
		if (rc)
			return rc;
	}
	return 0;
}

/* Store a finished tile: summary and the PNGs that need no zoom range
 * first, the band last: the band entry is the tile's "done" marker. */
int vz_builder_store_band(struct vz_builder *b, struct vz_wctx *w,
		      const struct vz_tile_key *k, const double *bands,
		      bool pngs)
{
	uint8_t key[VZ_KEY_TILE_LEN];
	double summ[VZ_MAX_STATS][7];
	int rc;

	for (size_t s = 0; s < b->c->n_stats; s++)
		vz_band_stats(bands + s * b->plane, b->plane, NULL, summ[s]);
	vz_key_tile(key, k);
	rc = vz_writer_put(b->wr, VZ_DB_SUMMARY, key, sizeof key, summ,
			   b->c->n_stats * sizeof summ[0]);
	if (!rc && pngs)
		rc = put_pngs(b, w, k, bands, false);
	if (!rc)
		rc = vz_bands_encode(bands, b->plane * b->c->n_stats, &w->enc);
	if (!rc)
		rc = vz_writer_put(b->wr, VZ_DB_BAND, key, sizeof key,
				   w->enc.data, w->enc.len);
	return rc;
}

/* Compute one tile's bands from the cache state below it (children must
 * already be stored for z < max).  Writes into @p bands. */
static int compute_band(struct vz_builder *b, struct vz_wctx *w,
			const struct vz_tile_key *k, double *bands)
{
	const double *child[4];
	struct vz_tile_key ck[4];
	int rc;

	if (k->z == b->c->z_max)
		return vz_builder_rasterize(b, w, k, bands);
	vz_tms_children(k, ck);
	for (int i = 0; i < 4; i++) {
		rc = vz_builder_read_band(b, w, &ck[i], w->child[i]);
		if (rc == -ENOENT) {
			child[i] = NULL;
			continue;
		}
		if (rc)
			return rc;
		child[i] = w->child[i];
	}
	return vz_pyramid_build(b->c, child, bands);
}

struct level_job {
	struct vz_builder *b;
	const struct vz_level *l;
	bool pngs; /* PNGs that need no zoom range, with the band */
	int errors;
};

static void tile_error(struct vz_builder *b, const struct vz_tile_key *k,
		       const char *what, int rc)
{
	vz_log(VZ_LOG_ERR, "%s %u/%u/%u: %s", what, k->z, k->x, k->y,
	       vz_err_msg()[0] ? vz_err_msg() : vz_strerror(rc));
	(void)b;
}

static int band_task(void *ud, void *ctx, size_t i)
{
	struct level_job *j = ud;
	struct vz_builder *b = j->b;
	struct vz_wctx *w = ctx;
	const struct vz_tile_key *k = &j->l->k[i];
	uint8_t key[VZ_KEY_TILE_LEN];
	int rc;

	vz_key_tile(key, k);
	if (vz_cache_has(b->cache, VZ_DB_BAND, key, sizeof key) == 1)
		return 0;
	vz_err_clear();
	rc = compute_band(b, w, k, w->bands);
	if (!rc)
		rc = vz_builder_store_band(b, w, k, w->bands, j->pngs);
	if (!rc)
		atomic_fetch_add(&b->n_rendered, 1);
	maybe_trim(b, 1);
	if (rc)
		tile_error(b, k, "render", rc);
	return rc;
}

static int png_task(void *ud, void *ctx, size_t i)
{
	maybe_trim(ud ? ((struct level_job *)ud)->b : NULL, 1);
	struct level_job *j = ud;
	struct vz_builder *b = j->b;
	struct vz_wctx *w = ctx;
	const struct vz_tile_key *k = &j->l->k[i];
	uint8_t key[VZ_KEY_TILE_LEN + 1];
	int rc;

	vz_key_tile(key, k);
	key[VZ_KEY_TILE_LEN] = (uint8_t)last_zoom_stat(b, k->z);
	if (vz_cache_has(b->cache, VZ_DB_TILE, key, sizeof key) == 1)
		return 0;
	vz_err_clear();
	rc = vz_builder_read_band(b, w, k, w->bands);
	if (!rc)
		rc = put_pngs(b, w, k, w->bands, true);
	if (rc)
		tile_error(b, k, "png", rc);
	return rc;
}

struct zr_acc {
	size_t n_stats;
	double (*r)[2];
	uint64_t n;
};

static int zr_scan(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		   size_t vl)
{
	struct zr_acc *a = ud;
	double summ[7];

	(void)k;
	(void)kl;
	if (vl != a->n_stats * sizeof summ)
		return VZ_E_CACHE;
	for (size_t s = 0; s < a->n_stats; s++) {
		memcpy(summ, v + s * sizeof summ, sizeof summ);
		if (a->n == 0 || summ[0] < a->r[s][0])
			a->r[s][0] = summ[0];
		if (a->n == 0 || summ[1] > a->r[s][1])
			a->r[s][1] = summ[1];
	}
	a->n++;
	return 0;
}

/* Per-zoom ranges from the summaries of every tile of zoom z (spec §8.3,
 * the PDG's intended behaviour). */
int vz_builder_zoom_range(struct vz_builder *b, int z)
{
	struct zr_acc a = {b->c->n_stats, b->zrange[z], 0};
	uint8_t prefix = (uint8_t)z;
	int rc;

	if (b->zrange_ok[z])
		return 0;
	rc = vz_cache_scan(b->cache, VZ_DB_SUMMARY, &prefix, 1, zr_scan, &a);
	if (rc)
		return rc;
	b->zrange_ok[z] = true;
	return 0;
}

static int run_level(struct vz_builder *b, int z, bool bands_only)
{
	struct level_job j = {b, &b->level[z], false, 0};
	struct vz_pool *pool;
	uint64_t before = atomic_load(&b->n_rendered);
	double t0 = vz_now();
	char phase[32];
	struct prog_ud pu = {b, phase};
	int rc, rc2;

	rc = vz_builder_pool(b, &pool);
	if (rc)
		return rc;
	j.pngs = !bands_only;
	snprintf(phase, sizeof phase, "z%d", z);
	rc = vz_pool_for(pool, j.l->n, band_task, &j, pool_progress, &pu,
			 b->o.cancel);
	vz_cache_trim(b->cache);
	rc2 = vz_writer_flush(b->wr);
	if (!rc)
		rc = rc2;
	if (!rc && atomic_load(&b->n_rendered) > before) {
		/* Seconds the level's bands took (for info and bench/run). */
		double dt = vz_now() - t0;
		char key[32];
		snprintf(key, sizeof key, "time/z%02d", z);
		rc = meta_put(b, key, &dt, sizeof dt);
	}
	/* Shards skip the zoom-range PNGs: the range spans all shards and
	 * the merge makes them. */
	if (rc || cancelled(b) || bands_only || last_zoom_stat(b, z) < 0 ||
	    b->shard_n)
		return cancelled(b) ? -ECANCELED : rc;
	rc = vz_builder_zoom_range(b, z);
	if (rc)
		return rc;
	snprintf(phase, sizeof phase, "z%d png", z);
	rc = vz_pool_for(pool, j.l->n, png_task, &j, pool_progress, &pu,
			 b->o.cancel);
	rc2 = vz_writer_flush(b->wr);
	if (!rc)
		rc = rc2;
	return cancelled(b) ? -ECANCELED : rc;
}

int vz_builder_prefetch(struct vz_builder *b, int zmin, int zmax)
{
	int rc, first = 0;

	if (b->o.read_only)
		return -EROFS;
	rc = vz_builder_stage(b);
	if (rc == VZ_E_INPUT && b->partial)
		first = rc; /* keep going with what could be staged */
	else if (rc)
		return rc;
	if (zmin < b->c->z_min)
		zmin = b->c->z_min;
	if (zmax > b->c->z_max)
		zmax = b->c->z_max;
	if (b->shard_n) {
		/* A shard builds its subtrees from the max zoom up to the
		 * split zoom; the merge builds the rest. */
		struct vz_buf v = {0};
		rc = vz_cache_get(b->cache, VZ_DB_META, "shardsplit", 10, &v);
		if (!rc && v.len == sizeof b->split_z)
			memcpy(&b->split_z, v.data, sizeof b->split_z);
		else if (!rc)
			rc = VZ_E_CACHE;
		vz_buf_free(&v);
		if (rc)
			return rc;
		if (zmin < b->split_z)
			zmin = b->split_z;
	}
	for (int z = b->c->z_max; z >= zmin; z--) {
		rc = run_level(b, z, z > zmax);
		if (rc == -ECANCELED)
			return rc;
		if (rc && !first) {
			first = rc;
			vz_err_set("some tiles of zoom %d failed (see the "
				   "errors above)",
				   z);
		}
	}
	if (!first && b->shard_n && zmin == b->split_z)
		first = meta_put(b, "shard_done", "1", 1);
	return first;
}

/* ---- single files ------------------------------------------------------- */

/* Bands of one tile, computing (and storing) what is missing below it with
 * the caller's context.  Recursion depth is at most z_max - z. */
static int ensure_band(struct vz_builder *b, struct vz_wctx *w,
		       const struct vz_tile_key *k, double *out)
{
	struct vz_tile_key ck[4];
	double *kids[4] = {NULL, NULL, NULL, NULL};
	const double *child[4];
	int rc;

	rc = vz_builder_read_band(b, w, k, out);
	if (rc != -ENOENT)
		return rc;
	rc = 0;
	if (k->z == b->c->z_max) {
		rc = vz_builder_rasterize(b, w, k, out);
	} else {
		vz_tms_children(k, ck);
		for (int i = 0; i < 4 && !rc; i++) {
			child[i] = NULL;
			if (!vz_builder_in_index(b, &ck[i]))
				continue;
			kids[i] = malloc(b->tile_bytes);
			if (!kids[i]) {
				rc = -ENOMEM;
				break;
			}
			rc = ensure_band(b, w, &ck[i], kids[i]);
			child[i] = kids[i];
		}
		if (!rc)
			rc = vz_pyramid_build(b->c, child, out);
		for (int i = 0; i < 4; i++)
			free(kids[i]);
	}
	if (!rc)
		rc = vz_builder_store_band(b, w, k, out, true);
	if (!rc)
		atomic_fetch_add(&b->n_rendered, 1);
	return rc;
}

int vz_builder_get(struct vz_builder *b, const struct vz_tile_ref *r,
		   struct vz_buf *out)
{
	struct vz_wctx *w;
	int rc;

	vz_buf_reset(out);
	rc = vz_builder_stage(b);
	if (rc && !(rc == VZ_E_INPUT && b->partial))
		return rc;
	if (!vz_builder_in_index(b, &r->key))
		return -ENOENT;
	rc = main_ctx(b, &w);
	if (rc)
		return rc;
	switch (r->kind) {
	case VZ_KIND_STAGED:
		return vz_builder_staged_gpkg(b, w, &r->key, out);
	case VZ_KIND_GEOTIFF:
		rc = ensure_band(b, w, &r->key, w->bands);
		if (!rc)
			rc = vz_geotiff_encode(b->c, &r->key, w->bands, out);
		break;
	case VZ_KIND_PNG: {
		uint8_t key[VZ_KEY_TILE_LEN + 1];
		vz_key_tile(key, &r->key);
		key[VZ_KEY_TILE_LEN] = (uint8_t)r->stat;
		rc = vz_cache_get(b->cache, VZ_DB_TILE, key, sizeof key, out);
		if (rc != -ENOENT)
			break;
		if (!vz_builder_zoom_stat(b, r->stat, r->key.z)) {
			rc = ensure_band(b, w, &r->key, w->bands);
			if (!rc)
				rc = vz_builder_encode_png(b, w, r->stat, r->key.z,
						w->bands, out);
		} else {
			/* A per-zoom range needs the whole zoom level. */
			rc = vz_builder_prefetch(b, r->key.z, r->key.z);
			if (!rc)
				rc = vz_cache_get(b->cache, VZ_DB_TILE, key,
						  sizeof key, out);
		}
		break;
	}
	}
	if (!rc && b->wr)
		rc = vz_writer_flush(b->wr);
	return rc;
}

/* ---- info --------------------------------------------------------------- */

static double meta_double(struct vz_builder *b, const char *key)
{
	struct vz_buf v = {0};
	double d = 0;

	if (vz_cache_get(b->cache, VZ_DB_META, key, strlen(key), &v) == 0 &&
	    v.len == sizeof d)
		memcpy(&d, v.data, sizeof d);
	vz_buf_free(&v);
	return d;
}

struct count_acc {
	uint64_t n, bytes;
};

static int count_scan(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		      size_t vl)
{
	struct count_acc *a = ud;
	(void)v;
	/* TILE keys: count PNGs only, not cached GeoTIFF/GeoPackage bytes */
	if (kl == VZ_KEY_TILE_LEN + 1 && k[VZ_KEY_TILE_LEN] >= VZ_TILE_GEOTIFF)
		return 0;
	a->n++;
	a->bytes += kl + vl;
	return 0;
}

int vz_builder_info(struct vz_builder *b, struct vz_info *out)
{
	char flag[8];
	uint64_t e, by;

	memset(out, 0, sizeof *out);
	out->fresh = b->fresh;
	out->n_inputs = b->in->n;
	out->prestaged = b->in->prestaged;
	if (!b->cache)
		return 0;
	out->staged = meta_get_str(b, META_INDEXED, flag, sizeof flag) == 0;
	if (vz_cache_stat(b->cache, VZ_DB_STAGED, &e, &by) == 0) {
		out->staged_rows = e;
		out->staged_bytes = by;
	}
	vz_builder_stage_stats(b, &out->stage);
	out->stage_seconds = meta_double(b, "time/stage");
	for (int z = b->c->z_min; z <= b->c->z_max; z++) {
		char key[32];
		snprintf(key, sizeof key, "time/z%02d", z);
		out->z[z].seconds = meta_double(b, key);
	}
	for (int z = b->c->z_min; z <= b->c->z_max && b->fresh; z++) {
		uint8_t p = (uint8_t)z;
		struct count_acc a = {0, 0};
		vz_cache_scan(b->cache, VZ_DB_INDEX, &p, 1, count_scan, &a);
		out->z[z].tiles = a.n;
		a = (struct count_acc){0, 0};
		vz_cache_scan(b->cache, VZ_DB_BAND, &p, 1, count_scan, &a);
		out->z[z].bands = a.n;
		out->z[z].band_bytes = a.bytes;
		a = (struct count_acc){0, 0};
		vz_cache_scan(b->cache, VZ_DB_TILE, &p, 1, count_scan, &a);
		out->z[z].pngs = a.n;
		out->z[z].png_bytes = a.bytes;
	}
	vz_cache_size(b->cache, &out->file_bytes, &out->map_bytes);
	return 0;
}

void vz_builder_counters(const struct vz_builder *b, uint64_t *staged_chunks,
			 uint64_t *rendered, uint64_t *pngs)
{
	*staged_chunks = atomic_load(&b->n_staged_chunks);
	*rendered = atomic_load(&b->n_rendered);
	*pngs = atomic_load(&b->n_pngs);
}
