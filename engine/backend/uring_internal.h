/* SPDX-License-Identifier: MIT */
/*
 * Between the io_uring backend's files: uring.c (the connections'
 * operations and their completions, the ops table), uring_ring.c (a loop's
 * ring and provided-buffer ring, set up and torn down; the engine-create
 * probe), uring_wait.c (the loop's turn: submit, wait, reap, dispatch; the
 * min-wait coalescing beyond liburing's API; the wake-up) and uring_udp.c
 * (UDP services). Private to engine/backend; only these files include
 * <liburing.h>.
 *
 * user_data = pointer | tag (objects are at least 8-byte aligned).
 */
#ifndef COIL_BACKEND_URING_INTERNAL_H
#define COIL_BACKEND_URING_INTERNAL_H

#include "backend.h"

#include <liburing.h>

#include <assert.h>

/* Kernel 6.12+: io_uring_getevents_arg.pad became min_wait_usec. */
#ifndef IORING_FEAT_MIN_TIMEOUT
#define IORING_FEAT_MIN_TIMEOUT (1U << 15)
#endif

enum {
	TAG_IGNORE = 0, TAG_ACCEPT, TAG_RECV, TAG_SEND, TAG_WAKE,
	TAG_SPLICE_IN, TAG_SPLICE_OUT, TAG_CONNECT,
	/* a UDP receive (struct coil_udp) or send (struct coil__udp_tx):
	 * told apart by their `kind` field */
	TAG_UDP,
	/* a wake-up posted by another thread (coil__uring_msg): nothing to
	 * do, the loop's turn drains its inbox */
	TAG_MSG,
	/* four bits: every tagged object is 16-byte aligned (slab objects
	 * are 64-byte, the others _Alignas(16)) */
	TAG_MASK = 15
};

#define BGID 0
/* UDP service i receives from buffer group UDP_BGID + i. */
#define UDP_BGID 1

/* A loop's io_uring state (loop->be_data). */
struct uring {
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	size_t br_size;
	unsigned br_mask;
	int wake_fd;
	uint64_t wake_val;
	uint64_t last_event_ns;
	unsigned setup_flags;
	unsigned kfeatures;
	unsigned last_batch;   /* completions reaped by the last turn */
	bool min_wait;         /* wait_coalesced() passed its start-up probe */
	char wait_note[192];   /* why not */
	char features[320];
};

/* A UDP service's provided-buffer ring (coil_udp.be). */
struct udp_ring {
	struct io_uring_buf_ring *br;
	size_t br_size;
	unsigned mask;
};

/* The loop's io_uring state. */
static inline struct uring *U(struct coil_loop *loop)
{
	return loop->be_data;
}

/* The user_data of an operation on object `p`: pointer | tag. */
static inline uint64_t ud(const void *p, unsigned tag)
{
	assert(((uintptr_t)p & TAG_MASK) == 0);
	return (uint64_t)(uintptr_t)p | tag;
}

/* A free SQE, submitting what is queued first when the SQ is full. */
static inline struct io_uring_sqe *sqe_get(struct uring *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	while (!sqe) {
		/* SQ full: push what we have to the kernel and go on. */
		io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
	}
	return sqe;
}

/* ---- uring_ring.c ---- */

/* Map and register a provided-buffer ring for group `bgid` and put every
 * buffer of `pool` in it. Returns 0 or -errno (logged). */
int coil__uring_buf_ring_setup(struct io_uring *ring, unsigned bgid,
			       const struct coil__bufpool *pool,
			       struct io_uring_buf_ring **brp, size_t *sizep,
			       unsigned *maskp);
/* Set up / tear down a loop's ring (coil__uring_ops.loop_init, loop_fini). */
int coil__uring_loop_init(struct coil_loop *loop);
void coil__uring_loop_fini(struct coil_loop *loop);

/* ---- uring_wait.c ---- */

/* Queue the read of the loop's wake-up eventfd (again, once it fired). */
void coil__uring_wake_arm(struct coil_loop *loop);
/* Check the min-wait coalescing on the loop's own ring, before any I/O.
 * Returns 0, or -errno with the reason in why[n]. */
int coil__uring_min_wait_probe(struct uring *u, char *why, size_t n);
/* The loop's turn and the wake-up (coil__uring_ops.wait, wake). */
void coil__uring_wait(struct coil_loop *loop, int64_t timeout_ms);
void coil__uring_wake(struct coil_loop *loop);

/* ---- uring.c: completions of the connections' operations ---- */

/* A multishot accept's completion. */
void coil__uring_on_accept(struct coil__listener *lst, int res,
			   unsigned flags);
/* A multishot recv's completion (a buffer from the loop's ring). */
void coil__uring_on_recv(struct coil_conn *c, int res, unsigned flags);
/* One of the two linked splices of a send_file (tag: which). */
void coil__uring_on_splice(struct coil_conn *c, unsigned tag, int res);

/* ---- uring_udp.c ---- */

/* A UDP completion: a receive (struct coil_udp) or a send (struct
 * coil__udp_tx). */
void coil__uring_on_udp(void *p, int res, unsigned flags);
/* coil__uring_ops.udp_start, udp_stop, udp_send. */
int coil__uring_udp_start(struct coil_udp *u);
void coil__uring_udp_stop(struct coil_udp *u);
int coil__uring_udp_send(struct coil_udp *u, const struct sockaddr *to,
			 socklen_t to_len, const void *data, size_t len);

#endif
