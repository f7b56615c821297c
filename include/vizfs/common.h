/* SPDX-License-Identifier: Apache-2.0 */
/* Shared basics: error codes, logging, growable buffers, hashing. */
#ifndef VIZFS_COMMON_H
#define VIZFS_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VZ_VERSION "0.1.0"

/** Deepest zoom level any tile matrix set may use. */
#define VZ_MAX_ZOOM 24

/** Free through @p f and NULL the pointer (libvips VIPS_FREEF). */
#define VZ_FREEF(f, p)                                                         \
	do {                                                                   \
		if (p) {                                                       \
			f(p);                                                  \
			(p) = NULL;                                            \
		}                                                              \
	} while (0)

#define VZ_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Return codes: 0 on success, -errno for system failures, or one of the
 * domain codes below (a private range, like LMDB's MDB_* codes).  A function
 * that fails with a domain code usually leaves a human-readable detail in the
 * calling thread's error buffer (vz_err_msg()).
 */
#define VZ_E_BASE (-20000)
#define VZ_E_CONFIG (-20001)  /**< invalid configuration */
#define VZ_E_INPUT (-20002)   /**< unreadable or invalid input file */
#define VZ_E_GEOM (-20003)    /**< geometry could not be processed */
#define VZ_E_RENDER (-20004)  /**< rasterization failed */
#define VZ_E_ENCODE (-20005)  /**< PNG/GeoTIFF encoding failed */
#define VZ_E_CACHE (-20006)   /**< LMDB failure or corrupt cache entry */
#define VZ_E_STALE (-20007)   /**< cache built from other config/inputs */
#define VZ_E_CRS (-20008)     /**< missing or unusable CRS */
#define VZ_E_LAST (-20009)

/** Static description of a return code (never NULL). Thread-safe. */
const char *vz_strerror(int rc);

/** Map a return code to a positive errno for FUSE replies. Thread-safe. */
int vz_err_to_errno(int rc);

/**
 * Record a detail message for the current thread (printf-style).  The
 * message names the file, feature or key at fault.  Thread-safe (per-thread
 * buffer).
 */
void vz_err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** Prefix the current thread's detail message with more context. */
void vz_err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** The current thread's detail message ("" when none). */
const char *vz_err_msg(void);

/** Clear the current thread's detail message. */
void vz_err_clear(void);

enum vz_log_level {
	VZ_LOG_ERR = 0,
	VZ_LOG_WARN = 1,
	VZ_LOG_INFO = 2,
	VZ_LOG_DEBUG = 3,
};

/** Log one line to stderr (or syslog once vz_log_use_syslog() was called).
 *  Thread-safe; lines are never interleaved. */
void vz_log(int lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vz_vlog(int lvl, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/** Messages above @p lvl are dropped. Default VZ_LOG_INFO. */
void vz_log_set_level(int lvl);
int vz_log_get_level(void);
/** Send further log lines to syslog with identity "vizfs". */
void vz_log_use_syslog(void);

/** Growable byte buffer. Zero-initialise before first use. Not thread-safe. */
struct vz_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

/** Ensure room for @p extra more bytes. @return 0 or -ENOMEM. */
int vz_buf_reserve(struct vz_buf *b, size_t extra);
/** Append bytes. @return 0 or -ENOMEM. */
int vz_buf_append(struct vz_buf *b, const void *p, size_t n);
/** Append printf-formatted text (no terminator counted in len).
 *  @return 0, -ENOMEM or -EINVAL. */
int vz_buf_printf(struct vz_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/** Set len to 0, keep the allocation. */
void vz_buf_reset(struct vz_buf *b);
/** Release the allocation; the buffer is empty and reusable afterwards. */
void vz_buf_free(struct vz_buf *b);

/** 64-bit hash state (FNV-1a based, two lanes mixed at the end). */
struct vz_hash {
	uint64_t a, b;
};
void vz_hash_init(struct vz_hash *h);
void vz_hash_update(struct vz_hash *h, const void *p, size_t n);
void vz_hash_u64(struct vz_hash *h, uint64_t v);
void vz_hash_str(struct vz_hash *h, const char *s); /* includes a terminator */
/** Final 128-bit digest as 32 lowercase hex characters plus NUL. */
void vz_hash_hex(const struct vz_hash *h, char out[33]);

/** Monotonic clock in seconds. */
double vz_now(void);

/** Big-endian helpers for cache keys. */
static inline void vz_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline uint32_t vz_get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

#endif
