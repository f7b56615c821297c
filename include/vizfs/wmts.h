/* SPDX-License-Identifier: Apache-2.0 */
/* OGC WMTS capabilities and the map viewer (index.html) of the web tiles. */
#ifndef VIZFS_WMTS_H
#define VIZFS_WMTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vizfs/common.h"
#include "vizfs/conf.h"
#include "vizfs/tms.h"

/* Names at the root of the tree (mount and export). */
#define VZ_WMTS_CAPABILITIES "WMTSCapabilities.xml"
#define VZ_WMTS_INDEX "index.html"
/** Directory of the viewer's scripts, styles and legends (flat). */
#define VZ_WMTS_VIEWER_DIR "viewer"

/** The tiles with data of one zoom level, sorted by (x, y), as the tile
 *  index holds them (vz_service_level(), the builder's level[]). */
struct vz_wmts_level {
	const struct vz_tile_key *keys;
	size_t n;
};

/**
 * What the generators know about the pyramid besides the config.  Zero
 * the struct, then fill level[z] for z in the config's z_range (other
 * levels are ignored).
 */
struct vz_wmts_input {
	struct vz_wmts_level level[VZ_MAX_ZOOM + 1];
	/**
	 * Optional colour ranges computed per zoom for the ends the config
	 * leaves unset (vizfs_range_mode per_zoom): zrange[z][s] = {min, max},
	 * used where zrange_ok[z].  NULL when unknown: the legend then says
	 * that the end is computed (per zoom or per tile).
	 */
	const double (*zrange)[VZ_MAX_STATS][2];
	const bool *zrange_ok;
	/**
	 * Prefix of every URL in the capabilities document ("https://host/
	 * tiles/"), or NULL for URLs relative to the document (right for a
	 * static tree served as files, as the mount and export are).
	 */
	const char *base_url;
	/** Title of the service and of the viewer page; NULL: "vizfs: " and
	 *  the statistics' names (the same for every tree of a pyramid). */
	const char *title;
};

/**
 * Write the OGC WMTS 1.0.0 capabilities document (RESTful encoding) of the
 * PNG web tiles into @p out (appended): one Layer per statistic with its
 * WGS84BoundingBox (the tiles with data at the deepest level), a Style with
 * a LegendURL (viewer/legend-<stat>.png) and the value range, a
 * TileMatrixSetLink with TileMatrixSetLimits per zoom, and a ResourceURL
 * template that follows tile_path_structure; one TileMatrixSet for the
 * config's TMS with the levels of z_range (matrix sizes from the TMS:
 * 2^(z+1) x 2^z for the geographic quads, 2^z x 2^z for WebMercatorQuad;
 * TopLeftCorner in the CRS's axis order: lat,lon for EPSG:4326).
 * @return 0, -ENOMEM, or VZ_E_CONFIG (a palette that does not parse).
 * Thread-safe.
 */
int vz_wmts_capabilities(const struct vz_conf *c,
			 const struct vz_wmts_input *in, struct vz_buf *out);

/**
 * The URL template of the PNG tiles of statistic @p stat (or of the
 * GeoTIFFs when @p stat < 0) relative to the tree root, following
 * tile_path_structure, with the placeholders @p zs, @p xs and @p ys (e.g.
 * "{TileMatrix}", "{TileCol}", "{TileRow}") and path components
 * percent-encoded for a URL.  @return length, or -ENAMETOOLONG.
 */
int vz_wmts_template(const struct vz_conf *c, int stat, const char *zs,
		     const char *xs, const char *ys, char *buf, size_t n);

/** True if the viewer's assets (the map library) were built in; without
 *  them the site has the capabilities and the legends only. */
bool vz_wmts_have_viewer(void);

/**
 * The generated files of one config and tile index: the capabilities
 * document, index.html and the viewer/ directory (the map library, the
 * viewer's script and style, one legend PNG per statistic).  Immutable
 * once built: may be shared read-only between threads.
 */
struct vz_wmts_site;

/** One file of the site; @p path is relative to the tree root
 *  ("index.html", "viewer/leaflet.js"); directories are implied by '/'. */
struct vz_wmts_file {
	const char *path;
	const uint8_t *data;
	size_t len;
};

/**
 * Build every file of the site.  @return 0, -ENOMEM, or VZ_E_CONFIG /
 * VZ_E_ENCODE with vz_err_msg() naming the statistic.
 */
int vz_wmts_site_new(const struct vz_conf *c, const struct vz_wmts_input *in,
		     struct vz_wmts_site **out);

/** Free a site; NULL-safe. */
void vz_wmts_site_free(struct vz_wmts_site *s);

/** Number of files (root files first, then viewer/ sorted by name). */
size_t vz_wmts_site_count(const struct vz_wmts_site *s);

/** The @p i-th file (i < count); valid until vz_wmts_site_free(). */
const struct vz_wmts_file *vz_wmts_site_file(const struct vz_wmts_site *s,
					     size_t i);

/** The file at tree-relative @p path (a leading "/" is allowed), or NULL.
 *  "viewer" itself is a directory, not a file: see vz_wmts_site_is_dir(). */
const struct vz_wmts_file *vz_wmts_site_find(const struct vz_wmts_site *s,
					     const char *path);

/** True if @p path (tree-relative, no trailing '/') is a directory of the
 *  site ("viewer").  The root is not reported. */
bool vz_wmts_site_is_dir(const struct vz_wmts_site *s, const char *path);

/**
 * Write every file of the site under @p dir (atomically, creating
 * viewer/).  @return 0 or -errno with vz_err_msg() naming the file.
 */
int vz_wmts_site_write(const struct vz_wmts_site *s, const char *dir);

#endif
