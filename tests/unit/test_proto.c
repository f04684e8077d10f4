/* SPDX-License-Identifier: MIT */
/* The protocol API through the fake backend: open/data/close callbacks,
 * carried input, pause/resume, idle timeout on the fake clock, EOF with
 * output pending, resets, buffer exhaustion without loss, input limits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "fake_util.h"

/* A line protocol: answers each complete "\n"-terminated line with
 * "<len>:<line>\n"; "quit" closes. It records its callbacks. */
struct lstate {
	int opened;
	int lines;
};
static int closes, last_reason, close_peer_rc;

static int line_open(struct coil_conn *c)
{
	struct lstate *s = coil_conn_state(c);

	assert_int_equal(s->opened, 0);  /* state starts zeroed */
	s->opened = 1;
	return 0;
}

static size_t line_data(struct coil_conn *c, const uint8_t *d, size_t n)
{
	struct lstate *s = coil_conn_state(c);
	size_t used = 0;

	for (;;) {
		const uint8_t *nl = memchr(d + used, '\n', n - used);
		char hdr[32];
		size_t len;

		if (!nl)
			return used;  /* keep the partial line */
		len = (size_t)(nl - (d + used));
		if (len == 4 && !memcmp(d + used, "quit", 4)) {
			coil_conn_write(c, "bye\n", 4);
			coil_conn_close(c);
			return n;
		}
		snprintf(hdr, sizeof(hdr), "%zu:", len);
		coil_conn_write(c, hdr, strlen(hdr));
		coil_conn_write_ref(c, d + used, len + 1);
		s->lines++;
		used += len + 1;
	}
}

static void line_close(struct coil_conn *c, int reason)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	close_peer_rc = coil_conn_peer(c, &ss, &sl);
	closes++;
	last_reason = reason;
}

static const struct coil_proto_ops line_ops = {
	.on_open = line_open,
	.on_data = line_data,
	.on_close = line_close,
};

static struct coil_fake *mk(unsigned bufs, unsigned buf_size, unsigned idle,
			    size_t max_input)
{
	struct coil_service svc = {
		.sz = sizeof(svc),
		.ops = &line_ops,
		.state_size = sizeof(struct lstate),
		.idle_timeout_ms = idle,
		.max_input = max_input,
	};
	struct coil_fake_opts fo = { .sz = sizeof(fo), .bufs = bufs,
				     .buf_size = buf_size };
	struct coil_fake *f;

	closes = 0;
	last_reason = 12345;
	assert_int_equal(coil_fake_create(&fo, &svc, &f), 0);
	return f;
}

static void take_str(struct coil_fake *f, int id, char *out, size_t cap)
{
	size_t n = coil_fake_take(f, id, out, cap - 1);
	out[n] = 0;
}

static void test_lines_split_anywhere(void **st)
{
	struct coil_fake *f = mk(8, 64, 0, 0);
	const char *msg = "hello\nworld, this line is longer than one receive "
			  "buffer of 64 bytes for sure\nx\n";
	char out[512];
	int id;

	(void)st;
	id = coil_fake_connect(f);
	assert_true(id >= 0);
	/* one byte at a time: every split point */
	for (size_t i = 0; i < strlen(msg); i++)
		assert_int_equal(coil_fake_feed(f, id, msg + i, 1), 0);
	take_str(f, id, out, sizeof(out));
	assert_string_equal(out,
			    "5:hello\n71:world, this line is longer than one "
			    "receive buffer of 64 bytes for sure\n1:x\n");
	assert_int_equal(((struct lstate *)coil_conn_state(
				  coil_fake_conn(f, id)))->lines, 3);
	/* all at once, crossing buffers */
	assert_int_equal(coil_fake_feed(f, id, msg, strlen(msg)), 0);
	take_str(f, id, out, sizeof(out));
	assert_int_equal(strlen(out), 8 + 75 + 4);
	assert_int_equal(coil_fake_free_bufs(f), 8);
	coil_fake_destroy(f);
	assert_int_equal(closes, 1);
}

static void test_close_flushes_first(void **st)
{
	struct coil_fake *f = mk(8, 256, 0, 0);
	char out[64];
	int reason;
	bool reset;
	int id;

	(void)st;
	id = coil_fake_connect(f);
	coil_fake_set_send(f, id, 2, false);   /* tiny short sends */
	assert_int_equal(coil_fake_feed(f, id, "a\nquit\nignored\n", 15), 0);
	take_str(f, id, out, sizeof(out));
	assert_string_equal(out, "1:a\nbye\n");
	assert_true(coil_fake_closed(f, id, &reason, &reset));
	assert_int_equal(reason, COIL_CLOSE_LOCAL);
	assert_false(reset);
	assert_int_equal(closes, 1);
	assert_int_equal(last_reason, COIL_CLOSE_LOCAL);
	assert_null(coil_fake_conn(f, id));
	assert_int_equal(coil_fake_feed(f, id, "x", 1), -ENOTCONN);
	coil_fake_destroy(f);
	assert_int_equal(closes, 1);
}

/* Lingering close: a peer that keeps sending after the server closed gets
 * the output, then a FIN; its further input is read and dropped (no reset
 * that could destroy the unread output) until the linger time is over. */
static void test_linger_close(void **st)
{
	struct coil_fake *f = mk(8, 256, 0, 0);
	static char junk[64 << 10];
	char out[64];
	int reason;
	bool reset;
	int id, big;

	(void)st;
	memset(junk, 'j', sizeof(junk));
	id = coil_fake_connect(f);
	coil_fake_set_stubborn(f, id, true);
	assert_int_equal(coil_fake_feed(f, id, "a\nquit\nmore\n", 13), 0);
	take_str(f, id, out, sizeof(out));
	assert_string_equal(out, "1:a\nbye\n");
	assert_true(coil_fake_shut(f, id));
	assert_false(coil_fake_closed(f, id, NULL, NULL));
	assert_int_equal(closes, 0);
	/* still reading, to discard: nothing answered */
	assert_int_equal(coil_fake_feed(f, id, junk, 1000), 0);
	assert_int_equal(coil_fake_take(f, id, out, sizeof(out)), 0);
	assert_false(coil_fake_closed(f, id, NULL, NULL));
	coil_fake_advance(f, 1999);
	assert_false(coil_fake_closed(f, id, NULL, NULL));
	coil_fake_advance(f, 2);
	coil_fake_settle(f);
	assert_true(coil_fake_closed(f, id, &reason, &reset));
	assert_int_equal(reason, COIL_CLOSE_LOCAL);
	assert_false(reset);
	assert_int_equal(closes, 1);

	/* A peer that floods instead is cut off after COIL__LINGER_MAX
	 * (1 MiB). */
	big = coil_fake_connect(f);
	coil_fake_set_stubborn(f, big, true);
	assert_int_equal(coil_fake_feed(f, big, "quit\n", 5), 0);
	assert_true(coil_fake_shut(f, big));
	for (int i = 0; i < 17 && !coil_fake_closed(f, big, NULL, NULL); i++)
		(void)coil_fake_feed(f, big, junk, sizeof(junk));
	assert_true(coil_fake_closed(f, big, &reason, NULL));
	assert_int_equal(reason, COIL_CLOSE_LOCAL);

	/* One quiet for a second before the close does not linger. */
	id = coil_fake_connect(f);
	coil_fake_set_stubborn(f, id, true);
	assert_int_equal(coil_fake_feed(f, id, "a\n", 2), 0);
	coil_fake_advance(f, 1500);
	coil_conn_close(coil_fake_conn(f, id));
	coil_fake_settle(f);
	assert_false(coil_fake_shut(f, id));
	assert_true(coil_fake_closed(f, id, NULL, NULL));
	coil_fake_destroy(f);
}

static void test_peer_eof_and_reset(void **st)
{
	struct coil_fake *f = mk(8, 256, 0, 0);
	char out[64];
	int a, b, reason;
	bool reset;

	(void)st;
	a = coil_fake_connect(f);
	b = coil_fake_connect(f);
	/* EOF with output still stalled: it is sent before the close */
	coil_fake_set_send(f, a, 0, true);
	assert_int_equal(coil_fake_feed(f, a, "abc\n", 4), 0);
	coil_fake_shutdown(f, a);
	assert_false(coil_fake_closed(f, a, NULL, NULL));
	coil_fake_set_send(f, a, 0, false);
	take_str(f, a, out, sizeof(out));
	assert_string_equal(out, "3:abc\n");
	assert_true(coil_fake_closed(f, a, &reason, &reset));
	assert_int_equal(reason, COIL_CLOSE_PEER);
	/* a reset mid-stream */
	assert_int_equal(coil_fake_feed(f, b, "partial", 7), 0);
	coil_fake_reset(f, b);
	assert_true(coil_fake_closed(f, b, &reason, &reset));
	assert_int_equal(reason, -ECONNRESET);
	assert_true(reset);
	assert_int_equal(closes, 2);
	assert_int_equal(coil_fake_loop(f)->nconns, 0);
	assert_int_equal(coil_fake_free_bufs(f), 8);
	coil_fake_destroy(f);
}

/* coil_conn_peer/_local on the fake: 127.0.0.1, a port per id, or what the
 * test set; none once the socket is closed. */
static void test_addresses(void **st)
{
	struct coil_fake *f = mk(8, 256, 0, 0);
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 six = { .sin6_family = AF_INET6,
				    .sin6_port = htons(443) };
	socklen_t sl = 0;
	int a, b;

	(void)st;
	a = coil_fake_connect(f);
	b = coil_fake_connect(f);
	assert_int_equal(coil_conn_peer(coil_fake_conn(f, b), &ss, &sl), 0);
	assert_int_equal(sl, sizeof(struct sockaddr_in));
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
	assert_int_equal(ntohs(sin->sin_port), 40000 + b);
	assert_int_equal(coil_conn_local(coil_fake_conn(f, b), &ss, &sl), 0);
	assert_int_equal(ntohs(sin->sin_port), 8080);
	six.sin6_addr.s6_addr[15] = 1;   /* ::1 */
	assert_int_equal(coil_fake_set_peer(f, a, (struct sockaddr *)&six,
					    sizeof(six)), 0);
	assert_int_equal(coil_fake_set_peer(f, 99, (struct sockaddr *)&six,
					    sizeof(six)), -EINVAL);
	assert_int_equal(coil_conn_peer(coil_fake_conn(f, a), &ss, &sl), 0);
	assert_int_equal(sl, sizeof(six));
	assert_memory_equal(&ss, &six, sizeof(six));
	/* on_close: the socket is gone */
	close_peer_rc = 0;
	assert_int_equal(coil_fake_feed(f, a, "quit\n", 5), 0);
	assert_true(coil_fake_closed(f, a, NULL, NULL));
	assert_int_equal(close_peer_rc, -EBADF);
	coil_fake_destroy(f);
}

static void test_idle_timeout(void **st)
{
	struct coil_fake *f = mk(8, 256, 100, 0);
	int id, reason;

	(void)st;
	id = coil_fake_connect(f);
	coil_fake_advance(f, 60);
	assert_int_equal(coil_fake_feed(f, id, "x\n", 2), 0);  /* activity */
	coil_fake_advance(f, 60);
	assert_false(coil_fake_closed(f, id, NULL, NULL));  /* 60 ms idle */
	coil_fake_advance(f, 39);
	assert_false(coil_fake_closed(f, id, NULL, NULL));  /* 99 ms idle */
	coil_fake_advance(f, 2);
	assert_true(coil_fake_closed(f, id, &reason, NULL));
	assert_int_equal(reason, -ETIMEDOUT);
	coil_fake_destroy(f);
}

static void test_pause_resume_keeps_bytes(void **st)
{
	struct coil_fake *f = mk(8, 256, 0, 0);
	struct coil_conn *c;
	char out[128];
	int id;

	(void)st;
	id = coil_fake_connect(f);
	c = coil_fake_conn(f, id);
	coil_conn_pause(c);
	coil_fake_settle(f);
	assert_int_equal(coil_fake_feed(f, id, "one\ntwo\n", 8), 0);
	assert_int_equal(coil_fake_pending(f, id), 0);   /* nothing delivered */
	coil_conn_resume(c);
	coil_fake_settle(f);
	take_str(f, id, out, sizeof(out));
	assert_string_equal(out, "3:one\n3:two\n");
	coil_fake_destroy(f);
}

static void test_exhaustion_no_loss(void **st)
{
	/* 4 buffers of 64 bytes, 20 connections each sending 3 KiB lines:
	 * the pool runs dry constantly; every byte still comes back. */
	struct coil_fake *f = mk(4, 64, 0, 0);
	static uint8_t msg[20][3000];
	static char out[4000];
	int ids[20];

	(void)st;
	for (int i = 0; i < 20; i++) {
		ids[i] = coil_fake_connect(f);
		stream_fill(msg[i], (uint32_t)i, 0, sizeof(msg[i]));
		for (size_t k = 0; k < sizeof(msg[i]); k++)
			if (msg[i][k] == '\n')
				msg[i][k] = ' ';
		msg[i][sizeof(msg[i]) - 1] = '\n';
	}
	for (int i = 0; i < 20; i++)
		assert_int_equal(coil_fake_feed(f, ids[i], msg[i],
						sizeof(msg[i])), 0);
	coil_fake_settle(f);
	for (int i = 0; i < 20; i++) {
		size_t n = coil_fake_take(f, ids[i], out, sizeof(out));

		assert_int_equal(n, 5 + sizeof(msg[i]));
		assert_memory_equal(out, "2999:", 5);
		assert_memory_equal(out + 5, msg[i], sizeof(msg[i]));
	}
	assert_int_equal(coil_fake_free_bufs(f), 4);
	coil_fake_destroy(f);
}

static void test_max_input(void **st)
{
	struct coil_fake *f = mk(8, 256, 0, 1000);
	static char junk[2000];
	int id, reason;
	bool reset;

	(void)st;
	memset(junk, 'z', sizeof(junk));  /* no newline: never consumed */
	id = coil_fake_connect(f);
	assert_int_equal(coil_fake_feed(f, id, junk, sizeof(junk)), 0);
	assert_true(coil_fake_closed(f, id, &reason, &reset));
	assert_int_equal(reason, -EMSGSIZE);
	assert_true(reset);
	coil_fake_destroy(f);
}

static int refuse_open(struct coil_conn *c)
{
	/* writes a farewell and closes, then refuses: still no on_close */
	coil_conn_write(c, "go away\n", 8);
	coil_conn_close(c);
	return -EPERM;
}

static void test_refuse_and_limit(void **st)
{
	struct coil_proto_ops ops = line_ops;
	struct coil_service svc = { .sz = sizeof(svc), .ops = &ops };
	struct coil_fake_opts fo = { .sz = sizeof(fo), .max_conns = 2 };
	struct coil_fake *f;

	(void)st;
	ops.on_open = refuse_open;
	closes = 0;
	assert_int_equal(coil_fake_create(&fo, &svc, &f), 0);
	assert_int_equal(coil_fake_connect(f), -ECONNREFUSED);
	assert_int_equal(closes, 0);
	coil_fake_destroy(f);

	ops.on_open = NULL;
	assert_int_equal(coil_fake_create(&fo, &svc, &f), 0);
	assert_true(coil_fake_connect(f) >= 0);
	assert_true(coil_fake_connect(f) >= 0);
	assert_int_equal(coil_fake_connect(f), -EMFILE);
	coil_fake_destroy(f);
	assert_int_equal(closes, 2);
}

static void test_eof_while_paused_delivers(void **st)
{
	struct coil_fake *f = mk(8, 256, 0, 0);
	struct coil_conn *c;
	char out[64];
	int id, reason;

	(void)st;
	id = coil_fake_connect(f);
	c = coil_fake_conn(f, id);
	coil_conn_pause(c);
	coil_fake_settle(f);
	assert_int_equal(coil_fake_feed(f, id, "last\n", 5), 0);
	coil_fake_shutdown(f, id);
	/* still open: the protocol has not seen its input yet */
	assert_false(coil_fake_closed(f, id, NULL, NULL));
	coil_conn_resume(c);
	coil_fake_settle(f);
	take_str(f, id, out, sizeof(out));
	assert_string_equal(out, "4:last\n");
	assert_true(coil_fake_closed(f, id, &reason, NULL));
	assert_int_equal(reason, COIL_CLOSE_PEER);
	coil_fake_destroy(f);
}

static void test_paused_input_held_not_limited(void **st)
{
	/* max_input 1000, but 3000 bytes (30 lines) arrive while paused: they
	 * are held (some in their receive buffers, the rest copied) and come
	 * out in order after resume. */
	struct coil_fake *f = mk(8, 256, 0, 1000);
	static uint8_t msg[3000];
	static char out[4000], want[4000];
	struct coil_conn *c;
	size_t n, w = 0;
	int id;

	(void)st;
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = i % 100 == 99 ? '\n' : (uint8_t)('a' + i % 26);
	for (size_t i = 0; i < sizeof(msg); i += 100) {
		memcpy(want + w, "99:", 3);
		memcpy(want + w + 3, msg + i, 100);
		w += 103;
	}
	id = coil_fake_connect(f);
	c = coil_fake_conn(f, id);
	coil_conn_pause(c);
	coil_fake_settle(f);
	assert_int_equal(coil_fake_feed(f, id, msg, sizeof(msg)), 0);
	assert_false(coil_fake_closed(f, id, NULL, NULL));
	assert_int_equal(coil_fake_pending(f, id), 0);
	/* a paused connection may not pin the pool: it keeps a few buffers
	 * and copies the rest */
	assert_true(coil_fake_free_bufs(f) >= 2);
	assert_true(coil_fake_free_bufs(f) < 8);
	coil_conn_resume(c);
	coil_fake_settle(f);
	n = coil_fake_take(f, id, out, sizeof(out));
	assert_int_equal(n, w);
	assert_memory_equal(out, want, w);
	assert_false(coil_fake_closed(f, id, NULL, NULL));
	assert_int_equal(coil_fake_free_bufs(f), 8);
	coil_fake_destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_split_anywhere),
		cmocka_unit_test(test_close_flushes_first),
		cmocka_unit_test(test_peer_eof_and_reset),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_pause_resume_keeps_bytes),
		cmocka_unit_test(test_exhaustion_no_loss),
		cmocka_unit_test(test_max_input),
		cmocka_unit_test(test_refuse_and_limit),
		cmocka_unit_test(test_eof_while_paused_delivers),
		cmocka_unit_test(test_paused_input_held_not_limited),
		cmocka_unit_test(test_linger_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
