/* SPDX-License-Identifier: Apache-2.0 */
/* STUB: to be implemented. */
#include <errno.h>
#include "vizfs/palette.h"
int vz_color_parse(const char *s, struct vz_color *out) { return -ENOSYS; }
int vz_lut_build(const char *const *palette, size_t n, const char *nodata_color, struct vz_lut *out) { return -ENOSYS; }
void vz_lut_apply(const struct vz_lut *lut, const double *band, size_t n, double min, double max, bool has_nodata, double nodata, uint8_t *rgba) { }
