/* SPDX-License-Identifier: Apache-2.0 */
/* LMDB-backed cache: environment, short read txns, batched writer, bands. */
#include "vizfs/cache.h"

#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAP ((uint64_t)1 << 30)
#define MAX_READERS 512
#define POOL_MAX 32    /* reset read txns kept for mdb_txn_renew */
#define WRITE_TRIES 64 /* map growths/adoptions before giving up */
#define MIB ((size_t)1 << 20)
#define DRAIN_NS 20000000L /* a grower waits this long for readers, */
#define RETRY_US 2000	   /* then lets them in for this long */

#define BATCH_OPS 4096		 /* commit when this many ops are queued */
#define BATCH_BYTES (64 * MIB)	 /* or this many bytes */
#define BATCH_AGE_NS 100000000L	 /* or the oldest op is 100 ms old */
#define TAKE_OPS (4 * BATCH_OPS) /* most ops in one commit */
#define QUEUE_CAP (256 * MIB)	 /* vz_writer_put blocks above this */

static const char *const db_names[VZ_DB_COUNT] = {
	[VZ_DB_META] = "meta",	 [VZ_DB_STAGED] = "staged",
	[VZ_DB_INDEX] = "index", [VZ_DB_BAND] = "band",
	[VZ_DB_TILE] = "tile",	 [VZ_DB_SUMMARY] = "summary",
};

struct vz_cache {
	MDB_env *env;
	char *dir;
	bool read_only;
	MDB_dbi dbi[VZ_DB_COUNT];
	bool have[VZ_DB_COUNT]; /* false: absent in a read-only env */

	/*
	 * The gate: mdb_env_set_mapsize() needs every transaction of this
	 * process closed, so each txn "enters" for its short life and a
	 * grower waits for active == 0 while new entrants wait for it.
	 */
	pthread_mutex_t gate; /* guards: active, growing, map_size, pool */
	pthread_cond_t gate_cond;
	int active; /* txns (read or write) in flight */
	bool growing;
	uint64_t map_size;
	MDB_txn *pool[POOL_MAX]; /* reset read txns, renewed on reuse */
	int n_pool;

	dev_t dev; /* the directory, to refuse a second open */
	ino_t ino;
	struct vz_cache *next_open;
};

/*
 * LMDB forbids opening one environment twice in a process (closing either
 * drops the other's fcntl locks), so opened directories are registered.
 */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER; /* guards:
								 open_list */
static struct vz_cache *open_list;
static pthread_once_t open_once = PTHREAD_ONCE_INIT;

/* A forked child must not use its parent's environments (LMDB rule) but
 * may open its own, including the same directories. */
static void open_after_fork(void)
{
	pthread_mutex_init(&open_lock, NULL);
	open_list = NULL;
}

static void open_init(void)
{
	pthread_atfork(NULL, NULL, open_after_fork);
}

static int register_open(struct vz_cache *c)
{
	struct vz_cache *o;
	struct stat st;
	int rc = 0;

	pthread_once(&open_once, open_init);
	if (stat(c->dir, &st)) {
		rc = -errno;
		vz_err_set("cache %s: %s", c->dir, strerror(errno));
		return rc;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	pthread_mutex_lock(&open_lock);
	for (o = open_list; o; o = o->next_open)
		if (o->dev == c->dev && o->ino == c->ino)
			break;
	if (o) {
		vz_err_set("cache %s: already open in this process (as %s)",
			   c->dir, o->dir);
		rc = -EBUSY;
	} else {
		c->next_open = open_list;
		open_list = c;
	}
	pthread_mutex_unlock(&open_lock);
	return rc;
}

static void unregister_open(struct vz_cache *c)
{
	struct vz_cache **pp;

	pthread_mutex_lock(&open_lock);
	for (pp = &open_list; *pp; pp = &(*pp)->next_open)
		if (*pp == c) {
			*pp = c->next_open;
			break;
		}
	pthread_mutex_unlock(&open_lock);
}

/*
 * Transactions this thread holds open, per cache.  A thread that already
 * holds one may enter again while a growth is pending (the grower waits for
 * it anyway); blocking it would deadlock nested reads.  More distinct caches
 * than slots fall back to "holds something everywhere", which is safe.
 */
#define HELD_SLOTS 8
static _Thread_local struct {
	const struct vz_cache *c;
	int depth;
} held_tab[HELD_SLOTS];
static _Thread_local int held_overflow;

static int held(const struct vz_cache *c)
{
	int i;

	if (held_overflow)
		return held_overflow;
	for (i = 0; i < HELD_SLOTS; i++)
		if (held_tab[i].c == c)
			return held_tab[i].depth;
	return 0;
}

static void held_add(const struct vz_cache *c, int d)
{
	int i, free_slot = -1;

	for (i = 0; i < HELD_SLOTS; i++) {
		if (held_tab[i].c == c) {
			held_tab[i].depth += d;
			if (held_tab[i].depth == 0)
				held_tab[i].c = NULL;
			return;
		}
		if (!held_tab[i].c && free_slot < 0)
			free_slot = i;
	}
	if (d > 0 && free_slot >= 0) {
		held_tab[free_slot].c = c;
		held_tab[free_slot].depth = d;
	} else {
		held_overflow += d;
	}
}

/* Errors */

static int db_check(const struct vz_cache *c, enum vz_db db)
{
	if ((unsigned)db >= VZ_DB_COUNT) {
		vz_err_set("cache %s: no database #%d", c->dir, (int)db);
		return -EINVAL;
	}
	return 0;
}

static int key_check(const struct vz_cache *c, const void *key, size_t klen)
{
	if (!key || klen == 0 || klen > VZ_KEY_MAX) {
		vz_err_set("cache %s: invalid key length %zu (1..%d)", c->dir,
			   klen, VZ_KEY_MAX);
		return -EINVAL;
	}
	return 0;
}

/*
 * A commit that runs out of disk usually fails with a short write, which
 * LMDB reports as EIO; look at the disk to say what really happened.
 */
static const char *why_full(const struct vz_cache *c, int rc, uint64_t need,
			    char *buf, size_t size)
{
	struct statvfs vfs;
	struct rlimit rl;
	struct stat st;
	int fd;

	if (rc != EIO && rc != ENOSPC && rc != EDQUOT && rc != EFBIG)
		return NULL;
	if (statvfs(c->dir, &vfs) == 0 &&
	    (uint64_t)vfs.f_bavail * vfs.f_frsize < need + 2 * MIB) {
		snprintf(buf, size, "disk full, %llu bytes free",
			 (unsigned long long)vfs.f_bavail * vfs.f_frsize);
		return buf;
	}
	if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    mdb_env_get_fd(c->env, &fd) == 0 && fstat(fd, &st) == 0 &&
	    (uint64_t)st.st_size + need >= (uint64_t)rl.rlim_cur) {
		snprintf(buf, size, "file size limit of %llu bytes reached",
			 (unsigned long long)rl.rlim_cur);
		return buf;
	}
	if (rc == ENOSPC || rc == EDQUOT || rc == EFBIG) {
		snprintf(buf, size, "disk full");
		return buf;
	}
	return NULL;
}

/** Record an LMDB failure of @p what; @return VZ_E_CACHE. */
static int mdb_fail_need(const struct vz_cache *c, int rc, const char *what,
			 uint64_t need)
{
	char why[96];

	if (why_full(c, rc, need, why, sizeof why))
		vz_err_set("cache %s is full (%s): %s: %s", c->dir, why, what,
			   mdb_strerror(rc));
	else if (rc == MDB_MAP_FULL)
		vz_err_set("cache %s is full (map could not grow): %s: %s",
			   c->dir, what, mdb_strerror(rc));
	else
		vz_err_set("cache %s: %s: %s", c->dir, what, mdb_strerror(rc));
	return VZ_E_CACHE;
}

static int mdb_fail(const struct vz_cache *c, int rc, const char *what)
{
	return mdb_fail_need(c, rc, what, 0);
}

/* The gate */

static void timespec_add_ns(struct timespec *t, long ns)
{
	t->tv_nsec += ns;
	while (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

static void gate_wait(struct vz_cache *c)
{
	if (!held(c))
		while (c->growing)
			pthread_cond_wait(&c->gate_cond, &c->gate);
}

static uint64_t gate_enter(struct vz_cache *c)
{
	uint64_t map;

	pthread_mutex_lock(&c->gate);
	gate_wait(c);
	c->active++;
	map = c->map_size;
	pthread_mutex_unlock(&c->gate);
	held_add(c, 1);
	return map;
}

static void gate_leave(struct vz_cache *c)
{
	pthread_mutex_lock(&c->gate);
	c->active--;
	if (c->active == 0 && c->growing)
		pthread_cond_broadcast(&c->gate_cond);
	pthread_mutex_unlock(&c->gate);
	held_add(c, -1);
}

static uint64_t env_map_size(MDB_env *env)
{
	MDB_envinfo info;

	if (mdb_env_info(env, &info))
		return 0;
	return info.me_mapsize;
}

/**
 * Resize the map to @p size bytes (0 = adopt the size another process
 * committed).  @p seen is the map size the caller failed with: when someone
 * else grew it meanwhile, there is nothing to do.  Call with no txn held.
 */
static int map_resize(struct vz_cache *c, uint64_t seen, uint64_t size)
{
	int rc = 0;

	if (held(c)) {
		vz_err_set("cache %s: cannot resize the map while this thread "
			   "holds a transaction",
			   c->dir);
		return VZ_E_CACHE;
	}
	pthread_mutex_lock(&c->gate);
	for (;;) {
		struct timespec dl;

		gate_wait(c);
		if (size && c->map_size > seen)
			goto out; /* another thread grew it */
		c->growing = true;
		clock_gettime(CLOCK_MONOTONIC, &dl);
		timespec_add_ns(&dl, DRAIN_NS);
		while (c->active > 0 &&
		       pthread_cond_timedwait(&c->gate_cond, &c->gate, &dl) !=
			       ETIMEDOUT)
			;
		if (c->active == 0)
			break;
		/*
		 * A long transaction (a scan, a stat) is still open: let the
		 * readers queued behind us in rather than stall them for its
		 * whole life, and try again shortly.
		 */
		c->growing = false;
		pthread_cond_broadcast(&c->gate_cond);
		pthread_mutex_unlock(&c->gate);
		usleep(RETRY_US);
		pthread_mutex_lock(&c->gate);
	}
	rc = mdb_env_set_mapsize(c->env, (size_t)size);
	if (rc) {
		/* a failed remap leaves no map: try to get the old one back */
		int rc2 = mdb_env_set_mapsize(c->env, (size_t)c->map_size);
		vz_err_set("cache %s is full: cannot grow the map to %llu "
			   "bytes: %s%s",
			   c->dir, (unsigned long long)size, mdb_strerror(rc),
			   rc2 ? " (map lost)" : "");
		rc = VZ_E_CACHE;
	}
	c->map_size = env_map_size(c->env);
	c->growing = false;
	pthread_cond_broadcast(&c->gate_cond);
out:
	pthread_mutex_unlock(&c->gate);
	return rc;
}

/** Grow after MDB_MAP_FULL: double, or more if @p need bytes require it. */
static int map_grow(struct vz_cache *c, uint64_t seen, uint64_t need)
{
	uint64_t size = seen * 2;

	if (size < seen + need + need / 4 + MIB)
		size = seen + need + need / 4 + MIB;
	size = (size + MIB - 1) / MIB * MIB;
	return map_resize(c, seen, size);
}

/* Read transactions */

static int read_begin(struct vz_cache *c, MDB_txn **out)
{
	int rc, tries;

	for (tries = 0; tries < WRITE_TRIES; tries++) {
		MDB_txn *t = NULL;
		uint64_t seen;

		pthread_mutex_lock(&c->gate);
		gate_wait(c);
		c->active++;
		seen = c->map_size;
		if (c->n_pool > 0)
			t = c->pool[--c->n_pool];
		pthread_mutex_unlock(&c->gate);
		held_add(c, 1);

		if (t) {
			rc = mdb_txn_renew(t);
			if (rc)
				mdb_txn_abort(t);
		} else {
			rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &t);
		}
		if (!rc) {
			*out = t;
			return 0;
		}
		gate_leave(c);
		if (rc != MDB_MAP_RESIZED)
			return mdb_fail(c, rc, "read transaction");
		rc = map_resize(c, seen, 0);
		if (rc)
			return rc;
	}
	return mdb_fail(c, MDB_MAP_RESIZED, "read transaction");
}

static void read_end(struct vz_cache *c, MDB_txn *t)
{
	bool kept = false;

	mdb_txn_reset(t);
	pthread_mutex_lock(&c->gate);
	if (c->n_pool < POOL_MAX) {
		c->pool[c->n_pool++] = t;
		kept = true;
	}
	c->active--;
	if (c->active == 0 && c->growing)
		pthread_cond_broadcast(&c->gate_cond);
	pthread_mutex_unlock(&c->gate);
	held_add(c, -1);
	if (!kept)
		mdb_txn_abort(t);
}

/* Write transactions */

typedef int (*write_fn)(struct vz_cache *c, MDB_txn *t, void *ud);

/**
 * Run @p fn in a write transaction and commit, growing the map on
 * MDB_MAP_FULL (by at least @p need bytes) and adopting a size grown by
 * another process on MDB_MAP_RESIZED; @p fn is rerun from scratch.
 */
static int write_txn(struct vz_cache *c, write_fn fn, void *ud, uint64_t need,
		     const char *what, int *mdb_rc)
{
	int rc = 0, tries;

	if (mdb_rc)
		*mdb_rc = 0;

	if (c->read_only) {
		vz_err_set("cache %s: %s: opened read-only", c->dir, what);
		return -EROFS;
	}
	for (tries = 0; tries < WRITE_TRIES; tries++) {
		MDB_txn *t;
		uint64_t seen = gate_enter(c);

		rc = mdb_txn_begin(c->env, NULL, 0, &t);
		if (!rc) {
			rc = fn(c, t, ud);
			if (rc)
				mdb_txn_abort(t);
			else
				rc = mdb_txn_commit(t);
		}
		gate_leave(c);
		if (mdb_rc)
			*mdb_rc = rc;
		if (rc == MDB_MAP_FULL)
			rc = map_grow(c, seen, need);
		else if (rc == MDB_MAP_RESIZED)
			rc = map_resize(c, seen, 0);
		else if (rc)
			return mdb_fail_need(c, rc, what, need);
		else
			return 0;
		if (rc)
			return rc;
	}
	return mdb_fail(c, MDB_MAP_FULL, what);
}

/* Keys */

size_t vz_key_tile(uint8_t *buf, const struct vz_tile_key *k)
{
	buf[0] = k->z;
	vz_put_be32(buf + 1, k->x);
	vz_put_be32(buf + 5, k->y);
	return VZ_KEY_TILE_LEN;
}

void vz_key_tile_parse(const uint8_t *buf, struct vz_tile_key *k)
{
	k->z = buf[0];
	k->x = vz_get_be32(buf + 1);
	k->y = vz_get_be32(buf + 5);
}

/* Environment */

static int mkdir_p(const char *dir)
{
	char *p, *s = strdup(dir);
	int rc = 0;

	if (!s)
		return -ENOMEM;
	for (p = s + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char ch = *p;
		*p = '\0';
		if (mkdir(s, 0775) && errno != EEXIST) {
			rc = -errno;
			vz_err_set("cache %s: mkdir %s: %s", dir, s,
				   strerror(errno));
			break;
		}
		*p = ch;
		if (!ch)
			break;
	}
	free(s);
	return rc;
}

/** LMDB failure at open: errno values stay -errno, the rest VZ_E_CACHE. */
static int open_fail(const char *dir, int rc, const char *what)
{
	vz_err_set("cache %s: %s: %s", dir, what, mdb_strerror(rc));
	return rc > 0 ? -rc : VZ_E_CACHE;
}

static int open_dbs(struct vz_cache *c)
{
	unsigned flags = c->read_only ? 0 : MDB_CREATE;
	MDB_txn *t;
	int rc, i;

	rc = mdb_txn_begin(c->env, NULL, c->read_only ? MDB_RDONLY : 0, &t);
	if (rc)
		return open_fail(c->dir, rc, "begin");
	for (i = 0; i < VZ_DB_COUNT; i++) {
		rc = mdb_dbi_open(t, db_names[i], flags, &c->dbi[i]);
		if (rc == MDB_NOTFOUND && c->read_only)
			continue;
		if (rc) {
			mdb_txn_abort(t);
			return open_fail(c->dir, rc, db_names[i]);
		}
		c->have[i] = true;
	}
	rc = mdb_txn_commit(t);
	if (rc)
		return open_fail(c->dir, rc, "open databases");
	return 0;
}

int vz_cache_open(const struct vz_cache_opts *o, struct vz_cache **out)
{
	struct vz_cache *c;
	pthread_condattr_t ca;
	uint64_t want;
	unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
	int rc, dead;

	*out = NULL;
	if (!o || !o->dir || !*o->dir) {
		vz_err_set("cache: no directory given");
		return -EINVAL;
	}
	want = o->map_size ? o->map_size : DEFAULT_MAP;
	if (want > SIZE_MAX) {
		vz_err_set("cache %s: map size %llu too large", o->dir,
			   (unsigned long long)want);
		return -EINVAL;
	}
	c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->gate, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->gate_cond, &ca);
	pthread_condattr_destroy(&ca);
	c->read_only = o->read_only;
	c->dir = strdup(o->dir);
	if (!c->dir) {
		rc = -ENOMEM;
		goto out_free;
	}

	if (o->read_only) {
		flags |= MDB_RDONLY;
	} else {
		rc = mkdir_p(o->dir);
		if (rc)
			goto out_free;
	}
	rc = register_open(c);
	if (rc)
		goto out_free;
	rc = mdb_env_create(&c->env);
	if (rc) {
		rc = open_fail(o->dir, rc, "create");
		c->env = NULL;
		goto out_free;
	}
	if ((rc = mdb_env_set_maxdbs(c->env, VZ_DB_COUNT + 4)) ||
	    (rc = mdb_env_set_maxreaders(c->env, MAX_READERS)) ||
	    (rc = mdb_env_set_mapsize(c->env, (size_t)want))) {
		rc = open_fail(o->dir, rc, "configure");
		goto out_close;
	}
	rc = mdb_env_open(c->env, o->dir, flags, 0664);
	if (rc) {
		rc = open_fail(o->dir, rc, "open");
		goto out_close;
	}
	/* Never shrink a map that an earlier run grew: adopt the on-disk
	 * size, then raise it to the requested one if that is larger. */
	rc = mdb_env_set_mapsize(c->env, 0);
	if (!rc && env_map_size(c->env) < want)
		rc = mdb_env_set_mapsize(c->env, (size_t)want);
	if (rc) {
		rc = open_fail(o->dir, rc, "set map size");
		goto out_close;
	}
	c->map_size = env_map_size(c->env);
	/* Free reader slots left behind by killed processes. */
	if (mdb_reader_check(c->env, &dead) == 0 && dead > 0)
		vz_log(VZ_LOG_INFO, "cache %s: cleared %d stale reader slots",
		       o->dir, dead);
	rc = open_dbs(c);
	if (rc)
		goto out_close;
	*out = c;
	return 0;

out_close:
	mdb_env_close(c->env);
	c->env = NULL;
out_free:
	vz_cache_close(c);
	return rc;
}

void vz_cache_close(struct vz_cache *c)
{
	if (!c)
		return;
	unregister_open(c);
	while (c->n_pool > 0)
		mdb_txn_abort(c->pool[--c->n_pool]);
	VZ_FREEF(mdb_env_close, c->env);
	pthread_cond_destroy(&c->gate_cond);
	pthread_mutex_destroy(&c->gate);
	free(c->dir);
	free(c);
}

/* Reads */

int vz_cache_get(struct vz_cache *c, enum vz_db db, const void *key,
		 size_t klen, struct vz_buf *out)
{
	MDB_txn *t;
	MDB_val k = {klen, (void *)key}, v;
	int rc;

	if ((rc = db_check(c, db)) || (rc = key_check(c, key, klen)))
		return rc;
	if (!c->have[db])
		return -ENOENT;
	rc = read_begin(c, &t);
	if (rc)
		return rc;
	rc = mdb_get(t, c->dbi[db], &k, &v);
	if (rc == 0) {
		vz_buf_reset(out);
		rc = vz_buf_append(out, v.mv_data, v.mv_size);
		if (rc)
			vz_err_set("cache %s: %zu bytes from %s: out of memory",
				   c->dir, v.mv_size, db_names[db]);
	} else if (rc == MDB_NOTFOUND) {
		rc = -ENOENT;
	} else {
		rc = mdb_fail(c, rc, db_names[db]);
	}
	read_end(c, t);
	return rc;
}

int vz_cache_has(struct vz_cache *c, enum vz_db db, const void *key,
		 size_t klen)
{
	MDB_txn *t;
	MDB_val k = {klen, (void *)key}, v;
	int rc;

	if ((rc = db_check(c, db)) || (rc = key_check(c, key, klen)))
		return rc;
	if (!c->have[db])
		return 0;
	rc = read_begin(c, &t);
	if (rc)
		return rc;
	rc = mdb_get(t, c->dbi[db], &k, &v);
	if (rc == 0)
		rc = 1;
	else if (rc == MDB_NOTFOUND)
		rc = 0;
	else
		rc = mdb_fail(c, rc, db_names[db]);
	read_end(c, t);
	return rc;
}

int vz_cache_scan(struct vz_cache *c, enum vz_db db, const void *prefix,
		  size_t plen, vz_scan_fn fn, void *ud)
{
	MDB_txn *t;
	MDB_cursor *cur;
	MDB_val k = {plen, (void *)prefix}, v;
	int rc;

	if ((rc = db_check(c, db)))
		return rc;
	if (plen > VZ_KEY_MAX || (plen && !prefix)) {
		vz_err_set("cache %s: invalid scan prefix length %zu", c->dir,
			   plen);
		return -EINVAL;
	}
	if (!c->have[db])
		return 0;
	rc = read_begin(c, &t);
	if (rc)
		return rc;
	rc = mdb_cursor_open(t, c->dbi[db], &cur);
	if (rc) {
		rc = mdb_fail(c, rc, db_names[db]);
		goto out;
	}
	rc = mdb_cursor_get(cur, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
	while (rc == 0) {
		if (plen &&
		    (k.mv_size < plen || memcmp(k.mv_data, prefix, plen)))
			break;
		rc = fn(ud, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
		if (rc)
			goto out_cursor;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	rc = (rc == 0 || rc == MDB_NOTFOUND) ? 0 :
					       mdb_fail(c, rc, db_names[db]);
out_cursor:
	mdb_cursor_close(cur);
out:
	read_end(c, t);
	return rc;
}

int vz_cache_stat(struct vz_cache *c, enum vz_db db, uint64_t *entries,
		  uint64_t *bytes)
{
	MDB_txn *t;
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t n = 0, b = 0;
	int rc;

	if (entries)
		*entries = 0;
	if (bytes)
		*bytes = 0;
	if ((rc = db_check(c, db)))
		return rc;
	if (!c->have[db])
		return 0;
	rc = read_begin(c, &t);
	if (rc)
		return rc;
	rc = mdb_cursor_open(t, c->dbi[db], &cur);
	if (rc) {
		rc = mdb_fail(c, rc, db_names[db]);
		goto out;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		n++;
		b += k.mv_size + v.mv_size;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND) {
		rc = 0;
		if (entries)
			*entries = n;
		if (bytes)
			*bytes = b;
	} else {
		rc = mdb_fail(c, rc, db_names[db]);
	}
out:
	read_end(c, t);
	return rc;
}

void vz_cache_size(struct vz_cache *c, uint64_t *file_bytes,
		   uint64_t *map_bytes)
{
	struct stat st;
	int fd = -1;

	if (file_bytes) {
		*file_bytes = 0;
		if (mdb_env_get_fd(c->env, &fd) == 0 && fstat(fd, &st) == 0)
			*file_bytes = (uint64_t)st.st_size;
	}
	if (map_bytes) {
		pthread_mutex_lock(&c->gate);
		*map_bytes = c->map_size;
		pthread_mutex_unlock(&c->gate);
	}
}

/* Synchronous writes */

struct apply_ctx {
	const struct vz_cache_op *ops;
	size_t n;
};

static int put_one(struct vz_cache *c, MDB_txn *t, enum vz_db db,
		   const void *key, size_t klen, const void *val, size_t vlen)
{
	MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
	int rc;

	if (!val) {
		rc = mdb_del(t, c->dbi[db], &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	return mdb_put(t, c->dbi[db], &k, &v, 0);
}

static int apply_fn(struct vz_cache *c, MDB_txn *t, void *ud)
{
	const struct apply_ctx *a = ud;
	size_t i;
	int rc;

	for (i = 0; i < a->n; i++) {
		const struct vz_cache_op *op = &a->ops[i];
		rc = put_one(c, t, op->db, op->key, op->klen, op->val,
			     op->vlen);
		if (rc)
			return rc;
	}
	return 0;
}

int vz_cache_apply(struct vz_cache *c, const struct vz_cache_op *ops, size_t n)
{
	struct apply_ctx a = {ops, n};
	uint64_t need = 0;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		if ((rc = db_check(c, ops[i].db)) ||
		    (rc = key_check(c, ops[i].key, ops[i].klen)))
			return rc;
		if (ops[i].val && ops[i].vlen > UINT32_MAX) {
			vz_err_set("cache %s: value of %zu bytes too large",
				   c->dir, ops[i].vlen);
			return -EINVAL;
		}
		need += ops[i].klen + (ops[i].val ? ops[i].vlen : 0) + 64;
	}
	if (n == 0)
		return 0;
	return write_txn(c, apply_fn, &a, need, "apply", NULL);
}

struct clear_ctx {
	const enum vz_db *dbs;
	size_t n;
};

static int clear_fn(struct vz_cache *c, MDB_txn *t, void *ud)
{
	const struct clear_ctx *a = ud;
	size_t i;
	int rc;

	for (i = 0; i < a->n; i++) {
		rc = mdb_drop(t, c->dbi[a->dbs[i]], 0);
		if (rc)
			return rc;
	}
	return 0;
}

int vz_cache_clear(struct vz_cache *c, const enum vz_db *dbs, size_t n)
{
	struct clear_ctx a = {dbs, n};
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		if ((rc = db_check(c, dbs[i])))
			return rc;
	if (n == 0)
		return 0;
	return write_txn(c, clear_fn, &a, 0, "clear", NULL);
}

/* The writer */

struct op {
	struct op *next;
	uint64_t seq; /* queue order */
	size_t vlen;
	uint32_t klen;
	uint8_t db;
	bool del;
	uint8_t data[]; /* key, then value */
};

struct vz_writer {
	struct vz_cache *c;
	pthread_t thread;

	pthread_mutex_t lock; /* guards: head, tail, n_queued, queued_bytes,
			       * first_at, enq_seq, done_seq, flush_seq,
			       * stop, err, errmsg */
	pthread_cond_t wake;  /* the writer waits here for work */
	pthread_cond_t done;  /* flushers and blocked putters wait here */
	struct op *head, *tail;
	size_t n_queued;
	size_t queued_bytes;
	struct timespec first_at; /* when the oldest queued op arrived */
	uint64_t enq_seq;	  /* seq of the last op queued */
	uint64_t done_seq;	  /* every op <= this is committed */
	uint64_t flush_seq;	  /* a flusher waits for this seq */
	bool stop;
	int err; /* sticky: first failed commit */
	char errmsg[512];
};

struct batch {
	struct op **ops;
	size_t n;
	uint64_t bytes;
};

static size_t op_bytes(const struct op *o)
{
	return sizeof *o + o->klen + o->vlen;
}

static void free_ops(struct op *o)
{
	while (o) {
		struct op *next = o->next;
		free(o);
		o = next;
	}
}

/* LMDB's default order (memcmp, shorter first), then queue order. */
static int op_cmp(const void *pa, const void *pb)
{
	const struct op *a = *(const struct op *const *)pa;
	const struct op *b = *(const struct op *const *)pb;
	size_t n = a->klen < b->klen ? a->klen : b->klen;
	int d;

	if (a->db != b->db)
		return a->db < b->db ? -1 : 1;
	d = memcmp(a->data, b->data, n);
	if (d)
		return d;
	if (a->klen != b->klen)
		return a->klen < b->klen ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int batch_fn(struct vz_cache *c, MDB_txn *t, void *ud)
{
	const struct batch *b = ud;
	size_t i;
	int rc;

	for (i = 0; i < b->n; i++) {
		const struct op *o = b->ops[i];
		rc = put_one(c, t, o->db, o->data, o->klen,
			     o->del ? NULL : o->data + o->klen, o->vlen);
		if (rc)
			return rc;
	}
	return 0;
}

/* Commit @p b (in queue order).  The puts are applied sorted by key (fast
 * LMDB inserts; equal keys keep queue order), but a batch too large for
 * one transaction is split in QUEUE order, so that a "done" marker queued
 * after its data is never committed before that data. */
static int commit_batch(struct vz_writer *w, struct batch *b)
{
	struct batch sorted = *b;
	int rc, mrc = 0;

	sorted.ops = malloc(b->n * sizeof *sorted.ops);
	if (!sorted.ops)
		return -ENOMEM;
	memcpy(sorted.ops, b->ops, b->n * sizeof *sorted.ops);
	qsort(sorted.ops, sorted.n, sizeof *sorted.ops, op_cmp);
	rc = write_txn(w->c, batch_fn, &sorted, b->bytes, "commit", &mrc);
	free(sorted.ops);
	/* Too many dirty pages for one txn: commit in halves, in order. */
	if (rc && mrc == MDB_TXN_FULL && b->n > 1) {
		struct batch lo = {b->ops, b->n / 2, b->bytes / 2};
		struct batch hi = {b->ops + b->n / 2, b->n - b->n / 2,
				   b->bytes / 2};
		rc = commit_batch(w, &lo);
		if (!rc)
			rc = commit_batch(w, &hi);
	}
	return rc;
}

static bool deadline_passed(const struct timespec *t0)
{
	struct timespec now;
	long ns;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (now.tv_sec - t0->tv_sec) * 1000000000L +
	     (now.tv_nsec - t0->tv_nsec);
	return ns >= BATCH_AGE_NS;
}

static bool batch_due(const struct vz_writer *w)
{
	return w->stop || w->flush_seq > w->done_seq ||
	       w->n_queued >= BATCH_OPS || w->queued_bytes >= BATCH_BYTES;
}

static void *writer_main(void *arg)
{
	struct vz_writer *w = arg;
	struct op **arr = NULL;
	size_t arr_cap = 0;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct batch b = {0};
		struct op *o, *first;
		uint64_t last_seq;
		int rc;

		while (!w->head && !w->stop)
			pthread_cond_wait(&w->wake, &w->lock);
		if (!w->head)
			break;
		while (!batch_due(w) && !deadline_passed(&w->first_at)) {
			struct timespec dl = w->first_at;
			timespec_add_ns(&dl, BATCH_AGE_NS);
			pthread_cond_timedwait(&w->wake, &w->lock, &dl);
		}

		/* Detach a prefix of the queue; commit it without the lock. */
		if (arr_cap < TAKE_OPS) {
			struct op **na = realloc(arr, TAKE_OPS * sizeof *na);
			if (na) {
				arr = na;
				arr_cap = TAKE_OPS;
			}
		}
		first = w->head;
		for (o = w->head; o && b.n < TAKE_OPS && b.n < arr_cap &&
				  (b.n == 0 || b.bytes < BATCH_BYTES);
		     o = o->next) {
			arr[b.n++] = o;
			b.bytes += op_bytes(o);
		}
		if (b.n == 0) {
			/* no memory for even one slot: fail loudly */
			w->err = -ENOMEM;
			snprintf(w->errmsg, sizeof w->errmsg,
				 "cache %s: writer out of memory", w->c->dir);
			goto fail;
		}
		b.ops = arr;
		last_seq = arr[b.n - 1]->seq;
		w->head = o;
		if (!o)
			w->tail = NULL;
		arr[b.n - 1]->next = NULL;
		w->n_queued -= b.n;
		w->queued_bytes -= b.bytes;
		pthread_cond_broadcast(&w->done); /* backpressure released */
		pthread_mutex_unlock(&w->lock);

		rc = commit_batch(w, &b);
		if (rc) {
			char msg[sizeof w->errmsg];
			snprintf(msg, sizeof msg, "%s", vz_err_msg());
			pthread_mutex_lock(&w->lock);
			w->err = rc;
			memcpy(w->errmsg, msg, sizeof msg);
		}
		free_ops(first);
		if (!rc) {
			pthread_mutex_lock(&w->lock);
			w->done_seq = last_seq;
			pthread_cond_broadcast(&w->done);
			continue;
		}
fail:
		/* Sticky error: puts and flushes report it from now on. */
		free_ops(w->head);
		w->head = w->tail = NULL;
		w->n_queued = w->queued_bytes = 0;
		pthread_cond_broadcast(&w->done);
		while (!w->stop)
			pthread_cond_wait(&w->wake, &w->lock);
		break;
	}
	pthread_mutex_unlock(&w->lock);
	free(arr);
	return NULL;
}

/* Report the writer's sticky error in the calling thread. */
static int writer_error(struct vz_writer *w)
{
	vz_err_set("%s", w->errmsg);
	return w->err;
}

int vz_writer_start(struct vz_cache *c, struct vz_writer **out)
{
	struct vz_writer *w;
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc;

	*out = NULL;
	if (c->read_only) {
		vz_err_set("cache %s: opened read-only, no writer", c->dir);
		return -EROFS;
	}
	w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	w->c = c;
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&w->done, NULL);

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&w->thread, NULL, writer_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		vz_err_set("cache %s: cannot start the writer thread: %s",
			   c->dir, strerror(rc));
		pthread_cond_destroy(&w->done);
		pthread_cond_destroy(&w->wake);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return -rc;
	}
	pthread_setname_np(w->thread, "vz-writer");
	*out = w;
	return 0;
}

int vz_writer_put(struct vz_writer *w, enum vz_db db, const void *key,
		  size_t klen, const void *val, size_t vlen)
{
	struct op *o;
	bool inside;
	int rc;

	if ((rc = db_check(w->c, db)) || (rc = key_check(w->c, key, klen)))
		return rc;
	if (!val)
		vlen = 0;
	if (vlen > UINT32_MAX || vlen > SIZE_MAX - sizeof *o - klen) {
		vz_err_set("cache %s: value of %zu bytes too large", w->c->dir,
			   vlen);
		return -EINVAL;
	}
	o = malloc(sizeof *o + klen + vlen);
	if (!o) {
		vz_err_set("cache %s: queue %zu bytes: out of memory",
			   w->c->dir, vlen);
		return -ENOMEM;
	}
	o->next = NULL;
	o->klen = (uint32_t)klen;
	o->vlen = vlen;
	o->db = (uint8_t)db;
	o->del = !val;
	memcpy(o->data, key, klen);
	if (vlen)
		memcpy(o->data + klen, val, vlen);

	/* Inside a scan of this cache, the writer may be waiting for that
	 * very read txn to end (map growth): do not wait for it then. */
	inside = held(w->c) > 0;
	pthread_mutex_lock(&w->lock);
	while (w->queued_bytes > QUEUE_CAP && !w->err && !inside)
		pthread_cond_wait(&w->done, &w->lock);
	if (w->err) {
		rc = writer_error(w);
		pthread_mutex_unlock(&w->lock);
		free(o);
		return rc;
	}
	o->seq = ++w->enq_seq;
	if (w->tail)
		w->tail->next = o;
	else
		w->head = o;
	w->tail = o;
	if (w->n_queued++ == 0)
		clock_gettime(CLOCK_MONOTONIC, &w->first_at);
	w->queued_bytes += op_bytes(o);
	if (w->n_queued == 1 || w->n_queued == BATCH_OPS ||
	    w->queued_bytes >= BATCH_BYTES)
		pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

int vz_writer_flush(struct vz_writer *w)
{
	uint64_t target;
	int rc = 0;

	if (held(w->c)) {
		vz_err_set("cache %s: writer flush inside a read transaction "
			   "(scan callback) could deadlock",
			   w->c->dir);
		return -EDEADLK;
	}
	pthread_mutex_lock(&w->lock);
	target = w->enq_seq;
	if (target > w->flush_seq) {
		w->flush_seq = target;
		pthread_cond_signal(&w->wake);
	}
	while (w->done_seq < target && !w->err)
		pthread_cond_wait(&w->done, &w->lock);
	if (w->err)
		rc = writer_error(w);
	pthread_mutex_unlock(&w->lock);
	return rc;
}

int vz_writer_stop(struct vz_writer *w)
{
	int rc;

	if (!w)
		return 0;
	rc = vz_writer_flush(w);
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	free_ops(w->head);
	pthread_cond_destroy(&w->done);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w);
	return rc;
}

/* Bands */

static const uint8_t bands_magic[4] = {'V', 'Z', 'B', '1'};

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static int get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
	const uint8_t *p = *pp;
	uint64_t v = 0;
	int shift;

	for (shift = 0; shift < 64 && p < end; shift += 7) {
		uint8_t b = *p++;
		if (shift == 63 && b > 1)
			return -1;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*pp = p;
			*out = v;
			return 0;
		}
	}
	return -1;
}

static inline uint64_t bits(const double *v)
{
	uint64_t u;

	memcpy(&u, v, sizeof u);
	return u;
}

int vz_bands_encode(const double *v, size_t n, struct vz_buf *out)
{
	uint8_t *p;
	size_t i = 0, z, l;
	int rc;

	vz_buf_reset(out);
	/* Worst case 9 bytes per value (isolated zeros), see runs below. */
	if (n > (SIZE_MAX - 64) / 9)
		return -EOVERFLOW;
	rc = vz_buf_reserve(out, sizeof bands_magic + 10 + 9 * n + 32);
	if (rc)
		return rc;
	p = out->data;
	memcpy(p, bands_magic, sizeof bands_magic);
	p += sizeof bands_magic;
	p += put_varint(p, n);
	while (i < n) {
		z = i;
		while (z + 4 <= n && (bits(v + z) | bits(v + z + 1) |
				      bits(v + z + 2) | bits(v + z + 3)) == 0)
			z += 4;
		while (z < n && bits(v + z) == 0)
			z++;
		l = z;
		while (l + 4 <= n && bits(v + l) && bits(v + l + 1) &&
		       bits(v + l + 2) && bits(v + l + 3))
			l += 4;
		while (l < n && bits(v + l) != 0)
			l++;
		p += put_varint(p, z - i);
		p += put_varint(p, l - z);
		memcpy(p, v + z, (l - z) * sizeof *v);
		p += (l - z) * sizeof *v;
		i = l;
	}
	out->len = (size_t)(p - out->data);
	return 0;
}

static int bands_corrupt(const char *why, size_t at)
{
	vz_err_set("band data corrupt at byte %zu: %s", at, why);
	return VZ_E_CACHE;
}

int vz_bands_decode(const void *data, size_t len, double *v, size_t n)
{
	const uint8_t *start = data, *p = data, *end = p + len;
	uint64_t cnt, z, l;
	size_t i = 0;

	if (!data || len < sizeof bands_magic + 1 ||
	    memcmp(p, bands_magic, sizeof bands_magic))
		return bands_corrupt("bad magic", 0);
	p += sizeof bands_magic;
	if (get_varint(&p, end, &cnt))
		return bands_corrupt("bad count", (size_t)(p - start));
	if (cnt != n) {
		vz_err_set("band data holds %llu values, expected %zu",
			   (unsigned long long)cnt, n);
		return VZ_E_CACHE;
	}
	while (i < n) {
		if (get_varint(&p, end, &z) || get_varint(&p, end, &l))
			return bands_corrupt("truncated run header",
					     (size_t)(p - start));
		if (z > n - i || l > n - i - z)
			return bands_corrupt("run overflows the bands",
					     (size_t)(p - start));
		if (z + l == 0)
			return bands_corrupt("empty run", (size_t)(p - start));
		if (l > (size_t)(end - p) / sizeof *v)
			return bands_corrupt("truncated literals",
					     (size_t)(p - start));
		memset(v + i, 0, z * sizeof *v);
		i += z;
		memcpy(v + i, p, l * sizeof *v);
		p += l * sizeof *v;
		i += l;
	}
	if (p != end)
		return bands_corrupt("trailing bytes", (size_t)(p - start));
	return 0;
}

void vz_cache_trim(struct vz_cache *c)
{
	char rel[4200], path[PATH_MAX], line[4400];
	FILE *f;

	/* The map is a shared read-only file mapping (no MDB_WRITEMAP):
	 * dropping its pages from this process only lowers RSS; the data
	 * stays in the page cache and readers fault it back in.  LMDB does not
	 * tell where it mapped the file (me_mapaddr is only set for
	 * MDB_FIXEDMAP), so find the mapping of data.mdb in /proc/self/maps.
	 * The gate keeps the map from moving while we do it. */
	snprintf(rel, sizeof rel, "%s/data.mdb", c->dir);
	if (!realpath(rel, path))
		return;
	pthread_mutex_lock(&c->gate);
	f = c->growing ? NULL : fopen("/proc/self/maps", "re");
	while (f && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		char *name = strchr(line, '/');
		size_t n;

		if (!name || sscanf(line, "%lx-%lx", &lo, &hi) != 2)
			continue;
		n = strlen(name);
		if (n && name[n - 1] == '\n')
			name[n - 1] = '\0';
		if (strcmp(name, path) == 0)
			madvise((void *)lo, hi - lo, MADV_DONTNEED);
	}
	if (f)
		fclose(f);
	pthread_mutex_unlock(&c->gate);
}
