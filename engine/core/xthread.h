/* SPDX-License-Identifier: MIT */
/*
 * Work that crosses threads (private): a bounded lock-free queue (Vyukov's
 * MPMC ring), each loop's inbox (messages from other loops and defer
 * results), and the engine's pool of worker threads (coil/defer.h,
 * coil/post.h). Loops never take a lock here: a full queue is an error at
 * once (-EAGAIN), and a loop that may be sleeping is woken through its
 * backend's wake (an eventfd the ring or epoll watches).
 */
#ifndef COIL_XTHREAD_H
#define COIL_XTHREAD_H

#include <coil/defer.h>
#include <coil/post.h>

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct coil_loop;

/* ---- bounded multi-producer multi-consumer ring ---- */
struct coil__mpmc_cell {
	atomic_size_t seq;
	void *p0, *p1;
};

struct coil__mpmc {
	struct coil__mpmc_cell *cells;
	size_t mask;
	_Alignas(64) atomic_size_t head;  /* next slot to fill */
	_Alignas(64) atomic_size_t tail;  /* next slot to take */
};

/* Room for `cap` entries (rounded up to a power of two, at least 2).
 * Returns 0 or -ENOMEM. */
int coil__mpmc_init(struct coil__mpmc *q, size_t cap);
void coil__mpmc_fini(struct coil__mpmc *q);
/* Any thread; false when full. Never blocks. */
bool coil__mpmc_push(struct coil__mpmc *q, void *p0, void *p1);
/* Any thread; false when empty. */
bool coil__mpmc_pop(struct coil__mpmc *q, void **p0, void **p1);
/* Entries queued now (approximate while others push or pop). */
size_t coil__mpmc_len(const struct coil__mpmc *q);

/* ---- defer jobs ---- */
enum {
	JOB_FREE = 0,
	JOB_QUEUED,      /* in the pool's queue */
	JOB_RUNNING,     /* a worker runs work() */
	JOB_DONE,        /* work() returned; the result is on its way */
	JOB_CANCELED,    /* cancelled: the result (if any) is dropped */
};

struct coil__job {
	struct coil__job *next;     /* done stack (worker), free list (loop) */
	struct coil__job *lnext;    /* the loop's list of cancelled-to-tell */
	struct coil__inbox *home;   /* the inbox of the submitting loop */
	coil_work_fn work;
	coil_done_fn done;
	void *arg;
	atomic_int state;
	int res;
	uint32_t idx;
	uint16_t gen;
	bool told;                  /* done() already ran (-ECANCELED) */
};

struct coil__pool;

/* ---- a loop's inbox: lives as long as the engine (or fake), not the
 * loop's run, so a late post finds it ---- */
struct coil__inbox {
	struct coil_loop *loop;
	struct coil__pool *pool;    /* NULL: no defer on this loop */
	void *user;                 /* coil_loop_set_data */
	struct coil__mpmc posts;    /* (fn, arg) from coil_loop_post */
	_Alignas(64) _Atomic(struct coil__job *) done;  /* finished jobs */
	atomic_bool wake_pending;   /* a wake is owed or the loop is awake */
	atomic_bool closed;         /* the loop has finished: refuse posts */
	atomic_uint posting;        /* posters between check and push */
	_Alignas(64) struct coil__job *jobs; /* [njobs], loop-owned */
	uint32_t njobs;
	struct coil__job *free_jobs;
	struct coil__job *local;    /* cancelled while queued: tell next turn */
	uint32_t outstanding;       /* records in use (incl. cancelled ones a
				       worker has not handed back yet) */
	uint32_t told_out;          /* of those, already told (-ECANCELED) */
	/* statistics (written by the loop only) */
	uint64_t posts_run, defers, defer_done, defer_full, post_full;
};

/* Returns 0 or -ENOMEM. `cap`: posts queued at most (0: 1024). */
int coil__inbox_init(struct coil__inbox *in, size_t cap);
void coil__inbox_fini(struct coil__inbox *in);
/* Loop thread, every turn: run posts and deliver finished jobs. Returns
 * how many callbacks ran. */
unsigned coil__inbox_run(struct coil__inbox *in);
/* Anything still owed to the loop (jobs out)? */
bool coil__inbox_busy(const struct coil__inbox *in);
/* Loop thread, forced stop: cancel every job not yet delivered. */
void coil__inbox_cancel_all(struct coil__inbox *in);
/* Loop thread, at exit: refuse new posts, run those already queued. */
void coil__inbox_close(struct coil__inbox *in);
/* Any thread: the loop has something new; wake it unless a wake is owed.
 * The caller must keep the loop from closing meanwhile (hold `posting`,
 * or own a job the loop waits for). */
void coil__inbox_wake(struct coil__inbox *in);
/* Any thread: wake the loop unless it has closed, safely against its
 * teardown (its backend may be freed right after it closed). */
void coil__inbox_kick(struct coil__inbox *in);

/* ---- the worker pool ---- */
struct coil__pool {
	struct coil__mpmc q;        /* queued jobs */
	sem_t sem;                  /* one post per queued job (or stop) */
	pthread_t *threads;
	unsigned nthreads;          /* 0: manual (the fake's tests run jobs) */
	size_t cap;
	atomic_bool stop;
	atomic_uint running;
};

/* A pool of `threads` workers (0: manual, see coil__pool_run_one) with
 * room for `cap` queued jobs. Threads start here. Returns 0 or -errno. */
int coil__pool_init(struct coil__pool *p, unsigned threads, size_t cap);
/* Stop and join the workers after they emptied the queue. */
void coil__pool_fini(struct coil__pool *p);
/* Run one queued job on the calling thread; false when none. */
bool coil__pool_run_one(struct coil__pool *p);

#endif
