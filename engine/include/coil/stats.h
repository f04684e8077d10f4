/* SPDX-License-Identifier: MIT */
#ifndef COIL_STATS_H
#define COIL_STATS_H

#include <stddef.h>
#include <stdint.h>

/*
 * What a running engine is doing. Each loop keeps its own counters as
 * plain 64-bit words that only it writes (no atomic read-modify-write, no
 * shared cache line on the hot path); a reader on any thread loads them
 * one by one and sums over the loops. So a snapshot is not one consistent
 * instant across counters, but every counter only grows (gauges aside) and
 * none is ever torn. COIL_STATS=1 in the environment also logs each
 * loop's counters when it exits.
 */

struct coil_engine;
struct coil_loop;

struct coil_stats {
	size_t sz;                 /* sizeof(struct coil_stats), set by caller */
	unsigned loops;            /* loops summed */
	/* connections */
	uint64_t conns_open;       /* gauge: open now */
	uint64_t accepted;         /* accepted (steered to these loops) */
	uint64_t refused;          /* refused at the connection limit
				      (max_conns) */
	uint64_t closed;
	uint64_t resets;           /* closed by a reset from the peer */
	/* bytes */
	uint64_t rx_bytes, tx_bytes;
	uint64_t recvs, sends;     /* receive completions, sends issued */
	/* memory */
	uint64_t bufs;             /* gauge: receive buffers */
	uint64_t bufs_in_use;      /* gauge: lent to the kernel-side user or
				      a protocol (not free) */
	uint64_t buf_starved;      /* receives that ended for lack of
				      buffers (pool exhaustion) */
	uint64_t held_bytes;       /* input held aside while paused */
	uint64_t write_paused;     /* reads paused at the write high-water */
	uint64_t send_heap;        /* send memory taken from the heap when the
				      loop's slabs were full */
	/* the loop */
	uint64_t timers_armed;     /* gauge */
	uint64_t turns;
	uint64_t submits;          /* io_uring SQEs submitted */
	uint64_t completions;      /* io_uring CQEs reaped */
	uint64_t cq_overflow;      /* CQEs the kernel could not post at once */
	/* cross-thread work */
	uint64_t defer_queued;     /* gauge: jobs waiting for a worker
				      (engine-wide, not summed per loop) */
	uint64_t defer_running;    /* gauge: jobs on a worker now (idem) */
	uint64_t defer_submitted, defer_done, defer_refused;  /* -EAGAIN */
	uint64_t posts_run;        /* coil_loop_post messages run */
	/* HTTP responses by status class: [0] 1xx ... [4] 5xx */
	uint64_t http[5];
};

/*
 * Sum every loop's counters into *out (out->sz set by the caller; fields
 * past it are left alone). Loops that have not started count as zero.
 * Returns 0, -EINVAL for a bad sz. Any thread, while the engine exists.
 */
int coil_engine_stats(struct coil_engine *eng, struct coil_stats *out);

/* The same for one loop (an engine's or a fake's). Any thread. */
int coil_loop_stats(const struct coil_loop *loop, struct coil_stats *out);

/* Count one HTTP response with `status` on `loop` (the HTTP server calls
 * it for each response head). Loop thread. */
void coil_stats_http(struct coil_loop *loop, int status);

/*
 * Write the engine's counters in the Prometheus text exposition format
 * (version 0.0.4), one series per loop (label loop="N") for the per-loop
 * counters, names prefixed "coil_". Returns the length written (without
 * the NUL that follows), or -ENOSPC when `cap` is too small (nothing
 * useful written). Any thread.
 */
int coil_stats_prometheus(struct coil_engine *eng, char *buf, size_t cap);

/* The same into memory of the right size: a malloc'd, NUL-terminated text
 * the caller frees, its length in *len; NULL when out of memory. Any
 * thread. */
char *coil_stats_prometheus_dup(struct coil_engine *eng, size_t *len);

/*
 * A tiny HTTP responder for a separate metrics port: a listening service
 * with these ops and `data` set to the engine answers every request (any
 * method and path) with coil_stats_prometheus() and closes. For apps with
 * no HTTP server of their own (coil-echo --metrics-port).
 */
extern const struct coil_proto_ops coil_stats_http_ops;

#endif
