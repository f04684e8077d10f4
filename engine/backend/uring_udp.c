/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend's UDP services: each service receives with one
 * multishot recvmsg selecting from its own provided-buffer ring (group
 * UDP_BGID + its index), hands each datagram with its peer's address to
 * the core (coil__udp_deliver) and sends each datagram with one sendmsg.
 */
#include "uring_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

static void udp_recycle(void *ctx, uint32_t bid)
{
	struct coil_udp *u = ctx;
	struct udp_ring *r = u->be;

	io_uring_buf_ring_add(r->br, coil__buf_addr(&u->rx, bid), u->rx.size,
			      (unsigned short)bid, r->mask, 0);
	io_uring_buf_ring_advance(r->br, 1);
}

static void udp_arm(struct coil_udp *u)
{
	struct io_uring_sqe *sqe = sqe_get(U(u->loop));

	io_uring_prep_recvmsg_multishot(sqe, u->fd, &u->rx_msg, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = (uint16_t)(UDP_BGID + u->index);
	io_uring_sqe_set_data64(sqe, ud(u, TAG_UDP));
	u->armed = true;
}

int coil__uring_udp_start(struct coil_udp *u)
{
	struct uring *uu = U(u->loop);
	struct udp_ring *r;
	int ret;

	if (u->rx.count > 32768)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	ret = coil__uring_buf_ring_setup(&uu->ring,
					 UDP_BGID + (unsigned)u->index, &u->rx,
					 &r->br, &r->br_size, &r->mask);
	if (ret) {
		free(r);
		return ret;
	}
	u->be = r;
	u->rx.recycle = udp_recycle;
	u->rx.recycle_ctx = u;
	/* The kernel lays out each buffer as io_uring_recvmsg_out, the
	 * peer's address (msg_namelen bytes), then the payload. */
	memset(&u->rx_msg, 0, sizeof(u->rx_msg));
	u->rx_msg.msg_namelen = sizeof(struct sockaddr_in6);
	udp_arm(u);
	return 0;
}

void coil__uring_udp_stop(struct coil_udp *u)
{
	struct io_uring_sqe *sqe;

	if (u->closed)
		return;
	u->closed = true;
	if (!u->armed)
		return;
	sqe = sqe_get(U(u->loop));
	io_uring_prep_cancel64(sqe, ud(u, TAG_UDP), 0);
	io_uring_sqe_set_data64(sqe, TAG_IGNORE);
}

int coil__uring_udp_send(struct coil_udp *u, const struct sockaddr *to,
			 socklen_t to_len, const void *data, size_t len)
{
	struct coil__udp_tx *t;
	struct io_uring_sqe *sqe;
	int err;

	t = coil__udp_tx_get(u, to, to_len, data, len, &err);
	if (!t)
		return err;
	sqe = sqe_get(U(u->loop));
	io_uring_prep_sendmsg(sqe, u->fd, &t->msg, 0);
	io_uring_sqe_set_data64(sqe, ud(t, TAG_UDP));
	return 0;
}

static void on_udp_recv(struct coil_udp *u, int res, unsigned flags)
{
	if (flags & IORING_CQE_F_BUFFER) {
		uint32_t bid = flags >> IORING_CQE_BUFFER_SHIFT;
		uint8_t *buf = coil__buf_addr(&u->rx, bid);
		struct io_uring_recvmsg_out *o;

		coil__bufpool_lent(&u->rx, bid);
		o = res > 0 ? io_uring_recvmsg_validate(buf, res, &u->rx_msg)
			    : NULL;
		if (!o) {
			/* nothing usable (an error with a buffer) */
		} else if ((o->flags & MSG_TRUNC) || o->payloadlen > u->max_dgram ||
			   io_uring_recvmsg_payload_length(o, res, &u->rx_msg) <
				   o->payloadlen) {
			u->rx_dropped++;   /* larger than max_datagram */
		} else if (!u->closed) {
			coil__udp_deliver(u, io_uring_recvmsg_payload(o, &u->rx_msg),
					  io_uring_recvmsg_payload_length(o, res,
									  &u->rx_msg),
					  io_uring_recvmsg_name(o),
					  o->namelen < u->rx_msg.msg_namelen
						  ? o->namelen
						  : u->rx_msg.msg_namelen);
		}
		coil__buf_put(&u->rx, bid);
	}
	if (flags & IORING_CQE_F_MORE)
		return;
	u->armed = false;
	/* -ENOBUFS: the ring ran dry within one batch; every buffer went
	 * back as its datagram was handled, so re-arm at once. Other errors
	 * (rare on UDP: ICMP errors are not reported without IP_RECVERR)
	 * re-arm too, except a cancel at shutdown. */
	if (res != -ENOBUFS && res < 0 && res != -ECANCELED &&
	    u->rx_dropped++ % 1024 == 0)
		coil__log("loop %u: udp recvmsg: %s", u->loop->id,
			  strerror(-res));
	if (!u->closed && res != -ECANCELED)
		udp_arm(u);
}

void coil__uring_on_udp(void *p, int res, unsigned flags)
{
	if (*(uint32_t *)p == COIL__UDP_OBJ_TX)
		coil__udp_tx_done(p, res);
	else
		on_udp_recv(p, res, flags);
}

