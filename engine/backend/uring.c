/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend: one ring per loop (SINGLE_ISSUER|DEFER_TASKRUN when
 * the kernel has them), multishot accept, multishot recv selecting buffers
 * from the loop's provided-buffer ring, one send in flight per connection,
 * and one submit-and-wait per loop turn with every CQE of the batch copied
 * out before any callback runs (so callbacks may submit or close freely).
 *
 * user_data = pointer | tag (objects are at least 8-byte aligned).
 */
#include "backend.h"

#include <liburing.h>

#include <assert.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Kernel 6.12+: io_uring_getevents_arg.pad became min_wait_usec. */
#ifndef IORING_FEAT_MIN_TIMEOUT
#define IORING_FEAT_MIN_TIMEOUT (1U << 15)
#endif
#define COALESCE_NR 32  /* completions worth waking for before min_wait */
/* Coalesce only under load: at a trickle, the min-wait timer would be one
 * more wake-up per event instead of one fewer. */
#define COALESCE_MIN 4

enum {
	TAG_IGNORE = 0, TAG_ACCEPT, TAG_RECV, TAG_SEND, TAG_WAKE,
	TAG_SPLICE_IN, TAG_SPLICE_OUT, TAG_CONNECT,
	/* a UDP receive (struct coil_udp) or send (struct coil__udp_tx):
	 * told apart by their `kind` field */
	TAG_UDP,
	/* a wake-up posted by another thread (coil__uring_msg): nothing to
	 * do, the loop's turn drains its inbox */
	TAG_MSG,
	/* four bits: every tagged object is 16-byte aligned (slab objects
	 * are 64-byte, the others _Alignas(16)) */
	TAG_MASK = 15
};

#define SQ_ENTRIES 1024
#define CQ_ENTRIES 16384
#define BATCH 256
#define BGID 0
/* UDP service i receives from buffer group UDP_BGID + i. */
#define UDP_BGID 1

struct uring {
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	size_t br_size;
	unsigned br_mask;
	int wake_fd;
	uint64_t wake_val;
	uint64_t last_event_ns;
	unsigned setup_flags;
	unsigned kfeatures;
	unsigned last_batch;   /* completions reaped by the last turn */
	bool min_wait;         /* wait_coalesced() passed its start-up probe */
	char wait_note[192];   /* why not */
	char features[320];
};

/* A UDP service's provided-buffer ring (coil_udp.be). */
struct udp_ring {
	struct io_uring_buf_ring *br;
	size_t br_size;
	unsigned mask;
};

static int min_wait_probe(struct uring *u, char *why, size_t n);

static inline struct uring *U(struct coil_loop *loop)
{
	return loop->be_data;
}

static inline uint64_t ud(const void *p, unsigned tag)
{
	assert(((uintptr_t)p & TAG_MASK) == 0);
	return (uint64_t)(uintptr_t)p | tag;
}

static struct io_uring_sqe *sqe_get(struct uring *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	while (!sqe) {
		/* SQ full: push what we have to the kernel and go on. */
		io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
	}
	return sqe;
}

static void recycle(void *ctx, uint32_t bid)
{
	struct coil_loop *loop = ctx;
	struct uring *u = U(loop);

	io_uring_buf_ring_add(u->br, coil__buf_addr(&loop->pool, bid),
			      loop->pool.size, (unsigned short)bid, u->br_mask,
			      0);
	io_uring_buf_ring_advance(u->br, 1);
}

static int ring_setup(struct uring *u)
{
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
		0,
	};
	int ret = -EINVAL;

	for (unsigned i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		p.flags = tries[i] | IORING_SETUP_CQSIZE |
			  IORING_SETUP_SUBMIT_ALL;
		p.cq_entries = CQ_ENTRIES;
		ret = io_uring_queue_init_params(SQ_ENTRIES, &u->ring, &p);
		if (ret == 0) {
			u->setup_flags = p.flags;
			u->kfeatures = p.features;
			if (!(p.features & IORING_FEAT_NODROP))
				coil__log("io_uring: kernel lacks FEAT_NODROP, "
					  "CQ overflow could lose events");
			return 0;
		}
		if (ret != -EINVAL)
			break;
	}
	return ret;
}

static void wake_arm(struct coil_loop *loop)
{
	struct uring *u = U(loop);
	struct io_uring_sqe *sqe = sqe_get(u);

	io_uring_prep_read(sqe, u->wake_fd, &u->wake_val, sizeof(u->wake_val),
			   0);
	io_uring_sqe_set_data64(sqe, ud(loop, TAG_WAKE));
}

/* Map and register a provided-buffer ring for group `bgid` and put every
 * buffer of `pool` in it. Returns 0 or -errno (logged). */
static int buf_ring_setup(struct io_uring *ring, unsigned bgid,
			  const struct coil__bufpool *pool,
			  struct io_uring_buf_ring **brp, size_t *sizep,
			  unsigned *maskp)
{
	struct io_uring_buf_reg reg;
	struct io_uring_buf_ring *br;
	unsigned entries = 1, mask;
	size_t size;
	int ret;

	while (entries < pool->count)
		entries <<= 1;
	size = entries * sizeof(struct io_uring_buf);
	br = mmap(NULL, size, PROT_READ | PROT_WRITE,
		  MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (br == MAP_FAILED)
		return -ENOMEM;
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)br;
	reg.ring_entries = entries;
	reg.bgid = (uint16_t)bgid;
	ret = io_uring_register_buf_ring(ring, &reg, 0);
	if (ret) {
		coil__log("io_uring: cannot register a buffer ring: %s%s",
			  strerror(-ret),
			  ret == -ENOMEM ? " (RLIMIT_MEMLOCK?)" : "");
		munmap(br, size);
		return ret;
	}
	io_uring_buf_ring_init(br);
	mask = io_uring_buf_ring_mask(entries);
	for (uint32_t bid = 0; bid < pool->count; bid++)
		io_uring_buf_ring_add(br, coil__buf_addr(pool, bid), pool->size,
				      (unsigned short)bid, mask, (int)bid);
	io_uring_buf_ring_advance(br, (int)pool->count);
	*brp = br;
	*sizep = size;
	*maskp = mask;
	return 0;
}

static int uring_loop_init(struct coil_loop *loop)
{
	struct uring *u;
	int ret;

	if (loop->pool.count > 32768)
		return -EINVAL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->wake_fd = -1;
	ret = ring_setup(u);
	if (ret) {
		coil__log("io_uring_setup failed: %s", strerror(-ret));
		free(u);
		return ret;
	}
	loop->be_data = u;

	ret = buf_ring_setup(&u->ring, BGID, &loop->pool, &u->br, &u->br_size,
			     &u->br_mask);
	if (ret)
		goto fail;
	loop->pool.recycle = recycle;
	loop->pool.recycle_ctx = loop;

	u->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (u->wake_fd < 0) {
		ret = -errno;
		goto fail;
	}
	wake_arm(loop);
	if (loop->coalesce_us) {
		char why[160];

		u->min_wait = min_wait_probe(u, why, sizeof(why)) == 0;
		if (!u->min_wait && (u->kfeatures & IORING_FEAT_MIN_TIMEOUT))
			coil__log("loop %u: io_uring: min-wait coalescing off, "
				  "plain waits: %s", loop->id, why);
		if (!u->min_wait)
			snprintf(u->wait_note, sizeof(u->wait_note),
				 "plain wait (%s)", why);
	}
	snprintf(u->features, sizeof(u->features),
		 "%s, multishot accept+recv, provided-buffer ring, %s",
		 (u->setup_flags & IORING_SETUP_DEFER_TASKRUN)
			 ? "single-issuer defer-taskrun"
		 : (u->setup_flags & IORING_SETUP_COOP_TASKRUN)
			 ? "coop-taskrun"
			 : "plain task-run",
		 u->min_wait ? "min-wait coalescing"
		 : u->wait_note[0] ? u->wait_note
				   : "plain wait (coalescing off)");
	loop->be_features = u->features;
	return 0;
fail:
	io_uring_queue_exit(&u->ring);
	if (u->br)
		munmap(u->br, u->br_size);
	free(u);
	loop->be_data = NULL;
	return ret;
}

static void uring_loop_fini(struct coil_loop *loop)
{
	struct uring *u = U(loop);

	if (!u)
		return;
	/* Tearing the ring down cancels whatever is still in flight. */
	io_uring_queue_exit(&u->ring);
	for (unsigned i = 0; i < loop->nlst; i++) {
		coil_timer_stop(&loop->lst[i].retry);
		if (loop->lst[i].fd >= 0) {
			close(loop->lst[i].fd);
			loop->lst[i].fd = -1;
		}
	}
	loop->pool.recycle = NULL;
	for (unsigned i = 0; i < loop->nudp; i++) {
		struct coil_udp *cu = &loop->udp[i];
		struct udp_ring *r = cu->be;

		cu->rx.recycle = NULL;
		if (r) {
			munmap(r->br, r->br_size);
			free(r);
			cu->be = NULL;
		}
	}
	if (u->wake_fd >= 0)
		close(u->wake_fd);
	munmap(u->br, u->br_size);
	free(u);
	loop->be_data = NULL;
}

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

static void on_splice(struct coil_conn *c, unsigned tag, int res)
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
	if (reset) {
		struct linger l = { .l_onoff = 1, .l_linger = 0 };
		(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	}
	close(c->fd);
}

static void on_accept(struct coil__listener *lst, int res, unsigned flags)
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

static void on_recv(struct coil_conn *c, int res, unsigned flags)
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

/* ---- UDP: multishot recvmsg from the service's own buffer ring ---- */

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

static int uring_udp_start(struct coil_udp *u)
{
	struct uring *uu = U(u->loop);
	struct udp_ring *r;
	int ret;

	if (u->rx.count > 32768)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	ret = buf_ring_setup(&uu->ring, UDP_BGID + (unsigned)u->index, &u->rx,
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

static void uring_udp_stop(struct coil_udp *u)
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

static int uring_udp_send(struct coil_udp *u, const struct sockaddr *to,
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

static void on_udp(void *p, int res, unsigned flags)
{
	if (*(uint32_t *)p == COIL__UDP_OBJ_TX)
		coil__udp_tx_done(p, res);
	else
		on_udp_recv(p, res, flags);
}

static void dispatch(struct coil_loop *loop, uint64_t data, int res,
		     unsigned flags)
{
	void *p = (void *)(uintptr_t)(data & ~(uint64_t)TAG_MASK);

	switch (data & TAG_MASK) {
	case TAG_ACCEPT:
		on_accept(p, res, flags);
		break;
	case TAG_RECV:
		on_recv(p, res, flags);
		break;
	case TAG_SEND:
		coil__conn_sent(p, res);
		break;
	case TAG_SPLICE_IN:
	case TAG_SPLICE_OUT:
		on_splice(p, (unsigned)(data & TAG_MASK), res);
		break;
	case TAG_CONNECT:
		coil__conn_connected(p, res);
		break;
	case TAG_WAKE:
		wake_arm(loop);
		break;
	case TAG_UDP:
		on_udp(p, res, flags);
		break;
	case TAG_MSG:
		break;
	default:
		break;
	}
}

/* A receive error that ends the connection (a reset, mostly). */
static bool recv_fatal(int res)
{
	return res < 0 && res != -ENOBUFS && res != -ECANCELED &&
	       res != -EINVAL && res != -EAGAIN;
}

/*
 * A client that sends and resets at once (an abandoned pipeline, a flood)
 * leaves its bytes readable and the reset right behind them, often in the
 * same batch of completions. Nobody can read an answer any more: report
 * the failure before its data is dispatched, so the protocol is spared the
 * work (nginx learns it when its first write fails).
 */
static void doom(uint64_t data, int res)
{
	struct coil_conn *c = (void *)(uintptr_t)(data & ~(uint64_t)TAG_MASK);

	coil__conn_recv_failed(c, res);
}

static unsigned reap(struct coil_loop *loop)
{
	struct uring *u = U(loop);
	struct io_uring_cqe *cqes[BATCH];
	struct {
		uint64_t data;
		int32_t res;
		uint32_t flags;
	} ev[BATCH];
	unsigned total = 0, n;

	do {
		n = io_uring_peek_batch_cqe(&u->ring, cqes, BATCH);
		for (unsigned i = 0; i < n; i++) {
			ev[i].data = cqes[i]->user_data;
			ev[i].res = cqes[i]->res;
			ev[i].flags = cqes[i]->flags;
			if ((ev[i].data & TAG_MASK) == TAG_RECV &&
			    recv_fatal(ev[i].res))
				doom(ev[i].data, ev[i].res);
		}
		io_uring_cq_advance(&u->ring, n);
		for (unsigned i = 0; i < n; i++)
			dispatch(loop, ev[i].data, ev[i].res, ev[i].flags);
		total += n;
	} while (n == BATCH);
	return total;
}

/*
 * ---- Beyond liburing's public API: sq_flush() and wait_coalesced() ----
 *
 * The min-timeout wait needs both in one io_uring_enter: liburing 2.3
 * (Debian 12) has no call for it (2.8 added
 * io_uring_submit_and_wait_min_timeout), so we publish the SQ ourselves
 * and pass the new wait argument by hand. Each reliance lives in one
 * function below, and min_wait_probe() checks both on every loop's ring
 * at start: if either does not behave as expected, the loop logs why and
 * uses liburing's plain waits.
 */

/*
 * Publish queued SQEs to the kernel; returns how many await submission.
 * Relies on liburing's PRIVATE struct io_uring_sq fields as liburing 2.2
 * to 2.x keep them (2.3 here): sqe_tail counts the SQEs io_uring_get_sqe()
 * handed out, sqe_head those already published in *ktail; this is
 * liburing's own (unexported) __io_uring_flush_sq() for a ring without
 * SQPOLL. Checked by min_wait_probe().
 */
static unsigned sq_flush(struct io_uring *ring)
{
	struct io_uring_sq *sq = &ring->sq;
	unsigned tail = sq->sqe_tail;

	if (sq->sqe_head != tail) {
		sq->sqe_head = tail;
		io_uring_smp_store_release(sq->ktail, tail);
	}
	return tail - IO_URING_READ_ONCE(*sq->khead);
}

/*
 * Submit and sleep, but batch the wake-up: return once `nr` completions
 * are there, or once min_us has passed and at least one is; an idle loop
 * still wakes on its first completion after that. Fewer, larger turns
 * mean fewer syscalls and wake-ups. Relies on kernel 6.12+
 * (IORING_FEAT_MIN_TIMEOUT), which reads io_uring_getevents_arg.pad as
 * min_wait_usec (liburing 2.3's header still calls it pad; older kernels
 * refuse a non-zero pad with -EINVAL). Checked by min_wait_probe().
 */
_Static_assert(offsetof(struct io_uring_getevents_arg, pad) == 12 &&
		       sizeof(struct io_uring_getevents_arg) == 24,
	       "io_uring_getevents_arg: pad must be the kernel's min_wait_usec");
static int wait_coalesced(struct uring *u, unsigned nr, unsigned min_us,
			  int64_t timeout_ms)
{
	struct __kernel_timespec ts = {
		.tv_sec = timeout_ms / 1000,
		.tv_nsec = (timeout_ms % 1000) * 1000000,
	};
	struct io_uring_getevents_arg arg = {
		.sigmask = 0,
		.sigmask_sz = _NSIG / 8,
		.pad = min_us,
		.ts = timeout_ms > 0 ? (uint64_t)(uintptr_t)&ts : 0,
	};
	unsigned submit = sq_flush(&u->ring);
	long ret;

	ret = syscall(__NR_io_uring_enter, u->ring.ring_fd, submit, nr,
		      IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg,
		      sizeof(arg));
	return ret < 0 ? -errno : (int)ret;
}

/* Tests set it to make the probe fail (the fallback path). */
bool coil__uring_no_min_wait;

#define PROBE_MIN_US 1000   /* the min-wait the probe asks for */
#define PROBE_MAX_MS 100    /* a wait longer than this ignored it */

/*
 * Run sq_flush() and wait_coalesced() once, for real, on the loop's own
 * ring (its thread: SINGLE_ISSUER) before any I/O: a NOP is queued (with
 * the wake-up read queued at init), sq_flush() must publish exactly what
 * liburing counts as ready, and a wait for two completions with a 1 ms
 * min-wait must return with the NOP's long before its 200 ms timeout.
 * The NOP's completion stays in the CQ, ignored by the first reap.
 * Returns 0, or -errno with the reason in why[n].
 */
static int min_wait_probe(struct uring *u, char *why, size_t n)
{
	struct io_uring *ring = &u->ring;
	const uint64_t probe_ud = ud(u, TAG_IGNORE);
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct timespec t0, t1;
	unsigned head, ready, submit;
	bool seen = false;
	int64_t ms;
	int ret;

	if (coil__uring_no_min_wait) {
		snprintf(why, n, "forced off (coil__uring_no_min_wait)");
		return -ECANCELED;
	}
	if (!(u->kfeatures & IORING_FEAT_MIN_TIMEOUT)) {
		snprintf(why, n, "kernel before 6.12 (no IORING_FEAT_MIN_TIMEOUT)");
		return -EOPNOTSUPP;
	}
	sqe = sqe_get(u);
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, probe_ud);
	/* Read-only first: sqe_head must be what was published (*ktail) and
	 * sqe_tail - sqe_head what liburing's public count says is queued.
	 * Only then is sq_flush() allowed to write sqe_head. */
	ready = io_uring_sq_ready(ring);
	if (!ready || IO_URING_READ_ONCE(*ring->sq.ktail) != ring->sq.sqe_head ||
	    ring->sq.sqe_tail - ring->sq.sqe_head != ready) {
		snprintf(why, n, "liburing's struct io_uring_sq does not behave "
			 "as liburing 2.2-2.x's (sqe_head/sqe_tail)");
		return -EPROTO;
	}
	submit = sq_flush(ring);
	if (submit != ready ||
	    IO_URING_READ_ONCE(*ring->sq.ktail) != ring->sq.sqe_tail) {
		snprintf(why, n, "sq_flush() left *ktail at %u, not %u",
			 IO_URING_READ_ONCE(*ring->sq.ktail),
			 ring->sq.sqe_tail);
		return -EPROTO;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = wait_coalesced(u, 2, PROBE_MIN_US, 200);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	     (t1.tv_nsec - t0.tv_nsec) / 1000000;
	io_uring_for_each_cqe(ring, head, cqe) {
		if (cqe->user_data == probe_ud)
			seen = true;
	}
	if (ret < 0 && ret != -ETIME && ret != -EINTR) {
		snprintf(why, n, "io_uring_enter with min_wait_usec: %s",
			 strerror(-ret));
		return ret;
	}
	if (!seen) {
		snprintf(why, n, "the probe's NOP never completed: sq_flush() "
			 "did not submit it (liburing's private sqe_head)");
		return -EPROTO;
	}
	if (ms > PROBE_MAX_MS) {
		snprintf(why, n, "the kernel ignored min_wait_usec (waited "
			 "%lld ms for a 1 ms min-wait)", (long long)ms);
		return -EPROTO;
	}
	return 0;
}

static void uring_wait(struct coil_loop *loop, int64_t timeout_ms)
{
	struct uring *u = U(loop);
	struct io_uring_cqe *cqe;
	int ret;

	if (loop->poll == COIL_POLL_ALWAYS) {
		timeout_ms = 0;
	} else if (loop->poll == COIL_POLL_ADAPTIVE && timeout_ms != 0 &&
		   loop->now_ns - u->last_event_ns <
			   (uint64_t)loop->poll_us * 1000) {
		timeout_ms = 0;
	}
	if (io_uring_cq_ready(&u->ring))
		timeout_ms = 0;
	coil__stat_add(loop->st.submits, io_uring_sq_ready(&u->ring));

	if (timeout_ms == 0) {
		ret = io_uring_submit_and_get_events(&u->ring);
	} else if (loop->coalesce_us && u->last_batch >= COALESCE_MIN &&
		   u->min_wait) {
		ret = wait_coalesced(u, COALESCE_NR, loop->coalesce_us,
				     timeout_ms);
	} else if (timeout_ms < 0) {
		ret = io_uring_submit_and_wait(&u->ring, 1);
	} else {
		struct __kernel_timespec ts = {
			.tv_sec = timeout_ms / 1000,
			.tv_nsec = (timeout_ms % 1000) * 1000000,
		};
		ret = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts,
						       NULL);
	}
	if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN &&
	    ret != -EBUSY)
		coil__log("loop %u: io_uring_enter: %s", loop->id,
			  strerror(-ret));
	/* The callbacks about to run must see the time after the sleep, not
	 * before it (an idle timeout measured from a stale clock would fire
	 * on a connection accepted this very turn). */
	if (timeout_ms != 0)
		coil__loop_clock(loop);
	u->last_batch = reap(loop);
	coil__stat_add(loop->st.completions, u->last_batch);
	__atomic_store_n(&loop->st.cq_overflow,
			 IO_URING_READ_ONCE(*u->ring.cq.koverflow),
			 __ATOMIC_RELAXED);
	if (u->last_batch)
		u->last_event_ns = loop->now_ns;
}

static void uring_wake(struct coil_loop *loop)
{
	struct uring *u = U(loop);
	uint64_t one = 1;

	/* MSG_RING first; the eventfd read armed in the ring stays as the
	 * fallback (no MSG_RING, the target's CQ full). */
	if (u && coil__uring_msg(u->ring.ring_fd, TAG_MSG) < 0 &&
	    write(u->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, the loop will wake. */
	}
}

const struct coil__backend_ops coil__uring_ops = {
	.name = "io_uring",
	.loop_init = uring_loop_init,
	.loop_fini = uring_loop_fini,
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
	.wait = uring_wait,
	.wake = uring_wake,
	.udp_start = uring_udp_start,
	.udp_stop = uring_udp_stop,
	.udp_send = uring_udp_send,
};

/*
 * What uring_loop_init and the hot path need, tried on a tiny ring once at
 * engine create so that --backend auto can fall back to epoll with a reason
 * instead of loops failing to start: io_uring_setup (seccomp in containers
 * and kernel.io_uring_disabled make it fail with EPERM; kernels without
 * io_uring with ENOSYS), a provided-buffer ring (5.19) and a multishot recv
 * selecting from it (6.0; implies multishot accept, 5.19), run for real on
 * a socketpair.
 */
int coil__uring_probe(char *why, size_t n)
{
	struct io_uring_buf_reg reg;
	struct io_uring_buf_ring *br = MAP_FAILED;
	struct __kernel_timespec ts = { .tv_sec = 1 };
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	struct io_uring ring;
	unsigned char buf[2][64];
	size_t br_size = 4096;
	int sv[2] = { -1, -1 };
	int ret, dis = 0;
	FILE *f;

	ret = io_uring_queue_init(4, &ring, 0);
	if (ret) {
		f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
		if (f) {
			if (fscanf(f, "%d", &dis) != 1)
				dis = 0;
			fclose(f);
		}
		snprintf(why, n, "io_uring_setup: %s%s", strerror(-ret),
			 dis ? (dis == 1 ? ", kernel.io_uring_disabled=1"
					 : ", kernel.io_uring_disabled=2")
			 : ret == -EPERM ? ", blocked by a seccomp filter or "
					   "security policy?"
			 : "");
		return ret;
	}
	br = mmap(NULL, br_size, PROT_READ | PROT_WRITE,
		  MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (br == MAP_FAILED) {
		ret = -ENOMEM;
		snprintf(why, n, "cannot map a buffer ring");
		goto out;
	}
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)br;
	reg.ring_entries = 2;
	reg.bgid = BGID;
	ret = io_uring_register_buf_ring(&ring, &reg, 0);
	if (ret) {
		snprintf(why, n, "no provided-buffer ring (kernel 5.19+): %s%s",
			 strerror(-ret),
			 ret == -ENOMEM ? " (RLIMIT_MEMLOCK?)" : "");
		goto out;
	}
	io_uring_buf_ring_init(br);
	for (int i = 0; i < 2; i++)
		io_uring_buf_ring_add(br, buf[i], sizeof(buf[i]),
				      (unsigned short)i,
				      io_uring_buf_ring_mask(2), i);
	io_uring_buf_ring_advance(br, 2);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    write(sv[1], "x", 1) != 1) {
		ret = -errno;
		snprintf(why, n, "socketpair: %s", strerror(errno));
		goto out;
	}
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	ret = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
	if (ret < 0) {
		snprintf(why, n, "io_uring_enter: %s", strerror(-ret));
		goto out;
	}
	if (cqe->res == 1 && (cqe->flags & IORING_CQE_F_BUFFER))
		ret = 0;
	else
		ret = cqe->res < 0 ? cqe->res : -EPROTO;
	if (ret)
		snprintf(why, n, "no multishot recv with provided buffers "
			 "(kernel 6.0+): %s", strerror(-ret));
	io_uring_cqe_seen(&ring, cqe);
out:
	/* Tearing the ring down cancels the recv still armed and drops the
	 * buffer ring, so the memory and sockets can go after it. */
	io_uring_queue_exit(&ring);
	if (br != MAP_FAILED)
		munmap(br, br_size);
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	return ret;
}
