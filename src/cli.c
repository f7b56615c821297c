/* SPDX-License-Identifier: Apache-2.0 */
/* Shared command-line helpers: errors, numbers, signals, version. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gdal.h>
#include <geos_c.h>
#include <lmdb.h>
#include <png.h>
#include <proj.h>

#include "cli.h"

volatile int vz_cli_cancel;

int vz_cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vizfs %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'vizfs %s --help'.\n", cmd);
	return VZ_EXIT_USAGE;
}

int vz_cli_fail(const char *cmd, int rc)
{
	const char *msg = vz_err_msg();

	if (rc == -ECANCELED)
		fprintf(stderr, "vizfs %s: interrupted; the cache keeps what "
				"was done, run the command again to resume\n",
			cmd);
	else if (msg[0])
		fprintf(stderr, "vizfs %s: %s\n", cmd, msg);
	else
		fprintf(stderr, "vizfs %s: %s\n", cmd, vz_strerror(rc));
	return VZ_EXIT_FAIL;
}

bool vz_cli_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

void vz_cli_version(void)
{
	PJ_INFO pi = proj_info();
	int maj, min, pat;

	mdb_version(&maj, &min, &pat);
	printf("vizfs %s\n", VZ_VERSION);
	printf("GDAL %s, GEOS %s, PROJ %s, libpng %s, LMDB %d.%d.%d\n",
	       GDALVersionInfo("RELEASE_NAME"), GEOSversion(), pi.version,
	       PNG_LIBPNG_VER_STRING, maj, min, pat);
}

static void on_signal(int sig)
{
	(void)sig;
	if (vz_cli_cancel) {
		/* Second interrupt: leave now (LMDB stays consistent). */
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		raise(sig);
		return;
	}
	vz_cli_cancel = 1;
}

void vz_cli_catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}
