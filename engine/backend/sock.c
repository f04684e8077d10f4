/* SPDX-License-Identifier: MIT */
/*
 * Socket options of the kernel-socket backends (io_uring, epoll), set on
 * sockets those backends own: the core never sets an option on c->fd, which
 * is a peer id under the fake backend and not a socket at all on DPDK.
 */
#include "backend.h"
#include "../core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int coil__sock_tcp_opts(int fd, const struct coil_service *svc)
{
	int one = 1;

	if (svc->flags & COIL_SERVICE_NAGLE)
		return 0;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

/* A socket filter on a listener sees each segment from its TCP header on:
 * byte 13 holds the flags. Drop SYNs (no reset: the client retries and
 * finds the port closed once the loop has gone), keep the rest, so the
 * handshakes already begun finish into the accept queue. */
int coil__sock_listen_quiesce(int fd)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x02, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0),
		BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]),
				   .filter = code };

	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog,
		       sizeof(prog)) < 0)
		return -errno;
	return 0;
}

/* SYN_RECV request sockets of `family` on local port `port` (network
 * order), by a sock_diag dump the kernel filters by port; or -errno. */
static int pending_of(int nl, int family, uint16_t port)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req),
			 .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.r = { .sdiag_family = (uint8_t)family,
		       .sdiag_protocol = IPPROTO_TCP,
		       .idiag_states = 1u << TCP_SYN_RECV,
		       .id.idiag_sport = port },
	};
	_Alignas(struct nlmsghdr) char buf[8192];
	int n = 0;

	if (send(nl, &req, sizeof(req), 0) < 0)
		return -errno;
	for (;;) {
		ssize_t len = recv(nl, buf, sizeof(buf), 0);
		struct nlmsghdr *h = (struct nlmsghdr *)buf;

		if (len < 0)
			return errno == EINTR ? -EAGAIN : -errno;
		for (; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
			const struct inet_diag_msg *m = NLMSG_DATA(h);

			if (h->nlmsg_type == NLMSG_DONE)
				return n;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);

				return e->error < 0 ? e->error : -EIO;
			}
			if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(*m)) &&
			    m->id.idiag_sport == port)
				n++;
		}
		if (len == 0)
			return -EIO;
	}
}

int coil__sock_listen_pending(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	uint16_t port;
	int nl, n4, n6;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family == AF_INET)
		port = ((struct sockaddr_in *)&ss)->sin_port;
	else if (ss.ss_family == AF_INET6)
		port = ((struct sockaddr_in6 *)&ss)->sin6_port;
	else
		return 0;
	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return -errno;
	/* An IPv6 listener takes IPv4 clients too: their requests are
	 * IPv4 ones. */
	n4 = pending_of(nl, AF_INET, port);
	n6 = ss.ss_family == AF_INET6 ? pending_of(nl, AF_INET6, port) : 0;
	close(nl);
	if (n4 < 0 || n6 < 0)
		return n4 < 0 ? n4 : n6;
	return n4 + n6;
}

void coil__sock_listen_drain(struct coil__listener *lst, int flags)
{
	int fl;

	if (lst->fd < 0)
		return;
	fl = fcntl(lst->fd, F_GETFL);
	if (fl < 0 || (!(fl & O_NONBLOCK) &&
		       fcntl(lst->fd, F_SETFL, fl | O_NONBLOCK) < 0))
		return;
	/* Bounded by the backlog: the listener takes no new handshake
	 * (coil__sock_listen_quiesce). */
	for (unsigned n = 0; n < 1u << 16; n++) {
		int fd = accept4(lst->fd, NULL, NULL, flags);

		if (fd >= 0) {
			(void)coil__sock_tcp_opts(fd, lst->svc);
			coil__conn_accepted(lst, fd);
		} else if (errno != EINTR && errno != ECONNABORTED) {
			break;
		}
	}
}

void coil__sock_lst_quiesce(struct coil__listener *lst)
{
	int ret = lst->fd >= 0 ? coil__sock_listen_quiesce(lst->fd) : 0;

	if (ret < 0)
		coil__log("loop %u: listener: SO_ATTACH_FILTER: %s (new "
			  "connections may be reset as it closes)",
			  lst->loop->id, strerror(-ret));
}

int coil__sock_lst_pending(struct coil__listener *lst)
{
	return lst->fd >= 0 ? coil__sock_listen_pending(lst->fd) : 0;
}

/* ---- a connection's socket (the kernel backends) ---- */

void coil__sock_shut_wr(struct coil_conn *c)
{
	(void)shutdown(c->fd, SHUT_WR);
}

int coil__sock_error(struct coil_conn *c)
{
	int err = 0;
	socklen_t sl = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
		return 0;
	return err;
}

void coil__sock_close(int fd, bool reset)
{
	if (reset) {
		/* SO_LINGER 0: close(2) sends RST and drops what is unsent */
		struct linger l = { .l_onoff = 1, .l_linger = 0 };

		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	}
	close(fd);
}
