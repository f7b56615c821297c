/* SPDX-License-Identifier: Apache-2.0 */
/* Colour parsing and the PDG's LCh palette LUT, following coloraide 0.x. */
#include "vizfs/palette.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vizfs/common.h"

/*
 * The PDG builds its palette with coloraide 0.x (pinned <1).  Everything
 * below mirrors what that library computes, down to operation order where
 * it is cheap to do so, because PNG pixels are compared exactly against the
 * reference for the default gray palette:
 *
 *   sRGB -> linear (CSS transfer) -> XYZ D65 (CSS matrix) -> Bradford to
 *   D50 -> CIE Lab (D50) -> LCh, interpolate (premultiplied alpha, shorter
 *   hue arc), and back the same way;
 *   gamut fitting = coloraide 0.x "lch-chroma" (bisection of LCh chroma
 *   against a delta-E 2000 JND of 2 to the clipped colour);
 *   serialisation = to_string(precision=3): channels 255*c rounded half up
 *   to 3 significant digits, alpha rounded half up to DEF_PREC (5) digits,
 *   because coloraide formats alpha with max(DEF_PREC, precision).
 */

/* coloraide util.DEF_PREC: the precision used for alpha in to_string(). */
#define ALPHA_PREC 5
#define CHAN_PREC 3

/*
 * The PDG pins coloraide ">= 0.10, < 1", which resolves to 0.18.x; since
 * 0.17 coloraide interpolates with premultiplied alpha by default (spec
 * §8.2 assumes the 0.10-0.16 default, not premultiplied).  The two differ
 * only for palettes whose stops have different alphas and colours.
 */
#define PREMULTIPLIED 1

/*
 * Chroma below this is achromatic: the hue is undefined (NaN) and takes the
 * other stop's hue.  sRGB greys come out at ~1e-13 through these matrices.
 */
#define ACHROMATIC_C 1e-6

/* lch-chroma gamut mapping constants (coloraide 0.x LchChroma). */
#define FIT_EPSILON 0.01
#define FIT_LIMIT 2.0

enum cspace {
	CS_SRGB,
	CS_LAB,
	CS_LCH,
};

/* A parsed colour in the space it was written in. */
struct pcol {
	enum cspace sp;
	double c[3];
	double a;
};

/* CSS Color 4 sRGB <-> XYZ (D65) matrices, as used by coloraide. */
static const double RGB2XYZ[3][3] = {
	{0.41239079926595934, 0.357584339383878, 0.1804807884018343},
	{0.21263900587151027, 0.715168678767756, 0.07219231536073371},
	{0.01933081871559182, 0.11919477979462598, 0.9505321522496607},
};
static const double XYZ2RGB[3][3] = {
	{3.2409699419045226, -1.537383177570094, -0.4986107602930034},
	{-0.9692436362808796, 1.8759675015077202, 0.04155505740717559},
	{0.05563007969699366, -0.20397695888897652, 1.0569715142428786},
};

static double d65_to_d50[3][3], d50_to_d65[3][3];
static double white_d50[3];
static pthread_once_t mat_once = PTHREAD_ONCE_INIT;

static void xy_to_xyz(double x, double y, double out[3])
{
	out[0] = x / y;
	out[1] = 1.0;
	out[2] = (1 - x - y) / y;
}

static void matvec(const double m[3][3], const double v[3], double out[3])
{
	int i;

	for (i = 0; i < 3; i++)
		out[i] = m[i][0] * v[0] + m[i][1] * v[1] + m[i][2] * v[2];
}

static void matmul(const double a[3][3], const double b[3][3], double out[3][3])
{
	int i, j;

	for (i = 0; i < 3; i++)
		for (j = 0; j < 3; j++)
			out[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j] +
				    a[i][2] * b[2][j];
}

static void matinv(const double m[3][3], double out[3][3])
{
	double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
		     m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
		     m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);

	out[0][0] = (m[1][1] * m[2][2] - m[1][2] * m[2][1]) / det;
	out[0][1] = (m[0][2] * m[2][1] - m[0][1] * m[2][2]) / det;
	out[0][2] = (m[0][1] * m[1][2] - m[0][2] * m[1][1]) / det;
	out[1][0] = (m[1][2] * m[2][0] - m[1][0] * m[2][2]) / det;
	out[1][1] = (m[0][0] * m[2][2] - m[0][2] * m[2][0]) / det;
	out[1][2] = (m[0][2] * m[1][0] - m[0][0] * m[1][2]) / det;
	out[2][0] = (m[1][0] * m[2][1] - m[1][1] * m[2][0]) / det;
	out[2][1] = (m[0][1] * m[2][0] - m[0][0] * m[2][1]) / det;
	out[2][2] = (m[0][0] * m[1][1] - m[0][1] * m[1][0]) / det;
}

/* Bradford adaptation between the CSS D65 and D50 white points. */
static void init_matrices(void)
{
	static const double brad[3][3] = {
		{0.8951, 0.2664, -0.1614},
		{-0.7502, 1.7135, 0.0367},
		{0.0389, -0.0685, 1.0296},
	};
	double brad_inv[3][3], w65[3], w50[3], c65[3], c50[3], tmp[3][3];
	double diag[3][3] = {{0}};
	int i;

	xy_to_xyz(0.3127, 0.3290, w65);
	xy_to_xyz(0.3457, 0.3585, w50);
	memcpy(white_d50, w50, sizeof w50);
	matinv(brad, brad_inv);
	matvec(brad, w65, c65);
	matvec(brad, w50, c50);
	for (i = 0; i < 3; i++)
		diag[i][i] = c50[i] / c65[i];
	matmul(diag, brad, tmp);
	matmul(brad_inv, tmp, d65_to_d50);
	matinv(d65_to_d50, d50_to_d65);
}

static double srgb_to_linear(double v)
{
	double av = fabs(v);

	if (av < 0.04045)
		return v / 12.92;
	return copysign(pow((av + 0.055) / 1.055, 2.4), v);
}

static double linear_to_srgb(double v)
{
	double av = fabs(v);

	if (av > 0.0031308)
		return copysign(1.055 * pow(av, 1 / 2.4) - 0.055, v);
	return 12.92 * v;
}

#define LAB_EPS (216.0 / 24389.0)
#define LAB_EPS3 (6.0 / 29.0)
#define LAB_KAPPA (24389.0 / 27.0)
#define LAB_KE 8.0

static void srgb_to_lab(const double rgb[3], double lab[3])
{
	double lin[3], x65[3], x50[3], f[3];
	int i;

	for (i = 0; i < 3; i++)
		lin[i] = srgb_to_linear(rgb[i]);
	matvec(RGB2XYZ, lin, x65);
	matvec(d65_to_d50, x65, x50);
	for (i = 0; i < 3; i++) {
		double v = x50[i] / white_d50[i];

		f[i] = v > LAB_EPS ? cbrt(v) : (LAB_KAPPA * v + 16) / 116;
	}
	lab[0] = 116.0 * f[1] - 16.0;
	lab[1] = 500.0 * (f[0] - f[1]);
	lab[2] = 200.0 * (f[1] - f[2]);
}

static void lab_to_srgb(const double lab[3], double rgb[3])
{
	double fy = (lab[0] + 16) / 116;
	double fx = lab[1] / 500 + fy;
	double fz = fy - lab[2] / 200;
	double xyz[3], x65[3], lin[3];
	int i;

	xyz[0] = fx > LAB_EPS3 ? pow(fx, 3) : (116 * fx - 16) / LAB_KAPPA;
	xyz[1] = lab[0] > LAB_KE ? pow(fy, 3) : lab[0] / LAB_KAPPA;
	xyz[2] = fz > LAB_EPS3 ? pow(fz, 3) : (116 * fz - 16) / LAB_KAPPA;
	for (i = 0; i < 3; i++)
		xyz[i] *= white_d50[i];
	matvec(d50_to_d65, xyz, x65);
	matvec(XYZ2RGB, x65, lin);
	for (i = 0; i < 3; i++)
		rgb[i] = linear_to_srgb(lin[i]);
}

#define DEG2RAD (M_PI / 180.0)
#define RAD2DEG (180.0 / M_PI)

static void lab_to_lch(const double lab[3], double lch[3])
{
	double c = sqrt(lab[1] * lab[1] + lab[2] * lab[2]);
	double h = atan2(lab[2], lab[1]) * RAD2DEG;

	h = fmod(h, 360.0);
	if (h < 0)
		h += 360.0;
	lch[0] = lab[0];
	lch[1] = c;
	lch[2] = c < ACHROMATIC_C ? NAN : h;
}

static void lch_to_lab(const double lch[3], double lab[3])
{
	double h = isnan(lch[2]) ? 0.0 : lch[2];
	double c = lch[1] < 0 ? 0.0 : lch[1];

	lab[0] = lch[0];
	lab[1] = c * cos(h * DEG2RAD);
	lab[2] = c * sin(h * DEG2RAD);
}

static void lch_to_srgb(const double lch[3], double rgb[3])
{
	double lab[3];

	lch_to_lab(lch, lab);
	lab_to_srgb(lab, rgb);
}

static void srgb_to_lch(const double rgb[3], double lch[3])
{
	double lab[3];

	srgb_to_lab(rgb, lab);
	lab_to_lch(lab, lch);
}

static void pcol_to_srgb(const struct pcol *p, double rgb[3])
{
	switch (p->sp) {
	case CS_SRGB:
		memcpy(rgb, p->c, sizeof(p->c));
		break;
	case CS_LAB:
		lab_to_srgb(p->c, rgb);
		break;
	case CS_LCH:
		lch_to_srgb(p->c, rgb);
		break;
	}
}

static void pcol_to_lch(const struct pcol *p, double lch[3])
{
	switch (p->sp) {
	case CS_SRGB:
		srgb_to_lch(p->c, lch);
		break;
	case CS_LAB:
		lab_to_lch(p->c, lch);
		break;
	case CS_LCH:
		/* A hue written explicitly stays defined (coloraide >= 0.11). */
		memcpy(lch, p->c, sizeof(p->c));
		if (lch[1] < 0)
			lch[1] = 0;
		break;
	}
}

/* ---- gamut fitting ---------------------------------------------------- */

static bool in_gamut(const double rgb[3])
{
	return rgb[0] >= 0 && rgb[0] <= 1 && rgb[1] >= 0 && rgb[1] <= 1 &&
	       rgb[2] >= 0 && rgb[2] <= 1;
}

static void clip(const double in[3], double out[3])
{
	int i;

	for (i = 0; i < 3; i++)
		out[i] = !(in[i] > 0) ? 0 : in[i] > 1 ? 1 : in[i];
}

static double hue_deg(double b, double a)
{
	double h;

	if (a == 0 && b == 0)
		return 0;
	h = atan2(b, a) * RAD2DEG;
	return h < 0 ? h + 360.0 : h;
}

/* CIE delta-E 2000 (kL = kC = kH = 1) between two CIE Lab colours. */
static double delta_e2000(const double l1[3], const double l2[3])
{
	const double p25 = 6103515625.0; /* 25^7 */
	double c1 = sqrt(l1[1] * l1[1] + l1[2] * l1[2]);
	double c2 = sqrt(l2[1] * l2[1] + l2[2] * l2[2]);
	double cm7 = pow((c1 + c2) / 2, 7);
	double g = 0.5 * (1 - sqrt(cm7 / (cm7 + p25)));
	double a1 = (1 + g) * l1[1], a2 = (1 + g) * l2[1];
	double cp1 = sqrt(a1 * a1 + l1[2] * l1[2]);
	double cp2 = sqrt(a2 * a2 + l2[2] * l2[2]);
	double hp1 = hue_deg(l1[2], a1), hp2 = hue_deg(l2[2], a2);
	double dl = l2[0] - l1[0], dc = cp2 - cp1, dh = 0, dhh, lpm, cpm, hpm;
	double t, dtheta, cpm7, rc, lm50, sl, sc, sh, rt;

	if (cp1 * cp2 != 0) {
		dh = hp2 - hp1;
		if (dh > 180)
			dh -= 360;
		else if (dh < -180)
			dh += 360;
	}
	dhh = 2 * sqrt(cp1 * cp2) * sin(dh / 2 * DEG2RAD);
	lpm = (l1[0] + l2[0]) / 2;
	cpm = (cp1 + cp2) / 2;
	if (cp1 * cp2 == 0)
		hpm = hp1 + hp2;
	else if (fabs(hp1 - hp2) > 180)
		hpm = (hp1 + hp2 < 360) ? (hp1 + hp2 + 360) / 2 :
					  (hp1 + hp2 - 360) / 2;
	else
		hpm = (hp1 + hp2) / 2;
	t = 1 - 0.17 * cos((hpm - 30) * DEG2RAD) +
	    0.24 * cos(2 * hpm * DEG2RAD) +
	    0.32 * cos((3 * hpm + 6) * DEG2RAD) -
	    0.20 * cos((4 * hpm - 63) * DEG2RAD);
	dtheta = 30 * exp(-pow((hpm - 275) / 25, 2));
	cpm7 = pow(cpm, 7);
	rc = 2 * sqrt(cpm7 / (cpm7 + p25));
	lm50 = (lpm - 50) * (lpm - 50);
	sl = 1 + 0.015 * lm50 / sqrt(20 + lm50);
	sc = 1 + 0.045 * cpm;
	sh = 1 + 0.015 * cpm * t;
	rt = -sin(2 * dtheta * DEG2RAD) * rc;
	return sqrt((dl / sl) * (dl / sl) + (dc / sc) * (dc / sc) +
		    (dhh / sh) * (dhh / sh) + rt * (dc / sc) * (dhh / sh));
}

/*
 * coloraide 0.x "lch-chroma" fitting of an sRGB colour: keep L and h,
 * bisect the chroma until the clipped colour is within a JND (delta-E 2000
 * of 2) of the chroma-reduced one, then clip.
 */
static void fit_srgb(const double in[3], double out[3])
{
	double lch[3], floor_rgb[3], clipped[3], lab_in[3], lab_cl[3];
	double map[3], low, high;

	if (in_gamut(in)) {
		memcpy(out, in, 3 * sizeof(double));
		return;
	}
	srgb_to_lch(in, lch);
	/* If even the achromatic colour is out of gamut, just clip it. */
	map[0] = lch[0];
	map[1] = 0;
	map[2] = lch[2];
	lch_to_srgb(map, floor_rgb);
	if (!in_gamut(floor_rgb)) {
		clip(floor_rgb, out);
		return;
	}
	clip(in, clipped);
	srgb_to_lab(in, lab_in);
	srgb_to_lab(clipped, lab_cl);
	if (delta_e2000(lab_in, lab_cl) < FIT_LIMIT) {
		memcpy(out, clipped, 3 * sizeof(double));
		return;
	}
	memcpy(map, lch, sizeof map);
	low = 0.0;
	high = map[1];
	if (!isfinite(high)) {
		/* Absurd input (overflowed chroma): nothing to bisect. */
		memcpy(out, clipped, 3 * sizeof(double));
		return;
	}
	while (high - low > FIT_EPSILON) {
		double rgb[3], lab_m[3];

		lch_to_srgb(map, rgb);
		clip(rgb, clipped);
		lch_to_lab(map, lab_m);
		srgb_to_lab(clipped, lab_cl);
		if (delta_e2000(lab_m, lab_cl) - FIT_LIMIT < FIT_EPSILON)
			low = map[1];
		else
			high = map[1];
		map[1] = (high + low) * 0.5;
	}
	lch_to_srgb(map, clipped);
	clip(clipped, out);
}

/* ---- serialisation rounding ------------------------------------------ */

/* coloraide util.round_half_up(n, scale). */
static double round_half_up(double n, int scale)
{
	double mult = pow(10.0, scale);

	return floor(n * mult + 0.5) / mult;
}

/*
 * coloraide util.adjust_precision(f, p): round half up to p significant
 * digits counted from the integer part (p decimals when |f| < 1).
 */
static double adjust_precision(double f, int p)
{
	double whole = trunc(f);
	int digits = 0;

	if (whole != 0)
		digits = (int)log10(fabs(whole)) + 1;
	return round_half_up(digits > p ? whole : f, p - digits);
}

static uint8_t to_byte(double v)
{
	/* Python int(): truncation; the regex in Palette.py drops signs. */
	v = fabs(trunc(v));
	if (!(v <= 255))
		return isnan(v) ? 0 : 255;
	return (uint8_t)v;
}

static void pcol_to_rgba(const struct pcol *p, uint8_t rgba[4])
{
	double rgb[3], fitted[3];
	double a = isnan(p->a) ? 0.0 : p->a;
	int i;

	pcol_to_srgb(p, rgb);
	for (i = 0; i < 3; i++)
		if (isnan(rgb[i]))
			rgb[i] = 0;
	fit_srgb(rgb, fitted);
	for (i = 0; i < 3; i++)
		rgba[i] =
			to_byte(adjust_precision(fitted[i] * 255.0, CHAN_PREC));
	rgba[3] = to_byte(adjust_precision(a, ALPHA_PREC) * 255);
}

/* ---- parsing ---------------------------------------------------------- */

struct named {
	const char *name;
	uint32_t rgb;
};

/* The 148 CSS Color 4 named colours. */
static const struct named NAMES[] = {
	{"aliceblue", 0xf0f8ff},
	{"antiquewhite", 0xfaebd7},
	{"aqua", 0x00ffff},
	{"aquamarine", 0x7fffd4},
	{"azure", 0xf0ffff},
	{"beige", 0xf5f5dc},
	{"bisque", 0xffe4c4},
	{"black", 0x000000},
	{"blanchedalmond", 0xffebcd},
	{"blue", 0x0000ff},
	{"blueviolet", 0x8a2be2},
	{"brown", 0xa52a2a},
	{"burlywood", 0xdeb887},
	{"cadetblue", 0x5f9ea0},
	{"chartreuse", 0x7fff00},
	{"chocolate", 0xd2691e},
	{"coral", 0xff7f50},
	{"cornflowerblue", 0x6495ed},
	{"cornsilk", 0xfff8dc},
	{"crimson", 0xdc143c},
	{"cyan", 0x00ffff},
	{"darkblue", 0x00008b},
	{"darkcyan", 0x008b8b},
	{"darkgoldenrod", 0xb8860b},
	{"darkgray", 0xa9a9a9},
	{"darkgreen", 0x006400},
	{"darkgrey", 0xa9a9a9},
	{"darkkhaki", 0xbdb76b},
	{"darkmagenta", 0x8b008b},
	{"darkolivegreen", 0x556b2f},
	{"darkorange", 0xff8c00},
	{"darkorchid", 0x9932cc},
	{"darkred", 0x8b0000},
	{"darksalmon", 0xe9967a},
	{"darkseagreen", 0x8fbc8f},
	{"darkslateblue", 0x483d8b},
	{"darkslategray", 0x2f4f4f},
	{"darkslategrey", 0x2f4f4f},
	{"darkturquoise", 0x00ced1},
	{"darkviolet", 0x9400d3},
	{"deeppink", 0xff1493},
	{"deepskyblue", 0x00bfff},
	{"dimgray", 0x696969},
	{"dimgrey", 0x696969},
	{"dodgerblue", 0x1e90ff},
	{"firebrick", 0xb22222},
	{"floralwhite", 0xfffaf0},
	{"forestgreen", 0x228b22},
	{"fuchsia", 0xff00ff},
	{"gainsboro", 0xdcdcdc},
	{"ghostwhite", 0xf8f8ff},
	{"gold", 0xffd700},
	{"goldenrod", 0xdaa520},
	{"gray", 0x808080},
	{"green", 0x008000},
	{"greenyellow", 0xadff2f},
	{"grey", 0x808080},
	{"honeydew", 0xf0fff0},
	{"hotpink", 0xff69b4},
	{"indianred", 0xcd5c5c},
	{"indigo", 0x4b0082},
	{"ivory", 0xfffff0},
	{"khaki", 0xf0e68c},
	{"lavender", 0xe6e6fa},
	{"lavenderblush", 0xfff0f5},
	{"lawngreen", 0x7cfc00},
	{"lemonchiffon", 0xfffacd},
	{"lightblue", 0xadd8e6},
	{"lightcoral", 0xf08080},
	{"lightcyan", 0xe0ffff},
	{"lightgoldenrodyellow", 0xfafad2},
	{"lightgray", 0xd3d3d3},
	{"lightgreen", 0x90ee90},
	{"lightgrey", 0xd3d3d3},
	{"lightpink", 0xffb6c1},
	{"lightsalmon", 0xffa07a},
	{"lightseagreen", 0x20b2aa},
	{"lightskyblue", 0x87cefa},
	{"lightslategray", 0x778899},
	{"lightslategrey", 0x778899},
	{"lightsteelblue", 0xb0c4de},
	{"lightyellow", 0xffffe0},
	{"lime", 0x00ff00},
	{"limegreen", 0x32cd32},
	{"linen", 0xfaf0e6},
	{"magenta", 0xff00ff},
	{"maroon", 0x800000},
	{"mediumaquamarine", 0x66cdaa},
	{"mediumblue", 0x0000cd},
	{"mediumorchid", 0xba55d3},
	{"mediumpurple", 0x9370db},
	{"mediumseagreen", 0x3cb371},
	{"mediumslateblue", 0x7b68ee},
	{"mediumspringgreen", 0x00fa9a},
	{"mediumturquoise", 0x48d1cc},
	{"mediumvioletred", 0xc71585},
	{"midnightblue", 0x191970},
	{"mintcream", 0xf5fffa},
	{"mistyrose", 0xffe4e1},
	{"moccasin", 0xffe4b5},
	{"navajowhite", 0xffdead},
	{"navy", 0x000080},
	{"oldlace", 0xfdf5e6},
	{"olive", 0x808000},
	{"olivedrab", 0x6b8e23},
	{"orange", 0xffa500},
	{"orangered", 0xff4500},
	{"orchid", 0xda70d6},
	{"palegoldenrod", 0xeee8aa},
	{"palegreen", 0x98fb98},
	{"paleturquoise", 0xafeeee},
	{"palevioletred", 0xdb7093},
	{"papayawhip", 0xffefd5},
	{"peachpuff", 0xffdab9},
	{"peru", 0xcd853f},
	{"pink", 0xffc0cb},
	{"plum", 0xdda0dd},
	{"powderblue", 0xb0e0e6},
	{"purple", 0x800080},
	{"rebeccapurple", 0x663399},
	{"red", 0xff0000},
	{"rosybrown", 0xbc8f8f},
	{"royalblue", 0x4169e1},
	{"saddlebrown", 0x8b4513},
	{"salmon", 0xfa8072},
	{"sandybrown", 0xf4a460},
	{"seagreen", 0x2e8b57},
	{"seashell", 0xfff5ee},
	{"sienna", 0xa0522d},
	{"silver", 0xc0c0c0},
	{"skyblue", 0x87ceeb},
	{"slateblue", 0x6a5acd},
	{"slategray", 0x708090},
	{"slategrey", 0x708090},
	{"snow", 0xfffafa},
	{"springgreen", 0x00ff7f},
	{"steelblue", 0x4682b4},
	{"tan", 0xd2b48c},
	{"teal", 0x008080},
	{"thistle", 0xd8bfd8},
	{"tomato", 0xff6347},
	{"turquoise", 0x40e0d0},
	{"violet", 0xee82ee},
	{"wheat", 0xf5deb3},
	{"white", 0xffffff},
	{"whitesmoke", 0xf5f5f5},
	{"yellow", 0xffff00},
	{"yellowgreen", 0x9acd32},
};

enum unit {
	U_NONE,
	U_PCT,
	U_DEG,
	U_RAD,
	U_GRAD,
	U_TURN,
};

struct arg {
	double v;
	enum unit u;
};

#define MAX_ARGS 5

/* Parsed argument list of a colour function. */
struct args {
	struct arg a[MAX_ARGS];
	int n;
	bool comma; /* legacy comma syntax */
	int slash;  /* index of the argument after "/", or -1 */
};

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* A CSS <number>: [+-]? (digits [. digits] | . digits) [e [+-] digits]. */
static const char *scan_number(const char *p, double *out)
{
	const char *s = p;
	bool digits = false;
	char *end;

	if (*p == '+' || *p == '-')
		p++;
	while (isdigit((unsigned char)*p)) {
		p++;
		digits = true;
	}
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p)) {
			p++;
			digits = true;
		}
	}
	if (!digits)
		return NULL;
	if (*p == 'e' &&
	    (isdigit((unsigned char)p[1]) ||
	     ((p[1] == '+' || p[1] == '-') && isdigit((unsigned char)p[2])))) {
		p += 2;
		while (isdigit((unsigned char)*p))
			p++;
	}
	*out = strtod(s, &end);
	if (end != p || !isfinite(*out))
		return NULL;
	return p;
}

static const char *scan_arg(const char *p, struct arg *a)
{
	static const struct {
		const char *s;
		enum unit u;
	} units[] = {
		{"%", U_PCT},	{"deg", U_DEG},	  {"grad", U_GRAD},
		{"rad", U_RAD}, {"turn", U_TURN},
	};
	size_t i;

	p = scan_number(p, &a->v);
	if (!p)
		return NULL;
	a->u = U_NONE;
	for (i = 0; i < VZ_ARRAY_SIZE(units); i++) {
		size_t l = strlen(units[i].s);

		if (!strncmp(p, units[i].s, l)) {
			a->u = units[i].u;
			p += l;
			break;
		}
	}
	if (isalnum((unsigned char)*p) || *p == '.')
		return NULL;
	return p;
}

/* Parse "a b c / d)" or "a, b, c, d)"; p points after "(". */
static bool parse_args(const char *p, struct args *as)
{
	bool need_sep = false;
	int seps = 0; /* 0 = unknown, 1 = spaces, 2 = commas */

	as->n = 0;
	as->comma = false;
	as->slash = -1;
	for (;;) {
		bool ws = false;

		while (isspace((unsigned char)*p)) {
			p++;
			ws = true;
		}
		if (*p == ')') {
			p++;
			break;
		}
		if (need_sep) {
			if (*p == ',') {
				if (seps == 1)
					return false;
				seps = 2;
				p++;
				while (isspace((unsigned char)*p))
					p++;
			} else if (*p == '/') {
				if (seps == 2 || as->slash >= 0)
					return false;
				seps = 1;
				as->slash = as->n;
				p++;
				while (isspace((unsigned char)*p))
					p++;
			} else if (ws) {
				if (seps == 2)
					return false;
				seps = 1;
			} else {
				return false;
			}
		}
		if (as->n >= MAX_ARGS)
			return false;
		p = scan_arg(p, &as->a[as->n]);
		if (!p)
			return false;
		as->n++;
		need_sep = true;
	}
	while (isspace((unsigned char)*p))
		p++;
	if (*p)
		return false;
	if (as->slash >= 0 && as->slash != as->n - 1)
		return false;
	as->comma = seps == 2;
	return true;
}

static bool get_alpha(const struct arg *a, double *out)
{
	double v;

	if (a->u == U_PCT)
		v = a->v / 100;
	else if (a->u == U_NONE)
		v = a->v;
	else
		return false;
	*out = v < 0 ? 0 : v > 1 ? 1 : v;
	return true;
}

static bool get_hue(const struct arg *a, double *out)
{
	switch (a->u) {
	case U_NONE:
	case U_DEG:
		*out = a->v;
		break;
	case U_RAD:
		*out = a->v * RAD2DEG;
		break;
	case U_GRAD:
		*out = a->v * 0.9;
		break;
	case U_TURN:
		*out = a->v * 360.0;
		break;
	default:
		return false;
	}
	*out = fmod(*out, 360.0);
	if (*out < 0)
		*out += 360.0;
	return true;
}

/* Number or percentage; a percentage is scaled so that 100% == @p full. */
static bool get_num(const struct arg *a, double full, double *out)
{
	if (a->u == U_PCT)
		*out = a->v / 100 * full;
	else if (a->u == U_NONE)
		*out = a->v;
	else
		return false;
	return true;
}

static bool hsl_to_srgb(double h, double s, double l, double rgb[3])
{
	static const int n[3] = {0, 8, 4};
	double a;
	int i;

	if (s < 0)
		s = 0;
	a = s * fmin(l, 1 - l);
	for (i = 0; i < 3; i++) {
		double k = fmod(n[i] + h / 30, 12);

		rgb[i] = l - a * fmax(-1, fmin(fmin(k - 3, 9 - k), 1));
	}
	return true;
}

static bool parse_func(const char *name, size_t nlen, const char *p,
		       struct pcol *out)
{
	struct args as;
	bool has_alpha;
	int nch;

	if (!parse_args(p, &as))
		return false;
	if (as.comma)
		nch = as.n > 3 ? 3 : as.n;
	else
		nch = as.slash >= 0 ? as.slash : as.n;
	if (nch != 3 || as.n > 4)
		return false;
	has_alpha = as.n == 4;
	out->a = 1.0;
	if (has_alpha && !get_alpha(&as.a[3], &out->a))
		return false;
	if ((nlen == 3 && !strncmp(name, "rgb", 3)) ||
	    (nlen == 4 && !strncmp(name, "rgba", 4))) {
		int i;

		out->sp = CS_SRGB;
		for (i = 0; i < 3; i++) {
			if (as.a[i].u == U_PCT)
				out->c[i] = as.a[i].v / 100;
			else if (as.a[i].u == U_NONE)
				out->c[i] = as.a[i].v / 255;
			else
				return false;
		}
		return true;
	}
	if ((nlen == 3 && !strncmp(name, "hsl", 3)) ||
	    (nlen == 4 && !strncmp(name, "hsla", 4))) {
		double h, s, l;

		if (!get_hue(&as.a[0], &h) || !get_num(&as.a[1], 100, &s) ||
		    !get_num(&as.a[2], 100, &l))
			return false;
		out->sp = CS_SRGB;
		return hsl_to_srgb(h, s / 100, l / 100, out->c);
	}
	if (as.comma)
		return false;
	if (nlen == 3 && !strncmp(name, "lab", 3)) {
		out->sp = CS_LAB;
		return get_num(&as.a[0], 100, &out->c[0]) &&
		       get_num(&as.a[1], 125, &out->c[1]) &&
		       get_num(&as.a[2], 125, &out->c[2]);
	}
	if (nlen == 3 && !strncmp(name, "lch", 3)) {
		out->sp = CS_LCH;
		if (!get_num(&as.a[0], 100, &out->c[0]) ||
		    !get_num(&as.a[1], 150, &out->c[1]) ||
		    !get_hue(&as.a[2], &out->c[2]))
			return false;
		if (out->c[1] < 0)
			out->c[1] = 0;
		return true;
	}
	return false;
}

static int parse_color(const char *s, struct pcol *out)
{
	const char *orig = s;
	char buf[256];
	size_t len, i;
	const char *p;

	if (!s)
		goto bad;
	while (isspace((unsigned char)*s))
		s++;
	len = strlen(s);
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	if (len == 0 || len >= sizeof buf)
		goto bad;
	for (i = 0; i < len; i++)
		buf[i] = (char)tolower((unsigned char)s[i]);
	buf[len] = '\0';

	if (buf[0] == '#') {
		int d[8];

		if (len != 4 && len != 5 && len != 7 && len != 9)
			goto bad;
		for (i = 1; i < len; i++) {
			d[i - 1] = hexval(buf[i]);
			if (d[i - 1] < 0)
				goto bad;
		}
		out->sp = CS_SRGB;
		out->a = 1.0;
		if (len <= 5) {
			for (i = 0; i < 3; i++)
				out->c[i] = (d[i] * 17) / 255.0;
			if (len == 5)
				out->a = (d[3] * 17) / 255.0;
		} else {
			for (i = 0; i < 3; i++)
				out->c[i] =
					(d[2 * i] * 16 + d[2 * i + 1]) / 255.0;
			if (len == 9)
				out->a = (d[6] * 16 + d[7]) / 255.0;
		}
		return 0;
	}
	p = strchr(buf, '(');
	if (p) {
		size_t nlen = (size_t)(p - buf);

		if (nlen == 0 || !parse_func(buf, nlen, p + 1, out))
			goto bad;
		return 0;
	}
	if (!strcmp(buf, "transparent")) {
		out->sp = CS_SRGB;
		out->c[0] = out->c[1] = out->c[2] = 0;
		out->a = 0;
		return 0;
	}
	for (i = 0; i < VZ_ARRAY_SIZE(NAMES); i++) {
		if (!strcmp(buf, NAMES[i].name)) {
			uint32_t v = NAMES[i].rgb;

			out->sp = CS_SRGB;
			out->c[0] = ((v >> 16) & 0xff) / 255.0;
			out->c[1] = ((v >> 8) & 0xff) / 255.0;
			out->c[2] = (v & 0xff) / 255.0;
			out->a = 1.0;
			return 0;
		}
	}
bad:
	vz_err_set("invalid colour \"%s\" (expected a CSS colour name, "
		   "#rgb[a], #rrggbb[aa], rgb(), hsl(), lab() or lch())",
		   orig ? orig : "(null)");
	return VZ_E_CONFIG;
}

int vz_color_parse(const char *s, struct vz_color *out)
{
	struct pcol p;
	double rgb[3];
	int rc;

	pthread_once(&mat_once, init_matrices);
	rc = parse_color(s, &p);
	if (rc)
		return rc;
	pcol_to_srgb(&p, rgb);
	out->r = rgb[0];
	out->g = rgb[1];
	out->b = rgb[2];
	out->a = p.a;
	return 0;
}

/* ---- LUT -------------------------------------------------------------- */

/* Interpolate one channel; an undefined (NaN) end takes the other's. */
static double lerp(double a, double b, double t)
{
	if (isnan(a))
		return b;
	if (isnan(b))
		return a;
	return a + (b - a) * t;
}

struct stop {
	double lch[3];
	double a;
};

static void interp(const struct stop *s0, const struct stop *s1, double t,
		   struct pcol *out)
{
	double h0 = s0->lch[2], h1 = s1->lch[2];
	double l0 = s0->lch[0], l1 = s1->lch[0];
	double c0 = s0->lch[1], c1 = s1->lch[1];
	double a0 = s0->a, a1 = s1->a;

	/* Hue along the shorter arc. */
	if (!isnan(h0) && !isnan(h1)) {
		if (h1 - h0 > 180)
			h0 += 360;
		else if (h1 - h0 < -180)
			h1 += 360;
	}
	/* Premultiply the non-hue channels (coloraide >= 0.17 default). */
	if (PREMULTIPLIED) {
		if (!isnan(a0) && a0 != 1.0) {
			l0 *= a0;
			c0 *= a0;
		}
		if (!isnan(a1) && a1 != 1.0) {
			l1 *= a1;
			c1 *= a1;
		}
	}
	out->sp = CS_LCH;
	out->c[0] = lerp(l0, l1, t);
	out->c[1] = lerp(c0, c1, t);
	out->c[2] = lerp(h0, h1, t);
	if (!isnan(out->c[2])) {
		out->c[2] = fmod(out->c[2], 360.0);
		if (out->c[2] < 0)
			out->c[2] += 360.0;
	}
	out->a = lerp(a0, a1, t);
	if (PREMULTIPLIED && !isnan(out->a) && out->a != 0.0 && out->a != 1.0) {
		out->c[0] /= out->a;
		out->c[1] /= out->a;
	}
}

int vz_lut_build(const char *const *palette, size_t n, const char *nodata_color,
		 struct vz_lut *out)
{
	static const char *const def[] = {"#FFFFFF", "#000000"};
	struct stop *stops;
	struct pcol p;
	size_t i, nstops;
	int rc;

	pthread_once(&mat_once, init_matrices);
	if (!palette || n == 0) {
		palette = def;
		n = VZ_ARRAY_SIZE(def);
	}
	/* A single colour is a flat palette (Palette.py duplicates it). */
	nstops = n == 1 ? 2 : n;
	stops = calloc(nstops, sizeof(*stops));
	if (!stops)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		rc = parse_color(palette[i], &p);
		if (rc) {
			vz_err_prefix("palette entry %zu: ", i);
			goto out;
		}
		pcol_to_lch(&p, stops[i].lch);
		stops[i].a = p.a;
	}
	if (n == 1)
		stops[1] = stops[0];

	for (i = 0; i < 256; i++) {
		double t = i / 256.0, pos, local;
		size_t seg;

		/* Equally spaced stops: segment k spans [k/(m-1), (k+1)/(m-1)]. */
		pos = t * (double)(nstops - 1);
		seg = (size_t)pos;
		if (seg > nstops - 2)
			seg = nstops - 2;
		local = pos - (double)seg;
		interp(&stops[seg], &stops[seg + 1], local, &p);
		pcol_to_rgba(&p, out->rgba[i]);
	}

	rc = parse_color(nodata_color ? nodata_color : "#ffffff00", &p);
	if (rc) {
		vz_err_prefix("nodata colour: ");
		goto out;
	}
	pcol_to_rgba(&p, out->rgba[256]);
out:
	free(stops);
	return rc;
}

void vz_lut_apply(const struct vz_lut *lut, const double *band, size_t n,
		  double min, double max, bool has_nodata, double nodata,
		  uint8_t *rgba)
{
	/* Same float64 expression as WebImage.to_image(). */
	double scale = 255 / (max - min);
	bool flat = !(max > min);
	size_t i;

	for (i = 0; i < n; i++) {
		double v = band[i], d;
		int idx;

		if (isnan(v) || (has_nodata && v == nodata)) {
			idx = 256;
		} else if (flat) {
			idx = 0;
		} else {
			if (v < min)
				v = min;
			if (v > max)
				v = max;
			d = (v - min) * scale;
			if (!(d > 0))
				idx = 0;
			else if (d >= 255)
				idx = 255;
			else
				idx = (int)d;
		}
		memcpy(rgba + i * 4, lut->rgba[idx], 4);
	}
}
