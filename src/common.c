/* SPDX-License-Identifier: Apache-2.0 */
/* Shared basics: error codes, per-thread error detail, logging, buffers. */
#include "vizfs/common.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static const char *const domain_msgs[] = {
	[0] = "vizfs error",
	[1] = "invalid configuration",
	[2] = "invalid input",
	[3] = "invalid geometry",
	[4] = "render failed",
	[5] = "encoding failed",
	[6] = "cache failure",
	[7] = "cache built from a different config or inputs",
	[8] = "missing or unusable CRS",
};

const char *vz_strerror(int rc)
{
	if (rc == 0)
		return "success";
	if (rc <= VZ_E_BASE && rc > VZ_E_LAST)
		return domain_msgs[VZ_E_BASE - rc];
	if (rc < 0)
		return strerror(-rc);
	return "unknown error";
}

int vz_err_to_errno(int rc)
{
	if (rc >= 0)
		return 0;
	if (rc > VZ_E_BASE)
		return -rc;
	switch (rc) {
	case VZ_E_CONFIG:
	case VZ_E_STALE:
		return EINVAL;
	default:
		return EIO;
	}
}

static _Thread_local char err_buf[1024];

void vz_err_set(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err_buf, sizeof err_buf, fmt, ap);
	va_end(ap);
}

void vz_err_prefix(const char *fmt, ...)
{
	char head[512], old[sizeof err_buf];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(head, sizeof head, fmt, ap);
	va_end(ap);
	memcpy(old, err_buf, sizeof old);
	if (old[0])
		snprintf(err_buf, sizeof err_buf, "%.400s: %.600s", head, old);
	else
		snprintf(err_buf, sizeof err_buf, "%s", head);
}

const char *vz_err_msg(void)
{
	return err_buf;
}

void vz_err_clear(void)
{
	err_buf[0] = '\0';
}

static int log_level = VZ_LOG_INFO;
static int log_syslog;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER; /* guards: stderr lines */

void vz_log_set_level(int lvl)
{
	log_level = lvl;
}

int vz_log_get_level(void)
{
	return log_level;
}

void vz_log_use_syslog(void)
{
	openlog("vizfs", LOG_PID, LOG_DAEMON);
	log_syslog = 1;
}

void vz_vlog(int lvl, const char *fmt, va_list ap)
{
	static const char *const names[] = {"error", "warning", "info",
					    "debug"};
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char line[2048];

	if (lvl > log_level)
		return;
	if (lvl < 0)
		lvl = 0;
	if (lvl > VZ_LOG_DEBUG)
		lvl = VZ_LOG_DEBUG;
	vsnprintf(line, sizeof line, fmt, ap);
	if (log_syslog) {
		syslog(prio[lvl], "%s", line);
		return;
	}
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "vizfs: %s%s%s\n", lvl == VZ_LOG_INFO ? "" : names[lvl],
		lvl == VZ_LOG_INFO ? "" : ": ", line);
	pthread_mutex_unlock(&log_lock);
}

void vz_log(int lvl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vz_vlog(lvl, fmt, ap);
	va_end(ap);
}

int vz_buf_reserve(struct vz_buf *b, size_t extra)
{
	size_t need = b->len + extra, cap;
	uint8_t *p;

	if (need < b->len)
		return -ENOMEM;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int vz_buf_append(struct vz_buf *b, const void *p, size_t n)
{
	int rc = vz_buf_reserve(b, n);
	if (rc)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int vz_buf_printf(struct vz_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	rc = vz_buf_reserve(b, (size_t)n + 1);
	if (rc)
		return rc;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void vz_buf_reset(struct vz_buf *b)
{
	b->len = 0;
}

void vz_buf_free(struct vz_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

void vz_hash_init(struct vz_hash *h)
{
	h->a = FNV_OFFSET;
	h->b = 0x9e3779b97f4a7c15ULL;
}

void vz_hash_update(struct vz_hash *h, const void *p, size_t n)
{
	const uint8_t *s = p;
	for (size_t i = 0; i < n; i++) {
		h->a = (h->a ^ s[i]) * FNV_PRIME;
		h->b = (h->b + s[i] + (h->b << 6) + (h->b >> 2)) *
		       0xff51afd7ed558ccdULL;
	}
}

void vz_hash_u64(struct vz_hash *h, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	vz_hash_update(h, b, 8);
}

void vz_hash_str(struct vz_hash *h, const char *s)
{
	if (!s)
		s = "\x01(null)";
	vz_hash_update(h, s, strlen(s) + 1);
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

void vz_hash_hex(const struct vz_hash *h, char out[33])
{
	snprintf(out, 33, "%016llx%016llx",
		 (unsigned long long)mix64(h->a ^ (h->b << 1)),
		 (unsigned long long)mix64(h->b ^ h->a));
}

double vz_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
