/* SPDX-License-Identifier: MIT */
/*
 * coil's own TCP (RFC 9293) for the DPDK stack: one instance per loop,
 * shared-nothing, under ipv4.c and the packet abstraction of net.h, with
 * its timers on the loop's wheel. Passive and active open with MSS and
 * window scale, a bounded SYN queue per listener and SYN cookies when it
 * is full, in-order delivery with a bounded out-of-order queue, zero-copy
 * receive (the payload is lent to the upper layer inside the packet
 * buffer), RTO per RFC 6298 with exponential back-off, fast retransmit
 * and NewReno recovery (RFC 5681/6582), flow control from free receive
 * space, a persist timer, bounded delayed ACKs, FIN and RST in every
 * state (RST acceptance per RFC 5961), TIME_WAIT bounded, RST for
 * segments to closed ports.
 *
 * The send buffer belongs to the upper layer (the connection's send
 * queue): TCP knows how many bytes it holds from snd_una on
 * (coil__tcp_send) and copies them into packets when it transmits or
 * retransmits (ops->copy); ops->acked tells it how many it may drop.
 * A graceful close with bytes still unacknowledged takes a copy of them
 * (bounded per instance, cfg.orphan_max), so that they and the FIN are
 * still delivered after the upper layer let go, like a kernel's close.
 *
 * Nothing here is thread-safe: the loop that owns the instance calls it.
 * Addresses and ports are in network order.
 */
#ifndef COIL_NET_TCP_H
#define COIL_NET_TCP_H

#include "net.h"

#include <coil/timer.h>

struct coil_loop;
struct coil__tcb;

enum coil__tcp_state {
	TCP_CLOSED = 0, TCP_LISTEN, TCP_SYN_SENT, TCP_SYN_RCVD,
	TCP_ESTABLISHED, TCP_FIN_WAIT_1, TCP_FIN_WAIT_2, TCP_CLOSING,
	TCP_TIME_WAIT, TCP_CLOSE_WAIT, TCP_LAST_ACK,
};

/* Callbacks into the upper layer (the connection glue; the unit tests).
 * `uctx` is what accepted() returned or what connect() was given. */
struct coil__tcp_ops {
	/* A passive open completed on the listener with context lctx.
	 * Return the connection's context, or NULL to refuse it (reset). */
	void *(*accepted)(void *lctx, struct coil__tcb *t);
	/* An active open ended: 0 established, or -errno (the tcb is gone
	 * for the caller after an error, except for coil__tcp_close). */
	void (*connected)(void *uctx, int res);
	/* In-order bytes while receiving is armed, lent for the call (they
	 * point into the packet). */
	void (*recv)(void *uctx, const uint8_t *data, size_t len);
	/* The peer's FIN, after every byte before it (while armed). */
	void (*eof)(void *uctx);
	/* n bytes at the head of the send buffer were acknowledged. */
	void (*acked)(void *uctx, size_t n);
	/* The connection died: -ECONNRESET (peer's RST), -ETIMEDOUT (no
	 * answer), -ECONNREFUSED. The caller still calls coil__tcp_close. */
	void (*gone)(void *uctx, int err);
	/* Copy len bytes at offset off from the head (snd_una) of the send
	 * buffer into dst. */
	void (*copy)(void *uctx, size_t off, uint8_t *dst, size_t len);
};

struct coil__tcp_cfg {
	unsigned max_conns;      /* tcbs, TIME_WAIT included; default 4096 */
	unsigned syn_backlog;    /* SYN_RCVD per listener before cookies;
				    default 256 */
	unsigned tw_max;         /* TIME_WAIT tcbs; default max_conns / 4 */
	uint32_t rcv_buf;        /* receive space per connection; default
				    256 KiB */
	unsigned rx_pkts_max;    /* packets one connection may hold; 256 */
	unsigned held_max;       /* packets all connections may hold;
				    default max_conns * 8 */
	uint32_t rto_min_ms, rto_max_ms, rto_init_ms; /* 200, 60000, 1000 */
	unsigned max_retries;    /* data retransmissions before giving up;
				    default 12 */
	unsigned syn_retries;    /* SYN / SYN-ACK retransmissions; 5 */
	uint32_t delack_ms;      /* default 40 */
	uint32_t msl_ms;         /* TIME_WAIT lasts 2 MSL; default 30000 */
	uint32_t fin_wait2_ms;   /* orphaned FIN_WAIT_2; default 30000 */
	size_t orphan_max;       /* unacknowledged bytes closed connections
				    may keep, all together; default 4 MiB */
	bool tx_tcp_csum;        /* the port fills TCP checksums */
	/* Optional: may an active open use local port lport (network order)
	 * to raddr:rport? (A loop takes only ports whose flows are steered
	 * back to it.) */
	bool (*port_ok)(void *ctx, uint32_t raddr, uint16_t rport,
			uint16_t lport);
	void *port_ctx;
};

struct coil__tcp_stats {
	uint64_t rx_segs, tx_segs, rx_bytes, tx_bytes;
	uint64_t accepted, connected, closed, resets_rx, resets_tx;
	uint64_t syn_rx, synack_tx, cookies_tx, cookies_ok;
	/* drops, by reason */
	uint64_t drop_short;     /* shorter than its header */
	uint64_t drop_hdr;       /* data offset, flags (SYN+FIN, no ACK) */
	uint64_t drop_opts;      /* malformed options */
	uint64_t drop_csum;
	uint64_t drop_no_conn;   /* closed port or unknown connection (RST
				    sent unless it was one) */
	uint64_t drop_window;    /* outside the receive window */
	uint64_t drop_ack;       /* acknowledges what was never sent */
	uint64_t drop_ooo;       /* out of order, no room to keep it */
	uint64_t drop_nomem;     /* no tcb for a new connection */
	uint64_t drop_cookie;    /* a bad or stale SYN cookie */
	uint64_t drop_orphan;    /* data for a connection closed locally
				    (acknowledged, dropped) */
	uint64_t orphan_rst;     /* graceful closes reset: the bytes not
				    yet acknowledged did not fit orphan_max */
	uint64_t challenge_acks, dup_acks;
	/* retransmission */
	uint64_t rto_fired, retrans_segs, fast_retrans, persist_probes;
	uint64_t timeouts;       /* connections given up */
	uint64_t delacks, ooo_queued, tw_recycled;
	uint64_t tx_nobufs;
};

/* A segment held by a connection (out of order, or in order while the
 * upper layer is not receiving). */
struct coil__tcp_held {
	struct coil__tcp_held *next;
	struct coil__pkt p;
	uint32_t seq;            /* of the first payload byte kept */
	uint32_t off, len;       /* payload: p.data + off, len bytes */
	bool fin;
};

struct coil__tcb {
	struct coil__tcb *hnext;         /* hash chain / free list */
	struct coil__tcb *pnext;         /* pending delivery */
	struct coil__tcb *twnext, *twprev; /* TIME_WAIT age order */
	struct coil__tcp *tcp;
	void *uctx;
	uint32_t raddr;
	uint16_t rport, lport;
	uint8_t state;
	uint8_t lidx;                    /* passive: listener slot + 1 */
	bool hashed, orphan, dead, pending, rx_armed, eof_due, eof_done;
	bool fin_wanted, fin_sent, cookie, in_recovery, rtt_timing, persist;
	bool closed_up;                  /* the upper layer let go */
	bool ws_ok;                      /* window scaling on (both sides) */
	uint16_t mss;                    /* send MSS */
	uint8_t snd_wscale, rcv_wscale;
	uint8_t retries, dupacks, ack_pending;
	uint32_t iss, irs;
	uint32_t snd_una, snd_nxt, snd_max, snd_wnd, snd_wl1, snd_wl2;
	uint32_t rcv_nxt, rcv_adv;
	uint32_t cwnd, ssthresh, recover;
	uint32_t srtt8, rttvar4, rto;    /* ms; srtt x8, rttvar x4 */
	uint32_t rtt_seq;
	uint64_t rtt_start;
	size_t snd_avail;                /* upper's bytes from snd_una on */
	uint8_t *obuf;                   /* closed: those bytes, TCP's copy */
	size_t ooff, olen;               /* snd_una's offset in it; its size */
	struct coil__tcp_held *rq, *rq_tail;  /* in order, undelivered */
	struct coil__tcp_held *ooo;      /* sorted by seq */
	uint32_t held_bytes;
	uint16_t held_pkts;
	struct coil_timer rexmt;         /* RTO / persist / SYN / TW / FW2 */
	struct coil_timer delack;
};

#define COIL__TCP_MAX_LISTEN 8

struct coil__tcp {
	struct coil__net *net;
	struct coil_loop *loop;          /* timers and the clock */
	struct coil__tcp_ops ops;
	struct coil__tcp_cfg cfg;
	struct coil__tcp_stats st;
	struct coil__tcb *tcbs, *free_tcb;
	unsigned nfree;
	unsigned tcb_bump, held_bump;    /* never handed out beyond these:
					    memory is touched only as used */
	struct coil__tcb **hash;
	uint32_t hmask;
	struct coil__tcp_held *held, *free_held;
	unsigned nheld_free;
	struct {
		uint16_t port;           /* 0: free */
		unsigned nsyn;           /* in SYN_RCVD */
		void *lctx;
	} lst[COIL__TCP_MAX_LISTEN];
	struct coil__tcb *tw_head, *tw_tail;  /* oldest first */
	unsigned ntw;
	struct coil__tcb *pending;
	size_t orphan_bytes;             /* in the tcbs' obufs */
	uint64_t secret[2];
	uint16_t next_port;              /* host order, ephemeral */
	uint8_t rcv_wscale;
};

/* Set up an instance on `n` (which it registers itself with: n->tcp)
 * using loop's wheel and clock. Returns 0, -ENOMEM or -EINVAL. */
int coil__tcp_init(struct coil__tcp *tcp, struct coil__net *n,
		   struct coil_loop *loop, const struct coil__tcp_cfg *cfg,
		   const struct coil__tcp_ops *ops);
/* Drop everything (held packets, timers); no callbacks. */
void coil__tcp_fini(struct coil__tcp *tcp);

/* Accept connections on port for lctx. Returns 0, -EADDRINUSE, -ENOSPC. */
int coil__tcp_listen(struct coil__tcp *tcp, uint16_t port, void *lctx);
void coil__tcp_unlisten(struct coil__tcp *tcp, uint16_t port);

/* Active open to dst:dport from an ephemeral port; ops->connected tells
 * the end. Returns the tcb, or NULL with *err (-ENOMEM, -EADDRNOTAVAIL,
 * -EHOSTUNREACH). */
struct coil__tcb *coil__tcp_connect(struct coil__tcp *tcp, uint32_t dst,
				    uint16_t dport, void *uctx, int *err);

/* The upper layer holds `avail` bytes from snd_una on (never fewer than
 * are in flight): transmit what the windows allow. */
void coil__tcp_send(struct coil__tcb *t, size_t avail);
/* Start (on) or stop receiving. Held input is delivered at the next
 * coil__tcp_poll, never from here. */
void coil__tcp_recv_arm(struct coil__tcb *t, bool on);
/* No more data: FIN after what the send buffer holds. */
void coil__tcp_shutdown(struct coil__tcb *t);
/* The upper layer lets go of t: reset it, or finish the close on its
 * own: every byte it gave (coil__tcp_send) and is not acknowledged yet,
 * then the FIN, retransmitted as needed (reset instead when the copy
 * does not fit orphan_max). No callback comes for t after this. */
void coil__tcp_close(struct coil__tcb *t, bool reset);

/* Deliver input held for connections that started receiving. Call once
 * per turn before coil__net_input. */
void coil__tcp_poll(struct coil__tcp *tcp);

/* A TCP segment from ipv4.c (ownership passes). */
void coil__tcp_input(struct coil__tcp *tcp, struct coil__pkt *p,
		     struct coil__ip_hdr *ip, uint32_t l4len);

/* One COIL_STATS line. */
void coil__tcp_format_stats(const struct coil__tcp_stats *s, char *buf,
			    size_t n);

/* Sequence space (RFC 9293 3.4). */
static inline bool coil__seq_lt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}
static inline bool coil__seq_le(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) <= 0;
}

#endif
