/* SPDX-License-Identifier: Apache-2.0 */
/* vizfs mount: the FUSE daemon serving the pyramid, with the prefetcher. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "fs.h"
#include "vizfs/service.h"

#define CMD "mount"

struct mopts {
	bool foreground, debug, prefetch;
	long workers;
	long watch; /* seconds between input checks; 0: never */
	enum vz_input_mode mode;
	const char *cache;
	struct vz_buf fuse_opts;   /* user -o options, comma separated */
	char *config, *mountpoint; /* absolute */
};

enum {
	OPT_NO_PREFETCH = 256,
	OPT_STAGED,
	OPT_RAW,
	OPT_CACHE,
	OPT_WATCH,
};

static const struct option long_opts[] = {
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{"foreground", no_argument, NULL, 'f'},
	{"debug", no_argument, NULL, 'd'},
	{"workers", required_argument, NULL, 'w'},
	{"no-prefetch", no_argument, NULL, OPT_NO_PREFETCH},
	{"staged", no_argument, NULL, OPT_STAGED},
	{"raw", no_argument, NULL, OPT_RAW},
	{"cache", required_argument, NULL, OPT_CACHE},
	{"watch", required_argument, NULL, OPT_WATCH},
	{NULL, 0, NULL, 0},
};

static void print_help(void)
{
	fputs("usage: vizfs mount CONFIG MOUNTPOINT [OPTIONS]\n"
	      "\nServe the pyramid of CONFIG as a read-only filesystem in the "
	      "PDG layout\n(web_tiles/…, geotiff/…, staged/…, the CSV "
	      "summaries). A tile that is not\ncached is rendered when it is "
	      "first looked up; a prefetcher renders the whole\npyramid in the"
	      " background. Progress: MOUNTPOINT/.vizfs/status (JSON).\n"
	      "Unmount with 'fusermount3 -u MOUNTPOINT' or SIGTERM.\n\n"
	      "  -f, --foreground  stay in the foreground, log to stderr "
	      "(default: daemon,\n"
	      "                    log to syslog)\n"
	      "  -w, --workers N   render threads (default: all CPUs)\n"
	      "      --no-prefetch render only what is read\n"
	      "  -o OPT[,OPT...]   FUSE mount options, e.g. allow_other "
	      "(always ro)\n"
	      "  -d, --debug       debug logging and FUSE request trace "
	      "(implies -f)\n"
	      "      --staged      read dir_staged as a pre-staged PDG tree "
	      "(rasterize only)\n"
	      "      --raw         never fall back to a pre-staged tree\n"
	      "      --cache DIR   cache directory (overrides "
	      "vizfs_cache_dir)\n"
	      "      --watch SECS  check the inputs every SECS seconds "
	      "(default 5, 0 = never);\n"
	      "                    a change that stays for one check "
	      "rebuilds the cache\n"
	      "\n  -h, --help        this text\n"
	      "  -V, --version     version of vizfs and its libraries\n"
	      "\nExit status: 0 ok (unmounted cleanly), 1 usage error, 2 "
	      "runtime failure.\n",
	      stdout);
}

/* A user -o list: refuse what would make the mount writable or pass
 * options fuse_session_new does not know later with a clear message. */
static int add_fuse_opts(struct mopts *o, const char *arg)
{
	char *dup = strdup(arg), *save = NULL, *tok;
	int rc = 0;

	if (!dup)
		return -ENOMEM;
	for (tok = strtok_r(dup, ",", &save); tok && !rc;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "rw")) {
			vz_cli_usage_error(CMD, "-o rw: the filesystem is "
						"read-only");
			rc = -EINVAL;
			break;
		}
		if (!strcmp(tok, "ro"))
			continue;
		if (o->fuse_opts.len)
			rc = vz_buf_append(&o->fuse_opts, ",", 1);
		if (!rc)
			rc = vz_buf_append(&o->fuse_opts, tok, strlen(tok));
	}
	free(dup);
	return rc;
}

/* @return -1 to continue, else the exit code. */
static int parse(struct mopts *o, int argc, char **argv)
{
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hVfdw:o:", long_opts, NULL)) !=
	       -1) {
		switch (c) {
		case 'h':
			print_help();
			return VZ_EXIT_OK;
		case 'V':
			vz_cli_version();
			return VZ_EXIT_OK;
		case 'f':
			o->foreground = true;
			break;
		case 'd':
			o->debug = o->foreground = true;
			break;
		case 'w':
			if (!vz_cli_int(optarg, 1, 1024, &o->workers))
				return vz_cli_usage_error(
					CMD,
					"--workers: expected an integer 1..1024,"
					" got '%s'",
					optarg);
			break;
		case 'o':
			if (add_fuse_opts(o, optarg))
				return VZ_EXIT_USAGE;
			break;
		case OPT_NO_PREFETCH:
			o->prefetch = false;
			break;
		case OPT_STAGED:
			o->mode = VZ_INPUT_STAGED;
			break;
		case OPT_RAW:
			o->mode = VZ_INPUT_RAW;
			break;
		case OPT_CACHE:
			o->cache = optarg;
			break;
		case OPT_WATCH:
			if (!vz_cli_int(optarg, 0, 86400, &o->watch))
				return vz_cli_usage_error(
					CMD,
					"--watch: expected seconds 0..86400, got "
					"'%s'",
					optarg);
			break;
		case ':':
			return vz_cli_usage_error(CMD,
						  "option '%s' needs a value",
						  argv[optind - 1]);
		default:
			return vz_cli_usage_error(CMD, "unknown option '%s'",
						  argv[optind - 1]);
		}
	}
	if (argc - optind != 2)
		return vz_cli_usage_error(CMD, argc - optind < 2 ?
						       "missing CONFIG or "
						       "MOUNTPOINT" :
						       "too many arguments");
	return -1;
}

/* An absolute path for @p p (which need not exist); the daemon changes
 * to "/" so every relative path is resolved first. */
static char *absolute(const char *p)
{
	char cwd[PATH_MAX], *r;

	if (p[0] == '/')
		return strdup(p);
	if (!getcwd(cwd, sizeof cwd))
		return NULL;
	r = malloc(strlen(cwd) + strlen(p) + 2);
	if (r)
		sprintf(r, "%s/%s", cwd, p);
	return r;
}

/* Check the mount point before anything slow happens. */
static int check_mountpoint(const char *arg, char **out)
{
	struct stat st, pst;
	char parent[PATH_MAX + 4];
	DIR *d;
	struct dirent *de;
	int entries = 0;

	if (stat(arg, &st) < 0) {
		if (errno == ENOTCONN)
			fprintf(stderr,
				"vizfs mount: %s: %s (a FUSE daemon died "
				"there; run 'fusermount3 -u %s' first)\n",
				arg, strerror(errno), arg);
		else
			fprintf(stderr, "vizfs mount: mount point %s: %s\n",
				arg, strerror(errno));
		return VZ_EXIT_FAIL;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr,
			"vizfs mount: mount point %s: not a "
			"directory\n",
			arg);
		return VZ_EXIT_FAIL;
	}
	*out = realpath(arg, NULL);
	if (!*out) {
		fprintf(stderr, "vizfs mount: mount point %s: %s\n", arg,
			strerror(errno));
		return VZ_EXIT_FAIL;
	}
	snprintf(parent, sizeof parent, "%s/..", *out);
	if (stat(parent, &pst) == 0 && pst.st_dev != st.st_dev &&
	    strcmp(*out, "/") != 0) {
		fprintf(stderr,
			"vizfs mount: %s is already a mount point; unmount it "
			"first (fusermount3 -u %s)\n",
			*out, *out);
		return VZ_EXIT_FAIL;
	}
	d = opendir(*out);
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			entries++;
	if (d)
		closedir(d);
	if (entries)
		fprintf(stderr,
			"vizfs mount: warning: %s is not empty; its "
			"%d entr%s will be hidden while mounted\n",
			*out, entries, entries == 1 ? "y" : "ies");
	return -1;
}

static int check_dev_fuse(void)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);

	if (fd >= 0) {
		close(fd);
		return -1;
	}
	/* unprivileged users mount through the setuid fusermount3 */
	if ((errno == EACCES || errno == EPERM) && geteuid() != 0)
		return -1;
	fprintf(stderr,
		"vizfs mount: cannot open /dev/fuse: %s (FUSE is not "
		"available: load the fuse module, or give a container "
		"--device /dev/fuse)\n",
		strerror(errno));
	return VZ_EXIT_FAIL;
}

/*
 * Daemonise before the cache is opened (LMDB environments and threads do
 * not survive fork), but let the parent report whether the mount came up:
 * it waits for one status byte from the child and exits with it.  This is
 * fuse_daemonize() with an exit status.
 */
static int daemon_fork(int *notify_fd)
{
	int p[2];
	pid_t pid;
	unsigned char st;
	ssize_t r;

	if (pipe(p) < 0) {
		fprintf(stderr, "vizfs mount: pipe: %s\n", strerror(errno));
		return VZ_EXIT_FAIL;
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "vizfs mount: fork: %s\n", strerror(errno));
		return VZ_EXIT_FAIL;
	}
	if (pid > 0) {
		close(p[1]);
		do
			r = read(p[0], &st, 1);
		while (r < 0 && errno == EINTR);
		if (r == 1)
			_exit(st);
		/* the child died without a word */
		waitpid(pid, NULL, WNOHANG);
		_exit(VZ_EXIT_FAIL);
	}
	close(p[0]);
	if (setsid() < 0) {
		fprintf(stderr, "vizfs mount: setsid: %s\n", strerror(errno));
		return VZ_EXIT_FAIL;
	}
	*notify_fd = p[1];
	return -1;
}

static void notify(int *fd, int status)
{
	unsigned char st = (unsigned char)status;

	if (*fd < 0)
		return;
	if (write(*fd, &st, 1) != 1) {
		/* the parent is gone; nothing to tell */
	}
	close(*fd);
	*fd = -1;
}

/* Detach stdio once the mount is up (fuse_daemonize's second half). */
static void detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd < 0)
		return;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

static int build_fuse_args(const struct mopts *o, struct fuse_args *args)
{
	struct vz_buf opt = {0};
	static const char base[] =
		"ro,fsname=vizfs,subtype=vizfs,default_permissions";
	int rc;

	rc = vz_buf_append(&opt, base, sizeof base - 1);
	if (!rc && o->fuse_opts.len)
		rc = vz_buf_append(&opt, ",", 1);
	if (!rc)
		rc = vz_buf_append(&opt, o->fuse_opts.data, o->fuse_opts.len);
	if (!rc)
		rc = vz_buf_append(&opt, "", 1);
	if (!rc &&
	    (fuse_opt_add_arg(args, "vizfs") || fuse_opt_add_arg(args, "-o") ||
	     fuse_opt_add_arg(args, (const char *)opt.data) ||
	     (o->debug && fuse_opt_add_arg(args, "-d"))))
		rc = -ENOMEM;
	vz_buf_free(&opt);
	return rc;
}

/* Everything after the fork: session, cache, service, loop, teardown. */
/* Watches the inputs while mounted; when their fingerprint changes, the
 * service is rebuilt on a cache made for the new inputs (the builder
 * empties a stale cache) and the kernel is told to forget the old files. */
struct watcher {
	pthread_t thread;
	pthread_mutex_t lock; /* guards: stop */
	pthread_cond_t cond;
	bool stop;
	long interval;
	const struct vz_conf *conf;
	struct vz_build_opts bo;
	struct vz_service_opts so;
	struct vz_fs *fs;
	struct fuse_session *se;
	struct vz_builder **b; /* swapped by the watcher, read after join */
	struct vz_service **svc;
};

/* The inputs' fingerprint now ("" when there are none). */
static void current_inputs(struct watcher *w, char fp[33])
{
	struct vz_inputs *in = NULL;

	fp[0] = '\0';
	if (vz_inputs_discover(w->conf, NULL, 0, w->bo.mode, &in) == 0)
		memcpy(fp, in->fingerprint, 33);
	vz_inputs_free(in);
}

static void rebuild(struct watcher *w)
{
	int rc;

	vz_log(VZ_LOG_INFO, "inputs of %s changed: rebuilding the cache",
	       w->conf->path);
	vz_fs_swap_begin(w->fs);
	VZ_FREEF(vz_service_stop, *w->svc);
	VZ_FREEF(vz_builder_close, *w->b);
	rc = vz_builder_open(w->conf, &w->bo, w->b);
	if (!rc) {
		rc = vz_service_start(*w->b, &w->so, w->svc);
		if (rc)
			VZ_FREEF(vz_builder_close, *w->b);
	}
	if (rc)
		vz_log(VZ_LOG_ERR,
		       "cannot rebuild after an input change (tiles fail with "
		       "EIO until the next check succeeds): %s",
		       vz_err_msg()[0] ? vz_err_msg() : vz_strerror(rc));
	vz_fs_set_service(w->fs, *w->svc);
	vz_fs_swap_end(w->fs);
	vz_fs_invalidate(w->fs, w->se);
}

static void *watch_main(void *arg)
{
	struct watcher *w = arg;
	char seen[33] = "", now[33];

	pthread_setname_np(pthread_self(), "vz-watch");
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += w->interval;
		pthread_cond_timedwait(&w->cond, &w->lock, &ts);
		if (w->stop)
			break;
		pthread_mutex_unlock(&w->lock);
		/* Rebuild once a change has held still for one interval (not
		 * while a file is still being written). */
		current_inputs(w, now);
		if (strcmp(now, *w->b ? vz_builder_inputs(*w->b)->fingerprint
				      : "") != 0 &&
		    strcmp(now, seen) == 0)
			rebuild(w);
		memcpy(seen, now, sizeof seen);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static int serve(struct mopts *o, struct vz_conf *conf, int *notify_fd)
{
	struct watcher w = {.lock = PTHREAD_MUTEX_INITIALIZER,
			    .cond = PTHREAD_COND_INITIALIZER};
	bool watching = false;
	struct vz_build_opts bo = {0};
	struct vz_service_opts so = {0};
	struct vz_builder *b = NULL;
	struct vz_service *svc = NULL;
	struct vz_fs *fs = NULL;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct fuse_loop_config *lc;
	int rc, ex = VZ_EXIT_FAIL;

	if (vz_fs_new(conf, &fs) || build_fuse_args(o, &args)) {
		fprintf(stderr, "vizfs mount: out of memory\n");
		goto out;
	}
	/* first, so that a bad -o option fails before any slow work */
	se = fuse_session_new(&args, &vz_fs_ops, sizeof vz_fs_ops, fs);
	if (!se) {
		/* libfuse printed the offending option */
		fprintf(stderr, "vizfs mount: cannot create the FUSE session "
				"(bad -o option?)\n");
		ex = VZ_EXIT_USAGE;
		goto out;
	}
	bo.workers = (int)o->workers;
	bo.mode = o->mode;
	bo.cache_dir = o->cache;
	rc = vz_builder_open(conf, &bo, &b);
	if (rc) {
		vz_cli_fail(CMD, rc);
		goto out_session;
	}
	so.workers = (int)o->workers;
	so.prefetch = o->prefetch;
	rc = vz_service_start(b, &so, &svc);
	if (rc) {
		vz_cli_fail(CMD, rc);
		goto out_builder;
	}
	vz_fs_set_service(fs, svc);
	if (fuse_set_signal_handlers(se)) {
		fprintf(stderr, "vizfs mount: cannot install signal "
				"handlers\n");
		goto out_service;
	}
	if (fuse_session_mount(se, o->mountpoint)) {
		fprintf(stderr,
			"vizfs mount: cannot mount on %s (see the "
			"message above)\n",
			o->mountpoint);
		goto out_signals;
	}
	notify(notify_fd, VZ_EXIT_OK);
	if (!o->foreground) {
		detach_stdio();
		vz_log_use_syslog();
	}
	vz_log(VZ_LOG_INFO, "mounted %s on %s (cache %s, prefetch %s)",
	       conf->path, o->mountpoint, o->cache ? o->cache : conf->cache_dir,
	       o->prefetch ? "on" : "off");
	if (chdir("/")) {
		/* keep the working directory; harmless */
	}

	if (o->watch > 0) {
		sigset_t block, old;
		w.interval = o->watch;
		w.conf = conf;
		w.bo = bo;
		w.so = so;
		w.fs = fs;
		w.se = se;
		w.b = &b;
		w.svc = &svc;
		sigemptyset(&block);
		sigaddset(&block, SIGINT);
		sigaddset(&block, SIGTERM);
		sigaddset(&block, SIGHUP);
		pthread_sigmask(SIG_BLOCK, &block, &old);
		watching = pthread_create(&w.thread, NULL, watch_main, &w) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}

	lc = fuse_loop_cfg_create();
	if (!lc) {
		vz_log(VZ_LOG_ERR, "out of memory");
		rc = -ENOMEM;
	} else {
		fuse_loop_cfg_set_clone_fd(lc, 0);
		fuse_loop_cfg_set_max_threads(lc, 64);
		fuse_loop_cfg_set_idle_threads(lc, 16);
		rc = fuse_session_loop_mt(se, lc);
		fuse_loop_cfg_destroy(lc);
	}
	if (watching) {
		pthread_mutex_lock(&w.lock);
		w.stop = true;
		pthread_cond_signal(&w.cond);
		pthread_mutex_unlock(&w.lock);
		pthread_join(w.thread, NULL);
	}
	/* rc > 0: stopped by SIGTERM/SIGINT/SIGHUP; 0: unmounted */
	ex = rc < 0 ? VZ_EXIT_FAIL : VZ_EXIT_OK;
	if (rc < 0)
		vz_log(VZ_LOG_ERR, "session loop: %s", strerror(-rc));
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_service:
	/* requests still waiting for renders are answered here, while the
	 * session still exists (their replies go nowhere once unmounted) */
	vz_service_stop(svc);
out_builder:
	vz_builder_close(b); /* commits pending cache writes */
	if (ex == VZ_EXIT_OK)
		vz_log(VZ_LOG_INFO, "unmounted %s", o->mountpoint);
out_session:
	fuse_session_destroy(se);
out:
	vz_fs_free(fs);
	fuse_opt_free_args(&args);
	return ex;
}

int vz_cli_mount(int argc, char **argv)
{
	struct mopts o;
	struct vz_conf *conf = NULL;
	int notify_fd = -1, rc, ex;

	memset(&o, 0, sizeof o);
	o.prefetch = true;
	o.watch = 5;
	o.mode = VZ_INPUT_AUTO;
	if ((rc = parse(&o, argc, argv)) >= 0)
		goto out;
	if (o.debug)
		vz_log_set_level(VZ_LOG_DEBUG);
	o.config = absolute(argv[optind]);
	if (!o.config) {
		rc = vz_cli_fail(CMD, -errno);
		goto out;
	}
	rc = vz_conf_load(o.config, &conf);
	if (rc) {
		rc = vz_cli_fail(CMD, rc);
		goto out;
	}
	if ((rc = check_mountpoint(argv[optind + 1], &o.mountpoint)) >= 0)
		goto out;
	if ((rc = check_dev_fuse()) >= 0)
		goto out;
	if (o.cache) {
		char *abs = absolute(o.cache);
		if (!abs) {
			rc = vz_cli_fail(CMD, -errno);
			goto out;
		}
		o.cache = abs;
	}
	if (!o.foreground && (rc = daemon_fork(&notify_fd)) >= 0)
		goto out_cache;
	ex = serve(&o, conf, &notify_fd);
	notify(&notify_fd, ex);
	rc = ex;
out_cache:
	if (o.cache)
		free((char *)o.cache);
out:
	vz_conf_free(conf);
	free(o.config);
	free(o.mountpoint);
	vz_buf_free(&o.fuse_opts);
	return rc;
}
