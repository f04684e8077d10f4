/* SPDX-License-Identifier: MIT */
/*
 * The connection core's TCP operations on the DPDK stack: each coil_conn
 * is a tcb of the loop's engine/net TCP (c->fd = FD_BASE + its index, so
 * that it can never name a real descriptor).
 *
 * Receive: recv_arm lets TCP hand in-order payload straight from the
 * mbuf to coil__conn_recv (no receive-pool buffer: what on_data does not
 * consume is carried, as on io_uring); unarmed, TCP holds the packets and
 * its window shrinks.
 *
 * Send: the connection's send queue is TCP's send buffer. A send covers
 * c->inflight bytes from the head of the queue; TCP copies segments out
 * of the queue (pread for a file segment) when it transmits or
 * retransmits, and bytes are reported sent only once acknowledged, so
 * the queue keeps them for retransmission. Acknowledged bytes beyond the
 * current send wait in `unrep` for the next one.
 *
 * Completions the core must not see from inside its own call (a cancel,
 * a send's first go) are queued and reported at the start of the next
 * wait, like io_uring's.
 */
#include "dpdk_tcp.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#define FD_BASE (1 << 24)

enum { P_SEND = 1, P_RECV_CANCEL = 2, P_SEND_CANCEL = 4,
       P_CONNECT_CANCEL = 8, P_ACKED = 16 };

/* Per connection, in c->backend. */
struct gl {
	struct coil__tcb *t;
	struct coil_conn *pnext;
	/* Both are bounded by c->inflight (uint32_t) and the send window. */
	uint32_t unrep;        /* acknowledged, not yet reported sent */
	uint32_t counted;      /* head bytes already in loop->tx_bytes */
	uint32_t pend;
	bool queued;
};

_Static_assert(sizeof(struct gl) <= sizeof(((struct coil_conn *)0)->backend),
	       "glue state fits the connection's backend scratch");

static struct gl *G(const struct coil_conn *c)
{
	return (struct gl *)(void *)c->backend;
}

static int fd_of(const struct coil__dpdk_tcp *dt, const struct coil__tcb *t)
{
	return FD_BASE + (int)(t - dt->tcp.tcbs);
}

static void pend(struct coil_conn *c, uint32_t what)
{
	struct coil__dpdk_tcp *dt = coil__dpdk_tcp_of(c->loop);
	struct gl *g = G(c);

	g->pend |= what;
	if (g->queued)
		return;
	g->queued = true;
	g->pnext = dt->pending;
	dt->pending = c;
}

static void unpend(struct coil__dpdk_tcp *dt, struct coil_conn *c)
{
	struct coil_conn **pp = &dt->pending;

	if (!G(c)->queued)
		return;
	while (*pp != c)
		pp = &G(*pp)->pnext;
	*pp = G(c)->pnext;
	G(c)->queued = false;
	G(c)->pend = 0;
}

/* ---- callbacks from TCP ---- */

static void *t_accepted(void *lctx, struct coil__tcb *t)
{
	struct coil__listener *lst = lctx;
	struct coil_loop *loop = lst->loop;
	struct coil__dpdk_tcp *dt = coil__dpdk_tcp_of(loop);
	struct coil__conn_link *l;
	struct coil_conn *c;
	int fd = fd_of(dt, t);

	dt->accepting = t;
	dt->refused = false;
	coil__conn_accepted(lst, fd);
	dt->accepting = NULL;
	if (dt->refused)
		return NULL;
	/* conn_new put it first on the loop's list; on_open may have opened
	 * others (coil_loop_connect) in front of it since */
	for (l = loop->all.next; l != &loop->all; l = l->next)
		if (coil__conn_of_link(l)->fd == fd)
			break;
	if (l == &loop->all)
		return NULL;
	c = coil__conn_of_link(l);
	memset(G(c), 0, sizeof(struct gl));
	G(c)->t = t;
	return c;
}

static void t_connected(void *uctx, int res)
{
	struct coil_conn *c = uctx;

	if (c->flags & CONN_CONNECTING)
		coil__conn_connected(c, res);
}

static void t_recv(void *uctx, const uint8_t *data, size_t len)
{
	coil__conn_recv(uctx, data, len, -1);
}

static void t_eof(void *uctx)
{
	struct coil_conn *c = uctx;

	coil__tcp_recv_arm(G(c)->t, false);
	if (c->flags & CONN_RECV_ARMED)
		coil__conn_recv_done(c, 0);
}

static void t_acked(void *uctx, size_t n)
{
	struct coil_conn *c = uctx;

	G(c)->unrep += n;
	pend(c, P_ACKED);
}

static void t_gone(void *uctx, int err)
{
	struct coil_conn *c = uctx;

	coil__conn_failed(c, err);
}

/* Bytes [off, off + len) of the send queue, after what was acknowledged
 * but not reported yet. */
static void t_copy(void *uctx, size_t off, uint8_t *dst, size_t len)
{
	struct coil_conn *c = uctx;
	struct coil__seg *s = c->sq_head;

	off += G(c)->unrep;
	while (len) {
		size_t n;

		assert(s);
		if (off >= s->len) {
			off -= s->len;
			s = s->next;
			continue;
		}
		n = s->len - off < len ? s->len - off : len;
		if (s->kind == SEG_FILE) {
			ssize_t r = pread(s->fd, dst, n, (off_t)(s->off + off));

			if (r <= 0) {
				/* the file shrank: zeros, and the connection
				 * goes (at the next report) */
				memset(dst, 0, n);
				coil__conn_failed(c, r < 0 ? -errno : -EIO);
			} else if ((size_t)r < n) {
				memset(dst + r, 0, n - (size_t)r);
			}
		} else {
			memcpy(dst, s->data + off, n);
		}
		dst += n;
		len -= n;
		off = 0;
		s = s->next;
	}
}

static const struct coil__tcp_ops tcp_ops = {
	.accepted = t_accepted, .connected = t_connected, .recv = t_recv,
	.eof = t_eof, .acked = t_acked, .gone = t_gone, .copy = t_copy,
};

/* ---- the loop ---- */

int coil__dpdk_tcp_init(struct coil__dpdk_tcp *dt, struct coil_loop *loop,
			struct coil__net *n, bool tx_csum, unsigned max_conns,
			unsigned mbufs)
{
	struct coil__tcp_cfg cfg = { .tx_tcp_csum = tx_csum };
	int ret;

	/* tcbs beyond the connections: TIME_WAIT (a quarter) and the SYN
	 * queues; packets held (out of order, or while a connection does
	 * not read) at most half the pool, so receiving never starves */
	if (!max_conns)
		max_conns = 4096;
	cfg.tw_max = max_conns / 4 + 1;
	/* Handshakes in progress per listener before SYN cookies: as many
	 * as a load generator opens in one go (cookies cannot survive the
	 * loss of both the third ACK and the first data segment). */
	cfg.syn_backlog = 1024;
	cfg.max_conns = max_conns + cfg.tw_max +
			cfg.syn_backlog * COIL__TCP_MAX_LISTEN;
	cfg.held_max = mbufs / 2 > 64 ? mbufs / 2 : 64;
	cfg.port_ok = coil__dpdk_flow_mine;
	cfg.port_ctx = loop;
	dt->loop = loop;
	dt->pending = NULL;
	ret = coil__tcp_init(&dt->tcp, n, loop, &cfg, &tcp_ops);
	dt->up = ret == 0;
	return ret;
}

void coil__dpdk_tcp_fini(struct coil__dpdk_tcp *dt)
{
	if (!dt->up)
		return;
	coil__tcp_fini(&dt->tcp);
	dt->up = false;
}

void coil__dpdk_tcp_poll(struct coil__dpdk_tcp *dt)
{
	while (dt->pending) {
		struct coil_conn *c = dt->pending;
		struct gl *g = G(c);
		uint32_t p = g->pend;

		dt->pending = g->pnext;
		g->queued = false;
		g->pend = 0;
		if ((p & P_CONNECT_CANCEL) && (c->flags & CONN_CONNECTING))
			coil__conn_connected(c, -ECANCELED);
		if ((p & P_RECV_CANCEL) && (c->flags & CONN_RECV_ARMED))
			coil__conn_recv_done(c, -ECANCELED);
		if (!(c->flags & CONN_SENDING))
			continue;
		if (p & P_SEND_CANCEL) {
			coil__conn_sent(c, -ECANCELED);
		} else if (g->unrep) {
			size_t r = g->unrep < c->inflight ? g->unrep
							  : c->inflight;

			g->unrep -= r;
			g->counted -= r < g->counted ? r : g->counted;
			coil__conn_sent(c, (int)r);
		} else if (p & P_SEND) {
			coil__tcp_send(g->t, c->inflight);
		}
	}
	coil__tcp_poll(&dt->tcp);
}

/* ---- backend operations ---- */

int coil__dpdk_listen_start(struct coil__listener *lst)
{
	struct coil__dpdk_tcp *dt = coil__dpdk_tcp_of(lst->loop);
	int ret = coil__tcp_listen(&dt->tcp, htons(lst->svc->port), lst);

	lst->armed = ret == 0;
	return ret;
}

void coil__dpdk_listen_stop(struct coil__listener *lst)
{
	struct coil__dpdk_tcp *dt = coil__dpdk_tcp_of(lst->loop);

	if (dt && dt->up && lst->armed)
		coil__tcp_unlisten(&dt->tcp, htons(lst->svc->port));
	lst->armed = false;
	lst->closed = true;
}

void coil__dpdk_recv_arm(struct coil_conn *c)
{
	coil__tcp_recv_arm(G(c)->t, true);
}

void coil__dpdk_recv_cancel(struct coil_conn *c)
{
	coil__tcp_recv_arm(G(c)->t, false);
	pend(c, P_RECV_CANCEL);
}

void coil__dpdk_send(struct coil_conn *c)
{
	struct gl *g = G(c);
	size_t again = g->counted < c->inflight ? g->counted : c->inflight;

	/* A send covers the queue from its head, unacknowledged bytes that
	 * an earlier send covered too: the loop's byte count takes them
	 * once. */
	c->loop->tx_bytes -= again;
	if (g->counted < c->inflight)
		g->counted = c->inflight;
	pend(c, P_SEND);
}

void coil__dpdk_send_cancel(struct coil_conn *c)
{
	pend(c, P_SEND_CANCEL);
}

int coil__dpdk_connect(struct coil_conn *c, const struct sockaddr *sa,
		       socklen_t len)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
	struct coil__dpdk_tcp *dt = coil__dpdk_tcp_of(c->loop);
	struct coil__tcb *t;
	int err = 0;

	if (len < sizeof(*sin) || sa->sa_family != AF_INET)
		return -EAFNOSUPPORT;
	memset(G(c), 0, sizeof(struct gl));
	t = coil__tcp_connect(&dt->tcp, sin->sin_addr.s_addr, sin->sin_port,
			      c, &err);
	if (!t)
		return err;
	G(c)->t = t;
	c->fd = fd_of(dt, t);
	return 0;
}

void coil__dpdk_connect_cancel(struct coil_conn *c)
{
	pend(c, P_CONNECT_CANCEL);
}

void coil__dpdk_shut_wr(struct coil_conn *c)
{
	coil__tcp_shutdown(G(c)->t);
}

void coil__dpdk_close(struct coil_conn *c, bool reset)
{
	struct coil__dpdk_tcp *dt = coil__dpdk_tcp_of(c->loop);

	if (c->fd < FD_BASE || !dt || !dt->up)
		return;   /* never connected, or the stack is gone already */
	if (dt->accepting && c->fd == fd_of(dt, dt->accepting)) {
		dt->refused = true;   /* TCP resets it when accepted() says no */
		return;
	}
	unpend(dt, c);
	if (G(c)->t)
		coil__tcp_close(G(c)->t, reset);
	G(c)->t = NULL;
}

int coil__dpdk_addr(const struct coil_conn *c, bool peer,
		    struct sockaddr_storage *ss, socklen_t *len)
{
	struct coil__dpdk_tcp *dt = coil__dpdk_tcp_of(c->loop);
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	const struct coil__tcb *t;

	/* by descriptor: on_open may ask before accepted() returned */
	if (!dt || !dt->up || c->fd < FD_BASE ||
	    c->fd - FD_BASE >= (int)dt->tcp.cfg.max_conns)
		return -ENOTCONN;
	t = &dt->tcp.tcbs[c->fd - FD_BASE];
	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = peer ? t->raddr : dt->tcp.net->cfg.ip;
	sin->sin_port = peer ? t->rport : t->lport;
	*len = sizeof(*sin);
	return 0;
}
