/* SPDX-License-Identifier: Apache-2.0 */
/* Private parts of the pipeline shared by build.c and export.c. */
#ifndef VIZFS_BUILD_I_H
#define VIZFS_BUILD_I_H

#include <pthread.h>
#include <stdatomic.h>

#include "vizfs/build.h"
#include "vizfs/palette.h"
#include "vizfs/pool.h"
#include "vizfs/raster.h"

/* The last byte of a VZ_DB_TILE key: statistic index for PNGs, or one of
 * these for the GeoTIFF and staged GeoPackage bytes the daemon caches. */
#define VZ_TILE_GEOTIFF 0xFE
#define VZ_TILE_GPKG 0xFF

/* Staging reads raw inputs in ranges of this many features per task. */
#define VZ_STAGE_CHUNK 16384

/* Per-worker context: library handles and scratch memory. */
struct vz_wctx {
	struct vz_builder *b;
	struct vz_stager *st;
	struct vz_raster *ras;
	double *bands;	  /* one tile, all statistics */
	double *child[4]; /* children (also scratch for statistics) */
	uint8_t *rgba;
	struct vz_buf blobs; /* staged blobs of one tile, concatenated */
	struct vz_buf spans; /* (offset, length) pairs into blobs */
	struct vz_buf enc, png, tmp;
};

/* Tiles of one zoom level, sorted by (x, y). */
struct vz_level {
	struct vz_tile_key *k;
	size_t n, cap;
};

struct vz_builder {
	const struct vz_conf *c;
	struct vz_build_opts o;
	char *cache_dir;
	int lock_fd;
	struct vz_cache *cache;
	struct vz_writer *wr;
	struct vz_inputs *in;
	struct vz_pool *pool;
	struct vz_wctx *main; /* context of the calling thread */
	int workers;
	size_t plane;	   /* pixels per band */
	size_t tile_bytes; /* bytes of all bands of one tile */
	struct vz_lut *luts;
	bool fresh, indexed, partial;
	struct vz_level level[VZ_MAX_ZOOM + 1];
	double zrange[VZ_MAX_ZOOM + 1][VZ_MAX_STATS][2];
	bool zrange_ok[VZ_MAX_ZOOM + 1];
	pthread_mutex_t lock; /* guards: stage job failure flags */
	_Atomic uint64_t n_rendered, n_pngs, n_staged_chunks; /* this run */
	_Atomic unsigned trim_units; /* work since the last RSS trim */
	/* sharded builds (shard.c) */
	int shard_i, shard_n; /* shard_n 0: not sharded */
	int split_z;
	struct vz_tile_key *own; /* split-zoom tiles of this shard, by (x,y) */
	size_t n_own;
	uint8_t *chunk_need; /* per raw staging chunk: read by this shard */
	uint8_t **feat_need; /* per raw input: bitmap of features to stage */
	size_t n_chunks;
	char plan_hash[33];
};

/* A worker context for a thread of the caller's (the daemon's render
 * threads); free with vz_wctx_free(). */
int vz_builder_wctx_new(struct vz_builder *b, struct vz_wctx **out);
void vz_wctx_free(struct vz_wctx *w);
/* Per-tile steps, thread-safe with one vz_wctx per thread. */
int vz_builder_rasterize(struct vz_builder *b, struct vz_wctx *w,
			 const struct vz_tile_key *k, double *bands);
int vz_builder_read_band(struct vz_builder *b, struct vz_wctx *w,
			 const struct vz_tile_key *k, double *bands);
int vz_builder_store_band(struct vz_builder *b, struct vz_wctx *w,
			  const struct vz_tile_key *k, const double *bands,
			  bool pngs);
int vz_builder_encode_png(struct vz_builder *b, struct vz_wctx *w, int s,
			  int z, const double *bands, struct vz_buf *out);
bool vz_builder_zoom_stat(const struct vz_builder *b, int s, int z);
int vz_builder_pool(struct vz_builder *b, struct vz_pool **out);
bool vz_builder_in_index(struct vz_builder *b, const struct vz_tile_key *k);
int vz_builder_zoom_range(struct vz_builder *b, int z);
int vz_builder_staged_gpkg(struct vz_builder *b, struct vz_wctx *w,
			   const struct vz_tile_key *k, struct vz_buf *out);
int vz_builder_gather_staged(struct vz_builder *b, struct vz_wctx *w,
			     const struct vz_tile_key *k);
/* Plan this shard's part (shard.c); vz_shard_owns: a tile at or below the
 * split zoom lies in one of this shard's subtrees (always true unsharded). */
int vz_shard_plan(struct vz_builder *b);
bool vz_shard_owns(const struct vz_builder *b, const struct vz_tile_key *k);
/* Build the tile index from the staged data and mark staging done. */
int vz_builder_finish_staging(struct vz_builder *b);
void vz_band_stats(const double *v, size_t n, double *tmp, double out[7]);
int vz_mkdir_p(const char *path);
/* Write dir/rel atomically (temporary file + rename), creating parents. */
int vz_write_file(const char *dir, const char *rel, const void *data,
		  size_t len);
/* Python repr() of a float (CSV compatibility with the PDG). */
void vz_fmt_pyfloat(double v, char *out, size_t n);

#endif
