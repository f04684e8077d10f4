/* SPDX-License-Identifier: MIT */
/* coil_conn_sendfile: ordering with other writes, short sends, the CLOSE
 * flag, a file that shrinks, through the fake; then the io_uring splice path
 * for real: an in-process engine on 127.0.0.1 and concurrent clients. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/internal.h"
#include "fake_util.h"

#define FILE_SIZE (3u << 20)
static char file_path[64];
static int file_fd = -1;
static uint8_t *file_data;
static int last_fd;     /* the fd handed to coil by the last request */

static int setup(void **st)
{
	(void)st;
	file_data = malloc(FILE_SIZE);
	stream_fill(file_data, 42, 0, FILE_SIZE);
	strcpy(file_path, "/tmp/coil-sendfile-XXXXXX");
	file_fd = mkstemp(file_path);
	if (file_fd < 0 || write(file_fd, file_data, FILE_SIZE) != FILE_SIZE)
		return -1;
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	close(file_fd);
	unlink(file_path);
	free(file_data);
	return 0;
}

/* 'f': "<" + file[1000, 1000+50000) + ">"; 'F': "[" + whole file + "]" */
static size_t file_data_cb(struct coil_conn *c, const uint8_t *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int fd = open(file_path, O_RDONLY | O_CLOEXEC);

		last_fd = fd;
		if (d[i] == 'f') {
			coil_conn_write(c, "<", 1);
			assert_int_equal(coil_conn_sendfile(c, fd, 1000, 50000,
							    COIL_SENDFILE_CLOSE), 0);
			coil_conn_write_static(c, ">", 1);
		} else if (d[i] == 'F') {
			coil_conn_write(c, "[", 1);
			assert_int_equal(coil_conn_sendfile(c, fd, 0, FILE_SIZE,
							    COIL_SENDFILE_CLOSE), 0);
			coil_conn_write(c, "]", 1);
		} else {
			close(fd);
		}
	}
	return n;
}
static const struct coil_proto_ops file_ops = { .on_data = file_data_cb };

static void test_fake_order_and_short(void **st)
{
	struct coil_service svc = { .sz = sizeof(svc), .ops = &file_ops };
	static uint8_t out[2 * 50002];
	struct coil_fake *f;
	size_t n;
	int id;

	(void)st;
	assert_int_equal(coil_fake_create(NULL, &svc, &f), 0);
	id = coil_fake_connect(f);
	coil_fake_set_send(f, id, 7000, false);
	assert_int_equal(coil_fake_feed(f, id, "ff", 2), 0);
	n = coil_fake_take(f, id, out, sizeof(out));
	assert_int_equal(n, 2 * 50002);
	for (int k = 0; k < 2; k++) {
		uint8_t *p = out + k * 50002;

		assert_int_equal(p[0], '<');
		assert_memory_equal(p + 1, file_data + 1000, 50000);
		assert_int_equal(p[50001], '>');
	}
	/* the CLOSE flag gave the fd back */
	assert_int_equal(fcntl(last_fd, F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	coil_fake_destroy(f);
}

static size_t shrink_cb(struct coil_conn *c, const uint8_t *d, size_t n)
{
	(void)d;
	/* announce more bytes than the file has */
	coil_conn_sendfile(c, file_fd, FILE_SIZE - 10, 100, 0);
	return n;
}
static const struct coil_proto_ops shrink_ops = { .on_data = shrink_cb };

static void test_fake_short_file_aborts(void **st)
{
	struct coil_service svc = { .sz = sizeof(svc), .ops = &shrink_ops };
	struct coil_fake *f;
	int id, reason;
	bool reset;

	(void)st;
	assert_int_equal(coil_fake_create(NULL, &svc, &f), 0);
	id = coil_fake_connect(f);
	assert_int_equal(coil_fake_feed(f, id, "x", 1), 0);
	assert_int_equal(coil_fake_pending(f, id), 10);
	assert_true(coil_fake_closed(f, id, &reason, &reset));
	assert_int_equal(reason, -EIO);
	assert_true(reset);
	/* not ours to close */
	assert_int_equal(fcntl(file_fd, F_GETFD) >= 0, 1);
	coil_fake_destroy(f);
}

static void test_bad_fd(void **st)
{
	struct coil_service svc = { .sz = sizeof(svc), .ops = &file_ops };
	struct coil_fake *f;
	int id;

	(void)st;
	assert_int_equal(coil_fake_create(NULL, &svc, &f), 0);
	id = coil_fake_connect(f);
	assert_int_equal(coil_conn_sendfile(coil_fake_conn(f, id), -1, 0, 1, 0),
			 -EINVAL);
	coil_fake_destroy(f);
}

/* ---- the real engine ---- */

#define CLIENTS 6
static uint16_t port;

static void *client(void *arg)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	uint8_t *buf = malloc(FILE_SIZE + 2);
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	long ok = 0;

	(void)arg;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    write(fd, "F", 1) == 1) {
		while (got < FILE_SIZE + 2) {
			ssize_t r = read(fd, buf + got, FILE_SIZE + 2 - got);

			if (r <= 0)
				break;
			got += (size_t)r;
			/* a slow reader now and then, so sends block */
			if (got < (1u << 20))
				usleep(200);
		}
		ok = got == FILE_SIZE + 2 && buf[0] == '[' &&
		     buf[FILE_SIZE + 1] == ']' &&
		     !memcmp(buf + 1, file_data, FILE_SIZE);
	}
	close(fd);
	free(buf);
	return (void *)ok;
}

static void *engine_thread(void *arg)
{
	return (void *)(long)coil_engine_run(arg);
}

static void run_engine(enum coil_backend_kind be)
{
	struct coil_engine_opts eo = { .sz = sizeof(eo), .cores = 1,
				       .backend = be, .name = "test-sendfile" };
	struct coil_service svc = { .sz = sizeof(svc), .addr = "127.0.0.1",
				    .ops = &file_ops };
	struct coil_engine *eng;
	pthread_t et, ct[CLIENTS];
	void *res;
	int idx;

	assert_int_equal(coil_engine_create(&eo, &eng), 0);
	idx = coil_engine_listen(eng, &svc);
	assert_true(idx >= 0);
	port = coil_engine_port(eng, idx);
	pthread_create(&et, NULL, engine_thread, eng);
	for (int i = 0; i < CLIENTS; i++)
		pthread_create(&ct[i], NULL, client, NULL);
	for (int i = 0; i < CLIENTS; i++) {
		pthread_join(ct[i], &res);
		assert_int_equal((long)res, 1);
	}
	coil_engine_stop(eng);
	pthread_join(et, &res);
	assert_int_equal((long)res, 0);
	coil_engine_destroy(eng);
}

static void test_engine_uring(void **st)
{
	(void)st;
	run_engine(COIL_BACKEND_URING);
}

static void test_engine_epoll(void **st)
{
	(void)st;
	run_engine(COIL_BACKEND_EPOLL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fake_order_and_short),
		cmocka_unit_test(test_fake_short_file_aborts),
		cmocka_unit_test(test_bad_fd),
		cmocka_unit_test(test_engine_uring),
		cmocka_unit_test(test_engine_epoll),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
