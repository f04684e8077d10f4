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
 */
#define ALLOW_EXPERIMENTAL_API 1
#include "backend.h"
#include "dpdk_tcp.h"
#include "../net/net.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_interrupts.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define BURST 32
#define NB_DESC 512
#define MAX_EAL_ARGS 64
#define MAX_Q 16          /* loops that steer TCP to each other */
#define REDIR_RING 1024
/* Frames a full TX ring leaves waiting for the next turn: a link whose
 * peer drains slower than we send (a memif or vhost peer process, a NIC
 * paused by flow control) pushes back instead of dropping at once. */
#define TX_HOLD 1024
/* How often the loops look at the port's link (rte_eth_link_get_nowait). */
#define LINK_CHECK_MS 10
/* How long the EAL interrupt thread stays parked in the port gate (below)
 * at a time, letting the loops poll: the delay a memif control message
 * (connect, disconnect) may wait. */
#define GATE_SLICE_US 2000

/*
 * The port gate. net_memif (DPDK 22.11) runs its control channel on the
 * EAL interrupt thread: when the peer goes away (its process exits or
 * disconnects), memif_disconnect() there clears the CONNECTED flag, then
 * munmap()s the shared regions that hold the rings and buffers and frees
 * their descriptors (memif_free_regions), and on the next connect maps
 * new ones, all with no synchronisation with eth_memif_rx/tx, which test
 * the flag once on entry and then read the rings. A loop that passed the
 * test (or is preempted inside a burst) while the peer disconnects reads
 * unmapped memory: SIGSEGV. Checking the link first only narrows that
 * window.
 *
 * So for such a port the loops burst only while the interrupt thread is
 * known to be elsewhere: parked in gate_cb, a callback of ours on an
 * always-readable eventfd, which opens the gate, sleeps GATE_SLICE_US and
 * closes it again, waiting for every loop to leave its burst before it
 * returns and lets the thread run memif's callbacks. A loop announces a
 * burst in its busy flag and then checks the gate; gate_cb closes the
 * gate and then checks the flags (both sequentially consistent): either
 * the loop sees the gate closed and skips the burst, or gate_cb sees the
 * loop inside and waits. The interrupt thread is single, so while it is
 * parked no other callback of it (memif's) can run.
 *
 * net_vhost needs none of this (its queues have their own allow/while
 * queuing handshake with the vhost-user thread), nor net_virtio_user (its
 * rings are its own memory, never unmapped by a disconnect), nor NICs.
 */
struct gate_flag {
	_Alignas(64) atomic_int busy;
};

/* Process-wide: the EAL, the port and the pool (set up on the main thread
 * before the loops start, read-only afterwards). */
static struct {
	bool eal, started, cleaned, has_port, tx_tcp_csum;
	uint16_t port;
	uint16_t nq;
	unsigned mbufs;
	struct rte_mempool *pool;
	struct coil__net_cfg cfg;
	unsigned idle_sleep_us;
	char driver[64];
	char *argbuf;
	/* TCP segments a loop received for another loop's flow: [from][to]
	 * (single producer, single consumer). */
	struct rte_ring *redir[MAX_Q][MAX_Q];
	/* the port gate (gated: the port needs it, see above) */
	bool gated;
	int gate_fd;
	struct rte_intr_handle *gate_ih;
	_Alignas(64) atomic_int gate_open;
	struct gate_flag busy[MAX_Q];
} g = { .gate_fd = -1 };

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

/* ---- the port gate (see the top) ---- */

/* The EAL interrupt thread: let the loops poll for a slice, then wait
 * until none is inside a burst. */
static void gate_cb(void *arg)
{
	struct timespec ts = { 0, GATE_SLICE_US * 1000L };

	(void)arg;
	atomic_store(&g.gate_open, 1);
	nanosleep(&ts, NULL);
	atomic_store(&g.gate_open, 0);
	for (unsigned q = 0; q < MAX_Q; q++)
		while (atomic_load(&g.busy[q].busy))
			sched_yield();
}

/* A loop may call the port's rx/tx burst functions: true, and then
 * port_leave() once done; false: not now (the interrupt thread may be
 * tearing the rings down), try on a later turn. */
static inline bool port_enter(struct dl *d)
{
	if (!g.gated)
		return true;
	atomic_store(&g.busy[d->q].busy, 1);
	if (atomic_load(&g.gate_open))
		return true;
	atomic_store_explicit(&g.busy[d->q].busy, 0, memory_order_release);
	d->gate_shut++;
	/* The interrupt thread is between two parkings, often on our CPU
	 * (DPDK puts it on the main lcore's when no other is free): let it
	 * get there rather than spin through our time slice. */
	sched_yield();
	return false;
}

static inline void port_leave(struct dl *d)
{
	if (g.gated)
		atomic_store_explicit(&g.busy[d->q].busy, 0,
				      memory_order_release);
}

static int gate_start(void)
{
	int ret;

	g.gate_fd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
	if (g.gate_fd < 0)
		return -errno;
	g.gate_ih = rte_intr_instance_alloc(RTE_INTR_INSTANCE_F_PRIVATE);
	if (!g.gate_ih)
		return -ENOMEM;
	if (rte_intr_fd_set(g.gate_ih, g.gate_fd) ||
	    rte_intr_type_set(g.gate_ih, RTE_INTR_HANDLE_EXT))
		return -EINVAL;
	/* EXT: the EAL reads nothing from it, so it stays readable and the
	 * thread comes back to the gate after each round of callbacks. */
	ret = rte_intr_callback_register(g.gate_ih, gate_cb, NULL);
	if (ret)
		return ret;
	g.gated = true;
	return 0;
}

static void gate_stop(void)
{
	if (g.gated) {
		eventfd_t v;

		/* Drained, the eventfd no longer calls the thread back to the
		 * gate; then wait for a gate_cb under way to end. */
		(void)eventfd_read(g.gate_fd, &v);
		(void)rte_intr_callback_unregister_sync(g.gate_ih, gate_cb,
							NULL);
		g.gated = false;
	}
	if (g.gate_ih) {
		rte_intr_instance_free(g.gate_ih);
		g.gate_ih = NULL;
	}
	if (g.gate_fd >= 0) {
		close(g.gate_fd);
		g.gate_fd = -1;
	}
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
	struct rte_mbuf *m = rte_pktmbuf_alloc(g.pool);

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
		uint16_t n = rte_eth_tx_burst(g.port, d->q, d->tx + sent,
					      (uint16_t)want);

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

	if (loop->id >= g.nq)
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
	coil__net_init(&d->net, &g.cfg, &io, loop->now_ms);
	if (coil__dpdk_tcp_init(&d->tcp, loop, &d->net, g.tx_tcp_csum,
				loop->conns.count, g.mbufs / g.nq)) {
		free(d);
		return -ENOMEM;
	}
	loop->be_data = d;
	loop->be_features = g.driver;
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
	return (unsigned)(h % g.nq);
}

bool coil__dpdk_flow_mine(void *loop, uint32_t raddr, uint16_t rport,
			  uint16_t lport)
{
	return g.nq < 2 ||
	       flow_owner(raddr, g.cfg.ip, rport, lport) ==
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
	up = rte_eth_link_get_nowait(g.port, &l) != 0 ||
	     l.link_status == RTE_ETH_LINK_UP;
	if (up == d->link_up)
		return;
	d->link_up = up;
	if (d->q == 0)   /* one line per change, not one per loop */
		coil__log("dpdk: port %u link %s", g.port, up ? "up" : "down");
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
		n = rte_eth_rx_burst(g.port, d->q, rx, BURST);
		port_leave(d);
	}
	for (uint16_t i = 0; i < n; i++) {
		int o;

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(rx[i + 1], void *));
		if (g.nq > 1 && (o = tcp_owner(rx[i])) >= 0 && o != d->q) {
			if (rte_ring_sp_enqueue(g.redir[d->q][o], rx[i])) {
				d->redir_drop++;
				rte_pktmbuf_free(rx[i]);
			} else {
				d->redir_out++;
			}
			continue;
		}
		rx_one(d, rx[i]);
	}
	for (uint16_t from = 0; g.nq > 1 && from < g.nq; from++) {
		unsigned k;

		if (from == d->q)
			continue;
		k = rte_ring_sc_dequeue_burst(g.redir[from][d->q],
					      (void **)rx, BURST, NULL);
		d->redir_in += k;
		n = (uint16_t)(n + k);
		for (unsigned i = 0; i < k; i++)
			rx_one(d, rx[i]);
	}
	coil__net_tick(&d->net, loop->now_ms);
	if (d->ntx)
		tx_flush(d);
	if (!n && g.idle_sleep_us && timeout_ms != 0) {
		uint64_t us = g.idle_sleep_us;
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

		if (rte_eth_stats_get(g.port, &es) == 0)
			coil__log("dpdk port %u: ipackets %llu opackets %llu "
				  "imissed %llu ierrors %llu oerrors %llu "
				  "rx_nombuf %llu", g.port,
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

/* ---- process-wide setup ---- */

static int parse_cidr(const char *s, uint32_t *ip, uint32_t *mask)
{
	char buf[32];
	const char *slash;
	unsigned long bits = 32;
	char *end;
	struct in_addr a;

	if (!s)
		return -EINVAL;
	slash = strchr(s, '/');
	if ((slash ? (size_t)(slash - s) : strlen(s)) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, slash ? (size_t)(slash - s) : strlen(s) + 1);
	if (slash) {
		buf[slash - s] = 0;
		bits = strtoul(slash + 1, &end, 10);
		if (*end || end == slash + 1 || bits < 1 || bits > 32)
			return -EINVAL;
	}
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -EINVAL;
	*ip = a.s_addr;
	*mask = htonl(bits == 32 ? 0xffffffffu : ~(0xffffffffu >> bits));
	return 0;
}

static int eal_init(const char *args)
{
	char *argv[MAX_EAL_ARGS + 3], *tok, *save = NULL, prefix[48];
	int argc = 0, ret;
	bool has_prefix = false;

	g.argbuf = strdup(args ? args : "");
	if (!g.argbuf)
		return -ENOMEM;
	argv[argc++] = (char *)"coil";
	for (tok = strtok_r(g.argbuf, " \t\n", &save); tok;
	     tok = strtok_r(NULL, " \t\n", &save)) {
		if (argc >= MAX_EAL_ARGS) {
			coil__log("dpdk: more than %d EAL arguments",
				  MAX_EAL_ARGS);
			return -E2BIG;
		}
		if (!strncmp(tok, "--file-prefix", 13))
			has_prefix = true;
		argv[argc++] = tok;
	}
	/* Two coil processes (or coil and testpmd) must not share the EAL's
	 * runtime directory unless asked to. */
	if (!has_prefix) {
		snprintf(prefix, sizeof(prefix), "--file-prefix=coil%ld",
			 (long)getpid());
		argv[argc++] = prefix;
	}
	argv[argc] = NULL;
	ret = rte_eal_init(argc, argv);
	if (ret < 0) {
		coil__log("dpdk: EAL initialisation failed: %s (arguments: %s)",
			  rte_strerror(rte_errno), args ? args : "");
		return rte_errno ? -rte_errno : -EINVAL;
	}
	g.eal = true;
	return 0;
}

int coil__dpdk_setup(const struct coil_engine_opts *o, unsigned *nloops)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	struct rte_ether_addr mac;
	uint16_t nrxd = NB_DESC, ntxd = NB_DESC, port;
	unsigned mbufs = o->mbufs ? o->mbufs : 8192, nq;
	uint64_t txo = 0, rxo = 0;
	int ret;

	if (g.eal) {
		coil__log("dpdk: the EAL can be initialised once per process");
		return -EALREADY;
	}
	memset(&g.cfg, 0, sizeof(g.cfg));
	if (parse_cidr(o->ip, &g.cfg.ip, &g.cfg.mask)) {
		coil__log("dpdk: need the port's address as --ip A.B.C.D/NN "
			  "(got '%s')", o->ip ? o->ip : "");
		return -EINVAL;
	}
	if (o->gw) {
		struct in_addr a;

		if (inet_pton(AF_INET, o->gw, &a) != 1) {
			coil__log("dpdk: bad gateway '%s'", o->gw);
			return -EINVAL;
		}
		g.cfg.gw = a.s_addr;
	}
	g.idle_sleep_us = o->idle_sleep_us;
	ret = eal_init(o->dpdk_args);
	if (ret)
		goto fail;
	port = RTE_MAX_ETHPORTS;
	RTE_ETH_FOREACH_DEV(port)
		break;
	if (port >= RTE_MAX_ETHPORTS) {
		coil__log("dpdk: no port (name one with --vdev=..., or bind a "
			  "NIC with dpdk-devbind)");
		ret = -ENODEV;
		goto fail;
	}
	g.port = port;
	g.has_port = true;
	ret = rte_eth_dev_info_get(port, &info);
	if (ret)
		goto fail;
	nq = *nloops;
	if (nq > info.max_rx_queues)
		nq = info.max_rx_queues;
	if (nq > info.max_tx_queues)
		nq = info.max_tx_queues;
	/* Without RSS hash types to configure, several queues are still
	 * used: vdevs such as net_af_packet (qpairs=N: a kernel fanout
	 * group) and net_af_xdp (queue_count=N: the NIC's own RSS) spread
	 * flows themselves. */
	if (nq > 1 && !(info.flow_type_rss_offloads &
			(RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP)))
		coil__log("dpdk: %s offers no RSS to configure: %u queues, "
			  "spread by the driver (or all on queue 0)",
			  info.driver_name, nq);
	if (!nq)
		nq = 1;
	if (nq > MAX_Q)
		nq = MAX_Q;   /* TCP steering between loops covers MAX_Q */
	memset(&conf, 0, sizeof(conf));
	if (nq > 1 && (info.flow_type_rss_offloads &
			(RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP))) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
			(RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) &
			info.flow_type_rss_offloads;
	}
	txo = info.tx_offload_capa &
	      (RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM |
	       RTE_ETH_TX_OFFLOAD_TCP_CKSUM);
	rxo = info.rx_offload_capa &
	      (RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM |
	       RTE_ETH_RX_OFFLOAD_TCP_CKSUM);
	conf.txmode.offloads = txo;
	conf.rxmode.offloads = rxo;
	g.cfg.tx_ip_csum = txo & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
	g.cfg.tx_udp_csum = txo & RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
	g.tx_tcp_csum = txo & RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
	/* A cache per lcore must stay well below the pool (DPDK: at most
	 * size / 1.5). */
	g.pool = rte_pktmbuf_pool_create("coil_mbufs", mbufs,
					 mbufs >= 2048 ? 256 : mbufs / 8, 0,
					 RTE_MBUF_DEFAULT_BUF_SIZE,
					 (int)rte_socket_id());
	if (!g.pool) {
		coil__log("dpdk: cannot create a pool of %u mbufs: %s (with "
			  "--no-huge, -m must cover it: ~2.3 KiB each)",
			  mbufs, rte_strerror(rte_errno));
		ret = -ENOMEM;
		goto fail;
	}
	ret = rte_eth_dev_configure(port, (uint16_t)nq, (uint16_t)nq, &conf);
	if (ret)
		goto fail_port;
	ret = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrxd, &ntxd);
	if (ret)
		goto fail_port;
	if ((unsigned)nq * (nrxd + ntxd) + 1024 > mbufs)
		coil__log("dpdk: %u queue(s) x %u+%u descriptors leave few of "
			  "the %u mbufs (--mbufs)", nq, nrxd, ntxd, mbufs);
	for (uint16_t q = 0; q < nq; q++) {
		struct rte_eth_txconf txc = info.default_txconf;
		struct rte_eth_rxconf rxc = info.default_rxconf;

		txc.offloads = txo;
		rxc.offloads = rxo;
		ret = rte_eth_rx_queue_setup(port, q, nrxd,
					     rte_eth_dev_socket_id(port), &rxc,
					     g.pool);
		if (ret)
			goto fail_port;
		ret = rte_eth_tx_queue_setup(port, q, ntxd,
					     rte_eth_dev_socket_id(port), &txc);
		if (ret)
			goto fail_port;
	}
	ret = rte_eth_dev_start(port);
	if (ret)
		goto fail_port;
	g.started = true;
	if (!strcmp(info.driver_name, "net_memif")) {
		ret = gate_start();
		if (ret) {
			coil__log("dpdk: cannot set up the port gate on the "
				  "EAL interrupt thread: %s", strerror(-ret));
			goto fail;
		}
	}
	ret = rte_eth_macaddr_get(port, &mac);
	if (ret)
		goto fail_port;
	memcpy(g.cfg.mac, mac.addr_bytes, 6);
	{
		uint16_t mtu = 1500;

		if (rte_eth_dev_get_mtu(port, &mtu) == 0 && mtu >= 576)
			g.cfg.mtu = mtu;
	}
	for (unsigned a = 0; nq > 1 && a < nq; a++)
		for (unsigned b = 0; b < nq; b++) {
			char name[32];

			if (a == b)
				continue;
			snprintf(name, sizeof(name), "coil_redir_%u_%u", a, b);
			g.redir[a][b] = rte_ring_create(name, REDIR_RING,
							(int)rte_socket_id(),
							RING_F_SP_ENQ |
								RING_F_SC_DEQ);
			if (!g.redir[a][b]) {
				ret = -ENOMEM;
				goto fail_port;
			}
		}
	g.nq = (uint16_t)nq;
	g.mbufs = mbufs;
	if (nq < *nloops)
		coil__log("dpdk: the port has %u usable queue pair(s): "
			  "running %u loop(s)", nq, nq);
	*nloops = nq;
	snprintf(g.driver, sizeof(g.driver), "%s, queue per loop%s%s",
		 info.driver_name,
		 conf.rxmode.mq_mode == RTE_ETH_MQ_RX_RSS ? ", RSS" : "",
		 txo ? ", tx checksum offload" : "");
	{
		char ip[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &g.cfg.ip, ip, sizeof(ip));
		coil__log("dpdk: port %u (%s) %02x:%02x:%02x:%02x:%02x:%02x "
			  "%s, mtu %u, %u queue pair(s), %u mbufs, checksum "
			  "offload tx %s%s%s rx %s%s%s",
			  port, info.driver_name, mac.addr_bytes[0],
			  mac.addr_bytes[1], mac.addr_bytes[2],
			  mac.addr_bytes[3], mac.addr_bytes[4],
			  mac.addr_bytes[5], ip, g.cfg.mtu ? g.cfg.mtu : 1500,
			  nq, mbufs,
			  (txo & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) ? "ip " : "",
			  (txo & RTE_ETH_TX_OFFLOAD_UDP_CKSUM) ? "udp" : "-",
			  (txo & RTE_ETH_TX_OFFLOAD_TCP_CKSUM) ? " tcp" : "",
			  (rxo & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) ? "ip " : "",
			  (rxo & RTE_ETH_RX_OFFLOAD_UDP_CKSUM) ? "udp" : "-",
			  (rxo & RTE_ETH_RX_OFFLOAD_TCP_CKSUM) ? " tcp" : "");
	}
	return 0;
fail_port:
	coil__log("dpdk: port %u setup failed: %s", port, strerror(-ret));
fail:
	coil__dpdk_teardown();
	return ret < 0 ? ret : -EINVAL;
}

int coil__dpdk_link_wait(unsigned timeout_ms)
{
	struct timespec t0, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct rte_eth_link l;
		int64_t ms;

		if (rte_eth_link_get_nowait(g.port, &l) != 0 ||
		    l.link_status == RTE_ETH_LINK_UP)
			return 0;   /* (a driver that cannot tell counts as up) */
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (int64_t)(now.tv_sec - t0.tv_sec) * 1000 +
		     (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (ms >= (int64_t)timeout_ms)
			return -ETIMEDOUT;
		usleep(1000);
	}
}

void coil__dpdk_teardown(void)
{
	gate_stop();
	if (g.started) {
		(void)rte_eth_dev_stop(g.port);
		g.started = false;
	}
	if (g.eal && !g.cleaned) {
		g.cleaned = true;
		if (g.has_port)
			(void)rte_eth_dev_close(g.port);
		for (unsigned a = 0; a < MAX_Q; a++)
			for (unsigned b = 0; b < MAX_Q; b++) {
				struct rte_ring *r = g.redir[a][b];
				void *m;

				if (!r)
					continue;
				while (rte_ring_dequeue(r, &m) == 0)
					rte_pktmbuf_free(m);
				rte_ring_free(r);
				g.redir[a][b] = NULL;
			}
		if (g.pool)
			rte_mempool_free(g.pool);
		g.pool = NULL;
		rte_eal_cleanup();
		/* g.eal stays true: DPDK cannot initialise twice anyway */
	}
	free(g.argbuf);
	g.argbuf = NULL;
}
