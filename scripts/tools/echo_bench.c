// SPDX-License-Identifier: MIT
/*
 * coil-echobench: closed-loop load client for TCP echo servers.
 *
 *   coil-echobench --addr 127.0.0.1 --port P --conns N --size BYTES \
 *                  --depth D --duration SECS [--warmup SECS] [--cpu-pid PID]
 *
 * Opens N connections; each keeps D messages of BYTES bytes outstanding:
 * it sends D messages, then one more each time BYTES echoed bytes have come
 * back. Every connection sends its own slice of a pseudo-random pattern and
 * every echoed byte is compared with what was sent, so a lost, duplicated,
 * reordered or corrupted byte is an error, not a faster number.
 *
 * Single thread, level-triggered epoll, nonblocking sockets, TCP_NODELAY.
 * Per ready connection: one recv() into a 64 KiB buffer and at most one
 * send() carrying every message that is now due, so the client costs about
 * as many syscalls as the server and is not the bottleneck.
 *
 * After --warmup seconds (default 1) it counts completed messages for
 * --duration seconds and prints one line on stdout:
 *
 *   msgs=<count> secs=<float> rate=<msgs/s> errors=<n>
 *
 * With --cpu-pid PID the same line ends with
 *
 *   cpu_us=<n> cpu_us_per_msg=<float>
 *
 * the CPU time (user + system, all threads) that process PID spent in
 * exactly the measured window: it is sampled at the same instants as the
 * message counts, so warmup, start-up and shutdown are all excluded.
 *
 * Exit status: 0 on success; 1 on any connection error or echo mismatch (or
 * if nothing completed); 2 on bad usage or set-up failure.
 * Latency mode is simply --conns 1 --depth 1: rate is round trips/s.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define RECV_BUF_SIZE (64 * 1024)
#define SEND_CHUNK (256 * 1024) /* most bytes handed to one send() */
/*
 * The pattern repeats every PATTERN_PERIOD bytes; a prime, so message
 * boundaries never line up with it. The buffer carries SEND_CHUNK extra
 * bytes (a copy of its start) so that any slice of up to SEND_CHUNK bytes
 * starting inside the period is contiguous.
 */
#define PATTERN_PERIOD 65521u
#define MAX_EVENTS 1024
#define MAX_ERRORS_SHOWN 10

struct bconn {
	int fd;
	bool dead;
	bool want_out; /* EPOLLOUT is registered: a send() came up short */
	uint32_t base; /* this connection's offset into the pattern */
	uint64_t sent;  /* bytes sent */
	uint64_t recvd; /* bytes echoed back and verified */
};

struct bench {
	int ep;
	size_t size;
	uint64_t depth;
	struct bconn *conns;
	int nconns;
	int alive;
	uint64_t completed; /* messages fully echoed, all conns */
	uint64_t errors;
	unsigned char *pattern;
	unsigned char *rbuf;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: coil-echobench --port P [--addr A] [--conns N] [--size B]\n"
		"                      [--depth D] [--duration S] [--warmup S]\n"
		"                      [--cpu-pid PID]\n"
		"  --addr A       server address (default 127.0.0.1)\n"
		"  --port P       server port (required)\n"
		"  --conns N      connections (default 1)\n"
		"  --size B       message size in bytes (default 64)\n"
		"  --depth D      messages outstanding per connection (default 1)\n"
		"  --duration S   measured seconds (default 3)\n"
		"  --warmup S     seconds run before measuring (default 1)\n"
		"  --cpu-pid PID  also report PID's CPU time in the window\n");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void conn_error(struct bench *b, struct bconn *c, const char *fmt, ...)
{
	va_list ap;

	if (b->errors < MAX_ERRORS_SHOWN) {
		fprintf(stderr, "coil-echobench: conn %d: ", (int)(c - b->conns));
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	b->errors++;
	if (!c->dead) {
		close(c->fd);
		c->fd = -1;
		c->dead = true;
		b->alive--;
	}
}

/* Send every byte now due, up to the socket's appetite. */
static void conn_flush(struct bench *b, struct bconn *c)
{
	uint64_t target = (c->recvd / b->size + b->depth) * b->size;
	bool blocked = false;

	while (c->sent < target) {
		uint64_t want = target - c->sent;
		size_t off = (size_t)((c->base + c->sent) % PATTERN_PERIOD);
		size_t len = want > SEND_CHUNK ? SEND_CHUNK : (size_t)want;
		ssize_t n = send(c->fd, b->pattern + off, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				blocked = true;
				break;
			}
			conn_error(b, c, "send: %s", strerror(errno));
			return;
		}
		c->sent += (uint64_t)n;
		if ((size_t)n < len) {
			/* Short: the socket is full, don't ask again now. */
			blocked = c->sent < target;
			break;
		}
	}
	if (blocked != c->want_out) {
		struct epoll_event ev = {
			.events = EPOLLIN | (blocked ? EPOLLOUT : 0),
			.data.ptr = c,
		};

		if (epoll_ctl(b->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
			conn_error(b, c, "epoll_ctl: %s", strerror(errno));
			return;
		}
		c->want_out = blocked;
	}
}

/* One recv(), verified against the pattern. Returns false if c died. */
static bool conn_read(struct bench *b, struct bconn *c)
{
	ssize_t n;
	size_t off;
	uint64_t before;

	do
		n = recv(c->fd, b->rbuf, RECV_BUF_SIZE, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return true;
		conn_error(b, c, "recv: %s", strerror(errno));
		return false;
	}
	if (n == 0) {
		conn_error(b, c, "server closed the connection "
				 "(sent %" PRIu64 ", echoed %" PRIu64 ")",
			   c->sent, c->recvd);
		return false;
	}
	if (c->recvd + (uint64_t)n > c->sent) {
		conn_error(b, c, "echoed %" PRIu64 " bytes but sent only "
				 "%" PRIu64,
			   c->recvd + (uint64_t)n, c->sent);
		return false;
	}
	off = (size_t)((c->base + c->recvd) % PATTERN_PERIOD);
	if (memcmp(b->rbuf, b->pattern + off, (size_t)n) != 0) {
		size_t i = 0;

		while (b->rbuf[i] == b->pattern[off + i])
			i++;
		conn_error(b, c, "echo mismatch at stream byte %" PRIu64
				 ": got 0x%02x, sent 0x%02x",
			   c->recvd + i, b->rbuf[i], b->pattern[off + i]);
		return false;
	}
	before = c->recvd / b->size;
	c->recvd += (uint64_t)n;
	b->completed += c->recvd / b->size - before;
	return true;
}

/*
 * CPU time of process pid (all threads, user + system) in microseconds,
 * or -1. The process CPU clock is the same quantity as utime + stime in
 * /proc/PID/stat, but in nanoseconds instead of clock ticks (10 ms at the
 * usual CLK_TCK of 100): the ticks would put ~1% noise on a 1 s window.
 * /proc/PID/stat remains the fallback.
 */
static int64_t cpu_us_of(pid_t pid)
{
	clockid_t cid;
	struct timespec ts;
	char buf[1024], *p;
	unsigned long long ut, st;
	long tck;
	FILE *f;
	size_t n;

	if (clock_getcpuclockid(pid, &cid) == 0 &&
	    clock_gettime(cid, &ts) == 0)
		return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;

	snprintf(buf, sizeof(buf), "/proc/%d/stat", (int)pid);
	f = fopen(buf, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields 14 and 15, counted after the ')' that ends comm (field 2). */
	p = strrchr(buf, ')');
	tck = sysconf(_SC_CLK_TCK);
	if (!p || tck <= 0 ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		   &ut, &st) != 2)
		return -1;
	return (int64_t)((ut + st) * 1000000ull / (unsigned long long)tck);
}

static int connect_one(const struct addrinfo *ai)
{
	struct timeval tv = { .tv_sec = 5 };
	int fd, one = 1, fl;

	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* A blocking connect, bounded: SO_SNDTIMEO applies to connect(). */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		goto fail;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

static bool parse_num(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_int(const char *s, double min, double max, double *out)
{
	return parse_num(s, min, max, out) && *out == (double)(long long)*out;
}

/* Let the process open as many sockets as the hard limit allows. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "conns", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 's' },
		{ "depth", required_argument, NULL, 'd' },
		{ "duration", required_argument, NULL, 't' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "cpu-pid", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
	};
	struct addrinfo *ai = NULL;
	struct epoll_event events[MAX_EVENTS];
	struct bench b = { .ep = -1, .size = 64, .depth = 1, .nconns = 1 };
	const char *addr = "127.0.0.1", *port = NULL;
	double duration = 3, warmup = 1, v;
	double t_start, t_mark, t0 = 0, t1 = 0;
	uint64_t msgs0 = 0, msgs1 = 0;
	int64_t cpu0 = -1, cpu1 = -1;
	pid_t cpu_pid = 0;
	bool measuring = false;
	int opt, rc, ret = 2;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		bool ok = true;

		switch (opt) {
		case 'a':
			addr = optarg;
			break;
		case 'p':
			port = optarg;
			break;
		case 'c':
			ok = parse_int(optarg, 1, 1000000, &v);
			b.nconns = (int)v;
			break;
		case 's':
			ok = parse_int(optarg, 1, 1 << 30, &v);
			b.size = (size_t)v;
			break;
		case 'd':
			ok = parse_int(optarg, 1, 1 << 20, &v);
			b.depth = (uint64_t)v;
			break;
		case 't':
			ok = parse_num(optarg, 0.001, 86400, &duration);
			break;
		case 'w':
			ok = parse_num(optarg, 0, 86400, &warmup);
			break;
		case 'P':
			ok = parse_int(optarg, 1, 1 << 30, &v);
			cpu_pid = (pid_t)v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			ok = false;
			break;
		}
		if (!ok) {
			if (opt != '?')
				fprintf(stderr, "coil-echobench: bad value "
						"'%s'\n",
					optarg);
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !port) {
		usage(stderr);
		return 2;
	}
	if (cpu_pid && cpu_us_of(cpu_pid) < 0) {
		fprintf(stderr, "coil-echobench: cannot read CPU time of pid "
				"%d\n",
			(int)cpu_pid);
		return 2;
	}

	rc = getaddrinfo(addr, port, &hints, &ai);
	if (rc != 0) {
		fprintf(stderr, "coil-echobench: bad address %s:%s: %s\n", addr,
			port, gai_strerror(rc));
		return 2;
	}
	raise_nofile();
	b.conns = calloc((size_t)b.nconns, sizeof(*b.conns));
	b.pattern = malloc(PATTERN_PERIOD + SEND_CHUNK);
	b.rbuf = malloc(RECV_BUF_SIZE);
	b.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!b.conns || !b.pattern || !b.rbuf || b.ep < 0) {
		perror("coil-echobench: setup");
		goto out;
	}
	/* xorshift32: cheap bytes with no short period. */
	{
		uint32_t x = 0x9e3779b9u;

		for (size_t i = 0; i < PATTERN_PERIOD; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			b.pattern[i] = (unsigned char)(x >> 24);
		}
		for (size_t i = PATTERN_PERIOD; i < PATTERN_PERIOD + SEND_CHUNK;
		     i++)
			b.pattern[i] = b.pattern[i - PATTERN_PERIOD];
	}

	for (int i = 0; i < b.nconns; i++) {
		struct bconn *c = &b.conns[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

		c->base = (uint32_t)(((uint64_t)i * 7919u) % PATTERN_PERIOD);
		c->fd = connect_one(ai);
		if (c->fd < 0) {
			fprintf(stderr, "coil-echobench: connect %s:%s (conn %d): "
					"%s\n",
				addr, port, i, strerror(errno));
			/* Close only the ones opened so far. */
			b.nconns = i;
			goto out;
		}
		if (epoll_ctl(b.ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
			perror("coil-echobench: epoll_ctl");
			b.nconns = i + 1;
			goto out;
		}
		b.alive++;
	}

	t_start = now_s();
	t_mark = t_start + warmup;
	if (warmup <= 0) {
		measuring = true;
		t0 = t_start;
		msgs0 = 0;
		cpu0 = cpu_pid ? cpu_us_of(cpu_pid) : 0;
		t_mark = t_start + duration;
	}
	for (int i = 0; i < b.nconns; i++)
		conn_flush(&b, &b.conns[i]);

	for (;;) {
		double t = now_s();
		int timeout_ms, n;

		if (t >= t_mark) {
			if (!measuring) {
				/* Warmup over: the window starts now. */
				cpu0 = cpu_pid ? cpu_us_of(cpu_pid) : 0;
				msgs0 = b.completed;
				t0 = now_s();
				measuring = true;
				t_mark = t0 + duration;
				continue;
			}
			cpu1 = cpu_pid ? cpu_us_of(cpu_pid) : 0;
			msgs1 = b.completed;
			t1 = now_s();
			break;
		}
		if (b.alive == 0 && b.errors) {
			/* Nothing left to measure: end the window now. */
			if (!measuring) {
				cpu0 = cpu_pid ? cpu_us_of(cpu_pid) : 0;
				msgs0 = b.completed;
				t0 = now_s();
			}
			cpu1 = cpu_pid ? cpu_us_of(cpu_pid) : 0;
			msgs1 = b.completed;
			t1 = now_s();
			break;
		}
		/* Round up so that we never spin on a sub-ms remainder. */
		timeout_ms = (int)((t_mark - t) * 1000.0) + 1;
		n = epoll_wait(b.ep, events, MAX_EVENTS, timeout_ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("coil-echobench: epoll_wait");
			goto out;
		}
		for (int i = 0; i < n; i++) {
			struct bconn *c = events[i].data.ptr;

			if (c->dead)
				continue;
			if ((events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) &&
			    !conn_read(&b, c))
				continue;
			conn_flush(&b, c);
		}
	}
	{
		double secs = t1 - t0;
		uint64_t msgs = msgs1 - msgs0;
		double rate = secs > 0 ? (double)msgs / secs : 0;

		printf("msgs=%" PRIu64 " secs=%.6f rate=%.1f errors=%" PRIu64,
		       msgs, secs, rate, b.errors);
		if (cpu_pid) {
			int64_t cpu = (cpu0 >= 0 && cpu1 >= cpu0) ? cpu1 - cpu0 : -1;

			printf(" cpu_us=%" PRId64 " cpu_us_per_msg=%.4f", cpu,
			       (cpu >= 0 && msgs) ? (double)cpu / (double)msgs :
						    -1.0);
		}
		printf("\n");
		fflush(stdout);
		if (b.errors > MAX_ERRORS_SHOWN)
			fprintf(stderr, "coil-echobench: %" PRIu64 " more errors "
					"not shown\n",
				b.errors - MAX_ERRORS_SHOWN);
		if (b.errors)
			ret = 1;
		else if (msgs == 0) {
			fprintf(stderr, "coil-echobench: no message completed "
					"in the window\n");
			ret = 1;
		} else {
			ret = 0;
		}
	}
out:
	for (int i = 0; b.conns && i < b.nconns; i++)
		if (!b.conns[i].dead && b.conns[i].fd >= 0)
			close(b.conns[i].fd);
	if (b.ep >= 0)
		close(b.ep);
	free(b.conns);
	free(b.pattern);
	free(b.rbuf);
	freeaddrinfo(ai);
	return ret;
}
