/* SPDX-License-Identifier: MIT */
/*
 * The epoll backend's UDP services: each socket registered edge-triggered
 * once; datagrams read with recvmmsg into the service's receive pool and
 * handed to the core (coil__udp_deliver), sends queued and written with
 * sendmmsg, UDP_BATCH at a time, once per turn.
 */
#include "epoll_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define UDP_BATCH 32       /* datagrams per recvmmsg / sendmmsg */
#define UDP_READS 4        /* recvmmsg calls per service per poll */

struct epu {
	bool rd;                  /* readable, as far as we know */
	struct mmsghdr mm[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	struct sockaddr_in6 name[UDP_BATCH];
	int32_t bid[UDP_BATCH];
};

int coil__epoll_udp_start(struct coil_udp *u)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLET,
		.data.u64 = ud(u, TAG_UDP),
	};
	struct epu *x = calloc(1, sizeof(*x));

	if (!x)
		return -ENOMEM;
	if (epoll_ctl(E(u->loop)->epfd, EPOLL_CTL_ADD, u->fd, &ev) < 0) {
		int ret = -errno;

		free(x);
		return ret;
	}
	u->be = x;
	u->armed = true;
	return 0;
}

void coil__epoll_udp_stop(struct coil_udp *u)
{
	if (u->closed)
		return;
	u->closed = true;
	u->armed = false;
	if (u->fd >= 0)
		(void)epoll_ctl(E(u->loop)->epfd, EPOLL_CTL_DEL, u->fd, NULL);
}

int coil__epoll_udp_send(struct coil_udp *u, const struct sockaddr *to,
			 socklen_t to_len, const void *data, size_t len)
{
	struct coil__udp_tx *t;
	int err;

	t = coil__udp_tx_get(u, to, to_len, data, len, &err);
	if (!t)
		return err;
	if (u->txq_tail)
		u->txq_tail->next = t;
	else
		u->txq_head = t;
	u->txq_tail = t;
	u->txq_len++;
	return 0;
}

/* Send what is queued, UDP_BATCH datagrams per sendmmsg, until the queue
 * is empty or the socket buffer is full (an EPOLLOUT edge follows). */
static void udp_flush(struct coil_udp *u)
{
	struct epu *x = u->be;

	while (u->txq_head && !u->blocked) {
		struct coil__udp_tx *t = u->txq_head;
		unsigned n = 0;
		int sent;

		for (; t && n < UDP_BATCH; t = t->next, n++) {
			x->mm[n].msg_hdr = t->msg;
			x->mm[n].msg_len = 0;
		}
		do
			sent = sendmmsg(u->fd, x->mm, n, 0);
		while (sent < 0 && errno == EINTR);
		if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			u->blocked = true;
			break;
		}
		/* sendmmsg stops at the first failure: report it on that
		 * datagram (dropped, counted) and go on with the rest. */
		if (sent <= 0)
			sent = -errno;
		for (int i = 0; i < (sent > 0 ? sent : 1); i++) {
			t = u->txq_head;
			u->txq_head = t->next;
			u->txq_len--;
			coil__udp_tx_done(t, sent > 0 ? (int)x->mm[i].msg_len
						     : sent);
		}
		if (!u->txq_head)
			u->txq_tail = NULL;
	}
}

static void udp_read(struct coil_udp *u)
{
	struct epu *x = u->be;

	for (unsigned r = 0; r < UDP_READS && x->rd && !u->closed; r++) {
		unsigned n = 0;
		int got;

		for (; n < UDP_BATCH; n++) {
			int32_t bid = coil__bufpool_take(&u->rx);

			if (bid < 0)
				break;
			x->bid[n] = bid;
			x->iov[n].iov_base = coil__buf_addr(&u->rx, (uint32_t)bid);
			/* one byte more than the largest datagram: the
			 * kernel flags anything longer as MSG_TRUNC */
			x->iov[n].iov_len = u->max_dgram + 1;
			memset(&x->mm[n], 0, sizeof(x->mm[n]));
			x->mm[n].msg_hdr.msg_iov = &x->iov[n];
			x->mm[n].msg_hdr.msg_iovlen = 1;
			x->mm[n].msg_hdr.msg_name = &x->name[n];
			x->mm[n].msg_hdr.msg_namelen = sizeof(x->name[n]);
		}
		if (!n)
			return;   /* every buffer is out: stay readable */
		do
			got = recvmmsg(u->fd, x->mm, n, MSG_DONTWAIT, NULL);
		while (got < 0 && errno == EINTR);
		if (got < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				x->rd = false;
			else if (u->rx_dropped++ % 1024 == 0)
				coil__log("loop %u: udp recvmmsg: %s",
					  u->loop->id, strerror(errno));
			got = 0;
		} else if ((unsigned)got < n) {
			x->rd = false;   /* the queue is empty */
		}
		for (int i = 0; i < got; i++) {
			struct msghdr *m = &x->mm[i].msg_hdr;

			if ((m->msg_flags & MSG_TRUNC) ||
			    x->mm[i].msg_len > u->max_dgram)
				u->rx_dropped++;
			else
				coil__udp_deliver(u, x->iov[i].iov_base,
						  x->mm[i].msg_len, m->msg_name,
						  m->msg_namelen);
		}
		for (unsigned i = 0; i < n; i++)
			coil__buf_put(&u->rx, (uint32_t)x->bid[i]);
		if (!got)
			return;
	}
}

/* Per turn: flush queued datagrams, read what is readable, flush the
 * replies. Returns true when a service is still readable (capped). */
bool coil__epoll_udp_service(struct coil_loop *loop, bool reads)
{
	bool more = false;

	for (unsigned i = 0; i < loop->nudp; i++) {
		struct coil_udp *u = &loop->udp[i];
		struct epu *x = u->be;

		if (!x)
			continue;
		if (reads)
			udp_read(u);
		udp_flush(u);
		more |= x->rd && !u->closed;
	}
	return more;
}

void coil__epoll_udp_event(struct coil_udp *u, uint32_t events)
{
	struct epu *x = u->be;

	if (events & (EPOLLIN | EPOLLERR))
		x->rd = true;
	if (events & (EPOLLOUT | EPOLLERR))
		u->blocked = false;
}
