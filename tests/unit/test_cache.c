/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of the LMDB cache: databases, scans, map growth, writer, bands. */
#include "vt.h"
#include "vizfs/cache.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static char root[512];

static const char *subdir(const char *name)
{
	static char path[8][640];
	static int slot;
	char *p = path[slot++ % 8];

	snprintf(p, sizeof path[0], "%s/%s", root, name);
	return p;
}

static struct vz_cache *open_at(const char *dir, uint64_t map, bool ro)
{
	struct vz_cache_opts o = {.dir = dir, .map_size = map, .read_only = ro};
	struct vz_cache *c = NULL;
	int rc = vz_cache_open(&o, &c);

	if (rc)
		fprintf(stderr, "open %s: %d %s\n", dir, rc, vz_err_msg());
	return c;
}

/* Deterministic value bytes of (seed, len): splitmix64 stream. */
static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t s = seed, v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (i % 8 == 0)
			v = mix(&s);
		p[i] = (uint8_t)(v >> (8 * (i % 8)));
	}
}

static bool check_fill(const uint8_t *p, size_t n, uint64_t seed)
{
	uint8_t *q = malloc(n ? n : 1);
	bool ok;

	fill(q, n, seed);
	ok = memcmp(p, q, n) == 0;
	free(q);
	return ok;
}

/* Keys */

static void test_keys(void)
{
	struct vz_tile_key a = {.z = 7, .x = 0x01020304, .y = 0xa0b0c0d0};
	struct vz_tile_key b;
	uint8_t ka[VZ_KEY_TILE_LEN], kb[VZ_KEY_TILE_LEN];
	uint64_t s = 1;
	int i;

	VT_EQ_INT(vz_key_tile(ka, &a), 9);
	VT_EQ_INT(ka[0], 7);
	VT_EQ_INT(ka[1], 0x01);
	VT_EQ_INT(ka[4], 0x04);
	VT_EQ_INT(ka[5], 0xa0);
	VT_EQ_INT(ka[8], 0xd0);
	vz_key_tile_parse(ka, &b);
	VT_EQ_INT(b.z, 7);
	VT_EQ_INT(b.x, 0x01020304);
	VT_EQ_INT(b.y, 0xa0b0c0d0);

	/* memcmp order of keys == (z, x, y) tuple order */
	for (i = 0; i < 20000; i++) {
		uint64_t r = mix(&s), q = mix(&s);
		int want, got;

		a.z = r & 3;
		a.x = (uint32_t)(r >> 8) % 5 * 0x01000001u;
		a.y = (uint32_t)(r >> 32);
		b.z = q & 3;
		b.x = (uint32_t)(q >> 8) % 5 * 0x01000001u;
		b.y = (i % 3 == 0) ? a.y : (uint32_t)(q >> 32);
		vz_key_tile(ka, &a);
		vz_key_tile(kb, &b);
		want = a.z != b.z ? (a.z < b.z ? -1 : 1) :
		       a.x != b.x ? (a.x < b.x ? -1 : 1) :
		       a.y != b.y ? (a.y < b.y ? -1 : 1) :
				    0;
		got = memcmp(ka, kb, 9);
		got = got < 0 ? -1 : got > 0;
		if (got != want) {
			VT_EQ_INT(got, want);
			break;
		}
	}
	VT_CHECK(i == 20000);
}

/* Basic get/put/has/delete in every database */

static void test_basic(void)
{
	const char *dir = subdir("a/b/basic"); /* mkdir -p */
	struct vz_cache *c = open_at(dir, 0, false);
	struct vz_buf buf = {0};
	uint64_t file = 0, map = 0;
	int db;

	VT_CHECK(c != NULL);
	if (!c)
		return;
	vz_cache_size(c, &file, &map);
	VT_EQ_INT(map, (uint64_t)1 << 30);
	VT_CHECK(file > 0);

	for (db = 0; db < VZ_DB_COUNT; db++) {
		char key[16], val[32];
		struct vz_cache_op op = {db, key, 0, val, 0};

		snprintf(key, sizeof key, "k%d", db);
		snprintf(val, sizeof val, "value of db %d", db);
		op.klen = strlen(key);
		op.vlen = strlen(val);
		VT_EQ_INT(vz_cache_has(c, db, key, op.klen), 0);
		VT_EQ_INT(vz_cache_get(c, db, key, op.klen, &buf), -ENOENT);
		VT_EQ_INT(vz_cache_apply(c, &op, 1), 0);
		VT_EQ_INT(vz_cache_has(c, db, key, op.klen), 1);
		VT_EQ_INT(vz_cache_get(c, db, key, op.klen, &buf), 0);
		VT_EQ_INT(buf.len, op.vlen);
		VT_CHECK(buf.len == op.vlen &&
			 memcmp(buf.data, val, op.vlen) == 0);
	}
	/* databases are separate: k0 lives only in META */
	VT_EQ_INT(vz_cache_has(c, VZ_DB_META, "k0", 2), 1);
	VT_EQ_INT(vz_cache_has(c, VZ_DB_TILE, "k0", 2), 0);

	/* atomic multi-op apply with a delete; deleting nothing is fine */
	{
		struct vz_cache_op ops[3] = {
			{VZ_DB_META, "k0", 2, NULL, 0},
			{VZ_DB_META, "config", 6, "{}", 2},
			{VZ_DB_META, "missing", 7, NULL, 0},
		};
		VT_EQ_INT(vz_cache_apply(c, ops, 3), 0);
		VT_EQ_INT(vz_cache_has(c, VZ_DB_META, "k0", 2), 0);
		VT_EQ_INT(vz_cache_get(c, VZ_DB_META, "config", 6, &buf), 0);
		VT_CHECK(buf.len == 2 && memcmp(buf.data, "{}", 2) == 0);
	}
	/* get replaces the buffer content */
	VT_EQ_INT(vz_cache_get(c, VZ_DB_TILE, "k4", 2, &buf), 0);
	VT_CHECK(buf.len == strlen("value of db 4"));

	/* bad arguments */
	VT_EQ_INT(vz_cache_get(c, VZ_DB_COUNT, "k", 1, &buf), -EINVAL);
	VT_EQ_INT(vz_cache_has(c, VZ_DB_META, "", 0), -EINVAL);
	{
		char big[VZ_KEY_MAX + 1];
		memset(big, 'x', sizeof big);
		VT_EQ_INT(vz_cache_has(c, VZ_DB_META, big, sizeof big),
			  -EINVAL);
	}

	vz_buf_free(&buf);
	vz_cache_close(c);
	vz_cache_close(NULL);
}

/* Scans, stat, clear, persistence, read-only */

struct scan_acc {
	uint8_t keys[512][VZ_KEY_TILE_LEN];
	int n;
	int stop_after;
	bool vals_ok;
};

static int scan_cb(void *ud, const uint8_t *key, size_t klen,
		   const uint8_t *val, size_t vlen)
{
	struct scan_acc *a = ud;
	struct vz_tile_key k;

	if (klen != VZ_KEY_TILE_LEN || a->n >= 512)
		return -99;
	vz_key_tile_parse(key, &k);
	/* the value spells the key */
	{
		char want[32];
		int n = snprintf(want, sizeof want, "%u/%u/%u", k.z, k.x, k.y);
		if (vlen != (size_t)n || memcmp(val, want, vlen))
			a->vals_ok = false;
	}
	memcpy(a->keys[a->n++], key, klen);
	if (a->stop_after && a->n == a->stop_after)
		return 42;
	return 0;
}

static void put_tiles(struct vz_writer *w, int *count)
{
	int z, i, n = 0;

	/* deepest zoom first, cells in a permuted order */
	for (z = 4; z >= 0; z--) {
		int side = 1 << z, cells = side * side;
		for (i = 0; i < cells; i++) {
			int j = (int)((uint32_t)i * 7919u % (uint32_t)cells);
			struct vz_tile_key k = {.z = (uint8_t)z,
						.x = (uint32_t)(j % side),
						.y = (uint32_t)(j / side)};
			uint8_t key[VZ_KEY_TILE_LEN];
			char val[32];
			int len;

			if (z == 2 && k.x == 1)
				k.x = 0x01000000u; /* a big x: BE matters */
			len = snprintf(val, sizeof val, "%u/%u/%u", k.z, k.x,
				       k.y);
			vz_key_tile(key, &k);
			VT_EQ_INT(vz_writer_put(w, VZ_DB_INDEX, key, 9, val,
						(size_t)len),
				  0);
			n++;
		}
	}
	*count = n;
}

static void test_scan_persist(void)
{
	const char *dir = subdir("scan");
	struct vz_cache *c = open_at(dir, 0, false);
	struct vz_writer *w = NULL;
	struct scan_acc *a = calloc(1, sizeof *a);
	struct vz_buf buf = {0};
	uint64_t ent = 0, bytes = 0;
	int total = 0, i, z;

	VT_CHECK(c != NULL);
	if (!c)
		return;
	VT_EQ_INT(vz_writer_start(c, &w), 0);
	put_tiles(w, &total);
	VT_EQ_INT(total, 1 + 4 + 16 + 64 + 256);
	VT_EQ_INT(vz_writer_stop(w), 0);

	/* all keys, in (z, x, y) order */
	a->vals_ok = true;
	VT_EQ_INT(vz_cache_scan(c, VZ_DB_INDEX, NULL, 0, scan_cb, a), 0);
	VT_EQ_INT(a->n, total);
	VT_CHECK(a->vals_ok);
	for (i = 1; i < a->n; i++) {
		struct vz_tile_key p, q;
		vz_key_tile_parse(a->keys[i - 1], &p);
		vz_key_tile_parse(a->keys[i], &q);
		if (!(p.z < q.z ||
		      (p.z == q.z &&
		       (p.x < q.x || (p.x == q.x && p.y < q.y))))) {
			VT_CHECK(!"scan out of (z,x,y) order");
			break;
		}
	}
	/* prefix: one zoom level, and one column */
	for (z = 0; z <= 4; z++) {
		uint8_t pre = (uint8_t)z;
		memset(a, 0, sizeof *a);
		a->vals_ok = true;
		VT_EQ_INT(vz_cache_scan(c, VZ_DB_INDEX, &pre, 1, scan_cb, a),
			  0);
		VT_EQ_INT(a->n, 1 << (2 * z));
		VT_CHECK(a->vals_ok);
		for (i = 0; i < a->n; i++)
			VT_EQ_INT(a->keys[i][0], z);
	}
	{
		uint8_t pre[5] = {3, 0, 0, 0, 5}; /* z=3, x=5 */
		memset(a, 0, sizeof *a);
		VT_EQ_INT(vz_cache_scan(c, VZ_DB_INDEX, pre, 5, scan_cb, a), 0);
		VT_EQ_INT(a->n, 8);
		for (i = 0; i < a->n; i++)
			VT_EQ_INT(vz_get_be32(a->keys[i] + 5), i);
		pre[0] = 9; /* no such zoom */
		memset(a, 0, sizeof *a);
		VT_EQ_INT(vz_cache_scan(c, VZ_DB_INDEX, pre, 1, scan_cb, a), 0);
		VT_EQ_INT(a->n, 0);
	}
	/* callback stops the walk */
	memset(a, 0, sizeof *a);
	a->stop_after = 3;
	VT_EQ_INT(vz_cache_scan(c, VZ_DB_INDEX, NULL, 0, scan_cb, a), 42);
	VT_EQ_INT(a->n, 3);

	/* stat: entries and key+value bytes */
	{
		uint64_t want = 0;
		int zz;
		VT_EQ_INT(vz_cache_stat(c, VZ_DB_INDEX, &ent, &bytes), 0);
		VT_EQ_INT(ent, total);
		for (zz = 0; zz <= 4; zz++) {
			int side = 1 << zz, x, y;
			for (x = 0; x < side; x++)
				for (y = 0; y < side; y++) {
					char v[32];
					uint32_t xx = (zz == 2 && x == 1) ?
							      0x01000000u :
							      (uint32_t)x;
					want += 9 +
						(uint64_t)snprintf(v, sizeof v,
								   "%d/%u/%d",
								   zz, xx, y);
				}
		}
		VT_EQ_INT(bytes, want);
		VT_EQ_INT(vz_cache_stat(c, VZ_DB_TILE, &ent, &bytes), 0);
		VT_EQ_INT(ent, 0);
		VT_EQ_INT(bytes, 0);
	}
	{
		struct vz_cache_op op = {VZ_DB_TILE, "t", 1, "png", 3};
		struct vz_cache_op m = {VZ_DB_META, "config", 6, "cfg", 3};
		VT_EQ_INT(vz_cache_apply(c, &op, 1), 0);
		VT_EQ_INT(vz_cache_apply(c, &m, 1), 0);
	}
	vz_cache_close(c);

	/* persistence across close/reopen */
	c = open_at(dir, 0, false);
	VT_CHECK(c != NULL);
	if (!c)
		goto out;
	VT_EQ_INT(vz_cache_stat(c, VZ_DB_INDEX, &ent, NULL), 0);
	VT_EQ_INT(ent, total);
	VT_EQ_INT(vz_cache_get(c, VZ_DB_TILE, "t", 1, &buf), 0);
	VT_CHECK(buf.len == 3 && memcmp(buf.data, "png", 3) == 0);

	/* clear empties the listed databases only */
	{
		enum vz_db dbs[2] = {VZ_DB_INDEX, VZ_DB_TILE};
		VT_EQ_INT(vz_cache_clear(c, dbs, 2), 0);
		VT_EQ_INT(vz_cache_stat(c, VZ_DB_INDEX, &ent, NULL), 0);
		VT_EQ_INT(ent, 0);
		VT_EQ_INT(vz_cache_has(c, VZ_DB_TILE, "t", 1), 0);
		VT_EQ_INT(vz_cache_has(c, VZ_DB_META, "config", 6), 1);
	}
	vz_cache_close(c);

	/* read-only: reads work, writes refused */
	c = open_at(dir, 0, true);
	VT_CHECK(c != NULL);
	if (c) {
		struct vz_cache_op m = {VZ_DB_META, "x", 1, "y", 1};
		VT_EQ_INT(vz_cache_get(c, VZ_DB_META, "config", 6, &buf), 0);
		VT_CHECK(buf.len == 3 && memcmp(buf.data, "cfg", 3) == 0);
		VT_EQ_INT(vz_cache_apply(c, &m, 1), -EROFS);
		VT_EQ_INT(vz_writer_start(c, &w), -EROFS);
		VT_CHECK(w == NULL);
		VT_CHECK(strstr(vz_err_msg(), dir) != NULL);
		vz_cache_close(c);
	}
	/* read-only open of a missing directory fails and names it */
	{
		struct vz_cache_opts o = {.dir = subdir("nope/none"),
					  .read_only = true};
		struct vz_cache *c2 = (void *)1;
		int rc = vz_cache_open(&o, &c2);
		VT_CHECK(rc < 0);
		VT_CHECK(c2 == NULL);
		VT_CHECK(strstr(vz_err_msg(), "nope/none") != NULL);
		VT_EQ_INT(access(o.dir, F_OK), -1);
	}
out:
	vz_buf_free(&buf);
	free(a);
}

/* Writer semantics */

static void test_flush_order(void)
{
	struct vz_cache *c = open_at(subdir("flush"), 0, false);
	struct vz_writer *w = NULL;
	struct vz_buf buf = {0};
	double t0;
	int i, visible;

	VT_CHECK(c != NULL);
	if (!c)
		return;
	VT_EQ_INT(vz_writer_start(c, &w), 0);
	VT_EQ_INT(vz_writer_flush(w), 0); /* nothing queued */

	VT_EQ_INT(vz_writer_put(w, VZ_DB_TILE, "a", 1, "v1", 2), 0);
	VT_EQ_INT(vz_writer_flush(w), 0);
	VT_EQ_INT(vz_cache_get(c, VZ_DB_TILE, "a", 1, &buf), 0);
	VT_CHECK(buf.len == 2 && memcmp(buf.data, "v1", 2) == 0);

	/* queue order wins for one key: put, delete, put */
	VT_EQ_INT(vz_writer_put(w, VZ_DB_TILE, "a", 1, "v2", 2), 0);
	VT_EQ_INT(vz_writer_put(w, VZ_DB_TILE, "a", 1, NULL, 0), 0);
	VT_EQ_INT(vz_writer_put(w, VZ_DB_TILE, "a", 1, "v3", 2), 0);
	VT_EQ_INT(vz_writer_put(w, VZ_DB_TILE, "b", 1, "x", 1), 0);
	VT_EQ_INT(vz_writer_put(w, VZ_DB_TILE, "b", 1, NULL, 0), 0);
	/* many overwrites of one key in one batch: the last wins */
	for (i = 0; i < 5000; i++) {
		char v[16];
		int n = snprintf(v, sizeof v, "%d", i);
		VT_EQ_INT(vz_writer_put(w, VZ_DB_META, "n", 1, v, (size_t)n),
			  0);
	}
	VT_EQ_INT(vz_writer_flush(w), 0);
	VT_EQ_INT(vz_cache_get(c, VZ_DB_TILE, "a", 1, &buf), 0);
	VT_CHECK(buf.len == 2 && memcmp(buf.data, "v3", 2) == 0);
	VT_EQ_INT(vz_cache_has(c, VZ_DB_TILE, "b", 1), 0);
	VT_EQ_INT(vz_cache_get(c, VZ_DB_META, "n", 1, &buf), 0);
	VT_CHECK(buf.len == 4 && memcmp(buf.data, "4999", 4) == 0);

	/* without a flush, the 100 ms timer commits a lone put */
	VT_EQ_INT(vz_writer_put(w, VZ_DB_TILE, "late", 4, "z", 1), 0);
	t0 = vz_now();
	visible = 0;
	while (vz_now() - t0 < 2.0) {
		visible = vz_cache_has(c, VZ_DB_TILE, "late", 4);
		if (visible)
			break;
		usleep(5000);
	}
	VT_EQ_INT(visible, 1);
	VT_CHECK(vz_now() - t0 >= 0.05);

	/* invalid arguments do not poison the writer */
	VT_EQ_INT(vz_writer_put(w, VZ_DB_TILE, "", 0, "z", 1), -EINVAL);
	VT_EQ_INT(vz_writer_put(w, VZ_DB_COUNT, "k", 1, "z", 1), -EINVAL);
	VT_EQ_INT(vz_writer_put(w, VZ_DB_TILE, "ok", 2, "z", 1), 0);
	VT_EQ_INT(vz_writer_stop(w), 0); /* stop flushes */
	VT_EQ_INT(vz_cache_has(c, VZ_DB_TILE, "ok", 2), 1);
	VT_EQ_INT(vz_writer_stop(NULL), 0);
	vz_buf_free(&buf);
	vz_cache_close(c);
}

/* A tiny map that must grow while 50 MB go through the writer */

static void test_growth(void)
{
	const char *dir = subdir("grow");
	struct vz_cache *c = open_at(dir, 256 << 10, false);
	struct vz_writer *w = NULL;
	struct vz_buf buf = {0};
	size_t vlen = 1 << 20;
	uint8_t *v = malloc(vlen);
	uint64_t file, map, ent;
	int i, bad = 0;

	VT_CHECK(c != NULL);
	if (!c)
		goto out;
	vz_cache_size(c, &file, &map);
	VT_CHECK(map < (1 << 20));
	VT_EQ_INT(vz_writer_start(c, &w), 0);
	for (i = 0; i < 50; i++) {
		uint32_t k = (uint32_t)i;
		uint8_t key[4];
		vz_put_be32(key, k);
		fill(v, vlen, 1000 + (uint64_t)i);
		VT_EQ_INT(vz_writer_put(w, VZ_DB_BAND, key, 4, v, vlen), 0);
		/* and small entries interleaved */
		fill(v, 100, 5000 + (uint64_t)i);
		VT_EQ_INT(vz_writer_put(w, VZ_DB_SUMMARY, key, 4, v, 100), 0);
	}
	VT_EQ_INT(vz_writer_flush(w), 0);
	/* grow through the synchronous path too */
	for (i = 0; i < 8; i++) {
		uint8_t key[5] = {'s', 0, 0, 0, (uint8_t)i};
		struct vz_cache_op op = {VZ_DB_STAGED, key, 5, v, vlen};
		fill(v, vlen, 9000 + (uint64_t)i);
		VT_EQ_INT(vz_cache_apply(c, &op, 1), 0);
	}
	VT_EQ_INT(vz_writer_stop(w), 0);
	vz_cache_size(c, &file, &map);
	VT_CHECK(map >= 58u << 20);
	VT_CHECK(file >= 58u << 20);
	VT_CHECK(file <= map);
	for (i = 0; i < 50; i++) {
		uint8_t key[4];
		vz_put_be32(key, (uint32_t)i);
		if (vz_cache_get(c, VZ_DB_BAND, key, 4, &buf) ||
		    buf.len != vlen || !check_fill(buf.data, vlen, 1000 + i))
			bad++;
		if (vz_cache_get(c, VZ_DB_SUMMARY, key, 4, &buf) ||
		    buf.len != 100 || !check_fill(buf.data, 100, 5000 + i))
			bad++;
	}
	VT_EQ_INT(bad, 0);
	VT_EQ_INT(vz_cache_stat(c, VZ_DB_STAGED, &ent, NULL), 0);
	VT_EQ_INT(ent, 8);
	vz_cache_close(c);

	/* reopening with a small requested map keeps the grown one */
	c = open_at(dir, 256 << 10, false);
	VT_CHECK(c != NULL);
	if (c) {
		uint64_t map2;
		uint8_t key[4];
		vz_cache_size(c, &file, &map2);
		VT_CHECK(map2 >= 58u << 20);
		vz_put_be32(key, 49);
		VT_EQ_INT(vz_cache_get(c, VZ_DB_BAND, key, 4, &buf), 0);
		VT_CHECK(buf.len == vlen && check_fill(buf.data, vlen, 1049));
		vz_cache_close(c);
	}
out:
	vz_buf_free(&buf);
	free(v);
}

/* Many producers and readers at once, while the map grows */

#define N_PUT_THREADS 4
#define N_READ_THREADS 3
#define PER_THREAD 3000

struct conc {
	struct vz_cache *c;
	struct vz_writer *w;
	int id;
	int errors;
	int seen;
	atomic_int *stop;
};

static size_t conc_len(uint32_t t, uint32_t i)
{
	return 16 + (size_t)((t * 131u + i * 17u) % 6000);
}

static void conc_key(uint8_t key[8], uint32_t t, uint32_t i)
{
	vz_put_be32(key, t);
	vz_put_be32(key + 4, i);
}

static void *conc_put(void *arg)
{
	struct conc *a = arg;
	uint8_t *v = malloc(8192);
	uint32_t i;

	for (i = 0; i < PER_THREAD; i++) {
		uint8_t key[8];
		size_t n = conc_len((uint32_t)a->id, i);
		conc_key(key, (uint32_t)a->id, i);
		fill(v, n, ((uint64_t)a->id << 32) | i);
		if (vz_writer_put(a->w, VZ_DB_TILE, key, 8, v, n))
			a->errors++;
		if (i % 997 == 0 && vz_writer_flush(a->w))
			a->errors++;
	}
	free(v);
	return NULL;
}

static void *conc_read(void *arg)
{
	struct conc *a = arg;
	struct vz_buf buf = {0};
	uint64_t s = (uint64_t)a->id;

	while (!atomic_load(a->stop)) {
		uint64_t r = mix(&s);
		uint32_t t = (uint32_t)(r % N_PUT_THREADS);
		uint32_t i = (uint32_t)((r >> 8) % PER_THREAD);
		uint8_t key[8];
		int rc;

		conc_key(key, t, i);
		rc = vz_cache_get(a->c, VZ_DB_TILE, key, 8, &buf);
		if (rc == 0) {
			a->seen++;
			if (buf.len != conc_len(t, i) ||
			    !check_fill(buf.data, buf.len,
					((uint64_t)t << 32) | i))
				a->errors++;
		} else if (rc != -ENOENT) {
			a->errors++;
		}
	}
	vz_buf_free(&buf);
	return NULL;
}

static void test_concurrent(void)
{
	struct vz_cache *c = open_at(subdir("conc"), 1 << 20, false);
	struct vz_writer *w = NULL;
	pthread_t pt[N_PUT_THREADS], rt[N_READ_THREADS];
	struct conc pa[N_PUT_THREADS], ra[N_READ_THREADS];
	atomic_int stop = 0;
	uint64_t ent, map;
	int i, errors = 0, seen = 0;

	VT_CHECK(c != NULL);
	if (!c)
		return;
	VT_EQ_INT(vz_writer_start(c, &w), 0);
	for (i = 0; i < N_READ_THREADS; i++) {
		ra[i] = (struct conc){c, w, 100 + i, 0, 0, &stop};
		pthread_create(&rt[i], NULL, conc_read, &ra[i]);
	}
	for (i = 0; i < N_PUT_THREADS; i++) {
		pa[i] = (struct conc){c, w, i, 0, 0, &stop};
		pthread_create(&pt[i], NULL, conc_put, &pa[i]);
	}
	for (i = 0; i < N_PUT_THREADS; i++) {
		pthread_join(pt[i], NULL);
		errors += pa[i].errors;
	}
	VT_EQ_INT(vz_writer_flush(w), 0);
	usleep(50000);
	atomic_store(&stop, 1);
	for (i = 0; i < N_READ_THREADS; i++) {
		pthread_join(rt[i], NULL);
		errors += ra[i].errors;
		seen += ra[i].seen;
	}
	VT_EQ_INT(errors, 0);
	VT_CHECK(seen > 0);
	VT_EQ_INT(vz_writer_stop(w), 0);
	VT_EQ_INT(vz_cache_stat(c, VZ_DB_TILE, &ent, NULL), 0);
	VT_EQ_INT(ent, N_PUT_THREADS * PER_THREAD);
	vz_cache_size(c, NULL, &map);
	VT_CHECK(map > 1 << 20); /* it had to grow */
	printf("concurrent: %d verified reads during writes, map %llu MiB\n",
	       seen, (unsigned long long)(map >> 20));
	vz_cache_close(c);
}

/* A full disk (simulated with RLIMIT_FSIZE) gives a sticky error */

static void test_disk_full(void)
{
	pid_t pid;
	int status = 0;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		const char *dir = subdir("df");
		struct vz_cache *c = open_at(dir, 0, false);
		struct vz_writer *w = NULL;
		struct rlimit rl = {4 << 20, 4 << 20};
		uint8_t *v = calloc(1, 1 << 20);
		int i, rc = 0, fails = 0;

		if (!c || !v || vz_writer_start(c, &w))
			_exit(10);
		signal(SIGXFSZ, SIG_IGN);
		setrlimit(RLIMIT_FSIZE, &rl);
		for (i = 0; i < 16 && !rc; i++) {
			uint8_t key[4];
			vz_put_be32(key, (uint32_t)i);
			v[0] = (uint8_t)i;
			rc = vz_writer_put(w, VZ_DB_BAND, key, 4, v, 1 << 20);
		}
		if (!rc)
			rc = vz_writer_flush(w);
		if (rc != VZ_E_CACHE)
			fails |= 1;
		if (!strstr(vz_err_msg(), dir) ||
		    !strstr(vz_err_msg(), "is full"))
			fails |= 2;
		/* sticky */
		if (vz_writer_put(w, VZ_DB_BAND, "k", 1, "v", 1) != VZ_E_CACHE)
			fails |= 4;
		if (vz_writer_flush(w) != VZ_E_CACHE)
			fails |= 8;
		if (vz_writer_stop(w) != VZ_E_CACHE)
			fails |= 16;
		if (fails)
			fprintf(stderr, "disk full: fails %d rc %d msg '%s'\n",
				fails, rc, vz_err_msg());
		vz_cache_close(c);
		free(v);
		_exit(fails);
	}
	VT_CHECK(pid > 0);
	if (pid <= 0)
		return;
	waitpid(pid, &status, 0);
	VT_CHECK(WIFEXITED(status));
	VT_EQ_INT(WEXITSTATUS(status), 0);
}

/* One open per process; scans that call back into the cache */

struct nest {
	struct vz_cache *c;
	struct vz_writer *w;
	int n, bad;
};

static int nest_cb(void *ud, const uint8_t *key, size_t klen,
		   const uint8_t *val, size_t vlen)
{
	struct nest *a = ud;
	struct vz_buf b = {0};

	/* a nested read of the same key sees the same bytes */
	if (vz_cache_get(a->c, VZ_DB_INDEX, key, klen, &b) || b.len != vlen ||
	    memcmp(b.data, val, vlen))
		a->bad++;
	vz_buf_free(&b);
	/* queueing from inside a scan is allowed, flushing is refused */
	if (vz_writer_put(a->w, VZ_DB_TILE, key, klen, val, vlen))
		a->bad++;
	if (a->n++ == 0 && vz_writer_flush(a->w) != -EDEADLK)
		a->bad++;
	return 0;
}

static void test_open_nested(void)
{
	const char *dir = subdir("nest");
	struct vz_cache *c = open_at(dir, 0, false), *c2 = (void *)1;
	struct vz_cache_opts o = {.dir = dir};
	struct vz_writer *w = NULL;
	struct nest a = {0};
	uint64_t ent = 0;
	int i;

	VT_CHECK(c != NULL);
	if (!c)
		return;
	/* a second open of the same directory in this process is refused */
	VT_EQ_INT(vz_cache_open(&o, &c2), -EBUSY);
	VT_CHECK(c2 == NULL);
	o.read_only = true;
	VT_EQ_INT(vz_cache_open(&o, &c2), -EBUSY);

	for (i = 0; i < 50; i++) {
		uint8_t key[4];
		struct vz_cache_op op = {VZ_DB_INDEX, key, 4, key, 4};
		vz_put_be32(key, (uint32_t)i * 3);
		VT_EQ_INT(vz_cache_apply(c, &op, 1), 0);
	}
	VT_EQ_INT(vz_writer_start(c, &w), 0);
	a.c = c;
	a.w = w;
	VT_EQ_INT(vz_cache_scan(c, VZ_DB_INDEX, NULL, 0, nest_cb, &a), 0);
	VT_EQ_INT(a.n, 50);
	VT_EQ_INT(a.bad, 0);
	VT_EQ_INT(vz_writer_stop(w), 0);
	VT_EQ_INT(vz_cache_stat(c, VZ_DB_TILE, &ent, NULL), 0);
	VT_EQ_INT(ent, 50);
	vz_cache_close(c);

	/* closed: it can be opened again */
	o.read_only = false;
	c = NULL;
	VT_EQ_INT(vz_cache_open(&o, &c), 0);
	vz_cache_close(c);
}

/* A long scan while the map must grow does not stall other readers */

struct slow {
	struct vz_cache *c;
	atomic_int *phase;
	double max_wait;
	int n;
};

static int slow_cb(void *ud, const uint8_t *key, size_t klen,
		   const uint8_t *val, size_t vlen)
{
	struct slow *a = ud;

	if (a->n++ == 0)
		atomic_store(a->phase, 1);
	usleep(3000);
	return 0;
}

static void *slow_scan(void *arg)
{
	struct slow *a = arg;

	if (vz_cache_scan(a->c, VZ_DB_INDEX, NULL, 0, slow_cb, a))
		a->n = -1;
	atomic_store(a->phase, 2);
	return NULL;
}

static void *quick_reads(void *arg)
{
	struct slow *a = arg;
	struct vz_buf b = {0};

	while (atomic_load(a->phase) < 2) {
		double t0 = vz_now(), dt;
		if (vz_cache_get(a->c, VZ_DB_META, "m", 1, &b) == 0)
			a->n++;
		else
			a->n = -1000000;
		dt = vz_now() - t0;
		if (dt > a->max_wait)
			a->max_wait = dt;
		usleep(500);
	}
	vz_buf_free(&b);
	return NULL;
}

static void test_growth_vs_scan(void)
{
	struct vz_cache *c = open_at(subdir("gscan"), 1 << 20, false);
	struct vz_writer *w = NULL;
	atomic_int phase = 0;
	struct slow sa = {c, &phase, 0, 0}, ra = {c, &phase, 0, 0};
	struct vz_cache_op m = {VZ_DB_META, "m", 1, "v", 1};
	pthread_t st, rt;
	uint8_t *v = calloc(1, 1 << 20);
	uint64_t map0, map1;
	double t0, t_flush;
	int i;

	VT_CHECK(c != NULL);
	if (!c)
		goto out;
	VT_EQ_INT(vz_cache_apply(c, &m, 1), 0);
	for (i = 0; i < 300; i++) {
		uint8_t key[4];
		struct vz_cache_op op = {VZ_DB_INDEX, key, 4, "x", 1};
		vz_put_be32(key, (uint32_t)i);
		VT_EQ_INT(vz_cache_apply(c, &op, 1), 0);
	}
	vz_cache_size(c, NULL, &map0);
	VT_EQ_INT(vz_writer_start(c, &w), 0);
	pthread_create(&st, NULL, slow_scan, &sa);
	while (atomic_load(&phase) < 1)
		usleep(100);
	pthread_create(&rt, NULL, quick_reads, &ra);
	t0 = vz_now();
	for (i = 0; i < 8; i++) {
		uint8_t key[4];
		vz_put_be32(key, (uint32_t)i);
		v[0] = (uint8_t)i;
		VT_EQ_INT(vz_writer_put(w, VZ_DB_BAND, key, 4, v, 1 << 20), 0);
	}
	VT_EQ_INT(vz_writer_flush(w), 0);
	t_flush = vz_now() - t0;
	pthread_join(st, NULL);
	pthread_join(rt, NULL);
	VT_EQ_INT(sa.n, 300);
	VT_CHECK(ra.n > 10);
	vz_cache_size(c, NULL, &map1);
	VT_CHECK(map1 > map0);
	/* the growth had to wait for the scan (about 0.9 s)… */
	VT_CHECK(t_flush > 0.3);
	/* …but the other reader was never held up for long */
	VT_CHECK(ra.max_wait < 0.5);
	printf("growth vs scan: flush waited %.2f s, reader max wait %.1f ms\n",
	       t_flush, ra.max_wait * 1e3);
	VT_EQ_INT(vz_writer_stop(w), 0);
	vz_cache_close(c);
out:
	free(v);
}

/* Another process grows the map: this one adopts it (MDB_MAP_RESIZED) */

static void test_other_process(void)
{
	const char *dir = subdir("mproc");
	struct vz_cache *c = open_at(dir, 1 << 20, false);
	struct vz_buf b = {0};
	int pfd[2], status = 0, i, bad = 0;
	uint64_t map;
	pid_t pid;

	VT_CHECK(c != NULL);
	if (!c || pipe(pfd))
		return;
	{
		struct vz_cache_op op = {VZ_DB_META, "p", 1, "parent", 6};
		VT_EQ_INT(vz_cache_apply(c, &op, 1), 0);
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		/* never touch the parent's env here: open our own */
		struct vz_cache *cc;
		struct vz_writer *w;
		uint8_t *v = malloc(1 << 20);
		char ch;
		int rc = 0;

		close(pfd[1]);
		if (read(pfd[0], &ch, 1) != 1)
			_exit(3);
		cc = open_at(dir, 1 << 20, false);
		if (!cc || !v || vz_writer_start(cc, &w))
			_exit(4);
		for (i = 0; i < 24 && !rc; i++) {
			uint8_t key[4];
			vz_put_be32(key, (uint32_t)i);
			fill(v, 1 << 20, 700 + (uint64_t)i);
			rc = vz_writer_put(w, VZ_DB_BAND, key, 4, v, 1 << 20);
		}
		if (rc || vz_writer_stop(w))
			_exit(5);
		vz_cache_close(cc);
		_exit(0);
	}
	close(pfd[0]);
	VT_CHECK(pid > 0);
	if (pid <= 0)
		return;
	VT_EQ_INT(write(pfd[1], "g", 1), 1);
	close(pfd[1]);
	waitpid(pid, &status, 0);
	VT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* our map is still 1 MiB; the data now lies beyond it */
	for (i = 0; i < 24; i++) {
		uint8_t key[4];
		vz_put_be32(key, (uint32_t)i);
		if (vz_cache_get(c, VZ_DB_BAND, key, 4, &b) ||
		    b.len != 1 << 20 || !check_fill(b.data, b.len, 700 + i))
			bad++;
	}
	VT_EQ_INT(bad, 0);
	vz_cache_size(c, NULL, &map);
	VT_CHECK(map >= 24u << 20);
	{
		struct vz_cache_op op = {VZ_DB_META, "p2", 2, "again", 5};
		VT_EQ_INT(vz_cache_apply(c, &op, 1), 0);
		VT_EQ_INT(vz_cache_get(c, VZ_DB_META, "p", 1, &b), 0);
		VT_CHECK(b.len == 6 && memcmp(b.data, "parent", 6) == 0);
	}
	vz_buf_free(&b);
	vz_cache_close(c);
}

/* Bands */

static void roundtrip(const double *v, size_t n, size_t *enc_len)
{
	struct vz_buf b = {0};
	double *d = malloc((n ? n : 1) * sizeof *d);

	VT_EQ_INT(vz_bands_encode(v, n, &b), 0);
	VT_EQ_INT(vz_bands_decode(b.data, b.len, d, n), 0);
	VT_CHECK(n == 0 || memcmp(v, d, n * sizeof *d) == 0);
	if (enc_len)
		*enc_len = b.len;
	/* the wrong count is refused */
	VT_EQ_INT(vz_bands_decode(b.data, b.len, d, n + 1), VZ_E_CACHE);
	free(d);
	vz_buf_free(&b);
}

static void test_bands(void)
{
	size_t n = 4 * 256 * 256, len = 0, i;
	double *v = calloc(n, sizeof *v), *d = malloc(n * sizeof *d);
	struct vz_buf b = {0};
	uint64_t s = 3;
	double t0;
	int k, rejected;

	/* all zero: tiny */
	roundtrip(v, n, &len);
	VT_CHECK(len < 32);
	roundtrip(v, 0, &len);
	roundtrip(v, 1, &len);

	/* dense random: about 8 bytes per value */
	for (i = 0; i < n; i++) {
		uint64_t u = mix(&s);
		memcpy(&v[i], &u, 8);
		if (v[i] == 0.0 || v[i] != v[i])
			v[i] = 1.5;
	}
	roundtrip(v, n, &len);
	VT_CHECK(len <= n * 8 + 32);

	/* mixed runs: zero blocks, isolated zeros, runs at both ends */
	for (i = 0; i < n; i++) {
		size_t r = i % 1000;
		v[i] = r < 600 ? 0.0 : r == 700 ? 0.0 : (double)i * 0.25;
	}
	roundtrip(v, n, &len);
	VT_CHECK(len < n * 8 / 2);
	v[0] = 5.0;
	v[n - 1] = 0.0;
	roundtrip(v, n, NULL);
	v[n - 1] = 7.0;
	roundtrip(v, n, NULL);
	/* alternating: the worst case */
	for (i = 0; i < n; i++)
		v[i] = (i & 1) ? 1.0 : 0.0;
	roundtrip(v, n, &len);
	VT_CHECK(len <= n * 9 + 32);

	/* -0.0, NaNs and infinities are kept bit-exact, not zero runs */
	{
		double sp[12];
		uint64_t nan1 = 0x7ff8000000000001ULL,
			 nan2 = 0xfff4000000000abcULL;
		memset(sp, 0, sizeof sp);
		sp[1] = -0.0;
		memcpy(&sp[2], &nan1, 8);
		memcpy(&sp[3], &nan2, 8);
		sp[4] = INFINITY;
		sp[5] = -INFINITY;
		sp[6] = -0.0;
		sp[8] = 4.9e-324; /* smallest subnormal */
		roundtrip(sp, 12, NULL);
		VT_EQ_INT(vz_bands_encode(sp, 12, &b), 0);
		VT_EQ_INT(vz_bands_decode(b.data, b.len, d, 12), 0);
		VT_CHECK(signbit(d[1]) && d[1] == 0.0);
		VT_CHECK(!signbit(d[0]) && !signbit(d[7]));
		VT_CHECK(memcmp(&d[2], &nan1, 8) == 0);
		VT_CHECK(memcmp(&d[3], &nan2, 8) == 0);
		VT_CHECK(isinf(d[4]) && d[4] > 0 && isinf(d[5]) && d[5] < 0);
		VT_CHECK(d[8] == 4.9e-324);
	}

	/* corrupt and truncated inputs are rejected */
	for (i = 0; i < 64; i++)
		v[i] = (i % 5 == 0) ? 0.0 : (double)i;
	VT_EQ_INT(vz_bands_encode(v, 64, &b), 0);
	rejected = 0;
	for (i = 0; i < b.len; i++)
		if (vz_bands_decode(b.data, i, d, 64) == VZ_E_CACHE)
			rejected++;
	VT_EQ_INT(rejected, b.len); /* every strict prefix */
	{
		uint8_t *x = malloc(b.len + 1);
		memcpy(x, b.data, b.len);
		x[b.len] = 0;
		VT_EQ_INT(vz_bands_decode(x, b.len + 1, d, 64), VZ_E_CACHE);
		x[0] ^= 1; /* magic */
		VT_EQ_INT(vz_bands_decode(x, b.len, d, 64), VZ_E_CACHE);
		x[0] ^= 1;
		VT_EQ_INT(vz_bands_decode(x, b.len, d, 64), 0);
		free(x);
	}
	VT_EQ_INT(vz_bands_decode(NULL, 0, d, 0), VZ_E_CACHE);
	{
		/* hand-made: runs that overrun n, empty run, huge varint */
		static const uint8_t over[] = {'V', 'Z', 'B', '1', 4, 3, 2};
		static const uint8_t empty[] = {'V', 'Z', 'B', '1', 4,
						0,   0,	  4,   0};
		static const uint8_t huge[] = {'V',  'Z',  'B',	 '1',
					       2,    0xff, 0xff, 0xff,
					       0xff, 0xff, 0xff, 0xff,
					       0xff, 0xff, 0x7f, 0};
		static const uint8_t zeros[] = {'V', 'Z', 'B', '1', 3, 3, 0};
		VT_EQ_INT(vz_bands_decode(over, sizeof over, d, 4), VZ_E_CACHE);
		VT_EQ_INT(vz_bands_decode(empty, sizeof empty, d, 4),
			  VZ_E_CACHE);
		VT_EQ_INT(vz_bands_decode(huge, sizeof huge, d, 2), VZ_E_CACHE);
		d[0] = d[1] = d[2] = 9.0;
		VT_EQ_INT(vz_bands_decode(zeros, sizeof zeros, d, 3), 0);
		VT_CHECK(d[0] == 0.0 && d[1] == 0.0 && d[2] == 0.0);
	}
	/* random byte flips never crash and never overrun */
	for (k = 0; k < 2000; k++) {
		uint8_t *x = malloc(b.len);
		size_t pos = (size_t)(mix(&s) % b.len);
		memcpy(x, b.data, b.len);
		x[pos] ^= (uint8_t)(1 + mix(&s) % 255);
		(void)vz_bands_decode(x, b.len, d, 64);
		free(x);
	}
	VT_CHECK(strstr(vz_err_msg(), "band") != NULL ||
		 vz_err_msg()[0] == '\0');

	/* speed, printed: a 1 MiB tile of 4 bands, half empty */
	for (i = 0; i < n; i++)
		v[i] = (i / 4096) % 2 ? (double)i : 0.0;
	t0 = vz_now();
	for (k = 0; k < 200; k++)
		vz_bands_encode(v, n, &b);
	printf("bands encode: %.0f MiB/s\n",
	       200.0 * n * 8 / (1 << 20) / (vz_now() - t0));
	t0 = vz_now();
	for (k = 0; k < 200; k++)
		vz_bands_decode(b.data, b.len, d, n);
	printf("bands decode: %.0f MiB/s\n",
	       200.0 * n * 8 / (1 << 20) / (vz_now() - t0));

	vz_buf_free(&b);
	free(v);
	free(d);
}

/* Writer throughput, printed: 2000 x 1 MiB */

static void bench_writer(void)
{
	const char *dir = subdir("bench");
	struct vz_cache *c = open_at(dir, 0, false);
	struct vz_writer *w = NULL;
	size_t vlen = 1 << 20;
	uint8_t *v = malloc(vlen);
	uint64_t ent = 0;
	double t0, dt;
	int i, rc = 0;
	char cmd[700];

	VT_CHECK(c != NULL);
	if (!c || !v)
		goto out;
	fill(v, vlen, 42);
	VT_EQ_INT(vz_writer_start(c, &w), 0);
	t0 = vz_now();
	for (i = 0; i < 2000 && !rc; i++) {
		struct vz_tile_key k = {.z = 11,
					.x = (uint32_t)(i % 50),
					.y = (uint32_t)(i / 50)};
		uint8_t key[9];
		vz_key_tile(key, &k);
		memcpy(v, &i, sizeof i);
		rc = vz_writer_put(w, VZ_DB_BAND, key, 9, v, vlen);
	}
	VT_EQ_INT(rc, 0);
	VT_EQ_INT(vz_writer_stop(w), 0);
	dt = vz_now() - t0;
	printf("writer: 2000 x 1 MiB in %.2f s = %.0f MiB/s\n", dt, 2000 / dt);
	VT_EQ_INT(vz_cache_stat(c, VZ_DB_BAND, &ent, NULL), 0);
	VT_EQ_INT(ent, 2000);
	vz_cache_close(c);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", dir);
out:
	free(v);
}

int main(void)
{
	char cmd[700];

	snprintf(root, sizeof root, "%s", vt_tmpdir());
	test_keys();
	test_basic();
	test_scan_persist();
	test_flush_order();
	test_growth();
	test_concurrent();
	test_open_nested();
	test_growth_vs_scan();
	test_other_process();
	test_disk_full();
	test_bands();
	/* A measurement, not a check: 2 GB of writes, only on request
	 * (VT_BENCH=1), so that sanitizer and CI runs stay short. */
	if (getenv("VT_BENCH"))
		bench_writer();

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", root);
	return vt_done("test_cache");
}
