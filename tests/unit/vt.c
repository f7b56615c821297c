/* SPDX-License-Identifier: Apache-2.0 */
/* Minimal unit-test helpers. */
#include "vt.h"

#include <stdlib.h>
#include <string.h>

int vt_failed, vt_checks;

int vt_done(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, vt_checks, vt_failed);
	if (vt_checks == 0) {
		fprintf(stderr, "%s: no checks ran\n", name);
		return 1;
	}
	return vt_failed ? 1 : 0;
}

void vt_skip(const char *why)
{
	printf("skip: %s\n", why);
	exit(77);
}

const char *vt_tmpdir(void)
{
	static char dir[256];
	const char *base = getenv("TMPDIR");
	if (!base)
		base = "/tmp";
	snprintf(dir, sizeof dir, "%s/vt-XXXXXX", base);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
	return dir;
}

const char *vt_srcroot(void)
{
	const char *s = getenv("VZ_SOURCE_ROOT");
	return s ? s : ".";
}
