/* SPDX-License-Identifier: Apache-2.0 */
/* Tile matrix sets: exact tile bounds from integer tile indices. */
#include "vizfs/tms.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define MERC_HALF 20037508.342789244

static const struct vz_tms tms_table[] = {
	{VZ_TMS_WORLDCRS84QUAD, "WorldCRS84Quad", "EPSG:4326", 4326, true,
	 -180.0, 90.0, 180.0, 2, 1},
	{VZ_TMS_WGS1984QUAD, "WGS1984Quad", "EPSG:4326", 4326, true, -180.0,
	 90.0, 180.0, 2, 1},
	{VZ_TMS_WEBMERCATORQUAD, "WebMercatorQuad", "EPSG:3857", 3857, false,
	 -MERC_HALF, MERC_HALF, 2 * MERC_HALF, 1, 1},
};

const struct vz_tms *vz_tms_find(const char *id)
{
	if (!id)
		return NULL;
	for (size_t i = 0; i < VZ_ARRAY_SIZE(tms_table); i++)
		if (strcmp(tms_table[i].id, id) == 0)
			return &tms_table[i];
	return NULL;
}

uint32_t vz_tms_cols(const struct vz_tms *t, int z)
{
	return t->cols0 << z;
}

uint32_t vz_tms_rows(const struct vz_tms *t, int z)
{
	return t->rows0 << z;
}

bool vz_tms_valid(const struct vz_tms *t, const struct vz_tile_key *k)
{
	return k->z <= VZ_MAX_ZOOM && k->x < vz_tms_cols(t, k->z) &&
	       k->y < vz_tms_rows(t, k->z);
}

/* span/2^z is exact in binary floating point, and i*span is one rounding. */
static double tile_span(const struct vz_tms *t, int z)
{
	return ldexp(t->span0, -z);
}

void vz_tms_bounds(const struct vz_tms *t, const struct vz_tile_key *k,
		   struct vz_bbox *out)
{
	double s = tile_span(t, k->z);
	out->left = t->left + (double)k->x * s;
	out->right = t->left + (double)(k->x + 1) * s;
	out->top = t->top - (double)k->y * s;
	out->bottom = t->top - (double)(k->y + 1) * s;
}

void vz_tms_extent(const struct vz_tms *t, struct vz_bbox *out)
{
	out->left = t->left;
	out->top = t->top;
	out->right = t->left + t->cols0 * t->span0;
	out->bottom = t->top - t->rows0 * t->span0;
}

int vz_tms_tile_range(const struct vz_tms *t, int z, const struct vz_bbox *b,
		      uint32_t *x0, uint32_t *y0, uint32_t *x1, uint32_t *y1)
{
	struct vz_bbox e;
	double s = tile_span(t, z);
	uint32_t nc = vz_tms_cols(t, z), nr = vz_tms_rows(t, z);
	double c0, c1, r0, r1;

	vz_tms_extent(t, &e);
	if (!(b->left <= e.right && b->right >= e.left && b->bottom <= e.top &&
	      b->top >= e.bottom))
		return -ENOENT;
	if (!(b->left <= b->right && b->bottom <= b->top))
		return -ENOENT;
	/* Closed boxes: a box touching a tile edge also selects that tile. */
	c0 = floor((b->left - t->left) / s);
	c1 = floor((b->right - t->left) / s);
	r0 = floor((t->top - b->top) / s);
	r1 = floor((t->top - b->bottom) / s);
	/* An edge exactly on a fence also touches the tile before it. */
	if (c0 > 0 && t->left + c0 * s == b->left)
		c0 -= 1;
	if (r0 > 0 && t->top - r0 * s == b->top)
		r0 -= 1;
	c0 = fmax(c0, 0);
	r0 = fmax(r0, 0);
	c1 = fmin(c1, nc - 1);
	r1 = fmin(r1, nr - 1);
	if (c0 > c1 || r0 > r1)
		return -ENOENT;
	*x0 = (uint32_t)c0;
	*x1 = (uint32_t)c1;
	*y0 = (uint32_t)r0;
	*y1 = (uint32_t)r1;
	return 0;
}

int vz_tms_point_tile(const struct vz_tms *t, int z, double px, double py,
		      struct vz_tile_key *out)
{
	struct vz_bbox e;
	double s = tile_span(t, z);
	uint32_t nc = vz_tms_cols(t, z), nr = vz_tms_rows(t, z);
	double c, r;

	vz_tms_extent(t, &e);
	if (!(px >= e.left && px <= e.right && py >= e.bottom && py <= e.top))
		return -ENOENT;
	/* West on vertical edges: column = ceil(dx/s) - 1; north on horizontal
	 * edges: row = ceil(dy/s) - 1 (dy measured southwards). */
	c = ceil((px - t->left) / s) - 1;
	r = ceil((t->top - py) / s) - 1;
	if (c < 0)
		c = 0;
	if (r < 0)
		r = 0;
	if (c > nc - 1)
		c = nc - 1;
	if (r > nr - 1)
		r = nr - 1;
	out->x = (uint32_t)c;
	out->y = (uint32_t)r;
	out->z = (uint8_t)z;
	return 0;
}

void vz_tms_parent(const struct vz_tile_key *k, struct vz_tile_key *out)
{
	out->x = k->x / 2;
	out->y = k->y / 2;
	out->z = (uint8_t)(k->z - 1);
}

void vz_tms_children(const struct vz_tile_key *k, struct vz_tile_key out[4])
{
	for (int i = 0; i < 4; i++) {
		out[i].x = 2 * k->x + (uint32_t)(i & 1);
		out[i].y = 2 * k->y + (uint32_t)(i >> 1);
		out[i].z = (uint8_t)(k->z + 1);
	}
}
