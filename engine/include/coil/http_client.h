/* SPDX-License-Identifier: MIT */
/*
 * An HTTP/1.1 client on coil's loops (Twisted's Agent): requests to one
 * upstream (a client service of the engine, see coil_engine_client) over
 * keep-alive connections from a coil_pool, the response head and body
 * streamed to callbacks (Content-Length, chunked or close-delimited), a
 * timeout on the wait for each response byte.
 *
 * Setup: the client service's protocol is coil_http_client_ops and its
 * state_size coil_http_client_state_size(). Then, on each loop that sends
 * requests (its thread), one struct coil_http_client per upstream. All
 * calls and callbacks run on that loop's thread.
 */
#ifndef COIL_HTTP_CLIENT_H
#define COIL_HTTP_CLIENT_H

#include <coil/http1.h>
#include <coil/pool.h>
#include <coil/service.h>
#include <coil/timer.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct coil_http_client;
struct coil_http_call;

/* The protocol of a client service whose connections this client uses. */
extern const struct coil_proto_ops coil_http_client_ops;
/* ... and its per-connection state size. */
size_t coil_http_client_state_size(void);

struct coil_http_client_opts {
	size_t sz;                 /* sizeof(struct coil_http_client_opts) */
	int service;               /* the client service's index */
	unsigned max_conns;        /* pool size; 0: 16 */
	unsigned idle_timeout_ms;  /* idle keep-alive connections; 0: 30 s */
	unsigned timeout_ms;       /* longest wait for a connection, and for
				      each response byte; 0: 30 s */
	size_t write_high_water;   /* the client service's write_high_water
				      (0: coil's default, 256 KiB): a streamed
				      request body is busy above it */
};

/* What a call reports. Slices are lent for the callback only. */
struct coil_http_call_ops {
	/* The response head (1xx interim responses are skipped). */
	void (*on_head)(struct coil_http_call *call,
			const struct coil_http1_response *resp);
	/* Body bytes, in order, framing removed. */
	void (*on_body)(struct coil_http_call *call, const uint8_t *data,
			size_t len);
	/* The end, exactly once (unless cancelled): 0 the response is
	 * complete; or -ETIMEDOUT (no connection, or no response byte, in
	 * time), -ECONNREFUSED and other connect errors, -ECONNRESET (the
	 * upstream closed or failed mid-response), -EPROTO (a response coil
	 * would not relay: bad framing, ambiguous length), -EAGAIN (too many
	 * waiting). The call may be freed from here. */
	void (*on_end)(struct coil_http_call *call, int err);
	/* A streamed request body (coil_http_call_open) was busy and its
	 * output drained: write more. Required with coil_http_call_open,
	 * unused otherwise. */
	void (*on_drain)(struct coil_http_call *call);
};

/* One request in flight: embed it in the caller's state. Fields are
 * private, except `data`. */
struct coil_http_call {
	struct coil_pool_wait wait;
	struct coil_timer timer;
	struct coil_http_client *cl;
	const struct coil_http_call_ops *ops;
	struct coil_pool_conn *pc;
	const void *req;
	size_t req_len;
	bool head_request;
	bool got_bytes;            /* a response byte arrived */
	bool retried;
	bool paused;
	bool stream;               /* the body follows (coil_http_call_open) */
	bool body_sent;            /* a body byte went to the connection */
	bool body_done;            /* coil_http_call_write_end */
	bool blocked;              /* coil_http_call_busy said so */
	uint8_t state;
	uint8_t *pend;             /* body bytes before the connection */
	size_t pend_len, pend_cap;
	void *data;                /* free for the caller */
};

/* Create a client on `loop` (its thread). Returns 0 and sets *out,
 * -EINVAL, -ENOMEM. */
int coil_http_client_create(struct coil_loop *loop,
			    const struct coil_http_client_opts *opts,
			    struct coil_http_client **out);

/* Free it: calls in flight end with -ECANCELED (their on_end runs), its
 * connections close. The loop's thread, or after the engine is gone. */
void coil_http_client_destroy(struct coil_http_client *cl);

/*
 * Send a request: `req` (`len` bytes: the complete request head and body,
 * framed by the caller, e.g. with Content-Length) must stay valid and
 * unchanged until on_end or coil_http_call_cancel. `head_request`: the
 * method is HEAD (the response has no body). A request that fails on a
 * reused keep-alive connection before any response byte arrived (the
 * upstream closed it meanwhile) is sent once more on a new connection.
 * Returns 0 (on_end will follow), or -errno with nothing started.
 */
int coil_http_call_start(struct coil_http_client *cl,
			 struct coil_http_call *call,
			 const struct coil_http_call_ops *ops,
			 const void *req, size_t len, bool head_request);

/*
 * Send a request whose body streams (a proxy's upload): `head` (`len`
 * bytes: the request head, framing fields included: Content-Length, or
 * Transfer-Encoding: chunked with the caller writing the chunks) as for
 * coil_http_call_start; then the body in coil_http_call_write() calls and
 * coil_http_call_write_end(). Such a call is never sent again once a body
 * byte went out (a kept-alive connection closed before the first response
 * byte then fails the call with -ECONNRESET). `ops->on_drain` is required.
 * Returns as coil_http_call_start.
 */
int coil_http_call_open(struct coil_http_client *cl,
			struct coil_http_call *call,
			const struct coil_http_call_ops *ops,
			const void *head, size_t len, bool head_request);

/*
 * Body bytes of a call from coil_http_call_open, copied: written to the
 * connection, or kept until the connection is there. Back-pressure: once
 * coil_http_call_busy() is true, stop writing until ops->on_drain runs.
 * Each write restarts the response timeout. Returns 0, -EPIPE (the call
 * ended or was cancelled: the bytes are dropped), -EINVAL (not a streamed
 * call, or after write_end), -ENOMEM (nothing kept: cancel the call), or
 * coil_conn_write's error (the connection goes, the call ends with it).
 */
int coil_http_call_write(struct coil_http_call *call, const void *data,
			 size_t len);

/* The body is complete (its last bytes, e.g. the last chunk, were
 * written): the connection may be reused after the response. */
void coil_http_call_write_end(struct coil_http_call *call);

/* True when the streamed body's output (kept or queued on the connection)
 * is above the high-water mark: ops->on_drain follows once it fell below
 * half of it. False for a call that ended. */
bool coil_http_call_busy(struct coil_http_call *call);

/* Abandon a call: no callback follows; a connection with the response in
 * flight is closed, not reused. Harmless after on_end. */
void coil_http_call_cancel(struct coil_http_call *call);

/* Stop / restart reading the response (back-pressure: the consumer of
 * its body is full); the response timeout does not run meanwhile.
 * Harmless when the call has no connection. */
void coil_http_call_pause(struct coil_http_call *call);
void coil_http_call_resume(struct coil_http_call *call);

/* The pool's counters (reuse: stats.reuses of stats.gets). */
void coil_http_client_stats(const struct coil_http_client *cl,
			    struct coil_pool_stats *st);

#endif
