/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend's rings: a loop's ring (SINGLE_ISSUER|DEFER_TASKRUN
 * when the kernel has them, else COOP_TASKRUN, else plain), its
 * provided-buffer ring over the loop's receive pool (buffers recycled into
 * it as the protocols return them), the wake-up eventfd, the start-up line
 * of features, the teardown; and the probe at engine create that tells
 * --backend auto whether io_uring can run at all.
 */
#include "uring_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define SQ_ENTRIES 1024
#define CQ_ENTRIES 16384

static void recycle(void *ctx, uint32_t bid)
{
	struct coil_loop *loop = ctx;
	struct uring *u = U(loop);

	io_uring_buf_ring_add(u->br, coil__buf_addr(&loop->pool, bid),
			      loop->pool.size, (unsigned short)bid, u->br_mask,
			      0);
	io_uring_buf_ring_advance(u->br, 1);
}

static int ring_setup(struct uring *u)
{
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
		0,
	};
	int ret = -EINVAL;

	for (unsigned i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		p.flags = tries[i] | IORING_SETUP_CQSIZE |
			  IORING_SETUP_SUBMIT_ALL;
		p.cq_entries = CQ_ENTRIES;
		ret = io_uring_queue_init_params(SQ_ENTRIES, &u->ring, &p);
		if (ret == 0) {
			u->setup_flags = p.flags;
			u->kfeatures = p.features;
			if (!(p.features & IORING_FEAT_NODROP))
				coil__log("io_uring: kernel lacks FEAT_NODROP, "
					  "CQ overflow could lose events");
			return 0;
		}
		if (ret != -EINVAL)
			break;
	}
	return ret;
}

/* Map and register a provided-buffer ring for group `bgid` and put every
 * buffer of `pool` in it. Returns 0 or -errno (logged). */
int coil__uring_buf_ring_setup(struct io_uring *ring, unsigned bgid,
			       const struct coil__bufpool *pool,
			       struct io_uring_buf_ring **brp, size_t *sizep,
			       unsigned *maskp)
{
	struct io_uring_buf_reg reg;
	struct io_uring_buf_ring *br;
	unsigned entries = 1, mask;
	size_t size;
	int ret;

	while (entries < pool->count)
		entries <<= 1;
	size = entries * sizeof(struct io_uring_buf);
	br = mmap(NULL, size, PROT_READ | PROT_WRITE,
		  MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (br == MAP_FAILED)
		return -ENOMEM;
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)br;
	reg.ring_entries = entries;
	reg.bgid = (uint16_t)bgid;
	ret = io_uring_register_buf_ring(ring, &reg, 0);
	if (ret) {
		coil__log("io_uring: cannot register a buffer ring: %s%s",
			  strerror(-ret),
			  ret == -ENOMEM ? " (RLIMIT_MEMLOCK?)" : "");
		munmap(br, size);
		return ret;
	}
	io_uring_buf_ring_init(br);
	mask = io_uring_buf_ring_mask(entries);
	for (uint32_t bid = 0; bid < pool->count; bid++)
		io_uring_buf_ring_add(br, coil__buf_addr(pool, bid), pool->size,
				      (unsigned short)bid, mask, (int)bid);
	io_uring_buf_ring_advance(br, (int)pool->count);
	*brp = br;
	*sizep = size;
	*maskp = mask;
	return 0;
}

int coil__uring_loop_init(struct coil_loop *loop)
{
	struct uring *u;
	int ret;

	if (loop->pool.count > 32768)
		return -EINVAL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->wake_fd = -1;
	ret = ring_setup(u);
	if (ret) {
		coil__log("io_uring_setup failed: %s", strerror(-ret));
		free(u);
		return ret;
	}
	loop->be_data = u;

	ret = coil__uring_buf_ring_setup(&u->ring, BGID, &loop->pool, &u->br,
					 &u->br_size, &u->br_mask);
	if (ret)
		goto fail;
	loop->pool.recycle = recycle;
	loop->pool.recycle_ctx = loop;

	u->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (u->wake_fd < 0) {
		ret = -errno;
		goto fail;
	}
	coil__uring_wake_arm(loop);
	if (loop->coalesce_us) {
		char why[160];

		u->min_wait =
			coil__uring_min_wait_probe(u, why, sizeof(why)) == 0;
		if (!u->min_wait && (u->kfeatures & IORING_FEAT_MIN_TIMEOUT))
			coil__log("loop %u: io_uring: min-wait coalescing off, "
				  "plain waits: %s", loop->id, why);
		if (!u->min_wait)
			snprintf(u->wait_note, sizeof(u->wait_note),
				 "plain wait (%s)", why);
	}
	snprintf(u->features, sizeof(u->features),
		 "%s, multishot accept+recv, provided-buffer ring, %s",
		 (u->setup_flags & IORING_SETUP_DEFER_TASKRUN)
			 ? "single-issuer defer-taskrun"
		 : (u->setup_flags & IORING_SETUP_COOP_TASKRUN)
			 ? "coop-taskrun"
			 : "plain task-run",
		 u->min_wait ? "min-wait coalescing"
		 : u->wait_note[0] ? u->wait_note
				   : "plain wait (coalescing off)");
	loop->be_features = u->features;
	return 0;
fail:
	io_uring_queue_exit(&u->ring);
	if (u->br)
		munmap(u->br, u->br_size);
	free(u);
	loop->be_data = NULL;
	return ret;
}

void coil__uring_loop_fini(struct coil_loop *loop)
{
	struct uring *u = U(loop);

	if (!u)
		return;
	/* Tearing the ring down cancels whatever is still in flight. */
	io_uring_queue_exit(&u->ring);
	for (unsigned i = 0; i < loop->nlst; i++) {
		coil_timer_stop(&loop->lst[i].retry);
		if (loop->lst[i].fd >= 0) {
			close(loop->lst[i].fd);
			loop->lst[i].fd = -1;
		}
	}
	loop->pool.recycle = NULL;
	for (unsigned i = 0; i < loop->nudp; i++) {
		struct coil_udp *cu = &loop->udp[i];
		struct udp_ring *r = cu->be;

		cu->rx.recycle = NULL;
		if (r) {
			munmap(r->br, r->br_size);
			free(r);
			cu->be = NULL;
		}
	}
	if (u->wake_fd >= 0)
		close(u->wake_fd);
	munmap(u->br, u->br_size);
	free(u);
	loop->be_data = NULL;
}

/*
 * What coil__uring_loop_init and the hot path need, tried on a tiny ring
 * once at engine create so that --backend auto can fall back to epoll with
 * a reason instead of loops failing to start: io_uring_setup (seccomp in containers
 * and kernel.io_uring_disabled make it fail with EPERM; kernels without
 * io_uring with ENOSYS), a provided-buffer ring (5.19) and a multishot recv
 * selecting from it (6.0; implies multishot accept, 5.19), run for real on
 * a socketpair.
 */
int coil__uring_probe(char *why, size_t n)
{
	struct io_uring_buf_reg reg;
	struct io_uring_buf_ring *br = MAP_FAILED;
	struct __kernel_timespec ts = { .tv_sec = 1 };
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	struct io_uring ring;
	unsigned char buf[2][64];
	size_t br_size = 4096;
	int sv[2] = { -1, -1 };
	int ret, dis = 0;
	FILE *f;

	ret = io_uring_queue_init(4, &ring, 0);
	if (ret) {
		f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
		if (f) {
			if (fscanf(f, "%d", &dis) != 1)
				dis = 0;
			fclose(f);
		}
		snprintf(why, n, "io_uring_setup: %s%s", strerror(-ret),
			 dis ? (dis == 1 ? ", kernel.io_uring_disabled=1"
					 : ", kernel.io_uring_disabled=2")
			 : ret == -EPERM ? ", blocked by a seccomp filter or "
					   "security policy?"
			 : "");
		return ret;
	}
	br = mmap(NULL, br_size, PROT_READ | PROT_WRITE,
		  MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (br == MAP_FAILED) {
		ret = -ENOMEM;
		snprintf(why, n, "cannot map a buffer ring");
		goto out;
	}
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)br;
	reg.ring_entries = 2;
	reg.bgid = BGID;
	ret = io_uring_register_buf_ring(&ring, &reg, 0);
	if (ret) {
		snprintf(why, n, "no provided-buffer ring (kernel 5.19+): %s%s",
			 strerror(-ret),
			 ret == -ENOMEM ? " (RLIMIT_MEMLOCK?)" : "");
		goto out;
	}
	io_uring_buf_ring_init(br);
	for (int i = 0; i < 2; i++)
		io_uring_buf_ring_add(br, buf[i], sizeof(buf[i]),
				      (unsigned short)i,
				      io_uring_buf_ring_mask(2), i);
	io_uring_buf_ring_advance(br, 2);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    write(sv[1], "x", 1) != 1) {
		ret = -errno;
		snprintf(why, n, "socketpair: %s", strerror(errno));
		goto out;
	}
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	ret = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
	if (ret < 0) {
		snprintf(why, n, "io_uring_enter: %s", strerror(-ret));
		goto out;
	}
	if (cqe->res == 1 && (cqe->flags & IORING_CQE_F_BUFFER))
		ret = 0;
	else
		ret = cqe->res < 0 ? cqe->res : -EPROTO;
	if (ret)
		snprintf(why, n, "no multishot recv with provided buffers "
			 "(kernel 6.0+): %s", strerror(-ret));
	io_uring_cqe_seen(&ring, cqe);
out:
	/* Tearing the ring down cancels the recv still armed and drops the
	 * buffer ring, so the memory and sockets can go after it. */
	io_uring_queue_exit(&ring);
	if (br != MAP_FAILED)
		munmap(br, br_size);
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	return ret;
}
