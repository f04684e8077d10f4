/* SPDX-License-Identifier: MIT */
/*
 * Waking an io_uring loop from another thread with IORING_OP_MSG_RING: a
 * completion posted straight into the target loop's ring, so the loop
 * keeps no eventfd read armed for it and wakes from the same wait that
 * reaps its sockets. The sender needs a ring of its own, and a loop's ring
 * is SINGLE_ISSUER (only its thread may submit) and batched (a message
 * would wait for that loop's next submit): so every sending thread (a
 * worker, another loop, the main thread) gets a tiny ring of its own, made
 * on its first wake and freed when the thread exits, and each wake is one
 * io_uring_enter that submits the message and reaps its result.
 */
#include "backend.h"

#include <liburing.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

static __thread struct io_uring *tl_ring;
static __thread int tl_state;     /* 0 not tried, 1 ready, -1 unusable */
static pthread_key_t tl_key;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;
static int tl_key_err;

static void tl_free(void *p)
{
	io_uring_queue_exit(p);
	free(p);
}

static void tl_key_make(void)
{
	tl_key_err = pthread_key_create(&tl_key, tl_free);
}

static struct io_uring *sender_ring(void)
{
	struct io_uring *r;

	if (tl_state)
		return tl_state > 0 ? tl_ring : NULL;
	tl_state = -1;
	pthread_once(&tl_once, tl_key_make);
	if (tl_key_err)
		return NULL;
	r = malloc(sizeof(*r));
	if (!r)
		return NULL;
	if (io_uring_queue_init(4, r, 0) < 0) {
		free(r);
		return NULL;
	}
	if (pthread_setspecific(tl_key, r)) {
		tl_free(r);
		return NULL;
	}
	tl_ring = r;
	tl_state = 1;
	return r;
}

int coil__uring_msg(int ring_fd, uint64_t data)
{
	struct io_uring *r = sender_ring();
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int ret;

	if (!r)
		return -EOPNOTSUPP;
	sqe = io_uring_get_sqe(r);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_msg_ring(sqe, ring_fd, 0, data, 0);
	ret = io_uring_submit_and_wait(r, 1);
	if (ret < 0)
		return ret;
	ret = io_uring_peek_cqe(r, &cqe);
	if (ret < 0)
		return ret;
	ret = cqe->res;
	io_uring_cqe_seen(r, cqe);
	/* A kernel without MSG_RING: stop trying on this thread. */
	if (ret == -EINVAL || ret == -EOPNOTSUPP)
		tl_state = -1;
	return ret < 0 ? ret : 0;
}
