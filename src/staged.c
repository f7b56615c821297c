/* SPDX-License-Identifier: Apache-2.0 */
/* Serialized staged polygons: blob writer and bounds-checked iterator. */
#include "vizfs/staged.h"

#include <errno.h>
#include <string.h>

static const char staged_magic[4] = {'V', 'Z', 'S', '1'};

#define HDR_SIZE 8u

static size_t pad8(size_t n)
{
	return (n + 7u) & ~(size_t)7u;
}

int vz_staged_begin(struct vz_buf *blob, uint32_t n_attrs)
{
	uint8_t hdr[HDR_SIZE];
	int rc;

	if (blob->len != 0)
		return -EINVAL;
	memcpy(hdr, staged_magic, 4);
	memcpy(hdr + 4, &n_attrs, 4);
	rc = vz_buf_append(blob, hdr, sizeof hdr);
	return rc;
}

int vz_staged_append(struct vz_buf *blob, const struct vz_staged_rec *r)
{
	const struct vz_poly *p = &r->poly;
	uint32_t n_attrs, n_points = 0, hdr[4];
	size_t need, rl_bytes;
	uint8_t *w;
	int rc;

	if (blob->len < HDR_SIZE || memcmp(blob->data, staged_magic, 4) != 0)
		return -EINVAL;
	memcpy(&n_attrs, blob->data + 4, 4);
	for (uint32_t i = 0; i < p->n_rings; i++) {
		if (p->ring_len[i] > UINT32_MAX - n_points)
			return -EINVAL;
		n_points += p->ring_len[i];
	}
	rl_bytes = pad8((size_t)p->n_rings * 4);
	need = 3 * 8 + (size_t)n_attrs * 8 + 8 + 4 * 4 + rl_bytes +
	       (size_t)n_points * 16;
	rc = vz_buf_reserve(blob, need);
	if (rc)
		return rc;
	w = blob->data + blob->len;
	memcpy(w, &p->cx, 8);
	memcpy(w + 8, &p->cy, 8);
	memcpy(w + 16, &p->area, 8);
	w += 24;
	if (n_attrs)
		memcpy(w, p->attrs, (size_t)n_attrs * 8);
	w += (size_t)n_attrs * 8;
	memcpy(w, &r->fid, 8);
	w += 8;
	hdr[0] = r->input;
	hdr[1] = r->part;
	hdr[2] = p->n_rings;
	hdr[3] = n_points;
	memcpy(w, hdr, sizeof hdr);
	w += sizeof hdr;
	memset(w, 0, rl_bytes);
	if (p->n_rings)
		memcpy(w, p->ring_len, (size_t)p->n_rings * 4);
	w += rl_bytes;
	if (n_points)
		memcpy(w, p->xy, (size_t)n_points * 16);
	blob->len += need;
	return 0;
}

int vz_staged_iter_init(struct vz_staged_iter *it, const void *data, size_t len)
{
	const uint8_t *d = data;

	memset(it, 0, sizeof *it);
	if (!d || len < HDR_SIZE || memcmp(d, staged_magic, 4) != 0) {
		vz_err_set("staged blob: bad header (%zu bytes)", len);
		return VZ_E_CACHE;
	}
	if (((uintptr_t)d & 7u) != 0 || (len & 7u) != 0) {
		vz_err_set("staged blob: misaligned or odd length (%zu bytes)",
			   len);
		return VZ_E_CACHE;
	}
	memcpy(&it->n_attrs, d + 4, 4);
	if (it->n_attrs > (1u << 20)) {
		vz_err_set("staged blob: implausible n_attrs %u", it->n_attrs);
		return VZ_E_CACHE;
	}
	it->p = d + HDR_SIZE;
	it->end = d + len;
	return 0;
}

static int corrupt(struct vz_staged_iter *it, const char *what)
{
	vz_err_set("staged blob: %s", what);
	it->p = it->end; /* further calls report the end, never re-read */
	return VZ_E_CACHE;
}

int vz_staged_next(struct vz_staged_iter *it, struct vz_staged_rec *out)
{
	const uint8_t *p = it->p;
	size_t left = (size_t)(it->end - p), fixed, rl_bytes;
	uint32_t hdr[4];
	uint64_t sum = 0;

	if (left == 0)
		return 0;
	fixed = 24 + (size_t)it->n_attrs * 8 + 8 + 16;
	if (left < fixed)
		return corrupt(it, "truncated record header");
	memset(out, 0, sizeof *out);
	/* In place: the blob is 8-byte aligned and every field is too. */
	out->poly.cx = ((const double *)p)[0];
	out->poly.cy = ((const double *)p)[1];
	out->poly.area = ((const double *)p)[2];
	out->poly.attrs = it->n_attrs ? (const double *)(p + 24) : NULL;
	p += 24 + (size_t)it->n_attrs * 8;
	memcpy(&out->fid, p, 8);
	memcpy(hdr, p + 8, sizeof hdr);
	p += 8 + sizeof hdr;
	left -= fixed;
	out->input = hdr[0];
	out->part = hdr[1];
	out->poly.n_rings = hdr[2];
	rl_bytes = pad8((size_t)hdr[2] * 4);
	if ((uint64_t)hdr[2] * 4 > left || rl_bytes > left)
		return corrupt(it, "truncated ring table");
	out->poly.ring_len = hdr[2] ? (const uint32_t *)p : NULL;
	for (uint32_t i = 0; i < hdr[2]; i++)
		sum += ((const uint32_t *)p)[i];
	if (sum != hdr[3])
		return corrupt(it, "ring lengths do not add up to n_points");
	p += rl_bytes;
	left -= rl_bytes;
	if ((uint64_t)hdr[3] * 16 > left)
		return corrupt(it, "truncated coordinates");
	out->poly.xy = hdr[3] ? (const double *)p : NULL;
	p += (size_t)hdr[3] * 16;
	it->p = p;
	return 1;
}
