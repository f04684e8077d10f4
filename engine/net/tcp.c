/* SPDX-License-Identifier: MIT */
/*
 * TCP: connection table, input state machine, output, timers. See tcp.h
 * for what it covers; tcp_syn.c has the listeners, SYN queue and cookies.
 */
#include "tcp.h"
#include "tcp_internal.h"
#include "../core/internal.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void tcb_timer(struct coil_timer *tm);
static void delack_timer(struct coil_timer *tm);

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

static void tcb_unhash(struct coil__tcb *t)
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

static void held_free(struct coil__tcp *tcp, struct coil__tcp_held *h)
{
	if (h->p.handle)
		tcp->net->io.free(tcp->net->io.ctx, &h->p);
	h->next = tcp->free_held;
	tcp->free_held = h;
	tcp->nheld_free++;
}

static void held_drop_all(struct coil__tcb *t)
{
	struct coil__tcp_held *h;

	while ((h = t->rq)) {
		t->rq = h->next;
		held_free(t->tcp, h);
	}
	while ((h = t->ooo)) {
		t->ooo = h->next;
		held_free(t->tcp, h);
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
	coil_timer_init(&t->rexmt, tcp->loop, tcb_timer, t);
	coil_timer_init(&t->delack, tcp->loop, delack_timer, t);
	t->rto = tcp->cfg.rto_init_ms;
	t->ssthresh = 0xffffffffu;
	t->rcv_wscale = 0;
	return t;
}

void coil__tcb_free(struct coil__tcb *t)
{
	struct coil__tcp *tcp = t->tcp;

	coil_timer_stop(&t->rexmt);
	coil_timer_stop(&t->delack);
	tcb_unhash(t);
	tw_unlink(t);
	pending_unlink(t);
	held_drop_all(t);
	if (t->state == TCP_SYN_RCVD && t->lidx && !t->cookie)
		tcp->lst[t->lidx - 1].nsyn--;
	t->state = TCP_CLOSED;
	t->uctx = NULL;
	t->hnext = tcp->free_tcb;
	tcp->free_tcb = t;
	tcp->nfree++;
	tcp->st.closed++;
}

/* ---- output ---- */

static uint32_t rcv_space(const struct coil__tcb *t)
{
	const struct coil__tcp_cfg *c = &t->tcp->cfg;

	if (t->held_pkts >= c->rx_pkts_max || t->held_bytes >= c->rcv_buf)
		return 0;
	return c->rcv_buf - t->held_bytes;
}

/* The window to advertise (unscaled bytes): free space, with receiver
 * silly-window avoidance (RFC 1122 4.2.3.3), never shrinking the right
 * edge already advertised. */
static uint32_t rcv_window(const struct coil__tcb *t)
{
	uint32_t win = rcv_space(t), edge;
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

int coil__tcp_xmit(struct coil__tcp *tcp, uint32_t dst, uint16_t sport,
		   uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
		   uint16_t win, const uint8_t *opts, unsigned optlen,
		   struct coil__tcb *t, size_t off, uint32_t len)
{
	struct coil__net *n = tcp->net;
	struct coil__tcp_hdr *th;
	struct coil__pkt p;
	uint32_t hlen = COIL__TCP_HLEN + optlen;
	uint32_t sum;

	if (n->io.alloc(n->io.ctx, &p)) {
		tcp->st.tx_nobufs++;
		return -ENOBUFS;
	}
	if (p.tailroom < len) {
		n->io.free(n->io.ctx, &p);
		tcp->st.tx_nobufs++;
		return -EMSGSIZE;
	}
	if (len) {
		tcp->ops.copy(t->uctx, off, p.data, len);
		p.len = len;
		p.tailroom -= len;
	}
	th = (struct coil__tcp_hdr *)coil__pkt_prepend(&p, hlen);
	if (!th) {
		n->io.free(n->io.ctx, &p);
		tcp->st.tx_nobufs++;
		return -ENOBUFS;
	}
	th->sport = sport;
	th->dport = dport;
	th->seq = htonl(seq);
	th->ack = htonl(ack);
	th->off = (uint8_t)((hlen / 4) << 4);
	th->flags = flags;
	th->win = htons(win);
	th->csum = 0;
	th->urp = 0;
	if (optlen)
		memcpy(th + 1, opts, optlen);
	sum = coil__csum_pseudo(n->cfg.ip, dst, COIL__IPPROTO_TCP,
				(uint16_t)(hlen + len));
	if (tcp->cfg.tx_tcp_csum) {
		while (sum >> 16)
			sum = (sum & 0xffff) + (sum >> 16);
		th->csum = htons((uint16_t)sum);   /* not inverted */
		p.flags |= COIL__PKT_TX_TCP_CSUM;
	} else {
		th->csum = coil__csum_fold(coil__csum_add(sum, th, hlen + len));
	}
	tcp->st.tx_segs++;
	tcp->st.tx_bytes += len;
	if (flags & TH_RST)
		tcp->st.resets_tx++;
	return coil__ipv4_output(n, &p, dst, COIL__IPPROTO_TCP);
}

/* Options of a SYN or SYN-ACK: MSS, and window scale when `ws`. */
static unsigned syn_opts(const struct coil__tcb *t, bool ws, uint8_t *o)
{
	uint16_t mss = (uint16_t)(t->tcp->net->cfg.mtu - COIL__IP_HLEN -
				  COIL__TCP_HLEN);

	o[0] = 2;
	o[1] = 4;
	o[2] = (uint8_t)(mss >> 8);
	o[3] = (uint8_t)mss;
	if (!ws)
		return 4;
	o[4] = 1;               /* NOP */
	o[5] = 3;
	o[6] = 3;
	o[7] = t->rcv_wscale;
	return 8;
}

/* One segment of connection t; an ACK unless it is the first SYN. */
static int tcb_xmit(struct coil__tcb *t, uint32_t seq, uint8_t flags,
		    uint32_t len)
{
	uint8_t o[8];
	unsigned optlen = 0;
	uint32_t win = rcv_window(t);
	uint16_t wfield;

	if (flags & TH_SYN) {
		optlen = syn_opts(t, t->state == TCP_SYN_SENT || t->ws_ok, o);
		wfield = (uint16_t)(win > 65535 ? 65535 : win);
	} else {
		wfield = (uint16_t)(win >> t->rcv_wscale);
	}
	if (t->state != TCP_SYN_SENT)
		flags |= TH_ACK;
	if (flags & TH_ACK) {
		t->ack_pending = 0;
		coil_timer_stop(&t->delack);
		if (!(flags & TH_SYN))
			t->rcv_adv = t->rcv_nxt + ((uint32_t)wfield << t->rcv_wscale);
		else
			t->rcv_adv = t->rcv_nxt + wfield;
	}
	if (len && coil__seq_lt(seq, t->snd_max))
		t->tcp->st.retrans_segs++;
	return coil__tcp_xmit(t->tcp, t->raddr, t->lport, t->rport, seq,
			      t->rcv_nxt, flags, wfield, o, optlen, t,
			      (size_t)(seq - t->snd_una), len);
}

static void send_ack(struct coil__tcb *t)
{
	(void)tcb_xmit(t, t->snd_nxt, 0, 0);
}

void coil__tcb_send_syn(struct coil__tcb *t)
{
	(void)tcb_xmit(t, t->iss, TH_SYN, 0);
	if (t->state == TCP_SYN_RCVD)
		t->tcp->st.synack_tx++;
}

static void rexmt_start(struct coil__tcb *t)
{
	coil_timer_start(&t->rexmt, t->rto);
}

/* Where the data ends (sequence of the FIN, when there is one). */
static uint32_t data_end(const struct coil__tcb *t)
{
	return t->snd_una + (uint32_t)t->snd_avail;
}

static bool can_send_data(const struct coil__tcb *t)
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

/* Send what the windows allow: data, then the FIN. */
void coil__tcp_output(struct coil__tcb *t)
{
	uint32_t end, wnd, sent = 0;

	if (!can_send_data(t))
		return;
	end = data_end(t);
	wnd = t->snd_wnd < t->cwnd ? t->snd_wnd : t->cwnd;
	for (;;) {
		uint32_t flight = t->snd_nxt - t->snd_una;
		uint32_t left = coil__seq_lt(t->snd_nxt, end) ? end - t->snd_nxt : 0;
		uint32_t room = wnd > flight ? wnd - flight : 0;
		uint32_t len = left < t->mss ? left : t->mss;
		uint8_t flags = 0;

		if (len > room)
			len = room;
		/* sender silly-window avoidance: no runt while more waits
		 * and something is in flight */
		if (len < left && len < t->mss && flight)
			len = 0;
		if (t->fin_wanted && t->snd_nxt + len == end &&
		    (len || !left) && coil__seq_le(t->snd_nxt, end) &&
		    !(t->fin_sent && t->snd_nxt == end + 1))
			flags = TH_FIN | TH_PSH;
		if (!len && !(flags & TH_FIN))
			break;
		if (len == left && len)
			flags |= TH_PSH;
		if (tcb_xmit(t, t->snd_nxt, flags, len))
			break;
		sent++;
		if (!t->rtt_timing && len &&
		    !coil__seq_lt(t->snd_nxt, t->snd_max)) {
			t->rtt_timing = true;
			t->rtt_seq = t->snd_nxt;
			t->rtt_start = coil__tcp_now(t->tcp);
		}
		t->snd_nxt += len;
		if (flags & TH_FIN) {
			t->snd_nxt++;
			if (!t->fin_sent) {
				t->fin_sent = true;
				if (t->state == TCP_ESTABLISHED)
					t->state = TCP_FIN_WAIT_1;
				else if (t->state == TCP_CLOSE_WAIT)
					t->state = TCP_LAST_ACK;
			}
		}
		if (coil__seq_lt(t->snd_max, t->snd_nxt))
			t->snd_max = t->snd_nxt;
		if (!coil_timer_active(&t->rexmt) || t->persist) {
			t->persist = false;
			rexmt_start(t);
		}
		if (flags & TH_FIN)
			break;
	}
	/* Data waits behind a zero window with nothing in flight: probe. */
	if (!sent && t->snd_nxt == t->snd_una && coil__seq_lt(t->snd_nxt, end) &&
	    t->snd_wnd == 0 && !coil_timer_active(&t->rexmt)) {
		t->persist = true;
		rexmt_start(t);
	}
}

/* ---- timers ---- */

static void die(struct coil__tcb *t, int err)
{
	/* The upper layer learns and lets go later (coil__tcp_close); an
	 * orphan or an embryo goes now. */
	held_drop_all(t);
	coil_timer_stop(&t->rexmt);
	coil_timer_stop(&t->delack);
	if (!t->uctx || t->closed_up) {
		coil__tcb_free(t);
		return;
	}
	tcb_unhash(t);
	t->dead = true;
	t->state = TCP_CLOSED;
	t->tcp->ops.gone(t->uctx, err);
}

static void send_rst_for(struct coil__tcb *t)
{
	(void)coil__tcp_xmit(t->tcp, t->raddr, t->lport, t->rport, t->snd_nxt,
			     0, TH_RST, 0, NULL, 0, t, 0, 0);
}

static void syn_timeout(struct coil__tcb *t)
{
	struct coil__tcp *tcp = t->tcp;

	if (++t->retries > tcp->cfg.syn_retries) {
		tcp->st.timeouts++;
		if (t->state == TCP_SYN_SENT && t->uctx) {
			void *u = t->uctx;

			tcb_unhash(t);
			t->dead = true;
			t->state = TCP_CLOSED;
			tcp->ops.connected(u, -ETIMEDOUT);
			return;
		}
		coil__tcb_free(t);
		return;
	}
	tcp->st.rto_fired++;
	tcp->st.retrans_segs++;
	t->rto = t->rto * 2 > tcp->cfg.rto_max_ms ? tcp->cfg.rto_max_ms
						  : t->rto * 2;
	coil__tcb_send_syn(t);
	rexmt_start(t);
}

static void tcb_timer(struct coil_timer *tm)
{
	struct coil__tcb *t = tm->data;
	struct coil__tcp *tcp = t->tcp;
	uint32_t flight;

	switch (t->state) {
	case TCP_SYN_SENT:
	case TCP_SYN_RCVD:
		syn_timeout(t);
		return;
	case TCP_TIME_WAIT:
		if (t->closed_up)
			coil__tcb_free(t);
		return;
	case TCP_FIN_WAIT_2:
		if (t->closed_up)
			coil__tcb_free(t);
		return;
	default:
		break;
	}
	if (t->dead)
		return;
	if (t->persist) {
		/* Zero-window probe: one byte beyond the window (RFC 9293
		 * 3.8.6.1), answered with an ACK carrying the window. */
		tcp->st.persist_probes++;
		if (t->snd_avail) {
			(void)tcb_xmit(t, t->snd_una, 0, 1);
			if (coil__seq_lt(t->snd_max, t->snd_una + 1))
				t->snd_max = t->snd_una + 1;
		}
		t->rto = t->rto * 2 > tcp->cfg.rto_max_ms ? tcp->cfg.rto_max_ms
							  : t->rto * 2;
		rexmt_start(t);
		return;
	}
	if (t->snd_una == t->snd_max)
		return;
	tcp->st.rto_fired++;
	if (++t->retries > tcp->cfg.max_retries) {
		tcp->st.timeouts++;
		send_rst_for(t);
		die(t, -ETIMEDOUT);
		return;
	}
	/* RFC 5681 (4): one segment, slow start again; RFC 6298 (5.5):
	 * back off. */
	flight = t->snd_max - t->snd_una;
	t->ssthresh = flight / 2 > 2u * t->mss ? flight / 2 : 2u * t->mss;
	t->cwnd = t->mss;
	t->snd_nxt = t->snd_una;
	t->in_recovery = false;
	t->dupacks = 0;
	t->rtt_timing = false;
	t->rto = t->rto * 2 > tcp->cfg.rto_max_ms ? tcp->cfg.rto_max_ms
						  : t->rto * 2;
	coil_timer_stop(&t->rexmt);
	coil__tcp_output(t);
	if (!coil_timer_active(&t->rexmt))
		rexmt_start(t);
}

static void delack_timer(struct coil_timer *tm)
{
	struct coil__tcb *t = tm->data;

	if (t->ack_pending && !t->dead) {
		t->tcp->st.delacks++;
		send_ack(t);
	}
}

/* ---- RTT (RFC 6298) ---- */

void coil__tcb_rtt_sample(struct coil__tcb *t, uint32_t r)
{
	const struct coil__tcp_cfg *c = &t->tcp->cfg;
	uint32_t rto;

	if (!r)
		r = 1;
	if (!t->srtt8) {
		t->srtt8 = r << 3;
		t->rttvar4 = r << 1;
	} else {
		int32_t d = (int32_t)r - (int32_t)(t->srtt8 >> 3);

		if (d < 0)
			d = -d;
		/* rttvar = 3/4 rttvar + 1/4 |d|; srtt = 7/8 srtt + 1/8 r */
		t->rttvar4 = t->rttvar4 - (t->rttvar4 >> 2) + (uint32_t)d;
		t->srtt8 = t->srtt8 - (t->srtt8 >> 3) + r;
	}
	rto = (t->srtt8 >> 3) + (t->rttvar4 > 1 ? t->rttvar4 : 1);
	if (rto < c->rto_min_ms)
		rto = c->rto_min_ms;
	if (rto > c->rto_max_ms)
		rto = c->rto_max_ms;
	t->rto = rto;
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

static void pending_add(struct coil__tcb *t)
{
	if (t->pending)
		return;
	t->pending = true;
	t->pnext = t->tcp->pending;
	t->tcp->pending = t;
}

void coil__tcp_recv_arm(struct coil__tcb *t, bool on)
{
	t->rx_armed = on;
	if (on && (t->rq || (t->eof_due && !t->eof_done)))
		pending_add(t);
}

void coil__tcp_shutdown(struct coil__tcb *t)
{
	if (t->dead || t->fin_wanted)
		return;
	t->fin_wanted = true;
	coil__tcp_output(t);
}

static void tw_add(struct coil__tcb *t)
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

void coil__tcp_close(struct coil__tcb *t, bool reset)
{
	t->closed_up = true;
	t->rx_armed = false;
	pending_unlink(t);
	if (t->dead || t->state == TCP_CLOSED) {
		coil__tcb_free(t);
		return;
	}
	t->uctx = NULL;
	t->orphan = true;
	t->snd_avail = 0;
	if (t->snd_nxt != t->snd_una && !t->fin_sent)
		reset = true;   /* data never acknowledged: cannot keep it */
	/* Unread input is dropped, not answered with a reset (RFC 2525 2.17
	 * would): the connection core closes knowing it (a lingering close
	 * that ended, an HTTP error sent while the body still comes), and a
	 * reset would make the peer's kernel discard the answer it has not
	 * read yet. What still arrives is acknowledged and dropped until the
	 * peer's FIN or the FIN_WAIT_2 limit. */
	if (t->rq || t->ooo) {
		t->tcp->st.drop_orphan += t->held_pkts;
		held_drop_all(t);
	}
	if (reset || t->state == TCP_SYN_SENT) {
		if (t->state != TCP_SYN_SENT)
			send_rst_for(t);
		coil__tcb_free(t);
		return;
	}
	switch (t->state) {
	case TCP_TIME_WAIT:
		tw_add(t);
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
		if (more && !t->dead && can_send_data(t)) {
			/* Window update when space opened by 2 segments or
			 * half the buffer (RFC 1122 4.2.3.3). */
			uint32_t adv = t->rcv_adv - t->rcv_nxt;
			uint32_t win = rcv_window(t);

			if (win >= adv + 2u * t->mss ||
			    win >= adv + t->tcp->cfg.rcv_buf / 2)
				send_ack(t);
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
		held_free(tcp, h);
	}
	if (t->rx_armed && !t->rq && t->eof_due && !t->eof_done && t->uctx) {
		t->eof_done = true;
		tcp->ops.eof(t->uctx);
	}
}

/* ---- input ---- */

static void time_wait(struct coil__tcb *t)
{
	t->state = TCP_TIME_WAIT;
	coil_timer_stop(&t->delack);
	coil_timer_start(&t->rexmt, 2u * t->tcp->cfg.msl_ms);
	if (t->closed_up)
		tw_add(t);
}

/* Take in the in-order segment h (payload h->len at rcv_nxt). */
static void take_in_order(struct coil__tcb *t, struct coil__tcp_held *h)
{
	if (t->eof_due) {
		/* beyond the peer's FIN: a peer that contradicts itself */
		t->tcp->st.drop_window++;
		held_free(t->tcp, h);
		return;
	}
	t->rcv_nxt += h->len;
	if (h->fin) {
		t->rcv_nxt++;
		t->eof_due = true;
	}
	if (t->orphan && h->len) {
		/* Closed here: nobody will read it. */
		t->tcp->st.drop_orphan++;
		held_free(t->tcp, h);
		return;
	}
	if (t->rx_armed && !t->rq && t->uctx) {
		if (h->len)
			t->tcp->ops.recv(t->uctx, h->p.data + h->off, h->len);
		held_free(t->tcp, h);
		return;
	}
	h->next = NULL;
	if (t->rq_tail)
		t->rq_tail->next = h;
	else
		t->rq = h;
	t->rq_tail = h;
	t->held_bytes += h->len;
	t->held_pkts++;
	if (t->rx_armed)
		pending_add(t);
}

/* Insert into the out-of-order queue (sorted, no overlap kept: bytes
 * already held are trimmed away). Returns false if it was not kept. */
static bool ooo_insert(struct coil__tcb *t, struct coil__tcp_held *h)
{
	struct coil__tcp_held **pp = &t->ooo;

	if (t->held_pkts >= t->tcp->cfg.rx_pkts_max)
		return false;
	while (*pp && coil__seq_le((*pp)->seq + (*pp)->len, h->seq))
		pp = &(*pp)->next;
	if (*pp) {
		struct coil__tcp_held *nx = *pp;
		uint32_t end = h->seq + h->len;

		if (coil__seq_le(nx->seq, h->seq)) {
			/* starts inside nx: keep only what goes beyond */
			uint32_t skip = nx->seq + nx->len - h->seq;

			if (skip >= h->len)
				return false;   /* all duplicate */
			h->off += skip;
			h->len -= skip;
			h->seq += skip;
			pp = &nx->next;
			nx = *pp;
			end = h->seq + h->len;
		}
		if (nx && coil__seq_lt(nx->seq, end)) {
			/* runs into nx: cut the tail */
			h->len = nx->seq - h->seq;
			h->fin = false;
			if (!h->len)
				return false;
		}
	}
	h->next = *pp;
	*pp = h;
	t->held_bytes += h->len;
	t->held_pkts++;
	t->tcp->st.ooo_queued++;
	return true;
}

/* Move what became in order from the out-of-order queue. */
static void ooo_drain(struct coil__tcb *t)
{
	struct coil__tcp_held *h;

	while ((h = t->ooo) && coil__seq_le(h->seq, t->rcv_nxt)) {
		uint32_t skip = t->rcv_nxt - h->seq;

		t->ooo = h->next;
		t->held_bytes -= h->len;
		t->held_pkts--;
		if (skip > h->len || (skip == h->len && !h->fin)) {
			held_free(t->tcp, h);
			continue;
		}
		h->off += skip;
		h->len -= skip;
		h->seq += skip;
		take_in_order(t, h);
	}
}

static void reset_rx(struct coil__tcb *t)
{
	t->tcp->st.resets_rx++;
	switch (t->state) {
	case TCP_SYN_RCVD:
		if (!t->uctx) {
			coil__tcb_free(t);
			return;
		}
		break;
	case TCP_CLOSING:
	case TCP_LAST_ACK:
	case TCP_TIME_WAIT:
		if (!t->uctx) {
			coil__tcb_free(t);
			return;
		}
		break;
	default:
		break;
	}
	die(t, -ECONNRESET);
}

static void challenge_ack(struct coil__tcb *t)
{
	t->tcp->st.challenge_acks++;
	send_ack(t);
}

static void ack_data(struct coil__tcb *t, uint32_t ack, bool *fin_acked)
{
	struct coil__tcp *tcp = t->tcp;
	uint32_t acked = ack - t->snd_una;
	uint32_t data = acked > t->snd_avail ? (uint32_t)t->snd_avail : acked;
	uint32_t mss = t->mss;

	if (t->rtt_timing && coil__seq_lt(t->rtt_seq, ack)) {
		t->rtt_timing = false;
		coil__tcb_rtt_sample(t, (uint32_t)(coil__tcp_now(tcp) - t->rtt_start));
	}
	t->retries = 0;
	if (t->in_recovery) {
		if (coil__seq_le(t->recover, ack)) {
			/* full acknowledgement: leave recovery (RFC 6582) */
			uint32_t flight = t->snd_max - ack;

			t->cwnd = t->ssthresh < flight + mss ? t->ssthresh
							     : flight + mss;
			t->in_recovery = false;
			t->dupacks = 0;
		} else {
			/* partial: retransmit the next hole, deflate */
			t->snd_una = ack;
			t->snd_avail -= data;
			if (t->uctx && data)
				tcp->ops.acked(t->uctx, data);
			(void)tcb_xmit(t, ack, 0,
				       t->snd_avail < mss ? (uint32_t)t->snd_avail
							  : mss);
			t->cwnd = t->cwnd > acked ? t->cwnd - acked + mss : mss;
			rexmt_start(t);
			data = 0;
			acked = 0;
		}
	} else {
		t->dupacks = 0;
		if (t->cwnd < t->ssthresh)
			t->cwnd += acked < mss ? acked : mss;
		else
			t->cwnd += mss * mss / t->cwnd ? mss * mss / t->cwnd : 1;
	}
	if (acked) {
		t->snd_una = ack;
		t->snd_avail -= data;
		if (t->fin_sent && ack == t->snd_max)
			*fin_acked = true;
		if (t->uctx && data)
			tcp->ops.acked(t->uctx, data);
	}
	if (coil__seq_lt(t->snd_nxt, t->snd_una))
		t->snd_nxt = t->snd_una;
	if (t->snd_una == t->snd_max) {
		coil_timer_stop(&t->rexmt);
		t->persist = false;
	} else if (!t->persist) {
		rexmt_start(t);
	}
}

static void dup_ack(struct coil__tcb *t)
{
	struct coil__tcp *tcp = t->tcp;
	uint32_t mss = t->mss;

	tcp->st.dup_acks++;
	if (t->in_recovery) {
		t->cwnd += mss;   /* each dup ACK: a segment left the network */
		return;
	}
	if (++t->dupacks != 3)
		return;
	if (coil__seq_le(t->snd_una, t->recover) && t->recover != t->iss &&
	    coil__seq_lt(t->snd_una, t->recover))
		return;   /* RFC 6582 3.2 (1): no new recovery yet */
	{
		uint32_t flight = t->snd_max - t->snd_una;

		t->ssthresh = flight / 2 > 2u * mss ? flight / 2 : 2u * mss;
	}
	t->recover = t->snd_max;
	t->in_recovery = true;
	t->rtt_timing = false;
	tcp->st.fast_retrans++;
	(void)tcb_xmit(t, t->snd_una, 0,
		       t->snd_avail < mss ? (uint32_t)t->snd_avail : mss);
	t->cwnd = t->ssthresh + 3u * mss;
	rexmt_start(t);
}

/* A segment for an existing connection (not LISTEN). */
void coil__tcb_input(struct coil__tcb *t, struct coil__pkt *p,
		     const struct coil__tcp_seg *s)
{
	struct coil__tcp *tcp = t->tcp;
	uint32_t seq = s->seq, len = s->len, wnd, seglen;
	bool fin = s->flags & TH_FIN, fin_acked = false, acceptable;

	if (t->dead) {
		tcp->st.drop_no_conn++;
		goto drop;
	}
	if (t->state == TCP_SYN_SENT) {
		coil__tcb_syn_sent_input(t, p, s);
		return;
	}
	/* 1. sequence acceptability (RFC 9293 3.10.7.4) */
	seglen = len + (fin ? 1u : 0u) + ((s->flags & TH_SYN) ? 1u : 0u);
	wnd = coil__seq_lt(t->rcv_nxt, t->rcv_adv) ? t->rcv_adv - t->rcv_nxt : 0;
	if (rcv_space(t) > wnd)
		wnd = rcv_space(t);
	if (seglen == 0)
		acceptable = wnd == 0 ? seq == t->rcv_nxt
				      : coil__seq_le(t->rcv_nxt, seq) &&
						coil__seq_lt(seq, t->rcv_nxt + wnd);
	else
		acceptable = wnd != 0 &&
			     ((coil__seq_le(t->rcv_nxt, seq) &&
			       coil__seq_lt(seq, t->rcv_nxt + wnd)) ||
			      (coil__seq_le(t->rcv_nxt, seq + seglen - 1) &&
			       coil__seq_lt(seq + seglen - 1, t->rcv_nxt + wnd)));
	if (s->flags & TH_SYN && t->state == TCP_TIME_WAIT &&
	    coil__seq_lt(t->rcv_nxt, seq) && t->closed_up) {
		/* A new incarnation (RFC 6191 without timestamps). */
		coil__tcb_free(t);
		coil__tcp_listen_input(tcp, p, s);
		return;
	}
	if (!acceptable) {
		tcp->st.drop_window++;
		if (!(s->flags & TH_RST))
			send_ack(t);
		goto drop;
	}
	/* 2. RST: exact match resets, in window gets a challenge (RFC
	 * 5961 3.2) */
	if (s->flags & TH_RST) {
		if (seq == t->rcv_nxt)
			reset_rx(t);
		else
			challenge_ack(t);
		goto drop;
	}
	/* 4. SYN in a synchronized state: challenge (RFC 5961 4.2) */
	if (s->flags & TH_SYN) {
		if (t->state == TCP_SYN_RCVD && seq == t->irs) {
			coil__tcb_send_syn(t);   /* our SYN-ACK was lost */
			goto drop;
		}
		challenge_ack(t);
		goto drop;
	}
	/* 5. ACK */
	if (!(s->flags & TH_ACK)) {
		tcp->st.drop_hdr++;
		goto drop;
	}
	if (t->state == TCP_SYN_RCVD) {
		if (!(coil__seq_lt(t->snd_una, s->ack) &&
		      coil__seq_le(s->ack, t->snd_max))) {
			tcp->st.drop_ack++;
			(void)coil__tcp_xmit(tcp, t->raddr, t->lport, t->rport,
					     s->ack, 0, TH_RST, 0, NULL, 0, t,
					     0, 0);
			goto drop;
		}
		if (!coil__tcb_established(t, s))
			goto drop;
		seq = s->seq;
	}
	if (coil__seq_lt(t->snd_max, s->ack)) {
		/* acknowledges what we never sent */
		tcp->st.drop_ack++;
		send_ack(t);
		goto drop;
	}
	if (coil__seq_lt(t->snd_una, s->ack)) {
		ack_data(t, s->ack, &fin_acked);
	} else if (s->ack == t->snd_una && len == 0 && !fin &&
		   t->snd_max != t->snd_una &&
		   (uint32_t)s->win << t->snd_wscale == t->snd_wnd) {
		dup_ack(t);
	}
	if (t->state == TCP_CLOSED)
		goto drop;
	/* window update (RFC 9293 3.10.7.4, SND.WL1/WL2) */
	if (coil__seq_lt(t->snd_wl1, seq) ||
	    (t->snd_wl1 == seq && coil__seq_le(t->snd_wl2, s->ack))) {
		uint32_t old = t->snd_wnd;

		t->snd_wnd = (uint32_t)s->win << t->snd_wscale;
		t->snd_wl1 = seq;
		t->snd_wl2 = s->ack;
		if (t->snd_wnd && !old && t->persist) {
			t->persist = false;
			coil_timer_stop(&t->rexmt);
			t->rto = tcp->cfg.rto_init_ms;
			if (t->srtt8)
				coil__tcb_rtt_sample(t, t->srtt8 >> 3);
		}
	}
	if (fin_acked) {
		switch (t->state) {
		case TCP_FIN_WAIT_1:
			t->state = TCP_FIN_WAIT_2;
			coil_timer_stop(&t->rexmt);
			if (t->closed_up)
				coil_timer_start(&t->rexmt, tcp->cfg.fin_wait2_ms);
			break;
		case TCP_CLOSING:
			time_wait(t);
			break;
		case TCP_LAST_ACK:
			coil_timer_stop(&t->rexmt);
			if (t->closed_up) {
				coil__tcb_free(t);
				goto drop;
			}
			t->state = TCP_CLOSED;
			t->dead = true;
			tcb_unhash(t);
			break;
		default:
			break;
		}
	}
	if (t->state == TCP_TIME_WAIT) {
		/* a retransmitted FIN: ACK it again, wait 2 MSL again */
		if (fin) {
			send_ack(t);
			coil_timer_start(&t->rexmt, 2u * tcp->cfg.msl_ms);
		}
		goto drop;
	}
	/* 7. payload and FIN */
	if ((len || fin) && (t->state == TCP_ESTABLISHED ||
			     t->state == TCP_FIN_WAIT_1 ||
			     t->state == TCP_FIN_WAIT_2)) {
		struct coil__tcp_held *h;
		uint32_t off = s->off, right;

		if (coil__seq_lt(seq, t->rcv_nxt)) {
			uint32_t skip = t->rcv_nxt - seq;

			if (skip > len) {
				skip = len;
			}
			off += skip;
			len -= skip;
			seq += skip;
		}
		right = t->rcv_nxt + wnd;
		if (coil__seq_lt(right, seq + len)) {
			len = coil__seq_lt(seq, right) ? right - seq : 0;
			fin = false;
			t->ack_pending = 1;   /* tell it at once (below) */
		}
		if (!len && !fin) {
			send_ack(t);
			goto drop;
		}
		h = tcp->free_held;
		if (!h && tcp->held_bump < tcp->cfg.held_max) {
			h = &tcp->held[tcp->held_bump++];
			h->next = NULL;
			tcp->free_held = h;
		}
		if (!h) {
			tcp->st.drop_ooo++;
			send_ack(t);
			goto drop;
		}
		tcp->free_held = h->next;
		tcp->nheld_free--;
		h->next = NULL;
		h->p = *p;
		h->seq = seq;
		h->off = off;
		h->len = len;
		h->fin = fin;
		tcp->st.rx_bytes += len;
		if (seq == t->rcv_nxt) {
			bool filled = t->ooo != NULL, had_eof = t->eof_due;

			take_in_order(t, h);
			ooo_drain(t);
			if (t->state == TCP_CLOSED)
				return;
			if (t->eof_due && !had_eof) {
				switch (t->state) {
				case TCP_ESTABLISHED:
					t->state = TCP_CLOSE_WAIT;
					break;
				case TCP_FIN_WAIT_1:
					t->state = TCP_CLOSING;
					break;
				case TCP_FIN_WAIT_2:
					time_wait(t);
					break;
				default:
					break;
				}
			}
			if (t->eof_due && t->rx_armed && !t->rq)
				pending_add(t);
			if (t->eof_due || filled || t->orphan ||
			    ++t->ack_pending >= 2) {
				send_ack(t);
			} else if (!coil_timer_active(&t->delack)) {
				coil_timer_start(&t->delack, tcp->cfg.delack_ms);
			}
		} else {
			if (t->orphan || !ooo_insert(t, h)) {
				tcp->st.drop_ooo++;
				h->p.handle = NULL;
				held_free(tcp, h);
				send_ack(t);
				goto drop;
			}
			send_ack(t);   /* a duplicate ACK tells the sender */
		}
		coil__tcp_output(t);
		return;   /* the packet now belongs to h (or was freed) */
	}
	coil__tcp_output(t);
drop:
	tcp->net->io.free(tcp->net->io.ctx, p);
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

void coil__tcp_fini(struct coil__tcp *tcp)
{
	if (!tcp->tcbs)
		return;
	for (unsigned i = 0; i < tcp->tcb_bump; i++) {
		struct coil__tcb *t = &tcp->tcbs[i];

		coil_timer_stop(&t->rexmt);
		coil_timer_stop(&t->delack);
		if (t->tcp)
			held_drop_all(t);
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
