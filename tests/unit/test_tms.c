/* SPDX-License-Identifier: Apache-2.0 */
/* Tile matrix set math: bounds, ranges, point ownership, parents. */
#include <errno.h>
#include <string.h>

#include "vizfs/tms.h"
#include "vt.h"

static void test_find(void)
{
	VT_CHECK(vz_tms_find("WorldCRS84Quad") != NULL);
	VT_CHECK(vz_tms_find("WGS1984Quad") != NULL);
	VT_CHECK(vz_tms_find("WebMercatorQuad") != NULL);
	VT_CHECK(vz_tms_find("worldcrs84quad") == NULL);
	VT_CHECK(vz_tms_find("UPSArctic3413Quad") == NULL);
	VT_CHECK(vz_tms_find(NULL) == NULL);
}

static void test_bounds(void)
{
	const struct vz_tms *t = vz_tms_find("WorldCRS84Quad");
	struct vz_tile_key k = {1524, 910, 13};
	struct vz_bbox b;

	VT_EQ_INT(vz_tms_cols(t, 0), 2);
	VT_EQ_INT(vz_tms_rows(t, 0), 1);
	VT_EQ_INT(vz_tms_cols(t, 13), 16384);
	VT_EQ_INT(vz_tms_rows(t, 13), 8192);
	/* The reference's tile, exactly (morecantile carries ~1e-13 error). */
	vz_tms_bounds(t, &k, &b);
	VT_CHECK(b.left == -146.513671875);
	VT_CHECK(b.top == 70.0048828125);
	VT_CHECK(b.right == -146.513671875 + 180.0 / 8192);
	VT_CHECK(b.bottom == 70.0048828125 - 180.0 / 8192);
	k = (struct vz_tile_key){0, 0, 0};
	vz_tms_bounds(t, &k, &b);
	VT_CHECK(b.left == -180 && b.right == 0 && b.top == 90 &&
		 b.bottom == -90);
	k = (struct vz_tile_key){1, 0, 0};
	vz_tms_bounds(t, &k, &b);
	VT_CHECK(b.left == 0 && b.right == 180);

	t = vz_tms_find("WebMercatorQuad");
	VT_EQ_INT(vz_tms_cols(t, 0), 1);
	k = (struct vz_tile_key){0, 0, 0};
	vz_tms_bounds(t, &k, &b);
	VT_NEAR(b.left, -20037508.342789244, 1e-6);
	VT_NEAR(b.top, 20037508.342789244, 1e-6);
	k = (struct vz_tile_key){3, 5, 4};
	vz_tms_bounds(t, &k, &b);
	VT_NEAR(b.right - b.left, 40075016.68557849 / 16, 1e-6);
	VT_NEAR(b.top, 20037508.342789244 - 5 * 40075016.68557849 / 16, 1e-6);

	k = (struct vz_tile_key){16384, 0, 13};
	VT_CHECK(!vz_tms_valid(vz_tms_find("WGS1984Quad"), &k));
	k.x = 16383;
	VT_CHECK(vz_tms_valid(vz_tms_find("WGS1984Quad"), &k));
}

static void test_range(void)
{
	const struct vz_tms *t = vz_tms_find("WGS1984Quad");
	struct vz_tile_key k = {100, 40, 8};
	struct vz_bbox tb, b;
	uint32_t x0, y0, x1, y1;

	vz_tms_bounds(t, &k, &tb);
	/* strictly inside: one tile */
	b = (struct vz_bbox){tb.left + 0.1, tb.bottom + 0.1, tb.right - 0.1,
			     tb.top - 0.1};
	VT_EQ_INT(vz_tms_tile_range(t, 8, &b, &x0, &y0, &x1, &y1), 0);
	VT_CHECK(x0 == 100 && x1 == 100 && y0 == 40 && y1 == 40);
	/* the tile's own closed box touches its 8 neighbours */
	VT_EQ_INT(vz_tms_tile_range(t, 8, &tb, &x0, &y0, &x1, &y1), 0);
	VT_CHECK(x0 == 99 && x1 == 101 && y0 == 39 && y1 == 41);
	/* clamped at the world's edge */
	b = (struct vz_bbox){-200, -100, -179.9, 100};
	VT_EQ_INT(vz_tms_tile_range(t, 2, &b, &x0, &y0, &x1, &y1), 0);
	VT_CHECK(x0 == 0 && x1 == 0 && y0 == 0 && y1 == 3);
	/* entirely outside */
	b = (struct vz_bbox){190, 0, 200, 1};
	VT_EQ_INT(vz_tms_tile_range(t, 2, &b, &x0, &y0, &x1, &y1), -ENOENT);
}

static void test_point(void)
{
	const struct vz_tms *t = vz_tms_find("WorldCRS84Quad");
	struct vz_tile_key k, o;
	struct vz_bbox b;

	k = (struct vz_tile_key){10, 5, 4};
	vz_tms_bounds(t, &k, &b);
	VT_EQ_INT(vz_tms_point_tile(t, 4, (b.left + b.right) / 2,
				    (b.top + b.bottom) / 2, &o),
		  0);
	VT_CHECK(o.x == 10 && o.y == 5 && o.z == 4);
	/* west edge -> western tile; north edge -> northern tile */
	vz_tms_point_tile(t, 4, b.left, (b.top + b.bottom) / 2, &o);
	VT_CHECK(o.x == 9 && o.y == 5);
	vz_tms_point_tile(t, 4, (b.left + b.right) / 2, b.top, &o);
	VT_CHECK(o.x == 10 && o.y == 4);
	/* east edge and south edge belong to this tile */
	vz_tms_point_tile(t, 4, b.right, b.bottom, &o);
	VT_CHECK(o.x == 10 && o.y == 5);
	/* outer matrix edges belong to the first/last tiles */
	VT_EQ_INT(vz_tms_point_tile(t, 4, -180, 90, &o), 0);
	VT_CHECK(o.x == 0 && o.y == 0);
	VT_EQ_INT(vz_tms_point_tile(t, 4, 180, -90, &o), 0);
	VT_CHECK(o.x == 31 && o.y == 15);
	VT_EQ_INT(vz_tms_point_tile(t, 4, 180.5, 0, &o), -ENOENT);
	VT_EQ_INT(vz_tms_point_tile(t, 4, 0, -90.5, &o), -ENOENT);
}

static void test_family(void)
{
	struct vz_tile_key k = {1525, 911, 13}, p, c[4];

	vz_tms_parent(&k, &p);
	VT_CHECK(p.x == 762 && p.y == 455 && p.z == 12);
	vz_tms_children(&p, c);
	VT_CHECK(c[0].x == 1524 && c[0].y == 910 && c[0].z == 13);
	VT_CHECK(c[1].x == 1525 && c[1].y == 910);
	VT_CHECK(c[2].x == 1524 && c[2].y == 911);
	VT_CHECK(c[3].x == 1525 && c[3].y == 911);
}

int main(void)
{
	test_find();
	test_bounds();
	test_range();
	test_point();
	test_family();
	return vt_done("test_tms");
}
