/* SPDX-License-Identifier: Apache-2.0 */
/* Worker pool: persistent threads with private contexts, dynamic parallel-for. */
#include "vizfs/pool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "vizfs/common.h"

struct worker {
	struct vz_pool *pool;
	pthread_t thread;
	int idx;
	void *ctx;
	int init_rc;
};

struct vz_pool {
	pthread_mutex_t lock; /* guards: generation, job fields, active,
				 done, first_err*, init_pending, quit */
	pthread_cond_t wake;  /* workers wait for a new generation */
	pthread_cond_t idle;  /* caller waits for active == 0 */
	int n;
	struct worker *w;
	vz_worker_init_fn init;
	vz_worker_fini_fn fini;
	void *ud;

	unsigned generation;
	int quit;
	int init_pending;
	int active; /* workers still inside the current job */

	/* current job */
	vz_task_fn fn;
	void *fn_ud;
	size_t total;
	atomic_size_t next;
	size_t done;
	int first_err;
	size_t first_err_idx;
	volatile int *cancel;
	vz_progress_fn prog;
	void *prog_ud;
	double last_prog;
};

static void run_job(struct worker *w)
{
	struct vz_pool *p = w->pool;

	for (;;) {
		size_t i = atomic_fetch_add(&p->next, 1);
		int rc;

		if (i >= p->total)
			break;
		if (p->cancel && __atomic_load_n(p->cancel, __ATOMIC_RELAXED))
			rc = -ECANCELED;
		else
			rc = p->fn(p->fn_ud, w->ctx, i);
		pthread_mutex_lock(&p->lock);
		p->done++;
		if (rc && (!p->first_err || i < p->first_err_idx)) {
			p->first_err = rc;
			p->first_err_idx = i;
		}
		if (p->prog) {
			double now = vz_now();
			if (now - p->last_prog >= 0.1 || p->done == p->total) {
				p->last_prog = now;
				p->prog(p->prog_ud, p->done, p->total);
			}
		}
		pthread_mutex_unlock(&p->lock);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct vz_pool *p = w->pool;
	unsigned seen = 0;
	char name[16];

	snprintf(name, sizeof name, "vz-work-%d", w->idx);
	pthread_setname_np(pthread_self(), name);
	w->init_rc = p->init ? p->init(p->ud, w->idx, &w->ctx) : 0;
	pthread_mutex_lock(&p->lock);
	p->init_pending--;
	pthread_cond_broadcast(&p->idle);
	for (;;) {
		while (!p->quit && p->generation == seen)
			pthread_cond_wait(&p->wake, &p->lock);
		if (p->quit)
			break;
		seen = p->generation;
		pthread_mutex_unlock(&p->lock);
		if (w->init_rc == 0)
			run_job(w);
		pthread_mutex_lock(&p->lock);
		if (--p->active == 0)
			pthread_cond_broadcast(&p->idle);
	}
	pthread_mutex_unlock(&p->lock);
	if (p->fini && w->init_rc == 0)
		p->fini(p->ud, w->ctx);
	return NULL;
}

int vz_pool_start(int n, vz_worker_init_fn init, vz_worker_fini_fn fini,
		  void *ud, struct vz_pool **out)
{
	struct vz_pool *p;
	sigset_t block, old;
	int rc = 0, started = 0;

	*out = NULL;
	if (n < 1)
		n = 1;
	p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	p->w = calloc((size_t)n, sizeof *p->w);
	if (!p->w) {
		free(p);
		return -ENOMEM;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->n = n;
	p->init = init;
	p->fini = fini;
	p->ud = ud;
	p->init_pending = n;

	/* Workers never take termination signals: the main thread does. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (int i = 0; i < n; i++) {
		p->w[i].pool = p;
		p->w[i].idx = i;
		if (pthread_create(&p->w[i].thread, NULL, worker_main,
				   &p->w[i])) {
			rc = -EAGAIN;
			break;
		}
		started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	pthread_mutex_lock(&p->lock);
	p->init_pending -= n - started;
	while (p->init_pending > 0)
		pthread_cond_wait(&p->idle, &p->lock);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < started && !rc; i++)
		if (p->w[i].init_rc)
			rc = p->w[i].init_rc;
	p->n = started;
	if (rc) {
		vz_pool_stop(p);
		return rc;
	}
	*out = p;
	return 0;
}

int vz_pool_for(struct vz_pool *p, size_t n, vz_task_fn fn, void *ud,
		vz_progress_fn prog, void *prog_ud, volatile int *cancel)
{
	int rc;

	if (n == 0) {
		if (prog)
			prog(prog_ud, 0, 0);
		return 0;
	}
	pthread_mutex_lock(&p->lock);
	p->fn = fn;
	p->fn_ud = ud;
	p->total = n;
	atomic_store(&p->next, 0);
	p->done = 0;
	p->first_err = 0;
	p->first_err_idx = 0;
	p->cancel = cancel;
	p->prog = prog;
	p->prog_ud = prog_ud;
	p->last_prog = 0;
	p->active = p->n;
	p->generation++;
	pthread_cond_broadcast(&p->wake);
	while (p->active > 0)
		pthread_cond_wait(&p->idle, &p->lock);
	rc = p->first_err;
	p->fn = NULL;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int vz_pool_size(const struct vz_pool *p)
{
	return p->n;
}

void vz_pool_stop(struct vz_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->quit = 1;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->n; i++)
		pthread_join(p->w[i].thread, NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->wake);
	pthread_cond_destroy(&p->idle);
	free(p->w);
	free(p);
}
