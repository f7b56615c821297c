/* SPDX-License-Identifier: Apache-2.0 */
#include "vt.h"
int main(void) { vt_skip("test_service not written yet"); }
