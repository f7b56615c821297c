/* SPDX-License-Identifier: Apache-2.0 */
/* Sharded builds: a balanced split of the pyramid into whole subtrees, and
 * the merge of shard caches into one. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_i.h"
#include "vizfs/stage.h"

/*
 * The plan is a pure function of the config and the inputs, so every shard
 * computes the same one on its own:
 *  1. read every feature's envelope (geometry only), as a range of max-zoom
 *     tiles, widened by one tile to be safe against reprojection curvature;
 *  2. the split zoom is the shallowest zoom with at least 16 occupied tiles
 *     per shard (by feature centre), or the max zoom;
 *  3. the split-zoom tiles touched by any feature are ordered along a Morton
 *     curve (neighbours stay together, so inputs are read by few shards) and
 *     cut into N runs of about equal feature count: the input volume, not
 *     the tile count, is balanced;
 *  4. a staging chunk is read by a shard only if one of its features touches
 *     one of the shard's split-zoom tiles.
 */

struct feat {
	uint32_t x0, y0, x1, y1; /* max-zoom tile range; x0 == UINT32_MAX:
				    no geometry */
};

struct plan_job {
	struct vz_builder *b;
	struct vz_input *in;
	struct feat *f; /* features of this input */
	uint64_t n;
	uint64_t chunk;
};

struct env_ud {
	struct plan_job *j;
	uint64_t base;
};

static int on_envelope(void *ud, uint64_t ord, const struct vz_bbox *bb)
{
	struct env_ud *e = ud;
	const struct vz_conf *c = e->j->b->c;
	struct vz_tile_key k;
	struct vz_bbox tb, w = *bb;
	struct feat *f;
	uint32_t x0, y0, x1, y1;

	if (ord >= e->j->n)
		return 0;
	f = &e->j->f[ord];
	/* widen by one max-zoom tile */
	k = (struct vz_tile_key){0, 0, (uint8_t)c->z_max};
	vz_tms_bounds(c->tms, &k, &tb);
	w.left -= tb.right - tb.left;
	w.right += tb.right - tb.left;
	w.bottom -= tb.top - tb.bottom;
	w.top += tb.top - tb.bottom;
	if (vz_tms_tile_range(c->tms, c->z_max, &w, &x0, &y0, &x1, &y1))
		return 0;
	f->x0 = x0;
	f->y0 = y0;
	f->x1 = x1;
	f->y1 = y1;
	return 0;
}

static int plan_task(void *ud, void *ctx, size_t i)
{
	struct plan_job *jobs = ud, *j;
	struct vz_wctx *w = ctx;
	struct env_ud e;
	size_t k = 0;

	/* task i -> (input, chunk) by walking the per-input chunk counts */
	while (i >= (jobs[k].n + VZ_STAGE_CHUNK - 1) / VZ_STAGE_CHUNK) {
		i -= (jobs[k].n + VZ_STAGE_CHUNK - 1) / VZ_STAGE_CHUNK;
		k++;
	}
	j = &jobs[k];
	e.j = j;
	e.base = (uint64_t)i * VZ_STAGE_CHUNK;
	return vz_stage_envelopes(w->st, j->in, e.base,
				  j->n - e.base < VZ_STAGE_CHUNK
					  ? j->n - e.base
					  : VZ_STAGE_CHUNK,
				  on_envelope, &e);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static uint64_t morton(uint32_t x, uint32_t y)
{
	uint64_t m = 0;
	for (int i = 0; i < 32; i++)
		m |= ((uint64_t)((x >> i) & 1) << (2 * i)) |
		     ((uint64_t)((y >> i) & 1) << (2 * i + 1));
	return m;
}

struct zs_tile {
	uint64_t morton;
	uint32_t x, y;
	uint64_t weight;
};

static int cmp_zs(const void *a, const void *b)
{
	const struct zs_tile *p = a, *q = b;
	return (p->morton > q->morton) - (p->morton < q->morton);
}

static int cmp_xy(const void *a, const void *b)
{
	const struct vz_tile_key *p = a, *q = b;
	if (p->x != q->x)
		return p->x < q->x ? -1 : 1;
	return (p->y > q->y) - (p->y < q->y);
}

bool vz_shard_owns(const struct vz_builder *b, const struct vz_tile_key *k)
{
	struct vz_tile_key a;
	int d;

	if (!b->shard_n)
		return true;
	if (k->z < b->split_z)
		return false;
	d = k->z - b->split_z;
	a = (struct vz_tile_key){k->x >> d, k->y >> d, (uint8_t)b->split_z};
	return bsearch(&a, b->own, b->n_own, sizeof *b->own, cmp_xy) != NULL;
}

/* Does the range [x0,x1]x[y0,y1] of max-zoom tiles touch an owned tile? */
static bool range_owned(const struct vz_builder *b, const struct feat *f)
{
	int d = b->c->z_max - b->split_z;

	for (uint32_t x = f->x0 >> d; x <= f->x1 >> d; x++)
		for (uint32_t y = f->y0 >> d; y <= f->y1 >> d; y++) {
			struct vz_tile_key a = {x, y, (uint8_t)b->split_z};
			if (bsearch(&a, b->own, b->n_own, sizeof *b->own,
				    cmp_xy))
				return true;
		}
	return false;
}

int vz_shard_plan(struct vz_builder *b)
{
	const struct vz_conf *c = b->c;
	struct plan_job *jobs = NULL;
	struct vz_pool *pool;
	struct vz_wctx *mw = NULL;
	uint64_t *centres = NULL, n_feat = 0, n_tasks = 0, total = 0;
	struct zs_tile *zt = NULL;
	size_t n_zt = 0, cap_zt = 0;
	struct vz_hash h;
	int rc = 0, zs;

	jobs = calloc(b->in->n ? b->in->n : 1, sizeof *jobs);
	if (!jobs)
		return -ENOMEM;
	rc = vz_builder_wctx_new(b, &mw);
	for (size_t i = 0; i < b->in->n && !rc; i++) {
		struct vz_input *in = &b->in->v[i];
		jobs[i].b = b;
		jobs[i].in = in;
		if (in->prestaged) {
			jobs[i].n = 1;
		} else {
			rc = vz_stage_count(mw->st, in, &jobs[i].n);
			if (rc)
				vz_err_prefix("shard plan");
		}
		if (!rc) {
			jobs[i].f = malloc((jobs[i].n ? jobs[i].n : 1) *
					   sizeof *jobs[i].f);
			if (!jobs[i].f)
				rc = -ENOMEM;
			else
				memset(jobs[i].f, 0xff,
				       (jobs[i].n ? jobs[i].n : 1) *
					       sizeof *jobs[i].f);
		}
		if (!rc && in->prestaged) {
			jobs[i].f[0] = (struct feat){in->key.x, in->key.y,
						     in->key.x, in->key.y};
			jobs[i].n = 1;
		} else if (!rc) {
			n_tasks += (jobs[i].n + VZ_STAGE_CHUNK - 1) /
				   VZ_STAGE_CHUNK;
		}
		n_feat += jobs[i].n;
	}
	vz_wctx_free(mw);
	if (rc)
		goto out;
	if (n_tasks) {
		/* prestaged inputs have no chunk tasks: give them 0 */
		struct plan_job *raw = calloc(b->in->n, sizeof *raw);
		size_t m = 0;
		if (!raw) {
			rc = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < b->in->n; i++) {
			raw[m] = jobs[i];
			if (b->in->v[i].prestaged)
				raw[m].n = 0;
			m++;
		}
		rc = vz_builder_pool(b, &pool);
		if (!rc) {
			if (b->o.progress)
				b->o.progress(b->o.progress_ud, "shard plan", 0,
					      n_tasks);
			rc = vz_pool_for(pool, n_tasks, plan_task, raw, NULL,
					 NULL, b->o.cancel);
		}
		free(raw);
		if (rc)
			goto out;
	}

	/* 2. split zoom from the feature centres */
	centres = malloc((n_feat ? n_feat : 1) * sizeof *centres);
	if (!centres) {
		rc = -ENOMEM;
		goto out;
	}
	n_feat = 0;
	for (size_t i = 0; i < b->in->n; i++)
		for (uint64_t k = 0; k < jobs[i].n; k++) {
			const struct feat *f = &jobs[i].f[k];
			if (f->x0 == UINT32_MAX)
				continue;
			centres[n_feat++] =
				((uint64_t)((f->x0 + f->x1) / 2) << 32) |
				((f->y0 + f->y1) / 2);
		}
	qsort(centres, n_feat, sizeof *centres, cmp_u64);
	zs = c->z_max;
	{
		/* The distinct max-zoom tiles of the centres, then for each
		 * zoom the distinct tiles above them (shifting x and y breaks
		 * the sort order, so each zoom is sorted again). */
		uint64_t m = 0, *tiles = malloc((n_feat ? n_feat : 1) * 8),
			 *tmp = malloc((n_feat ? n_feat : 1) * 8);
		if (!tiles || !tmp) {
			free(tiles);
			free(tmp);
			rc = -ENOMEM;
			goto out;
		}
		for (uint64_t i = 0; i < n_feat; i++)
			if (m == 0 || tiles[m - 1] != centres[i])
				tiles[m++] = centres[i];
		for (int z = c->z_min; z <= c->z_max; z++) {
			int d = c->z_max - z;
			uint64_t distinct = 0;
			for (uint64_t i = 0; i < m; i++)
				tmp[i] = ((tiles[i] >> 32 >> d) << 32) |
					 ((tiles[i] & 0xffffffffu) >> d);
			qsort(tmp, m, sizeof *tmp, cmp_u64);
			for (uint64_t i = 0; i < m; i++)
				distinct += i == 0 || tmp[i] != tmp[i - 1];
			if (distinct >= 16 * (uint64_t)b->shard_n) {
				zs = z;
				break;
			}
		}
		free(tiles);
		free(tmp);
	}
	b->split_z = zs;

	/* 3. every split-zoom tile any feature touches, weighted by centres */
	{
		int d = c->z_max - zs;
		for (size_t i = 0; i < b->in->n && !rc; i++)
			for (uint64_t k = 0; k < jobs[i].n && !rc; k++) {
				const struct feat *f = &jobs[i].f[k];
				if (f->x0 == UINT32_MAX)
					continue;
				for (uint32_t x = f->x0 >> d; x <= f->x1 >> d;
				     x++)
					for (uint32_t y = f->y0 >> d;
					     y <= f->y1 >> d; y++) {
						if (n_zt == cap_zt) {
							size_t nc = cap_zt
									    ? cap_zt * 2
									    : 1024;
							struct zs_tile *p = realloc(
								zt,
								nc * sizeof *p);
							if (!p) {
								rc = -ENOMEM;
								goto out;
							}
							zt = p;
							cap_zt = nc;
						}
						zt[n_zt++] = (struct zs_tile){
							morton(x, y), x, y, 0};
					}
			}
		qsort(zt, n_zt, sizeof *zt, cmp_zs);
		size_t m = 0;
		for (size_t i = 0; i < n_zt; i++)
			if (m == 0 || zt[m - 1].morton != zt[i].morton)
				zt[m++] = zt[i];
		n_zt = m;
		for (uint64_t i = 0; i < n_feat; i++) {
			struct zs_tile key = {
				morton((uint32_t)(centres[i] >> 32) >> d,
				       (uint32_t)(centres[i] & 0xffffffffu) >> d),
				0, 0, 0};
			struct zs_tile *t = bsearch(&key, zt, n_zt, sizeof *zt,
						    cmp_zs);
			if (t)
				t->weight++;
		}
	}

	/* cut the Morton order into N runs of equal weight */
	for (size_t i = 0; i < n_zt; i++)
		total += zt[i].weight + 1; /* +1: empty tiles still cost */
	b->n_own = 0;
	free(b->own);
	b->own = malloc((n_zt ? n_zt : 1) * sizeof *b->own);
	if (!b->own) {
		rc = -ENOMEM;
		goto out;
	}
	vz_hash_init(&h);
	vz_hash_u64(&h, (uint64_t)zs);
	vz_hash_u64(&h, (uint64_t)b->shard_n);
	{
		uint64_t acc = 0;
		for (size_t i = 0; i < n_zt; i++) {
			/* the run a tile belongs to: by the weight before it */
			int g = (int)((acc * (uint64_t)b->shard_n) / total);
			acc += zt[i].weight + 1;
			vz_hash_u64(&h, ((uint64_t)zt[i].x << 32) | zt[i].y);
			vz_hash_u64(&h, (uint64_t)g);
			if (g == b->shard_i)
				b->own[b->n_own++] = (struct vz_tile_key){
					zt[i].x, zt[i].y, (uint8_t)zs};
		}
	}
	vz_hash_hex(&h, b->plan_hash);
	qsort(b->own, b->n_own, sizeof *b->own, cmp_xy);

	/* 4. which staging chunks this shard reads */
	free(b->chunk_need);
	b->chunk_need = calloc(n_tasks + b->in->n + 1, 1);
	if (!b->chunk_need) {
		rc = -ENOMEM;
		goto out;
	}
	if (!b->feat_need)
		b->feat_need = calloc(b->in->n ? b->in->n : 1,
				      sizeof *b->feat_need);
	if (!b->feat_need) {
		rc = -ENOMEM;
		goto out;
	}
	{
		size_t t = 0;
		for (size_t i = 0; i < b->in->n; i++) {
			uint8_t *need;
			if (b->in->v[i].prestaged)
				continue;
			need = calloc(jobs[i].n / 8 + 1, 1);
			if (!need) {
				rc = -ENOMEM;
				goto out;
			}
			free(b->feat_need[i]);
			b->feat_need[i] = need;
			for (uint64_t k = 0; k < jobs[i].n; k++) {
				const struct feat *f = &jobs[i].f[k];
				size_t ti = t + k / VZ_STAGE_CHUNK;
				if (f->x0 == UINT32_MAX || !range_owned(b, f))
					continue;
				b->chunk_need[ti] = 1;
				need[k >> 3] |= (uint8_t)(1u << (k & 7));
			}
			t += (jobs[i].n + VZ_STAGE_CHUNK - 1) / VZ_STAGE_CHUNK;
		}
		b->n_chunks = t;
	}
	vz_log(VZ_LOG_INFO,
	       "shard %d/%d: split zoom %d, %zu of %zu subtrees, plan %.8s",
	       b->shard_i, b->shard_n, zs, b->n_own, n_zt, b->plan_hash);
out:
	for (size_t i = 0; jobs && i < b->in->n; i++)
		free(jobs[i].f);
	free(jobs);
	free(centres);
	free(zt);
	return rc;
}

/* ---- merge -------------------------------------------------------------- */

struct copy_ud {
	struct vz_builder *b;
	struct vz_cache *from;
	enum vz_db db;
	uint64_t n, bytes;
};

static int copy_cb(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		   size_t vl)
{
	struct copy_ud *c = ud;
	c->n++;
	/* Keep RSS bounded: drop the shard's pages read so far (the scan
	 * reads the whole shard cache through its map). */
	c->bytes += kl + vl;
	if (c->bytes > (64u << 20)) {
		c->bytes = 0;
		vz_cache_trim(c->from);
		vz_cache_trim(c->b->cache);
	}
	if (c->db == VZ_DB_META &&
	    !(kl > 4 && (memcmp(k, "stg/", 4) == 0 ||
			 (kl > 8 && memcmp(k, "stgtime/", 8) == 0))))
		return 0; /* only staging bookkeeping is copied */
	return vz_writer_put(c->b->wr, c->db, k, kl, v, vl);
}

static int shard_meta(struct vz_cache *sc, const char *key, char *out,
		      size_t n)
{
	struct vz_buf v = {0};
	int rc = vz_cache_get(sc, VZ_DB_META, key, strlen(key), &v);
	if (!rc) {
		size_t l = v.len < n - 1 ? v.len : n - 1;
		memcpy(out, v.data, l);
		out[l] = '\0';
	}
	vz_buf_free(&v);
	return rc;
}

int vz_builder_merge(struct vz_builder *b, const char *const *dirs, size_t n)
{
	static const enum vz_db copy[] = {VZ_DB_STAGED, VZ_DB_BAND, VZ_DB_TILE,
					  VZ_DB_SUMMARY, VZ_DB_META};
	char want[128], plan0[40] = "";
	char *seen = calloc(n ? n : 1, 1);
	int rc = 0;

	if (!seen)
		return -ENOMEM;
	if (n == 0) {
		vz_err_set("merge: no shard caches given");
		free(seen);
		return -EINVAL;
	}
	snprintf(want, sizeof want, "%s:%s", b->c->fingerprint,
		 b->in->fingerprint);
	/* Verify every shard before copying anything. */
	for (size_t i = 0; i < n && !rc; i++) {
		struct vz_cache_opts o = {dirs[i], 0, true};
		struct vz_cache *sc = NULL;
		char fp[160], shard[40], plan[40], done[8];
		unsigned si = 0, sn = 0;

		rc = vz_cache_open(&o, &sc);
		if (rc) {
			vz_err_prefix("merge: shard cache %s", dirs[i]);
			break;
		}
		if (shard_meta(sc, "fingerprint", fp, sizeof fp) ||
		    shard_meta(sc, "shard", shard, sizeof shard) ||
		    sscanf(shard, "%u/%u", &si, &sn) != 2) {
			vz_err_set("merge: %s is not a shard cache (no shard "
				   "marker; build it with vizfs prefetch "
				   "--shard I/N --cache %s)",
				   dirs[i], dirs[i]);
			rc = VZ_E_STALE;
		} else if (strncmp(fp, want, strlen(want)) != 0) {
			vz_err_set("merge: shard %s was built from a different "
				   "config or different inputs",
				   dirs[i]);
			rc = VZ_E_STALE;
		} else if (sn != n || si >= n) {
			vz_err_set("merge: %s is shard %u of %u, but %zu shard "
				   "caches were given",
				   dirs[i], si, sn, n);
			rc = VZ_E_STALE;
		} else if (seen[si]++) {
			vz_err_set("merge: shard %u given twice (%s)", si,
				   dirs[i]);
			rc = VZ_E_STALE;
		} else if (shard_meta(sc, "shard_done", done, sizeof done)) {
			vz_err_set("merge: shard %u in %s is incomplete: rerun "
				   "its vizfs prefetch --shard %u/%zu",
				   si, dirs[i], si, n);
			rc = VZ_E_STALE;
		} else if (shard_meta(sc, "shardplan", plan, sizeof plan) ||
			   (plan0[0] && strcmp(plan, plan0))) {
			vz_err_set("merge: shard %s used a different plan",
				   dirs[i]);
			rc = VZ_E_STALE;
		} else {
			snprintf(plan0, sizeof plan0, "%s", plan);
		}
		vz_cache_close(sc);
	}
	free(seen);
	if (rc)
		return rc;
	/* Copy the shards' tiles; then the levels above the split, the zoom
	 * ranges and their PNGs are built here as in a single build. */
	for (size_t i = 0; i < n && !rc; i++) {
		struct vz_cache_opts o = {dirs[i], 0, true};
		struct vz_cache *sc = NULL;

		rc = vz_cache_open(&o, &sc);
		for (size_t d = 0; d < VZ_ARRAY_SIZE(copy) && !rc; d++) {
			struct copy_ud cu = {b, sc, copy[d], 0, 0};
			rc = vz_cache_scan(sc, copy[d], NULL, 0, copy_cb, &cu);
		}
		if (!rc && b->o.progress)
			b->o.progress(b->o.progress_ud, "merge", i + 1, n);
		vz_cache_close(sc);
		if (!rc)
			rc = vz_writer_flush(b->wr);
		vz_cache_trim(b->cache);
	}
	if (rc) {
		vz_err_prefix("merge");
		return rc;
	}
	rc = vz_builder_finish_staging(b);
	if (!rc)
		rc = vz_builder_prefetch(b, b->c->z_min, b->c->z_max);
	return rc;
}
