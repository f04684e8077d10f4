/* SPDX-License-Identifier: MIT */
/*
 * TCP input entry (header, checksum and option checks), listeners with a
 * bounded SYN queue, SYN cookies when it is full, RST for segments to
 * closed ports, active open, and the counters' text.
 *
 * SYN cookies: the SYN-ACK's ISN is a keyed hash of the 4-tuple, the
 * client's ISN and a 64-second counter, with the MSS (one of 8 values) in
 * its low 3 bits; a returning ACK with ack - 1 matching the hash for the
 * current or the previous counter becomes a connection. Window scaling is
 * off on such connections (the cookie has no room for it; no timestamps).
 */
#include "tcp_internal.h"
#include "../core/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static const uint16_t cookie_mss[8] = { 536, 1024, 1220, 1360, 1400, 1440,
					1452, 1460 };

#define COOKIE_PERIOD_MS 64000

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

static uint32_t keyed(const struct coil__tcp *tcp, uint64_t k, uint32_t raddr,
		      uint16_t rport, uint16_t lport, uint32_t a, uint32_t b)
{
	uint64_t h = mix(k ^ ((uint64_t)raddr << 32 | (uint32_t)rport << 16 |
			      lport));

	h = mix(h ^ tcp->secret[1] ^ ((uint64_t)a << 32 | b));
	return (uint32_t)(h >> 32);
}

void coil__tcp_secret_init(struct coil__tcp *tcp)
{
	if (getrandom(tcp->secret, sizeof(tcp->secret), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(tcp->secret)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		tcp->secret[0] = mix((uint64_t)ts.tv_nsec ^ (uintptr_t)tcp);
		tcp->secret[1] = mix(tcp->secret[0] ^ (uint64_t)ts.tv_sec);
	}
}

/* RFC 6528: a keyed hash of the 4-tuple plus a 4 µs clock. */
static uint32_t gen_iss(const struct coil__tcp *tcp, uint32_t raddr,
			uint16_t rport, uint16_t lport)
{
	return keyed(tcp, tcp->secret[0], raddr, rport, lport, 0, 0) +
	       (uint32_t)(coil__tcp_now(tcp) * 250);
}

static uint32_t cookie_make(const struct coil__tcp *tcp,
			    const struct coil__tcp_seg *s, uint64_t count,
			    unsigned idx)
{
	return (keyed(tcp, tcp->secret[0] + 1, s->src, s->sport, s->dport,
		      s->seq, (uint32_t)count) & ~7u) | idx;
}

/* The MSS a valid cookie carries, or 0. */
static uint16_t cookie_check(const struct coil__tcp *tcp,
			     const struct coil__tcp_seg *s)
{
	uint32_t isn = s->ack - 1;
	uint64_t count = coil__tcp_now(tcp) / COOKIE_PERIOD_MS;
	struct coil__tcp_seg syn = *s;

	syn.seq = s->seq - 1;   /* the client's ISN */
	for (unsigned i = 0; i < 2 && count >= i; i++)
		if (cookie_make(tcp, &syn, count - i, isn & 7) == isn)
			return cookie_mss[isn & 7];
	return 0;
}

/* ---- RST for what has no connection ---- */

static void rst_reply(struct coil__tcp *tcp, const struct coil__tcp_seg *s)
{
	uint32_t seglen = s->len + ((s->flags & TH_SYN) ? 1u : 0u) +
			  ((s->flags & TH_FIN) ? 1u : 0u);

	if (s->flags & TH_RST)
		return;   /* never answer a reset */
	if (s->flags & TH_ACK)
		(void)coil__tcp_xmit(tcp, s->src, s->dport, s->sport, s->ack,
				     0, TH_RST, 0, NULL, 0, NULL, 0, 0);
	else
		(void)coil__tcp_xmit(tcp, s->src, s->dport, s->sport, 0,
				     s->seq + seglen, TH_RST | TH_ACK, 0, NULL,
				     0, NULL, 0, 0);
}

/* ---- listeners ---- */

int coil__tcp_listen(struct coil__tcp *tcp, uint16_t port, void *lctx)
{
	int free_slot = -1;

	if (!port)
		return -EINVAL;
	for (int i = 0; i < COIL__TCP_MAX_LISTEN; i++) {
		if (tcp->lst[i].port == port)
			return -EADDRINUSE;
		if (!tcp->lst[i].port && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0)
		return -ENOSPC;
	tcp->lst[free_slot].port = port;
	tcp->lst[free_slot].lctx = lctx;
	tcp->lst[free_slot].nsyn = 0;
	return 0;
}

void coil__tcp_unlisten(struct coil__tcp *tcp, uint16_t port)
{
	for (int i = 0; i < COIL__TCP_MAX_LISTEN; i++)
		if (tcp->lst[i].port == port) {
			tcp->lst[i].port = 0;
			tcp->lst[i].lctx = NULL;
		}
}

static int find_listener(const struct coil__tcp *tcp, uint16_t port)
{
	for (int i = 0; i < COIL__TCP_MAX_LISTEN; i++)
		if (tcp->lst[i].port && tcp->lst[i].port == port)
			return i;
	return -1;
}

static void tcb_fill(struct coil__tcb *t, const struct coil__tcp_seg *s,
		     uint16_t mss, int li)
{
	struct coil__tcp *tcp = t->tcp;
	uint16_t mine = coil__tcp_our_mss(tcp);

	t->raddr = s->src;
	t->rport = s->sport;
	t->lport = s->dport;
	t->lidx = (uint8_t)(li + 1);
	t->state = TCP_SYN_RCVD;
	t->irs = s->seq;
	t->rcv_nxt = s->seq + 1;
	t->rcv_adv = t->rcv_nxt;
	t->mss = mss && mss < mine ? mss : mine;
	t->snd_wnd = s->win;
	t->snd_wl1 = s->seq;
	t->cwnd = 10u * t->mss;
}

static void syn_input(struct coil__tcp *tcp, const struct coil__tcp_seg *s,
		      int li)
{
	struct coil__tcb *t = NULL;

	tcp->st.syn_rx++;
	if (tcp->lst[li].nsyn < tcp->cfg.syn_backlog)
		t = coil__tcb_alloc(tcp);
	if (!t) {
		/* SYN queue (or table) full: answer statelessly. */
		uint16_t peer = s->mss ? s->mss : 536, mss;
		unsigned idx = 0;
		uint32_t isn;
		uint8_t o[4];
		uint32_t win = tcp->cfg.rcv_buf > 65535 ? 65535
							: tcp->cfg.rcv_buf;

		for (unsigned i = 0; i < 8; i++)
			if (cookie_mss[i] <= peer &&
			    cookie_mss[i] <= coil__tcp_our_mss(tcp))
				idx = i;
		mss = cookie_mss[idx];
		isn = cookie_make(tcp, s, coil__tcp_now(tcp) / COOKIE_PERIOD_MS,
				  idx);
		o[0] = 2;
		o[1] = 4;
		o[2] = (uint8_t)(mss >> 8);
		o[3] = (uint8_t)mss;
		tcp->st.cookies_tx++;
		(void)coil__tcp_xmit(tcp, s->src, s->dport, s->sport, isn,
				     s->seq + 1, TH_SYN | TH_ACK, (uint16_t)win,
				     o, sizeof(o), NULL, 0, 0);
		return;
	}
	tcb_fill(t, s, s->mss ? s->mss : 536, li);
	if (s->ws != 0xff) {
		t->ws_ok = true;
		t->snd_wscale = s->ws > 14 ? 14 : s->ws;
		t->rcv_wscale = tcp->rcv_wscale;
	}
	t->iss = gen_iss(tcp, s->src, s->sport, s->dport);
	t->snd_una = t->iss;
	t->snd_nxt = t->snd_max = t->iss + 1;
	t->recover = t->iss;
	tcp->lst[li].nsyn++;
	coil__tcb_hash(t);
	t->rtt_start = coil__tcp_now(tcp);
	coil__tcb_send_syn(t);
	coil_timer_start(&t->rexmt, t->rto);
}

bool coil__tcb_established(struct coil__tcb *t, const struct coil__tcp_seg *s)
{
	struct coil__tcp *tcp = t->tcp;
	int li = t->lidx - 1;
	void *u = NULL;

	if (!t->cookie)
		tcp->lst[li].nsyn--;
	t->state = TCP_ESTABLISHED;
	coil_timer_stop(&t->rexmt);
	if (!t->cookie && !t->retries)
		coil__tcb_rtt_sample(t, (uint32_t)(coil__tcp_now(tcp) -
						    t->rtt_start));
	t->retries = 0;
	t->snd_una = s->ack;
	t->snd_wnd = (uint32_t)s->win << t->snd_wscale;
	t->snd_wl1 = s->seq;
	t->snd_wl2 = s->ack;
	tcp->st.accepted++;
	if (tcp->lst[li].port == t->lport)
		u = tcp->ops.accepted(tcp->lst[li].lctx, t);
	if (!u) {
		(void)coil__tcp_xmit(tcp, t->raddr, t->lport, t->rport,
				     t->snd_nxt, t->rcv_nxt, TH_RST | TH_ACK, 0,
				     NULL, 0, NULL, 0, 0);
		coil__tcb_free(t);
		return false;
	}
	t->uctx = u;
	return true;
}

static void cookie_ack(struct coil__tcp *tcp, struct coil__pkt *p,
		       const struct coil__tcp_seg *s, int li)
{
	uint16_t mss = cookie_check(tcp, s);
	struct coil__tcb *t;

	if (!mss) {
		tcp->st.drop_cookie++;
		rst_reply(tcp, s);
		goto drop;
	}
	t = coil__tcb_alloc(tcp);
	if (!t) {
		tcp->st.drop_nomem++;
		goto drop;
	}
	tcp->st.cookies_ok++;
	t->cookie = true;
	{
		struct coil__tcp_seg syn = *s;

		syn.seq = s->seq - 1;
		tcb_fill(t, &syn, mss, li);
	}
	t->iss = s->ack - 1;
	t->snd_una = t->iss;
	t->snd_nxt = t->snd_max = s->ack;
	t->recover = t->iss;
	/* what the SYN-ACK advertised */
	t->rcv_adv = t->rcv_nxt +
		     (tcp->cfg.rcv_buf > 65535 ? 65535 : tcp->cfg.rcv_buf);
	coil__tcb_hash(t);
	coil__tcb_input(t, p, s);
	return;
drop:
	tcp->net->io.free(tcp->net->io.ctx, p);
}

void coil__tcp_listen_input(struct coil__tcp *tcp, struct coil__pkt *p,
			    const struct coil__tcp_seg *s)
{
	int li = find_listener(tcp, s->dport);

	if (li < 0 || (s->flags & TH_RST)) {
		tcp->st.drop_no_conn++;
		rst_reply(tcp, s);
		goto drop;
	}
	if ((s->flags & (TH_SYN | TH_ACK)) == TH_SYN) {
		syn_input(tcp, s, li);
		goto drop;
	}
	if ((s->flags & (TH_SYN | TH_ACK)) == TH_ACK) {
		cookie_ack(tcp, p, s, li);
		return;
	}
	tcp->st.drop_no_conn++;
	rst_reply(tcp, s);
drop:
	tcp->net->io.free(tcp->net->io.ctx, p);
}

/* ---- active open ---- */

struct coil__tcb *coil__tcp_connect(struct coil__tcp *tcp, uint32_t dst,
				    uint16_t dport, void *uctx, int *err)
{
	const struct coil__net_cfg *nc = &tcp->net->cfg;
	struct coil__tcb *t;
	uint16_t port = 0;

	if ((dst & nc->mask) != (nc->ip & nc->mask) && !nc->gw) {
		*err = -EHOSTUNREACH;
		return NULL;
	}
	for (unsigned i = 0; i < 28232; i++) {
		uint16_t cand = tcp->next_port;

		tcp->next_port = cand >= 60999 ? 32768 : (uint16_t)(cand + 1);
		if (!coil__tcp_lookup(tcp, dst, dport, htons(cand)) &&
		    find_listener(tcp, htons(cand)) < 0 &&
		    (!tcp->cfg.port_ok ||
		     tcp->cfg.port_ok(tcp->cfg.port_ctx, dst, dport,
				      htons(cand)))) {
			port = htons(cand);
			break;
		}
	}
	if (!port) {
		*err = -EADDRNOTAVAIL;
		return NULL;
	}
	t = coil__tcb_alloc(tcp);
	if (!t) {
		*err = -ENOMEM;
		return NULL;
	}
	t->raddr = dst;
	t->rport = dport;
	t->lport = port;
	t->state = TCP_SYN_SENT;
	t->uctx = uctx;
	t->mss = coil__tcp_our_mss(tcp);
	t->rcv_wscale = tcp->rcv_wscale;
	t->iss = gen_iss(tcp, dst, dport, port);
	t->snd_una = t->iss;
	t->snd_nxt = t->snd_max = t->iss + 1;
	t->recover = t->iss;
	t->cwnd = 10u * t->mss;
	coil__tcb_hash(t);
	t->rtt_start = coil__tcp_now(tcp);
	coil__tcb_send_syn(t);
	coil_timer_start(&t->rexmt, t->rto);
	return t;
}

void coil__tcb_syn_sent_input(struct coil__tcb *t, struct coil__pkt *p,
			      const struct coil__tcp_seg *s)
{
	struct coil__tcp *tcp = t->tcp;
	bool ack_ok = coil__seq_lt(t->iss, s->ack) &&
		      coil__seq_le(s->ack, t->snd_max);
	uint16_t mine = coil__tcp_our_mss(tcp);

	if ((s->flags & TH_ACK) && !ack_ok) {
		tcp->st.drop_ack++;
		rst_reply(tcp, s);
		goto drop;
	}
	if (s->flags & TH_RST) {
		if (s->flags & TH_ACK) {
			void *u = t->uctx;

			tcp->st.resets_rx++;
			coil_timer_stop(&t->rexmt);
			t->dead = true;
			t->state = TCP_CLOSED;
			/* unhashed by the free at coil__tcp_close */
			if (u)
				tcp->ops.connected(u, -ECONNREFUSED);
		}
		goto drop;
	}
	if (!(s->flags & TH_SYN) || !(s->flags & TH_ACK)) {
		/* simultaneous open is not supported */
		tcp->st.drop_hdr++;
		goto drop;
	}
	t->irs = s->seq;
	t->rcv_nxt = s->seq + 1;
	t->rcv_adv = t->rcv_nxt;
	t->snd_una = s->ack;
	if (s->ws != 0xff) {
		t->ws_ok = true;
		t->snd_wscale = s->ws > 14 ? 14 : s->ws;
	} else {
		t->rcv_wscale = 0;
	}
	t->mss = s->mss && s->mss < mine ? s->mss : (s->mss ? mine : 536);
	t->cwnd = 10u * t->mss;
	t->snd_wnd = s->win;
	t->snd_wl1 = s->seq;
	t->snd_wl2 = s->ack;
	t->state = TCP_ESTABLISHED;
	coil_timer_stop(&t->rexmt);
	if (!t->retries)
		coil__tcb_rtt_sample(t, (uint32_t)(coil__tcp_now(tcp) -
						    t->rtt_start));
	t->retries = 0;
	tcp->st.connected++;
	(void)coil__tcp_xmit(tcp, t->raddr, t->lport, t->rport, t->snd_nxt,
			     t->rcv_nxt, TH_ACK,
			     (uint16_t)((tcp->cfg.rcv_buf >> t->rcv_wscale) > 65535
						? 65535
						: tcp->cfg.rcv_buf >> t->rcv_wscale),
			     NULL, 0, NULL, 0, 0);
	t->rcv_adv = t->rcv_nxt + (tcp->cfg.rcv_buf > ((uint32_t)65535 << t->rcv_wscale)
					   ? (uint32_t)65535 << t->rcv_wscale
					   : tcp->cfg.rcv_buf);
	if (t->uctx)
		tcp->ops.connected(t->uctx, 0);
	if (t->state == TCP_ESTABLISHED)
		coil__tcp_output(t);
drop:
	tcp->net->io.free(tcp->net->io.ctx, p);
}

/* ---- entry ---- */

/* Options: MSS and window scale are read; the rest (SACK permitted,
 * timestamps) is skipped. False when malformed. */
static bool parse_opts(const uint8_t *o, uint32_t n, bool syn,
		       struct coil__tcp_seg *s)
{
	uint32_t i = 0;

	while (i < n) {
		uint8_t kind = o[i], len;

		if (kind == 0)
			break;
		if (kind == 1) {
			i++;
			continue;
		}
		if (i + 1 >= n)
			return false;
		len = o[i + 1];
		if (len < 2 || i + len > n)
			return false;
		if (kind == 2 && syn) {
			if (len != 4)
				return false;
			s->mss = (uint16_t)(o[i + 2] << 8 | o[i + 3]);
			if (s->mss < 64)
				s->mss = 64;
		} else if (kind == 3 && syn) {
			if (len != 3)
				return false;
			s->ws = o[i + 2];
		}
		i += len;
	}
	return true;
}

void coil__tcp_input(struct coil__tcp *tcp, struct coil__pkt *p,
		     struct coil__ip_hdr *ip, uint32_t l4len)
{
	struct coil__tcp_hdr *th = (struct coil__tcp_hdr *)(ip + 1);
	struct coil__tcp_seg s;
	struct coil__tcb *t;
	uint32_t doff;

	tcp->st.rx_segs++;
	if (l4len < COIL__TCP_HLEN) {
		tcp->st.drop_short++;
		goto drop;
	}
	doff = (uint32_t)(th->off >> 4) * 4;
	if (doff < COIL__TCP_HLEN || doff > l4len) {
		tcp->st.drop_hdr++;
		goto drop;
	}
	if ((p->flags & COIL__PKT_RX_L4_BAD) ||
	    (!(p->flags & COIL__PKT_RX_L4_GOOD) &&
	     coil__csum_fold(coil__csum_add(
		     coil__csum_pseudo(ip->src, ip->dst, COIL__IPPROTO_TCP,
				       (uint16_t)l4len),
		     th, l4len)) != 0)) {
		tcp->st.drop_csum++;
		goto drop;
	}
	memset(&s, 0, sizeof(s));
	s.flags = th->flags & 0x3f;
	if ((s.flags & TH_SYN) && (s.flags & (TH_FIN | TH_RST))) {
		tcp->st.drop_hdr++;
		goto drop;
	}
	s.ws = 0xff;
	if (!parse_opts((const uint8_t *)(th + 1), doff - COIL__TCP_HLEN,
			s.flags & TH_SYN, &s)) {
		tcp->st.drop_opts++;
		goto drop;
	}
	if (ip->dst != tcp->net->cfg.ip || !th->sport || !th->dport) {
		/* broadcast, or port 0: never a connection */
		tcp->st.drop_no_conn++;
		goto drop;
	}
	s.src = ip->src;
	s.sport = th->sport;
	s.dport = th->dport;
	s.seq = ntohl(th->seq);
	s.ack = ntohl(th->ack);
	s.win = ntohs(th->win);
	s.off = (uint32_t)((uint8_t *)th + doff - p->data);
	s.len = l4len - doff;
	t = coil__tcp_lookup(tcp, s.src, s.sport, s.dport);
	if (t)
		coil__tcb_input(t, p, &s);
	else
		coil__tcp_listen_input(tcp, p, &s);
	return;
drop:
	tcp->net->io.free(tcp->net->io.ctx, p);
}

void coil__tcp_format_stats(const struct coil__tcp_stats *s, char *buf,
			    size_t n)
{
#define F(x) (unsigned long long)s->x
	snprintf(buf, n,
		 "tcp: rx %llu segs (%llu B), tx %llu segs (%llu B), "
		 "accepted %llu connected %llu closed %llu, syn_rx %llu "
		 "synack_tx %llu cookies_tx %llu cookies_ok %llu, resets_rx "
		 "%llu resets_tx %llu; drops: tcp_short %llu tcp_hdr %llu "
		 "tcp_opts %llu tcp_csum %llu no_conn %llu window %llu ack "
		 "%llu ooo %llu nomem %llu cookie %llu orphan %llu orphan_rst "
		 "%llu; "
		 "challenge_acks %llu dup_acks %llu; rto_fired %llu "
		 "retrans_segs %llu fast_retrans %llu persist_probes %llu "
		 "timeouts %llu delacks %llu ooo_queued %llu tw_recycled %llu "
		 "tcp_nobufs %llu",
		 F(rx_segs), F(rx_bytes), F(tx_segs), F(tx_bytes), F(accepted),
		 F(connected), F(closed), F(syn_rx), F(synack_tx),
		 F(cookies_tx), F(cookies_ok), F(resets_rx), F(resets_tx),
		 F(drop_short), F(drop_hdr), F(drop_opts), F(drop_csum),
		 F(drop_no_conn), F(drop_window), F(drop_ack), F(drop_ooo),
		 F(drop_nomem), F(drop_cookie), F(drop_orphan), F(orphan_rst),
		 F(challenge_acks), F(dup_acks), F(rto_fired), F(retrans_segs),
		 F(fast_retrans), F(persist_probes), F(timeouts), F(delacks),
		 F(ooo_queued), F(tw_recycled), F(tx_nobufs));
#undef F
}
