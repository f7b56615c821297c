/* SPDX-License-Identifier: Apache-2.0 */
/* The PDG directory tree and CSV summaries, written from the cache. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cpl_vsi.h>

#include "build_i.h"
#include "vizfs/geotiff.h"
#include "vizfs/staged.h"
#include "vizfs/wmts.h"

/* ---- Python-compatible float formatting (repr) -------------------------- */

/* Shortest round-trip representation, laid out like Python's repr(float):
 * positional for exponents in [-4, 16), else d.ddde+XX. */
void vz_fmt_pyfloat(double v, char *out, size_t n)
{
	char tmp[40], digits[20];
	int exp10 = 0, nd = 0, p;

	if (isnan(v)) {
		snprintf(out, n, "nan");
		return;
	}
	if (isinf(v)) {
		snprintf(out, n, v < 0 ? "-inf" : "inf");
		return;
	}
	if (v == 0) {
		snprintf(out, n, signbit(v) ? "-0.0" : "0.0");
		return;
	}
	for (p = 1; p <= 17; p++) {
		snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	/* tmp = [-]d.ddde[+-]XX */
	{
		const char *s = tmp;
		char *e;
		if (*s == '-')
			s++;
		for (; *s && *s != 'e'; s++)
			if (*s >= '0' && *s <= '9')
				digits[nd++] = *s;
		exp10 = (int)strtol(s + 1, &e, 10);
		while (nd > 1 && digits[nd - 1] == '0')
			nd--;
		digits[nd] = '\0';
	}
	{
		char buf[64];
		size_t o = 0;
		if (v < 0)
			buf[o++] = '-';
		if (exp10 >= -4 && exp10 < 16) {
			if (exp10 < 0) {
				buf[o++] = '0';
				buf[o++] = '.';
				for (int i = 0; i < -exp10 - 1; i++)
					buf[o++] = '0';
				for (int i = 0; i < nd; i++)
					buf[o++] = digits[i];
			} else {
				for (int i = 0; i <= exp10; i++)
					buf[o++] = i < nd ? digits[i] : '0';
				buf[o++] = '.';
				if (nd > exp10 + 1)
					for (int i = exp10 + 1; i < nd; i++)
						buf[o++] = digits[i];
				else
					buf[o++] = '0';
			}
			buf[o] = '\0';
		} else {
			buf[o++] = digits[0];
			if (nd > 1) {
				buf[o++] = '.';
				for (int i = 1; i < nd; i++)
					buf[o++] = digits[i];
			}
			snprintf(buf + o, sizeof buf - o, "e%c%02d",
				 exp10 < 0 ? '-' : '+', abs(exp10));
		}
		snprintf(out, n, "%s", buf);
	}
}


/* A CSV field, quoted when it holds a comma, quote or newline. */
static int csv_field(struct vz_buf *b, const char *s)
{
	int rc;

	if (!strpbrk(s, ",\"\n\r"))
		return vz_buf_append(b, s, strlen(s));
	rc = vz_buf_append(b, "\"", 1);
	for (; !rc && *s; s++)
		rc = *s == '"' ? vz_buf_append(b, "\"\"", 2)
			       : vz_buf_append(b, s, 1);
	return rc ? rc : vz_buf_append(b, "\"", 1);
}

/* ---- rasters_summary.csv ------------------------------------------------ */

struct rs_ctx {
	struct vz_builder *b;
	struct vz_buf *out;
	struct vz_buf keys; /* tile keys of the SUMMARY entries, in order */
};

static int rs_key(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		  size_t vl)
{
	struct rs_ctx *r = ud;

	if (kl != VZ_KEY_TILE_LEN || vl != r->b->c->n_stats * 7 * sizeof(double))
		return VZ_E_CACHE;
	return vz_buf_append(&r->keys, k, kl);
}

/* One tile's rows; the median is computed here from the bands (the
 * stored summary leaves it out: only this CSV needs it). */
static int rs_rows(struct rs_ctx *r, const uint8_t *k, double *bands,
		   double *tmp, struct vz_buf *val)
{
	const struct vz_conf *c = r->b->c;
	struct vz_tile_ref ref = {VZ_KIND_GEOTIFF, -1, {0, 0, 0}};
	struct vz_bbox bb;
	char path[1024], f[8][40], bounds[200], tile[80];
	size_t plane = r->b->plane;
	double summ[7];
	int rc;

	vz_key_tile_parse(k, &ref.key);
	rc = vz_cache_get(r->b->cache, VZ_DB_SUMMARY, k, VZ_KEY_TILE_LEN, val);
	if (!rc && val->len != c->n_stats * sizeof summ)
		rc = VZ_E_CACHE;
	if (rc)
		return rc;
	memcpy(tmp, val->data, val->len); /* keep the summaries */
	rc = vz_cache_get(r->b->cache, VZ_DB_BAND, k, VZ_KEY_TILE_LEN, val);
	if (rc == -ENOENT)
		return 0; /* being rendered: the band (its done marker) is
			     written after the summary */
	if (!rc)
		rc = vz_bands_decode(val->data, val->len, bands,
				     plane * c->n_stats);
	if (rc)
		return rc;
	if (vz_path_format(c, &ref, path, sizeof path) < 0)
		return -ENAMETOOLONG;
	vz_tms_bounds(c->tms, &ref.key, &bb);
	vz_fmt_pyfloat(bb.left, f[0], sizeof f[0]);
	vz_fmt_pyfloat(bb.right, f[1], sizeof f[1]);
	vz_fmt_pyfloat(bb.bottom, f[2], sizeof f[2]);
	vz_fmt_pyfloat(bb.top, f[3], sizeof f[3]);
	snprintf(bounds, sizeof bounds, "[%s, %s, %s, %s]", f[0], f[1], f[2],
		 f[3]);
	snprintf(tile, sizeof tile, "Tile(x=%" PRIu32 ", y=%" PRIu32 ", z=%d)",
		 ref.key.x, ref.key.y, ref.key.z);
	for (size_t s = 0; s < c->n_stats && !rc; s++) {
		double full[7];
		memcpy(summ, (const char *)tmp + s * sizeof summ, sizeof summ);
		vz_band_stats(bands + s * plane, plane, tmp + c->n_stats * 7,
			      full);
		summ[3] = full[3];
		rc = csv_field(r->out, c->stats[s].name);
		rc = rc ? rc : vz_buf_append(r->out, ",", 1);
		rc = rc ? rc : csv_field(r->out, bounds);
		for (int i = 0; i < 7 && !rc; i++) {
			vz_fmt_pyfloat(summ[i], f[0], sizeof f[0]);
			rc = vz_buf_printf(r->out, ",%s", f[0]);
		}
		rc = rc ? rc : vz_buf_append(r->out, ",", 1);
		rc = rc ? rc : csv_field(r->out, path);
		rc = rc ? rc : vz_buf_append(r->out, ",", 1);
		rc = rc ? rc : csv_field(r->out, tile);
		rc = rc ? rc : vz_buf_printf(r->out, ",%d\n", ref.key.z);
	}
	return rc;
}

/* rasters_summary.csv (spec §9.1): one row per band of every tile, once
 * (the PDG appends every run and the web-tile re-read, Q5). */
int vz_builder_rasters_csv(struct vz_builder *b, struct vz_buf *out)
{
	struct rs_ctx r = {b, out, {0}};
	struct vz_buf val = {0};
	double *bands = malloc(b->tile_bytes);
	double *tmp = malloc(b->plane * sizeof(double) +
			     b->c->n_stats * 7 * sizeof(double));
	int rc = bands && tmp ? 0 : -ENOMEM;

	if (!rc)
		rc = vz_buf_printf(out, "stat,bounds,min,max,mean,median,std,var,"
				  "sum,path,tile,z\n");
	for (int z = b->c->z_max; z >= b->c->z_min && !rc; z--) {
		uint8_t p = (uint8_t)z;
		vz_buf_reset(&r.keys);
		rc = vz_cache_scan(b->cache, VZ_DB_SUMMARY, &p, 1, rs_key, &r);
		for (size_t i = 0; !rc && i < r.keys.len; i += VZ_KEY_TILE_LEN)
			rc = rs_rows(&r, r.keys.data + i, bands, tmp, &val);
	}
	vz_buf_free(&r.keys);
	vz_buf_free(&val);
	free(bands);
	free(tmp);
	return rc;
}

/* ---- staging_summary.csv ------------------------------------------------ */

struct ss_row {
	uint32_t input;
	struct vz_tile_key key;
	uint64_t n;
	double area;
};

struct ss_ctx {
	struct ss_row *rows;
	size_t n, cap;
	struct vz_buf tmp;
};

static int ss_scan(void *ud, const uint8_t *k, size_t kl, const uint8_t *v,
		   size_t vl)
{
	struct ss_ctx *s = ud;
	struct vz_staged_iter it;
	struct vz_staged_rec rec;
	struct vz_tile_key key;
	uint32_t input;
	struct ss_row *row;
	int rc;

	if (kl != VZ_KEY_TILE_LEN + 12)
		return VZ_E_CACHE;
	vz_key_tile_parse(k, &key);
	input = vz_get_be32(k + VZ_KEY_TILE_LEN);
	row = s->n ? &s->rows[s->n - 1] : NULL;
	if (!row || row->input != input || row->key.x != key.x ||
	    row->key.y != key.y || row->key.z != key.z) {
		if (s->n == s->cap) {
			size_t nc = s->cap ? s->cap * 2 : 1024;
			struct ss_row *p = realloc(s->rows, nc * sizeof *p);
			if (!p)
				return -ENOMEM;
			s->rows = p;
			s->cap = nc;
		}
		row = &s->rows[s->n++];
		row->input = input;
		row->key = key;
		row->n = 0;
		row->area = 0;
	}
	/* LMDB values need not be 8-byte aligned: copy first. */
	vz_buf_reset(&s->tmp);
	rc = vz_buf_append(&s->tmp, v, vl);
	if (rc)
		return rc;
	rc = vz_staged_iter_init(&it, s->tmp.data, s->tmp.len);
	while (!rc && (rc = vz_staged_next(&it, &rec)) == 1) {
		row->n++;
		row->area += rec.poly.area;
		rc = 0;
	}
	return rc < 0 ? rc : 0;
}

static int cmp_ss(const void *a, const void *b)
{
	const struct ss_row *p = a, *q = b;
	if (p->input != q->input)
		return p->input < q->input ? -1 : 1;
	if (p->key.x != q->key.x)
		return p->key.x < q->key.x ? -1 : 1;
	if (p->key.y != q->key.y)
		return p->key.y < q->key.y ? -1 : 1;
	return 0;
}

/* staging_summary.csv (spec §5): one row per (input file, tile). */
int vz_builder_staging_csv(struct vz_builder *b, struct vz_buf *out)
{
	struct ss_ctx s = {0};
	uint8_t p = (uint8_t)b->c->z_max;
	int rc;

	rc = vz_buf_printf(out, "filename,num_polygons,area_polygons,datetime,"
			  "tile_x,tile_y,tile_z,tile_top,tile_right,"
			  "tile_bottom,tile_left,tms_identifier\n");
	if (!rc)
		rc = vz_cache_scan(b->cache, VZ_DB_STAGED, &p, 1, ss_scan, &s);
	if (!rc && s.n)
		qsort(s.rows, s.n, sizeof *s.rows, cmp_ss);
	for (size_t i = 0; i < s.n && !rc; i++) {
		const struct ss_row *r = &s.rows[i];
		const char *name = r->input < b->in->n
					   ? b->in->v[r->input].relname
					   : "?";
		char key[64], when[64] = "", f[5][40];
		struct vz_bbox bb;
		struct vz_buf v = {0};

		snprintf(key, sizeof key, "stgtime/%08" PRIu32, r->input);
		if (vz_cache_get(b->cache, VZ_DB_META, key, strlen(key), &v) ==
			    0 &&
		    v.len < sizeof when) {
			memcpy(when, v.data, v.len);
			when[v.len] = '\0';
		}
		vz_buf_free(&v);
		vz_tms_bounds(b->c->tms, &r->key, &bb);
		vz_fmt_pyfloat(r->area, f[0], sizeof f[0]);
		vz_fmt_pyfloat(bb.top, f[1], sizeof f[1]);
		vz_fmt_pyfloat(bb.right, f[2], sizeof f[2]);
		vz_fmt_pyfloat(bb.bottom, f[3], sizeof f[3]);
		vz_fmt_pyfloat(bb.left, f[4], sizeof f[4]);
		rc = csv_field(out, name);
		if (!rc)
			rc = vz_buf_printf(out,
				     ",%" PRIu64 ",%s,%s,%" PRIu32 ",%" PRIu32
				     ",%d,%s,%s,%s,%s,",
				     r->n, f[0], when, r->key.x, r->key.y,
				     r->key.z, f[1], f[2], f[3], f[4]);
		if (!rc)
			rc = csv_field(out, b->c->tms_id);
		if (!rc)
			rc = vz_buf_append(out, "\n", 1);
	}
	free(s.rows);
	vz_buf_free(&s.tmp);
	return rc;
}

/* ---- staged GeoPackages ------------------------------------------------- */

int vz_builder_staged_gpkg(struct vz_builder *b, struct vz_wctx *w,
			   const struct vz_tile_key *k, struct vz_buf *out)
{
	static unsigned seq;
	struct vz_buf *views = NULL;
	const size_t *span;
	size_t n;
	char path[128];
	vsi_l_offset len = 0;
	GByte *bytes;
	int rc;

	if (k->z != b->c->z_max)
		return -ENOENT;
	rc = vz_builder_gather_staged(b, w, k);
	if (rc)
		return rc;
	span = (const size_t *)w->spans.data;
	n = w->spans.len / (2 * sizeof *span);
	if (n == 0)
		return -ENOENT;
	views = calloc(n, sizeof *views);
	if (!views)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		views[i].data = w->blobs.data + span[2 * i];
		views[i].len = span[2 * i + 1];
	}
	snprintf(path, sizeof path, "/vsimem/vizfs-staged-%p-%u/%u.gpkg",
		 (void *)w, __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED),
		 k->y);
	rc = vz_stage_write_gpkg(w->st, path, k, b->in, views, n);
	free(views);
	if (!rc) {
		bytes = VSIGetMemFileBuffer(path, &len, FALSE);
		rc = bytes ? vz_buf_append(out, bytes, (size_t)len)
			   : VZ_E_ENCODE;
	}
	VSIUnlink(path);
	return rc;
}

/* ---- export ------------------------------------------------------------- */

struct export_job {
	struct vz_builder *b;
	const char *dir;
	struct vz_tile_key *keys;
	size_t n;
};

static int write_file(const char *dir, const char *rel, const void *data,
		      size_t len)
{
	char path[4096], tmp[4200], *slash;
	int fd, rc = 0;
	ssize_t wr;
	size_t off = 0;

	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, rel) >=
	    sizeof path)
		return -ENAMETOOLONG;
	slash = strrchr(path, '/');
	*slash = '\0';
	rc = vz_mkdir_p(path);
	*slash = '/';
	if (rc) {
		vz_err_set("%s: cannot create directory: %s", path,
			   strerror(-rc));
		return rc;
	}
	snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		vz_err_set("%s: %s", tmp, strerror(errno));
		return rc;
	}
	while (off < len) {
		wr = write(fd, (const char *)data + off, len - off);
		if (wr < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			vz_err_set("%s: write: %s", tmp, strerror(errno));
			break;
		}
		off += (size_t)wr;
	}
	if (close(fd) < 0 && !rc) {
		rc = -errno;
		vz_err_set("%s: close: %s", tmp, strerror(errno));
	}
	if (!rc && rename(tmp, path) < 0) {
		rc = -errno;
		vz_err_set("%s: rename: %s", path, strerror(errno));
	}
	if (rc)
		unlink(tmp);
	return rc;
}

int vz_write_file(const char *dir, const char *rel, const void *data,
		  size_t len)
{
	return write_file(dir, rel, data, len);
}

static int export_task(void *ud, void *ctx, size_t i)
{
	struct export_job *j = ud;
	struct vz_builder *b = j->b;
	const struct vz_conf *c = b->c;
	struct vz_wctx *w = ctx;
	struct vz_tile_ref ref = {VZ_KIND_GEOTIFF, -1, j->keys[i]};
	uint8_t key[VZ_KEY_TILE_LEN + 1];
	char rel[1024];
	int rc;

	vz_err_clear();
	vz_key_tile(key, &ref.key);
	rc = vz_cache_get(b->cache, VZ_DB_BAND, key, VZ_KEY_TILE_LEN, &w->enc);
	if (!rc)
		rc = vz_bands_decode(w->enc.data, w->enc.len, w->bands,
				     b->plane * c->n_stats);
	vz_buf_reset(&w->tmp);
	if (!rc)
		rc = vz_geotiff_encode(c, &ref.key, w->bands, &w->tmp);
	if (!rc && vz_path_format(c, &ref, rel, sizeof rel) < 0)
		rc = -ENAMETOOLONG;
	if (!rc)
		rc = write_file(j->dir, rel, w->tmp.data, w->tmp.len);
	for (size_t s = 0; s < c->n_stats && !rc; s++) {
		ref.kind = VZ_KIND_PNG;
		ref.stat = (int)s;
		key[VZ_KEY_TILE_LEN] = (uint8_t)s;
		rc = vz_cache_get(b->cache, VZ_DB_TILE, key, sizeof key,
				  &w->png);
		if (!rc && vz_path_format(c, &ref, rel, sizeof rel) < 0)
			rc = -ENAMETOOLONG;
		if (!rc)
			rc = write_file(j->dir, rel, w->png.data, w->png.len);
	}
	if (!rc && ref.key.z == c->z_max) {
		ref.kind = VZ_KIND_STAGED;
		ref.stat = -1;
		vz_buf_reset(&w->tmp);
		rc = vz_builder_staged_gpkg(b, w, &ref.key, &w->tmp);
		if (!rc && vz_path_format(c, &ref, rel, sizeof rel) < 0)
			rc = -ENAMETOOLONG;
		if (!rc)
			rc = write_file(j->dir, rel, w->tmp.data, w->tmp.len);
	}
	if (rc)
		vz_log(VZ_LOG_ERR, "export %u/%u/%u: %s", ref.key.z, ref.key.x,
		       ref.key.y,
		       vz_err_msg()[0] ? vz_err_msg() : vz_strerror(rc));
	return rc;
}

/* WMTSCapabilities.xml, index.html and viewer/ at the root (src/wmts.c). */
static int export_site(struct vz_builder *b, const char *dir)
{
	struct vz_wmts_input in;
	struct vz_wmts_site *site = NULL;
	int rc;

	memset(&in, 0, sizeof in);
	for (int z = b->c->z_min; z <= b->c->z_max; z++) {
		in.level[z].keys = b->level[z].k;
		in.level[z].n = b->level[z].n;
	}
	rc = vz_wmts_site_new(b->c, &in, &site);
	if (!rc)
		rc = vz_wmts_site_write(site, dir);
	vz_wmts_site_free(site);
	return rc;
}

static void export_progress(void *ud, size_t done, size_t total)
{
	struct vz_builder *b = ud;
	if (b->o.progress)
		b->o.progress(b->o.progress_ud, "export", done, total);
}

int vz_builder_export(struct vz_builder *b, const char *dir)
{
	struct export_job j = {b, dir, NULL, 0};
	struct vz_pool *pool;
	struct vz_buf csv = {0};
	size_t total = 0;
	int rc, first = 0;

	rc = vz_builder_prefetch(b, b->c->z_min, b->c->z_max);
	if (rc == -ECANCELED)
		return rc;
	if (rc)
		first = rc;
	for (int z = b->c->z_min; z <= b->c->z_max; z++)
		total += b->level[z].n;
	j.keys = malloc((total ? total : 1) * sizeof *j.keys);
	if (!j.keys)
		return -ENOMEM;
	for (int z = b->c->z_max; z >= b->c->z_min; z--) {
		memcpy(j.keys + j.n, b->level[z].k,
		       b->level[z].n * sizeof *j.keys);
		j.n += b->level[z].n;
	}
	rc = vz_mkdir_p(dir);
	if (rc) {
		vz_err_set("%s: cannot create directory: %s", dir,
			   strerror(-rc));
		goto out;
	}
	rc = vz_builder_pool(b, &pool);
	if (!rc)
		rc = vz_pool_for(pool, j.n, export_task, &j, export_progress,
				 b, b->o.cancel);
	if (rc) {
		if (!vz_err_msg()[0] || rc == -ECANCELED)
			vz_err_set("export to %s: %s", dir, vz_strerror(rc));
		goto out;
	}
	rc = vz_builder_staging_csv(b, &csv);
	if (!rc)
		rc = write_file(dir, "staging_summary.csv", csv.data, csv.len);
	vz_buf_reset(&csv);
	if (!rc)
		rc = vz_builder_rasters_csv(b, &csv);
	if (!rc)
		rc = write_file(dir, "rasters_summary.csv", csv.data, csv.len);
	if (!rc)
		rc = export_site(b, dir);
out:
	vz_buf_free(&csv);
	free(j.keys);
	return rc ? rc : first;
}
