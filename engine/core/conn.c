/* SPDX-License-Identifier: MIT */
/*
 * Connections: accept and connect, opening, pause/resume, idle timeouts,
 * the per-turn flush (sends, receive arming, closes) and the close state
 * machine with the lingering close. The receive path (carry buffer, held
 * input, delivery, starved receives) is in conn_recv.c, the send queue in
 * sendq.c.
 */
#include "internal.h"
#include "../backend/backend.h"
#include "../steer/steering.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void coil__conn_mark(struct coil_conn *c)
{
	if (c->flags & (CONN_DIRTY | CONN_FREED))
		return;
	c->flags |= CONN_DIRTY;
	c->next_dirty = c->loop->dirty;
	c->loop->dirty = c;
}

void *coil_conn_state(struct coil_conn *c)
{
	return c->state;
}

struct coil_loop *coil_conn_loop(const struct coil_conn *c)
{
	return c->loop;
}

void *coil_conn_service_data(const struct coil_conn *c)
{
	return c->lst->svc->data;
}

/* ---- idle timeout ---- */

static void idle_fired(struct coil_timer *t)
{
	struct coil_conn *c = coil__container_of(t, struct coil_conn, idle);
	uint64_t limit = c->lst->svc->idle_timeout_ms;
	uint64_t idle = c->loop->now_ms - c->last_rx_ms;

	if (c->flags & CONN_LINGER) {
		c->flags |= CONN_LINGER_END;
		coil__conn_mark(c);
		return;
	}

	/* The deadline moves with every receive without touching the wheel;
	 * only here do we look at how long it has really been. */
	if (idle < limit) {
		coil_timer_start(t, limit - idle);
		return;
	}
	if (!c->close_reason)
		c->close_reason = -ETIMEDOUT;
	coil_conn_close(c);
}

/* ---- close ---- */

void coil_conn_close(struct coil_conn *c)
{
	if (c->flags & (CONN_CLOSING | CONN_FREED))
		return;
	c->flags |= CONN_CLOSING;
	coil__conn_mark(c);
}

void coil_conn_abort(struct coil_conn *c)
{
	if (c->flags & (CONN_ABORT | CONN_FREED))
		return;
	c->flags |= CONN_CLOSING | CONN_ABORT;
	coil__conn_mark(c);
}

static void conn_free(struct coil_conn *c)
{
	struct coil_loop *loop = c->loop;
	const struct coil_proto_ops *ops = c->lst->svc->ops;

	assert(!(c->flags & (CONN_RECV_ARMED | CONN_SENDING | CONN_DIRTY |
			     CONN_CONNECTING)));
	if (c->flags & CONN_STARVED)
		coil__conn_starved_unlink(c);
	loop->be->close(c, c->flags & CONN_ABORT);
	c->fd = -1;
	coil_timer_stop(&c->idle);
	c->flags |= CONN_FREED;
	if (ops->on_close && !(c->flags & CONN_REFUSED))
		ops->on_close(c, c->close_reason);
	if (c->tls)
		coil__tls_free(c);
	coil__sendq_drop(c);
	while (c->held_head) {
		struct coil__seg *h = c->held_head;

		c->held_head = h->next;
		coil__seg_free(loop, h);
	}
	free(c->carry);
	c->carry = NULL;
	c->all.prev->next = c->all.next;
	c->all.next->prev = c->all.prev;
	coil__stat_add(loop->nconns, -1);
	atomic_fetch_add_explicit(&loop->closed, 1, memory_order_relaxed);
	if (c->close_reason == -ECONNRESET)
		coil__stat_add(loop->st.resets, 1);
	coil__steer_closed(c->lst->steer);
	coil__slab_put(&loop->conns, c);
}

void coil_conn_pause(struct coil_conn *c)
{
	c->flags |= CONN_PAUSED;
}

void coil_conn_resume(struct coil_conn *c)
{
	if (!(c->flags & CONN_PAUSED))
		return;
	c->flags &= ~CONN_PAUSED;
	if (c->carry_len || c->held_head)
		c->flags |= CONN_CARRY_DUE;
	coil__conn_mark(c);
}

bool coil_conn_closing(const struct coil_conn *c)
{
	return c->flags & (CONN_CLOSING | CONN_ABORT | CONN_EOF);
}

/* ---- accept ---- */

/* Close a socket that never became a connection, through the backend (the
 * fake's "fds" are not real ones). */
static void close_unaccepted(struct coil_loop *loop, int fd)
{
	struct coil_conn tmp = { .fd = fd, .loop = loop,
				 .pipe_fds = { -1, -1 } };

	loop->be->close(&tmp, false);
}

static struct coil_conn *conn_new(struct coil__listener *lst, int fd);
static void conn_open(struct coil_conn *c);

void coil__conn_accepted(struct coil__listener *lst, int fd)
{
	struct coil_loop *loop = lst->loop;
	struct coil_conn *c;

	c = conn_new(lst, fd);
	if (!c) {
		/* Full: refuse, loudly but not once per connection. */
		coil__stat_add(lst->refused, 1);
		if ((lst->refused - 1) % 1024 == 0)
			coil__log("loop %u: connection limit reached, "
				  "refusing (%u so far)",
				  loop->id, lst->refused);
		close_unaccepted(loop, fd);
		return;
	}
	atomic_fetch_add_explicit(&loop->accepted, 1, memory_order_relaxed);
	coil__steer_opened(lst->steer);
	conn_open(c);
	/* Accepted while the loop drains (an accept in flight, or the
	 * listener's queue emptied before it closes): the client has
	 * connected and will send a request it expects answered (RFC 9112
	 * 9.3.1 lets it retry only on a connection that answered before). */
	if (loop->stopping && !(c->flags & CONN_CLOSING))
		coil__conn_shutdown(c);
}

void coil__conn_shutdown(struct coil_conn *c)
{
	if (c->lst->svc->ops->on_shutdown)
		c->lst->svc->ops->on_shutdown(c);
	else
		coil_conn_close(c);
}

/* A new connection on `lst`'s loop, linked in, nothing else done; NULL when
 * max_conns are open. */
static struct coil_conn *conn_new(struct coil__listener *lst, int fd)
{
	struct coil_loop *loop = lst->loop;
	struct coil_conn *c = coil__slab_get(&loop->conns);

	if (!c)
		return NULL;
	memset(c, 0, loop->conn_size);
	c->loop = loop;
	c->lst = lst;
	c->fd = fd;
	c->pipe_fds[0] = c->pipe_fds[1] = -1;
	c->last_rx_ms = loop->now_ms;
	coil_timer_init(&c->idle, loop, idle_fired, NULL);
	c->all.next = loop->all.next;
	c->all.prev = &loop->all;
	loop->all.next->prev = &c->all;
	loop->all.next = &c->all;
	coil__stat_add(loop->nconns, 1);
	return c;
}

/* The connection is established (accepted or connected): on_open. */
static void conn_open(struct coil_conn *c)
{
	const struct coil_service *svc = c->lst->svc;

	/* (socket options are the backend's: set at listen or connect) */
	if ((svc->tls && coil__tls_open(c) < 0) ||
	    (svc->ops->on_open && svc->ops->on_open(c) < 0)) {
		/* Refused by the protocol: reset, and no on_close for it. It
		 * may have written or closed already, so it goes through the
		 * ordinary close path rather than being freed here. */
		c->flags |= CONN_REFUSED;
		coil_conn_abort(c);
		return;
	}
	if (svc->idle_timeout_ms)
		coil_timer_start(&c->idle, svc->idle_timeout_ms);
	coil__conn_mark(c);   /* arms the receive at the next flush */
}

/* ---- connect ---- */

int coil_loop_connect(struct coil_loop *loop, int service,
		      struct coil_conn **out)
{
	struct sockaddr_storage ss;
	struct coil__listener *lst;
	struct coil_conn *c;
	socklen_t len;
	int ret;

	if (service < 0 || (unsigned)service >= loop->nlst)
		return -EINVAL;
	if (loop->stopping)
		return -ESHUTDOWN;
	lst = &loop->lst[service];
	ret = coil__addr_parse(lst->svc->addr, lst->svc->port, &ss, &len);
	if (ret)
		return ret;
	c = conn_new(lst, -1);
	if (!c)
		return -EMFILE;
	c->flags |= CONN_CONNECTING;
	ret = loop->be->connect(c, (const struct sockaddr *)&ss, len);
	if (ret < 0) {
		/* Never opened: gone without a callback. */
		c->flags = CONN_REFUSED | CONN_CLOSING | CONN_ABORT;
		conn_free(c);
		return ret;
	}
	*out = c;
	return 0;
}

void coil__conn_connected(struct coil_conn *c, int res)
{
	c->flags &= ~(CONN_CONNECTING | CONN_CONNECT_CANCEL);
	if (c->flags & CONN_CLOSING) {
		/* closed or aborted while connecting: on_close(LOCAL) */
		coil_conn_abort(c);
		coil__conn_mark(c);
		return;
	}
	if (res < 0) {
		c->close_reason = res;
		coil_conn_abort(c);
		return;
	}
	conn_open(c);
}

/*
 * Lingering close (nginx's lingering_close). Closing a socket that still
 * has unread input, or gets more, makes the kernel answer with a reset,
 * and a reset makes the client's kernel drop what it has not read yet:
 * the error response just written (a 400 in the middle of a pipeline, a
 * 413 while the body is still coming) is lost. So, once a gracefully
 * closed connection has sent everything, it half-closes (FIN), reads and
 * discards input until the peer's FIN, LINGER_MS or COIL__LINGER_MAX bytes,
 * then closes. Skipped when the peer already sent its FIN, has been quiet
 * for LINGER_QUIET_MS, or the loop is stopping.
 */
#define LINGER_MS 2000
#define LINGER_QUIET_MS 1000

static bool linger_start(struct coil_conn *c)
{
	struct coil_loop *loop = c->loop;

	if (c->flags & (CONN_LINGER | CONN_EOF | CONN_ABORT | CONN_SENDING) ||
	    c->queued || loop->stopping || !loop->be->shut_wr ||
	    loop->now_ms - c->last_rx_ms >= LINGER_QUIET_MS)
		return false;
	c->flags |= CONN_LINGER;
	c->linger_rx = 0;
	loop->be->shut_wr(c);
	coil_timer_start(&c->idle, LINGER_MS);
	return true;
}

/* ---- the per-turn flush ---- */

static void conn_flush(struct coil_conn *c)
{
	struct coil_loop *loop = c->loop;
	uint32_t f;

	if (c->flags & CONN_CONNECTING) {
		/* Nothing moves before the connect reports; a close ends it. */
		if ((c->flags & CONN_CLOSING) &&
		    !(c->flags & CONN_CONNECT_CANCEL)) {
			c->flags |= CONN_CONNECT_CANCEL;
			loop->be->connect_cancel(c);
		}
		return;
	}

	if (c->flags & CONN_CARRY_DUE) {
		c->flags &= ~CONN_CARRY_DUE;
		coil__conn_deliver_pending(c);
		/* The peer is gone and the protocol had its last look. */
		if ((c->flags & CONN_EOF) && !coil__conn_reading_stopped(c))
			coil_conn_close(c);
		/* on_data may have closed it: it is on the flush list again
		 * and will be handled there, once. */
		if (c->flags & CONN_DIRTY)
			return;
	}
	f = c->flags;
	if (f & CONN_ABORT) {
		if ((f & CONN_RECV_ARMED) && !(f & CONN_CANCELING)) {
			c->flags |= CONN_CANCELING;
			loop->be->recv_cancel(c);
		}
		if ((f & CONN_SENDING) && !(f & CONN_SEND_CANCEL)) {
			c->flags |= CONN_SEND_CANCEL;
			loop->be->send_cancel(c);
		}
		if (!(c->flags & (CONN_RECV_ARMED | CONN_SENDING)))
			conn_free(c);
		return;
	}
	if (c->tls) {
		coil__tls_flush(c);
		if (c->flags & CONN_ABORT)
			return;   /* it is on the flush list again */
	}
	if (c->queued && !(f & CONN_SENDING))
		coil__send_start(c);
	if (f & CONN_CLOSING)
		linger_start(c);
	if (coil__conn_reading_stopped(c)) {
		if ((c->flags & CONN_RECV_ARMED) && !(c->flags & CONN_CANCELING)) {
			c->flags |= CONN_CANCELING;
			loop->be->recv_cancel(c);
		}
	} else if (!(c->flags & (CONN_RECV_ARMED | CONN_STARVED | CONN_EOF))) {
		c->flags |= CONN_RECV_ARMED;
		c->arm_rx = 0;
		loop->be->recv_arm(c);
	}
	if ((c->flags & CONN_CLOSING) && !c->queued &&
	    !(c->flags & (CONN_RECV_ARMED | CONN_SENDING)))
		conn_free(c);
}

void coil__loop_flush(struct coil_loop *loop)
{
	coil__conn_starved_wake(loop, 0, 0);
	while (loop->dirty) {
		struct coil_conn *c = loop->dirty;

		loop->dirty = c->next_dirty;
		c->flags &= ~CONN_DIRTY;
		conn_flush(c);
	}
	coil__conn_starved_wake(loop, 1, 1);
}

void coil__loop_kill_all(struct coil_loop *loop)
{
	/* Only for teardown, after the backend stopped: nothing is in flight
	 * any more, whatever the flags say. */
	while (loop->all.next != &loop->all) {
		struct coil_conn *c = coil__conn_of_link(loop->all.next);

		c->flags &= ~(CONN_RECV_ARMED | CONN_SENDING | CONN_DIRTY |
			      CONN_CONNECTING);
		c->flags |= CONN_CLOSING | CONN_ABORT;
		conn_free(c);
	}
	loop->dirty = NULL;
	memset(loop->starved, 0, sizeof(loop->starved));
}

/* ---- addresses ---- */

static int conn_addr(const struct coil_conn *c, bool peer,
		     struct sockaddr_storage *ss, socklen_t *len)
{
	socklen_t n = sizeof(*ss);

	if (c->flags & CONN_FREED || c->fd < 0)
		return -EBADF;
	if (c->flags & CONN_CONNECTING)
		return -ENOTCONN;
	if (c->loop->be->addr)
		return c->loop->be->addr(c, peer, ss, len);
	memset(ss, 0, sizeof(*ss));
	if ((peer ? getpeername(c->fd, (struct sockaddr *)ss, &n)
		  : getsockname(c->fd, (struct sockaddr *)ss, &n)) < 0)
		return -errno;
	*len = n;
	return 0;
}

int coil_conn_peer(const struct coil_conn *c, struct sockaddr_storage *ss,
		   socklen_t *len)
{
	return conn_addr(c, true, ss, len);
}

int coil_conn_local(const struct coil_conn *c, struct sockaddr_storage *ss,
		    socklen_t *len)
{
	return conn_addr(c, false, ss, len);
}
