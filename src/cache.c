/* SPDX-License-Identifier: Apache-2.0 */
/* STUB: to be implemented. */
#include <errno.h>
#include "vizfs/cache.h"
size_t vz_key_tile(uint8_t *buf, const struct vz_tile_key *k) { return 9; }
void vz_key_tile_parse(const uint8_t *buf, struct vz_tile_key *k) { }
int vz_cache_open(const struct vz_cache_opts *o, struct vz_cache **out) { *out = 0; return -ENOSYS; }
void vz_cache_close(struct vz_cache *c) { }
int vz_cache_get(struct vz_cache *c, enum vz_db db, const void *key, size_t klen, struct vz_buf *out) { return -ENOSYS; }
int vz_cache_has(struct vz_cache *c, enum vz_db db, const void *key, size_t klen) { return -ENOSYS; }
int vz_cache_scan(struct vz_cache *c, enum vz_db db, const void *prefix, size_t plen, vz_scan_fn fn, void *ud) { return -ENOSYS; }
int vz_cache_stat(struct vz_cache *c, enum vz_db db, uint64_t *entries, uint64_t *bytes) { return -ENOSYS; }
void vz_cache_size(struct vz_cache *c, uint64_t *file_bytes, uint64_t *map_bytes) { }
int vz_cache_apply(struct vz_cache *c, const struct vz_cache_op *ops, size_t n) { return -ENOSYS; }
int vz_cache_clear(struct vz_cache *c, const enum vz_db *dbs, size_t n) { return -ENOSYS; }
int vz_writer_start(struct vz_cache *c, struct vz_writer **out) { *out = 0; return -ENOSYS; }
int vz_writer_put(struct vz_writer *w, enum vz_db db, const void *key, size_t klen, const void *val, size_t vlen) { return -ENOSYS; }
int vz_writer_flush(struct vz_writer *w) { return -ENOSYS; }
int vz_writer_stop(struct vz_writer *w) { return -ENOSYS; }
int vz_bands_encode(const double *v, size_t n, struct vz_buf *out) { return -ENOSYS; }
int vz_bands_decode(const void *data, size_t len, double *v, size_t n) { return -ENOSYS; }
