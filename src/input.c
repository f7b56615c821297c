/* SPDX-License-Identifier: Apache-2.0 */
/* STUB: to be implemented. */
#include <errno.h>
#include "vizfs/input.h"
int vz_inputs_discover(const struct vz_conf *c, const char *const *files, size_t n_files, enum vz_input_mode mode, struct vz_inputs **out) { *out = 0; return -ENOSYS; }
void vz_inputs_free(struct vz_inputs *in) { }
