/* SPDX-License-Identifier: MIT */
/* coil/http.h through the fake backend, public API only: answers given
 * later (coil_http_defer) from timers and from another connection's
 * handler, their order inside a pipeline, a client gone before its answer
 * (the cancel callback, nothing leaked: run under ASan), a request body
 * failing while its answer waits, answers streamed over several callbacks,
 * and the handler's own headers (set, replaced, repeated, refused). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <coil/coil.h>
#include <coil/http.h>
#include <coil/testing.h>

#include "fake_take.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static struct coil_http_server *H;
static struct coil_fake *F;
static char out[1u << 16];

/* ---- the resources under test ---- */

/* What a deferred answer keeps: malloc'd, as an app would, so that ASan
 * reports one that neither its answer nor its cancel freed. */
struct later {
	struct coil_timer t;
	struct coil_http_req *x;
	int step;         /* streamed: parts sent so far */
	char body[32];
};

static int cancels, answers, live;
static struct coil_http_req *waiting;   /* /wait, answered by /notify */

static void later_free(struct later *l)
{
	coil_timer_stop(&l->t);
	free(l);
	live--;
}

static void on_cancel(struct coil_http_req *x, void *arg)
{
	struct later *l = arg;

	assert_ptr_equal(l->x, x);
	cancels++;
	later_free(l);
}

static void slow_fire(struct coil_timer *t)
{
	struct later *l = t->data;

	assert_int_equal(coil_http_header_set(l->x, "X-Later", "yes"), 0);
	assert_int_equal(coil_http_respond(l->x, 200, "text/plain", l->body,
					   strlen(l->body)), 0);
	answers++;
	later_free(l);
}

static struct later *later_new(struct coil_http_req *x, coil_timer_cb cb,
			       uint64_t ms)
{
	struct later *l = calloc(1, sizeof(*l));

	assert_non_null(l);
	live++;
	l->x = x;
	coil_timer_init(&l->t, coil_conn_loop(x->conn), cb, l);
	coil_timer_start(&l->t, ms);
	assert_int_equal(coil_http_defer(x, on_cancel, l), 0);
	return l;
}

/* GET /slow?MS: answers "slow <path>" after MS ms (default 50). */
static void h_slow(struct coil_http_req *x)
{
	uint64_t ms = x->query.len ? strtoull(x->query.ptr, NULL, 10) : 50;
	struct later *l = later_new(x, slow_fire, ms);

	snprintf(l->body, sizeof(l->body), "slow %.*s", (int)x->path.len,
		 x->path.ptr);
}

static void h_fast(struct coil_http_req *x)
{
	coil_http_respond(x, 200, "text/plain", "fast", 4);
}

/* GET /stream: a chunked answer in three timer callbacks, 10 ms apart. */
static void stream_fire(struct coil_timer *t)
{
	struct later *l = t->data;

	switch (l->step++) {
	case 0:
		assert_int_equal(coil_http_respond_start(l->x, 200, "text/plain",
							 COIL_HTTP_CHUNKED), 0);
		assert_int_equal(coil_http_respond_data(l->x, "one,", 4), 0);
		break;
	case 1:
		assert_int_equal(coil_http_respond_data(l->x, "two", 3), 0);
		break;
	default:
		assert_int_equal(coil_http_respond_end(l->x), 0);
		answers++;
		later_free(l);
		return;
	}
	coil_timer_start(&l->t, 10);
}

static void h_stream(struct coil_http_req *x)
{
	later_new(x, stream_fire, 10);
}

/* POST /slowbody: takes the body, defers in on_end, answers its length
 * 20 ms later. */
static void body_chunk(struct coil_http_req *x, const uint8_t *d, size_t n)
{
	(void)d;
	*(uint64_t *)x->user += n;
}

static void body_end(struct coil_http_req *x)
{
	struct later *l = later_new(x, slow_fire, 20);

	snprintf(l->body, sizeof(l->body), "got %llu",
		 (unsigned long long)*(uint64_t *)x->user);
}

static void h_slowbody(struct coil_http_req *x)
{
	assert_int_equal(coil_http_body_accept(x, body_chunk, body_end), 0);
}

/* GET /wait: parked until POST /notify (another connection) answers it. */
static void wait_cancel(struct coil_http_req *x, void *arg)
{
	(void)arg;
	assert_ptr_equal(x, waiting);
	waiting = NULL;
	cancels++;
}

static void h_wait(struct coil_http_req *x)
{
	assert_null(waiting);
	waiting = x;
	assert_int_equal(coil_http_defer(x, wait_cancel, NULL), 0);
}

static void h_notify(struct coil_http_req *x)
{
	int ret = -ENOENT;

	if (waiting) {
		ret = coil_http_respond(waiting, 200, "text/plain", "notified",
					8);
		waiting = NULL;
	}
	coil_http_respond(x, ret ? 404 : 204, NULL, NULL, 0);
}

/* GET /hdr: the handler's headers, and what is refused. */
static void h_hdr(struct coil_http_req *x)
{
	assert_int_equal(coil_http_header_set(x, "X-One", "first"), 0);
	assert_int_equal(coil_http_header_set(x, "x-one", "replaced"), 0);
	assert_int_equal(coil_http_header_add(x, "Set-Cookie", "a=1; Path=/"), 0);
	assert_int_equal(coil_http_header_add(x, "Set-Cookie", "b=2"), 0);
	assert_int_equal(coil_http_header_set(x, "Cache-Control", "no-store"), 0);
	/* framing and connection headers belong to the server */
	assert_int_equal(coil_http_header_set(x, "Content-Length", "1"), -EINVAL);
	assert_int_equal(coil_http_header_add(x, "transfer-encoding", "chunked"),
			 -EINVAL);
	assert_int_equal(coil_http_header_set(x, "Connection", "close"), -EINVAL);
	/* no header injection, no bad names */
	assert_int_equal(coil_http_header_set(x, "X-Bad", "a\r\nX-Evil: 1"),
			 -EINVAL);
	assert_int_equal(coil_http_header_set(x, "X Bad", "v"), -EINVAL);
	assert_int_equal(coil_http_header_set(x, "", "v"), -EINVAL);
	/* the value check goes 8 bytes a step: a bad byte at every place in
	 * and across the words is found, a HTAB or obs-text is not one */
	for (size_t n = 1; n <= 20; n++) {
		for (size_t k = 0; k < n; k++) {
			static const char bad[] = "\r\n\x01\x1f\x7f";
			static const char good[] = "\t\x80\xff ~";
			char v[24];

			memset(v, 'a', n);
			v[n] = 0;
			for (size_t b = 0; b < sizeof(bad) - 1; b++) {
				v[k] = bad[b];
				assert_int_equal(coil_http_header_set(x, "X-V", v),
						 -EINVAL);
			}
			for (size_t g = 0; g < sizeof(good) - 1; g++) {
				v[k] = good[g];
				assert_int_equal(coil_http_header_set(x, "X-V", v),
						 0);
			}
		}
	}
	assert_int_equal(coil_http_respond(x, 200, "text/plain\r\nX-Evil: 1",
					   "h", 1), -EINVAL);
	assert_int_equal(coil_http_respond(x, 200, "text/plain", "h", 1), 0);
	assert_int_equal(coil_http_header_set(x, "X-Late", "v"), -EALREADY);
}

/* ---- harness ---- */

static void mk(void)
{
	struct coil_http_config cfg = { .sz = sizeof(cfg), .max_body = 1000 };
	struct coil_service svc = { .sz = sizeof(svc) };
	struct coil_fake_opts fo = { .sz = sizeof(fo) };
	static const struct {
		const char *path;
		unsigned m;
		coil_http_handler fn;
	} r[] = {
		{ "/slow", COIL_HTTP1_GET, h_slow },
		{ "/fast", COIL_HTTP1_GET, h_fast },
		{ "/stream", COIL_HTTP1_GET, h_stream },
		{ "/slowbody", COIL_HTTP1_POST, h_slowbody },
		{ "/wait", COIL_HTTP1_GET, h_wait },
		{ "/notify", COIL_HTTP1_POST, h_notify },
		{ "/hdr", COIL_HTTP1_GET, h_hdr },
	};

	cancels = answers = live = 0;
	waiting = NULL;
	assert_int_equal(coil_http_server_create(&cfg, &H, NULL), 0);
	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		struct coil_http_route rt = { .path = r[i].path };

		rt.on[r[i].m] = r[i].fn;
		assert_int_equal(coil_http_server_route(H, &rt), 0);
	}
	coil_http_server_service_init(H, &svc);
	assert_int_equal(coil_fake_create(&fo, &svc, &F), 0);
}

static void rm(void)
{
	coil_fake_destroy(F);
	coil_http_server_destroy(H);
	F = NULL;
	H = NULL;
	assert_int_equal(live, 0);   /* every deferred answer was released */
}

static void feed(int id, const char *s)
{
	assert_int_equal(coil_fake_feed(F, id, s, strlen(s)), 0);
}

static size_t take(int id)
{
	return fake_take_str(F, id, out, sizeof(out));
}

static bool closed(int id)
{
	return coil_fake_closed(F, id, NULL, NULL);
}

/* Bodies of the responses in out[] (Content-Length framed), in order,
 * joined by '|'; statuses likewise into `st`. */
static void bodies(char *b, size_t cap, char *st, size_t stcap)
{
	const char *p = out;
	size_t bl = 0, sl = 0;

	b[0] = st[0] = 0;
	while (*p) {
		const char *e = strstr(p, "\r\n\r\n"), *cl;
		size_t n = 0;

		assert_non_null(e);
		assert_memory_equal(p, "HTTP/1.1 ", 9);
		sl += (size_t)snprintf(st + sl, stcap - sl, "%s%.3s",
				       sl ? "|" : "", p + 9);
		cl = strcasestr(p, "\r\nContent-Length: ");
		if (cl && cl < e)
			n = strtoull(cl + 18, NULL, 10);
		bl += (size_t)snprintf(b + bl, cap - bl, "%s%.*s", bl ? "|" : "",
				       (int)n, e + 4);
		p = e + 4 + n;
	}
}

#define REQ(path) "GET " path " HTTP/1.1\r\nHost: x\r\n\r\n"

/* ---- tests ---- */

/* Three pipelined requests, the first two answered later in reverse
 * time order: the answers still leave in request order. */
static void test_pipeline_order(void **st)
{
	char b[256], s[64];
	int id;

	(void)st;
	mk();
	id = coil_fake_connect(F);
	feed(id, REQ("/slow?80") REQ("/slow?10") REQ("/fast") REQ("/slow?5"));
	assert_int_equal(take(id), 0);        /* the first is not answered */
	coil_fake_advance(F, 79);
	assert_int_equal(take(id), 0);
	/* the first answer lets the second be read, its timer starts then */
	coil_fake_advance(F, 1);
	take(id);
	bodies(b, sizeof(b), s, sizeof(s));
	assert_string_equal(b, "slow /slow");
	assert_non_null(strstr(out, "\r\nX-Later: yes\r\n"));
	coil_fake_advance(F, 20);
	take(id);
	bodies(b, sizeof(b), s, sizeof(s));
	assert_string_equal(b, "slow /slow|fast|slow /slow");
	assert_string_equal(s, "200|200|200");
	assert_int_equal(answers, 3);
	assert_int_equal(cancels, 0);
	assert_false(closed(id));
	/* the connection goes on as usual */
	feed(id, REQ("/fast"));
	take(id);
	bodies(b, sizeof(b), s, sizeof(s));
	assert_string_equal(b, "fast");
	rm();
}

/* Waiting is not idleness: no keep-alive or header timeout during it, and
 * the keep-alive timeout applies again once answered. */
static void test_wait_no_timeout(void **st)
{
	char b[64], s[16];
	int id;

	(void)st;
	mk();
	id = coil_fake_connect(F);
	feed(id, REQ("/slow?60000"));
	coil_fake_advance(F, 59999);
	assert_false(closed(id));
	assert_int_equal(take(id), 0);
	coil_fake_advance(F, 1);
	take(id);
	bodies(b, sizeof(b), s, sizeof(s));
	assert_string_equal(b, "slow /slow");
	coil_fake_advance(F, COIL_HTTP_DEFAULT_KEEPALIVE_TIMEOUT_MS + 1000);
	assert_true(closed(id));
	rm();
}

/* The client goes before its answer: the cancel callback runs once, the
 * answer never does, nothing leaks; also with a request still queued
 * behind it, and for a half-close (FIN) and a reset. */
static void test_client_gone(void **st)
{
	int id;

	(void)st;
	mk();
	id = coil_fake_connect(F);
	feed(id, REQ("/slow?100"));
	assert_int_equal(live, 1);
	coil_fake_reset(F, id);
	coil_fake_settle(F);
	assert_true(closed(id));
	assert_int_equal(cancels, 1);
	assert_int_equal(live, 0);
	coil_fake_advance(F, 200);
	assert_int_equal(answers, 0);

	id = coil_fake_connect(F);
	feed(id, REQ("/slow?100"));
	coil_fake_shutdown(F, id);
	coil_fake_settle(F);
	assert_true(closed(id));
	assert_int_equal(cancels, 2);
	assert_int_equal(live, 0);

	/* a pipelined request waits behind the deferred one (reading is
	 * paused): the engine's end still cancels, once */
	id = coil_fake_connect(F);
	feed(id, REQ("/slow?100") REQ("/slow?100"));
	assert_int_equal(live, 1);
	rm();
	assert_int_equal(cancels, 3);
	assert_int_equal(answers, 0);
}

/* A streamed answer spread over three timer callbacks, then the next
 * pipelined request. */
static void test_stream_later(void **st)
{
	int id;

	(void)st;
	mk();
	id = coil_fake_connect(F);
	feed(id, REQ("/stream") REQ("/fast"));
	coil_fake_advance(F, 10);
	take(id);
	assert_non_null(strstr(out, "Transfer-Encoding: chunked\r\n"));
	assert_non_null(strstr(out, "\r\n\r\n4\r\none,\r\n"));
	assert_null(strstr(out, "fast"));
	coil_fake_advance(F, 10);
	take(id);
	assert_string_equal(out, "3\r\ntwo\r\n");
	coil_fake_advance(F, 10);
	take(id);
	assert_memory_equal(out, "0\r\n\r\nHTTP/1.1 200 OK\r\n", 22);
	assert_non_null(strstr(out, "\r\n\r\nfast"));
	assert_int_equal(answers, 1);
	rm();
}

/* A body taken, the answer deferred from on_end; the next request after
 * it; then a body that fails while its answer waits: cancelled, 400. */
static void test_body_then_later(void **st)
{
	char b[128], s[32];
	int id;

	(void)st;
	mk();
	id = coil_fake_connect(F);
	feed(id, "POST /slowbody HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
		 "hello" REQ("/fast"));
	assert_int_equal(take(id), 0);
	coil_fake_advance(F, 20);
	take(id);
	bodies(b, sizeof(b), s, sizeof(s));
	assert_string_equal(b, "got 5|fast");
	/* a body that ends the input: its end is seen at once */
	feed(id, "POST /slowbody HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"
		 "abc");
	coil_fake_advance(F, 20);
	take(id);
	bodies(b, sizeof(b), s, sizeof(s));
	assert_string_equal(b, "got 3");

	/* a slow GET with a body it does not take: the body is discarded
	 * while it waits, then a chunked body goes wrong */
	feed(id, "GET /slow?50 HTTP/1.1\r\nHost: x\r\n"
		 "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nZZ\r\n");
	assert_int_equal(cancels, 1);
	assert_int_equal(live, 0);
	take(id);
	bodies(b, sizeof(b), s, sizeof(s));
	assert_string_equal(s, "400");
	coil_fake_settle(F);
	assert_true(closed(id));
	rm();
}

/* A long poll: one connection's handler answers another's deferred
 * request; a parked request whose client leaves is cancelled. */
static void test_answer_from_other_conn(void **st)
{
	char b[64], s[16];
	int a, c;

	(void)st;
	mk();
	a = coil_fake_connect(F);
	c = coil_fake_connect(F);
	feed(a, REQ("/wait"));
	assert_int_equal(take(a), 0);
	feed(c, "POST /notify HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
	take(c);
	bodies(b, sizeof(b), s, sizeof(s));
	assert_string_equal(s, "204");
	take(a);
	bodies(b, sizeof(b), s, sizeof(s));
	assert_string_equal(b, "notified");
	feed(a, REQ("/wait"));
	coil_fake_reset(F, a);
	coil_fake_settle(F);
	assert_int_equal(cancels, 1);
	assert_null(waiting);
	feed(c, "POST /notify HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
	take(c);
	bodies(b, sizeof(b), s, sizeof(s));
	assert_string_equal(s, "404");
	rm();
}

static void test_headers(void **st)
{
	const char *p;
	int id;

	(void)st;
	mk();
	id = coil_fake_connect(F);
	feed(id, REQ("/hdr"));
	take(id);
	assert_non_null(strcasestr(out, "\r\nX-One: replaced\r\n"));
	assert_null(strstr(out, "first"));
	p = strstr(out, "\r\nSet-Cookie: a=1; Path=/\r\n");
	assert_non_null(p);
	assert_non_null(strstr(p, "\r\nSet-Cookie: b=2\r\n"));
	assert_non_null(strstr(out, "\r\nCache-Control: no-store\r\n"));
	assert_null(strstr(out, "X-Evil"));
	assert_non_null(strstr(out, "\r\nContent-Length: 1\r\n"));
	/* exactly one Content-Length, and the body follows the head */
	assert_null(strstr(strstr(out, "Content-Length") + 1, "Content-Length"));
	assert_non_null(strstr(out, "\r\n\r\nh"));
	/* the next answer on the connection has none of them */
	feed(id, REQ("/fast"));
	take(id);
	assert_null(strcasestr(out, "X-One"));
	assert_null(strstr(out, "Set-Cookie"));
	rm();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipeline_order),
		cmocka_unit_test(test_wait_no_timeout),
		cmocka_unit_test(test_client_gone),
		cmocka_unit_test(test_stream_later),
		cmocka_unit_test(test_body_then_later),
		cmocka_unit_test(test_answer_from_other_conn),
		cmocka_unit_test(test_headers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
