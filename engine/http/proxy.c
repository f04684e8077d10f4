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
 * X-Forwarded-Proto and Via added; only requests the server accepted (the
 * parser rejects ambiguous framing before any handler runs) are forwarded,
 * and a response the client cannot frame unambiguously (-EPROTO) is never
 * relayed. Errors: 502, a timeout 504, with the reason logged; an upstream
 * failing after the answer started cuts the client's connection, since a
 * truncated answer must not look complete.
 *
 * Request bodies are collected (up to the server's max_body) and sent with
 * Content-Length once complete; response bodies stream through.
 */
#include "internal.h"
#include "core/internal.h"   /* coil__log */

#include <coil/http_client.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct httpd__proxy {
	char *prefix;
	size_t prefix_len;
	char *host;                      /* Host for the upstream */
	char *path;                      /* replaces the prefix; NULL: the
					    target goes unchanged */
	struct coil_http_client_opts copts;
	unsigned nloops;
	struct coil_http_client **cl;    /* by loop id, made on first use */
};

/* One proxied request (malloc'd; freed at its end or its cancel). */
struct preq {
	struct coil_http_call call;
	struct coil_http_req *x;
	struct httpd__proxy *px;
	bool calling;                    /* the call is in flight */
	bool started;                    /* the answer's head is out */
	bool head;
	bool oom;                        /* the body did not fit in memory */
	size_t head_len;                 /* the body follows the head */
	size_t len, cap;                 /* the upstream request */
	char *buf;
};

static void preq_free(struct preq *p)
{
	free(p->buf);
	free(p);
}

static bool append(struct preq *p, const void *d, size_t n)
{
	if (n > p->cap - p->len) {
		size_t cap = p->cap ? p->cap : 1024;
		char *b;

		while (cap - p->len < n)
			cap *= 2;
		b = realloc(p->buf, cap);
		if (!b)
			return false;
		p->buf = b;
		p->cap = cap;
	}
	memcpy(p->buf + p->len, d, n);
	p->len += n;
	return true;
}

#define APPEND_LIT(p, lit) append((p), (lit), sizeof(lit) - 1)

static bool str_is(const struct coil_http1_str *s, const char *name)
{
	size_t n = strlen(name);

	return s->len == n && !strncasecmp(s->ptr, name, n);
}

/* The options the Connection fields list (RFC 9110 7.6.1), gathered
 * once per message into an open-addressed set keyed case-insensitively,
 * so dropping the fields they name costs one look-up per field: linear
 * in the head, not fields x options. */
struct hop_tok {
	const char *p;
	size_t len;
};

#define HOP_STACK_SLOTS 64u

struct hop_set {
	size_t mask;               /* slots - 1; 0 when there is no option */
	struct hop_tok *slot;
	struct hop_tok stack[HOP_STACK_SLOTS];
};

static uint32_t hop_hash(const char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)(p[i] | 0x20)) * 16777619u;
	return h;
}

/* Call `fn` on each token of the Connection fields of h[0..nh). */
static void conn_tokens(const struct coil_http1_header *h, unsigned nh,
			void (*fn)(struct hop_set *, const char *, size_t),
			struct hop_set *set, size_t *count)
{
	for (unsigned i = 0; i < nh; i++) {
		const char *p, *end;

		if (h[i].name.len != 10 ||
		    strncasecmp(h[i].name.ptr, "Connection", 10))
			continue;
		p = h[i].value.ptr;
		end = p + h[i].value.len;
		while (p < end) {
			const char *q;

			while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
				p++;
			q = p;
			while (q < end && *q != ',' && *q != ' ' && *q != '\t')
				q++;
			if (q > p) {
				if (fn)
					fn(set, p, (size_t)(q - p));
				else
					(*count)++;
			}
			p = q;
		}
	}
}

static void hop_add(struct hop_set *s, const char *p, size_t n)
{
	size_t i = hop_hash(p, n) & s->mask;

	while (s->slot[i].p) {
		if (s->slot[i].len == n && !strncasecmp(s->slot[i].p, p, n))
			return;
		i = (i + 1) & s->mask;
	}
	s->slot[i].p = p;
	s->slot[i].len = n;
}

/* Gather the options of h's Connection fields into `s`. The set is on
 * the stack up to HOP_STACK_SLOTS / 2 options, on the heap beyond (free
 * with hop_done). Returns 0, or -ENOMEM. */
static int hop_init(struct hop_set *s, const struct coil_http1_header *h,
		    unsigned nh)
{
	size_t count = 0, slots = HOP_STACK_SLOTS;

	s->mask = 0;
	s->slot = s->stack;
	conn_tokens(h, nh, NULL, NULL, &count);
	if (!count)
		return 0;
	while (slots < 2 * count)
		slots *= 2;
	if (slots > HOP_STACK_SLOTS) {
		s->slot = calloc(slots, sizeof(*s->slot));
		if (!s->slot) {
			s->slot = s->stack;
			return -ENOMEM;
		}
	} else {
		memset(s->stack, 0, sizeof(s->stack));
	}
	s->mask = slots - 1;
	conn_tokens(h, nh, hop_add, s, NULL);
	return 0;
}

static void hop_done(struct hop_set *s)
{
	if (s->slot != s->stack)
		free(s->slot);
}

/* Not forwarded, either way (RFC 9110 7.6.1), or rewritten by the proxy. */
static bool hop_by_hop(const struct hop_set *s,
		       const struct coil_http1_str *name)
{
	static const char *const hop[] = {
		"Connection", "Keep-Alive", "Proxy-Connection", "TE",
		"Trailer", "Transfer-Encoding", "Upgrade", "Content-Length",
	};

	for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		if (str_is(name, hop[i]))
			return true;
	if (!s->mask)
		return false;
	for (size_t i = hop_hash(name->ptr, name->len) & s->mask;
	     s->slot[i].p; i = (i + 1) & s->mask)
		if (s->slot[i].len == name->len &&
		    !strncasecmp(s->slot[i].p, name->ptr, name->len))
			return true;
	return false;
}

/* Answer a deferred request with an error and free it; when the client
 * is already going, its cancel (still to come) frees instead. */
static void fail_answer(struct preq *p, int status)
{
	if (coil_http_respond_error(p->x, status) != -EPIPE)
		preq_free(p);
}

/* ---- the response ---- */

static void px_head(struct coil_http_call *call,
		    const struct coil_http1_response *r)
{
	struct preq *p = call->data;
	struct coil_http_req *x = p->x;
	char via[256] = "";
	struct hop_set hop;
	uint64_t len;
	int ret;

	if (hop_init(&hop, r->headers, r->nheaders)) {
		coil__log("proxy %s: upstream %s: out of memory for the "
			  "response's Connection options", p->px->prefix,
			  p->px->host);
		coil_http_call_cancel(call);
		p->calling = false;
		fail_answer(p, 502);
		return;
	}
	for (unsigned i = 0; i < r->nheaders; i++) {
		const struct coil_http1_header *h = &r->headers[i];

		if (hop_by_hop(&hop, &h->name))
			continue;
		if (str_is(&h->name, "Via")) {
			snprintf(via, sizeof(via), "%.*s, ",
				 (int)h->value.len, h->value.ptr);
			continue;
		}
		/* Date and Server are the server's own: refused, dropped.
		 * Straight from the parsed head: no copy per field. */
		(void)httpd__header_put(x, h->name.ptr, h->name.len,
					h->value.ptr, h->value.len, false);
	}
	hop_done(&hop);
	strncat(via, "1.1 coil", sizeof(via) - strlen(via) - 1);
	(void)coil_http_header_set(x, "Via", via);
	if (r->flags & COIL_HTTP1_F_CONTENT_LENGTH)
		len = r->content_length;
	else if (r->flags & (COIL_HTTP1_F_CHUNKED | COIL_HTTP1_F_CLOSE_DELIMITED))
		len = COIL_HTTP_CHUNKED;
	else
		len = 0;   /* 204, 304, or an answer to HEAD */
	if (p->head) {
		/* the parser zeroes a HEAD answer's framing (and has checked
		 * it: 1*DIGIT lengths, no CL with TE): relay what GET would
		 * have, a chunked coding or the announced length */
		len = 0;
		for (unsigned i = 0; i < r->nheaders; i++)
			if (str_is(&r->headers[i].name, "Transfer-Encoding"))
				len = COIL_HTTP_CHUNKED;
			else if (str_is(&r->headers[i].name, "Content-Length"))
				len = strtoull(r->headers[i].value.ptr, NULL,
					       10);
	}
	ret = coil_http_respond_start(x, r->status, NULL, len);
	if (ret == -EPIPE)
		return;   /* the client is going: its cancel frees */
	if (ret) {
		/* a head too large to relay: 502 without the upstream's
		 * fields, and drop the call (allowed from here) */
		coil__log("proxy %s: upstream %s: a response head too large "
			  "to relay", p->px->prefix, p->px->host);
		coil_http_call_cancel(call);
		p->calling = false;
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

static void px_end(struct coil_http_call *call, int err)
{
	struct preq *p = call->data;
	struct coil_http_req *x = p->x;

	p->calling = false;
	if (!err) {
		coil_http_respond_end(x);
		preq_free(p);
		return;
	}
	coil__log("proxy %s: upstream %s: %s%s", p->px->prefix, p->px->host,
		  err == -EPROTO ? "a response that cannot be relayed"
				 : strerror(-err),
		  p->started ? " (answer cut)" : "");
	if (p->started) {
		/* the client must not take a truncated answer for a whole
		 * one: its connection goes; the cancel that follows frees */
		coil_conn_abort(x->conn);
		return;
	}
	fail_answer(p, err == -ETIMEDOUT ? 504 : 502);
}

static const struct coil_http_call_ops px_ops = {
	.on_head = px_head,
	.on_body = px_body,
	.on_end = px_end,
};

static void px_cancel(struct coil_http_req *x, void *arg)
{
	struct preq *p = arg;

	(void)x;
	if (p->calling)
		coil_http_call_cancel(&p->call);
	preq_free(p);
}

/* ---- the request ---- */

static void px_send(struct coil_http_req *x, struct preq *p)
{
	struct httpd__proxy *px = p->px;
	struct coil_loop *loop = coil_conn_loop(x->conn);
	unsigned id = coil_loop_id(loop);
	int ret = -ENOMEM;

	if (id < px->nloops && !px->cl[id])
		ret = coil_http_client_create(loop, &px->copts, &px->cl[id]);
	if (id < px->nloops && px->cl[id]) {
		p->call.data = p;
		ret = coil_http_call_start(px->cl[id], &p->call, &px_ops, p->buf,
					   p->len, p->head);
	}
	if (ret) {
		coil__log("proxy %s: upstream %s: %s", px->prefix, px->host,
			  strerror(-ret));
		/* the deferred answer, now, from inside a callback */
		fail_answer(p, ret == -ETIMEDOUT ? 504 : 502);
		return;
	}
	p->calling = true;
}

static void px_body_data(struct coil_http_req *x, const uint8_t *d, size_t n)
{
	struct preq *p = *(struct preq **)x->user;

	if (!p->oom && !append(p, d, n))
		p->oom = true;   /* answered at the end */
}

static void px_body_end(struct coil_http_req *x)
{
	struct preq *p = *(struct preq **)x->user;
	char cl[24];

	if (p->oom) {
		coil_http_respond_error(x, 500);
		preq_free(p);
		return;
	}
	/* the Content-Length placeholder: the head's last 20 + 4 bytes */
	snprintf(cl, sizeof(cl), "%20zu", p->len - p->head_len);
	memcpy(p->buf + p->head_len - 24, cl, 20);
	if (coil_http_defer(x, px_cancel, p)) {
		preq_free(p);
		return;
	}
	px_send(x, p);
}

/* Write the request head for upstream into p->buf. */
static bool build_head(struct coil_http_req *x, struct preq *p, bool body)
{
	const struct coil_http1_request *req = x->req;
	const struct coil_http1_header *h = req->headers;
	char peer[INET6_ADDRSTRLEN] = "unknown";
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const struct coil_http1_str *xff = NULL, *via = NULL;
	struct hop_set hop;
	bool ok;

	if (!coil_http_peer(x, &ss, &sl)) {
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
				  peer, sizeof(peer));
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6,
				  &((struct sockaddr_in6 *)&ss)->sin6_addr, peer,
				  sizeof(peer));
	}
	const char *t = req->target.ptr;
	size_t tn = req->target.len;

	if (p->px->path && tn >= p->px->prefix_len &&
	    !memcmp(t, p->px->prefix, p->px->prefix_len)) {
		ok = append(p, req->method_name.ptr, req->method_name.len) &&
		     APPEND_LIT(p, " ") &&
		     append(p, p->px->path, strlen(p->px->path));
		t += p->px->prefix_len;
		tn -= p->px->prefix_len;
	} else {
		ok = append(p, req->method_name.ptr, req->method_name.len) &&
		     APPEND_LIT(p, " ");
	}
	ok = ok && append(p, t, tn) &&
	     APPEND_LIT(p, " HTTP/1.1\r\nHost: ") &&
	     append(p, p->px->host, strlen(p->px->host)) &&
	     APPEND_LIT(p, "\r\n");
	if (hop_init(&hop, h, req->nheaders))
		return false;
	for (unsigned i = 0; ok && i < req->nheaders; i++) {
		if (hop_by_hop(&hop, &h[i].name) ||
		    str_is(&h[i].name, "Host") ||
		    str_is(&h[i].name, "X-Forwarded-Proto") ||
		    str_is(&h[i].name, "Expect"))
			continue;
		if (str_is(&h[i].name, "X-Forwarded-For")) {
			xff = &h[i].value;
			continue;
		}
		if (str_is(&h[i].name, "Via")) {
			via = &h[i].value;
			continue;
		}
		ok = append(p, h[i].name.ptr, h[i].name.len) &&
		     APPEND_LIT(p, ": ") &&
		     append(p, h[i].value.ptr, h[i].value.len) &&
		     APPEND_LIT(p, "\r\n");
	}
	hop_done(&hop);
	ok = ok && APPEND_LIT(p, "X-Forwarded-For: ");
	if (ok && xff)
		ok = append(p, xff->ptr, xff->len) && APPEND_LIT(p, ", ");
	ok = ok && append(p, peer, strlen(peer)) &&
	     APPEND_LIT(p, "\r\nX-Forwarded-Proto: http\r\nVia: ");
	if (ok && via)
		ok = append(p, via->ptr, via->len) && APPEND_LIT(p, ", ");
	if (req->version_minor)
		ok = ok && APPEND_LIT(p, "1.1 coil\r\n");
	else
		ok = ok && APPEND_LIT(p, "1.0 coil\r\n");
	if (ok && body)
		/* 20 digits, patched once the body is complete */
		ok = APPEND_LIT(p, "Content-Length: 01234567890123456789\r\n");
	return ok && APPEND_LIT(p, "\r\n");
}

void httpd__proxy_handle(struct coil_http_req *x)
{
	struct preq *p = calloc(1, sizeof(*p));
	bool body = coil_http_has_body(x);

	if (!p) {
		coil_http_respond_error(x, 500);
		return;
	}
	p->x = x;
	p->px = x->route->data;
	p->head = x->head;
	if (!build_head(x, p, body)) {
		preq_free(p);
		coil_http_respond_error(x, 500);
		return;
	}
	if (body) {
		p->head_len = p->len;
		*(struct preq **)x->user = p;
		if (coil_http_body_accept(x, px_body_data, px_body_end)) {
			preq_free(p);
			coil_http_respond_error(x, 500);
		}
		return;
	}
	if (coil_http_defer(x, px_cancel, p)) {
		preq_free(p);
		return;
	}
	px_send(x, p);
}

int coil_http_server_proxy(struct coil_http_server *h, const char *prefix,
			   const char *host, const char *path,
			   const struct coil_http_client_opts *copts)
{
	struct httpd__proxy *px = calloc(1, sizeof(*px));
	struct coil_http_route r = { .flags = COIL_HTTP_ROUTE_PREFIX };
	int ret = -ENOMEM;

	if (!px)
		return -ENOMEM;
	if (!prefix || prefix[0] != '/' || !host || !copts ||
	    copts->sz < sizeof(size_t)) {
		ret = -EINVAL;
		goto fail;
	}
	px->prefix = strdup(prefix);
	px->prefix_len = strlen(prefix);
	px->host = strdup(host);
	px->path = path ? strdup(path) : NULL;
	if (path && (path[0] != '/' || !px->path)) {
		ret = path[0] != '/' ? -EINVAL : -ENOMEM;
		goto fail;
	}
	px->nloops = h->nloops;
	px->cl = calloc(h->nloops, sizeof(*px->cl));
	if (!px->prefix || !px->host || !px->cl)
		goto fail;
	memcpy(&px->copts, copts, copts->sz < sizeof(px->copts) ?
				  copts->sz : sizeof(px->copts));
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

void httpd__proxy_free(struct httpd__proxy *px)
{
	if (!px)
		return;
	for (unsigned i = 0; px->cl && i < px->nloops; i++)
		coil_http_client_destroy(px->cl[i]);
	free(px->cl);
	free(px->prefix);
	free(px->host);
	free(px->path);
	free(px);
}
