/* SPDX-License-Identifier: MIT */
#ifndef COIL_SERVICE_H
#define COIL_SERVICE_H

#include <stddef.h>
#include <stdint.h>

struct coil_conn;
struct coil_tls;

/* Reasons passed to on_close (or a negative errno from the socket). */
enum {
	COIL_CLOSE_LOCAL = 0,  /* coil_conn_close()/abort() or engine shutdown */
	COIL_CLOSE_PEER = 1,   /* the peer closed its side (EOF) */
};

/*
 * A Twisted Protocol as a table of callbacks. All run on the connection's
 * loop thread, never concurrently for one connection. Only on_data is
 * required.
 */
struct coil_proto_ops {
	/* A connection was accepted. The per-connection state
	 * (coil_conn_state()) is zeroed. Return 0 to keep it, or a negative
	 * errno to close it at once (on_close is then not called). */
	int (*on_open)(struct coil_conn *conn);

	/*
	 * Bytes arrived. `data` is lent for the duration of the call (it points
	 * into a receive buffer: zero copy). Return how many bytes were consumed
	 * (<= len); coil keeps the rest and passes it again, followed by new
	 * bytes, on the next call. Data may be sent back without copying with
	 * coil_conn_write_ref() from inside this call.
	 */
	size_t (*on_data)(struct coil_conn *conn, const uint8_t *data,
			  size_t len);

	/* The send queue, after growing past the service's high-water mark
	 * (reading was paused then), fell below half of it (reading resumed):
	 * Twisted's resumeProducing. */
	void (*on_drain)(struct coil_conn *conn);

	/* The connection is gone (socket closed). `reason` is COIL_CLOSE_LOCAL,
	 * COIL_CLOSE_PEER or a negative errno (-ETIMEDOUT for the idle
	 * timeout, -EMSGSIZE when unconsumed input exceeded max_input). The
	 * connection handle is invalid after this returns. */
	void (*on_close)(struct coil_conn *conn, int reason);

	/* The engine is shutting down gracefully. Default when NULL:
	 * coil_conn_close() (queued output is flushed first). A protocol may
	 * instead finish what it has in flight and close later; connections
	 * still open when the drain timeout ends are aborted. */
	void (*on_shutdown)(struct coil_conn *conn);
};

enum {
	/* Leave Nagle on (TCP_NODELAY is set on every accepted and
	 * connected socket otherwise). */
	COIL_SERVICE_NAGLE = 1u << 0,
};

/*
 * A listening service (Twisted's Factory). The engine copies it; the
 * strings and `ops` must outlive the engine. Zero means "default" for every
 * numeric field.
 */
struct coil_service {
	size_t sz;                       /* sizeof(struct coil_service) */
	const char *addr;                /* IPv4 or IPv6 literal; NULL: 0.0.0.0 */
	uint16_t port;                   /* 0: ephemeral (see coil_engine_port) */
	const struct coil_proto_ops *ops;
	size_t state_size;               /* bytes of per-connection state */
	unsigned flags;                  /* COIL_SERVICE_* */
	int backlog;                     /* listen backlog; default 4096 */
	unsigned idle_timeout_ms;        /* close after this long without input;
					    0: never */
	size_t write_high_water;         /* pause reading when this many bytes
					    are queued; default 256 KiB */
	size_t max_input;                /* most unconsumed input kept per
					    connection; default 1 MiB */
	void *data;                      /* free for the owner (see
					    coil_conn_service_data) */
	/* TLS on every connection of the service (coil/tls.h): NULL for
	 * plain TCP. Borrowed: it must outlive the engine. Kernel socket
	 * backends (io_uring, epoll) only. */
	struct coil_tls *tls;
};

#endif
