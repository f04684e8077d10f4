/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.1 request parser (RFC 9112): the request line, the checks that
 * need the whole head, coil_http1_parse; and the codec's error codes in
 * words and as HTTP statuses. The field lines it runs over are
 * http1_fields.c; the body reader is http1_body.c, the response writer
 * http1_out.c, the client's response parser http1_response.c.
 *
 * The parser is an explicit state machine over offsets, not pointers: on_data
 * re-offers unconsumed input at a different address (a receive buffer, then
 * the connection's carry buffer), so only offsets from the start of the
 * request survive between calls. Pointers are made once, when a head
 * completes. Every check happens at a fixed byte offset (limits included),
 * which is what makes the result independent of how the input was split.
 */
#include <coil/http1.h>

#include <limits.h>
#include <string.h>

#include "proto/http1_internal.h"

/* Request-target bytes: VCHAR. RFC 3986 has no raw SP, control or
 * non-ASCII byte in a URI; rejecting them keeps a proxy in front from
 * reading the line differently. */
static const uint8_t target_ok[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

static inline const char *scan_target(const char *p, const char *end)
{
	if (end - p >= 16) {
		if (coil__http1_simd_level == COIL__HTTP1_SIMD_AVX2)
			p = coil__http1_scan_target_avx2(p, end);
		else if (coil__http1_simd_level == COIL__HTTP1_SIMD_SSE42)
			p = coil__http1_scan_target_sse42(p, end);
	}
	while (p < end && target_ok[(unsigned char)*p])
		p++;
	return p;
}

/* --- errors --------------------------------------------------------- */

const char *coil_http1_strerror(int err)
{
	switch (err) {
	case COIL_HTTP1_E_BAD_METHOD: return "bad method";
	case COIL_HTTP1_E_BAD_TARGET: return "bad request-target";
	case COIL_HTTP1_E_BAD_VERSION: return "bad HTTP version";
	case COIL_HTTP1_E_VERSION: return "HTTP version not supported";
	case COIL_HTTP1_E_BAD_EOL: return "line not ended by CRLF";
	case COIL_HTTP1_E_BAD_HEADER_NAME: return "bad header name";
	case COIL_HTTP1_E_HEADER_NAME_WS: return "whitespace before colon";
	case COIL_HTTP1_E_OBS_FOLD: return "obsolete line folding";
	case COIL_HTTP1_E_BAD_HEADER_CHAR: return "bad byte in header value";
	case COIL_HTTP1_E_MISSING_HOST: return "missing Host";
	case COIL_HTTP1_E_DUP_HOST: return "more than one Host";
	case COIL_HTTP1_E_BAD_HOST: return "bad Host";
	case COIL_HTTP1_E_CL_AND_TE:
		return "Content-Length with Transfer-Encoding";
	case COIL_HTTP1_E_DUP_CL_DIFFERENT:
		return "differing Content-Length values";
	case COIL_HTTP1_E_BAD_CL: return "bad Content-Length";
	case COIL_HTTP1_E_BAD_TE: return "bad Transfer-Encoding";
	case COIL_HTTP1_E_TE_UNSUPPORTED:
		return "unsupported transfer coding";
	case COIL_HTTP1_E_TOO_MANY_HEADERS: return "too many header fields";
	case COIL_HTTP1_E_LINE_TOO_LONG: return "request line too long";
	case COIL_HTTP1_E_HEAD_TOO_LARGE: return "header section too large";
	case COIL_HTTP1_E_BAD_CHUNK_SIZE: return "bad chunk size";
	case COIL_HTTP1_E_CHUNK_OVERFLOW: return "chunk size overflow";
	case COIL_HTTP1_E_BAD_CHUNK_EXT: return "bad chunk extension";
	case COIL_HTTP1_E_CHUNK_NO_CRLF: return "chunk not ended by CRLF";
	case COIL_HTTP1_E_CHUNK_LINE_TOO_LONG: return "chunk-size line too long";
	case COIL_HTTP1_E_INPUT: return "input shorter than already parsed";
	case COIL_HTTP1_E_BAD_STATUS: return "bad status line";
	}
	return "unknown error";
}

int coil_http1_error_status(int err)
{
	switch (err) {
	case COIL_HTTP1_E_VERSION: return 505;
	case COIL_HTTP1_E_TE_UNSUPPORTED: return 501;
	case COIL_HTTP1_E_LINE_TOO_LONG: return 414;
	case COIL_HTTP1_E_TOO_MANY_HEADERS:
	case COIL_HTTP1_E_HEAD_TOO_LARGE: return 431;
	}
	return err < 0 ? 400 : 0;
}

/* --- request head ----------------------------------------------------- */

enum { R_START, R_START_LF, R_METHOD, R_TARGET, R_VERSION, R_VERSION_LF,
       R_FIELDS };

void coil_http1_parser_init(struct coil_http1_parser *p,
			    const struct coil_http1_limits *limits,
			    struct coil_http1_header *headers, unsigned cap)
{
	uint32_t maxh = COIL__HTTP1_LIMIT(limits, max_headers,
					  COIL_HTTP1_DEFAULT_MAX_HEADERS);

	memset(p, 0, sizeof(*p));
	p->max_line = COIL__HTTP1_LIMIT(limits, max_request_line,
					COIL_HTTP1_DEFAULT_MAX_REQUEST_LINE);
	p->max_head = COIL__HTTP1_LIMIT(limits, max_head,
					COIL_HTTP1_DEFAULT_MAX_HEAD);
	p->f.hdrs = headers;
	p->f.cap = headers ? cap : 0;
	p->f.max = p->f.cap < maxh ? p->f.cap : maxh;
}

void coil_http1_parser_reset(struct coil_http1_parser *p)
{
	struct coil__http1_fields f = p->f;
	uint32_t max_line = p->max_line, max_head = p->max_head;

	memset(p, 0, sizeof(*p));
	p->f.hdrs = f.hdrs;
	p->f.cap = f.cap;
	p->f.max = f.max;
	p->max_line = max_line;
	p->max_head = max_head;
}

static enum coil_http1_method method_of(const char *m, size_t n)
{
	/* By length first: one or two fixed-size compares. */
	switch (n) {
	case 3:
		if (!memcmp(m, "GET", 3))
			return COIL_HTTP1_GET;
		if (!memcmp(m, "PUT", 3))
			return COIL_HTTP1_PUT;
		break;
	case 4:
		if (!memcmp(m, "POST", 4))
			return COIL_HTTP1_POST;
		if (!memcmp(m, "HEAD", 4))
			return COIL_HTTP1_HEAD;
		break;
	case 5:
		if (!memcmp(m, "PATCH", 5))
			return COIL_HTTP1_PATCH;
		if (!memcmp(m, "TRACE", 5))
			return COIL_HTTP1_TRACE;
		break;
	case 6:
		if (!memcmp(m, "DELETE", 6))
			return COIL_HTTP1_DELETE;
		break;
	case 7:
		if (!memcmp(m, "OPTIONS", 7))
			return COIL_HTTP1_OPTIONS;
		if (!memcmp(m, "CONNECT", 7))
			return COIL_HTTP1_CONNECT;
		break;
	}
	return COIL_HTTP1_OTHER;
}

/* RFC 9112 3.2: origin-form ("/..."), absolute-form ("scheme:..."),
 * authority-form (CONNECT only) or asterisk-form (OPTIONS only). */
static bool target_form_ok(enum coil_http1_method m, const char *t, size_t n)
{
	size_t i;

	if (m == COIL_HTTP1_CONNECT)  /* host:port */
		return t[0] != '/' && memchr(t, ':', n) && !memchr(t, '/', n);
	if (t[0] == '/')
		return true;
	if (n == 1 && t[0] == '*')
		return m == COIL_HTTP1_OPTIONS;
	/* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
	if (!((t[0] | 0x20) >= 'a' && (t[0] | 0x20) <= 'z'))
		return false;
	for (i = 1; i < n && t[i] != ':'; i++) {
		int c = t[i] | 0x20;

		if (!((c >= 'a' && c <= 'z') || (t[i] >= '0' && t[i] <= '9') ||
		      t[i] == '+' || t[i] == '-' || t[i] == '.'))
			return false;
	}
	return i < n;
}

/* Parse the request line; returns 1 when it is complete. Same shape as
 * coil__http1_fields_run. */
static int request_line(struct coil_http1_parser *p, const char *buf,
			size_t len)
{
	const bool at_limit = len >= p->max_line;
	const char *stop = buf + (at_limit ? p->max_line : len);
	const char *c = buf + p->pos;

	switch (p->state) {
	case R_START: goto start;
	case R_START_LF: goto start_lf;
	case R_METHOD: goto method;
	case R_TARGET: goto target;
	case R_VERSION: goto version;
	case R_VERSION_LF: goto version_lf;
	}
start:
	if (c == stop) {
		p->state = R_START;
		goto more;
	}
	/* RFC 9112 2.2: ignore empty lines before the request line (some
	 * clients send CRLF after a body). */
	if (*c == '\r') {
		c++;
		goto start_lf;
	}
	p->method_off = (uint32_t)(c - buf);
method:
	c = coil__http1_scan_token(c, stop);
	if (c == stop) {
		p->state = R_METHOD;
		goto more;
	}
	p->method_len = (uint32_t)(c - buf) - p->method_off;
	if (*c != ' ' || !p->method_len)
		return COIL_HTTP1_E_BAD_METHOD;
	p->method = (uint8_t)method_of(buf + p->method_off, p->method_len);
	c++;
	p->target_off = (uint32_t)(c - buf);
target:
	c = scan_target(c, stop);
	if (c == stop) {
		p->state = R_TARGET;
		goto more;
	}
	p->target_len = (uint32_t)(c - buf) - p->target_off;
	/* One SP exactly (RFC 9112 3): anything else, or an HTTP/0.9 line
	 * without a version, is refused. */
	if (*c != ' ' || !p->target_len ||
	    !target_form_ok(p->method, buf + p->target_off, p->target_len))
		return COIL_HTTP1_E_BAD_TARGET;
	c++;
	p->vidx = 0;
version:
	/* The usual "HTTP/1.x\r\n" in one step when it is all there (and
	 * within the limit: `stop`); byte by byte otherwise, same result. */
	if (!p->vidx && stop - c >= 10 && !memcmp(c, "HTTP/1.", 7) &&
	    c[7] >= '0' && c[7] <= '9' && c[8] == '\r' && c[9] == '\n') {
		p->major = 1;
		p->minor = c[7] != '0';
		c += 10;
		goto line_done;
	}
	for (; c < stop; c++) {
		unsigned i = p->vidx++;

		if (i < 5) {
			if (*c != "HTTP/"[i])
				return COIL_HTTP1_E_BAD_VERSION;
		} else if (i == 5 || i == 7) {
			if (*c < '0' || *c > '9')
				return COIL_HTTP1_E_BAD_VERSION;
			if (i == 5)
				p->major = (uint8_t)(*c - '0');
			else  /* 1.x above 1.1 is read as 1.1 */
				p->minor = *c != '0';
		} else if (i == 6) {
			if (*c != '.')
				return COIL_HTTP1_E_BAD_VERSION;
		} else {
			if (*c != '\r')
				return *c == '\n' ? COIL_HTTP1_E_BAD_EOL :
					COIL_HTTP1_E_BAD_VERSION;
			if (p->major != 1)
				return COIL_HTTP1_E_VERSION;
			c++;
			goto version_lf;
		}
	}
	p->state = R_VERSION;
	goto more;
version_lf:
	if (c == stop) {
		p->state = R_VERSION_LF;
		goto more;
	}
	if (*c != '\n')
		return COIL_HTTP1_E_BAD_EOL;
	c++;
line_done:
	p->pos = (uint32_t)(c - buf);
	p->f.pos = p->pos;
	p->f.limit = p->pos + p->max_head;
	p->state = R_FIELDS;
	return 1;
start_lf:
	if (c == stop) {
		p->state = R_START_LF;
		goto more;
	}
	if (*c != '\n')
		return COIL_HTTP1_E_BAD_EOL;
	c++;
	goto start;
more:
	p->pos = (uint32_t)(c - buf);
	return at_limit ? COIL_HTTP1_E_LINE_TOO_LONG : COIL_HTTP1_NEED_MORE;
}

/* The head is complete: checks that need every field, then the result. */
static int head_done(struct coil_http1_parser *p, const char *buf,
		     struct coil_http1_request *req)
{
	unsigned flags = p->flags;

	if (p->te & COIL__HTTP1_TE_SEEN) {
		/* RFC 9112 6.1, 6.3: both framings at once is how requests
		 * are smuggled; a 1.0 message with Transfer-Encoding has
		 * faulty framing. */
		if (flags & COIL_HTTP1_F_CONTENT_LENGTH)
			return COIL_HTTP1_E_CL_AND_TE;
		if (!p->minor || (p->te & COIL__HTTP1_TE_BAD) ||
		    !(p->te & COIL__HTTP1_TE_LAST_CHUNKED))
			return COIL_HTTP1_E_BAD_TE;
		if (p->te & COIL__HTTP1_TE_OTHER)
			return COIL_HTTP1_E_TE_UNSUPPORTED;
		flags |= COIL_HTTP1_F_CHUNKED;
	}
	if (p->minor && !p->nhost)
		return COIL_HTTP1_E_MISSING_HOST;
	if (!(flags & COIL_HTTP1_F_CONN_CLOSE) &&
	    (p->minor || (flags & COIL_HTTP1_F_CONN_KEEP_ALIVE)))
		flags |= COIL_HTTP1_F_KEEP_ALIVE;

	coil__http1_fields_slices(&p->f, buf);
	req->method = (enum coil_http1_method)p->method;
	req->version_minor = p->minor;
	req->flags = flags;
	req->method_name.ptr = buf + p->method_off;
	req->method_name.len = p->method_len;
	req->target.ptr = buf + p->target_off;
	req->target.len = p->target_len;
	req->host.ptr = p->nhost ? buf + p->host_off : NULL;
	req->host.len = p->host_len;
	req->headers = p->f.hdrs;
	req->nheaders = p->f.n;
	req->content_length = p->content_length;
	req->head_len = p->f.pos;
	return (int)p->f.pos;
}

int coil_http1_parse(struct coil_http1_parser *p, const void *data,
		     size_t len, struct coil_http1_request *req)
{
	const char *buf = data;
	int rc;

	if (p->err)
		return p->err;
	/* Every limit is below 2^31: more input than that is never needed. */
	if (len > INT_MAX)
		len = INT_MAX;
	if (p->state < R_FIELDS) {
		if (len < p->pos) {
			rc = COIL_HTTP1_E_INPUT;
			goto fail;
		}
		rc = request_line(p, buf, len);
		if (rc <= 0)
			goto out;
	}
	if (len < p->f.pos) {
		rc = COIL_HTTP1_E_INPUT;
		goto fail;
	}
	rc = coil__http1_fields_run(&p->f, buf, len, p);
	if (rc != COIL_HTTP1_DONE)
		goto out;
	rc = head_done(p, buf, req);
	if (rc < 0)
		goto fail;
	coil_http1_parser_reset(p);
	return rc;
out:
	if (rc >= 0)
		return COIL_HTTP1_NEED_MORE;
fail:
	p->err = rc;
	return rc;
}
