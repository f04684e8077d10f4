/* SPDX-License-Identifier: MIT */
/*
 * The HTTP server's connections (the service's protocol ops): reading
 * requests from a connection, pipelined ones in order, their life cycle
 * from head to answer (bodies read for a handler or discarded, answers
 * deferred and resumed, errors that end a request), the request parts
 * lent from the loop's slab while one is in progress, and the timeouts
 * (header, body, keep-alive, send) that bound what a client may hold. The
 * server object and its per-loop state are in server.c.
 *
 * Hot path: on_data parses every complete pipelined request in a loop,
 * stages the responses in the loop's output buffer and hands them to coil
 * in one coil_conn_write, so a batch of requests costs one copy and one
 * gathered send. Nothing here allocates per request.
 *
 * The request parser and its header array are per loop, not per
 * connection: a head that is complete in the input (the common case) is
 * parsed in one call. An incomplete one is parsed again from its start when
 * more arrives, but only once the input holds an end of head or has grown
 * by half since the last try, so a client trickling bytes costs linear
 * time, and a connection needs no space for header slices.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
/* Drop the cache entries this connection pinned for its output (only
 * once nothing of it is queued, or at close). */
void httpd__unpin_all(struct httpd_conn *s)
{
	for (unsigned i = 0; i < s->nheld; i++)
		httpd__cache_put(s->held[i]);
	s->nheld = 0;
}

/* ---- request parts (struct httpd_req) ---- */

/* Request parts a loop has used at once beyond which, once none is in use,
 * their pages go back to the kernel: its usual number of requests in
 * progress at once, whose pages stay for the next ones. */
#define HTTPD__KEEP_RQ 256u

/* Give `s` its request part (zeroed) from the loop's slab if it has none:
 * never from the heap (issue 18), and the slab has one per connection the
 * loop may hold. Returns false if it is used up all the same. */
static bool rq_get(struct httpd_conn *s)
{
	struct httpd_req *rq;

	if (s->rq)
		return true;
	rq = coil__slab_get(&s->lp->rqs);
	if (!rq)
		return false;
	memset(rq, 0, sizeof(*rq));
	s->rq = rq;
	return true;
}

static void rq_put(struct httpd_conn *s)
{
	struct coil__slab *rqs = &s->lp->rqs;

	if (!s->rq)
		return;
	coil__slab_put(rqs, s->rq);
	s->rq = NULL;
	/* A burst past the usual is over: give its memory back. */
	if (!rqs->used && rqs->bumped > HTTPD__KEEP_RQ)
		coil__slab_trim(rqs);
}

/* An idle connection (answered, no answer owed: no deferred handler holds
 * its struct coil_http_req) gives its request part back. Only from the top
 * of this server's own callbacks (on_data, its timer), never below a
 * handler or a response call, which may still look at the request. */
static void rq_release_idle(struct httpd_conn *s)
{
	if (s->rq && s->phase == HC_IDLE && !s->deferred)
		rq_put(s);
}

/* ---- timeouts ---- */

static void arm(struct httpd_conn *s, uint64_t due)
{
	uint64_t now = now_ms(s->lp);

	/* An armed timer due earlier re-checks then (see conn_timer): the
	 * common move to a later deadline touches no wheel. */
	if (coil_timer_active(&s->timer) && s->due <= due)
		return;
	s->due = due;
	coil_timer_start(&s->timer, due > now ? due - now : 0);
}

/* Output was queued at `now`: check on its progress a quarter of the send
 * timeout later (so a stall is cut within 1.25 send timeouts). A timer due
 * sooner stays (arm), so a busy connection touches the wheel at most once
 * per quarter. */
static void send_check(struct httpd_conn *s, uint64_t now)
{
	unsigned st = s->lp->h->cfg.send_timeout_ms;

	arm(s, now + (st >= 4 ? st / 4 : 1));
}

static uint64_t deadline(const struct httpd_conn *s)
{
	const struct coil_http_config *cfg = &s->lp->h->cfg;

	switch (s->phase) {
	case HC_IDLE:
		/* before the first request, the header timeout applies */
		return s->since + (s->served ? cfg->keepalive_timeout_ms
					     : cfg->header_timeout_ms);
	case HC_HEAD:
		return s->since + cfg->header_timeout_ms;
	default:
		return s->since + cfg->body_timeout_ms;
	}
}

/* ---- responses ---- */

static void conn_close(struct httpd_conn *s)
{
	if (s->lp->out_conn == s->conn)
		httpd__out_flush(s->lp);
	s->closed = true;
	coil_conn_close(s->conn);
	/* The close waits for the queued output: conn_timer resets a peer
	 * that stopped reading, which would otherwise hold the connection
	 * forever (found by tests/fuzz/fuzz_httpd.c). */
	if (coil_conn_queued(s->conn)) {
		s->last_queued = 0;
		s->moved = now_ms(s->lp);
		send_check(s, s->moved);
	}
}

void httpd__conn_abort(struct httpd_conn *s)
{
	if (s->lp->out_conn == s->conn)
		s->lp->out_len = 0;
	s->closed = true;
	coil_conn_abort(s->conn);
}

/* ---- request life cycle ---- */

static void ctx_init(struct coil_http_req *x, struct httpd_conn *s)
{
	memset(x, 0, sizeof(*x));
	x->conn = s->conn;
	x->route = s->rq->route;
	x->head = s->head_only;
	x->user = s->rq->user;
	x->s = s;
	x->lp = s->lp;
	x->path.ptr = x->query.ptr = x->rest.ptr = x->raw_path.ptr = "";
}

static void fresh_request(struct httpd_conn *s)
{
	s->xh_len = 0;
	s->started = s->responded = s->accepted = s->chunked_out = false;
	s->unread = s->expect = s->head_only = false;
	s->status = 0;
	s->rq->sent = 0;
	s->rq->on_body = NULL;
	s->rq->on_end = NULL;
	s->rq->route = NULL;
	s->ltlen = s->lreflen = s->lualen = 0;
	s->method = COIL_HTTP1_OTHER;
	s->minor = 1;
	memset(s->rq->user, 0, sizeof(s->rq->user));
}

static void request_done(struct httpd_conn *s)
{
	if (s->lp->h->logfd >= 0)
		httpd__log_line(s);
	coil_stats_http(coil_conn_loop(s->conn), s->status);
	s->served++;
	s->phase = HC_IDLE;
	s->since = now_ms(s->lp);
	s->unread = s->accepted = s->started = s->responded = false;
	s->deferred = false;
	s->rq->on_cancel = NULL;
	s->rq->on_drain = NULL;
	if (!s->keep_alive || s->shutting) {
		conn_close(s);
		return;
	}
	/* The answer is queued (or staged): its send timeout starts now. */
	s->moved = s->since;
	send_check(s, s->since);
}

/* Tell a deferred handler that its answer is not wanted any more (the
 * connection is going, or the request failed): it must not touch its
 * struct coil_http_req after this. */
static void cancel_answer(struct httpd_conn *s)
{
	coil_http_cancel_cb cb;

	if (!s->rq)
		return;   /* no request in progress */
	cb = s->rq->on_cancel;
	s->rq->on_drain = NULL;
	if (!s->deferred || s->responded)
		return;
	s->deferred = false;
	s->rq->on_cancel = NULL;
	if (cb)
		cb(&s->rq->ctx, s->rq->cancel_arg);
}

/* The answer moved on (a head, body bytes or its end were staged). From a
 * callback of its own (a timer, an upstream reply: the loop is not inside
 * on_data or a timeout of this server) the staged bytes go to coil now; a
 * completed answer the connection waited for (HC_WAIT) ends the request
 * and lets the pipeline go on. */
void httpd__answer_moved(struct httpd_conn *s)
{
	struct httpd_loop *lp = s->lp;

	if (s->phase == HC_WAIT && s->responded && !s->closed) {
		request_done(s);
		if (!s->closed)
			arm(s, deadline(s));
		if (s->paused) {
			/* the input carried meanwhile comes back to on_data */
			s->paused = false;
			coil_conn_resume(s->conn);
		}
	}
	if (!lp->busy)
		httpd__out_flush(lp);
}

/* Take back the current response if all of it is still staged (never
 * handed to coil): a body error found in the same turn can then still be
 * answered properly. */
static void retract(struct httpd_conn *s)
{
	struct httpd_loop *lp = s->lp;

	if (!s->started || lp->out_conn != s->conn ||
	    s->rq->head_gen != lp->flushes || s->rq->head_at > lp->out_len)
		return;
	lp->out_len = s->rq->head_at;
	s->started = s->responded = s->chunked_out = false;
	s->rq->sent = 0;
}

/* The body cannot be read to its end: answer `status` if nothing was sent
 * yet, else cut the connection (a response was promised and is not
 * complete) or close it after the complete one. */
static void body_fail(struct httpd_conn *s, int status)
{
	struct coil_http_req x;

	cancel_answer(s);
	retract(s);
	if (!s->started) {
		s->xh_len = 0;   /* the handler's headers were for its answer */
		ctx_init(&x, s);
		s->keep_alive = false;
		coil_http_respond_error(&x, status);
		s->unread = false;
		request_done(s);
	} else if (s->responded) {
		conn_close(s);
	} else {
		httpd__conn_abort(s);
	}
}

static void handle_request(struct httpd_conn *s,
			   const struct coil_http1_request *req, size_t rest)
{
	struct httpd_loop *lp = s->lp;
	struct coil_http_server *h = lp->h;
	struct coil_http_req *x = &s->rq->ctx;
	unsigned f = req->flags;
	bool has_body = (f & COIL_HTTP1_F_CHUNKED) ||
			((f & COIL_HTTP1_F_CONTENT_LENGTH) && req->content_length);

	fresh_request(s);
	s->method = (uint8_t)req->method;
	s->minor = (uint8_t)req->version_minor;
	s->keep_alive = (f & COIL_HTTP1_F_KEEP_ALIVE) && !s->shutting;
	s->unread = has_body;
	s->expect = has_body && (f & COIL_HTTP1_F_EXPECT_CONTINUE);
	s->head_only = req->method == COIL_HTTP1_HEAD;
	lp->rest = rest;
	ctx_init(x, s);
	x->req = req;
	if (h->logfd >= 0) {
		/* the method as sent (BREW too), a space, the target */
		uint8_t m = httpd__log_keep(s->ltarget, 16, &req->method_name);

		s->ltarget[m] = ' ';
		s->ltlen = (uint8_t)(m + 1 +
			httpd__log_keep(s->ltarget + m + 1,
				 sizeof(s->ltarget) - m - 1, &req->target));
		s->lreflen = httpd__log_keep(s->lref, sizeof(s->lref),
				      coil_http_header(x, "Referer"));
		s->lualen = httpd__log_keep(s->lua, sizeof(s->lua),
				     coil_http_header(x, "User-Agent"));
	}
	if (f & COIL_HTTP1_F_EXPECT_OTHER) {
		s->keep_alive = false;
		coil_http_respond_error(x, 417);
	} else if (req->method == COIL_HTTP1_OTHER ||
		   req->method == COIL_HTTP1_CONNECT) {
		s->keep_alive = false;
		coil_http_respond_error(x, 501);
	} else if ((f & COIL_HTTP1_F_CONTENT_LENGTH) &&
		   req->content_length > h->cfg.max_body) {
		s->keep_alive = false;
		coil_http_respond_error(x, 413);
	} else {
		httpd__dispatch(x);
	}
	if (!s->started && !s->accepted && !s->deferred)
		coil_http_respond_error(x, 500);   /* a handler that did not answer */
	ctx_init(x, s);   /* the head and path were lent for the handler */
	if (s->closed)
		return;
	/* A body is read for the handler, or discarded to reach the next
	 * request; not while a deferred answer keeps a client that expects
	 * 100-continue waiting (the answer closes the connection). */
	if (s->unread && (s->accepted ||
			  (s->keep_alive && !(s->deferred && s->expect)))) {
		/* read it: for the handler, or to reach the next request */
		coil_http1_body_init(&s->rq->body, req, &h->limits, NULL, 0);
		s->phase = HC_BODY;
		s->since = now_ms(lp);
		arm(s, s->since + h->cfg.body_timeout_ms);
		return;
	}
	if (!s->responded) {
		s->phase = HC_WAIT;
		return;
	}
	request_done(s);
}

/* One step of the body; false: stop here (more input needed, or done). */
static bool body_step(struct httpd_conn *s, const uint8_t *d, size_t len,
		      size_t *pos)
{
	struct coil_http1_str slice;
	struct coil_http_req *x = &s->rq->ctx;
	size_t used;
	int r = coil_http1_body_read(&s->rq->body, d + *pos, len - *pos, &slice,
				     &used);

	*pos += used;
	if (used)
		s->since = now_ms(s->lp);
	if (s->rq->body.announced > s->lp->h->cfg.max_body) {
		body_fail(s, 413);
		return false;
	}
	switch (r) {
	case COIL_HTTP1_DATA:
		if (s->rq->on_body) {
			ctx_init(x, s);
			s->rq->on_body(x, (const uint8_t *)slice.ptr, slice.len);
		}
		return !s->closed;
	case COIL_HTTP1_NEED_MORE:
		return false;
	case COIL_HTTP1_DONE:
		s->unread = false;
		if (s->accepted) {
			ctx_init(x, s);
			s->rq->on_end(x);
			/* neither an answer nor one to come */
			if (!s->responded && !s->closed && !s->started &&
			    !s->deferred)
				coil_http_respond_error(x, 500);
		}
		if (s->closed)
			return false;
		if (!s->responded) {
			s->phase = HC_WAIT;   /* answered later */
			return false;
		}
		request_done(s);
		return !s->closed;
	default:
		body_fail(s, coil_http1_error_status(r));
		return false;
	}
}

static void parse_error(struct httpd_conn *s, int err)
{
	struct coil_http_req x;

	fresh_request(s);
	s->keep_alive = false;
	ctx_init(&x, s);
	coil_http_respond_error(&x, coil_http1_error_status(err));
	request_done(s);
}

/* Parse an incomplete head again only when it may have become complete
 * (an end of head arrived) or grew by half since the last try. */
static bool reparse_due(const struct httpd_conn *s, const uint8_t *d,
			size_t avail)
{
	size_t from = s->seen > 3 ? s->seen - 3 : 0;

	if (avail - s->partial >= s->partial / 2)
		return true;
	return memmem(d + from, avail - from, "\r\n\r\n", 4) != NULL;
}

static size_t hd_data(struct coil_conn *c, const uint8_t *d, size_t len)
{
	struct httpd_conn *s = coil_conn_state(c);
	struct httpd_loop *lp = s->lp;
	const size_t hw = lp->h->high_water;
	size_t pos = 0;

	if (s->closed)
		return len;
	if (s->nheld && !coil_conn_queued(c))
		httpd__unpin_all(s);
	date_tick(lp);
	out_bind(lp, c);
	lp->busy++;
	/* A body whose last bytes ended the input is complete now: one more
	 * body step sees its end (a Content-Length body reports it on the
	 * call after its last slice), rather than the next input. */
	while ((pos < len || s->phase == HC_BODY) && !s->closed) {
		struct coil_http1_request req;
		size_t avail;
		int r;

		if (lp->out_len + coil_conn_queued(c) > hw) {
			httpd__out_flush(lp);
			/* coil paused reading; the rest comes back after the
			 * output drained */
			if (coil_conn_queued(c) > hw)
				break;
		}
		if (s->phase == HC_WAIT) {
			/* Answers leave in request order: the next request
			 * waits, carried by coil, until this one is answered
			 * (answer_moved resumes). */
			coil_conn_pause(c);
			s->paused = true;
			break;
		}
		if (s->phase == HC_BODY) {
			if (!body_step(s, d, len, &pos))
				break;
			continue;
		}
		avail = len - pos;
		if (s->partial) {
			if (avail <= s->seen)
				break;
			if (!reparse_due(s, d + pos, avail)) {
				s->seen = (uint32_t)avail;
				break;
			}
		}
		r = coil_http1_parse(&lp->parser, d + pos, avail, &req);
		if (r == COIL_HTTP1_NEED_MORE) {
			coil_http1_parser_reset(&lp->parser);
			if (!s->partial) {
				s->phase = HC_HEAD;
				s->since = now_ms(lp);
				arm(s, s->since + lp->h->cfg.header_timeout_ms);
			}
			s->partial = s->seen = (uint32_t)avail;
			break;
		}
		s->partial = s->seen = 0;
		if (!rq_get(s)) {
			coil_http1_parser_reset(&lp->parser);
			httpd__conn_abort(s);   /* no memory for the request */
			break;
		}
		if (r < 0) {
			coil_http1_parser_reset(&lp->parser);
			parse_error(s, r);
			break;
		}
		pos += (size_t)r;
		handle_request(s, &req, len - pos);
	}
	if (s->closed)
		pos = len;   /* what follows a close is never answered */
	s->backlog = pos < len && s->phase == HC_IDLE;
	lp->busy--;
	httpd__out_flush(lp);
	rq_release_idle(s);
	return pos;
}

static void conn_timer(struct coil_timer *t)
{
	struct httpd_conn *s = httpd__container_of(t, struct httpd_conn, timer);
	struct httpd_loop *lp = s->lp;
	uint64_t now = now_ms(lp), dl;
	size_t q;

	rq_release_idle(s);   /* a deferred answer ended since */
	q = coil_conn_queued(s->conn);
	if (q) {
		/* Output is waiting on the peer (also while closing, see
		 * conn_close): fine while it moves, reset after the send
		 * timeout without progress (nginx's send_timeout). */
		if (q != s->last_queued) {
			s->last_queued = q;
			s->moved = now;
		} else if (now - s->moved >= lp->h->cfg.send_timeout_ms) {
			if (s->closed)
				coil_conn_abort(s->conn);
			else
				httpd__conn_abort(s);
			return;
		}
		send_check(s, now);
		return;
	}
	if (s->closed)
		return;   /* coil is freeing the connection */
	if (s->phase == HC_WAIT)
		return;   /* the answer's owner keeps its own time */
	dl = deadline(s);
	if (now < dl) {
		arm(s, dl);
		return;
	}
	s->last_queued = 0;
	if (s->nheld)
		httpd__unpin_all(s);
	if (s->phase == HC_IDLE || s->phase == HC_HEAD) {
		/* Idle keep-alive: nothing to say. A head still incomplete
		 * (slowloris): no request to answer either; nginx closes it
		 * silently too, and composing thousands of 408s when a storm
		 * of them falls due stalls the loop (issue 18). */
		conn_close(s);
		return;
	}
	date_tick(lp);
	out_bind(lp, s->conn);
	lp->busy++;
	body_fail(s, 408);
	lp->busy--;
	httpd__out_flush(lp);
}

static int hd_open(struct coil_conn *c)
{
	struct coil_http_server *h = coil_conn_service_data(c);
	struct httpd_conn *s = coil_conn_state(c);
	struct coil_loop *loop = coil_conn_loop(c);

	s->lp = httpd__loop_get(h, loop);
	if (!s->lp)
		return -ENOMEM;
	s->conn = c;
	s->minor = 1;
	coil_timer_init(&s->timer, loop, conn_timer, NULL);
	s->phase = HC_IDLE;
	s->since = now_ms(s->lp);
	arm(s, s->since + h->cfg.header_timeout_ms);
	return 0;
}

static void hd_close(struct coil_conn *c, int reason)
{
	struct httpd_conn *s = coil_conn_state(c);
	struct httpd_loop *lp = s->lp;

	(void)reason;
	s->closed = true;
	cancel_answer(s);   /* the client went away first */
	coil_timer_stop(&s->timer);
	if (lp->out_conn == c) {
		lp->out_conn = NULL;
		lp->out_len = 0;
	}
	httpd__unpin_all(s);
	free(s->xh);
	s->xh = NULL;
	rq_put(s);
}

/* SIGTERM: idle keep-alive connections go at once, a request in progress
 * is finished and answered with "Connection: close", and so is the next one
 * of a pipeline that waits for output to drain (backlog): closing there
 * would leave requests the server has unanswered without a word (found by
 * tests/fuzz/fuzz_httpd.c). A connection that has not been answered yet
 * stays for its first request within the drain: its client does not retry
 * (RFC 9112 9.3.1 covers only idle keep-alive connections), and nginx
 * answers it too. */
static void hd_shutdown(struct coil_conn *c)
{
	struct httpd_conn *s = coil_conn_state(c);

	s->shutting = true;
	if (s->phase == HC_IDLE && s->served && !s->closed && !s->backlog)
		conn_close(s);
}

/* The output drained below half the high-water mark after passing it:
 * an answer that waited for that (coil_http_on_drain) goes on. */
static void hd_drain(struct coil_conn *c)
{
	struct httpd_conn *s = coil_conn_state(c);
	coil_http_drain_cb cb = s->rq ? s->rq->on_drain : NULL;

	if (!cb || s->closed)
		return;
	s->rq->on_drain = NULL;
	cb(&s->rq->ctx, s->rq->drain_arg);
}

const struct coil_proto_ops httpd__ops = {
	.on_open = hd_open,
	.on_data = hd_data,
	.on_drain = hd_drain,
	.on_close = hd_close,
	.on_shutdown = hd_shutdown,
};
