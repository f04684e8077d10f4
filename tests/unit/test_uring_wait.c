/* SPDX-License-Identifier: MIT */
/*
 * io_uring's min-wait coalescing relies on liburing's private SQ fields
 * and on kernel 6.12's io_uring_getevents_arg.min_wait_usec
 * (uring_wait.c: sq_flush, wait_coalesced); every loop probes both at
 * start. Here: the probe's result is in the loop's start-up line; a probe
 * that fails (forced with coil__uring_no_min_wait) says why in a log line
 * of its own and the loop serves with liburing's plain waits; with
 * coalescing off (COIL_COALESCE_OFF) nothing is probed. Bytes echo intact in every case,
 * over several connections at once so turns find batches to coalesce.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <liburing.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/internal.h"
#include "backend/backend.h"
#include "fake_util.h"

#define CONNS 8
#define MSGS 300
#define MSG 200

static char features[512];

static size_t echo(struct coil_conn *c, const uint8_t *d, size_t n)
{
	coil_conn_write_ref(c, d, n);
	return n;
}

static const struct coil_proto_ops echo_ops = { .on_data = echo };

static void loop_started(struct coil_loop *loop, void *arg)
{
	(void)arg;
	snprintf(features, sizeof(features), "%s", loop->be_features);
}

static void *engine_thread(void *arg)
{
	return (void *)(long)coil_engine_run(arg);
}

/* CONNS clients, each MSGS request/reply rounds of MSG bytes, in step so
 * the server sees several completions per turn. Returns bytes verified. */
static size_t echo_rounds(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 5 };
	int fd[CONNS];
	uint8_t out[MSG], in[MSG];
	size_t ok = 0;

	for (int i = 0; i < CONNS; i++) {
		fd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(fd[i] >= 0);
		assert_int_equal(setsockopt(fd[i], SOL_SOCKET, SO_RCVTIMEO,
					    &tv, sizeof(tv)), 0);
		assert_int_equal(connect(fd[i], (struct sockaddr *)&sin,
					 sizeof(sin)), 0);
	}
	for (int m = 0; m < MSGS; m++) {
		for (int i = 0; i < CONNS; i++) {
			stream_fill(out, (uint32_t)i, (uint64_t)m * MSG, MSG);
			assert_int_equal(send(fd[i], out, MSG, MSG_NOSIGNAL),
					 MSG);
		}
		for (int i = 0; i < CONNS; i++) {
			size_t got = 0;

			while (got < MSG) {
				ssize_t r = recv(fd[i], in + got, MSG - got, 0);

				if (r < 0 && errno == EINTR)
					continue;   /* the engine's signals */
				if (r <= 0)
					printf("conn %d msg %d: recv %zd "
						    "(%s) after %zu bytes\n",
						    i, m, r, strerror(errno),
						    got);
				assert_true(r > 0);
				got += (size_t)r;
			}
			assert_int_equal(stream_check(in, (uint32_t)i,
						      (uint64_t)m * MSG, MSG),
					 -1);
			ok += MSG;
		}
	}
	for (int i = 0; i < CONNS; i++)
		close(fd[i]);
	return ok;
}

static int saved_stderr = -1;

/* Put stderr back (also after a failed assertion: the teardown). */
static void restore_stderr(void)
{
	if (saved_stderr < 0)
		return;
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	saved_stderr = -1;
}

static int teardown(void **state)
{
	(void)state;
	restore_stderr();
	coil__uring_no_min_wait = false;
	return 0;
}

/* Run an echo engine on io_uring; its stderr goes to *log (malloc'd). */
static void run(unsigned coalesce_us, char **log)
{
	struct coil_engine_opts eo = { .sz = sizeof(eo), .cores = 1,
				       .backend = COIL_BACKEND_URING,
				       .coalesce_us = coalesce_us,
				       .drain_ms = 500,
				       .loop_start = loop_started };
	struct coil_service svc = { .sz = sizeof(svc), .addr = "127.0.0.1",
				    .ops = &echo_ops };
	char path[] = "/tmp/coil-test-uring-wait-XXXXXX";
	int tmp = mkstemp(path);
	struct coil_engine *eng;
	pthread_t et;
	void *res;
	long size;
	FILE *f;
	int idx;

	assert_true(tmp >= 0);
	unlink(path);
	fflush(stderr);
	saved_stderr = dup(2);
	assert_true(saved_stderr >= 0);
	assert_true(dup2(tmp, 2) == 2);

	features[0] = 0;
	assert_int_equal(coil_engine_create(&eo, &eng), 0);
	idx = coil_engine_listen(eng, &svc);
	assert_true(idx >= 0);
	pthread_create(&et, NULL, engine_thread, eng);
	assert_int_equal(echo_rounds(coil_engine_port(eng, idx)),
			 (size_t)CONNS * MSGS * MSG);
	coil_engine_stop(eng);
	pthread_join(et, &res);
	coil_engine_destroy(eng);

	restore_stderr();
	assert_int_equal((long)res, 0);
	f = fdopen(tmp, "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	*log = calloc(1, (size_t)size + 1);
	assert_non_null(*log);
	assert_int_equal(fread(*log, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	fputs(*log, stderr);   /* still shown with the test's output */
}

static bool kernel_has_min_wait(void)
{
	struct io_uring_params p;
	struct io_uring ring;

	memset(&p, 0, sizeof(p));
	if (io_uring_queue_init_params(2, &ring, &p))
		return false;
	io_uring_queue_exit(&ring);
	return p.features & (1u << 15);   /* IORING_FEAT_MIN_TIMEOUT, 6.12 */
}

static int setup(void **state)
{
	char why[256];

	(void)state;
	if (coil__uring_probe(why, sizeof(why)) < 0) {
		print_message("io_uring unavailable here: %s\n", why);
		return -1;
	}
	return 0;
}

static void test_probe_passes(void **state)
{
	char *log;

	(void)state;
	coil__uring_no_min_wait = false;
	run(0, &log);   /* 0: the default, 20 µs */
	if (kernel_has_min_wait()) {
		assert_non_null(strstr(features, "min-wait coalescing"));
		assert_null(strstr(log, "min-wait coalescing off"));
	} else {
		assert_non_null(strstr(features, "plain wait (kernel before "
						 "6.12"));
	}
	assert_non_null(strstr(log, features));   /* in the start line */
	free(log);
}

static void test_probe_fails_plain_wait(void **state)
{
	char *log;

	(void)state;
	coil__uring_no_min_wait = true;
	run(0, &log);
	coil__uring_no_min_wait = false;
	assert_non_null(strstr(features, "plain wait (forced off"));
	if (kernel_has_min_wait())
		assert_non_null(strstr(log, "loop 0: io_uring: min-wait "
					    "coalescing off, plain waits: "
					    "forced off"));
	free(log);
}

static void test_coalescing_off(void **state)
{
	char *log;

	(void)state;
	coil__uring_no_min_wait = true;   /* not even asked */
	run(COIL_COALESCE_OFF, &log);
	coil__uring_no_min_wait = false;
	assert_non_null(strstr(features, "plain wait (coalescing off)"));
	assert_null(strstr(log, "min-wait coalescing off"));
	free(log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_probe_passes, teardown),
		cmocka_unit_test_teardown(test_probe_fails_plain_wait, teardown),
		cmocka_unit_test_teardown(test_coalescing_off, teardown),
	};

	if (setup(NULL))
		return 77;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
