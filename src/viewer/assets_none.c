/* SPDX-License-Identifier: Apache-2.0 */
/* No viewer assets: the build was configured without the viewer. */
#include <stddef.h>

#include "../wmts_i.h"

const char *const vz_wmts_asset_name[1] = {NULL};
const unsigned char *const vz_wmts_asset_data[1] = {NULL};
const size_t vz_wmts_asset_len[1] = {0};
const size_t vz_wmts_n_assets = 0;
