/* SPDX-License-Identifier: MIT */
/*
 * Outbound connection pools, Twisted's adbapi.ConnectionPool for any
 * protocol: connections to one endpoint (a client service of the engine,
 * see coil_engine_client and coil_loop_connect) kept open on one loop and
 * handed out again instead of connecting per request.
 *
 * A pool belongs to one loop and everything here runs on that loop's
 * thread. It has a maximum size (connections open or connecting), closes
 * connections idle longer than a timeout, never hands out one the peer
 * closed or that is closing (evicted), and queues callers when it is full,
 * each with a timeout. Counters tell how often connections were reused.
 *
 * The protocol (the client service's ops) cooperates: it embeds a
 * struct coil_pool_conn in its per-connection state (the pool finds it at
 * opts.link_offset) and tells the pool when a connection opens
 * (coil_pool_opened, from on_open) and closes (coil_pool_closed, from
 * on_close). A connection the protocol is done with goes back with
 * coil_pool_put: reusable (e.g. an HTTP/1.1 response read to its end
 * with keep-alive) or not (closed by the pool).
 */
#ifndef COIL_POOL_H
#define COIL_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <coil/timer.h>

struct coil_conn;
struct coil_loop;
struct coil_pool;

/* Embedded in the protocol's per-connection state. Fields are private. */
struct coil_pool_conn {
	struct coil_conn *conn;
	struct coil_pool *pool;              /* NULL: not (or no longer) the
						pool's */
	struct coil_pool_conn *prev, *next;  /* idle list */
	uint64_t idle_since;
	uint32_t uses;                       /* times handed out */
	uint8_t state;
};

struct coil_pool_wait;
/* A get completed: `pc` is the connection to use (connected), or NULL
 * with `err`: -ETIMEDOUT (waited longer than wait_timeout_ms), the connect
 * error (-ECONNREFUSED...), -ECANCELED (the pool was destroyed). */
typedef void (*coil_pool_cb)(struct coil_pool_wait *w,
			     struct coil_pool_conn *pc, int err);

/* A caller waiting for a connection: embed it in the request that needs
 * one (no allocation per get). Fields are private, except `data`. */
struct coil_pool_wait {
	struct coil_pool_wait *prev, *next;
	struct coil_pool *pool;
	coil_pool_cb cb;
	struct coil_timer timer;
	void *data;                          /* free for the caller */
};

struct coil_pool_opts {
	size_t sz;                 /* sizeof(struct coil_pool_opts) */
	int service;               /* coil_loop_connect's service index */
	size_t link_offset;        /* offset of the struct coil_pool_conn in
				      the service's per-connection state */
	unsigned max_size;         /* connections open or connecting; 0: 16 */
	unsigned idle_timeout_ms;  /* close an idle one after this; 0: 30 s */
	unsigned wait_timeout_ms;  /* longest wait for a connection; 0: 10 s */
	unsigned max_waiters;      /* 0: 1024; more: coil_pool_get -EAGAIN */
};

struct coil_pool_stats {
	uint64_t connects;         /* connections opened (attempts) */
	uint64_t connect_errors;   /* connects that failed */
	uint64_t gets;             /* connections handed out */
	uint64_t reuses;           /* ... of them already used before */
	uint64_t evicted;          /* idle ones the peer closed */
	uint64_t idle_closed;      /* idle ones closed by the idle timeout */
	uint64_t wait_timeouts;    /* gets that timed out waiting */
	unsigned idle, busy, connecting, waiting;   /* now */
};

/* Create a pool on `loop` (its thread). Returns 0 and sets *out, or
 * -EINVAL (bad opts), -ENOMEM. */
int coil_pool_create(struct coil_loop *loop, const struct coil_pool_opts *opts,
		     struct coil_pool **out);

/* Close the idle connections, fail the waiters with -ECANCELED, let go of
 * the busy ones (their later coil_pool_put closes them, coil_pool_closed
 * ignores them), free the pool. On the loop's thread, or after the engine
 * is gone. */
void coil_pool_destroy(struct coil_pool *pool);

/*
 * Get a connection. Returns 1 with *out set when an idle one is ready now
 * (no callback), 0 when `w` was queued (its `cb` runs later, exactly once,
 * unless coil_pool_cancel), or -errno: -EAGAIN (max_waiters reached), or
 * coil_loop_connect's error when the pool had to connect and could not
 * (nothing queued). `w` must stay valid until its callback or cancel.
 */
int coil_pool_get(struct coil_pool *pool, struct coil_pool_wait *w,
		  coil_pool_cb cb, struct coil_pool_conn **out);

/* Stop waiting (the caller went away): no callback follows. Harmless when
 * `w` is not waiting. */
void coil_pool_cancel(struct coil_pool_wait *w);

/* Give a connection back: `reusable` keeps it for the next get (or hands
 * it to the first waiter at once), otherwise it is closed. */
void coil_pool_put(struct coil_pool_conn *pc, bool reusable);

/* From the protocol's on_open / on_close: the pool's connection `pc`
 * (a no-op for one the pool does not know). */
void coil_pool_opened(struct coil_pool_conn *pc);
void coil_pool_closed(struct coil_pool_conn *pc, int reason);

/* The pool's counters. */
void coil_pool_stats(const struct coil_pool *pool, struct coil_pool_stats *st);

#endif
