/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for colour parsing, the LCh LUT and band colouring. */
#include <dirent.h>
#include <gdal.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vizfs/palette.h"
#include "vizfs/png.h"
#include "vt.h"

#define EPS 1e-9

static void check_color(const char *s, double r, double g, double b, double a)
{
	struct vz_color c = {-1, -1, -1, -1};
	int rc = vz_color_parse(s, &c);

	if (rc)
		fprintf(stderr, "parse \"%s\" failed: %s\n", s, vz_err_msg());
	VT_EQ_INT(rc, 0);
	VT_NEAR(c.r, r, 1e-6);
	VT_NEAR(c.g, g, 1e-6);
	VT_NEAR(c.b, b, 1e-6);
	VT_NEAR(c.a, a, 1e-9);
}

static void check_bad(const char *s)
{
	struct vz_color c;

	vz_err_clear();
	VT_EQ_INT(vz_color_parse(s, &c), VZ_E_CONFIG);
	if (s && *s)
		VT_CHECK(strstr(vz_err_msg(), s) != NULL);
}

static void test_parse(void)
{
	struct vz_color c1, c2;

	/* Names, case-insensitive, blanks ignored. */
	check_color("red", 1, 0, 0, 1);
	check_color("  RebeccaPurple ", 0x66 / 255.0, 0x33 / 255.0,
		    0x99 / 255.0, 1);
	check_color("lightgoldenrodyellow", 0xfa / 255.0, 0xfa / 255.0,
		    0xd2 / 255.0, 1);
	check_color("grey", 128 / 255.0, 128 / 255.0, 128 / 255.0, 1);
	check_color("transparent", 0, 0, 0, 0);
	/* Hex forms. */
	check_color("#abc", 0xaa / 255.0, 0xbb / 255.0, 0xcc / 255.0, 1);
	check_color("#ABCD", 0xaa / 255.0, 0xbb / 255.0, 0xcc / 255.0,
		    0xdd / 255.0);
	check_color("#FFFFFF", 1, 1, 1, 1);
	check_color("#f8ff1f1A", 0xf8 / 255.0, 1, 0x1f / 255.0, 26 / 255.0);
	check_color("#ffffff00", 1, 1, 1, 0);
	/* rgb() in comma and space syntax, numbers and percentages. */
	check_color("rgb(255, 0, 0)", 1, 0, 0, 1);
	check_color("rgba(255,128,0,0.5)", 1, 128 / 255.0, 0, 0.5);
	check_color("rgba(10, 20, 30)", 10 / 255.0, 20 / 255.0, 30 / 255.0, 1);
	check_color("rgb(255, 0, 0, 25%)", 1, 0, 0, 0.25);
	check_color("rgb(100% 50% 0% / 50%)", 1, 0.5, 0, 0.5);
	check_color("rgb(102 51 153 / 0.1)", 0.4, 0.2, 0.6, 0.1);
	check_color("RGB(1e2 .5 +0)", 100 / 255.0, 0.5 / 255.0, 0, 1);
	check_color("rgb(0 0 0 / 2)", 0, 0, 0, 1); /* alpha clamps */
	/* hsl(). */
	check_color("hsl(120, 100%, 50%)", 0, 1, 0, 1);
	check_color("hsla(0, 100%, 50%, 0.3)", 1, 0, 0, 0.3);
	check_color("hsl(240deg 100% 25% / 50%)", 0, 0, 0.5, 0.5);
	check_color("hsl(0.5turn 100% 50%)", 0, 1, 1, 1);
	check_color("hsl(0 0% 50%)", 0.5, 0.5, 0.5, 1);

	/* lab()/lch(): L* 50 gray is Y = (66/116)^3 -> sRGB 0.46633. */
	check_color("lab(50% 0 0)", 0.466327, 0.466327, 0.466327, 1);
	check_color("lch(50 0 123)", 0.466327, 0.466327, 0.466327, 1);
	check_color("lab(100% 0 0 / 0.5)", 1, 1, 1, 0.5);
	/* lch(L C h) equals lab(L C*cos(h) C*sin(h)). */
	VT_EQ_INT(vz_color_parse("lch(85% 100 85)", &c1), 0);
	VT_EQ_INT(vz_color_parse("lab(85% 8.715574274765817 "
				 "99.61946980917456)",
				 &c2),
		  0);
	VT_NEAR(c1.r, c2.r, 1e-9);
	VT_NEAR(c1.g, c2.g, 1e-9);
	VT_NEAR(c1.b, c2.b, 1e-9);
	/* A saturated yellow, out of the sRGB gamut before fitting. */
	VT_CHECK(c1.r > 0.8 && c1.g > 0.75 && c1.b < 0.1);
	VT_CHECK(c1.r > 1 || c1.g > 1 || c1.b < 0);
	VT_EQ_INT(vz_color_parse("LCH(85% 100 1.4835298641951802rad)", &c2), 0);
	VT_NEAR(c1.r, c2.r, 1e-9);
	VT_NEAR(c1.b, c2.b, 1e-9);

	/* Garbage. */
	check_bad("");
	check_bad("   ");
	check_bad(NULL);
	check_bad("notacolor");
	check_bad("red blue");
	check_bad("#12");
	check_bad("#12345");
	check_bad("#1234567");
	check_bad("#ggg");
	check_bad("rgb(1,2)");
	check_bad("rgb(1 2 3 4)");
	check_bad("rgb(1, 2 3)");
	check_bad("rgb(1 2 3 / 0.5 / 1)");
	check_bad("rgb(1, 2, 3 / 0.5)");
	check_bad("rgb(none 0 0)");
	check_bad("rgb(1 2 3");
	check_bad("rgb(1 2 3) x");
	check_bad("rgb(1deg 2 3)");
	check_bad("rgb(1..2 2 3)");
	check_bad("hsl(");
	check_bad("lch(50% 10)");
	check_bad("lab(50, 0, 0)");
	check_bad("cmyk(0 0 0 0)");
}

/* The spec's reference entries of the default white->black LUT. */
static void test_gray_lut(struct vz_lut *lut)
{
	static const int ref[][2] = {
		{0, 255},   {1, 254},	{63, 186}, {64, 185},
		{127, 120}, {128, 119}, {191, 60}, {192, 59},
		{253, 4},   {254, 2},	{255, 1},
	};
	struct vz_lut lut2;
	const char *pal[] = {"#FFFFFF", "#000000"};
	size_t i;
	int j;

	VT_EQ_INT(vz_lut_build(NULL, 0, NULL, lut), 0);
	for (i = 0; i < VZ_ARRAY_SIZE(ref); i++) {
		for (j = 0; j < 3; j++)
			VT_EQ_INT(lut->rgba[ref[i][0]][j], ref[i][1]);
		VT_EQ_INT(lut->rgba[ref[i][0]][3], 255);
	}
	VT_EQ_INT(lut->rgba[256][0], 255);
	VT_EQ_INT(lut->rgba[256][1], 255);
	VT_EQ_INT(lut->rgba[256][2], 255);
	VT_EQ_INT(lut->rgba[256][3], 0);
	/* Gray, strictly darkening or flat, never brightening. */
	for (i = 0; i < 256; i++) {
		VT_CHECK(lut->rgba[i][0] == lut->rgba[i][1] &&
			 lut->rgba[i][1] == lut->rgba[i][2]);
		if (i)
			VT_CHECK(lut->rgba[i][0] <= lut->rgba[i - 1][0]);
	}
	/* The explicit default palette and nodata give the same LUT. */
	VT_EQ_INT(vz_lut_build(pal, 2, "#ffffff00", &lut2), 0);
	VT_CHECK(memcmp(lut, &lut2, sizeof lut2) == 0);
}

/* Relative luminance of 8-bit sRGB, to order LUT entries by lightness. */
static double lum(const uint8_t *p)
{
	double y = 0;
	static const double w[3] = {0.2126, 0.7152, 0.0722};
	int i;

	for (i = 0; i < 3; i++) {
		double c = p[i] / 255.0;

		c = c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4);
		y += w[i] * c;
	}
	return y;
}

static void test_chromatic_lut(void)
{
	const char *pal[] = {"#663399", "#ffcc00"};
	const char *pal3[] = {"red", "lch(85% 100 85)", "rgb(0 0 255)"};
	const char *seed[] = {"#f8ff1f1A", "#f8ff1f"};
	const char *one[] = {"teal"};
	const char *fade[] = {"#ff000000", "#0000ff"};
	const char *bad[] = {"#fff", "nope"};
	struct vz_lut lut;
	int i;

	VT_EQ_INT(vz_lut_build(pal, 2, "transparent", &lut), 0);
	VT_EQ_INT(lut.rgba[0][0], 0x66);
	VT_EQ_INT(lut.rgba[0][1], 0x33);
	VT_EQ_INT(lut.rgba[0][2], 0x99);
	VT_EQ_INT(lut.rgba[0][3], 255);
	/* t = 255/256 is close to, but never exactly, the last stop. */
	VT_CHECK(abs(lut.rgba[255][0] - 0xff) <= 2);
	VT_CHECK(abs(lut.rgba[255][1] - 0xcc) <= 2);
	VT_CHECK(lut.rgba[255][2] <= 4);
	for (i = 1; i < 256; i++) {
		VT_CHECK(lum(lut.rgba[i]) >= lum(lut.rgba[i - 1]) - 0.003);
		VT_EQ_INT(lut.rgba[i][3], 255);
	}
	VT_CHECK(lum(lut.rgba[255]) > lum(lut.rgba[0]) + 0.4);
	/* Purple -> yellow along the shorter hue arc passes through red:
	 * the middle is reddish, not green or blue. */
	VT_CHECK(lut.rgba[128][0] > lut.rgba[128][1]);
	VT_CHECK(lut.rgba[128][0] > lut.rgba[128][2]);
	VT_EQ_INT(lut.rgba[256][3], 0);

	/* Three stops: the middle (t = 0.5, entry 128) is the second stop,
	 * an out-of-gamut yellow fitted to sRGB. */
	VT_EQ_INT(vz_lut_build(pal3, 3, NULL, &lut), 0);
	VT_EQ_INT(lut.rgba[0][0], 255);
	VT_EQ_INT(lut.rgba[0][1], 0);
	VT_EQ_INT(lut.rgba[0][2], 0);
	VT_CHECK(lut.rgba[128][0] > 200 && lut.rgba[128][1] > 190 &&
		 lut.rgba[128][2] < 60);

	/*
	 * Seed palette: same colour, alpha 26/255 -> 1, interpolated
	 * linearly.  The colour stays (248, 255, 31).  Alpha bytes are
	 * int(round_half_up(a, 5) * 255): entry 0 is 0.10196 * 255 =
	 * 25.9998 -> 25; entry 255 is a = 26/255 + (229/255) * 255/256 =
	 * 0.996492 -> 254.105 -> 254.
	 */
	VT_EQ_INT(vz_lut_build(seed, 2, NULL, &lut), 0);
	for (i = 0; i < 256; i++) {
		VT_EQ_INT(lut.rgba[i][0], 248);
		VT_EQ_INT(lut.rgba[i][1], 255);
		VT_EQ_INT(lut.rgba[i][2], 31);
		if (i)
			VT_CHECK(lut.rgba[i][3] >= lut.rgba[i - 1][3]);
	}
	VT_EQ_INT(lut.rgba[0][3], 25);
	VT_EQ_INT(lut.rgba[255][3], 254);
	/* Halfway: a = 26/255 + 229/255 / 2 = 0.55098 -> 140.5 -> 140. */
	VT_EQ_INT(lut.rgba[128][3], 140);

	/*
	 * Stops with different colours and alphas: coloraide >= 0.17 (what
	 * the PDG's pin "< 1" installs) premultiplies L and C by alpha, so
	 * a fully transparent red adds no lightness: every entry keeps
	 * roughly blue's luminance (0.0722), where a straight interpolation
	 * would start near red's (0.2126).  Entry 0 has alpha 0 and is not
	 * divided back: black, transparent.
	 */
	VT_EQ_INT(vz_lut_build(fade, 2, NULL, &lut), 0);
	for (i = 0; i < 4; i++)
		VT_EQ_INT(lut.rgba[0][i], 0);
	for (i = 1; i < 256; i++)
		VT_CHECK(lum(lut.rgba[i]) > 0.05 && lum(lut.rgba[i]) < 0.09);
	VT_EQ_INT(lut.rgba[128][3], 127); /* 0.5 * 255 */

	/* One colour is a flat palette. */
	VT_EQ_INT(vz_lut_build(one, 1, "black", &lut), 0);
	for (i = 0; i < 256; i++) {
		VT_EQ_INT(lut.rgba[i][0], 0);
		VT_EQ_INT(lut.rgba[i][1], 128);
		VT_EQ_INT(lut.rgba[i][2], 128);
	}
	VT_EQ_INT(lut.rgba[256][0], 0);
	VT_EQ_INT(lut.rgba[256][3], 255);

	/* Errors name the colour. */
	vz_err_clear();
	VT_EQ_INT(vz_lut_build(bad, 2, NULL, &lut), VZ_E_CONFIG);
	VT_CHECK(strstr(vz_err_msg(), "nope") != NULL);
	vz_err_clear();
	VT_EQ_INT(vz_lut_build(pal, 2, "#12", &lut), VZ_E_CONFIG);
	VT_CHECK(strstr(vz_err_msg(), "#12") != NULL);
}

static int lut_index(const struct vz_lut *lut, const uint8_t *px)
{
	int i;

	for (i = 0; i < 257; i++)
		if (!memcmp(lut->rgba[i], px, 4))
			return i;
	return -1;
}

static void test_apply(const struct vz_lut *lut)
{
	double band[] = {0, -5, 100, 150, NAN, 50, 1e-300, 99.99};
	uint8_t out[VZ_ARRAY_SIZE(band) * 4];
	double zmax[] = {6200.999999976127, 1.0, 3};

	vz_lut_apply(lut, band, VZ_ARRAY_SIZE(band), 0, 100, true, 0, out);
	VT_EQ_INT(lut_index(lut, out + 0), 256); /* nodata */
	VT_EQ_INT(lut_index(lut, out + 4), 0);	 /* clamped to min */
	/* 100 * (255 / 100) = 254.99999999999997 -> 254 (spec Q4). */
	VT_EQ_INT(lut_index(lut, out + 8), 254);
	VT_EQ_INT(lut_index(lut, out + 12), 254); /* clamped to max */
	VT_EQ_INT(lut_index(lut, out + 16), 256); /* NaN */
	VT_EQ_INT(lut_index(lut, out + 20), 127); /* 127.49999 */
	VT_EQ_INT(lut_index(lut, out + 24), 0);	  /* tiny, not nodata */
	VT_EQ_INT(lut_index(lut, out + 28), 254); /* 254.97 */
	/* Without nodata, 0 is a value. */
	vz_lut_apply(lut, band, 1, 0, 100, false, 0, out);
	VT_EQ_INT(lut_index(lut, out), 0);
	/* The minimal example's z0 pixel: gray 2, index 254 (spec §8.2). */
	vz_lut_apply(lut, zmax, 1, 0, zmax[0], true, 0, out);
	VT_EQ_INT(lut_index(lut, out), 254);
	VT_EQ_INT(out[0], 2);
	vz_lut_apply(lut, zmax + 1, 2, 0, 1.0, true, 0, out);
	VT_EQ_INT(lut_index(lut, out), 255);	 /* 1 * 255 = 255 */
	VT_EQ_INT(lut_index(lut, out + 4), 255); /* clamped */
	/* max == min: every non-nodata pixel gets index 0. */
	vz_lut_apply(lut, band, 4, 5, 5, true, 0, out);
	VT_EQ_INT(lut_index(lut, out + 0), 256);
	VT_EQ_INT(lut_index(lut, out + 4), 0);
	VT_EQ_INT(lut_index(lut, out + 8), 0);
	/* Negative ranges and a nodata other than 0. */
	band[0] = -7;
	band[1] = -10;
	band[2] = 10;
	vz_lut_apply(lut, band, 3, -10, 10, true, -7, out);
	VT_EQ_INT(lut_index(lut, out + 0), 256);
	VT_EQ_INT(lut_index(lut, out + 4), 0);
	VT_EQ_INT(lut_index(lut, out + 8), 255);
}

/* ---- reference data --------------------------------------------------- */

static char refdir[1024];

static bool read_file(const char *path, struct vz_buf *b)
{
	FILE *f = fopen(path, "rb");
	uint8_t tmp[65536];
	size_t n;

	if (!f)
		return false;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
		if (vz_buf_append(b, tmp, n)) {
			fclose(f);
			return false;
		}
	fclose(f);
	return true;
}

/* Band @p band of the GeoTIFF as float64, or NULL. */
static double *read_band(const char *path, int band, int *w, int *h)
{
	GDALDatasetH ds = GDALOpen(path, GA_ReadOnly);
	double *v = NULL;

	if (!ds)
		return NULL;
	*w = GDALGetRasterXSize(ds);
	*h = GDALGetRasterYSize(ds);
	v = malloc(sizeof(double) * (size_t)*w * *h);
	if (v && GDALRasterIO(GDALGetRasterBand(ds, band), GF_Read, 0, 0, *w,
			      *h, v, *w, *h, GDT_Float64, 0, 0) != CE_None) {
		free(v);
		v = NULL;
	}
	GDALClose(ds);
	return v;
}

static int n_png, n_exact, n_bad_colour;

/*
 * Colour one GeoTIFF band with the spec recipe (min 0; polygon_count max =
 * per-tile nanmax, coverage max 1; nodata 0) and compare with the PNG.
 */
static void check_tile(const struct vz_lut *lut, const char *stat, int z, int x,
		       const char *yname, const uint8_t *px, uint32_t w,
		       uint32_t h)
{
	char tif[1400];
	int band = !strcmp(stat, "coverage") ? 2 : 1;
	int tw, th;
	double *v, max = 1.0;
	uint8_t *mine;
	size_t i, n, diff = 0;
	char y[64];

	snprintf(y, sizeof y, "%s", yname);
	*strrchr(y, '.') = '\0';
	snprintf(tif, sizeof tif, "%s/geotiff/WorldCRS84Quad/%d/%d/%s.tif",
		 refdir, z, x, y);
	v = read_band(tif, band, &tw, &th);
	VT_CHECK(v != NULL);
	if (!v) {
		fprintf(stderr, "cannot read %s\n", tif);
		return;
	}
	VT_CHECK((uint32_t)tw == w && (uint32_t)th == h);
	n = (size_t)w * h;
	if (band == 1) {
		max = -INFINITY;
		for (i = 0; i < n; i++)
			if (isfinite(v[i]) && v[i] > max)
				max = v[i];
	}
	mine = malloc(n * 4);
	vz_lut_apply(lut, v, n, 0, max, true, 0, mine);
	for (i = 0; i < n; i++)
		if (memcmp(mine + i * 4, px + i * 4, 4))
			diff++;
	if (diff)
		fprintf(stderr, "%s z%d/%d/%s: %zu pixels differ\n", stat, z, x,
			y, diff);
	VT_EQ_INT(diff, 0);
	if (!diff)
		n_exact++;
	free(mine);
	free(v);
}

static void check_png(const struct vz_lut *lut, const char *path,
		      const char *stat, int z, int x, const char *yname)
{
	struct vz_buf file = {0}, px = {0};
	uint32_t w = 0, h = 0;
	size_t i, bad = 0;

	VT_CHECK(read_file(path, &file));
	VT_EQ_INT(vz_png_decode(file.data, file.len, &w, &h, &px), 0);
	VT_CHECK(w == 256 && h == 256);
	n_png++;
	for (i = 0; i < (size_t)w * h; i++)
		if (lut_index(lut, px.data + i * 4) < 0)
			bad++;
	if (bad)
		fprintf(stderr, "%s: %zu pixels not in the gray LUT\n", path,
			bad);
	n_bad_colour += bad != 0;
	VT_EQ_INT(bad, 0);
	check_tile(lut, stat, z, x, yname, px.data, w, h);
	vz_buf_free(&file);
	vz_buf_free(&px);
}

/* Walk web_tiles/<stat>/WorldCRS84Quad/<z>/<x>/<y>.png. */
static void walk_reference(const struct vz_lut *lut)
{
	static const char *stats[] = {"polygon_count", "coverage"};
	size_t s;
	int z;

	for (s = 0; s < VZ_ARRAY_SIZE(stats); s++) {
		for (z = 0; z <= 24; z++) {
			char zdir[1200];
			DIR *dz;
			struct dirent *ex;

			snprintf(zdir, sizeof zdir,
				 "%s/web_tiles/%s/WorldCRS84Quad/%d", refdir,
				 stats[s], z);
			dz = opendir(zdir);
			if (!dz)
				continue;
			while ((ex = readdir(dz))) {
				char xdir[1500];
				DIR *dx;
				struct dirent *ey;

				if (ex->d_name[0] == '.')
					continue;
				snprintf(xdir, sizeof xdir, "%s/%s", zdir,
					 ex->d_name);
				dx = opendir(xdir);
				if (!dx)
					continue;
				while ((ey = readdir(dx))) {
					char png[1800];
					size_t l = strlen(ey->d_name);

					if (l < 5 ||
					    strcmp(ey->d_name + l - 4, ".png"))
						continue;
					snprintf(png, sizeof png, "%s/%s", xdir,
						 ey->d_name);
					check_png(lut, png, stats[s], z,
						  atoi(ex->d_name), ey->d_name);
				}
				closedir(dx);
			}
			closedir(dz);
		}
	}
}

static bool test_reference(const struct vz_lut *lut)
{
	struct stat st;

	snprintf(refdir, sizeof refdir, "%s/../shared/data/pdg-minimal-example",
		 vt_srcroot());
	if (stat(refdir, &st) || !S_ISDIR(st.st_mode)) {
		printf("reference data %s absent: skipping the PNG "
		       "comparison\n",
		       refdir);
		return false;
	}
	GDALAllRegister();
	walk_reference(lut);
	/* The spec: 34 PNGs (17 tiles x 2 stats), all pixel-exact. */
	VT_EQ_INT(n_png, 34);
	VT_EQ_INT(n_exact, 34);
	VT_EQ_INT(n_bad_colour, 0);
	printf("reference: %d PNGs decoded, %d reproduced pixel-exactly\n",
	       n_png, n_exact);
	return true;
}

/* Absurd but syntactically valid colours must not hang or misbehave. */
static void test_extremes(void)
{
	const char *pal[] = {"lab(50% 1e300 -1e300)", "lch(50% 1e300 10)",
			     "rgb(1e300 -1e300 0)", "lch(-50% 10 10)",
			     "lab(1e10 0 0)"};
	struct vz_lut lut;

	VT_EQ_INT(vz_lut_build(pal, VZ_ARRAY_SIZE(pal), "rgb(1e300 0 0)", &lut),
		  0);
	/* rgb(1e300 0 0) is red at its brightest after fitting. */
	VT_EQ_INT(lut.rgba[256][3], 255);
	/* Entry 0: the chroma-less floor of L=50 is in gamut, so the
	 * colour is clipped or reduced, never undefined. */
	VT_CHECK(lut.rgba[0][3] == 255);
	VT_CHECK(lut.rgba[255][0] == 255 && lut.rgba[255][1] == 255 &&
		 lut.rgba[255][2] == 255); /* L = 1e10 -> white */
}

static void *build_thread(void *arg)
{
	const char *pal[] = {"#663399", "lch(85% 100 85)", "teal"};
	struct vz_lut *lut = arg;
	int i;

	for (i = 0; i < 20; i++)
		if (vz_lut_build(pal, 3, NULL, lut))
			return NULL;
	return lut;
}

static void test_threads(void)
{
	static struct vz_lut luts[4];
	pthread_t th[4];
	void *ret;
	int i;

	for (i = 0; i < 4; i++)
		VT_EQ_INT(pthread_create(&th[i], NULL, build_thread, &luts[i]),
			  0);
	for (i = 0; i < 4; i++) {
		VT_EQ_INT(pthread_join(th[i], &ret), 0);
		VT_CHECK(ret == &luts[i]);
	}
	for (i = 1; i < 4; i++)
		VT_CHECK(memcmp(&luts[0], &luts[i], sizeof luts[0]) == 0);
}

int main(void)
{
	struct vz_lut gray;

	test_parse();
	test_gray_lut(&gray);
	test_chromatic_lut();
	test_apply(&gray);
	test_extremes();
	test_threads();
	test_reference(&gray);
	return vt_done("test_palette");
}
