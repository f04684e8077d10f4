/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend: one ring per loop (SINGLE_ISSUER|DEFER_TASKRUN when
 * the kernel has them), multishot accept, multishot recv selecting buffers
 * from the loop's provided-buffer ring, one send in flight per connection,
 * and one submit-and-wait per loop turn with every CQE of the batch copied
 * out before any callback runs (so callbacks may submit or close freely).
 *
 * This file: the connections' operations (listen, receive, send, send a
 * file by splice, connect, close), their completions and the ops table.
 * The rings: uring_ring.c; the loop's turn: coil__uring_wait.c; UDP:
 * uring_udp.c; what they share: uring_internal.h.
 */
#include "uring_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static void accept_arm(struct coil__listener *lst)
{
	struct uring *u = U(lst->loop);
	struct io_uring_sqe *sqe = sqe_get(u);

	io_uring_prep_multishot_accept(sqe, lst->fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, ud(lst, TAG_ACCEPT));
	lst->armed = true;
}

static void accept_retry(struct coil_timer *t)
{
	struct coil__listener *lst =
		coil__container_of(t, struct coil__listener, retry);

	if (!lst->closed && !lst->armed)
		accept_arm(lst);
}

static int uring_listen_start(struct coil__listener *lst)
{
	coil_timer_init(&lst->retry, lst->loop, accept_retry, NULL);
	accept_arm(lst);
	return 0;
}

static void uring_listen_stop(struct coil__listener *lst)
{
	struct uring *u = U(lst->loop);
	struct io_uring_sqe *sqe;

	if (lst->closed)
		return;
	coil__sock_listen_drain(lst, SOCK_CLOEXEC);
	lst->closed = true;
	coil_timer_stop(&lst->retry);
	if (!lst->armed) {
		close(lst->fd);
		lst->fd = -1;
		return;
	}
	/* The fd is closed when the accept reports its end. */
	sqe = sqe_get(u);
	io_uring_prep_cancel64(sqe, ud(lst, TAG_ACCEPT), 0);
	io_uring_sqe_set_data64(sqe, TAG_IGNORE);
}

static void uring_recv_arm(struct coil_conn *c)
{
	struct io_uring_sqe *sqe = sqe_get(U(c->loop));

	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, ud(c, TAG_RECV));
}

static void cancel(struct coil_conn *c, unsigned tag)
{
	struct io_uring_sqe *sqe = sqe_get(U(c->loop));

	io_uring_prep_cancel64(sqe, ud(c, tag), 0);
	io_uring_sqe_set_data64(sqe, TAG_IGNORE);
}

static void uring_recv_cancel(struct coil_conn *c)
{
	cancel(c, TAG_RECV);
}

static void uring_send_cancel(struct coil_conn *c)
{
	if (c->niov) {
		cancel(c, TAG_SEND);
		return;
	}
	/* Splices run blocking on io-wq workers: cancel them, and shut the
	 * socket so one blocked on a peer that stopped reading returns. */
	cancel(c, TAG_SPLICE_IN);
	cancel(c, TAG_SPLICE_OUT);
	(void)shutdown(c->fd, SHUT_RDWR);
}

/*
 * File bytes go file -> pipe -> socket with two linked IORING_OP_SPLICE
 * (zero copy: pages move, bytes are not copied through user space). A
 * short first splice breaks the link; whatever sits in the pipe is sent
 * first on the next call. The core sees one completion: bytes now in the
 * socket (0 means "call again").
 */
enum { SP_IN = 1u << 0, SP_OUT = 1u << 1 };

static void splice_done(struct coil_conn *c)
{
	if (c->splice_state & (SP_IN | SP_OUT))
		return;
	coil__conn_sent(c, c->splice_res);
}

void coil__uring_on_splice(struct coil_conn *c, unsigned tag, int res)
{
	if (tag == TAG_SPLICE_IN) {
		c->splice_state &= ~SP_IN;
		if (res > 0)
			c->pipe_bytes += (uint32_t)res;
		else if (c->splice_res >= 0)
			/* 0: the file ended before the bytes we were told of */
			c->splice_res = res ? res : -EIO;
	} else {
		c->splice_state &= ~SP_OUT;
		if (res > 0) {
			c->pipe_bytes -= (uint32_t)res;
			if (c->splice_res >= 0)
				c->splice_res = res;
		} else if (res < 0 && res != -ECANCELED && c->splice_res >= 0) {
			c->splice_res = res;
		}
	}
	splice_done(c);
}

static void uring_send_file(struct coil_conn *c)
{
	struct uring *u = U(c->loop);
	struct coil__seg *s = c->file_seg;
	struct io_uring_sqe *sqe;
	uint32_t out;

	c->splice_res = 0;
	c->splice_state = SP_OUT;
	if (c->pipe_fds[0] < 0) {
		if (pipe2(c->pipe_fds, O_CLOEXEC) < 0) {
			c->pipe_fds[0] = c->pipe_fds[1] = -1;
			c->splice_res = -errno;
			/* report from the dispatch phase, never from here */
			sqe = sqe_get(u);
			io_uring_prep_nop(sqe);
			io_uring_sqe_set_data64(sqe, ud(c, TAG_SPLICE_OUT));
			return;
		}
		/* A bigger pipe means fewer round trips per file; the default
		 * 64 KiB is kept when the limit says no. */
		(void)fcntl(c->pipe_fds[1], F_SETPIPE_SZ, COIL__FILE_SEND_MAX);
	}
	out = c->pipe_bytes;
	if (!out) {
		out = c->inflight;
		sqe = sqe_get(u);
		io_uring_prep_splice(sqe, s->fd, (int64_t)s->off,
				     c->pipe_fds[1], -1, out, SPLICE_F_MOVE);
		sqe->flags |= IOSQE_IO_LINK;
		io_uring_sqe_set_data64(sqe, ud(c, TAG_SPLICE_IN));
		c->splice_state |= SP_IN;
	}
	sqe = sqe_get(u);
	io_uring_prep_splice(sqe, c->pipe_fds[0], -1, c->fd, -1, out,
			     SPLICE_F_MOVE);
	io_uring_sqe_set_data64(sqe, ud(c, TAG_SPLICE_OUT));
}

static void uring_send(struct coil_conn *c)
{
	struct io_uring_sqe *sqe = sqe_get(U(c->loop));

	if (c->niov == 1) {
		io_uring_prep_send(sqe, c->fd, c->iov[0].iov_base,
				   c->iov[0].iov_len, MSG_NOSIGNAL);
	} else {
		struct msghdr *m = coil__send_msghdr(c);

		memset(m, 0, sizeof(*m));
		m->msg_iov = c->iov;
		m->msg_iovlen = c->niov;
		io_uring_prep_sendmsg(sqe, c->fd, m, MSG_NOSIGNAL);
	}
	io_uring_sqe_set_data64(sqe, ud(c, TAG_SEND));
}

/* A nonblocking socket and IORING_OP_CONNECT (the kernel waits for the
 * handshake itself); the address is kept in the backend scratch until the
 * connect completes (nothing else uses it before: no send before that). */
static int uring_connect(struct coil_conn *c, const struct sockaddr *sa,
			 socklen_t len)
{
	struct io_uring_sqe *sqe;
	int fd, ret;

	_Static_assert(sizeof(struct sockaddr_in6) <= sizeof(c->backend),
		       "the address must fit the backend scratch");
	if (len > sizeof(c->backend))
		return -EINVAL;
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return -errno;
	ret = coil__sock_tcp_opts(fd, c->lst->svc);
	if (ret) {
		close(fd);
		return ret;
	}
	c->fd = fd;
	memcpy(c->backend, sa, len);
	sqe = sqe_get(U(c->loop));
	io_uring_prep_connect(sqe, fd, (const struct sockaddr *)c->backend,
			      len);
	io_uring_sqe_set_data64(sqe, ud(c, TAG_CONNECT));
	return 0;
}

static void uring_connect_cancel(struct coil_conn *c)
{
	cancel(c, TAG_CONNECT);
}

static void uring_close(struct coil_conn *c, bool reset)
{
	if (c->pipe_fds[0] >= 0) {
		close(c->pipe_fds[0]);
		close(c->pipe_fds[1]);
		c->pipe_fds[0] = c->pipe_fds[1] = -1;
		c->pipe_bytes = 0;
	}
	if (c->fd < 0)
		return;
	coil__sock_close(c->fd, reset);
}

void coil__uring_on_accept(struct coil__listener *lst, int res,
			   unsigned flags)
{
	if (res >= 0) {
		(void)coil__sock_tcp_opts(res, lst->svc);
		coil__conn_accepted(lst, res);
	} else if (res != -ECANCELED) {
		if (lst->errors++ % 1024 == 0)
			coil__log("loop %u: accept: %s", lst->loop->id,
				  strerror(-res));
	}
	if (flags & IORING_CQE_F_MORE)
		return;
	lst->armed = false;
	if (lst->closed) {
		/* Handshakes completed since listen_stop drained it. */
		coil__sock_listen_drain(lst, SOCK_CLOEXEC);
		close(lst->fd);
		lst->fd = -1;
	} else if (res < 0 && res != -ECANCELED) {
		/* EMFILE, ENOMEM...: back off instead of spinning. */
		coil_timer_start(&lst->retry, 50);
	} else {
		accept_arm(lst);
	}
}

void coil__uring_on_recv(struct coil_conn *c, int res, unsigned flags)
{
	struct coil_loop *loop = c->loop;

	if (res > (int)loop->pool.size) {
		/* Never read past a buffer on the kernel's word. */
		uint32_t bid = flags >> IORING_CQE_BUFFER_SHIFT;

		coil__log("loop %u: fd %d: receive of %d bytes into a %u-byte "
			  "buffer, closing", loop->id, c->fd, res,
			  loop->pool.size);
		coil__bufpool_lent(&loop->pool, bid);
		coil__buf_put(&loop->pool, bid);
		coil__conn_recv_failed(c, -EIO);
		res = -EIO;
	} else if (res > 0) {
		uint32_t bid = flags >> IORING_CQE_BUFFER_SHIFT;

		coil__bufpool_lent(&loop->pool, bid);
		coil__conn_recv(c, coil__buf_addr(&loop->pool, bid),
				(size_t)res, (int32_t)bid);
	} else if (flags & IORING_CQE_F_BUFFER) {
		/* Defensive: a buffer with no bytes goes straight back. */
		uint32_t bid = flags >> IORING_CQE_BUFFER_SHIFT;

		coil__bufpool_lent(&loop->pool, bid);
		coil__buf_put(&loop->pool, bid);
	}
	if (!(flags & IORING_CQE_F_MORE))
		coil__conn_recv_done(c, res > 0 ? 1 : res);
}

const struct coil__backend_ops coil__uring_ops = {
	.name = "io_uring",
	.loop_init = coil__uring_loop_init,
	.loop_fini = coil__uring_loop_fini,
	.listen_start = uring_listen_start,
	.listen_quiesce = coil__sock_lst_quiesce,
	.listen_pending = coil__sock_lst_pending,
	.listen_stop = uring_listen_stop,
	.recv_arm = uring_recv_arm,
	.recv_cancel = uring_recv_cancel,
	.send = uring_send,
	.send_cancel = uring_send_cancel,
	.send_file = uring_send_file,
	.connect = uring_connect,
	.connect_cancel = uring_connect_cancel,
	.sock_error = coil__sock_error,
	.shut_wr = coil__sock_shut_wr,
	.close = uring_close,
	.wait = coil__uring_wait,
	.wake = coil__uring_wake,
	.udp_start = coil__uring_udp_start,
	.udp_stop = coil__uring_udp_stop,
	.udp_send = coil__uring_udp_send,
};
