/* SPDX-License-Identifier: MIT */
/*
 * The DPDK backend, once per process on the main thread: the EAL from the
 * engine's dpdk_args (a --file-prefix of our own unless given), the first
 * ethdev port with one RX/TX queue pair per loop (RSS when it offers it,
 * checksum offloads it has), the mbuf pool, the rings that carry TCP
 * segments between loops, and for a net_memif port the port gate's side
 * on the EAL interrupt thread (see dpdk_internal.h); then the teardown.
 */
#define ALLOW_EXPERIMENTAL_API 1
#include "dpdk_internal.h"

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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define NB_DESC 512
#define MAX_EAL_ARGS 64
#define REDIR_RING 1024
/* How long the EAL interrupt thread stays parked in the port gate
 * (dpdk_internal.h) at a time, letting the loops poll: the delay a memif
 * control message (connect, disconnect) may wait. */
#define GATE_SLICE_US 2000

struct coil__dpdk_process coil__dpdk = { .gate_fd = -1 };

/* ---- the port gate, the EAL interrupt thread's side ---- */

/* The EAL interrupt thread: let the loops poll for a slice, then wait
 * until none is inside a burst. */
static void gate_cb(void *arg)
{
	struct timespec ts = { 0, GATE_SLICE_US * 1000L };

	(void)arg;
	atomic_store(&coil__dpdk.gate_open, 1);
	nanosleep(&ts, NULL);
	atomic_store(&coil__dpdk.gate_open, 0);
	for (unsigned q = 0; q < MAX_Q; q++)
		while (atomic_load(&coil__dpdk.busy[q].busy))
			sched_yield();
}

static int gate_start(void)
{
	int ret;

	coil__dpdk.gate_fd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
	if (coil__dpdk.gate_fd < 0)
		return -errno;
	coil__dpdk.gate_ih =
		rte_intr_instance_alloc(RTE_INTR_INSTANCE_F_PRIVATE);
	if (!coil__dpdk.gate_ih)
		return -ENOMEM;
	if (rte_intr_fd_set(coil__dpdk.gate_ih, coil__dpdk.gate_fd) ||
	    rte_intr_type_set(coil__dpdk.gate_ih, RTE_INTR_HANDLE_EXT))
		return -EINVAL;
	/* EXT: the EAL reads nothing from it, so it stays readable and the
	 * thread comes back to the gate after each round of callbacks. */
	ret = rte_intr_callback_register(coil__dpdk.gate_ih, gate_cb, NULL);
	if (ret)
		return ret;
	coil__dpdk.gated = true;
	return 0;
}

static void gate_stop(void)
{
	if (coil__dpdk.gated) {
		eventfd_t v;

		/* Drained, the eventfd no longer calls the thread back to the
		 * gate; then wait for a gate_cb under way to end. */
		(void)eventfd_read(coil__dpdk.gate_fd, &v);
		(void)rte_intr_callback_unregister_sync(coil__dpdk.gate_ih,
							gate_cb, NULL);
		coil__dpdk.gated = false;
	}
	if (coil__dpdk.gate_ih) {
		rte_intr_instance_free(coil__dpdk.gate_ih);
		coil__dpdk.gate_ih = NULL;
	}
	if (coil__dpdk.gate_fd >= 0) {
		close(coil__dpdk.gate_fd);
		coil__dpdk.gate_fd = -1;
	}
}

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

	coil__dpdk.argbuf = strdup(args ? args : "");
	if (!coil__dpdk.argbuf)
		return -ENOMEM;
	argv[argc++] = (char *)"coil";
	for (tok = strtok_r(coil__dpdk.argbuf, " \t\n", &save); tok;
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
	coil__dpdk.eal = true;
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

	if (coil__dpdk.eal) {
		coil__log("dpdk: the EAL can be initialised once per process");
		return -EALREADY;
	}
	memset(&coil__dpdk.cfg, 0, sizeof(coil__dpdk.cfg));
	if (parse_cidr(o->ip, &coil__dpdk.cfg.ip, &coil__dpdk.cfg.mask)) {
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
		coil__dpdk.cfg.gw = a.s_addr;
	}
	coil__dpdk.idle_sleep_us = o->idle_sleep_us;
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
	coil__dpdk.port = port;
	coil__dpdk.has_port = true;
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
	coil__dpdk.cfg.tx_ip_csum = txo & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
	coil__dpdk.cfg.tx_udp_csum = txo & RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
	coil__dpdk.tx_tcp_csum = txo & RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
	/* A cache per lcore must stay well below the pool (DPDK: at most
	 * size / 1.5). */
	coil__dpdk.pool = rte_pktmbuf_pool_create("coil_mbufs", mbufs,
					 mbufs >= 2048 ? 256 : mbufs / 8, 0,
					 RTE_MBUF_DEFAULT_BUF_SIZE,
					 (int)rte_socket_id());
	if (!coil__dpdk.pool) {
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
					     coil__dpdk.pool);
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
	coil__dpdk.started = true;
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
	memcpy(coil__dpdk.cfg.mac, mac.addr_bytes, 6);
	{
		uint16_t mtu = 1500;

		if (rte_eth_dev_get_mtu(port, &mtu) == 0 && mtu >= 576)
			coil__dpdk.cfg.mtu = mtu;
	}
	for (unsigned a = 0; nq > 1 && a < nq; a++)
		for (unsigned b = 0; b < nq; b++) {
			char name[32];

			if (a == b)
				continue;
			snprintf(name, sizeof(name), "coil_redir_%u_%u", a, b);
			coil__dpdk.redir[a][b] =
				rte_ring_create(name, REDIR_RING,
						(int)rte_socket_id(),
						RING_F_SP_ENQ | RING_F_SC_DEQ);
			if (!coil__dpdk.redir[a][b]) {
				ret = -ENOMEM;
				goto fail_port;
			}
		}
	coil__dpdk.nq = (uint16_t)nq;
	coil__dpdk.mbufs = mbufs;
	if (nq < *nloops)
		coil__log("dpdk: the port has %u usable queue pair(s): "
			  "running %u loop(s)", nq, nq);
	*nloops = nq;
	snprintf(coil__dpdk.driver, sizeof(coil__dpdk.driver),
		 "%s, queue per loop%s%s", info.driver_name,
		 conf.rxmode.mq_mode == RTE_ETH_MQ_RX_RSS ? ", RSS" : "",
		 txo ? ", tx checksum offload" : "");
	{
		char ip[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &coil__dpdk.cfg.ip, ip, sizeof(ip));
		coil__log("dpdk: port %u (%s) %02x:%02x:%02x:%02x:%02x:%02x "
			  "%s, mtu %u, %u queue pair(s), %u mbufs, checksum "
			  "offload tx %s%s%s rx %s%s%s",
			  port, info.driver_name, mac.addr_bytes[0],
			  mac.addr_bytes[1], mac.addr_bytes[2],
			  mac.addr_bytes[3], mac.addr_bytes[4],
			  mac.addr_bytes[5], ip,
			  coil__dpdk.cfg.mtu ? coil__dpdk.cfg.mtu : 1500, nq,
			  mbufs,
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

		if (rte_eth_link_get_nowait(coil__dpdk.port, &l) != 0 ||
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
	if (coil__dpdk.started) {
		(void)rte_eth_dev_stop(coil__dpdk.port);
		coil__dpdk.started = false;
	}
	if (coil__dpdk.eal && !coil__dpdk.cleaned) {
		coil__dpdk.cleaned = true;
		if (coil__dpdk.has_port)
			(void)rte_eth_dev_close(coil__dpdk.port);
		for (unsigned a = 0; a < MAX_Q; a++)
			for (unsigned b = 0; b < MAX_Q; b++) {
				struct rte_ring *r = coil__dpdk.redir[a][b];
				void *m;

				if (!r)
					continue;
				while (rte_ring_dequeue(r, &m) == 0)
					rte_pktmbuf_free(m);
				rte_ring_free(r);
				coil__dpdk.redir[a][b] = NULL;
			}
		if (coil__dpdk.pool)
			rte_mempool_free(coil__dpdk.pool);
		coil__dpdk.pool = NULL;
		rte_eal_cleanup();
		/* coil__dpdk.eal stays true: DPDK cannot initialise twice
		 * anyway */
	}
	free(coil__dpdk.argbuf);
	coil__dpdk.argbuf = NULL;
}
