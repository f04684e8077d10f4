/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for engine/proto/http1: the request parser and the body
 * reader. Build: clang -fsanitize=fuzzer,address,undefined (tests/fuzz/
 * meson.build does it in a clang build; scripts/test runs it for a bounded
 * time).
 *
 * Input: two control bytes, then the bytes to parse. The control bytes pick
 * a split point, small or default limits, and whether the input is a request
 * or a bare chunked body (random bytes rarely get past a head into one).
 * Every call gets its input in a heap block of exactly that size, so ASan
 * reports any read past the end.
 *
 * Invariants checked (abort on failure):
 *  - the result is the same whole, split in two at the chosen point, and
 *    fed one byte at a time (for short inputs), as on_data re-offers it;
 *  - the portable and the SIMD scanners give the same result;
 *  - slices lie inside the input of the call that produced them; the head
 *    length is within the input; an error maps to a 4xx/5xx status;
 *  - the body reader consumes no more than it is given, returns data inside
 *    what it consumed, and the decoded bytes do not depend on the split.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <coil/http1.h>

#include "proto/http1_internal.h"
#include "fuzz_check.h"

#define MAXH 32

/* A result as offsets, comparable between calls at different addresses. */
struct norm {
	int rc;
	int method;
	unsigned minor, flags, nh;
	unsigned long long cl;
	size_t slices[3 + 2 * MAXH][2];
};

static void slice(struct coil_http1_str s, const char *base, size_t len,
		  size_t out[2])
{
	if (!s.len)
		return;
	CHECK(s.ptr >= base && s.ptr + s.len <= base + len);
	out[0] = (size_t)(s.ptr - base);
	out[1] = s.len;
}

static void normalize(struct norm *n, int rc,
		      const struct coil_http1_request *r, const char *base,
		      size_t len)
{
	memset(n, 0, sizeof(*n));
	n->rc = rc;
	if (rc < 0) {
		int st = coil_http1_error_status(rc);

		/* a parse error, never a -errno */
		CHECK(coil_http1_is_error(rc));
		CHECK(st == 400 || st == 414 || st == 431 || st == 501 ||
		      st == 505);
	}
	if (rc <= 0)
		return;
	CHECK((size_t)rc == r->head_len && r->head_len <= len);
	CHECK(r->nheaders <= MAXH);
	n->method = r->method;
	n->minor = r->version_minor;
	n->flags = r->flags;
	n->cl = r->content_length;
	n->nh = r->nheaders;
	CHECK(r->method_name.len && r->target.len);
	slice(r->method_name, base, len, n->slices[0]);
	slice(r->target, base, len, n->slices[1]);
	slice(r->host, base, len, n->slices[2]);
	for (unsigned i = 0; i < r->nheaders; i++) {
		CHECK(r->headers[i].name.len);
		slice(r->headers[i].name, base, len, n->slices[3 + 2 * i]);
		slice(r->headers[i].value, base, len, n->slices[4 + 2 * i]);
	}
}

static struct coil_http1_limits limits;
static const struct coil_http1_limits *lim;

/* Parse in[0, cuts[k]) for each k; the head result and, for requests with
 * a body, `*body_off`, where the body starts. */
static void parse_cuts(const uint8_t *in, const size_t *cuts, size_t ncuts,
		       struct norm *out, size_t *body_off,
		       struct coil_http1_request *req_out)
{
	struct coil_http1_header hdrs[MAXH];
	struct coil_http1_parser p;
	struct coil_http1_request req;
	int rc = COIL_HTTP1_NEED_MORE;

	memset(out, 0, sizeof(*out));
	coil_http1_parser_init(&p, lim, hdrs, MAXH);
	for (size_t k = 0; k < ncuts; k++) {
		char *buf = malloc(cuts[k] ? cuts[k] : 1);

		CHECK(buf);
		memcpy(buf, in, cuts[k]);
		rc = coil_http1_parse(&p, buf, cuts[k], &req);
		if (rc != COIL_HTTP1_NEED_MORE)
			normalize(out, rc, &req, buf, cuts[k]);
		free(buf);
		if (rc != COIL_HTTP1_NEED_MORE)
			break;
	}
	out->rc = rc;
	if (rc > 0) {
		*body_off = (size_t)rc;
		req.headers = NULL;  /* the slices died with buf */
		*req_out = req;
	}
}

struct bres {
	int rc;
	uint64_t hash, dlen, announced;
	size_t consumed;
	unsigned ntr;
};

/* FNV-1a over the decoded body. */
static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 0x100000001b3ull;
	return h;
}

/* Read a body fed in[0, cuts[k]), dropping what was consumed. */
static void body_cuts(const struct coil_http1_request *req,
		      const uint8_t *in, const size_t *cuts, size_t ncuts,
		      struct bres *r)
{
	struct coil_http1_header tr[4];
	struct coil_http1_body b;
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	r->hash = 0xcbf29ce484222325ull;
	r->rc = COIL_HTTP1_NEED_MORE;
	coil_http1_body_init(&b, req, lim, tr, 4);
	for (size_t k = 0; k < ncuts; k++) {
		for (;;) {
			size_t n = cuts[k] - off, used = (size_t)-1;
			char *buf = malloc(n ? n : 1);
			struct coil_http1_str d = { 0 };
			int rc;

			CHECK(buf);
			memcpy(buf, in + off, n);
			rc = coil_http1_body_read(&b, buf, n, &d, &used);
			CHECK(used <= n);
			CHECK(b.received <= b.announced);
			if (rc == COIL_HTTP1_DATA) {
				CHECK(d.len > 0 && d.ptr >= buf &&
				      d.ptr + d.len <= buf + used);
				r->hash = fnv(r->hash, d.ptr, d.len);
				r->dlen += d.len;
			} else if (rc == COIL_HTTP1_DONE) {
				CHECK(b.ntrailers <= 4);
				for (unsigned i = 0; i < b.ntrailers; i++)
					CHECK(tr[i].name.ptr >= buf &&
					      tr[i].value.ptr + tr[i].value.len
					      <= buf + used);
				r->ntr = b.ntrailers;
			} else if (rc < 0) {
				CHECK(coil_http1_is_error(rc));
				CHECK(used == 0);
			}
			free(buf);
			off += used;
			r->rc = rc;
			r->announced = b.announced;
			if (rc != COIL_HTTP1_DATA)
				break;
		}
		if (r->rc != COIL_HTTP1_NEED_MORE)
			break;
	}
	/* Framing is consumed as it is read, so where an error is found
	 * does not say how much was consumed before it. */
	r->consumed = r->rc < 0 ? 0 : off;
	CHECK(r->dlen == b.received);
}

static void check_body(const struct coil_http1_request *req,
		       const uint8_t *in, size_t n, size_t split)
{
	static size_t cuts[4096];
	struct bres whole, other;

	cuts[0] = n;
	body_cuts(req, in, cuts, 1, &whole);
	cuts[0] = split;
	cuts[1] = n;
	body_cuts(req, in, cuts, 2, &other);
	CHECK(!memcmp(&whole, &other, sizeof(whole)));
	if (n && n <= 512) {
		for (size_t i = 0; i < n; i++)
			cuts[i] = i + 1;
		body_cuts(req, in, cuts, n, &other);
		CHECK(!memcmp(&whole, &other, sizeof(whole)));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static size_t cuts[4096];
	struct coil_http1_request req;
	struct norm whole, other;
	size_t split, body_off = 0;
	uint8_t c0, c1;
	int best = coil__http1_simd_best();

	if (size < 2)
		return 0;
	c0 = data[0];
	c1 = data[1];
	data += 2;
	size -= 2;
	split = size ? ((size_t)c0 << 8 | c1) % (size + 1) : 0;

	lim = NULL;
	if (c0 & 0x40) {
		/* Small limits reach the limit checks with short inputs. */
		limits.sz = sizeof(limits);
		limits.max_request_line = 8 + c1 % 64;
		limits.max_head = 4 + c1 % 128;
		limits.max_headers = 1 + c1 % 8;
		lim = &limits;
	}

	if (c0 & 0x80) {  /* a bare chunked body */
		struct coil_http1_request chunked = {
			.flags = COIL_HTTP1_F_CHUNKED };

		for (int level = 0; level <= best; level++) {
			coil__http1_simd_set(level);
			check_body(&chunked, data, size, split);
		}
		coil__http1_simd_set(-1);
		return 0;
	}

	coil__http1_simd_set(COIL__HTTP1_SIMD_NONE);
	cuts[0] = size;
	parse_cuts(data, cuts, 1, &whole, &body_off, &req);
	cuts[0] = split;
	cuts[1] = size;
	parse_cuts(data, cuts, 2, &other, &body_off, &req);
	CHECK(!memcmp(&whole, &other, sizeof(whole)));
	if (size && size <= 1024) {
		for (size_t i = 0; i < size; i++)
			cuts[i] = i + 1;
		parse_cuts(data, cuts, size, &other, &body_off, &req);
		CHECK(!memcmp(&whole, &other, sizeof(whole)));
	}
	for (int level = 1; level <= best; level++) {
		coil__http1_simd_set(level);
		cuts[0] = size;
		parse_cuts(data, cuts, 1, &other, &body_off, &req);
		CHECK(!memcmp(&whole, &other, sizeof(whole)));
		cuts[0] = split;
		cuts[1] = size;
		parse_cuts(data, cuts, 2, &other, &body_off, &req);
		CHECK(!memcmp(&whole, &other, sizeof(whole)));
	}
	coil__http1_simd_set(-1);

	if (whole.rc > 0) {
		size_t n = size - body_off;

		check_body(&req, data + body_off, n, split % (n + 1));
	}
	return 0;
}
