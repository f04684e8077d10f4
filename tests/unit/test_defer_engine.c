/* SPDX-License-Identifier: MIT */
/* coil_defer_to_thread and coil_loop_post on a real engine (2 loops, 2
 * workers), once per backend: the workers' and the other loop's wake-ups
 * (MSG_RING on io_uring, the eventfd on epoll) reach a sleeping loop, every
 * job and message is answered exactly once, and the engine stops cleanly
 * with jobs done. Also in suite 'threads' (ThreadSanitizer). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include <coil/coil.h>

#define JOBS 300
#define MSGS 300

struct side {
	struct coil_engine *eng;
	struct coil_timer tick;
	int submitted, done, bad, got, sent, refused;
	int results[JOBS];
};

static struct side sides[2];
static atomic_int finished;

static int work(void *arg)
{
	struct timespec ts = { 0, 20000 };   /* 20 us of "blocking" */
	int v = (int)(intptr_t)arg;

	nanosleep(&ts, NULL);
	return v * 3;
}

static void done(struct coil_loop *loop, void *arg, int res)
{
	struct side *s = &sides[coil_loop_id(loop)];
	int v = (int)(intptr_t)arg;

	if (res != v * 3 || s->results[v]++)
		s->bad++;
	s->done++;
}

static void msg(struct coil_loop *loop, void *arg)
{
	struct side *s = &sides[coil_loop_id(loop)];

	if ((int)(intptr_t)arg != s->got++)
		s->bad++;
}

/* Every ms: submit and post what is left (a full queue waits a tick),
 * and say when this loop has everything. */
static void tick(struct coil_timer *t)
{
	struct coil_loop *loop = t->data;
	unsigned id = coil_loop_id(loop);
	struct side *s = &sides[id];
	struct coil_loop *peer = coil_engine_loop(s->eng, 1 - id);

	while (s->submitted < JOBS) {
		int r = coil_defer_to_thread(loop, work, done,
					     (void *)(intptr_t)s->submitted);
		if (r == -EAGAIN) {
			s->refused++;
			break;
		}
		assert_true(r >= 0);
		s->submitted++;
	}
	while (peer && s->sent < MSGS &&
	       coil_loop_post(peer, msg, (void *)(intptr_t)s->sent) == 0)
		s->sent++;
	if (s->done == JOBS && s->got == MSGS && s->sent == MSGS) {
		if (atomic_fetch_add(&finished, 1) == 1)
			coil_engine_stop(s->eng);
		return;
	}
	coil_timer_start(t, 1);
}

static void loop_start(struct coil_loop *loop, void *arg)
{
	struct side *s = &sides[coil_loop_id(loop)];

	(void)arg;
	s->eng = coil_loop_engine(loop);
	coil_timer_init(&s->tick, loop, tick, loop);
	coil_timer_start(&s->tick, 0);
}

static void run(enum coil_backend_kind be)
{
	struct coil_engine_opts eo = { .sz = sizeof(eo), .cores = 2,
				       .backend = be, .defer_threads = 2,
				       .defer_queue = 16, .post_queue = 32,
				       .poll = COIL_POLL_NEVER,
				       .loop_start = loop_start };
	struct coil_engine *eng;

	memset(sides, 0, sizeof(sides));
	atomic_store(&finished, 0);
	assert_int_equal(coil_engine_create(&eo, &eng), 0);
	assert_int_equal(coil_engine_run(eng), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(sides[i].bad, 0);
		assert_int_equal(sides[i].done, JOBS);
		assert_int_equal(sides[i].got, MSGS);
		for (int v = 0; v < JOBS; v++)
			assert_int_equal(sides[i].results[v], 1);
	}
	/* 16 queue slots for 300 jobs a loop: back-pressure was felt */
	assert_true(sides[0].refused + sides[1].refused > 0);
	coil_engine_destroy(eng);
}

static void test_epoll(void **st)
{
	(void)st;
	run(COIL_BACKEND_EPOLL);
}

static void test_uring(void **st)
{
	struct coil_engine_opts eo = { .sz = sizeof(eo), .cores = 1,
				       .backend = COIL_BACKEND_AUTO };
	struct coil_engine *eng;
	bool have;

	(void)st;
	assert_int_equal(coil_engine_create(&eo, &eng), 0);
	have = !strcmp(coil_engine_backend(eng), "io_uring");
	coil_engine_destroy(eng);
	if (!have)
		skip();   /* no io_uring here (logged why at create) */
	run(COIL_BACKEND_URING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_epoll),
		cmocka_unit_test(test_uring),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
