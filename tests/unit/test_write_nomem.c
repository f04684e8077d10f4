/* SPDX-License-Identifier: MIT */
/*
 * coil_conn_write, _write_ref and _write_static when memory runs out (the
 * loop's send slabs are used up and malloc fails, forced here with
 * -Wl,--wrap=malloc): the call returns -ENOMEM having aborted the
 * connection, the handle stays valid, every later write returns -EPIPE,
 * close is a no-op, and on_close follows (not from inside the write) with
 * -ENOMEM and a reset, as coil/conn.h says.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

/* ---- malloc that fails on demand (linked with --wrap=malloc) ---- */
void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);
static bool malloc_fails;
static unsigned malloc_failed;

void *__wrap_malloc(size_t n)
{
	if (malloc_fails) {
		malloc_failed++;
		return NULL;
	}
	return __real_malloc(n);
}

/* ---- a protocol that records what the calls returned ---- */
enum { MODE_NONE, MODE_REF };
static int mode;
static int closes, close_reason;
static int ref_ret, ref_after, ref_count;

static size_t p_data(struct coil_conn *c, const uint8_t *d, size_t n)
{
	if (mode != MODE_REF)
		return n;
	/* One byte at every other offset: no segment can extend the last. */
	malloc_fails = true;
	for (size_t i = 0; i < n; i += 2) {
		int r = coil_conn_write_ref(c, d + i, 1);

		if (r) {
			ref_ret = r;
			ref_after = coil_conn_write_ref(c, d, 1);
			break;
		}
		ref_count++;
	}
	malloc_fails = false;
	return n;
}

static void p_close(struct coil_conn *c, int reason)
{
	(void)c;
	closes++;
	close_reason = reason;
}

static const struct coil_proto_ops ops = { .on_data = p_data,
					   .on_close = p_close };

static struct coil_fake *fake_new(unsigned buf_size, int *id)
{
	struct coil_service svc = { .sz = sizeof(svc), .ops = &ops };
	struct coil_fake_opts fo = { .sz = sizeof(fo), .bufs = 64,
				     .buf_size = buf_size };
	struct coil_fake *f;

	mode = MODE_NONE;
	closes = close_reason = ref_ret = ref_after = ref_count = 0;
	malloc_failed = 0;
	assert_int_equal(coil_fake_create(&fo, &svc, &f), 0);
	*id = coil_fake_connect(f);
	assert_true(*id >= 0);
	/* The peer reads nothing: what is written stays queued. */
	coil_fake_set_send(f, *id, 0, true);
	return f;
}

/* What the contract promises after -ENOMEM. */
static void check_after(struct coil_fake *f, int id, struct coil_conn *c)
{
	static const char x[] = "x";
	bool reset = false;
	int reason = 0;

	/* The handle is valid until on_close, which has not run yet. */
	assert_int_equal(closes, 0);
	assert_non_null(coil_conn_state(c));
	assert_int_equal(coil_conn_write(c, x, 1), -EPIPE);
	assert_int_equal(coil_conn_write_static(c, x, 1), -EPIPE);
	assert_int_equal(coil_conn_write_ref(c, x, 1), -EPIPE);
	coil_conn_close(c);     /* no-op */
	coil_fake_set_send(f, id, 0, false);
	coil_fake_settle(f);
	assert_int_equal(closes, 1);
	assert_int_equal(close_reason, -ENOMEM);
	assert_true(coil_fake_closed(f, id, &reason, &reset));
	assert_true(reset);     /* aborted: queued output dropped */
	assert_int_equal(coil_fake_pending(f, id), 0);
	coil_fake_destroy(f);
	assert_int_equal(closes, 1);
}

static void test_write_nomem(void **state)
{
	size_t len = 4u << 20;   /* more than the loop's send chunks */
	uint8_t *buf = calloc(1, len);
	struct coil_conn *c;
	struct coil_fake *f;
	int id, r;

	(void)state;
	assert_non_null(buf);
	f = fake_new(4096, &id);
	c = coil_fake_conn(f, id);
	malloc_fails = true;
	r = coil_conn_write(c, buf, len);
	malloc_fails = false;
	assert_int_equal(r, -ENOMEM);
	assert_true(malloc_failed > 0);
	check_after(f, id, c);
	free(buf);
}

static void test_write_static_nomem(void **state)
{
	static uint8_t mem[1u << 16];
	struct coil_conn *c;
	struct coil_fake *f;
	int id, r = 0;
	size_t i;

	(void)state;
	f = fake_new(4096, &id);
	c = coil_fake_conn(f, id);
	malloc_fails = true;
	/* One byte at every other offset: each needs a segment of its own,
	 * and there are more than the slab holds. */
	for (i = 0; i < sizeof(mem) && !r; i += 2)
		r = coil_conn_write_static(c, mem + i, 1);
	malloc_fails = false;
	assert_int_equal(r, -ENOMEM);
	assert_true(i < sizeof(mem));
	check_after(f, id, c);
}

static void test_write_ref_nomem(void **state)
{
	static uint8_t in[16384];
	struct coil_fake *f;
	struct coil_conn *c;
	int id;

	(void)state;
	f = fake_new(sizeof(in), &id);
	c = coil_fake_conn(f, id);
	mode = MODE_REF;
	assert_int_equal(coil_fake_queue(f, id, in, sizeof(in)), 0);
	coil_fake_turn(f);
	mode = MODE_NONE;
	assert_true(ref_count > 0);
	assert_int_equal(ref_ret, -ENOMEM);
	assert_int_equal(ref_after, -EPIPE);
	check_after(f, id, c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_nomem),
		cmocka_unit_test(test_write_static_nomem),
		cmocka_unit_test(test_write_ref_nomem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
