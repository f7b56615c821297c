/* SPDX-License-Identifier: Apache-2.0 */
/* STUB: to be implemented. */
#include <errno.h>
#include "vizfs/staged.h"
int vz_staged_begin(struct vz_buf *blob, uint32_t n_attrs) { return -ENOSYS; }
int vz_staged_append(struct vz_buf *blob, const struct vz_staged_rec *r) { return -ENOSYS; }
int vz_staged_iter_init(struct vz_staged_iter *it, const void *data, size_t len) { return -ENOSYS; }
int vz_staged_next(struct vz_staged_iter *it, struct vz_staged_rec *out) { return -ENOSYS; }
