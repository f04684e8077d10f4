/* SPDX-License-Identifier: MIT */
/*
 * TCP input for known connections (RFC 9293 3.10.7): acceptability, RST
 * and SYN checks, ACK processing with fast retransmit and NewReno, window
 * updates, in-order and out-of-order payload, FIN.
 */
#include "tcp.h"
#include "tcp_internal.h"
#include "../core/internal.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- input ---- */

static void time_wait(struct coil__tcb *t)
{
	t->state = TCP_TIME_WAIT;
	coil_timer_stop(&t->delack);
	coil_timer_start(&t->rexmt, 2u * t->tcp->cfg.msl_ms);
	if (t->closed_up)
		coil__tcb_tw_add(t);
}

/* Take in the in-order segment h (payload h->len at rcv_nxt). */
static void take_in_order(struct coil__tcb *t, struct coil__tcp_held *h)
{
	if (t->eof_due) {
		/* beyond the peer's FIN: a peer that contradicts itself */
		t->tcp->st.drop_window++;
		coil__tcp_held_free(t->tcp, h);
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
		coil__tcp_held_free(t->tcp, h);
		return;
	}
	if (t->rx_armed && !t->rq && t->uctx) {
		if (h->len)
			t->tcp->ops.recv(t->uctx, h->p.data + h->off, h->len);
		coil__tcp_held_free(t->tcp, h);
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
		coil__tcb_pending_add(t);
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
			coil__tcp_held_free(t->tcp, h);
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
	coil__tcb_die(t, -ECONNRESET);
}

static void challenge_ack(struct coil__tcb *t)
{
	t->tcp->st.challenge_acks++;
	coil__tcb_send_ack(t);
}

/* n bytes of the send buffer acknowledged: the upper layer's, or the
 * closed connection's own copy. */
static void snd_acked(struct coil__tcb *t, uint32_t n)
{
	t->snd_avail -= n;
	if (t->obuf) {
		t->ooff += n;
		if (!t->snd_avail)
			coil__tcb_orphan_release(t);
	} else if (t->uctx && n) {
		t->tcp->ops.acked(t->uctx, n);
	}
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
			snd_acked(t, data);
			coil__tcb_rexmit_una(t);
			t->cwnd = t->cwnd > acked ? t->cwnd - acked + mss : mss;
			coil__tcb_rexmt_start(t);
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
		snd_acked(t, data);
		if (t->fin_sent && ack == t->snd_max)
			*fin_acked = true;
	}
	if (coil__seq_lt(t->snd_nxt, t->snd_una))
		t->snd_nxt = t->snd_una;
	if (t->snd_una == t->snd_max) {
		coil_timer_stop(&t->rexmt);
		t->persist = false;
	} else if (!t->persist) {
		coil__tcb_rexmt_start(t);
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
	coil__tcb_rexmit_una(t);
	t->cwnd = t->ssthresh + 3u * mss;
	coil__tcb_rexmt_start(t);
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
	if (coil__tcb_rcv_space(t) > wnd)
		wnd = coil__tcb_rcv_space(t);
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
			coil__tcb_send_ack(t);
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
		coil__tcb_send_ack(t);
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
			coil__tcb_unhash(t);
			break;
		default:
			break;
		}
	}
	if (t->state == TCP_TIME_WAIT) {
		/* a retransmitted FIN: ACK it again, wait 2 MSL again */
		if (fin) {
			coil__tcb_send_ack(t);
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
			coil__tcb_send_ack(t);
			goto drop;
		}
		h = coil__tcp_held_get(tcp);
		if (!h) {
			tcp->st.drop_ooo++;
			coil__tcb_send_ack(t);
			goto drop;
		}
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
				coil__tcb_pending_add(t);
			if (t->eof_due || filled || t->orphan ||
			    ++t->ack_pending >= 2) {
				coil__tcb_send_ack(t);
			} else if (!coil_timer_active(&t->delack)) {
				coil_timer_start(&t->delack, tcp->cfg.delack_ms);
			}
		} else {
			if (t->orphan || !ooo_insert(t, h)) {
				tcp->st.drop_ooo++;
				h->p.handle = NULL;
				coil__tcp_held_free(tcp, h);
				coil__tcb_send_ack(t);
				goto drop;
			}
			coil__tcb_send_ack(t);   /* a duplicate ACK tells the sender */
		}
		coil__tcp_output(t);
		return;   /* the packet now belongs to h (or was freed) */
	}
	coil__tcp_output(t);
drop:
	tcp->net->io.free(tcp->net->io.ctx, p);
}
