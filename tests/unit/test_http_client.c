/* SPDX-License-Identifier: MIT */
/* coil/http_client.h through the fake backend (the fake's service 0 is the
 * upstream; the test plays the upstream server): a response with a length,
 * keep-alive reuse (one connect for many calls), chunked bodies split
 * anywhere, close-delimited bodies, a response timeout, a refused connect,
 * an upstream gone mid-body, framing it must not relay (-EPROTO), a retry
 * when a reused connection was closed under the request, cancel, and
 * streamed request bodies (coil_http_call_open: kept until connected,
 * back-pressure and its drain, no reuse after an early answer, no second
 * send once a body byte went out). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <coil/coil.h>
#include <coil/http_client.h>
#include <coil/testing.h>

#include <errno.h>
#include <string.h>

static struct coil_fake *F;
static struct coil_http_client *CL;

struct got {
	struct coil_http_call call;
	int status, ends, err;
	char body[256];
	size_t body_len;
};

static void g_head(struct coil_http_call *c, const struct coil_http1_response *r)
{
	((struct got *)(void *)c)->status = r->status;
}

static void g_body(struct coil_http_call *c, const uint8_t *d, size_t n)
{
	struct got *g = (struct got *)(void *)c;

	assert_true(g->body_len + n < sizeof(g->body));
	memcpy(g->body + g->body_len, d, n);
	g->body_len += n;
	g->body[g->body_len] = 0;
}

static void g_end(struct coil_http_call *c, int err)
{
	struct got *g = (struct got *)(void *)c;

	g->ends++;
	g->err = err;
}

static const struct coil_http_call_ops gops = {
	.on_head = g_head, .on_body = g_body, .on_end = g_end,
};

static const char GET[] = "GET / HTTP/1.1\r\nHost: u\r\n\r\n";

static void mk(void)
{
	struct coil_service svc = { .sz = sizeof(svc), .addr = "127.0.0.1",
				    .port = 9, .ops = &coil_http_client_ops,
				    .state_size = coil_http_client_state_size() };
	struct coil_http_client_opts o = { .sz = sizeof(o), .max_conns = 4,
					   .timeout_ms = 500 };

	assert_int_equal(coil_fake_create(NULL, &svc, &F), 0);
	assert_int_equal(coil_http_client_create(coil_fake_loop(F), &o, &CL), 0);
}

static void rm(void)
{
	coil_fake_destroy(F);
	coil_http_client_destroy(CL);
	F = NULL;
	CL = NULL;
}

static void start(struct got *g)
{
	memset(g, 0, sizeof(*g));
	assert_int_equal(coil_http_call_start(CL, &g->call, &gops, GET,
					      sizeof(GET) - 1, false), 0);
	coil_fake_settle(F);
}

/* The upstream accepts the connect in progress; returns its id. */
static int accept_conn(void)
{
	int id = coil_fake_connecting(F);

	assert_true(id >= 0);
	assert_int_equal(coil_fake_connect_done(F, id, 0), 0);
	return id;
}

/* What the upstream received on `id` is exactly one GET. */
static void expect_get(int id)
{
	char buf[128];

	assert_int_equal(coil_fake_take(F, id, buf, sizeof(buf)),
			 sizeof(GET) - 1);
	assert_memory_equal(buf, GET, sizeof(GET) - 1);
}

static void feed(int id, const char *s)
{
	assert_int_equal(coil_fake_feed(F, id, s, strlen(s)), 0);
}

static struct coil_pool_stats stats(void)
{
	struct coil_pool_stats st;

	coil_http_client_stats(CL, &st);
	return st;
}

static void test_keepalive_reuse(void **st)
{
	static const char *chunks[] = {
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhe",
		"llo\r\n", "6\r\n world", "\r\n0\r\n", "\r\n",
	};
	struct got g;
	int id;

	(void)st;
	mk();
	start(&g);
	id = accept_conn();
	expect_get(id);
	feed(id, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel");
	assert_int_equal(g.status, 200);
	assert_int_equal(g.ends, 0);
	feed(id, "lo");
	assert_int_equal(g.ends, 1);
	assert_int_equal(g.err, 0);
	assert_string_equal(g.body, "hello");
	for (int i = 0; i < 5; i++) {
		start(&g);
		assert_int_equal(coil_fake_connecting(F), -1);   /* reused */
		expect_get(id);
		for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++)
			feed(id, chunks[k]);
		assert_int_equal(g.ends, 1);
		assert_int_equal(g.err, 0);
		assert_string_equal(g.body, "hello world");
	}
	assert_int_equal(stats().connects, 1);
	assert_int_equal(stats().reuses, 5);
	rm();
}

static void test_close_delimited(void **st)
{
	struct got g;
	int id;

	(void)st;
	mk();
	start(&g);
	id = accept_conn();
	expect_get(id);
	feed(id, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of ");
	feed(id, "it");
	assert_int_equal(g.ends, 0);
	coil_fake_shutdown(F, id);
	coil_fake_settle(F);
	assert_int_equal(g.ends, 1);
	assert_int_equal(g.err, 0);
	assert_string_equal(g.body, "all of it");
	/* the next call needs a new connection */
	start(&g);
	assert_true(coil_fake_connecting(F) >= 0);
	rm();
}

static void test_errors(void **st)
{
	struct got g;
	int id;

	(void)st;
	mk();
	/* no answer in time */
	start(&g);
	id = accept_conn();
	coil_fake_advance(F, 499);
	assert_int_equal(g.ends, 0);
	coil_fake_advance(F, 2);
	assert_int_equal(g.ends, 1);
	assert_int_equal(g.err, -ETIMEDOUT);
	assert_true(coil_fake_closed(F, id, NULL, NULL));
	/* refused */
	start(&g);
	id = coil_fake_connecting(F);
	assert_int_equal(coil_fake_connect_done(F, id, -ECONNREFUSED), 0);
	assert_int_equal(g.err, -ECONNREFUSED);
	/* gone mid-body */
	start(&g);
	id = accept_conn();
	feed(id, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
	coil_fake_reset(F, id);
	coil_fake_settle(F);
	assert_int_equal(g.ends, 1);
	assert_true(g.err < 0);
	assert_string_equal(g.body, "abc");
	/* ambiguous framing is never relayed */
	start(&g);
	id = accept_conn();
	feed(id, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
		 "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
	assert_int_equal(g.ends, 1);
	assert_int_equal(g.err, -EPROTO);
	assert_int_equal(g.status, 0);
	coil_fake_settle(F);
	assert_true(coil_fake_closed(F, id, NULL, NULL));
	rm();
}

/* A reused connection closed by the upstream as the request went out:
 * sent again on a new one; a cancelled call hears nothing. */
static void test_retry_and_cancel(void **st)
{
	struct got g;
	int id, id2;

	(void)st;
	mk();
	start(&g);
	id = accept_conn();
	feed(id, "HTTP/1.1 204 No Content\r\n\r\n");
	assert_int_equal(g.ends, 1);
	start(&g);
	assert_int_equal(coil_fake_connecting(F), -1);
	coil_fake_shutdown(F, id);
	coil_fake_settle(F);
	assert_int_equal(g.ends, 0);
	id2 = accept_conn();
	assert_true(id2 != id);
	coil_fake_take(F, id, (char[256]){ 0 }, 256);
	expect_get(id2);
	feed(id2, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	assert_int_equal(g.ends, 1);
	assert_int_equal(g.err, 0);
	assert_string_equal(g.body, "ok");
	/* cancel with the response half read: the connection is not reused */
	start(&g);
	feed(id2, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab");
	coil_http_call_cancel(&g.call);
	coil_http_call_cancel(&g.call);
	coil_fake_settle(F);
	assert_true(coil_fake_closed(F, id2, NULL, NULL));
	assert_int_equal(g.ends, 0);
	rm();
}

/* A consumer that pauses in its body callback: nothing more arrives until
 * it resumes (no timeout meanwhile); a response that ended in the same
 * input leaves the connection reading for the next call. */
static void p_body(struct coil_http_call *c, const uint8_t *d, size_t n)
{
	g_body(c, d, n);
	coil_http_call_pause(c);
}

static const struct coil_http_call_ops pops = {
	.on_head = g_head, .on_body = p_body, .on_end = g_end,
};

static void test_pause(void **st)
{
	struct got g;
	int id;

	(void)st;
	mk();
	memset(&g, 0, sizeof(g));
	assert_int_equal(coil_http_call_start(CL, &g.call, &pops, GET,
					      sizeof(GET) - 1, false), 0);
	coil_fake_settle(F);
	id = accept_conn();
	expect_get(id);
	feed(id, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc");
	assert_string_equal(g.body, "abc");
	feed(id, "def");
	coil_fake_advance(F, 2000);   /* paused: no timeout either */
	assert_int_equal(g.ends, 0);
	assert_string_equal(g.body, "abc");
	coil_http_call_resume(&g.call);
	coil_fake_settle(F);
	assert_int_equal(g.ends, 1);
	assert_int_equal(g.err, 0);
	assert_string_equal(g.body, "abcdef");
	/* paused by the body callback as the response ended */
	memset(&g, 0, sizeof(g));
	assert_int_equal(coil_http_call_start(CL, &g.call, &pops, GET,
					      sizeof(GET) - 1, false), 0);
	coil_fake_settle(F);
	expect_get(id);
	feed(id, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	assert_int_equal(g.ends, 1);
	start(&g);
	expect_get(id);
	feed(id, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno");
	assert_int_equal(g.ends, 1);
	assert_string_equal(g.body, "no");
	rm();
}

/* ---- streamed request bodies ---- */

struct sgot {
	struct got g;
	int drains;
};

static void s_drain(struct coil_http_call *c)
{
	((struct sgot *)(void *)c)->drains++;
}

static const struct coil_http_call_ops sops = {
	.on_head = g_head, .on_body = g_body, .on_end = g_end,
	.on_drain = s_drain,
};

static const char PUT[] = "PUT / HTTP/1.1\r\nHost: u\r\n"
			  "Transfer-Encoding: chunked\r\n\r\n";

static void open_put(struct sgot *g)
{
	memset(g, 0, sizeof(*g));
	assert_int_equal(coil_http_call_open(CL, &g->g.call, &sops, PUT,
					     sizeof(PUT) - 1, false), 0);
}

/* Everything the upstream got on `id`, as a string. */
static const char *took(int id)
{
	static char buf[1024];
	size_t n = coil_fake_take(F, id, buf, sizeof(buf) - 1);

	buf[n] = 0;
	return buf;
}

/* The upstream reads again: everything sent on `id` is taken. */
static void unstall(int id)
{
	static char sink[64 << 10];

	coil_fake_set_send(F, id, 0, false);
	coil_fake_settle(F);
	while (coil_fake_take(F, id, sink, sizeof(sink)))
		coil_fake_settle(F);
}

static void test_stream_body(void **st)
{
	static char big[300 << 10];
	struct sgot g;
	int id;

	(void)st;
	mk();
	/* no on_drain: refused */
	assert_int_equal(coil_http_call_open(CL, &g.g.call, &gops, PUT,
					     sizeof(PUT) - 1, false), -EINVAL);
	/* bytes written before the connection are kept, then sent */
	open_put(&g);
	assert_int_equal(coil_http_call_write(&g.g.call, "3\r\nabc\r\n", 8), 0);
	assert_false(coil_http_call_busy(&g.g.call));
	id = accept_conn();
	coil_fake_settle(F);
	assert_string_equal(took(id), "PUT / HTTP/1.1\r\nHost: u\r\n"
			    "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
	/* an upstream that stops reading: busy above the mark (256 KiB),
	 * the drain once it reads again; the writes keep the response
	 * timeout from running out */
	coil_fake_set_send(F, id, 0, true);
	memset(big, 'x', sizeof(big));
	for (int i = 0; i < 3; i++) {
		coil_fake_advance(F, 300);
		assert_int_equal(coil_http_call_write(&g.g.call, big, 100 << 10),
				 0);
	}
	assert_true(coil_http_call_busy(&g.g.call));
	assert_int_equal(g.g.ends, 0);
	assert_int_equal(g.drains, 0);
	unstall(id);
	assert_int_equal(g.drains, 1);
	assert_false(coil_http_call_busy(&g.g.call));
	assert_int_equal(coil_http_call_write(&g.g.call, "0\r\n\r\n", 5), 0);
	coil_http_call_write_end(&g.g.call);
	assert_int_equal(coil_http_call_write(&g.g.call, "x", 1), -EINVAL);
	feed(id, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	assert_int_equal(g.g.ends, 1);
	assert_int_equal(g.g.err, 0);
	assert_int_equal(coil_http_call_write(&g.g.call, "x", 1), -EPIPE);
	/* complete: the connection is reused; an answer before the body's
	 * end leaves it mid-request: closed */
	open_put(&g);
	assert_int_equal(coil_fake_connecting(F), -1);
	coil_fake_settle(F);
	(void)took(id);
	feed(id, "HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(g.g.ends, 1);
	assert_int_equal(g.g.status, 413);
	coil_fake_settle(F);
	assert_true(coil_fake_closed(F, id, NULL, NULL));
	/* a reused connection closed once a body byte went out: not sent
	 * again (the body is gone), the call fails */
	open_put(&g);
	id = accept_conn();
	assert_int_equal(coil_http_call_write(&g.g.call, "0\r\n\r\n", 5), 0);
	coil_http_call_write_end(&g.g.call);
	feed(id, "HTTP/1.1 204 No Content\r\n\r\n");
	assert_int_equal(g.g.ends, 1);
	open_put(&g);
	assert_int_equal(coil_fake_connecting(F), -1);   /* reused */
	assert_int_equal(coil_http_call_write(&g.g.call, "1\r\nz\r\n", 6), 0);
	coil_fake_shutdown(F, id);
	coil_fake_settle(F);
	assert_int_equal(coil_fake_connecting(F), -1);   /* no second try */
	assert_int_equal(g.g.ends, 1);
	assert_int_equal(g.g.err, -ECONNRESET);
	/* over the mark before the connection: busy, and the drain comes
	 * once the kept bytes left */
	open_put(&g);
	assert_int_equal(coil_http_call_write(&g.g.call, big, sizeof(big)), 0);
	assert_true(coil_http_call_busy(&g.g.call));
	id = coil_fake_connecting(F);
	assert_true(id >= 0);
	coil_fake_set_send(F, id, 0, true);
	assert_int_equal(coil_fake_connect_done(F, id, 0), 0);
	coil_fake_settle(F);
	assert_int_equal(g.drains, 0);
	unstall(id);
	assert_int_equal(g.drains, 1);
	rm();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keepalive_reuse),
		cmocka_unit_test(test_close_delimited),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_retry_and_cancel),
		cmocka_unit_test(test_pause),
		cmocka_unit_test(test_stream_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
