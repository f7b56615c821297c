/* SPDX-License-Identifier: Apache-2.0 */
/* Max-zoom rasterization: centroid counts, exact coverage, attribute stats. */
#ifndef VIZFS_RASTER_H
#define VIZFS_RASTER_H

#include <stdbool.h>
#include <stdint.h>

#include "vizfs/conf.h"
#include "vizfs/tms.h"

/**
 * One polygon in TMS CRS coordinates, as staged.  Ring 0 is the exterior,
 * the others are holes; ring orientation is arbitrary (the rasterizer
 * normalises it); rings may be closed (first == last) or not.
 */
struct vz_poly {
	double cx, cy;	     /**< centroid of the whole polygon */
	double area;	     /**< planar area of the whole polygon */
	const double *attrs; /**< vz_conf.n_attrs values, NaN = NULL */
	uint32_t n_rings;
	const uint32_t *ring_len; /**< points per ring */
	const double *xy;	  /**< all rings' points, x0,y0,x1,y1,… */
};

/** Per-worker rasterizer with its scratch memory. Not thread-safe: one per
 *  worker. */
struct vz_raster;

/** @return 0 or -ENOMEM. */
int vz_raster_new(const struct vz_conf *c, struct vz_raster **out);
void vz_raster_free(struct vz_raster *r);

/** Start a tile: the pixel grid is tile_w x tile_h over @p tile. */
void vz_raster_begin(struct vz_raster *r, const struct vz_bbox *tile);

/**
 * Add one polygon: its centroid counts in the pixel owning it (half-open
 * rule: a pixel owns cols[c] < x <= cols[c+1] and rows[r+1] <= y < rows[r];
 * centroids outside the grid do not count); its area is split exactly over
 * the pixels it covers (polygon ∩ pixel area / pixel area, no
 * supersampling).  @return 0 or -ENOMEM.
 */
int vz_raster_add(struct vz_raster *r, const struct vz_poly *p);

/**
 * Finish the tile: write n_stats planes of tile_h*tile_w Float64 values
 * (row 0 = north) to @p bands.  Pixels without any contribution are 0;
 * |coverage| below 1e-12 is stored as exactly 0.
 */
void vz_raster_finish(struct vz_raster *r, double *bands);

/** Coverage helper exposed for tests: accumulate the exact area fraction of
 *  polygon @p p over a w x h grid on @p box into @p cov (w*h, row 0 north). */
int vz_coverage(const struct vz_poly *p, const struct vz_bbox *box, uint32_t w,
		uint32_t h, double *cov);

#endif
