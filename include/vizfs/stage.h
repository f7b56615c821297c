/* SPDX-License-Identifier: Apache-2.0 */
/* Staging (spec §2): read, explode, repair, simplify, reproject, assign. */
#ifndef VIZFS_STAGE_H
#define VIZFS_STAGE_H

#include <stdint.h>

#include "vizfs/common.h"
#include "vizfs/conf.h"
#include "vizfs/input.h"
#include "vizfs/staged.h"

/** Counters for the summary; add with vz_stage_stats_add(). */
struct vz_stage_stats {
	uint64_t features;	   /**< features read */
	uint64_t polygons;	   /**< polygons staged (after exploding) */
	uint64_t multi_exploded;   /**< MultiPolygon features exploded */
	uint64_t repaired;	   /**< invalid geometries repaired */
	uint64_t skipped_invalid;  /**< dropped: could not be repaired */
	uint64_t skipped_type;	   /**< dropped: not polygonal */
	uint64_t skipped_empty;	   /**< dropped: empty or NULL geometry */
	uint64_t skipped_outside;  /**< dropped: outside the TMS extent */
	uint64_t null_attrs;	   /**< NULL/non-numeric statistic attributes */
	uint64_t rows;		   /**< (polygon, tile) copies written */
};
void vz_stage_stats_add(struct vz_stage_stats *acc,
			const struct vz_stage_stats *s);

/**
 * Per-worker staging context: its own GEOS handle, PROJ/OGR coordinate
 * transformation and OGR dataset handles.  Not thread-safe: one per worker,
 * created in the worker.
 */
struct vz_stager;

int vz_stager_new(const struct vz_conf *c, struct vz_stager **out);
void vz_stager_free(struct vz_stager *st);

/**
 * Number of features of a raw input (first layer).  @return 0 or
 * VZ_E_INPUT (vz_err_msg() names the file).
 */
int vz_stage_count(struct vz_stager *st, const struct vz_input *in,
		   uint64_t *n);

/**
 * Called once per (tile, range) with the blob of this range's polygons that
 * intersect the tile (closed box).  Return non-zero to abort staging.
 */
typedef int (*vz_stage_emit_fn)(void *ud, const struct vz_tile_key *tile,
				uint32_t input, uint64_t start,
				const struct vz_buf *blob);

/**
 * Stage only some features of the next vz_stage_range() calls: bit i of
 * @p need (LSB first) set = feature start+i is staged; NULL = all.  The
 * bitmap is borrowed until the filter is replaced.  (Sharded builds skip
 * the features no tile of theirs needs.)
 */
void vz_stager_set_filter(struct vz_stager *st, const uint8_t *need);

/**
 * Stage features [start, start+count) (ordinal positions in the first layer)
 * of raw input @p in (index @p idx): MultiPolygons exploded into parts,
 * invalid geometries repaired (GEOSMakeValid) or skipped, simplified in the
 * input CRS (topology preserving, if configured), reprojected to the TMS
 * CRS, centroid and area of the whole polygon, then one record per max-z
 * tile whose closed box the polygon intersects (geometry clipped to that tile
 * when it is large).  Output depends only on the inputs, never on timing.
 * @return 0, VZ_E_INPUT / VZ_E_CRS with a message naming the file (and
 * feature), or the emit callback's non-zero value.
 */
int vz_stage_range(struct vz_stager *st, const struct vz_input *in,
		   uint32_t idx, uint64_t start, uint64_t count,
		   vz_stage_emit_fn emit, void *ud, struct vz_stage_stats *stats);

/** Called per feature with its envelope in TMS CRS units. */
typedef int (*vz_envelope_fn)(void *ud, uint64_t ordinal,
			      const struct vz_bbox *b);

/**
 * The envelopes of features [start, start+count) of a raw input, in the TMS
 * CRS (the source envelope's corners, edge midpoints and centre
 * transformed), for planning sharded builds.  Geometry only: attributes are
 * not read.  Features without geometry are skipped.  @return 0, an error,
 * or the callback's non-zero value.
 */
int vz_stage_envelopes(struct vz_stager *st, const struct vz_input *in,
		       uint64_t start, uint64_t count, vz_envelope_fn fn,
		       void *ud);

/**
 * Read one pre-staged PDG GeoPackage as the polygons of tile in->key, as
 * they are (no re-assignment; centroid from staging_centroid_x/y columns when
 * present, else computed with GEOS; area likewise).  Appends records to
 * @p blob (vz_staged_begin() is called here when the blob is empty).
 * @return 0 or VZ_E_INPUT.
 */
int vz_stage_prestaged(struct vz_stager *st, const struct vz_input *in,
		       uint32_t idx, struct vz_buf *blob,
		       struct vz_stage_stats *stats);

/**
 * Write staged records of one tile as a PDG staged GeoPackage (layer named
 * after the tile's y, EPSG of the TMS, PDG staging_* columns and the
 * statistic attributes).  @p blobs are n blobs of that tile.
 * @return 0 or VZ_E_ENCODE (message names the path).
 */
int vz_stage_write_gpkg(struct vz_stager *st, const char *path,
			const struct vz_tile_key *k,
			const struct vz_inputs *inputs,
			const struct vz_buf *blobs, size_t n);

#endif
