/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1 field lines (RFC 9112 5, RFC 9110 5): the byte classes of tokens
 * and field values, the field-line machine that request heads, chunked
 * trailers and response heads all run (offsets only, resumable at any
 * byte), and the facts the parser takes from the fields that frame a
 * message: Host, Expect, Connection, Content-Length, Transfer-Encoding.
 * The header facts stay in the machine's file: they run once per field
 * line, called straight from the machine's loop.
 */
#include <coil/http1.h>

#include <stdint.h>
#include <string.h>

#include "proto/http1_internal.h"

/* Token bytes (RFC 9110 5.6.2 tchar). */
const uint8_t coil__http1_tchar[256] = {
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
const uint8_t coil__http1_value_ok[256] = {
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
	while (p < end && coil__http1_value_ok[(unsigned char)*p])
		p++;
	return p;
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
int coil__http1_fields_run(struct coil__http1_fields *f, const char *buf,
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
	if (coil__http1_is_ows(*c))
		return COIL_HTTP1_E_OBS_FOLD;
	if (!coil__http1_tchar[(unsigned char)*c])
		return *c == '\n' ? COIL_HTTP1_E_BAD_EOL :
			COIL_HTTP1_E_BAD_HEADER_NAME;
	if (f->n >= f->max)
		return COIL_HTTP1_E_TOO_MANY_HEADERS;
	f->mark = (uint32_t)(c - buf);
	c++;
name:
	c = coil__http1_scan_token(c, stop);
	if (c == stop) {
		f->state = F_NAME;
		goto more;
	}
	if (*c != ':')
		/* RFC 9112 5.1: whitespace between name and colon MUST be
		 * rejected (a smuggling vector). */
		return coil__http1_is_ows(*c) ? COIL_HTTP1_E_HEADER_NAME_WS :
			COIL_HTTP1_E_BAD_HEADER_NAME;
	f->name_len = (uint32_t)(c - buf) - f->mark;
	c++;
value_ws:
	while (c < stop && coil__http1_is_ows(*c))
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

		while (ve > v && coil__http1_is_ows(ve[-1]))
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
void coil__http1_fields_slices(const struct coil__http1_fields *f,
			       const char *buf)
{
	unsigned n = f->n < f->cap ? f->n : f->cap;

	for (unsigned i = 0; i < n; i++) {
		struct coil_http1_header *h = &f->hdrs[i];

		h->name.ptr = buf + h->name_off;
		h->value.ptr = buf + h->value_off;
	}
}

/* --- header facts --------------------------------------------------- */

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
		while (s < te && coil__http1_is_ows(*s))
			s++;
		while (te > s && coil__http1_is_ows(te[-1]))
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
	const char *end = s + n, *e = coil__http1_scan_token(s, end);
	bool params;

	if (e == s)
		goto bad;
	params = e < end;
	if (params) {
		const char *q = e;

		while (q < end && coil__http1_is_ows(*q))
			q++;
		if (q == end || *q != ';')
			goto bad;
	}
	/* chunked must be the final coding, applied once (RFC 9112 6.1). */
	if (p->te & COIL__HTTP1_TE_LAST_CHUNKED)
		p->te |= COIL__HTTP1_TE_BAD;
	if (IEQ(s, (size_t)(e - s), "chunked")) {
		if (params)
			goto bad;
		p->te |= COIL__HTTP1_TE_LAST_CHUNKED;
	} else {
		p->te = (uint8_t)((p->te & ~COIL__HTTP1_TE_LAST_CHUNKED) |
				  COIL__HTTP1_TE_OTHER);
	}
	return 0;
bad:
	p->te |= COIL__HTTP1_TE_BAD;
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
		p->te |= COIL__HTTP1_TE_SEEN;
		if (!n)
			p->te |= COIL__HTTP1_TE_BAD;
		return list_each(v, n, te_coding, p);
	}
	return 0;
}
