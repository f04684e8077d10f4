// SPDX-License-Identifier: MIT
/*
 * Helpers shared by the integration-test clients (echo-integrity,
 * idle-conns): clock, fd limit, option parsing and nonblocking TCP connect
 * with retry classification. Header-only (static inline) so each client
 * stays one .c file.
 */
#ifndef COIL_TESTS_INTEGRATION_CLIENT_COMMON_H
#define COIL_TESTS_INTEGRATION_CLIENT_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Exit codes shared by the clients. */
#define CC_EXIT_OK 0
#define CC_EXIT_FAIL 1	/* the server misbehaved (lost/corrupt data, stall) */
#define CC_EXIT_USAGE 2 /* bad options or local setup problem */

/* Retries for one connection before it counts as failed. */
#define CC_CONNECT_RETRIES 20
#define CC_REFUSED_RETRIES 3

/* Monotonic milliseconds. */
static inline int64_t cc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Raise RLIMIT_NOFILE's soft limit to the hard limit and check that at
 * least @need descriptors fit. Returns 0 or -errno (-EMFILE: too few).
 */
static inline int cc_raise_nofile(uint64_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			return -errno;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		fprintf(stderr, "need %llu descriptors, RLIMIT_NOFILE hard limit is %llu\n",
			(unsigned long long)need, (unsigned long long)rl.rlim_cur);
		return -EMFILE;
	}
	return 0;
}

/* Parse an unsigned decimal option in [lo, hi]; exits with usage on error. */
static inline uint64_t cc_parse_u64(const char *name, const char *s, uint64_t lo, uint64_t hi)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi) {
		fprintf(stderr, "--%s: expected an integer in [%llu, %llu], got '%s'\n", name,
			(unsigned long long)lo, (unsigned long long)hi, s);
		exit(CC_EXIT_USAGE);
	}
	return v;
}

/* Build an IPv4 address; returns 0 or -EINVAL. */
static inline int cc_make_addr(const char *addr, unsigned port, struct sockaddr_in *out)
{
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, addr, &out->sin_addr) == 1 ? 0 : -EINVAL;
}

/*
 * Start a nonblocking connect. On success *fd is the socket and the
 * return is 0 (connected) or 1 (in progress: wait for EPOLLOUT, then
 * cc_connect_result()). On failure returns -errno and no socket is left open.
 */
static inline int cc_connect_start(const struct sockaddr_in *sa, bool nodelay, int *fd)
{
	int s, one = 1, ret;

	s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (nodelay)
		(void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ret = connect(s, (const struct sockaddr *)sa, sizeof(*sa));
	if (ret == 0) {
		*fd = s;
		return 0;
	}
	if (errno == EINPROGRESS) {
		*fd = s;
		return 1;
	}
	ret = -errno;
	close(s);
	return ret;
}

/* Outcome of an in-progress connect once the socket is writable: 0 or -errno. */
static inline int cc_connect_result(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
		return -errno;
	return -err;
}

/*
 * Whether a failed connect deserves attempt number @retries + 1. A full
 * listen backlog or transiently exhausted local ports/buffers show up as
 * these on loopback; "refused" gets only a few tries since it normally
 * means nothing listens at all.
 */
static inline bool cc_connect_retryable(int err, int retries)
{
	switch (-err) {
	case ECONNREFUSED:
		return retries < CC_REFUSED_RETRIES;
	case EAGAIN:
	case EADDRNOTAVAIL:
	case ECONNRESET:
	case ETIMEDOUT:
	case ENOBUFS:
	case EINTR:
		return retries < CC_CONNECT_RETRIES;
	default:
		return false;
	}
}

/* Backoff before retry number @n (1-based): 5 ms doubling, capped at 500 ms. */
static inline int64_t cc_backoff_ms(int n)
{
	int64_t ms = 5;

	while (--n > 0 && ms < 500)
		ms *= 2;
	return ms < 500 ? ms : 500;
}

#endif
