/* SPDX-License-Identifier: MIT */
/*
 * coil-httpd: HTTP/1.1 server semantics (RFC 9110/9112) over coil's public
 * API, the route table, responses, timeouts and the access log.
 *
 * Hot path: on_data parses every complete pipelined request in a loop,
 * stages the responses in a per-loop buffer and hands them to coil in one
 * coil_conn_write, so a batch of requests costs one copy and one gathered
 * send. The Date header, and the whole /plaintext and /json responses, are
 * rebuilt once a second per loop. Nothing here allocates per request.
 *
 * The request parser and its header array are per loop, not per
 * connection: a head that is complete in the input (the common case) is
 * parsed in one call. An incomplete one is parsed again from its start when
 * more arrives, but only once the input holds an end of head or has grown
 * by half since the last try, so a client trickling bytes costs linear
 * time, and a connection needs no space for header slices.
 */
#include "httpd_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define SERVER_LINE "Server: coil\r\n"
#define DEFAULT_HIGH_WATER (64u << 10)

static const char plain_body[] = "Hello, World!";
static const char json_body[] = "{\"message\":\"Hello, World!\"}";
static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

static const char *const method_names[HTTPD_NMETHODS] = {
	[COIL_HTTP1_OTHER] = "-",
	[COIL_HTTP1_GET] = "GET",
	[COIL_HTTP1_HEAD] = "HEAD",
	[COIL_HTTP1_POST] = "POST",
	[COIL_HTTP1_PUT] = "PUT",
	[COIL_HTTP1_DELETE] = "DELETE",
	[COIL_HTTP1_CONNECT] = "CONNECT",
	[COIL_HTTP1_OPTIONS] = "OPTIONS",
	[COIL_HTTP1_TRACE] = "TRACE",
	[COIL_HTTP1_PATCH] = "PATCH",
};

static inline uint64_t now_ms(const struct httpd_loop *lp)
{
	return coil_loop_now_ms(lp->loop);
}

/* ---- staged output ---- */

void httpd__out_flush(struct httpd_loop *lp)
{
	if (lp->out_len) {
		(void)coil_conn_write(lp->out_conn, lp->out, lp->out_len);
		lp->out_len = 0;
	}
	lp->flushes++;
}

static inline void out_bind(struct httpd_loop *lp, struct coil_conn *c)
{
	if (lp->out_conn != c) {
		httpd__out_flush(lp);
		lp->out_conn = c;
	}
}

void httpd__out_put(struct httpd_loop *lp, struct coil_conn *c,
		    const void *p, size_t n)
{
	out_bind(lp, c);
	if (n > HTTPD__OUT_CAP - lp->out_len) {
		httpd__out_flush(lp);
		if (n > HTTPD__OUT_CAP / 2) {
			(void)coil_conn_write(c, p, n);
			return;
		}
	}
	memcpy(lp->out + lp->out_len, p, n);
	lp->out_len += n;
}


/* ---- Date, once a second per loop ---- */

static void build_fixed(struct httpd_loop *lp, char *buf, uint32_t *len,
			const char *ctype, const char *body, size_t blen)
{
	char *p = buf;

	p = PUTS(p, "HTTP/1.1 200 OK\r\n");
	p = put(p, lp->common, lp->common_len);
	p = PUTS(p, "Content-Type: ");
	p = put(p, ctype, strlen(ctype));
	p = PUTS(p, "\r\nContent-Length: ");
	p = put_u64(p, blen);
	p = PUTS(p, "\r\n\r\n");
	p = put(p, body, blen);
	*len = (uint32_t)(p - buf);
}

static void date_refresh(struct httpd_loop *lp, uint64_t now)
{
	struct timespec ts;
	const char *d;
	char *p;

	clock_gettime(CLOCK_REALTIME, &ts);
	/* Recheck when the wall clock's second is over. */
	lp->date_next_ms = now + 1000 - (uint64_t)(ts.tv_nsec / 1000000);
	if (lp->common_len && lp->date_sec == ts.tv_sec)
		return;
	lp->date_sec = ts.tv_sec;
	d = coil_http1_date_update(&lp->date, ts.tv_sec);
	p = PUTS(lp->common, SERVER_LINE "Date: ");
	p = put(p, d, COIL_HTTP1_DATE_LEN);
	p = PUTS(p, "\r\n");
	lp->common_len = (uint32_t)(p - lp->common);
	/* "Sun, 06 Nov 1994 08:49:37 GMT" -> "06/Nov/1994:08:49:37 +0000" */
	memcpy(lp->clf, d + 5, 2);
	lp->clf[2] = '/';
	memcpy(lp->clf + 3, d + 8, 3);
	lp->clf[6] = '/';
	memcpy(lp->clf + 7, d + 12, 4);
	lp->clf[11] = ':';
	memcpy(lp->clf + 12, d + 17, 8);
	memcpy(lp->clf + 20, " +0000", 7);
	build_fixed(lp, lp->plain, &lp->plain_len, "text/plain", plain_body,
		    sizeof(plain_body) - 1);
	build_fixed(lp, lp->json, &lp->json_len, "application/json", json_body,
		    sizeof(json_body) - 1);
}

static inline void date_tick(struct httpd_loop *lp)
{
	uint64_t now = now_ms(lp);

	if (now >= lp->date_next_ms)
		date_refresh(lp, now);
}

/* ---- per-loop state ---- */

static struct httpd_loop *loop_get(struct httpd *h, struct coil_loop *loop)
{
	unsigned id = coil_loop_id(loop);
	struct httpd_loop *lp;

	if (id >= h->nloops)
		return NULL;
	lp = h->loops[id];
	if (lp)
		return lp;
	/* Once per loop, on its own thread: each loop writes only its slot. */
	lp = aligned_alloc(64, (sizeof(*lp) + 63) & ~(size_t)63);
	if (!lp)
		return NULL;
	memset(lp, 0, sizeof(*lp));
	lp->h = h;
	lp->loop = loop;
	lp->hdrs = calloc(h->limits.max_headers, sizeof(*lp->hdrs));
	if (!lp->hdrs)
		goto fail;
	coil_http1_parser_init(&lp->parser, &h->limits, lp->hdrs,
			       h->limits.max_headers);
	coil_http1_date_init(&lp->date);
	if (h->logfd >= 0) {
		lp->log = malloc(HTTPD__LOG_CAP);
		if (!lp->log)
			goto fail;
		coil_timer_init(&lp->log_timer, loop, httpd__log_timer_cb, NULL);
	}
	if (h->cache_size && httpd__cache_init(&lp->cache, h->cache_size))
		goto fail;
	date_refresh(lp, now_ms(lp));
	h->loops[id] = lp;
	return lp;
fail:
	free(lp->log);
	free(lp->hdrs);
	free(lp);
	return NULL;
}

static void loop_free(struct httpd_loop *lp)
{
	if (lp->log) {
		httpd__log_flush(lp);
		free(lp->log);
	}
	if (lp->h->cache_size)
		httpd__cache_fini(&lp->cache);
	free(lp->hdrs);
	free(lp);
}

/* Drop the cache entries this connection pinned for its output (only
 * once nothing of it is queued, or at close). */
void httpd__unpin_all(struct httpd_conn *s)
{
	for (unsigned i = 0; i < s->nheld; i++)
		httpd__cache_put(s->held[i]);
	s->nheld = 0;
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
	const struct httpd_config *cfg = &s->lp->h->cfg;

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

static void conn_abort(struct httpd_conn *s)
{
	if (s->lp->out_conn == s->conn)
		s->lp->out_len = 0;
	s->closed = true;
	coil_conn_abort(s->conn);
}

int httpd__resp_head(struct httpd_ctx *x, int status, const char *ctype,
		     uint64_t len, const char *extra, size_t extra_len)
{
	struct httpd_conn *s = x->s;
	struct httpd_loop *lp = x->lp;
	size_t rlen, clen = ctype ? strlen(ctype) : 0, need;
	const char *reason;
	char *p;

	if (s->started)
		return -EALREADY;
	if (s->closed)
		return -EPIPE;
	if (status < 100 || status > 999)
		status = 500;
	reason = coil_http1_reason(status);
	rlen = strlen(reason);
	need = 32 + rlen + lp->common_len + clen + 48 + extra_len + 32;
	out_bind(lp, x->conn);
	if (need > HTTPD__OUT_CAP - lp->out_len) {
		httpd__out_flush(lp);
		if (need > HTTPD__OUT_CAP)
			return -ENOSPC;
	}
	s->started = true;
	s->status = (uint16_t)status;
	/* A final answer before a 100-continue body arrived: the client may
	 * or may not send it now, so the connection cannot carry on. */
	if ((s->unread && !s->accepted && s->expect) || s->shutting)
		s->keep_alive = false;
	if (len == HTTPD_CHUNKED) {
		if (s->minor == 0) {
			/* no chunked framing for 1.0: the close ends the body */
			s->keep_alive = false;
			len = HTTPD__NO_LENGTH;
		} else {
			s->chunked_out = true;
		}
	}
	s->head_at = lp->out_len;
	s->head_gen = lp->flushes;
	p = lp->out + lp->out_len;
	p = PUTS(p, "HTTP/1.1 ");
	p = put_u64(p, (uint64_t)status);
	*p++ = ' ';
	p = put(p, reason, rlen);
	p = PUTS(p, "\r\n");
	p = put(p, lp->common, lp->common_len);
	if (ctype) {
		p = PUTS(p, "Content-Type: ");
		p = put(p, ctype, clen);
		p = PUTS(p, "\r\n");
	}
	if (len == HTTPD_CHUNKED) {
		p = PUTS(p, "Transfer-Encoding: chunked\r\n");
	} else if (len != HTTPD__NO_LENGTH && status >= 200 && status != 204 &&
		   status != 304) {
		p = PUTS(p, "Content-Length: ");
		p = put_u64(p, len);
		p = PUTS(p, "\r\n");
	}
	if (extra_len)
		p = put(p, extra, extra_len);
	if (!s->keep_alive)
		p = PUTS(p, "Connection: close\r\n");
	else if (s->minor == 0)
		p = PUTS(p, "Connection: keep-alive\r\n");
	p = PUTS(p, "\r\n");
	lp->out_len = (size_t)(p - lp->out);
	return 0;
}

static int respond(struct httpd_ctx *x, int status, const char *ctype,
		   const char *extra, size_t extra_len, const void *body,
		   size_t len, bool copy)
{
	struct httpd_conn *s = x->s;
	int ret = httpd__resp_head(x, status, ctype, len, extra, extra_len);

	if (ret)
		return ret;
	if (!x->head && len && status != 204 && status != 304) {
		if (copy || len <= HTTPD__INLINE_MAX) {
			httpd__out_put(x->lp, x->conn, body, len);
		} else {
			httpd__out_flush(x->lp);
			(void)coil_conn_write_static(x->conn, body, len);
		}
	}
	s->sent = len;
	s->responded = true;
	return 0;
}

int httpd_respond(struct httpd_ctx *x, int status, const char *ctype,
		  const void *body, size_t len)
{
	return respond(x, status, ctype, NULL, 0, body, len, true);
}

int httpd_respond_static(struct httpd_ctx *x, int status, const char *ctype,
			 const void *body, size_t len)
{
	return respond(x, status, ctype, NULL, 0, body, len, false);
}

int httpd__respond_error_extra(struct httpd_ctx *x, int status,
			       const char *extra, size_t extra_len)
{
	char body[64];
	char *p = put_u64(body, (uint64_t)status);
	const char *reason = coil_http1_reason(status);

	*p++ = ' ';
	p = put(p, reason, strnlen(reason, 40));
	*p++ = '\n';
	return respond(x, status, "text/plain", extra, extra_len, body,
		       (size_t)(p - body), true);
}

int httpd_respond_error(struct httpd_ctx *x, int status)
{
	return httpd__respond_error_extra(x, status, NULL, 0);
}

int httpd_respond_start(struct httpd_ctx *x, int status, const char *ctype,
			uint64_t len)
{
	int ret = httpd__resp_head(x, status, ctype, len, NULL, 0);

	if (!ret)
		x->s->sent = 0;
	return ret;
}

int httpd_respond_data(struct httpd_ctx *x, const void *data, size_t len)
{
	struct httpd_conn *s = x->s;
	struct httpd_loop *lp = x->lp;

	if (!s->started || s->responded)
		return -EINVAL;
	if (s->closed)
		return -EPIPE;
	if (s->head_only || !len)
		return 0;
	if (s->chunked_out) {
		char hdr[20], *p = hdr;
		static const char hex[] = "0123456789abcdef";
		int shift = 60;

		while (shift > 0 && !((len >> shift) & 15))
			shift -= 4;
		for (; shift >= 0; shift -= 4)
			*p++ = hex[(len >> shift) & 15];
		p = PUTS(p, "\r\n");
		httpd__out_put(lp, x->conn, hdr, (size_t)(p - hdr));
	}
	if (len >= 1024) {
		/* zero copy from the receive buffer where it is one */
		httpd__out_flush(lp);
		(void)coil_conn_write_ref(x->conn, data, len);
	} else {
		httpd__out_put(lp, x->conn, data, len);
	}
	if (s->chunked_out)
		httpd__out_put(lp, x->conn, "\r\n", 2);
	s->sent += len;
	return 0;
}

int httpd_respond_end(struct httpd_ctx *x)
{
	struct httpd_conn *s = x->s;

	if (!s->started || s->responded)
		return -EINVAL;
	if (s->chunked_out && !s->head_only)
		httpd__out_put(x->lp, x->conn, "0\r\n\r\n", 5);
	s->responded = true;
	return 0;
}

bool httpd_has_body(const struct httpd_ctx *x)
{
	return x->s->unread;
}

int httpd_body_accept(struct httpd_ctx *x, httpd_body_cb on_body,
		      httpd_handler on_end)
{
	struct httpd_conn *s = x->s;

	if (!s->unread || s->accepted || s->started || !on_end)
		return -EINVAL;
	s->accepted = true;
	s->on_body = on_body;
	s->on_end = on_end;
	/* RFC 9110 10.1.1: no 100 once body bytes are already here. */
	if (s->expect && !x->lp->rest)
		httpd__out_put(x->lp, x->conn, continue_100,
			       sizeof(continue_100) - 1);
	return 0;
}

const struct coil_http1_str *httpd_header(const struct httpd_ctx *x,
					  const char *name)
{
	size_t n = strlen(name);

	if (!x->req)
		return NULL;
	for (unsigned i = 0; i < x->req->nheaders; i++) {
		const struct coil_http1_header *hd = &x->req->headers[i];

		if (hd->name.len == n && !strncasecmp(hd->name.ptr, name, n))
			return &hd->value;
	}
	return NULL;
}

/* ---- paths and routes ---- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* End the segment out[*seg, *o): drop "" and ".", resolve "..". */
static int end_segment(char *out, size_t *o, size_t *seg, bool slash)
{
	size_t n = *o - *seg;
	const char *sp = out + *seg;

	if (n == 0)
		return 0;
	if (n == 1 && sp[0] == '.') {
		*o = *seg;
		return 0;
	}
	if (n == 2 && sp[0] == '.' && sp[1] == '.') {
		size_t i;

		if (*seg == 1)
			return 403;  /* above the root */
		i = *seg - 1;    /* the '/' that ended the previous segment */
		while (i > 0 && out[i - 1] != '/')
			i--;
		*o = *seg = i;
		return 0;
	}
	if (slash) {
		if (*o >= HTTPD__PATH_MAX)
			return 414;
		out[(*o)++] = '/';
		*seg = *o;
	}
	return 0;
}

/*
 * The request target -> x->path (percent-decoded, "." and ".." resolved,
 * "//" collapsed), x->query and x->raw_path. Returns 0 or a status: 400
 * (bad escape, %00 or a control byte), 403 (".." above the root), 414.
 */
static int path_prepare(struct httpd_loop *lp, const struct coil_http1_str *t,
			struct httpd_ctx *x)
{
	const char *p = t->ptr, *end = p + t->len, *q, *r;
	size_t o = 1, seg = 1, n;
	bool slow = false;
	int st;

	if (t->len == 1 && *p == '*') {
		x->path = *t;
		x->raw_path = *t;
		return 0;
	}
	if (*p != '/') {
		/* absolute-form: scheme "://" authority [path] */
		const char *colon = memchr(p, ':', t->len);

		if (!colon || end - colon < 3 || colon[1] != '/' ||
		    colon[2] != '/')
			return 400;
		p = colon + 3;
		while (p < end && *p != '/' && *p != '?')
			p++;
		if (p == end || *p == '?') {
			x->path.ptr = x->raw_path.ptr = "/";
			x->path.len = x->raw_path.len = 1;
			x->query.ptr = p < end ? p + 1 : p;
			x->query.len = p < end ? (size_t)(end - p - 1) : 0;
			return 0;
		}
	}
	q = memchr(p, '?', (size_t)(end - p));
	x->query.ptr = q ? q + 1 : end;
	x->query.len = q ? (size_t)(end - q - 1) : 0;
	if (q)
		end = q;
	n = (size_t)(end - p);
	x->raw_path.ptr = p;
	x->raw_path.len = n;
	for (r = p; r < end; r++) {
		if (*r == '%' || (*r == '/' && r + 1 < end &&
				  (r[1] == '/' || r[1] == '.'))) {
			slow = true;
			break;
		}
	}
	if (!slow) {
		if (n > HTTPD__PATH_MAX)
			return 414;
		x->path.ptr = p;
		x->path.len = n;
		return 0;
	}
	lp->path[0] = '/';
	for (r = p + 1; r < end; r++) {
		int ch = (unsigned char)*r;

		if (ch == '%') {
			int hi, lo;

			if (end - r < 3 || (hi = hexval(r[1])) < 0 ||
			    (lo = hexval(r[2])) < 0)
				return 400;
			ch = hi << 4 | lo;
			r += 2;
			if (ch < 0x20 || ch == 0x7f)
				return 400;   /* %00 and other controls */
		}
		if (ch == '/') {
			if ((st = end_segment(lp->path, &o, &seg, true)))
				return st;
			continue;
		}
		if (o >= HTTPD__PATH_MAX)
			return 414;
		lp->path[o++] = (char)ch;
	}
	if ((st = end_segment(lp->path, &o, &seg, false)))
		return st;
	lp->path[o] = '\0';
	x->path.ptr = lp->path;
	x->path.len = o;
	return 0;
}

static const struct httpd_route *route_find(const struct httpd *h,
					    struct httpd_ctx *x)
{
	const struct httpd_route *best = NULL;
	const char *p = x->path.ptr;
	size_t n = x->path.len, blen = 0;

	for (unsigned i = 0; i < h->nroutes; i++) {
		const struct httpd_route *r = &h->routes[i];
		size_t rl = strlen(r->path);

		if (!(r->flags & HTTPD_ROUTE_PREFIX)) {
			if (rl == n && !memcmp(p, r->path, n)) {
				x->rest.ptr = p + n;
				x->rest.len = 0;
				return r;
			}
			continue;
		}
		if (best && rl <= blen)
			continue;
		if (n >= rl && !memcmp(p, r->path, rl)) {
			best = r;
			blen = rl;
		} else if (rl > 1 && r->path[rl - 1] == '/' && n == rl - 1 &&
			   !memcmp(p, r->path, n)) {
			best = r;
			blen = rl;
		}
	}
	if (best) {
		size_t skip = blen < n ? blen : n;

		x->rest.ptr = p + skip;
		x->rest.len = n - skip;
	}
	return best;
}

/* "Allow: GET, HEAD, ...\r\n" for a route. */
static size_t allow_line(const struct httpd_route *r, char *buf)
{
	static const uint8_t order[] = {
		COIL_HTTP1_GET, COIL_HTTP1_HEAD, COIL_HTTP1_POST,
		COIL_HTTP1_PUT, COIL_HTTP1_DELETE, COIL_HTTP1_OPTIONS,
		COIL_HTTP1_TRACE, COIL_HTTP1_PATCH,
	};
	char *p = PUTS(buf, "Allow: ");
	bool first = true;

	for (size_t i = 0; i < sizeof(order); i++) {
		unsigned m = order[i];
		bool ok = r ? r->on[m] != NULL : m != COIL_HTTP1_TRACE &&
						    m != COIL_HTTP1_DELETE &&
						    m != COIL_HTTP1_PATCH;

		if (r && m == COIL_HTTP1_HEAD)
			ok = ok || r->on[COIL_HTTP1_GET];
		if (m == COIL_HTTP1_OPTIONS)
			ok = true;
		if (!ok)
			continue;
		if (!first)
			p = PUTS(p, ", ");
		p = put(p, method_names[m], strlen(method_names[m]));
		first = false;
	}
	p = PUTS(p, "\r\n");
	return (size_t)(p - buf);
}

static void dispatch(struct httpd_ctx *x)
{
	const struct coil_http1_request *req = x->req;
	struct httpd *h = x->lp->h;
	const struct httpd_route *route;
	httpd_handler fn;
	char allow[96];
	int st = path_prepare(x->lp, &req->target, x);

	if (st) {
		httpd_respond_error(x, st);
		return;
	}
	if (x->path.ptr[0] == '*') {   /* OPTIONS * */
		size_t n = allow_line(NULL, allow);

		httpd__resp_head(x, 204, NULL, HTTPD__NO_LENGTH, allow, n);
		x->s->responded = true;
		return;
	}
	route = route_find(h, x);
	if (!route) {
		httpd_respond_error(x, 404);
		return;
	}
	x->route = x->s->route = route;
	fn = route->on[req->method];
	if (!fn && req->method == COIL_HTTP1_HEAD)
		fn = route->on[COIL_HTTP1_GET];
	if (fn) {
		fn(x);
		return;
	}
	if (req->method == COIL_HTTP1_OPTIONS) {
		size_t n = allow_line(route, allow);

		httpd__resp_head(x, 204, NULL, HTTPD__NO_LENGTH, allow, n);
		x->s->responded = true;
		return;
	}
	httpd__respond_error_extra(x, 405, allow, allow_line(route, allow));
}

/* ---- request life cycle ---- */

static void ctx_init(struct httpd_ctx *x, struct httpd_conn *s)
{
	memset(x, 0, sizeof(*x));
	x->conn = s->conn;
	x->route = s->route;
	x->head = s->head_only;
	x->user = s->user;
	x->s = s;
	x->lp = s->lp;
	x->path.ptr = x->query.ptr = x->rest.ptr = x->raw_path.ptr = "";
}

static void fresh_request(struct httpd_conn *s)
{
	s->started = s->responded = s->accepted = s->chunked_out = false;
	s->unread = s->expect = s->head_only = false;
	s->status = 0;
	s->sent = 0;
	s->on_body = NULL;
	s->on_end = NULL;
	s->route = NULL;
	s->ltlen = s->lreflen = s->lualen = 0;
	s->method = COIL_HTTP1_OTHER;
	s->minor = 1;
	memset(s->user, 0, sizeof(s->user));
}

static void request_done(struct httpd_conn *s)
{
	if (s->lp->h->logfd >= 0)
		httpd__log_line(s);
	s->served++;
	s->phase = HC_IDLE;
	s->since = now_ms(s->lp);
	s->unread = s->accepted = s->started = s->responded = false;
	if (!s->keep_alive || s->shutting) {
		conn_close(s);
		return;
	}
	/* The answer is queued (or staged): its send timeout starts now. */
	s->moved = s->since;
	send_check(s, s->since);
}

/* Take back the current response if all of it is still staged (never
 * handed to coil): a body error found in the same turn can then still be
 * answered properly. */
static void retract(struct httpd_conn *s)
{
	struct httpd_loop *lp = s->lp;

	if (!s->started || lp->out_conn != s->conn ||
	    s->head_gen != lp->flushes || s->head_at > lp->out_len)
		return;
	lp->out_len = s->head_at;
	s->started = s->responded = s->chunked_out = false;
	s->sent = 0;
}

/* The body cannot be read to its end: answer `status` if nothing was sent
 * yet, else cut the connection (a response was promised and is not
 * complete) or close it after the complete one. */
static void body_fail(struct httpd_conn *s, int status)
{
	struct httpd_ctx x;

	retract(s);
	if (!s->started) {
		ctx_init(&x, s);
		s->keep_alive = false;
		httpd_respond_error(&x, status);
		s->unread = false;
		request_done(s);
	} else if (s->responded) {
		conn_close(s);
	} else {
		conn_abort(s);
	}
}

static void handle_request(struct httpd_conn *s,
			   const struct coil_http1_request *req, size_t rest)
{
	struct httpd_loop *lp = s->lp;
	struct httpd *h = lp->h;
	struct httpd_ctx x;
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
	ctx_init(&x, s);
	x.req = req;
	if (h->logfd >= 0) {
		/* the method as sent (BREW too), a space, the target */
		uint8_t m = httpd__log_keep(s->ltarget, 16, &req->method_name);

		s->ltarget[m] = ' ';
		s->ltlen = (uint8_t)(m + 1 +
			httpd__log_keep(s->ltarget + m + 1,
				 sizeof(s->ltarget) - m - 1, &req->target));
		s->lreflen = httpd__log_keep(s->lref, sizeof(s->lref),
				      httpd_header(&x, "Referer"));
		s->lualen = httpd__log_keep(s->lua, sizeof(s->lua),
				     httpd_header(&x, "User-Agent"));
	}
	if (f & COIL_HTTP1_F_EXPECT_OTHER) {
		s->keep_alive = false;
		httpd_respond_error(&x, 417);
	} else if (req->method == COIL_HTTP1_OTHER ||
		   req->method == COIL_HTTP1_CONNECT) {
		s->keep_alive = false;
		httpd_respond_error(&x, 501);
	} else if ((f & COIL_HTTP1_F_CONTENT_LENGTH) &&
		   req->content_length > h->cfg.max_body) {
		s->keep_alive = false;
		httpd_respond_error(&x, 413);
	} else {
		dispatch(&x);
	}
	if (!s->started && !s->accepted)
		httpd_respond_error(&x, 500);   /* a handler that did not answer */
	if (s->closed)
		return;
	if (s->unread && (s->accepted || s->keep_alive)) {
		/* read it: for the handler, or to reach the next request */
		coil_http1_body_init(&s->body, req, &h->limits, NULL, 0);
		s->phase = HC_BODY;
		s->since = now_ms(lp);
		arm(s, s->since + h->cfg.body_timeout_ms);
		return;
	}
	request_done(s);
}

/* One step of the body; false: stop here (more input needed, or done). */
static bool body_step(struct httpd_conn *s, const uint8_t *d, size_t len,
		      size_t *pos)
{
	struct coil_http1_str slice;
	struct httpd_ctx x;
	size_t used;
	int r = coil_http1_body_read(&s->body, d + *pos, len - *pos, &slice,
				     &used);

	*pos += used;
	if (used)
		s->since = now_ms(s->lp);
	if (s->body.announced > s->lp->h->cfg.max_body) {
		body_fail(s, 413);
		return false;
	}
	switch (r) {
	case COIL_HTTP1_DATA:
		if (s->on_body) {
			ctx_init(&x, s);
			s->on_body(&x, (const uint8_t *)slice.ptr, slice.len);
		}
		return !s->closed;
	case COIL_HTTP1_NEED_MORE:
		return false;
	case COIL_HTTP1_DONE:
		s->unread = false;
		if (s->accepted) {
			ctx_init(&x, s);
			s->on_end(&x);
			if (!s->responded && !s->closed) {
				if (!s->started) {
					httpd_respond_error(&x, 500);
				} else {
					conn_abort(s);
					return false;
				}
			}
		}
		if (!s->closed)
			request_done(s);
		return !s->closed;
	default:
		body_fail(s, coil_http1_error_status(r));
		return false;
	}
}

static void parse_error(struct httpd_conn *s, int err)
{
	struct httpd_ctx x;

	fresh_request(s);
	s->keep_alive = false;
	ctx_init(&x, s);
	httpd_respond_error(&x, coil_http1_error_status(err));
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
	while (pos < len && !s->closed) {
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
	httpd__out_flush(lp);
	return pos;
}

static void conn_timer(struct coil_timer *t)
{
	struct httpd_conn *s = httpd__container_of(t, struct httpd_conn, timer);
	struct httpd_loop *lp = s->lp;
	uint64_t now = now_ms(lp), dl;
	size_t q;

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
				conn_abort(s);
			return;
		}
		send_check(s, now);
		return;
	}
	if (s->closed)
		return;   /* coil is freeing the connection */
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
	body_fail(s, 408);
	httpd__out_flush(lp);
}

static int hd_open(struct coil_conn *c)
{
	struct httpd *h = coil_conn_service_data(c);
	struct httpd_conn *s = coil_conn_state(c);
	struct coil_loop *loop = coil_conn_loop(c);

	s->lp = loop_get(h, loop);
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
	coil_timer_stop(&s->timer);
	if (lp->out_conn == c) {
		lp->out_conn = NULL;
		lp->out_len = 0;
	}
	httpd__unpin_all(s);
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

static const struct coil_proto_ops httpd_ops = {
	.on_open = hd_open,
	.on_data = hd_data,
	.on_close = hd_close,
	.on_shutdown = hd_shutdown,
};

/* ---- built-in resources ---- */

static void h_plaintext(struct httpd_ctx *x)
{
	struct httpd_conn *s = x->s;

	/* The TechEmpower case: the whole response is prebuilt per second. */
	if (!x->head && s->keep_alive && s->minor == 1 && !s->unread &&
	    !s->shutting) {
		httpd__out_put(x->lp, x->conn, x->lp->plain, x->lp->plain_len);
		s->started = s->responded = true;
		s->status = 200;
		s->sent = sizeof(plain_body) - 1;
		return;
	}
	httpd_respond_static(x, 200, "text/plain", plain_body,
			     sizeof(plain_body) - 1);
}

static void h_json(struct httpd_ctx *x)
{
	struct httpd_conn *s = x->s;

	if (!x->head && s->keep_alive && s->minor == 1 && !s->unread &&
	    !s->shutting) {
		httpd__out_put(x->lp, x->conn, x->lp->json, x->lp->json_len);
		s->started = s->responded = true;
		s->status = 200;
		s->sent = sizeof(json_body) - 1;
		return;
	}
	httpd_respond_static(x, 200, "application/json", json_body,
			     sizeof(json_body) - 1);
}

/* user[0]: the response length (the request's Content-Length, or
 * HTTPD_CHUNKED). The head waits for the first body bytes, so a body that
 * is bad from its start still gets its 400. */
static void echo_body(struct httpd_ctx *x, const uint8_t *data, size_t len)
{
	if (!x->s->started)
		httpd_respond_start(x, 200, "application/octet-stream",
				    *(uint64_t *)x->user);
	httpd_respond_data(x, data, len);
}

static void echo_end(struct httpd_ctx *x)
{
	if (!x->s->started)
		httpd_respond(x, 200, "application/octet-stream", "", 0);
	else
		httpd_respond_end(x);
}

/* POST/PUT /echo: the body comes back as it arrives (same length, or
 * chunked for a chunked upload), never buffered whole. */
static void h_echo(struct httpd_ctx *x)
{
	const struct coil_http1_request *req = x->req;

	if (!httpd_has_body(x)) {
		httpd_respond(x, 200, "application/octet-stream", "", 0);
		return;
	}
	*(uint64_t *)x->user = (req->flags & COIL_HTTP1_F_CONTENT_LENGTH)
				       ? req->content_length : HTTPD_CHUNKED;
	httpd_body_accept(x, echo_body, echo_end);
}

/* ---- server ---- */

int httpd_route(struct httpd *h, const struct httpd_route *route)
{
	if (!route->path || route->path[0] != '/')
		return -EINVAL;
	for (unsigned i = 0; i < h->nroutes; i++) {
		if (h->routes[i].flags == route->flags &&
		    !strcmp(h->routes[i].path, route->path)) {
			h->routes[i] = *route;
			return 0;
		}
	}
	if (h->nroutes == HTTPD__MAX_ROUTES)
		return -ENOSPC;
	h->routes[h->nroutes++] = *route;
	return 0;
}

int httpd_create(const struct httpd_config *cfg, struct httpd **out,
		 const char **failed)
{
	struct httpd *h = calloc(1, sizeof(*h));
	struct httpd_config *c;
	const char *what = "memory";
	int ret;

	if (!h) {
		ret = -ENOMEM;
		goto fail;
	}
	h->rootfd = h->logfd = -1;
	c = &h->cfg;
	memcpy(c, cfg, cfg->sz < sizeof(*c) ? cfg->sz : sizeof(*c));
	c->sz = sizeof(*c);
	if (!c->max_body)
		c->max_body = HTTPD_DEFAULT_MAX_BODY;
	if (!c->header_timeout_ms)
		c->header_timeout_ms = HTTPD_DEFAULT_HEADER_TIMEOUT_MS;
	if (!c->body_timeout_ms)
		c->body_timeout_ms = HTTPD_DEFAULT_BODY_TIMEOUT_MS;
	if (!c->keepalive_timeout_ms)
		c->keepalive_timeout_ms = HTTPD_DEFAULT_KEEPALIVE_TIMEOUT_MS;
	if (!c->send_timeout_ms)
		c->send_timeout_ms = c->keepalive_timeout_ms;
	if (c->cache_size == HTTPD_CACHE_OFF)
		h->cache_size = 0;
	else
		h->cache_size = c->cache_size ? c->cache_size
					      : HTTPD_DEFAULT_CACHE_SIZE;
	h->limits = c->limits;
	h->limits.sz = sizeof(h->limits);
	if (!h->limits.max_headers)
		h->limits.max_headers = HTTPD_DEFAULT_MAX_HEADERS;
	if (h->limits.max_headers > HTTPD_MAX_HEADERS) {
		/* Never lowered behind the caller's back. */
		what = "limits.max_headers";
		ret = -EINVAL;
		goto fail;
	}
	h->high_water = DEFAULT_HIGH_WATER;
	h->nloops = c->max_loops ? c->max_loops : 1024;
	h->loops = calloc(h->nloops, sizeof(*h->loops));
	if (!h->loops) {
		ret = -ENOMEM;
		goto fail;
	}
	if (c->root) {
		what = "the document root";
		ret = httpd__files_open_root(h);
		if (ret)
			goto fail;
	}
	if (c->access_log) {
		what = "the access log";
		h->logfd = open(c->access_log,
				O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (h->logfd < 0) {
			ret = -errno;
			goto fail;
		}
	}
	{
		struct httpd_route plain = { .path = "/plaintext" };
		struct httpd_route json = { .path = "/json" };
		struct httpd_route echo = { .path = "/echo" };
		struct httpd_route files = { .path = "/",
					     .flags = HTTPD_ROUTE_PREFIX };

		plain.on[COIL_HTTP1_GET] = h_plaintext;
		json.on[COIL_HTTP1_GET] = h_json;
		echo.on[COIL_HTTP1_POST] = h_echo;
		echo.on[COIL_HTTP1_PUT] = h_echo;
		files.on[COIL_HTTP1_GET] = httpd__files_get;
		httpd_route(h, &plain);
		httpd_route(h, &json);
		httpd_route(h, &echo);
		if (h->rootfd >= 0)
			httpd_route(h, &files);
	}
	*out = h;
	return 0;
fail:
	if (failed)
		*failed = what;
	if (h) {
		if (h->rootfd >= 0)
			close(h->rootfd);
		free(h->loops);
		free(h);
	}
	return ret;
}

void httpd_service_init(struct httpd *h, struct coil_service *svc)
{
	svc->ops = &httpd_ops;
	svc->state_size = h->logfd >= 0 ? sizeof(struct httpd_conn)
				       : offsetof(struct httpd_conn, ltarget);
	svc->data = h;
	if (!svc->write_high_water)
		svc->write_high_water = DEFAULT_HIGH_WATER;
	h->high_water = svc->write_high_water;
}

void httpd_destroy(struct httpd *h)
{
	if (!h)
		return;
	for (unsigned i = 0; i < h->nloops; i++)
		if (h->loops[i])
			loop_free(h->loops[i]);
	free(h->loops);
	if (h->rootfd >= 0)
		close(h->rootfd);
	if (h->logfd >= 0)
		close(h->logfd);
	free(h);
}
