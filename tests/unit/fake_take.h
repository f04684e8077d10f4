/* SPDX-License-Identifier: MIT */
/* What a fake connection's peer received, as a string: for the tests that
 * read HTTP responses back (test_httpd.c, test_http_async.c). */
#ifndef COIL_TEST_FAKE_TAKE_H
#define COIL_TEST_FAKE_TAKE_H

#include <coil/testing.h>

#include <stddef.h>

/* Everything sent on `id` since the last take, into `out` (`cap` bytes,
 * NUL-terminated, so at most cap - 1 of them); returns the count. */
static inline size_t fake_take_str(struct coil_fake *f, int id, char *out,
				   size_t cap)
{
	size_t n = coil_fake_take(f, id, out, cap - 1);

	out[n] = 0;
	return n;
}

#endif
