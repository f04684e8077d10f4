/* SPDX-License-Identifier: MIT */
/* coil/stats.h on the fake backend: each counter moves with what the
 * connection core did (accepted, open, bytes, receives, write
 * high-water pauses, resets, HTTP classes, defer and
 * posts), and a short sz is honoured; the Prometheus text of an engine
 * that has not run. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

static size_t echo(struct coil_conn *c, const uint8_t *d, size_t n)
{
	coil_conn_write(c, d, n);
	return n;
}

static const struct coil_proto_ops ops = { .on_data = echo };
static const struct coil_service svc = { .sz = sizeof(svc), .ops = &ops,
					 .write_high_water = 1000 };

static int job(void *arg) { (void)arg; return 0; }
static void job_done(struct coil_loop *l, void *arg, int res)
{ (void)l; (void)arg; (void)res; }
static void noop(struct coil_loop *l, void *arg) { (void)l; (void)arg; }

static struct coil_stats snap(struct coil_fake *f)
{
	struct coil_stats s = { .sz = sizeof(s) };

	assert_int_equal(coil_loop_stats(coil_fake_loop(f), &s), 0);
	return s;
}

static void test_counters(void **st)
{
	struct coil_fake *f;
	struct coil_stats s;
	char big[3000];
	int a, b;

	(void)st;
	assert_int_equal(coil_fake_create(NULL, &svc, &f), 0);
	s = snap(f);
	assert_int_equal(s.loops, 1);
	assert_int_equal(s.accepted + s.conns_open + s.rx_bytes, 0);
	assert_int_equal(s.bufs, 64);
	a = coil_fake_connect(f);
	b = coil_fake_connect(f);
	assert_int_equal(coil_fake_feed(f, a, "hello", 5), 0);
	s = snap(f);
	assert_int_equal(s.accepted, 2);
	assert_int_equal(s.conns_open, 2);
	assert_int_equal(s.rx_bytes, 5);
	assert_int_equal(s.tx_bytes, 5);
	assert_true(s.recvs >= 1);
	assert_true(s.turns > 0);
	/* a stalled reader: output over the high-water mark pauses reading
	 * (the fake ends the receive at once, so nothing is held aside) */
	coil_fake_set_send(f, b, 0, true);
	memset(big, 'x', sizeof(big));
	assert_int_equal(coil_fake_feed(f, b, big, sizeof(big)), 0);
	assert_int_equal(coil_fake_feed(f, b, "more", 4), 0);
	s = snap(f);
	assert_int_equal(s.write_paused, 1);
	assert_int_equal(s.rx_bytes, 5 + sizeof(big));
	coil_fake_reset(f, b);
	coil_fake_settle(f);
	s = snap(f);
	assert_int_equal(s.resets, 1);
	assert_int_equal(s.closed, 1);
	assert_int_equal(s.conns_open, 1);
	coil_stats_http(coil_fake_loop(f), 200);
	coil_stats_http(coil_fake_loop(f), 204);
	coil_stats_http(coil_fake_loop(f), 404);
	coil_stats_http(coil_fake_loop(f), 99);    /* not a status: ignored */
	assert_true(coil_defer_to_thread(coil_fake_loop(f), job, job_done,
					 NULL) >= 0);
	assert_int_equal(coil_loop_post(coil_fake_loop(f), noop, NULL), 0);
	s = snap(f);
	assert_int_equal(s.http[1], 2);
	assert_int_equal(s.http[3], 1);
	assert_int_equal(s.http[0] + s.http[2] + s.http[4], 0);
	assert_int_equal(s.defer_submitted, 1);
	assert_int_equal(s.defer_queued, 1);
	assert_int_equal(s.defer_done, 0);
	coil_fake_defer_run(f, 1);
	coil_fake_settle(f);
	s = snap(f);
	assert_int_equal(s.defer_done, 1);
	assert_int_equal(s.defer_queued, 0);
	assert_int_equal(s.posts_run, 1);
	/* an older, shorter struct: only its fields are written */
	{
		struct coil_stats old;

		memset(&old, 0xee, sizeof(old));
		old.sz = offsetof(struct coil_stats, accepted);
		assert_int_equal(coil_loop_stats(coil_fake_loop(f), &old), 0);
		assert_int_equal(old.conns_open, 1);
		assert_int_equal(old.accepted, 0xeeeeeeeeeeeeeeeeull);
		old.sz = 0;
		assert_int_equal(coil_loop_stats(coil_fake_loop(f), &old),
				 -EINVAL);
	}
	coil_fake_destroy(f);
}

/* The exposition of an engine that has not run: every family once with
 * HELP and TYPE, a series per loop, zeros, and -ENOSPC when short. */
static void test_prometheus(void **st)
{
	struct coil_engine_opts eo = { .sz = sizeof(eo), .cores = 2,
				       .backend = COIL_BACKEND_EPOLL };
	struct coil_engine *eng;
	struct coil_stats sum = { .sz = sizeof(sum) };
	char small[64], *text;
	size_t len;
	int n;

	(void)st;
	assert_int_equal(coil_engine_create(&eo, &eng), 0);
	assert_int_equal(coil_engine_loops(eng), 2);
	assert_null(coil_engine_loop(eng, 0));   /* not running */
	assert_null(coil_engine_loop(eng, 2));
	assert_int_equal(coil_engine_stats(eng, &sum), 0);
	assert_int_equal(sum.loops, 0);
	text = coil_stats_prometheus_dup(eng, &len);
	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	assert_non_null(strstr(text, "# HELP coil_connections_accepted_total "));
	assert_non_null(strstr(text, "# TYPE coil_connections_accepted_total counter\n"
				     "coil_connections_accepted_total{loop=\"0\"} 0\n"
				     "coil_connections_accepted_total{loop=\"1\"} 0\n"));
	assert_non_null(strstr(text, "# TYPE coil_connections_open gauge\n"));
	assert_non_null(strstr(text, "coil_http_responses_total{loop=\"1\",code=\"5xx\"} 0\n"));
	assert_non_null(strstr(text, "\ncoil_loops 0\n"));
	/* every line is a comment or "name{labels} value" / "name value" */
	for (char *l = text; *l; l = strchr(l, '\n') + 1) {
		assert_true(l[0] == '#' || !strncmp(l, "coil_", 5));
		assert_non_null(strchr(l, '\n'));
	}
	n = coil_stats_prometheus(eng, small, sizeof(small));
	assert_int_equal(n, -ENOSPC);
	free(text);
	coil_engine_destroy(eng);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_prometheus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
