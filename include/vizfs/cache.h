/* SPDX-License-Identifier: Apache-2.0 */
/* LMDB-backed cache: named databases, key layout, batched writer. */
#ifndef VIZFS_CACHE_H
#define VIZFS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vizfs/common.h"
#include "vizfs/tms.h"

/**
 * Named databases of one environment.  Keys are fixed-width big-endian
 * tuples so that cursors walk tiles in (z, x, y) order:
 *  - META:    ASCII keys: "fingerprint", "indexed", "stg/<input>/<start>"
 *             (a staged chunk, value = its counters), "stgtime/<input>",
 *             "failed/<input>" (why an input could not be staged),
 *             "time/stage", "time/z<z>", shard keys ("shard", "shardplan",
 *             "shardsplit", "shard_done")
 *  - STAGED:  z(1) x(4) y(4) input(4) start(8) -> staged blob (staged.h)
 *  - INDEX:   z(1) x(4) y(4) -> u8 flags: the tiles of the pyramid
 *  - BAND:    z(1) x(4) y(4) -> encoded Float64 bands (vz_bands_encode)
 *  - TILE:    z(1) x(4) y(4) k(1) -> bytes: k = statistic index for a PNG,
 *             0xFE GeoTIFF, 0xFF staged GeoPackage (both cached by the
 *             daemon when read)
 *  - SUMMARY: z(1) x(4) y(4) -> n_stats x 7 doubles
 *             (min, max, mean, median, std, var, sum) per band
 */
enum vz_db {
	VZ_DB_META,
	VZ_DB_STAGED,
	VZ_DB_INDEX,
	VZ_DB_BAND,
	VZ_DB_TILE,
	VZ_DB_SUMMARY,
	VZ_DB_COUNT
};

#define VZ_KEY_TILE_LEN 9
#define VZ_KEY_MAX 64

/** Encode z,x,y into the first 9 bytes of @p buf; @return 9. */
size_t vz_key_tile(uint8_t *buf, const struct vz_tile_key *k);
/** Decode the first 9 bytes of a key. */
void vz_key_tile_parse(const uint8_t *buf, struct vz_tile_key *k);

struct vz_cache_opts {
	const char *dir;   /**< environment directory, created if missing */
	uint64_t map_size; /**< initial map size; 0 = 1 GiB; grows when full */
	bool read_only;
};

/**
 * The environment.  Thread-safe: any thread may read; writes go through the
 * single vz_writer.  Open once per process, after forking/daemonising.
 */
struct vz_cache;

/** @return 0, -errno, or VZ_E_CACHE (vz_err_msg() names the directory). */
int vz_cache_open(const struct vz_cache_opts *o, struct vz_cache **out);
/** Close; NULL-safe.  The writer must have been stopped. */
void vz_cache_close(struct vz_cache *c);

/**
 * Copy the value of @p key into @p out (replacing its content).
 * @return 0, -ENOENT, or VZ_E_CACHE.  Uses a short read transaction.
 */
int vz_cache_get(struct vz_cache *c, enum vz_db db, const void *key,
		 size_t klen, struct vz_buf *out);

/** @return 1 if present, 0 if absent, or VZ_E_CACHE. */
int vz_cache_has(struct vz_cache *c, enum vz_db db, const void *key,
		 size_t klen);

/**
 * Walk keys starting with @p prefix (plen may be 0 = all) in key order
 * inside one read transaction; the callback sees pointers valid only during
 * the call.  A non-zero callback return stops the walk and is returned.
 */
typedef int (*vz_scan_fn)(void *ud, const uint8_t *key, size_t klen,
			  const uint8_t *val, size_t vlen);
int vz_cache_scan(struct vz_cache *c, enum vz_db db, const void *prefix,
		  size_t plen, vz_scan_fn fn, void *ud);

/** Entries and bytes (keys + values) of one database. */
int vz_cache_stat(struct vz_cache *c, enum vz_db db, uint64_t *entries,
		  uint64_t *bytes);

/** Current size of the data file and of the map. */
void vz_cache_size(struct vz_cache *c, uint64_t *file_bytes,
		   uint64_t *map_bytes);

/**
 * Drop the map's pages from this process's resident set (they stay in the
 * page cache).  Long builds call it between phases so that RSS reflects
 * the working set, not the whole database.  Thread-safe.
 */
void vz_cache_trim(struct vz_cache *c);

/**
 * Synchronous write transaction for small bookkeeping (meta keys): put
 * (val != NULL) or delete (val == NULL) @p n entries atomically.  Do not
 * use for bulk data; use the writer.  @return 0 or VZ_E_CACHE.
 */
struct vz_cache_op {
	enum vz_db db;
	const void *key;
	size_t klen;
	const void *val; /**< NULL = delete */
	size_t vlen;
};
int vz_cache_apply(struct vz_cache *c, const struct vz_cache_op *ops,
		   size_t n);

/** Empty the listed databases in one transaction. */
int vz_cache_clear(struct vz_cache *c, const enum vz_db *dbs, size_t n);

/**
 * The single writer: a thread that batches queued puts/deletes into one
 * commit (by count, bytes or 100 ms), growing the map on MDB_MAP_FULL.
 * Thread-safe: any thread may queue.  Queued data is copied.  When more than
 * a memory cap is queued, vz_writer_put() blocks until a commit drains it.
 */
struct vz_writer;

int vz_writer_start(struct vz_cache *c, struct vz_writer **out);
/** Queue a put (@p val != NULL) or delete (@p val == NULL). @return 0, or
 *  the error of an earlier failed commit (the writer stops on error). */
int vz_writer_put(struct vz_writer *w, enum vz_db db, const void *key,
		  size_t klen, const void *val, size_t vlen);
/** Commit everything queued so far and wait for it. @return 0 or error. */
int vz_writer_flush(struct vz_writer *w);
/** Flush, stop the thread, free.  @return the flush result. NULL-safe. */
int vz_writer_stop(struct vz_writer *w);

/* Bands: encoded value of VZ_DB_BAND (zero runs compressed). */

/** Encode n doubles (all bands of a tile) into @p out (replacing it). */
int vz_bands_encode(const double *v, size_t n, struct vz_buf *out);
/** Decode into @p v which has room for exactly @p n doubles.
 *  @return 0 or VZ_E_CACHE (wrong size or corrupt). */
int vz_bands_decode(const void *data, size_t len, double *v, size_t n);

#endif
