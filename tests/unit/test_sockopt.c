/* SPDX-License-Identifier: MIT */
/*
 * Socket options belong to the backends (backend/sock.c): under the fake
 * backend a connection's "fd" is a peer id, so the core must never set an
 * option on it (it used to call setsockopt(TCP_NODELAY) on descriptors
 * 0, 1, 2... of the test process). A real TCP socket placed at the number
 * the fake hands out keeps its options. On io_uring and epoll, accepted
 * and outgoing sockets still get TCP_NODELAY, and a COIL_SERVICE_NAGLE
 * service does not.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "backend/backend.h"

/* TCP_NODELAY of `fd`: 0 or 1, or -errno. */
static int nodelay(int fd)
{
	int v = -1;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) < 0)
		return -errno;
	return v != 0;
}

static size_t sink(struct coil_conn *c, const uint8_t *d, size_t n)
{
	(void)c;
	(void)d;
	return n;
}

static const struct coil_proto_ops sink_ops = { .on_data = sink };

static void test_fake_touches_no_descriptor(void **state)
{
	struct coil_service svc = { .sz = sizeof(svc), .ops = &sink_ops };
	struct coil_fake_opts fo = { .sz = sizeof(fo) };
	struct coil_fake *f;
	int s, n;

	(void)state;
	/* A TCP socket at a number the fake will hand out as a peer id. */
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	n = fcntl(s, F_DUPFD_CLOEXEC, 40);
	assert_true(n >= 40);
	close(s);
	assert_int_equal(nodelay(n), 0);

	fo.max_conns = (unsigned)n + 2;
	assert_int_equal(coil_fake_create(&fo, &svc, &f), 0);
	for (int i = 0; i <= n; i++)
		assert_int_equal(coil_fake_connect(f), i);
	assert_non_null(coil_fake_conn(f, n));
	/* Connection n is open and its "fd" is n: nothing touched ours. */
	assert_int_equal(coil_fake_conn(f, n)->fd, n);
	assert_int_equal(nodelay(n), 0);
	coil_fake_destroy(f);
	assert_int_equal(nodelay(n), 0);
	close(n);
}

/* ---- the kernel backends ---- */

struct seen {
	atomic_int opens;
	atomic_int nodelay;   /* of the first connection: 0, 1 or -errno */
};

static int rec_open(struct coil_conn *c)
{
	struct seen *s = coil_conn_service_data(c);

	/* The connection's socket, as the backend set it up. */
	if (atomic_load(&s->opens) == 0)
		atomic_store(&s->nodelay, nodelay(c->fd));
	atomic_fetch_add(&s->opens, 1);
	coil_conn_close(c);
	return 0;
}

static const struct coil_proto_ops rec_ops = { .on_open = rec_open,
					       .on_data = sink };

static int client_idx;

static void start_connect(struct coil_loop *loop, void *arg)
{
	struct coil_conn *c;

	(void)arg;
	assert_int_equal(coil_loop_connect(loop, client_idx, &c), 0);
}

static void *engine_thread(void *arg)
{
	return (void *)(long)coil_engine_run(arg);
}

static int tcp_connect(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

static void run_backend(enum coil_backend_kind kind)
{
	struct seen plain = { 0 }, nagle = { 0 }, out = { 0 };
	struct coil_engine_opts eo = { .sz = sizeof(eo), .cores = 1,
				       .backend = kind, .bufs = 64,
				       .max_conns = 64, .drain_ms = 500,
				       .loop_start = start_connect };
	struct coil_service s1 = { .sz = sizeof(s1), .addr = "127.0.0.1",
				   .ops = &rec_ops, .data = &plain };
	struct coil_service s2 = { .sz = sizeof(s2), .addr = "127.0.0.1",
				   .ops = &rec_ops, .data = &nagle,
				   .flags = COIL_SERVICE_NAGLE };
	struct coil_service s3 = { .sz = sizeof(s3), .addr = "127.0.0.1",
				   .ops = &rec_ops, .data = &out };
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	struct coil_engine *eng;
	int i1, i2, lfd, c1, c2;
	pthread_t et;
	void *res;

	/* The peer of the outgoing connection: a plain listener. */
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 8), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
	s3.port = ntohs(sin.sin_port);

	assert_int_equal(coil_engine_create(&eo, &eng), 0);
	i1 = coil_engine_listen(eng, &s1);
	i2 = coil_engine_listen(eng, &s2);
	assert_true(i1 >= 0 && i2 >= 0);
	client_idx = coil_engine_client(eng, &s3);
	assert_true(client_idx >= 0);
	pthread_create(&et, NULL, engine_thread, eng);
	c1 = tcp_connect(coil_engine_port(eng, i1));
	c2 = tcp_connect(coil_engine_port(eng, i2));
	for (int ms = 0; ms < 10000; ms++) {
		struct timespec ts = { 0, 1000000 };

		if (atomic_load(&plain.opens) && atomic_load(&nagle.opens) &&
		    atomic_load(&out.opens))
			break;
		nanosleep(&ts, NULL);
	}
	coil_engine_stop(eng);
	pthread_join(et, &res);
	assert_int_equal((long)res, 0);
	coil_engine_destroy(eng);
	close(c1);
	close(c2);
	close(lfd);

	assert_int_equal(atomic_load(&plain.opens), 1);
	assert_int_equal(atomic_load(&nagle.opens), 1);
	assert_int_equal(atomic_load(&out.opens), 1);
	assert_int_equal(atomic_load(&plain.nodelay), 1);  /* accepted */
	assert_int_equal(atomic_load(&nagle.nodelay), 0);  /* NAGLE */
	assert_int_equal(atomic_load(&out.nodelay), 1);    /* connected */
}

static void test_uring_nodelay(void **state)
{
	char why[256];

	(void)state;
	if (coil__uring_probe(why, sizeof(why)) < 0) {
		print_message("io_uring unavailable here: %s\n", why);
		skip();
	}
	run_backend(COIL_BACKEND_URING);
}

static void test_epoll_nodelay(void **state)
{
	(void)state;
	run_backend(COIL_BACKEND_EPOLL);
}

/* A stopping loop quiesces its listeners (coil__sock_listen_quiesce): a
 * handshake begun before stays in the queue to be accepted, a new one gets
 * no answer at all (its SYN is dropped: no reset, and no connection the
 * close would reset once it landed in the queue), and no handshake is
 * counted in progress (coil__sock_listen_pending). */
static void test_listen_quiesce(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	struct pollfd pfd;
	int lfd, c1, c2, a, pending;

	(void)state;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 8), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
	c1 = tcp_connect(ntohs(sin.sin_port));

	assert_int_equal(coil__sock_listen_quiesce(lfd), 0);
	c2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(c2 >= 0);
	assert_int_equal(connect(c2, (struct sockaddr *)&sin, sizeof(sin)), -1);
	assert_int_equal(errno, EINPROGRESS);
	pfd = (struct pollfd){ .fd = c2, .events = POLLOUT };
	assert_int_equal(poll(&pfd, 1, 300), 0);   /* neither up nor refused */
	pending = coil__sock_listen_pending(lfd);
	if (pending < 0)
		print_message("sock_diag unavailable: %s\n", strerror(-pending));
	else
		assert_int_equal(pending, 0);

	a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);   /* c1, queued before */
	assert_true(a >= 0);
	close(a);
	assert_int_equal(accept4(lfd, NULL, NULL, SOCK_CLOEXEC), -1);
	assert_int_equal(errno, EAGAIN);
	close(c2);
	close(c1);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fake_touches_no_descriptor),
		cmocka_unit_test(test_uring_nodelay),
		cmocka_unit_test(test_epoll_nodelay),
		cmocka_unit_test(test_listen_quiesce),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
