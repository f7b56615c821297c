/* SPDX-License-Identifier: Apache-2.0 */
/* GeoTIFF tiles through GDAL's GTiff driver. */
#ifndef VIZFS_GEOTIFF_H
#define VIZFS_GEOTIFF_H

#include "vizfs/common.h"
#include "vizfs/conf.h"
#include "vizfs/tms.h"

/**
 * Encode one tile: one Float64 band per statistic (band description = stat
 * name), no nodata, no compression, georeferenced in the TMS CRS with the
 * exact tile bounds, AREA_OR_POINT=Area.  @p bands holds n_stats planes of
 * tile_h*tile_w values, row 0 = north.  Appends to @p out.
 * @return 0 or VZ_E_ENCODE.  Thread-safe (GDAL errors are captured per
 * thread; every call uses its own /vsimem/ file).
 */
int vz_geotiff_encode(const struct vz_conf *c, const struct vz_tile_key *k,
		      const double *bands, struct vz_buf *out);

/** One-time GDAL/OGR driver registration; call before threads start. */
void vz_gdal_init(void);

#endif
