/* SPDX-License-Identifier: Apache-2.0 */
/* STUB: to be implemented. */
#include <errno.h>
#include "vizfs/sample.h"
int vz_sample_write(const struct vz_sample_opts *o, const char *path) { return -ENOSYS; }
