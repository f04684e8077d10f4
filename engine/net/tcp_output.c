/* SPDX-License-Identifier: MIT */
/*
 * TCP output: segments out (coil__tcp_xmit), what the windows allow,
 * retransmission and the connection timers (RTO, persist, SYN, TIME_WAIT,
 * FIN_WAIT_2, delayed ACK), RTT estimation.
 */
#include "tcp.h"
#include "tcp_internal.h"
#include "../core/internal.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- output ---- */

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
		if (t->obuf) {
			/* closed: TCP's own copy (orphan_keep in tcp.c) */
			assert(t->ooff + off + len <= t->olen);
			memcpy(p.data, t->obuf + t->ooff + off, len);
		} else {
			tcp->ops.copy(t->uctx, off, p.data, len);
		}
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
	uint16_t mss = coil__tcp_our_mss(t->tcp);

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
int coil__tcb_xmit(struct coil__tcb *t, uint32_t seq, uint8_t flags,
		    uint32_t len)
{
	uint8_t o[8];
	unsigned optlen = 0;
	uint32_t win = coil__tcb_rcv_window(t);
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

/* Retransmit what starts at snd_una: up to one MSS of data, with the FIN
 * when it comes right after (a lost FIN alone goes again as a FIN, not as
 * a bare ACK at its sequence). */
void coil__tcb_rexmit_una(struct coil__tcb *t)
{
	uint32_t avail = (uint32_t)t->snd_avail;
	uint32_t len = avail < t->mss ? avail : t->mss;
	bool fin = t->fin_sent && len == avail;

	if (!len && !fin)
		return;
	if (!len)
		t->tcp->st.retrans_segs++;   /* coil__tcb_xmit counts data */
	(void)coil__tcb_xmit(t, t->snd_una, fin ? TH_FIN | TH_PSH : 0, len);
}

void coil__tcb_send_syn(struct coil__tcb *t)
{
	(void)coil__tcb_xmit(t, t->iss, TH_SYN, 0);
	if (t->state == TCP_SYN_RCVD)
		t->tcp->st.synack_tx++;
}

/* Where the data ends (sequence of the FIN, when there is one). */
static uint32_t data_end(const struct coil__tcb *t)
{
	return t->snd_una + (uint32_t)t->snd_avail;
}

/* Send what the windows allow: data, then the FIN. */
void coil__tcp_output(struct coil__tcb *t)
{
	uint32_t end, wnd, sent = 0;

	if (!coil__tcb_can_send(t))
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
		if (coil__tcb_xmit(t, t->snd_nxt, flags, len))
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
			coil__tcb_rexmt_start(t);
		}
		if (flags & TH_FIN)
			break;
	}
	/* Data waits behind a zero window with nothing in flight: probe. */
	if (!sent && t->snd_nxt == t->snd_una && coil__seq_lt(t->snd_nxt, end) &&
	    t->snd_wnd == 0 && !coil_timer_active(&t->rexmt)) {
		t->persist = true;
		coil__tcb_rexmt_start(t);
	}
}

/* ---- timers ---- */

void coil__tcb_die(struct coil__tcb *t, int err)
{
	/* The upper layer learns and lets go later (coil__tcp_close); an
	 * orphan or an embryo goes now. */
	coil__tcb_held_drop_all(t);
	coil_timer_stop(&t->rexmt);
	coil_timer_stop(&t->delack);
	if (!t->uctx || t->closed_up) {
		coil__tcb_free(t);
		return;
	}
	coil__tcb_unhash(t);
	t->dead = true;
	t->state = TCP_CLOSED;
	t->tcp->ops.gone(t->uctx, err);
}

void coil__tcb_send_rst(struct coil__tcb *t)
{
	(void)coil__tcp_xmit(t->tcp, t->raddr, t->lport, t->rport, t->snd_nxt,
			     0, TH_RST, 0, NULL, 0, t, 0, 0);
}

/* RFC 6298 (5.5): double the RTO, up to rto_max_ms. */
static void rto_backoff(struct coil__tcb *t)
{
	uint32_t max = t->tcp->cfg.rto_max_ms;

	t->rto = t->rto * 2 > max ? max : t->rto * 2;
}

static void syn_timeout(struct coil__tcb *t)
{
	struct coil__tcp *tcp = t->tcp;

	if (++t->retries > tcp->cfg.syn_retries) {
		tcp->st.timeouts++;
		if (t->state == TCP_SYN_SENT && t->uctx) {
			void *u = t->uctx;

			coil__tcb_unhash(t);
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
	rto_backoff(t);
	coil__tcb_send_syn(t);
	coil__tcb_rexmt_start(t);
}

void coil__tcb_timer(struct coil_timer *tm)
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
		if (t->closed_up && ++t->retries > tcp->cfg.max_retries) {
			/* closed, and the window stays shut: give up */
			tcp->st.timeouts++;
			coil__tcb_send_rst(t);
			coil__tcb_die(t, -ETIMEDOUT);
			return;
		}
		if (t->snd_avail) {
			(void)coil__tcb_xmit(t, t->snd_una, 0, 1);
			if (coil__seq_lt(t->snd_max, t->snd_una + 1))
				t->snd_max = t->snd_una + 1;
		}
		rto_backoff(t);
		coil__tcb_rexmt_start(t);
		return;
	}
	if (t->snd_una == t->snd_max)
		return;
	tcp->st.rto_fired++;
	if (++t->retries > tcp->cfg.max_retries) {
		tcp->st.timeouts++;
		coil__tcb_send_rst(t);
		coil__tcb_die(t, -ETIMEDOUT);
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
	rto_backoff(t);
	coil_timer_stop(&t->rexmt);
	coil__tcp_output(t);
	if (!coil_timer_active(&t->rexmt))
		coil__tcb_rexmt_start(t);
}

void coil__tcb_delack_timer(struct coil_timer *tm)
{
	struct coil__tcb *t = tm->data;

	if (t->ack_pending && !t->dead) {
		t->tcp->st.delacks++;
		coil__tcb_send_ack(t);
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
