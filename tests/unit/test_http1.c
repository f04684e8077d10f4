/* SPDX-License-Identifier: MIT */
/*
 * engine/proto/http1: the request parser, body reader, Date cache and
 * response writer.
 *
 * Every parser input is fed whole, one byte at a time and split at every
 * point, the way on_data re-offers it (the unconsumed bytes again, followed
 * by new ones, at a new address), and must give the same result each way.
 * Every call's input is copied so that it ends right before a PROT_NONE
 * page: a read past the end faults. Everything runs once per scanner level
 * the CPU has (portable, SSE4.2, AVX2), and the levels must agree.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <coil/http1.h>

#include "proto/http1_internal.h"
#include "http1_vectors/requests.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* --- inputs that end right before an unmapped page ------------------- */

#define ARENA (256 * 1024)
static char *arena_end;

static int guard_setup(void **state)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, ARENA + (size_t)pg, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	(void)state;
	if (m == MAP_FAILED || mprotect(m + ARENA, (size_t)pg, PROT_NONE))
		return -1;
	arena_end = m + ARENA;
	return 0;
}

/* Copy `n` bytes so that the last one is the last readable byte. */
static const char *place(const void *in, size_t n)
{
	char *p;

	assert_true(n <= ARENA);
	p = arena_end - n;
	memmove(p, in, n);
	return p;
}

/* The scanner levels this CPU can run, portable first. */
static int levels[3], nlevels;

static int levels_setup(void **state)
{
	int best = coil__http1_simd_best();

	for (int l = 0; l <= best; l++)
		levels[nlevels++] = l;
	return guard_setup(state);
}

static int levels_teardown(void **state)
{
	(void)state;
	coil__http1_simd_set(-1);
	return 0;
}

/* --- request parsing, normalized to offsets -------------------------- */

#define MAXH 160

struct norm {
	int rc;
	int method;
	unsigned minor, flags, nh;
	unsigned long long cl;
	size_t head_len;
	size_t m[2], t[2], host[2];
	size_t h[MAXH][4];
};

static void slice_in(struct coil_http1_str s, const char *base, size_t len,
		     size_t out[2])
{
	if (!s.len) {
		out[0] = out[1] = 0;
		return;
	}
	assert_non_null(s.ptr);
	assert_true(s.ptr >= base && s.ptr + s.len <= base + len);
	out[0] = (size_t)(s.ptr - base);
	out[1] = s.len;
}

static void normalize(struct norm *n, int rc, const struct coil_http1_request *r,
		      const char *base, size_t len)
{
	memset(n, 0, sizeof(*n));
	n->rc = rc;
	if (rc <= 0)
		return;
	assert_int_equal((size_t)rc, r->head_len);
	assert_true(r->head_len <= len);
	n->method = r->method;
	n->minor = r->version_minor;
	n->flags = r->flags;
	n->cl = r->content_length;
	n->head_len = r->head_len;
	slice_in(r->method_name, base, len, n->m);
	slice_in(r->target, base, len, n->t);
	slice_in(r->host, base, len, n->host);
	assert_true(r->nheaders <= MAXH);
	n->nh = r->nheaders;
	for (unsigned i = 0; i < r->nheaders; i++) {
		slice_in(r->headers[i].name, base, len, &n->h[i][0]);
		slice_in(r->headers[i].value, base, len, &n->h[i][2]);
		/* a zero-length value still lies in the head */
		assert_true(r->headers[i].value.ptr >= base &&
			    r->headers[i].value.ptr <= base + len);
	}
}

static const struct coil_http1_limits *cur_limits;

/* Feed in[0, cuts[k]) for each k, as on_data would, until a result. */
static void parse_cuts(const char *in, size_t n, const size_t *cuts,
		       size_t ncuts, struct norm *out)
{
	static struct coil_http1_header hdrs[MAXH];
	struct coil_http1_parser p;
	struct coil_http1_request req;
	int rc = COIL_HTTP1_NEED_MORE;

	coil_http1_parser_init(&p, cur_limits, hdrs, MAXH);
	for (size_t k = 0; k < ncuts; k++) {
		const char *buf = place(in, cuts[k]);

		assert_true(cuts[k] <= n);
		rc = coil_http1_parse(&p, buf, cuts[k], &req);
		if (rc != COIL_HTTP1_NEED_MORE) {
			normalize(out, rc, &req, buf, cuts[k]);
			/* errors are sticky */
			if (rc < 0)
				assert_int_equal(coil_http1_parse(&p, buf,
								  cuts[k],
								  &req), rc);
			return;
		}
	}
	normalize(out, rc, &req, NULL, 0);
}

static void assert_norm_equal(const struct norm *a, const struct norm *b,
			      const char *what, const char *name, size_t at)
{
	if (memcmp(a, b, sizeof(*a))) {
		print_error("%s: %s differs (at %zu): rc %d vs %d\n", name, what,
			    at, a->rc, b->rc);
		fail();
	}
}

/* Whole, byte by byte and at every split point: the same result. */
static void parse_all_ways(const char *name, const char *in, size_t n,
			   struct norm *whole)
{
	static size_t cuts[ARENA + 1];
	static struct norm other;
	size_t stride = n > 2048 ? 97 : 1;

	cuts[0] = n;
	parse_cuts(in, n, cuts, 1, whole);

	for (size_t i = 0; i < n; i++)
		cuts[i] = i + 1;
	parse_cuts(in, n, cuts, n ? n : 1, &other);
	assert_norm_equal(whole, &other, "byte by byte", name, 0);

	for (size_t s = 0; s < n; s += (s < 64 || s + 64 > n) ? 1 : stride) {
		cuts[0] = s;
		cuts[1] = n;
		parse_cuts(in, n, cuts, 2, &other);
		assert_norm_equal(whole, &other, "split", name, s);
	}
}

/* All ways, at every scanner level: the same result. */
static void parse_every_level(const char *name, const char *in, size_t n,
			      struct norm *whole)
{
	static struct norm first;

	for (int i = 0; i < nlevels; i++) {
		assert_int_equal(coil__http1_simd_set(levels[i]), levels[i]);
		parse_all_ways(name, in, n, i ? whole : &first);
		if (i)
			assert_norm_equal(&first, whole, "scanner level", name,
					  (size_t)levels[i]);
	}
	*whole = first;
	coil__http1_simd_set(-1);
}

static bool str_is(struct coil_http1_str s, const char *lit)
{
	return s.len == strlen(lit) && !memcmp(s.ptr, lit, s.len);
}

static size_t auto_head_len(const char *in)
{
	const char *e = strstr(in, "\r\n\r\n");

	return e ? (size_t)(e + 4 - in) : 0;
}

static void test_valid(void **state)
{
	static struct norm w;

	(void)state;
	for (size_t i = 0; i < NELEM(h1_valid); i++) {
		const struct h1_valid *v = &h1_valid[i];
		size_t n = strlen(v->in);
		size_t head = v->head_len ? v->head_len : auto_head_len(v->in);
		struct coil_http1_header hdrs[MAXH];
		struct coil_http1_parser p;
		struct coil_http1_request r;
		const char *buf;
		int rc;

		parse_every_level(v->name, v->in, n, &w);
		if (w.rc != (int)head)
			print_error("%s: rc %d (%s)\n", v->name, w.rc,
				    coil_http1_strerror(w.rc));
		assert_int_equal(w.rc, head);

		/* The content, once, against the expectations. */
		coil_http1_parser_init(&p, NULL, hdrs, MAXH);
		buf = place(v->in, n);
		rc = coil_http1_parse(&p, buf, n, &r);
		assert_int_equal(rc, head);
		if (r.flags != v->flags)
			print_error("%s: flags %#x, want %#x\n", v->name,
				    r.flags, v->flags);
		assert_int_equal(r.method, v->method);
		assert_true(str_is(r.method_name, "") ||
			    r.method_name.ptr == buf + (v->in[0] == '\r' ?
				strspn(v->in, "\r\n") : 0));
		assert_true(str_is(r.target, v->target));
		assert_int_equal(r.version_minor, v->minor);
		assert_int_equal(r.flags, v->flags);
		assert_int_equal(r.content_length, v->cl);
		assert_int_equal(r.nheaders, v->nheaders);
		assert_ptr_equal(r.headers, hdrs);
		for (unsigned k = 0; k < H1_MAX_EXP_HEADERS && v->h[k].name;
		     k++) {
			if (!str_is(r.headers[k].name, v->h[k].name) ||
			    !str_is(r.headers[k].value, v->h[k].value))
				print_error("%s: header %u is [%.*s]=[%.*s]\n",
					    v->name, k,
					    (int)r.headers[k].name.len,
					    r.headers[k].name.ptr,
					    (int)r.headers[k].value.len,
					    r.headers[k].value.ptr);
			assert_true(str_is(r.headers[k].name, v->h[k].name));
			assert_true(str_is(r.headers[k].value, v->h[k].value));
		}
		if (r.flags & COIL_HTTP1_F_HOST) {
			bool found = false;

			for (unsigned k = 0; k < r.nheaders; k++)
				if (r.headers[k].name.len == 4 &&
				    !strncasecmp(r.headers[k].name.ptr, "host",
						 4)) {
					assert_ptr_equal(r.host.ptr,
							 r.headers[k].value.ptr);
					assert_int_equal(r.host.len,
							 r.headers[k].value.len);
					found = true;
				}
			assert_true(found);
		} else {
			assert_int_equal(r.host.len, 0);
		}
	}
}

static void test_invalid(void **state)
{
	static struct norm w;

	(void)state;
	for (size_t i = 0; i < NELEM(h1_invalid); i++) {
		const struct h1_invalid *v = &h1_invalid[i];
		size_t n = v->len ? v->len : strlen(v->in);

		parse_every_level(v->name, v->in, n, &w);
		if (w.rc != v->rc)
			print_error("%s: rc %d (%s), want %d (%s)\n", v->name,
				    w.rc, coil_http1_strerror(w.rc), v->rc,
				    coil_http1_strerror(v->rc));
		assert_int_equal(w.rc, v->rc);
		assert_int_not_equal(coil_http1_error_status(w.rc), 0);
	}
}

static void test_partial(void **state)
{
	static struct norm w;

	(void)state;
	for (size_t i = 0; i < NELEM(h1_partial); i++) {
		parse_every_level(h1_partial[i], h1_partial[i],
				  strlen(h1_partial[i]), &w);
		assert_int_equal(w.rc, COIL_HTTP1_NEED_MORE);
	}
	/* Every proper prefix of every valid vector's head, too. */
	for (size_t i = 0; i < NELEM(h1_valid); i++) {
		const char *in = h1_valid[i].in;
		size_t head = h1_valid[i].head_len ? h1_valid[i].head_len :
			auto_head_len(in);

		for (size_t k = 0; k < head; k++) {
			static struct coil_http1_header hdrs[MAXH];
			struct coil_http1_parser p;
			struct coil_http1_request r;

			coil_http1_parser_init(&p, NULL, hdrs, MAXH);
			assert_int_equal(coil_http1_parse(&p, place(in, k), k,
							  &r),
					 COIL_HTTP1_NEED_MORE);
		}
	}
}

/* --- limits ---------------------------------------------------------- */

static char big[ARENA];

/* "GET /aaa...a HTTP/1.1\r\n" of exactly `linelen` bytes, then a Host. */
static size_t make_long_line(size_t linelen)
{
	static const char tail[] = " HTTP/1.1\r\nHost: h\r\n\r\n";
	size_t n = 0;

	memcpy(big, "GET /", 5);
	n = 5;
	while (n < linelen - 11)
		big[n++] = 'a';
	memcpy(big + n, tail, sizeof(tail) - 1);
	return n + sizeof(tail) - 1;
}

static void test_line_limit(void **state)
{
	static struct norm w;
	struct coil_http1_limits lim = { .sz = sizeof(lim) };
	size_t n;

	(void)state;
	/* The default: 8 KiB, CRLF included. */
	n = make_long_line(COIL_HTTP1_DEFAULT_MAX_REQUEST_LINE);
	parse_every_level("line at limit", big, n, &w);
	assert_int_equal(w.rc, (int)n);
	n = make_long_line(COIL_HTTP1_DEFAULT_MAX_REQUEST_LINE + 1);
	parse_every_level("line over limit", big, n, &w);
	assert_int_equal(w.rc, COIL_HTTP1_E_LINE_TOO_LONG);
	assert_int_equal(coil_http1_error_status(w.rc), 414);
	/* The error comes as soon as the limit is reached, without an end
	 * of line. */
	parse_every_level("line prefix at limit", big,
			  COIL_HTTP1_DEFAULT_MAX_REQUEST_LINE, &w);
	assert_int_equal(w.rc, COIL_HTTP1_E_LINE_TOO_LONG);
	parse_every_level("line prefix below limit", big,
			  COIL_HTTP1_DEFAULT_MAX_REQUEST_LINE - 1, &w);
	assert_int_equal(w.rc, COIL_HTTP1_NEED_MORE);

	/* A configured limit; leading empty lines count. */
	lim.max_request_line = 32;
	cur_limits = &lim;
	n = make_long_line(32);
	parse_every_level("small limit", big, n, &w);
	assert_int_equal(w.rc, (int)n);
	memmove(big + 2, big, n);
	memcpy(big, "\r\n", 2);
	parse_every_level("small limit + CRLF", big, n + 2, &w);
	assert_int_equal(w.rc, COIL_HTTP1_E_LINE_TOO_LONG);
	/* A bad byte before the limit is reported as such. */
	memcpy(big, "GET /\x01", 6);
	parse_every_level("bad byte before limit", big, n, &w);
	assert_int_equal(w.rc, COIL_HTTP1_E_BAD_TARGET);
	cur_limits = NULL;
}

/* A request whose header section (after the request line) is `size`
 * bytes, final CRLF included, made of one big field. */
static size_t make_big_head(size_t size)
{
	static const char line[] = "GET / HTTP/1.1\r\n";
	size_t n = sizeof(line) - 1;

	memcpy(big, line, n);
	memcpy(big + n, "Host: h\r\nX: ", 12);
	n += 12;
	while (n < sizeof(line) - 1 + size - 4)
		big[n++] = 'v';
	memcpy(big + n, "\r\n\r\n", 4);
	return n + 4;
}

static void test_head_limit(void **state)
{
	static struct norm w;
	struct coil_http1_limits lim = { .sz = sizeof(lim), .max_head = 100 };
	size_t n;

	(void)state;
	n = make_big_head(COIL_HTTP1_DEFAULT_MAX_HEAD);
	parse_every_level("head at limit", big, n, &w);
	assert_int_equal(w.rc, (int)n);
	n = make_big_head(COIL_HTTP1_DEFAULT_MAX_HEAD + 1);
	parse_every_level("head over limit", big, n, &w);
	assert_int_equal(w.rc, COIL_HTTP1_E_HEAD_TOO_LARGE);
	assert_int_equal(coil_http1_error_status(w.rc), 431);

	cur_limits = &lim;
	n = make_big_head(100);
	parse_every_level("small head at limit", big, n, &w);
	assert_int_equal(w.rc, (int)n);
	n = make_big_head(101);
	parse_every_level("small head over limit", big, n, &w);
	assert_int_equal(w.rc, COIL_HTTP1_E_HEAD_TOO_LARGE);
	/* The limit is a prefix property: 100 bytes without the end. */
	parse_every_level("small head prefix", big, 16 + 100, &w);
	assert_int_equal(w.rc, COIL_HTTP1_E_HEAD_TOO_LARGE);
	parse_every_level("small head prefix - 1", big, 16 + 99, &w);
	assert_int_equal(w.rc, COIL_HTTP1_NEED_MORE);
	cur_limits = NULL;
}

static size_t make_fields(unsigned count)
{
	size_t n = (size_t)sprintf(big, "GET / HTTP/1.1\r\nHost: h\r\n");

	for (unsigned i = 1; i < count; i++)
		n += (size_t)sprintf(big + n, "X-%u: %u\r\n", i, i);
	memcpy(big + n, "\r\n", 2);
	return n + 2;
}

static void test_header_count(void **state)
{
	static struct norm w;
	struct coil_http1_limits lim = { .sz = sizeof(lim), .max_headers = 3,
					 .max_head = 65536 };
	struct coil_http1_header small[2];
	struct coil_http1_parser p;
	struct coil_http1_request r;
	size_t n;

	(void)state;
	n = make_fields(COIL_HTTP1_DEFAULT_MAX_HEADERS);
	parse_every_level("64 fields", big, n, &w);
	assert_int_equal(w.rc, (int)n);
	assert_int_equal(w.nh, 64);
	n = make_fields(COIL_HTTP1_DEFAULT_MAX_HEADERS + 1);
	parse_every_level("65 fields", big, n, &w);
	assert_int_equal(w.rc, COIL_HTTP1_E_TOO_MANY_HEADERS);
	assert_int_equal(coil_http1_error_status(w.rc), 431);

	cur_limits = &lim;
	n = make_fields(3);
	parse_every_level("3 of 3 fields", big, n, &w);
	assert_int_equal(w.rc, (int)n);
	n = make_fields(4);
	parse_every_level("4 of 3 fields", big, n, &w);
	assert_int_equal(w.rc, COIL_HTTP1_E_TOO_MANY_HEADERS);
	cur_limits = NULL;

	/* A larger configured limit than the array: the array wins. */
	lim.max_headers = 100;
	n = make_fields(3);
	coil_http1_parser_init(&p, &lim, small, 2);
	assert_int_equal(coil_http1_parse(&p, place(big, n), n, &r),
			 COIL_HTTP1_E_TOO_MANY_HEADERS);
	n = make_fields(2);
	coil_http1_parser_init(&p, &lim, small, 2);
	assert_int_equal(coil_http1_parse(&p, place(big, n), n, &r), (int)n);
	assert_int_equal(r.nheaders, 2);

	/* An old, shorter limits struct: missing fields take defaults. */
	lim.sz = offsetof(struct coil_http1_limits, max_head);
	lim.max_request_line = 10;
	lim.max_head = 1;
	coil_http1_parser_init(&p, &lim, small, 2);
	assert_int_equal(coil_http1_parse(&p, place(big, n), n, &r),
			 COIL_HTTP1_E_LINE_TOO_LONG);
	lim.max_request_line = 40;
	coil_http1_parser_init(&p, &lim, small, 2);
	assert_int_equal(coil_http1_parse(&p, place(big, n), n, &r), (int)n);
}

/* --- parser lifecycle -------------------------------------------------- */

static void test_pipeline_and_reset(void **state)
{
	static const char in[] =
		"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
		"\r\nPOST /2 HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\nxyz"
		"GET /3 HTTP/1.0\r\n\r\n";
	struct coil_http1_header hdrs[8];
	struct coil_http1_parser p;
	struct coil_http1_request r;
	struct coil_http1_body b;
	struct coil_http1_str d;
	size_t off = 0, n = sizeof(in) - 1, used;
	const char *buf;
	int rc;

	(void)state;
	coil_http1_parser_init(&p, NULL, hdrs, 8);
	buf = place(in, n);
	rc = coil_http1_parse(&p, buf, n, &r);
	assert_int_equal(rc, 28);
	assert_true(str_is(r.target, "/1"));
	assert_true(str_is(r.host, "a"));
	off += (size_t)rc;
	/* The next request starts at the caller's next byte. */
	rc = coil_http1_parse(&p, buf + off, n - off, &r);
	assert_true(rc > 0);
	assert_true(str_is(r.target, "/2"));
	assert_true(str_is(r.host, "b"));
	assert_int_equal(r.content_length, 3);
	off += (size_t)rc;
	coil_http1_body_init(&b, &r, NULL, NULL, 0);
	assert_int_equal(coil_http1_body_read(&b, buf + off, n - off, &d,
					      &used), COIL_HTTP1_DATA);
	assert_int_equal(used, 3);
	assert_int_equal(d.len, 3);
	assert_memory_equal(d.ptr, "xyz", 3);
	off += used;
	assert_int_equal(coil_http1_body_read(&b, buf + off, n - off, &d,
					      &used), COIL_HTTP1_DONE);
	assert_int_equal(used, 0);
	rc = coil_http1_parse(&p, buf + off, n - off, &r);
	assert_int_equal((size_t)rc, n - off);
	assert_true(str_is(r.target, "/3"));
	assert_int_equal(r.nheaders, 0);
	assert_null(r.host.ptr);
	assert_false(r.flags & COIL_HTTP1_F_KEEP_ALIVE);

	/* Errors stick until reset; reset forgets a partial request too. */
	rc = coil_http1_parse(&p, "GET /\x01", 6, &r);
	assert_int_equal(rc, COIL_HTTP1_E_BAD_TARGET);
	assert_int_equal(coil_http1_parse(&p, "GET / HTTP/1.0\r\n\r\n", 18, &r),
			 COIL_HTTP1_E_BAD_TARGET);
	coil_http1_parser_reset(&p);
	assert_int_equal(coil_http1_parse(&p, "PUT /x HTT", 10, &r),
			 COIL_HTTP1_NEED_MORE);
	coil_http1_parser_reset(&p);
	assert_int_equal(coil_http1_parse(&p, "GET / HTTP/1.0\r\n\r\n", 18, &r),
			 18);
	/* Less input than was already scanned is a caller bug, reported. */
	assert_int_equal(coil_http1_parse(&p, "GET / HT", 8, &r),
			 COIL_HTTP1_NEED_MORE);
	assert_int_equal(coil_http1_parse(&p, "GET", 3, &r), COIL_HTTP1_E_INPUT);
}

static void test_errors_named(void **state)
{
	struct coil_http1_out o;
	char small[4];
	int n = 0;

	(void)state;
	/* Every parse error has its own name and a status, and none is a
	 * -errno (Linux's are -4095..-1): not the -EINVAL / -ENOSPC of the
	 * out_* calls in the same header, nor any other. */
	for (int e = COIL_HTTP1_E_FIRST; e >= COIL_HTTP1_E_LAST; e--, n++) {
		const char *s = coil_http1_strerror(e);
		int st = coil_http1_error_status(e);

		assert_true(coil_http1_is_error(e));
		assert_true(e < -4095);
		assert_string_not_equal(s, "unknown error");
		for (int f = e + 1; f <= COIL_HTTP1_E_FIRST; f++)
			assert_string_not_equal(s, coil_http1_strerror(f));
		assert_true(st == 400 || st == 414 || st == 431 || st == 501 ||
			    st == 505);
	}
	assert_int_equal(n, 27);
	assert_int_equal(COIL_HTTP1_E_BAD_STATUS, COIL_HTTP1_E_LAST);
	for (int e = -1; e >= -4095; e--)
		assert_false(coil_http1_is_error(e));
	assert_false(coil_http1_is_error(COIL_HTTP1_NEED_MORE));
	assert_false(coil_http1_is_error(COIL_HTTP1_DONE));
	coil_http1_out_init(&o, small, sizeof(small));
	coil_http1_out_status(&o, 200, NULL);
	assert_int_equal(coil_http1_out_end(&o), -ENOSPC);
	assert_false(coil_http1_is_error(-ENOSPC));
	coil_http1_out_init(&o, small, sizeof(small));
	coil_http1_out_status(&o, 7, NULL);
	assert_int_equal(coil_http1_out_end(&o), -EINVAL);
	assert_false(coil_http1_is_error(-EINVAL));
	assert_string_equal(coil_http1_strerror(-EINVAL), "unknown error");
	assert_string_equal(coil_http1_strerror(-ENOSPC), "unknown error");
	assert_string_equal(coil_http1_strerror(-1000), "unknown error");
	assert_int_equal(coil_http1_error_status(COIL_HTTP1_E_VERSION), 505);
	assert_int_equal(coil_http1_error_status(COIL_HTTP1_E_TE_UNSUPPORTED),
			 501);
	assert_int_equal(coil_http1_error_status(COIL_HTTP1_E_LINE_TOO_LONG),
			 414);
	assert_int_equal(coil_http1_error_status(COIL_HTTP1_E_CL_AND_TE), 400);
	assert_int_equal(coil_http1_error_status(-1000), 400);
	assert_int_equal(coil_http1_error_status(0), 0);
	assert_int_equal(coil_http1_error_status(42), 0);
}

/* --- SIMD scanners against a byte-by-byte oracle ----------------------- */

static bool oracle_value(unsigned char b)
{
	return b == '\t' || (b >= 0x20 && b != 0x7f);
}

static bool oracle_target(unsigned char b)
{
	return b > 0x20 && b < 0x7f;
}

typedef const char *(*scan_fn)(const char *, const char *);

static void check_scan(scan_fn fn, bool (*ok)(unsigned char), const char *p,
		       size_t len)
{
	const char *end = p + len, *q = fn(p, end), *want = p;

	while (want < end && ok((unsigned char)*want))
		want++;
	/* It skips only good bytes, and stops at the first bad one or
	 * leaves fewer than 16 bytes for the byte loop. */
	assert_true(q >= p && q <= end);
	assert_true(q <= want);
	assert_true(q == want || end - q < 16);
}

static void test_simd_scanners(void **state)
{
	static const size_t lens[] = { 16, 17, 31, 32, 33, 47, 48, 63, 64,
				       65, 80 };
	struct {
		scan_fn fn;
		bool (*ok)(unsigned char);
		int level;
	} scans[] = {
		{ coil__http1_scan_value_sse42, oracle_value,
		  COIL__HTTP1_SIMD_SSE42 },
		{ coil__http1_scan_value_avx2, oracle_value,
		  COIL__HTTP1_SIMD_AVX2 },
		{ coil__http1_scan_target_sse42, oracle_target,
		  COIL__HTTP1_SIMD_SSE42 },
		{ coil__http1_scan_target_avx2, oracle_target,
		  COIL__HTTP1_SIMD_AVX2 },
	};
	char buf[80];
	int tested = 0;

	(void)state;
	for (size_t s = 0; s < NELEM(scans); s++) {
		if (scans[s].level > coil__http1_simd_best())
			continue;
		tested++;
		for (size_t li = 0; li < NELEM(lens); li++) {
			size_t len = lens[li];

			memset(buf, 'a', len);
			check_scan(scans[s].fn, scans[s].ok,
				   place(buf, len), len);
			for (size_t pos = 0; pos < len; pos++)
				for (unsigned b = 0; b < 256; b++) {
					memset(buf, 'a', len);
					buf[pos] = (char)b;
					check_scan(scans[s].fn, scans[s].ok,
						   place(buf, len), len);
				}
		}
	}
	print_message("scanners tested: %d of 4 (best level %d)\n", tested,
		      coil__http1_simd_best());
	assert_int_equal(coil__http1_simd_set(COIL__HTTP1_SIMD_NONE),
			 COIL__HTTP1_SIMD_NONE);
	assert_int_equal(coil__http1_simd_set(99), coil__http1_simd_best());
	coil__http1_simd_set(-1);
}

/* --- bodies ------------------------------------------------------------ */

struct bres {
	int rc;
	char data[512];
	size_t dlen;
	unsigned ntr;
	char tn[64], tv[64];
	size_t consumed;
	uint64_t announced, received;
};

/* Read a body fed in[0, cuts[k]) for each k, dropping what the reader
 * consumed, as on_data does. */
static void body_cuts(const struct coil_http1_request *req, const char *in,
		      size_t n, const size_t *cuts, size_t ncuts,
		      struct bres *r)
{
	struct coil_http1_header tr[8];
	struct coil_http1_body b;
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	r->rc = COIL_HTTP1_NEED_MORE;
	coil_http1_body_init(&b, req, NULL, tr, 8);
	for (size_t k = 0; k < ncuts; k++) {
		size_t have = cuts[k];

		assert_true(have <= n && have >= off);
		for (;;) {
			const char *buf = place(in + off, have - off);
			struct coil_http1_str d = { 0 };
			size_t used = 12345;
			int rc = coil_http1_body_read(&b, buf, have - off, &d,
						      &used);

			assert_true(used <= have - off);
			r->announced = b.announced;
			r->received = b.received;
			if (rc == COIL_HTTP1_DATA) {
				assert_true(d.len > 0);
				assert_true(d.ptr >= buf &&
					    d.ptr + d.len <= buf + used);
				assert_true(r->dlen + d.len <= sizeof(r->data));
				memcpy(r->data + r->dlen, d.ptr, d.len);
				r->dlen += d.len;
				off += used;
				continue;
			}
			off += used;
			r->rc = rc;
			if (rc == COIL_HTTP1_NEED_MORE)
				break;
			if (rc == COIL_HTTP1_DONE) {
				r->consumed = off;
				r->ntr = b.ntrailers;
				if (b.ntrailers) {
					assert_true(tr[0].name.ptr >= buf &&
						    tr[0].value.ptr + tr[0].value.len
						    <= buf + used);
					snprintf(r->tn, sizeof(r->tn), "%.*s",
						 (int)tr[0].name.len,
						 tr[0].name.ptr);
					snprintf(r->tv, sizeof(r->tv), "%.*s",
						 (int)tr[0].value.len,
						 tr[0].value.ptr);
				}
				/* DONE repeats and consumes nothing more. */
				assert_int_equal(coil_http1_body_read(&b, buf,
					have - off + used, &d, &used),
					COIL_HTTP1_DONE);
				assert_int_equal(used, 0);
			} else {
				assert_int_equal(used, 0);
			}
			return;
		}
	}
}

static void body_all_ways(const char *name,
			  const struct coil_http1_request *req,
			  const char *in, size_t n, struct bres *whole)
{
	static size_t cuts[16384];
	static struct bres other;

	assert_true(n < NELEM(cuts));
	cuts[0] = n;
	body_cuts(req, in, n, cuts, 1, whole);
	for (size_t i = 0; i < n; i++)
		cuts[i] = i + 1;
	if (n) {
		body_cuts(req, in, n, cuts, n, &other);
		if (memcmp(whole, &other, sizeof(other)))
			print_error("%s: byte by byte differs\n", name);
		assert_memory_equal(whole, &other, sizeof(other));
	}
	for (size_t s = 0; s < n; s++) {
		cuts[0] = s;
		cuts[1] = n;
		body_cuts(req, in, n, cuts, 2, &other);
		if (memcmp(whole, &other, sizeof(other)))
			print_error("%s: split at %zu differs\n", name, s);
		assert_memory_equal(whole, &other, sizeof(other));
	}
}

static void test_chunked(void **state)
{
	static struct bres w;
	struct coil_http1_request req = { .flags = COIL_HTTP1_F_CHUNKED };

	(void)state;
	for (size_t i = 0; i < NELEM(h1_chunked); i++) {
		const struct h1_chunked *v = &h1_chunked[i];
		size_t n = v->len ? v->len : strlen(v->in);
		size_t dlen = v->data_len ? v->data_len :
			(v->data ? strlen(v->data) : 0);

		body_all_ways(v->name, &req, v->in, n, &w);
		if (w.rc != v->rc)
			print_error("%s: rc %d (%s), want %d\n", v->name, w.rc,
				    coil_http1_strerror(w.rc), v->rc);
		assert_int_equal(w.rc, v->rc);
		if (v->data) {
			assert_int_equal(w.dlen, dlen);
			assert_memory_equal(w.data, v->data, dlen);
		}
		assert_int_equal(w.received, w.dlen);
		if (v->rc == COIL_HTTP1_DONE) {
			assert_int_equal(w.consumed,
					 v->consumed ? v->consumed : n);
			assert_int_equal(w.announced, w.dlen);
			assert_int_equal(w.ntr, v->ntrailers);
			if (v->trailer_name) {
				assert_string_equal(w.tn, v->trailer_name);
				assert_string_equal(w.tv, v->trailer_value);
			}
		}
	}
}

static void test_chunked_limits(void **state)
{
	static struct bres w;
	struct coil_http1_request req = { .flags = COIL_HTTP1_F_CHUNKED };
	size_t n;

	(void)state;
	/* The size line, extensions included, is bounded. */
	n = (size_t)sprintf(big, "5;");
	while (n < COIL_HTTP1_MAX_CHUNK_LINE - 2)
		big[n++] = 'x';
	memcpy(big + n, "\r\nhello\r\n0\r\n\r\n", 14);
	body_all_ways("chunk line at limit", &req, big, n + 14, &w);
	assert_int_equal(w.rc, COIL_HTTP1_DONE);
	memmove(big + 1, big, n + 14);
	body_all_ways("chunk line over limit", &req, big, n + 15, &w);
	assert_int_equal(w.rc, COIL_HTTP1_E_CHUNK_LINE_TOO_LONG);

	/* Too many trailer fields. */
	n = (size_t)sprintf(big, "0\r\n");
	for (unsigned i = 0; i < COIL_HTTP1_DEFAULT_MAX_HEADERS + 1; i++)
		n += (size_t)sprintf(big + n, "T%u: v\r\n", i);
	n += (size_t)sprintf(big + n, "\r\n");
	body_all_ways("too many trailers", &req, big, n, &w);
	assert_int_equal(w.rc, COIL_HTTP1_E_TOO_MANY_HEADERS);
	/* 64 are fine; 8 are stored (the array size). */
	n = (size_t)sprintf(big, "0\r\n");
	for (unsigned i = 0; i < COIL_HTTP1_DEFAULT_MAX_HEADERS; i++)
		n += (size_t)sprintf(big + n, "T%u: v%u\r\n", i, i);
	n += (size_t)sprintf(big + n, "\r\n");
	body_all_ways("64 trailers", &req, big, n, &w);
	assert_int_equal(w.rc, COIL_HTTP1_DONE);
	assert_int_equal(w.ntr, 8);
	assert_string_equal(w.tn, "T0");
	assert_string_equal(w.tv, "v0");
}

static void test_body_announced(void **state)
{
	struct coil_http1_request req = { .flags = COIL_HTTP1_F_CHUNKED };
	struct coil_http1_body b;
	struct coil_http1_str d;
	size_t used;

	(void)state;
	/* The size is known (for a 413) before any data byte arrives. */
	coil_http1_body_init(&b, &req, NULL, NULL, 0);
	assert_int_equal(coil_http1_body_read(&b, "100000\r\n", 8, &d, &used),
			 COIL_HTTP1_NEED_MORE);
	assert_int_equal(used, 8);
	assert_int_equal(b.announced, 0x100000);
	assert_int_equal(b.received, 0);
	/* It saturates instead of wrapping. */
	coil_http1_body_init(&b, &req, NULL, NULL, 0);
	assert_int_equal(coil_http1_body_read(&b, "ffffffffffffffff\r\n", 18,
					      &d, &used), COIL_HTTP1_NEED_MORE);
	assert_int_equal(b.announced, UINT64_MAX);
	/* Errors are sticky and consume nothing. */
	coil_http1_body_init(&b, &req, NULL, NULL, 0);
	assert_int_equal(coil_http1_body_read(&b, "z", 1, &d, &used),
			 COIL_HTTP1_E_BAD_CHUNK_SIZE);
	assert_int_equal(used, 0);
	assert_int_equal(coil_http1_body_read(&b, "0\r\n\r\n", 5, &d, &used),
			 COIL_HTTP1_E_BAD_CHUNK_SIZE);
}

static void test_content_length_body(void **state)
{
	static struct bres w;
	struct coil_http1_request req = {
		.flags = COIL_HTTP1_F_CONTENT_LENGTH, .content_length = 11 };
	struct coil_http1_request none = { .flags = 0 };
	struct coil_http1_body b;
	struct coil_http1_str d;
	size_t used;

	(void)state;
	body_all_ways("content-length", &req, "hello worldGET /", 16, &w);
	assert_int_equal(w.rc, COIL_HTTP1_DONE);
	assert_int_equal(w.dlen, 11);
	assert_memory_equal(w.data, "hello world", 11);
	assert_int_equal(w.consumed, 11);
	assert_int_equal(w.announced, 11);
	body_all_ways("content-length short", &req, "hello", 5, &w);
	assert_int_equal(w.rc, COIL_HTTP1_NEED_MORE);
	assert_int_equal(w.received, 5);

	req.content_length = 0;
	coil_http1_body_init(&b, &req, NULL, NULL, 0);
	assert_int_equal(coil_http1_body_read(&b, "x", 1, &d, &used),
			 COIL_HTTP1_DONE);
	assert_int_equal(used, 0);
	coil_http1_body_init(&b, &none, NULL, NULL, 0);
	assert_int_equal(coil_http1_body_read(&b, "x", 1, &d, &used),
			 COIL_HTTP1_DONE);
	assert_int_equal(used, 0);
}

/* --- Date -------------------------------------------------------------- */

static void test_date(void **state)
{
	static const struct {
		int64_t t;
		const char *s;
	} fixed[] = {
		{ 0, "Thu, 01 Jan 1970 00:00:00 GMT" },
		{ 784111777, "Sun, 06 Nov 1994 08:49:37 GMT" },  /* RFC 9110 */
		{ 951782400, "Tue, 29 Feb 2000 00:00:00 GMT" },
		{ 1709164800, "Thu, 29 Feb 2024 00:00:00 GMT" },
		{ 4102444799, "Thu, 31 Dec 2099 23:59:59 GMT" },
		{ 253402300799, "Fri, 31 Dec 9999 23:59:59 GMT" },
		{ 253402300800, "Fri, 31 Dec 9999 23:59:59 GMT" },  /* clamp */
		{ -1, "Thu, 01 Jan 1970 00:00:00 GMT" },            /* clamp */
	};
	struct coil_http1_date d;
	unsigned seed = 12345;

	(void)state;
	coil_http1_date_init(&d);
	for (size_t i = 0; i < NELEM(fixed); i++) {
		assert_string_equal(coil_http1_date_update(&d, fixed[i].t),
				    fixed[i].s);
		assert_int_equal(strlen(d.str), COIL_HTTP1_DATE_LEN);
	}
	/* Within one second nothing is regenerated. */
	coil_http1_date_update(&d, 784111777);
	d.str[0] = 'X';
	assert_int_equal(coil_http1_date_update(&d, 784111777)[0], 'X');
	assert_string_equal(coil_http1_date_update(&d, 784111778),
			    "Sun, 06 Nov 1994 08:49:38 GMT");

	/* Against the C library (C locale) over 1970..2400. */
	for (int i = 0; i < 20000; i++) {
		char want[64];
		struct tm tm;
		time_t t;

		seed = seed * 1103515245u + 12345u;
		t = (time_t)(((uint64_t)seed << 20 ^ (uint64_t)i * 7919) %
			     13569465600ull);
		gmtime_r(&t, &tm);
		strftime(want, sizeof(want), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		assert_string_equal(coil_http1_date_update(&d, (int64_t)t),
				    want);
	}
}

/* --- response writer --------------------------------------------------- */

static void test_writer(void **state)
{
	static const char want[] =
		"HTTP/1.1 200 OK\r\n"
		"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
		"Server: coil\r\n"
		"Content-Type: text/plain\r\n"
		"Content-Length: 13\r\n"
		"X-Count: 18446744073709551615\r\n"
		"\r\n";
	struct coil_http1_date d;
	struct coil_http1_out o;
	char buf[512];
	int rc;

	(void)state;
	coil_http1_date_init(&d);
	coil_http1_date_update(&d, 784111777);
	/* Every buffer size: exact output when it fits, -ENOSPC otherwise,
	 * never a byte past the end. */
	for (size_t cap = 0; cap <= sizeof(want) - 1; cap++) {
		char *p = (char *)place("", 0) - cap;

		coil_http1_out_init(&o, p, cap);
		coil_http1_out_status(&o, 200, NULL);
		coil_http1_out_date(&o, &d);
		coil_http1_out_header(&o, "Server", "coil", 4);
		coil_http1_out_header(&o, "Content-Type", "text/plain", 10);
		coil_http1_out_content_length(&o, 13);
		coil_http1_out_header_u64(&o, "X-Count", UINT64_MAX);
		coil_http1_out_connection(&o, 1, true);
		coil_http1_out_connection(&o, 0, false);
		rc = coil_http1_out_end(&o);
		if (cap < sizeof(want) - 1) {
			assert_int_equal(rc, -ENOSPC);
		} else {
			assert_int_equal(rc, sizeof(want) - 1);
			assert_memory_equal(p, want, sizeof(want) - 1);
		}
	}

	coil_http1_out_init(&o, buf, sizeof(buf));
	coil_http1_out_status(&o, 404, NULL);
	coil_http1_out_connection(&o, 1, false);
	coil_http1_out_status(&o, 299, NULL);
	coil_http1_out_status(&o, 418, "I'm a teapot");
	coil_http1_out_connection(&o, 0, true);
	assert_int_equal(coil_http1_out_result(&o), (int)o.len);
	rc = coil_http1_out_end(&o);
	assert_int_equal(rc, (int)o.len);
	buf[o.len] = '\0';
	assert_string_equal(buf, "HTTP/1.1 404 Not Found\r\n"
			    "Connection: close\r\n"
			    "HTTP/1.1 299 \r\n"
			    "HTTP/1.1 418 I'm a teapot\r\n"
			    "Connection: keep-alive\r\n\r\n");

	/* Response splitting and bad arguments are refused. */
	coil_http1_out_init(&o, buf, sizeof(buf));
	coil_http1_out_header(&o, "X", "a\r\nSet-Cookie: x", 16);
	assert_int_equal(coil_http1_out_end(&o), -EINVAL);
	coil_http1_out_init(&o, buf, sizeof(buf));
	coil_http1_out_header(&o, "X Y", "a", 1);
	assert_int_equal(coil_http1_out_end(&o), -EINVAL);
	coil_http1_out_init(&o, buf, sizeof(buf));
	coil_http1_out_header(&o, "", "a", 1);
	assert_int_equal(coil_http1_out_result(&o), -EINVAL);
	coil_http1_out_init(&o, buf, sizeof(buf));
	coil_http1_out_status(&o, 99, NULL);
	assert_int_equal(coil_http1_out_result(&o), -EINVAL);
	coil_http1_out_init(&o, buf, sizeof(buf));
	coil_http1_out_status(&o, 1000, NULL);
	assert_int_equal(coil_http1_out_result(&o), -EINVAL);
	coil_http1_out_init(&o, buf, sizeof(buf));
	coil_http1_out_status(&o, 200, "O\nK");
	assert_int_equal(coil_http1_out_result(&o), -EINVAL);
	/* The first error sticks. */
	coil_http1_out_init(&o, buf, 4);
	coil_http1_out_status(&o, 200, NULL);
	coil_http1_out_status(&o, 1, NULL);
	assert_int_equal(coil_http1_out_result(&o), -ENOSPC);

	/* Every standard reason phrase is writable. */
	for (int s = 100; s < 600; s++) {
		coil_http1_out_init(&o, buf, sizeof(buf));
		coil_http1_out_status(&o, s, NULL);
		assert_int_equal(coil_http1_out_result(&o),
				 15 + (int)strlen(coil_http1_reason(s)));
	}
	assert_string_equal(coil_http1_reason(413), "Content Too Large");
	assert_string_equal(coil_http1_reason(600), "");
}

/* Chunked output from the writer reads back through the body reader. */
static void test_writer_chunked_roundtrip(void **state)
{
	static struct bres w;
	struct coil_http1_request req = { .flags = COIL_HTTP1_F_CHUNKED };
	struct coil_http1_out o;
	char buf[1024], data[300];
	int rc;

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)('a' + i % 26);
	coil_http1_out_init(&o, buf, sizeof(buf));
	coil_http1_out_status(&o, 200, NULL);
	coil_http1_out_chunked(&o);
	assert_int_equal(coil_http1_out_end(&o), 47);
	assert_memory_equal(buf, "HTTP/1.1 200 OK\r\n"
			    "Transfer-Encoding: chunked\r\n\r\n", 47);
	coil_http1_out_init(&o, buf, sizeof(buf));
	coil_http1_out_chunk(&o, 1);
	coil_http1_out_bytes(&o, data, 1);
	coil_http1_out_chunk_end(&o);
	coil_http1_out_chunk(&o, 299);
	coil_http1_out_bytes(&o, data + 1, 299);
	coil_http1_out_chunk_end(&o);
	coil_http1_out_last_chunk(&o);
	coil_http1_out_header(&o, "Checksum", "abc", 3);
	rc = coil_http1_out_end(&o);
	assert_true(rc > 0);
	assert_memory_equal(buf, "1\r\na\r\n12b\r\n", 11);
	body_all_ways("writer roundtrip", &req, buf, (size_t)rc, &w);
	assert_int_equal(w.rc, COIL_HTTP1_DONE);
	assert_int_equal(w.dlen, 300);
	assert_memory_equal(w.data, data, 300);
	assert_int_equal(w.ntr, 1);
	assert_string_equal(w.tn, "Checksum");
	assert_string_equal(w.tv, "abc");
	assert_int_equal(w.consumed, (size_t)rc);

	coil_http1_out_init(&o, buf, sizeof(buf));
	coil_http1_out_chunk(&o, 0);
	assert_int_equal(coil_http1_out_result(&o), -EINVAL);
	coil_http1_out_init(&o, buf, sizeof(buf));
	coil_http1_out_chunk(&o, UINT64_MAX);
	assert_int_equal(coil_http1_out_result(&o), 18);
	assert_memory_equal(buf, "ffffffffffffffff\r\n", 18);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_partial),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_head_limit),
		cmocka_unit_test(test_header_count),
		cmocka_unit_test(test_pipeline_and_reset),
		cmocka_unit_test(test_errors_named),
		cmocka_unit_test(test_simd_scanners),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_chunked_limits),
		cmocka_unit_test(test_body_announced),
		cmocka_unit_test(test_content_length_body),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_writer),
		cmocka_unit_test(test_writer_chunked_roundtrip),
	};

	return cmocka_run_group_tests(tests, levels_setup, levels_teardown);
}
