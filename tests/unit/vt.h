/* SPDX-License-Identifier: Apache-2.0 */
/* Minimal unit-test helpers: checks that count failures and keep going. */
#ifndef VT_H
#define VT_H

#include <math.h>
#include <stdio.h>

extern int vt_failed, vt_checks;

#define VT_CHECK(cond)                                                         \
	do {                                                                   \
		vt_checks++;                                                   \
		if (!(cond)) {                                                 \
			vt_failed++;                                           \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
		}                                                              \
	} while (0)

#define VT_EQ_INT(a, b)                                                        \
	do {                                                                   \
		long long va_ = (long long)(a), vb_ = (long long)(b);          \
		vt_checks++;                                                   \
		if (va_ != vb_) {                                              \
			vt_failed++;                                           \
			fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n",  \
				__FILE__, __LINE__, #a, va_, vb_);             \
		}                                                              \
	} while (0)

#define VT_NEAR(a, b, tol)                                                     \
	do {                                                                   \
		double va_ = (a), vb_ = (b);                                   \
		vt_checks++;                                                   \
		if (!(fabs(va_ - vb_) <= (tol))) {                             \
			vt_failed++;                                           \
			fprintf(stderr,                                        \
				"%s:%d: %s == %.17g, expected %.17g (tol %g)\n", \
				__FILE__, __LINE__, #a, va_, vb_,              \
				(double)(tol));                                \
		}                                                              \
	} while (0)

/** Print a summary; @return the process exit code (0 ok, 1 failed). */
int vt_done(const char *name);
/** Skip the whole test (exit 77) with a reason. */
void vt_skip(const char *why) __attribute__((noreturn));
/** A fresh temporary directory (removed by the caller if wanted). */
const char *vt_tmpdir(void);
/** Source root from VZ_SOURCE_ROOT, or "." */
const char *vt_srcroot(void);

#endif
