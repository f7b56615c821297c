/* SPDX-License-Identifier: Apache-2.0 */
/* Shared bits of the fuzz targets: the entry point and an invariant check. */
#ifndef VIZFS_FUZZ_COMMON_H
#define VIZFS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant is a finding: report it and abort, so that libFuzzer
 * saves the input and the replay driver fails. */
#define FZ_CHECK(cond)                                                         \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: invariant failed: %s\n",       \
				__FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

#endif
