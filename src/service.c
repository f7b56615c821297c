/* SPDX-License-Identifier: Apache-2.0 */
/* STUB: being written by the lead. */
#include <errno.h>
#include "vizfs/service.h"
int vz_service_start(struct vz_builder *b, const struct vz_service_opts *o, struct vz_service **out) { *out = 0; return -ENOSYS; }
void vz_service_stop(struct vz_service *s) { }
int vz_service_wait_index(struct vz_service *s) { return -ENOSYS; }
void vz_service_level(struct vz_service *s, int z, const struct vz_tile_key **keys, size_t *n) { *keys = 0; *n = 0; }
bool vz_service_has_tile(struct vz_service *s, const struct vz_tile_key *k) { return false; }
void vz_service_request(struct vz_service *s, const struct vz_tile_ref *r, vz_ready_fn cb, void *ud) { cb(ud, -ENOSYS, 0); }
int vz_service_read(struct vz_service *s, const struct vz_tile_ref *r, uint64_t off, size_t len, struct vz_buf *out) { return -ENOSYS; }
int vz_service_csv(struct vz_service *s, char which, struct vz_buf *out) { return -ENOSYS; }
void vz_service_get_stats(struct vz_service *s, struct vz_service_stats *out) { }
int vz_service_status_json(struct vz_service *s, struct vz_buf *out) { return -ENOSYS; }
