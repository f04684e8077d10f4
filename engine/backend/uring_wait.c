/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend's loop turn: submit what the turn queued and wait
 * per the poll mode in one io_uring_enter, then reap every completion into
 * a batch before any callback runs (so callbacks may submit or close
 * freely) and dispatch each by its user_data tag. Under load the wait
 * coalesces wake-ups with the kernel's min-wait (6.12+), which liburing
 * 2.3 cannot ask for: sq_flush() and wait_coalesced() go beyond its public
 * API, checked by a probe on every loop's ring at start. And the wake-up
 * of a sleeping loop from another thread (MSG_RING, else the eventfd).
 */
#include "uring_internal.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define COALESCE_NR 32  /* completions worth waking for before min_wait */
/* Coalesce only under load: at a trickle, the min-wait timer would be one
 * more wake-up per event instead of one fewer. */
#define COALESCE_MIN 4

#define BATCH 256   /* completions copied out per peek */

void coil__uring_wake_arm(struct coil_loop *loop)
{
	struct uring *u = U(loop);
	struct io_uring_sqe *sqe = sqe_get(u);

	io_uring_prep_read(sqe, u->wake_fd, &u->wake_val, sizeof(u->wake_val),
			   0);
	io_uring_sqe_set_data64(sqe, ud(loop, TAG_WAKE));
}

static void dispatch(struct coil_loop *loop, uint64_t data, int res,
		     unsigned flags)
{
	void *p = (void *)(uintptr_t)(data & ~(uint64_t)TAG_MASK);

	switch (data & TAG_MASK) {
	case TAG_ACCEPT:
		coil__uring_on_accept(p, res, flags);
		break;
	case TAG_RECV:
		coil__uring_on_recv(p, res, flags);
		break;
	case TAG_SEND:
		coil__conn_sent(p, res);
		break;
	case TAG_SPLICE_IN:
	case TAG_SPLICE_OUT:
		coil__uring_on_splice(p, (unsigned)(data & TAG_MASK), res);
		break;
	case TAG_CONNECT:
		coil__conn_connected(p, res);
		break;
	case TAG_WAKE:
		coil__uring_wake_arm(loop);
		break;
	case TAG_UDP:
		coil__uring_on_udp(p, res, flags);
		break;
	case TAG_MSG:
		break;
	default:
		break;
	}
}

/* A receive error that ends the connection (a reset, mostly). */
static bool recv_fatal(int res)
{
	return res < 0 && res != -ENOBUFS && res != -ECANCELED &&
	       res != -EINVAL && res != -EAGAIN;
}

/*
 * A client that sends and resets at once (an abandoned pipeline, a flood)
 * leaves its bytes readable and the reset right behind them, often in the
 * same batch of completions. Nobody can read an answer any more: report
 * the failure before its data is dispatched, so the protocol is spared the
 * work (nginx learns it when its first write fails).
 */
static void doom(uint64_t data, int res)
{
	struct coil_conn *c = (void *)(uintptr_t)(data & ~(uint64_t)TAG_MASK);

	coil__conn_recv_failed(c, res);
}

static unsigned reap(struct coil_loop *loop)
{
	struct uring *u = U(loop);
	struct io_uring_cqe *cqes[BATCH];
	struct {
		uint64_t data;
		int32_t res;
		uint32_t flags;
	} ev[BATCH];
	unsigned total = 0, n;

	do {
		n = io_uring_peek_batch_cqe(&u->ring, cqes, BATCH);
		for (unsigned i = 0; i < n; i++) {
			ev[i].data = cqes[i]->user_data;
			ev[i].res = cqes[i]->res;
			ev[i].flags = cqes[i]->flags;
			if ((ev[i].data & TAG_MASK) == TAG_RECV &&
			    recv_fatal(ev[i].res))
				doom(ev[i].data, ev[i].res);
		}
		io_uring_cq_advance(&u->ring, n);
		for (unsigned i = 0; i < n; i++)
			dispatch(loop, ev[i].data, ev[i].res, ev[i].flags);
		total += n;
	} while (n == BATCH);
	return total;
}

/*
 * ---- Beyond liburing's public API: sq_flush() and wait_coalesced() ----
 *
 * The min-timeout wait needs both in one io_uring_enter: liburing 2.3
 * (Debian 12) has no call for it (2.8 added
 * io_uring_submit_and_wait_min_timeout), so we publish the SQ ourselves
 * and pass the new wait argument by hand. Each reliance lives in one
 * function below, and coil__uring_min_wait_probe() checks both on every
 * loop's ring at start: if either does not behave as expected, the loop
 * logs why and uses liburing's plain waits.
 */

/*
 * Publish queued SQEs to the kernel; returns how many await submission.
 * Relies on liburing's PRIVATE struct io_uring_sq fields as liburing 2.2
 * to 2.x keep them (2.3 here): sqe_tail counts the SQEs io_uring_get_sqe()
 * handed out, sqe_head those already published in *ktail; this is
 * liburing's own (unexported) __io_uring_flush_sq() for a ring without
 * SQPOLL. Checked by coil__uring_min_wait_probe().
 */
static unsigned sq_flush(struct io_uring *ring)
{
	struct io_uring_sq *sq = &ring->sq;
	unsigned tail = sq->sqe_tail;

	if (sq->sqe_head != tail) {
		sq->sqe_head = tail;
		io_uring_smp_store_release(sq->ktail, tail);
	}
	return tail - IO_URING_READ_ONCE(*sq->khead);
}

/*
 * Submit and sleep, but batch the wake-up: return once `nr` completions
 * are there, or once min_us has passed and at least one is; an idle loop
 * still wakes on its first completion after that. Fewer, larger turns
 * mean fewer syscalls and wake-ups. Relies on kernel 6.12+
 * (IORING_FEAT_MIN_TIMEOUT), which reads io_uring_getevents_arg.pad as
 * min_wait_usec (liburing 2.3's header still calls it pad; older kernels
 * refuse a non-zero pad with -EINVAL). Checked by
 * coil__uring_min_wait_probe().
 */
_Static_assert(offsetof(struct io_uring_getevents_arg, pad) == 12 &&
		       sizeof(struct io_uring_getevents_arg) == 24,
	       "io_uring_getevents_arg: pad must be the kernel's min_wait_usec");
static int wait_coalesced(struct uring *u, unsigned nr, unsigned min_us,
			  int64_t timeout_ms)
{
	struct __kernel_timespec ts = {
		.tv_sec = timeout_ms / 1000,
		.tv_nsec = (timeout_ms % 1000) * 1000000,
	};
	struct io_uring_getevents_arg arg = {
		.sigmask = 0,
		.sigmask_sz = _NSIG / 8,
		.pad = min_us,
		.ts = timeout_ms > 0 ? (uint64_t)(uintptr_t)&ts : 0,
	};
	unsigned submit = sq_flush(&u->ring);
	long ret;

	ret = syscall(__NR_io_uring_enter, u->ring.ring_fd, submit, nr,
		      IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg,
		      sizeof(arg));
	return ret < 0 ? -errno : (int)ret;
}

/* Tests set it to make the probe fail (the fallback path). */
bool coil__uring_no_min_wait;

#define PROBE_MIN_US 1000   /* the min-wait the probe asks for */
#define PROBE_MAX_MS 100    /* a wait longer than this ignored it */

/*
 * Run sq_flush() and wait_coalesced() once, for real, on the loop's own
 * ring (its thread: SINGLE_ISSUER) before any I/O: a NOP is queued (with
 * the wake-up read queued at init), sq_flush() must publish exactly what
 * liburing counts as ready, and a wait for two completions with a 1 ms
 * min-wait must return with the NOP's long before its 200 ms timeout.
 * The NOP's completion stays in the CQ, ignored by the first reap.
 * Returns 0, or -errno with the reason in why[n].
 */
int coil__uring_min_wait_probe(struct uring *u, char *why, size_t n)
{
	struct io_uring *ring = &u->ring;
	const uint64_t probe_ud = ud(u, TAG_IGNORE);
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct timespec t0, t1;
	unsigned head, ready, submit;
	bool seen = false;
	int64_t ms;
	int ret;

	if (coil__uring_no_min_wait) {
		snprintf(why, n, "forced off (coil__uring_no_min_wait)");
		return -ECANCELED;
	}
	if (!(u->kfeatures & IORING_FEAT_MIN_TIMEOUT)) {
		snprintf(why, n, "kernel before 6.12 (no IORING_FEAT_MIN_TIMEOUT)");
		return -EOPNOTSUPP;
	}
	sqe = sqe_get(u);
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, probe_ud);
	/* Read-only first: sqe_head must be what was published (*ktail) and
	 * sqe_tail - sqe_head what liburing's public count says is queued.
	 * Only then is sq_flush() allowed to write sqe_head. */
	ready = io_uring_sq_ready(ring);
	if (!ready || IO_URING_READ_ONCE(*ring->sq.ktail) != ring->sq.sqe_head ||
	    ring->sq.sqe_tail - ring->sq.sqe_head != ready) {
		snprintf(why, n, "liburing's struct io_uring_sq does not behave "
			 "as liburing 2.2-2.x's (sqe_head/sqe_tail)");
		return -EPROTO;
	}
	submit = sq_flush(ring);
	if (submit != ready ||
	    IO_URING_READ_ONCE(*ring->sq.ktail) != ring->sq.sqe_tail) {
		snprintf(why, n, "sq_flush() left *ktail at %u, not %u",
			 IO_URING_READ_ONCE(*ring->sq.ktail),
			 ring->sq.sqe_tail);
		return -EPROTO;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = wait_coalesced(u, 2, PROBE_MIN_US, 200);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	     (t1.tv_nsec - t0.tv_nsec) / 1000000;
	io_uring_for_each_cqe(ring, head, cqe) {
		if (cqe->user_data == probe_ud)
			seen = true;
	}
	if (ret < 0 && ret != -ETIME && ret != -EINTR) {
		snprintf(why, n, "io_uring_enter with min_wait_usec: %s",
			 strerror(-ret));
		return ret;
	}
	if (!seen) {
		snprintf(why, n, "the probe's NOP never completed: sq_flush() "
			 "did not submit it (liburing's private sqe_head)");
		return -EPROTO;
	}
	if (ms > PROBE_MAX_MS) {
		snprintf(why, n, "the kernel ignored min_wait_usec (waited "
			 "%lld ms for a 1 ms min-wait)", (long long)ms);
		return -EPROTO;
	}
	return 0;
}

void coil__uring_wait(struct coil_loop *loop, int64_t timeout_ms)
{
	struct uring *u = U(loop);
	struct io_uring_cqe *cqe;
	int ret;

	if (loop->poll == COIL_POLL_ALWAYS) {
		timeout_ms = 0;
	} else if (loop->poll == COIL_POLL_ADAPTIVE && timeout_ms != 0 &&
		   loop->now_ns - u->last_event_ns <
			   (uint64_t)loop->poll_us * 1000) {
		timeout_ms = 0;
		/* Spinning, the last look found nothing and nothing waits to
		 * be submitted: let a thread that shares this CPU run first
		 * (see COIL_POLL_ADAPTIVE). Queued work goes out before any
		 * yield: a peer on this CPU may be waiting for it. */
		if (!u->last_batch && !io_uring_sq_ready(&u->ring))
			sched_yield();
	}
	if (io_uring_cq_ready(&u->ring))
		timeout_ms = 0;
	coil__stat_add(loop->st.submits, io_uring_sq_ready(&u->ring));

	if (timeout_ms == 0) {
		ret = io_uring_submit_and_get_events(&u->ring);
	} else if (loop->coalesce_us && u->last_batch >= COALESCE_MIN &&
		   u->min_wait) {
		ret = wait_coalesced(u, COALESCE_NR, loop->coalesce_us,
				     timeout_ms);
	} else if (timeout_ms < 0) {
		ret = io_uring_submit_and_wait(&u->ring, 1);
	} else {
		struct __kernel_timespec ts = {
			.tv_sec = timeout_ms / 1000,
			.tv_nsec = (timeout_ms % 1000) * 1000000,
		};
		ret = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts,
						       NULL);
	}
	if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN &&
	    ret != -EBUSY)
		coil__log("loop %u: io_uring_enter: %s", loop->id,
			  strerror(-ret));
	/* The callbacks about to run must see the time after the sleep, not
	 * before it (an idle timeout measured from a stale clock would fire
	 * on a connection accepted this very turn). */
	if (timeout_ms != 0)
		coil__loop_clock(loop);
	u->last_batch = reap(loop);
	coil__stat_add(loop->st.completions, u->last_batch);
	__atomic_store_n(&loop->st.cq_overflow,
			 IO_URING_READ_ONCE(*u->ring.cq.koverflow),
			 __ATOMIC_RELAXED);
	if (u->last_batch)
		u->last_event_ns = loop->now_ns;
}

void coil__uring_wake(struct coil_loop *loop)
{
	struct uring *u = U(loop);
	uint64_t one = 1;

	/* MSG_RING first; the eventfd read armed in the ring stays as the
	 * fallback (no MSG_RING, the target's CQ full). */
	if (u && coil__uring_msg(u->ring.ring_fd, TAG_MSG) < 0 &&
	    write(u->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, the loop will wake. */
	}
}

