/* SPDX-License-Identifier: MIT */
#ifndef COIL_LOOP_H
#define COIL_LOOP_H

#include <stdint.h>

/*
 * struct coil_loop is the reactor of one core: a pinned thread that owns its
 * own completion ring (or readiness queue), timers, buffers and connections.
 * Nothing it owns may be touched from another thread. Every callback coil
 * makes (protocol ops, timers) runs on the loop that owns the object, so
 * protocol code needs no locks.
 */
struct coil_loop;

/* The loop's index in its engine, 0..cores-1. Any thread. */
unsigned coil_loop_id(const struct coil_loop *loop);

/*
 * The loop's cached monotonic clock in milliseconds / nanoseconds, read once
 * per loop turn (cheap, no syscall). Under the fake backend it is the fake
 * clock. Only on the loop's own thread.
 */
uint64_t coil_loop_now_ms(const struct coil_loop *loop);
uint64_t coil_loop_now_ns(const struct coil_loop *loop);

struct coil_conn;

/*
 * Open an outgoing TCP connection on `loop` to the endpoint of service
 * `service` (an index from coil_engine_client(); the fake loop's only
 * service is 0), nonblocking: io_uring issues IORING_OP_CONNECT, epoll
 * waits for writability. On success *out is the new connection, its state
 * zeroed: the caller may fill coil_conn_state() at once, and may write
 * (queued until connected), close or abort it. Later, on the loop, exactly
 * one of:
 *  - on_open(conn) once connected (TCP_NODELAY set unless the service has
 *    COIL_SERVICE_NAGLE), then the usual on_data/on_close;
 *  - on_close(conn, -errno) without on_open when the connect failed
 *    (-ECONNREFUSED, -ETIMEDOUT, -ENETUNREACH...), or with
 *    COIL_CLOSE_LOCAL when it was closed/aborted before connecting.
 * Returns 0, or -errno with nothing opened and no callback to come:
 * -EINVAL (bad service index or address), -ESHUTDOWN (the loop is
 * stopping), -EMFILE (max_conns reached, or the process fd limit), or the
 * socket(2) error. Only on the loop's own thread (e.g. from loop_start, a
 * timer or a callback).
 */
int coil_loop_connect(struct coil_loop *loop, int service,
		      struct coil_conn **out);

#endif
