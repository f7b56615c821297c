/* SPDX-License-Identifier: Apache-2.0 */
/* Small GDAL/OGR helpers shared by the modules that use OGR (private). */
#ifndef VIZFS_GDAL_I_H
#define VIZFS_GDAL_I_H

#include <ogr_srs_api.h>

/* A CRS from any definition OGR accepts ("EPSG:3413", WKT, PROJ string),
 * in traditional GIS axis order (x = lon/easting); NULL if unusable. */
static inline OGRSpatialReferenceH vz_srs_from(const char *def)
{
	OGRSpatialReferenceH s = OSRNewSpatialReference(NULL);

	if (!s)
		return NULL;
	if (OSRSetFromUserInput(s, def) != OGRERR_NONE) {
		OSRDestroySpatialReference(s);
		return NULL;
	}
	OSRSetAxisMappingStrategy(s, OAMS_TRADITIONAL_GIS_ORDER);
	return s;
}

#endif
