/* SPDX-License-Identifier: Apache-2.0 */
/* Subcommands of the vizfs command line. */
#ifndef VIZFS_CLI_H
#define VIZFS_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "vizfs/build.h"

/* Exit codes of every command. */
#define VZ_EXIT_OK 0
#define VZ_EXIT_USAGE 1
#define VZ_EXIT_FAIL 2

int vz_cli_prefetch(int argc, char **argv);
int vz_cli_export(int argc, char **argv);
int vz_cli_render(int argc, char **argv);
int vz_cli_info(int argc, char **argv);
int vz_cli_sample(int argc, char **argv);
int vz_cli_mount(int argc, char **argv);
int vz_cli_merge(int argc, char **argv);

/* Print "vizfs CMD: msg" to stderr; @return VZ_EXIT_USAGE. */
int vz_cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Report a failed call with the thread's error detail; @return
 * VZ_EXIT_FAIL. */
int vz_cli_fail(const char *cmd, int rc);
/* Parse a positive integer option in [lo, hi]. */
bool vz_cli_int(const char *s, long lo, long hi, long *out);
void vz_cli_version(void);

/* Progress display: a bar on a TTY, log lines otherwise, nothing when
 * quiet. */
struct vz_progress {
	bool tty, quiet, json;
	double t0, phase_t0, last;
	uint64_t last_done;
	int last_pct;
	char phase[32];
};
void vz_progress_init(struct vz_progress *p, bool quiet);
void vz_progress_cb(void *ud, const char *phase, uint64_t done,
		    uint64_t total);
void vz_progress_end(struct vz_progress *p);

/* Set by SIGINT/SIGTERM while a long command runs. */
extern volatile int vz_cli_cancel;
void vz_cli_catch_signals(void);

#endif
