/* SPDX-License-Identifier: Apache-2.0 */
/* Basics: error codes and messages, buffers, hashing, CSV float format. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/build_i.h"
#include "vizfs/common.h"
#include "vt.h"

static void test_errors(void)
{
	VT_CHECK(strcmp(vz_strerror(0), "success") == 0);
	VT_CHECK(strstr(vz_strerror(VZ_E_CONFIG), "configuration") != NULL);
	VT_CHECK(strcmp(vz_strerror(-ENOENT), strerror(ENOENT)) == 0);
	VT_EQ_INT(vz_err_to_errno(-ENOENT), ENOENT);
	VT_EQ_INT(vz_err_to_errno(VZ_E_RENDER), EIO);
	VT_EQ_INT(vz_err_to_errno(VZ_E_CACHE), EIO);
	VT_EQ_INT(vz_err_to_errno(0), 0);
	vz_err_clear();
	VT_CHECK(vz_err_msg()[0] == '\0');
	vz_err_set("key %s", "z_range");
	vz_err_prefix("file %s", "c.json");
	VT_CHECK(strcmp(vz_err_msg(), "file c.json: key z_range") == 0);
}

static void test_buf(void)
{
	struct vz_buf b = {0};
	for (int i = 0; i < 10000; i++)
		VT_EQ_INT(vz_buf_append(&b, &i, sizeof i), 0);
	VT_EQ_INT(b.len, 10000 * sizeof(int));
	VT_EQ_INT(((int *)b.data)[9999], 9999);
	vz_buf_reset(&b);
	VT_EQ_INT(b.len, 0);
	vz_buf_free(&b);
	VT_CHECK(b.data == NULL && b.cap == 0);
}

static void test_hash(void)
{
	struct vz_hash h1, h2;
	char a[33], b[33];

	vz_hash_init(&h1);
	vz_hash_str(&h1, "ab");
	vz_hash_str(&h1, "c");
	vz_hash_init(&h2);
	vz_hash_str(&h2, "a");
	vz_hash_str(&h2, "bc");
	vz_hash_hex(&h1, a);
	vz_hash_hex(&h2, b);
	VT_EQ_INT(strlen(a), 32);
	VT_CHECK(strcmp(a, b) != 0); /* terminators separate fields */
	vz_hash_init(&h2);
	vz_hash_str(&h2, "ab");
	vz_hash_str(&h2, "c");
	vz_hash_hex(&h2, b);
	VT_CHECK(strcmp(a, b) == 0);
}

static void test_pyfloat(void)
{
	/* Python's repr() of these values. */
	static const struct {
		double v;
		const char *s;
	} cases[] = {
		{0.0, "0.0"},
		{1.0, "1.0"},
		{1551.0, "1551.0"},
		{0.0236663818359375, "0.0236663818359375"},
		{6200.999999976215, "6200.999999976215"},
		{-146.51367187500014, "-146.51367187500014"},
		{-5.968558980384842e-13, "-5.968558980384842e-13"},
		{1e16, "1e+16"},
		{1.5e-05, "1.5e-05"},
		{0.0001, "0.0001"},
		{100.0, "100.0"},
		{123456789012345.0, "123456789012345.0"},
		{0.1, "0.1"},
		{2.5e+20, "2.5e+20"},
	};
	char buf[64];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		vz_fmt_pyfloat(cases[i].v, buf, sizeof buf);
		if (strcmp(buf, cases[i].s))
			fprintf(stderr, "pyfloat %.17g -> %s, want %s\n",
				cases[i].v, buf, cases[i].s);
		VT_CHECK(strcmp(buf, cases[i].s) == 0);
	}
	vz_fmt_pyfloat(NAN, buf, sizeof buf);
	VT_CHECK(strcmp(buf, "nan") == 0);
}

int main(void)
{
	test_errors();
	test_buf();
	test_hash();
	test_pyfloat();
	return vt_done("test_common");
}
