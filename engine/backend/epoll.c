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
 * This file: the loop (its epoll set, wake-up eventfd and turn), its
 * listeners and the ops table. The connections, and why edge-triggered:
 * epoll_conn.c; UDP: epoll_udp.c; what they share: epoll_internal.h.
 */
#include "epoll_internal.h"

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPT_BATCH 64    /* accepts per listener per poll */

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

static void ep_wait(struct coil_loop *loop, int64_t timeout_ms)
{
	struct ep *e = E(loop);
	unsigned done;
	int n, tmo;

	/* 1. What the core asked for since the last turn: sends, cancels.
	 * Reads wait for the poll below, so a connection gets at most
	 * MAX_READS buffers per poll however the turns go. */
	done = coil__epoll_run_pending(loop, false);
	if (loop->nudp && coil__epoll_udp_service(loop, false))
		done++;
	if (done && e->polled) {
		/* The core has completions to handle and comes straight back;
		 * a poll now would mostly find nothing. Poll next turn (so at
		 * least every other turn): per echo message that is one read,
		 * one send and a share of one epoll_wait, like a classic
		 * epoll server. */
		e->polled = false;
		e->last_event_ns = loop->now_ns;
		e->idle_turn = false;
		return;
	}

	if (loop->poll == COIL_POLL_ALWAYS) {
		timeout_ms = 0;
	} else if (loop->poll == COIL_POLL_ADAPTIVE && timeout_ms != 0 &&
		   loop->now_ns - e->last_event_ns <
			   (uint64_t)loop->poll_us * 1000) {
		timeout_ms = 0;
		/* Spinning, and the last look found nothing: let a thread
		 * that shares this CPU run first (see COIL_POLL_ADAPTIVE). */
		if (e->idle_turn)
			sched_yield();
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
			coil__epoll_conn_event(p, e->ev[i].events);
			break;
		case TAG_LISTENER:
			if (!((struct coil__listener *)p)->closed)
				on_listener(p);
			break;
		case TAG_UDP:
			coil__epoll_udp_event(p, e->ev[i].events);
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
	done += coil__epoll_run_pending(loop, true);
	/* Datagrams are read after the TCP work, and their replies (and any
	 * datagram sent from the callbacks above) flushed now. A service
	 * left readable by the read cap keeps the next poll from sleeping. */
	if (loop->nudp && coil__epoll_udp_service(loop, true))
		done++;
	if (n > 0 || done)
		e->last_event_ns = loop->now_ns;
	e->idle_turn = n <= 0 && !done;
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
	.recv_arm = coil__epoll_recv_arm,
	.recv_cancel = coil__epoll_recv_cancel,
	.send = coil__epoll_send,
	.send_cancel = coil__epoll_send_cancel,
	.send_file = coil__epoll_send,
	.connect = coil__epoll_connect,
	.connect_cancel = coil__epoll_connect_cancel,
	.sock_error = coil__sock_error,
	.shut_wr = coil__sock_shut_wr,
	.close = coil__epoll_close,
	.wait = ep_wait,
	.wake = ep_wake,
	.udp_start = coil__epoll_udp_start,
	.udp_stop = coil__epoll_udp_stop,
	.udp_send = coil__epoll_udp_send,
};
