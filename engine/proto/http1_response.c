/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1 responses, client side (engine/http client and proxy): the status
 * line, the header section through the field-line machine of
 * http1_fields.c, and the framing a response's status and headers give its
 * body (RFC 9112 6.3), ready for the body reader of http1_body.c.
 */
#include <coil/http1.h>

#include <string.h>

#include "proto/http1_internal.h"

/* --- responses (client side) ------------------------------------------ */

/* The status line "HTTP/1.x SSS[ reason]\r\n" at the start of buf.
 * Returns its length with CRLF, NEED_MORE, or an error. */
static int status_line(const char *buf, size_t len, uint32_t max_line,
		       struct coil_http1_response *r)
{
	static const char pre[] = "HTTP/1.";
	size_t n = len < 7 ? len : 7, lim = len < max_line ? len : max_line;
	const char *c, *end, *eol;

	if (memcmp(buf, pre, n))
		return memcmp(buf, pre, n < 5 ? n : 5) ? COIL_HTTP1_E_BAD_VERSION
						       : COIL_HTTP1_E_VERSION;
	eol = memchr(buf, '\n', lim);
	if (!eol)
		return len >= max_line ? COIL_HTTP1_E_LINE_TOO_LONG
				       : COIL_HTTP1_NEED_MORE;
	end = eol;
	if (end == buf || end[-1] != '\r')
		return COIL_HTTP1_E_BAD_EOL;
	end--;  /* the CR */
	c = buf + 7;
	if (c >= end || *c < '0' || *c > '9')
		return COIL_HTTP1_E_BAD_VERSION;
	r->version_minor = (unsigned)(*c++ - '0');
	if (end - c < 4 || *c++ != ' ')
		return COIL_HTTP1_E_BAD_STATUS;
	r->status = 0;
	for (int i = 0; i < 3; i++, c++) {
		if (*c < '0' || *c > '9')
			return COIL_HTTP1_E_BAD_STATUS;
		r->status = r->status * 10 + (*c - '0');
	}
	if (r->status < 100)
		return COIL_HTTP1_E_BAD_STATUS;
	r->reason.ptr = c;
	r->reason.len = 0;
	if (c < end) {
		/* status-code SP [ reason-phrase ] */
		if (*c++ != ' ')
			return COIL_HTTP1_E_BAD_STATUS;
		r->reason.ptr = c;
		for (; c < end; c++)
			if (!coil__http1_value_ok[(unsigned char)*c])
				return COIL_HTTP1_E_BAD_STATUS;
		r->reason.len = (size_t)(end - r->reason.ptr);
	}
	return (int)(eol + 1 - buf);
}

int coil_http1_response_parse(const void *buf, size_t len, bool head_request,
			      struct coil_http1_response *r,
			      struct coil_http1_header *hdrs, unsigned cap,
			      const struct coil_http1_limits *limits)
{
	const char *b = buf;
	struct coil_http1_parser p;  /* collects the framing headers */
	uint32_t max_line = COIL__HTTP1_LIMIT(limits, max_request_line,
			COIL_HTTP1_DEFAULT_MAX_REQUEST_LINE);
	uint32_t max_head = COIL__HTTP1_LIMIT(limits, max_head,
					      COIL_HTTP1_DEFAULT_MAX_HEAD);
	uint32_t maxh = COIL__HTTP1_LIMIT(limits, max_headers,
					  COIL_HTTP1_DEFAULT_MAX_HEADERS);
	unsigned flags;
	int line, rc;

	/* A struct reused for the next response on a keep-alive connection
	 * keeps nothing of the previous one, whatever this call returns. */
	*r = (struct coil_http1_response){ 0 };
	if (!len)
		return COIL_HTTP1_NEED_MORE;
	line = status_line(b, len, max_line, r);
	if (line <= 0)
		return line;
	if (len > (size_t)COIL__HTTP1_LIMIT_MAX)
		len = COIL__HTTP1_LIMIT_MAX;
	memset(&p, 0, sizeof(p));
	p.minor = (uint8_t)r->version_minor;
	p.f.hdrs = hdrs;
	p.f.cap = hdrs ? cap : 0;
	p.f.max = maxh;
	p.f.pos = (uint32_t)line;
	p.f.limit = (uint32_t)line + max_head;
	rc = coil__http1_fields_run(&p.f, b, len, &p);
	if (rc != COIL_HTTP1_DONE)
		return rc;
	flags = p.flags;
	if (p.te & COIL__HTTP1_TE_BAD)
		return COIL_HTTP1_E_BAD_TE;
	if ((p.te & COIL__HTTP1_TE_SEEN) &&
	    (flags & COIL_HTTP1_F_CONTENT_LENGTH))
		return COIL_HTTP1_E_CL_AND_TE;
	if (!(flags & COIL_HTTP1_F_CONN_CLOSE) &&
	    (r->version_minor || (flags & COIL_HTTP1_F_CONN_KEEP_ALIVE)))
		flags |= COIL_HTTP1_F_KEEP_ALIVE;
	r->content_length = p.content_length;
	if (head_request || r->status < 200 || r->status == 204 ||
	    r->status == 304) {
		/* RFC 9112 6.3: no body, whatever the headers say. */
		flags &= ~(unsigned)(COIL_HTTP1_F_CONTENT_LENGTH |
				     COIL_HTTP1_F_CHUNKED);
		r->content_length = 0;
	} else if (p.te & COIL__HTTP1_TE_SEEN) {
		if (p.te & COIL__HTTP1_TE_LAST_CHUNKED)
			flags |= COIL_HTTP1_F_CHUNKED;
		else
			flags |= COIL_HTTP1_F_CLOSE_DELIMITED;
	} else if (!(flags & COIL_HTTP1_F_CONTENT_LENGTH)) {
		flags |= COIL_HTTP1_F_CLOSE_DELIMITED;
	}
	if (flags & COIL_HTTP1_F_CLOSE_DELIMITED)
		flags &= ~(unsigned)COIL_HTTP1_F_KEEP_ALIVE;
	coil__http1_fields_slices(&p.f, b);
	r->flags = flags;
	r->headers = hdrs;
	r->nheaders = p.f.n < p.f.cap ? p.f.n : p.f.cap;
	r->head_len = p.f.pos;
	return (int)p.f.pos;
}

void coil_http1_response_body_init(struct coil_http1_body *b,
				   const struct coil_http1_response *r,
				   const struct coil_http1_limits *limits,
				   struct coil_http1_header *trailers,
				   unsigned cap)
{
	struct coil_http1_request req = {
		.flags = r->flags & (COIL_HTTP1_F_CHUNKED |
				     COIL_HTTP1_F_CONTENT_LENGTH),
		.content_length = r->content_length,
	};

	coil_http1_body_init(b, &req, limits, trailers, cap);
}
