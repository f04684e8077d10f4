/* SPDX-License-Identifier: MIT */
/*
 * The engine's service tables: one error, -ENOSPC, for "too many services"
 * from coil_engine_listen, coil_engine_client and coil_engine_udp alike
 * (listen and client used to say -EINVAL, udp -ENOSPC), distinct from the
 * -EINVAL of a bad service.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>

#include <coil/coil.h>

static size_t sink(struct coil_conn *c, const uint8_t *d, size_t n)
{
	(void)c;
	(void)d;
	return n;
}

static void dgram(struct coil_udp *u, const struct coil_dgram *d)
{
	(void)u;
	(void)d;
}

static const struct coil_proto_ops ops = { .on_data = sink };
static const struct coil_udp_ops uops = { .on_datagram = dgram };

static struct coil_engine *engine_new(void)
{
	struct coil_engine_opts eo = { .sz = sizeof(eo), .cores = 1,
				       .backend = COIL_BACKEND_EPOLL };
	struct coil_engine *eng;

	assert_int_equal(coil_engine_create(&eo, &eng), 0);
	return eng;
}

static void test_tcp_services_full(void **state)
{
	struct coil_service cl = { .sz = sizeof(cl), .addr = "127.0.0.1",
				   .port = 9, .ops = &ops };
	struct coil_service ls = { .sz = sizeof(ls), .addr = "127.0.0.1",
				   .ops = &ops };
	struct coil_service bad = { .sz = sizeof(bad), .addr = "127.0.0.1" };
	struct coil_engine *eng = engine_new();

	(void)state;
	/* one table for listeners and clients */
	assert_int_equal(coil_engine_listen(eng, &ls), 0);
	for (int i = 1; i < COIL_ENGINE_MAX_SERVICES; i++)
		assert_int_equal(coil_engine_client(eng, &cl), i);
	assert_int_equal(coil_engine_client(eng, &cl), -ENOSPC);
	assert_int_equal(coil_engine_listen(eng, &ls), -ENOSPC);
	/* a bad service is still -EINVAL, full or not */
	assert_int_equal(coil_engine_client(eng, &bad), -EINVAL);
	assert_int_equal(coil_engine_listen(eng, &bad), -EINVAL);
	coil_engine_destroy(eng);

	eng = engine_new();
	for (int i = 0; i < COIL_ENGINE_MAX_SERVICES; i++)
		assert_int_equal(coil_engine_listen(eng, &ls), i);
	assert_int_equal(coil_engine_listen(eng, &ls), -ENOSPC);
	assert_int_equal(coil_engine_client(eng, &cl), -ENOSPC);
	coil_engine_destroy(eng);
}

static void test_udp_services_full(void **state)
{
	struct coil_udp_service us = { .sz = sizeof(us), .addr = "127.0.0.1",
				       .ops = &uops, .bufs = 8 };
	struct coil_udp_service bad = { .sz = sizeof(bad) };
	struct coil_service ls = { .sz = sizeof(ls), .addr = "127.0.0.1",
				   .ops = &ops };
	struct coil_engine *eng = engine_new();

	(void)state;
	for (int i = 0; i < COIL_ENGINE_MAX_SERVICES; i++)
		assert_int_equal(coil_engine_udp(eng, &us), i);
	assert_int_equal(coil_engine_udp(eng, &us), -ENOSPC);
	assert_int_equal(coil_engine_udp(eng, &bad), -EINVAL);
	/* UDP services have their own table */
	assert_int_equal(coil_engine_listen(eng, &ls), 0);
	coil_engine_destroy(eng);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_services_full),
		cmocka_unit_test(test_udp_services_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
