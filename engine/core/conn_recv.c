/* SPDX-License-Identifier: MIT */
/*
 * Connections, the receive path: what the backends received goes to the
 * protocol's on_data, zero copy when nothing is carried; what it does not
 * consume is carried (the carry buffer) and bounded by max_input; what
 * arrives while reading is stopped (paused, a multishot receive still
 * running) is held in order, in its receive buffers or copied into send
 * chunks, and delivered on resume; receive completions (EOF, errors,
 * -ENOBUFS) and the receives starved of buffers, re-armed when buffers come
 * back. Accept, connect, the per-turn flush and the close state machine are
 * in conn.c.
 */
#include "internal.h"
#include "../backend/backend.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_INPUT (1u << 20)

static size_t max_input(const struct coil_conn *c)
{
	size_t m = c->lst->svc->max_input;
	return m ? m : DEFAULT_MAX_INPUT;
}

/* ---- receives waiting for buffers ---- */

void coil__conn_starved_unlink(struct coil_conn *c)
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

/*
 * Buffers came back: re-arm starved receives, oldest first, light ones
 * before heavy ones, after everything else this turn submits; the kernel
 * hands out ring buffers in submission order. Only as many as the free
 * buffers can serve (a heavy stream takes several at once): the rest keep
 * their place instead of failing again with -ENOBUFS, one wasted
 * submission and completion each.
 */
void coil__conn_starved_wake(struct coil_loop *loop, int from, int to)
{
	uint32_t budget = loop->pool.nfree;

	for (int k = from; k <= to; k++) {
		while (loop->starved[k].head && budget) {
			struct coil_conn *c = loop->starved[k].head;

			coil__conn_starved_unlink(c);
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
void coil__conn_deliver_pending(struct coil_conn *c)
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
		coil__conn_deliver_pending(c);
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
	    (c->linger_rx += (uint32_t)len) > COIL__LINGER_MAX) {
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
