/* SPDX-License-Identifier: Apache-2.0 */
/* Paths of the PDG tree <-> tile refs; the parser is a security boundary. */
#include "vizfs/path.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* top directory + at most five parts; anything longer is not a tile */
#define MAX_COMPONENTS 6
#define MAX_PATH_LEN 4096

static const char *top_dir(enum vz_kind k)
{
	switch (k) {
	case VZ_KIND_STAGED:
		return VZ_DIR_STAGED;
	case VZ_KIND_GEOTIFF:
		return VZ_DIR_GEOTIFF;
	case VZ_KIND_PNG:
		return VZ_DIR_WEB_TILES;
	}
	return NULL;
}

static const char *extension(const struct vz_conf *c, enum vz_kind k)
{
	switch (k) {
	case VZ_KIND_STAGED:
		return c->ext_staged;
	case VZ_KIND_GEOTIFF:
		return ".tif";
	case VZ_KIND_PNG:
		return c->ext_web_tiles;
	}
	return NULL;
}

/* Appends to buf at *off; keeps counting past the end like snprintf. */
static void put(char *buf, size_t n, size_t *off, const char *s)
{
	size_t l = strlen(s);

	if (*off < n) {
		size_t room = n - *off;
		memcpy(buf + *off, s, l < room ? l : room);
	}
	*off += l;
}

int vz_path_format(const struct vz_conf *c, const struct vz_tile_ref *r,
		   char *buf, size_t n)
{
	const char *top = top_dir(r->kind);
	size_t off = 0;
	char num[16];

	if (!top)
		return -EINVAL;
	if (r->kind == VZ_KIND_PNG &&
	    (r->stat < 0 || (size_t)r->stat >= c->n_stats))
		return -EINVAL;
	put(buf, n, &off, top);
	for (int i = 0; i < c->n_path_parts; i++) {
		const char *s;

		switch (c->path_parts[i]) {
		case VZ_PART_STYLE:
			/* style is empty (and vanishes) except for web tiles */
			if (r->kind != VZ_KIND_PNG)
				continue;
			s = c->stats[r->stat].name;
			break;
		case VZ_PART_TMS:
			s = c->tms_id;
			break;
		case VZ_PART_Z:
			snprintf(num, sizeof num, "%u", (unsigned)r->key.z);
			s = num;
			break;
		case VZ_PART_X:
			snprintf(num, sizeof num, "%u", (unsigned)r->key.x);
			s = num;
			break;
		case VZ_PART_Y:
		default:
			snprintf(num, sizeof num, "%u", (unsigned)r->key.y);
			s = num;
			break;
		}
		put(buf, n, &off, "/");
		put(buf, n, &off, s);
	}
	put(buf, n, &off, extension(c, r->kind));
	if (off >= n || off > INT32_MAX) {
		if (n)
			buf[0] = '\0';
		return -ENAMETOOLONG;
	}
	buf[off] = '\0';
	return (int)off;
}

/* Canonical decimal: "0" or [1-9][0-9]*, at most UINT32_MAX. */
static bool parse_uint(const char *s, size_t len, uint32_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 10 || (s[0] == '0' && len > 1))
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

static bool comp_eq(const char *s, size_t len, const char *want)
{
	return strlen(want) == len && memcmp(s, want, len) == 0;
}

int vz_path_parse(const struct vz_conf *c, const char *path,
		  struct vz_tile_ref *out)
{
	const char *comp[MAX_COMPONENTS];
	size_t clen[MAX_COMPONENTS];
	struct vz_tile_ref r;
	const char *p, *ext;
	size_t len, elen, nc = 0, want;
	bool has_style = false;
	uint32_t zv = 0;
	char check[MAX_PATH_LEN];

	if (!c || !path || !out)
		return -ENOENT;
	if (*path == '/')
		path++;
	len = strnlen(path, MAX_PATH_LEN);
	if (len == 0 || len >= MAX_PATH_LEN)
		return -ENOENT;

	/* split; empty components (//, leading or trailing /) are refused */
	for (p = path;;) {
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l == 0 || nc == MAX_COMPONENTS)
			return -ENOENT;
		comp[nc] = p;
		clen[nc++] = l;
		if (!e)
			break;
		p = e + 1;
	}

	memset(&r, 0, sizeof r);
	r.stat = -1;
	if (comp_eq(comp[0], clen[0], VZ_DIR_STAGED))
		r.kind = VZ_KIND_STAGED;
	else if (comp_eq(comp[0], clen[0], VZ_DIR_GEOTIFF))
		r.kind = VZ_KIND_GEOTIFF;
	else if (comp_eq(comp[0], clen[0], VZ_DIR_WEB_TILES))
		r.kind = VZ_KIND_PNG;
	else
		return -ENOENT;

	for (int i = 0; i < c->n_path_parts; i++)
		has_style |= c->path_parts[i] == VZ_PART_STYLE;
	want = 1 + (size_t)c->n_path_parts;
	if (has_style && r.kind != VZ_KIND_PNG)
		want--;
	if (nc != want)
		return -ENOENT;

	/* the extension belongs to the last component only */
	ext = extension(c, r.kind);
	elen = strlen(ext);
	if (clen[nc - 1] <= elen ||
	    memcmp(comp[nc - 1] + clen[nc - 1] - elen, ext, elen) != 0)
		return -ENOENT;
	clen[nc - 1] -= elen;

	if (r.kind == VZ_KIND_PNG && !has_style) {
		if (c->n_stats != 1)
			return -ENOENT;
		r.stat = 0;
	}
	for (int i = 0, k = 1; i < c->n_path_parts; i++) {
		uint32_t v;

		switch (c->path_parts[i]) {
		case VZ_PART_STYLE:
			if (r.kind != VZ_KIND_PNG)
				continue;
			for (size_t s = 0; s < c->n_stats; s++)
				if (comp_eq(comp[k], clen[k], c->stats[s].name))
					r.stat = (int)s;
			if (r.stat < 0)
				return -ENOENT;
			break;
		case VZ_PART_TMS:
			if (!comp_eq(comp[k], clen[k], c->tms_id))
				return -ENOENT;
			break;
		case VZ_PART_Z:
			if (!parse_uint(comp[k], clen[k], &zv))
				return -ENOENT;
			break;
		case VZ_PART_X:
			if (!parse_uint(comp[k], clen[k], &v))
				return -ENOENT;
			r.key.x = v;
			break;
		case VZ_PART_Y:
			if (!parse_uint(comp[k], clen[k], &v))
				return -ENOENT;
			r.key.y = v;
			break;
		}
		k++;
	}
	if (zv < (uint32_t)c->z_min || zv > (uint32_t)c->z_max ||
	    zv > VZ_MAX_ZOOM)
		return -ENOENT;
	if (r.kind == VZ_KIND_STAGED && zv != (uint32_t)c->z_max)
		return -ENOENT;
	r.key.z = (uint8_t)zv;
	if (!vz_tms_valid(c->tms, &r.key))
		return -ENOENT;

	/* belt and braces: only what vz_path_format produces is a tile */
	if (vz_path_format(c, &r, check, sizeof check) != (int)len ||
	    memcmp(check, path, len) != 0)
		return -ENOENT;
	*out = r;
	return 0;
}
