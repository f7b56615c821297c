/* SPDX-License-Identifier: Apache-2.0 */
/* STUB: to be implemented. */
#include <errno.h>
#include "vizfs/png.h"
int vz_png_encode(const uint8_t *rgba, uint32_t w, uint32_t h, struct vz_buf *out) { return -ENOSYS; }
int vz_png_decode(const uint8_t *data, size_t len, uint32_t *w, uint32_t *h, struct vz_buf *rgba) { return -ENOSYS; }
