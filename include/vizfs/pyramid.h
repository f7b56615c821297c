/* SPDX-License-Identifier: Apache-2.0 */
/* Parent tiles from their four children (spec §7). */
#ifndef VIZFS_PYRAMID_H
#define VIZFS_PYRAMID_H

#include "vizfs/conf.h"

/**
 * Build a parent tile from children UL, UR, LL, LR (vz_tms_children order).
 * Each child is n_stats planes of tile_h*tile_w doubles, or NULL when the
 * child does not exist (its pixels count as 0).  Each output pixel is the
 * 2x2 block of the matching child combined with the statistic's
 * resampling_method.  tile_w and tile_h are even (checked by vz_conf_load).
 * Thread-safe.
 */
void vz_pyramid_parent(const struct vz_conf *c, const double *const child[4],
		       double *parent);

#endif
