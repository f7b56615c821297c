/* SPDX-License-Identifier: Apache-2.0 */
/* Serialized staged polygons: the value format of the cache's staged DB. */
#ifndef VIZFS_STAGED_H
#define VIZFS_STAGED_H

#include <stdint.h>

#include "vizfs/common.h"
#include "vizfs/raster.h"

/**
 * One staged polygon as stored for one tile.
 *
 * Blob layout (native endianness, every field 8-byte aligned so that a blob
 * in a malloc'd buffer can be read in place):
 *   header: u32 magic "VZS1", u32 n_attrs
 *   record: f64 cx, cy, area; f64 attrs[n_attrs]; i64 fid; u32 input,
 *           u32 part; u32 n_rings, u32 n_points(total);
 *           u32 ring_len[n_rings] padded to 8 bytes; f64 xy[2*n_points]
 */
struct vz_staged_rec {
	struct vz_poly poly;
	int64_t fid;	/**< feature id in the input file */
	uint32_t input; /**< index of the input file (vz_inputs order) */
	uint32_t part;	/**< part number of an exploded MultiPolygon */
};

/** Start a blob (writes the header into an empty @p blob). */
int vz_staged_begin(struct vz_buf *blob, uint32_t n_attrs);

/** Append one record. @return 0 or -ENOMEM. */
int vz_staged_append(struct vz_buf *blob, const struct vz_staged_rec *r);

/** Iterator over a blob; the blob must stay alive and 8-byte aligned. */
struct vz_staged_iter {
	const uint8_t *p, *end;
	uint32_t n_attrs;
};

/** @return 0, or VZ_E_CACHE if the header is wrong. */
int vz_staged_iter_init(struct vz_staged_iter *it, const void *data,
			size_t len);

/** Next record (pointers into the blob). @return 1, 0 at the end, or
 *  VZ_E_CACHE for a truncated/corrupt record. */
int vz_staged_next(struct vz_staged_iter *it, struct vz_staged_rec *out);

#endif
