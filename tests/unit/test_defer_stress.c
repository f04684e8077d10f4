/* SPDX-License-Identifier: MIT */
/* coil_defer_to_thread with work that returns at once: a worker may run a
 * job and hand it back (linking it into the loop's done list through
 * j->next) before coil_defer_to_thread has returned. The submitting loop
 * must have unlinked the record from its free list before the push, or
 * it reads a j->next the worker is writing (ThreadSanitizer reports the
 * race; without it the free list can take the done list's records).
 * Four engines of 20000 jobs through a full 8-slot queue, 4 workers; every job answered once with
 * its own result. Then the same on the fake loop with a runner thread
 * that takes jobs with coil_fake_defer_run (no semaphore between it and
 * the submitter, so ThreadSanitizer sees the race on every run, not only
 * when a worker takes a job that another's wake-up was for).
 * In suite 'threads'. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include <coil/coil.h>
#include <coil/testing.h>

#define JOBS 20000
#define ROUNDS 4   /* the race is a window of a few instructions */

static struct coil_engine *eng;
static struct coil_timer tick_t;
static int submitted, ndone, bad, refused;
static unsigned char seen[JOBS];

static int work(void *arg)
{
	return (int)(intptr_t)arg ^ 0x5a5a;
}

static void done(struct coil_loop *loop, void *arg, int res)
{
	int v = (int)(intptr_t)arg;

	(void)loop;
	if (res != (v ^ 0x5a5a) || seen[v]++)
		bad++;
	ndone++;
}

/* Submit what is left until the queue is full (or something fails). */
static void submit_all(struct coil_loop *loop)
{
	while (submitted < JOBS) {
		int r = coil_defer_to_thread(loop, work, done,
					     (void *)(intptr_t)submitted);
		if (r == -EAGAIN) {
			refused++;
			break;
		}
		if (r < 0) {
			bad++;
			break;
		}
		submitted++;
	}
}

static void tick(struct coil_timer *t)
{
	struct coil_loop *loop = t->data;

	submit_all(loop);
	if (ndone == JOBS || bad) {
		coil_engine_stop(eng);
		return;
	}
	coil_timer_start(t, 0);
}

static void loop_start(struct coil_loop *loop, void *arg)
{
	(void)arg;
	eng = coil_loop_engine(loop);
	coil_timer_init(&tick_t, loop, tick, loop);
	coil_timer_start(&tick_t, 0);
}

static void test_immediate_jobs(void **st)
{
	struct coil_engine_opts eo = { .sz = sizeof(eo), .cores = 1,
				       .backend = COIL_BACKEND_EPOLL,
				       .defer_threads = 4, .defer_queue = 8,
				       .poll = COIL_POLL_NEVER,
				       .loop_start = loop_start };
	struct coil_engine *e;

	(void)st;
	for (int round = 0; round < ROUNDS; round++) {
		submitted = ndone = bad = refused = 0;
		memset(seen, 0, sizeof(seen));
		assert_int_equal(coil_engine_create(&eo, &e), 0);
		assert_int_equal(coil_engine_run(e), 0);
		assert_int_equal(bad, 0);
		assert_int_equal(ndone, JOBS);
		for (int v = 0; v < JOBS; v++)
			assert_int_equal(seen[v], 1);
		assert_true(refused > 0);  /* queue full: records reused */
		coil_engine_destroy(e);
	}
}

static atomic_bool runner_stop;
static size_t on_data(struct coil_conn *c, const uint8_t *d, size_t n)
{
	(void)c;
	(void)d;
	return n;
}

static const struct coil_proto_ops no_ops = { .on_data = on_data };
static const struct coil_service svc = { .sz = sizeof(svc), .ops = &no_ops };

static void *runner_main(void *arg)
{
	struct coil_fake *f = arg;

	while (!atomic_load(&runner_stop))
		if (!coil_fake_defer_run(f, 64))
			sched_yield();
	return NULL;
}

static void test_runner_thread(void **st)
{
	struct coil_fake_opts o = { .sz = sizeof(o), .defer_queue = 8 };
	struct coil_fake *f;
	struct coil_loop *loop;
	pthread_t t;

	(void)st;
	submitted = ndone = bad = refused = 0;
	memset(seen, 0, sizeof(seen));
	assert_int_equal(coil_fake_create(&o, &svc, &f), 0);
	loop = coil_fake_loop(f);
	atomic_store(&runner_stop, false);
	assert_int_equal(pthread_create(&t, NULL, runner_main, f), 0);
	while (ndone < JOBS && !bad) {
		submit_all(loop);
		coil_fake_turn(f);
	}
	atomic_store(&runner_stop, true);
	pthread_join(t, NULL);
	assert_int_equal(bad, 0);
	assert_int_equal(ndone, JOBS);
	for (int v = 0; v < JOBS; v++)
		assert_int_equal(seen[v], 1);
	coil_fake_destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_immediate_jobs),
		cmocka_unit_test(test_runner_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
