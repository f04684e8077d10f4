/* SPDX-License-Identifier: MIT */
/*
 * UDP services, the part shared by every backend: per-loop receive and
 * send pools, delivery to the protocol, send slots for the socket
 * backends, counters.
 */
#include "internal.h"
#include "../backend/backend.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_MAX_DGRAM 9216u
#define DEFAULT_BUFS 512u
/* Room before the payload in a receive buffer: io_uring's recvmsg_out
 * header and the peer's address. */
#define RX_HEAD 64u

int coil__udp_init(struct coil_udp *u, struct coil_loop *loop,
		   const struct coil_udp_service *svc, int index, int fd,
		   uint16_t port)
{
	uint32_t bufs;
	int ret;

	memset(u, 0, sizeof(*u));
	u->kind = COIL__UDP_OBJ_RX;
	u->index = index;
	u->loop = loop;
	u->svc = svc;
	u->fd = fd;
	u->port = port;
	u->max_dgram = svc->max_datagram ? svc->max_datagram : DEFAULT_MAX_DGRAM;
	bufs = svc->bufs ? svc->bufs : DEFAULT_BUFS;
	if (fd < 0)    /* DPDK: mbufs, no pools */
		return 0;
	u->rx_size = (u->max_dgram + RX_HEAD + 63) & ~63u;
	ret = coil__bufpool_init(&u->rx, bufs, u->rx_size);
	if (ret)
		return ret;
	ret = coil__bufpool_init(&u->txpool, bufs, u->max_dgram);
	if (ret)
		goto fail_rx;
	u->tx = calloc(bufs, sizeof(*u->tx));
	if (!u->tx) {
		ret = -ENOMEM;
		goto fail_tx;
	}
	return 0;
fail_tx:
	coil__bufpool_fini(&u->txpool);
fail_rx:
	coil__bufpool_fini(&u->rx);
	return ret;
}

void coil__udp_fini(struct coil_udp *u)
{
	if (u->fd >= 0) {
		close(u->fd);
		u->fd = -1;
	}
	if (u->tx) {
		free(u->tx);
		u->tx = NULL;
		coil__bufpool_fini(&u->txpool);
		coil__bufpool_fini(&u->rx);
	}
}

void coil__udp_deliver(struct coil_udp *u, const uint8_t *data, size_t len,
		       const struct sockaddr *peer, socklen_t peer_len)
{
	struct coil_dgram d = {
		.data = data, .len = len, .peer = peer, .peer_len = peer_len,
	};

	u->rx_dgrams++;
	u->rx_bytes += len;
	u->svc->ops->on_datagram(u, &d);
}

struct coil__udp_tx *coil__udp_tx_get(struct coil_udp *u,
				      const struct sockaddr *to,
				      socklen_t to_len, const void *data,
				      size_t len, int *err)
{
	struct coil__udp_tx *t;
	int32_t bid;

	if (to_len > sizeof(t->to) || to_len < sizeof(sa_family_t) ||
	    (to->sa_family != AF_INET && to->sa_family != AF_INET6)) {
		*err = -EAFNOSUPPORT;
		return NULL;
	}
	bid = coil__bufpool_take(&u->txpool);
	if (bid < 0) {
		u->tx_dropped++;
		*err = -ENOBUFS;
		return NULL;
	}
	t = &u->tx[bid];
	t->kind = COIL__UDP_OBJ_TX;
	t->bid = (uint32_t)bid;
	t->udp = u;
	t->next = NULL;
	memcpy(&t->to, to, to_len);
	if (len)
		memcpy(coil__buf_addr(&u->txpool, (uint32_t)bid), data, len);
	t->iov.iov_base = coil__buf_addr(&u->txpool, (uint32_t)bid);
	t->iov.iov_len = len;
	memset(&t->msg, 0, sizeof(t->msg));
	t->msg.msg_name = &t->to;
	t->msg.msg_namelen = to_len;
	t->msg.msg_iov = &t->iov;
	t->msg.msg_iovlen = 1;
	return t;
}

void coil__udp_tx_done(struct coil__udp_tx *t, int res)
{
	struct coil_udp *u = t->udp;

	if (res >= 0) {
		u->tx_dgrams++;
		u->tx_bytes += (uint64_t)res;
	} else {
		u->tx_dropped++;
	}
	coil__buf_put(&u->txpool, t->bid);
}

void coil__udp_log_stats(struct coil_loop *loop)
{
	for (unsigned i = 0; i < loop->nudp; i++) {
		const struct coil_udp *u = &loop->udp[i];

		coil__log("loop %u: udp %u: rx %llu datagrams (%llu B), tx %llu "
			  "(%llu B), rx_dropped %llu, tx_dropped %llu",
			  loop->id, u->port, (unsigned long long)u->rx_dgrams,
			  (unsigned long long)u->rx_bytes,
			  (unsigned long long)u->tx_dgrams,
			  (unsigned long long)u->tx_bytes,
			  (unsigned long long)u->rx_dropped,
			  (unsigned long long)u->tx_dropped);
	}
}

int coil_udp_send(struct coil_udp *u, const struct sockaddr *to,
		  socklen_t to_len, const void *data, size_t len)
{
	const struct coil__backend_ops *be = u->loop->be;

	if (len > u->max_dgram)
		return -EMSGSIZE;
	if (!be->udp_send)
		return -EOPNOTSUPP;
	if (u->closed)
		return -EPIPE;
	return be->udp_send(u, to, to_len, data, len);
}

struct coil_loop *coil_udp_loop(const struct coil_udp *u)
{
	return u->loop;
}

void *coil_udp_service_data(const struct coil_udp *u)
{
	return u->svc->data;
}
