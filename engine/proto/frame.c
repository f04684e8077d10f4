/* SPDX-License-Identifier: MIT */
/*
 * Line and length-prefixed framing over on_data (coil/frame.h). Stateless:
 * what is not consumed comes back with the next bytes (coil's carry), so a
 * message lying whole in one receive buffer is handed over in place.
 */
#include "../core/internal.h"

#include <coil/frame.h>

#include <errno.h>
#include <string.h>

#define FRAME_DEFAULT_MAX (64u << 10)

static size_t frame_max(const struct coil_frame *fr)
{
	return fr->max ? fr->max : FRAME_DEFAULT_MAX;
}

/* Should framing stop after a message (on_msg paused or closed)? */
static bool held(const struct coil_conn *c)
{
	return c->flags & (CONN_PAUSED | CONN_CLOSING | CONN_ABORT);
}

/* Log why and close; everything left is consumed (dropped). */
static size_t too_long(struct coil_conn *c, const char *what, bool at_least,
		       size_t n, size_t max, size_t len)
{
	coil__log("loop %u: %s of %s%zu bytes over the maximum of %zu: "
		  "closing the connection",
		  c->loop->id, what, at_least ? "at least " : "", n, max);
	coil_conn_close(c);
	return len;
}

static size_t feed_lines(const struct coil_frame *fr, struct coil_conn *c,
			 const uint8_t *d, size_t len)
{
	const char *delim = fr->delim ? fr->delim : "\n";
	size_t dl = strlen(delim), max = frame_max(fr), used = 0;

	if (!dl || dl > 8) {
		coil__log("frame: bad line delimiter: closing the connection");
		coil_conn_close(c);
		return len;
	}
	while (used < len) {
		const uint8_t *p = d + used, *hit = NULL;
		size_t rest = len - used, scan = rest;

		/* Look no further than a line of max bytes could reach. */
		if (scan > max + dl)
			scan = max + dl;
		for (const uint8_t *q = p;
		     (q = memchr(q, (unsigned char)delim[0],
				 scan - (size_t)(q - p)));
		     q++) {
			if ((size_t)(q - p) + dl > scan)
				break;
			if (!memcmp(q, delim, dl)) {
				hit = q;
				break;
			}
		}
		if (!hit) {
			if (rest > max + dl - 1)
				return used + too_long(c, "line", true, rest,
						       max, len - used);
			break;
		}
		if ((size_t)(hit - p) > max)
			return used + too_long(c, "line", false,
					       (size_t)(hit - p), max,
					       len - used);
		used += (size_t)(hit - p) + dl;
		if (fr->on_msg(c, p, (size_t)(hit - p)) || held(c))
			break;
	}
	return used;
}

static size_t feed_prefixed(const struct coil_frame *fr, struct coil_conn *c,
			    const uint8_t *d, size_t len)
{
	size_t hl = fr->kind == COIL_FRAME_U16 ? 2 : 4, max = frame_max(fr);
	size_t used = 0;

	while (len - used >= hl) {
		const uint8_t *p = d + used;
		size_t n = hl == 2 ? (size_t)p[0] << 8 | p[1]
				   : (size_t)p[0] << 24 | (size_t)p[1] << 16 |
					     (size_t)p[2] << 8 | p[3];

		if (n > max)
			return used + too_long(c, "message", false, n, max,
					       len - used);
		if (len - used - hl < n)
			break;
		used += hl + n;
		if (fr->on_msg(c, p + hl, n) || held(c))
			break;
	}
	return used;
}

size_t coil_frame_feed(const struct coil_frame *fr, struct coil_conn *conn,
		       const uint8_t *data, size_t len)
{
	if (held(conn))
		return 0;
	if (fr->kind == COIL_FRAME_LINE)
		return feed_lines(fr, conn, data, len);
	if (fr->kind == COIL_FRAME_U16 || fr->kind == COIL_FRAME_U32)
		return feed_prefixed(fr, conn, data, len);
	coil__log("frame: unknown kind %d: closing the connection",
		  (int)fr->kind);
	coil_conn_close(conn);
	return len;
}

int coil_frame_write(const struct coil_frame *fr, struct coil_conn *conn,
		     const void *msg, size_t len)
{
	uint8_t hdr[4];
	size_t hl;
	int ret;

	if (len > frame_max(fr) ||
	    (fr->kind == COIL_FRAME_U16 && len > 0xffff) ||
	    (fr->kind == COIL_FRAME_U32 && len > 0xffffffffu))
		return -EMSGSIZE;
	if (fr->kind == COIL_FRAME_LINE) {
		const char *delim = fr->delim ? fr->delim : "\n";
		size_t dl = strlen(delim);

		if (!dl || (len >= dl && memmem(msg, len, delim, dl)))
			return -EINVAL;
		ret = coil_conn_write(conn, msg, len);
		return ret ? ret : coil_conn_write(conn, delim, dl);
	}
	if (fr->kind == COIL_FRAME_U16) {
		hl = 2;
		hdr[0] = (uint8_t)(len >> 8);
		hdr[1] = (uint8_t)len;
	} else if (fr->kind == COIL_FRAME_U32) {
		hl = 4;
		hdr[0] = (uint8_t)(len >> 24);
		hdr[1] = (uint8_t)(len >> 16);
		hdr[2] = (uint8_t)(len >> 8);
		hdr[3] = (uint8_t)len;
	} else {
		return -EINVAL;
	}
	ret = coil_conn_write(conn, hdr, hl);
	return ret ? ret : coil_conn_write(conn, msg, len);
}
