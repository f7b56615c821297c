/* SPDX-License-Identifier: Apache-2.0 */
/* STUB: to be implemented. */
#include <errno.h>
#include "vizfs/path.h"
int vz_path_parse(const struct vz_conf *c, const char *path, struct vz_tile_ref *out) { return -ENOENT; }
int vz_path_format(const struct vz_conf *c, const struct vz_tile_ref *r, char *buf, size_t n) { return -ENOSYS; }
