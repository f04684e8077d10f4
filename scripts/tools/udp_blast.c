// SPDX-License-Identifier: MIT
/*
 * coil-udpblast: closed-loop UDP load for echo servers (packets per
 * second through coil-echo --udp on io_uring, epoll or DPDK).
 *
 *   coil-udpblast --addr A --port P [--flows N (8)] [--size B (64)]
 *                 [--window W (32)] [--duration S (3)] [--warmup S (1)]
 *
 * N sockets (N flows: distinct source ports, so RSS and SO_REUSEPORT can
 * spread them), each keeping W datagrams of B bytes outstanding: W are
 * sent, then one more per echo received. Every echo must carry the flow's
 * tag and a sequence number it sent (a corrupted or foreign datagram is an
 * error). UDP may drop: a flow that got nothing back for 50 ms has its
 * window refilled and the missing ones are counted as lost. Batched with
 * recvmmsg/sendmmsg, one thread, epoll.
 *
 * Prints, after --warmup seconds and for --duration seconds:
 *   echoed=N secs=S pps=P lost=L errors=E
 * where pps counts echoes received (each one is a datagram in and one out
 * at the server). Exit 0, or 1 on errors or when nothing came back.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 32
#define MAXFLOWS 1024
#define MAXSIZE 1472
#define STALL_NS (50 * 1000000ull)

struct flow {
	int fd;
	uint32_t tag;
	uint32_t next_seq;
	uint32_t outstanding;
	uint64_t last_ns;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint8_t bufs[BATCH][MAXSIZE + 1];
static struct mmsghdr mm[BATCH];
static struct iovec iov[BATCH];

/* Send `n` datagrams on flow f (tag, seq, then filler). */
static int blast(struct flow *f, unsigned n, size_t size)
{
	unsigned done = 0;

	while (done < n) {
		unsigned k = n - done < BATCH ? n - done : BATCH;
		int sent;

		for (unsigned i = 0; i < k; i++) {
			uint32_t hdr[2] = { f->tag, f->next_seq + i };

			memcpy(bufs[i], hdr, size < 8 ? size : 8);
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = size;
			memset(&mm[i], 0, sizeof(mm[i]));
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		sent = sendmmsg(f->fd, mm, k, MSG_DONTWAIT);
		if (sent <= 0)
			return errno == EAGAIN || errno == ENOBUFS ? 0 : -1;
		f->next_seq += (uint32_t)sent;
		f->outstanding += (uint32_t)sent;
		done += (unsigned)sent;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "addr", required_argument, 0, 'a' },
		{ "port", required_argument, 0, 'p' },
		{ "flows", required_argument, 0, 'f' },
		{ "size", required_argument, 0, 's' },
		{ "window", required_argument, 0, 'w' },
		{ "duration", required_argument, 0, 'd' },
		{ "warmup", required_argument, 0, 'W' },
		{ 0, 0, 0, 0 },
	};
	const char *addr = "127.0.0.1";
	unsigned port = 0, nflows = 8, size = 64, window = 32;
	double duration = 3, warmup = 1;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct epoll_event evs[64];
	static struct flow flows[MAXFLOWS];
	uint64_t start, t_begin = 0, t_end, echoed = 0, counted = 0, lost = 0,
				    errors = 0, last_check;
	int ep, opt;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 'p': port = (unsigned)atoi(optarg); break;
		case 'f': nflows = (unsigned)atoi(optarg); break;
		case 's': size = (unsigned)atoi(optarg); break;
		case 'w': window = (unsigned)atoi(optarg); break;
		case 'd': duration = atof(optarg); break;
		case 'W': warmup = atof(optarg); break;
		default:
			return 2;
		}
	}
	if (!port || port > 65535 || !nflows || nflows > MAXFLOWS ||
	    size < 8 || size > MAXSIZE || !window || duration <= 0 ||
	    inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "coil-udpblast: need --addr IPv4 --port P; "
			"--flows 1..%d, --size 8..%d, --window >= 1\n",
			MAXFLOWS, MAXSIZE);
		return 2;
	}
	sa.sin_port = htons((uint16_t)port);
	ep = epoll_create1(0);
	for (unsigned i = 0; i < nflows; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
		int sz = 1 << 20;

		flows[i].fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		if (flows[i].fd < 0 ||
		    connect(flows[i].fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, flows[i].fd, &ev) < 0) {
			perror("coil-udpblast: socket");
			return 2;
		}
		(void)setsockopt(flows[i].fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
		flows[i].tag = 0xc0110000u + i;
	}
	start = now_ns();
	last_check = start;
	t_end = start + (uint64_t)((warmup + duration) * 1e9);
	for (unsigned i = 0; i < nflows; i++) {
		flows[i].last_ns = start;
		if (blast(&flows[i], window, size) < 0)
			errors++;
	}
	for (;;) {
		uint64_t t = now_ns();
		int n;

		if (!t_begin && t >= start + (uint64_t)(warmup * 1e9)) {
			t_begin = t;
			counted = 0;
		}
		if (t >= t_end)
			break;
		n = epoll_wait(ep, evs, 64, 10);
		for (int e = 0; e < n; e++) {
			struct flow *f = &flows[evs[e].data.u32];
			int got;

			for (unsigned i = 0; i < BATCH; i++) {
				iov[i].iov_base = bufs[i];
				iov[i].iov_len = sizeof(bufs[i]);
				memset(&mm[i], 0, sizeof(mm[i]));
				mm[i].msg_hdr.msg_iov = &iov[i];
				mm[i].msg_hdr.msg_iovlen = 1;
			}
			got = recvmmsg(f->fd, mm, BATCH, MSG_DONTWAIT, NULL);
			if (got <= 0)
				continue;
			for (int i = 0; i < got; i++) {
				uint32_t hdr[2];

				memcpy(hdr, bufs[i], 8);
				if (mm[i].msg_len != size || hdr[0] != f->tag ||
				    hdr[1] >= f->next_seq)
					errors++;
			}
			f->outstanding = f->outstanding > (uint32_t)got
						 ? f->outstanding - (uint32_t)got
						 : 0;
			f->last_ns = t;
			echoed += (uint64_t)got;
			counted += (uint64_t)got;
			if (blast(f, window - f->outstanding, size) < 0)
				errors++;
		}
		if (t - last_check > STALL_NS / 2) {
			last_check = t;
			for (unsigned i = 0; i < nflows; i++) {
				struct flow *f = &flows[i];

				if (t - f->last_ns < STALL_NS)
					continue;
				lost += f->outstanding;
				f->outstanding = 0;
				f->last_ns = t;
				if (blast(f, window, size) < 0)
					errors++;
			}
		}
	}
	{
		double secs = (double)(now_ns() - t_begin) / 1e9;

		printf("echoed=%llu secs=%.3f pps=%.0f lost=%llu errors=%llu\n",
		       (unsigned long long)counted, secs,
		       secs > 0 ? (double)counted / secs : 0.0,
		       (unsigned long long)lost, (unsigned long long)errors);
	}
	return errors || !echoed ? 1 : 0;
}
