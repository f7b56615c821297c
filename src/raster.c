/* SPDX-License-Identifier: Apache-2.0 */
/* STUB: to be implemented. */
#include <errno.h>
#include "vizfs/raster.h"
int vz_raster_new(const struct vz_conf *c, struct vz_raster **out) { *out = 0; return -ENOSYS; }
void vz_raster_free(struct vz_raster *r) { }
void vz_raster_begin(struct vz_raster *r, const struct vz_bbox *tile) { }
int vz_raster_add(struct vz_raster *r, const struct vz_poly *p) { return -ENOSYS; }
void vz_raster_finish(struct vz_raster *r, double *bands) { }
int vz_coverage(const struct vz_poly *p, const struct vz_bbox *box, uint32_t w, uint32_t h, double *cov) { return -ENOSYS; }
