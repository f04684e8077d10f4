/* SPDX-License-Identifier: MIT */
/*
 * Parse throughput of engine/proto/http1 (not a test): ns per request and
 * MB/s for a ~300-byte browser request and a ~40-byte /plaintext request,
 * once per scanner level the CPU has (portable, SSE4.2, AVX2). Best of 5
 * runs of ~0.2 s each. Built by tests/fuzz/meson.build in clang builds, or:
 *   gcc -O2 -D_GNU_SOURCE -Iengine/include -Iengine tests/fuzz/bench_http1.c \
 *       engine/proto/http1.c engine/proto/http1_fields.c \
 *       engine/proto/http1_simd.c -o /tmp/bench-http1
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <coil/http1.h>

#include "proto/http1_internal.h"

static const char browser[] =
	"GET /index.html HTTP/1.1\r\n"
	"Host: www.example.com\r\n"
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:125.0) "
	"Gecko/20100101 Firefox/125.0\r\n"
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,"
	"*/*;q=0.8\r\n"
	"Accept-Language: en-US,en;q=0.5\r\n"
	"Accept-Encoding: gzip, deflate, br\r\n"
	"Connection: keep-alive\r\n"
	"\r\n";

static const char plaintext[] =
	"GET /plaintext HTTP/1.1\r\nHost: x.io\r\n\r\n";

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static volatile size_t sink;

/* Nanoseconds per parse of `req`, best of 5. */
static double bench(const char *req, size_t len)
{
	struct coil_http1_header hdrs[64];
	struct coil_http1_parser p;
	struct coil_http1_request r;
	double best = 1e30;

	coil_http1_parser_init(&p, NULL, hdrs, 64);
	for (int run = 0; run < 5; run++) {
		size_t iters = 0, acc = 0;
		double t0 = now(), t;

		do {
			for (int i = 0; i < 10000; i++) {
				int rc = coil_http1_parse(&p, req, len, &r);

				if (rc <= 0) {
					fprintf(stderr, "parse failed: %s\n",
						coil_http1_strerror(rc));
					return -1;
				}
				acc += (size_t)rc + r.nheaders;
			}
			iters += 10000;
			t = now() - t0;
		} while (t < 0.2);
		sink += acc;
		if (t / (double)iters < best)
			best = t / (double)iters;
	}
	return best * 1e9;
}

int main(void)
{
	static const char *names[] = { "portable", "sse4.2", "avx2" };
	const struct {
		const char *name;
		const char *req;
		size_t len;
	} reqs[] = {
		{ "browser", browser, sizeof(browser) - 1 },
		{ "plaintext", plaintext, sizeof(plaintext) - 1 },
	};
	int best = coil__http1_simd_best();

	for (size_t k = 0; k < sizeof(reqs) / sizeof(reqs[0]); k++)
		for (int level = 0; level <= best; level++) {
			double ns;

			coil__http1_simd_set(level);
			ns = bench(reqs[k].req, reqs[k].len);
			if (ns < 0)
				return 1;
			printf("%-9s %3zu B  %-8s  %7.1f ns/req  %8.1f MB/s  "
			       "%6.2f Mreq/s\n", reqs[k].name, reqs[k].len,
			       names[level], ns, (double)reqs[k].len / ns * 1e3,
			       1e3 / ns);
		}
	return 0;
}
