/* SPDX-License-Identifier: Apache-2.0 */
/* STUB: vizfs mount. */
#include "cli.h"
int vz_cli_mount(int argc, char **argv) { return vz_cli_usage_error("mount", "not implemented yet"); }
