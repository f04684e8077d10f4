/* SPDX-License-Identifier: MIT */
/*
 * Between dpdk.c (the port, the loop's turn) and dpdk_tcp.c (the
 * connection core's TCP operations over engine/net/tcp*.c). Private.
 */
#ifndef COIL_BACKEND_DPDK_TCP_H
#define COIL_BACKEND_DPDK_TCP_H

#include "backend.h"
#include "../net/tcp.h"

/* A loop's TCP and the completions the connection glue owes the core. */
struct coil__dpdk_tcp {
	struct coil__tcp tcp;
	struct coil_loop *loop;
	struct coil_conn *pending;       /* completions to report */
	struct coil__tcb *accepting;     /* inside coil__conn_accepted */
	bool refused;                    /* ... which closed it at once */
	bool up;
};

/* The loop's instance (dpdk.c). */
struct coil__dpdk_tcp *coil__dpdk_tcp_of(struct coil_loop *loop);
/* Does the flow raddr:rport <-> our lport belong to this loop (dpdk.c's
 * software steering of TCP between queues)? */
bool coil__dpdk_flow_mine(void *loop, uint32_t raddr, uint16_t rport,
			  uint16_t lport);

/* Set up TCP on the loop's stack for max_conns connections, holding at
 * most half of the mbufs. Returns 0 or -errno. */
int coil__dpdk_tcp_init(struct coil__dpdk_tcp *dt, struct coil_loop *loop,
			struct coil__net *n, bool tx_csum, unsigned max_conns,
			unsigned mbufs);
void coil__dpdk_tcp_fini(struct coil__dpdk_tcp *dt);
/* Report owed completions and deliver held input: start of each wait. */
void coil__dpdk_tcp_poll(struct coil__dpdk_tcp *dt);

/* The backend operations (coil__dpdk_ops). */
int coil__dpdk_listen_start(struct coil__listener *lst);
void coil__dpdk_listen_stop(struct coil__listener *lst);
void coil__dpdk_recv_arm(struct coil_conn *c);
void coil__dpdk_recv_cancel(struct coil_conn *c);
void coil__dpdk_send(struct coil_conn *c);
void coil__dpdk_send_cancel(struct coil_conn *c);
int coil__dpdk_connect(struct coil_conn *c, const struct sockaddr *sa,
		       socklen_t len);
void coil__dpdk_connect_cancel(struct coil_conn *c);
void coil__dpdk_shut_wr(struct coil_conn *c);
void coil__dpdk_close(struct coil_conn *c, bool reset);
int coil__dpdk_addr(const struct coil_conn *c, bool peer,
		    struct sockaddr_storage *ss, socklen_t *len);

#endif
