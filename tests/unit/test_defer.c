/* SPDX-License-Identifier: MIT */
/* coil_defer_to_thread and coil_loop_post on the fake backend, driven by
 * hand (no worker threads): results come back on the next turn, cancels
 * before and during the work, back-pressure when the queue is full,
 * messages in order and bounded. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "core/internal.h"

static size_t eat(struct coil_conn *c, const uint8_t *d, size_t n)
{
	(void)c;
	(void)d;
	return n;
}

static const struct coil_proto_ops ops = { .on_data = eat };
static const struct coil_service svc = { .sz = sizeof(svc), .ops = &ops };

static struct coil_fake *make(unsigned queue)
{
	struct coil_fake_opts o = { .sz = sizeof(o), .defer_queue = queue,
				    .post_queue = 4 };
	struct coil_fake *f;

	assert_int_equal(coil_fake_create(&o, &svc, &f), 0);
	return f;
}

struct job {
	int in;
	int ran;       /* work ran (times) */
	int calls;     /* done ran (times) */
	int res;
	struct coil_loop *loop;
	int cancel_id; /* >= 0: work cancels itself (a cancel while running) */
	struct coil_loop *cancel_loop;
};

static int square(void *arg)
{
	struct job *j = arg;

	j->ran++;
	if (j->cancel_id >= 0)
		assert_int_equal(coil_defer_cancel(j->cancel_loop, j->cancel_id),
				 0);
	return j->in < 0 ? j->in : j->in * j->in;
}

static int order[16], norder;

static void done(struct coil_loop *loop, void *arg, int res)
{
	struct job *j = arg;

	j->calls++;
	j->res = res;
	j->loop = loop;
	if (norder < 16)
		order[norder++] = j->in;
}

static void test_result_next_turn(void **st)
{
	struct coil_fake *f = make(0);
	struct coil_loop *loop = coil_fake_loop(f);
	struct job a = { .in = 7, .cancel_id = -1 }, b = { .in = -EIO,
							   .cancel_id = -1 };
	(void)st;
	norder = 0;
	assert_true(coil_defer_to_thread(loop, square, done, &a) >= 0);
	assert_true(coil_defer_to_thread(loop, square, done, &b) >= 0);
	assert_int_equal(coil_defer_pending(loop), 2);
	coil_fake_settle(f);
	assert_int_equal(a.ran + a.calls, 0);  /* nobody ran the work yet */
	assert_int_equal(coil_fake_defer_run(f, 1), 1);
	assert_int_equal(a.ran, 1);
	assert_int_equal(a.calls, 0);          /* never synchronously */
	coil_fake_turn(f);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.res, 49);
	assert_ptr_equal(a.loop, loop);
	assert_int_equal(coil_fake_defer_run(f, 5), 1);
	coil_fake_settle(f);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.res, -EIO);         /* the errback */
	assert_int_equal(coil_defer_pending(loop), 0);
	assert_int_equal(norder, 2);
	assert_int_equal(order[0], 7);
	coil_fake_destroy(f);
}

static void test_cancel_queued(void **st)
{
	struct coil_fake *f = make(0);
	struct coil_loop *loop = coil_fake_loop(f);
	struct job a = { .in = 3, .cancel_id = -1 }, b = { .in = 4,
							  .cancel_id = -1 };
	int ida, idb;

	(void)st;
	ida = coil_defer_to_thread(loop, square, done, &a);
	idb = coil_defer_to_thread(loop, square, done, &b);
	assert_true(ida >= 0 && idb >= 0 && ida != idb);
	assert_int_equal(coil_defer_cancel(loop, ida), 0);
	assert_int_equal(coil_defer_cancel(loop, ida), -EALREADY);
	assert_int_equal(a.calls, 0);
	coil_fake_turn(f);
	/* told at once, before any worker looked at it */
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.res, -ECANCELED);
	assert_int_equal(coil_defer_pending(loop), 1);
	assert_int_equal(coil_fake_defer_run(f, 5), 2);
	coil_fake_settle(f);
	assert_int_equal(a.ran, 0);            /* the work was skipped */
	assert_int_equal(a.calls, 1);          /* and done ran only once */
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.res, 16);
	/* finished: cancel is too late, and the old id stays dead when the
	 * record is reused */
	assert_int_equal(coil_defer_cancel(loop, idb), -ENOENT);
	assert_int_equal(coil_defer_cancel(loop, ida), -ENOENT);
	assert_true(coil_defer_to_thread(loop, square, done, &b) >= 0);
	assert_int_equal(coil_defer_cancel(loop, ida), -ENOENT);
	assert_int_equal(coil_defer_cancel(loop, 12345678), -ENOENT);
	assert_int_equal(coil_fake_defer_run(f, 5), 1);
	coil_fake_settle(f);
	assert_int_equal(b.calls, 2);
	coil_fake_destroy(f);
}

static void test_cancel_running(void **st)
{
	struct coil_fake *f = make(0);
	struct coil_loop *loop = coil_fake_loop(f);
	struct job a = { .in = 5, .cancel_loop = loop };

	(void)st;
	a.cancel_id = coil_defer_to_thread(loop, square, done, &a);
	assert_true(a.cancel_id >= 0);
	assert_int_equal(coil_fake_defer_run(f, 1), 1);  /* cancels itself */
	assert_int_equal(a.ran, 1);
	coil_fake_settle(f);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.res, -ECANCELED);   /* the result was dropped */
	coil_fake_destroy(f);
}

static void test_queue_full(void **st)
{
	struct coil_fake *f = make(4);
	struct coil_loop *loop = coil_fake_loop(f);
	struct job j[6];

	(void)st;
	memset(j, 0, sizeof(j));
	for (int i = 0; i < 4; i++) {
		j[i].in = i;
		j[i].cancel_id = -1;
		assert_true(coil_defer_to_thread(loop, square, done, &j[i]) >= 0);
	}
	j[4].cancel_id = -1;
	assert_int_equal(coil_defer_to_thread(loop, square, done, &j[4]),
			 -EAGAIN);
	assert_int_equal(coil_defer_to_thread(loop, NULL, done, &j[4]),
			 -EINVAL);
	coil_fake_settle(f);
	assert_int_equal(j[4].calls, 0);       /* refused: no callback */
	assert_int_equal(coil_fake_defer_run(f, 1), 1);
	/* the record comes back only once done ran */
	assert_int_equal(coil_defer_to_thread(loop, square, done, &j[4]),
			 -EAGAIN);
	coil_fake_turn(f);
	assert_true(coil_defer_to_thread(loop, square, done, &j[4]) >= 0);
	assert_int_equal(coil_fake_defer_run(f, 10), 4);
	coil_fake_settle(f);
	for (int i = 0; i < 5; i++)
		assert_int_equal(j[i].calls, 1);
	assert_int_equal(j[3].res, 9);
	coil_fake_destroy(f);
}

static void test_destroy_with_jobs(void **st)
{
	struct coil_fake *f = make(0);
	struct coil_loop *loop = coil_fake_loop(f);
	struct job a = { .in = 2, .cancel_id = -1 };

	(void)st;
	assert_true(coil_defer_to_thread(loop, square, done, &a) >= 0);
	coil_fake_destroy(f);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.res, -ESHUTDOWN);
	assert_int_equal(a.ran, 0);
}

/* ---- coil_loop_post ---- */
static int seen[64], nseen;
static struct coil_loop *seen_loop;

static void note(struct coil_loop *loop, void *arg)
{
	seen_loop = loop;
	seen[nseen++] = (int)(intptr_t)arg;
}

static void repost(struct coil_loop *loop, void *arg)
{
	note(loop, arg);
	if ((intptr_t)arg < 3)
		assert_int_equal(coil_loop_post(loop, repost,
						(void *)((intptr_t)arg + 1)),
				 0);
}

static void test_post(void **st)
{
	struct coil_fake *f = make(0);
	struct coil_loop *loop = coil_fake_loop(f);

	(void)st;
	nseen = 0;
	for (intptr_t i = 0; i < 4; i++)
		assert_int_equal(coil_loop_post(loop, note, (void *)i), 0);
	/* bounded: post_queue is 4 */
	assert_int_equal(coil_loop_post(loop, note, (void *)9), -EAGAIN);
	assert_int_equal(coil_loop_post(NULL, note, NULL), -EINVAL);
	assert_int_equal(coil_loop_post(loop, NULL, NULL), -EINVAL);
	assert_int_equal(nseen, 0);            /* never synchronously */
	coil_fake_turn(f);
	assert_int_equal(nseen, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(seen[i], i);  /* in order */
	assert_ptr_equal(seen_loop, loop);
	assert_null(coil_loop_engine(loop));
	/* a message posting to its own loop runs on a later turn */
	nseen = 0;
	assert_int_equal(coil_loop_post(loop, repost, (void *)0), 0);
	coil_fake_turn(f);
	assert_int_equal(nseen, 1);
	coil_fake_settle(f);
	assert_int_equal(nseen, 4);
	coil_fake_destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_result_next_turn),
		cmocka_unit_test(test_cancel_queued),
		cmocka_unit_test(test_cancel_running),
		cmocka_unit_test(test_queue_full),
		cmocka_unit_test(test_destroy_with_jobs),
		cmocka_unit_test(test_post),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
