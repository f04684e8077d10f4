/* SPDX-License-Identifier: MIT */
/* coil/pool.h through the fake backend: reuse (one connect, many gets),
 * the maximum size and the wait queue (FIFO, hand-over on put, timeout,
 * cancel), eviction of connections the peer closed or that are closing
 * (never handed out), the idle timeout, connect failures reaching the
 * waiter, and destroy failing the waiters. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <coil/coil.h>
#include <coil/pool.h>
#include <coil/testing.h>

#include <errno.h>
#include <string.h>

struct pstate {
	int tag;
	struct coil_pool_conn link;
};

static struct coil_fake *F;
static struct coil_pool *P;

static int p_open(struct coil_conn *c)
{
	struct pstate *s = coil_conn_state(c);

	coil_pool_opened(&s->link);
	return 0;
}

static size_t p_data(struct coil_conn *c, const uint8_t *d, size_t n)
{
	(void)c;
	(void)d;
	return n;
}

static void p_close(struct coil_conn *c, int reason)
{
	struct pstate *s = coil_conn_state(c);

	coil_pool_closed(&s->link, reason);
}

static const struct coil_proto_ops ops = {
	.on_open = p_open, .on_data = p_data, .on_close = p_close,
};

/* A waiter and what its callback got. */
struct waiter {
	struct coil_pool_wait w;
	int calls, err;
	struct coil_pool_conn *pc;
};

static void got(struct coil_pool_wait *w, struct coil_pool_conn *pc, int err)
{
	struct waiter *x = (struct waiter *)(void *)w;

	x->calls++;
	x->err = err;
	x->pc = pc;
}

static void mk(unsigned max, unsigned idle_ms, unsigned wait_ms)
{
	struct coil_service svc = { .sz = sizeof(svc), .addr = "127.0.0.1",
				    .port = 9, .ops = &ops,
				    .state_size = sizeof(struct pstate) };
	struct coil_pool_opts o = { .sz = sizeof(o), .service = 0,
				    .link_offset = offsetof(struct pstate, link),
				    .max_size = max, .idle_timeout_ms = idle_ms,
				    .wait_timeout_ms = wait_ms };

	assert_int_equal(coil_fake_create(NULL, &svc, &F), 0);
	assert_int_equal(coil_pool_create(coil_fake_loop(F), &o, &P), 0);
}

static void rm(void)
{
	coil_pool_destroy(P);
	coil_fake_destroy(F);
	P = NULL;
	F = NULL;
}

static struct coil_pool_stats stats(void)
{
	struct coil_pool_stats st;

	coil_pool_stats(P, &st);
	return st;
}

/* The oldest connect in progress completes; returns its fake id. */
static int connect_done(int res)
{
	int id = coil_fake_connecting(F);

	assert_true(id >= 0);
	assert_int_equal(coil_fake_connect_done(F, id, res), 0);
	return id;
}

static void test_reuse(void **st)
{
	struct waiter a = { 0 };
	struct coil_pool_conn *pc = NULL, *again = NULL;
	int id;

	(void)st;
	mk(4, 1000, 1000);
	assert_int_equal(coil_pool_get(P, &a.w, got, &pc), 0);
	assert_null(pc);
	id = connect_done(0);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.err, 0);
	assert_non_null(a.pc);
	assert_ptr_equal(coil_fake_conn(F, id), a.pc->conn);
	assert_int_equal(coil_conn_write(a.pc->conn, "ping", 4), 0);
	coil_pool_put(a.pc, true);
	for (int i = 0; i < 10; i++) {
		struct waiter b = { 0 };

		assert_int_equal(coil_pool_get(P, &b.w, got, &again), 1);
		assert_ptr_equal(again, a.pc);
		assert_int_equal(b.calls, 0);
		coil_pool_put(again, true);
	}
	assert_int_equal(stats().connects, 1);
	assert_int_equal(stats().gets, 11);
	assert_int_equal(stats().reuses, 10);
	assert_int_equal(stats().idle, 1);
	assert_int_equal(stats().busy, 0);
	assert_int_equal(coil_fake_connecting(F), -1);
	rm();
}

static void test_limit_and_queue(void **st)
{
	struct waiter w[4] = { 0 };
	struct coil_pool_conn *pc = NULL;

	(void)st;
	mk(2, 1000, 500);
	for (int i = 0; i < 4; i++)
		assert_int_equal(coil_pool_get(P, &w[i].w, got, &pc), 0);
	/* never more than max_size connections */
	assert_int_equal(stats().connecting, 2);
	assert_int_equal(stats().waiting, 4);
	connect_done(0);
	connect_done(0);
	assert_int_equal(coil_fake_connecting(F), -1);
	assert_int_equal(w[0].calls + w[1].calls, 2);
	assert_int_equal(w[2].calls + w[3].calls, 0);
	/* a connection put back goes to the first waiter at once */
	coil_pool_put(w[1].pc, true);
	assert_int_equal(w[2].calls, 1);
	assert_ptr_equal(w[2].pc, w[1].pc);
	assert_int_equal(w[3].calls, 0);
	/* one not reusable is closed; its slot connects for the last waiter */
	coil_pool_put(w[0].pc, false);
	coil_fake_settle(F);
	assert_int_equal(stats().connects, 3);
	connect_done(0);
	assert_int_equal(w[3].calls, 1);
	assert_int_equal(w[3].err, 0);
	assert_int_equal(stats().reuses, 1);
	assert_int_equal(stats().busy, 2);
	rm();
}

static void test_wait_timeout_and_cancel(void **st)
{
	struct waiter a = { 0 }, b = { 0 }, c = { 0 };
	struct coil_pool_conn *pc = NULL;

	(void)st;
	mk(1, 10000, 100);
	assert_int_equal(coil_pool_get(P, &a.w, got, &pc), 0);
	connect_done(0);
	assert_int_equal(a.calls, 1);
	assert_int_equal(coil_pool_get(P, &b.w, got, &pc), 0);
	assert_int_equal(coil_pool_get(P, &c.w, got, &pc), 0);
	coil_pool_cancel(&c.w);
	coil_pool_cancel(&c.w);   /* harmless twice */
	coil_fake_advance(F, 99);
	assert_int_equal(b.calls, 0);
	coil_fake_advance(F, 1);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.err, -ETIMEDOUT);
	assert_null(b.pc);
	assert_int_equal(c.calls, 0);
	assert_int_equal(stats().wait_timeouts, 1);
	assert_int_equal(stats().waiting, 0);
	coil_pool_put(a.pc, true);
	assert_int_equal(c.calls, 0);
	assert_int_equal(stats().idle, 1);
	rm();
}

static void test_evict(void **st)
{
	struct waiter a = { 0 }, b = { 0 };
	struct coil_pool_conn *pc = NULL, *first;
	int id;

	(void)st;
	mk(4, 10000, 1000);
	assert_int_equal(coil_pool_get(P, &a.w, got, &pc), 0);
	id = connect_done(0);
	first = a.pc;
	coil_pool_put(first, true);
	/* the peer closes the idle connection: evicted */
	coil_fake_shutdown(F, id);
	coil_fake_settle(F);
	assert_int_equal(stats().evicted, 1);
	assert_int_equal(stats().idle, 0);
	assert_int_equal(coil_pool_get(P, &b.w, got, &pc), 0);
	id = connect_done(0);
	assert_int_equal(b.calls, 1);
	assert_int_equal(stats().connects, 2);
	/* one whose close is under way (its on_close not run yet) is not
	 * handed out either */
	coil_pool_put(b.pc, true);
	coil_conn_close(b.pc->conn);
	pc = NULL;
	memset(&a, 0, sizeof(a));
	assert_int_equal(coil_pool_get(P, &a.w, got, &pc), 0);
	assert_null(pc);
	assert_int_equal(stats().evicted, 2);
	coil_fake_settle(F);
	assert_true(coil_fake_closed(F, id, NULL, NULL));
	connect_done(0);
	assert_int_equal(a.calls, 1);
	assert_int_equal(stats().reuses, 0);
	rm();
}

static void test_idle_timeout(void **st)
{
	struct waiter a = { 0 };
	struct coil_pool_conn *pc = NULL;
	int id;

	(void)st;
	mk(4, 300, 1000);
	assert_int_equal(coil_pool_get(P, &a.w, got, &pc), 0);
	id = connect_done(0);
	coil_pool_put(a.pc, true);
	coil_fake_advance(F, 299);
	assert_false(coil_fake_closed(F, id, NULL, NULL));
	coil_fake_advance(F, 2);
	assert_true(coil_fake_closed(F, id, NULL, NULL));
	assert_int_equal(stats().idle_closed, 1);
	assert_int_equal(stats().idle, 0);
	rm();
}

/* A connection taken from idle and put back: the idle timer armed for
 * its first idle spell fires early, finds it not due and waits for its
 * new idle spell; a get that empties the idle list leaves the timer to
 * find nothing. */
static void test_idle_timeout_after_reuse(void **st)
{
	struct waiter a = { 0 }, b = { 0 };
	struct coil_pool_conn *pc = NULL, *again = NULL;
	int id;

	(void)st;
	mk(4, 300, 1000);
	assert_int_equal(coil_pool_get(P, &a.w, got, &pc), 0);
	id = connect_done(0);
	coil_pool_put(a.pc, true);              /* idle since 0 */
	coil_fake_advance(F, 200);
	assert_int_equal(coil_pool_get(P, &b.w, got, &again), 1);
	assert_ptr_equal(again, a.pc);
	coil_fake_advance(F, 50);
	coil_pool_put(again, true);             /* idle since 250 */
	coil_fake_advance(F, 299);              /* 549: past the first due */
	assert_false(coil_fake_closed(F, id, NULL, NULL));
	assert_int_equal(stats().idle, 1);
	assert_int_equal(coil_pool_get(P, &b.w, got, &again), 1);
	coil_fake_advance(F, 400);              /* busy: never idle-closed */
	assert_false(coil_fake_closed(F, id, NULL, NULL));
	coil_pool_put(again, true);             /* idle since 949 */
	coil_fake_advance(F, 299);
	assert_false(coil_fake_closed(F, id, NULL, NULL));
	coil_fake_advance(F, 2);
	assert_true(coil_fake_closed(F, id, NULL, NULL));
	assert_int_equal(stats().idle_closed, 1);
	assert_int_equal(stats().reuses, 2);
	rm();
}

/* The pool outlives its engine (allowed: "after the engine is gone"): a
 * get that emptied the idle list left the idle timer armed, and the
 * connection's close must take it off the loop's wheel before the loop
 * is freed (ASan reports the destroy touching freed memory otherwise). */
static void test_destroy_after_engine(void **st)
{
	struct waiter a = { 0 }, b = { 0 };
	struct coil_pool_conn *pc = NULL, *again = NULL;
	int id;

	(void)st;
	mk(4, 1000, 1000);
	assert_int_equal(coil_pool_get(P, &a.w, got, &pc), 0);
	id = connect_done(0);
	coil_pool_put(a.pc, true);
	assert_int_equal(coil_pool_get(P, &b.w, got, &again), 1);
	coil_fake_reset(F, id);                 /* closes while busy */
	coil_fake_settle(F);
	assert_int_equal(stats().busy, 0);
	coil_fake_destroy(F);
	F = NULL;
	coil_pool_destroy(P);
	P = NULL;
}

static void test_connect_fails_and_destroy(void **st)
{
	struct waiter a = { 0 }, b = { 0 };
	struct coil_pool_conn *pc = NULL;

	(void)st;
	mk(1, 1000, 1000);
	assert_int_equal(coil_pool_get(P, &a.w, got, &pc), 0);
	assert_int_equal(coil_pool_get(P, &b.w, got, &pc), 0);
	connect_done(-ECONNREFUSED);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.err, -ECONNREFUSED);
	assert_int_equal(stats().connect_errors, 1);
	/* the slot is free again: the next waiter gets a connect of its own */
	assert_int_equal(stats().connecting, 1);
	assert_int_equal(b.calls, 0);
	coil_pool_destroy(P);
	P = NULL;
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.err, -ECANCELED);
	coil_fake_settle(F);
	coil_fake_destroy(F);
	F = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reuse),
		cmocka_unit_test(test_limit_and_queue),
		cmocka_unit_test(test_wait_timeout_and_cancel),
		cmocka_unit_test(test_evict),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_idle_timeout_after_reuse),
		cmocka_unit_test(test_destroy_after_engine),
		cmocka_unit_test(test_connect_fails_and_destroy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
