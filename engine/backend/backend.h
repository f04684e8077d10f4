/* SPDX-License-Identifier: MIT */
/*
 * The backend interface: what a completion backend (io_uring), a readiness
 * backend (epoll) or a poll-mode driver (DPDK) provides to the loop core.
 * The core owns connection state, flags and close reasons; a backend only
 * performs I/O and reports events through coil__conn_* (core/internal.h),
 * coil__conn_recv_failed() included for a receive it has to give up on
 * (tests/unit/backend_contract.sh checks that no backend sets them).
 */
#ifndef COIL_BACKEND_H
#define COIL_BACKEND_H

#include "coil_config.h"
#include "../core/internal.h"

struct coil__backend_ops {
	const char *name;
	/* Set up per-loop state on the loop's own thread; the receive pool is
	 * initialised already. Returns 0 or -errno. */
	int (*loop_init)(struct coil_loop *loop);
	void (*loop_fini)(struct coil_loop *loop);
	/* Start / stop accepting on a listener (its fd is set). Sockets the
	 * backend accepts or connects carry the service's options
	 * (coil__sock_tcp_opts): the core sets none. */
	int (*listen_start)(struct coil__listener *lst);
	/* The loop begins to stop: take no new handshake on the listener,
	 * keep accepting those already begun (NULL: nothing to do). */
	void (*listen_quiesce)(struct coil__listener *lst);
	/* Handshakes begun on a quiesced listener and not finished yet, 0
	 * when none, -errno when the backend cannot tell (NULL: 0). */
	int (*listen_pending)(struct coil__listener *lst);
	/* Adopt every connection queued (coil__sock_listen_drain) and close;
	 * lst->armed stays set until the backend is done with the fd. */
	void (*listen_stop)(struct coil__listener *lst);
	/* Start receiving on `c` until coil__conn_recv_done() reports an end.
	 * The core set CONN_RECV_ARMED. */
	void (*recv_arm)(struct coil_conn *c);
	/* Ask the outstanding receive to end (it still reports its end). */
	void (*recv_cancel)(struct coil_conn *c);
	/* Send c->iov[0..c->niov); report with coil__conn_sent(). */
	void (*send)(struct coil_conn *c);
	/* Ask the outstanding send to end early (abort). */
	void (*send_cancel)(struct coil_conn *c);
	/* Send up to c->inflight bytes of c->file_seg (fd at its offset)
	 * without copying through user space; report with coil__conn_sent()
	 * like send (a short count, even 0, means "call again"). */
	void (*send_file)(struct coil_conn *c);
	/* Outgoing connection: open a socket for `sa`'s family, set c->fd and
	 * start connecting to `sa` (copy it: the caller's goes away). Report
	 * the end with coil__conn_connected(), never from here. Returns 0, or
	 * -errno with nothing started and c->fd left -1. */
	int (*connect)(struct coil_conn *c, const struct sockaddr *sa,
		       socklen_t len);
	/* Ask the outstanding connect to end (it still reports). */
	void (*connect_cancel)(struct coil_conn *c);
	/* Optional: the socket's pending error (SO_ERROR, which it clears),
	 * 0 if none. NULL: the backend cannot tell (the fake). */
	int (*sock_error)(struct coil_conn *c);
	/* Half-close: no more output (FIN after what was sent), input still
	 * readable. Only with no send outstanding. */
	void (*shut_wr)(struct coil_conn *c);
	/* The connection is done with (no I/O outstanding): close its fd. */
	void (*close)(struct coil_conn *c, bool reset);
	/* Submit what is queued, wait for events per the poll mode (at most
	 * timeout_ms; -1 = no timer pending; 0 = do not sleep), and dispatch
	 * them in one batch. */
	void (*wait)(struct coil_loop *loop, int64_t timeout_ms);
	/* Wake a sleeping loop. Any thread. */
	void (*wake)(struct coil_loop *loop);

	/* UDP (NULL: the backend has none). Start receiving on a UDP
	 * service (u->fd is set on socket backends); each datagram goes to
	 * coil__udp_deliver(). Returns 0 or -errno. */
	int (*udp_start)(struct coil_udp *u);
	/* Stop receiving (engine shutdown); the fd is closed by the core at
	 * loop teardown. */
	void (*udp_stop)(struct coil_udp *u);
	/* Queue one datagram (already checked against max_datagram); sent
	 * in this turn's wait(). Returns 0 or -errno (coil_udp_send). */
	int (*udp_send)(struct coil_udp *u, const struct sockaddr *to,
			socklen_t to_len, const void *data, size_t len);
	/* True for a backend with its own packet stack (DPDK): services get
	 * no kernel sockets. */
	bool own_stack;
	/* Optional: log the backend's own per-loop counters (COIL_STATS). */
	void (*log_stats)(struct coil_loop *loop);
	/* The peer's (`peer`) or the local address of `c` into *ss, *len;
	 * 0 or -errno. NULL: getpeername or getsockname on c->fd. */
	int (*addr)(const struct coil_conn *c, bool peer,
		    struct sockaddr_storage *ss, socklen_t *len);
};

/* The service's TCP options (TCP_NODELAY unless COIL_SERVICE_NAGLE) on a
 * socket a kernel-socket backend just accepted, or opened for a connect.
 * (Set per socket, not once on the listener, whose setting Linux copies
 * into each child: connections already queued when the loop starts
 * would miss it.) Returns 0 or -errno. (backend/sock.c) */
int coil__sock_tcp_opts(int fd, const struct coil_service *svc);

/* Graceful stop of a kernel listener (backend/sock.c). quiesce: a socket
 * filter drops new SYNs, so no handshake starts that the close would
 * reset; pending: SYN_RECV requests left on the listener's port (sock_diag;
 * -errno when the kernel will not say); drain: accept4 (with `flags`)
 * everything queued, with the service's options, into
 * coil__conn_accepted. */
int coil__sock_listen_quiesce(int fd);
int coil__sock_listen_pending(int fd);
void coil__sock_listen_drain(struct coil__listener *lst, int flags);
/* listen_quiesce and listen_pending of the kernel-socket backends. */
void coil__sock_lst_quiesce(struct coil__listener *lst);
int coil__sock_lst_pending(struct coil__listener *lst);

/* shut_wr and sock_error for real sockets (shutdown(2) SHUT_WR,
 * getsockopt SO_ERROR). */
void coil__sock_shut_wr(struct coil_conn *c);
int coil__sock_error(struct coil_conn *c);
/* Close a connection's socket; reset: with an RST (SO_LINGER 0) instead
 * of the orderly FIN. */
void coil__sock_close(int fd, bool reset);

extern const struct coil__backend_ops coil__uring_ops;
extern const struct coil__backend_ops coil__epoll_ops;
#if COIL_HAVE_DPDK
extern const struct coil__backend_ops coil__dpdk_ops;
/* Initialise the EAL from opts->dpdk_args, the first port with up to
 * *nloops RX/TX queue pairs (RSS when there are several) and the mbuf
 * pool. On return *nloops is the number of queues (= loops) granted.
 * Returns 0 or -errno after logging why. Main thread, once. */
int coil__dpdk_setup(const struct coil_engine_opts *opts, unsigned *nloops);
/* Wait up to timeout_ms for the port's link: 0 when up, -ETIMEDOUT.
 * Main thread, before the loops run. */
int coil__dpdk_link_wait(unsigned timeout_ms);
/* Stop the port and release the EAL. Main thread, after the loops. */
void coil__dpdk_teardown(void);
#endif

/* Post a completion with user_data `data` (res 0) into the io_uring whose
 * fd is `ring_fd`, by IORING_OP_MSG_RING from the calling thread's own
 * small ring (backend/uring_msg.c). Returns 0, or -errno (the kernel has
 * no MSG_RING, the target's CQ is full...): then wake it another way. Any
 * thread. */
int coil__uring_msg(int ring_fd, uint64_t data);

/* Can this process run the io_uring backend (ring setup, provided-buffer
 * ring, multishot recv)? Returns 0, or -errno with the reason for people
 * in why[n]. Cheap enough to call once at engine create. */
int coil__uring_probe(char *why, size_t n);
/* Tests only: make io_uring loops started from now on fail their
 * min-wait probe and use the plain waits (logged like a real failure). */
extern bool coil__uring_no_min_wait;

#endif
