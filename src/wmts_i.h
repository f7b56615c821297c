/* SPDX-License-Identifier: Apache-2.0 */
/* The viewer's static assets, compiled in (generated viewer_assets.c). */
#ifndef VIZFS_WMTS_I_H
#define VIZFS_WMTS_I_H

#include <stddef.h>

/*
 * The embedded files, sorted by name: names are tree-relative
 * ("viewer/leaflet.js"), except "index.html.in", the page template that
 * vz_wmts_site_new() fills.  Plain arrays (no struct) so that the generated
 * file needs no header.  vz_wmts_n_assets is 0 when the build has no viewer
 * (meson option viewer disabled, npm unavailable).
 */
extern const char *const vz_wmts_asset_name[];
extern const unsigned char *const vz_wmts_asset_data[];
extern const size_t vz_wmts_asset_len[];
extern const size_t vz_wmts_n_assets;

#endif
