/* SPDX-License-Identifier: MIT */
#ifndef COIL_DEFER_H
#define COIL_DEFER_H

/*
 * Blocking work off the loop: Twisted's deferToThread. Each engine keeps a
 * bounded pool of worker threads (coil_engine_opts.defer_threads, default
 * 4) and a bounded queue (defer_queue, default 1024 jobs). A loop hands a
 * job to the pool and goes on serving; when a worker has run the job, its
 * result comes back to the submitting loop as a callback there (the loop
 * is woken through its ring or its epoll set: no lock, no polling).
 *
 * coil's Deferred is one callback taking a result or a negative errno:
 * `done(loop, arg, res)` is callback (res >= 0) and errback (res < 0) in
 * one. It runs exactly once per accepted job, on the submitting loop,
 * never inside coil_defer_to_thread().
 */

struct coil_loop;

/* Runs on a worker thread. Returns a result >= 0 or a negative errno; any
 * richer result goes through `arg` (which the job owns meanwhile). Must not
 * call coil functions other than coil_loop_post(). */
typedef int (*coil_work_fn)(void *arg);

/* Runs on the loop that submitted the job, once: with work's return value,
 * or -ECANCELED after coil_defer_cancel(), or -ESHUTDOWN when the engine
 * aborted the job at a forced stop before a worker took it. */
typedef void (*coil_done_fn)(struct coil_loop *loop, void *arg, int res);

/*
 * Queue `work(arg)` on the engine's worker pool; `done(loop, arg, res)`
 * follows on `loop`. `arg` must stay valid until done runs. Returns a job
 * id (>= 0, for coil_defer_cancel) or, at once and with nothing queued
 * and no callback to come: -EAGAIN when the pool's queue (or this loop's
 * share of job records, as many as the queue holds) is full: back-pressure,
 * never a blocked loop; -ESHUTDOWN when the loop has finished running;
 * -ENOSYS when the loop has no pool; -EINVAL for NULL work or done. Only
 * on `loop`'s own thread. A graceful stop (also a forced one) waits for the
 * jobs already on a worker before the loop ends; jobs still queued at a
 * forced stop are dropped (done gets -ESHUTDOWN). A work function that
 * never returns therefore keeps the engine from stopping.
 */
int coil_defer_to_thread(struct coil_loop *loop, coil_work_fn work,
			 coil_done_fn done, void *arg);

/*
 * Cancel job `id` of `loop`. A job no worker has started is dropped and
 * its done runs with -ECANCELED on the loop's next turn; a job already
 * running is not interrupted: its result is dropped and done runs with
 * -ECANCELED once work returned (so `arg` stays in use until done).
 * Returns 0, or -ENOENT when the job already finished (its done has run or
 * is about to with the real result) or the id is unknown, -EALREADY when it
 * was cancelled before. Only on `loop`'s own thread.
 */
int coil_defer_cancel(struct coil_loop *loop, int id);

/* Jobs this loop submitted whose done has not run yet. Loop thread. */
unsigned coil_defer_pending(const struct coil_loop *loop);

#endif
