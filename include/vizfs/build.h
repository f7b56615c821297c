/* SPDX-License-Identifier: Apache-2.0 */
/* The pipeline: stage -> max-z bands -> parents -> PNGs, memoised in LMDB. */
#ifndef VIZFS_BUILD_H
#define VIZFS_BUILD_H

#include <stdbool.h>
#include <stdint.h>

#include "vizfs/cache.h"
#include "vizfs/conf.h"
#include "vizfs/input.h"
#include "vizfs/path.h"
#include "vizfs/stage.h"

/** Progress of a long phase; called from one thread at a time. */
typedef void (*vz_build_progress_fn)(void *ud, const char *phase,
				     uint64_t done, uint64_t total);

struct vz_build_opts {
	int workers;		 /**< 0 = conf->workers or number of CPUs */
	enum vz_input_mode mode; /**< raw / pre-staged / auto */
	const char *const *files; /**< explicit raw inputs (may be NULL) */
	size_t n_files;
	const char *cache_dir; /**< overrides conf->cache_dir when set */
	vz_build_progress_fn progress;
	void *progress_ud;
	volatile int *cancel; /**< set non-zero (e.g. by SIGINT) to stop */
	bool read_only;	      /**< never write: info on a cache */
	int shard_index;      /**< this shard, 0..shard_count-1 */
	int shard_count;      /**< 0: not sharded */
};

/** Per-zoom state for `vizfs info`. */
struct vz_zoom_info {
	uint64_t tiles;	 /**< tiles of the pyramid at this zoom */
	uint64_t bands;	 /**< of those, rasterized */
	uint64_t pngs;	 /**< PNG files present (all statistics) */
	uint64_t band_bytes, png_bytes;
	double seconds; /**< time the last build of this level's bands took */
};

struct vz_info {
	bool staged;	/**< staging complete, tile index built */
	bool fresh;	/**< cache matches the config and inputs */
	size_t n_inputs;
	bool prestaged;
	uint64_t staged_rows, staged_bytes;
	struct vz_zoom_info z[VZ_MAX_ZOOM + 1];
	uint64_t file_bytes, map_bytes;
	struct vz_stage_stats stage;
	double stage_seconds; /**< time the last staging run took */
};

/**
 * A pipeline over one config and one cache: owns the cache, the inputs, the
 * worker pool and the writer.  Not thread-safe: one caller thread.
 */
struct vz_builder;

/**
 * Open the cache and discover the inputs.  When the stored fingerprint of
 * the config and inputs differs, the cache is emptied (stale tiles are never
 * served).  @return 0, or an error with vz_err_msg() naming the cause.
 */
int vz_builder_open(const struct vz_conf *c, const struct vz_build_opts *o,
		    struct vz_builder **out);
void vz_builder_close(struct vz_builder *b);

/** Stage every input not yet staged and build the tile index. */
int vz_builder_stage(struct vz_builder *b);

/**
 * Build bands and PNGs for zooms [zmin, zmax] (levels deeper than zmax are
 * built as far as parents need them), deepest first.  Resumes whatever an
 * earlier run left.  @return 0, -ECANCELED, or the first tile error.
 */
int vz_builder_prefetch(struct vz_builder *b, int zmin, int zmax);

/**
 * The bytes of one file of the tree (GeoTIFF, PNG or staged GeoPackage)
 * into @p out (replacing its content), computing and caching whatever it
 * needs.  @return 0, -ENOENT for a tile
 * without data, or an error.
 */
int vz_builder_get(struct vz_builder *b, const struct vz_tile_ref *r,
		   struct vz_buf *out);

/**
 * Merge shard caches (built with shard_count = n) into this builder's cache:
 * verifies that they come from the same config, inputs and plan, that all
 * n shards are there once and complete (the message names the one that is
 * not), copies their tiles, then builds the levels above the split zoom and
 * the zoom-range PNGs.  The result equals a single-process build.
 */
int vz_builder_merge(struct vz_builder *b, const char *const *dirs,
		     size_t n);

/** Write the PDG tree and CSV summaries under @p dir (builds first). */
int vz_builder_export(struct vz_builder *b, const char *dir);

/** rasters_summary.csv (spec §9.1) of the cached tiles into @p out. */
int vz_builder_rasters_csv(struct vz_builder *b, struct vz_buf *out);

/** staging_summary.csv (spec §5) of the staged data into @p out. */
int vz_builder_staging_csv(struct vz_builder *b, struct vz_buf *out);

/** Cache state. */
int vz_builder_info(struct vz_builder *b, struct vz_info *out);

/** The inputs in use. */
const struct vz_inputs *vz_builder_inputs(const struct vz_builder *b);

/** Work done by this builder so far (not counting what was cached):
 *  staging chunks, tiles rasterized or resampled, PNGs encoded. */
void vz_builder_counters(const struct vz_builder *b, uint64_t *staged_chunks,
			 uint64_t *rendered, uint64_t *pngs);

/** Staging counters accumulated over every staged chunk. */
void vz_builder_stage_stats(const struct vz_builder *b,
			    struct vz_stage_stats *out);

#endif
