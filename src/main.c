/* SPDX-License-Identifier: Apache-2.0 */
/* STUB */
int main(void) { return 0; }
