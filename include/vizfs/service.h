/* SPDX-License-Identifier: Apache-2.0 */
/* On-demand rendering for the daemon: one priority queue with dedup and
 * waiters over render threads, plus the background prefetcher. */
#ifndef VIZFS_SERVICE_H
#define VIZFS_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "vizfs/build.h"
#include "vizfs/path.h"

/**
 * The render service of one mounted pyramid.  Thread-safe: every function
 * may be called from any thread (FUSE session threads) unless noted.
 *
 * Files are produced by jobs (max-zoom raster, parent, PNG, GeoTIFF, staged
 * GeoPackage, zoom colour range) that depend on each other; a job runs when
 * its dependencies are done.  A job is keyed by what it produces, so
 * concurrent requests for one missing file cause one render (single
 * flight): later requests wait on the same job.  Demand requests run before
 * prefetch work and promote the jobs they depend on.
 */
struct vz_service;

struct vz_service_opts {
	int workers;   /**< render threads; 0 = the builder's worker count */
	bool prefetch; /**< render the whole pyramid in the background */
};

/**
 * Start the service on an open builder (which must outlive it).  Staging
 * and the tile index are built in the background if the cache lacks them;
 * requests wait for them.  Returns at once.  @return 0 or an error.
 */
int vz_service_start(struct vz_builder *b, const struct vz_service_opts *o,
		     struct vz_service **out);

/**
 * Stop: no new work is taken, queued work is dropped, jobs in flight are
 * finished, everything finished is committed to the cache; requests still
 * waiting are answered with -ESHUTDOWN.  NULL-safe.  Call from one thread,
 * after the FUSE session has ended.
 */
void vz_service_stop(struct vz_service *s);

/** Block until the tile index is available.  @return 0, or the staging
 *  error (then every request fails with it). */
int vz_service_wait_index(struct vz_service *s);

/** The tiles of zoom @p z sorted by (x, y) (empty outside z_range).  Only
 *  after vz_service_wait_index() returned 0; valid until stop. */
void vz_service_level(struct vz_service *s, int z,
		      const struct vz_tile_key **keys, size_t *n);

/** True if the tile is part of the pyramid (has data).  Waits for the
 *  index like vz_service_wait_index(). */
bool vz_service_has_tile(struct vz_service *s, const struct vz_tile_key *k);

/**
 * Called exactly once per request: @p rc 0 with the file's exact size,
 * -ENOENT for a tile without data, or an error (-EIO for a failed render,
 * logged with the tile and the cause).
 */
typedef void (*vz_ready_fn)(void *ud, int rc, uint64_t size);

/**
 * Make a file available.  When it is cached, @p cb runs in the calling
 * thread before this returns (a hit); otherwise it runs later in a render
 * thread (a miss), possibly shared with other requests for the same file.
 * May block while the index is being built.
 */
void vz_service_request(struct vz_service *s, const struct vz_tile_ref *r,
			vz_ready_fn cb, void *ud);

/**
 * Copy bytes [off, off+len) of a file that a request reported ready into
 * @p out (replacing its content; shorter at the end of the file).
 * @return 0, -ENOENT if the file is not available, or an error.
 */
int vz_service_read(struct vz_service *s, const struct vz_tile_ref *r,
		    uint64_t off, size_t len, struct vz_buf *out);

/** The rasters_summary.csv / staging_summary.csv of what is cached now
 *  (@p which: 'r' or 's').  @return 0 or an error. */
int vz_service_csv(struct vz_service *s, char which, struct vz_buf *out);

/** Counters since start (for the status file and tests). */
struct vz_service_stats {
	uint64_t requests;	 /**< vz_service_request calls */
	uint64_t hits;		 /**< answered from the cache */
	uint64_t misses;	 /**< had to wait for a job */
	uint64_t shared;	 /**< misses that joined a job already there */
	uint64_t renders;	 /**< jobs run, all kinds */
	uint64_t tiles_rendered; /**< raster/parent jobs run */
	uint64_t errors;	 /**< failed jobs */
	uint64_t queued_demand, queued_prefetch, running, waiting;
	bool indexed;	  /**< staging and index done */
	bool prefetching; /**< the prefetcher is still working */
	int index_rc;	  /**< staging result */
};
void vz_service_get_stats(struct vz_service *s, struct vz_service_stats *out);

/**
 * The status document (the mount's .vizfs/status): JSON with the counters
 * above, tiles done/total per zoom, latency figures and the cache size.
 */
int vz_service_status_json(struct vz_service *s, struct vz_buf *out);

/**
 * The same counters in the Prometheus text exposition format (the mount's
 * .vizfs/metrics): requests, hits, misses, renders, errors, queue depth,
 * tiles per zoom and a latency histogram of misses.
 */
int vz_service_prometheus(struct vz_service *s, struct vz_buf *out);

#endif
