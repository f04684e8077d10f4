/* SPDX-License-Identifier: MIT */
/*
 * coil__conn_recv_failed(): how a backend reports a receive that failed
 * ahead of its end (backend.h: the backend reports, the core decides flags
 * and close reasons). Input delivered after it is discarded, the
 * connection aborts with the error as its reason (a reason already set
 * wins), and the receive still ends through coil__conn_recv_done().
 * Driven through the fake backend, calling the core as io_uring's reap
 * does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>

#include "core/internal.h"

static size_t seen;
static int closes, reason;

static size_t p_data(struct coil_conn *c, const uint8_t *d, size_t n)
{
	(void)c;
	(void)d;
	seen += n;
	return n;
}

static void p_close(struct coil_conn *c, int r)
{
	(void)c;
	closes++;
	reason = r;
}

static const struct coil_proto_ops ops = { .on_data = p_data,
					   .on_close = p_close };

static struct coil_fake *setup(int *id)
{
	struct coil_service svc = { .sz = sizeof(svc), .ops = &ops };
	struct coil_fake *f;

	seen = 0;
	closes = reason = 0;
	assert_int_equal(coil_fake_create(NULL, &svc, &f), 0);
	*id = coil_fake_connect(f);
	assert_true(*id >= 0);
	assert_int_equal(coil_fake_feed(f, *id, "abc", 3), 0);
	assert_int_equal(seen, 3);
	return f;
}

static void test_failed_discards_and_aborts(void **state)
{
	struct coil_fake *f;
	struct coil_conn *c;
	bool reset = false;
	int id, r = 0;

	(void)state;
	f = setup(&id);
	c = coil_fake_conn(f, id);
	/* What reap does for a reset seen behind data in the same batch. */
	coil__conn_recv_failed(c, -ECONNRESET);
	assert_true(c->flags & CONN_DOOMED);
	assert_int_equal(closes, 0);     /* decided now, done at the flush */
	assert_int_equal(coil_conn_write(c, "x", 1), -EPIPE);
	/* The data ahead of the error in that batch is not delivered. */
	coil__conn_recv(c, (const uint8_t *)"late", 4, -1);
	assert_int_equal(seen, 3);
	coil_fake_settle(f);
	assert_int_equal(closes, 1);
	assert_int_equal(reason, -ECONNRESET);
	assert_true(coil_fake_closed(f, id, &r, &reset));
	assert_true(reset);
	coil_fake_destroy(f);
}

static void test_failed_keeps_first_reason(void **state)
{
	struct coil_fake *f;
	struct coil_conn *c;
	int id;

	(void)state;
	f = setup(&id);
	c = coil_fake_conn(f, id);
	coil__conn_recv_failed(c, -EIO);
	coil__conn_recv_failed(c, -ECONNRESET);
	coil_fake_settle(f);
	assert_int_equal(closes, 1);
	assert_int_equal(reason, -EIO);
	coil_fake_destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failed_discards_and_aborts),
		cmocka_unit_test(test_failed_keeps_first_reason),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
