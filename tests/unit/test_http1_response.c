/* SPDX-License-Identifier: MIT */
/* The client-side response parser (coil_http1_response_parse) and the
 * response body framing: Content-Length, chunked (extensions, trailers),
 * bodiless statuses, close-delimited bodies, pipelined responses fed whole,
 * at every split point and byte by byte; malformed heads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <coil/http1.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a client makes of a byte stream of responses. */
struct seen {
	int status[16];
	unsigned flags[16];
	char body[16][64];
	size_t body_len[16];
	unsigned n;
	int err;
	/* parser state between calls */
	int in_body;
	struct coil_http1_body b;
};

/* Consume what can be consumed of buf; returns the bytes used. */
static size_t consume(struct seen *s, const char *buf, size_t len)
{
	size_t used = 0;

	/* a body may end with no byte left (DONE on empty input) */
	while ((used < len || s->in_body) && !s->err) {
		if (s->in_body) {
			struct coil_http1_str d;
			size_t n;
			int rc = coil_http1_body_read(&s->b, buf + used,
						      len - used, &d, &n);

			used += n;
			if (rc == COIL_HTTP1_DATA) {
				assert_true(s->body_len[s->n] + d.len <= 64);
				memcpy(s->body[s->n] + s->body_len[s->n], d.ptr,
				       d.len);
				s->body_len[s->n] += d.len;
				continue;
			}
			if (rc == COIL_HTTP1_DONE) {
				s->in_body = 0;
				s->n++;
				continue;
			}
			if (rc < 0)
				s->err = rc;
			break;
		}
		{
			struct coil_http1_response r;
			struct coil_http1_header h[8];
			int rc = coil_http1_response_parse(buf + used, len - used,
							   false, &r, h, 8, NULL);

			if (rc == 0)
				break;
			if (rc < 0) {
				s->err = rc;
				break;
			}
			assert_true((size_t)rc == r.head_len);
			used += (size_t)rc;
			assert_true(s->n < 16);
			s->status[s->n] = r.status;
			s->flags[s->n] = r.flags;
			s->body_len[s->n] = 0;
			coil_http1_response_body_init(&s->b, &r, NULL, NULL, 0);
			s->in_body = 1;
		}
	}
	return used;
}

/* Feed `stream` in two parts split at `cut` (the unconsumed rest of the
 * first part is offered again with the second, as coil's carry does). */
static void feed_split(struct seen *s, const char *stream, size_t len,
		       size_t cut)
{
	/* the input ends right at the end of a malloc'd block (ASan sees any
	 * read past it) */
	char *a = malloc(cut ? cut : 1);
	size_t used, rest;
	char *b;

	memset(s, 0, sizeof(*s));
	memcpy(a, stream, cut);
	used = consume(s, a, cut);
	rest = len - used;
	b = malloc(rest ? rest : 1);
	memcpy(b, stream + used, rest);
	free(a);
	if (!s->err) {
		size_t u2 = consume(s, b, rest);

		if (!s->err && !s->in_body)
			assert_int_equal(u2, rest);
	}
	free(b);
}

static const char pipelined[] =
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello"
	"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	"3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: t\r\n\r\n"
	"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"
	"HTTP/1.1 100 Continue\r\n\r\n"
	"HTTP/1.0 200\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"
	"HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 1\r\n\r\n!";

static void check_pipelined(const struct seen *s)
{
	static const int want[] = { 200, 404, 200, 204, 304, 100, 200, 500 };

	assert_int_equal(s->err, 0);
	assert_int_equal(s->n, 8);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(s->status[i], want[i]);
	assert_int_equal(s->body_len[0], 5);
	assert_memory_equal(s->body[0], "hello", 5);
	assert_int_equal(s->body_len[1], 0);
	assert_int_equal(s->body_len[2], 19);
	assert_memory_equal(s->body[2], "abc0123456789abcdef", 19);
	assert_true(s->flags[2] & COIL_HTTP1_F_CHUNKED);
	assert_int_equal(s->body_len[3], 0);  /* 204: no body despite CL */
	assert_int_equal(s->body_len[4], 0);  /* 304 likewise */
	assert_true(s->flags[0] & COIL_HTTP1_F_KEEP_ALIVE);
	assert_true(s->flags[6] & COIL_HTTP1_F_KEEP_ALIVE);   /* 1.0 + k-a */
	assert_memory_equal(s->body[6], "ok", 2);
	assert_false(s->flags[7] & COIL_HTTP1_F_KEEP_ALIVE);  /* close */
	assert_true(s->flags[7] & COIL_HTTP1_F_CONN_CLOSE);
	assert_memory_equal(s->body[7], "!", 1);
}

static void test_pipelined_every_split(void **state)
{
	size_t len = sizeof(pipelined) - 1;
	struct seen s;

	(void)state;
	for (size_t cut = 0; cut <= len; cut++) {
		feed_split(&s, pipelined, len, cut);
		check_pipelined(&s);
	}
}

static void test_pipelined_byte_by_byte(void **state)
{
	size_t len = sizeof(pipelined) - 1, have = 0, off = 0;
	char *buf = malloc(len);
	struct seen s;

	(void)state;
	memset(&s, 0, sizeof(s));
	/* one more byte at a time; consumed bytes leave the buffer */
	while (have < len) {
		size_t used;

		buf[have - off] = pipelined[have];
		have++;
		used = consume(&s, buf, have - off);
		memmove(buf, buf + used, have - off - used);
		off += used;
		assert_int_equal(s.err, 0);
	}
	assert_int_equal(off, len);
	check_pipelined(&s);
	free(buf);
}

static void test_head_fields(void **state)
{
	static const char in[] = "HTTP/1.1 201 Created Here\r\nA: 1\r\n"
				 "B:   two  \r\nContent-Length: 0\r\n\r\n";
	struct coil_http1_response r;
	struct coil_http1_header h[4];
	int rc;

	(void)state;
	rc = coil_http1_response_parse(in, sizeof(in) - 1, false, &r, h, 4, NULL);
	assert_int_equal(rc, (int)sizeof(in) - 1);
	assert_int_equal(r.status, 201);
	assert_int_equal(r.version_minor, 1);
	assert_int_equal(r.reason.len, 12);
	assert_memory_equal(r.reason.ptr, "Created Here", 12);
	assert_int_equal(r.nheaders, 3);
	assert_int_equal(h[1].value.len, 3);
	assert_memory_equal(h[1].value.ptr, "two", 3);
	assert_true(r.flags & COIL_HTTP1_F_CONTENT_LENGTH);
	/* a HEAD request's response has no body whatever it announces */
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n";
	rc = coil_http1_response_parse(head, sizeof(head) - 1, true, &r, NULL, 0, NULL);
	assert_int_equal(rc, (int)sizeof(head) - 1);
	assert_int_equal(r.content_length, 0);
	assert_false(r.flags & (COIL_HTTP1_F_CONTENT_LENGTH | COIL_HTTP1_F_CHUNKED));
	/* neither length nor chunked: the body runs to the close */
	static const char eof[] = "HTTP/1.1 200 OK\r\n\r\nbody...";
	rc = coil_http1_response_parse(eof, sizeof(eof) - 1, false, &r, NULL, 0, NULL);
	assert_int_equal(rc, 19);
	assert_true(r.flags & COIL_HTTP1_F_CLOSE_DELIMITED);
	assert_false(r.flags & COIL_HTTP1_F_KEEP_ALIVE);
}

static void test_errors(void **state)
{
	static const struct {
		const char *in;
		int err;
	} bad[] = {
		{ "HTTP/2.0 200 OK\r\n\r\n", COIL_HTTP1_E_VERSION },
		{ "HTTX/1.1 200 OK\r\n\r\n", COIL_HTTP1_E_BAD_VERSION },
		{ "GET / HTTP/1.1\r\n\r\n", COIL_HTTP1_E_BAD_VERSION },
		{ "HTTP/1.1 20 OK\r\n\r\n", COIL_HTTP1_E_BAD_STATUS },
		{ "HTTP/1.1 2000 OK\r\n\r\n", COIL_HTTP1_E_BAD_STATUS },
		{ "HTTP/1.1 099 OK\r\n\r\n", COIL_HTTP1_E_BAD_STATUS },
		{ "HTTP/1.1 200 O\x01K\r\n\r\n", COIL_HTTP1_E_BAD_STATUS },
		{ "HTTP/1.1 200 OK\n\r\n", COIL_HTTP1_E_BAD_EOL },
		{ "HTTP/1.1 200 OK\r\nA : b\r\n\r\n", COIL_HTTP1_E_HEADER_NAME_WS },
		{ "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", COIL_HTTP1_E_OBS_FOLD },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", COIL_HTTP1_E_BAD_CL },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		  COIL_HTTP1_E_DUP_CL_DIFFERENT },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		  COIL_HTTP1_E_CL_AND_TE },
	};
	struct coil_http1_response r;

	(void)state;
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = strlen(bad[i].in);
		int rc = coil_http1_response_parse(bad[i].in, len, false, &r,
						   NULL, 0, NULL);

		if (rc != bad[i].err)
			fail_msg("case %u (%s): got %d, want %d", i, bad[i].in,
				 rc, bad[i].err);
		/* every prefix is either "more" or the same error */
		for (size_t k = 0; k < len; k++) {
			rc = coil_http1_response_parse(bad[i].in, k, false, &r,
						       NULL, 0, NULL);
			assert_true(rc == COIL_HTTP1_NEED_MORE || rc == bad[i].err);
		}
	}
	/* a chunked body with a bad size line */
	{
		struct seen s;
		static const char in[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";

		feed_split(&s, in, sizeof(in) - 1, sizeof(in) - 1);
		assert_int_equal(s.err, COIL_HTTP1_E_BAD_CHUNK_SIZE);
	}
}

static void test_limits(void **state)
{
	struct coil_http1_limits lim = { .sz = sizeof(lim), .max_head = 64 };
	struct coil_http1_response r;
	char big[256];
	int rc;

	(void)state;
	/* no end of the status line within max_request_line */
	memset(big, 'a', sizeof(big));
	memcpy(big, "HTTP/1.1 200 ", 13);
	lim.max_request_line = 100;
	rc = coil_http1_response_parse(big, sizeof(big), false, &r, NULL, 0, &lim);
	assert_int_equal(rc, COIL_HTTP1_E_LINE_TOO_LONG);
	/* a header section over max_head */
	snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nX: %0100d\r\n\r\n", 1);
	rc = coil_http1_response_parse(big, strlen(big), false, &r, NULL, 0, &lim);
	assert_int_equal(rc, COIL_HTTP1_E_HEAD_TOO_LARGE);
	assert_int_equal(coil_http1_response_parse(big, 0, false, &r, NULL, 0, NULL),
			 COIL_HTTP1_NEED_MORE);
	assert_string_equal(coil_http1_strerror(COIL_HTTP1_E_BAD_STATUS),
			    "bad status line");
}

/* One struct reused on a keep-alive connection: what the previous
 * response said (chunked, Connection: close, its length, its headers)
 * must not survive a parse that did not finish a new head. */
static void test_reuse_resets(void **state)
{
	static const char first[] = "HTTP/1.1 200 OK\r\n"
		"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
	static const char part[] = "HTTP/1.1 204 No Content\r\nX-A: b\r\n";
	static const char bad[] = "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n";
	struct coil_http1_header h[4];
	struct coil_http1_response r;

	(void)state;
	assert_int_equal(coil_http1_response_parse(first, sizeof(first) - 1,
						   false, &r, h, 4, NULL),
			 (int)sizeof(first) - 1);
	assert_true(r.flags & COIL_HTTP1_F_CHUNKED);
	assert_true(r.flags & COIL_HTTP1_F_CONN_CLOSE);
	assert_int_equal(coil_http1_response_parse(part, sizeof(part) - 1,
						   false, &r, h, 4, NULL),
			 COIL_HTTP1_NEED_MORE);
	assert_int_equal(r.flags, 0);
	assert_int_equal(r.nheaders, 0);
	assert_int_equal(r.head_len, 0);
	assert_int_equal(r.content_length, 0);
	assert_int_equal(coil_http1_response_parse(first, sizeof(first) - 1,
						   false, &r, h, 4, NULL),
			 (int)sizeof(first) - 1);
	assert_true(coil_http1_response_parse(bad, sizeof(bad) - 1, false, &r,
					      h, 4, NULL) < 0);
	assert_int_equal(r.flags, 0);
	assert_int_equal(r.head_len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelined_every_split),
		cmocka_unit_test(test_pipelined_byte_by_byte),
		cmocka_unit_test(test_head_fields),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_reuse_resets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
