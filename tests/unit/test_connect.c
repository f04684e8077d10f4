/* SPDX-License-Identifier: MIT */
/* Outgoing connections (coil_loop_connect) through the fake backend: a
 * connect that succeeds (on_open, then data both ways), one that fails
 * (on_close with the error, no on_open), one closed while connecting (the
 * connect is cancelled: on_close(LOCAL)), writes queued before the
 * connection is up, reconnecting from on_close, and bad arguments. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "core/internal.h"

struct cstate {
	int opened;
	int tag;
};
static int opens, closes, last_reason, reconnects_left, data_bytes;
static struct coil_conn *reconnected;

static int c_open(struct coil_conn *c)
{
	struct cstate *s = coil_conn_state(c);

	s->opened = 1;
	opens++;
	return 0;
}

static size_t c_data(struct coil_conn *c, const uint8_t *d, size_t n)
{
	(void)c;
	(void)d;
	data_bytes += (int)n;
	return n;
}

static void c_close(struct coil_conn *c, int reason)
{
	closes++;
	last_reason = reason;
	if (reconnects_left > 0) {
		reconnects_left--;
		assert_int_equal(coil_loop_connect(coil_conn_loop(c), 0,
						   &reconnected), 0);
	}
}

static const struct coil_proto_ops ops = {
	.on_open = c_open, .on_data = c_data, .on_close = c_close,
};

static struct coil_fake *fake_new(void)
{
	struct coil_service svc = { .sz = sizeof(svc), .addr = "127.0.0.1",
				    .port = 9, .ops = &ops,
				    .state_size = sizeof(struct cstate) };
	struct coil_fake *f;

	opens = closes = last_reason = reconnects_left = data_bytes = 0;
	reconnected = NULL;
	assert_int_equal(coil_fake_create(NULL, &svc, &f), 0);
	return f;
}

static void test_connect_ok(void **state)
{
	struct coil_fake *f = fake_new();
	struct coil_conn *c;
	char buf[32];
	int id;

	(void)state;
	assert_int_equal(coil_fake_connecting(f), -1);
	assert_int_equal(coil_loop_connect(coil_fake_loop(f), 0, &c), 0);
	((struct cstate *)coil_conn_state(c))->tag = 42;
	/* queued before the connection is up: nothing goes out yet */
	assert_int_equal(coil_conn_write(c, "early", 5), 0);
	coil_fake_settle(f);
	id = coil_fake_connecting(f);
	assert_true(id >= 0);
	assert_int_equal(opens, 0);
	assert_int_equal(coil_fake_sends(f, id), 0);
	assert_int_equal(coil_fake_connect_done(f, id, 0), 0);
	assert_int_equal(opens, 1);
	assert_int_equal(coil_fake_connecting(f), -1);
	/* the state filled in before on_open is still there */
	assert_int_equal(((struct cstate *)coil_conn_state(c))->tag, 42);
	assert_int_equal(coil_fake_take(f, id, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "early", 5);
	assert_int_equal(coil_fake_feed(f, id, "reply", 5), 0);
	assert_int_equal(data_bytes, 5);
	/* completing it twice is refused */
	assert_int_equal(coil_fake_connect_done(f, id, 0), -EINVAL);
	coil_fake_shutdown(f, id);
	assert_int_equal(closes, 1);
	assert_int_equal(last_reason, COIL_CLOSE_PEER);
	coil_fake_destroy(f);
}

static void test_connect_fails(void **state)
{
	struct coil_fake *f = fake_new();
	struct coil_conn *c;
	bool reset;
	int id, reason;

	(void)state;
	assert_int_equal(coil_loop_connect(coil_fake_loop(f), 0, &c), 0);
	id = coil_fake_connecting(f);
	assert_int_equal(coil_fake_connect_done(f, id, 1), -EINVAL);
	assert_int_equal(coil_fake_connect_done(f, id, -ECONNREFUSED), 0);
	assert_int_equal(opens, 0);
	assert_int_equal(closes, 1);
	assert_int_equal(last_reason, -ECONNREFUSED);
	assert_true(coil_fake_closed(f, id, &reason, &reset));
	assert_int_equal(reason, -ECONNREFUSED);
	assert_null(coil_fake_conn(f, id));
	coil_fake_destroy(f);
}

static void test_close_while_connecting(void **state)
{
	struct coil_fake *f = fake_new();
	struct coil_conn *c;

	(void)state;
	assert_int_equal(coil_loop_connect(coil_fake_loop(f), 0, &c), 0);
	coil_conn_close(c);
	coil_fake_settle(f);
	/* the connect was cancelled and reported; the close ran once */
	assert_int_equal(opens, 0);
	assert_int_equal(closes, 1);
	assert_int_equal(last_reason, COIL_CLOSE_LOCAL);
	assert_int_equal(coil_fake_connecting(f), -1);
	assert_int_equal(coil_fake_loop(f)->nconns, 0);
	coil_fake_destroy(f);
}

static void test_reconnect_from_on_close(void **state)
{
	struct coil_fake *f = fake_new();
	struct coil_conn *c;
	int id;

	(void)state;
	reconnects_left = 1;
	assert_int_equal(coil_loop_connect(coil_fake_loop(f), 0, &c), 0);
	id = coil_fake_connecting(f);
	assert_int_equal(coil_fake_connect_done(f, id, -ETIMEDOUT), 0);
	assert_int_equal(closes, 1);
	assert_non_null(reconnected);
	id = coil_fake_connecting(f);
	assert_true(id >= 0);
	assert_int_equal(coil_fake_connect_done(f, id, 0), 0);
	assert_int_equal(opens, 1);
	assert_ptr_equal(coil_fake_conn(f, id), reconnected);
	assert_int_equal(coil_fake_loop(f)->nconns, 1);
	coil_fake_destroy(f);   /* aborts it: on_close runs */
	assert_int_equal(closes, 2);
}

static void test_bad_args(void **state)
{
	struct coil_fake *f = fake_new();
	struct coil_conn *c = NULL;

	(void)state;
	assert_int_equal(coil_loop_connect(coil_fake_loop(f), 1, &c), -EINVAL);
	assert_int_equal(coil_loop_connect(coil_fake_loop(f), -1, &c), -EINVAL);
	assert_null(c);
	coil_fake_destroy(f);
}

static void test_engine_client_args(void **state)
{
	struct coil_engine_opts eo = { .sz = sizeof(eo), .cores = 1 };
	struct coil_service svc = { .sz = sizeof(svc), .addr = "127.0.0.1",
				    .port = 0, .ops = &ops };
	struct coil_engine *eng;

	(void)state;
	assert_int_equal(coil_engine_create(&eo, &eng), 0);
	assert_int_equal(coil_engine_client(eng, &svc), -EINVAL);   /* port 0 */
	svc.port = 80;
	svc.addr = "not-an-address";
	assert_int_equal(coil_engine_client(eng, &svc), -EINVAL);
	svc.addr = "::1";
	assert_int_equal(coil_engine_client(eng, &svc), 0);
	coil_engine_destroy(eng);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_ok),
		cmocka_unit_test(test_connect_fails),
		cmocka_unit_test(test_close_while_connecting),
		cmocka_unit_test(test_reconnect_from_on_close),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_engine_client_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
