/* SPDX-License-Identifier: Apache-2.0 */
/* Paths of the PDG tree (web_tiles/…, geotiff/…, staged/…) <-> tile refs. */
#ifndef VIZFS_PATH_H
#define VIZFS_PATH_H

#include <stddef.h>

#include "vizfs/conf.h"
#include "vizfs/tms.h"

/* Top-level directory names of the tree (mount and export). */
#define VZ_DIR_GEOTIFF "geotiff"
#define VZ_DIR_WEB_TILES "web_tiles"
#define VZ_DIR_STAGED "staged"

enum vz_kind {
	VZ_KIND_STAGED,	 /**< staged/<…>.gpkg, max zoom only */
	VZ_KIND_GEOTIFF, /**< geotiff/<…>.tif */
	VZ_KIND_PNG,	 /**< web_tiles/<…>.png, one per statistic */
};

/** One file of the tree. */
struct vz_tile_ref {
	enum vz_kind kind;
	int stat; /**< statistic index for VZ_KIND_PNG, else -1 */
	struct vz_tile_key key;
};

/**
 * Parse a tree-relative path such as
 * "web_tiles/coverage/WorldCRS84Quad/5/3/2.png" following the config's
 * tile_path_structure.  Strict: decimal numbers without sign or leading
 * zeros, in-range x/y/z (z within z_range; staged only at max z), exact
 * extension, no empty, "." or ".." components.  A leading "/" is allowed.
 * @return 0, or -ENOENT for anything that is not a tile path.  Thread-safe.
 */
int vz_path_parse(const struct vz_conf *c, const char *path,
		  struct vz_tile_ref *out);

/**
 * Format the tree-relative path of @p r (no leading "/").
 * @return length written, or -ENAMETOOLONG if @p n is too small.
 */
int vz_path_format(const struct vz_conf *c, const struct vz_tile_ref *r,
		   char *buf, size_t n);

#endif
