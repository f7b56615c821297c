/* SPDX-License-Identifier: Apache-2.0 */
/* Timing probe for bench/mount: open+read+close latency of lists of files. */
/*
 * mount_probe cold LIST
 *	Read each file of LIST (one path a line) once, in order; print one
 *	line per file: "<ns> <bytes> <path>" (ns -1 and errno text on error).
 *
 * mount_probe warm PASSES DIR_A DIR_B LIST
 *	LIST holds paths relative to both directories (opened with openat,
 *	so both sides walk the same path components).  Reads all files under
 *	A, then all under B (B first on odd passes), PASSES times after one
 *	untimed warm-up pass each.  Prints for A and B: "<label> ops p50_ns
 *	p99_ns mean_ns bytes_per_pass median_pass_ns best_pass_ns".
 *
 * Each measurement is clock_gettime(CLOCK_MONOTONIC) around open(O_RDONLY),
 * read() of 128 KiB until it returns 0, close().  Built by bench/mount
 * with cc; not part of the meson build.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char buf[128 * 1024];

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* open+read+close of @p path (relative to @p dir, or AT_FDCWD); bytes
 * read into *@p bytes; -errno or ns */
static int64_t read_file(int dir, const char *path, int64_t *bytes)
{
	int64_t t0 = now_ns(), total = 0;
	int fd = openat(dir, path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	if (n < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	close(fd);
	*bytes = total;
	return now_ns() - t0;
}

static char **load_list(const char *file, size_t *n)
{
	FILE *f = fopen(file, "r");
	char **v = NULL, *line = NULL;
	size_t cap = 0, len = 0, lcap = 0;
	ssize_t r;

	if (!f) {
		fprintf(stderr, "mount_probe: %s: %s\n", file, strerror(errno));
		exit(2);
	}
	while ((r = getline(&line, &lcap, f)) > 0) {
		if (line[r - 1] == '\n')
			line[--r] = '\0';
		if (r == 0)
			continue;
		if (len == cap) {
			cap = cap ? 2 * cap : 256;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				abort();
		}
		v[len++] = strdup(line);
	}
	free(line);
	fclose(f);
	*n = len;
	return v;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* nearest-rank percentile of a sorted array */
static int64_t pct(const int64_t *v, size_t n, double p)
{
	size_t i = (size_t)(p / 100.0 * n + 0.999999);

	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	return v[i - 1];
}

static int cold(const char *list)
{
	size_t n;
	char **v = load_list(list, &n);
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		int64_t bytes = 0, ns = read_file(AT_FDCWD, v[i], &bytes);

		if (ns < 0) {
			printf("-1 0 %s %s\n", v[i], strerror((int)-ns));
			bad = 1;
		} else {
			printf("%lld %lld %s\n", (long long)ns,
			       (long long)bytes, v[i]);
		}
		fflush(stdout);
	}
	return bad;
}

struct side {
	const char *label;
	int dir;
	char **files;
	size_t n;
	int64_t *ops;	/* passes * n latencies */
	int64_t *pass;	/* per-pass wall time */
	int64_t bytes;	/* per pass */
	size_t nops;
};

/* One pass over @p s; @p rec: record the timings. */
static int run_pass(struct side *s, int rec, int p)
{
	int64_t t0 = now_ns(), bytes = 0;

	for (size_t i = 0; i < s->n; i++) {
		int64_t b = 0, ns = read_file(s->dir, s->files[i], &b);

		if (ns < 0) {
			fprintf(stderr, "mount_probe: %s: %s\n", s->files[i],
				strerror((int)-ns));
			return -1;
		}
		bytes += b;
		if (rec)
			s->ops[s->nops++] = ns;
	}
	if (rec)
		s->pass[p] = now_ns() - t0;
	s->bytes = bytes;
	return 0;
}

static void report(struct side *s, int passes)
{
	qsort(s->ops, s->nops, sizeof(int64_t), cmp_i64);
	qsort(s->pass, passes, sizeof(int64_t), cmp_i64);
	double sum = 0;

	for (size_t i = 0; i < s->nops; i++)
		sum += s->ops[i];
	printf("%s %zu %lld %lld %.0f %lld %lld %lld\n", s->label, s->nops,
	       (long long)pct(s->ops, s->nops, 50),
	       (long long)pct(s->ops, s->nops, 99), sum / s->nops,
	       (long long)s->bytes, (long long)pct(s->pass, passes, 50),
	       (long long)s->pass[0]);
}

static int warm(int passes, const char *da, const char *db, const char *list)
{
	struct side sd[2] = {{.label = "A"}, {.label = "B"}};
	const char *dirs[2] = {da, db};

	for (int k = 0; k < 2; k++) {
		sd[k].files = load_list(list, &sd[k].n);
		sd[k].dir = open(dirs[k], O_RDONLY | O_DIRECTORY);
		if (sd[k].dir < 0) {
			fprintf(stderr, "mount_probe: %s: %s\n", dirs[k],
				strerror(errno));
			return 2;
		}
		if (sd[k].n == 0) {
			fprintf(stderr, "mount_probe: empty list\n");
			return 2;
		}
		sd[k].ops = malloc(sizeof(int64_t) * passes * sd[k].n);
		sd[k].pass = malloc(sizeof(int64_t) * passes);
		if (!sd[k].ops || !sd[k].pass)
			abort();
		if (run_pass(&sd[k], 0, 0) < 0)
			return 1;
	}
	for (int p = 0; p < passes; p++) {
		int first = p & 1;

		if (run_pass(&sd[first], 1, p) < 0 ||
		    run_pass(&sd[!first], 1, p) < 0)
			return 1;
	}
	report(&sd[0], passes);
	report(&sd[1], passes);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "cold") == 0)
		return cold(argv[2]);
	if (argc == 6 && strcmp(argv[1], "warm") == 0 && atoi(argv[2]) > 0)
		return warm(atoi(argv[2]), argv[3], argv[4], argv[5]);
	fprintf(stderr, "usage: mount_probe cold LIST | "
			"mount_probe warm PASSES DIR_A DIR_B LIST\n");
	return 2;
}
