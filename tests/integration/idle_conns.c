// SPDX-License-Identifier: MIT
/*
 * idle-conns: open many connections to an echo server and hold them idle.
 *
 * Opens --conns connections (at most --batch not yet proven accepted at a
 * time), sends one byte on each and waits for its echo, so every connection
 * has really been accepted and served once. Then prints "ready" on stdout
 * and holds them until stdin reaches EOF or SIGTERM/SIGINT/SIGHUP arrives.
 * Before closing it checks which connections the server closed meanwhile
 * and prints "closed_by_server=<n>" on stdout.
 *
 * Exit: 0 held and released, 1 the server failed to accept/echo (or --timeout
 * expired before "ready"), 2 usage/setup errors.
 */
#include "client_common.h"

#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>

#define MAX_CONNS 1000000u
#define EVENT_BATCH 512
#define MAX_REPORTS 20
#define SIGNAL_TAG UINT32_MAX /* epoll tag of the signalfd */

enum conn_state { ST_NEW, ST_RETRY, ST_CONNECTING, ST_ECHO_WAIT, ST_READY, ST_FAILED };

struct conn {
	int64_t retry_at;
	int fd;
	int retries;
	enum conn_state state;
};

struct opts {
	const char *addr;
	unsigned port;
	uint32_t conns;
	uint32_t batch;
	uint32_t timeout_s;
};

static struct conn *conns;
static struct opts o;
static struct sockaddr_in sa;
static int ep, sfd;
static uint32_t next_new, inflight, waiting, ready, failed, retries_total;
static unsigned reports;

static unsigned char probe_byte(uint32_t id)
{
	return (unsigned char)(id * 131u + 7u);
}

static void conn_failed(uint32_t id, const char *why, int err)
{
	struct conn *c = &conns[id];

	if (reports++ < MAX_REPORTS)
		fprintf(stderr, "idle-conns: conn %u: %s%s%s\n", id, why, err ? ": " : "",
			err ? strerror(err) : "");
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->state == ST_CONNECTING || c->state == ST_ECHO_WAIT)
		inflight--;
	c->state = ST_FAILED;
	failed++;
}

static void connect_failed(uint32_t id, int err)
{
	struct conn *c = &conns[id];

	if (!cc_connect_retryable(err, c->retries)) {
		conn_failed(id, "connect", -err);
		return;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->state == ST_CONNECTING)
		inflight--;
	c->retries++;
	retries_total++;
	c->retry_at = cc_now_ms() + cc_backoff_ms(c->retries);
	c->state = ST_RETRY;
	waiting++;
}

static void send_probe(uint32_t id)
{
	struct conn *c = &conns[id];
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = id };
	unsigned char b = probe_byte(id);
	ssize_t n = send(c->fd, &b, 1, MSG_NOSIGNAL);

	if (n != 1) {
		conn_failed(id, "send", n < 0 ? errno : EIO);
		return;
	}
	c->state = ST_ECHO_WAIT;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev)) {
		perror("epoll_ctl(MOD)");
		exit(CC_EXIT_USAGE);
	}
}

static void conn_start(uint32_t id)
{
	struct conn *c = &conns[id];
	struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = id };
	int ret = cc_connect_start(&sa, false, &c->fd);

	if (ret == -EMFILE || ret == -ENFILE) {
		fprintf(stderr, "idle-conns: out of descriptors after %u connections: %s\n", ready,
			strerror(-ret));
		exit(CC_EXIT_USAGE);
	}
	c->state = ST_CONNECTING;
	inflight++;
	if (ret < 0) {
		connect_failed(id, ret);
		return;
	}
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev)) {
		perror("epoll_ctl(ADD)");
		exit(CC_EXIT_USAGE);
	}
	if (ret == 0)
		send_probe(id);
}

static int64_t start_connects(void)
{
	int64_t now = cc_now_ms(), next = INT64_MAX;

	if (waiting) {
		for (uint32_t i = 0; i < next_new; i++) {
			struct conn *c = &conns[i];

			if (c->state != ST_RETRY)
				continue;
			if (c->retry_at > now) {
				if (c->retry_at - now < next)
					next = c->retry_at - now;
				continue;
			}
			if (inflight >= o.batch) {
				next = 1;
				break;
			}
			waiting--;
			conn_start(i);
		}
	}
	while (next_new < o.conns && inflight < o.batch)
		conn_start(next_new++);
	return next;
}

static void handle_event(uint32_t id, uint32_t events)
{
	struct conn *c = &conns[id];
	unsigned char b;
	ssize_t n;
	int err;

	(void)events;
	switch (c->state) {
	case ST_CONNECTING:
		err = cc_connect_result(c->fd);
		if (err)
			connect_failed(id, err);
		else
			send_probe(id);
		return;
	case ST_ECHO_WAIT:
		n = recv(c->fd, &b, 1, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n == 0) {
			conn_failed(id, "server closed the connection before echoing", 0);
			return;
		}
		if (n < 0) {
			conn_failed(id, "recv", errno);
			return;
		}
		if (b != probe_byte(id)) {
			conn_failed(id, "echoed the wrong byte", 0);
			return;
		}
		/* Proven accepted: stop watching it so the hold costs nothing. */
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		c->state = ST_READY;
		inflight--;
		ready++;
		return;
	default:
		return;
	}
}

/* Returns true when a termination signal arrived on the signalfd. */
static bool drain_signals(void)
{
	struct signalfd_siginfo si;

	return read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si);
}

static void hold(void)
{
	struct pollfd pf[2] = { { .fd = STDIN_FILENO, .events = POLLIN },
				{ .fd = sfd, .events = POLLIN } };
	char buf[256];

	for (;;) {
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			return;
		}
		if ((pf[1].revents & POLLIN) && drain_signals())
			return;
		if (pf[0].revents & (POLLNVAL))
			pf[0].fd = -1; /* no stdin: wait for a signal only */
		else if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

			if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
				return;
		}
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: idle-conns --port PORT [--addr 127.0.0.1] [--conns N] [--batch B]\n"
		   "         [--timeout SECONDS]\n"
		   "Prints 'ready' once all N are open and echoed once; holds them until\n"
		   "stdin EOF or SIGTERM/SIGINT/SIGHUP. Exit: 0 ok, 1 server fault, 2 usage.\n");
}

static void parse_opts(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "conns", required_argument, NULL, 'c' },
		{ "batch", required_argument, NULL, 'b' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool have_port = false;
	int ch;

	o = (struct opts){ .addr = "127.0.0.1", .conns = 1000, .batch = 256, .timeout_s = 60 };
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a': o.addr = optarg; break;
		case 'p': o.port = (unsigned)cc_parse_u64("port", optarg, 1, 65535); have_port = true; break;
		case 'c': o.conns = (uint32_t)cc_parse_u64("conns", optarg, 1, MAX_CONNS); break;
		case 'b': o.batch = (uint32_t)cc_parse_u64("batch", optarg, 1, MAX_CONNS); break;
		case 't': o.timeout_s = (uint32_t)cc_parse_u64("timeout", optarg, 1, 86400); break;
		case 'h': usage(stdout); exit(CC_EXIT_OK);
		default: usage(stderr); exit(CC_EXIT_USAGE);
		}
	}
	if (optind != argc || !have_port) {
		usage(stderr);
		exit(CC_EXIT_USAGE);
	}
}

int main(int argc, char **argv)
{
	struct epoll_event evs[EVENT_BATCH], sev = { .events = EPOLLIN, .data.u32 = SIGNAL_TAG };
	uint32_t closed = 0;
	int64_t start, deadline;
	sigset_t mask;

	parse_opts(argc, argv);
	if (cc_make_addr(o.addr, o.port, &sa)) {
		fprintf(stderr, "--addr: not an IPv4 address: %s\n", o.addr);
		return CC_EXIT_USAGE;
	}
	if (cc_raise_nofile((uint64_t)o.conns + 16))
		return CC_EXIT_USAGE;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	conns = calloc(o.conns, sizeof(*conns));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || !conns || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &sev)) {
		perror("setup");
		return CC_EXIT_USAGE;
	}
	for (uint32_t i = 0; i < o.conns; i++)
		conns[i].fd = -1;

	start = cc_now_ms();
	deadline = start + (int64_t)o.timeout_s * 1000;
	while (ready + failed < o.conns) {
		int64_t now, wait_ms = start_connects();
		int got;

		now = cc_now_ms();
		if (now >= deadline) {
			fprintf(stderr,
				"idle-conns: timeout (%u s): %u ready, %u failed, %u in flight, %u waiting to retry, %u not started\n",
				o.timeout_s, ready, failed, inflight, waiting, o.conns - next_new);
			return CC_EXIT_FAIL;
		}
		if (deadline - now < wait_ms)
			wait_ms = deadline - now;
		got = epoll_wait(ep, evs, EVENT_BATCH, (int)wait_ms);
		if (got < 0 && errno != EINTR) {
			perror("epoll_wait");
			return CC_EXIT_USAGE;
		}
		for (int i = 0; i < got; i++) {
			if (evs[i].data.u32 == SIGNAL_TAG) {
				if (drain_signals()) {
					fprintf(stderr, "idle-conns: interrupted with %u ready\n", ready);
					return CC_EXIT_FAIL;
				}
				continue;
			}
			handle_event(evs[i].data.u32, evs[i].events);
		}
	}
	if (failed) {
		fprintf(stderr, "idle-conns: %u of %u connections failed\n", failed, o.conns);
		return CC_EXIT_FAIL;
	}
	fprintf(stderr, "idle-conns: %u connections open and echoed in %.3f s (%u connect retries)\n",
		ready, (double)(cc_now_ms() - start) / 1000, retries_total);
	printf("ready\n");
	fflush(stdout);

	hold();

	for (uint32_t i = 0; i < o.conns; i++) {
		unsigned char b;
		ssize_t n = recv(conns[i].fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

		/* EOF, an error (RST) or unexpected data all mean "not idle and open". */
		if (n >= 0 || errno != EAGAIN)
			closed++;
		close(conns[i].fd);
	}
	printf("closed_by_server=%u\n", closed);
	fflush(stdout);
	return CC_EXIT_OK;
}
