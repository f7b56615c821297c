/* SPDX-License-Identifier: Apache-2.0 */
/* Worker pool: every task once, per-worker contexts, errors, cancel. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "vizfs/pool.h"
#include "vt.h"

struct ctx {
	int idx;
	long tasks;
};

static atomic_int n_init, n_fini;
static struct ctx *ctxs[16];

static int init(void *ud, int idx, void **out)
{
	struct ctx *c = calloc(1, sizeof *c);
	(void)ud;
	c->idx = idx;
	ctxs[idx] = c;
	atomic_fetch_add(&n_init, 1);
	*out = c;
	return 0;
}

static void fini(void *ud, void *ctx)
{
	struct ctx *c = ctx;
	(void)ud;
	atomic_fetch_add(&n_fini, 1);
	ctxs[c->idx] = NULL;
	free(c);
}

static int mark(void *ud, void *ctx, size_t i)
{
	atomic_int *seen = ud;
	((struct ctx *)ctx)->tasks++;
	atomic_fetch_add(&seen[i], 1);
	return 0;
}

static int fail_some(void *ud, void *ctx, size_t i)
{
	(void)ud;
	(void)ctx;
	return i % 7 == 3 ? -(int)(100 + i) : 0;
}

static volatile int cancel_flag;

static int cancel_at(void *ud, void *ctx, size_t i)
{
	atomic_int *ran = ud;
	(void)ctx;
	atomic_fetch_add(ran, 1);
	if (i == 10)
		__atomic_store_n(&cancel_flag, 1, __ATOMIC_RELAXED);
	return 0;
}

static size_t last_done, last_total;
static void prog(void *ud, size_t done, size_t total)
{
	(void)ud;
	VT_CHECK(done <= total);
	VT_CHECK(done >= last_done);
	last_done = done;
	last_total = total;
}

static int init_fails(void *ud, int idx, void **out)
{
	(void)ud;
	*out = NULL;
	return idx == 1 ? -EMFILE : 0;
}

int main(void)
{
	struct vz_pool *p;
	enum { N = 100000 };
	static atomic_int seen[N];
	atomic_int ran = 0;
	long total = 0;

	VT_EQ_INT(vz_pool_start(4, init, fini, NULL, &p), 0);
	VT_EQ_INT(vz_pool_size(p), 4);
	VT_EQ_INT(atomic_load(&n_init), 4);
	for (int round = 0; round < 3; round++) {
		memset(seen, 0, sizeof seen);
		last_done = 0;
		VT_EQ_INT(vz_pool_for(p, N, mark, seen, prog, NULL, NULL), 0);
		int once = 1;
		for (int i = 0; i < N; i++)
			if (atomic_load(&seen[i]) != 1)
				once = 0;
		VT_CHECK(once);
		VT_EQ_INT(last_done, N);
		VT_EQ_INT(last_total, N);
	}
	for (int i = 0; i < 4; i++)
		total += ctxs[i]->tasks;
	VT_EQ_INT(total, 3L * N);
	/* The first error by index is returned; all tasks still ran. */
	VT_EQ_INT(vz_pool_for(p, 1000, fail_some, NULL, NULL, NULL, NULL),
		  -103);
	/* Cancel: tasks after the flag are skipped. */
	VT_EQ_INT(vz_pool_for(p, N, cancel_at, &ran, NULL, NULL, &cancel_flag),
		  -ECANCELED);
	VT_CHECK(atomic_load(&ran) < N);
	VT_CHECK(atomic_load(&ran) >= 11);
	/* Zero tasks is fine. */
	VT_EQ_INT(vz_pool_for(p, 0, mark, seen, NULL, NULL, NULL), 0);
	vz_pool_stop(p);
	VT_EQ_INT(atomic_load(&n_fini), 4);
	/* A worker whose init fails makes start fail cleanly. */
	VT_EQ_INT(vz_pool_start(3, init_fails, NULL, NULL, &p), -EMFILE);
	VT_CHECK(p == NULL);
	vz_pool_stop(NULL);
	return vt_done("test_pool");
}
