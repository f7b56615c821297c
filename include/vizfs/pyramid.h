/* SPDX-License-Identifier: Apache-2.0 */
/* Parent tiles from their four children (spec §7). */
#ifndef VIZFS_PYRAMID_H
#define VIZFS_PYRAMID_H

#include "vizfs/conf.h"

/**
 * Build a parent tile from children UL, UR, LL, LR (vz_tms_children order).
 * Each child is n_stats planes of tile_h*tile_w doubles, or NULL when the
 * child does not exist (its pixels count as 0).  For the block methods
 * each output pixel is the 2x2 block of the matching child combined with
 * the statistic's resampling_method; the kernel methods resample the
 * merged children with GDAL as the PDG does (see vz_pyramid_build()).
 * tile_w and tile_h are even (checked by vz_conf_load).  Thread-safe.
 */
void vz_pyramid_parent(const struct vz_conf *c, const double *const child[4],
		       double *parent);

/**
 * Same as vz_pyramid_parent(), reporting failures.  The kernel methods
 * (bilinear, cubic, cubic_spline, lanczos, gauss) run GDAL on MEM datasets
 * created for this call; the others never fail.  As rasterio.merge does,
 * kernels see the union of the existing children's quadrants (missing
 * quadrants inside it are 0, its edge is a raster edge); parent pixels
 * outside it are 0.  vz_pyramid_parent() logs a failure and leaves the
 * affected statistics at 0.
 * @return 0, or VZ_E_RENDER when GDAL failed (vz_err_msg() names the
 * statistic and GDAL's message).  Thread-safe.
 */
int vz_pyramid_build(const struct vz_conf *c, const double *const child[4],
		     double *parent);

#endif
