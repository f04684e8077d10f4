/* SPDX-License-Identifier: MIT */
/*
 * Private engine structures and calls: the connection core and loop
 * (core/), what the backends see of them (backend/backend.h includes
 * this), the listener and logging calls steer/ uses, and the unit tests
 * that reach inside. Never installed: apps use engine/include/coil only.
 */
#ifndef COIL_INTERNAL_H
#define COIL_INTERNAL_H

#include <coil/coil.h>
#include <coil/testing.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "../mem/mem.h"
#include "log.h"

#define COIL__MAX_SERVICES COIL_ENGINE_MAX_SERVICES
#define COIL__SEND_IOV 16            /* segments gathered into one send */
#define COIL__CHUNK_SIZE (16u << 10) /* send-side chunk for copied writes */
#define COIL__WHEEL_SLOTS 1024u      /* 1 ms ticks: one revolution ~1 s */

#define coil__container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* The connection a loop->all link belongs to. */
#define coil__conn_of_link(l) coil__container_of(l, struct coil_conn, all)

struct coil__backend_ops;
struct coil__tls;
struct coil_steer_loop;
struct coil__inbox;

/* Per-loop counters beyond the ones struct coil_loop always had
 * (coil/stats.h says what each means). */
struct coil__loop_stats {
	uint64_t resets, starved, held_bytes, write_paused;
	uint64_t submits, completions, cq_overflow;
	uint64_t http[5];
};

/* COIL_STATS: log the loop's coil/stats.h counters (core/stats.c). */
void coil__stats_log(struct coil_loop *loop);

/* ---- timing wheel (core/timer.c) ---- */
struct coil__wheel {
	struct coil_timer slots[COIL__WHEEL_SLOTS]; /* sentinels */
	uint64_t bitmap[COIL__WHEEL_SLOTS / 64];    /* non-empty slots */
	uint64_t cur_ms;  /* every timer expiring <= cur_ms has fired */
	uint32_t count;   /* armed timers */
	uint32_t fired;   /* callbacks run (wraps) */
};
void coil__wheel_init(struct coil__wheel *w, uint64_t now_ms);
/* Fire the timers due at or before now_ms, in expiry order per ms, at most
 * `budget` of them: a storm of timeouts falling due together (15,000
 * slowloris connections) is spread over turns so that I/O keeps flowing
 * in between. Returns true if some due timers were left for the next
 * turn. */
bool coil__wheel_run(struct coil__wheel *w, uint64_t now_ms,
		     unsigned budget);
/* Timer callbacks per loop turn: a request arriving during a storm waits
 * for one such batch at most (16 closes: ~0.1 ms). */
#define COIL__TIMER_BUDGET 16u
/* Timer callbacks per ms of the real clock (core/loop.c): a storm of
 * timeouts falling due together is worked off at this pace, so that
 * closing thousands of connections takes a share of the CPU rather than
 * all of it in turns back to back, and the connections still talking get
 * theirs (issue 18: 15,000 header timeouts at once). */
#define COIL__TIMER_PER_MS 64u
/* A stopping loop whose backend cannot tell whether handshakes are still
 * in progress on its listeners keeps them open this long after it would
 * have closed them (core/loop.c listeners_closed). */
#define COIL__LISTEN_LINGER_MS 20u
/* ... and waits for handshakes in progress on them at most this long
 * after the stop began (a peer's ACK comes within a round trip; a
 * handshake that never completes must not hold the drain to its end). */
#define COIL__LISTEN_SETTLE_MAX_MS 1000u
/* Milliseconds until the next timer may be due (a lower bound), or -1. */
int64_t coil__wheel_timeout(const struct coil__wheel *w);

/* ---- send queue segments ---- */
enum { SEG_CHUNK = -1, SEG_STATIC = -2, SEG_FILE = -3, SEG_SMALL = -4 };
/* (a kind >= 0 is a receive buffer id) */

struct coil__seg {
	struct coil__seg *next;
	const uint8_t *data;  /* first unsent byte (memory kinds) */
	uint32_t len;         /* unsent bytes */
	int32_t kind;         /* SEG_CHUNK, SEG_STATIC, SEG_FILE, SEG_SMALL or
				 a buffer id */
	uint32_t room;        /* SEG_CHUNK, SEG_SMALL: free bytes after
				 data+len */
	uint16_t heap;        /* allocated with malloc (slab was full) */
	uint16_t close_fd;    /* SEG_FILE: close fd when the segment goes */
	union {
		struct {
			int fd;       /* SEG_FILE: the file */
			uint64_t off; /* SEG_FILE: offset of the first unsent
					 byte */
		};
		/* SEG_SMALL: a short copy between references (an HTTP
		 * chunk's framing) held in the segment itself rather than
		 * in a 16 KiB chunk of its own. */
		uint8_t small[16];
	};
};

/* Most file bytes one send covers (a pipe's worth on io_uring). */
#define COIL__FILE_SEND_MAX (256u << 10)

/* ---- listener ---- */
struct coil__listener {
	_Alignas(16) struct coil_loop *loop;
	const struct coil_service *svc;  /* the engine's copy */
	int fd;
	int index;
	bool armed;
	bool closed;
	unsigned refused;
	unsigned errors;
	struct coil_timer retry;   /* re-arm accept after an error */
	struct coil_steer_loop *steer; /* eBPF steering counters, or NULL */
	uint64_t steer_mark;       /* steer->steered at the last reconcile */
};

/* ---- UDP (core/udp.c) ---- */
/* One datagram waiting to be sent by a socket backend: a msghdr over a
 * copy of the payload in the service's send pool. */
struct coil__udp_tx {
	_Alignas(16) uint32_t kind;                 /* COIL__UDP_OBJ_TX (io_uring tag) */
	uint32_t bid;                  /* payload buffer in udp->txpool */
	struct coil_udp *udp;
	struct coil__udp_tx *next;     /* backend queue */
	struct msghdr msg;
	struct iovec iov;
	struct sockaddr_storage to;
};
enum { COIL__UDP_OBJ_RX = 0x5544, COIL__UDP_OBJ_TX = 0x5458 };

struct coil_udp {
	_Alignas(16) uint32_t kind;                 /* COIL__UDP_OBJ_RX (io_uring tag) */
	int index;
	struct coil_loop *loop;
	const struct coil_udp_service *svc;  /* the engine's copy */
	int fd;                        /* socket backends; -1 on DPDK */
	uint16_t port;                 /* bound port, host order */
	uint32_t max_dgram;
	bool armed, closed, blocked;   /* backend state */
	struct coil__bufpool rx;       /* receive buffers (socket backends) */
	uint32_t rx_size;              /* bytes of each, with header room */
	struct coil__bufpool txpool;   /* send copies (socket backends) */
	struct coil__udp_tx *tx;       /* [txpool.count] */
	struct coil__udp_tx *txq_head, *txq_tail;
	uint32_t txq_len;
	struct msghdr rx_msg;          /* io_uring recvmsg template */
	void *be;                      /* backend private */
	/* statistics */
	uint64_t rx_dgrams, rx_bytes, tx_dgrams, tx_bytes;
	uint64_t rx_dropped;           /* truncated (> max_datagram) */
	uint64_t tx_dropped;           /* no send slot, or send failed */
};

/* Set up / tear down a loop's end of a UDP service (pools; fd is set by
 * the engine). Returns 0 or -errno. */
int coil__udp_init(struct coil_udp *u, struct coil_loop *loop,
		   const struct coil_udp_service *svc, int index, int fd,
		   uint16_t port);
void coil__udp_fini(struct coil_udp *u);
/* Hand a received datagram to the protocol. */
void coil__udp_deliver(struct coil_udp *u, const uint8_t *data, size_t len,
		       const struct sockaddr *peer, socklen_t peer_len);
/* A send slot holding a copy of the datagram (socket backends), or NULL
 * with *err = -ENOBUFS / -EAFNOSUPPORT. */
struct coil__udp_tx *coil__udp_tx_get(struct coil_udp *u,
				      const struct sockaddr *to,
				      socklen_t to_len, const void *data,
				      size_t len, int *err);
/* The send of `t` finished with `res` bytes or -errno: free the slot. */
void coil__udp_tx_done(struct coil__udp_tx *t, int res);
/* COIL_STATS line(s) for the loop's UDP services. */
void coil__udp_log_stats(struct coil_loop *loop);

/* ---- connection ---- */
enum {
	CONN_RECV_ARMED = 1u << 0,  /* a receive is outstanding */
	CONN_SENDING = 1u << 1,     /* a send is outstanding */
	CONN_CLOSING = 1u << 2,     /* close requested: no more input */
	CONN_ABORT = 1u << 3,       /* drop output, reset */
	CONN_PAUSED = 1u << 4,      /* coil_conn_pause() */
	CONN_WPAUSED = 1u << 5,     /* paused by the high-water mark */
	CONN_EOF = 1u << 6,         /* peer sent FIN */
	CONN_DIRTY = 1u << 7,       /* on the loop's flush list */
	CONN_STARVED = 1u << 8,     /* receive ended for lack of buffers */
	CONN_CANCELING = 1u << 9,   /* a cancel of the receive was issued */
	CONN_FREED = 1u << 10,      /* on_close has run */
	CONN_IN_DATA = 1u << 11,    /* inside on_data */
	CONN_CARRY_DUE = 1u << 12,  /* deliver carried/held input at flush */
	CONN_SEND_CANCEL = 1u << 13,
	CONN_REFUSED = 1u << 14,    /* on_open said no: no on_close */
	CONN_LIGHT = 1u << 15,      /* starved before it received a buffer's worth */
	CONN_DOOMED = 1u << 16,     /* its receive failed later in this batch */
	CONN_CONNECTING = 1u << 17, /* outgoing: the connect is outstanding */
	CONN_CONNECT_CANCEL = 1u << 18, /* a cancel of the connect was issued */
	CONN_LINGER = 1u << 19,     /* closed, output done, draining input */
	CONN_LINGER_END = 1u << 20, /* lingered long enough: stop reading */
};

/* Links of the loop's list of live connections. The loop's sentinel is a
 * bare link, not a connection, so struct coil_loop never embeds a struct
 * with a flexible array member. */
struct coil__conn_link {
	struct coil__conn_link *next, *prev;
};

struct coil_conn {
	struct coil_loop *loop;
	struct coil__listener *lst;
	int fd;
	uint32_t flags;
	int close_reason;
	uint32_t carry_len, carry_cap;
	int32_t splice_res;             /* backend private */
	uint8_t *carry;                 /* unconsumed input, malloc'd */
	struct coil__seg *sq_head, *sq_tail;
	struct coil__seg *held_head, *held_tail; /* received while paused */
	uint32_t held_bytes, held_bufs;
	size_t queued;                  /* bytes in the send queue */
	uint32_t inflight;              /* bytes covered by the send in flight */
	uint32_t niov;                  /* 0: the send in flight is file_seg */
	struct coil__seg *file_seg;     /* the file segment being sent */
	int pipe_fds[2];                /* io_uring file sends: -1 until used */
	uint32_t pipe_bytes;            /* file bytes sitting in the pipe */
	uint32_t splice_state;          /* backend private */
	struct coil_conn *next_dirty;
	struct coil_conn *starved_next, *starved_prev;
	uint32_t arm_rx;                /* bytes received since recv_arm */
	uint32_t linger_rx;             /* bytes discarded while lingering */
	uint64_t probe_turn;            /* turn of the last peer_gone() check */
	struct coil__conn_link all;     /* in loop->all */
	uint64_t last_rx_ms;
	struct coil_timer idle;
	/* The iovec of the send in flight (niov of them), in a coil__sendv
	 * from loop->sendvs: only a connection with a send of bytes in
	 * flight holds one. NULL otherwise. */
	struct iovec *iov;
	uint64_t backend[4];            /* backend scratch (epoll state, the
					   connect address) */
	struct coil__tls *tls;          /* TLS state (tls/tls_conn.c) or NULL */
	_Alignas(16) uint8_t state[];
};

/* What a send in flight needs besides its segments: taken in
 * coil__send_start, given back in coil__conn_sent, so that an idle
 * connection holds none of it (issue 18: idle keep-alive memory). */
struct coil__sendv {
	struct iovec iov[COIL__SEND_IOV];
	struct msghdr msg;              /* for a backend's sendmsg */
};

static inline struct msghdr *coil__send_msghdr(struct coil_conn *c)
{
	return &((struct coil__sendv *)(void *)c->iov)->msg;
}

/* ---- loop ---- */
struct coil_loop {
	_Alignas(16) unsigned id;
	int cpu;
	struct coil_engine *engine;
	void (*turn_cb)(struct coil_loop *loop, void *arg); /* opts.loop_turn */
	void *turn_arg;
	const struct coil__backend_ops *be;
	void *be_data;
	const char *be_features;
	enum coil_poll_mode poll;
	unsigned poll_us;
	unsigned coalesce_us;
	uint64_t now_ns, now_ms;
	bool fake_clock;

	struct coil__wheel wheel;
	uint64_t timer_ms;               /* the ms timer_mark counts in */
	uint32_t timer_mark;             /* wheel.fired when it began */
	struct coil__bufpool pool;
	struct coil__slab conns, segs, chunks;
	struct coil__slab sendvs;        /* one per connection sending */
	uint32_t conn_size;
	unsigned seg_heap, chunk_heap;   /* malloc fallbacks taken (stats) */

	struct coil__listener lst[COIL__MAX_SERVICES];
	unsigned nlst;

	struct coil_udp udp[COIL__MAX_SERVICES];
	unsigned nudp;

	struct coil_conn *dirty;         /* flush list (LIFO is fine) */
	/* Waiting for receive buffers, FIFO: [0] light (starved before they
	 * got a buffer's worth: a request, a keep-alive client), [1] heavy
	 * (starved in the middle of a stream). */
	struct coil__starved_q {
		struct coil_conn *head, *tail;
	} starved[2];
	struct coil__conn_link all;      /* sentinel of every live conn */
	unsigned nconns;

	/* the receive buffer on_data is looking at (for write_ref) */
	int32_t cur_bid;
	const uint8_t *cur_base;
	size_t cur_len;

	atomic_bool stop_req;
	atomic_bool abort_req;
	bool stopping;
	uint64_t drain_deadline_ms;
	/* Stopping: the listeners were quiesced and are open until the
	 * drain ends; lst_quiet_ms: when they had no handshake left in
	 * progress (0: not seen yet); lst_stopped: listen_stop called. */
	uint64_t lst_quiet_ms;
	bool lst_stopped;
	unsigned drain_ms;

	struct coil__inbox *inbox;       /* posts and defer results (core/
					    inbox.c); owned by the engine */
	struct coil__loop_stats st;

	/* statistics, read racily by other threads */
	atomic_ulong accepted;
	atomic_ulong closed;
	uint64_t turns, recvs, sends, rx_bytes, tx_bytes;
} __attribute__((aligned(64)));

/* Parse a numeric IPv4/IPv6 address (NULL: 0.0.0.0) and port into *ss.
 * Returns 0 or -EINVAL. (core/engine.c) */
int coil__addr_parse(const char *addr, uint16_t port,
		     struct sockaddr_storage *ss, socklen_t *len);

/* ---- loop core (core/loop.c) ---- */
struct coil__loop_opts {
	unsigned id;
	int cpu;
	enum coil_poll_mode poll;
	unsigned poll_us;
	unsigned coalesce_us;
	unsigned bufs, buf_size, max_conns;
	size_t state_size;   /* largest per-conn state of all services */
	unsigned drain_ms;
};
int coil__loop_init(struct coil_loop *loop, const struct coil__loop_opts *o,
		    const struct coil__backend_ops *be);
void coil__loop_fini(struct coil_loop *loop);
void coil__loop_clock(struct coil_loop *loop);
/* One turn: timers, flush, then the backend's submit/wait/dispatch.
 * `block` lets the backend sleep (per poll mode) when nothing is pending. */
void coil__loop_turn(struct coil_loop *loop, bool block);
/* Timer callbacks the loop may run now: COIL__TIMER_BUDGET, or less once
 * this ms of the real clock ran COIL__TIMER_PER_MS of them (0: wait for
 * the next ms). A fake clock stands still until its test moves it: no pace
 * there, a turn always gets COIL__TIMER_BUDGET. */
unsigned coil__loop_timer_budget(struct coil_loop *loop);
/* Run turns until stopped and drained. Returns 0 or -errno. */
int coil__loop_run(struct coil_loop *loop);
/* Begin the graceful stop on the loop's own thread. */
void coil__loop_begin_stop(struct coil_loop *loop);

/* Should `c` stop reading (closed, paused, output over the high-water
 * mark)? A lingering close reads on, to discard, until it ends. */
static inline bool coil__conn_reading_stopped(const struct coil_conn *c)
{
	if ((c->flags & (CONN_LINGER | CONN_LINGER_END)) == CONN_LINGER)
		return false;
	return c->flags & (CONN_CLOSING | CONN_PAUSED | CONN_WPAUSED);
}

/* ---- connection core (core/conn.c, core/conn_recv.c): events from the
 * backends ---- */
void coil__conn_accepted(struct coil__listener *lst, int fd);
/* Tell the protocol the engine is stopping (on_shutdown, or a close). */
void coil__conn_shutdown(struct coil_conn *c);
/* The outstanding connect (coil_loop_connect) ended: 0 connected, or
 * -errno (-ECANCELED after connect_cancel). */
void coil__conn_connected(struct coil_conn *c, int res);
void coil__conn_recv(struct coil_conn *c, const uint8_t *data, size_t len,
		     int32_t bid);
/* The outstanding receive ended: res 0 = EOF, -ENOBUFS = no buffers,
 * -ECANCELED = cancelled, 1 = ended but may be re-armed, else -errno. */
void coil__conn_recv_done(struct coil_conn *c, int res);
/* The outstanding receive failed with `err` (-errno) ahead of its end: an
 * error seen further on in this batch, or a completion the backend cannot
 * trust. Input is discarded from now on and the connection aborts with
 * `err` as its reason (unless it has one, or is lingering); the receive
 * still reports its end with coil__conn_recv_done(). */
void coil__conn_recv_failed(struct coil_conn *c, int err);
/* The connection failed with `err` (-errno) outside a receive: reset by
 * the peer, timed out by the backend's own transport, a file that shrank
 * under a send. It aborts with `err` as its reason unless it has one. */
void coil__conn_failed(struct coil_conn *c, int err);
/* Flush every dirty connection: sends, re-arms, closes. */
void coil__loop_flush(struct coil_loop *loop);
void coil__conn_mark(struct coil_conn *c);
/* Free every connection at once (loop teardown). */
void coil__loop_kill_all(struct coil_loop *loop);

/* Plaintext input for the protocol (TLS): delivered, held or carried as
 * received bytes are, with no receive buffer to reference. */
void coil__conn_input(struct coil_conn *c, const uint8_t *data, size_t len);

/* Between conn.c and conn_recv.c. */
/* Input a lingering close reads and discards before it closes. */
#define COIL__LINGER_MAX (1u << 20)
/* Deliver carried and held input while the protocol keeps reading. */
void coil__conn_deliver_pending(struct coil_conn *c);
/* Take `c` off its loop's queue of receives waiting for buffers. */
void coil__conn_starved_unlink(struct coil_conn *c);
/* Re-arm the starved receives of queues from..to ([0] light, [1] heavy)
 * that the free receive buffers can serve (each flush). */
void coil__conn_starved_wake(struct coil_loop *loop, int from, int to);

/* ---- TLS (tls/tls*.c, coil/tls.h) ----
 * A TLS connection's send queue is its ciphertext (coil__tls_pending()
 * bytes at the head, the only bytes a send covers) followed by the
 * plaintext the protocol queued since, which coil__tls_flush encrypts. */
/* Set up c->tls for a connection of a service with TLS, before on_open
 * (a client's ClientHello queued). Returns 0, -ENOMEM, or -EPROTO when a
 * client's handshake cannot start. */
int coil__tls_open(struct coil_conn *c);
/* Ciphertext received: decrypt, hand the plaintext to coil__conn_input. */
void coil__tls_recv(struct coil_conn *c, const uint8_t *data, size_t len);
/* At the flush: encrypt queued plaintext (bounded), close_notify once
 * closing with nothing left to encrypt. */
void coil__tls_flush(struct coil_conn *c);
/* Ciphertext bytes at the head of the send queue. */
size_t coil__tls_pending(const struct coil_conn *c);
/* A send took `n` bytes of the ciphertext. */
void coil__tls_sent(struct coil_conn *c, size_t n);
void coil__tls_free(struct coil_conn *c);
/* Whether a context is a client's (coil_tls_client_create). */
bool coil__tls_is_client(const struct coil_tls *t);

/* ---- send queue (core/sendq.c) ---- */
/* A segment from the loop's slabs (a 16 KiB chunk when `chunk`), falling
 * back to the heap when they are full; NULL only when that fails too. */
struct coil__seg *coil__seg_new(struct coil_loop *loop, bool chunk);
/* Free a segment: drops its buffer reference / closes its file as owed. */
void coil__seg_free(struct coil_loop *loop, struct coil__seg *seg);
/* Free everything queued (no send may be in flight). */
void coil__sendq_drop(struct coil_conn *c);
/* Issue one send for the head of the queue, if it holds bytes. */
void coil__send_start(struct coil_conn *c);
/* Event from the backends: the outstanding send completed with `res`
 * bytes or -errno. */
void coil__conn_sent(struct coil_conn *c, int res);

#endif
