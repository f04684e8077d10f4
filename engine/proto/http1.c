/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.1 request parser, body reader and response writer (RFC 9112).
 *
 * The parser is an explicit state machine over offsets, not pointers: on_data
 * re-offers unconsumed input at a different address (a receive buffer, then
 * the connection's carry buffer), so only offsets from the start of the
 * request survive between calls. Pointers are made once, when a head
 * completes. Every check happens at a fixed byte offset (limits included),
 * which is what makes the result independent of how the input was split.
 */
#include <coil/http1.h>

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "proto/http1_internal.h"

/* Offsets are 32-bit and the head length is returned as an int. */
#define LIMIT_MAX (1u << 30)

/* Token bytes (RFC 9110 5.6.2 tchar). */
static const uint8_t tchar[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
	0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* Field-value bytes (RFC 9110 5.5): HTAB, SP, VCHAR, obs-text. */
static const uint8_t value_ok[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

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

/* Host value bytes: uri-host (reg-name, IP-literal) and ":" port. */
static const uint8_t host_ok[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 0,
	0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1,
	0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

static inline bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static inline int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* ASCII case-insensitive equality with a lowercase literal. */
static bool ieq(const char *s, size_t n, const char *lit, size_t litlen)
{
	if (n != litlen)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)s[i]) != lit[i])
			return false;
	return true;
}
#define IEQ(s, n, lit) ieq((s), (n), lit, sizeof(lit) - 1)

/* Tokens (methods, field names) are scanned byte by byte: they are short
 * (~10 bytes), and a 16-byte pshufb nibble-lookup scanner measured slower
 * than this loop in tests/fuzz/bench_http1.c. */
static const char *scan_token(const char *p, const char *end)
{
	while (p < end && tchar[(unsigned char)*p])
		p++;
	return p;
}

/* The SIMD paths need 16 readable bytes; short tails (and CPUs without
 * SSE4.2) use the byte loop, which every path ends with. */
static inline const char *scan_value(const char *p, const char *end)
{
	if (end - p >= 16) {
		if (coil__http1_simd_level == COIL__HTTP1_SIMD_AVX2)
			p = coil__http1_scan_value_avx2(p, end);
		else if (coil__http1_simd_level == COIL__HTTP1_SIMD_SSE42)
			p = coil__http1_scan_value_sse42(p, end);
	}
	while (p < end && value_ok[(unsigned char)*p])
		p++;
	return p;
}

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

/* --- field lines (headers and trailers) ------------------------------- */

enum { F_LINE, F_NAME, F_VALUE_WS, F_VALUE, F_VALUE_LF, F_END_LF };

struct coil_http1_parser;
static int on_header(struct coil_http1_parser *p, const char *buf,
		     const struct coil_http1_header *h);

/*
 * Run the field-line machine over buf[f->pos, len). `f->limit` is the
 * offset by which the empty line must have ended. `p` receives each
 * complete line (request headers), or is NULL (trailers: syntax only).
 * Returns COIL_HTTP1_DONE (f->pos = end of section), NEED_MORE, or an error.
 */
static int fields_run(struct coil__http1_fields *f, const char *buf,
		      size_t len, struct coil_http1_parser *p)
{
	const char *c = buf + f->pos;
	const bool at_limit = len >= f->limit;
	const char *stop = buf + (at_limit ? f->limit : len);
	struct coil_http1_header h;
	int rc;

	/* Resume where the last call stopped. Within a call the states follow
	 * each other by falling through: no dispatch per byte or per field. */
	switch (f->state) {
	case F_LINE: goto line;
	case F_NAME: goto name;
	case F_VALUE_WS: goto value_ws;
	case F_VALUE: goto value;
	case F_VALUE_LF: goto value_lf;
	case F_END_LF: goto end_lf;
	}
line:
	if (c == stop) {
		f->state = F_LINE;
		goto more;
	}
	if (*c == '\r') {
		c++;
		goto end_lf;
	}
	/* RFC 9112 5.2: obs-fold (and whitespace before the first field,
	 * 2.2) must be rejected or replaced. */
	if (is_ows(*c))
		return COIL_HTTP1_E_OBS_FOLD;
	if (!tchar[(unsigned char)*c])
		return *c == '\n' ? COIL_HTTP1_E_BAD_EOL :
			COIL_HTTP1_E_BAD_HEADER_NAME;
	if (f->n >= f->max)
		return COIL_HTTP1_E_TOO_MANY_HEADERS;
	f->mark = (uint32_t)(c - buf);
	c++;
name:
	c = scan_token(c, stop);
	if (c == stop) {
		f->state = F_NAME;
		goto more;
	}
	if (*c != ':')
		/* RFC 9112 5.1: whitespace between name and colon MUST be
		 * rejected (a smuggling vector). */
		return is_ows(*c) ? COIL_HTTP1_E_HEADER_NAME_WS :
			COIL_HTTP1_E_BAD_HEADER_NAME;
	f->name_len = (uint32_t)(c - buf) - f->mark;
	c++;
value_ws:
	while (c < stop && is_ows(*c))
		c++;
	if (c == stop) {
		f->state = F_VALUE_WS;
		goto more;
	}
	f->value_off = (uint32_t)(c - buf);
value:
	c = scan_value(c, stop);
	if (c == stop) {
		f->state = F_VALUE;
		goto more;
	}
	if (*c != '\r')
		return *c == '\n' ? COIL_HTTP1_E_BAD_EOL :
			COIL_HTTP1_E_BAD_HEADER_CHAR;
	c++;
value_lf:
	if (c == stop) {
		f->state = F_VALUE_LF;
		goto more;
	}
	if (*c != '\n')
		return COIL_HTTP1_E_BAD_EOL;
	{
		const char *v = buf + f->value_off;
		const char *ve = c - 1;  /* the CR */

		while (ve > v && is_ows(ve[-1]))
			ve--;
		h.name_off = f->mark;
		h.name.ptr = NULL;
		h.name.len = f->name_len;
		h.value_off = f->value_off;
		h.value.ptr = NULL;
		h.value.len = (size_t)(ve - v);
	}
	c++;
	if (f->n < f->cap)
		f->hdrs[f->n] = h;
	f->n++;
	if (p && (rc = on_header(p, buf, &h)) < 0)
		return rc;
	goto line;
end_lf:
	if (c == stop) {
		f->state = F_END_LF;
		goto more;
	}
	if (*c != '\n')
		return COIL_HTTP1_E_BAD_EOL;
	f->pos = (uint32_t)(c + 1 - buf);
	return COIL_HTTP1_DONE;
more:
	f->pos = (uint32_t)(c - buf);
	return at_limit ? COIL_HTTP1_E_HEAD_TOO_LARGE : COIL_HTTP1_NEED_MORE;
}

/* Turn the stored offsets into slices of `buf`. */
static void fields_slices(const struct coil__http1_fields *f, const char *buf)
{
	unsigned n = f->n < f->cap ? f->n : f->cap;

	for (unsigned i = 0; i < n; i++) {
		struct coil_http1_header *h = &f->hdrs[i];

		h->name.ptr = buf + h->name_off;
		h->value.ptr = buf + h->value_off;
	}
}

/* --- request head ----------------------------------------------------- */

enum { R_START, R_START_LF, R_METHOD, R_TARGET, R_VERSION, R_VERSION_LF,
       R_FIELDS };

/* Transfer-Encoding facts, gathered over all its field lines. */
enum {
	TE_SEEN = 1,         /* the field was present */
	TE_LAST_CHUNKED = 2, /* the last coding so far is chunked */
	TE_BAD = 4,          /* chunked twice or not last, or bad syntax */
	TE_OTHER = 8,        /* a coding other than chunked */
};

static uint32_t limit_of(const struct coil_http1_limits *l, size_t off,
			 uint32_t v, uint32_t def)
{
	if (!l || l->sz < off + sizeof(uint32_t) || !v)
		return def;
	return v > LIMIT_MAX ? LIMIT_MAX : v;
}
#define LIMIT(l, field, def) \
	limit_of((l), offsetof(struct coil_http1_limits, field), \
		 (l) ? (l)->field : 0, (def))

void coil_http1_parser_init(struct coil_http1_parser *p,
			    const struct coil_http1_limits *limits,
			    struct coil_http1_header *headers, unsigned cap)
{
	uint32_t maxh = LIMIT(limits, max_headers,
			      COIL_HTTP1_DEFAULT_MAX_HEADERS);

	memset(p, 0, sizeof(*p));
	p->max_line = LIMIT(limits, max_request_line,
			    COIL_HTTP1_DEFAULT_MAX_REQUEST_LINE);
	p->max_head = LIMIT(limits, max_head, COIL_HTTP1_DEFAULT_MAX_HEAD);
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
 * fields_run. */
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
	c = scan_token(c, stop);
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

/* Call `fn` for each non-empty element of a comma-separated list (RFC 9110
 * 5.6.1), OWS trimmed. Stops at the first negative return. */
static int list_each(const char *s, size_t n,
		     int (*fn)(struct coil_http1_parser *, const char *,
			       size_t),
		     struct coil_http1_parser *p)
{
	const char *end = s + n;

	while (s < end) {
		const char *e = memchr(s, ',', (size_t)(end - s));
		const char *te;
		int rc;

		if (!e)
			e = end;
		te = e;
		while (s < te && is_ows(*s))
			s++;
		while (te > s && is_ows(te[-1]))
			te--;
		if (te > s && (rc = fn(p, s, (size_t)(te - s))) < 0)
			return rc;
		s = e + 1;
	}
	return 0;
}

static int connection_token(struct coil_http1_parser *p, const char *s,
			    size_t n)
{
	if (IEQ(s, n, "close"))
		p->flags |= COIL_HTTP1_F_CONN_CLOSE;
	else if (IEQ(s, n, "keep-alive"))
		p->flags |= COIL_HTTP1_F_CONN_KEEP_ALIVE;
	else if (IEQ(s, n, "upgrade"))
		p->flags |= COIL_HTTP1_F_CONN_UPGRADE;
	return 0;
}

/* transfer-coding = token *( OWS ";" OWS transfer-parameter ) */
static int te_coding(struct coil_http1_parser *p, const char *s, size_t n)
{
	const char *end = s + n, *e = scan_token(s, end);
	bool params;

	if (e == s)
		goto bad;
	params = e < end;
	if (params) {
		const char *q = e;

		while (q < end && is_ows(*q))
			q++;
		if (q == end || *q != ';')
			goto bad;
	}
	/* chunked must be the final coding, applied once (RFC 9112 6.1). */
	if (p->te & TE_LAST_CHUNKED)
		p->te |= TE_BAD;
	if (IEQ(s, (size_t)(e - s), "chunked")) {
		if (params)
			goto bad;
		p->te |= TE_LAST_CHUNKED;
	} else {
		p->te = (uint8_t)((p->te & ~TE_LAST_CHUNKED) | TE_OTHER);
	}
	return 0;
bad:
	p->te |= TE_BAD;
	return 0;
}

/* Facts from one complete request header line (all its bytes are in buf). */
static int on_header(struct coil_http1_parser *p, const char *buf,
		     const struct coil_http1_header *h)
{
	const char *name = buf + h->name_off, *v = buf + h->value_off;
	size_t n = h->value.len;

	switch (h->name.len) {
	case 4:
		if (!IEQ(name, 4, "host"))
			break;
		/* RFC 9112 3.2: exactly one Host, a valid value. */
		if (p->nhost++)
			return COIL_HTTP1_E_DUP_HOST;
		for (size_t i = 0; i < n; i++)
			if (!host_ok[(unsigned char)v[i]])
				return COIL_HTTP1_E_BAD_HOST;
		p->host_off = h->value_off;
		p->host_len = (uint32_t)n;
		p->flags |= COIL_HTTP1_F_HOST;
		break;
	case 6:
		/* RFC 9110 10.1.1: ignore 100-continue from 1.0 clients. */
		if (!IEQ(name, 6, "expect") || !p->minor)
			break;
		p->flags |= IEQ(v, n, "100-continue") ?
			COIL_HTTP1_F_EXPECT_CONTINUE : COIL_HTTP1_F_EXPECT_OTHER;
		break;
	case 10:
		if (IEQ(name, 10, "connection"))
			return list_each(v, n, connection_token, p);
		break;
	case 14: {
		uint64_t cl = 0;

		if (!IEQ(name, 14, "content-length"))
			break;
		/* 1*DIGIT only: no sign, no list, no overflow. */
		if (!n)
			return COIL_HTTP1_E_BAD_CL;
		for (size_t i = 0; i < n; i++) {
			unsigned d = (unsigned)(unsigned char)v[i] - '0';

			if (d > 9 || cl > (UINT64_MAX - d) / 10)
				return COIL_HTTP1_E_BAD_CL;
			cl = cl * 10 + d;
		}
		if ((p->flags & COIL_HTTP1_F_CONTENT_LENGTH) &&
		    cl != p->content_length)
			return COIL_HTTP1_E_DUP_CL_DIFFERENT;
		p->content_length = cl;
		p->flags |= COIL_HTTP1_F_CONTENT_LENGTH;
		break;
	}
	case 17:
		if (!IEQ(name, 17, "transfer-encoding"))
			break;
		p->te |= TE_SEEN;
		if (!n)
			p->te |= TE_BAD;
		return list_each(v, n, te_coding, p);
	}
	return 0;
}

/* The head is complete: checks that need every field, then the result. */
static int head_done(struct coil_http1_parser *p, const char *buf,
		     struct coil_http1_request *req)
{
	unsigned flags = p->flags;

	if (p->te & TE_SEEN) {
		/* RFC 9112 6.1, 6.3: both framings at once is how requests
		 * are smuggled; a 1.0 message with Transfer-Encoding has
		 * faulty framing. */
		if (flags & COIL_HTTP1_F_CONTENT_LENGTH)
			return COIL_HTTP1_E_CL_AND_TE;
		if (!p->minor || (p->te & TE_BAD) ||
		    !(p->te & TE_LAST_CHUNKED))
			return COIL_HTTP1_E_BAD_TE;
		if (p->te & TE_OTHER)
			return COIL_HTTP1_E_TE_UNSUPPORTED;
		flags |= COIL_HTTP1_F_CHUNKED;
	}
	if (p->minor && !p->nhost)
		return COIL_HTTP1_E_MISSING_HOST;
	if (!(flags & COIL_HTTP1_F_CONN_CLOSE) &&
	    (p->minor || (flags & COIL_HTTP1_F_CONN_KEEP_ALIVE)))
		flags |= COIL_HTTP1_F_KEEP_ALIVE;

	fields_slices(&p->f, buf);
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
	rc = fields_run(&p->f, buf, len, p);
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

/* --- body ------------------------------------------------------------- */

enum { M_NONE, M_LENGTH, M_CHUNKED };
enum { B_SIZE0, B_SIZE, B_SIZE_WS, B_EXT, B_SIZE_LF, B_DATA, B_DATA_CR,
       B_DATA_LF, B_TRAILERS, B_DONE };

void coil_http1_body_init(struct coil_http1_body *b,
			  const struct coil_http1_request *req,
			  const struct coil_http1_limits *limits,
			  struct coil_http1_header *trailers, unsigned cap)
{
	memset(b, 0, sizeof(*b));
	if (req->flags & COIL_HTTP1_F_CHUNKED) {
		b->mode = M_CHUNKED;
		b->state = B_SIZE0;
	} else if (req->flags & COIL_HTTP1_F_CONTENT_LENGTH) {
		b->mode = M_LENGTH;
		b->remaining = b->announced = req->content_length;
	} else {
		b->mode = M_NONE;
	}
	b->tr.hdrs = trailers;
	b->tr.cap = trailers ? cap : 0;
	b->tr.max = LIMIT(limits, max_headers, COIL_HTTP1_DEFAULT_MAX_HEADERS);
	b->tr.limit = LIMIT(limits, max_head, COIL_HTTP1_DEFAULT_MAX_HEAD);
}

static inline int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The chunked machine. Framing bytes are consumed as they are read (their
 * meaning lives in the state), except the trailer section, which is kept
 * unconsumed until complete so its fields can be returned as slices. */
static int chunked_read(struct coil_http1_body *b, const char *buf,
			size_t len, struct coil_http1_str *data,
			size_t *consumed)
{
	const char *c = buf, *end = buf + len;
	int rc, d;

	for (;;) {
		if (b->state == B_TRAILERS) {
			if ((size_t)(end - c) < b->tr.pos)
				return COIL_HTTP1_E_INPUT;
			rc = fields_run(&b->tr, c, (size_t)(end - c), NULL);
			if (rc < 0)
				return rc;
			if (rc == COIL_HTTP1_NEED_MORE)
				break;
			fields_slices(&b->tr, c);
			b->ntrailers = b->tr.n < b->tr.cap ? b->tr.n : b->tr.cap;
			c += b->tr.pos;
			b->state = B_DONE;
		}
		if (b->state == B_DONE) {
			*consumed = (size_t)(c - buf);
			return COIL_HTTP1_DONE;
		}
		if (c == end)
			break;
		if (b->state <= B_SIZE_LF &&
		    ++b->line > COIL_HTTP1_MAX_CHUNK_LINE)
			return COIL_HTTP1_E_CHUNK_LINE_TOO_LONG;
		switch (b->state) {
		case B_SIZE0:
			if ((d = hexval(*c)) < 0)
				return COIL_HTTP1_E_BAD_CHUNK_SIZE;
			b->remaining = (unsigned)d;
			b->state = B_SIZE;
			c++;
			break;
		case B_SIZE:
			if ((d = hexval(*c)) >= 0) {
				if (b->remaining > (UINT64_MAX >> 4))
					return COIL_HTTP1_E_CHUNK_OVERFLOW;
				b->remaining = b->remaining << 4 | (unsigned)d;
				c++;
				break;
			}
			b->state = B_SIZE_WS;
			__attribute__((fallthrough));
		case B_SIZE_WS:
			/* chunk-size [ BWS ";" ext ] CRLF (RFC 9112 7.1.1) */
			if (is_ows(*c)) {
				c++;
			} else if (*c == ';') {
				b->state = B_EXT;
				c++;
			} else if (*c == '\r') {
				b->state = B_SIZE_LF;
				c++;
			} else {
				return *c == '\n' ? COIL_HTTP1_E_CHUNK_NO_CRLF :
					COIL_HTTP1_E_BAD_CHUNK_SIZE;
			}
			break;
		case B_EXT:
			/* Extensions are ignored, but a bare CR/LF or other
			 * control byte inside one is refused: parsers that
			 * disagree on where the line ends can be smuggled
			 * through. */
			if (*c == '\r')
				b->state = B_SIZE_LF;
			else if (!value_ok[(unsigned char)*c])
				return COIL_HTTP1_E_BAD_CHUNK_EXT;
			c++;
			break;
		case B_SIZE_LF:
			if (*c != '\n')
				return COIL_HTTP1_E_CHUNK_NO_CRLF;
			c++;
			b->line = 0;
			b->announced = b->announced + b->remaining < b->announced ?
				UINT64_MAX : b->announced + b->remaining;
			if (b->remaining) {
				b->state = B_DATA;
			} else {
				/* The section starts here: offset 0 of the
				 * input from the next call on. */
				b->state = B_TRAILERS;
				b->tr.pos = 0;
			}
			break;
		case B_DATA: {
			size_t n = (size_t)(end - c);

			if (n > b->remaining)
				n = (size_t)b->remaining;
			data->ptr = c;
			data->len = n;
			c += n;
			b->remaining -= n;
			b->received += n;
			if (!b->remaining)
				b->state = B_DATA_CR;
			*consumed = (size_t)(c - buf);
			return COIL_HTTP1_DATA;
		}
		case B_DATA_CR:
		case B_DATA_LF:
			if (*c != (b->state == B_DATA_CR ? '\r' : '\n'))
				return COIL_HTTP1_E_CHUNK_NO_CRLF;
			b->state = b->state == B_DATA_CR ? B_DATA_LF : B_SIZE0;
			c++;
			break;
		}
	}
	*consumed = (size_t)(c - buf);
	return COIL_HTTP1_NEED_MORE;
}

int coil_http1_body_read(struct coil_http1_body *b, const void *buf,
			 size_t len, struct coil_http1_str *data,
			 size_t *consumed)
{
	int rc;

	*consumed = 0;
	if (b->err)
		return b->err;
	switch (b->mode) {
	case M_NONE:
		return COIL_HTTP1_DONE;
	case M_LENGTH:
		if (!b->remaining)
			return COIL_HTTP1_DONE;
		if (!len)
			return COIL_HTTP1_NEED_MORE;
		if (len > b->remaining)
			len = (size_t)b->remaining;
		data->ptr = buf;
		data->len = len;
		b->remaining -= len;
		b->received += len;
		*consumed = len;
		return COIL_HTTP1_DATA;
	}
	rc = chunked_read(b, buf, len, data, consumed);
	if (rc < 0) {
		*consumed = 0;
		b->err = rc;
	}
	return rc;
}

/* --- Date ------------------------------------------------------------- */

void coil_http1_date_init(struct coil_http1_date *d)
{
	d->sec = INT64_MIN;
	d->str[0] = '\0';
}

/* Days since 1970-01-01 to a civil date (H. Hinnant's days_from_civil
 * inverse): no libc, no time zone, no lock. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void put2(char *s, unsigned v)
{
	s[0] = (char)('0' + v / 10);
	s[1] = (char)('0' + v % 10);
}

const char *coil_http1_date_update(struct coil_http1_date *d,
				   int64_t unix_sec)
{
	static const char wday[] = "ThuFriSatSunMonTueWed";  /* from 1970-01-01 */
	static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	int64_t t = unix_sec, days, y;
	unsigned m, md, sod;
	char *s = d->str;

	if (t == d->sec)
		return d->str;
	d->sec = t;
	/* IMF-fixdate has a 4-digit year: clamp to 1970..9999. */
	if (t < 0)
		t = 0;
	if (t > 253402300799)
		t = 253402300799;
	days = t / 86400;
	sod = (unsigned)(t % 86400);
	civil_from_days(days, &y, &m, &md);
	memcpy(s, wday + (days % 7) * 3, 3);
	s[3] = ',';
	s[4] = ' ';
	put2(s + 5, md);
	s[7] = ' ';
	memcpy(s + 8, mon + (m - 1) * 3, 3);
	s[11] = ' ';
	put2(s + 12, (unsigned)(y / 100));
	put2(s + 14, (unsigned)(y % 100));
	s[16] = ' ';
	put2(s + 17, sod / 3600);
	s[19] = ':';
	put2(s + 20, sod / 60 % 60);
	s[22] = ':';
	put2(s + 23, sod % 60);
	memcpy(s + 25, " GMT", 5);
	return d->str;
}

/* --- response writer -------------------------------------------------- */

void coil_http1_out_init(struct coil_http1_out *o, void *buf, size_t cap)
{
	o->buf = buf;
	o->cap = cap > INT_MAX ? INT_MAX : cap;
	o->len = 0;
	o->err = 0;
}

static void put(struct coil_http1_out *o, const void *s, size_t n)
{
	if (o->err)
		return;
	if (n > o->cap - o->len) {
		o->err = -ENOSPC;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}
#define PUTS(o, lit) put((o), lit, sizeof(lit) - 1)

/* Refuse what would end a line early: CR, LF, other controls but HTAB,
 * DEL (response splitting). */
static bool safe_text(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!value_ok[(unsigned char)s[i]])
			return false;
	return true;
}

static void fail_out(struct coil_http1_out *o, int err)
{
	if (!o->err)
		o->err = err;
}

const char *coil_http1_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	}
	return "";
}

void coil_http1_out_status(struct coil_http1_out *o, int status,
			   const char *reason)
{
	char code[4];

	if (status < 100 || status > 999) {
		fail_out(o, -EINVAL);
		return;
	}
	if (!reason)
		reason = coil_http1_reason(status);
	if (!safe_text(reason, strlen(reason))) {
		fail_out(o, -EINVAL);
		return;
	}
	code[0] = (char)('0' + status / 100);
	code[1] = (char)('0' + status / 10 % 10);
	code[2] = (char)('0' + status % 10);
	code[3] = ' ';
	PUTS(o, "HTTP/1.1 ");
	put(o, code, 4);
	put(o, reason, strlen(reason));
	PUTS(o, "\r\n");
}

void coil_http1_out_header(struct coil_http1_out *o, const char *name,
			   const char *value, size_t value_len)
{
	size_t n = strlen(name);

	if (!n || scan_token(name, name + n) != name + n ||
	    !safe_text(value, value_len)) {
		fail_out(o, -EINVAL);
		return;
	}
	put(o, name, n);
	PUTS(o, ": ");
	put(o, value, value_len);
	PUTS(o, "\r\n");
}

/* Decimal digits of v into the end of buf[20]; returns the first. */
static char *u64_dec(char buf[20], uint64_t v)
{
	char *s = buf + 20;

	do {
		*--s = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return s;
}

void coil_http1_out_header_u64(struct coil_http1_out *o, const char *name,
			       uint64_t value)
{
	char buf[20], *s = u64_dec(buf, value);

	coil_http1_out_header(o, name, s, (size_t)(buf + 20 - s));
}

void coil_http1_out_date(struct coil_http1_out *o,
			 const struct coil_http1_date *d)
{
	PUTS(o, "Date: ");
	put(o, d->str, COIL_HTTP1_DATE_LEN);
	PUTS(o, "\r\n");
}

void coil_http1_out_content_length(struct coil_http1_out *o, uint64_t n)
{
	char buf[20], *s = u64_dec(buf, n);

	PUTS(o, "Content-Length: ");
	put(o, s, (size_t)(buf + 20 - s));
	PUTS(o, "\r\n");
}

void coil_http1_out_chunked(struct coil_http1_out *o)
{
	PUTS(o, "Transfer-Encoding: chunked\r\n");
}

void coil_http1_out_connection(struct coil_http1_out *o,
			       unsigned version_minor, bool keep_alive)
{
	if (version_minor && !keep_alive)
		PUTS(o, "Connection: close\r\n");
	else if (!version_minor && keep_alive)
		PUTS(o, "Connection: keep-alive\r\n");
}

void coil_http1_out_bytes(struct coil_http1_out *o, const void *data,
			  size_t len)
{
	put(o, data, len);
}

void coil_http1_out_chunk(struct coil_http1_out *o, uint64_t size)
{
	char buf[18], *s = buf + 16;

	if (!size) {  /* a zero chunk would end the body */
		fail_out(o, -EINVAL);
		return;
	}
	s[0] = '\r';
	s[1] = '\n';
	do {
		*--s = "0123456789abcdef"[size & 15];
		size >>= 4;
	} while (size);
	put(o, s, (size_t)(buf + 18 - s));
}

void coil_http1_out_chunk_end(struct coil_http1_out *o)
{
	PUTS(o, "\r\n");
}

void coil_http1_out_last_chunk(struct coil_http1_out *o)
{
	PUTS(o, "0\r\n");
}

int coil_http1_out_end(struct coil_http1_out *o)
{
	PUTS(o, "\r\n");
	return coil_http1_out_result(o);
}

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
			if (!value_ok[(unsigned char)*c])
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
	uint32_t max_line = LIMIT(limits, max_request_line,
				  COIL_HTTP1_DEFAULT_MAX_REQUEST_LINE);
	uint32_t max_head = LIMIT(limits, max_head,
				  COIL_HTTP1_DEFAULT_MAX_HEAD);
	uint32_t maxh = LIMIT(limits, max_headers,
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
	if (len > (size_t)LIMIT_MAX)
		len = LIMIT_MAX;
	memset(&p, 0, sizeof(p));
	p.minor = (uint8_t)r->version_minor;
	p.f.hdrs = hdrs;
	p.f.cap = hdrs ? cap : 0;
	p.f.max = maxh;
	p.f.pos = (uint32_t)line;
	p.f.limit = (uint32_t)line + max_head;
	rc = fields_run(&p.f, b, len, &p);
	if (rc != COIL_HTTP1_DONE)
		return rc;
	flags = p.flags;
	if (p.te & TE_BAD)
		return COIL_HTTP1_E_BAD_TE;
	if ((p.te & TE_SEEN) && (flags & COIL_HTTP1_F_CONTENT_LENGTH))
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
	} else if (p.te & TE_SEEN) {
		if (p.te & TE_LAST_CHUNKED)
			flags |= COIL_HTTP1_F_CHUNKED;
		else
			flags |= COIL_HTTP1_F_CLOSE_DELIMITED;
	} else if (!(flags & COIL_HTTP1_F_CONTENT_LENGTH)) {
		flags |= COIL_HTTP1_F_CLOSE_DELIMITED;
	}
	if (flags & COIL_HTTP1_F_CLOSE_DELIMITED)
		flags &= ~(unsigned)COIL_HTTP1_F_KEEP_ALIVE;
	fields_slices(&p.f, b);
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
