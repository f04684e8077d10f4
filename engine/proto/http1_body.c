/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1 message body reader (RFC 9112 6, 7): a body framed by
 * Content-Length, or the chunked coding's state machine (chunk sizes,
 * extensions, data, trailers), handing out slices of the caller's input
 * without copying. The trailer section runs the field-line machine of
 * http1_fields.c.
 */
#include <coil/http1.h>

#include <stdint.h>
#include <string.h>

#include "proto/http1_internal.h"

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
	b->tr.max = COIL__HTTP1_LIMIT(limits, max_headers,
				      COIL_HTTP1_DEFAULT_MAX_HEADERS);
	b->tr.limit = COIL__HTTP1_LIMIT(limits, max_head,
					COIL_HTTP1_DEFAULT_MAX_HEAD);
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
			rc = coil__http1_fields_run(&b->tr, c,
						    (size_t)(end - c), NULL);
			if (rc < 0)
				return rc;
			if (rc == COIL_HTTP1_NEED_MORE)
				break;
			coil__http1_fields_slices(&b->tr, c);
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
			if (coil__http1_is_ows(*c)) {
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
			else if (!coil__http1_value_ok[(unsigned char)*c])
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
