/* SPDX-License-Identifier: MIT */
/*
 * coil-load's open loop (--rate, http): request i is due at start + i /
 * rate (the loop's share of the rate); due requests go out as soon as a
 * connection has room: when a response frees one (on that one first), when
 * one opens, and on every loop turn (load_open_turn; with --poll always
 * the loop turns every few microseconds, otherwise when I/O completes and
 * on a 1 ms tick). A request that has to wait keeps its intended time, and
 * its latency is measured from there (coordinated omission corrected). A
 * rate the connections cannot carry is refused at start (load_open_check).
 */
#include "run.h"

#include <errno.h>

/* Open loop: the slot's connection may have room for a request. */
static void free_push(struct lctx *lc, unsigned slot)
{
	if (lc->in_free[slot])
		return;
	lc->in_free[slot] = 1;
	lc->free[lc->nfree++] = slot;
}

/* Open loop: a connection has room again (or just opened): what is due
 * goes out now, on it first. */
void load_open_room(struct lctx *lc, struct cs *s, uint64_t now)
{
	if (s->opened != 1 || s->invalid || s->timed_out ||
	    s->inflight >= lc->ld->depth)
		return;
	free_push(lc, s->slot);
	load_open_dispatch(lc, now);
}

/* Open loop: issue every request due by now on connections with room, the
 * most recently freed first. */
void load_open_dispatch(struct lctx *lc, uint64_t now)
{
	struct load *ld = lc->ld;
	uint64_t due = (uint64_t)((double)(now - lc->start_ns) * lc->rate / 1e9);

	while (lc->issued < due && lc->nfree) {
		unsigned slot = lc->free[lc->nfree - 1];
		struct coil_conn *c = lc->slot[slot];
		struct cs *s = c ? coil_conn_state(c) : NULL;

		if (!s || s->opened != 1 || s->inflight >= ld->depth ||
		    s->invalid || s->timed_out) {
			lc->nfree--;   /* full, closed or closing */
			lc->in_free[slot] = 0;
			continue;
		}
		load_send_reqs(c, s, 1, lc->start_ns +
			       (uint64_t)((double)lc->issued * 1e9 / lc->rate));
		lc->issued++;
	}
}

/*
 * Open loop: can `conns` connections carry `rate` requests/s? Each has at
 * most `depth` requests in flight (--pipeline) and a request takes at
 * least a round trip, which we take to be OPEN_MIN_RTT_US: the rate needs
 * rate <= conns * depth / round trip. Returns 0, or -EINVAL after saying
 * why on stderr.
 */
#define OPEN_MIN_RTT_US 100
int load_open_check(const struct load_opts *o, unsigned depth)
{
	uint64_t per = (uint64_t)depth * (1000000 / OPEN_MIN_RTT_US);
	uint64_t cap = (uint64_t)o->conns * per;

	if (!o->rate || o->rate <= cap)
		return 0;
	fprintf(stderr,
		"coil-load: --rate %llu cannot be reached with %u connections: "
		"each carries %u request%s at a time (--pipeline) and a round "
		"trip takes at least %u us, so at most %llu requests/s per "
		"connection, %llu in all; use -c %llu or more\n",
		(unsigned long long)o->rate, o->conns, depth,
		depth == 1 ? "" : "s", OPEN_MIN_RTT_US,
		(unsigned long long)per, (unsigned long long)cap,
		(unsigned long long)((o->rate + per - 1) / per));
	return -EINVAL;
}

/* Open loop: every loop turn sends what has come due, so the schedule is as
 * fine as the turns (every few microseconds with --poll always; with
 * adaptive polling while busy, else at the 1 ms tick). */
void load_open_turn(struct coil_loop *loop, void *arg)
{
	struct load *ld = arg;
	struct lctx *lc = &ld->lc[coil_loop_id(loop)];

	if (lc->started && !lc->done)
		load_open_dispatch(lc, coil_loop_now_ns(loop));
}
