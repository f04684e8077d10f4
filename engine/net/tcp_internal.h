/* SPDX-License-Identifier: MIT */
/*
 * Between tcp.c (connection table, upper-layer calls), tcp_input.c,
 * tcp_output.c (output, retransmission, timers) and tcp_syn.c (segment
 * parsing, listeners, SYN queue and cookies, active open). Private to
 * engine/net.
 */
#ifndef COIL_NET_TCP_INTERNAL_H
#define COIL_NET_TCP_INTERNAL_H

#include "tcp.h"

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10

/* A parsed, checked segment (host order except addresses and ports). */
struct coil__tcp_seg {
	uint32_t src;             /* the peer's address */
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint32_t off, len;        /* payload: p->data + off, len bytes */
	uint16_t win;             /* as sent (unscaled) */
	uint16_t mss;             /* option; 0: absent */
	uint8_t ws;               /* option; 0xff: absent */
	uint8_t flags;
};

uint64_t coil__tcp_now(const struct coil__tcp *tcp);
struct coil__tcb *coil__tcp_lookup(struct coil__tcp *tcp, uint32_t raddr,
				   uint16_t rport, uint16_t lport);
/* A zeroed tcb with its timers set up, or NULL (table full even after
 * recycling the oldest TIME_WAIT). */
struct coil__tcb *coil__tcb_alloc(struct coil__tcp *tcp);
void coil__tcb_free(struct coil__tcb *t);
void coil__tcb_hash(struct coil__tcb *t);
/* Send one segment (payload copied from t's send buffer at off). */
int coil__tcp_xmit(struct coil__tcp *tcp, uint32_t dst, uint16_t sport,
		   uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
		   uint16_t win, const uint8_t *opts, unsigned optlen,
		   struct coil__tcb *t, size_t off, uint32_t len);
void coil__tcb_send_syn(struct coil__tcb *t);
/* Retransmit the segment at snd_una (data up to one MSS, the FIN after
 * it when sent). */
void coil__tcb_rexmit_una(struct coil__tcb *t);
void coil__tcp_output(struct coil__tcb *t);
void coil__tcp_deliver(struct coil__tcb *t);
void coil__tcb_input(struct coil__tcb *t, struct coil__pkt *p,
		     const struct coil__tcp_seg *s);
/* No connection for the segment: listeners, cookies, or RST. */
void coil__tcp_listen_input(struct coil__tcp *tcp, struct coil__pkt *p,
			    const struct coil__tcp_seg *s);
void coil__tcb_syn_sent_input(struct coil__tcb *t, struct coil__pkt *p,
			      const struct coil__tcp_seg *s);
/* SYN_RCVD -> ESTABLISHED on the ACK s: accepted(). False when the
 * connection was refused (reset and freed). */
bool coil__tcb_established(struct coil__tcb *t, const struct coil__tcp_seg *s);
void coil__tcp_secret_init(struct coil__tcp *tcp);
/* One RTT measurement of r ms (RFC 6298 2.2/2.3). */
void coil__tcb_rtt_sample(struct coil__tcb *t, uint32_t r);

/* ---- across tcp.c, tcp_input.c, tcp_output.c ---- */

/* tcp.c: the connection table */
void coil__tcb_unhash(struct coil__tcb *t);
/* Give back a closed connection's copy of its unacknowledged bytes. */
void coil__tcb_orphan_release(struct coil__tcb *t);
void coil__tcb_held_drop_all(struct coil__tcb *t);
/* Into the TIME_WAIT age list (oldest recycled beyond tw_max). */
void coil__tcb_tw_add(struct coil__tcb *t);

/* tcp_output.c */
/* One segment of connection t; an ACK unless it is the first SYN. */
int coil__tcb_xmit(struct coil__tcb *t, uint32_t seq, uint8_t flags,
		   uint32_t len);
void coil__tcb_send_rst(struct coil__tcb *t);
/* The connection died with err: the upper layer learns (ops->gone), an
 * orphan or an embryo is freed now. */
void coil__tcb_die(struct coil__tcb *t, int err);
void coil__tcb_timer(struct coil_timer *tm);
void coil__tcb_delack_timer(struct coil_timer *tm);

/* The MSS we announce: the port's MTU less the IPv4 and TCP headers. */
static inline uint16_t coil__tcp_our_mss(const struct coil__tcp *tcp)
{
	return (uint16_t)(tcp->net->cfg.mtu - COIL__IP_HLEN - COIL__TCP_HLEN);
}

/* Free receive space (bytes), 0 at the packet or byte limit. */
static inline uint32_t coil__tcb_rcv_space(const struct coil__tcb *t)
{
	const struct coil__tcp_cfg *c = &t->tcp->cfg;

	if (t->held_pkts >= c->rx_pkts_max || t->held_bytes >= c->rcv_buf)
		return 0;
	return c->rcv_buf - t->held_bytes;
}

/* The window to advertise (unscaled bytes): free space, with receiver
 * silly-window avoidance (RFC 1122 4.2.3.3), never shrinking the right
 * edge already advertised. */
static inline uint32_t coil__tcb_rcv_window(const struct coil__tcb *t)
{
	uint32_t win = coil__tcb_rcv_space(t), edge;
	uint32_t cap = (uint32_t)65535 << t->rcv_wscale;

	if (win < t->tcp->cfg.rcv_buf / 4 && win < t->mss)
		win = 0;
	if (win > cap)
		win = cap;
	win &= ~(((uint32_t)1 << t->rcv_wscale) - 1);
	edge = t->rcv_adv - t->rcv_nxt;
	if (coil__seq_lt(t->rcv_nxt, t->rcv_adv) && edge > win)
		win = edge;
	return win;
}

/* (Re)start the retransmission timer at the current RTO. */
static inline void coil__tcb_rexmt_start(struct coil__tcb *t)
{
	coil_timer_start(&t->rexmt, t->rto);
}

/* May t send data or its FIN in its state? */
static inline bool coil__tcb_can_send(const struct coil__tcb *t)
{
	switch (t->state) {
	case TCP_ESTABLISHED:
	case TCP_CLOSE_WAIT:
	case TCP_FIN_WAIT_1:
	case TCP_CLOSING:
	case TCP_LAST_ACK:
		return !t->dead;
	default:
		return false;
	}
}

/* A held-segment slot (next NULL), or NULL when all held_max are taken.
 * Slots are handed out from the array's start as first needed. */
static inline struct coil__tcp_held *coil__tcp_held_get(struct coil__tcp *tcp)
{
	struct coil__tcp_held *h = tcp->free_held;

	if (!h && tcp->held_bump < tcp->cfg.held_max) {
		h = &tcp->held[tcp->held_bump++];
		h->next = NULL;
		tcp->free_held = h;
	}
	if (!h)
		return NULL;
	tcp->free_held = h->next;
	tcp->nheld_free--;
	h->next = NULL;
	return h;
}

/* Free a held segment's packet and return h to the free list. */
static inline void coil__tcp_held_free(struct coil__tcp *tcp,
				       struct coil__tcp_held *h)
{
	if (h->p.handle)
		tcp->net->io.free(tcp->net->io.ctx, &h->p);
	h->next = tcp->free_held;
	tcp->free_held = h;
	tcp->nheld_free++;
}

/* Queue t for delivery at the next coil__tcp_poll. */
static inline void coil__tcb_pending_add(struct coil__tcb *t)
{
	if (t->pending)
		return;
	t->pending = true;
	t->pnext = t->tcp->pending;
	t->tcp->pending = t;
}

/* A bare ACK (with the window). */
static inline void coil__tcb_send_ack(struct coil__tcb *t)
{
	(void)coil__tcb_xmit(t, t->snd_nxt, 0, 0);
}

#endif
