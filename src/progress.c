/* SPDX-License-Identifier: Apache-2.0 */
/* Progress bar on a terminal, periodic log lines otherwise. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

void vz_progress_init(struct vz_progress *p, bool quiet)
{
	memset(p, 0, sizeof *p);
	p->quiet = quiet;
	p->tty = isatty(STDERR_FILENO);
	p->t0 = vz_now();
}

static void fmt_eta(double s, char *out, size_t n)
{
	if (s < 0 || s > 99 * 3600) {
		snprintf(out, n, "--:--");
		return;
	}
	int t = (int)(s + 0.5);
	if (t >= 3600)
		snprintf(out, n, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(out, n, "%d:%02d", t / 60, t % 60);
}

void vz_progress_cb(void *ud, const char *phase, uint64_t done, uint64_t total)
{
	struct vz_progress *p = ud;
	double now = vz_now(), el, rate;
	char eta[16];
	int pct;

	if (p->quiet)
		return;
	if (strcmp(phase, p->phase)) {
		if (p->tty && p->phase[0])
			fputc('\n', stderr);
		snprintf(p->phase, sizeof p->phase, "%s", phase);
		p->phase_t0 = now;
		p->last = 0;
		p->last_pct = -1;
	}
	el = now - p->phase_t0;
	rate = el > 0 ? (double)done / el : 0;
	fmt_eta(rate > 0 ? (double)(total - done) / rate : -1, eta,
		sizeof eta);
	pct = total ? (int)(100 * done / total) : 100;
	if (p->tty) {
		char bar[31];
		int fill = total ? (int)(30 * done / total) : 30;
		if (now - p->last < 0.1 && done != total)
			return;
		p->last = now;
		for (int i = 0; i < 30; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[30] = '\0';
		fprintf(stderr,
			"\r%-10s [%s] %3d%% %llu/%llu  %.0f/s  ETA %s   ",
			phase, bar, pct, (unsigned long long)done,
			(unsigned long long)total, rate, eta);
		fflush(stderr);
		return;
	}
	/* Plain lines: phase start, every 10% or 10 s, and the end. */
	if (done != total && p->last_pct >= 0 && pct / 10 == p->last_pct / 10 &&
	    now - p->last < 10)
		return;
	p->last_pct = pct;
	p->last = now;
	fprintf(stderr, "vizfs: %s: %llu/%llu (%d%%) %.0f/s ETA %s\n", phase,
		(unsigned long long)done, (unsigned long long)total, pct, rate,
		eta);
}

void vz_progress_end(struct vz_progress *p)
{
	if (!p->quiet && p->tty && p->phase[0])
		fputc('\n', stderr);
	p->phase[0] = '\0';
}
