/* SPDX-License-Identifier: Apache-2.0 */
/* Deduplication of overlapping inputs (spec §3): neighbor, footprints, clip. */
#ifndef VIZFS_DEDUP_H
#define VIZFS_DEDUP_H

#include <stdbool.h>
#include <stddef.h>

#include "vizfs/common.h"
#include "vizfs/conf.h"
#include "vizfs/input.h"
#include "vizfs/tms.h"

/*
 * vizfs computes the PDG's staging_duplicated flag per max-z tile, from all
 * staged records of that tile at once (every input file together), when the
 * tile is rasterized or exported.  The PDG computes it while staging, each
 * time another input file adds rows to the tile, and drops flagged rows
 * before rasterizing both for deduplicate_at 'staging' and 'raster', so the
 * rasterized result is the same; vizfs's flags do not depend on the order
 * in which files were staged (spec Q24).
 */

/**
 * A deduplication context: its own GEOS handle, PROJ transformation to
 * deduplicate_distance_crs, and a cache of footprints reprojected to the TMS
 * CRS.  Not thread-safe: one per thread.
 */
struct vz_dedup;

/** True when @p c configures a deduplication method (the PDG then adds the
 *  staging_duplicated column to staged tiles). */
bool vz_dedup_enabled(const struct vz_conf *c);

/** True when flagged polygons are left out of rasterization: a method is
 *  set and deduplicate_at holds 'staging' or 'raster'. */
bool vz_dedup_removes(const struct vz_conf *c);

/** True when flagged polygons are left out of staged GeoPackages
 *  ('staging' in deduplicate_at, spec §2.5). */
bool vz_dedup_removes_staged(const struct vz_conf *c);

/**
 * Create a context for config @p c (which must outlive it).
 * @return 0, -ENOMEM, or VZ_E_CRS when deduplicate_distance_crs or the TMS
 * CRS cannot be used (vz_err_msg() names the key).
 */
int vz_dedup_new(const struct vz_conf *c, struct vz_dedup **out);

/** Free a context; NULL-safe. */
void vz_dedup_free(struct vz_dedup *d);

/**
 * Duplicate flags of the staged records of max-z tile @p k: @p blobs are
 * the tile's @p n staged blobs (vz_staged format; empty blobs are skipped),
 * @p in the inputs the records' input indices refer to.  @p flags is
 * replaced by one byte per record, in blob then record order: 1 when the
 * record is a duplicate (or outside its file's footprint), else 0.
 *
 * Rules (spec §2.2 step 4, §3.2, §3.3), with deliberate fixes:
 * - footprint clip (deduplicate_clip_to_footprint and a method set): a
 *   polygon not intersecting its file's footprint is flagged; a missing
 *   footprint is warned about once (naming the expected path) and leaves
 *   that file unclipped and out of footprint comparisons;
 * - neighbor: only polygons of different files are compared, pairs of files
 *   in staging_filename order; a pair with a polygonal intersection whose
 *   area ratios exceed deduplicate_overlap_tolerance (both or either) and/or
 *   whose centroids lie within deduplicate_centroid_tolerance (in
 *   deduplicate_distance_crs) is a duplicate pair; the keep rules decide
 *   which one loses, ties go to the lower (input index, fid, part)
 *   (the PDG's sort is unstable); polygons flagged by the clip or by an
 *   earlier pair of files take no further part;
 * - footprints: for each pair of files with footprints, the file ranked
 *   lower by the keep rules over footprint properties loses every polygon
 *   that intersects the intersection of the two footprints (the union of
 *   each file's footprint rows, not the PDG's row-wise intersection, Q23).
 *
 * @return 0, -ENOMEM, VZ_E_CACHE for a corrupt blob or an input index out
 * of range, or VZ_E_GEOM.
 */
int vz_dedup_flags(struct vz_dedup *d, const struct vz_tile_key *k,
		   const struct vz_inputs *in, const struct vz_buf *blobs,
		   size_t n, struct vz_buf *flags);

/**
 * vz_dedup_flags() with a context private to the calling thread, created on
 * first use (and again when called with another config), freed when the
 * thread exits.  Thread-safe.
 */
int vz_dedup_tile(const struct vz_conf *c, const struct vz_tile_key *k,
		  const struct vz_inputs *in, const struct vz_buf *blobs,
		  size_t n, struct vz_buf *flags);

/**
 * The footprint file of input @p relname (spec §3.3):
 * dir_footprints/<relname without its extension><ext_footprints>.
 * @return a malloc'd path or NULL on OOM.
 */
char *vz_dedup_footprint_path(const struct vz_conf *c, const char *relname);

#endif
