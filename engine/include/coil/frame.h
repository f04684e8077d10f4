/* SPDX-License-Identifier: MIT */
#ifndef COIL_FRAME_H
#define COIL_FRAME_H

#include <stddef.h>
#include <stdint.h>

/*
 * Framing over on_data: Twisted's LineReceiver and Int32StringReceiver.
 * A struct coil_frame describes the framing (it holds no per-connection
 * state, so one const instance serves a whole service); a protocol's
 * on_data hands its bytes to coil_frame_feed(), which calls on_msg once
 * per whole message and returns what it consumed, leaving a partial
 * message for coil to keep and pass again with the next bytes.
 *
 * Zero copy: a message that lies whole in one receive buffer is handed to
 * on_msg in place (coil_conn_write_ref may echo it without copying); only
 * a message split across receive buffers is first gathered by coil (its
 * carry). The service's max_input (default 1 MiB) must be larger than
 * `max` plus a receive buffer, or coil closes first with -EMSGSIZE.
 */

struct coil_conn;

enum coil_frame_kind {
	COIL_FRAME_LINE = 0,  /* bytes up to a delimiter */
	COIL_FRAME_U16,       /* a 2-byte big-endian length, then the bytes */
	COIL_FRAME_U32,       /* a 4-byte big-endian length, then the bytes */
};

struct coil_frame {
	enum coil_frame_kind kind;
	/* LINE: the delimiter (1 to 8 bytes; NULL: "\n"), copied nowhere:
	 * it must outlive the frame. A "\r\n" line ending is not special:
	 * use "\r\n" as the delimiter when peers always send it. */
	const char *delim;
	/* Longest message in bytes, delimiter or length prefix excluded
	 * (0: 64 KiB). A longer one is an error: coil logs the reason and
	 * closes the connection (coil_conn_close: output already queued is
	 * still sent); on_msg never sees it. */
	size_t max;
	/*
	 * One whole message, `len` bytes without its delimiter or prefix,
	 * lent for the call (in the receive buffer when it lay whole in
	 * one). Return 0 to go on with the next message, or non-zero to stop
	 * here: the rest is passed again later (call coil_conn_pause first
	 * to hold it, or close). Framing also stops by itself when on_msg
	 * paused or closed the connection. Runs on the connection's loop.
	 */
	int (*on_msg)(struct coil_conn *conn, const uint8_t *msg, size_t len);
};

/*
 * Feed received bytes (on_data's arguments) through `fr`: call on_msg for
 * every whole message in data[0..len). Returns the bytes consumed, to be
 * returned from on_data. On a message over fr->max it logs, closes the
 * connection and consumes everything. Loop thread of `conn`.
 */
size_t coil_frame_feed(const struct coil_frame *fr, struct coil_conn *conn,
		       const uint8_t *data, size_t len);

/*
 * Queue one framed message: `msg` followed by the delimiter (LINE), or the
 * big-endian length and then `msg` (U16, U32), copied like
 * coil_conn_write. Returns 0, -EMSGSIZE when len is over fr->max (or what
 * a U16 prefix can say), -EINVAL when `msg` holds the delimiter (LINE), or
 * coil_conn_write's error (-EPIPE). Loop thread of `conn`.
 */
int coil_frame_write(const struct coil_frame *fr, struct coil_conn *conn,
		     const void *msg, size_t len);

#endif
