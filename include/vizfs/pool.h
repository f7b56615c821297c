/* SPDX-License-Identifier: Apache-2.0 */
/* Worker pool with per-worker contexts and dynamic parallel-for. */
#ifndef VIZFS_POOL_H
#define VIZFS_POOL_H

#include <stddef.h>

/** Create a worker's private context (GDAL/GEOS/PROJ handles…) in the
 *  worker thread.  @return 0 or an error code (pool start fails). */
typedef int (*vz_worker_init_fn)(void *ud, int idx, void **wctx);
typedef void (*vz_worker_fini_fn)(void *ud, void *wctx);
/** One task.  A non-zero return is recorded; other tasks still run. */
typedef int (*vz_task_fn)(void *ud, void *wctx, size_t i);
/** Called from one thread at a time after tasks complete. */
typedef void (*vz_progress_fn)(void *ud, size_t done, size_t total);

/** Thread-safe for vz_pool_for() from one thread at a time. */
struct vz_pool;

/** Start @p n worker threads (n >= 1), each calling @p init once.  Worker
 *  threads block SIGINT/SIGTERM/SIGHUP and are named "vz-work-N". */
int vz_pool_start(int n, vz_worker_init_fn init, vz_worker_fini_fn fini,
		  void *ud, struct vz_pool **out);

/** Run fn(ud, wctx, i) for i in [0, n) over the workers (tasks are handed
 *  out in index order).  Blocks until all ran.  If @p cancel becomes
 *  non-zero, the remaining tasks are skipped.  @return 0, or the first
 *  (lowest-index) task error. */
int vz_pool_for(struct vz_pool *p, size_t n, vz_task_fn fn, void *ud,
		vz_progress_fn prog, void *prog_ud, volatile int *cancel);

int vz_pool_size(const struct vz_pool *p);

/** Join the workers (calling fini) and free the pool.  NULL-safe. */
void vz_pool_stop(struct vz_pool *p);

#endif
