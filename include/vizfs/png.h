/* SPDX-License-Identifier: Apache-2.0 */
/* 8-bit RGBA PNG encoding with libpng. */
#ifndef VIZFS_PNG_H
#define VIZFS_PNG_H

#include <stdint.h>

#include "vizfs/common.h"

/**
 * Encode @p w x @p h RGBA pixels (row-major, 4 bytes each) as an 8-bit RGBA
 * PNG (colour type 6) appended to @p out.  Deterministic bytes for the same
 * input and libpng/zlib.  @return 0 or VZ_E_ENCODE.  Thread-safe (libpng
 * errors are caught with setjmp inside this call).
 */
int vz_png_encode(const uint8_t *rgba, uint32_t w, uint32_t h,
		  struct vz_buf *out);

/** Decode an 8-bit RGBA PNG (for tests). @return 0 or VZ_E_ENCODE. */
int vz_png_decode(const uint8_t *data, size_t len, uint32_t *w, uint32_t *h,
		  struct vz_buf *rgba);

#endif
