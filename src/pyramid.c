/* SPDX-License-Identifier: Apache-2.0 */
/* STUB: to be implemented. */
#include <errno.h>
#include "vizfs/pyramid.h"
void vz_pyramid_parent(const struct vz_conf *c, const double *const child[4], double *parent) { }
