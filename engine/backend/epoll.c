/* SPDX-License-Identifier: MIT */
/*
 * The epoll backend: readiness instead of completion, for machines where
 * io_uring is missing or blocked (container seccomp profiles,
 * kernel.io_uring_disabled). It reads into the same receive pool as io_uring
 * (so protocols see identical on_data slices and the same back-pressure:
 * -ENOBUFS when the pool is dry, re-armed by the core when buffers return),
 * writes each connection's gathered output with one send/sendmsg (or a
 * sendfile for a file segment) per loop turn, and sleeps in epoll_wait
 * with the timing wheel's timeout.
 *
 * The core calls recv_arm/recv_cancel/send/send_cancel while it flushes and
 * may free or re-list a connection right after; so those only record what
 * was asked and put the connection on a private "pending" list. Every
 * completion (coil__conn_recv, _recv_done, _sent, _accepted) is reported
 * from wait(), like io_uring's reap. A receive stays armed (multishot-like)
 * until wait() reports its end.
 *
 * Edge-triggered: EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET is registered once
 * per connection (at its first receive or send) and never modified; closing
 * the fd removes it. Measured against a level-triggered variant of this
 * file (EPOLLIN only while a receive is armed, EPOLLOUT only while a send is
 * blocked, one EPOLL_CTL_MOD per change), scripts/bench echo --reps 3,
 * server CPU µs per message, medians, 2-CPU VM, kernel 6.18:
 *
 *                         edge    level   epoll-echo (level, baseline)
 *     depth1 (50 x 64 B)  5.91    6.11    6.04
 *     depth8              0.848   0.894   1.080
 *     latency (1 conn, --poll always): the same within noise
 *
 * Edge wins by 3-5%: a level-triggered item goes back on the ready list
 * after every report and is polled again at the next epoll_wait. More
 * important than the numbers, edge-triggering lets the core's states cost
 * no syscall and no spin: a paused, starved (-ENOBUFS) or fairness-capped
 * receive and a blocked send are remembered here (ST_RD, ST_WBLOCK) instead
 * of switching interest off and on, and a peer that reset or shut down is
 * reported once, not at every epoll_wait until the core gets to it (with
 * level, EPOLLHUP/EPOLLERR cannot even be masked). EPOLLOUT can stay
 * registered because its edge fires only after the socket was found full
 * (the kernel sets SOCK_NOSPACE only then): no wake-up while sends go
 * through, and no epoll_ctl when one blocks.
 *
 * Reads stop at a short read: TCP's recvmsg copies until the buffer is full
 * or the queue is empty, and data arriving later raises a new edge; so a
 * short read means "empty" without the extra read that would return
 * EAGAIN. The exception is a peer that already shut down (EPOLLRDHUP): its
 * edge is spent, so we read on to the EOF.
 */
#include "backend.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 256          /* events per epoll_wait */
#define MAX_READS 16       /* buffers per connection per poll (fairness);
			      = COIL__SEND_IOV, what one echo send gathers */
#define ACCEPT_BATCH 64    /* accepts per listener per poll */

enum { TAG_CONN = 0, TAG_LISTENER, TAG_WAKE, TAG_UDP, TAG_MASK = 7 };

/* Per-connection state in c->backend. */
enum {
	ST_REG = 1u << 0,      /* in the epoll set */
	ST_RECV = 1u << 1,     /* a receive is armed until we report its end */
	ST_SEND = 1u << 2,     /* c->iov holds a send not reported yet */
	ST_RD = 1u << 3,       /* readable, as far as we know */
	ST_RDHUP = 1u << 4,    /* peer shut down or error: read to the end */
	ST_WBLOCK = 1u << 5,   /* socket buffer full: wait for EPOLLOUT */
	ST_RCANCEL = 1u << 6,  /* recv_cancel() asked */
	ST_SCANCEL = 1u << 7,  /* send_cancel() asked */
	ST_QUEUED = 1u << 8,   /* on the pending list */
	ST_CONN = 1u << 9,     /* a connect is outstanding */
	ST_CONNRDY = 1u << 10, /* ... and has ended (writable, error, or at
				  once): SO_ERROR says how */
	ST_CCANCEL = 1u << 11, /* connect_cancel() asked */
};

struct epc {
	struct epc *next, *prev;  /* pending list, while ST_QUEUED */
	uint32_t st;
	int err;                  /* epoll_ctl failed: end I/O with this */
};

struct ep {
	int epfd;
	int wake_fd;
	bool polled;              /* the last wait() called epoll_wait */
	uint64_t last_event_ns;
	struct epc pend;          /* sentinel: connections with work to do */
	char features[96];
	struct epoll_event ev[BATCH];
};

static inline struct ep *E(struct coil_loop *loop)
{
	return loop->be_data;
}

static inline struct epc *X(struct coil_conn *c)
{
	_Static_assert(sizeof(struct epc) <= sizeof(c->backend),
		       "epoll state must fit the backend scratch");
	return (struct epc *)(void *)c->backend;
}

static inline struct coil_conn *conn_of(struct epc *x)
{
	return coil__container_of(x, struct coil_conn, backend);
}

static inline uint64_t ud(const void *p, unsigned tag)
{
	return (uint64_t)(uintptr_t)p | tag;
}

static void queue(struct coil_conn *c)
{
	struct epc *x = X(c), *head = &E(c->loop)->pend;

	if (x->st & ST_QUEUED)
		return;
	x->st |= ST_QUEUED;
	x->next = head;
	x->prev = head->prev;
	head->prev->next = x;
	head->prev = x;
}

static void unqueue(struct epc *x)
{
	x->prev->next = x->next;
	x->next->prev = x->prev;
	x->next = x->prev = NULL;
	x->st &= ~ST_QUEUED;
}

/* Work wait() can do for `x` (reads happen only right after a poll). */
static bool actionable(const struct epc *x)
{
	if (x->err && (x->st & (ST_RECV | ST_SEND | ST_CONN)))
		return true;
	if (x->st & (ST_RCANCEL | ST_SCANCEL))
		return true;
	if ((x->st & ST_CONN) && (x->st & (ST_CONNRDY | ST_CCANCEL)))
		return true;
	if ((x->st & (ST_SEND | ST_WBLOCK)) == ST_SEND)
		return true;
	return (x->st & (ST_RECV | ST_RD)) == (ST_RECV | ST_RD);
}

/* Add the connection to the epoll set on its first receive or send. */
static void reg(struct coil_conn *c)
{
	struct epc *x = X(c);
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
		.data.u64 = ud(c, TAG_CONN),
	};

	if (x->st & ST_REG)
		return;
	if (epoll_ctl(E(c->loop)->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		/* ENOMEM or max_user_watches: the I/O reports it. */
		if (!x->err)
			x->err = -errno;
		queue(c);
		return;
	}
	/* The add reports what is already readable at the next poll. */
	x->st |= ST_REG;
}

/* ---- ops the core calls while flushing: record, report later ---- */

static void ep_recv_arm(struct coil_conn *c)
{
	struct epc *x = X(c);

	x->st |= ST_RECV;
	reg(c);
	if (x->st & ST_RD)
		queue(c);
}

static void ep_recv_cancel(struct coil_conn *c)
{
	X(c)->st |= ST_RCANCEL;
	queue(c);
}

static void ep_send(struct coil_conn *c)
{
	struct epc *x = X(c);

	x->st |= ST_SEND;
	reg(c);
	if (!(x->st & ST_WBLOCK))
		queue(c);
}

static void ep_send_cancel(struct coil_conn *c)
{
	X(c)->st |= ST_SCANCEL;
	queue(c);
}

/* Nonblocking connect(2); its end is the EPOLLOUT (or error) edge of the
 * registration made here, reported from wait() like every completion. */
static int ep_connect(struct coil_conn *c, const struct sockaddr *sa,
		      socklen_t len)
{
	struct epc *x = X(c);
	int fd = socket(sa->sa_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int ret;

	if (fd < 0)
		return -errno;
	ret = coil__sock_tcp_opts(fd, c->lst->svc);
	if (ret) {
		close(fd);
		return ret;
	}
	c->fd = fd;
	x->st |= ST_CONN;
	/* Registered after connect(2): a socket not yet connecting polls as
	 * EPOLLHUP. */
	if (connect(fd, sa, len) == 0)
		x->st |= ST_CONNRDY;   /* connected at once */
	else if (errno != EINPROGRESS)
		x->err = -errno;
	if (!x->err)
		reg(c);
	if (actionable(x))
		queue(c);
	return 0;
}

static void ep_connect_cancel(struct coil_conn *c)
{
	X(c)->st |= ST_CCANCEL;
	queue(c);
}

static void ep_close(struct coil_conn *c, bool reset)
{
	struct epc *x = X(c);

	/* Defensive: the core frees only connections with no I/O left, which
	 * wait() has taken off the list already. */
	if (x->st & ST_QUEUED)
		unqueue(x);
	x->st = 0;
	if (c->fd < 0)
		return;
	if (reset) {
		struct linger l = { .l_onoff = 1, .l_linger = 0 };
		(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	}
	/* The fd is never duplicated: closing it leaves the epoll set. */
	close(c->fd);
}

/* ---- I/O, from wait() only ---- */

static unsigned end_recv(struct coil_conn *c, int res)
{
	X(c)->st &= ~(ST_RECV | ST_RCANCEL);
	coil__conn_recv_done(c, res);
	return 1;
}

static unsigned do_send(struct coil_conn *c)
{
	struct epc *x = X(c);
	struct msghdr m = { .msg_iov = c->iov, .msg_iovlen = c->niov };
	ssize_t n;
	int res;

	do {
		if (c->niov == 1) {
			/* send(2) spares the kernel the msghdr and iovec
			 * imports of sendmsg: the common small reply */
			n = send(c->fd, c->iov[0].iov_base, c->iov[0].iov_len,
				 MSG_NOSIGNAL);
		} else if (c->niov) {
			n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
		} else {
			/* A file segment: sendfile(2), zero copy. */
			off_t off = (off_t)c->file_seg->off;

			n = sendfile(c->fd, c->file_seg->fd, &off, c->inflight);
			if (n == 0) {
				/* the file ended before the bytes we were
				 * told of */
				n = -1;
				errno = EIO;
			}
		}
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		/* The kernel set SOCK_NOSPACE: an EPOLLOUT edge will come. */
		x->st |= ST_WBLOCK;
		return 0;
	}
	/* A short send is reported as such; the core sends the rest next
	 * turn, and that send finds out whether the socket is full. */
	res = n < 0 ? -errno : (int)n;
	x->st &= ~ST_SEND;
	coil__conn_sent(c, res);
	return 1;
}

static unsigned do_recv(struct coil_loop *loop, struct coil_conn *c)
{
	struct coil__bufpool *pool = &loop->pool;
	struct epc *x = X(c);
	unsigned done = 0;

	for (unsigned i = 0; i < MAX_READS; i++) {
		uint8_t *buf;
		int32_t bid;
		ssize_t n;
		int err;

		if (coil__conn_reading_stopped(c)) {
			/* The core stopped reading (on_data closed or paused,
			 * or output passed the high-water mark): end the
			 * receive now rather than wait for its cancel. */
			return done + end_recv(c, 1);
		}
		bid = coil__bufpool_take(pool);
		if (bid < 0)   /* back-pressure; ST_RD stays for the re-arm */
			return done + end_recv(c, -ENOBUFS);
		buf = coil__buf_addr(pool, (uint32_t)bid);
		do
			n = recv(c->fd, buf, pool->size, 0);
		while (n < 0 && errno == EINTR);
		if (n > 0) {
			if ((size_t)n < pool->size && !(x->st & ST_RDHUP))
				x->st &= ~ST_RD;
			coil__conn_recv(c, buf, (size_t)n, bid);
			done++;
			if (!(x->st & ST_RD))
				return done;
			continue;
		}
		err = n == 0 ? 0 : -errno;
		coil__buf_put(pool, (uint32_t)bid);
		x->st &= ~ST_RD;
		if (err == -EAGAIN || err == -EWOULDBLOCK)
			return done;
		return done + end_recv(c, err);  /* EOF or error */
	}
	return done;   /* capped: still readable, stays on the list */
}

/* Do what is pending for `c`; returns the completions reported. */
static unsigned serve(struct coil_loop *loop, struct coil_conn *c, bool reads)
{
	struct epc *x = X(c);
	unsigned done = 0;

	if (x->st & ST_CONN) {
		int err = 0;
		socklen_t n = sizeof(err);

		if (x->err)
			err = -x->err;
		else if (x->st & ST_CCANCEL)
			err = ECANCELED;
		else if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &n) < 0)
			err = errno;
		x->st &= ~(ST_CONN | ST_CONNRDY | ST_CCANCEL);
		x->err = 0;
		coil__conn_connected(c, -err);
		return 1;
	}
	if (x->err) {
		if (x->st & ST_SEND) {
			x->st &= ~(ST_SEND | ST_SCANCEL);
			coil__conn_sent(c, x->err);
			done++;
		}
		if (x->st & ST_RECV)
			done += end_recv(c, x->err);
		x->st &= ~(ST_RCANCEL | ST_SCANCEL);
		return done;
	}
	if (x->st & ST_SCANCEL) {
		x->st &= ~ST_SCANCEL;
		if (x->st & ST_SEND) {
			x->st &= ~ST_SEND;
			coil__conn_sent(c, -ECANCELED);
			done++;
		}
	}
	if (x->st & ST_RCANCEL) {
		x->st &= ~ST_RCANCEL;
		if (x->st & ST_RECV)
			done += end_recv(c, -ECANCELED);
	}
	if ((x->st & (ST_SEND | ST_WBLOCK)) == ST_SEND)
		done += do_send(c);
	if (reads && (x->st & (ST_RECV | ST_RD)) == (ST_RECV | ST_RD))
		done += do_recv(loop, c);
	return done;
}

/* Serve every pending connection once; keep those with work left (capped
 * reads). Reporting never calls back into the ops above, so the list is
 * only ours while we walk it. */
static unsigned run_pending(struct coil_loop *loop, bool reads)
{
	struct ep *e = E(loop);
	struct epc todo, *x;
	unsigned done = 0;

	if (e->pend.next == &e->pend)
		return 0;
	/* Detach, so connections re-queued below are not served twice. */
	todo.next = e->pend.next;
	todo.prev = e->pend.prev;
	todo.next->prev = &todo;
	todo.prev->next = &todo;
	e->pend.next = e->pend.prev = &e->pend;
	while ((x = todo.next) != &todo) {
		struct coil_conn *c = conn_of(x);

		unqueue(x);
		done += serve(loop, c, reads);
		if (actionable(x))
			queue(c);
	}
	return done;
}

/* ---- listeners ---- */

static int accept_arm(struct coil__listener *lst)
{
	struct epoll_event ev = {
		.events = EPOLLIN,   /* level: a capped accept loop resumes */
		.data.u64 = ud(lst, TAG_LISTENER),
	};

	if (epoll_ctl(E(lst->loop)->epfd, EPOLL_CTL_ADD, lst->fd, &ev) < 0)
		return -errno;
	lst->armed = true;
	return 0;
}

static void accept_retry(struct coil_timer *t)
{
	struct coil__listener *lst =
		coil__container_of(t, struct coil__listener, retry);

	if (lst->closed || lst->armed)
		return;
	if (accept_arm(lst))
		coil_timer_start(&lst->retry, 50);
}

static void on_listener(struct coil__listener *lst)
{
	for (unsigned i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(lst->fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			(void)coil__sock_tcp_opts(fd, lst->svc);
			coil__conn_accepted(lst, fd);
			continue;
		}
		switch (errno) {
		case EAGAIN:
#if EWOULDBLOCK != EAGAIN
		case EWOULDBLOCK:
#endif
			return;
		/* accept(2): pending network errors of the new socket; the
		 * next connection may be fine. */
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
		case ENETDOWN:
		case ENOPROTOOPT:
		case EHOSTDOWN:
		case ENONET:
		case EHOSTUNREACH:
		case EOPNOTSUPP:
		case ENETUNREACH:
		case EPERM:   /* a firewall rule refused it */
			continue;
		default:
			break;
		}
		if (lst->errors++ % 1024 == 0)
			coil__log("loop %u: accept: %s", lst->loop->id,
				  strerror(errno));
		/* EMFILE, ENOMEM...: the listener stays readable, so leave the
		 * set and back off instead of spinning, as io_uring does. */
		(void)epoll_ctl(E(lst->loop)->epfd, EPOLL_CTL_DEL, lst->fd, NULL);
		lst->armed = false;
		coil_timer_start(&lst->retry, 50);
		return;
	}
}

static int ep_listen_start(struct coil__listener *lst)
{
	int fl = fcntl(lst->fd, F_GETFL);

	/* engine.c makes blocking listeners (io_uring does not care). */
	if (fl < 0 || fcntl(lst->fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	coil_timer_init(&lst->retry, lst->loop, accept_retry, NULL);
	return accept_arm(lst);
}

static void ep_listen_stop(struct coil__listener *lst)
{
	if (lst->closed)
		return;
	coil__sock_listen_drain(lst, SOCK_NONBLOCK | SOCK_CLOEXEC);
	lst->closed = true;
	lst->armed = false;
	coil_timer_stop(&lst->retry);
	if (lst->fd >= 0) {
		close(lst->fd);   /* leaves the epoll set */
		lst->fd = -1;
	}
}

/* ---- UDP: recvmmsg / sendmmsg, edge-triggered ---- */

#define UDP_BATCH 32       /* datagrams per recvmmsg / sendmmsg */
#define UDP_READS 4        /* recvmmsg calls per service per poll */

struct epu {
	bool rd;                  /* readable, as far as we know */
	struct mmsghdr mm[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	struct sockaddr_in6 name[UDP_BATCH];
	int32_t bid[UDP_BATCH];
};

static int ep_udp_start(struct coil_udp *u)
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

static void ep_udp_stop(struct coil_udp *u)
{
	if (u->closed)
		return;
	u->closed = true;
	u->armed = false;
	if (u->fd >= 0)
		(void)epoll_ctl(E(u->loop)->epfd, EPOLL_CTL_DEL, u->fd, NULL);
}

static int ep_udp_send(struct coil_udp *u, const struct sockaddr *to,
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
static bool udp_service(struct coil_loop *loop, bool reads)
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

static void on_udp_event(struct coil_udp *u, uint32_t events)
{
	struct epu *x = u->be;

	if (events & (EPOLLIN | EPOLLERR))
		x->rd = true;
	if (events & (EPOLLOUT | EPOLLERR))
		u->blocked = false;
}

/* ---- loop ---- */

static int ep_loop_init(struct coil_loop *loop)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct ep *e;
	int ret;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->wake_fd = -1;
	e->pend.next = e->pend.prev = &e->pend;
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e->epfd < 0) {
		ret = -errno;
		goto fail;
	}
	e->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e->wake_fd < 0) {
		ret = -errno;
		goto fail_ep;
	}
	ev.data.u64 = ud(loop, TAG_WAKE);
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->wake_fd, &ev) < 0) {
		ret = -errno;
		goto fail_wake;
	}
	snprintf(e->features, sizeof(e->features),
		 "edge-triggered, accept4, recv into the receive pool, "
		 "one send per connection and turn");
	loop->be_data = e;
	loop->be_features = e->features;
	/* Buffers go back on the pool's free stack (pool.recycle NULL). */
	loop->pool.recycle = NULL;
	return 0;
fail_wake:
	close(e->wake_fd);
fail_ep:
	close(e->epfd);
fail:
	free(e);
	return ret;
}

static void ep_loop_fini(struct coil_loop *loop)
{
	struct ep *e = E(loop);

	if (!e)
		return;
	/* Connections still queued (teardown) must not point at the list
	 * head we are about to free: conn_free runs after us. */
	while (e->pend.next != &e->pend)
		unqueue(e->pend.next);
	for (unsigned i = 0; i < loop->nudp; i++) {
		struct coil_udp *u = &loop->udp[i];

		while (u->txq_head) {
			struct coil__udp_tx *t = u->txq_head;

			u->txq_head = t->next;
			coil__udp_tx_done(t, -ECANCELED);
		}
		u->txq_tail = NULL;
		free(u->be);
		u->be = NULL;
	}
	for (unsigned i = 0; i < loop->nlst; i++) {
		coil_timer_stop(&loop->lst[i].retry);
		if (loop->lst[i].fd >= 0) {
			close(loop->lst[i].fd);
			loop->lst[i].fd = -1;
		}
	}
	close(e->wake_fd);
	close(e->epfd);
	free(e);
	loop->be_data = NULL;
}

static void on_conn_event(struct coil_conn *c, uint32_t events)
{
	struct epc *x = X(c);

	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		x->st |= ST_RD;
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		x->st |= ST_RDHUP;
	/* Every edge carries the full current mask: EPOLLOUT here means the
	 * socket is writable now. */
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
		x->st &= ~ST_WBLOCK;
		if (x->st & ST_CONN)
			x->st |= ST_CONNRDY;
	}
	if (actionable(x))
		queue(c);
}

static void ep_wait(struct coil_loop *loop, int64_t timeout_ms)
{
	struct ep *e = E(loop);
	unsigned done;
	int n, tmo;

	/* 1. What the core asked for since the last turn: sends, cancels.
	 * Reads wait for the poll below, so a connection gets at most
	 * MAX_READS buffers per poll however the turns go. */
	done = run_pending(loop, false);
	if (loop->nudp && udp_service(loop, false))
		done++;
	if (done && e->polled) {
		/* The core has completions to handle and comes straight back;
		 * a poll now would mostly find nothing. Poll next turn (so at
		 * least every other turn): per echo message that is one read,
		 * one send and a share of one epoll_wait, like a classic
		 * epoll server. */
		e->polled = false;
		e->last_event_ns = loop->now_ns;
		return;
	}

	if (loop->poll == COIL_POLL_ALWAYS) {
		timeout_ms = 0;
	} else if (loop->poll == COIL_POLL_ADAPTIVE && timeout_ms != 0 &&
		   loop->now_ns - e->last_event_ns <
			   (uint64_t)loop->poll_us * 1000) {
		timeout_ms = 0;
	}
	if (done || e->pend.next != &e->pend)
		timeout_ms = 0;   /* reports to handle, or reads left */
	tmo = timeout_ms < 0 ? -1 : timeout_ms > INT_MAX ? INT_MAX
							 : (int)timeout_ms;

	/* 2. Poll, note readiness, then serve who became ready. */
	n = epoll_wait(e->epfd, e->ev, BATCH, tmo);
	e->polled = true;
	if (n < 0) {
		if (errno != EINTR)
			coil__log("loop %u: epoll_wait: %s", loop->id,
				  strerror(errno));
		n = 0;
	}
	if (n > 0)
		coil__loop_clock(loop);   /* we may have slept */
	for (int i = 0; i < n; i++) {
		uint64_t data = e->ev[i].data.u64;
		void *p = (void *)(uintptr_t)(data & ~(uint64_t)TAG_MASK);

		switch (data & TAG_MASK) {
		case TAG_CONN:
			on_conn_event(p, e->ev[i].events);
			break;
		case TAG_LISTENER:
			if (!((struct coil__listener *)p)->closed)
				on_listener(p);
			break;
		case TAG_UDP:
			on_udp_event(p, e->ev[i].events);
			break;
		case TAG_WAKE: {
			uint64_t v;

			if (read(e->wake_fd, &v, sizeof(v)) < 0) {
				/* EAGAIN: someone else drained it. */
			}
			break;
		}
		default:
			break;
		}
	}
	done += run_pending(loop, true);
	/* Datagrams are read after the TCP work, and their replies (and any
	 * datagram sent from the callbacks above) flushed now. A service
	 * left readable by the read cap keeps the next poll from sleeping. */
	if (loop->nudp && udp_service(loop, true))
		done++;
	if (n > 0 || done)
		e->last_event_ns = loop->now_ns;
}

static void ep_wake(struct coil_loop *loop)
{
	struct ep *e = E(loop);
	uint64_t one = 1;

	if (e && write(e->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, the loop will wake. */
	}
}

const struct coil__backend_ops coil__epoll_ops = {
	.name = "epoll",
	.loop_init = ep_loop_init,
	.loop_fini = ep_loop_fini,
	.listen_start = ep_listen_start,
	.listen_quiesce = coil__sock_lst_quiesce,
	.listen_pending = coil__sock_lst_pending,
	.listen_stop = ep_listen_stop,
	.recv_arm = ep_recv_arm,
	.recv_cancel = ep_recv_cancel,
	.send = ep_send,
	.send_cancel = ep_send_cancel,
	.send_file = ep_send,
	.connect = ep_connect,
	.connect_cancel = ep_connect_cancel,
	.sock_error = coil__sock_error,
	.shut_wr = coil__sock_shut_wr,
	.close = ep_close,
	.wait = ep_wait,
	.wake = ep_wake,
	.udp_start = ep_udp_start,
	.udp_stop = ep_udp_stop,
	.udp_send = ep_udp_send,
};
