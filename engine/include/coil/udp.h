/* SPDX-License-Identifier: MIT */
#ifndef COIL_UDP_H
#define COIL_UDP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct coil_engine;
struct coil_loop;

/*
 * UDP: a datagram service bound to a port on every loop (Twisted's
 * DatagramProtocol + listenUDP). The same protocol code runs on io_uring
 * (multishot recvmsg into a provided-buffer ring, sendmsg), epoll
 * (recvmmsg/sendmmsg) and DPDK (engine/net: the payload is a view into the
 * received mbuf). On the socket backends each loop has its own
 * SO_REUSEPORT socket; on DPDK each loop sees the datagrams RSS gives its
 * RX queue.
 *
 * struct coil_udp is one loop's end of a UDP service. Every function here
 * is for that loop's thread only, from a callback the loop runs
 * (on_datagram, a timer).
 */
struct coil_udp;

/* A received datagram, lent to on_datagram: `data` and `peer` are valid
 * only until on_datagram returns (they point into the receive buffer or
 * mbuf: zero copy). Copy what must outlive the call. */
struct coil_dgram {
	const uint8_t *data;          /* payload */
	size_t len;                   /* payload bytes */
	const struct sockaddr *peer;  /* sender (sockaddr_in or _in6) */
	socklen_t peer_len;
};

struct coil_udp_ops {
	/* One datagram arrived. Runs on the loop's thread; may send
	 * (coil_udp_send) from inside. Required. */
	void (*on_datagram)(struct coil_udp *udp, const struct coil_dgram *d);
};

/*
 * A UDP service. The engine copies it; the strings and `ops` must outlive
 * the engine. Zero means default for every numeric field.
 */
struct coil_udp_service {
	size_t sz;                    /* sizeof(struct coil_udp_service) */
	const char *addr;             /* IPv4/IPv6 literal; NULL: 0.0.0.0.
					 Ignored on DPDK (the port's --ip) */
	uint16_t port;                /* 0: ephemeral (socket backends
					 only: -EINVAL on DPDK) */
	const struct coil_udp_ops *ops;
	unsigned max_datagram;        /* largest payload received or sent;
					 default 9216. Larger ones are
					 dropped (counted). DPDK: at most the
					 MTU minus headers, no fragments */
	unsigned bufs;                /* receive buffers per loop (socket
					 backends); default 512 */
	void *data;                   /* free for the owner */
};

/*
 * Open the UDP service on every loop (one SO_REUSEPORT socket per loop on
 * the socket backends; a port binding in each loop's stack on DPDK). Call
 * before coil_engine_run(). Returns the UDP service index (>= 0; its own
 * numbering, apart from coil_engine_listen's) or -errno (-EADDRINUSE,
 * -EINVAL for a bad address, max_datagram > 65507 or port 0 on DPDK,
 * -ENOSPC when COIL_ENGINE_MAX_SERVICES UDP services exist). The service is refused by a loop that
 * cannot start it (coil_engine_run then fails). Main thread.
 */
int coil_engine_udp(struct coil_engine *eng, const struct coil_udp_service *svc);

/* The bound port of UDP service `index` (useful with port 0), or 0. Any
 * thread, after coil_engine_udp. */
uint16_t coil_engine_udp_port(const struct coil_engine *eng, int index);

/*
 * Send one datagram of `len` bytes to `to`. The bytes are copied (into a
 * send slot on the socket backends, into a new mbuf behind room for the
 * headers on DPDK) before this returns, so `data` may be the payload of
 * the datagram being handled. Datagrams go out at the end of the loop
 * turn, batched. Returns 0, or -EMSGSIZE (larger than max_datagram, or the
 * MTU on DPDK), -ENOBUFS (send slots or mbufs exhausted: the datagram is
 * dropped and counted, as a full socket buffer would), -EAFNOSUPPORT,
 * -EHOSTUNREACH (DPDK: no route / the neighbour did not answer ARP).
 * Loop thread only.
 */
int coil_udp_send(struct coil_udp *udp, const struct sockaddr *to,
		  socklen_t to_len, const void *data, size_t len);

/* The loop that owns `udp`. */
struct coil_loop *coil_udp_loop(const struct coil_udp *udp);

/* The `data` pointer of the service. */
void *coil_udp_service_data(const struct coil_udp *udp);

#endif
