/* SPDX-License-Identifier: Apache-2.0 */
/* Colour parsing and the PDG's 257-entry LCh palette lookup table. */
#ifndef VIZFS_PALETTE_H
#define VIZFS_PALETTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** RGBA lookup table: entries 0..255 = palette at t = i/256, 256 = nodata. */
struct vz_lut {
	uint8_t rgba[257][4];
};

/** A parsed colour: sRGB channels and alpha in [0, 1] (may be out of
 *  gamut before fitting when parsed from lch()). */
struct vz_color {
	double r, g, b, a;
};

/**
 * Parse one CSS-like colour as coloraide 0.x does: CSS names
 * ("red", "transparent"…), #rgb, #rgba, #rrggbb, #rrggbbaa, rgb()/rgba() in
 * comma and space syntax with optional "/ alpha" (numbers or percentages),
 * hsl()/hsla(), lab(), lch().  Case-insensitive, surrounding blanks ignored.
 * @return 0, or VZ_E_CONFIG with vz_err_msg() naming the colour.
 * Thread-safe.
 */
int vz_color_parse(const char *s, struct vz_color *out);

/**
 * Build the LUT for a palette (NULL/0 -> ["#FFFFFF", "#000000"]) and a nodata
 * colour (NULL -> "#ffffff00"), following spec §8.2 as coloraide 0.18 (the
 * last release the PDG's "<1" pin installs) does it: piecewise-linear
 * interpolation in CIE LCh (D50) over equally spaced stops, shorter hue arc,
 * undefined hue takes the other stop's hue, alpha linear with premultiplied
 * colour (coloraide's default since 0.17; spec §8.2 says not premultiplied —
 * only palettes whose stops differ in both colour and alpha are affected);
 * channels = trunc(round-half-up to 3 significant digits of 255*c), alpha =
 * trunc(round5(a)*255) (coloraide formats alpha with at least 5 decimals;
 * the spec's round3 would give 26 instead of 25 for 0x1A).  @return 0 or
 * VZ_E_CONFIG.
 */
int vz_lut_build(const char *const *palette, size_t n, const char *nodata_color,
		 struct vz_lut *out);

/**
 * Colour a band (spec §8.2 steps 1-4): nodata (exact equality, when
 * @p has_nodata) -> entry 256; clamp to [min, max];
 * idx = trunc((v - min) * (255 / (max - min))).  When max == min every
 * non-nodata pixel gets index 0.  NaN pixels get the nodata colour.
 * Writes n*4 bytes to @p rgba.  Thread-safe.
 */
void vz_lut_apply(const struct vz_lut *lut, const double *band, size_t n,
		  double min, double max, bool has_nodata, double nodata,
		  uint8_t *rgba);

#endif
