/* SPDX-License-Identifier: MIT */
/* coil-httpd's protocol through the fake backend: pipelining in order and in
 * one send, HEAD, 100-continue, keep-alive vs close vs HTTP/1.0, limits
 * (413/414/431), timeouts on the fake clock (header, body, keep-alive),
 * isolation between connections, the route table (404/405/OPTIONS), request
 * bodies (echo, chunked), static files (types, validators, 304, ranges,
 * traversal, directories, cache invalidation, sendfile), shutdown and the
 * access log. The app's code is included so its statics are reachable. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "http/server.c"
#include "http/request.c"
#include "http/response.c"
#include "http/route.c"
#include "http/builtin.c"
#include "http/files.c"
#include "http/files_cache.c"
#include "http/access_log.c"

#include "core/internal.h"
#include "fake_util.h"
#include "fake_take.h"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/time.h>

static struct coil_http_server *H;
static struct coil_fake *F;
static char root_dir[64], root_path[128], secret_path[128];
#define SECRET_MARK "coil-secret-must-not-leak"
#define BIG_SIZE (600u << 10)   /* above the cacheable size: sendfile */
#define MID_SIZE (10u << 10)    /* cached, above the inline size: pinned */
static uint8_t *big_data;

static void mkf(const char *rel, const void *data, size_t len)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", root_path, rel);
	f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static void set_mtime(const char *rel, time_t t)
{
	char p[256];
	struct timeval tv[2] = { { t, 0 }, { t, 0 } };

	snprintf(p, sizeof(p), "%s/%s", root_path, rel);
	assert_int_equal(utimes(p, tv), 0);
}

static int setup_root(void **st)
{
	char p[256], *mid;

	(void)st;
	strcpy(root_dir, "/tmp/coil-httpd-test-XXXXXX");
	if (!mkdtemp(root_dir))
		return -1;
	snprintf(root_path, sizeof(root_path), "%s/root", root_dir);
	snprintf(secret_path, sizeof(secret_path), "%s/secret.txt", root_dir);
	mkdir(root_path, 0755);
	snprintf(p, sizeof(p), "%s/sub", root_path);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/empty", root_path);
	mkdir(p, 0755);
	mkf("hello.txt", "hello world\n", 12);
	mkf("style.css", "body{}\n", 7);
	mkf("index.html", "<p>root</p>\n", 12);
	mkf("sub/index.html", "<p>sub</p>\n", 11);
	mkf("sub/a b.txt", "space\n", 6);
	big_data = malloc(BIG_SIZE);
	stream_fill(big_data, 7, 0, BIG_SIZE);
	mkf("big.bin", big_data, BIG_SIZE);
	mid = malloc(MID_SIZE);
	memset(mid, 'm', MID_SIZE);
	mkf("mid.txt", mid, MID_SIZE);
	free(mid);
	set_mtime("hello.txt", 1704164645);   /* 2024-01-02 03:04:05 UTC */
	{
		FILE *f = fopen(secret_path, "w");

		fputs(SECRET_MARK "\n", f);
		fclose(f);
	}
	snprintf(p, sizeof(p), "%s/secret-link", root_path);
	if (symlink("../secret.txt", p))
		return -1;
	snprintf(p, sizeof(p), "%s/passwd-link", root_path);
	if (symlink("/etc/passwd", p))
		return -1;
	snprintf(p, sizeof(p), "%s/etc-link", root_path);
	if (symlink("/etc", p))
		return -1;
	snprintf(p, sizeof(p), "%s/inner-link", root_path);
	if (symlink("sub/index.html", p))
		return -1;
	return 0;
}

static int teardown_root(void **st)
{
	char cmd[160];

	(void)st;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root_dir);
	free(big_data);
	return system(cmd) == 0 ? 0 : -1;
}

static void mk_cfg(struct coil_http_config *cfg)
{
	struct coil_service svc = { .sz = sizeof(svc) };
	struct coil_fake_opts fo = { .sz = sizeof(fo), .bufs = 256 };

	assert_int_equal(coil_http_server_create(cfg, &H, NULL), 0);
	coil_http_server_service_init(H, &svc);
	assert_int_equal(coil_fake_create(&fo, &svc, &F), 0);
}

static void mk(void)
{
	struct coil_http_config cfg = { .sz = sizeof(cfg), .root = root_path };

	mk_cfg(&cfg);
}

static void rm(void)
{
	coil_fake_destroy(F);
	coil_http_server_destroy(H);
	F = NULL;
	H = NULL;
}

static int conn(void)
{
	int id = coil_fake_connect(F);

	assert_true(id >= 0);
	return id;
}

static void feed(int id, const char *s)
{
	assert_int_equal(coil_fake_feed(F, id, s, strlen(s)), 0);
}

static char out[1u << 21];

/* Everything the server sent on `id` so far, NUL-terminated. */
static size_t take(int id)
{
	return fake_take_str(F, id, out, sizeof(out));
}

static bool closed(int id)
{
	return coil_fake_closed(F, id, NULL, NULL);
}

/* One response parsed out of a byte stream. */
struct resp {
	int status;
	const char *head;
	size_t head_len;
	const char *body;
	size_t body_len;
};

static bool hdr(const struct resp *r, const char *name, char *val, size_t cap)
{
	size_t n = strlen(name);
	const char *p = r->head, *end = r->head + r->head_len;

	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);

		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > n + 1 && !strncasecmp(p, name, n) &&
		    p[n] == ':') {
			const char *v = p + n + 1;
			size_t vn;

			while (*v == ' ')
				v++;
			vn = (size_t)(eol - v);
			if (val) {
				if (vn >= cap)
					vn = cap - 1;
				memcpy(val, v, vn);
				val[vn] = 0;
			}
			return true;
		}
		p = eol + 2;
	}
	return false;
}

/* Parse the response at *off of out[0, len) (no body if `no_body`). */
static void next_resp(size_t len, size_t *off, struct resp *r, bool no_body)
{
	const char *p = out + *off, *e;
	char v[32];
	size_t cl = 0;

	assert_true(*off < len);
	e = memmem(p, len - *off, "\r\n\r\n", 4);
	assert_non_null(e);
	assert_memory_equal(p, "HTTP/1.1 ", 9);
	r->status = atoi(p + 9);
	r->head = p;
	r->head_len = (size_t)(e + 2 - p);
	if (hdr(r, "Content-Length", v, sizeof(v)))
		cl = strtoull(v, NULL, 10);
	if (no_body || r->status == 304 || r->status == 204 || r->status < 200)
		cl = 0;
	r->body = e + 4;
	r->body_len = cl;
	assert_true((size_t)(r->body - out) + cl <= len);
	*off = (size_t)(r->body - out) + cl;
}

/* Send one request on `id`, expect exactly one response. */
static struct resp req1(int id, const char *request, bool no_body)
{
	struct resp r;
	size_t off = 0, n;

	feed(id, request);
	n = take(id);
	next_resp(n, &off, &r, no_body);
	assert_int_equal(off, n);
	return r;
}

static const char *GETP = "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";

/* ---- protocol ---- */

static void test_plaintext_json(void **st)
{
	struct resp r;
	char v[64];
	int id;

	(void)st;
	mk();
	id = conn();
	r = req1(id, GETP, false);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 13);
	assert_memory_equal(r.body, "Hello, World!", 13);
	assert_true(hdr(&r, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, "text/plain");
	assert_true(hdr(&r, "Server", v, sizeof(v)));
	assert_string_equal(v, "coil");
	assert_true(hdr(&r, "Date", v, sizeof(v)));
	assert_int_equal(strlen(v), 29);
	assert_int_equal(coil_http1_parse_date(v, strlen(v)) > 0, 1);
	assert_false(hdr(&r, "Connection", NULL, 0));
	r = req1(id, "GET /json HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.status, 200);
	assert_true(hdr(&r, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, "application/json");
	assert_int_equal(r.body_len, 27);
	assert_memory_equal(r.body, "{\"message\":\"Hello, World!\"}", 27);
	/* the same bytes through the general path (Connection: close) */
	r = req1(id, "GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		 false);
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.body, "Hello, World!", 13);
	assert_true(hdr(&r, "Connection", v, sizeof(v)));
	assert_string_equal(v, "close");
	assert_true(closed(id));
	rm();
}

static void test_pipelining_order_one_send(void **st)
{
	static const char *const reqs[] = {
		"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /json HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD /plaintext HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde",
		"DELETE /json HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n",
		("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "3\r\nxyz\r\n0\r\n\r\n"),
	};
	static const int want[] = { 200, 200, 404, 200, 200, 405, 200, 200 };
	char all[4096] = "";
	size_t n, off = 0;
	unsigned sends;
	int id;

	(void)st;
	mk();
	id = conn();
	/* 16 deep: the list twice */
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < 8; i++)
			strcat(all, reqs[i]);
	sends = coil_fake_sends(F, id);
	feed(id, all);
	assert_int_equal(coil_fake_sends(F, id) - sends, 1);  /* one send */
	n = take(id);
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < 8; i++) {
			struct resp r;

			next_resp(n, &off, &r, i == 3);
			assert_int_equal(r.status, want[i]);
			if (i == 4)
				assert_memory_equal(r.body, "abcde", 5);
			if (i == 6)
				assert_memory_equal(r.body, "hello world\n", 12);
			if (i == 7) {
				/* chunked echo */
				assert_true(hdr(&r, "Transfer-Encoding", NULL, 0));
				assert_memory_equal(r.body - 0,
						    "3\r\nxyz\r\n0\r\n\r\n", 13);
				off += 13;
			}
		}
	}
	assert_int_equal(off, n);
	assert_false(closed(id));
	rm();
}

/* The same stream in one piece, byte by byte and in odd pieces gives the
 * same bytes back (Date lines aside). (A chunked echo would not: it
 * reflects the slices as they come, so the chunked body goes to a 405 that
 * discards it.) */
static void strip_dates(char *s)
{
	char *p;

	while ((p = strstr(s, "Date: ")))
		memset(p, 'D', 35);
}

static void test_split_anywhere(void **st)
{
	const char *stream =
		"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"
		"POST /json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
		"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n"
		"\r\nGET /hello.txt?q=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: a "
		"rather long user agent string that crosses pieces\r\n\r\n"
		"PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"
		"hello again"
		"GET /sub/ HTTP/1.1\r\nHost: x\r\n\r\n";
	static char whole[8192], piece[8192];
	size_t len = strlen(stream), n1, n2;
	int id;

	(void)st;
	mk();
	id = conn();
	feed(id, stream);
	n1 = take(id);
	memcpy(whole, out, n1 + 1);
	strip_dates(whole);
	for (size_t step = 1; step <= 7; step += 3) {
		id = conn();
		for (size_t i = 0; i < len; i += step) {
			size_t k = len - i < step ? len - i : step;

			assert_int_equal(coil_fake_feed(F, id, stream + i, k), 0);
		}
		n2 = take(id);
		memcpy(piece, out, n2 + 1);
		strip_dates(piece);
		assert_int_equal(n1, n2);
		assert_string_equal(whole, piece);
	}
	assert_non_null(strstr(whole, "405 Method Not Allowed"));
	assert_non_null(strstr(whole, "hello world"));
	assert_non_null(strstr(whole, "hello again"));
	assert_non_null(strstr(whole, "<p>sub</p>"));
	rm();
}

static void test_head(void **st)
{
	struct resp r;
	char v[32];
	int id;

	(void)st;
	mk();
	id = conn();
	r = req1(id, "HEAD /plaintext HTTP/1.1\r\nHost: x\r\n\r\n", true);
	assert_int_equal(r.status, 200);
	assert_true(hdr(&r, "Content-Length", v, sizeof(v)));
	assert_string_equal(v, "13");
	r = req1(id, "HEAD /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", true);
	assert_int_equal(r.status, 200);
	assert_true(hdr(&r, "Content-Length", v, sizeof(v)));
	assert_string_equal(v, "12");
	r = req1(id, "HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n", true);
	assert_int_equal(r.status, 200);
	assert_true(hdr(&r, "Content-Length", v, sizeof(v)));
	assert_int_equal(atoi(v), BIG_SIZE);
	/* nothing else follows: the next request answers right after */
	r = req1(id, GETP, false);
	assert_int_equal(r.status, 200);
	rm();
}

static void test_expect_continue(void **st)
{
	struct resp r;
	size_t n, off = 0;
	int id;

	(void)st;
	mk();
	id = conn();
	feed(id, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
		 "Expect: 100-continue\r\n\r\n");
	n = take(id);
	assert_int_equal(n, 25);
	assert_memory_equal(out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	feed(id, "hello");
	n = take(id);
	next_resp(n, &off, &r, false);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 5);
	assert_memory_equal(r.body, "hello", 5);
	/* the body already here: no 100 */
	feed(id, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
		 "Expect: 100-continue\r\n\r\nhi");
	n = take(id);
	assert_memory_equal(out, "HTTP/1.1 200 OK", 15);
	/* refused without reading the body: final answer and close */
	r = req1(id, "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
		     "Expect: 100-continue\r\n\r\n", false);
	assert_int_equal(r.status, 405);   /* the files take GET only */
	assert_true(hdr(&r, "Connection", NULL, 0));
	assert_true(closed(id));
	/* an expectation we do not know: 417 */
	id = conn();
	r = req1(id, "GET /plaintext HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n",
		 false);
	assert_int_equal(r.status, 417);
	assert_true(closed(id));
	rm();
}

static void test_keepalive_close_10(void **st)
{
	struct resp r;
	char v[32];
	int id;

	(void)st;
	mk();
	/* 1.1 default: persistent */
	id = conn();
	r = req1(id, GETP, false);
	assert_false(hdr(&r, "Connection", NULL, 0));
	assert_false(closed(id));
	/* Connection: close, and a pipelined request after it is ignored */
	feed(id, "GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
		 "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
	{
		size_t n = take(id), off = 0;

		next_resp(n, &off, &r, false);
		assert_int_equal(off, n);
	}
	assert_true(hdr(&r, "Connection", v, sizeof(v)));
	assert_string_equal(v, "close");
	assert_true(closed(id));
	/* 1.0: closes by default */
	id = conn();
	r = req1(id, "GET /plaintext HTTP/1.0\r\n\r\n", false);
	assert_int_equal(r.status, 200);
	assert_true(hdr(&r, "Connection", v, sizeof(v)));
	assert_string_equal(v, "close");
	assert_true(closed(id));
	/* 1.0 keep-alive */
	id = conn();
	r = req1(id, "GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		 false);
	assert_true(hdr(&r, "Connection", v, sizeof(v)));
	assert_string_equal(v, "keep-alive");
	assert_false(closed(id));
	r = req1(id, "GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		 false);
	assert_int_equal(r.status, 200);
	assert_false(closed(id));
	/* chunked answer to a 1.0 client: no chunking, close delimits */
	r = req1(id, "POST /echo HTTP/1.0\r\nConnection: keep-alive\r\n"
		     "Content-Length: 3\r\n\r\nabc", false);
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.body, "abc", 3);
	rm();
}

static void test_limits(void **st)
{
	static char big[20000];
	struct resp r;
	int id;

	(void)st;
	mk();
	/* 414: request line over 8 KiB */
	id = conn();
	strcpy(big, "GET /");
	memset(big + 5, 'a', 9000);
	strcpy(big + 9005, " HTTP/1.1\r\nHost: x\r\n\r\n");
	r = req1(id, big, false);
	assert_int_equal(r.status, 414);
	assert_true(closed(id));
	/* 431: header section over 8 KiB */
	id = conn();
	strcpy(big, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
	memset(big + strlen(big), 'b', 9000);
	strcat(big, "\r\n\r\n");
	r = req1(id, big, false);
	assert_int_equal(r.status, 431);
	assert_true(closed(id));
	/* 431: too many header lines */
	id = conn();
	strcpy(big, "GET / HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < 70; i++)
		sprintf(big + strlen(big), "X-%d: y\r\n", i);
	strcat(big, "\r\n");
	r = req1(id, big, false);
	assert_int_equal(r.status, 431);
	assert_true(closed(id));
	/* 413: Content-Length over --max-body, answered before the body */
	id = conn();
	r = req1(id, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n",
		 false);
	assert_int_equal(r.status, 413);
	assert_true(closed(id));
	/* 400s from the parser */
	id = conn();
	r = req1(id, "GET / HTTP/1.1\r\n\r\n", false);   /* no Host */
	assert_int_equal(r.status, 400);
	assert_true(closed(id));
	id = conn();
	r = req1(id, "GET / HTTP/2.0\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.status, 505);
	id = conn();
	r = req1(id, "BREW / HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.status, 501);
	assert_true(closed(id));
	id = conn();
	r = req1(id, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
		     "Transfer-Encoding: chunked\r\n\r\n", false);
	assert_int_equal(r.status, 400);
	assert_true(closed(id));
	/* bad chunked framing: 400 even where echo had begun answering in
	 * the same turn (the staged answer is taken back) */
	{
		static const char *const chunks[] = {
			"zz\r\nhello\r\n0\r\n\r\n",
			"5\r\nhelloXX0\r\n\r\n",
			"1ffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
		};

		for (size_t i = 0; i < 3; i++) {
			char rq[256];

			snprintf(rq, sizeof(rq), "POST /echo HTTP/1.1\r\nHost: x\r\n"
				 "Transfer-Encoding: chunked\r\n\r\n%s"
				 "GET /json HTTP/1.1\r\nHost: x\r\n\r\n", chunks[i]);
			id = conn();
			r = req1(id, rq, false);
			assert_int_equal(r.status, 400);
			assert_true(closed(id));
		}
	}
	rm();
	/* 413 for a chunked body that grows past the limit */
	{
		struct coil_http_config cfg = { .sz = sizeof(cfg), .max_body = 100 };
		size_t n, off = 0;

		mk_cfg(&cfg);
		id = conn();
		feed(id, "POST /nope HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "40\r\n");
		feed(id, "0123456789012345678901234567890123456789012345678901234567890123\r\n");
		assert_false(closed(id));
		feed(id, "40\r\n");
		n = take(id);
		/* the 404 was sent at once; the body over the limit closes */
		next_resp(n, &off, &r, false);
		assert_int_equal(r.status, 404);
		assert_true(closed(id));
		id = conn();
		r = req1(id, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "fff\r\n", false);
		assert_int_equal(r.status, 413);
		assert_true(closed(id));
		/* echo has answered part of it: the connection is cut */
		id = conn();
		feed(id, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "10\r\n0123456789abcdef\r\n");
		assert_false(closed(id));
		feed(id, "fff\r\n");
		{
			int reason;
			bool reset;

			assert_true(coil_fake_closed(F, id, &reason, &reset));
			assert_true(reset);
		}
		id = conn();
		r = req1(id, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n",
			 false);
		assert_int_equal(r.status, 413);
		rm();
	}
}

static void test_header_timeout(void **st)
{
	struct coil_http_config cfg = { .sz = sizeof(cfg), .header_timeout_ms = 500,
				    .keepalive_timeout_ms = 2000 };
	struct resp r;
	int id, idle;

	(void)st;
	mk_cfg(&cfg);
	idle = conn();        /* never sends a byte */
	id = conn();
	feed(id, "GET /plaintext HTTP/1.1\r\nHo");
	coil_fake_advance(F, 200);
	feed(id, "st: x\r\n");        /* progress does not extend it */
	coil_fake_advance(F, 299);
	assert_false(closed(id));
	assert_int_equal(take(id), 0);
	coil_fake_advance(F, 2);
	/* an incomplete head is closed without an answer, as nginx does */
	assert_true(closed(id));
	assert_int_equal(take(id), 0);
	/* the silent one goes without a word */
	assert_true(closed(idle));
	assert_int_equal(take(idle), 0);
	/* a slow but complete head in time is fine */
	id = conn();
	feed(id, "GET /plaintext HTTP/1.1\r\n");
	coil_fake_advance(F, 400);
	r = req1(id, "Host: x\r\n\r\n", false);
	assert_int_equal(r.status, 200);
	rm();
}

static void test_keepalive_timeout(void **st)
{
	struct coil_http_config cfg = { .sz = sizeof(cfg), .header_timeout_ms = 500,
				    .keepalive_timeout_ms = 2000 };
	int id;

	(void)st;
	mk_cfg(&cfg);
	id = conn();
	req1(id, GETP, false);
	coil_fake_advance(F, 1500);
	req1(id, GETP, false);      /* activity restarts the idle time */
	coil_fake_advance(F, 1999);
	assert_false(closed(id));
	coil_fake_advance(F, 2);
	assert_true(closed(id));
	assert_int_equal(take(id), 0);
	rm();
}

/* A response that closes the connection, to a peer that stopped reading:
 * the close waits for the output, but not forever (found by fuzz_httpd). */
static void test_close_to_stalled_peer(void **st)
{
	struct coil_http_config cfg = { .sz = sizeof(cfg), .root = root_path,
				    .keepalive_timeout_ms = 200 };
	bool reset = false;
	int id, moving;

	(void)st;
	mk_cfg(&cfg);
	id = conn();
	coil_fake_set_send(F, id, 0, true);
	feed(id, "GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	coil_fake_advance(F, 150);
	assert_false(closed(id));
	coil_fake_advance(F, 300);
	assert_true(coil_fake_closed(F, id, NULL, &reset));
	assert_true(reset);
	/* one that reads, in small pieces, gets it all and a graceful close */
	moving = conn();
	coil_fake_set_send(F, moving, 4096, false);
	feed(moving, "GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	assert_true(coil_fake_closed(F, moving, NULL, &reset));
	assert_false(reset);
	assert_int_equal(take(moving) > BIG_SIZE, true);
	rm();
}

static void test_body_timeout(void **st)
{
	struct coil_http_config cfg = { .sz = sizeof(cfg), .body_timeout_ms = 300 };
	struct resp r;
	int reason;
	bool reset;
	int id;

	(void)st;
	mk_cfg(&cfg);
	/* discarded body that stops: 404 was sent, then close */
	id = conn();
	feed(id, "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345");
	coil_fake_advance(F, 200);
	feed(id, "67");
	coil_fake_advance(F, 299);
	assert_false(closed(id));
	coil_fake_advance(F, 2);
	assert_true(closed(id));
	/* echo had started answering: cut */
	id = conn();
	feed(id, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345");
	coil_fake_advance(F, 301);
	assert_true(coil_fake_closed(F, id, &reason, &reset));
	assert_true(reset);
	rm();
	(void)r;
}

static void test_isolation(void **st)
{
	struct resp r;
	int a, b, c;

	(void)st;
	mk();
	a = conn();
	b = conn();
	c = conn();
	/* b is halfway through a head when a sends garbage and c a request:
	 * the loop's parser is shared, b's partial head must not be */
	feed(b, "GET /json HTTP/1.1\r\nHost: x\r\nX-A: 1234567");
	feed(a, "GARBAGE\x01\r\n\r\n");
	feed(c, "GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Other: zzzzzzzzzzz\r\n\r\n");
	{
		size_t n = take(a), off = 0;

		next_resp(n, &off, &r, false);
		assert_int_equal(r.status, 400);
	}
	assert_true(closed(a));
	{
		size_t n = take(c), off = 0;

		next_resp(n, &off, &r, false);
		assert_int_equal(r.status, 200);
	}
	feed(b, "89\r\nX-B: 2\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
	{
		size_t n = take(b), off = 0;

		next_resp(n, &off, &r, false);
		assert_int_equal(r.status, 200);
		assert_memory_equal(r.body, "{\"message\"", 10);
		next_resp(n, &off, &r, false);
		assert_int_equal(r.status, 200);
		assert_memory_equal(r.body, "hello world\n", 12);
	}
	assert_false(closed(b));
	assert_false(closed(c));
	/* a trickled head, byte by byte, is parsed and answered once */
	{
		const char *s = "GET /plaintext HTTP/1.1\r\nHost: x\r\nUser-Agent: "
				"slow-slow-slow-slow-slow-slow-slow\r\n\r\n";

		for (size_t i = 0; s[i]; i++)
			assert_int_equal(coil_fake_feed(F, c, s + i, 1), 0);
		r = req1(c, "", false);
		assert_int_equal(r.status, 200);
	}
	rm();
}

static void test_routes(void **st)
{
	struct resp r;
	char v[96];
	int id;

	(void)st;
	mk();
	id = conn();
	r = req1(id, "POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab",
		 false);
	assert_int_equal(r.status, 405);
	assert_true(hdr(&r, "Allow", v, sizeof(v)));
	assert_string_equal(v, "GET, HEAD, OPTIONS");
	r = req1(id, "OPTIONS /echo HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.status, 204);
	assert_true(hdr(&r, "Allow", v, sizeof(v)));
	assert_string_equal(v, "POST, PUT, OPTIONS");
	r = req1(id, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.status, 204);
	r = req1(id, "GET http://example.com/plaintext?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
		 false);
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.body, "Hello, World!", 13);
	r = req1(id, "GET /plain%74ext HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.status, 200);   /* routes see the decoded path */
	r = req1(id, "GET /sub/../plaintext HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.status, 200);
	r = req1(id, "TRACE /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.status, 405);
	assert_false(closed(id));
	rm();
	/* without a root there are no files */
	{
		struct coil_http_config cfg = { .sz = sizeof(cfg) };

		mk_cfg(&cfg);
		id = conn();
		r = req1(id, "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", false);
		assert_int_equal(r.status, 404);
		rm();
	}
}

static void test_echo_large_body(void **st)
{
	static char body[300000];
	struct coil_http_config cfg = { .sz = sizeof(cfg), .max_body = 1u << 20 };
	char head[128];
	size_t n, off = 0;
	struct resp r;
	int id;

	(void)st;
	mk_cfg(&cfg);
	id = conn();
	stream_fill((uint8_t *)body, 3, 0, sizeof(body));
	snprintf(head, sizeof(head),
		 "PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
		 sizeof(body));
	feed(id, head);
	for (size_t i = 0; i < sizeof(body); i += 7000) {
		size_t k = sizeof(body) - i < 7000 ? sizeof(body) - i : 7000;

		assert_int_equal(coil_fake_feed(F, id, body + i, k), 0);
	}
	n = take(id);
	next_resp(n, &off, &r, false);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, sizeof(body));
	assert_int_equal(stream_check((const uint8_t *)r.body, 3, 0, sizeof(body)), -1);
	r = req1(id, GETP, false);
	assert_int_equal(r.status, 200);
	rm();
}

/* An idle keep-alive connection holds no request part (issue 18: idle
 * memory): it has one from a complete head until its answer is done. */
static void test_idle_holds_no_request(void **st)
{
	struct coil_http_config cfg = { .sz = sizeof(cfg) };
	struct httpd_conn *s;
	struct resp r;
	size_t n, off = 0;
	int id;

	(void)st;
	mk_cfg(&cfg);
	id = conn();
	s = coil_conn_state(coil_fake_conn(F, id));
	assert_null(s->rq);
	r = req1(id, GETP, false);
	assert_int_equal(r.status, 200);
	assert_null(s->rq);
	feed(id, "GET /plaintext HTTP/1.1\r\nHo");   /* a head in progress */
	assert_null(s->rq);
	feed(id, "st: x\r\n\r\n");
	n = take(id);
	next_resp(n, &off, &r, false);
	assert_int_equal(r.status, 200);
	assert_null(s->rq);
	/* a body in progress keeps it; its end gives it back */
	feed(id, "PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345");
	assert_non_null(s->rq);
	feed(id, "67890");
	n = take(id);
	off = 0;
	next_resp(n, &off, &r, false);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 10);
	assert_memory_equal(r.body, "1234567890", 10);
	assert_null(s->rq);
	r = req1(id, GETP, false);
	assert_int_equal(r.status, 200);
	assert_null(s->rq);
	rm();
}

/* ---- static files ---- */

static void test_files_basic(void **st)
{
	struct resp r;
	char v[128];
	int id;

	(void)st;
	mk();
	id = conn();
	r = req1(id, "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.body, "hello world\n", 12);
	assert_true(hdr(&r, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, "text/plain; charset=utf-8");
	assert_true(hdr(&r, "Last-Modified", v, sizeof(v)));
	assert_string_equal(v, "Tue, 02 Jan 2024 03:04:05 GMT");
	assert_true(hdr(&r, "ETag", v, sizeof(v)));
	assert_true(v[0] == '"');
	r = req1(id, "GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_true(hdr(&r, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, "text/css; charset=utf-8");
	r = req1(id, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.body, "<p>root</p>\n", 12);
	assert_true(hdr(&r, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, "text/html; charset=utf-8");
	r = req1(id, "GET /sub?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.status, 301);
	assert_true(hdr(&r, "Location", v, sizeof(v)));
	assert_string_equal(v, "/sub/?x=1");
	r = req1(id, "GET /sub/ HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.body, "<p>sub</p>\n", 11);
	r = req1(id, "GET /empty/ HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.status, 404);
	r = req1(id, "GET /sub/a%20b.txt HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.body, "space\n", 6);
	r = req1(id, "GET /inner-link HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.status, 200);   /* a symlink that stays inside */
	r = req1(id, "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.status, 404);
	r = req1(id, "GET /hello.txt/ HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.status, 404);
	assert_false(closed(id));
	rm();
}

static void test_files_traversal(void **st)
{
	static const char *const bad[] = {
		"/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2fsecret.txt",
		"/sub/../../secret.txt", "/sub/%2e%2e/%2e%2e/secret.txt",
		"/secret-link", "/passwd-link", "/etc-link/passwd",
		"/..%2fsecret.txt", "/.%2e/secret.txt", "//../secret.txt",
		"/sub/..%2f..%2fsecret.txt",
	};
	struct resp r;
	int id;

	(void)st;
	mk();
	id = conn();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char req[256];

		snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", bad[i]);
		r = req1(id, req, false);
		if (r.status != 403 && r.status != 404)
			fail_msg("%s: status %d", bad[i], r.status);
		assert_null(memmem(r.body, r.body_len, SECRET_MARK, strlen(SECRET_MARK)));
		assert_null(memmem(r.body, r.body_len, "root:", 5));
	}
	r = req1(id, "GET /hello%00.txt HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.status, 400);
	r = req1(id, "GET /hello%zz HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.status, 400);
	r = req1(id, "GET /hello%2 HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.status, 400);
	assert_false(closed(id));
	/* a path longer than any file name, encoded or not: 414 */
	{
		static char rq[7000];

		for (int enc = 0; enc < 2; enc++) {
			strcpy(rq, "GET /");
			/* encoded: "/%61" again and again, many short
			 * segments (one over NAME_MAX would be 414) */
			for (size_t i = 5; i < 6000; i++)
				rq[i] = !enc ? 'a' : "/%61"[i % 4];
			strcpy(rq + 6000, " HTTP/1.1\r\nHost: x\r\n\r\n");
			r = req1(id, rq, false);
			if (!enc)
				assert_int_equal(r.status, 414);
			else
				assert_int_equal(r.status, 404);   /* 2 KiB decoded */
		}
	}
	assert_false(closed(id));
	rm();
}

/* A server, a connection, and the validators of /hello.txt; returns the
 * connection. */
static int hello_validators(char *etag, size_t etag_cap, char *lm,
			    size_t lm_cap)
{
	struct resp r;
	int id;

	mk();
	id = conn();
	r = req1(id, "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.status, 200);
	assert_true(hdr(&r, "ETag", etag, etag_cap));
	assert_true(hdr(&r, "Last-Modified", lm, lm_cap));
	return id;
}

static void test_files_conditional_range(void **st)
{
	struct resp r;
	char etag[96], lm[64], req[512];
	int id;

	(void)st;
	id = hello_validators(etag, sizeof(etag), lm, sizeof(lm));
	snprintf(req, sizeof(req), "GET /hello.txt HTTP/1.1\r\nHost: x\r\n"
		 "If-None-Match: \"nope\", W/%s\r\n\r\n", etag);
	r = req1(id, req, false);
	assert_int_equal(r.status, 304);
	assert_true(hdr(&r, "ETag", NULL, 0));
	assert_false(hdr(&r, "Content-Length", NULL, 0));
	r = req1(id, "GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: *\r\n\r\n", false);
	assert_int_equal(r.status, 304);
	r = req1(id, "GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"x\"\r\n"
		     "If-Modified-Since: Tue, 02 Jan 2024 03:04:05 GMT\r\n\r\n", false);
	assert_int_equal(r.status, 200);   /* INM wins over IMS */
	r = req1(id, "GET /hello.txt HTTP/1.1\r\nHost: x\r\n"
		     "If-Modified-Since: Tue, 02 Jan 2024 03:04:05 GMT\r\n\r\n", false);
	assert_int_equal(r.status, 304);
	r = req1(id, "GET /hello.txt HTTP/1.1\r\nHost: x\r\n"
		     "If-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n", false);
	assert_int_equal(r.status, 200);
	r = req1(id, "GET /hello.txt HTTP/1.1\r\nHost: x\r\n"
		     "If-Modified-Since: yesterday\r\n\r\n", false);
	assert_int_equal(r.status, 200);
	/* ranges */
	r = req1(id, "GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4\r\n\r\n", false);
	assert_int_equal(r.status, 206);
	assert_int_equal(r.body_len, 5);
	assert_memory_equal(r.body, "hello", 5);
	assert_true(hdr(&r, "Content-Range", req, sizeof(req)));
	assert_string_equal(req, "bytes 0-4/12");
	r = req1(id, "GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=-6\r\n\r\n", false);
	assert_int_equal(r.status, 206);
	assert_memory_equal(r.body, "world\n", 6);
	r = req1(id, "GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=6-100\r\n\r\n", false);
	assert_int_equal(r.status, 206);
	assert_int_equal(r.body_len, 6);
	r = req1(id, "GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=12-\r\n\r\n", false);
	assert_int_equal(r.status, 416);
	assert_true(hdr(&r, "Content-Range", req, sizeof(req)));
	assert_string_equal(req, "bytes */12");
	r = req1(id, "GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1,4-5\r\n\r\n", false);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 12);
	r = req1(id, "GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=5-1\r\n\r\n", false);
	assert_int_equal(r.status, 200);
	snprintf(req, sizeof(req), "GET /hello.txt HTTP/1.1\r\nHost: x\r\n"
		 "Range: bytes=0-0\r\nIf-Range: %s\r\n\r\n", etag);
	r = req1(id, req, false);
	assert_int_equal(r.status, 206);
	r = req1(id, "GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0\r\n"
		     "If-Range: \"other\"\r\n\r\n", false);
	assert_int_equal(r.status, 200);
	snprintf(req, sizeof(req), "GET /hello.txt HTTP/1.1\r\nHost: x\r\n"
		 "Range: bytes=0-0\r\nIf-Range: %s\r\n\r\n", lm);
	r = req1(id, req, false);
	assert_int_equal(r.status, 206);
	/* ranges of a file sent with sendfile */
	r = req1(id, "GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=100000-100099\r\n\r\n",
		 false);
	assert_int_equal(r.status, 206);
	assert_int_equal(r.body_len, 100);
	assert_memory_equal(r.body, big_data + 100000, 100);
	rm();
}

/* RFC 9110 13.2.2: If-Match (strong), If-Unmodified-Since only without
 * If-Match, both before If-None-Match / If-Modified-Since; 412 when they
 * fail; If-Range only with a strong validator. */
static void test_files_preconditions(void **st)
{
	struct resp r;
	char etag[96], lm[64], req[1024];
	const char *G = "GET /hello.txt HTTP/1.1\r\nHost: x\r\n";
	int id;

	(void)st;
	id = hello_validators(etag, sizeof(etag), lm, sizeof(lm));
#define COND(want, ...)                                                    \
	do {                                                               \
		snprintf(req, sizeof(req), __VA_ARGS__);                   \
		r = req1(id, req, false);                                  \
		assert_int_equal(r.status, want);                          \
	} while (0)
	/* If-Match: strong comparison, "*", lists, several lines */
	COND(200, "%sIf-Match: %s\r\n\r\n", G, etag);
	assert_int_equal(r.body_len, 12);
	COND(412, "%sIf-Match: \"nope\"\r\n\r\n", G);
	assert_memory_equal(r.body, "412 Precondition Failed\n", r.body_len);
	assert_false(closed(id));   /* a 412 keeps the connection */
	COND(412, "%sIf-Match: W/%s\r\n\r\n", G, etag);
	COND(200, "%sIf-Match: *\r\n\r\n", G);
	COND(200, "%sIf-Match: \"a\", %s, \"b\"\r\n\r\n", G, etag);
	COND(200, "%sIf-Match: \"a\"\r\nIf-Match: %s\r\n\r\n", G, etag);
	COND(412, "%sIf-Match: \"a\"\r\nIf-Match: W/%s\r\n\r\n", G, etag);
	/* If-Unmodified-Since (mtime 2024-01-02 03:04:05) */
	COND(412, "%sIf-Unmodified-Since: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n", G);
	COND(200, "%sIf-Unmodified-Since: %s\r\n\r\n", G, lm);
	COND(200, "%sIf-Unmodified-Since: Wed, 03 Jan 2024 00:00:00 GMT\r\n\r\n", G);
	COND(200, "%sIf-Unmodified-Since: last week\r\n\r\n", G);   /* ignored */
	COND(200, "%sIf-Unmodified-Since: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
	     "If-Unmodified-Since: %s\r\n\r\n", G, lm);   /* a list: ignored */
	/* an If-Match that holds makes If-Unmodified-Since irrelevant */
	COND(200, "%sIf-Match: %s\r\nIf-Unmodified-Since: Mon, 01 Jan 2024 "
	     "00:00:00 GMT\r\n\r\n", G, etag);
	/* order: If-Match / If-Unmodified-Since first, then If-None-Match */
	COND(412, "%sIf-None-Match: %s\r\nIf-Match: \"nope\"\r\n\r\n", G, etag);
	COND(304, "%sIf-Match: %s\r\nIf-None-Match: %s\r\n\r\n", G, etag, etag);
	COND(412, "%sIf-Unmodified-Since: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
	     "If-Modified-Since: %s\r\n\r\n", G, lm);
	COND(304, "%sIf-Unmodified-Since: %s\r\nIf-Modified-Since: %s\r\n\r\n",
	     G, lm, lm);
	COND(304, "%sIf-None-Match: \"a\"\r\nIf-None-Match: W/%s\r\n\r\n", G, etag);
	/* HEAD: 412 without a body */
	snprintf(req, sizeof(req), "HEAD /hello.txt HTTP/1.1\r\nHost: x\r\n"
		 "If-Match: \"nope\"\r\n\r\n");
	r = req1(id, req, true);
	assert_int_equal(r.status, 412);
	assert_int_equal(take(id), 0);
	/* a missing file stays 404 whatever the preconditions say */
	COND(404, "GET /none.txt HTTP/1.1\r\nHost: x\r\nIf-Match: *\r\n\r\n");
	/* If-Range: the range only for the current strong validator */
	COND(206, "%sRange: bytes=0-4\r\nIf-Range: %s\r\n\r\n", G, etag);
	assert_memory_equal(r.body, "hello", 5);
	COND(200, "%sRange: bytes=0-4\r\nIf-Range: W/%s\r\n\r\n", G, etag);
	assert_int_equal(r.body_len, 12);
	COND(200, "%sRange: bytes=0-4\r\nIf-Range: Mon, 01 Jan 2024 00:00:00 GMT"
	     "\r\n\r\n", G);
	COND(200, "%sRange: bytes=0-4\r\nIf-Range: %s\r\nIf-Range: %s\r\n\r\n",
	     G, etag, etag);
	COND(200, "%sRange: bytes=0-4\r\nRange: bytes=5-6\r\n\r\n", G);
	COND(416, "%sRange: bytes=50-\r\nIf-Range: %s\r\n\r\n", G, etag);
	COND(200, "%sRange: bytes=50-\r\nIf-Range: \"old\"\r\n\r\n", G);
	/* preconditions before the range: a failed If-Match is 412, not 206 */
	COND(412, "%sRange: bytes=0-4\r\nIf-Match: \"nope\"\r\n\r\n", G);
	/* If-Match holds: the range applies */
	COND(206, "%sRange: bytes=0-4\r\nIf-Match: %s\r\n\r\n", G, etag);
	/* Last-Modified in the future (not yet a second old) is weak: an
	 * If-Range date equal to it does not give the range */
	mkf("future.txt", "0123456789", 10);
	set_mtime("future.txt", time(NULL) + 3600);
	r = req1(id, "GET /future.txt HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_true(hdr(&r, "Last-Modified", lm, sizeof(lm)));
	COND(200, "GET /future.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n"
	     "If-Range: %s\r\n\r\n", lm);
	assert_int_equal(r.body_len, 10);
#undef COND
	rm();
}

static void test_files_big_sendfile(void **st)
{
	struct resp r;
	size_t n, off = 0;
	unsigned free0;
	int id;

	(void)st;
	mk();
	free0 = coil_fake_free_bufs(F);
	id = conn();
	coil_fake_set_send(F, id, 50000, false);   /* short sends */
	feed(id, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"
		 "GET /mid.txt HTTP/1.1\r\nHost: x\r\n\r\n"
		 "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
	coil_fake_settle(F);
	n = take(id);
	next_resp(n, &off, &r, false);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, BIG_SIZE);
	assert_memory_equal(r.body, big_data, BIG_SIZE);
	next_resp(n, &off, &r, false);
	assert_int_equal(r.body_len, MID_SIZE);
	assert_true(r.body[0] == 'm' && r.body[MID_SIZE - 1] == 'm');
	next_resp(n, &off, &r, false);
	assert_memory_equal(r.body, big_data, BIG_SIZE);
	assert_int_equal(off, n);
	assert_int_equal(coil_fake_free_bufs(F), free0);
	rm();
}

/* A cached file changes: served from memory for up to a second, then the
 * new bytes; a connection still sending the old ones keeps them intact. */
static void test_files_cache_invalidation(void **st)
{
	static char mid2[MID_SIZE + 100];
	struct resp r;
	size_t n, off = 0;
	int a, b;

	(void)st;
	mk();
	a = conn();
	r = req1(a, "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_memory_equal(r.body, "hello world\n", 12);
	mkf("hello.txt", "HELLO WORLD, longer\n", 20);
	r = req1(a, "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_memory_equal(r.body, "hello world\n", 12);   /* cached, < 1 s */
	coil_fake_advance(F, 1001);
	r = req1(a, "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.body_len, 20);
	assert_memory_equal(r.body, "HELLO WORLD, longer\n", 20);
	/* pinned: a stalls while sending mid.txt from the cache */
	coil_fake_set_send(F, a, 0, true);
	feed(a, "GET /mid.txt HTTP/1.1\r\nHost: x\r\n\r\n");
	memset(mid2, 'n', sizeof(mid2));
	mkf("mid.txt", mid2, sizeof(mid2));
	coil_fake_advance(F, 1001);
	b = conn();
	r = req1(b, "GET /mid.txt HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(r.body_len, sizeof(mid2));
	assert_true(r.body[0] == 'n');
	{
		struct httpd_conn *s = coil_conn_state(coil_fake_conn(F, a));

		assert_int_equal(s->nheld, 1);    /* the old entry, unlinked */
		assert_false(s->held[0]->linked);
	}
	coil_fake_set_send(F, a, 0, false);
	coil_fake_settle(F);
	n = take(a);
	next_resp(n, &off, &r, false);
	assert_int_equal(r.body_len, MID_SIZE);
	for (size_t i = 0; i < MID_SIZE; i++)
		if (r.body[i] != 'm')
			fail_msg("byte %zu changed", i);
	/* drained: the next request lets the old entry go */
	r = req1(a, GETP, false);
	{
		struct httpd_conn *s = coil_conn_state(coil_fake_conn(F, a));

		assert_int_equal(s->nheld, 0);
	}
	/* restore for the other tests */
	{
		char *mid = malloc(MID_SIZE);

		memset(mid, 'm', MID_SIZE);
		mkf("mid.txt", mid, MID_SIZE);
		free(mid);
		mkf("hello.txt", "hello world\n", 12);
		set_mtime("hello.txt", 1704164645);
	}
	rm();
}

static void test_cache_bounded(void **st)
{
	struct coil_http_config cfg = { .sz = sizeof(cfg), .root = root_path,
				    .cache_size = 64u << 10 };
	struct httpd_loop *lp;
	int id;

	(void)st;
	mk_cfg(&cfg);
	id = conn();
	req1(id, "GET /mid.txt HTTP/1.1\r\nHost: x\r\n\r\n", false);   /* 10 KiB */
	req1(id, "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", false);
	lp = H->loops[0];
	assert_int_equal(lp->cache.count, 2);
	assert_true(lp->cache.bytes <= 64u << 10);
	/* mid.txt is above a quarter of 64 KiB? no: 10 KiB <= 16 KiB, cached;
	 * big.bin never is */
	req1(id, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n", false);
	assert_int_equal(lp->cache.count, 2);
	rm();
	{
		struct coil_http_config off = { .sz = sizeof(off), .root = root_path,
					    .cache_size = COIL_HTTP_CACHE_OFF };
		struct resp r;

		mk_cfg(&off);
		id = conn();
		r = req1(id, "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", false);
		assert_memory_equal(r.body, "hello world\n", 12);
		rm();
	}
}

static void test_shutdown(void **st)
{
	struct resp r;
	int idle, busy;

	(void)st;
	mk();
	idle = conn();
	req1(idle, GETP, false);
	busy = conn();
	feed(busy, "GET /json HTTP/1.1\r\nHost: x\r\n");
	coil__loop_begin_stop(coil_fake_loop(F));
	coil_fake_settle(F);
	assert_true(closed(idle));
	assert_false(closed(busy));
	r = req1(busy, "\r\n", false);
	assert_int_equal(r.status, 200);
	assert_true(hdr(&r, "Connection", NULL, 0));
	assert_true(closed(busy));
	rm();
}

/* SIGTERM while a pipeline waits for its output to drain: the next request
 * is answered, with "Connection: close", rather than dropped unanswered
 * (found by fuzz_httpd). */
static void test_shutdown_pipeline_backlog(void **st)
{
	const char *big = "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n";
	char three[256];
	struct resp r;
	size_t n, off = 0;
	bool reset = true;
	int id;

	(void)st;
	mk();
	id = conn();
	coil_fake_set_send(F, id, 0, true);
	snprintf(three, sizeof(three), "%s%s%s", big, big, big);
	feed(id, three);
	coil__loop_begin_stop(coil_fake_loop(F));
	coil_fake_settle(F);
	assert_false(closed(id));      /* not idle: requests are waiting */
	coil_fake_set_send(F, id, 0, false);
	assert_true(coil_fake_closed(F, id, NULL, &reset));
	assert_false(reset);
	n = take(id);
	next_resp(n, &off, &r, false);
	assert_int_equal(r.status, 200);
	assert_false(hdr(&r, "Connection", NULL, 0));
	next_resp(n, &off, &r, false);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, BIG_SIZE);
	assert_true(hdr(&r, "Connection", three, sizeof(three)));
	assert_string_equal(three, "close");
	assert_int_equal(off, n);      /* the third: not answered, as said */
	rm();
}

static void test_access_log(void **st)
{
	char path[160], buf[4096], *line, *end;
	struct coil_http_config cfg = { .sz = sizeof(cfg), .access_log = path };
	struct sockaddr_in6 six = { .sin6_family = AF_INET6 };
	FILE *f;
	size_t n;
	int id, v6;

	(void)st;
	snprintf(path, sizeof(path), "%s/access.log", root_dir);
	mk_cfg(&cfg);
	id = conn();
	req1(id, GETP, false);
	req1(id, "GET /x\"y HTTP/1.1\r\nHost: x\r\nReferer: http://r/\r\n"
		 "User-Agent: t\"\t\xe9\r\n\r\n", false);
	v6 = conn();
	inet_pton(AF_INET6, "2001:db8::7", &six.sin6_addr);
	assert_int_equal(coil_fake_set_peer(F, v6, (struct sockaddr *)&six,
					    sizeof(six)), 0);
	req1(v6, "GET /json HTTP/1.0\r\n\r\n", false);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fread(buf, 1, sizeof(buf), f), 0);   /* buffered */
	coil_fake_advance(F, 1000);
	clearerr(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	/* combined format: client - - [time] "request" status bytes
	 * "referer" "user agent" */
	line = buf;
	end = strchr(line, '\n');
	assert_non_null(end);
	assert_memory_equal(line, "127.0.0.1 - - [", 15);
	*end = 0;
	assert_string_equal(line + 15 + 26,
			    "] \"GET /plaintext HTTP/1.1\" 200 13 \"-\" \"-\"");
	line = end + 1;
	end = strchr(line, '\n');
	assert_non_null(end);
	assert_memory_equal(line, "127.0.0.1 - - [", 15);
	*end = 0;
	assert_string_equal(line + 15 + 26, "] \"GET /x\\x22y HTTP/1.1\" 404 14 "
			    "\"http://r/\" \"t\\x22\\x09\\xe9\"");
	line = end + 1;
	assert_memory_equal(line, "2001:db8::7 - - [", 17);
	assert_non_null(strstr(line, "] \"GET /json HTTP/1.0\" 200 27 \"-\" \"-\"\n"));
	id = conn();
	req1(id, "GET / HTTP/1.1\r\n\r\n", false);   /* 400: no Host */
	rm();                                        /* flushes */
	clearerr(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	assert_memory_equal(buf, "127.0.0.1 - - [", 15);
	assert_non_null(strstr(buf, "] \"-\" 400 "));   /* no request line */
	fclose(f);
	unlink(path);
}

static void test_parse_date(void **st)
{
	(void)st;
	assert_int_equal(coil_http1_parse_date("Thu, 01 Jan 1970 00:00:00 GMT", 29), 0);
	assert_int_equal(coil_http1_parse_date("Sun, 06 Nov 1994 08:49:37 GMT", 29),
			 784111777);
	assert_int_equal(coil_http1_parse_date("Sun, 06 Nov 1994 08:49:37 UTC", 29), -1);
	assert_int_equal(coil_http1_parse_date("Sunday, 06-Nov-94 08:49:37 GMT", 30), -1);
	assert_string_equal(httpd__mime_type("a/b.HTML", 8), "text/html; charset=utf-8");
	assert_string_equal(httpd__mime_type("a.b/c", 5), "application/octet-stream");
	assert_string_equal(httpd__mime_type("x.woff2", 7), "font/woff2");
}

/* Request parts come from the loop's slab, never the heap, at any number
 * of requests in progress (once 256 spares were out, further ones came
 * from malloc: issue 18), and their pages go back once a burst is over. */
static void test_request_parts_slab(void **st)
{
	enum { N = 600 };
	static int ids[N];
	struct coil__slab *rqs;

	(void)st;
	mk();
	for (int i = 0; i < N; i++) {
		ids[i] = conn();
		/* A complete head, its body not here yet: a request part each. */
		feed(ids[i], "POST /echo HTTP/1.1\r\nHost: x\r\n"
			     "Content-Length: 5\r\n\r\n");
	}
	rqs = &H->loops[0]->rqs;
	assert_int_equal(rqs->used, N);
	for (int i = 0; i < N; i++)
		assert_true(coil__slab_owns(rqs, ((struct httpd_conn *)coil_conn_state(
						   coil_fake_conn(F, ids[i])))->rq));
	for (int i = 0; i < N; i++) {
		feed(ids[i], "abcde");
		take(ids[i]);
		assert_non_null(strstr(out, "\r\n\r\nabcde"));
	}
	/* All idle again: none in use, and the burst's pages were given back
	 * (the next request starts over from the slab's first object). */
	assert_int_equal(rqs->used, 0);
	assert_int_equal(rqs->bumped, 0);
	feed(ids[0], "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
	take(ids[0]);
	assert_non_null(strstr(out, "200 OK"));
	assert_int_equal(rqs->used, 0);
	assert_int_equal(rqs->bumped, 1);
	rm();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plaintext_json),
		cmocka_unit_test(test_pipelining_order_one_send),
		cmocka_unit_test(test_split_anywhere),
		cmocka_unit_test(test_head),
		cmocka_unit_test(test_expect_continue),
		cmocka_unit_test(test_keepalive_close_10),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_header_timeout),
		cmocka_unit_test(test_keepalive_timeout),
		cmocka_unit_test(test_close_to_stalled_peer),
		cmocka_unit_test(test_body_timeout),
		cmocka_unit_test(test_isolation),
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_echo_large_body),
		cmocka_unit_test(test_idle_holds_no_request),
		cmocka_unit_test(test_files_basic),
		cmocka_unit_test(test_files_traversal),
		cmocka_unit_test(test_files_conditional_range),
		cmocka_unit_test(test_files_preconditions),
		cmocka_unit_test(test_files_big_sendfile),
		cmocka_unit_test(test_files_cache_invalidation),
		cmocka_unit_test(test_cache_bounded),
		cmocka_unit_test(test_shutdown),
		cmocka_unit_test(test_shutdown_pipeline_backlog),
		cmocka_unit_test(test_access_log),
		cmocka_unit_test(test_parse_date),
		cmocka_unit_test(test_request_parts_slab),
	};

	return cmocka_run_group_tests(tests, setup_root, teardown_root);
}
