/* SPDX-License-Identifier: MIT */
#ifndef COIL_TESTING_H
#define COIL_TESTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * The fake backend: an in-memory, single-threaded, deterministic loop for
 * unit-testing protocols (Twisted's StringTransport + MemoryReactorClock).
 * It runs the real connection core (receive buffers, carry, send queue,
 * timers); only the kernel is replaced. Bytes fed are delivered in receive
 * buffers of buf_size; sends complete on the next turn, optionally short.
 * Connections are named by small integer ids that stay valid after close.
 * Everything runs on the calling thread.
 */

struct coil_fake;
struct coil_loop;
struct coil_service;

struct coil_fake_opts {
	size_t sz;           /* sizeof(struct coil_fake_opts) */
	unsigned bufs;       /* receive buffers; default 64 */
	unsigned buf_size;   /* bytes per receive buffer; default 4096 */
	unsigned max_conns;  /* default 1024 */
	/* coil_defer_to_thread on the fake loop: with defer_threads 0 (the
	 * default) no thread runs jobs: the test runs them one at a time
	 * with coil_fake_defer_run (deterministic); with N > 0, N real
	 * workers do (for tests of the threads themselves). */
	unsigned defer_threads;
	unsigned defer_queue;  /* jobs queued at most; default 64 */
	unsigned post_queue;   /* coil_loop_post queue; default 1024 */
};

/* Create a fake loop serving `svc` (copied). Clock starts at 1000 ms.
 * Returns 0 or -errno. */
int coil_fake_create(const struct coil_fake_opts *opts,
		     const struct coil_service *svc, struct coil_fake **out);
/* Abort every open connection (on_close runs) and free everything. */
void coil_fake_destroy(struct coil_fake *fake);

struct coil_loop *coil_fake_loop(struct coil_fake *fake);

/* A client connects: on_open runs. Returns the connection id (>= 0), or
 * -errno (-ECONNREFUSED if on_open refused it, -EMFILE when full). */
int coil_fake_connect(struct coil_fake *fake);

/* The client sends bytes; they are delivered through the receive buffers
 * during the following loop turns (coil_fake_feed runs turns until the
 * bytes are consumed or the loop makes no progress). Returns 0 or -errno. */
int coil_fake_feed(struct coil_fake *fake, int id, const void *data,
		   size_t len);

/* The same bytes without running the loop: they arrive with the next turn
 * (coil_fake_turn), so input for several connections can land in one
 * turn. Returns 0 or -errno. */
int coil_fake_queue(struct coil_fake *fake, int id, const void *data,
		    size_t len);

/* The client half-closes (EOF on the server side). */
void coil_fake_shutdown(struct coil_fake *fake, int id);

/* The client resets the connection (the server sees -ECONNRESET). */
void coil_fake_reset(struct coil_fake *fake, int id);

/* Run one loop turn: due timers, flush sends, complete I/O. */
void coil_fake_turn(struct coil_fake *fake);

/* Run turns until nothing changes (at most 1000). */
void coil_fake_settle(struct coil_fake *fake);

/* Advance the fake clock by `ms` (1 ms at a time, firing timers in order),
 * then settle. */
void coil_fake_advance(struct coil_fake *fake, uint64_t ms);

/* Make each send on `id` accept at most `max` bytes (0: unlimited), to
 * exercise short sends. Setting `stall` makes sends not complete at all until
 * cleared (a peer that stopped reading). */
void coil_fake_set_send(struct coil_fake *fake, int id, size_t max, bool stall);

/* Take up to `cap` bytes the server sent on `id` (oldest first); returns the
 * count. */
size_t coil_fake_take(struct coil_fake *fake, int id, void *out, size_t cap);

/* Bytes sent on `id` not yet taken. */
size_t coil_fake_pending(struct coil_fake *fake, int id);

/* Number of send operations the server issued on `id` so far. */
unsigned coil_fake_sends(struct coil_fake *fake, int id);

/* True once the server closed `id`; *reason gets on_close's reason and
 * *reset whether it was an abort. */
bool coil_fake_closed(struct coil_fake *fake, int id, int *reason, bool *reset);

/* True once the server half-closed `id` (lingering close: FIN sent, the
 * connection still reads). */
bool coil_fake_shut(struct coil_fake *fake, int id);

/* By default a fake peer answers the server's FIN with its own, like most
 * clients; a stubborn one (on = true) keeps its side open and may go on
 * sending, so the test drives the end of a lingering close. */
void coil_fake_set_stubborn(struct coil_fake *fake, int id, bool on);

/* Outgoing connections (coil_loop_connect on coil_fake_loop(), service
 * 0) stay connecting until the test completes them; they get ids like
 * accepted ones. The oldest one still connecting, or -1. */
int coil_fake_connecting(struct coil_fake *fake);
/* Complete connect `id`: res 0 connects (on_open runs), a negative errno
 * fails it (on_close(conn, res) runs, without on_open). Then settles.
 * Returns 0, or -EINVAL if `id` is not connecting or res > 0. */
int coil_fake_connect_done(struct coil_fake *fake, int id, int res);
/* The live connection handle for `id`, or NULL once closed. */
struct coil_conn *coil_fake_conn(struct coil_fake *fake, int id);

/* Addresses (coil_conn_peer/coil_conn_local): the client of connection
 * `id` is 127.0.0.1, port 40000 + id % 20000, unless set here (any family,
 * `len` bytes of `sa` copied; the protocol sees it from its next
 * coil_conn_peer call); the local side is 127.0.0.1 at the service's port
 * (8080 when it is 0). A reset connection has no peer (-ENOTCONN).
 * Returns 0, or -EINVAL for an unknown id or a bad length. */
int coil_fake_set_peer(struct coil_fake *fake, int id,
		       const struct sockaddr *sa, socklen_t len);

/* Run up to `max` queued defer jobs on the calling thread, oldest first
 * (only with defer_threads 0); their done callbacks run on the next turn.
 * Returns how many ran. */
unsigned coil_fake_defer_run(struct coil_fake *fake, unsigned max);

/* Receive buffers currently free in the loop's pool. */
unsigned coil_fake_free_bufs(struct coil_fake *fake);

#endif
