/* SPDX-License-Identifier: MIT */
/*
 * TCP: the connection table, the upper layer's calls and the instance.
 * See tcp.h for what it covers; tcp_input.c has the state machine for
 * segments of known connections, tcp_output.c output, retransmission and
 * timers, tcp_syn.c the listeners, SYN queue and cookies.
 */
#include "tcp.h"
#include "tcp_internal.h"
#include "../core/internal.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint64_t coil__tcp_now(const struct coil__tcp *tcp)
{
	return tcp->loop->now_ms;
}

/* ---- the connection table ---- */

static uint32_t hash3(const struct coil__tcp *tcp, uint32_t raddr,
		      uint16_t rport, uint16_t lport)
{
	uint64_t h = ((uint64_t)raddr << 32 | (uint32_t)rport << 16 | lport) ^
		     tcp->secret[1];

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (uint32_t)h & tcp->hmask;
}

struct coil__tcb *coil__tcp_lookup(struct coil__tcp *tcp, uint32_t raddr,
				   uint16_t rport, uint16_t lport)
{
	struct coil__tcb *t = tcp->hash[hash3(tcp, raddr, rport, lport)];

	while (t && !(t->raddr == raddr && t->rport == rport &&
		      t->lport == lport))
		t = t->hnext;
	return t;
}

void coil__tcb_hash(struct coil__tcb *t)
{
	struct coil__tcp *tcp = t->tcp;
	uint32_t b = hash3(tcp, t->raddr, t->rport, t->lport);

	t->hnext = tcp->hash[b];
	tcp->hash[b] = t;
	t->hashed = true;
}

void coil__tcb_unhash(struct coil__tcb *t)
{
	struct coil__tcp *tcp = t->tcp;
	struct coil__tcb **pp;

	if (!t->hashed)
		return;
	pp = &tcp->hash[hash3(tcp, t->raddr, t->rport, t->lport)];
	while (*pp != t)
		pp = &(*pp)->hnext;
	*pp = t->hnext;
	t->hnext = NULL;
	t->hashed = false;
}

void coil__tcb_held_drop_all(struct coil__tcb *t)
{
	struct coil__tcp_held *h;

	while ((h = t->rq)) {
		t->rq = h->next;
		coil__tcp_held_free(t->tcp, h);
	}
	while ((h = t->ooo)) {
		t->ooo = h->next;
		coil__tcp_held_free(t->tcp, h);
	}
	t->rq_tail = NULL;
	t->held_bytes = 0;
	t->held_pkts = 0;
}

static void tw_unlink(struct coil__tcb *t)
{
	struct coil__tcp *tcp = t->tcp;

	if (!t->twprev && tcp->tw_head != t)
		return;
	if (t->twprev)
		t->twprev->twnext = t->twnext;
	else
		tcp->tw_head = t->twnext;
	if (t->twnext)
		t->twnext->twprev = t->twprev;
	else
		tcp->tw_tail = t->twprev;
	t->twnext = t->twprev = NULL;
	tcp->ntw--;
}

static void pending_unlink(struct coil__tcb *t)
{
	struct coil__tcb **pp = &t->tcp->pending;

	if (!t->pending)
		return;
	while (*pp != t)
		pp = &(*pp)->pnext;
	*pp = t->pnext;
	t->pnext = NULL;
	t->pending = false;
}

struct coil__tcb *coil__tcb_alloc(struct coil__tcp *tcp)
{
	struct coil__tcb *t = tcp->free_tcb;

	if (!t && tcp->tcb_bump < tcp->cfg.max_conns) {
		t = &tcp->tcbs[tcp->tcb_bump++];
		t->hnext = NULL;
		tcp->free_tcb = t;
	}
	if (!t && tcp->tw_head) {
		/* Out of tcbs: the oldest TIME_WAIT goes first. */
		tcp->st.tw_recycled++;
		coil__tcb_free(tcp->tw_head);
		t = tcp->free_tcb;
	}
	if (!t)
		return NULL;
	tcp->free_tcb = t->hnext;
	tcp->nfree--;
	memset(t, 0, sizeof(*t));
	t->tcp = tcp;
	coil_timer_init(&t->rexmt, tcp->loop, coil__tcb_timer, t);
	coil_timer_init(&t->delack, tcp->loop, coil__tcb_delack_timer, t);
	t->rto = tcp->cfg.rto_init_ms;
	t->ssthresh = 0xffffffffu;
	t->rcv_wscale = 0;
	return t;
}

void coil__tcb_orphan_release(struct coil__tcb *t)
{
	if (!t->obuf)
		return;
	t->tcp->orphan_bytes -= t->olen;
	free(t->obuf);
	t->obuf = NULL;
	t->ooff = t->olen = 0;
}

void coil__tcb_free(struct coil__tcb *t)
{
	struct coil__tcp *tcp = t->tcp;

	coil__tcb_orphan_release(t);
	coil_timer_stop(&t->rexmt);
	coil_timer_stop(&t->delack);
	coil__tcb_unhash(t);
	tw_unlink(t);
	pending_unlink(t);
	coil__tcb_held_drop_all(t);
	if (t->state == TCP_SYN_RCVD && t->lidx && !t->cookie)
		tcp->lst[t->lidx - 1].nsyn--;
	t->state = TCP_CLOSED;
	t->uctx = NULL;
	t->hnext = tcp->free_tcb;
	tcp->free_tcb = t;
	tcp->nfree++;
	tcp->st.closed++;
}
/* ---- upper-layer calls ---- */

void coil__tcp_send(struct coil__tcb *t, size_t avail)
{
	if (t->dead || t->fin_wanted)
		return;
	assert(avail >= (size_t)(t->snd_nxt - t->snd_una) ||
	       t->state == TCP_SYN_SENT || t->state == TCP_SYN_RCVD);
	t->snd_avail = avail;
	coil__tcp_output(t);
}

void coil__tcp_recv_arm(struct coil__tcb *t, bool on)
{
	t->rx_armed = on;
	if (on && (t->rq || (t->eof_due && !t->eof_done)))
		coil__tcb_pending_add(t);
}

void coil__tcp_shutdown(struct coil__tcb *t)
{
	if (t->dead || t->fin_wanted)
		return;
	t->fin_wanted = true;
	coil__tcp_output(t);
}

void coil__tcb_tw_add(struct coil__tcb *t)
{
	struct coil__tcp *tcp = t->tcp;

	if (tcp->tw_tail == t || t->twprev)
		return;
	t->twprev = tcp->tw_tail;
	t->twnext = NULL;
	if (tcp->tw_tail)
		tcp->tw_tail->twnext = t;
	else
		tcp->tw_head = t;
	tcp->tw_tail = t;
	tcp->ntw++;
	while (tcp->ntw > tcp->cfg.tw_max) {
		tcp->st.tw_recycled++;
		coil__tcb_free(tcp->tw_head);
	}
}

/* A graceful close with bytes not yet acknowledged (sent or not): TCP
 * keeps a copy of them, since the upper layer's send buffer goes with
 * it, and goes on sending and retransmitting them, then the FIN. False
 * (the close becomes a reset) when the copy does not fit orphan_max. */
static bool orphan_keep(struct coil__tcb *t)
{
	struct coil__tcp *tcp = t->tcp;
	size_t n = t->snd_avail;

	if (!n)
		return true;
	if (n > tcp->cfg.orphan_max - tcp->orphan_bytes ||
	    !(t->obuf = malloc(n))) {
		tcp->st.orphan_rst++;
		return false;
	}
	tcp->ops.copy(t->uctx, 0, t->obuf, n);
	t->ooff = 0;
	t->olen = n;
	tcp->orphan_bytes += n;
	return true;
}

void coil__tcp_close(struct coil__tcb *t, bool reset)
{
	t->closed_up = true;
	t->rx_armed = false;
	pending_unlink(t);
	if (t->dead || t->state == TCP_CLOSED) {
		coil__tcb_free(t);
		return;
	}
	if (!reset && t->state != TCP_SYN_SENT && !orphan_keep(t))
		reset = true;
	t->uctx = NULL;
	t->orphan = true;
	/* Unread input is dropped, not answered with a reset (RFC 2525 2.17
	 * would): the connection core closes knowing it (a lingering close
	 * that ended, an HTTP error sent while the body still comes), and a
	 * reset would make the peer's kernel discard the answer it has not
	 * read yet. What still arrives is acknowledged and dropped until the
	 * peer's FIN or the FIN_WAIT_2 limit. */
	if (t->rq || t->ooo) {
		t->tcp->st.drop_orphan += t->held_pkts;
		coil__tcb_held_drop_all(t);
	}
	if (reset || t->state == TCP_SYN_SENT) {
		if (t->state != TCP_SYN_SENT)
			coil__tcb_send_rst(t);
		coil__tcb_free(t);
		return;
	}
	switch (t->state) {
	case TCP_TIME_WAIT:
		coil__tcb_tw_add(t);
		break;
	case TCP_FIN_WAIT_2:
		coil_timer_start(&t->rexmt, t->tcp->cfg.fin_wait2_ms);
		break;
	case TCP_ESTABLISHED:
	case TCP_CLOSE_WAIT:
	case TCP_SYN_RCVD:
		t->fin_wanted = true;
		if (t->state == TCP_SYN_RCVD)
			break;  /* the FIN goes once established */
		coil__tcp_output(t);
		break;
	default:
		break;   /* FIN_WAIT_1, CLOSING, LAST_ACK: under way */
	}
}

void coil__tcp_poll(struct coil__tcp *tcp)
{
	while (tcp->pending) {
		struct coil__tcb *t = tcp->pending;
		bool more;

		tcp->pending = t->pnext;
		t->pnext = NULL;
		t->pending = false;
		more = t->rq != NULL;
		coil__tcp_deliver(t);
		if (more && !t->dead && coil__tcb_can_send(t)) {
			/* Window update when space opened by 2 segments or
			 * half the buffer (RFC 1122 4.2.3.3). */
			uint32_t adv = t->rcv_adv - t->rcv_nxt;
			uint32_t win = coil__tcb_rcv_window(t);

			if (win >= adv + 2u * t->mss ||
			    win >= adv + t->tcp->cfg.rcv_buf / 2)
				coil__tcb_send_ack(t);
		}
	}
}

/* In-order input held while not receiving, then the FIN. */
void coil__tcp_deliver(struct coil__tcb *t)
{
	struct coil__tcp *tcp = t->tcp;

	while (t->rx_armed && t->rq && t->uctx) {
		struct coil__tcp_held *h = t->rq;

		t->rq = h->next;
		if (!t->rq)
			t->rq_tail = NULL;
		t->held_bytes -= h->len;
		t->held_pkts--;
		if (h->len)
			tcp->ops.recv(t->uctx, h->p.data + h->off, h->len);
		coil__tcp_held_free(tcp, h);
	}
	if (t->rx_armed && !t->rq && t->eof_due && !t->eof_done && t->uctx) {
		t->eof_done = true;
		tcp->ops.eof(t->uctx);
	}
}
/* ---- instance ---- */

int coil__tcp_init(struct coil__tcp *tcp, struct coil__net *n,
		   struct coil_loop *loop, const struct coil__tcp_cfg *cfg,
		   const struct coil__tcp_ops *ops)
{
	struct coil__tcp_cfg c = *cfg;
	uint32_t hs = 64;

	memset(tcp, 0, sizeof(*tcp));
	if (!c.max_conns)
		c.max_conns = 4096;
	if (!c.syn_backlog)
		c.syn_backlog = 256;
	if (!c.tw_max)
		c.tw_max = c.max_conns / 4 ? c.max_conns / 4 : 1;
	if (!c.rcv_buf)
		c.rcv_buf = 256u << 10;
	if (c.rcv_buf > (64u << 20))
		return -EINVAL;
	if (!c.rx_pkts_max)
		c.rx_pkts_max = 256;
	if (!c.held_max)
		c.held_max = c.max_conns * 8;
	if (!c.rto_min_ms)
		c.rto_min_ms = 200;
	if (!c.rto_max_ms)
		c.rto_max_ms = 60000;
	if (!c.rto_init_ms)
		c.rto_init_ms = 1000;
	if (!c.max_retries)
		c.max_retries = 12;
	if (!c.syn_retries)
		c.syn_retries = 5;
	if (!c.delack_ms)
		c.delack_ms = 40;
	if (!c.msl_ms)
		c.msl_ms = 30000;
	if (!c.fin_wait2_ms)
		c.fin_wait2_ms = 30000;
	if (!c.orphan_max)
		c.orphan_max = 4u << 20;
	tcp->cfg = c;
	tcp->net = n;
	tcp->loop = loop;
	tcp->ops = *ops;
	while (hs < c.max_conns * 2 && hs < (1u << 24))
		hs <<= 1;
	tcp->hmask = hs - 1;
	tcp->hash = calloc(hs, sizeof(*tcp->hash));
	tcp->tcbs = calloc(c.max_conns, sizeof(*tcp->tcbs));
	tcp->held = calloc(c.held_max, sizeof(*tcp->held));
	if (!tcp->hash || !tcp->tcbs || !tcp->held) {
		free(tcp->hash);
		free(tcp->tcbs);
		free(tcp->held);
		return -ENOMEM;
	}
	tcp->nfree = c.max_conns;
	tcp->nheld_free = c.held_max;
	while ((c.rcv_buf >> tcp->rcv_wscale) > 65535)
		tcp->rcv_wscale++;
	coil__tcp_secret_init(tcp);
	tcp->next_port = (uint16_t)(32768 + (tcp->secret[0] % 28000));
	n->tcp = tcp;
	return 0;
}

void coil__tcp_neigh_up(struct coil__tcp *tcp, uint32_t nh)
{
	const struct coil__net_cfg *nc = &tcp->net->cfg;

	/* Only the newest packet waited for the neighbour's MAC (arp.c):
	 * the SYNs of the other connections opened meanwhile (a load
	 * generator opens hundreds in one turn) go again now instead of
	 * after the initial RTO of a second. */
	for (unsigned i = 0; tcp->tcbs && i < tcp->tcb_bump; i++) {
		struct coil__tcb *t = &tcp->tcbs[i];
		uint32_t hop;

		if (!t->tcp || t->state != TCP_SYN_SENT)
			continue;
		hop = (t->raddr & nc->mask) == (nc->ip & nc->mask) ? t->raddr
								   : nc->gw;
		if (hop == nh)
			coil__tcb_send_syn(t);
	}
}

void coil__tcp_fini(struct coil__tcp *tcp)
{
	if (!tcp->tcbs)
		return;
	for (unsigned i = 0; i < tcp->tcb_bump; i++) {
		struct coil__tcb *t = &tcp->tcbs[i];

		coil_timer_stop(&t->rexmt);
		coil_timer_stop(&t->delack);
		if (t->tcp) {
			coil__tcb_held_drop_all(t);
			coil__tcb_orphan_release(t);
		}
	}
	if (tcp->net->tcp == tcp)
		tcp->net->tcp = NULL;
	free(tcp->hash);
	free(tcp->tcbs);
	free(tcp->held);
	tcp->hash = NULL;
	tcp->tcbs = NULL;
	tcp->held = NULL;
}
