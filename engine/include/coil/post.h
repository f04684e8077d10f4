/* SPDX-License-Identifier: MIT */
#ifndef COIL_POST_H
#define COIL_POST_H

/*
 * Messages between loops (and from any thread to a loop). Loops share
 * nothing; work that concerns another loop's connections travels as a
 * message: coil_loop_post(target, fn, arg) queues fn(target, arg) to run on
 * the target's thread during its next turn. Each loop's queue is bounded
 * (coil_engine_opts.post_queue, default 1024); a full queue is an error at
 * once, never a wait. Messages from one thread to one loop run in the
 * order they were posted.
 */

struct coil_loop;
struct coil_engine;

typedef void (*coil_post_fn)(struct coil_loop *loop, void *arg);

/*
 * Run fn(target, arg) on `target`'s thread soon (also when target is the
 * calling loop: never synchronously). `arg` is the caller's: what it
 * points to must stay valid until fn ran (it belongs to fn then). Returns
 * 0, -EAGAIN when the target's queue is full (nothing queued: retry later
 * or drop, the caller decides), -ESHUTDOWN when the target loop has
 * finished running, -EINVAL for a NULL target or fn. Any thread.
 */
int coil_loop_post(struct coil_loop *target, coil_post_fn fn, void *arg);

/* A pointer of the application's per loop (a list of this loop's
 * clients, a cache...), NULL until set. Set it on the loop's own thread
 * (loop_start is the place); read it there, from a message posted to the
 * loop, or after coil_engine_run returned (to free it). */
void coil_loop_set_data(struct coil_loop *loop, void *data);
void *coil_loop_data(const struct coil_loop *loop);

/* The engine that runs `loop` (NULL for a fake loop). Any thread. */
struct coil_engine *coil_loop_engine(const struct coil_loop *loop);

/* How many loops the engine runs (coil_engine_opts.cores resolved). Any
 * thread, after coil_engine_create. */
unsigned coil_engine_loops(const struct coil_engine *eng);

/*
 * Loop `i` (0 <= i < coil_engine_loops), for coil_loop_post, or NULL when
 * `i` is out of range or that loop is not running yet (it may still be
 * starting: every loop is running once each loop_start callback has been
 * called). A loop pointer stays valid until coil_engine_destroy, also
 * after its loop finished. Any thread.
 */
struct coil_loop *coil_engine_loop(struct coil_engine *eng, unsigned i);

#endif
