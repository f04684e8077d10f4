/* SPDX-License-Identifier: MIT */
/*
 * The backend-independent part of UDP services (core/udp.c): send slots
 * (copy, bounded pool, exhaustion, bad address families), delivery and
 * counters, coil_udp_send's checks. The socket backends themselves are
 * covered by tests/integration/udp_echo.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "core/internal.h"
#include "backend/backend.h"

static unsigned seen;
static size_t seen_len;
static uint16_t seen_port;

static void on_dgram(struct coil_udp *u, const struct coil_dgram *d)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)d->peer;

	(void)u;
	seen++;
	seen_len = d->len;
	seen_port = ntohs(sin->sin_port);
}

static const struct coil_udp_ops ops = { .on_datagram = on_dgram };

static void test_tx_slots(void **state)
{
	struct coil_udp_service svc = { .sz = sizeof(svc), .ops = &ops,
					 .bufs = 4, .max_datagram = 100 };
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9) };
	struct sockaddr bad = { .sa_family = AF_UNIX };
	struct coil__udp_tx *t[5];
	static struct coil_loop loop;
	struct coil_udp u;
	uint8_t data[100];
	int err;

	(void)state;
	memset(data, 0x5a, sizeof(data));
	assert_int_equal(coil__udp_init(&u, &loop, &svc, 0, 1000, 7), 0);
	u.fd = -1;   /* not a real socket: nothing to close */
	for (int i = 0; i < 4; i++) {
		t[i] = coil__udp_tx_get(&u, (struct sockaddr *)&to, sizeof(to),
					data, (size_t)(i + 1) * 10, &err);
		assert_non_null(t[i]);
		assert_int_equal(t[i]->iov.iov_len, (size_t)(i + 1) * 10);
		assert_memory_equal(t[i]->iov.iov_base, data, (size_t)(i + 1) * 10);
		assert_ptr_equal(t[i]->msg.msg_name, &t[i]->to);
		assert_int_equal(t[i]->msg.msg_namelen, sizeof(to));
	}
	/* the copy is the slot's own: the caller's buffer may change */
	data[0] = 0;
	assert_int_equal(((uint8_t *)t[3]->iov.iov_base)[0], 0x5a);
	/* pool exhausted: -ENOBUFS, counted */
	assert_null(coil__udp_tx_get(&u, (struct sockaddr *)&to, sizeof(to),
				     data, 1, &err));
	assert_int_equal(err, -ENOBUFS);
	assert_int_equal(u.tx_dropped, 1);
	/* a finished send frees its slot */
	coil__udp_tx_done(t[1], 20);
	coil__udp_tx_done(t[2], -ENETUNREACH);
	assert_int_equal(u.tx_dgrams, 1);
	assert_int_equal(u.tx_bytes, 20);
	assert_int_equal(u.tx_dropped, 2);
	t[4] = coil__udp_tx_get(&u, (struct sockaddr *)&to, sizeof(to), data,
				5, &err);
	assert_non_null(t[4]);
	/* not IPv4/IPv6 */
	assert_null(coil__udp_tx_get(&u, &bad, sizeof(bad), data, 1, &err));
	assert_int_equal(err, -EAFNOSUPPORT);
	coil__udp_tx_done(t[0], 10);
	coil__udp_tx_done(t[3], 40);
	coil__udp_tx_done(t[4], 5);
	assert_int_equal(u.txpool.nfree, 4);

	/* delivery counts and hands the view over */
	coil__udp_deliver(&u, data, 33, (struct sockaddr *)&to, sizeof(to));
	assert_int_equal(seen, 1);
	assert_int_equal(seen_len, 33);
	assert_int_equal(seen_port, 9);
	assert_int_equal(u.rx_dgrams, 1);
	assert_int_equal(u.rx_bytes, 33);
	coil__udp_fini(&u);
}

static void test_send_checks(void **state)
{
	struct coil_udp_service svc = { .sz = sizeof(svc), .ops = &ops,
					 .max_datagram = 64 };
	struct sockaddr_in to = { .sin_family = AF_INET };
	static struct coil_loop loop;
	struct coil_udp u;
	uint8_t data[65] = { 0 };
	static const struct coil__backend_ops no_udp = { .name = "no-udp" };

	(void)state;
	loop.be = &no_udp;   /* a backend without UDP (the fake has none) */
	assert_int_equal(coil__udp_init(&u, &loop, &svc, 0, -1, 7), 0);
	assert_int_equal(coil_udp_send(&u, (struct sockaddr *)&to, sizeof(to),
				       data, 65), -EMSGSIZE);
	assert_int_equal(coil_udp_send(&u, (struct sockaddr *)&to, sizeof(to),
				       data, 64), -EOPNOTSUPP);
	assert_ptr_equal(coil_udp_loop(&u), &loop);
	coil__udp_fini(&u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tx_slots),
		cmocka_unit_test(test_send_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
