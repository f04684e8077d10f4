/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for coil-httpd as a whole: the real protocol, routes,
 * static files, response cache and access log (engine/http: server.c,
 * request.c, files.c, access_log.c) on the real connection core, over the
 * fake backend (coil/testing.h), with two client connections. Built by
 * tests/fuzz/meson.build in a clang build; scripts/test runs it for a
 * bounded time.
 *
 * Input: one configuration byte, then commands separated by NUL bytes
 * (HTTP has no NUL outside bodies, so seeds stay readable text). The
 * configuration byte picks the receive buffer size (64, 256, 1024, 4096:
 * where input is split), the cache on or off, the access log on or off
 * (to /dev/null), a small write high-water mark (pauses reading), and one
 * of three sets of small limits (request line, head, header count) so that
 * 414, 431 and 413 are reached. A command is its first byte:
 *   a / b    the rest of the command is sent on connection 0 / 1, and the
 *            loop runs until it settles
 *   A / B    the same, queued: it arrives with the next turn, with input
 *            for the other connection, in the same turn
 *   T        one loop turn
 *   t<n>     the fake clock moves on n ms (default 10); the timeouts are
 *            20 (head), 30 (body) and 50 ms (keep-alive)
 *   e / E    connection 0 / 1 sends EOF
 *   r / R    connection 0 / 1 resets; a new connection takes its place
 *   s<n> / S<n>  sends on connection 0 / 1 accept at most n & 127 bytes
 *            (0: any); n & 128 stalls them (a peer that stopped reading)
 *   q        the engine stops gracefully (SIGTERM): no new connections
 *   other    the whole command is sent on connection 0
 * After the last command, sends that were limited to a few bytes go at full
 * speed (stalled ones stay stalled) and the clock runs on a second: every
 * connection must be closed by then. FUZZ_HTTPD_TRACE=1 in the environment prints every
 * response and close on stderr.
 *
 * The document root, made once: files of distinct sizes and contents
 * (small.txt, mid.bin: cached and sent from the cache without a copy,
 * big.bin: above the cacheable size, sent with sendfile, sub/index.html),
 * symlinks inside (link.txt, mid-link.bin, and alias -> ".", which gives
 * every file many names: cache keys, enough to make the small cache
 * evict) and symlinks out of the root (out, abs, updir) to a secret file
 * next to the root.
 *
 * Invariants checked on what the server sends (abort on failure):
 *  - every byte is part of a response that coil_http1_response_parse()
 *    accepts, HTTP/1.1 with a status in 100..599, told whether its request
 *    was HEAD by a client-side shadow parse of what was sent; 1xx only as
 *    100 Continue;
 *  - bodies are what they must be, so responses are neither mixed nor cut
 *    into one another: a 200 with an ETag is exactly one file of the
 *    root, a 206 exactly the bytes its Content-Range names, an error
 *    "<status> <reason>\n", /plaintext and /json their text;
 *  - nothing follows a response that announced the close;
 *  - a graceful close comes after a complete response (a reset may cut
 *    one, and so may the client's EOF in the middle of a request body),
 *    and, unless a response announced the close, after answers to every
 *    request that was completely sent (a stop while output is queued, or
 *    input is still on its way, may close with requests unseen: reading
 *    was paused, or they had not arrived; to the client this is the race
 *    of any idle close, RFC 9112 9.3.1; test_httpd.c checks the pipeline
 *    the server did see);
 *  - the secret file's marker never appears in the output of a
 *    connection that did not send it itself (/echo would send it back);
 *  - at the end every connection is closed and every receive buffer is
 *    back in the pool.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <coil/coil.h>
#include <coil/http1.h>
#include <coil/testing.h>

#include "core/internal.h"   /* coil__loop_begin_stop: SIGTERM */
#include "fuzz_check.h"
#include <coil/http.h>

#define MARKER "COIL-FUZZ-SECRET-d41c8e"
#define MAX_BODY 300u
#define MAXREQ 4096u
#define BODY_CAP (64u << 10)
#define NBUFS 64u

/* ---- the document root ---- */

struct file {
	const char *name;
	size_t size;
	uint8_t *data;
};

static struct file files[] = {
	{ "small.txt", 13, NULL },
	{ "sub/index.html", 40, NULL },
	{ "mid.bin", 6000, NULL },      /* cached, above the inline size */
	{ "big.bin", 20000, NULL },     /* above the cacheable size */
};
#define NFILES (sizeof(files) / sizeof(files[0]))

static char root[160], top[64];

static void die(const char *what)
{
	perror(what);
	abort();
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	struct timeval tv[2] = { { 1704164645, 0 }, { 1704164645, 0 } };

	if (!f || fwrite(data, 1, len, f) != len || fclose(f))
		die(path);
	if (utimes(path, tv))
		die(path);
}

/* Symlinks in the root; "" stands for the secret's absolute path. More
 * names for the same files are more cache keys, so the small cache fills
 * up and evicts. */
static const struct {
	const char *name, *target;
} links[] = {
	{ "out", "../secret.txt" }, { "abs", "" }, { "updir", ".." },
	{ "link.txt", "small.txt" }, { "alias", "." },
	{ "mid-link.bin", "mid.bin" },
};
#define NLINKS (sizeof(links) / sizeof(links[0]))

static void make_root(void)
{
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	char dir[] = "/tmp/coil-fuzz-httpd-XXXXXX", p[320], s[320];

	if (!mkdtemp(dir))
		die("mkdtemp");
	memcpy(top, dir, sizeof(dir));
	snprintf(root, sizeof(root), "%s/root", dir);
	snprintf(p, sizeof(p), "%s/sub", root);
	if (mkdir(root, 0755) || mkdir(p, 0755))
		die("mkdir");
	for (size_t k = 0; k < NFILES; k++) {
		struct file *f = &files[k];

		f->data = malloc(f->size);
		if (!f->data)
			die("malloc");
		for (size_t i = 0; i < f->size; i++)
			f->data[i] = (uint8_t)alpha[(i * 7 + k * 5) % 36];
		snprintf(p, sizeof(p), "%s/%s", root, f->name);
		write_file(p, f->data, f->size);
	}
	snprintf(s, sizeof(s), "%s/secret.txt", dir);
	write_file(s, MARKER "\n" MARKER "\n", 2 * sizeof(MARKER));
	for (size_t k = 0; k < NLINKS; k++) {
		snprintf(p, sizeof(p), "%s/%s", root, links[k].name);
		if (symlink(*links[k].target ? links[k].target : s, p))
			die(p);
	}
}

/* At exit (not after a crash: then the root is left for a look). */
static void remove_root(void)
{
	char p[320];

	for (size_t k = 0; k < NFILES + NLINKS; k++) {
		snprintf(p, sizeof(p), "%s/%s", root,
			 k < NFILES ? files[k].name : links[k - NFILES].name);
		(void)unlink(p);
	}
	snprintf(p, sizeof(p), "%s/sub", root);
	(void)rmdir(p);
	(void)rmdir(root);
	snprintf(p, sizeof(p), "%s/secret.txt", top);
	(void)unlink(p);
	(void)rmdir(top);
}

/* ---- one client connection ---- */

enum { IN_HEAD, IN_BODY, IN_DEAD };
enum { OUT_HEAD, OUT_BODY, OUT_CLOSE_DELIM };

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const void *d, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;

		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			die("realloc");
		b->cap = cap;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

struct client {
	int id;                  /* fake connection id */
	bool eof;                /* the client sent EOF */
	bool reset;              /* the client reset it: no more checks */
	bool done;               /* the server closed it, checked */
	bool stalled;            /* its sends do not complete */
	bool unsettled;          /* input queued (A/B) and the loop has not
				    settled since: maybe not delivered yet */
	bool stop_busy;          /* output was queued, or input maybe not
				    delivered, when the engine began to
				    stop */
	/* What the client sent, and a shadow parse of it: which requests
	 * are complete (head and body) and which were HEAD. */
	struct buf in;
	size_t in_pos;
	int in_state;
	struct coil_http1_parser parser;
	struct coil_http1_header hdrs[COIL_HTTP_MAX_HEADERS];
	struct coil_http1_body body;
	bool head_req[MAXREQ];
	unsigned nreq;           /* heads complete */
	unsigned ndone;          /* heads and bodies complete */
	bool sent_marker;
	/* What the server sent. */
	struct buf out;
	size_t out_pos;
	int out_state;
	struct coil_http1_body rbody;
	unsigned nresp;          /* final responses complete */
	bool close_announced;
	/* the response being read */
	int status;
	bool head, has_etag, has_range;
	char ctype[64];
	uint64_t r_first, r_last, r_size;
	struct buf rdata;
};

static struct coil_http1_limits limits;
static struct coil_fake *F;
static struct client cl[2];
static bool trace;   /* FUZZ_HTTPD_TRACE=1: each response on stderr */

static void client_init(struct client *c, int id)
{
	struct buf in = c->in, out = c->out, rdata = c->rdata;

	memset(c, 0, sizeof(*c));
	c->in = in;
	c->out = out;
	c->rdata = rdata;
	c->in.len = c->out.len = c->rdata.len = 0;
	c->id = id;
	coil_http1_parser_init(&c->parser, &limits, c->hdrs,
			       COIL_HTTP_MAX_HEADERS);
}

/* The shadow parse of what the client sent so far. */
static void shadow(struct client *c)
{
	/* (an empty body ends with no bytes) */
	while (c->in_state == IN_BODY ||
	       (c->in_state == IN_HEAD && c->in_pos < c->in.len)) {
		static const uint8_t none[1];
		size_t n = c->in.len - c->in_pos;
		const uint8_t *d = n ? c->in.p + c->in_pos : none;

		if (c->in_state == IN_HEAD) {
			struct coil_http1_request req;
			int r = coil_http1_parse(&c->parser, d, n, &req);

			if (r == COIL_HTTP1_NEED_MORE)
				return;
			CHECK(r > 0 || coil_http1_is_error(r));
			if (r < 0 || c->nreq == MAXREQ) {
				c->in_state = IN_DEAD;
				return;
			}
			c->head_req[c->nreq++] = req.method == COIL_HTTP1_HEAD;
			c->in_pos += (size_t)r;
			if ((req.flags & COIL_HTTP1_F_CONTENT_LENGTH) &&
			    req.content_length > MAX_BODY) {
				c->in_state = IN_DEAD;   /* 413 */
				return;
			}
			coil_http1_body_init(&c->body, &req, &limits, NULL, 0);
			c->in_state = IN_BODY;
		} else {
			struct coil_http1_str s;
			size_t used;
			int r = coil_http1_body_read(&c->body, d, n, &s, &used);

			c->in_pos += used;
			if (c->body.announced > MAX_BODY || r < 0) {
				c->in_state = IN_DEAD;   /* 413, 400 */
				return;
			}
			if (r == COIL_HTTP1_DONE) {
				c->ndone++;
				c->in_state = IN_HEAD;
			} else if (r == COIL_HTTP1_NEED_MORE) {
				return;
			}
		}
	}
}

/* Returns true when it ran the loop until it settled. */
static bool send_bytes(struct client *c, const uint8_t *d, size_t n,
		       bool settle)
{
	if (c->reset || c->eof || c->done || !n)
		return false;
	if ((settle ? coil_fake_feed(F, c->id, d, n)
		    : coil_fake_queue(F, c->id, d, n)) < 0)
		return false;   /* closed by the server meanwhile */
	c->unsettled = !settle;
	buf_add(&c->in, d, n);
	if (memmem(c->in.p, c->in.len, MARKER, sizeof(MARKER) - 1))
		c->sent_marker = true;
	shadow(c);
	return settle;
}

/* ---- checking responses ---- */

static const struct file *file_of_size(uint64_t size)
{
	for (size_t k = 0; k < NFILES; k++)
		if (files[k].size == size)
			return &files[k];
	return NULL;
}

/* Is `s` (not NUL-terminated) an unsigned decimal? Parse it. */
static bool num(const char *s, size_t n, uint64_t *v)
{
	*v = 0;
	if (!n || n > 18)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		*v = *v * 10 + (uint64_t)(s[i] - '0');
	}
	return true;
}

/* "bytes a-b/n" */
static bool content_range(const struct coil_http1_str *v, uint64_t *a,
			  uint64_t *b, uint64_t *n)
{
	const char *p = v->ptr, *end = p + v->len, *dash, *slash;

	if (v->len < 6 || memcmp(p, "bytes ", 6))
		return false;
	p += 6;
	dash = memchr(p, '-', (size_t)(end - p));
	slash = memchr(p, '/', (size_t)(end - p));
	return dash && slash && dash < slash &&
	       num(p, (size_t)(dash - p), a) &&
	       num(dash + 1, (size_t)(slash - dash - 1), b) &&
	       num(slash + 1, (size_t)(end - slash - 1), n);
}

static bool name_is(const struct coil_http1_header *h, const char *name)
{
	size_t n = strlen(name);

	return h->name.len == n && !strncasecmp(h->name.ptr, name, n);
}

static void head_seen(struct client *c, const struct coil_http1_response *r)
{
	c->status = r->status;
	c->has_etag = c->has_range = false;
	c->ctype[0] = 0;
	c->rdata.len = 0;
	for (unsigned i = 0; i < r->nheaders; i++) {
		const struct coil_http1_header *h = &r->headers[i];

		if (name_is(h, "ETag")) {
			c->has_etag = true;
		} else if (name_is(h, "Content-Range")) {
			CHECK(!c->has_range);
			c->has_range = true;
			if (r->status == 206)
				CHECK(content_range(&h->value, &c->r_first,
						    &c->r_last, &c->r_size));
		} else if (name_is(h, "Content-Type")) {
			size_t n = h->value.len < sizeof(c->ctype) - 1
					   ? h->value.len
					   : sizeof(c->ctype) - 1;

			memcpy(c->ctype, h->value.ptr, n);
			c->ctype[n] = 0;
		}
	}
}

/* The body of a complete response is what it must be. */
static void body_check(struct client *c)
{
	const uint8_t *b = c->rdata.p;
	size_t n = c->rdata.len;
	const struct file *f;
	char err[96];

	if (trace)
		fprintf(stderr, "conn %d: response %u: %d%s, %zu body bytes, "
			"%s%s%s\n", c->id, c->nresp, c->status,
			c->head ? " (HEAD)" : "", c->rdata.len, c->ctype,
			c->has_etag ? ", ETag" : "",
			c->close_announced ? ", close" : "");
	if (c->head || c->status == 304 || c->status == 204)
		return;
	if (c->status == 206) {
		CHECK(c->has_etag && c->has_range);
		f = file_of_size(c->r_size);
		CHECK(f);
		CHECK(c->r_first <= c->r_last && c->r_last < f->size);
		CHECK(n == c->r_last - c->r_first + 1);
		CHECK(!memcmp(b, f->data + c->r_first, n));
		return;
	}
	if (c->status == 200 && c->has_etag) {
		f = file_of_size(n);
		CHECK(f);
		CHECK(!memcmp(b, f->data, n));
		return;
	}
	if (c->status >= 300 && !strncmp(c->ctype, "text/plain", 10)) {
		int k = snprintf(err, sizeof(err), "%d %s\n", c->status,
				 coil_http1_reason(c->status));

		CHECK((size_t)k == n && !memcmp(b, err, n));
		return;
	}
	if (c->status == 200 && !strcmp(c->ctype, "text/plain")) {
		CHECK(n == 13 && !memcmp(b, "Hello, World!", 13));
		return;
	}
	if (c->status == 200 && !strcmp(c->ctype, "application/json")) {
		CHECK(n == 27 && !memcmp(b, "{\"message\":\"Hello, World!\"}", 27));
		return;
	}
	/* /echo (application/octet-stream): the client's own bytes */
	CHECK(c->status == 200 && !strcmp(c->ctype, "application/octet-stream"));
}

static void body_add(struct client *c, const void *d, size_t n)
{
	if (c->rdata.len + n <= BODY_CAP)
		buf_add(&c->rdata, d, n);
	else
		CHECK(!"a response body larger than any resource");
}

/* Parse what arrived on `c` as far as it goes. */
static void responses(struct client *c)
{
	for (;;) {
		static const uint8_t none[1];
		size_t n = c->out.len - c->out_pos;
		const uint8_t *d = n ? c->out.p + c->out_pos : none;

		/* (a body reader may finish with no bytes: a bodiless
		 * response, the end of a chunked body already read) */
		if (!n && c->out_state != OUT_BODY)
			return;
		if (c->out_state == OUT_CLOSE_DELIM) {
			body_add(c, d, n);
			c->out_pos += n;
			return;
		}
		if (c->out_state == OUT_HEAD) {
			struct coil_http1_header h[32];
			struct coil_http1_response r;
			int k;

			/* nothing after a response that said "close" */
			CHECK(!c->close_announced);
			c->head = c->nresp < c->nreq && c->head_req[c->nresp];
			k = coil_http1_response_parse(d, n, c->head, &r, h, 32,
						      NULL);
			if (k == COIL_HTTP1_NEED_MORE)
				return;
			CHECK(k > 0);
			CHECK(r.version_minor == 1);
			CHECK(r.status >= 100 && r.status <= 599);
			c->out_pos += (size_t)k;
			if (r.status < 200) {
				CHECK(r.status == 100);
				continue;
			}
			head_seen(c, &r);
			if (!(r.flags & COIL_HTTP1_F_KEEP_ALIVE))
				c->close_announced = true;
			if (r.flags & COIL_HTTP1_F_CLOSE_DELIMITED) {
				c->out_state = OUT_CLOSE_DELIM;
				continue;
			}
			coil_http1_response_body_init(&c->rbody, &r, NULL, NULL,
						      0);
			c->out_state = OUT_BODY;
		} else {
			struct coil_http1_str s;
			size_t used;
			int r = coil_http1_body_read(&c->rbody, d, n, &s, &used);

			CHECK(r >= 0);
			c->out_pos += used;
			if (r == COIL_HTTP1_DATA)
				body_add(c, s.ptr, s.len);
			if (r == COIL_HTTP1_DONE) {
				body_check(c);
				c->nresp++;
				c->out_state = OUT_HEAD;
			}
			if (r == COIL_HTTP1_NEED_MORE)
				return;
		}
	}
}

/* Take what the server sent on `c`, check it, and check a close. */
static void collect(struct client *c)
{
	int reason;
	bool rst;

	if (c->done)
		return;
	for (;;) {
		uint8_t tmp[16384];
		size_t n = coil_fake_pending(F, c->id) ?
			coil_fake_take(F, c->id, tmp, sizeof(tmp)) : 0;

		if (!n)
			break;
		buf_add(&c->out, tmp, n);
	}
	if (!c->sent_marker && c->out.len &&
	    memmem(c->out.p, c->out.len, MARKER, sizeof(MARKER) - 1))
		CHECK(!"the secret outside the root was served");
	if (!c->reset)
		responses(c);
	if (!coil_fake_closed(F, c->id, &reason, &rst))
		return;
	c->done = true;
	if (trace)
		fprintf(stderr, "conn %d: closed by the server (%s, reason %d)"
			" after %u responses to %u complete requests\n", c->id,
			rst ? "reset" : "graceful", reason, c->nresp, c->ndone);
	if (c->reset || rst)
		return;
	/* A graceful close ends a complete response (except one to a request
	 * whose body the client cut short by its EOF: an answer that streams
	 * the body, /echo, cannot be finished; the client sees it short)... */
	if (c->out_state == OUT_CLOSE_DELIM) {
		body_check(c);
		c->nresp++;
	} else if (!(c->eof && c->in_state == IN_BODY)) {
		CHECK(c->out_state == OUT_HEAD && c->out_pos == c->out.len);
	}
	/* ... and leaves no complete request unanswered, unless the server
	 * said it would close. */
	if (!c->close_announced && !c->stop_busy)
		CHECK(c->nresp >= c->ndone);
}

static void collect_all(void)
{
	collect(&cl[0]);
	collect(&cl[1]);
}

static void reconnect(struct client *c)
{
	int id = coil_fake_connect(F);

	if (id == -ECONNREFUSED && coil_fake_loop(F)->stopping) {
		c->done = true;   /* no new connections while stopping */
		return;
	}
	CHECK(id >= 0);
	client_init(c, id);
}

/* ---- the run ---- */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	make_root();
	atexit(remove_root);
	trace = getenv("FUZZ_HTTPD_TRACE") && *getenv("FUZZ_HTTPD_TRACE") == '1';
	return 0;
}

static const struct coil_http1_limits limit_sets[4] = {
	{ .max_request_line = 64, .max_head = 128, .max_headers = 4 },
	{ .max_request_line = 256, .max_head = 512, .max_headers = 8 },
	{ .max_request_line = 1024, .max_head = 2048, .max_headers = 16 },
	{ .max_request_line = 1024, .max_head = 2048, .max_headers = 16 },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned buf_sizes[4] = { 64, 256, 1024, 4096 };
	struct coil_http_config cfg = { .sz = sizeof(cfg) };
	struct coil_service svc = { .sz = sizeof(svc) };
	struct coil_fake_opts fo = { .sz = sizeof(fo), .bufs = NBUFS };
	struct coil_http_server *h;
	size_t pos = 1;
	uint8_t c0;

	if (!size)
		return 0;
	c0 = data[0];
	limits = limit_sets[(c0 >> 5) & 3];
	limits.sz = sizeof(limits);
	cfg.root = root;
	cfg.max_body = MAX_BODY;
	cfg.header_timeout_ms = 20;
	cfg.body_timeout_ms = 30;
	cfg.keepalive_timeout_ms = 50;
	/* 24 KiB: mid.bin (6000 bytes) is just cacheable, three or so
	 * entries of it fill the cache */
	cfg.cache_size = (c0 & 4) ? COIL_HTTP_CACHE_OFF : 24u << 10;
	cfg.access_log = (c0 & 8) ? "/dev/null" : NULL;
	cfg.limits = limits;
	cfg.max_loops = 4;
	CHECK(coil_http_server_create(&cfg, &h, NULL) == 0);
	if (c0 & 16)
		svc.write_high_water = 1024;
	coil_http_server_service_init(h, &svc);
	fo.buf_size = buf_sizes[c0 & 3];
	CHECK(coil_fake_create(&fo, &svc, &F) == 0);
	reconnect(&cl[0]);
	reconnect(&cl[1]);

	while (pos < size) {
		const uint8_t *cmd = data + pos, *nul;
		size_t n;

		/* Did this command run the loop until it settled? Only then
		 * is queued input surely delivered. (A send to a connection
		 * the server closed runs nothing: the other's queued input
		 * may still be on its way when the next command is a stop.) */
		bool settled = false;

		nul = memchr(cmd, 0, size - pos);
		n = nul ? (size_t)(nul - cmd) : size - pos;
		pos += n + 1;
		if (!n)
			continue;
		switch (cmd[0]) {
		case 'a':
		case 'b':
			settled = send_bytes(&cl[cmd[0] - 'a'], cmd + 1, n - 1,
					     true);
			break;
		case 'A':
		case 'B':
			send_bytes(&cl[cmd[0] - 'A'], cmd + 1, n - 1, false);
			break;
		case 'T':
			coil_fake_turn(F);
			break;
		case 't':
			coil_fake_advance(F, n > 1 ? cmd[1] : 10);
			settled = true;
			break;
		case 'e':
		case 'E': {
			struct client *c = &cl[cmd[0] == 'E'];

			if (!c->done && !c->reset) {
				c->eof = true;
				coil_fake_shutdown(F, c->id);
				settled = true;
			}
			break;
		}
		case 'r':
		case 'R': {
			struct client *c = &cl[cmd[0] == 'R'];

			collect(c);
			c->reset = true;
			coil_fake_reset(F, c->id);
			settled = true;
			collect(c);
			reconnect(c);
			break;
		}
		case 'q':
			/* SIGTERM: idle connections close, a request in
			 * progress is finished with "Connection: close" */
			for (int i = 0; i < 2; i++) {
				struct coil_conn *k = coil_fake_conn(F, cl[i].id);

				cl[i].stop_busy = cl[i].unsettled ||
						  (k && coil_conn_queued(k));
			}
			coil__loop_begin_stop(coil_fake_loop(F));
			coil_fake_settle(F);
			settled = true;
			break;
		case 's':
		case 'S': {
			struct client *c = &cl[cmd[0] == 'S'];
			unsigned v = n > 1 ? cmd[1] : 0;

			c->stalled = v & 128;
			coil_fake_set_send(F, c->id, v & 127, c->stalled);
			break;
		}
		default:
			settled = send_bytes(&cl[0], cmd, n, true);
			break;
		}
		if (settled)
			cl[0].unsettled = cl[1].unsettled = false;
		collect_all();
	}
	/* Everything ends: the timeouts close what is left, a peer that
	 * stopped reading included. (One that reads a few bytes a turn may
	 * take longer than a second of turns: it reads at full speed now.) */
	for (int i = 0; i < 2; i++)
		if (!cl[i].done)
			coil_fake_set_send(F, cl[i].id, 0, cl[i].stalled);
	collect_all();
	coil_fake_advance(F, 1000);
	collect_all();
	CHECK(cl[0].done && cl[1].done);
	CHECK(coil_fake_free_bufs(F) == NBUFS);
	coil_fake_destroy(F);
	coil_http_server_destroy(h);
	F = NULL;
	return 0;
}
