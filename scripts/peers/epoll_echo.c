// SPDX-License-Identifier: MIT
/*
 * epoll-echo: the honest baseline for scripts/bench.
 *
 * A classic single-threaded, level-triggered epoll TCP echo server, i.e.
 * what a competent C programmer writes in an afternoon: nonblocking sockets,
 * TCP_NODELAY, one 64 KiB read buffer, write back at once; a partial write
 * parks the remainder in a per-connection pending buffer, and that
 * connection waits for EPOLLOUT (and stops reading) until it is drained.
 *
 *   epoll-echo --addr 127.0.0.1 --port 0
 *
 * Prints "epoll-echo: listening on ADDR:PORT" to stderr once bound (PORT is
 * the real port when --port 0). SIGINT/SIGTERM make it exit 0.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUF_SIZE (64 * 1024)
#define MAX_EVENTS 256

struct conn {
	int fd;
	char *pending;      /* unsent echo bytes, NULL when drained */
	size_t pending_len; /* bytes at pending + pending_off */
	size_t pending_off;
	size_t pending_cap;
	struct conn *prev, *next; /* all live conns, freed at exit */
};

/* epoll data.ptr sentinels for the two non-connection descriptors. */
static char listen_tag, signal_tag;

static struct conn *conns;
static char read_buf[READ_BUF_SIZE];

static void usage(FILE *f)
{
	fprintf(f, "usage: epoll-echo [--addr A] [--port P]\n"
		   "  --addr A   address to bind (default 127.0.0.1)\n"
		   "  --port P   port to bind, 0 = ephemeral (default 0)\n");
}

static void conn_close(struct conn *c)
{
	/* close() drops the fd from the epoll set: it is never dup'ed. */
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c->pending);
	free(c);
}

static int conn_set_events(int ep, struct conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Keep buf[0..len) for later; returns -1 on allocation failure. */
static int conn_park(struct conn *c, const char *buf, size_t len)
{
	if (len > c->pending_cap) {
		char *p = realloc(c->pending, len);

		if (!p)
			return -1;
		c->pending = p;
		c->pending_cap = len;
	}
	memcpy(c->pending, buf, len);
	c->pending_len = len;
	c->pending_off = 0;
	return 0;
}

/*
 * Write buf[0..len); whatever the socket does not take is parked and the
 * connection switches from EPOLLIN to EPOLLOUT. Returns -1 if the
 * connection must be closed.
 */
static int conn_echo(int ep, struct conn *c, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -1;
			if (conn_park(c, buf, len) < 0)
				return -1;
			return conn_set_events(ep, c, EPOLLOUT);
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int conn_on_readable(int ep, struct conn *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, read_buf, sizeof(read_buf), 0);

		if (n == 0)
			return -1; /* peer closed */
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1; /* ECONNRESET and friends */
		}
		if (conn_echo(ep, c, read_buf, (size_t)n) < 0)
			return -1;
		/*
		 * Level-triggered: a short read means the socket is (very
		 * likely) empty, and epoll tells us if not; only a full
		 * buffer is worth an immediate second read. Stop reading
		 * while a remainder is parked.
		 */
		if ((size_t)n < sizeof(read_buf) || c->pending_len)
			return 0;
	}
}

static int conn_on_writable(int ep, struct conn *c)
{
	while (c->pending_len > 0) {
		ssize_t n = send(c->fd, c->pending + c->pending_off,
				 c->pending_len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		c->pending_off += (size_t)n;
		c->pending_len -= (size_t)n;
	}
	return conn_set_events(ep, c, EPOLLIN);
}

static void accept_all(int ep, int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int one = 1;
		struct conn *c;
		struct epoll_event ev;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				/* EMFILE etc.: the backlog keeps it. */
				perror("epoll-echo: accept4");
			return;
		}
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				 sizeof(one));
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			perror("epoll-echo: epoll_ctl");
			close(fd);
			free(c);
			continue;
		}
		c->next = conns;
		if (conns)
			conns->prev = c;
		conns = c;
	}
}

static int listen_on(const char *addr, const char *port, char *host_out,
		     size_t host_len, char *port_out, size_t port_len)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	int fd = -1, one = 1, rc;

	rc = getaddrinfo(addr, port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "epoll-echo: bad address %s:%s: %s\n", addr,
			port, gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0)
		goto fail;
	if (listen(fd, SOMAXCONN) < 0)
		goto fail;
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0)
		goto fail;
	if (getnameinfo((struct sockaddr *)&ss, sslen, host_out,
			(socklen_t)host_len, port_out, (socklen_t)port_len,
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		goto fail;
	freeaddrinfo(res);
	return fd;
fail:
	fprintf(stderr, "epoll-echo: listen on %s:%s: %s\n", addr, port,
		strerror(errno));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *addr = "127.0.0.1", *port = "0";
	char host[NI_MAXHOST], serv[NI_MAXSERV];
	struct epoll_event ev, events[MAX_EVENTS];
	sigset_t mask;
	int lfd = -1, sfd = -1, ep = -1, opt, ret = 1;
	bool stop = false;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			addr = optarg;
			break;
		case 'p':
			port = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	/* Signals arrive as readable data on a signalfd: no async handler. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		goto out;
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		goto out;

	lfd = listen_on(addr, port, host, sizeof(host), serv, sizeof(serv));
	if (lfd < 0)
		goto out_quiet; /* listen_on said why */
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		goto out;
	ev.events = EPOLLIN;
	ev.data.ptr = &listen_tag;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		goto out;
	ev.events = EPOLLIN;
	ev.data.ptr = &signal_tag;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev) < 0)
		goto out;

	fprintf(stderr, "epoll-echo: listening on %s:%s\n", host, serv);
	fflush(stderr);

	while (!stop) {
		int n = epoll_wait(ep, events, MAX_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		for (int i = 0; i < n; i++) {
			void *p = events[i].data.ptr;
			uint32_t e = events[i].events;
			struct conn *c = p;
			int rc;

			if (p == &listen_tag) {
				accept_all(ep, lfd);
				continue;
			}
			if (p == &signal_tag) {
				stop = true;
				continue;
			}
			/*
			 * EPOLLERR/EPOLLHUP surface as an error or EOF from
			 * the next recv/send, so route them there.
			 */
			if (c->pending_len)
				rc = (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) ?
					     conn_on_writable(ep, c) :
					     0;
			else
				rc = conn_on_readable(ep, c);
			if (rc < 0)
				conn_close(c);
		}
	}
	ret = 0;
out:
	if (ret)
		perror("epoll-echo");
out_quiet:
	while (conns)
		conn_close(conns);
	if (ep >= 0)
		close(ep);
	if (lfd >= 0)
		close(lfd);
	if (sfd >= 0)
		close(sfd);
	return ret;
}
