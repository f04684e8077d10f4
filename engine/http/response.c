/* SPDX-License-Identifier: MIT */
/*
 * coil's HTTP server (coil/http.h): answers. The response head writer,
 * whole, streamed and file answers, the handler's own header lines, answers
 * given later (coil_http_defer, coil_http_on_drain) and request bodies taken
 * by a handler. The connection and request life cycle is in request.c.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* A header field value without control bytes (HTAB allowed): none that
 * could end the line and start another. It runs for every answer's
 * Content-Type, so eight bytes a step: a word with no byte below 0x20 and
 * none equal to 0x7f (the has-less-than and has-zero word tests, exact as
 * to whether any byte matches) passes; the last word overlaps the one
 * before it rather than leaving a tail. Only a value with a HTAB or a bad
 * byte in it, or under 8 bytes, is looked at byte by byte. */
static bool field_value_ok(const char *v, size_t n)
{
	const uint64_t ones = 0x0101010101010101ull;
	const uint64_t high = 0x8080808080808080ull;

	for (size_t i = 0; n >= 8;) {
		uint64_t w, d;

		memcpy(&w, v + i, 8);
		d = w ^ (ones * 0x7f);
		if ((((w - ones * 0x20) & ~w) | ((d - ones) & ~d)) & high)
			break;
		if (i + 8 == n)
			return true;
		i = i + 16 <= n ? i + 8 : n - 8;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

int httpd__resp_head(struct coil_http_req *x, int status, const char *ctype,
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
	if (clen && !field_value_ok(ctype, clen))
		return -EINVAL;   /* as coil_http_header_set refuses it */
	if (!lp->busy)
		date_tick(lp);   /* a deferred answer, from another callback */
	if (status < 100 || status > 999)
		status = 500;
	reason = coil_http1_reason(status);
	rlen = strlen(reason);
	need = 32 + rlen + lp->common_len + clen + 48 + s->xh_len + extra_len +
	       32;
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
	if (len == COIL_HTTP_CHUNKED) {
		if (s->minor == 0) {
			/* no chunked framing for 1.0: the close ends the body */
			s->keep_alive = false;
			len = HTTPD__NO_LENGTH;
		} else {
			s->chunked_out = true;
		}
	}
	s->rq->head_at = lp->out_len;
	s->rq->head_gen = lp->flushes;
	p = lp->out + lp->out_len;
	p = PUTS(p, "HTTP/1.1 ");
	p = coil_http1_put_u64(p, (uint64_t)status);
	*p++ = ' ';
	p = put(p, reason, rlen);
	p = PUTS(p, "\r\n");
	p = put(p, lp->common, lp->common_len);
	if (ctype) {
		p = PUTS(p, "Content-Type: ");
		p = put(p, ctype, clen);
		p = PUTS(p, "\r\n");
	}
	if (len == COIL_HTTP_CHUNKED) {
		p = PUTS(p, "Transfer-Encoding: chunked\r\n");
	} else if (len != HTTPD__NO_LENGTH && status >= 200 && status != 204 &&
		   status != 304) {
		p = PUTS(p, "Content-Length: ");
		p = coil_http1_put_u64(p, len);
		p = PUTS(p, "\r\n");
	}
	if (s->xh_len)
		p = put(p, s->xh, s->xh_len);
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

static int respond(struct coil_http_req *x, int status, const char *ctype,
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
	s->rq->sent = len;
	s->responded = true;
	httpd__answer_moved(s);
	return 0;
}

int coil_http_respond(struct coil_http_req *x, int status, const char *ctype,
		  const void *body, size_t len)
{
	return respond(x, status, ctype, NULL, 0, body, len, true);
}

int coil_http_respond_static(struct coil_http_req *x, int status, const char *ctype,
			 const void *body, size_t len)
{
	return respond(x, status, ctype, NULL, 0, body, len, false);
}

int httpd__respond_error_extra(struct coil_http_req *x, int status,
			       const char *extra, size_t extra_len)
{
	char body[64];
	char *p = coil_http1_put_u64(body, (uint64_t)status);
	const char *reason = coil_http1_reason(status);

	*p++ = ' ';
	p = put(p, reason, strnlen(reason, 40));
	*p++ = '\n';
	return respond(x, status, "text/plain", extra, extra_len, body,
		       (size_t)(p - body), true);
}

int coil_http_respond_error(struct coil_http_req *x, int status)
{
	return httpd__respond_error_extra(x, status, NULL, 0);
}

int coil_http_respond_start(struct coil_http_req *x, int status, const char *ctype,
			uint64_t len)
{
	int ret = httpd__resp_head(x, status, ctype, len, NULL, 0);

	if (!ret) {
		x->s->rq->sent = 0;
		httpd__answer_moved(x->s);
	}
	return ret;
}

int coil_http_respond_data(struct coil_http_req *x, const void *data, size_t len)
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
	s->rq->sent += len;
	httpd__answer_moved(s);
	return 0;
}

int coil_http_respond_end(struct coil_http_req *x)
{
	struct httpd_conn *s = x->s;

	if (!s->started || s->responded)
		return -EINVAL;
	if (s->chunked_out && !s->head_only)
		httpd__out_put(x->lp, x->conn, "0\r\n\r\n", 5);
	s->responded = true;
	httpd__answer_moved(s);
	return 0;
}

/* Header fields the server writes itself: framing, connection, Date. */
static bool server_owned(const char *name, size_t n)
{
	static const char *const own[] = {
		"Content-Length", "Transfer-Encoding", "Connection", "Date",
		"Server", "Keep-Alive", "Upgrade",
	};

	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (strlen(own[i]) == n && !strncasecmp(name, own[i], n))
			return true;
	return false;
}

/* Drop the lines of the handler's headers named `name`. */
static void xh_remove(struct httpd_conn *s, const char *name, size_t n)
{
	uint32_t i = 0;

	while (i < s->xh_len) {
		char *eol = memchr(s->xh + i, '\n', s->xh_len - i);
		uint32_t next = (uint32_t)(eol - s->xh) + 1;

		if (next - i > n + 1 && s->xh[i + n] == ':' &&
		    !strncasecmp(s->xh + i, name, n)) {
			memmove(s->xh + i, s->xh + next, s->xh_len - next);
			s->xh_len -= next - i;
		} else {
			i = next;
		}
	}
}

int httpd__header_put(struct coil_http_req *x, const char *name, size_t n,
		      const char *value, size_t vn, bool replace)
{
	struct httpd_conn *s = x->s;
	size_t need;

	if (s->started)
		return -EALREADY;
	if (s->closed)
		return -EPIPE;
	if (!n || server_owned(name, n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!coil_http1_is_tchar((unsigned char)name[i]))
			return -EINVAL;
	if (!field_value_ok(value, vn))
		return -EINVAL;   /* no CR/LF: no header injection */
	if (replace)
		xh_remove(s, name, n);
	need = s->xh_len + n + 2 + vn + 2;
	if (need > COIL_HTTP_HEADERS_MAX)
		return -ENOSPC;
	if (need > s->xh_cap) {
		size_t cap = s->xh_cap;
		char *p = coil__grow(s->xh, &cap, need, 256);

		if (!p)
			return -ENOMEM;
		s->xh = p;
		s->xh_cap = (uint32_t)cap;   /* <= 2 * COIL_HTTP_HEADERS_MAX */
	}
	memcpy(s->xh + s->xh_len, name, n);
	memcpy(s->xh + s->xh_len + n, ": ", 2);
	memcpy(s->xh + s->xh_len + n + 2, value, vn);
	memcpy(s->xh + s->xh_len + n + 2 + vn, "\r\n", 2);
	s->xh_len = (uint32_t)need;
	return 0;
}

int coil_http_header_set(struct coil_http_req *x, const char *name,
			 const char *value)
{
	return httpd__header_put(x, name, strlen(name), value, strlen(value),
				 true);
}

int coil_http_header_add(struct coil_http_req *x, const char *name,
			 const char *value)
{
	return httpd__header_put(x, name, strlen(name), value, strlen(value),
				 false);
}

enum coil_http1_method coil_http_method(const struct coil_http_req *x)
{
	return (enum coil_http1_method)x->s->method;
}

int coil_http_peer(const struct coil_http_req *x,
		   struct sockaddr_storage *addr, socklen_t *len)
{
	if (x->s->closed)
		return -EPIPE;
	return coil_conn_peer(x->conn, addr, len);
}

int coil_http_respond_file(struct coil_http_req *x, int status,
			   const char *ctype, int fd, uint64_t off,
			   uint64_t len, unsigned flags)
{
	struct httpd_conn *s = x->s;
	int ret = len == COIL_HTTP_CHUNKED ? -EINVAL :
		  httpd__resp_head(x, status, ctype, len, NULL, 0);

	if (ret) {
		if (flags & COIL_SENDFILE_CLOSE)
			close(fd);
		return ret;
	}
	if (!x->head && len && status != 204 && status != 304) {
		httpd__out_flush(x->lp);
		ret = coil_conn_sendfile(x->conn, fd, off, len, flags);
		if (ret) {
			/* the head is out, the body cannot follow */
			httpd__conn_abort(s);
			return ret;
		}
	} else if (flags & COIL_SENDFILE_CLOSE) {
		close(fd);
	}
	s->rq->sent = len;
	s->responded = true;
	httpd__answer_moved(s);
	return 0;
}

bool coil_http_respond_busy(const struct coil_http_req *x)
{
	return !x->s->closed &&
	       coil_conn_queued(x->conn) > x->lp->h->high_water;
}

int coil_http_on_drain(struct coil_http_req *x, coil_http_drain_cb cb,
		       void *arg)
{
	struct httpd_conn *s = x->s;

	if (s->closed)
		return -EPIPE;
	s->rq->on_drain = cb;
	s->rq->drain_arg = arg;
	return 0;
}

int coil_http_defer(struct coil_http_req *x, coil_http_cancel_cb on_cancel,
		    void *arg)
{
	struct httpd_conn *s = x->s;

	if (s->closed)
		return -EPIPE;
	if (s->responded)
		return -EALREADY;
	s->deferred = true;
	s->rq->on_cancel = on_cancel;
	s->rq->cancel_arg = arg;
	return 0;
}

bool coil_http_has_body(const struct coil_http_req *x)
{
	return x->s->unread;
}

int coil_http_body_accept(struct coil_http_req *x, coil_http_body_cb on_body,
		      coil_http_handler on_end)
{
	struct httpd_conn *s = x->s;

	if (!s->unread || s->accepted || s->started || !on_end)
		return -EINVAL;
	s->accepted = true;
	s->rq->on_body = on_body;
	s->rq->on_end = on_end;
	/* RFC 9110 10.1.1: no 100 once body bytes are already here. */
	if (s->expect && !x->lp->rest)
		httpd__out_put(x->lp, x->conn, continue_100,
			       sizeof(continue_100) - 1);
	return 0;
}

const struct coil_http1_str *coil_http_header(const struct coil_http_req *x,
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
