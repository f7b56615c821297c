/* SPDX-License-Identifier: Apache-2.0 */
/* STUB: to be implemented. */
#include <errno.h>
#include "vizfs/conf.h"
int vz_conf_load(const char *path, struct vz_conf **out) { (void)path; *out = 0; return -ENOSYS; }
int vz_conf_parse(const char *json, size_t len, const char *name, const char *base_dir, struct vz_conf **out) { *out = 0; return -ENOSYS; }
void vz_conf_free(struct vz_conf *c) { (void)c; }
int vz_conf_stat_index(const struct vz_conf *c, const char *name) { return -1; }
void vz_conf_range(const struct vz_conf *c, int s, int z, struct vz_range *out) { }
const char *vz_agg_name(enum vz_agg a) { return "?"; }
const char *vz_resample_name(enum vz_resample r) { return "?"; }
