/* SPDX-License-Identifier: Apache-2.0 */
/* FUSE low-level operations: stateless inodes, listings from the tile
 * index, tiles rendered at lookup and answered asynchronously. */
#include "fs.h"

#include <errno.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "vizfs/path.h"
#include "vizfs/tms.h"
#include "vizfs/wmts.h"

/*
 * Inode layout (no table, so nothing to forget):
 *
 *   63..62 tree   0 special, 1 geotiff, 2 web_tiles, 3 staged
 *   61..59 depth  path parts below the tree's top directory consumed
 *   58..54 stat   statistic (web_tiles with a style part)
 *   53..49 z
 *   48..24 x      25 bits: 2^25 columns at z24 in WorldCRS84Quad
 *   23..0  y      24 bits
 *
 * Tree 0 holds the fixed nodes below (FUSE_ROOT_ID is 1); a tree's top
 * directory is (tree, depth 0) and a file has depth == the tree's parts.
 */
enum {
	TREE_SPECIAL,
	TREE_GEOTIFF,
	TREE_WEB,
	TREE_STAGED,
	N_TREES,
};

#define SH_TREE 62
#define SH_DEPTH 59
#define SH_STAT 54
#define SH_Z 49
#define SH_X 24
#define BITS(n) ((UINT64_C(1) << (n)) - 1)
#define X_LIMIT (UINT32_C(1) << 25)
#define Y_LIMIT (UINT32_C(1) << 24)

/* tree 0 */
enum {
	INO_ROOT = FUSE_ROOT_ID,
	INO_STAGING_CSV,
	INO_RASTERS_CSV,
	INO_META_DIR,
	INO_STATUS,
	INO_METRICS,
	INO_VIEWER_DIR, /* viewer/ of the WMTS site */
};

/* Files of the WMTS site (WMTSCapabilities.xml, index.html, viewer/...):
 * INO_SITE_BASE + index in the vz_wmts_site, below 64 (tree 0). */
#define INO_SITE_BASE 16
#define INO_SITE_END 64

#define NAME_STAGING_CSV "staging_summary.csv"
#define NAME_RASTERS_CSV "rasters_summary.csv"
#define NAME_META_DIR ".vizfs"
#define NAME_STATUS "status"
#define NAME_METRICS "metrics"

/* readdir cookies: 1 after ".", 2 after "..", value + 3 after a child */
#define COOKIE_BASE 3

/* A generated file (CSVs, status): a snapshot taken at lookup, served by
 * reads until the next lookup replaces it.  The mtime changes with every
 * new snapshot so that the kernel drops pages of the old one. */
struct snap {
	pthread_mutex_t lock; /* guards: buf, valid, mtime, key */
	struct vz_buf buf;
	bool valid;
	struct timespec mtime;
	uint64_t key; /* service state the snapshot was made from */
	double made;  /* vz_now() when it was made */
};

/* While the pyramid is being rendered the CSVs (a scan of the whole cache)
 * are made again at most this often; once the service is idle, at once. */
#define CSV_MIN_AGE 10.0

enum {
	SNAP_STAGING,
	SNAP_RASTERS,
	SNAP_STATUS,
	SNAP_METRICS,
	N_SNAPS
};

struct vz_fs {
	const struct vz_conf *c;
	struct vz_service *s; /* NULL after a failed rebuild: EIO */
	/* Held shared by every operation that uses the service, exclusively
	 * while the daemon swaps in a new one (inputs changed). */
	pthread_rwlock_t swap;
	_Atomic uint64_t generation; /* of every inode; bumped on a swap */
	enum vz_path_part parts[N_TREES][5];
	int n_parts[N_TREES];
	bool tree_ok[N_TREES]; /* web_tiles without a style needs 1 stat */
	const char *ext[N_TREES];
	uid_t uid;
	gid_t gid;
	struct timespec t0;
	/* set once in init, before any other request */
	bool no_open, no_opendir;
	struct snap snaps[N_SNAPS];
	pthread_key_t buf_key;	   /* per-thread read buffer */
	pthread_mutex_t time_lock; /* guards: last_mtime */
	struct timespec last_mtime;
	pthread_mutex_t site_lock; /* guards: site, site_rc */
	struct vz_wmts_site *site; /* built once from the index, immutable */
	int site_rc;
};

struct node {
	int tree, depth;
	int stat, z;
	uint32_t x, y;
	bool has_stat, has_z, has_x, has_y;
};

/* ---- nodes ------------------------------------------------------------ */

static fuse_ino_t node_ino(const struct node *n)
{
	return ((uint64_t)n->tree << SH_TREE) |
	       ((uint64_t)n->depth << SH_DEPTH) |
	       ((uint64_t)(n->stat & 31) << SH_STAT) |
	       ((uint64_t)(n->z & 31) << SH_Z) |
	       ((uint64_t)(n->x & BITS(25)) << SH_X) |
	       (uint64_t)(n->y & BITS(24));
}

static void node_flags(const struct vz_fs *fs, struct node *n)
{
	n->has_stat = n->has_z = n->has_x = n->has_y = false;
	for (int i = 0; i < n->depth; i++) {
		switch (fs->parts[n->tree][i]) {
		case VZ_PART_STYLE:
			n->has_stat = true;
			break;
		case VZ_PART_Z:
			n->has_z = true;
			break;
		case VZ_PART_X:
			n->has_x = true;
			break;
		case VZ_PART_Y:
			n->has_y = true;
			break;
		case VZ_PART_TMS:
			break;
		}
	}
}

/* @return false for tree 0 or an inode this filesystem never made. */
static bool node_decode(const struct vz_fs *fs, fuse_ino_t ino, struct node *n)
{
	const struct vz_conf *c = fs->c;

	memset(n, 0, sizeof *n);
	n->tree = (int)(ino >> SH_TREE);
	n->depth = (int)((ino >> SH_DEPTH) & 7);
	n->stat = (int)((ino >> SH_STAT) & 31);
	n->z = (int)((ino >> SH_Z) & 31);
	n->x = (uint32_t)((ino >> SH_X) & BITS(25));
	n->y = (uint32_t)(ino & BITS(24));
	if (n->tree == TREE_SPECIAL || !fs->tree_ok[n->tree] ||
	    n->depth > fs->n_parts[n->tree])
		return false;
	node_flags(fs, n);
	if ((size_t)n->stat >= c->n_stats || (!n->has_stat && n->stat) ||
	    (!n->has_z && n->z) || (!n->has_x && n->x) || (!n->has_y && n->y))
		return false;
	if (n->has_z && (n->z < c->z_min || n->z > c->z_max))
		return false;
	return node_ino(n) == ino;
}

static bool node_is_file(const struct vz_fs *fs, const struct node *n)
{
	return n->depth == fs->n_parts[n->tree];
}

static enum vz_kind tree_kind(int tree)
{
	return tree == TREE_GEOTIFF ? VZ_KIND_GEOTIFF :
	       tree == TREE_WEB	    ? VZ_KIND_PNG :
				      VZ_KIND_STAGED;
}

static const char *tree_name(int tree)
{
	return tree == TREE_GEOTIFF ? VZ_DIR_GEOTIFF :
	       tree == TREE_WEB	    ? VZ_DIR_WEB_TILES :
				      VZ_DIR_STAGED;
}

static void node_ref(const struct node *n, struct vz_tile_ref *r)
{
	memset(r, 0, sizeof *r);
	r->kind = tree_kind(n->tree);
	r->stat = n->tree == TREE_WEB ? n->stat : -1;
	r->key.z = (uint8_t)n->z;
	r->key.x = n->x;
	r->key.y = n->y;
}

/* The text of part @p p of node @p n. */
static const char *comp_text(const struct vz_fs *fs, const struct node *n,
			     enum vz_path_part p, char tmp[16])
{
	switch (p) {
	case VZ_PART_STYLE:
		return fs->c->stats[n->stat].name;
	case VZ_PART_TMS:
		return fs->c->tms_id;
	case VZ_PART_Z:
		snprintf(tmp, 16, "%d", n->z);
		return tmp;
	case VZ_PART_X:
		snprintf(tmp, 16, "%" PRIu32, n->x);
		return tmp;
	case VZ_PART_Y:
	default:
		snprintf(tmp, 16, "%" PRIu32, n->y);
		return tmp;
	}
}

/* Tree-relative path of a node ("geotiff/WorldCRS84Quad/3").
 * @return 0 or -ENAMETOOLONG. */
static int node_path(const struct vz_fs *fs, const struct node *n, char *buf,
		     size_t len)
{
	size_t off;
	char tmp[16];
	int w;

	w = snprintf(buf, len, "%s", tree_name(n->tree));
	if (w < 0 || (size_t)w >= len)
		return -ENAMETOOLONG;
	off = (size_t)w;
	for (int i = 0; i < n->depth; i++) {
		w = snprintf(buf + off, len - off, "/%s",
			     comp_text(fs, n, fs->parts[n->tree][i], tmp));
		if (w < 0 || (size_t)w >= len - off)
			return -ENAMETOOLONG;
		off += (size_t)w;
	}
	return 0;
}

/* Canonical decimal as vz_path_parse wants it: "0" or [1-9][0-9]*. */
static bool parse_uint(const char *s, size_t len, uint32_t lim, uint32_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 10 || (s[0] == '0' && len > 1))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v >= lim)
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool text_eq(const char *s, size_t len, const char *want)
{
	return strlen(want) == len && memcmp(s, want, len) == 0;
}

/* Consume one directory component of @p n (strict; no existence check). */
static bool parse_comp(const struct vz_fs *fs, struct node *n, const char *s,
		       size_t len)
{
	const struct vz_conf *c = fs->c;
	enum vz_path_part p = fs->parts[n->tree][n->depth];
	int zref = n->has_z ? n->z : c->z_max;
	uint32_t v;

	switch (p) {
	case VZ_PART_STYLE:
		for (size_t i = 0; i < c->n_stats; i++)
			if (text_eq(s, len, c->stats[i].name)) {
				n->stat = (int)i;
				goto ok;
			}
		return false;
	case VZ_PART_TMS:
		if (!text_eq(s, len, c->tms_id))
			return false;
		break;
	case VZ_PART_Z:
		if (!parse_uint(s, len, VZ_MAX_ZOOM + 1, &v) ||
		    (int)v < c->z_min || (int)v > c->z_max ||
		    (n->tree == TREE_STAGED && (int)v != c->z_max))
			return false;
		n->z = (int)v;
		break;
	case VZ_PART_X:
		if (!parse_uint(s, len, X_LIMIT, &v) ||
		    v >= vz_tms_cols(c->tms, zref))
			return false;
		n->x = v;
		break;
	case VZ_PART_Y:
		if (!parse_uint(s, len, Y_LIMIT, &v) ||
		    v >= vz_tms_rows(c->tms, zref))
			return false;
		n->y = v;
		break;
	}
ok:
	n->depth++;
	node_flags(fs, n);
	return true;
}

/* ---- the tile index ----------------------------------------------------- */

/* First index with (x, y) >= (kx, ky). */
static size_t lower_bound(const struct vz_tile_key *k, size_t n, uint32_t x,
			  uint32_t y)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (k[mid].x < x || (k[mid].x == x && k[mid].y < y))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void zoom_span(const struct vz_fs *fs, const struct node *n, int *lo,
		      int *hi)
{
	if (n->has_z) {
		*lo = *hi = n->z;
	} else if (n->tree == TREE_STAGED) {
		*lo = *hi = fs->c->z_max;
	} else {
		*lo = fs->c->z_min;
		*hi = fs->c->z_max;
	}
}

/* True if some tile of the index lies below node @p n. */
static bool node_exists(const struct vz_fs *fs, const struct node *n)
{
	int zlo, zhi;

	if (n->tree == TREE_STAGED && n->has_z && n->z != fs->c->z_max)
		return false;
	zoom_span(fs, n, &zlo, &zhi);
	for (int z = zlo; z <= zhi; z++) {
		const struct vz_tile_key *k;
		size_t cnt, i;

		vz_service_level(fs->s, z, &k, &cnt);
		if (!cnt)
			continue;
		if (n->has_x) {
			i = lower_bound(k, cnt, n->x, n->has_y ? n->y : 0);
			if (i < cnt && k[i].x == n->x &&
			    (!n->has_y || k[i].y == n->y))
				return true;
		} else if (n->has_y) {
			for (i = 0; i < cnt; i++)
				if (k[i].y == n->y)
					return true;
		} else {
			return true;
		}
	}
	return false;
}

/* Called with each child value in increasing order; false stops. */
typedef bool (*child_fn)(void *ud, uint32_t v);

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Distinct x or y values >= @p start of the tiles below @p n, for part
 * orders the fast paths do not cover. */
static int children_generic(const struct vz_fs *fs, const struct node *n,
			    bool want_x, uint32_t start, child_fn fn, void *ud)
{
	struct vz_buf vals = {0};
	uint32_t *v;
	size_t m;
	int zlo, zhi, rc = 0;

	zoom_span(fs, n, &zlo, &zhi);
	for (int z = zlo; z <= zhi && !rc; z++) {
		const struct vz_tile_key *k;
		size_t cnt;

		vz_service_level(fs->s, z, &k, &cnt);
		for (size_t i = 0; i < cnt && !rc; i++) {
			uint32_t val = want_x ? k[i].x : k[i].y;
			if ((n->has_x && k[i].x != n->x) ||
			    (n->has_y && k[i].y != n->y) || val < start)
				continue;
			rc = vz_buf_append(&vals, &val, sizeof val);
		}
	}
	if (rc) {
		vz_buf_free(&vals);
		return rc;
	}
	v = (uint32_t *)vals.data;
	m = vals.len / sizeof *v;
	if (m)
		qsort(v, m, sizeof *v, cmp_u32);
	for (size_t i = 0; i < m; i++)
		if ((i == 0 || v[i] != v[i - 1]) && !fn(ud, v[i]))
			break;
	vz_buf_free(&vals);
	return 0;
}

/* Enumerate the children of directory @p n with value >= @p start,
 * without rendering anything.  @return 0 or -ENOMEM. */
static int list_children(const struct vz_fs *fs, const struct node *n,
			 uint32_t start, child_fn fn, void *ud)
{
	const struct vz_conf *c = fs->c;
	enum vz_path_part p = fs->parts[n->tree][n->depth];
	const struct vz_tile_key *k;
	size_t cnt, i;
	int zlo, zhi;

	switch (p) {
	case VZ_PART_STYLE:
		if (!node_exists(fs, n))
			return 0;
		for (uint32_t s = start; s < c->n_stats; s++)
			if (!fn(ud, s))
				break;
		return 0;
	case VZ_PART_TMS:
		if (start == 0 && node_exists(fs, n))
			fn(ud, 0);
		return 0;
	case VZ_PART_Z:
		zoom_span(fs, n, &zlo, &zhi);
		for (int z = zlo; z <= zhi; z++) {
			struct node ch = *n;
			if ((uint32_t)z < start)
				continue;
			ch.z = z;
			ch.has_z = true;
			if (node_exists(fs, &ch) && !fn(ud, (uint32_t)z))
				break;
		}
		return 0;
	case VZ_PART_X:
		if (!n->has_z || n->has_y)
			return children_generic(fs, n, true, start, fn, ud);
		/* jump from one column to the next: O(columns * log n) */
		vz_service_level(fs->s, n->z, &k, &cnt);
		for (i = lower_bound(k, cnt, start, 0); i < cnt;
		     i = lower_bound(k, cnt, k[i].x + 1, 0))
			if (!fn(ud, k[i].x))
				break;
		return 0;
	case VZ_PART_Y:
		if (!n->has_z || !n->has_x)
			return children_generic(fs, n, false, start, fn, ud);
		vz_service_level(fs->s, n->z, &k, &cnt);
		for (i = lower_bound(k, cnt, n->x, start);
		     i < cnt && k[i].x == n->x; i++)
			if (!fn(ud, k[i].y))
				break;
		return 0;
	}
	return 0;
}

/* The child of @p n with value @p v (next part of the tree). */
static void node_child(const struct vz_fs *fs, const struct node *n, uint32_t v,
		       struct node *ch)
{
	*ch = *n;
	switch (fs->parts[n->tree][n->depth]) {
	case VZ_PART_STYLE:
		ch->stat = (int)v;
		break;
	case VZ_PART_TMS:
		break;
	case VZ_PART_Z:
		ch->z = (int)v;
		break;
	case VZ_PART_X:
		ch->x = v;
		break;
	case VZ_PART_Y:
		ch->y = v;
		break;
	}
	ch->depth++;
	node_flags(fs, ch);
}

static void node_parent(const struct vz_fs *fs, const struct node *n,
			struct node *p)
{
	*p = *n;
	p->depth--;
	switch (fs->parts[n->tree][p->depth]) {
	case VZ_PART_STYLE:
		p->stat = 0;
		break;
	case VZ_PART_TMS:
		break;
	case VZ_PART_Z:
		p->z = 0;
		break;
	case VZ_PART_X:
		p->x = 0;
		break;
	case VZ_PART_Y:
		p->y = 0;
		break;
	}
	node_flags(fs, p);
}

/* ---- attributes --------------------------------------------------------- */

static void fill_attr(const struct vz_fs *fs, fuse_ino_t ino, bool dir,
		      uint64_t size, const struct timespec *mtime,
		      struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = ino;
	st->st_mode = dir ? S_IFDIR | 0555 : S_IFREG | 0444;
	/* 1: "unknown number of subdirectories" (no leaf optimisation) */
	st->st_nlink = 1;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = (off_t)size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	st->st_atim = st->st_mtim = st->st_ctim = mtime ? *mtime : fs->t0;
}

static void reply_dir_entry(struct vz_fs *fs, fuse_req_t req, fuse_ino_t ino)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof e);
	e.ino = ino;
	e.generation = atomic_load(&fs->generation);
	e.attr_timeout = e.entry_timeout = VZ_FS_TTL;
	fill_attr(fs, ino, true, 0, NULL, &e.attr);
	fuse_reply_entry(req, &e);
}

static void reply_negative(fuse_req_t req)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof e);
	e.entry_timeout = VZ_FS_NEG_TTL;
	fuse_reply_entry(req, &e);
}

/* ---- generated files ---------------------------------------------------- */

static int special_snap(fuse_ino_t ino)
{
	switch (ino) {
	case INO_STAGING_CSV:
		return SNAP_STAGING;
	case INO_RASTERS_CSV:
		return SNAP_RASTERS;
	case INO_STATUS:
		return SNAP_STATUS;
	case INO_METRICS:
		return SNAP_METRICS;
	}
	return -1;
}

/* A fresh, strictly increasing mtime for a new snapshot. */
static void next_mtime(struct vz_fs *fs, struct timespec *out)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	pthread_mutex_lock(&fs->time_lock);
	if (t.tv_sec < fs->last_mtime.tv_sec ||
	    (t.tv_sec == fs->last_mtime.tv_sec &&
	     t.tv_nsec <= fs->last_mtime.tv_nsec)) {
		t = fs->last_mtime;
		if (++t.tv_nsec >= 1000000000L) {
			t.tv_sec++;
			t.tv_nsec = 0;
		}
	}
	fs->last_mtime = t;
	pthread_mutex_unlock(&fs->time_lock);
	*out = t;
}

/*
 * Take a new snapshot of a generated file unless the current one still
 * describes the service state (the CSVs only change when jobs finish, and
 * are not remade more often than CSV_MIN_AGE while rendering goes on; the
 * status file always changes).  Generation runs without the lock held.
 * @return 0 or an error.
 */
static int snap_refresh(struct vz_fs *fs, int which)
{
	struct snap *sn = &fs->snaps[which];
	struct vz_service_stats st;
	struct vz_buf nb = {0}, old;
	uint64_t key = 0;
	bool cur, idle;
	int rc;

	if (which != SNAP_STATUS && which != SNAP_METRICS) {
		memset(&st, 0, sizeof st);
		vz_service_get_stats(fs->s, &st);
		/* never equal to the initial key 0 of an empty snapshot */
		key = st.indexed ? (st.renders + 1) << 1 : 0;
		idle = st.indexed && !st.prefetching && !st.running &&
		       !st.queued_demand && !st.waiting;
		pthread_mutex_lock(&sn->lock);
		cur = sn->valid && key &&
		      (sn->key == key ||
		       (!idle && vz_now() - sn->made < CSV_MIN_AGE));
		pthread_mutex_unlock(&sn->lock);
		if (cur)
			return 0;
	}
	if (which == SNAP_STATUS) {
		rc = vz_service_status_json(fs->s, &nb);
	} else if (which == SNAP_METRICS) {
		rc = vz_service_prometheus(fs->s, &nb);
	} else {
		/* A scan racing the render threads' commits can find a tile
		 * half written (-ENOENT); the next commit completes it. */
		for (int tries = 0;; tries++) {
			vz_buf_reset(&nb);
			rc = vz_service_csv(
				fs->s, which == SNAP_STAGING ? 's' : 'r', &nb);
			if (rc != -ENOENT || tries == 20)
				break;
			usleep(10000);
		}
	}
	if (rc) {
		vz_log(VZ_LOG_ERR, "%s: %s",
		       which == SNAP_STAGING ? NAME_STAGING_CSV :
		       which == SNAP_RASTERS ? NAME_RASTERS_CSV :
		       which == SNAP_METRICS ? NAME_META_DIR "/" NAME_METRICS :
					       NAME_META_DIR "/" NAME_STATUS,
		       vz_err_msg()[0] ? vz_err_msg() : vz_strerror(rc));
		vz_buf_free(&nb);
		return rc;
	}
	pthread_mutex_lock(&sn->lock);
	old = sn->buf;
	sn->buf = nb;
	sn->valid = true;
	sn->key = key;
	sn->made = vz_now();
	next_mtime(fs, &sn->mtime);
	pthread_mutex_unlock(&sn->lock);
	vz_buf_free(&old);
	return 0;
}

static void snap_attr(struct vz_fs *fs, fuse_ino_t ino, int which,
		      struct stat *st)
{
	struct snap *sn = &fs->snaps[which];
	struct timespec m;
	uint64_t size;

	pthread_mutex_lock(&sn->lock);
	size = sn->buf.len;
	m = sn->mtime;
	pthread_mutex_unlock(&sn->lock);
	fill_attr(fs, ino, false, size, &m, st);
}

static void reply_special_entry(struct vz_fs *fs, fuse_req_t req,
				fuse_ino_t ino)
{
	struct fuse_entry_param e;
	int which = special_snap(ino);

	memset(&e, 0, sizeof e);
	e.ino = ino;
	e.generation = atomic_load(&fs->generation);
	if (which < 0) {
		/* the root and .vizfs directories */
		e.attr_timeout = e.entry_timeout = VZ_FS_TTL;
		fill_attr(fs, ino, true, 0, NULL, &e.attr);
		fuse_reply_entry(req, &e);
		return;
	}
	/* a new snapshot at every path walk: entry and attrs never cached */
	if (snap_refresh(fs, which)) {
		fuse_reply_err(req, EIO);
		return;
	}
	snap_attr(fs, ino, which, &e.attr);
	fuse_reply_entry(req, &e);
}

/* ---- the WMTS document and the map viewer (src/wmts.c) ------------------ */

/* The site, built once after the tile index is ready; NULL on failure. */
static const struct vz_wmts_site *site_get(struct vz_fs *fs)
{
	const struct vz_wmts_site *s;

	if (vz_service_wait_index(fs->s))
		return NULL;
	pthread_mutex_lock(&fs->site_lock);
	if (!fs->site && !fs->site_rc) {
		struct vz_wmts_input in;

		memset(&in, 0, sizeof in);
		for (int z = fs->c->z_min; z <= fs->c->z_max; z++)
			vz_service_level(fs->s, z, &in.level[z].keys,
					 &in.level[z].n);
		fs->site_rc = vz_wmts_site_new(fs->c, &in, &fs->site);
		if (fs->site_rc)
			vz_log(VZ_LOG_ERR, "%s: %s", VZ_WMTS_CAPABILITIES,
			       vz_err_msg()[0] ? vz_err_msg()
					       : vz_strerror(fs->site_rc));
		else if (vz_wmts_site_count(fs->site) >
			 INO_SITE_END - INO_SITE_BASE)
			vz_log(VZ_LOG_WARN, "viewer: %zu files, only %d shown",
			       vz_wmts_site_count(fs->site),
			       INO_SITE_END - INO_SITE_BASE);
	}
	s = fs->site;
	pthread_mutex_unlock(&fs->site_lock);
	return s;
}

static bool is_site_ino(fuse_ino_t ino)
{
	return ino >= INO_SITE_BASE && ino < INO_SITE_END;
}

/* The site file of inode @p ino, or NULL. */
static const struct vz_wmts_file *site_file(struct vz_fs *fs, fuse_ino_t ino)
{
	if (!is_site_ino(ino))
		return NULL;
	return vz_wmts_site_file(site_get(fs), (size_t)(ino - INO_SITE_BASE));
}

/* Reply to a lookup of @p name in the root (@p in_viewer false) or in
 * viewer/.  @return false if the name is not part of the site. */
static bool site_lookup(struct vz_fs *fs, fuse_req_t req, const char *name,
			bool in_viewer)
{
	const struct vz_wmts_site *s;
	struct fuse_entry_param e;
	char path[512];

	if (!in_viewer && strcmp(name, VZ_WMTS_CAPABILITIES) &&
	    strcmp(name, VZ_WMTS_INDEX) && strcmp(name, VZ_WMTS_VIEWER_DIR))
		return false;
	s = site_get(fs);
	if (!s)
		return false;
	snprintf(path, sizeof path, "%s%s%s",
		 in_viewer ? VZ_WMTS_VIEWER_DIR : "", in_viewer ? "/" : "",
		 name);
	memset(&e, 0, sizeof e);
	e.generation = atomic_load(&fs->generation);
	e.attr_timeout = e.entry_timeout = VZ_FS_TTL;
	if (!in_viewer && vz_wmts_site_is_dir(s, path)) {
		e.ino = INO_VIEWER_DIR;
		fill_attr(fs, e.ino, true, 0, NULL, &e.attr);
		fuse_reply_entry(req, &e);
		return true;
	}
	for (size_t i = 0; i < vz_wmts_site_count(s); i++) {
		const struct vz_wmts_file *f = vz_wmts_site_file(s, i);
		if (strcmp(f->path, path) || i >= INO_SITE_END - INO_SITE_BASE)
			continue;
		e.ino = INO_SITE_BASE + i;
		fill_attr(fs, e.ino, false, f->len, NULL, &e.attr);
		fuse_reply_entry(req, &e);
		return true;
	}
	return false;
}

/* ---- per-thread read buffer --------------------------------------------- */

static void buf_destroy(void *p)
{
	struct vz_buf *b = p;

	vz_buf_free(b);
	free(b);
}

static struct vz_buf *thread_buf(struct vz_fs *fs)
{
	struct vz_buf *b = pthread_getspecific(fs->buf_key);

	if (!b) {
		b = calloc(1, sizeof *b);
		if (b && pthread_setspecific(fs->buf_key, b)) {
			free(b);
			b = NULL;
		}
	}
	return b;
}

/* ---- asynchronous tile requests ----------------------------------------- */

enum {
	OP_LOOKUP,
	OP_GETATTR,
	OP_READ
};

/* Everything a reply needs, copied out of the request's arguments: the
 * callback may run after the operation returned (style 21). */
struct pending {
	struct vz_fs *fs;
	fuse_req_t req;
	fuse_ino_t ino;
	int op;
	struct vz_tile_ref ref;
	off_t off;
	size_t size;
};

static void reply_read(struct vz_fs *fs, fuse_req_t req,
		       const struct vz_tile_ref *r, off_t off, size_t size,
		       bool retry);

static void on_ready(void *ud, int rc, uint64_t size)
{
	struct pending *p = ud;
	struct fuse_entry_param e;
	struct stat st;

	/* render failures are logged by the service with the tile and the
	 * cause; here they only become EIO */
	if (rc == 0) {
		switch (p->op) {
		case OP_LOOKUP:
			memset(&e, 0, sizeof e);
			e.ino = p->ino;
			e.generation = atomic_load(&p->fs->generation);
			e.attr_timeout = e.entry_timeout = VZ_FS_TTL;
			fill_attr(p->fs, p->ino, false, size, NULL, &e.attr);
			fuse_reply_entry(p->req, &e);
			break;
		case OP_GETATTR:
			fill_attr(p->fs, p->ino, false, size, NULL, &st);
			fuse_reply_attr(p->req, &st, VZ_FS_TTL);
			break;
		case OP_READ:
			reply_read(p->fs, p->req, &p->ref, p->off, p->size,
				   false);
			break;
		}
	} else if (rc == -ENOENT && p->op == OP_LOOKUP) {
		reply_negative(p->req);
	} else {
		fuse_reply_err(p->req, rc == -ENOENT ? ENOENT : EIO);
	}
	free(p);
}

static void request_tile(struct vz_fs *fs, fuse_req_t req, fuse_ino_t ino,
			 int op, const struct vz_tile_ref *r, off_t off,
			 size_t size)
{
	struct pending *p = malloc(sizeof *p);

	if (!p) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	p->fs = fs;
	p->req = req;
	p->ino = ino;
	p->op = op;
	p->ref = *r;
	p->off = off;
	p->size = size;
	vz_service_request(fs->s, r, on_ready, p);
}

static void reply_read(struct vz_fs *fs, fuse_req_t req,
		       const struct vz_tile_ref *r, off_t off, size_t size,
		       bool retry)
{
	struct vz_buf *b = thread_buf(fs);
	char path[256];
	int rc;

	if (!b) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = vz_service_read(fs->s, r, (uint64_t)off, size, b);
	if (rc == -ENOENT && retry) {
		/* no longer cached (or never looked up in this process):
		 * make it available again, then read */
		request_tile(fs, req, 0, OP_READ, r, off, size);
		return;
	}
	if (rc) {
		if (vz_path_format(fs->c, r, path, sizeof path) < 0)
			snprintf(path, sizeof path, "%u/%u/%u", r->key.z,
				 r->key.x, r->key.y);
		vz_log(VZ_LOG_ERR, "read %s: %s", path,
		       vz_err_msg()[0] ? vz_err_msg() : vz_strerror(rc));
		fuse_reply_err(req, EIO);
		return;
	}
	fuse_reply_buf(req, (const char *)b->data, b->len);
}

/* ---- operations ---------------------------------------------------------- */

static void fs_init(void *ud, struct fuse_conn_info *conn)
{
	struct vz_fs *fs = ud;

	fs->no_open = conn->capable & FUSE_CAP_NO_OPEN_SUPPORT;
	fs->no_opendir = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
	/* tile and directory attributes come with the listing */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* generated files change mtime with every snapshot */
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	conn->want &= ~(unsigned)(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
	conn->time_gran = 1;
	vz_log(VZ_LOG_DEBUG, "fuse: protocol %u.%u, no_open %d, no_opendir %d",
	       conn->proto_major, conn->proto_minor, fs->no_open,
	       fs->no_opendir);
}

static bool index_ready(struct vz_fs *fs, fuse_req_t req)
{
	if (vz_service_wait_index(fs->s) == 0)
		return true;
	fuse_reply_err(req, EIO);
	return false;
}

static void lookup_root(struct vz_fs *fs, fuse_req_t req, const char *name)
{
	static const struct {
		const char *name;
		int tree;
	} trees[] = {
		{VZ_DIR_GEOTIFF, TREE_GEOTIFF},
		{VZ_DIR_WEB_TILES, TREE_WEB},
		{VZ_DIR_STAGED, TREE_STAGED},
	};

	if (!strcmp(name, NAME_STAGING_CSV)) {
		reply_special_entry(fs, req, INO_STAGING_CSV);
		return;
	}
	if (!strcmp(name, NAME_RASTERS_CSV)) {
		reply_special_entry(fs, req, INO_RASTERS_CSV);
		return;
	}
	if (!strcmp(name, NAME_META_DIR)) {
		reply_special_entry(fs, req, INO_META_DIR);
		return;
	}
	if (site_lookup(fs, req, name, false))
		return;
	for (size_t i = 0; i < VZ_ARRAY_SIZE(trees); i++) {
		struct node n = {.tree = trees[i].tree};

		if (strcmp(name, trees[i].name))
			continue;
		if (!fs->tree_ok[n.tree]) {
			reply_negative(req);
			return;
		}
		if (!index_ready(fs, req))
			return;
		if (node_exists(fs, &n))
			reply_dir_entry(fs, req, node_ino(&n));
		else
			reply_negative(req);
		return;
	}
	reply_negative(req);
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct vz_fs *fs = fuse_req_userdata(req);
	struct node n, ch;
	struct vz_tile_ref ref;
	char path[512];
	size_t len = strlen(name), off;
	const char *ext;

	if (parent == INO_ROOT) {
		lookup_root(fs, req, name);
		return;
	}
	if (parent == INO_META_DIR) {
		if (!strcmp(name, NAME_STATUS))
			reply_special_entry(fs, req, INO_STATUS);
		else if (!strcmp(name, NAME_METRICS))
			reply_special_entry(fs, req, INO_METRICS);
		else
			reply_negative(req);
		return;
	}
	if (parent == INO_VIEWER_DIR) {
		if (!site_lookup(fs, req, name, true))
			reply_negative(req);
		return;
	}
	if (is_site_ino(parent)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (!node_decode(fs, parent, &n)) {
		fuse_reply_err(req, parent < 64 ? ENOTDIR : ENOENT);
		return;
	}
	if (node_is_file(fs, &n)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (len > 64) {
		reply_negative(req);
		return;
	}
	if (n.depth + 1 < fs->n_parts[n.tree]) {
		/* a directory: parse strictly, then it must hold tiles */
		ch = n;
		if (!parse_comp(fs, &ch, name, len)) {
			reply_negative(req);
			return;
		}
		if (!index_ready(fs, req))
			return;
		if (node_exists(fs, &ch))
			reply_dir_entry(fs, req, node_ino(&ch));
		else
			reply_negative(req);
		return;
	}
	/* a file: the path parser is the authority on what a tile name is */
	ext = fs->ext[n.tree];
	if (len <= strlen(ext) || strcmp(name + len - strlen(ext), ext) ||
	    node_path(fs, &n, path, sizeof path)) {
		reply_negative(req);
		return;
	}
	off = strlen(path);
	if (off + 1 + len >= sizeof path) {
		reply_negative(req);
		return;
	}
	path[off] = '/';
	memcpy(path + off + 1, name, len + 1);
	if (vz_path_parse(fs->c, path, &ref) != 0) {
		reply_negative(req);
		return;
	}
	ch = n;
	if (!parse_comp(fs, &ch, name, len - strlen(ext))) {
		reply_negative(req);
		return;
	}
	if (!index_ready(fs, req))
		return;
	if (!node_exists(fs, &ch)) {
		reply_negative(req);
		return;
	}
	node_ref(&ch, &ref);
	request_tile(fs, req, node_ino(&ch), OP_LOOKUP, &ref, 0, 0);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct vz_fs *fs = fuse_req_userdata(req);
	struct vz_tile_ref ref;
	struct stat st;
	struct node n;
	int which;

	if (ino == INO_ROOT || ino == INO_META_DIR || ino == INO_VIEWER_DIR) {
		fill_attr(fs, ino, true, 0, NULL, &st);
		fuse_reply_attr(req, &st, VZ_FS_TTL);
		return;
	}
	if (is_site_ino(ino)) {
		const struct vz_wmts_file *f = site_file(fs, ino);
		if (!f) {
			fuse_reply_err(req, ENOENT);
			return;
		}
		fill_attr(fs, ino, false, f->len, NULL, &st);
		fuse_reply_attr(req, &st, VZ_FS_TTL);
		return;
	}
	which = special_snap(ino);
	if (which >= 0) {
		/* reads ask for attributes too: keep the snapshot of the last
		 * lookup so that one reader sees one version */
		bool have;
		pthread_mutex_lock(&fs->snaps[which].lock);
		have = fs->snaps[which].valid;
		pthread_mutex_unlock(&fs->snaps[which].lock);
		if (!have && snap_refresh(fs, which)) {
			fuse_reply_err(req, EIO);
			return;
		}
		snap_attr(fs, ino, which, &st);
		fuse_reply_attr(req, &st, 0);
		return;
	}
	if (!node_decode(fs, ino, &n)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (!node_is_file(fs, &n)) {
		fill_attr(fs, ino, true, 0, NULL, &st);
		fuse_reply_attr(req, &st, VZ_FS_TTL);
		return;
	}
	node_ref(&n, &ref);
	request_tile(fs, req, ino, OP_GETATTR, &ref, 0, 0);
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct vz_fs *fs = fuse_req_userdata(req);
	struct node n;

	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (fs->no_open) {
		/* the kernel stops sending open and release: warm opens never
		 * reach the daemon (kernel page cache as with keep_cache) */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (special_snap(ino) >= 0) {
		fi->direct_io = 1;
	} else if (site_file(fs, ino)) {
		fi->keep_cache = 1;
	} else if (node_decode(fs, ino, &n) && node_is_file(fs, &n)) {
		fi->keep_cache = 1;
	} else {
		fuse_reply_err(req, EISDIR);
		return;
	}
	fuse_reply_open(req, fi);
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct vz_fs *fs = fuse_req_userdata(req);
	struct vz_tile_ref ref;
	struct node n;
	int which = special_snap(ino);

	if (which >= 0) {
		struct snap *sn = &fs->snaps[which];
		struct vz_buf *b = thread_buf(fs);
		int rc = b ? 0 : -ENOMEM;

		if (b) {
			vz_buf_reset(b);
			pthread_mutex_lock(&sn->lock);
			if (off >= 0 && (uint64_t)off < sn->buf.len) {
				size_t avail = sn->buf.len - (size_t)off;
				rc = vz_buf_append(b, sn->buf.data + off,
						   avail < size ? avail : size);
			}
			pthread_mutex_unlock(&sn->lock);
		}
		if (rc)
			fuse_reply_err(req, ENOMEM);
		else
			fuse_reply_buf(req, (const char *)b->data, b->len);
		return;
	}
	if (is_site_ino(ino)) {
		const struct vz_wmts_file *f = site_file(fs, ino);
		if (!f)
			fuse_reply_err(req, ENOENT);
		else if (off < 0 || (uint64_t)off >= f->len)
			fuse_reply_buf(req, NULL, 0);
		else
			fuse_reply_buf(req, (const char *)f->data + off,
				       f->len - (size_t)off < size
					       ? f->len - (size_t)off
					       : size);
		return;
	}
	if (!node_decode(fs, ino, &n) || !node_is_file(fs, &n)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	node_ref(&n, &ref);
	reply_read(fs, req, &ref, off, size, true);
}

static void fs_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct vz_fs *fs = fuse_req_userdata(req);

	if (fs->no_opendir) {
		/* stateless listings: the kernel may skip opendir and cache
		 * the entries (they never change while mounted) */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

/* ---- listings ------------------------------------------------------------ */

struct dirbuf {
	struct vz_fs *fs;
	fuse_req_t req;
	bool plus;
	char *buf;
	size_t size, len;
	const struct node *dir; /* tree listings */
};

/* Add one entry; @p full: a directory whose attributes readdirplus may
 * hand out (files would need a render, so they get none).
 * @return false when the buffer is full. */
static bool dir_add(struct dirbuf *d, const char *name, fuse_ino_t ino,
		    bool isdir, bool full, off_t cookie)
{
	size_t need;

	if (d->plus) {
		struct fuse_entry_param e;

		memset(&e, 0, sizeof e);
		fill_attr(d->fs, ino, isdir, 0, NULL, &e.attr);
		if (full) {
			e.ino = ino;
			e.generation = atomic_load(&d->fs->generation);
			e.attr_timeout = e.entry_timeout = VZ_FS_TTL;
		}
		need = fuse_add_direntry_plus(d->req, d->buf + d->len,
					      d->size - d->len, name, &e,
					      cookie);
	} else {
		struct stat st;

		memset(&st, 0, sizeof st);
		st.st_ino = ino;
		st.st_mode = isdir ? S_IFDIR : S_IFREG;
		need = fuse_add_direntry(d->req, d->buf + d->len,
					 d->size - d->len, name, &st, cookie);
	}
	if (need > d->size - d->len)
		return false;
	d->len += need;
	return true;
}

static bool dir_child(void *ud, uint32_t v)
{
	struct dirbuf *d = ud;
	const struct vz_fs *fs = d->fs;
	const struct node *n = d->dir;
	struct node ch;
	char tmp[16], name[128];
	bool file;

	node_child(fs, n, v, &ch);
	file = node_is_file(fs, &ch);
	snprintf(name, sizeof name, "%s%s",
		 comp_text(fs, &ch, fs->parts[n->tree][n->depth], tmp),
		 file ? fs->ext[n->tree] : "");
	return dir_add(d, name, node_ino(&ch), !file, !file,
		       (off_t)v + COOKIE_BASE);
}

/* List the site's files of the root or of viewer/ after cookie @p ck. */
static bool site_list(struct dirbuf *d, bool in_viewer, off_t off, off_t ck)
{
	const struct vz_wmts_site *s = site_get(d->fs);
	const size_t vl = strlen(VZ_WMTS_VIEWER_DIR);
	bool dir_done = false;

	for (size_t i = 0; s && i < vz_wmts_site_count(s) &&
			   i < INO_SITE_END - INO_SITE_BASE;
	     i++) {
		const struct vz_wmts_file *f = vz_wmts_site_file(s, i);
		const char *slash = strchr(f->path, '/');
		bool viewer = slash && (size_t)(slash - f->path) == vl &&
			      !strncmp(f->path, VZ_WMTS_VIEWER_DIR, vl);

		if (!in_viewer && viewer && !dir_done) {
			/* the viewer/ directory, at its first file's place */
			dir_done = true;
			ck++;
			if (off < ck && !dir_add(d, VZ_WMTS_VIEWER_DIR,
						 INO_VIEWER_DIR, true, true, ck))
				return false;
			continue;
		}
		if (in_viewer != viewer || (!viewer && slash) ||
		    (viewer && strchr(slash + 1, '/')))
			continue;
		ck++;
		if (off < ck && !dir_add(d, viewer ? slash + 1 : f->path,
					 INO_SITE_BASE + i, false, false, ck))
			return false;
	}
	return true;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       bool plus)
{
	struct vz_fs *fs = fuse_req_userdata(req);
	struct dirbuf d = {fs, req, plus, NULL, size, 0, NULL};
	struct node n, parent;
	fuse_ino_t pino = INO_ROOT;
	int rc = 0;

	if (ino != INO_ROOT && ino != INO_META_DIR && ino != INO_VIEWER_DIR) {
		if (!node_decode(fs, ino, &n)) {
			fuse_reply_err(req, ENOTDIR);
			return;
		}
		if (node_is_file(fs, &n)) {
			fuse_reply_err(req, ENOTDIR);
			return;
		}
		if (n.depth > 0) {
			node_parent(fs, &n, &parent);
			pino = node_ino(&parent);
		}
		d.dir = &n;
	}
	if (ino != INO_META_DIR && !index_ready(fs, req))
		return;
	d.buf = malloc(size ? size : 1);
	if (!d.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (off < 1 && !dir_add(&d, ".", ino, true, false, 1))
		goto out;
	if (off < 2 && !dir_add(&d, "..", pino, true, false, 2))
		goto out;
	if (ino == INO_ROOT) {
		/* .vizfs is reachable but not listed: a listing of the mount
		 * is the PDG tree and nothing else */
		static const int order[] = {TREE_GEOTIFF, TREE_STAGED,
					    TREE_WEB};
		off_t ck = COOKIE_BASE;
		for (size_t i = 0; i < VZ_ARRAY_SIZE(order); i++, ck++) {
			struct node t = {.tree = order[i]};
			if (off >= ck + 1 || !fs->tree_ok[t.tree] ||
			    !node_exists(fs, &t))
				continue;
			if (!dir_add(&d, tree_name(t.tree), node_ino(&t), true,
				     true, ck + 1))
				goto out;
		}
		if (off < ck + 1 &&
		    !dir_add(&d, NAME_STAGING_CSV, INO_STAGING_CSV, false,
			     false, ck + 1))
			goto out;
		ck++;
		if (off < ck + 1 &&
		    !dir_add(&d, NAME_RASTERS_CSV, INO_RASTERS_CSV, false,
			     false, ck + 1))
			goto out;
		ck++;
		site_list(&d, false, off, ck);
	} else if (ino == INO_VIEWER_DIR) {
		site_list(&d, true, off, COOKIE_BASE);
	} else if (ino == INO_META_DIR) {
		if (off < COOKIE_BASE + 1 &&
		    !dir_add(&d, NAME_STATUS, INO_STATUS, false, false,
			     COOKIE_BASE + 1))
			goto out;
		if (off < COOKIE_BASE + 2)
			dir_add(&d, NAME_METRICS, INO_METRICS, false, false,
				COOKIE_BASE + 2);
	} else {
		uint64_t start = off >= 2 ? (uint64_t)off - 2 : 0;
		if (start <= UINT32_MAX)
			rc = list_children(fs, &n, (uint32_t)start, dir_child,
					   &d);
	}
out:
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, d.buf, d.len);
	free(d.buf);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, false);
}

static void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, true);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct vz_fs *fs = fuse_req_userdata(req);
	struct statvfs sv;
	uint64_t files = 2;

	memset(&sv, 0, sizeof sv);
	if (vz_service_wait_index(fs->s) == 0) {
		for (int z = fs->c->z_min; z <= fs->c->z_max; z++) {
			const struct vz_tile_key *k;
			size_t cnt;
			vz_service_level(fs->s, z, &k, &cnt);
			files += cnt * (1 + fs->c->n_stats);
			if (z == fs->c->z_max)
				files += cnt;
		}
	}
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_files = files;
	sv.f_namemax = 255;
	sv.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV;
	fuse_reply_statfs(req, &sv);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fuse_reply_none(req); /* stateless inodes: nothing to release */
}

static void fs_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	fuse_reply_none(req);
}

/* ---- read-only: everything that would modify fails with EROFS ----------- */

static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	fuse_reply_err(req, EROFS);
}

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	fuse_reply_err(req, EROFS);
}

static void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	fuse_reply_err(req, EROFS);
}

static void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	fuse_reply_err(req, EROFS);
}

static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	fuse_reply_err(req, EROFS);
}

static void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
			 off_t length, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void fs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			       off_t off_out, struct fuse_file_info *fi_out,
			       size_t len, int flags)
{
	fuse_reply_err(req, EROFS);
}

/* ---- swapping the service (inputs changed while mounted) --------------- */

/* Every operation that touches the service holds the swap lock shared;
 * with no service (a rebuild failed) it answers EIO. */
#define LOCKED(name, call, ...)                                                \
	static void name(fuse_req_t req, __VA_ARGS__)                          \
	{                                                                      \
		struct vz_fs *fs = fuse_req_userdata(req);                     \
		pthread_rwlock_rdlock(&fs->swap);                              \
		if (fs->s)                                                     \
			call;                                                  \
		else                                                           \
			fuse_reply_err(req, EIO);                              \
		pthread_rwlock_unlock(&fs->swap);                              \
	}

LOCKED(locked_lookup, fs_lookup(req, parent, name), fuse_ino_t parent,
       const char *name)
LOCKED(locked_getattr, fs_getattr(req, ino, fi), fuse_ino_t ino,
       struct fuse_file_info *fi)
LOCKED(locked_open, fs_open(req, ino, fi), fuse_ino_t ino,
       struct fuse_file_info *fi)
LOCKED(locked_read, fs_read(req, ino, size, off, fi), fuse_ino_t ino,
       size_t size, off_t off, struct fuse_file_info *fi)
LOCKED(locked_opendir, fs_opendir(req, ino, fi), fuse_ino_t ino,
       struct fuse_file_info *fi)
LOCKED(locked_readdir, fs_readdir(req, ino, size, off, fi), fuse_ino_t ino,
       size_t size, off_t off, struct fuse_file_info *fi)
LOCKED(locked_readdirplus, fs_readdirplus(req, ino, size, off, fi),
       fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
LOCKED(locked_statfs, fs_statfs(req, ino), fuse_ino_t ino)

const struct fuse_lowlevel_ops vz_fs_ops = {
	.init = fs_init,
	.lookup = locked_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = locked_getattr,
	.setattr = fs_setattr,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_unlink,
	.symlink = fs_symlink,
	.rename = fs_rename,
	.link = fs_link,
	.open = locked_open,
	.read = locked_read,
	.write = fs_write,
	.opendir = locked_opendir,
	.readdir = locked_readdir,
	.readdirplus = locked_readdirplus,
	.statfs = locked_statfs,
	.setxattr = fs_setxattr,
	.removexattr = fs_removexattr,
	.create = fs_create,
	.fallocate = fs_fallocate,
	.copy_file_range = fs_copy_file_range,
};

/* ---- lifecycle ------------------------------------------------------------ */

int vz_fs_new(const struct vz_conf *c, struct vz_fs **out)
{
	struct vz_fs *fs = calloc(1, sizeof *fs);
	bool has_style = false;

	*out = NULL;
	if (!fs)
		return -ENOMEM;
	if (pthread_key_create(&fs->buf_key, buf_destroy)) {
		free(fs);
		return -ENOMEM;
	}
	fs->c = c;
	fs->uid = getuid();
	fs->gid = getgid();
	clock_gettime(CLOCK_REALTIME, &fs->t0);
	fs->last_mtime = fs->t0;
	pthread_mutex_init(&fs->time_lock, NULL);
	pthread_mutex_init(&fs->site_lock, NULL);
	pthread_rwlock_init(&fs->swap, NULL);
	for (int i = 0; i < N_SNAPS; i++)
		pthread_mutex_init(&fs->snaps[i].lock, NULL);
	for (int t = TREE_GEOTIFF; t < N_TREES; t++) {
		for (int i = 0; i < c->n_path_parts; i++) {
			if (c->path_parts[i] == VZ_PART_STYLE) {
				has_style = true;
				/* style vanishes outside web_tiles */
				if (t != TREE_WEB)
					continue;
			}
			fs->parts[t][fs->n_parts[t]++] = c->path_parts[i];
		}
		fs->tree_ok[t] = fs->n_parts[t] > 0;
	}
	if (!has_style && c->n_stats != 1)
		fs->tree_ok[TREE_WEB] = false;
	fs->ext[TREE_GEOTIFF] = ".tif";
	fs->ext[TREE_WEB] = c->ext_web_tiles;
	fs->ext[TREE_STAGED] = c->ext_staged;
	*out = fs;
	return 0;
}

void vz_fs_set_service(struct vz_fs *fs, struct vz_service *s)
{
	fs->s = s;
	/* Tiles of a new service are new files: a new mtime, so that HTTP
	 * caches (Last-Modified/ETag from web servers) see the change. */
	if (atomic_load(&fs->generation) > 0) { /* not the first service */
		pthread_mutex_lock(&fs->time_lock);
		clock_gettime(CLOCK_REALTIME, &fs->t0);
		if (fs->t0.tv_sec <= fs->last_mtime.tv_sec)
			fs->t0.tv_sec = fs->last_mtime.tv_sec + 1;
		fs->last_mtime = fs->t0;
		pthread_mutex_unlock(&fs->time_lock);
	}
	/* a new service has a new tile index: the site is made again */
	pthread_mutex_lock(&fs->site_lock);
	VZ_FREEF(vz_wmts_site_free, fs->site);
	fs->site_rc = 0;
	pthread_mutex_unlock(&fs->site_lock);
	/* New inode generations: the kernel drops what it cached of the old
	 * files at their next lookup (fuse_iget sees a stale inode). */
	atomic_fetch_add(&fs->generation, 1);
	for (int i = 0; i < N_SNAPS; i++) {
		pthread_mutex_lock(&fs->snaps[i].lock);
		vz_buf_free(&fs->snaps[i].buf);
		fs->snaps[i].valid = false;
		pthread_mutex_unlock(&fs->snaps[i].lock);
	}
}

void vz_fs_swap_begin(struct vz_fs *fs)
{
	pthread_rwlock_wrlock(&fs->swap);
}

void vz_fs_swap_end(struct vz_fs *fs)
{
	pthread_rwlock_unlock(&fs->swap);
}

void vz_fs_invalidate(struct vz_fs *fs, struct fuse_session *se)
{
	static const char *const top[] = {
		VZ_DIR_WEB_TILES, VZ_DIR_GEOTIFF, VZ_DIR_STAGED,
		"staging_summary.csv", "rasters_summary.csv", ".vizfs",
		VZ_WMTS_CAPABILITIES, VZ_WMTS_INDEX, VZ_WMTS_VIEWER_DIR};

	(void)fs;
	for (size_t i = 0; i < VZ_ARRAY_SIZE(top); i++)
		fuse_lowlevel_notify_inval_entry(se, FUSE_ROOT_ID, top[i],
						 strlen(top[i]));
	fuse_lowlevel_notify_inval_inode(se, FUSE_ROOT_ID, 0, 0);
}

void vz_fs_free(struct vz_fs *fs)
{
	if (!fs)
		return;
	for (int i = 0; i < N_SNAPS; i++) {
		vz_buf_free(&fs->snaps[i].buf);
		pthread_mutex_destroy(&fs->snaps[i].lock);
	}
	pthread_mutex_destroy(&fs->time_lock);
	vz_wmts_site_free(fs->site);
	pthread_mutex_destroy(&fs->site_lock);
	pthread_rwlock_destroy(&fs->swap);
	pthread_key_delete(fs->buf_key);
	free(fs);
}
