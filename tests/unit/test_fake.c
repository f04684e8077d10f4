/* SPDX-License-Identifier: MIT */
/* The fake backend's edges with nothing to copy: coil_fake_feed/queue of
 * zero bytes from a NULL pointer, coil_fake_take into a NULL buffer of
 * capacity 0 (before and after something was sent), and a zero-length
 * write. Registered with UBSAN_OPTIONS=halt_on_error=1 so that a memcpy
 * from or to NULL fails the test under -Db_sanitize=undefined. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <coil/coil.h>
#include <coil/testing.h>

static size_t on_data(struct coil_conn *c, const uint8_t *d, size_t n)
{
	coil_conn_write(c, d, n);      /* echo */
	return n;
}

static const struct coil_proto_ops ops = { .on_data = on_data };
static const struct coil_service svc = { .sz = sizeof(svc), .ops = &ops };

static void test_empty(void **st)
{
	struct coil_fake_opts o = { .sz = sizeof(o) };
	struct coil_fake *f;
	char out[8];
	int id;

	(void)st;
	assert_int_equal(coil_fake_create(&o, &svc, &f), 0);
	id = coil_fake_connect(f);
	assert_true(id >= 0);
	assert_int_equal(coil_fake_feed(f, id, NULL, 0), 0);
	assert_int_equal(coil_fake_queue(f, id, NULL, 0), 0);
	assert_int_equal(coil_fake_take(f, id, NULL, 0), 0);
	assert_int_equal(coil_fake_take(f, id, out, sizeof(out)), 0);
	assert_int_equal(coil_fake_feed(f, id, "hi", 2), 0);
	coil_fake_settle(f);
	assert_int_equal(coil_fake_take(f, id, NULL, 0), 0);
	assert_int_equal(coil_fake_take(f, id, out, sizeof(out)), 2);
	assert_memory_equal(out, "hi", 2);
	coil_fake_destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
