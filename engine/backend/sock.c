/* SPDX-License-Identifier: MIT */
/*
 * Socket options of the kernel-socket backends (io_uring, epoll), set on
 * sockets those backends own: the core never sets an option on c->fd, which
 * is a peer id under the fake backend and not a socket at all on DPDK.
 */
#include "backend.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

int coil__sock_tcp_opts(int fd, const struct coil_service *svc)
{
	int one = 1;

	if (svc->flags & COIL_SERVICE_NAGLE)
		return 0;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}
