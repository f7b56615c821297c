/* SPDX-License-Identifier: Apache-2.0 */
/* Input discovery: raw vector files or a pre-staged PDG tree; fingerprints. */
#include "vizfs/input.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct list {
	struct vz_input *v;
	size_t n, cap;
};

static void input_clear(struct vz_input *in)
{
	free(in->path);
	free(in->relname);
}

static void list_free(struct list *l)
{
	for (size_t i = 0; i < l->n; i++)
		input_clear(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

static struct vz_input *list_push(struct list *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct vz_input *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	memset(&l->v[l->n], 0, sizeof l->v[0]);
	return &l->v[l->n++];
}

/* The later of the modification and status-change times: a write, a
 * chmod/chown (an input made readable again) or a touch all change it, so
 * that the fingerprint notices every repair of an input. */
static int64_t mtime_ns(const struct stat *s)
{
	int64_t m = (int64_t)s->st_mtim.tv_sec * 1000000000 + s->st_mtim.tv_nsec;
	int64_t c = (int64_t)s->st_ctim.tv_sec * 1000000000 + s->st_ctim.tv_nsec;
	return c > m ? c : m;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return m <= n && strcmp(s + n - m, suffix) == 0;
}

/* staging_filename (§2.3): the dir_input prefix removed, then leading and
 * trailing '/' stripped. */
static char *make_relname(const char *path, const char *dir)
{
	const char *s = path, *e;
	size_t dn = dir ? strlen(dir) : 0;

	while (dn > 1 && dir[dn - 1] == '/')
		dn--;
	if (dn && strncmp(path, dir, dn) == 0 &&
	    (path[dn] == '/' || path[dn] == '\0'))
		s = path + dn;
	while (*s == '/')
		s++;
	e = s + strlen(s);
	while (e > s && e[-1] == '/')
		e--;
	return strndup(s, (size_t)(e - s));
}

static const char *const side[] = {".dbf", ".shx", ".prj", ".cpg",
				   ".DBF", ".SHX", ".PRJ", ".CPG"};

static bool is_shp(const char *path)
{
	size_t n = strlen(path);

	return n > 4 && strcasecmp(path + n - 4, ".shp") == 0;
}

/* Size and mtime of a file plus, for shapefiles, its sidecars, so that a
 * changed .dbf changes the fingerprint. */
static int file_info(const char *path, int64_t *size, int64_t *mt)
{
	struct stat sb;
	size_t n = strlen(path);

	if (stat(path, &sb) != 0)
		return -errno;
	if (!S_ISREG(sb.st_mode))
		return S_ISDIR(sb.st_mode) ? -EISDIR : -EINVAL;
	*size = sb.st_size;
	*mt = mtime_ns(&sb);
	if (is_shp(path)) {
		char *p = malloc(n + 1);
		if (!p)
			return -ENOMEM;
		for (size_t i = 0; i < VZ_ARRAY_SIZE(side); i++) {
			memcpy(p, path, n - 4);
			memcpy(p + n - 4, side[i], 5);
			if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) {
				*size += sb.st_size;
				if (mtime_ns(&sb) > *mt)
					*mt = mtime_ns(&sb);
			}
		}
		free(p);
	}
	return 0;
}

static char *join(const char *a, const char *b)
{
	size_t na = strlen(a);
	char *s = malloc(na + strlen(b) + 2);
	if (!s)
		return NULL;
	sprintf(s, "%s%s%s", a, (na && a[na - 1] == '/') ? "" : "/", b);
	return s;
}

static int add_raw(struct list *l, const char *path, const char *dir)
{
	struct vz_input *in;
	int rc;

	in = list_push(l);
	if (!in)
		return -ENOMEM;
	in->path = strdup(path);
	in->relname = make_relname(path, dir);
	if (!in->path || !in->relname)
		return -ENOMEM;
	rc = file_info(path, &in->size, &in->mtime_ns);
	if (rc == -ENOMEM)
		return rc;
	if (rc) {
		vz_err_set("%s: cannot read input file: %s", path,
			   rc == -EINVAL ? "not a regular file" :
					   vz_strerror(rc));
		return VZ_E_INPUT;
	}
	return 0;
}

/* The directories being walked, innermost first: a symbolic link back to
 * one of them is a cycle, and following it would never end. */
struct walk_dir {
	dev_t dev;
	ino_t ino;
	const struct walk_dir *up;
};

/* Recursive walk for names ending in ext, skipping hidden entries (the
 * cache directory .vizfs-cache lives below dir_input by default). */
static int walk(struct list *l, const char *dir, const char *root,
		const char *ext, int depth, const struct walk_dir *up)
{
	struct dirent **ents = NULL;
	struct walk_dir self = {0, 0, up};
	struct stat ds;
	int n, rc = 0;

	if (depth > 64)
		return 0;
	if (stat(dir, &ds) == 0) {
		for (const struct walk_dir *a = up; a; a = a->up) {
			if (a->dev == ds.st_dev && a->ino == ds.st_ino) {
				vz_log(VZ_LOG_WARN,
				       "%s: symbolic link cycle, not followed",
				       dir);
				return 0;
			}
		}
		self.dev = ds.st_dev;
		self.ino = ds.st_ino;
	}
	n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0) {
		rc = -errno;
		vz_err_set("%s: cannot list directory: %s", dir, strerror(-rc));
		return rc == -ENOENT ? rc : VZ_E_INPUT;
	}
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		struct stat sb;
		char *p;

		if (rc || name[0] == '.')
			continue;
		p = join(dir, name);
		if (!p) {
			rc = -ENOMEM;
			continue;
		}
		if (stat(p, &sb) != 0) {
			/* dangling link: not an input */
		} else if (S_ISDIR(sb.st_mode)) {
			rc = walk(l, p, root, ext, depth + 1, &self);
		} else if (S_ISREG(sb.st_mode) && ends_with(name, ext)) {
			rc = add_raw(l, p, root);
		}
		free(p);
	}
	for (int i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	return rc;
}

/* Strict non-negative decimal of at most 10 digits, no sign or spaces. */
static bool parse_u32(const char *s, size_t len, uint32_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* <dir_staged>/<tms_id>/<z_max>/<x>/<y><ext_staged> */
static int walk_staged(struct list *l, const struct vz_conf *c)
{
	struct dirent **xs = NULL;
	char zdir[32], *base;
	int nx, rc = 0;

	snprintf(zdir, sizeof zdir, "%d", c->z_max);
	base = malloc(strlen(c->dir_staged) + strlen(c->tms_id) + strlen(zdir) +
		      3);
	if (!base)
		return -ENOMEM;
	sprintf(base, "%s/%s/%s", c->dir_staged, c->tms_id, zdir);
	nx = scandir(base, &xs, NULL, alphasort);
	if (nx < 0) {
		free(base);
		return 0;
	}
	for (int i = 0; i < nx && !rc; i++) {
		struct dirent **ys = NULL;
		uint32_t x, y;
		char *xd;
		int ny;

		if (!parse_u32(xs[i]->d_name, strlen(xs[i]->d_name), &x))
			continue;
		xd = join(base, xs[i]->d_name);
		if (!xd) {
			rc = -ENOMEM;
			break;
		}
		ny = scandir(xd, &ys, NULL, alphasort);
		for (int j = 0; j < ny && !rc; j++) {
			const char *nm = ys[j]->d_name;
			size_t len = strlen(nm), el = strlen(c->ext_staged);
			struct vz_tile_key k;
			struct vz_input *in;
			char *p;

			if (!ends_with(nm, c->ext_staged) ||
			    !parse_u32(nm, len - el, &y))
				continue;
			k.x = x;
			k.y = y;
			k.z = (uint8_t)c->z_max;
			if (!vz_tms_valid(c->tms, &k)) {
				vz_log(VZ_LOG_WARN,
				       "%s/%s: not a tile of %s, ignored", xd,
				       nm, c->tms_id);
				continue;
			}
			p = join(xd, nm);
			if (!p) {
				rc = -ENOMEM;
				break;
			}
			in = list_push(l);
			if (!in) {
				free(p);
				rc = -ENOMEM;
				break;
			}
			in->path = p;
			in->relname = make_relname(p, c->dir_staged);
			in->prestaged = true;
			in->key = k;
			if (!in->relname) {
				rc = -ENOMEM;
				break;
			}
			if (file_info(p, &in->size, &in->mtime_ns) != 0) {
				vz_err_set("%s: cannot read staged tile", p);
				rc = VZ_E_INPUT;
			}
		}
		for (int j = 0; j < ny; j++)
			free(ys[j]);
		free(ys);
		free(xd);
	}
	for (int i = 0; i < nx; i++)
		free(xs[i]);
	free(xs);
	free(base);
	return rc;
}

static int cmp_path(const void *a, const void *b)
{
	const struct vz_input *x = a, *y = b;
	return strcmp(x->path, y->path);
}

/*
 * Each file of a shapefile on its own: the sum of sizes and the newest
 * mtime in struct vz_input miss an older .dbf of the same size copied back
 * (cp -p, tar, rsync -t) next to a newer .shp.
 */
static void hash_sidecars(struct vz_hash *h, const char *path)
{
	size_t n = strlen(path);
	char p[PATH_MAX];
	struct stat sb;

	if (!is_shp(path) || n >= sizeof p)
		return;
	if (stat(path, &sb) == 0) {
		vz_hash_u64(h, (uint64_t)sb.st_size);
		vz_hash_u64(h, (uint64_t)mtime_ns(&sb));
	}
	for (size_t i = 0; i < VZ_ARRAY_SIZE(side); i++) {
		memcpy(p, path, n - 4);
		memcpy(p + n - 4, side[i], 5);
		if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) {
			vz_hash_u64(h, i);
			vz_hash_u64(h, (uint64_t)sb.st_size);
			vz_hash_u64(h, (uint64_t)mtime_ns(&sb));
		}
	}
}

static void fingerprint(struct vz_inputs *in)
{
	struct vz_hash h;

	vz_hash_init(&h);
	vz_hash_u64(&h, in->n);
	vz_hash_u64(&h, in->prestaged);
	for (size_t i = 0; i < in->n; i++) {
		const struct vz_input *v = &in->v[i];
		vz_hash_str(&h, v->relname);
		vz_hash_u64(&h, (uint64_t)v->size);
		vz_hash_u64(&h, (uint64_t)v->mtime_ns);
		hash_sidecars(&h, v->path);
		vz_hash_u64(&h, v->prestaged);
		vz_hash_u64(&h, v->key.z);
		vz_hash_u64(&h, v->key.x);
		vz_hash_u64(&h, v->key.y);
	}
	vz_hash_hex(&h, in->fingerprint);
}

int vz_inputs_discover(const struct vz_conf *c, const char *const *files,
		       size_t n_files, enum vz_input_mode mode,
		       struct vz_inputs **out)
{
	struct list l = {0};
	struct vz_inputs *res;
	bool staged = false;
	int rc = 0;

	*out = NULL;
	if (files && n_files) {
		for (size_t i = 0; i < n_files && !rc; i++)
			rc = add_raw(&l, files[i], c->dir_input);
		if (rc)
			goto err;
	} else {
		if (mode != VZ_INPUT_STAGED) {
			rc = walk(&l, c->dir_input, c->dir_input, c->ext_input,
				  0, NULL);
			if (rc == -ENOENT && mode == VZ_INPUT_AUTO)
				rc = 0;
			if (rc)
				goto err;
		}
		if (l.n == 0 && mode != VZ_INPUT_RAW) {
			rc = walk_staged(&l, c);
			if (rc)
				goto err;
			staged = true;
		}
	}
	if (l.n == 0) {
		if (mode == VZ_INPUT_RAW)
			vz_err_set("no input: no files ending in '%s' below %s",
				   c->ext_input, c->dir_input);
		else if (mode == VZ_INPUT_STAGED)
			vz_err_set("no input: no staged tiles %s/%s/%d/X/Y%s",
				   c->dir_staged, c->tms_id, c->z_max,
				   c->ext_staged);
		else
			vz_err_set("no input: no files ending in '%s' below %s "
				   "and no staged tiles in %s/%s/%d",
				   c->ext_input, c->dir_input, c->dir_staged,
				   c->tms_id, c->z_max);
		rc = -ENOENT;
		goto err;
	}
	qsort(l.v, l.n, sizeof l.v[0], cmp_path);
	res = calloc(1, sizeof *res);
	if (!res) {
		rc = -ENOMEM;
		goto err;
	}
	res->v = l.v;
	res->n = l.n;
	res->prestaged = staged;
	fingerprint(res);
	*out = res;
	return 0;
err:
	list_free(&l);
	return rc;
}

void vz_inputs_free(struct vz_inputs *in)
{
	if (!in)
		return;
	for (size_t i = 0; i < in->n; i++)
		input_clear(&in->v[i]);
	free(in->v);
	free(in);
}
