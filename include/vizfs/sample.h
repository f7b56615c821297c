/* SPDX-License-Identifier: Apache-2.0 */
/* Deterministic synthetic ice-wedge polygon sets, written as GeoPackage. */
#ifndef VIZFS_SAMPLE_H
#define VIZFS_SAMPLE_H

#include <stdint.h>

struct vz_sample_opts {
	uint64_t n;	/**< number of features */
	double west, south, east, north; /**< lon/lat box (EPSG:4326) */
	uint64_t seed;
	const char *crs;  /**< output CRS, default "EPSG:3413" (metres) */
	double cell_m;	  /**< mean cell size in metres, default 12 */
	void (*progress)(void *ud, uint64_t done, uint64_t total);
	void *progress_ud;
};

/**
 * Write @p o->n ice-wedge-like polygons (irregular 4-8 vertex cells packed
 * like polygonal tundra, ~1% with a hole, ~1% MultiPolygons of two cells)
 * with attributes "ChangeRateNet_myr-1" (Real), "Area" (Real, m^2) and
 * "Class" (Integer) into a new GeoPackage at @p path (layer "polygons").
 * The cells fill the box row by row from the south-west; if the box is too
 * small for n cells it is extended northwards.  Same options -> same file
 * content.  @return 0 or VZ_E_ENCODE / -errno with vz_err_msg().
 */
int vz_sample_write(const struct vz_sample_opts *o, const char *path);

#endif
