/* SPDX-License-Identifier: MIT */
/*
 * The reverse proxy resource (coil_http_server_proxy, twisted.web's
 * ReverseProxyResource): a prefix route whose handler defers its answer,
 * sends the request upstream through the loop's HTTP client (keep-alive
 * connections from a pool), and relays the response as it arrives.
 *
 * Rules (RFC 9110 7.6, RFC 9112): hop-by-hop fields (Connection and the
 * fields it names, Keep-Alive, Proxy-Connection, TE, Trailer,
 * Transfer-Encoding, Upgrade) are not forwarded either way; the request
 * goes upstream as HTTP/1.1 with its own framing (Content-Length), Host
 * set to the upstream, X-Forwarded-For extended with the client,
 * X-Forwarded-Proto and Via added (both heads are rewritten in
 * proxy_head.c); only requests the server accepted (the
 * parser rejects ambiguous framing before any handler runs) are forwarded,
 * and a response the client cannot frame unambiguously (-EPROTO) is never
 * relayed. Errors: 502, a timeout 504, with the reason logged; an upstream
 * failing after the answer started cuts the client's connection, since a
 * truncated answer must not look complete.
 *
 * Bodies stream both ways with back-pressure: request body bytes go
 * upstream as they arrive (Content-Length kept, a chunked body re-chunked
 * as it is read), the client is paused while the upstream's send queue is
 * above its high-water mark; response bytes go to the client, the upstream
 * is paused while the client's output is. Memory per request stays
 * bounded whatever the body's size.
 *
 * Several upstreams per route (struct coil_http_proxy_opts): round robin
 * or least connections, each loop on its own. Passive health (nginx's
 * max_fails / fail_timeout): an upstream failing max_fails times within
 * fail_timeout (refused, reset, timed out) is skipped for fail_timeout;
 * when all are down they are tried anyway. A request without a body whose
 * method is idempotent is sent to the next upstream when its upstream
 * refused or reset before any answer (nginx's proxy_next_upstream error);
 * a request with a body never is: its body streams as it is read, so
 * once it started nothing is left to send again.
 */
#include "internal.h"
#include "core/internal.h"   /* coil__log */

#include <coil/http_client.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static unsigned loop_of(const struct preq *p)
{
	return coil_loop_id(coil_conn_loop(p->x->conn));
}

static uint64_t now_of(const struct preq *p)
{
	return coil_loop_now_ms(coil_conn_loop(p->x->conn));
}

/* The call in flight ended or was dropped: the upstream has one less. */
static void up_done(struct preq *p)
{
	if (p->ul) {
		p->ul->active--;
		p->ul = NULL;
	}
}

/* Let go of the client's body: callbacks still to come find no request,
 * and a client paused for the upstream reads again. Before the answer
 * ends (the request's scratch may go with it). */
static void detach(struct preq *p)
{
	if (p->body)
		*(struct preq **)p->x->user = NULL;
	p->body = false;
	if (p->paused) {
		p->paused = false;
		coil_conn_resume(p->x->conn);
	}
}

static void preq_free(struct preq *p)
{
	up_done(p);
	free(p->buf);
	free(p);
}

/* Answer a deferred request with an error and free it; when the client
 * is already going, its cancel (still to come) frees instead. */
static void fail_answer(struct preq *p, int status)
{
	detach(p);
	if (coil_http_respond_error(p->x, status) != -EPIPE)
		preq_free(p);
}

/* Upstream `p->ui` failed (refused, reset, timed out): max_fails of them
 * within fail_timeout mark it down for fail_timeout on this loop. */
static void up_failed(struct preq *p)
{
	struct httpd__proxy *px = p->px;
	struct px_upl *ul = &px->ul[loop_of(p) * px->nup + p->ui];
	uint64_t now = now_of(p);

	if (!ul->fails || now - ul->fail_since > px->fail_timeout_ms) {
		ul->fails = 0;
		ul->fail_since = now;
	}
	if (++ul->fails < px->max_fails)
		return;
	ul->fails = 0;
	ul->down_until = now + px->fail_timeout_ms;
	if (px->nup > 1)
		coil__log("proxy %s: upstream %s: down for %u ms after %u "
			  "failure(s)", px->prefix, httpd__px_host(p),
			  px->fail_timeout_ms, px->max_fails);
}

/* The upstream for the next try: round robin or the fewest calls in
 * flight (ties in turn), among those not tried and not down; when all
 * left are down, the one down longest ago. -1: all were tried. */
static int pick(struct preq *p)
{
	struct httpd__proxy *px = p->px;
	unsigned loop = loop_of(p);
	struct px_upl *ul = &px->ul[loop * px->nup];
	unsigned start = px->rr[loop];
	uint64_t now = now_of(p);
	int best = -1, down = -1;

	for (unsigned k = 0; k < px->nup; k++) {
		unsigned i = (start + k) % px->nup;

		if (p->tried & (1u << i))
			continue;
		if (ul[i].down_until > now) {
			if (down < 0 || ul[i].down_until < ul[down].down_until)
				down = (int)i;
			continue;
		}
		if (best < 0 || ul[i].active < ul[best].active)
			best = (int)i;
		if (px->balance == COIL_HTTP_BALANCE_ROUND_ROBIN)
			break;
	}
	if (best < 0)
		best = down;
	if (best >= 0)   /* the next pick starts after this one: those
			    skipped (down) do not shift the turn */
		px->rr[loop] = ((unsigned)best + 1) % px->nup;
	return best;
}

/* ---- the response ---- */

static void px_head(struct coil_http_call *call,
		    const struct coil_http1_response *r)
{
	struct preq *p = call->data;
	struct coil_http_req *x = p->x;
	uint64_t len;
	int ret;

	p->px->ul[loop_of(p) * p->px->nup + p->ui].fails = 0;   /* it answers */
	if (httpd__px_resp_fields(x, r)) {
		coil__log("proxy %s: upstream %s: out of memory for the "
			  "response's Connection options", p->px->prefix,
			  httpd__px_host(p));
		coil_http_call_cancel(call);
		p->calling = false;
		up_done(p);
		fail_answer(p, 502);
		return;
	}
	len = httpd__px_resp_length(r, p->head);
	ret = coil_http_respond_start(x, r->status, NULL, len);
	if (ret == -EPIPE)
		return;   /* the client is going: its cancel frees */
	if (ret) {
		/* a head too large to relay: 502 without the upstream's
		 * fields, and drop the call (allowed from here) */
		coil__log("proxy %s: upstream %s: a response head too large "
			  "to relay", p->px->prefix, httpd__px_host(p));
		coil_http_call_cancel(call);
		p->calling = false;
		up_done(p);
		x->s->xh_len = 0;
		fail_answer(p, 502);
		return;
	}
	p->started = true;
}

static void px_drained(struct coil_http_req *x, void *arg)
{
	struct preq *p = arg;

	(void)x;
	if (p->calling)
		coil_http_call_resume(&p->call);
}

/* Relay body bytes; a client slower than the upstream pauses the upstream
 * connection until its output drained (memory stays bounded). */
static void px_body(struct coil_http_call *call, const uint8_t *d, size_t n)
{
	struct preq *p = call->data;

	(void)coil_http_respond_data(p->x, d, n);
	if (coil_http_respond_busy(p->x) &&
	    !coil_http_on_drain(p->x, px_drained, p))
		coil_http_call_pause(call);
}

static void px_send(struct preq *p);

/* The call failed (err): count it against the upstream, then send the
 * request to the next one when that is safe (nothing answered yet, no
 * body, an idempotent method, and the upstream refused or reset rather
 * than timed out), else answer 502 / 504, or cut a started answer. */
static void px_failed(struct preq *p, int err)
{
	struct httpd__proxy *px = p->px;
	struct coil_http_req *x = p->x;
	bool conn_err = err != -EPROTO && err != -EAGAIN && err != -ENOMEM &&
			err != -ECANCELED;
	int next;

	if (conn_err)
		up_failed(p);
	coil__log("proxy %s: upstream %s: %s%s", px->prefix, httpd__px_host(p),
		  err == -EPROTO ? "a response that cannot be relayed"
				 : strerror(-err),
		  p->started ? " (answer cut)" : "");
	if (p->started) {
		/* the client must not take a truncated answer for a whole
		 * one: its connection goes; the cancel that follows frees */
		detach(p);
		coil_conn_abort(x->conn);
		return;
	}
	if (conn_err && err != -ETIMEDOUT && !p->body && p->idem &&
	    (next = pick(p)) >= 0) {
		if (httpd__px_set_host(p, (unsigned)next)) {
			p->ui = (unsigned)next;
			coil__log("proxy %s: trying upstream %s next",
				  px->prefix, httpd__px_host(p));
			px_send(p);
			return;
		}
	}
	fail_answer(p, err == -ETIMEDOUT ? 504 : 502);
}

static void px_end(struct coil_http_call *call, int err)
{
	struct preq *p = call->data;

	p->calling = false;
	up_done(p);
	if (!err) {
		detach(p);
		coil_http_respond_end(p->x);
		preq_free(p);
		return;
	}
	px_failed(p, err);
}

/* The upstream's send queue drained: read the client's body again. */
static void px_up_drained(struct coil_http_call *call)
{
	struct preq *p = call->data;

	if (p->paused) {
		p->paused = false;
		coil_conn_resume(p->x->conn);
	}
}

static const struct coil_http_call_ops px_ops = {
	.on_head = px_head,
	.on_body = px_body,
	.on_end = px_end,
	.on_drain = px_up_drained,
};

static void px_cancel(struct coil_http_req *x, void *arg)
{
	struct preq *p = arg;

	if (p->calling)
		coil_http_call_cancel(&p->call);
	if (p->body)
		*(struct preq **)x->user = NULL;
	/* a pause of the client's reading goes with its connection */
	preq_free(p);
}

/* ---- the request ---- */

/* Send the request to upstream p->ui. */
static void px_send(struct preq *p)
{
	struct httpd__proxy *px = p->px;
	struct coil_loop *loop = coil_conn_loop(p->x->conn);
	unsigned id = coil_loop_id(loop);
	struct px_upl *ul;
	int ret = -ENOMEM;

	p->tried |= 1u << p->ui;
	if (id >= px->nloops) {
		fail_answer(p, 502);
		return;
	}
	ul = &px->ul[id * px->nup + p->ui];
	if (!ul->cl) {
		struct coil_http_client_opts o = px->copts;

		o.service = px->service[p->ui];
		ret = coil_http_client_create(loop, &o, &ul->cl);
	}
	if (ul->cl) {
		p->call.data = p;
		p->ul = ul;
		ul->active++;
		p->calling = true;
		ret = p->body ? coil_http_call_open(ul->cl, &p->call, &px_ops,
						    p->buf, p->len, p->head)
			      : coil_http_call_start(ul->cl, &p->call, &px_ops,
						     p->buf, p->len, p->head);
		if (!ret)
			return;   /* (on_end may have run already) */
		p->calling = false;
		up_done(p);
	}
	px_failed(p, ret);
}

/* Write body bytes upstream as they come; pause the client while the
 * upstream's output is above its mark (px_up_drained resumes). */
static void px_body_data(struct coil_http_req *x, const uint8_t *d, size_t n)
{
	struct preq *p = *(struct preq **)x->user;
	int ret;

	if (!p || !p->calling)
		return;   /* answered (an error, or early): dropped */
	if (p->chunked) {
		char line[24];

		snprintf(line, sizeof(line), "%zx\r\n", n);
		ret = coil_http_call_write(&p->call, line, strlen(line));
		if (!ret)
			ret = coil_http_call_write(&p->call, d, n);
		if (!ret)
			ret = coil_http_call_write(&p->call, "\r\n", 2);
	} else {
		ret = coil_http_call_write(&p->call, d, n);
	}
	if (ret == -ENOMEM) {
		coil_http_call_cancel(&p->call);
		p->calling = false;
		up_done(p);
		px_failed(p, ret);
		return;
	}
	if (!ret && !p->paused && coil_http_call_busy(&p->call)) {
		p->paused = true;
		coil_conn_pause(x->conn);
	}
}

static void px_body_end(struct coil_http_req *x)
{
	struct preq *p = *(struct preq **)x->user;

	if (!p)
		return;   /* answered already */
	if (p->calling && p->chunked)
		(void)coil_http_call_write(&p->call, "0\r\n\r\n", 5);
	coil_http_call_write_end(&p->call);
	if (p->paused) {
		/* harmless: a server waiting for the answer pauses again */
		p->paused = false;
		coil_conn_resume(x->conn);
	}
	/* the answer is deferred: it comes from the upstream */
}

static bool idempotent(enum coil_http1_method m)
{
	return m == COIL_HTTP1_GET || m == COIL_HTTP1_HEAD ||
	       m == COIL_HTTP1_PUT || m == COIL_HTTP1_DELETE ||
	       m == COIL_HTTP1_OPTIONS || m == COIL_HTTP1_TRACE;
}

void httpd__proxy_handle(struct coil_http_req *x)
{
	struct preq *p = calloc(1, sizeof(*p));
	int ui;

	if (!p) {
		coil_http_respond_error(x, 500);
		return;
	}
	p->x = x;
	p->px = x->route->data;
	p->head = x->head;
	p->body = coil_http_has_body(x);
	p->chunked = p->body && (x->req->flags & COIL_HTTP1_F_CHUNKED);
	p->idem = idempotent(x->req->method);
	ui = pick(p);
	p->ui = ui < 0 ? 0 : (unsigned)ui;
	if (!httpd__px_build_head(x, p)) {
		preq_free(p);
		coil_http_respond_error(x, 500);
		return;
	}
	if (coil_http_defer(x, px_cancel, p)) {
		preq_free(p);
		return;
	}
	if (p->body) {
		/* the body goes upstream as it is read */
		*(struct preq **)x->user = p;
		if (coil_http_body_accept(x, px_body_data, px_body_end)) {
			p->body = false;
			fail_answer(p, 500);
			return;
		}
	}
	px_send(p);
}

static void up_strings_free(struct httpd__proxy *px)
{
	for (unsigned i = 0; px->host && i < px->nup; i++)
		free(px->host[i]);
	free(px->host);
	free(px->service);
}

int coil_http_server_proxy_upstreams(struct coil_http_server *h,
				     const struct coil_http_proxy_opts *o)
{
	struct coil_http_proxy_opts op = { 0 };
	struct httpd__proxy *px;
	struct coil_http_route r = { .flags = COIL_HTTP_ROUTE_PREFIX };
	int ret = -ENOMEM;

	if (!h || !o || o->sz < sizeof(size_t))
		return -EINVAL;
	memcpy(&op, o, o->sz < sizeof(op) ? o->sz : sizeof(op));
	if (!op.prefix || op.prefix[0] != '/' || (op.path && op.path[0] != '/') ||
	    !op.upstreams || !op.nupstreams ||
	    op.nupstreams > COIL_HTTP_MAX_UPSTREAMS || !op.client ||
	    op.client->sz < sizeof(size_t) ||
	    op.balance > COIL_HTTP_BALANCE_LEAST_CONN)
		return -EINVAL;
	for (unsigned i = 0; i < op.nupstreams; i++)
		if (!op.upstreams[i].host || op.upstreams[i].service < 0)
			return -EINVAL;
	px = calloc(1, sizeof(*px));
	if (!px)
		return -ENOMEM;
	px->prefix = strdup(op.prefix);
	px->prefix_len = strlen(op.prefix);
	px->path = op.path ? strdup(op.path) : NULL;
	px->nup = op.nupstreams;
	px->balance = op.balance;
	px->max_fails = op.max_fails ? op.max_fails : 1;
	px->fail_timeout_ms = op.fail_timeout_ms ? op.fail_timeout_ms : 10000;
	px->host = calloc(px->nup, sizeof(*px->host));
	px->service = calloc(px->nup, sizeof(*px->service));
	px->nloops = h->nloops;
	px->ul = calloc((size_t)h->nloops * px->nup, sizeof(*px->ul));
	px->rr = calloc(h->nloops, sizeof(*px->rr));
	if (!px->prefix || (op.path && !px->path) || !px->host ||
	    !px->service || !px->ul || !px->rr)
		goto fail;
	for (unsigned i = 0; i < px->nup; i++) {
		px->host[i] = strdup(op.upstreams[i].host);
		px->service[i] = op.upstreams[i].service;
		if (!px->host[i])
			goto fail;
	}
	memcpy(&px->copts, op.client, op.client->sz < sizeof(px->copts) ?
				      op.client->sz : sizeof(px->copts));
	px->copts.sz = sizeof(px->copts);
	r.path = px->prefix;
	r.data = px;
	for (unsigned m = COIL_HTTP1_GET; m < COIL_HTTP_NMETHODS; m++)
		if (m != COIL_HTTP1_CONNECT)
			r.on[m] = httpd__proxy_handle;
	ret = coil_http_server_route(h, &r);
	if (ret)
		goto fail;
	return 0;
fail:
	httpd__proxy_free(px);
	return ret;
}

int coil_http_server_proxy(struct coil_http_server *h, const char *prefix,
			   const char *host, const char *path,
			   const struct coil_http_client_opts *copts)
{
	struct coil_http_upstream up = {
		.host = host, .service = copts ? copts->service : -1,
	};
	struct coil_http_proxy_opts o = {
		.sz = sizeof(o), .prefix = prefix, .path = path,
		.upstreams = &up, .nupstreams = 1, .client = copts,
	};

	return coil_http_server_proxy_upstreams(h, &o);
}

void httpd__proxy_free(struct httpd__proxy *px)
{
	if (!px)
		return;
	for (size_t i = 0; px->ul && i < (size_t)px->nloops * px->nup; i++)
		coil_http_client_destroy(px->ul[i].cl);
	free(px->ul);
	free(px->rr);
	up_strings_free(px);
	free(px->prefix);
	free(px->path);
	free(px);
}
