/* SPDX-License-Identifier: MIT */
/*
 * The loop: one turn is  clock -> timers -> flush -> backend wait (submit,
 * maybe sleep, reap a batch, dispatch). Memory for the loop is set aside
 * here, once.
 */
#include "internal.h"
#include "xthread.h"
#include "../backend/backend.h"
#include "../steer/steering.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

unsigned coil_loop_id(const struct coil_loop *loop)
{
	return loop->id;
}

uint64_t coil_loop_now_ms(const struct coil_loop *loop)
{
	return loop->now_ms;
}

uint64_t coil_loop_now_ns(const struct coil_loop *loop)
{
	return loop->now_ns;
}

void coil__loop_clock(struct coil_loop *loop)
{
	struct timespec ts;

	if (loop->fake_clock)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	loop->now_ns = (uint64_t)ts.tv_sec * 1000000000ull +
		       (uint64_t)ts.tv_nsec;
	loop->now_ms = loop->now_ns / 1000000ull;
}

int coil__loop_init(struct coil_loop *loop, const struct coil__loop_opts *o,
		    const struct coil__backend_ops *be)
{
	size_t conn_size = sizeof(struct coil_conn) + o->state_size;
	uint32_t nsegs, nchunks;
	int ret;

	memset(loop, 0, sizeof(*loop));
	loop->id = o->id;
	loop->cpu = o->cpu;
	loop->be = be;
	loop->poll = o->poll;
	loop->poll_us = o->poll_us;
	loop->coalesce_us = o->coalesce_us;
	loop->drain_ms = o->drain_ms;
	loop->cur_bid = -1;
	loop->all.next = loop->all.prev = &loop->all;
	loop->conn_size = (uint32_t)conn_size;
	coil__loop_clock(loop);
	coil__wheel_init(&loop->wheel, loop->now_ms);

	ret = coil__bufpool_init(&loop->pool, o->bufs, o->buf_size);
	if (ret)
		goto fail;
	/* Connections at 16 B (struct coil_conn's state alignment), not a
	 * cache line: most of them are idle keep-alive ones at rest, and 32 B
	 * of rounding is 6% of what one costs (issue 18). */
	ret = coil__slab_init_align(&loop->conns, conn_size, o->max_conns,
				    _Alignof(struct coil_conn));
	if (ret)
		goto fail_pool;
	/* Send side: references are cheap; copied output gets one chunk per
	 * two receive buffers' worth, which covers the common case of
	 * replies no larger than requests. Beyond it the heap takes over. */
	nsegs = o->bufs * 4 > 4096 ? o->bufs * 4 : 4096;
	nchunks = (uint32_t)(((size_t)o->bufs * o->buf_size / 2) /
			     COIL__CHUNK_SIZE);
	if (nchunks < 64)
		nchunks = 64;
	ret = coil__slab_init(&loop->segs, sizeof(struct coil__seg), nsegs);
	if (ret)
		goto fail_conns;
	ret = coil__slab_init(&loop->chunks, COIL__CHUNK_SIZE, nchunks);
	if (ret)
		goto fail_segs;
	/* One per connection at most (one send in flight each): reserved,
	 * resident only as far as sends at once have used it. */
	ret = coil__slab_init(&loop->sendvs, sizeof(struct coil__sendv),
			      o->max_conns);
	if (ret)
		goto fail_chunks;
	return 0;
fail_chunks:
	coil__slab_fini(&loop->chunks);
fail_segs:
	coil__slab_fini(&loop->segs);
fail_conns:
	coil__slab_fini(&loop->conns);
fail_pool:
	coil__bufpool_fini(&loop->pool);
fail:
	return ret;
}

void coil__loop_fini(struct coil_loop *loop)
{
	coil__loop_kill_all(loop);
	for (unsigned i = 0; i < loop->nudp; i++)
		coil__udp_fini(&loop->udp[i]);
	loop->nudp = 0;
	coil__slab_fini(&loop->sendvs);
	coil__slab_fini(&loop->chunks);
	coil__slab_fini(&loop->segs);
	coil__slab_fini(&loop->conns);
	coil__bufpool_fini(&loop->pool);
}

unsigned coil__loop_timer_budget(struct coil_loop *loop)
{
	uint32_t used, room;

	if (loop->fake_clock)
		return COIL__TIMER_BUDGET;
	if (loop->timer_ms != loop->now_ms) {
		loop->timer_ms = loop->now_ms;
		loop->timer_mark = loop->wheel.fired;
	}
	used = loop->wheel.fired - loop->timer_mark;
	room = used < COIL__TIMER_PER_MS ? COIL__TIMER_PER_MS - used : 0;
	return room < COIL__TIMER_BUDGET ? room : COIL__TIMER_BUDGET;
}

void coil__loop_turn(struct coil_loop *loop, bool block)
{
	int64_t timeout;
	bool more;

	coil__stat_add(loop->turns, 1);
	coil__loop_clock(loop);
	if (loop->inbox)
		coil__inbox_run(loop->inbox);
	more = coil__wheel_run(&loop->wheel, loop->now_ms, coil__loop_timer_budget(loop));
	if (loop->turn_cb)
		loop->turn_cb(loop, loop->turn_arg);
	coil__loop_flush(loop);
	if (!block || loop->dirty || (more && coil__loop_timer_budget(loop))) {
		timeout = 0;
	} else {
		timeout = coil__wheel_timeout(&loop->wheel);
		/* Due timers left past this ms's pace: back in the next ms,
		 * or at the first I/O. */
		if (more && (timeout < 0 || timeout > 1))
			timeout = 1;
	}
	loop->be->wait(loop, timeout);
}

static void drain_check(struct coil_timer *t)
{
	(void)t;
}

/* eBPF steering counts a connection against a loop when it picks the loop;
 * the loop settles what it was never going to get. */
static void steer_tick(struct coil_timer *t)
{
	struct coil_loop *loop = t->data;

	for (unsigned i = 0; i < loop->nlst; i++)
		coil__steer_reconcile(loop->lst[i].steer, loop->lst[i].fd,
				      &loop->lst[i].steer_mark);
	if (!loop->stopping)
		coil_timer_start(t, COIL__STEER_RECONCILE_MS);
}

void coil__loop_begin_stop(struct coil_loop *loop)
{
	struct coil__conn_link *l, *next;
	struct coil_conn *c;

	if (loop->stopping)
		return;
	loop->stopping = true;
	loop->drain_deadline_ms = loop->now_ms + loop->drain_ms;
	/* Steer nothing more here first. */
	for (unsigned i = 0; i < loop->nlst; i++)
		coil__steer_draining(loop->lst[i].steer);
	for (unsigned i = 0; i < loop->nudp; i++)
		if (loop->be->udp_stop)
			loop->be->udp_stop(&loop->udp[i]);
	for (l = loop->all.next; l != &loop->all; l = next) {
		c = coil__conn_of_link(l);
		next = l->next;
		if (!(c->flags & CONN_CLOSING))
			coil__conn_shutdown(c);
	}
	/* The listeners take no new handshake from here, but stay open
	 * and accepting until the drain ends: closing one resets what its
	 * queue holds, and a handshake that began a moment before this
	 * lands there after any last accept (listeners_closed). Those
	 * connections hear of the shutdown as they open
	 * (coil__conn_accepted). */
	for (unsigned i = 0; i < loop->nlst; i++)
		if (loop->be->listen_quiesce)
			loop->be->listen_quiesce(&loop->lst[i]);
}

/* A stopping loop's listeners: true once they are closed. They close
 * while connections still drain (a listener that only drops SYNs would
 * delay clients a reuseport peer could take), once no handshake is in
 * progress on them, seen twice 1 ms apart: a request socket becomes the
 * child that replaces it in the hash in SYN_RECV state, and that child is
 * queued for accept before it leaves SYN_RECV, so with none in SYN_RECV
 * and no new SYN taken every connection is in the queue; the second look
 * covers a SYN that passed just before the filter was attached. At most
 * COIL__LISTEN_SETTLE_MAX_MS after the stop began; if the backend cannot
 * tell, COIL__LISTEN_LINGER_MS after; at once when forced. What is queued
 * is adopted as the backend closes them. */
static bool listeners_closed(struct coil_loop *loop, bool force,
			     struct coil_timer *settle)
{
	if (!loop->lst_stopped) {
		int pending = 0;

		/* Looked at once per ms at most (a sock_diag dump each). */
		if (!force && coil_timer_active(settle))
			return false;

		for (unsigned i = 0; i < loop->nlst && !force; i++) {
			int n = loop->be->listen_pending ?
				loop->be->listen_pending(&loop->lst[i]) : 0;

			if (n)
				pending = pending > 0 ? pending : n;
		}
		/* A handshake that never finishes (its client gone, a SYN
		 * flood) holds the close back a while, not the whole drain. */
		if (pending > 0 && loop->now_ms + loop->drain_ms >=
				   loop->drain_deadline_ms +
				   COIL__LISTEN_SETTLE_MAX_MS)
			pending = 0;
		if (force || pending == 0) {
			if (!loop->lst_quiet_ms)
				loop->lst_quiet_ms = loop->now_ms + 1;
		} else if (pending < 0) {
			if (!loop->lst_quiet_ms)
				loop->lst_quiet_ms =
					loop->now_ms + COIL__LISTEN_LINGER_MS;
		} else {
			loop->lst_quiet_ms = 0;
		}
		if (!force && (!loop->lst_quiet_ms ||
			       loop->now_ms < loop->lst_quiet_ms)) {
			coil_timer_start(settle, 1);
			return false;
		}
		loop->lst_stopped = true;
		for (unsigned i = 0; i < loop->nlst; i++)
			loop->be->listen_stop(&loop->lst[i]);
	}
	/* A completion backend is done with the fd when its accept ends. */
	for (unsigned i = 0; i < loop->nlst; i++)
		if (loop->lst[i].armed)
			return false;
	return true;
}

int coil__loop_run(struct coil_loop *loop)
{
	struct coil_timer wake, steer, settle;

	/* While draining, a timer makes sure the loop wakes for the deadline
	 * even if every connection is silent. */
	coil_timer_init(&wake, loop, drain_check, NULL);
	coil_timer_init(&steer, loop, steer_tick, loop);
	coil_timer_init(&settle, loop, drain_check, NULL);
	for (unsigned i = 0; i < loop->nlst; i++)
		if (loop->lst[i].steer)
			coil_timer_start(&steer, COIL__STEER_RECONCILE_MS);
	for (;;) {
		if (atomic_load_explicit(&loop->stop_req, memory_order_relaxed) &&
		    !loop->stopping) {
			coil__loop_clock(loop);
			coil__loop_begin_stop(loop);
			coil_timer_start(&wake, loop->drain_ms + 1);
		}
		if (loop->stopping) {
			bool force = atomic_load_explicit(&loop->abort_req,
							  memory_order_relaxed) ||
				     loop->now_ms >= loop->drain_deadline_ms;

			if (force) {
				struct coil__conn_link *l;

				for (l = loop->all.next; l != &loop->all;
				     l = l->next)
					coil_conn_abort(coil__conn_of_link(l));
				if (!loop->dirty && loop->nconns)
					coil_timer_start(&wake, 10);
				if (loop->inbox)
					coil__inbox_cancel_all(loop->inbox);
			}
			/* Jobs out on the pool come back here first. */
			if (listeners_closed(loop, force, &settle) &&
			    !loop->nconns &&
			    !(loop->inbox && coil__inbox_busy(loop->inbox)))
				break;
		}
		coil__loop_turn(loop, true);
	}
	coil_timer_stop(&wake);
	coil_timer_stop(&steer);
	coil_timer_stop(&settle);
	if (loop->inbox)
		coil__inbox_close(loop->inbox);
	if (getenv("COIL_STATS"))
		coil__log("loop %u: %llu turns, %llu receives (%llu B), %llu "
			  "sends (%llu B), %lu accepted",
			  loop->id, (unsigned long long)loop->turns,
			  (unsigned long long)loop->recvs,
			  (unsigned long long)loop->rx_bytes,
			  (unsigned long long)loop->sends,
			  (unsigned long long)loop->tx_bytes,
			  atomic_load(&loop->accepted));
	if (getenv("COIL_STATS"))
		coil__log("loop %u: send memory from the heap (slabs used up): "
			  "%u chunks, %u segments",
			  loop->id, loop->chunk_heap, loop->seg_heap);
	if (getenv("COIL_STATS")) {
		coil__stats_log(loop);
		coil__udp_log_stats(loop);
		if (loop->be->log_stats)
			loop->be->log_stats(loop);
	}
	return 0;
}
