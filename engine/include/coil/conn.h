/* SPDX-License-Identifier: MIT */
#ifndef COIL_CONN_H
#define COIL_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct coil_conn;
struct coil_loop;

/*
 * struct coil_conn is a Twisted Transport: one accepted TCP connection,
 * owned by one loop. Every function here must be called on that loop's
 * thread, and only between on_open and the return of on_close.
 */

/* The per-connection state (service.state_size bytes, zeroed at accept,
 * 16-byte aligned). */
void *coil_conn_state(struct coil_conn *conn);

/* The loop that owns the connection. */
struct coil_loop *coil_conn_loop(const struct coil_conn *conn);

/* The `data` pointer of the service that accepted the connection. */
void *coil_conn_service_data(const struct coil_conn *conn);

/*
 * Queue `len` bytes, copying them into the loop's send memory. Writes are
 * gathered per connection and sent once per loop turn, in order, with at
 * most one send in flight per socket; short sends are continued.
 * Returns 0, -EPIPE when the connection is closing (nothing queued), or
 * -ENOMEM when neither the loop's send memory nor the heap had room: the
 * connection has then been aborted (part of the bytes may have been queued,
 * so the stream is broken); its queued output is dropped and on_close
 * follows from the loop, later, with -ENOMEM. The handle stays valid until
 * on_close returns: every later write returns -EPIPE, close/abort are
 * no-ops, state, peer and the other queries still work.
 */
int coil_conn_write(struct coil_conn *conn, const void *data, size_t len);

/*
 * Queue bytes without copying. Inside on_data, `data` may point anywhere in
 * the bytes on_data was given: the receive buffer is then held (refcounted)
 * until the send completes. Outside on_data, or for bytes coil had to keep
 * aside, it falls back to a copy. Same return convention as coil_conn_write
 * (-ENOMEM included: the connection is then aborted).
 */
int coil_conn_write_ref(struct coil_conn *conn, const void *data, size_t len);

/*
 * Queue bytes the caller guarantees stay valid and unchanged until the
 * connection is closed (string literals, a cache entry that outlives its
 * connections). No copy. Same return convention as coil_conn_write
 * (-ENOMEM included: the connection is then aborted).
 */
int coil_conn_write_static(struct coil_conn *conn, const void *data,
			   size_t len);

enum {
	/* coil closes the file once its bytes are sent, or the connection
	 * is gone, or the call fails. */
	COIL_SENDFILE_CLOSE = 1u << 0,
};

/*
 * Queue `len` bytes of the file `fd` from offset `off`, in order with the
 * other writes, sent without copying through user space (splice through a
 * per-connection pipe on io_uring, sendfile(2) on epoll). The file must
 * hold those bytes until they are sent: one that shrinks meanwhile aborts
 * the connection (-EIO). Without COIL_SENDFILE_CLOSE the caller keeps `fd`
 * open until then (until on_close at the latest). Returns 0, -EPIPE when
 * the connection is closing, -EINVAL for a bad fd, -ENOMEM (the
 * connection aborted, as for coil_conn_write).
 */
int coil_conn_sendfile(struct coil_conn *conn, int fd, uint64_t off,
		       uint64_t len, unsigned flags);

/* Bytes queued and not yet acknowledged by a send completion. When it is
 * 0, no send references memory passed to coil_conn_write_ref/_static any
 * more: such memory may be released. */
size_t coil_conn_queued(const struct coil_conn *conn);

/* True once the connection is on its way out: closed or aborted here, or
 * the peer's end (EOF or an error) arrived. Such a connection will get no
 * new input; a pool must not hand it out again. */
bool coil_conn_closing(const struct coil_conn *conn);

/* Close gracefully: stop reading, send what is queued, then close. on_close
 * follows later with COIL_CLOSE_LOCAL. Idempotent. */
void coil_conn_close(struct coil_conn *conn);

/* Close at once, dropping queued output, with a TCP reset. */
void coil_conn_abort(struct coil_conn *conn);

/* Stop / restart delivering on_data (Twisted's pauseProducing /
 * resumeProducing). Bytes already received are kept, never dropped. */
void coil_conn_pause(struct coil_conn *conn);
void coil_conn_resume(struct coil_conn *conn);

/*
 * The connection's remote address (coil_conn_peer: the client of an
 * accepted connection, the server of an outgoing one) or local address
 * (coil_conn_local), copied into the caller's *addr with its length in
 * *len. Asked of the socket on demand (getpeername/getsockname on the
 * kernel backends, a made-up 127.0.0.1 address on the fake one: see
 * coil/testing.h), so accepting costs nothing extra: call it once per
 * connection, not once per request, where it is hot. Returns 0, or -errno:
 * -ENOTCONN when the peer is already gone (a reset) or an outgoing
 * connection is not connected yet, -EBADF once the socket is closed (in
 * on_close).
 */
int coil_conn_peer(const struct coil_conn *conn,
		   struct sockaddr_storage *addr, socklen_t *len);
int coil_conn_local(const struct coil_conn *conn,
		    struct sockaddr_storage *addr, socklen_t *len);

#endif
