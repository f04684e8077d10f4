/* SPDX-License-Identifier: MIT */
/*
 * coil's TCP (engine/net/tcp*.c) without DPDK: canned segments from a
 * scripted peer go in through the packet layer in malloc'd buffers sized
 * to the frame, transmitted frames are captured and parsed, timers run on
 * a fake clock (a bare loop's wheel). Handshake, every transition, RTO
 * and back-off, fast retransmit and NewReno, zero window and persist, RST
 * in each state, sequence wrap-around, bad segments dropped and counted,
 * a SYN flood answered with cookies while a good client connects, active
 * open, TCP checksum offload (completed here as a port would).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "net/net.h"
#include "net/tcp.h"
#include "../net_frames.h"

#define MAXTX 256
#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10

static const uint8_t MY_MAC[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t PEER_MAC[6] = { 0x02, 0, 0, 0, 0, 0x02 };
#define MY_IP 0x0a000001u
#define PEER_IP 0x0a000002u
#define PORT 80

/* ---- packet buffers and capture ---- */

struct txseg {
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;
	uint16_t mss;      /* option, 0: none */
	int ws;            /* option, -1: none */
	uint32_t len;
	uint8_t data[2048];
};

static struct {
	struct txseg tx[MAXTX];
	unsigned n;
	unsigned live;
	unsigned arp;
	unsigned offloaded;   /* TCP checksum left to the port */
	bool fail_alloc;
} cap;

static int t_alloc(void *ctx, struct coil__pkt *p)
{
	uint8_t *b;

	(void)ctx;
	if (cap.fail_alloc)
		return -ENOBUFS;
	b = malloc(NETF_BUF);
	assert_non_null(b);
	netf_pkt_init(p, b);
	cap.live++;
	return 0;
}

static void t_free(void *ctx, struct coil__pkt *p)
{
	(void)ctx;
	free(p->handle);
	p->handle = NULL;
	cap.live--;
}

static void t_xmit(void *ctx, struct coil__pkt *p)
{
	const struct coil__ip_hdr *ip =
		(const struct coil__ip_hdr *)(p->data + COIL__ETH_HLEN);
	const struct coil__tcp_hdr *th = (const struct coil__tcp_hdr *)(ip + 1);
	uint32_t l4 = ntohs(ip->tot_len) - COIL__IP_HLEN;
	uint32_t doff = (uint32_t)(th->off >> 4) * 4;
	struct txseg *s;
	const uint8_t *o = (const uint8_t *)(th + 1);

	if (ntohs(((const struct coil__eth_hdr *)p->data)->type) ==
	    COIL__ETH_P_ARP) {
		cap.arp++;   /* resolving the peer (active open) */
		t_free(ctx, p);
		return;
	}
	assert_int_equal(ip->proto, COIL__IPPROTO_TCP);
	if (p->flags & COIL__PKT_TX_TCP_CSUM) {
		/* The port finishes it: the field holds the pseudo-header's
		 * sum, not inverted; the NIC sums the segment over it. */
		struct coil__tcp_hdr *w = (struct coil__tcp_hdr *)(void *)
			(p->data + COIL__ETH_HLEN + COIL__IP_HLEN);
		uint32_t ps = coil__csum_pseudo(ip->src, ip->dst,
						COIL__IPPROTO_TCP, (uint16_t)l4);

		while (ps >> 16)
			ps = (ps & 0xffff) + (ps >> 16);
		assert_int_equal(ntohs(w->csum), ps);
		w->csum = coil__csum_fold(coil__csum_add(0, w, l4));
		cap.offloaded++;
	}
	/* every checksum we send is right */
	assert_true(netf_tcp_csum_ok(ip));
	assert_true(cap.n < MAXTX);
	s = &cap.tx[cap.n++];
	memset(s, 0, sizeof(*s));
	s->sport = ntohs(th->sport);
	s->dport = ntohs(th->dport);
	s->seq = ntohl(th->seq);
	s->ack = ntohl(th->ack);
	s->flags = th->flags;
	s->win = ntohs(th->win);
	s->ws = -1;
	for (uint32_t i = 0; i + COIL__TCP_HLEN < doff;) {
		if (o[i] == 0)
			break;
		if (o[i] == 1) {
			i++;
			continue;
		}
		if (o[i] == 2)
			s->mss = (uint16_t)(o[i + 2] << 8 | o[i + 3]);
		if (o[i] == 3)
			s->ws = o[i + 2];
		i += o[i + 1];
	}
	s->len = l4 - doff;
	memcpy(s->data, (const uint8_t *)th + doff, s->len);
	t_free(ctx, p);
}

/* ---- the upper layer ---- */

struct up {
	struct coil__tcb *t;
	uint8_t rx[1 << 18];
	size_t rx_len;
	bool eof;
	int gone;           /* 0 or the error */
	int connected;      /* 1: not yet; 0 or -errno */
	uint8_t tx[1 << 18];
	size_t tx_base;     /* acknowledged so far */
	size_t tx_len;      /* written so far */
	bool arm_on_accept;
};

static struct up ups[64];
static unsigned nups;
static bool refuse;

static void *u_accepted(void *lctx, struct coil__tcb *t)
{
	struct up *u;

	assert_ptr_equal(lctx, &nups);
	if (refuse || nups == 64)
		return NULL;
	u = &ups[nups++];
	memset(u, 0, sizeof(*u));
	u->t = t;
	u->connected = 1;
	coil__tcp_recv_arm(t, true);
	return u;
}

static void u_connected(void *uctx, int res)
{
	((struct up *)uctx)->connected = res;
}

static void u_recv(void *uctx, const uint8_t *data, size_t len)
{
	struct up *u = uctx;

	assert_true(u->rx_len + len <= sizeof(u->rx));
	memcpy(u->rx + u->rx_len, data, len);
	u->rx_len += len;
}

static void u_eof(void *uctx)
{
	((struct up *)uctx)->eof = true;
}

static void u_acked(void *uctx, size_t n)
{
	struct up *u = uctx;

	u->tx_base += n;
	assert_true(u->tx_base <= u->tx_len);
}

static void u_gone(void *uctx, int err)
{
	((struct up *)uctx)->gone = err;
}

static void u_copy(void *uctx, size_t off, uint8_t *dst, size_t len)
{
	struct up *u = uctx;

	assert_true(u->tx_base + off + len <= u->tx_len);
	memcpy(dst, u->tx + u->tx_base + off, len);
}

static const struct coil__tcp_ops uops = {
	.accepted = u_accepted, .connected = u_connected, .recv = u_recv,
	.eof = u_eof, .acked = u_acked, .gone = u_gone, .copy = u_copy,
};

static void up_write(struct up *u, const void *d, size_t n)
{
	memcpy(u->tx + u->tx_len, d, n);
	u->tx_len += n;
	coil__tcp_send(u->t, u->tx_len - u->tx_base);
}

/* ---- the world: a loop's wheel, a stack, a TCP ---- */

static struct coil_loop *loop;
static struct coil__net net;
static struct coil__tcp tcp;

static void clock_to(uint64_t ms)
{
	loop->now_ms = ms;
	while (coil__wheel_run(&loop->wheel, ms, COIL__TIMER_BUDGET))
		;  /* every due timer, over as many turns as the budget takes */
}

static void advance(uint64_t ms)
{
	/* a ms at a time, as a polling loop would */
	for (uint64_t i = 0; i < ms; i++)
		clock_to(loop->now_ms + 1);
}

static void world_up(const struct coil__tcp_cfg *cfg)
{
	struct coil__net_cfg nc = { .ip = htonl(MY_IP), .mask = htonl(0xffffff00u) };
	struct coil__net_io io = { t_alloc, t_xmit, t_free, NULL };
	struct coil__tcp_cfg c = { .rcv_buf = 65536, .msl_ms = 1000,
				   .fin_wait2_ms = 2000 };

	memcpy(nc.mac, MY_MAC, 6);
	if (cfg)
		c = *cfg;
	memset(&cap, 0, sizeof(cap));
	nups = 0;
	refuse = false;
	loop = aligned_alloc(64, sizeof(*loop));
	assert_non_null(loop);
	memset(loop, 0, sizeof(*loop));
	loop->now_ms = 1000;
	coil__wheel_init(&loop->wheel, loop->now_ms);
	coil__net_init(&net, &nc, &io, loop->now_ms);
	assert_int_equal(coil__tcp_init(&tcp, &net, loop, &c, &uops), 0);
	assert_int_equal(coil__tcp_listen(&tcp, htons(PORT), &nups), 0);
	/* the peer's MAC is known (the active open checks ARP apart) */
	coil__arp_learn(&net, htonl(PEER_IP), PEER_MAC, true);
}

static void world_down(void)
{
	coil__tcp_fini(&tcp);
	coil__net_fini(&net);
	assert_int_equal(cap.live, 0);   /* no packet buffer leaked */
	free(loop);
}

/* A frame from the peer, in a buffer exactly its size. */
static void peer_send_opts(uint16_t sport, uint16_t dport, uint32_t seq,
			   uint32_t ack, uint8_t flags, uint16_t win,
			   const void *data, uint32_t len, const uint8_t *opts,
			   uint32_t optlen, bool bad_csum)
{
	struct netf_tcp f = {
		.dst_mac = MY_MAC, .src_mac = PEER_MAC,
		.src = PEER_IP, .dst = MY_IP, .sport = sport, .dport = dport,
		.seq = seq, .ack = ack, .flags = flags, .win = win,
		.opts = opts, .optlen = optlen, .data = data, .len = len,
	};
	uint32_t flen = netf_tcp_len(&f);
	uint8_t *b = malloc(flen);
	struct coil__tcp_hdr *th =
		(struct coil__tcp_hdr *)(b + COIL__ETH_HLEN + COIL__IP_HLEN);
	struct coil__pkt p = { .data = b, .len = flen, .handle = b };

	assert_non_null(b);
	netf_tcp_frame(b, &f);
	if (bad_csum)
		th->csum ^= 0x0101;
	cap.live++;
	coil__net_input(&net, &p);
	coil__tcp_poll(&tcp);
}

/* A peer connection: its ports and sequence state. */
struct peer {
	uint16_t port;
	uint32_t snd_nxt;   /* next byte the peer sends */
	uint32_t rcv_nxt;   /* next byte it expects from us */
	uint16_t win;
	struct up *u;
};

static void psend(struct peer *pr, uint8_t flags, const void *d, uint32_t n)
{
	peer_send_opts(pr->port, PORT, pr->snd_nxt, pr->rcv_nxt, flags, pr->win,
		       d, n, NULL, 0, false);
	pr->snd_nxt += n + ((flags & (TH_SYN | TH_FIN)) ? 1 : 0);
}

static struct txseg *last(void)
{
	assert_true(cap.n > 0);
	return &cap.tx[cap.n - 1];
}

static const uint8_t SYN_OPTS[8] = { 2, 4, 0x05, 0xb4, 1, 3, 3, 7 };

/* Handshake from port `port` with initial sequence isn. */
static void connect_peer(struct peer *pr, uint16_t port, uint32_t isn)
{
	unsigned before = nups;
	struct txseg *sa;

	pr->port = port;
	pr->win = 65535;
	peer_send_opts(port, PORT, isn, 0, TH_SYN, 65535, NULL, 0, SYN_OPTS,
		       sizeof(SYN_OPTS), false);
	sa = last();
	assert_int_equal(sa->flags, TH_SYN | TH_ACK);
	assert_int_equal(sa->ack, isn + 1);
	assert_int_equal(sa->mss, 1460);
	assert_int_equal(sa->ws, tcp.rcv_wscale);  /* 64 KiB: 1 */
	pr->snd_nxt = isn + 1;
	pr->rcv_nxt = sa->seq + 1;
	psend(pr, TH_ACK, NULL, 0);
	assert_int_equal(nups, before + 1);
	pr->u = &ups[nups - 1];
	assert_int_equal(pr->u->t->state, TCP_ESTABLISHED);
}

/* ---- tests ---- */

static void test_handshake_data_close(void **state)
{
	struct peer pr;
	struct coil__tcb *t;
	unsigned n;

	(void)state;
	world_up(NULL);
	connect_peer(&pr, 40000, 1000);
	t = pr.u->t;
	/* one segment: delayed ACK; the second: ACK at once */
	n = cap.n;
	psend(&pr, TH_ACK | TH_PSH, "hello ", 6);
	assert_int_equal(cap.n, n);
	assert_int_equal(pr.u->rx_len, 6);
	psend(&pr, TH_ACK | TH_PSH, "world", 5);
	assert_int_equal(cap.n, n + 1);
	assert_int_equal(last()->ack, pr.snd_nxt);
	assert_memory_equal(pr.u->rx, "hello world", 11);
	/* a third, alone: ACK after the delayed-ACK bound */
	psend(&pr, TH_ACK, "!", 1);
	assert_int_equal(cap.n, n + 1);
	advance(39);
	assert_int_equal(cap.n, n + 1);
	advance(2);
	assert_int_equal(cap.n, n + 2);
	assert_int_equal(tcp.st.delacks, 1);
	/* send; the peer's ACK frees it */
	up_write(pr.u, "reply", 5);
	assert_int_equal(last()->len, 5);
	assert_memory_equal(last()->data, "reply", 5);
	assert_int_equal(last()->seq, pr.rcv_nxt);
	pr.rcv_nxt += 5;
	psend(&pr, TH_ACK, NULL, 0);
	assert_int_equal(pr.u->tx_base, 5);
	assert_false(coil_timer_active(&t->rexmt));
	/* passive close: FIN -> CLOSE_WAIT (eof), close -> LAST_ACK */
	psend(&pr, TH_ACK | TH_FIN, NULL, 0);
	assert_true(pr.u->eof);
	assert_int_equal(t->state, TCP_CLOSE_WAIT);
	assert_int_equal(last()->ack, pr.snd_nxt);
	coil__tcp_close(t, false);
	assert_int_equal(t->state, TCP_LAST_ACK);
	assert_true(last()->flags & TH_FIN);
	pr.rcv_nxt++;
	psend(&pr, TH_ACK, NULL, 0);
	assert_int_equal(tcp.nfree, tcp.cfg.max_conns);
	world_down();
}

static void test_active_close_time_wait(void **state)
{
	struct peer pr;
	struct coil__tcb *t;

	(void)state;
	world_up(NULL);
	connect_peer(&pr, 40001, 0xfffffff0u);
	t = pr.u->t;
	coil__tcp_shutdown(t);
	assert_int_equal(t->state, TCP_FIN_WAIT_1);
	assert_true(last()->flags & TH_FIN);
	pr.rcv_nxt++;
	psend(&pr, TH_ACK, NULL, 0);
	assert_int_equal(t->state, TCP_FIN_WAIT_2);
	/* half-closed: the peer may still send */
	psend(&pr, TH_ACK, "late data", 9);
	assert_int_equal(pr.u->rx_len, 9);
	psend(&pr, TH_ACK | TH_FIN, NULL, 0);
	assert_int_equal(t->state, TCP_TIME_WAIT);
	assert_true(pr.u->eof);
	assert_int_equal(last()->ack, pr.snd_nxt);
	coil__tcp_close(t, false);
	assert_int_equal(tcp.ntw, 1);
	/* a retransmitted FIN is ACKed again */
	pr.snd_nxt--;
	psend(&pr, TH_ACK | TH_FIN, NULL, 0);
	assert_int_equal(last()->ack, pr.snd_nxt);
	advance(2 * 1000 + 1);
	assert_int_equal(tcp.ntw, 0);
	assert_int_equal(tcp.nfree, tcp.cfg.max_conns);
	/* and now the port is closed: RST */
	psend(&pr, TH_ACK, "x", 1);
	assert_true(last()->flags & TH_RST);

	/* simultaneous close: FIN_WAIT_1 -> CLOSING -> TIME_WAIT */
	connect_peer(&pr, 40002, 77);
	t = pr.u->t;
	coil__tcp_shutdown(t);
	psend(&pr, TH_ACK | TH_FIN, NULL, 0);   /* crosses our FIN */
	assert_int_equal(t->state, TCP_CLOSING);
	pr.rcv_nxt++;
	psend(&pr, TH_ACK, NULL, 0);
	assert_int_equal(t->state, TCP_TIME_WAIT);
	coil__tcp_close(t, false);
	world_down();
}

static void test_rto_backoff(void **state)
{
	struct peer pr;
	struct coil__tcb *t;
	uint64_t sent_at[16];
	unsigned k = 0, n;

	(void)state;
	world_up(NULL);
	connect_peer(&pr, 40010, 5);
	t = pr.u->t;
	assert_int_equal(t->rto, 200);   /* RTT ~0 on the fake clock: min */
	up_write(pr.u, "abc", 3);
	n = cap.n;
	sent_at[k++] = loop->now_ms;
	for (unsigned step = 0; step < 30000 && k < 6; step++) {
		advance(1);
		if (cap.n != n) {
			assert_int_equal(last()->seq, pr.rcv_nxt);
			assert_int_equal(last()->len, 3);
			n = cap.n;
			sent_at[k++] = loop->now_ms;
		}
	}
	assert_int_equal(k, 6);
	for (unsigned i = 1; i < k; i++)
		assert_int_equal(sent_at[i] - sent_at[i - 1], 200u << (i - 1));
	assert_true(tcp.st.rto_fired >= 5);
	assert_true(tcp.st.retrans_segs >= 5);
	/* an ACK ends it; the next RTO is measured again, not backed off */
	pr.rcv_nxt += 3;
	psend(&pr, TH_ACK, NULL, 0);
	assert_int_equal(pr.u->tx_base, 3);
	assert_false(coil_timer_active(&t->rexmt));
	/* the peer vanishes: given up after max_retries, RST, gone */
	up_write(pr.u, "def", 3);
	advance(tcp.cfg.rto_max_ms * (tcp.cfg.max_retries + 2));
	assert_int_equal(pr.u->gone, -ETIMEDOUT);
	assert_true(last()->flags & TH_RST);
	assert_int_equal(tcp.st.timeouts, 1);
	coil__tcp_close(t, true);
	assert_int_equal(tcp.nfree, tcp.cfg.max_conns);
	world_down();
}

static void test_fast_retransmit_newreno(void **state)
{
	struct peer pr;
	struct coil__tcb *t;
	uint8_t big[1460 * 6];
	uint32_t base;
	unsigned n;

	(void)state;
	world_up(NULL);
	connect_peer(&pr, 40020, 100);
	t = pr.u->t;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	n = cap.n;
	up_write(pr.u, big, sizeof(big));
	assert_int_equal(cap.n, n + 6);   /* initial window: 10 segments */
	base = pr.rcv_nxt;
	/* segment 1 arrives; 2 is lost; 3..6 make duplicate ACKs */
	pr.rcv_nxt = base + 1460;
	psend(&pr, TH_ACK, NULL, 0);
	n = cap.n;
	psend(&pr, TH_ACK, NULL, 0);
	psend(&pr, TH_ACK, NULL, 0);
	assert_int_equal(cap.n, n);
	psend(&pr, TH_ACK, NULL, 0);
	assert_int_equal(cap.n, n + 1);
	assert_int_equal(last()->seq, base + 1460);
	assert_memory_equal(last()->data, big + 1460, 1460);
	assert_int_equal(tcp.st.fast_retrans, 1);
	assert_true(t->in_recovery);
	/* partial ACK (4 was lost too): retransmit it at once */
	pr.rcv_nxt = base + 3 * 1460;
	psend(&pr, TH_ACK, NULL, 0);
	assert_int_equal(last()->seq, base + 3 * 1460);
	assert_true(t->in_recovery);
	/* full ACK: recovery ends */
	pr.rcv_nxt = base + 6 * 1460;
	psend(&pr, TH_ACK, NULL, 0);
	assert_false(t->in_recovery);
	assert_int_equal(pr.u->tx_base, sizeof(big));
	assert_true(t->cwnd <= t->ssthresh + t->mss);
	coil__tcp_close(t, true);
	world_down();
}

/* A FIN that is lost is sent again as a FIN by fast retransmit and by a
 * partial ACK in recovery, not as a bare ACK at its sequence. */
static void test_fast_retransmit_fin(void **state)
{
	struct peer pr;
	struct coil__tcb *t;
	uint8_t big[1460 * 4];
	uint32_t base, fin;
	unsigned n;

	(void)state;
	world_up(NULL);
	/* 1. data and FIN in flight; 2 is lost, then the FIN */
	connect_peer(&pr, 40021, 100);
	t = pr.u->t;
	memset(big, 'f', sizeof(big));
	n = cap.n;
	up_write(pr.u, big, sizeof(big));
	coil__tcp_shutdown(t);
	base = pr.rcv_nxt;
	fin = base + sizeof(big);
	assert_true(cap.n > n);
	assert_true(last()->flags & TH_FIN);
	assert_int_equal(last()->seq + last()->len, fin);
	pr.rcv_nxt = base + 1460;
	for (int i = 0; i < 4; i++)
		psend(&pr, TH_ACK, NULL, 0);
	assert_true(t->in_recovery);
	assert_int_equal(last()->seq, base + 1460);
	assert_int_equal(last()->len, 1460);
	/* partial ACK: all the data, not the FIN: the FIN again */
	n = cap.n;
	pr.rcv_nxt = fin;
	psend(&pr, TH_ACK, NULL, 0);
	assert_int_equal(cap.n, n + 1);
	assert_int_equal(last()->seq, fin);
	assert_int_equal(last()->len, 0);
	assert_true(last()->flags & TH_FIN);
	pr.rcv_nxt = fin + 1;
	psend(&pr, TH_ACK, NULL, 0);
	assert_int_equal(t->state, TCP_FIN_WAIT_2);
	coil__tcp_close(t, true);

	/* 2. only the FIN is outstanding: three duplicate ACKs resend it */
	connect_peer(&pr, 40022, 200);
	t = pr.u->t;
	up_write(pr.u, "abc", 3);
	pr.rcv_nxt += 3;
	psend(&pr, TH_ACK, NULL, 0);
	coil__tcp_shutdown(t);
	fin = pr.rcv_nxt;
	assert_true(last()->flags & TH_FIN);
	assert_int_equal(last()->seq, fin);
	n = cap.n;
	for (int i = 0; i < 3; i++)
		psend(&pr, TH_ACK, NULL, 0);
	assert_true(cap.n > n);
	assert_int_equal(last()->seq, fin);
	assert_true(last()->flags & TH_FIN);
	assert_int_equal(tcp.st.fast_retrans, 2);
	coil__tcp_close(t, true);
	world_down();
}

static void test_zero_window_persist(void **state)
{
	struct peer pr;
	struct coil__tcb *t;
	unsigned n;

	(void)state;
	world_up(NULL);
	connect_peer(&pr, 40030, 9);
	t = pr.u->t;
	pr.win = 0;
	psend(&pr, TH_ACK, NULL, 0);
	assert_int_equal(t->snd_wnd, 0);
	n = cap.n;
	up_write(pr.u, "0123456789", 10);
	assert_int_equal(cap.n, n);   /* nothing goes into a zero window */
	assert_true(t->persist);
	advance(t->rto);
	assert_int_equal(cap.n, n + 1);
	assert_int_equal(last()->len, 1);   /* the probe */
	assert_int_equal(tcp.st.persist_probes, 1);
	/* still zero: the next probe after a longer interval */
	psend(&pr, TH_ACK, NULL, 0);
	advance(2 * 200 + 1);
	assert_int_equal(tcp.st.persist_probes, 2);
	assert_true(coil_timer_active(&t->rexmt));
	/* the window opens: everything goes */
	pr.win = 1000;
	n = cap.n;
	psend(&pr, TH_ACK, NULL, 0);
	assert_int_equal(cap.n, n + 1);
	assert_int_equal(last()->len, 10);
	assert_memory_equal(last()->data, "0123456789", 10);
	pr.rcv_nxt += 10;
	psend(&pr, TH_ACK, NULL, 0);
	assert_int_equal(pr.u->tx_base, 10);
	coil__tcp_close(t, false);
	world_down();
}

static void test_receive_window_flow_control(void **state)
{
	struct coil__tcp_cfg c = { .rcv_buf = 8192, .msl_ms = 1000 };
	struct peer pr;
	struct coil__tcb *t;
	uint8_t d[1000];

	(void)state;
	world_up(&c);
	connect_peer(&pr, 40040, 1);
	t = pr.u->t;
	coil__tcp_recv_arm(t, false);   /* the application paused */
	memset(d, 'x', sizeof(d));
	for (int i = 0; i < 8; i++)
		psend(&pr, TH_ACK, d, 1000);
	assert_int_equal(pr.u->rx_len, 0);
	assert_int_equal(t->held_bytes, 8000);
	/* the right edge never moves left: what is left of it is offered */
	assert_true(last()->win <= 192);
	psend(&pr, TH_ACK, d, 1000);   /* only 192 bytes fit */
	assert_int_equal(t->held_bytes, 8192);
	assert_int_equal(last()->win, 0);
	pr.snd_nxt = last()->ack;
	/* beyond the window: dropped, counted, ACKed */
	psend(&pr, TH_ACK, d, 1000);
	assert_int_equal(tcp.st.drop_window, 1);
	pr.snd_nxt -= 1000;
	/* reading again: delivered in order at the next poll, and the
	 * window opens (update sent) */
	coil__tcp_recv_arm(t, true);
	assert_int_equal(pr.u->rx_len, 0);   /* never from recv_arm */
	coil__tcp_poll(&tcp);
	assert_int_equal(pr.u->rx_len, 8192);
	assert_int_equal(t->held_bytes, 0);
	assert_int_equal(last()->win, 8192);
	coil__tcp_close(t, false);
	world_down();
}

static void test_out_of_order(void **state)
{
	struct peer pr;
	struct coil__tcb *t;
	uint32_t s0;
	unsigned n;

	(void)state;
	world_up(NULL);
	connect_peer(&pr, 40050, 0xffffffffu - 4);   /* wraps inside */
	t = pr.u->t;
	s0 = pr.snd_nxt;
	n = cap.n;
	/* "cccc" then "bbbb" then an overlapping "bbbbcc", then "aaaa" */
	pr.snd_nxt = s0 + 8;
	psend(&pr, TH_ACK, "cccc", 4);
	assert_int_equal(last()->ack, s0);   /* duplicate ACK at once */
	pr.snd_nxt = s0 + 4;
	psend(&pr, TH_ACK, "bbbb", 4);
	pr.snd_nxt = s0 + 4;
	psend(&pr, TH_ACK, "bbbbcc", 6);
	assert_int_equal(cap.n, n + 3);
	assert_int_equal(pr.u->rx_len, 0);
	pr.snd_nxt = s0;
	psend(&pr, TH_ACK, "aaaa", 4);
	assert_int_equal(pr.u->rx_len, 12);
	assert_memory_equal(pr.u->rx, "aaaabbbbcccc", 12);
	assert_int_equal(last()->ack, s0 + 12);
	assert_true(coil__seq_lt(0xfffffff0u, t->rcv_nxt));
	assert_true(t->rcv_nxt < 100);   /* wrapped */
	/* an old duplicate: ACKed, not delivered again */
	pr.snd_nxt = s0;
	psend(&pr, TH_ACK, "aaaa", 4);
	assert_int_equal(pr.u->rx_len, 12);
	assert_int_equal(tcp.st.drop_window, 1);
	coil__tcp_close(t, false);
	world_down();
}

/* Found by fuzz_tcp: data queued out of order beyond a FIN that then
 * arrives in order must never be delivered after it. */
static void test_fin_before_queued_data(void **state)
{
	struct peer pr;
	uint32_t s0;

	(void)state;
	world_up(NULL);
	connect_peer(&pr, 40060, 1000);
	s0 = pr.snd_nxt;
	pr.snd_nxt = s0 + 1;
	psend(&pr, TH_ACK, "zzz", 3);          /* held out of order */
	pr.snd_nxt = s0;
	psend(&pr, TH_ACK | TH_FIN, NULL, 0);  /* FIN where the hole is */
	assert_true(pr.u->eof);
	assert_int_equal(pr.u->rx_len, 0);
	assert_int_equal(pr.u->t->rcv_nxt, s0 + 1);
	assert_int_equal(pr.u->t->held_pkts, 0);
	assert_int_equal(pr.u->t->state, TCP_CLOSE_WAIT);
	coil__tcp_close(pr.u->t, false);
	world_down();
}

static void test_rst_each_state(void **state)
{
	struct peer pr;
	struct coil__tcb *t;
	struct txseg *sa;

	(void)state;
	world_up(NULL);
	/* SYN_RCVD: gone without an accept */
	peer_send_opts(41000, PORT, 50, 0, TH_SYN, 1000, NULL, 0, NULL, 0,
		       false);
	sa = last();
	assert_int_equal(tcp.nfree, tcp.cfg.max_conns - 1);
	peer_send_opts(41000, PORT, 51, sa->seq + 1, TH_RST, 0, NULL, 0, NULL,
		       0, false);
	assert_int_equal(tcp.nfree, tcp.cfg.max_conns);
	assert_int_equal(tcp.lst[0].nsyn, 0);
	assert_int_equal(nups, 0);

	/* ESTABLISHED: out of window ignored, in window challenged, exact
	 * resets */
	connect_peer(&pr, 41001, 1);
	t = pr.u->t;
	peer_send_opts(41001, PORT, pr.snd_nxt + 200000, 0, TH_RST, 0, NULL, 0,
		       NULL, 0, false);
	assert_int_equal(pr.u->gone, 0);
	peer_send_opts(41001, PORT, pr.snd_nxt + 10, 0, TH_RST, 0, NULL, 0,
		       NULL, 0, false);
	assert_int_equal(pr.u->gone, 0);
	assert_int_equal(tcp.st.challenge_acks, 1);
	psend(&pr, TH_RST, NULL, 0);
	assert_int_equal(pr.u->gone, -ECONNRESET);
	assert_true(t->dead);
	coil__tcp_close(t, true);

	/* FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK: each resets */
	for (int st = 0; st < 5; st++) {
		connect_peer(&pr, (uint16_t)(41010 + st), 1000);
		t = pr.u->t;
		switch (st) {
		case 0:
			coil__tcp_shutdown(t);
			assert_int_equal(t->state, TCP_FIN_WAIT_1);
			break;
		case 1:
			coil__tcp_shutdown(t);
			pr.rcv_nxt++;
			psend(&pr, TH_ACK, NULL, 0);
			assert_int_equal(t->state, TCP_FIN_WAIT_2);
			break;
		case 2:
			psend(&pr, TH_ACK | TH_FIN, NULL, 0);
			assert_int_equal(t->state, TCP_CLOSE_WAIT);
			break;
		case 3:
			coil__tcp_shutdown(t);
			psend(&pr, TH_ACK | TH_FIN, NULL, 0);
			assert_int_equal(t->state, TCP_CLOSING);
			break;
		case 4:
			psend(&pr, TH_ACK | TH_FIN, NULL, 0);
			coil__tcp_close(t, false);
			assert_int_equal(t->state, TCP_LAST_ACK);
			break;
		}
		psend(&pr, TH_RST, NULL, 0);
		if (st == 4) {
			/* closed by us already: simply gone */
			assert_int_equal(tcp.nfree, tcp.cfg.max_conns);
			continue;
		}
		assert_int_equal(pr.u->gone, -ECONNRESET);
		coil__tcp_close(t, false);
		assert_int_equal(tcp.nfree, tcp.cfg.max_conns);
	}
	/* TIME_WAIT: an exact RST ends it early */
	connect_peer(&pr, 41020, 1);
	t = pr.u->t;
	coil__tcp_shutdown(t);
	psend(&pr, TH_ACK | TH_FIN, NULL, 0);
	pr.rcv_nxt++;
	psend(&pr, TH_ACK, NULL, 0);
	assert_int_equal(t->state, TCP_TIME_WAIT);
	coil__tcp_close(t, false);
	psend(&pr, TH_RST, NULL, 0);
	assert_int_equal(tcp.nfree, tcp.cfg.max_conns);
	/* an RST never gets an RST back; to a closed port neither */
	sa = last();
	peer_send_opts(41030, 81, 1, 0, TH_RST, 0, NULL, 0, NULL, 0, false);
	assert_ptr_equal(last(), sa);
	world_down();
}

static void test_closed_port_rst(void **state)
{
	(void)state;
	world_up(NULL);
	peer_send_opts(42000, 81, 7777, 0, TH_SYN, 1000, NULL, 0, NULL, 0,
		       false);
	assert_int_equal(last()->flags, TH_RST | TH_ACK);
	assert_int_equal(last()->ack, 7778);
	assert_int_equal(last()->seq, 0);
	peer_send_opts(42000, 81, 1, 4242, TH_ACK, 1000, "x", 1, NULL, 0,
		       false);
	assert_int_equal(last()->flags, TH_RST);
	assert_int_equal(last()->seq, 4242);
	assert_int_equal(tcp.st.drop_no_conn, 2);
	/* an ACK to the listening port that no cookie made: RST too */
	peer_send_opts(42001, PORT, 1, 4242, TH_ACK, 1000, NULL, 0, NULL, 0,
		       false);
	assert_int_equal(last()->flags, TH_RST);
	assert_int_equal(tcp.st.drop_cookie, 1);
	world_down();
}

static void test_bad_segments(void **state)
{
	static const uint8_t bad_opts[4] = { 2, 9, 0, 0 };  /* overruns */
	static const uint8_t zero_len[4] = { 8, 0, 1, 1 };
	struct peer pr;
	uint8_t junk[64];
	unsigned n;
	struct coil__pkt p;
	uint8_t *b;

	(void)state;
	world_up(NULL);
	connect_peer(&pr, 43000, 1);
	n = cap.n;
	/* bad checksum */
	peer_send_opts(43000, PORT, pr.snd_nxt, pr.rcv_nxt, TH_ACK, 1000, "x",
		       1, NULL, 0, true);
	assert_int_equal(tcp.st.drop_csum, 1);
	/* SYN+FIN */
	peer_send_opts(43000, PORT, pr.snd_nxt, 0, TH_SYN | TH_FIN, 1000,
		       NULL, 0, NULL, 0, false);
	assert_int_equal(tcp.st.drop_hdr, 1);
	/* malformed options */
	peer_send_opts(43000, PORT, pr.snd_nxt, pr.rcv_nxt, TH_ACK, 1000, NULL,
		       0, bad_opts, 4, false);
	peer_send_opts(43000, PORT, pr.snd_nxt, pr.rcv_nxt, TH_ACK, 1000, NULL,
		       0, zero_len, 4, false);
	assert_int_equal(tcp.st.drop_opts, 2);
	/* no ACK bit on an established connection */
	peer_send_opts(43000, PORT, pr.snd_nxt, 0, 0, 1000, "y", 1, NULL, 0,
		       false);
	assert_int_equal(tcp.st.drop_hdr, 2);
	/* acknowledges the future */
	peer_send_opts(43000, PORT, pr.snd_nxt, pr.rcv_nxt + 5000, TH_ACK,
		       1000, NULL, 0, NULL, 0, false);
	assert_int_equal(tcp.st.drop_ack, 1);
	assert_int_equal(pr.u->rx_len, 0);
	/* truncated headers: every length short of a TCP header, and a data
	 * offset past the end */
	memset(junk, 0, sizeof(junk));
	for (uint32_t l4 = 0; l4 < COIL__TCP_HLEN + 4; l4++) {
		uint32_t flen = COIL__ETH_HLEN + COIL__IP_HLEN + l4;
		struct coil__ip_hdr *ip;
		struct coil__tcp_hdr *th;

		b = malloc(flen);
		memset(b, 0, flen);
		memcpy(b, MY_MAC, 6);
		memcpy(b + 6, PEER_MAC, 6);
		b[12] = 0x08;
		ip = (struct coil__ip_hdr *)(b + COIL__ETH_HLEN);
		ip->vihl = 0x45;
		ip->tot_len = htons((uint16_t)(COIL__IP_HLEN + l4));
		ip->ttl = 64;
		ip->proto = COIL__IPPROTO_TCP;
		ip->src = htonl(PEER_IP);
		ip->dst = htonl(MY_IP);
		ip->csum = coil__csum_fold(coil__csum_add(0, ip, COIL__IP_HLEN));
		th = (struct coil__tcp_hdr *)(ip + 1);
		if (l4 >= COIL__TCP_HLEN)
			th->off = 0xf0;   /* 60 bytes: past the end */
		memset(&p, 0, sizeof(p));
		p.data = b;
		p.len = flen;
		p.handle = b;
		cap.live++;
		coil__net_input(&net, &p);
	}
	assert_int_equal(tcp.st.drop_short, COIL__TCP_HLEN);
	assert_int_equal(tcp.st.drop_hdr, 2 + 4);
	/* nothing of it got through, and the connection still works */
	psend(&pr, TH_ACK, "ok", 2);
	assert_int_equal(pr.u->rx_len, 2);
	assert_true(cap.n >= n);
	coil__tcp_close(pr.u->t, false);
	world_down();
}

static void test_syn_flood_cookies(void **state)
{
	struct coil__tcp_cfg c = { .rcv_buf = 65536, .syn_backlog = 4,
				   .msl_ms = 1000 };
	struct txseg good_sa;
	struct peer pr;
	unsigned i;

	(void)state;
	world_up(&c);
	/* 100 spoofed SYNs that never complete */
	for (i = 0; i < 100; i++)
		peer_send_opts((uint16_t)(20000 + i), PORT, i * 1000, 0, TH_SYN,
			       1000, NULL, 0, SYN_OPTS, sizeof(SYN_OPTS),
			       false);
	assert_int_equal(tcp.lst[0].nsyn, 4);
	assert_int_equal(tcp.st.cookies_tx, 96);
	assert_int_equal(tcp.nfree, tcp.cfg.max_conns - 4);
	/* a good client in the middle of it gets a cookie and connects */
	peer_send_opts(45000, PORT, 123456, 0, TH_SYN, 65535, NULL, 0,
		       SYN_OPTS, sizeof(SYN_OPTS), false);
	good_sa = *last();
	assert_int_equal(good_sa.flags, TH_SYN | TH_ACK);
	assert_int_equal(good_sa.mss, 1460);
	assert_int_equal(good_sa.ws, -1);   /* no scaling with a cookie */
	pr.port = 45000;
	pr.snd_nxt = 123457;
	pr.rcv_nxt = good_sa.seq + 1;
	pr.win = 65535;
	/* its first ACK carries data already */
	psend(&pr, TH_ACK | TH_PSH, "GET /", 5);
	assert_int_equal(tcp.st.cookies_ok, 1);
	assert_int_equal(nups, 1);
	pr.u = &ups[0];
	assert_int_equal(pr.u->rx_len, 5);
	assert_int_equal(pr.u->t->mss, 1460);
	up_write(pr.u, "200", 3);
	assert_int_equal(last()->seq, pr.rcv_nxt);
	/* a forged ACK (wrong cookie) is refused */
	peer_send_opts(45001, PORT, 1, good_sa.seq + 1, TH_ACK, 1000, NULL, 0,
		       NULL, 0, false);
	assert_int_equal(tcp.st.drop_cookie, 1);
	/* the cookie expires after two periods */
	advance(130000);
	peer_send_opts(45000, PORT, 123457, good_sa.seq + 1, TH_ACK, 1000,
		       NULL, 0, NULL, 0, false);
	/* (the connection exists, so this went to it, not to the cookie
	 * check); the embryos timed out meanwhile */
	assert_int_equal(tcp.lst[0].nsyn, 0);
	coil__tcp_close(pr.u->t, true);
	assert_int_equal(tcp.nfree, tcp.cfg.max_conns);
	world_down();
}

static void test_synack_retransmit(void **state)
{
	struct txseg sa;
	unsigned n;

	(void)state;
	world_up(NULL);
	peer_send_opts(46000, PORT, 10, 0, TH_SYN, 1000, NULL, 0, NULL, 0,
		       false);
	sa = *last();
	n = cap.n;
	advance(1000);
	assert_int_equal(cap.n, n + 1);
	assert_int_equal(last()->seq, sa.seq);
	assert_int_equal(last()->flags, TH_SYN | TH_ACK);
	/* a retransmitted SYN gets the SYN-ACK again */
	peer_send_opts(46000, PORT, 10, 0, TH_SYN, 1000, NULL, 0, NULL, 0,
		       false);
	assert_int_equal(cap.n, n + 2);
	advance(64000);
	assert_int_equal(tcp.nfree, tcp.cfg.max_conns);
	assert_int_equal(tcp.lst[0].nsyn, 0);
	assert_int_equal(tcp.st.timeouts, 1);
	world_down();
}

static void test_active_open(void **state)
{
	struct up *u = &ups[0];
	struct coil__tcb *t;
	struct txseg syn;
	int err = 0;
	static const uint8_t sa_opts[8] = { 2, 4, 0x02, 0x00, 1, 3, 3, 2 };

	(void)state;
	world_up(NULL);
	memset(u, 0, sizeof(*u));
	u->connected = 1;
	t = coil__tcp_connect(&tcp, htonl(PEER_IP), htons(8080), u, &err);
	assert_non_null(t);
	u->t = t;
	syn = *last();
	assert_int_equal(syn.flags, TH_SYN);
	assert_int_equal(syn.dport, 8080);
	assert_true(syn.sport >= 32768 && syn.sport <= 60999);
	assert_int_equal(syn.mss, 1460);
	assert_int_equal(syn.ws, tcp.rcv_wscale);
	peer_send_opts(8080, syn.sport, 5000, syn.seq + 1, TH_SYN | TH_ACK,
		       100, NULL, 0, sa_opts, sizeof(sa_opts), false);
	assert_int_equal(u->connected, 0);
	assert_int_equal(t->state, TCP_ESTABLISHED);
	assert_int_equal(t->mss, 512);
	assert_int_equal(t->snd_wscale, 2);
	assert_int_equal(last()->flags, TH_ACK);
	assert_int_equal(last()->ack, 5001);
	coil__tcp_recv_arm(t, true);
	up_write(u, "hi", 2);
	assert_int_equal(last()->len, 2);
	peer_send_opts(8080, syn.sport, 5001, syn.seq + 3, TH_ACK | TH_FIN,
		       100, "yo", 2, NULL, 0, false);
	assert_int_equal(u->rx_len, 2);
	assert_true(u->eof);
	assert_int_equal(u->tx_base, 2);
	coil__tcp_close(t, false);
	assert_int_equal(t->state, TCP_LAST_ACK);
	peer_send_opts(8080, syn.sport, 5004, syn.seq + 4, TH_ACK, 100, NULL,
		       0, NULL, 0, false);
	assert_int_equal(tcp.nfree, tcp.cfg.max_conns);

	/* refused: RST+ACK to the SYN */
	memset(u, 0, sizeof(*u));
	u->connected = 1;
	t = coil__tcp_connect(&tcp, htonl(PEER_IP), htons(8081), u, &err);
	assert_non_null(t);
	syn = *last();
	peer_send_opts(8081, syn.sport, 0, syn.seq + 1, TH_RST | TH_ACK, 0,
		       NULL, 0, NULL, 0, false);
	assert_int_equal(u->connected, -ECONNREFUSED);
	coil__tcp_close(t, false);
	/* no answer at all: times out after the SYN retries */
	memset(u, 0, sizeof(*u));
	u->connected = 1;
	t = coil__tcp_connect(&tcp, htonl(PEER_IP), htons(8082), u, &err);
	advance(200000);
	assert_int_equal(u->connected, -ETIMEDOUT);
	coil__tcp_close(t, false);
	assert_int_equal(tcp.nfree, tcp.cfg.max_conns);
	/* off-link without a gateway */
	assert_null(coil__tcp_connect(&tcp, htonl(0x0b000001u), htons(1), u,
				      &err));
	assert_int_equal(err, -EHOSTUNREACH);
	world_down();
}

/* Connections opened before the neighbour's MAC is known: ARP holds only
 * the newest packet, so when the reply comes every SYN still waiting goes
 * out at once (not after the one-second initial RTO). */
static void test_syns_after_arp(void **state)
{
	static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 0x03 };
	struct coil__tcb *t[5];
	uint16_t sport[5];
	unsigned n0, arp0;
	int err = 0;

	(void)state;
	world_up(NULL);
	n0 = cap.n;
	arp0 = cap.arp;
	for (unsigned i = 0; i < 5; i++) {
		memset(&ups[i], 0, sizeof(ups[i]));
		ups[i].connected = 1;
		t[i] = coil__tcp_connect(&tcp, htonl(PEER_IP + 1), htons(8080),
					 &ups[i], &err);
		assert_non_null(t[i]);
		sport[i] = ntohs(t[i]->lport);
	}
	assert_int_equal(cap.n, n0);          /* all wait for ARP */
	assert_int_equal(cap.arp, arp0 + 1);  /* one request */
	advance(10);
	assert_int_equal(cap.n, n0);
	coil__arp_learn(&net, htonl(PEER_IP + 1), mac, false);
	for (unsigned i = 0; i < 5; i++) {
		bool seen = false;

		for (unsigned k = n0; k < cap.n; k++)
			if (cap.tx[k].flags == TH_SYN &&
			    cap.tx[k].sport == sport[i])
				seen = true;
		assert_true(seen);
	}
	assert_int_equal(tcp.st.rto_fired, 0);
	for (unsigned i = 0; i < 5; i++)
		coil__tcp_close(t[i], true);
	world_down();
}

/* With TCP checksum offload (cfg.tx_tcp_csum) every segment is flagged for
 * the port and carries the pseudo-header's sum, which the port completes
 * (t_xmit does it as a NIC would and checks the result). */
static void test_tx_csum_offload(void **state)
{
	struct coil__tcp_cfg c = { .rcv_buf = 65536, .msl_ms = 1000,
				   .fin_wait2_ms = 2000, .tx_tcp_csum = true };
	struct peer pr;
	unsigned n0;

	(void)state;
	world_up(&c);
	n0 = cap.n;
	connect_peer(&pr, 40000, 1000);
	up_write(pr.u, "reply", 5);
	assert_int_equal(last()->len, 5);
	assert_memory_equal(last()->data, "reply", 5);
	pr.rcv_nxt += 5;
	psend(&pr, TH_ACK, NULL, 0);
	assert_int_equal(pr.u->tx_base, 5);
	coil__tcp_close(pr.u->t, true);   /* a RST, offloaded too */
	assert_true(last()->flags & TH_RST);
	assert_true(cap.n - n0 >= 3);     /* SYN-ACK, data, RST */
	assert_int_equal(cap.offloaded, cap.n - n0);
	world_down();
}

static void test_refused_accept_and_unread_close(void **state)
{
	struct peer pr;
	struct coil__tcb *t;

	(void)state;
	world_up(NULL);
	refuse = true;
	peer_send_opts(47000, PORT, 1, 0, TH_SYN, 1000, NULL, 0, NULL, 0,
		       false);
	peer_send_opts(47000, PORT, 2, last()->seq + 1, TH_ACK, 1000, NULL, 0,
		       NULL, 0, false);
	assert_true(last()->flags & TH_RST);
	assert_int_equal(tcp.nfree, tcp.cfg.max_conns);
	refuse = false;
	/* closing with unread input: dropped, FIN (no reset that would
	 * make the peer lose what it has not read); later data is ACKed and
	 * dropped; the peer's FIN ends it */
	connect_peer(&pr, 47001, 1);
	t = pr.u->t;
	coil__tcp_recv_arm(t, false);
	psend(&pr, TH_ACK, "unread", 6);
	coil__tcp_close(t, false);
	assert_int_equal(last()->flags, TH_FIN | TH_PSH | TH_ACK);
	assert_int_equal(t->held_pkts, 0);
	assert_int_equal(t->state, TCP_FIN_WAIT_1);
	pr.rcv_nxt++;
	psend(&pr, TH_ACK, "more", 4);
	assert_int_equal(last()->flags, TH_ACK);
	assert_int_equal(last()->ack, pr.snd_nxt);
	assert_int_equal(t->state, TCP_FIN_WAIT_2);
	assert_int_equal(pr.u->rx_len, 0);
	psend(&pr, TH_ACK | TH_FIN, NULL, 0);
	assert_int_equal(t->state, TCP_TIME_WAIT);
	advance(2 * 1000 + 1);
	assert_int_equal(tcp.nfree, tcp.cfg.max_conns);
	world_down();
}

/* ---- closing with bytes not yet acknowledged (issue 12) ---- */

/* No segment from index `from` on was a reset. */
static void no_rst_since(unsigned from)
{
	for (unsigned i = from; i < cap.n; i++)
		assert_false(cap.tx[i].flags & TH_RST);
}

/* The upper layer let go (coil__tcp_close): its send buffer is gone, so
 * whatever TCP still sends must come from its own copy. */
static void upper_gone(struct up *u)
{
	memset(u->tx, 0xee, sizeof(u->tx));
}

/* After an RTO: the len bytes d again at seq, the FIN after them. */
static void rexmit_data_fin(struct coil__tcb *t, uint32_t seq, const void *d,
			    uint32_t len)
{
	advance(t->rto);
	assert_int_equal(last()->seq, seq);
	assert_int_equal(last()->len, len);
	assert_memory_equal(last()->data, d, len);
	assert_int_equal(last()->flags & (TH_FIN | TH_RST), TH_FIN);
}

/* The peer has all and closes too: TIME_WAIT, no reset sent since
 * segment `from`, and the connection is gone after 2 MSL. */
static void peer_closes_too(struct peer *pr, struct coil__tcb *t,
			    unsigned from)
{
	psend(pr, TH_ACK | TH_FIN, NULL, 0);
	assert_int_equal(t->state, TCP_TIME_WAIT);
	assert_int_equal(last()->ack, pr->snd_nxt);
	no_rst_since(from);
	advance(2 * 1000 + 1);
	assert_int_equal(tcp.nfree, tcp.cfg.max_conns);
}

/* Shutdown with data in flight, then close; the data segment and the FIN
 * are both lost. The retransmission must carry the data, FIN after it:
 * the FIN once went again at snd_una, where the data was (the peer took
 * it as the end of the stream, and the data was never sent again). */
static void test_close_after_shutdown_data_lost(void **state)
{
	struct peer pr;
	struct coil__tcb *t;
	uint32_t start;
	unsigned from;

	(void)state;
	world_up(NULL);
	connect_peer(&pr, 48000, 100);
	t = pr.u->t;
	from = cap.n;
	start = pr.rcv_nxt;
	up_write(pr.u, "0123456789", 10);          /* lost */
	assert_int_equal(last()->seq, start);
	coil__tcp_shutdown(t);                      /* the FIN: lost too */
	assert_true(last()->flags & TH_FIN);
	assert_int_equal(last()->seq, start + 10);
	coil__tcp_close(t, false);
	upper_gone(pr.u);
	assert_int_equal(t->state, TCP_FIN_WAIT_1);
	rexmit_data_fin(t, start, "0123456789", 10);
	pr.rcv_nxt = start + 11;
	psend(&pr, TH_ACK, NULL, 0);
	assert_int_equal(t->state, TCP_FIN_WAIT_2);
	assert_int_equal(tcp.orphan_bytes, 0);
	peer_closes_too(&pr, t, from);
	world_down();
}

/* close() right after writing (no shutdown): the written bytes and then
 * the FIN are delivered, whatever is lost, never a reset. Three segments
 * go out, the second is lost, then the FIN is lost, then the FIN's first
 * retransmission is lost too. */
static void test_close_with_data_queued_loss(void **state)
{
	static uint8_t msg[3000];
	static uint8_t got[3000];
	struct peer pr;
	struct coil__tcb *t;
	uint32_t start;
	unsigned from, first;

	(void)state;
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 7 + 1);
	world_up(NULL);
	connect_peer(&pr, 48001, 200);
	t = pr.u->t;
	from = cap.n;
	start = pr.rcv_nxt;
	up_write(pr.u, msg, sizeof(msg));
	assert_int_equal(cap.n, from + 3);          /* 1460, 1460, 80 */
	first = from;
	coil__tcp_close(t, false);
	upper_gone(pr.u);
	assert_int_equal(cap.n, from + 4);          /* the FIN: lost */
	assert_true(last()->flags & TH_FIN);
	assert_int_equal(last()->seq, start + sizeof(msg));
	/* the peer has the first and the third segment */
	memcpy(got, cap.tx[first].data, cap.tx[first].len);
	memcpy(got + 2920, cap.tx[first + 2].data, cap.tx[first + 2].len);
	pr.rcv_nxt = start + 1460;
	psend(&pr, TH_ACK, NULL, 0);
	psend(&pr, TH_ACK, NULL, 0);                /* a duplicate: 80 B early */
	advance(t->rto);
	assert_int_equal(last()->seq, start + 1460);
	assert_int_equal(last()->len, 1460);
	memcpy(got + 1460, last()->data, 1460);
	assert_memory_equal(got, msg, sizeof(msg));
	/* all the data acknowledged; the FIN still lost */
	pr.rcv_nxt = start + sizeof(msg);
	psend(&pr, TH_ACK, NULL, 0);
	assert_int_equal(tcp.orphan_bytes, 0);      /* the copy went */
	assert_int_equal(t->state, TCP_FIN_WAIT_1);
	from = cap.n;
	advance(t->rto);
	assert_int_equal(cap.n, from + 1);          /* the FIN again: lost */
	assert_int_equal(last()->flags & (TH_FIN | TH_RST), TH_FIN);
	assert_int_equal(last()->seq, start + sizeof(msg));
	assert_int_equal(last()->len, 0);
	advance(t->rto);                            /* backed off: again */
	assert_int_equal(cap.n, from + 2);
	assert_true(last()->flags & TH_FIN);
	assert_int_equal(last()->seq, start + sizeof(msg));
	pr.rcv_nxt++;
	assert_int_equal(tcp.st.orphan_rst, 0);
	peer_closes_too(&pr, t, first);
	world_down();
}

/* An HTTP error answer: the request is left unread, the answer written
 * and the connection closed at once; the answer and the FIN are lost and
 * the peer keeps sending (a pipelined request). What comes after the
 * close is acknowledged and dropped, never answered with a reset; the
 * answer goes again, then the FIN. */
static void test_close_unread_input_answer_lost(void **state)
{
	struct peer pr;
	struct coil__tcb *t;
	uint32_t start;
	unsigned from;

	(void)state;
	world_up(NULL);
	connect_peer(&pr, 48002, 300);
	t = pr.u->t;
	coil__tcp_recv_arm(t, false);
	psend(&pr, TH_ACK | TH_PSH, "GET / HTTP/1.1\r\nX-Space : a\r\n\r\n", 31);
	from = cap.n;
	start = pr.rcv_nxt;
	up_write(pr.u, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);   /* lost */
	coil__tcp_close(t, false);
	upper_gone(pr.u);
	assert_int_equal(t->held_pkts, 0);          /* unread: dropped */
	assert_true(last()->flags & TH_FIN);        /* lost */
	/* the next pipelined request: ACKed, dropped */
	psend(&pr, TH_ACK | TH_PSH, "GET /json HTTP/1.1\r\n\r\n", 22);
	assert_int_equal(last()->ack, pr.snd_nxt);
	assert_true(tcp.st.drop_orphan >= 2);
	rexmit_data_fin(t, start, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
	/* the peer reads the answer, closes */
	pr.rcv_nxt = start + 29;
	peer_closes_too(&pr, t, from);
	world_down();
}

/* The FIN is retransmitted on RTO in LAST_ACK and CLOSING, at its own
 * sequence number. */
static void test_fin_retransmit_last_ack_closing(void **state)
{
	struct peer pr;
	struct coil__tcb *t;
	uint32_t fin;

	(void)state;
	world_up(NULL);
	/* LAST_ACK */
	connect_peer(&pr, 48003, 400);
	t = pr.u->t;
	psend(&pr, TH_ACK | TH_FIN, NULL, 0);
	coil__tcp_close(t, false);
	assert_int_equal(t->state, TCP_LAST_ACK);
	fin = last()->seq;
	advance(t->rto);
	assert_int_equal(last()->flags & (TH_FIN | TH_RST), TH_FIN);
	assert_int_equal(last()->seq, fin);
	pr.rcv_nxt = fin + 1;
	psend(&pr, TH_ACK, NULL, 0);
	assert_int_equal(tcp.nfree, tcp.cfg.max_conns);
	/* CLOSING: both FINs cross, ours is lost */
	connect_peer(&pr, 48004, 500);
	t = pr.u->t;
	coil__tcp_shutdown(t);
	fin = last()->seq;
	psend(&pr, TH_ACK | TH_FIN, NULL, 0);
	assert_int_equal(t->state, TCP_CLOSING);
	coil__tcp_close(t, false);
	advance(t->rto);
	assert_int_equal(last()->flags & (TH_FIN | TH_RST), TH_FIN);
	assert_int_equal(last()->seq, fin);
	pr.rcv_nxt = fin + 1;
	psend(&pr, TH_ACK, NULL, 0);
	assert_int_equal(t->state, TCP_TIME_WAIT);
	world_down();
}

/* What a closed connection may keep is bounded: beyond orphan_max the
 * close is a reset (counted); and an orphan whose peer keeps its window
 * shut gives up after max_retries probes. */
static void test_orphan_limits(void **state)
{
	static uint8_t big[2000];
	struct coil__tcp_cfg c = { .rcv_buf = 65536, .msl_ms = 1000,
				   .fin_wait2_ms = 2000, .orphan_max = 1000,
				   .max_retries = 3 };
	struct peer pr;
	struct coil__tcb *t;

	(void)state;
	world_up(&c);
	connect_peer(&pr, 48005, 600);
	up_write(pr.u, big, sizeof(big));
	coil__tcp_close(pr.u->t, false);
	assert_true(last()->flags & TH_RST);
	assert_int_equal(tcp.st.orphan_rst, 1);
	assert_int_equal(tcp.orphan_bytes, 0);
	assert_int_equal(tcp.nfree, tcp.cfg.max_conns);
	/* zero window, closed with 10 bytes waiting */
	connect_peer(&pr, 48006, 700);
	t = pr.u->t;
	pr.win = 0;
	psend(&pr, TH_ACK, NULL, 0);
	up_write(pr.u, "0123456789", 10);
	assert_true(t->persist);
	coil__tcp_close(t, false);
	upper_gone(pr.u);
	assert_int_equal(tcp.orphan_bytes, 10);
	advance(200 + 400 + 800 + 1);
	assert_int_equal(tcp.st.persist_probes, 3);
	assert_memory_equal(last()->data, "0", 1);  /* probes: its own copy */
	advance(1600);
	assert_true(last()->flags & TH_RST);
	assert_int_equal(tcp.orphan_bytes, 0);
	assert_int_equal(tcp.nfree, tcp.cfg.max_conns);
	world_down();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_data_close),
		cmocka_unit_test(test_active_close_time_wait),
		cmocka_unit_test(test_rto_backoff),
		cmocka_unit_test(test_fast_retransmit_newreno),
		cmocka_unit_test(test_fast_retransmit_fin),
		cmocka_unit_test(test_zero_window_persist),
		cmocka_unit_test(test_receive_window_flow_control),
		cmocka_unit_test(test_out_of_order),
		cmocka_unit_test(test_fin_before_queued_data),
		cmocka_unit_test(test_rst_each_state),
		cmocka_unit_test(test_closed_port_rst),
		cmocka_unit_test(test_bad_segments),
		cmocka_unit_test(test_syn_flood_cookies),
		cmocka_unit_test(test_synack_retransmit),
		cmocka_unit_test(test_active_open),
		cmocka_unit_test(test_syns_after_arp),
		cmocka_unit_test(test_refused_accept_and_unread_close),
		cmocka_unit_test(test_tx_csum_offload),
		cmocka_unit_test(test_close_after_shutdown_data_lost),
		cmocka_unit_test(test_close_with_data_queued_loss),
		cmocka_unit_test(test_close_unread_input_answer_lost),
		cmocka_unit_test(test_fin_retransmit_last_ack_closing),
		cmocka_unit_test(test_orphan_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
