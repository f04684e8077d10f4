/* SPDX-License-Identifier: MIT */
/*
 * Outbound connection pools (coil/pool.h). Each connection the pool owns
 * is on one of two lists: idle (newest first: the next get takes the
 * warmest one, the idle timer closes from the oldest end) or used
 * (connecting or handed out). Waiters queue in arrival order; whatever
 * becomes available (a connect completing, a connection put back) goes to
 * the first one.
 */
#include <coil/conn.h>
#include <coil/loop.h>
#include <coil/pool.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { PC_NONE, PC_CONNECTING, PC_IDLE, PC_BUSY, PC_GONE };

struct coil_pool {
	struct coil_loop *loop;
	struct coil_pool_opts o;
	struct coil_pool_conn idle;     /* sentinel */
	struct coil_pool_conn used;     /* sentinel: connecting and busy */
	struct coil_pool_wait waiters;  /* sentinel */
	struct coil_timer idle_timer;
	unsigned total;                 /* open or connecting, ours */
	struct coil_pool_stats st;
};

static void pc_unlink(struct coil_pool_conn *pc)
{
	pc->prev->next = pc->next;
	pc->next->prev = pc->prev;
	pc->prev = pc->next = NULL;
}

/* Insert at the front (after the sentinel). */
static void pc_push(struct coil_pool_conn *head, struct coil_pool_conn *pc)
{
	pc->prev = head;
	pc->next = head->next;
	head->next->prev = pc;
	head->next = pc;
}

static void w_unlink(struct coil_pool_wait *w)
{
	w->prev->next = w->next;
	w->next->prev = w->prev;
	w->prev = w->next = NULL;
	coil_timer_stop(&w->timer);
	w->pool->st.waiting--;
}

static struct coil_pool_wait *first_waiter(struct coil_pool *p)
{
	return p->waiters.next != &p->waiters ? p->waiters.next : NULL;
}

static void idle_arm(struct coil_pool *p)
{
	struct coil_pool_conn *oldest = p->idle.prev;
	uint64_t now = coil_loop_now_ms(p->loop), due;

	if (oldest == &p->idle) {
		coil_timer_stop(&p->idle_timer);
		return;
	}
	due = oldest->idle_since + p->o.idle_timeout_ms;
	coil_timer_start(&p->idle_timer, due > now ? due - now : 0);
}

/* Hand `pc` out: to `w`'s callback, or (w NULL) to the caller of get. */
static void hand(struct coil_pool *p, struct coil_pool_conn *pc,
		 struct coil_pool_wait *w)
{
	pc->state = PC_BUSY;
	pc_push(&p->used, pc);
	if (pc->uses++)
		p->st.reuses++;
	p->st.gets++;
	p->st.busy++;
	if (w) {
		w_unlink(w);
		w->cb(w, pc, 0);
	}
}

/* Let go of a connection (on no list) that is going away: it stays
 * counted, on the used list, until its close reaches coil_pool_closed. */
static void drop(struct coil_pool *p, struct coil_pool_conn *pc)
{
	pc_push(&p->used, pc);
	pc->state = PC_GONE;
	coil_conn_close(pc->conn);
}

static int connect_one(struct coil_pool *p)
{
	struct coil_conn *c;
	struct coil_pool_conn *pc;
	int ret = coil_loop_connect(p->loop, p->o.service, &c);

	p->st.connects++;
	if (ret) {
		p->st.connect_errors++;
		return ret;
	}
	pc = (struct coil_pool_conn *)(void *)((char *)coil_conn_state(c) +
					       p->o.link_offset);
	memset(pc, 0, sizeof(*pc));
	pc->conn = c;
	pc->pool = p;
	pc->state = PC_CONNECTING;
	pc_push(&p->used, pc);
	p->total++;
	p->st.connecting++;
	return 0;
}

/* Start connects for waiters that no connect in progress will serve. A
 * connect that fails at once fails the waiter it was for. */
static void refill(struct coil_pool *p)
{
	while (p->st.waiting > p->st.connecting && p->total < p->o.max_size) {
		int ret = connect_one(p);
		struct coil_pool_wait *w;

		if (!ret)
			continue;
		w = first_waiter(p);
		w_unlink(w);
		w->cb(w, NULL, ret);
	}
}

static void idle_timer_cb(struct coil_timer *t)
{
	struct coil_pool *p = t->data;
	uint64_t now = coil_loop_now_ms(p->loop);

	while (p->idle.prev != &p->idle &&
	       p->idle.prev->idle_since + p->o.idle_timeout_ms <= now) {
		struct coil_pool_conn *pc = p->idle.prev;

		pc_unlink(pc);
		p->st.idle--;
		p->st.idle_closed++;
		drop(p, pc);
	}
	idle_arm(p);
}

static void wait_timer_cb(struct coil_timer *t)
{
	struct coil_pool_wait *w = t->data;
	struct coil_pool *p = w->pool;

	w_unlink(w);
	p->st.wait_timeouts++;
	w->cb(w, NULL, -ETIMEDOUT);
}

int coil_pool_create(struct coil_loop *loop, const struct coil_pool_opts *opts,
		     struct coil_pool **out)
{
	struct coil_pool *p;

	if (!loop || !opts || opts->sz < sizeof(size_t) || !out)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	memcpy(&p->o, opts, opts->sz < sizeof(p->o) ? opts->sz : sizeof(p->o));
	p->o.sz = sizeof(p->o);
	if (!p->o.max_size)
		p->o.max_size = 16;
	if (!p->o.idle_timeout_ms)
		p->o.idle_timeout_ms = 30000;
	if (!p->o.wait_timeout_ms)
		p->o.wait_timeout_ms = 10000;
	if (!p->o.max_waiters)
		p->o.max_waiters = 1024;
	p->loop = loop;
	p->idle.prev = p->idle.next = &p->idle;
	p->used.prev = p->used.next = &p->used;
	p->waiters.prev = p->waiters.next = &p->waiters;
	coil_timer_init(&p->idle_timer, loop, idle_timer_cb, p);
	*out = p;
	return 0;
}

void coil_pool_destroy(struct coil_pool *p)
{
	struct coil_pool_wait *w;

	if (!p)
		return;
	coil_timer_stop(&p->idle_timer);
	while ((w = first_waiter(p))) {
		w_unlink(w);
		w->cb(w, NULL, -ECANCELED);
	}
	while (p->idle.next != &p->idle) {
		struct coil_pool_conn *pc = p->idle.next;

		pc_unlink(pc);
		pc->pool = NULL;
		coil_conn_close(pc->conn);
	}
	while (p->used.next != &p->used) {
		struct coil_pool_conn *pc = p->used.next;

		pc_unlink(pc);
		pc->pool = NULL;
		if (pc->state == PC_CONNECTING)
			coil_conn_close(pc->conn);
	}
	free(p);
}

int coil_pool_get(struct coil_pool *p, struct coil_pool_wait *w,
		  coil_pool_cb cb, struct coil_pool_conn **out)
{
	while (p->idle.next != &p->idle) {
		struct coil_pool_conn *pc = p->idle.next;

		pc_unlink(pc);
		p->st.idle--;
		if (coil_conn_closing(pc->conn)) {
			/* the peer closed it: on_close is on its way */
			p->st.evicted++;
			drop(p, pc);
			continue;
		}
		/* The idle timer stays as it is: the oldest connection left
		 * is due no sooner than the one it was armed for, and a
		 * timer that finds nothing due (or nothing idle) re-arms or
		 * stops itself (idle_timer_cb), so a busy pool's get/put
		 * cycle does not touch the timer wheel. It is stopped when
		 * a close leaves nothing idle (coil_pool_closed), so it is
		 * not left on the wheel of a loop whose connections are all
		 * gone (the engine may be freed before the pool). */
		hand(p, pc, NULL);
		*out = pc;
		return 1;
	}
	if (p->st.waiting >= p->o.max_waiters)
		return -EAGAIN;
	if (p->st.waiting >= p->st.connecting && p->total < p->o.max_size) {
		int ret = connect_one(p);

		if (ret)
			return ret;
	}
	w->pool = p;
	w->cb = cb;
	w->next = &p->waiters;
	w->prev = p->waiters.prev;
	p->waiters.prev->next = w;
	p->waiters.prev = w;
	p->st.waiting++;
	coil_timer_init(&w->timer, p->loop, wait_timer_cb, w);
	coil_timer_start(&w->timer, p->o.wait_timeout_ms);
	return 0;
}

void coil_pool_cancel(struct coil_pool_wait *w)
{
	if (w->prev)
		w_unlink(w);
}

void coil_pool_put(struct coil_pool_conn *pc, bool reusable)
{
	struct coil_pool *p = pc->pool;
	struct coil_pool_wait *w;

	if (!p || pc->state != PC_BUSY) {
		coil_conn_close(pc->conn);
		return;
	}
	pc_unlink(pc);
	p->st.busy--;
	if (!reusable || coil_conn_closing(pc->conn)) {
		drop(p, pc);
		return;
	}
	w = first_waiter(p);
	if (w) {
		hand(p, pc, w);
		return;
	}
	pc->state = PC_IDLE;
	pc->idle_since = coil_loop_now_ms(p->loop);
	pc_push(&p->idle, pc);
	p->st.idle++;
	if (!coil_timer_active(&p->idle_timer))
		idle_arm(p);
}

void coil_pool_opened(struct coil_pool_conn *pc)
{
	struct coil_pool *p = pc->pool;
	struct coil_pool_wait *w;

	if (!p || pc->state != PC_CONNECTING)
		return;
	p->st.connecting--;
	pc_unlink(pc);
	w = first_waiter(p);
	if (w) {
		hand(p, pc, w);
		return;
	}
	/* its waiter gave up meanwhile: keep it for the next one */
	pc->state = PC_BUSY;
	p->st.busy++;
	pc_push(&p->used, pc);
	coil_pool_put(pc, true);
}

void coil_pool_closed(struct coil_pool_conn *pc, int reason)
{
	struct coil_pool *p = pc->pool;
	struct coil_pool_wait *w = NULL;

	if (!p)
		return;
	pc_unlink(pc);
	switch (pc->state) {
	case PC_CONNECTING:
		/* the connect failed: the first waiter gets the error (the
		 * others wait on, for connects of their own, see refill) */
		p->st.connecting--;
		p->st.connect_errors++;
		w = first_waiter(p);
		if (w)
			w_unlink(w);
		break;
	case PC_IDLE:
		p->st.idle--;
		p->st.evicted++;
		idle_arm(p);
		break;
	case PC_BUSY:
		p->st.busy--;
		break;
	default:
		break;
	}
	if (p->idle.next == &p->idle)
		coil_timer_stop(&p->idle_timer);   /* see coil_pool_get */
	pc->pool = NULL;
	pc->state = PC_NONE;
	p->total--;
	if (w)
		w->cb(w, NULL, reason < 0 ? reason : -ECONNRESET);
	refill(p);
}

void coil_pool_stats(const struct coil_pool *p, struct coil_pool_stats *st)
{
	*st = p->st;
}
