/* SPDX-License-Identifier: Apache-2.0 */
/* Input discovery: raw vector files or a pre-staged PDG tree; fingerprints. */
#ifndef VIZFS_INPUT_H
#define VIZFS_INPUT_H

#include <stdbool.h>
#include <stdint.h>

#include "vizfs/conf.h"
#include "vizfs/tms.h"

struct vz_input {
	char *path;	  /**< absolute or as found */
	char *relname;	  /**< path relative to dir_input (staging_filename) */
	int64_t size;	  /**< bytes (sum over sidecar files for .shp) */
	int64_t mtime_ns; /**< newest mtime or ctime over the file and its
			       sidecars (a chmod counts as a change) */
	bool prestaged;	  /**< a PDG staged tile: key below is its tile */
	struct vz_tile_key key;
};

struct vz_inputs {
	struct vz_input *v; /**< sorted by path (deterministic order) */
	size_t n;
	bool prestaged;	    /**< the pre-staged (rasterize-only) path */
	char fingerprint[33]; /**< over paths, sizes and mtimes */
};

enum vz_input_mode {
	VZ_INPUT_AUTO,	 /**< dir_input files, else an existing staged tree */
	VZ_INPUT_RAW,	 /**< raw vector files only */
	VZ_INPUT_STAGED, /**< the dir_staged tree only (--staged) */
};

/**
 * Find the inputs: @p files if given (raw vector files), else a recursive
 * walk of dir_input for names ending in ext_input; in AUTO mode, when that
 * finds nothing and dir_staged holds <TMS>/<max_z>/<x>/<y><ext_staged>
 * files, those are taken as pre-staged tiles.  @return 0, -ENOENT when no
 * input at all (vz_err_msg() says where it looked), VZ_E_INPUT for an
 * unreadable path.  Not thread-safe with respect to the file system.
 */
int vz_inputs_discover(const struct vz_conf *c, const char *const *files,
		       size_t n_files, enum vz_input_mode mode,
		       struct vz_inputs **out);
void vz_inputs_free(struct vz_inputs *in);

#endif
