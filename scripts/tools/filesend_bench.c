/* SPDX-License-Identifier: MIT */
/*
 * coil-filesend-bench: which way should io_uring send a large file over a
 * TCP socket? (issue 4: "splice/sendfile path through io_uring or
 * registered buffers — measure which wins")
 *
 *   splice  file -> pipe -> socket, two linked IORING_OP_SPLICE per chunk
 *           (what coil_conn_sendfile does on io_uring today)
 *   zc      IORING_OP_READ_FIXED into a registered buffer, linked to
 *           IORING_OP_SEND_ZC from it (zero copy out; the buffer is reused
 *           only after the kernel's notification)
 *   copy    the same read into a registered buffer, linked to a plain
 *           IORING_OP_SEND (one copy into the socket)
 *
 * The sender runs on one CPU, a reader thread on another drains the
 * socket (recv into 1 MiB, discarded). Each mode sends --total MiB of a
 * --size MiB file (page cache warm) in --chunk KiB pieces, two pieces in
 * flight; modes alternate for --reps rounds and the medians are printed:
 * GB/s, and sender CPU per GiB (process CPU minus the reader thread's).
 */
#include <liburing.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum mode { M_SPLICE, M_ZC, M_COPY, M_N };
static const char *const mode_name[M_N] = { "splice", "zc", "copy" };

static size_t file_size = 64u << 20, total = 2048u << 20, chunk = 256u << 10;
static int reps = 5, cpu_send = 0, cpu_recv = 1;

static void die(const char *what, int err)
{
	fprintf(stderr, "coil-filesend-bench: %s: %s\n", what, strerror(err));
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_of(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double process_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	(void)sched_setaffinity(0, sizeof(set), &set);
}

struct reader {
	int fd;
	size_t want;
	double cpu;     /* the thread's CPU seconds */
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	static char buf[1 << 20];
	size_t got = 0;

	pin(cpu_recv);
	while (got < r->want) {
		ssize_t n = recv(r->fd, buf, sizeof(buf), 0);

		if (n <= 0)
			die("reader: recv", n < 0 ? errno : EPIPE);
		got += (size_t)n;
	}
	r->cpu = cpu_of(CLOCK_THREAD_CPUTIME_ID);
	return NULL;
}

static void tcp_pair(int *snd, int *rcv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (l < 0 || bind(l, (struct sockaddr *)&sa, len) < 0 ||
	    listen(l, 1) < 0 || getsockname(l, (struct sockaddr *)&sa, &len) < 0)
		die("listen", errno);
	*rcv = socket(AF_INET, SOCK_STREAM, 0);
	if (*rcv < 0 || connect(*rcv, (struct sockaddr *)&sa, len) < 0)
		die("connect", errno);
	*snd = accept(l, NULL, NULL);
	if (*snd < 0)
		die("accept", errno);
	(void)setsockopt(*snd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	close(l);
}

static struct io_uring_cqe *wait1(struct io_uring *ring)
{
	struct io_uring_cqe *cqe;
	int ret = io_uring_wait_cqe(ring, &cqe);

	if (ret < 0)
		die("io_uring_wait_cqe", -ret);
	return cqe;
}

/* file -> pipe -> socket, as coil does it. */
static void run_splice(struct io_uring *ring, int file, int sock)
{
	int p[2];
	size_t sent = 0, off = 0;

	if (pipe(p) < 0)
		die("pipe", errno);
	(void)fcntl(p[1], F_SETPIPE_SZ, (int)chunk);
	while (sent < total) {
		size_t n = chunk, in_pipe;
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
		struct io_uring_cqe *cqe;
		int res_in = 0;

		if (off + n > file_size)
			off = 0;
		io_uring_prep_splice(sqe, file, (int64_t)off, p[1], -1,
				     (unsigned)n, SPLICE_F_MOVE);
		sqe->flags |= IOSQE_IO_LINK;
		io_uring_sqe_set_data64(sqe, 1);
		sqe = io_uring_get_sqe(ring);
		io_uring_prep_splice(sqe, p[0], -1, sock, -1, (unsigned)n,
				     SPLICE_F_MOVE);
		io_uring_sqe_set_data64(sqe, 2);
		io_uring_submit(ring);
		in_pipe = 0;
		for (int k = 0; k < 2; k++) {
			cqe = wait1(ring);
			if (cqe->res < 0)
				die(cqe->user_data == 1 ? "splice in" :
				    "splice out", -cqe->res);
			if (cqe->user_data == 1) {
				res_in = cqe->res;
			} else {
				sent += (size_t)cqe->res;
				in_pipe = (size_t)cqe->res;
			}
			io_uring_cqe_seen(ring, cqe);
		}
		/* a short splice out: drain what stayed in the pipe */
		while (in_pipe < (size_t)res_in) {
			sqe = io_uring_get_sqe(ring);
			io_uring_prep_splice(sqe, p[0], -1, sock, -1,
					     (unsigned)((size_t)res_in - in_pipe),
					     SPLICE_F_MOVE);
			io_uring_submit(ring);
			cqe = wait1(ring);
			if (cqe->res <= 0)
				die("splice out", cqe->res ? -cqe->res : EPIPE);
			in_pipe += (size_t)cqe->res;
			sent += (size_t)cqe->res;
			io_uring_cqe_seen(ring, cqe);
		}
		off += (size_t)res_in;
	}
	close(p[0]);
	close(p[1]);
}

/* READ_FIXED into registered buffer b, linked to a send from it. */
static void queue_piece(struct io_uring *ring, int file, int sock, void *buf,
			int b, size_t off, bool zc)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	io_uring_prep_read_fixed(sqe, file, buf, (unsigned)chunk, off, b);
	sqe->flags |= IOSQE_IO_LINK;
	io_uring_sqe_set_data64(sqe, (uint64_t)b << 8 | 1);
	sqe = io_uring_get_sqe(ring);
	if (zc)
		io_uring_prep_send_zc_fixed(sqe, sock, buf, chunk, MSG_WAITALL,
					    0, (unsigned)b);
	else
		io_uring_prep_send(sqe, sock, buf, chunk, MSG_WAITALL);
	io_uring_sqe_set_data64(sqe, (uint64_t)b << 8 | 2);
}

static void run_fixed(struct io_uring *ring, int file, int sock,
		      struct iovec *bufs, bool zc)
{
	/* per buffer: completions still owed (read, send, zc notification) */
	int owed[2] = { 0, 0 };
	size_t queued = 0, off = 0, sent = 0;

	while (sent < total) {
		for (int b = 0; b < 2; b++) {
			if (owed[b] || queued >= total)
				continue;
			if (off + chunk > file_size)
				off = 0;
			queue_piece(ring, file, sock, bufs[b].iov_base, b, off,
				    zc);
			owed[b] = zc ? 3 : 2;
			off += chunk;
			queued += chunk;
		}
		io_uring_submit(ring);
		do {
			struct io_uring_cqe *cqe = wait1(ring);
			int b = (int)(cqe->user_data >> 8);
			unsigned what = cqe->user_data & 0xff;

			if (cqe->flags & IORING_CQE_F_NOTIF) {
				owed[b]--;
			} else if (cqe->res < 0) {
				die(what == 1 ? "read_fixed" : "send", -cqe->res);
			} else if (what == 2) {
				if ((size_t)cqe->res != chunk)
					die("send: short (MSG_WAITALL)", EIO);
				sent += (size_t)cqe->res;
				owed[b]--;
				/* a zc send without F_MORE has no notification */
				if (zc && !(cqe->flags & IORING_CQE_F_MORE))
					owed[b]--;
			} else {
				owed[b]--;
			}
			io_uring_cqe_seen(ring, cqe);
		} while (io_uring_cq_ready(ring));
	}
	/* settle the last notifications */
	while (owed[0] || owed[1]) {
		struct io_uring_cqe *cqe = wait1(ring);

		owed[cqe->user_data >> 8]--;
		io_uring_cqe_seen(ring, cqe);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static size_t size_arg(const char *flag, const char *v, size_t unit)
{
	char *end;
	unsigned long long n = strtoull(v, &end, 10);

	if (*v == '\0' || *end != '\0' || n == 0 || n > (1ull << 20)) {
		fprintf(stderr, "coil-filesend-bench: %s: expected a positive "
			"number, got '%s'\n", flag, v);
		exit(2);
	}
	return (size_t)n * unit;
}

int main(int argc, char **argv)
{
	double gbps[M_N][64], cpu[M_N][64];
	char path[] = "/tmp/coil-filesend.XXXXXX";
	struct iovec bufs[2];
	struct io_uring ring;
	int file, ret;

	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : "";

		if (!strcmp(argv[i], "--size"))
			file_size = size_arg("--size", v, 1u << 20), i++;
		else if (!strcmp(argv[i], "--total"))
			total = size_arg("--total", v, 1u << 20), i++;
		else if (!strcmp(argv[i], "--chunk"))
			chunk = size_arg("--chunk", v, 1u << 10), i++;
		else if (!strcmp(argv[i], "--reps"))
			reps = (int)size_arg("--reps", v, 1), i++;
		else {
			fprintf(stderr, "usage: coil-filesend-bench [--size MiB] "
				"[--total MiB] [--chunk KiB] [--reps N]\n");
			return 2;
		}
	}
	if (reps > 64 || file_size % chunk || chunk > (1u << 20)) {
		fprintf(stderr, "coil-filesend-bench: --reps at most 64, "
			"--chunk at most 1024 KiB and a divisor of --size\n");
		return 2;
	}
	total -= total % chunk;
	pin(cpu_send);

	file = mkstemp(path);
	if (file < 0)
		die("mkstemp", errno);
	unlink(path);
	{
		char *blk = malloc(1 << 20);

		if (!blk)
			die("malloc", ENOMEM);
		for (size_t i = 0; i < (1 << 20); i++)
			blk[i] = (char)(i * 131 + 7);
		for (size_t o = 0; o < file_size; o += 1 << 20)
			if (write(file, blk, 1 << 20) != 1 << 20)
				die("write", errno);
		free(blk);
	}
	ret = io_uring_queue_init(64, &ring, 0);
	if (ret < 0)
		die("io_uring_queue_init", -ret);
	for (int b = 0; b < 2; b++) {
		bufs[b].iov_len = chunk;
		bufs[b].iov_base = aligned_alloc(4096, chunk);
		if (!bufs[b].iov_base)
			die("aligned_alloc", ENOMEM);
	}
	ret = io_uring_register_buffers(&ring, bufs, 2);
	if (ret < 0)
		die("io_uring_register_buffers", -ret);

	printf("file %zu MiB, %zu MiB per run, %zu KiB pieces, %d reps, "
	       "sender CPU %d, reader CPU %d\n", file_size >> 20, total >> 20,
	       chunk >> 10, reps, cpu_send, cpu_recv);
	for (int r = 0; r < reps; r++) {
		for (int m = 0; m < M_N; m++) {
			struct reader rd = { .want = total };
			pthread_t th;
			double t0, c0, t;
			int sock;

			tcp_pair(&sock, &rd.fd);
			if ((ret = pthread_create(&th, NULL, reader_main, &rd)))
				die("pthread_create", ret);
			t0 = now_s();
			c0 = process_cpu();
			if (m == M_SPLICE)
				run_splice(&ring, file, sock);
			else
				run_fixed(&ring, file, sock, bufs, m == M_ZC);
			pthread_join(th, NULL);
			t = now_s() - t0;
			gbps[m][r] = total / t / 1e9;
			cpu[m][r] = (process_cpu() - c0 - rd.cpu) /
				    ((double)total / (1u << 30));
			close(sock);
			close(rd.fd);
		}
	}
	printf("%-7s %10s %16s\n", "mode", "GB/s", "sender CPU s/GiB");
	for (int m = 0; m < M_N; m++) {
		qsort(gbps[m], (size_t)reps, sizeof(double), cmp_double);
		qsort(cpu[m], (size_t)reps, sizeof(double), cmp_double);
		printf("%-7s %10.2f %16.3f\n", mode_name[m], gbps[m][reps / 2],
		       cpu[m][reps / 2]);
	}
	io_uring_queue_exit(&ring);
	close(file);
	return 0;
}
