/* SPDX-License-Identifier: MIT */
/*
 * The DPDK backend: kernel bypass. The EAL is initialised once from the
 * engine's dpdk_args; the first ethdev port gets one RX/TX queue pair per
 * loop (RSS spreads flows when the port has several queues; one queue and
 * one loop otherwise) and one mbuf pool. Each loop busy-polls its queue:
 * a turn is  rx_burst(32) -> engine/net (ARP, IPv4, ICMP, UDP, TCP) -> timers
 * -> tx_burst of what the turn produced, with an optional short sleep
 * after an idle turn (--idle-sleep-us, for VMs and shared cores).
 *
 * TCP is coil's own (engine/net/tcp*.c), one instance per loop, tied to
 * the connection core by dpdk_tcp.c. Loops are the engine's pinned threads, registered
 * with the EAL (rte_thread_register) so mempool caches work.
 *
 * This file: a loop's side (its queue pair and turn, the packet buffers
 * over mbufs, UDP services, steering TCP between loops, the link, the
 * gate's loop side) and the ops table. Once per process (the EAL, the
 * port, the pool, the gate's interrupt-thread side): dpdk_port.c; what
 * they share: dpdk_internal.h.
 */
#define ALLOW_EXPERIMENTAL_API 1
#include "dpdk_internal.h"
#include "dpdk_tcp.h"

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BURST 32
/* Frames a full TX ring leaves waiting for the next turn: a link whose
 * peer drains slower than we send (a memif or vhost peer process, a NIC
 * paused by flow control) pushes back instead of dropping at once. */
#define TX_HOLD 1024
/* How often the loops look at the port's link (rte_eth_link_get_nowait). */
#define LINK_CHECK_MS 10

struct dl {
	struct coil_loop *loop;
	uint16_t q;
	unsigned ntx;
	struct rte_mbuf *tx[TX_HOLD];
	uint64_t rx_multiseg, tx_full;
	uint64_t redir_out, redir_in, redir_drop;
	uint64_t gate_shut, link_downs, tx_link_down;
	bool link_up;                 /* as last seen (every LINK_CHECK_MS) */
	uint64_t link_check_ms;
	struct coil__net net;
	struct coil__dpdk_tcp tcp;
};

static inline struct dl *D(struct coil_loop *loop)
{
	return loop->be_data;
}

struct coil__dpdk_tcp *coil__dpdk_tcp_of(struct coil_loop *loop)
{
	return loop->be_data ? &D(loop)->tcp : NULL;
}

/* ---- the port gate, the loops' side (see dpdk_internal.h) ---- */

/* A loop may call the port's rx/tx burst functions: true, and then
 * port_leave() once done; false: not now (the interrupt thread may be
 * tearing the rings down), try on a later turn. */
static inline bool port_enter(struct dl *d)
{
	if (!coil__dpdk.gated)
		return true;
	atomic_store(&coil__dpdk.busy[d->q].busy, 1);
	if (atomic_load(&coil__dpdk.gate_open))
		return true;
	atomic_store_explicit(&coil__dpdk.busy[d->q].busy, 0,
			      memory_order_release);
	d->gate_shut++;
	/* The interrupt thread is between two parkings, often on our CPU
	 * (DPDK puts it on the main lcore's when no other is free): let it
	 * get there rather than spin through our time slice. */
	sched_yield();
	return false;
}

static inline void port_leave(struct dl *d)
{
	if (coil__dpdk.gated)
		atomic_store_explicit(&coil__dpdk.busy[d->q].busy, 0,
				      memory_order_release);
}

/* ---- the packet-buffer abstraction over mbufs ---- */

static void to_pkt(struct rte_mbuf *m, struct coil__pkt *p)
{
	uint64_t f = m->ol_flags;

	p->handle = m;
	p->data = rte_pktmbuf_mtod(m, uint8_t *);
	p->len = rte_pktmbuf_data_len(m);
	p->headroom = rte_pktmbuf_headroom(m);
	p->tailroom = rte_pktmbuf_tailroom(m);
	p->flags = 0;
	if ((f & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD)
		p->flags |= COIL__PKT_RX_IP_GOOD;
	else if ((f & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_BAD)
		p->flags |= COIL__PKT_RX_IP_BAD;
	/* CKSUM_NONE: "the checksum in the packet is not correct, but the
	 * integrity of the data is verified" (rte_mbuf_core.h): a frame from
	 * a virtio guest that left its checksum to the host (a vhost-user
	 * peer), never computed because it never crossed a wire. */
	if ((f & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD ||
	    (f & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_NONE)
		p->flags |= COIL__PKT_RX_L4_GOOD;
	else if ((f & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_BAD)
		p->flags |= COIL__PKT_RX_L4_BAD;
}

static int io_alloc(void *ctx, struct coil__pkt *p)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(coil__dpdk.pool);

	(void)ctx;
	if (!m)
		return -ENOBUFS;
	to_pkt(m, p);
	return 0;
}

static void io_free(void *ctx, struct coil__pkt *p)
{
	(void)ctx;
	rte_pktmbuf_free(p->handle);
	p->handle = NULL;
}

static void tx_flush(struct dl *d)
{
	unsigned sent = 0;

	/* A link that is down takes nothing: the frames wait (up to
	 * TX_HOLD, then drop) for it to come back. */
	if (!d->link_up || !port_enter(d))
		return;
	while (sent < d->ntx) {
		unsigned want = d->ntx - sent < BURST ? d->ntx - sent : BURST;
		uint16_t n = rte_eth_tx_burst(coil__dpdk.port, d->q,
					      d->tx + sent, (uint16_t)want);

		sent += n;
		if (n < want)
			break;   /* the ring is full: the rest waits */
	}
	port_leave(d);
	if (sent && sent < d->ntx)
		memmove(d->tx, d->tx + sent,
			(d->ntx - sent) * sizeof(d->tx[0]));
	d->ntx -= sent;
}

static void io_xmit(void *ctx, struct coil__pkt *p)
{
	struct dl *d = ctx;
	struct rte_mbuf *m = p->handle;

	m->data_off = (uint16_t)(p->data - (uint8_t *)m->buf_addr);
	m->data_len = (uint16_t)p->len;
	m->pkt_len = p->len;
	m->ol_flags = 0;
	if (p->flags & (COIL__PKT_TX_IP_CSUM | COIL__PKT_TX_UDP_CSUM |
			COIL__PKT_TX_TCP_CSUM)) {
		m->l2_len = COIL__ETH_HLEN;
		m->l3_len = COIL__IP_HLEN;
		m->ol_flags |= RTE_MBUF_F_TX_IPV4;
		if (p->flags & COIL__PKT_TX_IP_CSUM)
			m->ol_flags |= RTE_MBUF_F_TX_IP_CKSUM;
		if (p->flags & COIL__PKT_TX_UDP_CSUM)
			m->ol_flags |= RTE_MBUF_F_TX_UDP_CKSUM;
		if (p->flags & COIL__PKT_TX_TCP_CSUM)
			m->ol_flags |= RTE_MBUF_F_TX_TCP_CKSUM;
	}
	if (d->ntx == TX_HOLD) {
		tx_flush(d);
		if (d->ntx == TX_HOLD) {
			/* The ring stays full and so many wait: drop
			 * (counted), as a NIC would. */
			d->tx_full++;
			rte_pktmbuf_free(m);
			return;
		}
	}
	d->tx[d->ntx++] = m;
	if (d->ntx % BURST == 0)
		tx_flush(d);
}

/* ---- UDP services ---- */

static void udp_input(void *ctx, const uint8_t *payload, size_t len,
		      uint32_t src, uint16_t sport)
{
	struct coil_udp *u = ctx;
	struct sockaddr_in peer = {
		.sin_family = AF_INET, .sin_port = sport,
		.sin_addr.s_addr = src,
	};

	if (len > u->max_dgram) {
		u->rx_dropped++;
		return;
	}
	coil__udp_deliver(u, payload, len, (struct sockaddr *)&peer,
			  sizeof(peer));
}

static int dpdk_udp_start(struct coil_udp *u)
{
	int ret = coil__net_udp_bind(&D(u->loop)->net, htons(u->port),
				     udp_input, u);

	u->armed = ret == 0;
	return ret;
}

static void dpdk_udp_stop(struct coil_udp *u)
{
	struct coil__net *n = &D(u->loop)->net;

	u->closed = true;
	for (unsigned i = 0; i < COIL__NET_MAX_BINDS; i++)
		if (n->binds[i].ctx == u)
			n->binds[i].port = 0;
}

static int dpdk_udp_send(struct coil_udp *u, const struct sockaddr *to,
			 socklen_t to_len, const void *data, size_t len)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)to;
	int ret;

	if (to_len < sizeof(*sin) || to->sa_family != AF_INET)
		return -EAFNOSUPPORT;
	ret = coil__net_udp_send(&D(u->loop)->net, htons(u->port),
				 sin->sin_addr.s_addr, sin->sin_port, data,
				 len);
	if (ret) {
		u->tx_dropped++;
	} else {
		u->tx_dgrams++;
		u->tx_bytes += len;
	}
	return ret;
}

/* ---- the loop ---- */

static int dpdk_loop_init(struct coil_loop *loop)
{
	struct coil__net_io io = { io_alloc, io_xmit, io_free, NULL };
	struct dl *d;

	if (loop->id >= coil__dpdk.nq)
		return -EINVAL;
	d = aligned_alloc(64, (sizeof(*d) + 63) & ~(size_t)63);
	if (!d)
		return -ENOMEM;
	memset(d, 0, sizeof(*d));
	/* A registered thread gets an lcore id, hence mempool caches. */
	if (rte_lcore_id() == LCORE_ID_ANY && rte_thread_register() < 0)
		coil__log("loop %u: rte_thread_register: %s (no mempool cache)",
			  loop->id, rte_strerror(rte_errno));
	d->loop = loop;
	d->q = (uint16_t)loop->id;
	io.ctx = d;
	coil__net_init(&d->net, &coil__dpdk.cfg, &io, loop->now_ms);
	if (coil__dpdk_tcp_init(&d->tcp, loop, &d->net, coil__dpdk.tx_tcp_csum,
				loop->conns.count,
				coil__dpdk.mbufs / coil__dpdk.nq)) {
		free(d);
		return -ENOMEM;
	}
	loop->be_data = d;
	loop->be_features = coil__dpdk.driver;
	return 0;
}

static void dpdk_loop_fini(struct coil_loop *loop)
{
	struct dl *d = D(loop);

	if (!d)
		return;
	coil__dpdk_tcp_fini(&d->tcp);
	tx_flush(d);
	if (d->ntx)
		rte_pktmbuf_free_bulk(d->tx, d->ntx);
	d->ntx = 0;
	coil__net_fini(&d->net);
	loop->be_data = NULL;
	free(d);
	rte_thread_unregister();
}

/*
 * Software steering of TCP between loops: a flow belongs to the loop
 * that a symmetric hash of its addresses and ports names, whichever queue
 * its segments arrive on (af_packet's fanout hashes the kernel's skb hash,
 * which for TCP changes with the sender's txhash; RSS keys are seldom
 * symmetric, and active opens must come back to their loop). A segment
 * that arrives elsewhere crosses to its loop through an SPSC ring.
 */
static unsigned flow_owner(uint32_t a, uint32_t b, uint16_t pa, uint16_t pb)
{
	uint64_t h = ((uint64_t)(a ^ b) << 16) ^ (uint16_t)(pa ^ pb);

	h *= 0x9e3779b97f4a7c15ull;
	h ^= h >> 29;
	return (unsigned)(h % coil__dpdk.nq);
}

bool coil__dpdk_flow_mine(void *loop, uint32_t raddr, uint16_t rport,
			  uint16_t lport)
{
	return coil__dpdk.nq < 2 ||
	       flow_owner(raddr, coil__dpdk.cfg.ip, rport, lport) ==
		       D(loop)->q;
}

/* The loop a received TCP segment belongs to, or -1 (not TCP: stays). */
static int tcp_owner(struct rte_mbuf *m)
{
	const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
	const struct coil__ip_hdr *ip;
	const uint16_t *ports;
	uint32_t hlen;

	if (rte_pktmbuf_data_len(m) < COIL__ETH_HLEN + COIL__IP_HLEN + 4 ||
	    f[12] != 0x08 || f[13] != 0x00)
		return -1;
	ip = (const struct coil__ip_hdr *)(f + COIL__ETH_HLEN);
	hlen = (uint32_t)(ip->vihl & 0x0f) * 4;
	if (ip->proto != COIL__IPPROTO_TCP || hlen < COIL__IP_HLEN ||
	    rte_pktmbuf_data_len(m) < COIL__ETH_HLEN + hlen + 4)
		return -1;
	ports = (const uint16_t *)((const uint8_t *)ip + hlen);
	return (int)flow_owner(ip->src, ip->dst, ports[0], ports[1]);
}

static void rx_one(struct dl *d, struct rte_mbuf *m)
{
	struct coil__pkt p;

	if (m->nb_segs != 1) {
		/* jumbo frames in chained mbufs: not handled */
		d->rx_multiseg++;
		rte_pktmbuf_free(m);
		return;
	}
	to_pkt(m, &p);
	coil__net_input(&d->net, &p);
}

/*
 * Follow the port's link. A vdev's link comes and goes with its peer
 * (memif, vhost: the other process starts, exits, restarts). Down: the
 * loop stops bursting (memif's rings may be gone), drops the frames it
 * held for the old peer and lets the net layer forget its neighbours (a
 * new peer has a new MAC). Up: bursts resume, and ARP requests sent
 * while it was down go again at once. A driver that cannot tell counts
 * as up.
 */
static void link_check(struct dl *d, uint64_t now_ms)
{
	struct rte_eth_link l;
	bool up;

	d->link_check_ms = now_ms + LINK_CHECK_MS;
	up = rte_eth_link_get_nowait(coil__dpdk.port, &l) != 0 ||
	     l.link_status == RTE_ETH_LINK_UP;
	if (up == d->link_up)
		return;
	d->link_up = up;
	if (d->q == 0)   /* one line per change, not one per loop */
		coil__log("dpdk: port %u link %s", coil__dpdk.port, up ? "up" : "down");
	if (up) {
		coil__net_link_up(&d->net);
		return;
	}
	d->link_downs++;
	if (d->ntx) {
		d->tx_link_down += d->ntx;
		rte_pktmbuf_free_bulk(d->tx, d->ntx);
		d->ntx = 0;
	}
	coil__net_link_down(&d->net);
}

static void dpdk_wait(struct coil_loop *loop, int64_t timeout_ms)
{
	struct dl *d = D(loop);
	struct rte_mbuf *rx[BURST];
	uint16_t n;

	coil__dpdk_tcp_poll(&d->tcp);
	if (loop->now_ms >= d->link_check_ms)
		link_check(d, loop->now_ms);
	n = 0;
	if (d->link_up && port_enter(d)) {
		/* (memif copies into our own mbufs: nothing of what it
		 * returns lives in the shared regions) */
		n = rte_eth_rx_burst(coil__dpdk.port, d->q, rx, BURST);
		port_leave(d);
	}
	for (uint16_t i = 0; i < n; i++) {
		int o;

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(rx[i + 1], void *));
		if (coil__dpdk.nq > 1 && (o = tcp_owner(rx[i])) >= 0 &&
		    o != d->q) {
			if (rte_ring_sp_enqueue(coil__dpdk.redir[d->q][o],
						rx[i])) {
				d->redir_drop++;
				rte_pktmbuf_free(rx[i]);
			} else {
				d->redir_out++;
			}
			continue;
		}
		rx_one(d, rx[i]);
	}
	for (uint16_t from = 0; coil__dpdk.nq > 1 && from < coil__dpdk.nq;
	     from++) {
		unsigned k;

		if (from == d->q)
			continue;
		k = rte_ring_sc_dequeue_burst(coil__dpdk.redir[from][d->q],
					      (void **)rx, BURST, NULL);
		d->redir_in += k;
		n = (uint16_t)(n + k);
		for (unsigned i = 0; i < k; i++)
			rx_one(d, rx[i]);
	}
	coil__net_tick(&d->net, loop->now_ms);
	if (d->ntx)
		tx_flush(d);
	if (!n && coil__dpdk.idle_sleep_us && timeout_ms != 0) {
		uint64_t us = coil__dpdk.idle_sleep_us;
		struct timespec ts;

		if (timeout_ms > 0 && (uint64_t)timeout_ms * 1000 < us)
			us = (uint64_t)timeout_ms * 1000;
		ts.tv_sec = (time_t)(us / 1000000);
		ts.tv_nsec = (long)(us % 1000000) * 1000;
		nanosleep(&ts, NULL);
		coil__loop_clock(loop);
	}
}

static void dpdk_wake(struct coil_loop *loop)
{
	/* A busy-polling loop sees its stop flags within one turn (or one
	 * idle sleep). */
	(void)loop;
}

static void dpdk_log_stats(struct coil_loop *loop)
{
	struct dl *d = D(loop);
	char buf[1024];

	if (!d)
		return;
	coil__net_format_stats(&d->net.st, buf, sizeof(buf));
	coil__log("loop %u: net: %s; rx_multiseg %llu tx_full %llu redir_out "
		  "%llu redir_in %llu redir_drop %llu link_downs %llu "
		  "tx_link_down %llu gate_shut %llu", loop->id, buf,
		  (unsigned long long)d->rx_multiseg,
		  (unsigned long long)d->tx_full,
		  (unsigned long long)d->redir_out,
		  (unsigned long long)d->redir_in,
		  (unsigned long long)d->redir_drop,
		  (unsigned long long)d->link_downs,
		  (unsigned long long)d->tx_link_down,
		  (unsigned long long)d->gate_shut);
	coil__tcp_format_stats(&d->tcp.tcp.st, buf, sizeof(buf));
	coil__log("loop %u: %s", loop->id, buf);
	if (loop->id == 0) {
		/* what the port itself dropped (no descriptor, no mbuf) */
		struct rte_eth_stats es;

		if (rte_eth_stats_get(coil__dpdk.port, &es) == 0)
			coil__log("dpdk port %u: ipackets %llu opackets %llu "
				  "imissed %llu ierrors %llu oerrors %llu "
				  "rx_nombuf %llu", coil__dpdk.port,
				  (unsigned long long)es.ipackets,
				  (unsigned long long)es.opackets,
				  (unsigned long long)es.imissed,
				  (unsigned long long)es.ierrors,
				  (unsigned long long)es.oerrors,
				  (unsigned long long)es.rx_nombuf);
	}
}

/* TCP: coil's own (engine/net/tcp*.c) through dpdk_tcp.c. */
const struct coil__backend_ops coil__dpdk_ops = {
	.name = "dpdk",
	.loop_init = dpdk_loop_init,
	.loop_fini = dpdk_loop_fini,
	.listen_start = coil__dpdk_listen_start,
	.listen_stop = coil__dpdk_listen_stop,
	.recv_arm = coil__dpdk_recv_arm,
	.recv_cancel = coil__dpdk_recv_cancel,
	.send = coil__dpdk_send,
	.send_cancel = coil__dpdk_send_cancel,
	.send_file = coil__dpdk_send,
	.connect = coil__dpdk_connect,
	.connect_cancel = coil__dpdk_connect_cancel,
	.shut_wr = coil__dpdk_shut_wr,
	.close = coil__dpdk_close,
	.addr = coil__dpdk_addr,
	.wait = dpdk_wait,
	.wake = dpdk_wake,
	.udp_start = dpdk_udp_start,
	.udp_stop = dpdk_udp_stop,
	.udp_send = dpdk_udp_send,
	.own_stack = true,
	.log_stats = dpdk_log_stats,
};
