/* SPDX-License-Identifier: Apache-2.0 */
/* STUB: to be implemented. */
#include <errno.h>
#include "vizfs/stage.h"
void vz_stage_stats_add(struct vz_stage_stats *acc, const struct vz_stage_stats *s) { }
int vz_stager_new(const struct vz_conf *c, struct vz_stager **out) { *out = 0; return -ENOSYS; }
void vz_stager_free(struct vz_stager *st) { }
int vz_stage_count(struct vz_stager *st, const struct vz_input *in, uint64_t *n) { return -ENOSYS; }
int vz_stage_range(struct vz_stager *st, const struct vz_input *in, uint32_t idx, uint64_t start, uint64_t count, vz_stage_emit_fn emit, void *ud, struct vz_stage_stats *stats) { return -ENOSYS; }
int vz_stage_prestaged(struct vz_stager *st, const struct vz_input *in, uint32_t idx, struct vz_buf *blob, struct vz_stage_stats *stats) { return -ENOSYS; }
int vz_stage_write_gpkg(struct vz_stager *st, const char *path, const struct vz_tile_key *k, const struct vz_inputs *inputs, const struct vz_buf *blobs, size_t n) { return -ENOSYS; }
