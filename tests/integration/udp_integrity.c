/* SPDX-License-Identifier: MIT */
/*
 * udp-integrity: send datagrams of varied sizes to a UDP echo server and
 * check that every byte of every echo is the byte sent.
 *
 *   udp-integrity --addr A --port P [--count N (5000)] [--max-size B (1472)]
 *                 [--big N (0): that many more of 1473..8192 B]
 *                 [--window W (32)] [--timeout S (30)] [--seed S]
 *
 * Sizes 1..7 cannot carry a sequence number: they go one at a time, each
 * waiting for its echo. Every other datagram starts with its sequence
 * number and is followed by a pattern derived from it; up to W are in
 * flight, and one not echoed within 200 ms is sent again (UDP may drop;
 * at most 10 tries). Prints
 *   sent=N echoed=N mismatched=M missing=K errors=E retransmits=R
 * and exits 0 only when every datagram came back intact.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_DGRAM 65536
#define RETRY_MS 200
#define MAX_TRIES 10

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint8_t pat(uint32_t seq, size_t i)
{
	return (uint8_t)(seq * 131u + i * 7u + (i >> 8));
}

static void fill(uint8_t *b, uint32_t seq, size_t len)
{
	for (size_t i = 0; i < len; i++)
		b[i] = pat(seq, i);
	if (len >= 4)
		memcpy(b, &seq, 4);
}

struct dg {
	uint32_t len;
	uint8_t tries;
	uint8_t done;
	uint64_t sent_ms;
};

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "addr", required_argument, 0, 'a' },
		{ "port", required_argument, 0, 'p' },
		{ "count", required_argument, 0, 'n' },
		{ "max-size", required_argument, 0, 'm' },
		{ "big", required_argument, 0, 'b' },
		{ "window", required_argument, 0, 'w' },
		{ "timeout", required_argument, 0, 't' },
		{ "seed", required_argument, 0, 's' },
		{ 0, 0, 0, 0 },
	};
	const char *addr = "127.0.0.1";
	unsigned port = 0, count = 5000, max_size = 1472, big = 0, window = 32;
	unsigned timeout = 30, seed = 1;
	unsigned long sent = 0, echoed = 0, mismatched = 0, errors = 0,
		      retrans = 0, missing = 0;
	static uint8_t buf[MAX_DGRAM], want[MAX_DGRAM];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct dg *d;
	uint64_t deadline;
	unsigned total, next = 0, inflight = 0, ndone = 0, low = 0;
	int fd, opt;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		unsigned long v = strtoul(optarg ? optarg : "0", NULL, 10);

		switch (opt) {
		case 'a': addr = optarg; break;
		case 'p': port = (unsigned)v; break;
		case 'n': count = (unsigned)v; break;
		case 'm': max_size = (unsigned)v; break;
		case 'b': big = (unsigned)v; break;
		case 'w': window = v ? (unsigned)v : 1; break;
		case 't': timeout = (unsigned)v; break;
		case 's': seed = (unsigned)v; break;
		default:
			fprintf(stderr, "udp-integrity: bad arguments\n");
			return 2;
		}
	}
	if (!port || inet_pton(AF_INET, addr, &sa.sin_addr) != 1 ||
	    max_size < 8 || max_size > MAX_DGRAM - 1 || count < 8) {
		fprintf(stderr, "udp-integrity: need --addr IPv4 --port P, "
			"--max-size 8..65535, --count >= 8\n");
		return 2;
	}
	sa.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("udp-integrity: socket/connect");
		return 1;
	}
	{
		int sz = 4 << 20;
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	}
	total = count + big;
	d = calloc(total, sizeof(*d));
	if (!d)
		return 1;
	srand(seed);
	/* Sizes: 1..7 first (one at a time), then 8, max_size and random
	 * ones between, then the big ones. */
	for (unsigned i = 0; i < total; i++) {
		if (i < 7)
			d[i].len = i + 1;
		else if (i == 7)
			d[i].len = 8;
		else if (i == 8)
			d[i].len = max_size;
		else if (i < count)
			d[i].len = 8 + (unsigned)rand() % (max_size - 7);
		else
			d[i].len = 1473 + (unsigned)rand() % (8192 - 1472);
	}
	deadline = now_ms() + timeout * 1000ull;

	while (ndone < total && now_ms() < deadline) {
		uint64_t t = now_ms();
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		/* resend what was not echoed in time */
		while (low < next && d[low].done)
			low++;
		for (unsigned i = low; i < next; i++) {
			if (d[i].done || t - d[i].sent_ms < RETRY_MS)
				continue;
			if (d[i].tries >= MAX_TRIES)
				continue;
			fill(want, i, d[i].len);
			if (send(fd, want, d[i].len, 0) < 0)
				errors++;
			d[i].tries++;
			d[i].sent_ms = t;
			retrans++;
		}
		while (next < total && inflight < (next < 7 ? 1u : window)) {
			if (next == 7 && inflight)
				break;
			fill(want, next, d[next].len);
			if (send(fd, want, d[next].len, 0) < 0) {
				if (errno == ENOBUFS || errno == EAGAIN)
					break;
				errors++;
			}
			d[next].tries = 1;
			d[next].sent_ms = t;
			sent++;
			inflight++;
			next++;
			if (next <= 7)
				break;
		}
		if (poll(&pfd, 1, 20) <= 0)
			goto expire;
		while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) >= 0) {
			uint32_t seq;

			if (n < 8) {
				/* the tiny ones have lengths 1..7: seq n-1 */
				if (n < 1 || (size_t)n - 1 >= next) {
					mismatched++;
					continue;
				}
				seq = (uint32_t)n - 1;
			} else {
				memcpy(&seq, buf, 4);
				if (seq >= total || seq < 7 ||
				    (size_t)n != d[seq].len) {
					mismatched++;
					continue;
				}
			}
			fill(want, seq, d[seq].len);
			if (memcmp(buf, want, (size_t)n)) {
				mismatched++;
				continue;
			}
			if (d[seq].done)
				continue;   /* a retransmitted copy */
			d[seq].done = 1;
			echoed++;
			ndone++;
			inflight--;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			errors++;
expire:
		/* give up on the ones out of tries */
		for (unsigned i = low; i < next; i++)
			if (!d[i].done && d[i].tries >= MAX_TRIES &&
			    now_ms() - d[i].sent_ms >= RETRY_MS) {
				d[i].done = 2;
				ndone++;
				inflight--;
			}
	}
	for (unsigned i = 0; i < total; i++)
		missing += d[i].done != 1;
	printf("sent=%lu echoed=%lu mismatched=%lu missing=%lu errors=%lu "
	       "retransmits=%lu\n", sent, echoed, mismatched, missing, errors,
	       retrans);
	free(d);
	close(fd);
	return (mismatched || missing || errors) ? 1 : 0;
}
