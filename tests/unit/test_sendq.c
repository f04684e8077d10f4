/* SPDX-License-Identifier: MIT */
/* The send queue: order across copy/ref/static writes, one send per turn
 * (coalescing), short sends continued from the right offset, the high-water
 * mark pausing input and on_drain resuming it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/internal.h"
#include "fake_util.h"

static const char *STATIC_MSG = "static-bytes|";

/* A protocol that, per input byte 'c'/'r'/'s', writes a copied, referenced
 * or static chunk, then echoes the whole input by reference. */
static size_t mix_data(struct coil_conn *c, const uint8_t *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (d[i] == 'c')
			coil_conn_write(c, "copy|", 5);
		else if (d[i] == 's')
			coil_conn_write_static(c, STATIC_MSG, strlen(STATIC_MSG));
		else if (d[i] == 'r')
			coil_conn_write_ref(c, d + i, 1);
	}
	return n;
}
static const struct coil_proto_ops mix_ops = { .on_data = mix_data };

static void test_order_and_coalesce(void **st)
{
	struct coil_service svc = { .sz = sizeof(svc), .ops = &mix_ops };
	struct coil_fake *f;
	char out[256];
	size_t n;
	int id;

	(void)st;
	assert_int_equal(coil_fake_create(NULL, &svc, &f), 0);
	id = coil_fake_connect(f);
	assert_true(id >= 0);
	assert_int_equal(coil_fake_feed(f, id, "crscrs", 6), 0);
	n = coil_fake_take(f, id, out, sizeof(out));
	out[n] = 0;
	assert_string_equal(out, "copy|rstatic-bytes|copy|rstatic-bytes|");
	/* six writes of three kinds, one send */
	assert_int_equal(coil_fake_sends(f, id), 1);
	coil_fake_destroy(f);
}

/* Echo by reference; the stream must come back intact. */
static size_t echo_data(struct coil_conn *c, const uint8_t *d, size_t n)
{
	coil_conn_write_ref(c, d, n);
	return n;
}
static void drained(struct coil_conn *c)
{
	(*(int *)coil_conn_service_data(c))++;
}
static const struct coil_proto_ops echo_ops = { .on_data = echo_data,
						.on_drain = drained };

static void test_short_sends(void **st)
{
	struct coil_service svc = { .sz = sizeof(svc), .ops = &echo_ops };
	struct coil_fake_opts fo = { .sz = sizeof(fo), .bufs = 16, .buf_size = 512 };
	static uint8_t in[64 * 1024], out[64 * 1024];
	struct coil_fake *f;
	size_t got = 0;
	int id;

	(void)st;
	assert_int_equal(coil_fake_create(&fo, &svc, &f), 0);
	id = coil_fake_connect(f);
	stream_fill(in, 7, 0, sizeof(in));
	/* every send accepts 333 bytes: short sends all the time */
	coil_fake_set_send(f, id, 333, false);
	for (size_t off = 0; off < sizeof(in); off += 5000) {
		size_t n = sizeof(in) - off < 5000 ? sizeof(in) - off : 5000;

		assert_int_equal(coil_fake_feed(f, id, in + off, n), 0);
		got += coil_fake_take(f, id, out + got, sizeof(out) - got);
	}
	coil_fake_settle(f);
	got += coil_fake_take(f, id, out + got, sizeof(out) - got);
	assert_int_equal(got, sizeof(in));
	assert_int_equal(stream_check(out, 7, 0, got), -1);
	assert_true(coil_fake_sends(f, id) >= sizeof(in) / 333);
	/* every receive buffer came back */
	assert_int_equal(coil_fake_free_bufs(f), 16);
	coil_fake_destroy(f);
}

static void test_high_water(void **st)
{
	int drains = 0;
	struct coil_service svc = { .sz = sizeof(svc), .ops = &echo_ops,
				    .write_high_water = 4096, .data = &drains };
	struct coil_fake_opts fo = { .sz = sizeof(fo), .bufs = 64, .buf_size = 1024 };
	static uint8_t in[32 * 1024], out[32 * 1024];
	struct coil_fake *f;
	struct coil_conn *c;
	size_t got;
	int id;

	(void)st;
	assert_int_equal(coil_fake_create(&fo, &svc, &f), 0);
	id = coil_fake_connect(f);
	c = coil_fake_conn(f, id);
	stream_fill(in, 99, 0, sizeof(in));
	/* the peer stops reading */
	coil_fake_set_send(f, id, 0, true);
	assert_int_equal(coil_fake_feed(f, id, in, sizeof(in)), 0);
	/* reading paused near the mark: queued output stays bounded */
	assert_true(coil_conn_queued(c) > 4096);
	assert_true(coil_conn_queued(c) <= 4096 + 1024);
	assert_int_equal(drains, 0);
	/* the peer reads again: everything arrives, in order, and on_drain ran */
	coil_fake_set_send(f, id, 0, false);
	got = coil_fake_take(f, id, out, sizeof(out));
	assert_int_equal(got, sizeof(in));
	assert_int_equal(stream_check(out, 99, 0, got), -1);
	assert_true(drains >= 1);
	assert_int_equal(coil_conn_queued(c), 0);
	coil_fake_destroy(f);
}

static void test_large_copy(void **st)
{
	/* A copied write larger than many chunks, interleaved with refs. */
	struct coil_service svc = { .sz = sizeof(svc), .ops = &mix_ops };
	static uint8_t big[200 * 1024], out[300 * 1024];
	struct coil_fake *f;
	struct coil_conn *c;
	size_t got;
	int id;

	(void)st;
	assert_int_equal(coil_fake_create(NULL, &svc, &f), 0);
	id = coil_fake_connect(f);
	c = coil_fake_conn(f, id);
	stream_fill(big, 3, 0, sizeof(big));
	coil_fake_set_send(f, id, 0, true);
	assert_int_equal(coil_conn_write(c, big, sizeof(big)), 0);
	assert_int_equal(coil_conn_write_static(c, "END", 3), 0);
	assert_int_equal(coil_conn_queued(c), sizeof(big) + 3);
	coil_fake_set_send(f, id, 7000, false);
	got = coil_fake_take(f, id, out, sizeof(out));
	assert_int_equal(got, sizeof(big) + 3);
	assert_int_equal(stream_check(out, 3, 0, sizeof(big)), -1);
	assert_memory_equal(out + sizeof(big), "END", 3);
	coil_fake_destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_coalesce),
		cmocka_unit_test(test_short_sends),
		cmocka_unit_test(test_high_water),
		cmocka_unit_test(test_large_copy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
