/* SPDX-License-Identifier: Apache-2.0 */
/* On-demand rendering: dependency-driven jobs with dedup, waiters and two
 * priorities over render threads, plus the background prefetcher. */
#include "vizfs/service.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_i.h"
#include "vizfs/geotiff.h"
#include "vizfs/pyramid.h"

enum job_kind {
	J_BAND,	 /* raster (max zoom) or parent bands of a tile */
	J_PNG,	 /* one statistic's PNG */
	J_GTIFF, /* GeoTIFF bytes */
	J_GPKG,	 /* staged GeoPackage bytes */
	J_LEVEL, /* colour range of a zoom: every band of the zoom */
};

enum job_state { QUEUED, WAITING, RUNNING, DONE, FAILED };

enum prio { P_DEMAND, P_PREFETCH, P_COUNT };

struct waiter {
	vz_ready_fn cb;
	void *ud;
	struct waiter *next;
};

struct job {
	enum job_kind kind;
	struct vz_tile_key key; /* z only for J_LEVEL */
	int stat;		/* J_PNG */
	enum prio prio;
	enum job_state state;
	int rc;
	int n_deps;		/* outstanding dependencies */
	struct job **deps;	/* what this job waits for (for promotion) */
	size_t n_dep_list, cap_deps;
	struct job **dependents; /* jobs waiting for this one */
	size_t n_dependents, cap_dependents;
	struct waiter *waiters;
	struct job *qprev, *qnext; /* run queue or reap list */
	struct job *hnext;	   /* hash chain */
	int refs;		   /* readers using the result outside the lock */
	bool reaping;		   /* flushed, to be removed */
	double *bands;		   /* J_BAND result */
	struct vz_buf data;	   /* J_PNG / J_GTIFF / J_GPKG result */
	double t_queued;
};

struct queue {
	struct job *head, *tail;
	size_t n;
};

struct vz_service {
	struct vz_builder *b;
	const struct vz_conf *c;
	int n_workers;
	bool prefetch;

	pthread_mutex_t lock; /* guards: everything below except counters */
	pthread_cond_t work;  /* workers: a job is queued, or stopping */
	pthread_cond_t idle;  /* feeder: the prefetch backlog shrank; index */
	struct job **hash;
	size_t n_buckets, n_jobs;
	struct queue runq[P_COUNT];
	struct queue done; /* finished jobs not yet known to be committed */
	size_t backlog;	   /* prefetch jobs queued or waiting */
	int running;
	bool stopping;
	bool indexed;
	int index_rc;
	uint64_t level_done[VZ_MAX_ZOOM + 1]; /* tiles with bands */

	struct worker **workers;
	pthread_t stager, feeder, reaper;
	bool have_stager, have_feeder, have_reaper;
	bool prefetching;
	bool commit_failed; /* reaper only */
	pthread_mutex_t csv_lock; /* guards: CSV generation (one at a time) */

	_Atomic uint64_t requests, hits, misses, shared, renders, tiles, errors;
	_Atomic uint64_t lat_n, lat_sum_us, lat_max_us;
	uint64_t lat_hist[12]; /* guarded by lock: ms buckets 1,2,5,…,5000 */
	double t_start;
};

static const double lat_bounds_ms[] = {1,   2,   5,    10,   20,	50,
				       100, 200, 500, 1000, 2000, 5000};

/* ---- hash of jobs ------------------------------------------------------- */

static size_t job_hash(enum job_kind kind, const struct vz_tile_key *k,
		       int stat, size_t n)
{
	uint64_t h = ((uint64_t)kind * 0x9e3779b97f4a7c15ULL) ^
		     ((uint64_t)k->z << 56) ^ ((uint64_t)k->x << 24) ^ k->y ^
		     ((uint64_t)(stat & 0xff) << 48);
	h ^= h >> 31;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 29;
	return (size_t)(h & (n - 1));
}

static bool same(const struct job *j, enum job_kind kind,
		 const struct vz_tile_key *k, int stat)
{
	return j->kind == kind && j->key.z == k->z && j->key.x == k->x &&
	       j->key.y == k->y && j->stat == stat;
}

static struct job *find_job(struct vz_service *s, enum job_kind kind,
			    const struct vz_tile_key *k, int stat)
{
	struct job *j = s->hash[job_hash(kind, k, stat, s->n_buckets)];
	for (; j; j = j->hnext)
		if (same(j, kind, k, stat))
			return j;
	return NULL;
}

static int grow_hash(struct vz_service *s)
{
	size_t n = s->n_buckets * 2;
	struct job **h = calloc(n, sizeof *h);

	if (!h)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_buckets; i++) {
		struct job *j = s->hash[i], *next;
		for (; j; j = next) {
			size_t b = job_hash(j->kind, &j->key, j->stat, n);
			next = j->hnext;
			j->hnext = h[b];
			h[b] = j;
		}
	}
	free(s->hash);
	s->hash = h;
	s->n_buckets = n;
	return 0;
}

static void unhash(struct vz_service *s, struct job *j)
{
	struct job **p = &s->hash[job_hash(j->kind, &j->key, j->stat,
					   s->n_buckets)];
	for (; *p; p = &(*p)->hnext)
		if (*p == j) {
			*p = j->hnext;
			s->n_jobs--;
			return;
		}
}

static void job_free(struct job *j)
{
	free(j->deps);
	free(j->dependents);
	free(j->bands);
	vz_buf_free(&j->data);
	free(j);
}

/* ---- queues ------------------------------------------------------------- */

static void q_push(struct queue *q, struct job *j)
{
	j->qnext = NULL;
	j->qprev = q->tail;
	if (q->tail)
		q->tail->qnext = j;
	else
		q->head = j;
	q->tail = j;
	q->n++;
}

static void q_remove(struct queue *q, struct job *j)
{
	if (j->qprev)
		j->qprev->qnext = j->qnext;
	else
		q->head = j->qnext;
	if (j->qnext)
		j->qnext->qprev = j->qprev;
	else
		q->tail = j->qprev;
	j->qprev = j->qnext = NULL;
	q->n--;
}

static struct job *q_pop(struct queue *q)
{
	struct job *j = q->head;
	if (j)
		q_remove(q, j);
	return j;
}

static int push_ptr(struct job ***v, size_t *n, size_t *cap, struct job *j)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 4;
		struct job **p = realloc(*v, nc * sizeof *p);
		if (!p)
			return -ENOMEM;
		*v = p;
		*cap = nc;
	}
	(*v)[(*n)++] = j;
	return 0;
}

/* A demand job's dependencies become demand jobs too. */
static void promote(struct vz_service *s, struct job *j)
{
	if (j->prio == P_DEMAND)
		return;
	if (j->state == QUEUED) {
		q_remove(&s->runq[P_PREFETCH], j);
		q_push(&s->runq[P_DEMAND], j);
	}
	if (j->state == QUEUED || j->state == WAITING)
		s->backlog--;
	j->prio = P_DEMAND;
	for (size_t i = 0; i < j->n_dep_list; i++)
		promote(s, j->deps[i]);
}

/* ---- cache checks (no service state: safe under the lock) --------------- */

static void tile_key(uint8_t key[VZ_KEY_TILE_LEN + 1],
		     const struct vz_tile_key *k, int which)
{
	vz_key_tile(key, k);
	key[VZ_KEY_TILE_LEN] = (uint8_t)which;
}

static int tile_byte(enum job_kind kind, int stat)
{
	return kind == J_PNG	 ? stat
	       : kind == J_GTIFF ? VZ_TILE_GEOTIFF
				 : VZ_TILE_GPKG;
}

static bool band_cached(struct vz_service *s, const struct vz_tile_key *k)
{
	uint8_t key[VZ_KEY_TILE_LEN];
	vz_key_tile(key, k);
	return vz_cache_has(s->b->cache, VZ_DB_BAND, key, sizeof key) == 1;
}

struct len_ud {
	uint64_t len;
	int found;
};

static int len_cb(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		  size_t vl)
{
	struct len_ud *l = ud;
	(void)k;
	(void)v;
	if (kl == VZ_KEY_TILE_LEN + 1) {
		l->len = vl;
		l->found = 1;
	}
	return 1; /* one key is enough */
}

/* Size of a cached file, without copying it.  @return 1 found, 0 not. */
static int file_cached(struct vz_service *s, enum job_kind kind,
		       const struct vz_tile_key *k, int stat, uint64_t *len)
{
	uint8_t key[VZ_KEY_TILE_LEN + 1];
	struct len_ud l = {0, 0};

	tile_key(key, k, tile_byte(kind, stat));
	vz_cache_scan(s->b->cache, VZ_DB_TILE, key, sizeof key, len_cb, &l);
	*len = l.len;
	return l.found;
}

/* ---- job graph ---------------------------------------------------------- */

static struct job *get_job(struct vz_service *s, enum job_kind kind,
			   const struct vz_tile_key *k, int stat,
			   enum prio prio, bool *created);

static int add_dep(struct vz_service *s, struct job *j, enum job_kind kind,
		   const struct vz_tile_key *k, int stat)
{
	struct job *d;
	bool created;

	d = get_job(s, kind, k, stat, j->prio, &created);
	if (!d)
		return -ENOMEM;
	if (d->state == DONE)
		return 0;
	if (d->state == FAILED) /* being reported; a new request retries */
		return d->rc ? d->rc : -EIO;
	if (push_ptr(&j->deps, &j->n_dep_list, &j->cap_deps, d) ||
	    push_ptr(&d->dependents, &d->n_dependents, &d->cap_dependents, j))
		return -ENOMEM;
	j->n_deps++;
	return 0;
}

/* Work out what a new job waits for; queue it if nothing. */
static int plan(struct vz_service *s, struct job *j)
{
	struct vz_builder *b = s->b;
	struct vz_tile_key ck[4];
	int rc = 0;

	switch (j->kind) {
	case J_BAND:
		if (j->key.z == s->c->z_max)
			break;
		vz_tms_children(&j->key, ck);
		for (int i = 0; i < 4 && !rc; i++) {
			struct job *d;
			if (!vz_builder_in_index(b, &ck[i]))
				continue;
			d = find_job(s, J_BAND, &ck[i], 0);
			if ((!d || d->state == FAILED) &&
			    band_cached(s, &ck[i]))
				continue;
			rc = add_dep(s, j, J_BAND, &ck[i], 0);
		}
		break;
	case J_PNG:
		if (vz_builder_zoom_stat(b, j->stat, j->key.z) &&
		    !b->zrange_ok[j->key.z]) {
			struct vz_tile_key lk = {0, 0, j->key.z};
			rc = add_dep(s, j, J_LEVEL, &lk, 0);
		}
		/* PNG and GeoTIFF need the tile's bands */
		__attribute__((fallthrough));
	case J_GTIFF: {
		struct job *d = find_job(s, J_BAND, &j->key, 0);
		if (!rc && !((!d || d->state == FAILED) &&
			     band_cached(s, &j->key)))
			rc = add_dep(s, j, J_BAND, &j->key, 0);
		break;
	}
	case J_GPKG:
		break;
	case J_LEVEL: {
		const struct vz_level *l = &b->level[j->key.z];
		for (size_t i = 0; i < l->n && !rc; i++) {
			struct job *d = find_job(s, J_BAND, &l->k[i], 0);
			if ((!d || d->state == FAILED) &&
			    band_cached(s, &l->k[i]))
				continue;
			rc = add_dep(s, j, J_BAND, &l->k[i], 0);
		}
		break;
	}
	}
	if (rc)
		return rc;
	if (j->n_deps == 0) {
		j->state = QUEUED;
		q_push(&s->runq[j->prio], j);
		pthread_cond_signal(&s->work);
	} else {
		j->state = WAITING;
	}
	return 0;
}

static struct job *get_job(struct vz_service *s, enum job_kind kind,
			   const struct vz_tile_key *k, int stat,
			   enum prio prio, bool *created)
{
	struct job *j = find_job(s, kind, k, stat);

	*created = false;
	if (j && j->state != FAILED) {
		if (prio == P_DEMAND)
			promote(s, j);
		return j;
	}
	if (s->n_jobs >= s->n_buckets && grow_hash(s))
		return NULL;
	j = calloc(1, sizeof *j);
	if (!j)
		return NULL;
	j->kind = kind;
	j->key = *k;
	j->stat = stat;
	j->prio = prio;
	j->t_queued = vz_now();
	{
		size_t h = job_hash(kind, k, stat, s->n_buckets);
		j->hnext = s->hash[h];
		s->hash[h] = j;
		s->n_jobs++;
	}
	if (prio == P_PREFETCH)
		s->backlog++;
	*created = true;
	if (plan(s, j)) {
		/* Out of memory: the job stays hashed but failed, so a later
		 * request makes a new one; it is never freed, as dependencies
		 * it already registered with may still point to it. */
		j->state = FAILED;
		j->rc = -ENOMEM;
		unhash(s, j);
		if (prio == P_PREFETCH)
			s->backlog--;
	}
	return j;
}

/* ---- running jobs ------------------------------------------------------- */

struct worker {
	struct vz_service *s;
	struct vz_wctx *w;
	pthread_t thread;
	int idx;
};

/* Bands of a tile for a job that depends on them: from a finished job in
 * memory, else from the cache.  @return 0, -ENOENT, or an error. */
static int get_bands(struct vz_service *s, struct worker *wk,
		     const struct vz_tile_key *k, double *out)
{
	struct job *d;

	pthread_mutex_lock(&s->lock);
	d = find_job(s, J_BAND, k, 0);
	if (d && d->state == DONE && d->bands)
		d->refs++;
	else
		d = NULL;
	pthread_mutex_unlock(&s->lock);
	if (d) {
		memcpy(out, d->bands, s->b->tile_bytes);
		pthread_mutex_lock(&s->lock);
		d->refs--;
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	return vz_builder_read_band(s->b, wk->w, k, out);
}

static int run_band(struct vz_service *s, struct worker *wk, struct job *j)
{
	struct vz_builder *b = s->b;
	double *bands = malloc(b->tile_bytes);
	int rc = 0;

	if (!bands)
		return -ENOMEM;
	if (j->key.z == s->c->z_max) {
		rc = vz_builder_rasterize(b, wk->w, &j->key, bands);
	} else {
		struct vz_tile_key ck[4];
		const double *child[4] = {NULL, NULL, NULL, NULL};
		vz_tms_children(&j->key, ck);
		for (int i = 0; i < 4 && !rc; i++) {
			if (!vz_builder_in_index(b, &ck[i]))
				continue;
			rc = get_bands(s, wk, &ck[i], wk->w->child[i]);
			if (rc == -ENOENT) {
				/* a child of the index must exist */
				vz_err_set("band of child %u/%u/%u missing",
					   ck[i].z, ck[i].x, ck[i].y);
				rc = VZ_E_CACHE;
			}
			child[i] = wk->w->child[i];
		}
		if (!rc)
			rc = vz_pyramid_build(s->c, child, bands);
	}
	if (!rc)
		rc = vz_builder_store_band(b, wk->w, &j->key, bands, true);
	if (rc) {
		free(bands);
		return rc;
	}
	j->bands = bands;
	atomic_fetch_add(&s->tiles, 1);
	return 0;
}

static int run_job(struct vz_service *s, struct worker *wk, struct job *j)
{
	struct vz_builder *b = s->b;
	uint8_t key[VZ_KEY_TILE_LEN + 1];
	int rc = 0;

	vz_err_clear();
	switch (j->kind) {
	case J_BAND:
		return run_band(s, wk, j);
	case J_LEVEL:
		/* Every band of the zoom is done: commit, then scan the
		 * summaries for the zoom's range. */
		rc = vz_writer_flush(b->wr);
		if (!rc) {
			pthread_mutex_lock(&s->lock);
			rc = vz_builder_zoom_range(b, j->key.z);
			pthread_mutex_unlock(&s->lock);
		}
		return rc;
	case J_GPKG:
		rc = vz_builder_staged_gpkg(b, wk->w, &j->key, &j->data);
		break;
	case J_PNG:
	case J_GTIFF:
		rc = get_bands(s, wk, &j->key, wk->w->bands);
		if (rc == -ENOENT) {
			vz_err_set("band missing");
			rc = VZ_E_CACHE;
		}
		if (rc)
			return rc;
		rc = j->kind == J_PNG
			     ? vz_builder_encode_png(b, wk->w, j->stat,
						     j->key.z, wk->w->bands,
						     &j->data)
			     : vz_geotiff_encode(s->c, &j->key, wk->w->bands,
						 &j->data);
		break;
	}
	if (rc)
		return rc;
	tile_key(key, &j->key, tile_byte(j->kind, j->stat));
	rc = vz_writer_put(b->wr, VZ_DB_TILE, key, sizeof key, j->data.data,
			   j->data.len);
	/* A GeoTIFF is only a re-encoding of cached bands: when it cannot be
	 * cached (disk full), serve it anyway; reads re-encode it. */
	return j->kind == J_GTIFF ? 0 : rc;
}

static const char *kind_name(enum job_kind k)
{
	static const char *const n[] = {"render", "png", "geotiff", "staged",
					"zoom range"};
	return n[k];
}

static void record_latency(struct vz_service *s, double t0)
{
	double ms = (vz_now() - t0) * 1e3;
	uint64_t us = (uint64_t)(ms * 1e3);
	size_t i = 0;

	atomic_fetch_add(&s->lat_n, 1);
	atomic_fetch_add(&s->lat_sum_us, us);
	for (uint64_t m = atomic_load(&s->lat_max_us);
	     us > m && !atomic_compare_exchange_weak(&s->lat_max_us, &m, us);)
		;
	while (i < VZ_ARRAY_SIZE(lat_bounds_ms) && ms > lat_bounds_ms[i])
		i++;
	pthread_mutex_lock(&s->lock);
	if (i < VZ_ARRAY_SIZE(lat_bounds_ms))
		s->lat_hist[i]++;
	pthread_mutex_unlock(&s->lock);
}

/* j stops waiting for its remaining dependencies (it failed): they must
 * not point back to it once it is freed. */
static void detach(struct job *j)
{
	for (size_t i = 0; i < j->n_dep_list; i++) {
		struct job *d = j->deps[i];
		for (size_t k = 0; k < d->n_dependents; k++)
			if (d->dependents[k] == j) {
				d->dependents[k] =
					d->dependents[--d->n_dependents];
				break;
			}
	}
	j->n_dep_list = 0;
}

/* Finish a job under the lock: collect its waiters, release dependents,
 * fail them when it failed.  Waiters are answered after unlocking. */
static void finish(struct vz_service *s, struct job *j, int rc,
		   struct waiter **answer)
{
	struct waiter *w = j->waiters;

	if (rc)
		detach(j);
	j->waiters = NULL;
	j->rc = rc;
	j->state = rc ? FAILED : DONE;
	if (j->kind == J_BAND && !rc)
		s->level_done[j->key.z]++;
	while (w) {
		struct waiter *next = w->next;
		w->next = *answer;
		*answer = w;
		w = next;
	}
	for (size_t i = 0; i < j->n_dependents; i++) {
		struct job *d = j->dependents[i];
		/* d no longer waits for j: drop j from its list, as j will be
		 * freed by the reaper while d may still be promoted. */
		for (size_t k = 0; k < d->n_dep_list; k++)
			if (d->deps[k] == j) {
				d->deps[k] = d->deps[--d->n_dep_list];
				break;
			}
		if (d->state != WAITING)
			continue;
		if (rc) {
			if (d->prio == P_PREFETCH)
				s->backlog--;
			/* The dependent cannot be right without this one. */
			finish(s, d, rc, answer);
			continue;
		}
		if (--d->n_deps == 0) {
			d->state = QUEUED;
			q_push(&s->runq[d->prio], d);
			pthread_cond_signal(&s->work);
		}
	}
	j->n_dependents = 0;
	j->n_dep_list = 0;
	if (rc) {
		atomic_fetch_add(&s->errors, 1);
		unhash(s, j); /* the next request retries */
		q_push(&s->done, j);
		j->reaping = true; /* freed by the reaper, no flush needed */
	} else {
		q_push(&s->done, j);
	}
}

static void answer_waiters(struct vz_service *s, struct waiter *w, int rc,
			   uint64_t size, double t0)
{
	while (w) {
		struct waiter *next = w->next;
		w->cb(w->ud, rc, size);
		free(w);
		w = next;
	}
	record_latency(s, t0);
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	struct vz_service *s = wk->s;
	char name[16];

	snprintf(name, sizeof name, "vz-render-%d", wk->idx);
	pthread_setname_np(pthread_self(), name);
	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct job *j;
		struct waiter *answer = NULL;
		uint64_t size = 0;
		int rc;

		while (!s->stopping && !s->runq[P_DEMAND].n &&
		       !s->runq[P_PREFETCH].n)
			pthread_cond_wait(&s->work, &s->lock);
		if (s->stopping)
			break;
		j = q_pop(&s->runq[P_DEMAND]);
		if (!j)
			j = q_pop(&s->runq[P_PREFETCH]);
		if (j->prio == P_PREFETCH)
			s->backlog--;
		j->state = RUNNING;
		s->running++;
		pthread_mutex_unlock(&s->lock);

		rc = run_job(s, wk, j);
		atomic_fetch_add(&s->renders, 1);
		if (rc) {
			vz_log(VZ_LOG_ERR, "%s %u/%u/%u%s: %s", kind_name(j->kind),
			       j->key.z, j->key.x, j->key.y,
			       j->kind == J_PNG ? " png" : "",
			       vz_err_msg()[0] ? vz_err_msg() : vz_strerror(rc));
			rc = rc == -ENOMEM ? -ENOMEM : -EIO;
		}
		size = j->data.len;

		pthread_mutex_lock(&s->lock);
		s->running--;
		finish(s, j, rc, &answer);
		pthread_cond_broadcast(&s->idle);
		if (answer) {
			double t0 = j->t_queued;
			pthread_mutex_unlock(&s->lock);
			answer_waiters(s, answer, rc, size, t0);
			pthread_mutex_lock(&s->lock);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- reaper: finished jobs leave memory once committed ------------------ */

static void *reaper_main(void *arg)
{
	struct vz_service *s = arg;
	struct queue batch;
	bool stop = false;

	pthread_setname_np(pthread_self(), "vz-reaper");
	while (!stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&s->lock);
		if (!s->stopping && s->done.n < 64)
			pthread_cond_timedwait(&s->idle, &s->lock, &ts);
		stop = s->stopping;
		batch = s->done;
		memset(&s->done, 0, sizeof s->done);
		pthread_mutex_unlock(&s->lock);
		if (!batch.n)
			continue;
		/* Everything these jobs queued is committed after this.  A
		 * failed writer stays failed (e.g. disk full): say it once. */
		if (vz_writer_flush(s->b->wr) && !s->commit_failed) {
			s->commit_failed = true;
			vz_log(VZ_LOG_ERR,
			       "cache commit failed: %s; serving what is "
			       "cached, new tiles fail until a restart",
			       vz_err_msg());
		}
		pthread_mutex_lock(&s->lock);
		while (batch.head) {
			struct job *j = q_pop(&batch);
			if (j->refs > 0 || j->n_dependents || j->waiters) {
				q_push(&s->done, j); /* still in use */
				continue;
			}
			if (!j->reaping)
				unhash(s, j);
			job_free(j);
		}
		pthread_cond_broadcast(&s->idle); /* the feeder waits for 0 */
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

/* ---- staging and prefetch ----------------------------------------------- */

static void *stager_main(void *arg)
{
	struct vz_service *s = arg;
	int rc;

	pthread_setname_np(pthread_self(), "vz-stage");
	rc = vz_builder_stage(s->b);
	if (rc == VZ_E_INPUT && s->b->partial) {
		vz_log(VZ_LOG_WARN, "%s", vz_err_msg());
		rc = 0;
	} else if (rc) {
		vz_log(VZ_LOG_ERR, "staging failed: %s",
		       vz_err_msg()[0] ? vz_err_msg() : vz_strerror(rc));
	}
	pthread_mutex_lock(&s->lock);
	for (int z = s->c->z_min; z <= s->c->z_max && !rc; z++) {
		const struct vz_level *l = &s->b->level[z];
		uint64_t n = 0;
		for (size_t i = 0; i < l->n; i++)
			n += band_cached(s, &l->k[i]);
		s->level_done[z] = n;
	}
	s->index_rc = rc;
	s->indexed = true;
	pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Queue prefetch work without letting the backlog grow past a bound. */
static bool feed(struct vz_service *s, enum job_kind kind,
		 const struct vz_tile_key *k, int stat)
{
	bool created;

	pthread_mutex_lock(&s->lock);
	while (!s->stopping && s->backlog >= (size_t)(8 * s->n_workers))
		pthread_cond_wait(&s->idle, &s->lock);
	/* A demand job may have made it meanwhile (and been reaped: jobs
	 * leave the table only once committed, so this check is exact). */
	if (!s->stopping &&
	    !(kind == J_BAND && !find_job(s, kind, k, stat) &&
	      band_cached(s, k)))
		get_job(s, kind, k, stat, P_PREFETCH, &created);
	pthread_mutex_unlock(&s->lock);
	return !s->stopping;
}

static void *feeder_main(void *arg)
{
	struct vz_service *s = arg;
	const struct vz_conf *c = s->c;

	pthread_setname_np(pthread_self(), "vz-prefetch");
	if (vz_service_wait_index(s))
		goto out;
	/* Deepest zoom first; a level's zoom-range PNGs after its bands. */
	for (int z = c->z_max; z >= c->z_min; z--) {
		const struct vz_level *l = &s->b->level[z];
		for (size_t i = 0; i < l->n; i++) {
			if (band_cached(s, &l->k[i]))
				continue;
			if (!feed(s, J_BAND, &l->k[i], 0))
				goto out;
		}
		for (size_t st = 0; st < c->n_stats; st++) {
			if (!vz_builder_zoom_stat(s->b, (int)st, z))
				continue;
			for (size_t i = 0; i < l->n; i++) {
				uint64_t len;
				if (file_cached(s, J_PNG, &l->k[i], (int)st,
						&len))
					continue;
				if (!feed(s, J_PNG, &l->k[i], (int)st))
					goto out;
			}
		}
	}
	/* Wait until every job is done and committed (reaped), so that
	 * "prefetching": false means the cache holds the whole pyramid. */
	pthread_mutex_lock(&s->lock);
	while (!s->stopping &&
	       (s->backlog > 0 || s->running > 0 || s->n_jobs > 0))
		pthread_cond_wait(&s->idle, &s->lock);
	pthread_mutex_unlock(&s->lock);
	if (!s->stopping)
		vz_log(VZ_LOG_INFO, "prefetch complete");
out:
	pthread_mutex_lock(&s->lock);
	s->prefetching = false;
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- public ------------------------------------------------------------- */

int vz_service_start(struct vz_builder *b, const struct vz_service_opts *o,
		     struct vz_service **out)
{
	struct vz_service *s;
	sigset_t block, old;
	int rc = 0;

	*out = NULL;
	if (!b->wr)
		return -EROFS;
	s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->b = b;
	s->c = b->c;
	s->n_workers = o->workers > 0 ? o->workers : b->workers;
	s->prefetch = o->prefetch;
	s->n_buckets = 1024;
	s->hash = calloc(s->n_buckets, sizeof *s->hash);
	s->workers = calloc((size_t)s->n_workers, sizeof *s->workers);
	if (!s->hash || !s->workers) {
		free(s->hash);
		free(s->workers);
		free(s);
		return -ENOMEM;
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->csv_lock, NULL);
	pthread_cond_init(&s->work, NULL);
	pthread_cond_init(&s->idle, NULL);
	s->t_start = vz_now();

	/* Render threads never take termination signals (style 22). */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (int i = 0; i < s->n_workers && !rc; i++) {
		struct worker *wk = calloc(1, sizeof *wk);
		if (!wk) {
			rc = -ENOMEM;
			break;
		}
		wk->s = s;
		wk->idx = i;
		rc = vz_builder_wctx_new(b, &wk->w);
		if (!rc)
			rc = -pthread_create(&wk->thread, NULL, worker_main,
					     wk);
		if (rc) {
			vz_wctx_free(wk->w);
			free(wk);
			break;
		}
		s->workers[i] = wk;
	}
	if (!rc) {
		rc = -pthread_create(&s->stager, NULL, stager_main, s);
		s->have_stager = rc == 0;
	}
	if (!rc) {
		rc = -pthread_create(&s->reaper, NULL, reaper_main, s);
		s->have_reaper = rc == 0;
	}
	if (!rc && s->prefetch) {
		s->prefetching = true;
		rc = -pthread_create(&s->feeder, NULL, feeder_main, s);
		s->have_feeder = rc == 0;
		if (rc)
			s->prefetching = false;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		vz_service_stop(s);
		return rc;
	}
	*out = s;
	return 0;
}

void vz_service_stop(struct vz_service *s)
{
	struct waiter *answer = NULL;

	if (!s)
		return;
	/* Interrupt a staging run still in progress (the builder's pool
	 * watches this flag). */
	if (s->b->o.cancel)
		__atomic_store_n(s->b->o.cancel, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->work);
	pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
	if (s->have_feeder)
		pthread_join(s->feeder, NULL);
	for (int i = 0; i < s->n_workers; i++) {
		struct worker *wk = s->workers[i];
		if (!wk)
			continue;
		pthread_join(wk->thread, NULL);
		vz_wctx_free(wk->w);
		free(wk);
	}
	if (s->have_stager)
		pthread_join(s->stager, NULL);
	if (s->have_reaper)
		pthread_join(s->reaper, NULL);
	/* Answer whoever still waits; free every job. */
	for (size_t i = 0; i < s->n_buckets; i++) {
		struct job *j = s->hash[i], *next;
		for (; j; j = next) {
			struct waiter *w = j->waiters;
			next = j->hnext;
			while (w) {
				struct waiter *wn = w->next;
				w->next = answer;
				answer = w;
				w = wn;
			}
			if (j->state == DONE || j->state == FAILED) {
				/* also on the done list: freed below */
				j->reaping = true;
				continue;
			}
			job_free(j);
		}
	}
	while (s->done.head)
		job_free(q_pop(&s->done));
	while (answer) {
		struct waiter *next = answer->next;
		answer->cb(answer->ud, -ESHUTDOWN, 0);
		free(answer);
		answer = next;
	}
	if (s->b->wr && vz_writer_flush(s->b->wr))
		vz_log(VZ_LOG_ERR, "cache commit failed: %s", vz_err_msg());
	free(s->hash);
	free(s->workers);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->csv_lock);
	pthread_cond_destroy(&s->work);
	pthread_cond_destroy(&s->idle);
	free(s);
}

int vz_service_wait_index(struct vz_service *s)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	while (!s->indexed && !s->stopping)
		pthread_cond_wait(&s->idle, &s->lock);
	rc = s->indexed ? s->index_rc : -ESHUTDOWN;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void vz_service_level(struct vz_service *s, int z,
		      const struct vz_tile_key **keys, size_t *n)
{
	*keys = NULL;
	*n = 0;
	if (vz_service_wait_index(s) || z < s->c->z_min || z > s->c->z_max)
		return;
	*keys = s->b->level[z].k;
	*n = s->b->level[z].n;
}

bool vz_service_has_tile(struct vz_service *s, const struct vz_tile_key *k)
{
	return vz_service_wait_index(s) == 0 && vz_builder_in_index(s->b, k);
}

static enum job_kind ref_kind(const struct vz_tile_ref *r)
{
	return r->kind == VZ_KIND_PNG	  ? J_PNG
	       : r->kind == VZ_KIND_GEOTIFF ? J_GTIFF
					    : J_GPKG;
}

void vz_service_request(struct vz_service *s, const struct vz_tile_ref *r,
			vz_ready_fn cb, void *ud)
{
	enum job_kind kind = ref_kind(r);
	int stat = kind == J_PNG ? r->stat : 0;
	struct waiter *w;
	struct job *j;
	uint64_t len;
	bool created;
	int rc;

	atomic_fetch_add(&s->requests, 1);
	rc = vz_service_wait_index(s);
	if (rc) {
		cb(ud, rc == -ESHUTDOWN ? rc : -EIO, 0);
		return;
	}
	if (!vz_builder_in_index(s->b, &r->key) ||
	    (kind == J_GPKG && r->key.z != s->c->z_max) ||
	    (kind == J_PNG && (stat < 0 || (size_t)stat >= s->c->n_stats))) {
		cb(ud, -ENOENT, 0);
		return;
	}
	if (file_cached(s, kind, &r->key, stat, &len)) {
		atomic_fetch_add(&s->hits, 1);
		cb(ud, 0, len);
		return;
	}
	w = calloc(1, sizeof *w);
	if (!w) {
		cb(ud, -ENOMEM, 0);
		return;
	}
	w->cb = cb;
	w->ud = ud;
	pthread_mutex_lock(&s->lock);
	if (s->stopping) {
		pthread_mutex_unlock(&s->lock);
		free(w);
		cb(ud, -ESHUTDOWN, 0);
		return;
	}
	j = get_job(s, kind, &r->key, stat, P_DEMAND, &created);
	if (j && j->state == DONE) {
		/* finished but not yet reaped: its bytes are in memory */
		len = j->data.len;
		pthread_mutex_unlock(&s->lock);
		free(w);
		atomic_fetch_add(&s->hits, 1);
		cb(ud, 0, len);
		return;
	}
	if (!j || j->state == FAILED) {
		rc = j ? j->rc : -ENOMEM;
		pthread_mutex_unlock(&s->lock);
		free(w);
		cb(ud, rc ? rc : -EIO, 0);
		return;
	}
	atomic_fetch_add(&s->misses, 1);
	if (!created)
		atomic_fetch_add(&s->shared, 1);
	w->next = j->waiters;
	j->waiters = w;
	pthread_mutex_unlock(&s->lock);
}

struct slice_ud {
	uint64_t off;
	size_t len;
	struct vz_buf *out;
	int rc;
};

static int slice_cb(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		    size_t vl)
{
	struct slice_ud *sl = ud;
	(void)k;
	if (kl != VZ_KEY_TILE_LEN + 1)
		return 1;
	sl->rc = 0;
	if (sl->off < vl) {
		size_t n = vl - sl->off < sl->len ? vl - sl->off : sl->len;
		sl->rc = vz_buf_append(sl->out, v + sl->off, n);
	}
	return 1;
}

/* A GeoTIFF that could not be cached (disk full): encode it again from
 * the cached bands for this read. */
static int read_uncached_geotiff(struct vz_service *s,
				 const struct vz_tile_ref *r, uint64_t off,
				 size_t len, struct vz_buf *out)
{
	uint8_t key[VZ_KEY_TILE_LEN];
	struct vz_buf enc = {0}, tif = {0};
	double *bands = malloc(s->b->tile_bytes);
	int rc = bands ? 0 : -ENOMEM;

	vz_key_tile(key, &r->key);
	if (!rc)
		rc = vz_cache_get(s->b->cache, VZ_DB_BAND, key, sizeof key,
				  &enc);
	if (!rc)
		rc = vz_bands_decode(enc.data, enc.len, bands,
				     s->b->plane * s->c->n_stats);
	if (!rc)
		rc = vz_geotiff_encode(s->c, &r->key, bands, &tif);
	if (!rc && off < tif.len)
		rc = vz_buf_append(out, tif.data + off,
				   tif.len - off < len ? tif.len - off : len);
	vz_buf_free(&enc);
	vz_buf_free(&tif);
	free(bands);
	return rc;
}

int vz_service_read(struct vz_service *s, const struct vz_tile_ref *r,
		    uint64_t off, size_t len, struct vz_buf *out)
{
	enum job_kind kind = ref_kind(r);
	int stat = kind == J_PNG ? r->stat : 0;
	uint8_t key[VZ_KEY_TILE_LEN + 1];
	struct slice_ud sl = {off, len, out, -ENOENT};
	struct job *j;

	vz_buf_reset(out);
	/* A job not yet reaped may hold bytes the cache has not committed. */
	pthread_mutex_lock(&s->lock);
	j = find_job(s, kind, &r->key, stat);
	if (j && j->state == DONE) {
		int rc = 0;
		if (off < j->data.len) {
			size_t n = j->data.len - off < len ? j->data.len - off
							   : len;
			rc = vz_buf_append(out, j->data.data + off, n);
		}
		pthread_mutex_unlock(&s->lock);
		return rc;
	}
	pthread_mutex_unlock(&s->lock);
	/* Copy just the slice, inside one read transaction. */
	tile_key(key, &r->key, tile_byte(kind, stat));
	vz_cache_scan(s->b->cache, VZ_DB_TILE, key, sizeof key, slice_cb, &sl);
	if (sl.rc == -ENOENT && kind == J_GTIFF)
		return read_uncached_geotiff(s, r, off, len, out);
	return sl.rc;
}

int vz_service_csv(struct vz_service *s, char which, struct vz_buf *out)
{
	int rc = vz_service_wait_index(s);

	if (rc)
		return rc;
	pthread_mutex_lock(&s->csv_lock);
	vz_buf_reset(out);
	/* Commit what finished jobs queued, so the CSV covers every tile
	 * counted as rendered (the snapshot is keyed by that count). */
	rc = s->b->wr ? vz_writer_flush(s->b->wr) : 0;
	if (rc)
		rc = 0; /* a full disk: list what is committed */
	rc = which == 'r' ? vz_builder_rasters_csv(s->b, out)
			  : vz_builder_staging_csv(s->b, out);
	pthread_mutex_unlock(&s->csv_lock);
	return rc;
}

void vz_service_get_stats(struct vz_service *s, struct vz_service_stats *out)
{
	memset(out, 0, sizeof *out);
	out->requests = atomic_load(&s->requests);
	out->hits = atomic_load(&s->hits);
	out->misses = atomic_load(&s->misses);
	out->shared = atomic_load(&s->shared);
	out->renders = atomic_load(&s->renders);
	out->tiles_rendered = atomic_load(&s->tiles);
	out->errors = atomic_load(&s->errors);
	pthread_mutex_lock(&s->lock);
	out->queued_demand = s->runq[P_DEMAND].n;
	out->queued_prefetch = s->runq[P_PREFETCH].n;
	out->running = (uint64_t)s->running;
	out->waiting = s->n_jobs;
	out->indexed = s->indexed;
	out->prefetching = s->prefetching;
	out->index_rc = s->index_rc;
	pthread_mutex_unlock(&s->lock);
}

int vz_service_status_json(struct vz_service *s, struct vz_buf *out)
{
	struct vz_service_stats st;
	uint64_t file_bytes = 0, map_bytes = 0, n, hist[12];
	uint64_t done[VZ_MAX_ZOOM + 1];
	char tmp[512];
	int rc = 0;

	vz_service_get_stats(s, &st);
	pthread_mutex_lock(&s->lock);
	memcpy(hist, s->lat_hist, sizeof hist);
	memcpy(done, s->level_done, sizeof done);
	pthread_mutex_unlock(&s->lock);
	vz_cache_size(s->b->cache, &file_bytes, &map_bytes);
	n = atomic_load(&s->lat_n);
	vz_buf_reset(out);
#define EMIT(...)                                                              \
	do {                                                                   \
		snprintf(tmp, sizeof tmp, __VA_ARGS__);                        \
		if (!rc)                                                       \
			rc = vz_buf_append(out, tmp, strlen(tmp));             \
	} while (0)
	EMIT("{\n  \"uptime_s\": %.1f,\n  \"indexed\": %s,\n"
	     "  \"prefetching\": %s,\n  \"workers\": %d,\n",
	     vz_now() - s->t_start, st.indexed ? "true" : "false",
	     st.prefetching ? "true" : "false", s->n_workers);
	EMIT("  \"requests\": %" PRIu64 ",\n  \"hits\": %" PRIu64
	     ",\n  \"misses\": %" PRIu64 ",\n  \"shared\": %" PRIu64
	     ",\n  \"renders\": %" PRIu64 ",\n  \"tiles_rendered\": %" PRIu64
	     ",\n  \"errors\": %" PRIu64 ",\n",
	     st.requests, st.hits, st.misses, st.shared, st.renders,
	     st.tiles_rendered, st.errors);
	EMIT("  \"queue\": {\"demand\": %" PRIu64 ", \"prefetch\": %" PRIu64
	     ", \"running\": %" PRIu64 ", \"jobs\": %" PRIu64 "},\n",
	     st.queued_demand, st.queued_prefetch, st.running, st.waiting);
	EMIT("  \"latency_ms\": {\"count\": %" PRIu64 ", \"mean\": %.3f, "
	     "\"max\": %.3f, \"buckets\": {",
	     n, n ? atomic_load(&s->lat_sum_us) / 1e3 / (double)n : 0.0,
	     atomic_load(&s->lat_max_us) / 1e3);
	for (size_t i = 0; i < VZ_ARRAY_SIZE(lat_bounds_ms); i++)
		EMIT("%s\"le_%g\": %" PRIu64, i ? ", " : "", lat_bounds_ms[i],
		     hist[i]);
	EMIT("}},\n  \"cache_bytes\": %" PRIu64 ",\n  \"zooms\": [",
	     file_bytes);
	for (int z = s->c->z_max; z >= s->c->z_min; z--)
		EMIT("%s{\"z\": %d, \"tiles\": %zu, \"done\": %" PRIu64 "}",
		     z == s->c->z_max ? "" : ", ", z,
		     st.indexed ? s->b->level[z].n : (size_t)0, done[z]);
	EMIT("]\n}\n");
#undef EMIT
	return rc;
}

int vz_service_prometheus(struct vz_service *s, struct vz_buf *out)
{
	struct vz_service_stats st;
	uint64_t file_bytes = 0, hist[12], cum = 0, n;
	uint64_t done[VZ_MAX_ZOOM + 1];
	char tmp[256];
	int rc = 0;

	vz_service_get_stats(s, &st);
	pthread_mutex_lock(&s->lock);
	memcpy(hist, s->lat_hist, sizeof hist);
	memcpy(done, s->level_done, sizeof done);
	pthread_mutex_unlock(&s->lock);
	vz_cache_size(s->b->cache, &file_bytes, NULL);
	n = atomic_load(&s->lat_n);
	vz_buf_reset(out);
#define EMIT(...)                                                              \
	do {                                                                   \
		snprintf(tmp, sizeof tmp, __VA_ARGS__);                        \
		if (!rc)                                                       \
			rc = vz_buf_append(out, tmp, strlen(tmp));             \
	} while (0)
#define COUNTER(name, help, v)                                                 \
	EMIT("# HELP vizfs_" name " " help "\n# TYPE vizfs_" name               \
	     " counter\nvizfs_" name " %" PRIu64 "\n",                         \
	     (uint64_t)(v))
#define GAUGE(name, help, v)                                                   \
	EMIT("# HELP vizfs_" name " " help "\n# TYPE vizfs_" name               \
	     " gauge\nvizfs_" name " %" PRIu64 "\n",                           \
	     (uint64_t)(v))
	COUNTER("requests_total", "Files asked for through the mount.",
		st.requests);
	COUNTER("cache_hits_total", "Requests answered from the cache.",
		st.hits);
	COUNTER("cache_misses_total", "Requests that waited for a render.",
		st.misses);
	COUNTER("shared_waits_total",
		"Misses that joined a render already queued (single flight).",
		st.shared);
	COUNTER("renders_total", "Jobs run (rasters, parents, PNGs, ...).",
		st.renders);
	COUNTER("tiles_rendered_total", "Rasters and parents computed.",
		st.tiles_rendered);
	COUNTER("errors_total", "Failed jobs.", st.errors);
	GAUGE("queue_demand", "Demand jobs queued.", st.queued_demand);
	GAUGE("queue_prefetch", "Prefetch jobs queued.", st.queued_prefetch);
	GAUGE("jobs_running", "Jobs being run.", st.running);
	GAUGE("indexed", "1 once staging and the tile index are done.",
	      st.indexed);
	GAUGE("prefetching", "1 while the prefetcher works.", st.prefetching);
	GAUGE("cache_bytes", "Size of the LMDB data file.", file_bytes);
	EMIT("# HELP vizfs_tiles Tiles of the pyramid per zoom.\n"
	     "# TYPE vizfs_tiles gauge\n");
	for (int z = s->c->z_min; z <= s->c->z_max && st.indexed; z++)
		EMIT("vizfs_tiles{z=\"%d\"} %zu\n", z, s->b->level[z].n);
	EMIT("# HELP vizfs_tiles_done Tiles rendered per zoom.\n"
	     "# TYPE vizfs_tiles_done gauge\n");
	for (int z = s->c->z_min; z <= s->c->z_max && st.indexed; z++)
		EMIT("vizfs_tiles_done{z=\"%d\"} %" PRIu64 "\n", z, done[z]);
	EMIT("# HELP vizfs_miss_latency_seconds Time from a miss to its "
	     "answer.\n# TYPE vizfs_miss_latency_seconds histogram\n");
	for (size_t i = 0; i < VZ_ARRAY_SIZE(lat_bounds_ms); i++) {
		cum += hist[i];
		EMIT("vizfs_miss_latency_seconds_bucket{le=\"%g\"} %" PRIu64
		     "\n",
		     lat_bounds_ms[i] / 1e3, cum);
	}
	EMIT("vizfs_miss_latency_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n",
	     n);
	EMIT("vizfs_miss_latency_seconds_sum %.6f\n",
	     atomic_load(&s->lat_sum_us) / 1e6);
	EMIT("vizfs_miss_latency_seconds_count %" PRIu64 "\n", n);
#undef GAUGE
#undef COUNTER
#undef EMIT
	return rc;
}
