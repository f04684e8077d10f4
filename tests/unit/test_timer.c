/* SPDX-License-Identifier: MIT */
/* The timing wheel: ordering, cancel, wrap-around, many timers, re-arming
 * from callbacks, the idle timeout it reports. Driven by the fake clock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

static size_t nop_data(struct coil_conn *c, const uint8_t *d, size_t n)
{
	(void)c;
	(void)d;
	return n;
}
static const struct coil_proto_ops nop_ops = { .on_data = nop_data };
static const struct coil_service nop_svc = { .sz = sizeof(nop_svc), .ops = &nop_ops };

struct rec {
	struct coil_timer t;
	uint64_t fired_at;
	int order;
	int id;
};

static int fire_seq;
static struct coil_loop *cur_loop;

static void rec_cb(struct coil_timer *t)
{
	struct rec *r = coil__container_of(t, struct rec, t);

	r->fired_at = coil_loop_now_ms(cur_loop);
	r->order = ++fire_seq;
}

static struct coil_fake *mk(void)
{
	struct coil_fake *f;

	assert_int_equal(coil_fake_create(NULL, &nop_svc, &f), 0);
	cur_loop = coil_fake_loop(f);
	fire_seq = 0;
	return f;
}

static void test_order(void **st)
{
	struct coil_fake *f = mk();
	struct rec r[5];
	uint64_t delays[5] = { 30, 10, 20, 10, 1 };
	uint64_t t0 = coil_loop_now_ms(cur_loop);

	(void)st;
	for (int i = 0; i < 5; i++) {
		coil_timer_init(&r[i].t, cur_loop, rec_cb, NULL);
		r[i].fired_at = 0;
		coil_timer_start(&r[i].t, delays[i]);
		assert_true(coil_timer_active(&r[i].t));
	}
	coil_fake_advance(f, 9);
	assert_int_equal(fire_seq, 1);
	assert_int_equal(r[4].fired_at, t0 + 1);
	coil_fake_advance(f, 1);
	assert_int_equal(fire_seq, 3);
	assert_int_equal(r[1].fired_at, t0 + 10);
	assert_int_equal(r[3].fired_at, t0 + 10);
	coil_fake_advance(f, 25);
	assert_int_equal(fire_seq, 5);
	assert_int_equal(r[2].fired_at, t0 + 20);
	assert_int_equal(r[0].fired_at, t0 + 30);
	assert_true(r[2].order < r[0].order);
	for (int i = 0; i < 5; i++)
		assert_false(coil_timer_active(&r[i].t));
	coil_fake_destroy(f);
}

static void test_cancel(void **st)
{
	struct coil_fake *f = mk();
	struct rec a, b;

	(void)st;
	coil_timer_init(&a.t, cur_loop, rec_cb, NULL);
	coil_timer_init(&b.t, cur_loop, rec_cb, NULL);
	a.fired_at = b.fired_at = 0;
	coil_timer_start(&a.t, 5);
	coil_timer_start(&b.t, 5);
	coil_timer_stop(&a.t);
	coil_timer_stop(&a.t);  /* idempotent */
	assert_false(coil_timer_active(&a.t));
	coil_fake_advance(f, 10);
	assert_int_equal(a.fired_at, 0);
	assert_int_not_equal(b.fired_at, 0);
	/* restart moves the deadline */
	coil_timer_start(&a.t, 5);
	coil_fake_advance(f, 3);
	coil_timer_start(&a.t, 5);
	coil_fake_advance(f, 3);
	assert_int_equal(a.fired_at, 0);
	coil_fake_advance(f, 2);
	assert_int_not_equal(a.fired_at, 0);
	assert_int_equal(cur_loop->wheel.count, 0);
	coil_fake_destroy(f);
}

static void test_wrap(void **st)
{
	struct coil_fake *f = mk();
	struct rec far, near, exact;
	uint64_t t0 = coil_loop_now_ms(cur_loop);

	(void)st;
	/* Same slot, different revolutions. */
	coil_timer_init(&far.t, cur_loop, rec_cb, NULL);
	coil_timer_init(&near.t, cur_loop, rec_cb, NULL);
	coil_timer_init(&exact.t, cur_loop, rec_cb, NULL);
	far.fired_at = near.fired_at = exact.fired_at = 0;
	coil_timer_start(&far.t, 7 + 3 * COIL__WHEEL_SLOTS);
	coil_timer_start(&near.t, 7);
	coil_timer_start(&exact.t, COIL__WHEEL_SLOTS);
	assert_int_equal(coil__wheel_timeout(&cur_loop->wheel), 7);
	coil_fake_advance(f, 7);
	assert_int_equal(near.fired_at, t0 + 7);
	assert_int_equal(far.fired_at, 0);
	coil_fake_advance(f, COIL__WHEEL_SLOTS - 7);
	assert_int_equal(exact.fired_at, t0 + COIL__WHEEL_SLOTS);
	assert_int_equal(far.fired_at, 0);
	/* A jump of many revolutions in one turn (a loop that slept) still
	 * fires it, once, at the right time or later. */
	cur_loop->now_ms += 5 * COIL__WHEEL_SLOTS;
	coil_fake_turn(f);
	assert_int_not_equal(far.fired_at, 0);
	assert_int_equal(fire_seq, 3);
	coil_fake_destroy(f);
}

#define MANY 20000
static struct rec many[MANY];
static uint64_t want[MANY];

static void test_many(void **st)
{
	struct coil_fake *f = mk();
	uint64_t t0 = coil_loop_now_ms(cur_loop);
	unsigned seed = 12345;

	(void)st;
	for (int i = 0; i < MANY; i++) {
		seed = seed * 1103515245u + 12345u;
		want[i] = 1 + (seed >> 8) % 5000;
		coil_timer_init(&many[i].t, cur_loop, rec_cb, NULL);
		many[i].fired_at = 0;
		coil_timer_start(&many[i].t, want[i]);
	}
	/* cancel every third */
	for (int i = 0; i < MANY; i += 3)
		coil_timer_stop(&many[i].t);
	coil_fake_advance(f, 5001);
	for (int i = 0; i < MANY; i++) {
		if (i % 3 == 0)
			assert_int_equal(many[i].fired_at, 0);
		else
			assert_int_equal(many[i].fired_at, t0 + want[i]);
	}
	assert_int_equal(cur_loop->wheel.count, 0);
	assert_int_equal(coil__wheel_timeout(&cur_loop->wheel), -1);
	coil_fake_destroy(f);
}

/* A callback that re-arms itself and stops a sibling in the same slot. */
static struct rec sib;
static int rearm_count;
static void rearm_cb(struct coil_timer *t)
{
	rearm_count++;
	coil_timer_stop(&sib.t);
	if (rearm_count < 3)
		coil_timer_start(t, 0);
}

static void test_callback_rearm(void **st)
{
	struct coil_fake *f = mk();
	struct coil_timer t;

	(void)st;
	rearm_count = 0;
	coil_timer_init(&t, cur_loop, rearm_cb, NULL);
	coil_timer_init(&sib.t, cur_loop, rec_cb, NULL);
	sib.fired_at = 0;
	/* Same ms: the order within a tick is unspecified; here sib is started
	 * first so t is taken first and stops sib while sib is still pending
	 * in the slot being run. */
	coil_timer_start(&sib.t, 4);
	coil_timer_start(&t, 4);
	coil_fake_advance(f, 4);
	assert_int_equal(rearm_count, 1);
	assert_int_equal(sib.fired_at, 0);
	coil_fake_advance(f, 1);
	assert_int_equal(rearm_count, 2);
	coil_fake_advance(f, 5);
	assert_int_equal(rearm_count, 3);
	assert_false(coil_timer_active(&t));
	coil_fake_destroy(f);
}

/* Arm many[0, n) to fall due together 5 ms from now; go to 1 ms before. */
static void storm_arm(struct coil_fake *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		coil_timer_init(&many[i].t, cur_loop, rec_cb, NULL);
		many[i].fired_at = 0;
		coil_timer_start(&many[i].t, 5);
	}
	coil_fake_advance(f, 4);
	assert_int_equal(fire_seq, 0);
}

/* A storm of timers due in the same ms fires COIL__TIMER_BUDGET per turn,
 * so I/O runs between the batches; none is lost and none fires early. */
static void test_budget(void **st)
{
	struct coil_fake *f = mk();
	uint64_t t0 = coil_loop_now_ms(cur_loop);
	unsigned n = 3 * COIL__TIMER_BUDGET + 10;

	(void)st;
	storm_arm(f, n);
	cur_loop->now_ms++;
	for (unsigned turn = 1; turn <= 4; turn++) {
		coil_fake_turn(f);
		assert_int_equal(fire_seq, turn < 4 ? turn * COIL__TIMER_BUDGET
						    : n);
		/* the wheel stays behind the clock while timers are left */
		assert_true(cur_loop->wheel.cur_ms < cur_loop->now_ms ||
			    turn == 4);
	}
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(many[i].fired_at, t0 + 5);
	assert_int_equal(cur_loop->wheel.count, 0);
	coil_fake_destroy(f);
}

/* On the real clock a storm is worked off at COIL__TIMER_PER_MS per ms, so
 * closing thousands of connections leaves the CPU to the ones still
 * talking (issue 18); the timers left fire in the next ms, in full. */
static void test_pace_per_ms(void **st)
{
	struct coil_fake *f = mk();
	unsigned n = 2 * COIL__TIMER_PER_MS + 10, fired = 0, turns = 0;
	uint64_t t0 = coil_loop_now_ms(cur_loop);

	(void)st;
	storm_arm(f, n);
	/* The loop's real-clock pace, driven by hand (a fake turn would read
	 * no clock): ms t0 + 5, then t0 + 6, t0 + 7. */
	cur_loop->fake_clock = false;
	for (uint64_t ms = t0 + 5; ms <= t0 + 7; ms++) {
		unsigned this_ms = 0, b;

		cur_loop->now_ms = ms;
		while ((b = coil__loop_timer_budget(cur_loop)) != 0) {
			assert_true(b <= COIL__TIMER_BUDGET);
			turns++;
			if (!coil__wheel_run(&cur_loop->wheel, ms, b)) {
				this_ms = (unsigned)fire_seq - fired;
				break;
			}
			this_ms = (unsigned)fire_seq - fired;
			assert_true(this_ms <= COIL__TIMER_PER_MS);
		}
		if (ms < t0 + 7)
			assert_int_equal(this_ms, COIL__TIMER_PER_MS);
		fired = (unsigned)fire_seq;
	}
	cur_loop->fake_clock = true;
	assert_int_equal(fire_seq, n);
	assert_int_equal(cur_loop->wheel.count, 0);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(many[i].fired_at >= t0 + 5 &&
				 many[i].fired_at <= t0 + 7, true);
	assert_true(turns >= 3);
	coil_fake_destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_wrap),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_callback_rearm),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_pace_per_ms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
