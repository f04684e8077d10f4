/* SPDX-License-Identifier: MIT */
/*
 * The HTTP/1.1 client (coil/http_client.h). A call takes a connection from
 * the pool, writes its request, and reads one response from it: the head
 * with coil_http1_response_parse (not resumable: the head is parsed again
 * from its start when more arrives, bounded by max_head), the body with
 * coil_http1_body_read, or to EOF when close-delimited. A connection goes
 * back to the pool only after a complete response that keeps it alive and
 * left no stray bytes behind.
 */
#include "mem/mem.h"

#include <coil/conn.h>
#include <coil/http_client.h>
#include <coil/loop.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_MAX_HEADERS 100u

enum { CALL_IDLE, CALL_WAIT, CALL_SENT, CALL_BODY, CALL_DONE };

struct coil_http_client {
	struct coil_loop *loop;
	struct coil_pool *pool;
	unsigned timeout_ms;
	size_t high_water;          /* a streamed body is busy above it */
	struct coil_http1_header hdrs[CLIENT_MAX_HEADERS];
};

/* Per connection (the client service's state). */
struct cconn {
	struct coil_pool_conn link;
	struct coil_http_call *call;
	struct coil_http1_body body;
	bool close_delimited;
	bool keep;
};

#define call_of(w) ((struct coil_http_call *)(void *)((char *)(w) - \
	offsetof(struct coil_http_call, wait)))

size_t coil_http_client_state_size(void)
{
	return sizeof(struct cconn);
}

static void pend_free(struct coil_http_call *call)
{
	free(call->pend);
	call->pend = NULL;
	call->pend_len = call->pend_cap = 0;
}

static void call_end(struct coil_http_call *call, int err)
{
	pend_free(call);
	call->state = CALL_DONE;
	coil_timer_stop(&call->timer);
	call->pc = NULL;
	call->ops->on_end(call, err);
}

/* Detach the call from its connection; `reuse`: the response ended
 * cleanly and the connection may serve the next call. */
static void call_release(struct coil_http_call *call, bool reuse)
{
	struct coil_pool_conn *pc = call->pc;
	struct cconn *s;

	if (!pc)
		return;
	s = (struct cconn *)(void *)pc;
	s->call = NULL;
	if (call->paused) {
		/* paused by a body callback, and the response ended in the
		 * same input: the next call must find it reading */
		call->paused = false;
		coil_conn_resume(pc->conn);
	}
	coil_pool_put(pc, reuse);
}

static void call_fail(struct coil_http_call *call, int err)
{
	call_release(call, false);
	call_end(call, err);
}

static void arm(struct coil_http_call *call)
{
	coil_timer_start(&call->timer, call->cl->timeout_ms);
}

static void call_send(struct coil_http_call *call, struct coil_pool_conn *pc)
{
	struct cconn *s = (struct cconn *)(void *)pc;
	int ret;

	call->pc = pc;
	call->state = CALL_SENT;
	call->got_bytes = false;
	s->call = call;
	s->close_delimited = s->keep = false;
	ret = coil_conn_write(pc->conn, call->req, call->req_len);
	if (!ret && call->pend_len) {
		/* the body bytes written while there was no connection */
		ret = coil_conn_write(pc->conn, call->pend, call->pend_len);
		call->body_sent = true;
	}
	pend_free(call);
	if (ret) {
		call_fail(call, ret);
		return;
	}
	arm(call);
	if (call->blocked &&
	    coil_conn_queued(pc->conn) <= call->cl->high_water) {
		/* the kept bytes did not take the queue over its mark: no
		 * drain will come from the connection, so now */
		call->blocked = false;
		call->ops->on_drain(call);
	}
}

static int call_get(struct coil_http_call *call);

static void got_conn(struct coil_pool_wait *w, struct coil_pool_conn *pc,
		     int err)
{
	struct coil_http_call *call = call_of(w);

	if (!pc) {
		call_end(call, err);
		return;
	}
	call_send(call, pc);
}

static int call_get(struct coil_http_call *call)
{
	struct coil_pool_conn *pc;
	int ret = coil_pool_get(call->cl->pool, &call->wait, got_conn, &pc);

	if (ret < 0)
		return ret;
	if (ret == 1) {
		call_send(call, pc);
		return 0;
	}
	call->state = CALL_WAIT;
	return 0;
}

static void timer_cb(struct coil_timer *t)
{
	call_fail(t->data, -ETIMEDOUT);
}

static int start(struct coil_http_client *cl, struct coil_http_call *call,
		 const struct coil_http_call_ops *ops, const void *req,
		 size_t len, bool head_request, bool stream)
{
	void *data = call->data;

	memset(call, 0, sizeof(*call));
	call->data = data;
	call->cl = cl;
	call->ops = ops;
	call->req = req;
	call->req_len = len;
	call->head_request = head_request;
	call->stream = stream;
	coil_timer_init(&call->timer, cl->loop, timer_cb, call);
	/* the pool's own wait timeout is the same */
	return call_get(call);
}

int coil_http_call_start(struct coil_http_client *cl,
			 struct coil_http_call *call,
			 const struct coil_http_call_ops *ops,
			 const void *req, size_t len, bool head_request)
{
	return start(cl, call, ops, req, len, head_request, false);
}

int coil_http_call_open(struct coil_http_client *cl,
			struct coil_http_call *call,
			const struct coil_http_call_ops *ops,
			const void *head, size_t len, bool head_request)
{
	if (!ops || !ops->on_drain)
		return -EINVAL;
	return start(cl, call, ops, head, len, head_request, true);
}

int coil_http_call_write(struct coil_http_call *call, const void *data,
			 size_t len)
{
	int ret;

	if (call->state == CALL_DONE || call->state == CALL_IDLE)
		return -EPIPE;
	if (!call->stream || call->body_done)
		return -EINVAL;
	if (!len)
		return 0;
	if (call->pc) {
		ret = coil_conn_write(call->pc->conn, data, len);
		if (ret)
			return ret;   /* the connection goes: its close ends
					 the call */
		call->body_sent = true;
		if (!call->paused)
			arm(call);   /* progress: the response timeout restarts */
		return 0;
	}
	if (len > call->pend_cap - call->pend_len) {
		uint8_t *b = coil__grow(call->pend, &call->pend_cap,
					call->pend_len + len, 4096);

		if (!b)
			return -ENOMEM;
		call->pend = b;
	}
	memcpy(call->pend + call->pend_len, data, len);
	call->pend_len += len;
	return 0;
}

void coil_http_call_write_end(struct coil_http_call *call)
{
	call->body_done = true;
}

bool coil_http_call_busy(struct coil_http_call *call)
{
	bool busy;

	if (call->state == CALL_DONE || call->state == CALL_IDLE ||
	    !call->stream)
		return false;
	busy = call->pc ? coil_conn_queued(call->pc->conn) > call->cl->high_water
			: call->pend_len > call->cl->high_water;
	if (busy)
		call->blocked = true;
	return busy;
}

void coil_http_call_cancel(struct coil_http_call *call)
{
	switch (call->state) {
	case CALL_WAIT:
		coil_pool_cancel(&call->wait);
		break;
	case CALL_SENT:
	case CALL_BODY:
		call_release(call, false);
		break;
	default:
		return;
	}
	pend_free(call);
	coil_timer_stop(&call->timer);
	call->state = CALL_DONE;
	call->pc = NULL;
}

void coil_http_call_pause(struct coil_http_call *call)
{
	if (!call->pc || call->paused)
		return;
	call->paused = true;
	coil_timer_stop(&call->timer);
	coil_conn_pause(call->pc->conn);
}

void coil_http_call_resume(struct coil_http_call *call)
{
	if (!call->pc || !call->paused)
		return;
	call->paused = false;
	arm(call);
	coil_conn_resume(call->pc->conn);
}

/* ---- the connection's protocol ---- */

static int cc_open(struct coil_conn *c)
{
	struct cconn *s = coil_conn_state(c);

	coil_pool_opened(&s->link);
	return 0;
}

/* The response ended: the connection goes back (or closes), then the
 * caller hears of it. */
static void response_done(struct cconn *s, bool clean)
{
	struct coil_http_call *call = s->call;

	/* a streamed body not complete yet: the upstream answered early,
	 * the connection is left mid-request */
	call_release(call, clean && s->keep &&
			   (!call->stream || call->body_done));
	call_end(call, 0);
}

static size_t cc_data(struct coil_conn *c, const uint8_t *d, size_t len)
{
	struct cconn *s = coil_conn_state(c);
	struct coil_http_call *call = s->call;
	size_t pos = 0;

	if (!call) {
		/* bytes nobody asked for: the connection is not reusable */
		coil_conn_abort(c);
		return len;
	}
	call->got_bytes = true;
	arm(call);
	for (;;) {
		if (call->state == CALL_SENT) {
			struct coil_http1_response r;
			int n = coil_http1_response_parse(d + pos, len - pos,
				call->head_request, &r, call->cl->hdrs,
				CLIENT_MAX_HEADERS, NULL);

			if (n == COIL_HTTP1_NEED_MORE)
				return pos;
			if (n < 0 || r.status == 101) {
				call_fail(call, -EPROTO);
				return len;
			}
			pos += (size_t)n;
			if (r.status < 200)
				continue;   /* 100 Continue, 103 Early Hints */
			s->keep = (r.flags & COIL_HTTP1_F_KEEP_ALIVE) != 0;
			s->close_delimited =
				(r.flags & COIL_HTTP1_F_CLOSE_DELIMITED) != 0;
			coil_http1_response_body_init(&s->body, &r, NULL, NULL,
						      0);
			call->state = CALL_BODY;
			call->ops->on_head(call, &r);
			if (s->call != call)
				return len;   /* cancelled from the callback */
			continue;
		}
		if (s->close_delimited) {
			/* to EOF: cc_close ends it */
			if (pos < len)
				call->ops->on_body(call, d + pos, len - pos);
			return len;   /* (a cancel there closed it) */
		}
		{
			struct coil_http1_str slice;
			size_t used;
			int r = coil_http1_body_read(&s->body, d + pos,
						     len - pos, &slice, &used);

			pos += used;
			if (r == COIL_HTTP1_DATA) {
				call->ops->on_body(call,
					(const uint8_t *)slice.ptr, slice.len);
				if (s->call != call)
					return len;
			} else if (r == COIL_HTTP1_NEED_MORE) {
				return pos;
			} else if (r == COIL_HTTP1_DONE) {
				/* stray bytes after the response: not
				 * reusable (nothing was asked) */
				response_done(s, pos == len);
				return len;
			} else {
				call_fail(call, -EPROTO);
				return len;
			}
		}
	}
}

static void cc_close(struct coil_conn *c, int reason)
{
	struct cconn *s = coil_conn_state(c);
	struct coil_http_call *call = s->call;

	coil_pool_closed(&s->link, reason);
	if (!call)
		return;
	s->call = NULL;
	call->pc = NULL;
	if (call->state == CALL_BODY && s->close_delimited &&
	    reason == COIL_CLOSE_PEER) {
		call_end(call, 0);
		return;
	}
	/* A kept-alive connection the upstream closed just before our
	 * request reached it: once more, on a fresh one. */
	if (call->state == CALL_SENT && !call->got_bytes && !call->retried &&
	    !call->body_sent && s->link.uses > 1) {
		call->retried = true;
		coil_timer_stop(&call->timer);
		if (!call_get(call))
			return;
	}
	call_end(call, reason < 0 ? reason : -ECONNRESET);
}

/* The request's output fell below half the high-water mark: a streamed
 * body that was busy may go on. */
static void cc_drain(struct coil_conn *c)
{
	struct cconn *s = coil_conn_state(c);
	struct coil_http_call *call = s->call;

	if (!call || !call->blocked)
		return;
	call->blocked = false;
	if (!call->paused)
		arm(call);
	call->ops->on_drain(call);
}

const struct coil_proto_ops coil_http_client_ops = {
	.on_open = cc_open,
	.on_data = cc_data,
	.on_drain = cc_drain,
	.on_close = cc_close,
};

int coil_http_client_create(struct coil_loop *loop,
			    const struct coil_http_client_opts *opts,
			    struct coil_http_client **out)
{
	struct coil_http_client_opts o = { 0 };
	struct coil_pool_opts po = { .sz = sizeof(po) };
	struct coil_http_client *cl;
	int ret;

	if (!loop || !opts || opts->sz < sizeof(size_t) || !out)
		return -EINVAL;
	memcpy(&o, opts, opts->sz < sizeof(o) ? opts->sz : sizeof(o));
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -ENOMEM;
	cl->loop = loop;
	cl->timeout_ms = o.timeout_ms ? o.timeout_ms : 30000;
	cl->high_water = o.write_high_water ? o.write_high_water : 256u << 10;
	po.service = o.service;
	po.link_offset = offsetof(struct cconn, link);
	po.max_size = o.max_conns;
	po.idle_timeout_ms = o.idle_timeout_ms;
	po.wait_timeout_ms = cl->timeout_ms;
	ret = coil_pool_create(loop, &po, &cl->pool);
	if (ret) {
		free(cl);
		return ret;
	}
	*out = cl;
	return 0;
}

void coil_http_client_destroy(struct coil_http_client *cl)
{
	if (!cl)
		return;
	coil_pool_destroy(cl->pool);
	free(cl);
}

void coil_http_client_stats(const struct coil_http_client *cl,
			    struct coil_pool_stats *st)
{
	coil_pool_stats(cl->pool, st);
}
