/* SPDX-License-Identifier: Apache-2.0 */
/* Tile matrix sets: tile <-> bounds, parents and children, point -> tile. */
#ifndef VIZFS_TMS_H
#define VIZFS_TMS_H

#include <stdbool.h>
#include <stdint.h>

#include "vizfs/common.h"

/** The system's currency: one tile of one zoom level. */
struct vz_tile_key {
	uint32_t x; /**< column, 0 = west */
	uint32_t y; /**< row, 0 = north */
	uint8_t z;
};

/** Axis-aligned box in TMS CRS units. */
struct vz_bbox {
	double left, bottom, right, top;
};

enum vz_tms_kind {
	VZ_TMS_WORLDCRS84QUAD,
	VZ_TMS_WGS1984QUAD,
	VZ_TMS_WEBMERCATORQUAD,
};

/** A tile matrix set (immutable, static storage; thread-safe). */
struct vz_tms {
	enum vz_tms_kind kind;
	const char *id;	 /**< "WorldCRS84Quad" … as in the config */
	const char *crs; /**< user-input form for OGR/PROJ, e.g. "EPSG:4326" */
	int epsg;	 /**< EPSG code written into GeoTIFFs */
	bool geographic; /**< lon/lat degrees (traditional GIS axis order) */
	double left, top; /**< origin (top-left corner of tile 0/0/0) */
	double span0;	  /**< tile width = height at z0, CRS units */
	uint32_t cols0, rows0; /**< matrix size at z0 */
};

/** Find a TMS by id (case-sensitive, as morecantile). NULL if unknown. */
const struct vz_tms *vz_tms_find(const char *id);

/** Matrix width/height at zoom @p z. */
uint32_t vz_tms_cols(const struct vz_tms *t, int z);
uint32_t vz_tms_rows(const struct vz_tms *t, int z);

/** True if the key lies inside the matrix of its zoom. */
bool vz_tms_valid(const struct vz_tms *t, const struct vz_tile_key *k);

/** Exact bounds of a tile (computed from integers, no accumulated error). */
void vz_tms_bounds(const struct vz_tms *t, const struct vz_tile_key *k,
		   struct vz_bbox *out);

/** Extent of the whole matrix set. */
void vz_tms_extent(const struct vz_tms *t, struct vz_bbox *out);

/**
 * Range of tiles at zoom @p z whose closed boxes intersect the closed box
 * @p b (clamped to the matrix).  @return 0, or -ENOENT if none.
 */
int vz_tms_tile_range(const struct vz_tms *t, int z, const struct vz_bbox *b,
		      uint32_t *x0, uint32_t *y0, uint32_t *x1, uint32_t *y1);

/**
 * The tile owning point (px, py) at zoom z.  Ownership rule (one rule for
 * staging and rasterization, spec Q10): a point on a vertical edge belongs to
 * the western tile, on a horizontal edge to the northern tile; a point on the
 * outer west/north edge of the matrix belongs to the first column/row.
 * @return 0, or -ENOENT if the point lies outside the matrix.
 */
int vz_tms_point_tile(const struct vz_tms *t, int z, double px, double py,
		      struct vz_tile_key *out);

/** Parent (z-1) of @p k. @p k->z must be > 0. */
void vz_tms_parent(const struct vz_tile_key *k, struct vz_tile_key *out);

/** The four children in order UL, UR, LL, LR. */
void vz_tms_children(const struct vz_tile_key *k, struct vz_tile_key out[4]);

#endif
