/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the libpng RGBA encoder and the test decoder. */
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "vizfs/png.h"
#include "vt.h"

static uint32_t rng = 12345;

static uint8_t rnd8(void)
{
	rng = rng * 1103515245u + 12345u;
	return (uint8_t)(rng >> 16);
}

static uint32_t be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}

/* Encode, check the header, decode and compare pixel for pixel. */
static void round_trip(uint32_t w, uint32_t h, int pattern)
{
	size_t n = (size_t)w * h * 4, i;
	uint8_t *px = malloc(n);
	struct vz_buf enc = {0}, dec = {0};
	uint32_t dw = 0, dh = 0;
	static const uint8_t sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};

	VT_CHECK(px != NULL);
	if (!px)
		return;
	for (i = 0; i < n; i++)
		px[i] = pattern ? (uint8_t)(i * 7 / 5) : rnd8();
	VT_EQ_INT(vz_png_encode(px, w, h, &enc), 0);
	VT_CHECK(enc.len > 33);
	if (enc.len > 33) {
		VT_CHECK(memcmp(enc.data, sig, 8) == 0);
		VT_CHECK(memcmp(enc.data + 12, "IHDR", 4) == 0);
		VT_EQ_INT(be32(enc.data + 16), w);
		VT_EQ_INT(be32(enc.data + 20), h);
		VT_EQ_INT(enc.data[24], 8); /* bit depth */
		VT_EQ_INT(enc.data[25], 6); /* colour type RGBA */
		VT_EQ_INT(enc.data[28], 0); /* not interlaced */
	}
	VT_EQ_INT(vz_png_decode(enc.data, enc.len, &dw, &dh, &dec), 0);
	VT_EQ_INT(dw, w);
	VT_EQ_INT(dh, h);
	VT_EQ_INT(dec.len, n);
	VT_CHECK(dec.len == n && memcmp(dec.data, px, n) == 0);
	vz_buf_free(&enc);
	vz_buf_free(&dec);
	free(px);
}

static void test_determinism(void)
{
	uint8_t px[256 * 256 * 4];
	struct vz_buf a = {0}, b = {0};
	size_t i;

	for (i = 0; i < sizeof px; i++)
		px[i] = (i % 4 == 3) ? 255 : (uint8_t)((i / 1024) ^ (i % 251));
	VT_EQ_INT(vz_png_encode(px, 256, 256, &a), 0);
	VT_EQ_INT(vz_png_encode(px, 256, 256, &b), 0);
	VT_EQ_INT(a.len, b.len);
	VT_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	/* An all-transparent tile compresses to a few hundred bytes. */
	memset(px, 0, sizeof px);
	vz_buf_reset(&a);
	VT_EQ_INT(vz_png_encode(px, 256, 256, &a), 0);
	VT_CHECK(a.len > 0 && a.len < 2000);
	vz_buf_free(&a);
	vz_buf_free(&b);
}

/* Encoding appends to a buffer that already holds data. */
static void test_append(void)
{
	uint8_t px[4] = {1, 2, 3, 4};
	struct vz_buf b = {0}, d = {0};
	uint32_t w, h;

	VT_EQ_INT(vz_buf_append(&b, "xyz", 3), 0);
	VT_EQ_INT(vz_png_encode(px, 1, 1, &b), 0);
	VT_CHECK(b.len > 3 && memcmp(b.data, "xyz", 3) == 0);
	VT_EQ_INT(vz_png_decode(b.data + 3, b.len - 3, &w, &h, &d), 0);
	VT_CHECK(d.len == 4 && memcmp(d.data, px, 4) == 0);
	vz_buf_free(&b);
	vz_buf_free(&d);
}

static void test_errors(void)
{
	uint8_t px[4] = {0};
	uint8_t junk[64];
	struct vz_buf b = {0}, d = {0};
	uint32_t w, h;

	VT_EQ_INT(vz_png_encode(px, 0, 1, &b), VZ_E_ENCODE);
	VT_EQ_INT(vz_png_encode(NULL, 1, 1, &b), VZ_E_ENCODE);
	VT_EQ_INT(b.len, 0);
	memset(junk, 'x', sizeof junk);
	VT_EQ_INT(vz_png_decode(junk, sizeof junk, &w, &h, &d), VZ_E_ENCODE);
	VT_EQ_INT(vz_png_decode(junk, 3, &w, &h, &d), VZ_E_ENCODE);
	/* A truncated PNG fails cleanly and leaves the output untouched. */
	VT_EQ_INT(vz_png_encode(px, 1, 1, &b), 0);
	VT_EQ_INT(vz_png_decode(b.data, b.len / 2, &w, &h, &d), VZ_E_ENCODE);
	VT_EQ_INT(d.len, 0);
	VT_CHECK(strlen(vz_err_msg()) > 0);
	vz_buf_free(&b);
	vz_buf_free(&d);
}

struct mem {
	uint8_t buf[4096];
	size_t len;
};

static void mem_write(png_structp png, png_bytep data, size_t n)
{
	struct mem *m = png_get_io_ptr(png);

	if (m->len + n <= sizeof m->buf) {
		memcpy(m->buf + m->len, data, n);
		m->len += n;
	}
}

static void mem_flush(png_structp png)
{
	(void)png;
}

/* Write a small gray or palette PNG with libpng directly. */
static size_t write_other(struct mem *m, int ctype)
{
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL,
						  NULL, NULL);
	png_infop info = png_create_info_struct(png);
	png_color pal[2] = {{10, 20, 30}, {200, 100, 50}};
	uint8_t row[3] = {0, 1, 0};
	uint8_t grow[3] = {0, 128, 255};

	m->len = 0;
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		return 0;
	}
	png_set_write_fn(png, m, mem_write, mem_flush);
	png_set_IHDR(png, info, 3, 1, 8, ctype, PNG_INTERLACE_NONE,
		     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	if (ctype == PNG_COLOR_TYPE_PALETTE)
		png_set_PLTE(png, info, pal, 2);
	png_write_info(png, info);
	png_write_row(png, ctype == PNG_COLOR_TYPE_PALETTE ? row : grow);
	png_write_end(png, info);
	png_destroy_write_struct(&png, &info);
	return m->len;
}

static void test_decode_other_types(void)
{
	static struct mem m;
	struct vz_buf d = {0};
	uint32_t w = 0, h = 0;
	static const uint8_t want_pal[12] = {10, 20,  30, 255, 200, 100,
					     50, 255, 10, 20,  30,  255};
	static const uint8_t want_gray[12] = {0,   0,	0,   255, 128, 128,
					      128, 255, 255, 255, 255, 255};

	VT_CHECK(write_other(&m, PNG_COLOR_TYPE_PALETTE) > 0);
	VT_EQ_INT(vz_png_decode(m.buf, m.len, &w, &h, &d), 0);
	VT_EQ_INT(w, 3);
	VT_EQ_INT(h, 1);
	VT_CHECK(d.len == 12 && memcmp(d.data, want_pal, 12) == 0);
	vz_buf_reset(&d);
	VT_CHECK(write_other(&m, PNG_COLOR_TYPE_GRAY) > 0);
	VT_EQ_INT(vz_png_decode(m.buf, m.len, &w, &h, &d), 0);
	VT_CHECK(d.len == 12 && memcmp(d.data, want_gray, 12) == 0);
	vz_buf_free(&d);
}

int main(void)
{
	round_trip(1, 1, 0);
	round_trip(256, 256, 0);
	round_trip(13, 7, 0);
	round_trip(7, 13, 1);
	round_trip(1, 300, 0);
	round_trip(301, 1, 1);
	test_determinism();
	test_append();
	test_errors();
	test_decode_other_types();
	return vt_done("test_png");
}
