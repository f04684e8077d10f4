/* SPDX-License-Identifier: MIT */
/*
 * A loop's inbox: messages posted by other threads (coil_loop_post) and the
 * results of its defer jobs, drained once per turn. Producers never lock:
 * posts go through a bounded MPMC ring (Vyukov's sequence-numbered cells),
 * finished jobs through an intrusive lock-free stack (push one, take all).
 * A producer wakes the loop only when no wake is owed already, so a burst
 * of messages costs one eventfd write.
 */
#include "internal.h"
#include "xthread.h"
#include "../backend/backend.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>

int coil__mpmc_init(struct coil__mpmc *q, size_t cap)
{
	size_t n = 2;

	while (n < cap)
		n <<= 1;
	q->cells = calloc(n, sizeof(*q->cells));
	if (!q->cells)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		atomic_init(&q->cells[i].seq, i);
	q->mask = n - 1;
	atomic_init(&q->head, 0);
	atomic_init(&q->tail, 0);
	return 0;
}

void coil__mpmc_fini(struct coil__mpmc *q)
{
	free(q->cells);
	q->cells = NULL;
}

bool coil__mpmc_push(struct coil__mpmc *q, void *p0, void *p1)
{
	size_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
	struct coil__mpmc_cell *c;

	for (;;) {
		size_t seq;
		intptr_t dif;

		c = &q->cells[pos & q->mask];
		seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		dif = (intptr_t)seq - (intptr_t)pos;
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(
				    &q->head, &pos, pos + 1,
				    memory_order_relaxed, memory_order_relaxed))
				break;
		} else if (dif < 0) {
			return false;  /* full */
		} else {
			pos = atomic_load_explicit(&q->head,
						   memory_order_relaxed);
		}
	}
	c->p0 = p0;
	c->p1 = p1;
	atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
	return true;
}

bool coil__mpmc_pop(struct coil__mpmc *q, void **p0, void **p1)
{
	size_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
	struct coil__mpmc_cell *c;

	for (;;) {
		size_t seq;
		intptr_t dif;

		c = &q->cells[pos & q->mask];
		seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		dif = (intptr_t)seq - (intptr_t)(pos + 1);
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(
				    &q->tail, &pos, pos + 1,
				    memory_order_relaxed, memory_order_relaxed))
				break;
		} else if (dif < 0) {
			return false;  /* empty */
		} else {
			pos = atomic_load_explicit(&q->tail,
						   memory_order_relaxed);
		}
	}
	*p0 = c->p0;
	*p1 = c->p1;
	atomic_store_explicit(&c->seq, pos + q->mask + 1,
			      memory_order_release);
	return true;
}

size_t coil__mpmc_len(const struct coil__mpmc *q)
{
	size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
	size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);

	return h > t ? h - t : 0;
}

int coil__inbox_init(struct coil__inbox *in, size_t cap)
{
	int ret = coil__mpmc_init(&in->posts, cap ? cap : 1024);

	if (ret)
		return ret;
	in->loop = NULL;
	in->pool = NULL;
	in->user = NULL;
	atomic_init(&in->done, NULL);
	atomic_init(&in->wake_pending, false);
	atomic_init(&in->closed, false);
	atomic_init(&in->posting, 0);
	in->jobs = NULL;
	in->njobs = 0;
	in->free_jobs = NULL;
	in->local = NULL;
	in->outstanding = 0;
	in->told_out = 0;
	in->posts_run = in->defers = in->defer_done = 0;
	in->defer_full = in->post_full = 0;
	return 0;
}

void coil__inbox_fini(struct coil__inbox *in)
{
	coil__mpmc_fini(&in->posts);
	free(in->jobs);
	in->jobs = NULL;
}

void coil__inbox_wake(struct coil__inbox *in)
{
	struct coil_loop *loop = in->loop;

	/* seq_cst: pairs with the exchange in coil__inbox_run, so either
	 * the loop's drain sees what we queued or we see the flag clear. */
	if (!atomic_exchange(&in->wake_pending, true) && loop && loop->be &&
	    loop->be->wake)
		loop->be->wake(loop);
}

int coil_loop_post(struct coil_loop *target, coil_post_fn fn, void *arg)
{
	struct coil__inbox *in;
	int ret = 0;

	if (!target || !fn || !target->inbox)
		return -EINVAL;
	in = target->inbox;
	/* Counted as posting until the wake is done: the loop, closing,
	 * waits for that before its backend goes (coil__inbox_close). */
	atomic_fetch_add(&in->posting, 1);
	if (atomic_load(&in->closed))
		ret = -ESHUTDOWN;
	else if (!coil__mpmc_push(&in->posts, (void *)fn, arg))
		ret = -EAGAIN;
	else
		coil__inbox_wake(in);
	atomic_fetch_sub(&in->posting, 1);
	return ret;
}

void coil__inbox_kick(struct coil__inbox *in)
{
	atomic_fetch_add(&in->posting, 1);
	if (!atomic_load(&in->closed))
		coil__inbox_wake(in);
	atomic_fetch_sub(&in->posting, 1);
}

void coil_loop_set_data(struct coil_loop *loop, void *data)
{
	loop->inbox->user = data;
}

void *coil_loop_data(const struct coil_loop *loop)
{
	return loop->inbox->user;
}

/* Hand a finished or cancelled record back to the loop's free list. */
static void job_put(struct coil__inbox *in, struct coil__job *j)
{
	atomic_store_explicit(&j->state, JOB_FREE, memory_order_relaxed);
	j->gen++;
	if (j->told)
		in->told_out--;
	j->next = in->free_jobs;
	in->free_jobs = j;
	in->outstanding--;
}

static unsigned run_jobs(struct coil__inbox *in)
{
	struct coil__job *list, *rev = NULL, *j;
	unsigned n = 0;

	/* Cancelled before a worker took them: tell now; the record stays
	 * out until the worker hands it back. */
	while ((j = in->local)) {
		in->local = j->lnext;
		j->told = true;
		in->told_out++;
		j->done(in->loop, j->arg, j->res);
		n++;
	}
	list = atomic_exchange_explicit(&in->done, NULL, memory_order_acquire);
	while (list) {  /* the stack is newest first: restore the order */
		j = list;
		list = j->next;
		j->next = rev;
		rev = j;
	}
	while ((j = rev)) {
		coil_done_fn done = j->done;
		void *arg = j->arg;
		bool told = j->told;
		int res = atomic_load_explicit(&j->state,
					       memory_order_relaxed) ==
					  JOB_CANCELED
				  ? -ECANCELED
				  : j->res;

		rev = j->next;
		job_put(in, j);
		in->defer_done++;
		if (!told) {
			done(in->loop, arg, res);
			n++;
		}
	}
	return n;
}

unsigned coil__inbox_run(struct coil__inbox *in)
{
	unsigned n = 0;
	void *fn, *arg;

	/* Every producer (a post, a finished job) sets wake_pending after
	 * queueing: while it is clear there is nothing to take, and a turn
	 * costs one load. */
	if (!in->local &&
	    !atomic_load_explicit(&in->wake_pending, memory_order_acquire))
		return 0;
	atomic_store(&in->wake_pending, false);
	/* Only what is queued now: a message that posts to its own loop
	 * runs next turn, so a chain of them cannot starve the loop. */
	for (size_t max = coil__mpmc_len(&in->posts); max; max--) {
		if (!coil__mpmc_pop(&in->posts, &fn, &arg))
			break;
		((coil_post_fn)fn)(in->loop, arg);
		in->posts_run++;
		n++;
	}
	if (in->outstanding)
		n += run_jobs(in);
	/* Posted to itself meanwhile: do not sleep on it. */
	if (coil__mpmc_len(&in->posts) || in->local)
		coil__inbox_wake(in);
	return n;
}

bool coil__inbox_busy(const struct coil__inbox *in)
{
	return in->outstanding > 0;
}

void coil__inbox_cancel_all(struct coil__inbox *in)
{
	for (uint32_t i = 0; i < in->njobs; i++) {
		struct coil__job *j = &in->jobs[i];
		int st = JOB_QUEUED;

		if (atomic_compare_exchange_strong(&j->state, &st,
						   JOB_CANCELED)) {
			j->res = -ESHUTDOWN;
			j->lnext = in->local;
			in->local = j;
		}
	}
}

void coil__inbox_close(struct coil__inbox *in)
{
	void *fn, *arg;

	atomic_store(&in->closed, true);
	while (atomic_load(&in->posting))
		sched_yield();
	while (coil__mpmc_pop(&in->posts, &fn, &arg)) {
		((coil_post_fn)fn)(in->loop, arg);
		in->posts_run++;
	}
}
