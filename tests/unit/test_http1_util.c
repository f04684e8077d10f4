/* SPDX-License-Identifier: MIT */
/*
 * The codec's byte helpers (engine/proto/http1_util.c): hex digits, token
 * bytes, decimal numbers, checked against every byte value and the edges.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <coil/http1.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void test_hexval(void **state)
{
	(void)state;
	for (int c = -128; c < 256; c++) {
		int want = -1;

		if (c >= '0' && c <= '9')
			want = c - '0';
		else if (c >= 'a' && c <= 'f')
			want = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			want = c - 'A' + 10;
		assert_int_equal(coil_http1_hexval(c), want);
	}
}

static void test_tchar(void **state)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";
	unsigned n = 0;

	(void)state;
	for (int c = 0; c < 256; c++) {
		bool want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') ||
			    (c && memchr(extra, c, sizeof(extra) - 1));

		assert_int_equal(coil_http1_is_tchar((unsigned char)c), want);
		n += want;
	}
	assert_int_equal(n, 26 * 2 + 10 + sizeof(extra) - 1);
	/* separators and controls are not tokens */
	assert_false(coil_http1_is_tchar(':'));
	assert_false(coil_http1_is_tchar(' '));
	assert_false(coil_http1_is_tchar('"'));
	assert_false(coil_http1_is_tchar(0x7f));
}

static void test_put_u64(void **state)
{
	static const uint64_t v[] = {
		0, 1, 9, 10, 99, 100, 404, 65535, 4294967296ull,
		10000000000000000000ull, UINT64_MAX,
	};

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char got[24], want[24];
		char *end;

		memset(got, 'x', sizeof(got));
		end = coil_http1_put_u64(got, v[i]);
		snprintf(want, sizeof(want), "%" PRIu64, v[i]);
		assert_int_equal(end - got, strlen(want));
		assert_memory_equal(got, want, strlen(want));
		assert_int_equal(*end, 'x');   /* no NUL, nothing beyond */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hexval),
		cmocka_unit_test(test_tchar),
		cmocka_unit_test(test_put_u64),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
