/* SPDX-License-Identifier: MIT */
/* The parts that cross threads, with real threads (run under
 * ThreadSanitizer by scripts/test, build-tsan): a fake loop with 4 worker
 * threads and a small queue (every job answered exactly once, cancels
 * included, -EAGAIN as back-pressure); two fake loops on two threads
 * posting to each other; several threads posting to one loop (each
 * sender's messages exactly once and in order). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <coil/coil.h>
#include <coil/testing.h>

static size_t eat(struct coil_conn *c, const uint8_t *d, size_t n)
{
	(void)c;
	(void)d;
	return n;
}

static const struct coil_proto_ops ops = { .on_data = eat };
static const struct coil_service svc = { .sz = sizeof(svc), .ops = &ops };

static struct coil_fake *make(unsigned threads, unsigned queue,
			      unsigned posts)
{
	struct coil_fake_opts o = { .sz = sizeof(o), .defer_threads = threads,
				    .defer_queue = queue,
				    .post_queue = posts };
	struct coil_fake *f;

	assert_int_equal(coil_fake_create(&o, &svc, &f), 0);
	return f;
}

/* ---- defer pool ---- */
#define NJOBS 3000

struct job {
	int in;
	int out;       /* written by the worker, read by done */
	int calls;
	int res;
};

static int work(void *arg)
{
	struct job *j = arg;
	unsigned x = (unsigned)j->in;

	for (int i = 0; i < 200; i++)
		x = x * 1103515245u + 12345u;
	j->out = (int)(x & 0xffff);
	return j->in;
}

static void done(struct coil_loop *loop, void *arg, int res)
{
	struct job *j = arg;

	(void)loop;
	j->calls++;
	j->res = res;
}

static void test_pool(void **st)
{
	struct coil_fake *f = make(4, 32, 0);
	struct coil_loop *loop = coil_fake_loop(f);
	struct job *jobs = calloc(NJOBS, sizeof(*jobs));
	int full = 0, canceled = 0, next = 0;

	(void)st;
	assert_non_null(jobs);
	while (next < NJOBS) {
		int id;

		jobs[next].in = next;
		id = coil_defer_to_thread(loop, work, done, &jobs[next]);
		if (id == -EAGAIN) {
			full++;
			coil_fake_turn(f);   /* results give records back */
			continue;
		}
		assert_true(id >= 0);
		if (next % 7 == 0 && coil_defer_cancel(loop, id) == 0)
			canceled++;
		next++;
	}
	while (coil_defer_pending(loop))
		coil_fake_turn(f);
	for (int i = 0; i < NJOBS; i++) {
		assert_int_equal(jobs[i].calls, 1);
		if (jobs[i].res != -ECANCELED) {
			unsigned x = (unsigned)i;

			for (int k = 0; k < 200; k++)
				x = x * 1103515245u + 12345u;
			assert_int_equal(jobs[i].res, i);
			assert_int_equal(jobs[i].out, (int)(x & 0xffff));
		} else {
			assert_int_equal(i % 7, 0);
		}
	}
	assert_true(full > 0);   /* 32 slots for 3000 jobs: it pushed back */
	assert_true(canceled > 0);
	coil_fake_destroy(f);
	free(jobs);
}

/* ---- two loops on two threads ---- */
#define NMSG 20000

struct side {
	struct coil_fake *f;
	struct coil_loop *peer;
	atomic_int *go;
	int sent, got, acked;
	int expect;            /* next sequence number from the peer */
	int bad;
	int full;
	bool sender;
};

static void on_ack(struct coil_loop *loop, void *arg);

static void on_msg(struct coil_loop *loop, void *arg)
{
	struct side *s = coil_loop_data(loop);
	int seq = (int)(intptr_t)arg;

	if (seq != s->expect)
		s->bad++;
	s->expect = seq + 1;
	s->got++;
	while (coil_loop_post(s->peer, on_ack, NULL) == -EAGAIN)
		sched_yield();   /* the peer drains on its own thread */
}

static void on_ack(struct coil_loop *loop, void *arg)
{
	struct side *s = coil_loop_data(loop);

	(void)arg;
	s->acked++;
}

static void *side_main(void *arg)
{
	struct side *s = arg;

	while (!atomic_load(s->go))
		sched_yield();
	for (;;) {
		if (s->sender && s->sent < NMSG) {
			int r = coil_loop_post(s->peer, on_msg,
					       (void *)(intptr_t)s->sent);
			if (r == 0)
				s->sent++;
			else if (r == -EAGAIN)
				s->full++;
		}
		coil_fake_turn(s->f);
		if (s->sender ? s->acked == NMSG : s->got == NMSG)
			break;
	}
	return NULL;
}

static void test_two_loops(void **st)
{
	struct side a = { .sender = true }, b = { 0 };
	atomic_int go = 0;
	pthread_t ta, tb;

	(void)st;
	a.f = make(0, 0, 64);
	b.f = make(0, 0, 64);
	a.peer = coil_fake_loop(b.f);
	b.peer = coil_fake_loop(a.f);
	a.go = b.go = &go;
	coil_loop_set_data(coil_fake_loop(a.f), &a);
	coil_loop_set_data(coil_fake_loop(b.f), &b);
	assert_int_equal(pthread_create(&ta, NULL, side_main, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, side_main, &b), 0);
	atomic_store(&go, 1);
	pthread_join(ta, NULL);
	/* b may still have acks to finish posting: it ends on its count */
	pthread_join(tb, NULL);
	assert_int_equal(b.got, NMSG);
	assert_int_equal(b.bad, 0);   /* in order, none twice */
	assert_int_equal(a.acked, NMSG);
	coil_fake_destroy(a.f);
	coil_fake_destroy(b.f);
}

/* ---- many senders, one loop ---- */
#define NSEND 3
#define PER 5000

struct sender {
	struct coil_loop *to;
	int id;
};

static int next_seq[NSEND], bad_seq, total;

static void on_tagged(struct coil_loop *loop, void *arg)
{
	intptr_t v = (intptr_t)arg;
	int who = (int)(v / PER), seq = (int)(v % PER);

	(void)loop;
	if (next_seq[who] != seq)
		bad_seq++;
	next_seq[who] = seq + 1;
	total++;
}

static void *sender_main(void *arg)
{
	struct sender *s = arg;

	for (int i = 0; i < PER; i++)
		while (coil_loop_post(s->to, on_tagged,
				      (void *)(intptr_t)(s->id * PER + i)) ==
		       -EAGAIN)
			sched_yield();
	return NULL;
}

static void test_many_senders(void **st)
{
	struct coil_fake *f = make(0, 0, 16);
	struct sender s[NSEND];
	pthread_t t[NSEND];

	(void)st;
	for (int i = 0; i < NSEND; i++) {
		s[i].to = coil_fake_loop(f);
		s[i].id = i;
		assert_int_equal(pthread_create(&t[i], NULL, sender_main, &s[i]),
				 0);
	}
	while (total < NSEND * PER)
		coil_fake_turn(f);
	for (int i = 0; i < NSEND; i++)
		pthread_join(t[i], NULL);
	coil_fake_settle(f);
	assert_int_equal(total, NSEND * PER);
	assert_int_equal(bad_seq, 0);
	coil_fake_destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool),
		cmocka_unit_test(test_two_loops),
		cmocka_unit_test(test_many_senders),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
