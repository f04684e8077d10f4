/* SPDX-License-Identifier: MIT */
/*
 * coil_defer_to_thread: the engine's worker pool. Loops queue jobs on a
 * bounded lock-free ring; workers sleep on a semaphore (one post per job)
 * and hand each finished job back to the submitting loop's inbox. Job
 * records belong to the submitting loop (allocated once, on its first
 * job), so submitting and completing never allocate.
 */
#include "internal.h"
#include "xthread.h"

#include <errno.h>
#include <stdlib.h>

#define JOB_ID(j) ((int)((((uint32_t)(j)->gen & 0x7fffu) << 16) | (j)->idx))

/* Hand job `j` back to its loop and wake it. */
static void job_finish(struct coil__job *j)
{
	struct coil__inbox *in = j->home;
	struct coil__job *head;

	/* Once pushed, the loop may take the job and, its last, close: the
	 * posting count keeps its backend alive until the wake is done. */
	atomic_fetch_add(&in->posting, 1);
	head = atomic_load_explicit(&in->done, memory_order_relaxed);
	do
		j->next = head;
	while (!atomic_compare_exchange_weak_explicit(
		&in->done, &head, j, memory_order_release,
		memory_order_relaxed));
	coil__inbox_wake(in);
	atomic_fetch_sub(&in->posting, 1);
}

/* Run (or skip, when cancelled) one job popped from the queue. */
static void job_run(struct coil__pool *p, struct coil__job *j)
{
	int st = JOB_QUEUED;

	if (atomic_compare_exchange_strong(&j->state, &st, JOB_RUNNING)) {
		int res;

		atomic_fetch_add_explicit(&p->running, 1,
					  memory_order_relaxed);
		res = j->work(j->arg);
		atomic_fetch_sub_explicit(&p->running, 1,
					  memory_order_relaxed);
		j->res = res;
		st = JOB_RUNNING;
		/* Fails when cancelled meanwhile: the result is dropped. */
		atomic_compare_exchange_strong(&j->state, &st, JOB_DONE);
	}
	job_finish(j);
}

bool coil__pool_run_one(struct coil__pool *p)
{
	void *j, *unused;

	if (!coil__mpmc_pop(&p->q, &j, &unused))
		return false;
	job_run(p, j);
	return true;
}

static void *worker_main(void *arg)
{
	struct coil__pool *p = arg;

	for (;;) {
		while (sem_wait(&p->sem) && errno == EINTR)
			;
		if (!coil__pool_run_one(p) && atomic_load(&p->stop))
			break;
	}
	return NULL;
}

int coil__pool_init(struct coil__pool *p, unsigned threads, size_t cap)
{
	int ret;

	p->nthreads = 0;
	p->threads = NULL;
	p->cap = cap ? cap : 1024;
	if (p->cap > 65536)
		p->cap = 65536;
	atomic_init(&p->stop, false);
	atomic_init(&p->running, 0);
	ret = coil__mpmc_init(&p->q, p->cap);
	if (ret)
		return ret;
	if (sem_init(&p->sem, 0, 0)) {
		ret = -errno;
		goto fail_q;
	}
	if (threads) {
		p->threads = calloc(threads, sizeof(*p->threads));
		if (!p->threads) {
			ret = -ENOMEM;
			goto fail_sem;
		}
	}
	for (unsigned i = 0; i < threads; i++) {
		ret = -pthread_create(&p->threads[i], NULL, worker_main, p);
		if (ret)
			goto fail_threads;
		p->nthreads++;
	}
	return 0;
fail_threads:
	coil__pool_fini(p);
	return ret;
fail_sem:
	sem_destroy(&p->sem);
fail_q:
	coil__mpmc_fini(&p->q);
	return ret;
}

void coil__pool_fini(struct coil__pool *p)
{
	atomic_store(&p->stop, true);
	for (unsigned i = 0; i < p->nthreads; i++)
		sem_post(&p->sem);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	p->threads = NULL;
	p->nthreads = 0;
	sem_destroy(&p->sem);
	coil__mpmc_fini(&p->q);
}

/* The loop's job records, made on its first job. */
static int jobs_alloc(struct coil__inbox *in)
{
	uint32_t n = (uint32_t)in->pool->cap;

	in->jobs = calloc(n, sizeof(*in->jobs));
	if (!in->jobs)
		return -ENOMEM;
	in->njobs = n;
	for (uint32_t i = n; i--;) {
		in->jobs[i].idx = i;
		in->jobs[i].home = in;
		atomic_init(&in->jobs[i].state, JOB_FREE);
		in->jobs[i].next = in->free_jobs;
		in->free_jobs = &in->jobs[i];
	}
	return 0;
}

int coil_defer_to_thread(struct coil_loop *loop, coil_work_fn work,
			 coil_done_fn done, void *arg)
{
	struct coil__inbox *in = loop->inbox;
	struct coil__job *j;

	if (!work || !done)
		return -EINVAL;
	if (!in || !in->pool)
		return -ENOSYS;
	if (atomic_load_explicit(&in->closed, memory_order_relaxed))
		return -ESHUTDOWN;
	if (!in->jobs && jobs_alloc(in))
		return -ENOMEM;
	j = in->free_jobs;
	if (!j) {
		in->defer_full++;
		return -EAGAIN;
	}
	/* Unlink before the push: once queued, a worker may run the job and
	 * link it into the done list through j->next before we return. */
	in->free_jobs = j->next;
	j->work = work;
	j->done = done;
	j->arg = arg;
	j->res = 0;
	j->told = false;
	atomic_store_explicit(&j->state, JOB_QUEUED, memory_order_relaxed);
	if (!coil__mpmc_push(&in->pool->q, j, NULL)) {
		atomic_store_explicit(&j->state, JOB_FREE,
				      memory_order_relaxed);
		j->next = in->free_jobs;   /* never queued: still ours */
		in->free_jobs = j;
		in->defer_full++;
		return -EAGAIN;
	}
	in->outstanding++;
	in->defers++;
	if (in->pool->nthreads)
		sem_post(&in->pool->sem);
	return JOB_ID(j);
}

int coil_defer_cancel(struct coil_loop *loop, int id)
{
	struct coil__inbox *in = loop->inbox;
	uint32_t idx = (uint32_t)id & 0xffffu;
	struct coil__job *j;
	int st;

	if (!in || id < 0 || idx >= in->njobs)
		return -ENOENT;
	j = &in->jobs[idx];
	if (JOB_ID(j) != id)
		return -ENOENT;
	st = JOB_QUEUED;
	if (atomic_compare_exchange_strong(&j->state, &st, JOB_CANCELED)) {
		j->res = -ECANCELED;
		j->lnext = in->local;
		in->local = j;
		coil__inbox_wake(in);
		return 0;
	}
	if (st == JOB_RUNNING &&
	    atomic_compare_exchange_strong(&j->state, &st, JOB_CANCELED))
		return 0;
	return st == JOB_CANCELED ? -EALREADY : -ENOENT;
}

unsigned coil_defer_pending(const struct coil_loop *loop)
{
	const struct coil__inbox *in = loop->inbox;

	return in ? in->outstanding - in->told_out : 0;
}
