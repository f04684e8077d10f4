/* SPDX-License-Identifier: MIT */
/*
 * Between the epoll backend's files: epoll.c (the loop: its epoll set,
 * wake-up eventfd and turn; listeners; the ops table), epoll_conn.c (a
 * connection's readiness state, the operations the core asks for and
 * their completions) and epoll_udp.c (UDP services). Private to
 * engine/backend.
 */
#ifndef COIL_BACKEND_EPOLL_INTERNAL_H
#define COIL_BACKEND_EPOLL_INTERNAL_H

#include "backend.h"

#include <sys/epoll.h>

#define BATCH 256          /* events per epoll_wait */

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

/* A connection's epoll state, in c->backend. */
struct epc {
	struct epc *next, *prev;  /* pending list, while ST_QUEUED */
	uint32_t st;
	int err;                  /* epoll_ctl failed: end I/O with this */
};

/* A loop's epoll state (loop->be_data). */
struct ep {
	int epfd;
	int wake_fd;
	bool polled;              /* the last wait() called epoll_wait */
	uint64_t last_event_ns;
	bool idle_turn;           /* the last turn found nothing to do */
	struct epc pend;          /* sentinel: connections with work to do */
	char features[96];
	struct epoll_event ev[BATCH];
};

/* The loop's epoll state. */
static inline struct ep *E(struct coil_loop *loop)
{
	return loop->be_data;
}

/* The epoll data of object `p`: pointer | tag. */
static inline uint64_t ud(const void *p, unsigned tag)
{
	return (uint64_t)(uintptr_t)p | tag;
}

/* Take `x` off the loop's pending list (it is on it: ST_QUEUED). */
static inline void unqueue(struct epc *x)
{
	x->prev->next = x->next;
	x->next->prev = x->prev;
	x->next = x->prev = NULL;
	x->st &= ~ST_QUEUED;
}

/* ---- epoll_conn.c ---- */

/* The connections' operations (coil__epoll_ops): they record what the
 * core asked and queue the connection; wait() does the I/O and reports. */
void coil__epoll_recv_arm(struct coil_conn *c);
void coil__epoll_recv_cancel(struct coil_conn *c);
void coil__epoll_send(struct coil_conn *c);
void coil__epoll_send_cancel(struct coil_conn *c);
int coil__epoll_connect(struct coil_conn *c, const struct sockaddr *sa,
			socklen_t len);
void coil__epoll_connect_cancel(struct coil_conn *c);
void coil__epoll_close(struct coil_conn *c, bool reset);
/* Serve every pending connection once (reads only when `reads`: right
 * after a poll); returns the completions reported. */
unsigned coil__epoll_run_pending(struct coil_loop *loop, bool reads);
/* Note a connection's epoll event and queue it if it has work. */
void coil__epoll_conn_event(struct coil_conn *c, uint32_t events);

/* ---- epoll_udp.c ---- */

/* coil__epoll_ops.udp_start, udp_stop, udp_send (queued: sent by
 * coil__epoll_udp_service). */
int coil__epoll_udp_start(struct coil_udp *u);
void coil__epoll_udp_stop(struct coil_udp *u);
int coil__epoll_udp_send(struct coil_udp *u, const struct sockaddr *to,
			 socklen_t to_len, const void *data, size_t len);
/* Per turn: flush queued datagrams, read what is readable (when `reads`),
 * flush the replies. True when a service is still readable (capped). */
bool coil__epoll_udp_service(struct coil_loop *loop, bool reads);
/* Note a UDP service's epoll event. */
void coil__epoll_udp_event(struct coil_udp *u, uint32_t events);

#endif
