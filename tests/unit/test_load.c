/* SPDX-License-Identifier: MIT */
/* coil-load's parts: the latency histogram against a sorted reference,
 * the echo pattern verifier, URL / HOST:PORT / CPU list / duration parsing
 * and the command line (accepted and refused), and the request it builds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../apps/coil-load/load.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void test_hist_vs_sorted(void **state)
{
	static const double ps[] = { 1, 10, 50, 90, 99, 99.9, 99.99, 100 };
	enum { N = 200000 };
	uint64_t *ref = malloc(N * sizeof(*ref)), seed = 88172645463325252ull;
	struct hist *h = malloc(sizeof(*h));

	(void)state;
	hist_init(h);
	for (unsigned i = 0; i < N; i++) {
		/* log-uniform over 1 ns .. ~68 s, with exact small values */
		unsigned bits = (unsigned)(rng(&seed) % 36);
		uint64_t v = rng(&seed) & ((1ull << bits) - 1);

		ref[i] = v;
		hist_record(h, v);
	}
	qsort(ref, N, sizeof(*ref), cmp_u64);
	assert_int_equal(h->count, N);
	assert_int_equal(h->min, ref[0]);
	assert_int_equal(h->max, ref[N - 1]);
	for (unsigned i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		uint64_t rank = (uint64_t)((ps[i] / 100.0) * N + 0.999999);
		uint64_t want = ref[(rank ? rank : 1) - 1];
		uint64_t got = hist_percentile(h, ps[i]);

		/* never below the true value, at most 1/128 above it */
		if (got < want || (double)got > (double)want * (1.0 + 1.0 / 128) + 1)
			fail_msg("p%g: got %llu, sorted reference %llu", ps[i],
				 (unsigned long long)got, (unsigned long long)want);
	}
	assert_int_equal(hist_percentile(h, 100), ref[N - 1]);
	free(ref);
	free(h);
}

static void test_hist_buckets(void **state)
{
	struct hist *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));

	(void)state;
	/* exact below 128; every value lies in its bucket's range */
	for (uint64_t v = 0; v < 128; v++)
		assert_int_equal(hist_bucket_high(hist_index(v)), v);
	for (uint64_t v = 128; v < (1ull << 41); v = v * 3 / 2 + 1) {
		unsigned i = hist_index(v);

		assert_true(i < HIST_BUCKETS);
		if (v < (1ull << HIST_MAX_BITS)) {
			assert_true(hist_bucket_high(i) >= v);
			assert_true(i == 0 || hist_bucket_high(i - 1) < v);
		}
	}
	/* huge values are clamped, not out of range */
	assert_true(hist_index(UINT64_MAX) < HIST_BUCKETS);
	hist_init(a);
	hist_init(b);
	assert_int_equal(hist_percentile(a, 50), 0);
	hist_record(a, 1000);
	hist_record(b, 3000);
	hist_record(b, 5000);
	hist_merge(a, b);
	assert_int_equal(a->count, 3);
	assert_int_equal(a->min, 1000);
	assert_int_equal(a->max, 5000);
	assert_int_equal(a->sum, 9000);
	assert_true(hist_percentile(a, 50) >= 3000 &&
		    hist_percentile(a, 50) <= 3000 + 3000 / 128);
	free(a);
	free(b);
}

static void test_pattern(void **state)
{
	uint8_t *pat = malloc(PAT_LEN + PAT_TAIL), *pat2 = malloc(PAT_LEN + PAT_TAIL);
	uint8_t buf[4096];
	uint32_t off = PAT_LEN - 1000;   /* the stream wraps in the middle */

	(void)state;
	pattern_fill(pat, 1);
	pattern_fill(pat2, 2);
	assert_memory_not_equal(pat, pat2, 64);
	assert_memory_equal(pat + PAT_LEN, pat, PAT_TAIL);
	/* the bytes a connection sends from `off` at position 500.. */
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = pat[(off + 500 + i) % PAT_LEN];
	assert_int_equal(pattern_check(pat, off, 500, buf, sizeof(buf)), 0);
	/* one flipped byte, two swapped ones, a shifted stream */
	buf[2000] ^= 0x40;
	assert_int_equal(pattern_check(pat, off, 500, buf, sizeof(buf)), 1);
	buf[2000] ^= 0x40;
	{
		uint8_t t = buf[10];

		buf[10] = buf[11];
		buf[11] = t;
		assert_true(pattern_check(pat, off, 500, buf, sizeof(buf)) <= 2);
		buf[11] = buf[10];
		buf[10] = t;
	}
	assert_true(pattern_check(pat, off, 501, buf, sizeof(buf)) > 3000);
	/* another connection's bytes do not pass */
	assert_true(pattern_check(pat, off + 7, 500, buf, sizeof(buf)) > 3000);
	/* longer than the tail: checked in pieces */
	{
		size_t n = PAT_TAIL + 12345;
		uint8_t *big = malloc(n);

		for (size_t i = 0; i < n; i++)
			big[i] = pat[(off + i) % PAT_LEN];
		assert_int_equal(pattern_check(pat, off, 0, big, n), 0);
		big[n - 1] ^= 1;
		assert_int_equal(pattern_check(pat, off, 0, big, n), 1);
		free(big);
	}
	free(pat);
	free(pat2);
}

static void test_url(void **state)
{
	struct load_opts o;
	char why[128];

	(void)state;
	memset(&o, 0, sizeof(o));
	assert_int_equal(load_parse_url("http://127.0.0.1:8080/plaintext?a=1#frag",
					&o, why, sizeof(why)), 0);
	assert_string_equal(o.host, "127.0.0.1");
	assert_int_equal(o.port, 8080);
	assert_string_equal(o.path, "/plaintext?a=1");
	assert_int_equal(load_parse_url("http://example.org", &o, why, sizeof(why)), 0);
	assert_string_equal(o.host, "example.org");
	assert_int_equal(o.port, 80);
	assert_string_equal(o.path, "/");
	assert_int_equal(load_parse_url("http://[::1]:81/x", &o, why, sizeof(why)), 0);
	assert_string_equal(o.host, "::1");
	assert_int_equal(o.port, 81);
	assert_false(o.tls);
	assert_int_equal(load_parse_url("https://localhost/p", &o, why, sizeof(why)), 0);
	assert_true(o.tls);
	assert_string_equal(o.host, "localhost");
	assert_int_equal(o.port, 443);
	assert_string_equal(o.path, "/p");
	assert_int_equal(load_parse_url("https://[::1]:8443", &o, why, sizeof(why)), 0);
	assert_true(o.tls);
	assert_int_equal(o.port, 8443);
	static const char *const bad[] = {
		"httpx://a/", "ftp://a/", "https://", "https:/a/", "http://", "http://:80/", "http://a:0/",
		"http://a:65536/", "http://a:x/", "http://a:/", "http://[::1/",
		"http://[::1]x/", "http://u@a/", "http://a/b c", "http://a b/",
		"127.0.0.1:80",
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!load_parse_url(bad[i], &o, why, sizeof(why)))
			fail_msg("URL '%s' accepted", bad[i]);
	assert_int_equal(load_parse_hostport("10.0.0.1:7", &o, why, sizeof(why)), 0);
	assert_string_equal(o.host, "10.0.0.1");
	assert_int_equal(o.port, 7);
	assert_int_equal(load_parse_hostport("[fe80::1]:7000", &o, why, sizeof(why)), 0);
	assert_string_equal(o.host, "fe80::1");
	assert_int_equal(load_parse_hostport("::1:7000", &o, why, sizeof(why)), -1);
	assert_int_equal(load_parse_hostport("host", &o, why, sizeof(why)), -1);
	assert_int_equal(load_parse_hostport("host:", &o, why, sizeof(why)), -1);
	assert_int_equal(load_parse_hostport(":80", &o, why, sizeof(why)), -1);
}

static void test_small_parsers(void **state)
{
	int cpus[8];
	uint64_t ms;

	(void)state;
	assert_int_equal(load_parse_cpus("1", cpus, 8), 1);
	assert_int_equal(cpus[0], 1);
	assert_int_equal(load_parse_cpus("0,2-4", cpus, 8), 4);
	assert_int_equal(cpus[3], 4);
	assert_int_equal(load_parse_cpus("0-8", cpus, 8), -1);   /* too many */
	assert_int_equal(load_parse_cpus("1,1", cpus, 8), -1);
	assert_int_equal(load_parse_cpus("3-1", cpus, 8), -1);
	assert_int_equal(load_parse_cpus("", cpus, 8), -1);
	assert_int_equal(load_parse_cpus("1,", cpus, 8), -1);
	assert_int_equal(load_parse_cpus("-1", cpus, 8), -1);
	assert_int_equal(load_parse_cpus("a", cpus, 8), -1);
	assert_int_equal(load_parse_duration("10", &ms), 0);
	assert_int_equal(ms, 10000);
	assert_int_equal(load_parse_duration("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(load_parse_duration("2m", &ms), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(load_parse_duration("0", &ms), -1);
	assert_int_equal(load_parse_duration("-1", &ms), -1);
	assert_int_equal(load_parse_duration("1h", &ms), -1);
	assert_int_equal(load_parse_duration("99999999999999999999", &ms), -1);
}

static int parse(struct load_opts *o, const char *line)
{
	static char copy[512];   /* o->headers point into it */
	char *argv[32];
	int argc = 0;
	FILE *devnull = fopen("/dev/null", "w");
	int rc;

	snprintf(copy, sizeof(copy), "coil-load %s", line);
	for (char *t = strtok(copy, " "); t && argc < 31; t = strtok(NULL, " "))
		argv[argc++] = t;
	argv[argc] = NULL;
	rc = load_parse_args(argc, argv, o, devnull, devnull);
	fclose(devnull);
	return rc;
}

static void test_args(void **state)
{
	static struct load_opts o;

	(void)state;
	assert_int_equal(parse(&o, "echo 127.0.0.1:7000 -c 50 -d 2 --size 1K "
				   "--depth 8 --verify -t 2 --json x.json"), 0);
	assert_int_equal(o.mode, MODE_ECHO);
	assert_int_equal(o.conns, 50);
	assert_int_equal(o.duration_ms, 2000);
	assert_int_equal(o.size, 1024);
	assert_int_equal(o.depth, 8);
	assert_true(o.verify);
	assert_int_equal(o.threads, 2);
	assert_string_equal(o.json, "x.json");
	assert_string_equal(o.addr, "127.0.0.1");
	assert_int_equal(parse(&o, "http http://localhost:8080/p --pipeline 16 "
				   "-H X-A:1 --method POST --cores 1 --rate 1000"), 0);
	assert_int_equal(o.mode, MODE_HTTP);
	assert_string_equal(o.addr, "127.0.0.1");
	assert_int_equal(o.pipeline, 16);
	assert_int_equal(o.nheaders, 1);
	assert_string_equal(o.method, "POST");
	assert_int_equal(o.ncpus, 1);
	assert_int_equal(o.threads, 1);   /* from --cores */
	assert_int_equal(o.rate, 1000);
	assert_int_equal(parse(&o, "http --help"), 1);
	/* DPDK: the engine's flags; one loop unless -t says otherwise */
	assert_int_equal(parse(&o, "echo 10.0.0.1:7 --dpdk=--no-huge "
				   "--ip 10.0.0.2/24 --mbufs 4096 "
				   "--idle-sleep-us 5 --warmup 500ms"), 0);
	assert_string_equal(o.dpdk_args, "--no-huge");
	assert_string_equal(o.ip, "10.0.0.2/24");
	assert_int_equal(o.mbufs, 4096);
	assert_int_equal(o.idle_sleep_us, 5);
	assert_int_equal(o.threads, 1);
	assert_int_equal(o.warmup_ms, 500);
	assert_int_equal(o.cpu_pid, 0);
	assert_int_equal(parse(&o, "echo 127.0.0.1:7 --cpu-pid 1"), 0);
	assert_int_equal(o.cpu_pid, 1);
	static const char *const bad[] = {
		"", "tcp 1.2.3.4:5", "echo", "http", "echo 1.2.3.4:5 extra",
		"echo 1.2.3.4:5 -c 0", "echo 1.2.3.4:5 -c x", "echo 1.2.3.4:5 -c",
		"echo 1.2.3.4:5 --pipeline 2", "echo 1.2.3.4:5 --rate 5",
		"http http://1.2.3.4/ --verify", "http http://1.2.3.4/ --size 5",
		"http http://1.2.3.4/ --depth 2", "http http://1.2.3.4/ -H bad",
		"http http://1.2.3.4/ -H X:\x01", "http http://1.2.3.4/ --method G@T",
		"http http://1.2.3.4/ --close --pipeline 2",
		"http http://1.2.3.4/ --close --rate 10",
		"http http://1.2.3.4/ --bogus", "http http://1.2.3.4/ -d 0",
		"http http://1.2.3.4/ --cores 1,1", "http http://1.2.3.4/ --backend x",
		"http http://1.2.3.4/ --poll x",
		"echo 1.2.3.4:5 --size 0", "echo 1.2.3.4:5 --size 2M",
		"echo 1.2.3.4:5 --depth 1025", "http http://1.2.3.4/ -t 0",
		"echo no-such-host.invalid:5",
		"echo 10.0.0.1:7 --dpdk=--no-huge",            /* no --ip */
		"echo 10.0.0.1:7 --ip 10.0.0.2/24",            /* no --dpdk */
		"echo 10.0.0.1:7 --backend dpdk --ip 10.0.0.2/24",
		"echo [::1]:7 --dpdk=--no-huge --ip 10.0.0.2/24",
		"echo 1.2.3.4:5 --warmup 0", "echo 1.2.3.4:5 --warmup x",
		"echo 1.2.3.4:5 --cpu-pid 0", "echo 1.2.3.4:5 --cpu-pid 2147483647",
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(&o, bad[i]) != -1)
			fail_msg("accepted: coil-load %s", bad[i]);
}

static void test_request(void **state)
{
	static struct load_opts o;
	char *req;
	size_t len;

	(void)state;
	assert_int_equal(parse(&o, "http http://127.0.0.1:8080/a?b -H X-Y:z --close"), 0);
	assert_int_equal(load_build_request(&o, &req, &len), 0);
	assert_int_equal(len, strlen(req));
	assert_string_equal(req, "GET /a?b HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
				 "X-Y:z\r\nConnection: close\r\n\r\n");
	free(req);
	assert_int_equal(parse(&o, "http http://127.0.0.1/ -H Host:h --method HEAD"), 0);
	assert_int_equal(load_build_request(&o, &req, &len), 0);
	assert_int_equal(len, strlen("HEAD / HTTP/1.1\r\nHost:h\r\n\r\n"));
	assert_memory_equal(req, "HEAD / HTTP/1.1\r\nHost:h\r\n\r\n", len);
	free(req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist_vs_sorted),
		cmocka_unit_test(test_hist_buckets),
		cmocka_unit_test(test_pattern),
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_small_parsers),
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_request),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
