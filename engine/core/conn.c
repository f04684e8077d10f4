/* SPDX-License-Identifier: MIT */
/*
 * Connections: accept, receive dispatch with the carry buffer and held
 * input, pause/resume, idle timeouts, the per-turn flush and the close
 * state machine. The send queue is in sendq.c.
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

#define DEFAULT_MAX_INPUT (1u << 20)

static size_t max_input(const struct coil_conn *c)
{
	size_t m = c->lst->svc->max_input;
	return m ? m : DEFAULT_MAX_INPUT;
}

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

static void starved_unlink(struct coil_conn *c)
{
	struct coil__starved_q *q =
		&c->loop->starved[(c->flags & CONN_LIGHT) ? 0 : 1];

	if (c->starved_prev)
		c->starved_prev->starved_next = c->starved_next;
	else
		q->head = c->starved_next;
	if (c->starved_next)
		c->starved_next->starved_prev = c->starved_prev;
	else
		q->tail = c->starved_prev;
	c->starved_next = c->starved_prev = NULL;
	c->flags &= ~(CONN_STARVED | CONN_LIGHT);
}

/*
 * A receive that found the buffer ring empty waits here until buffers
 * return. Light connections (starved before they received a buffer's
 * worth on this receive: a keep-alive client's next request) queue apart
 * from heavy ones (starved in the middle of a stream) and are re-armed
 * first, so a flood of streams cannot keep a small request waiting for
 * buffers turn after turn.
 */
static void starved_push(struct coil_conn *c)
{
	struct coil_loop *loop = c->loop;
	bool light = c->arm_rx < loop->pool.size;
	struct coil__starved_q *q = &loop->starved[light ? 0 : 1];

	c->flags |= CONN_STARVED | (light ? CONN_LIGHT : 0);
	coil__stat_add(loop->st.starved, 1);
	c->starved_next = NULL;
	c->starved_prev = q->tail;
	if (q->tail)
		q->tail->starved_next = c;
	else
		q->head = c;
	q->tail = c;
}

static void conn_free(struct coil_conn *c)
{
	struct coil_loop *loop = c->loop;
	const struct coil_proto_ops *ops = c->lst->svc->ops;

	assert(!(c->flags & (CONN_RECV_ARMED | CONN_SENDING | CONN_DIRTY |
			     CONN_CONNECTING)));
	if (c->flags & CONN_STARVED)
		starved_unlink(c);
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

/* ---- receive ---- */

#define HOLD_BUFS 8                 /* receive buffers one connection may pin */
/*
 * Bytes allowed beyond max_input: what a receive can still bring in before
 * its cancel lands. One wait can run dozens of multishot task-work items of
 * up to 32 buffers each, so the bound is the whole receive pool (a 4 MiB
 * allowance broke the single fast sender of echo_integrity now and then:
 * 5,246,976 bytes held), and never below 4 MiB.
 */
static size_t hold_spill(const struct coil_conn *c)
{
	size_t pool = (size_t)c->loop->pool.count * c->loop->pool.size;

	return pool > (4u << 20) ? pool : (4u << 20);
}

static void carry_overflow(struct coil_conn *c, size_t n)
{
	coil__log("loop %u: fd %d: %zu unconsumed input bytes exceed "
		  "max_input, closing",
		  c->loop->id, c->fd, n);
	c->close_reason = -EMSGSIZE;
	coil_conn_abort(c);
}

static bool carry_add(struct coil_conn *c, const uint8_t *data, size_t len)
{
	size_t need = (size_t)c->carry_len + len;

	/* The protocol may consume most of what is appended here; max_input
	 * is checked on what it leaves (carry_deliver). This only bounds the
	 * memory of one append. */
	if (need > max_input(c) + len && need > max_input(c) + hold_spill(c)) {
		carry_overflow(c, need);
		return false;
	}
	if (need > c->carry_cap) {
		size_t cap = c->carry_cap ? c->carry_cap : 512;
		uint8_t *p;

		while (cap < need)
			cap *= 2;
		p = realloc(c->carry, cap);
		if (!p) {
			c->close_reason = -ENOMEM;
			coil_conn_abort(c);
			return false;
		}
		c->carry = p;
		c->carry_cap = (uint32_t)cap;
	}
	memcpy(c->carry + c->carry_len, data, len);
	c->carry_len = (uint32_t)need;
	return true;
}


/*
 * Lingering close (nginx's lingering_close). Closing a socket that still
 * has unread input, or gets more, makes the kernel answer with a reset,
 * and a reset makes the client's kernel drop what it has not read yet:
 * the error response just written (a 400 in the middle of a pipeline, a
 * 413 while the body is still coming) is lost. So, once a gracefully
 * closed connection has sent everything, it half-closes (FIN), reads and
 * discards input until the peer's FIN, LINGER_MS or LINGER_MAX bytes,
 * then closes. Skipped when the peer already sent its FIN, has been quiet
 * for LINGER_QUIET_MS, or the loop is stopping.
 */
#define LINGER_MS 2000
#define LINGER_MAX (1u << 20)
#define LINGER_QUIET_MS 1000

void coil__sock_shut_wr(struct coil_conn *c)
{
	(void)shutdown(c->fd, SHUT_WR);
}

int coil__sock_error(struct coil_conn *c)
{
	int err = 0;
	socklen_t sl = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
		return 0;
	return err;
}

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

/* Hand carried input to on_data until it is consumed or reading stops. */
static void carry_deliver(struct coil_conn *c)
{
	const struct coil_proto_ops *ops = c->lst->svc->ops;

	while (c->carry_len && !coil__conn_reading_stopped(c)) {
		size_t n;

		c->flags |= CONN_IN_DATA;
		n = ops->on_data(c, c->carry, c->carry_len);
		c->flags &= ~CONN_IN_DATA;
		assert(n <= c->carry_len);
		if (n == 0)
			break;
		memmove(c->carry, c->carry + n, c->carry_len - n);
		c->carry_len -= (uint32_t)n;
	}
	if (c->carry_len > max_input(c) && !(c->flags & CONN_CLOSING)) {
		carry_overflow(c, c->carry_len);
		return;
	}
	if (!c->carry_len && c->carry_cap > 4096) {
		/* Give back a large carry once it drained. */
		free(c->carry);
		c->carry = NULL;
		c->carry_cap = 0;
	}
}

/* Hand one received slice to the protocol (zero copy when nothing is
 * carried), keeping what it does not consume. */
static void deliver(struct coil_conn *c, const uint8_t *data, size_t len,
		    int32_t bid)
{
	struct coil_loop *loop = c->loop;
	size_t n;

	if (c->carry_len) {
		if (carry_add(c, data, len))
			carry_deliver(c);
		return;
	}
	loop->cur_bid = bid;
	loop->cur_base = data;
	loop->cur_len = len;
	c->flags |= CONN_IN_DATA;
	n = c->lst->svc->ops->on_data(c, data, len);
	c->flags &= ~CONN_IN_DATA;
	loop->cur_bid = -1;
	assert(n <= len);
	if (n < len && !(c->flags & CONN_CLOSING) &&
	    carry_add(c, data + n, len - n))
		carry_deliver(c);
}

/*
 * Bytes that arrive while reading is stopped (a multishot receive goes on
 * until its cancel lands, which can be a whole batch later) are held, in
 * order, and delivered on resume. A few stay in their receive buffers (zero
 * copy); beyond that, or when the pool runs low, they are copied into send
 * chunks so that paused connections cannot pin the shared pool and starve
 * everyone else. They count against max_input plus an allowance for one
 * batch in flight, not max_input alone.
 */
static void held_append(struct coil_conn *c, struct coil__seg *h)
{
	if (c->held_tail)
		c->held_tail->next = h;
	else
		c->held_head = h;
	c->held_tail = h;
}

static void hold(struct coil_conn *c, const uint8_t *data, size_t len,
		 int32_t bid)
{
	struct coil__bufpool *pool = &c->loop->pool;
	struct coil__seg *h;

	c->held_bytes += len;
	coil__stat_add(c->loop->st.held_bytes, len);
	if (c->held_bytes + c->carry_len > max_input(c) + hold_spill(c)) {
		coil__log("loop %u: fd %d: %zu bytes arrived while paused, "
			  "closing",
			  c->loop->id, c->fd, (size_t)c->held_bytes);
		c->close_reason = -EMSGSIZE;
		coil_conn_abort(c);
		goto out;
	}
	/* Once the loop's send chunks are all out, a copy would come from
	 * the heap: keep the receive buffer instead. The pool then runs low
	 * and the receives stop on ENOBUFS until paused connections drain:
	 * back-pressure, where copying let uploads on io_uring grow the heap
	 * by up to a pool per connection (issue 18: 100+ MiB for 70 8 MiB
	 * uploads against 9 MiB on epoll). */
	if (bid >= 0 &&
	    ((c->held_bufs < HOLD_BUFS && pool->nfree > pool->count / 4) ||
	     c->loop->chunks.used >= c->loop->chunks.count) &&
	    (h = coil__seg_new(c->loop, false))) {
		h->kind = bid;   /* the receive reference moves here */
		h->data = data;
		h->len = (uint32_t)len;
		held_append(c, h);
		c->held_bufs++;
		return;
	}
	while (len) {
		uint32_t n;

		h = c->held_tail;
		if (!h || h->kind != SEG_CHUNK || !h->room) {
			h = coil__seg_new(c->loop, true);
			if (!h) {
				c->close_reason = -ENOMEM;
				coil_conn_abort(c);
				goto out;
			}
			held_append(c, h);
		}
		n = len < h->room ? (uint32_t)len : h->room;
		memcpy((uint8_t *)h->data + h->len, data, n);
		h->len += n;
		h->room -= n;
		data += n;
		len -= n;
	}
out:
	if (bid >= 0)
		coil__buf_put(pool, (uint32_t)bid);
}

/* Deliver carried and held input while the protocol keeps reading. */
static void deliver_pending(struct coil_conn *c)
{
	carry_deliver(c);
	while (c->held_head && !coil__conn_reading_stopped(c)) {
		struct coil__seg *h = c->held_head;

		c->held_head = h->next;
		if (!c->held_head)
			c->held_tail = NULL;
		c->held_bytes -= h->len;
		if (h->kind >= 0)
			c->held_bufs--;
		/* zero copy unless input is carried, then appended to it */
		deliver(c, h->data, h->len, h->kind);
		coil__seg_free(c->loop, h);
	}
}

/*
 * Before the protocol works through a full buffer of input (a pipeline, an
 * upload), at most once per turn: is the peer still there? A client that
 * sends a long pipeline and resets leaves its bytes readable after the
 * reset, and answering them all is wasted work that delays everyone else
 * on the loop (nginx finds out on its first write). One getsockopt per
 * connection with bulk input per turn; the error it reads ends the
 * connection.
 */
static bool peer_gone(struct coil_conn *c, size_t len)
{
	int err;

	if (len < c->loop->pool.size || c->probe_turn == c->loop->turns ||
	    !c->loop->be->sock_error)
		return false;
	c->probe_turn = c->loop->turns;
	err = c->loop->be->sock_error(c);
	if (!err)
		return false;
	c->flags |= CONN_DOOMED;
	if (!c->close_reason)
		c->close_reason = -err;
	coil_conn_abort(c);
	return true;
}

/* Input for the protocol: delivered, or held while it does not read.
 * Returns `bid`, or -1 when the buffer's reference moved into the held
 * input. */
static int32_t input(struct coil_conn *c, const uint8_t *data, size_t len,
		     int32_t bid)
{
	/* Held input goes first, as soon as the protocol reads again. */
	if (c->held_head && !coil__conn_reading_stopped(c))
		deliver_pending(c);
	if (coil__conn_reading_stopped(c) || c->held_head) {
		hold(c, data, len, bid);
		return -1;
	}
	deliver(c, data, len, bid);
	return bid;
}

void coil__conn_input(struct coil_conn *c, const uint8_t *data, size_t len)
{
	(void)input(c, data, len, -1);
}

void coil__conn_recv(struct coil_conn *c, const uint8_t *data, size_t len,
		     int32_t bid)
{
	struct coil_loop *loop = c->loop;

	c->last_rx_ms = loop->now_ms;
	c->arm_rx += (uint32_t)len;
	coil__stat_add(loop->recvs, 1);
	coil__stat_add(loop->rx_bytes, len);
	if ((c->flags & CONN_LINGER) &&
	    (c->linger_rx += (uint32_t)len) > LINGER_MAX) {
		c->flags |= CONN_LINGER_END;
		coil__conn_mark(c);
	}
	if (c->flags & (CONN_CLOSING | CONN_DOOMED) || peer_gone(c, len)) {
		/* Input after close() was requested is discarded, by design;
		 * so is input from a peer known to have reset (see
		 * peer_gone() and the backends' batch scan). */
	} else if (c->tls) {
		coil__tls_recv(c, data, len);
	} else {
		bid = input(c, data, len, bid);
	}
	if (bid >= 0)
		coil__buf_put(&loop->pool, (uint32_t)bid);
	if (coil__conn_reading_stopped(c) && (c->flags & CONN_RECV_ARMED))
		coil__conn_mark(c);  /* flush cancels the receive */
}

void coil__conn_recv_failed(struct coil_conn *c, int err)
{
	c->flags |= CONN_DOOMED;
	if (!c->close_reason && !(c->flags & CONN_LINGER))
		c->close_reason = err;
	coil_conn_abort(c);
}

void coil__conn_failed(struct coil_conn *c, int err)
{
	if (!c->close_reason)
		c->close_reason = err;
	coil_conn_abort(c);
}

void coil__conn_recv_done(struct coil_conn *c, int res)
{
	c->flags &= ~(CONN_RECV_ARMED | CONN_CANCELING);
	switch (res) {
	case 1:
	case -ECANCELED:
		break;
	case -ENOBUFS:
		if (!(c->flags & CONN_STARVED))
			starved_push(c);
		break;
	case 0:
		c->flags |= CONN_EOF;
		/* (a lingering close was ours: it stays COIL_CLOSE_LOCAL) */
		if (!c->close_reason && !(c->flags & CONN_LINGER))
			c->close_reason = COIL_CLOSE_PEER;
		/* Input the protocol has not seen yet (it paused) is delivered
		 * before the close (see conn_flush). */
		if (c->carry_len || c->held_head)
			c->flags |= CONN_CARRY_DUE;
		else
			coil_conn_close(c);
		break;
	default:
		if (!c->close_reason && !(c->flags & CONN_LINGER))
			c->close_reason = res;
		coil_conn_abort(c);
		break;
	}
	coil__conn_mark(c);
}

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
		deliver_pending(c);
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

/*
 * Buffers came back: re-arm starved receives, oldest first, light ones
 * before heavy ones, after everything else this turn submits; the kernel
 * hands out ring buffers in submission order. Only as many as the free
 * buffers can serve (a heavy stream takes several at once): the rest keep
 * their place instead of failing again with -ENOBUFS, one wasted
 * submission and completion each.
 */
static void starved_wake(struct coil_loop *loop, int from, int to)
{
	uint32_t budget = loop->pool.nfree;

	for (int k = from; k <= to; k++) {
		while (loop->starved[k].head && budget) {
			struct coil_conn *c = loop->starved[k].head;

			starved_unlink(c);
			if (c->flags & (CONN_RECV_ARMED | CONN_EOF |
					CONN_CLOSING | CONN_ABORT) ||
			    coil__conn_reading_stopped(c))
				continue;  /* conn_flush arms it on resume */
			/* A stream takes several buffers at once. */
			budget = k ? (budget > 4 ? budget - 4 : 0) : budget - 1;
			c->flags |= CONN_RECV_ARMED;
			c->arm_rx = 0;
			loop->be->recv_arm(c);
		}
	}
}

void coil__loop_flush(struct coil_loop *loop)
{
	starved_wake(loop, 0, 0);
	while (loop->dirty) {
		struct coil_conn *c = loop->dirty;

		loop->dirty = c->next_dirty;
		c->flags &= ~CONN_DIRTY;
		conn_flush(c);
	}
	starved_wake(loop, 1, 1);
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
