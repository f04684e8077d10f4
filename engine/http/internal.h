/* SPDX-License-Identifier: MIT */
/*
 * The HTTP server's internals shared by server.c (the server object, its
 * per-loop state, output staging, Date), request.c (connections, reading
 * requests, their life cycle, timeouts), response.c (answers), route.c
 * (paths, the route table), builtin.c (/plaintext, /json, /echo), files.c
 * (static files), files_cache.c (their response cache), access_log.c,
 * proxy.c and proxy_head.c (the reverse proxy). Not an API.
 */
#ifndef COIL_HTTPD_INTERNAL_H
#define COIL_HTTPD_INTERNAL_H

#include <coil/http.h>
#include <coil/http_client.h>
#include "mem/mem.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#define httpd__container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define HTTPD__MAX_ROUTES 32
#define HTTPD__OUT_CAP (16u << 10)   /* staged response bytes per loop */
#define HTTPD__PATH_MAX 4096u        /* decoded request path */
#define HTTPD__HELD 4                /* cache entries one connection pins */
#define HTTPD__LOG_TARGET 80         /* "METHOD target" bytes kept for the
					log (method cut at 16) */
#define HTTPD__LOG_FIELD 64          /* Referer / User-Agent bytes kept */
#define HTTPD__LOG_PEER 48           /* the client address as text */
#define HTTPD__LOG_CAP (64u << 10)   /* access log buffer per loop */
#define HTTPD__INLINE_MAX 4096u      /* cached bodies up to this are copied */
#define HTTPD__MAX_CACHED_FILE (256u << 10)
/* resp_head() length values besides a byte count. */
#define HTTPD__NO_LENGTH (UINT64_MAX - 1)

/* ---- response cache (files_cache.c) ---- */

/* One file held in memory, keyed by its request path. Freed when it left
 * the table and no connection pins it (httpd_conn.held). */
struct httpd__centry {
	struct httpd__centry *hnext;        /* hash chain */
	struct httpd__centry *prev, *next;  /* LRU: cache.lru.next is newest */
	uint32_t refs;                      /* the table's + pins */
	uint32_t hash;
	uint64_t checked_ms;                /* last stat against the file */
	dev_t dev;
	ino_t ino;
	uint64_t size;
	int64_t mtime_sec;
	long mtime_nsec;
	size_t mem;                         /* bytes counted against the limit */
	const char *ctype;
	char etag[64];
	char lastmod[COIL_HTTP1_DATE_LEN + 1];
	uint16_t key_len;
	char *key;                          /* request path */
	char *rel;                          /* file opened, relative to root */
	uint8_t *body;
	bool linked;                        /* in the table */
};

struct httpd__cache {
	struct httpd__centry **buckets;
	uint32_t mask;
	struct httpd__centry lru;           /* sentinel */
	size_t bytes, limit, max_file;
	uint32_t count;
};

/* ---- server, loop, connection ---- */

struct coil_http_server {
	struct coil_http_config cfg;
	struct coil_http1_limits limits;
	int rootfd;                         /* O_PATH dir, -1: no root */
	int logfd;                          /* -1: no access log */
	size_t cache_size;                  /* 0: no cache */
	size_t high_water;                  /* the service's write_high_water */
	struct coil_http_route routes[HTTPD__MAX_ROUTES];
	unsigned nroutes;
	struct httpd_loop **loops;          /* by coil_loop_id */
	unsigned nloops;
};

/* Per loop (one thread): created on the loop's first connection. */
struct httpd_loop {
	struct coil_http_server *h;
	struct coil_loop *loop;
	struct coil_conn *out_conn;         /* owner of the staged bytes */
	size_t out_len;
	uint64_t flushes;                   /* staged bytes handed to coil */
	unsigned busy;                      /* inside on_data or a timeout:
					       that caller flushes */
	uint64_t date_next_ms;              /* loop time of the next second */
	int64_t date_sec;                   /* wall-clock second of `common` */
	size_t rest;                        /* input after the current head */
	struct coil_http1_date date;
	char clf[32];                       /* the date for the access log */
	char common[96];                    /* "Server: coil\r\nDate: ...\r\n" */
	uint32_t common_len;
	char plain[192];                    /* GET /plaintext, keep-alive */
	uint32_t plain_len;
	char json[192];
	uint32_t json_len;
	struct coil__slab rqs;              /* request parts (request.c) */
	struct coil_http1_parser parser;    /* one per loop: see on_data */
	struct coil_http1_header *hdrs;     /* limits.max_headers of them */
	char *log;
	size_t log_len;
	struct coil_timer log_timer;
	struct httpd__cache cache;
	char path[HTTPD__PATH_MAX + 8];     /* decoded request path */
	char rel[HTTPD__PATH_MAX + 32];     /* path relative to the root */
	char out[HTTPD__OUT_CAP];           /* staged responses */
};

/* HC_WAIT: the request is read as far as it will be, its answer is not
 * complete yet: a deferred handler or a streamed response finishes it from
 * another callback (the timer leaves the connection alone meanwhile). */
enum { HC_IDLE, HC_HEAD, HC_BODY, HC_WAIT };

/* What a connection needs only while a request is in progress (from its
 * complete head until it is answered and nothing waits on the answer): taken
 * from the loop's slab in request.c (rq_get) and given back when
 * the connection goes idle, so that an idle keep-alive connection holds
 * none of it (issue 18: idle keep-alive memory). */
struct httpd_req {
	uint64_t sent;            /* response body bytes */
	uint64_t head_gen;        /* lp->flushes when the head was staged */
	size_t head_at;           /* ... and where */
	coil_http_cancel_cb on_cancel;
	void *cancel_arg;
	coil_http_drain_cb on_drain;
	void *drain_arg;
	coil_http_body_cb on_body;
	coil_http_handler on_end;
	const struct coil_http_route *route;
	struct coil_http1_body body;
	uint64_t user[COIL_HTTP_USER_SIZE / 8];
	struct coil_http_req ctx;  /* what handlers get, kept across a
				      deferred answer */
};

/* Per connection (the service's state). */
struct httpd_conn {
	struct coil_timer timer;
	struct httpd_loop *lp;
	struct coil_conn *conn;
	struct httpd_req *rq;     /* NULL while idle (see struct httpd_req) */
	uint64_t due;             /* when the armed timer fires */
	uint64_t since;           /* start of the phase (body: last progress) */
	size_t last_queued;       /* output left at the last timeout check */
	uint64_t moved;           /* ... when it last changed */
	uint32_t partial;         /* bytes of an incomplete head at the last
				     parse attempt (0: none) */
	uint32_t seen;            /* ... and offered at the last call */
	uint32_t served;          /* requests answered */
	uint16_t status;
	uint8_t phase;            /* HC_* */
	uint8_t method, minor;
	bool keep_alive;          /* this response keeps the connection */
	bool shutting;            /* the engine is stopping */
	bool closed;              /* close or abort requested */
	bool started;             /* response head written */
	bool responded;           /* response complete */
	bool accepted;            /* a handler takes the body */
	bool unread;              /* the request body is not read yet */
	bool expect;              /* 100-continue with a body */
	bool chunked_out;         /* response body is chunked */
	bool head_only;           /* HEAD */
	bool backlog;             /* on_data left input for later (output
				     above the high-water mark) */
	bool deferred;            /* coil_http_defer(): answered later */
	bool paused;              /* reading paused while an answer waits */
	uint8_t nheld;
	uint8_t ltlen, lreflen, lualen;
	uint8_t lpeerlen;         /* 0: not asked yet */
	uint32_t xh_len, xh_cap;
	char *xh;                 /* the handler's header lines (malloc'd on
				     first use, kept until the close) */
	struct httpd__centry *held[HTTPD__HELD];
	/* Last, for the access log only: without one, the connection's state
	 * ends here (httpd_service_init), which halves what an idle
	 * keep-alive connection costs. */
	char ltarget[HTTPD__LOG_TARGET];
	char lref[HTTPD__LOG_FIELD];
	char lua[HTTPD__LOG_FIELD];
	char lpeer[HTTPD__LOG_PEER];
};

/* server.c */
static inline uint64_t now_ms(const struct httpd_loop *lp)
{
	return coil_loop_now_ms(lp->loop);
}

void httpd__out_put(struct httpd_loop *lp, struct coil_conn *c,
		    const void *p, size_t n);
void httpd__out_flush(struct httpd_loop *lp);

/* Stage output for `c`: what another connection staged goes first. */
static inline void out_bind(struct httpd_loop *lp, struct coil_conn *c)
{
	if (lp->out_conn != c) {
		httpd__out_flush(lp);
		lp->out_conn = c;
	}
}

/* Rebuild the loop's Date line (and what embeds it) for loop time `now`. */
void httpd__date_refresh(struct httpd_loop *lp, uint64_t now);

static inline void date_tick(struct httpd_loop *lp)
{
	uint64_t now = now_ms(lp);

	if (now >= lp->date_next_ms)
		httpd__date_refresh(lp, now);
}

/* The loop's state for `loop`, made on its first connection (on the
 * loop's thread); NULL: out of memory, or a loop id past max_loops. */
struct httpd_loop *httpd__loop_get(struct coil_http_server *h,
				   struct coil_loop *loop);

/* request.c */
/* The service's protocol ops: the server's connections. */
extern const struct coil_proto_ops httpd__ops;
/* Reset the connection, dropping what it staged. */
void httpd__conn_abort(struct httpd_conn *s);
/* A head, body bytes or an answer's end were staged: finish a request that
 * waited for its answer, flush outside on_data (see request.c). */
void httpd__answer_moved(struct httpd_conn *s);
/* Release the cache entries a connection pinned (nothing of its output
 * may still be queued). */
void httpd__unpin_all(struct httpd_conn *s);

/* response.c */
/* Write a response head: status, Server, Date, Content-Type (ctype may be
 * NULL), Content-Length (`len`, or COIL_HTTP_CHUNKED, or HTTPD__NO_LENGTH),
 * `extra` (complete header lines), Connection. Returns 0 or -EALREADY /
 * -EPIPE. */
int httpd__resp_head(struct coil_http_req *x, int status, const char *ctype,
		     uint64_t len, const char *extra, size_t extra_len);

/* coil_http_header_set (replace) / _add with lengths: `name` and `value`
 * need no NUL (a NUL in either is refused like any control byte). */
int httpd__header_put(struct coil_http_req *x, const char *name, size_t n,
		      const char *value, size_t vn, bool replace);
/* A short text/plain error body with extra header lines. */
int httpd__respond_error_extra(struct coil_http_req *x, int status,
			       const char *extra, size_t extra_len);

/* route.c: decode the target, find the route, call its handler (or
 * answer 400/403/404/405/414, OPTIONS). */
void httpd__dispatch(struct coil_http_req *x);

/* builtin.c: rebuild the prebuilt /plaintext and /json responses (the Date
 * changed); add the built-in routes. */
void httpd__builtin_refresh(struct httpd_loop *lp);
void httpd__builtin_routes(struct coil_http_server *h);

/* proxy.c: the handler of proxy routes (route.data: the proxy) */
struct httpd__proxy;
void httpd__proxy_handle(struct coil_http_req *x);
void httpd__proxy_free(struct httpd__proxy *px);

/* ---- reverse proxy internals (proxy.c, proxy_head.c) ---- */

/* An upstream on one loop: its client and what this loop knows of it. */
struct px_upl {
	struct coil_http_client *cl;     /* made on first use */
	unsigned active;                 /* calls in flight */
	unsigned fails;                  /* within the window from fail_since */
	uint64_t fail_since, down_until; /* loop ms */
};

/* A proxy route: its upstreams, and per loop what it knows of them. */
struct httpd__proxy {
	char *prefix;
	size_t prefix_len;
	char *path;                      /* replaces the prefix; NULL: the
					    target goes unchanged */
	struct coil_http_client_opts copts;
	unsigned balance, max_fails, fail_timeout_ms;
	unsigned nup;
	char **host;                     /* Host of each upstream */
	int *service;                    /* its client service */
	unsigned nloops;
	struct px_upl *ul;               /* [loop * nup + upstream] */
	unsigned *rr;                    /* per loop: the next to start at */
};

/* One proxied request (malloc'd; freed at its end or its cancel). */
struct preq {
	struct coil_http_call call;
	struct coil_http_req *x;
	struct httpd__proxy *px;
	struct px_upl *ul;               /* the upstream in use (active) */
	unsigned ui;                     /* ... its index */
	uint32_t tried;                  /* upstreams tried, by index */
	bool calling;                    /* the call is in flight */
	bool started;                    /* the answer's head is out */
	bool head;
	bool body;                       /* the request has a body */
	bool chunked;                    /* ... sent on chunked */
	bool paused;                     /* the client is paused for it */
	bool idem;                       /* the method is idempotent */
	size_t host_at, host_len;        /* the Host value in buf */
	size_t len, cap;                 /* the upstream request head */
	char *buf;
};

/* The Host of the upstream the request is for. */
static inline const char *httpd__px_host(const struct preq *p)
{
	return p->px->host[p->ui];
}

/* proxy_head.c */
/* Write the request head for upstream p->ui into p->buf; false: out of
 * memory. */
bool httpd__px_build_head(struct coil_http_req *x, struct preq *p);
/* Point the request head's Host at upstream `i`; false: out of memory. */
bool httpd__px_set_host(struct preq *p, unsigned i);
/* Add the upstream response's fields to the client's answer, hop-by-hop
 * ones dropped and Via extended. Returns 0, or -ENOMEM with nothing
 * added (the Connection options could not be gathered). */
int httpd__px_resp_fields(struct coil_http_req *x,
			  const struct coil_http1_response *r);
/* The length to answer with for the upstream's response `r`: its
 * Content-Length, COIL_HTTP_CHUNKED, or 0; for HEAD (`head`) what GET
 * would have had. */
uint64_t httpd__px_resp_length(const struct coil_http1_response *r,
			       bool head);

/* files.c */
int httpd__files_open_root(struct coil_http_server *h);
void httpd__files_get(struct coil_http_req *x);
const char *httpd__mime_type(const char *path, size_t len);
/* Open `rel` beneath the root `rootfd` (openat2 RESOLVE_BENEATH, no magic
 * links). Returns a descriptor or -errno. */
int httpd__open_beneath(int rootfd, const char *rel, int flags);
/* The ETag (etag_cap bytes) and Last-Modified (COIL_HTTP1_DATE_LEN + 1)
 * of the file `st` describes. */
void httpd__fill_validators(char *etag, size_t etag_cap, char *lastmod,
			    const struct stat *st);

/* files_cache.c: the loop's response cache */
int httpd__cache_init(struct httpd__cache *c, size_t limit);
void httpd__cache_fini(struct httpd__cache *c);
/* Drop a reference to `e` (the table's or a pin): freed at the last. */
void httpd__cache_put(struct httpd__centry *e);
/* The entry for request path `key`, made the newest; NULL: none. */
struct httpd__centry *httpd__cache_find(struct httpd__cache *c,
				       const char *key, size_t n);
/* Still the file on disk? Asked of the file system at most once a second
 * per entry. */
bool httpd__cache_fresh(struct httpd_loop *lp, struct httpd__centry *e);
/* Take `e` out of the table (it lives on while a connection pins it). */
void httpd__cache_unlink(struct httpd__cache *c, struct httpd__centry *e);
/* Read the open file `fd` (`rel` beneath the root) into a new entry for
 * `key`, evicting the oldest as needed; NULL when it does not fit, or
 * changed while being read (then it is served uncached). */
struct httpd__centry *httpd__cache_add(struct httpd_loop *lp, const char *key,
				      size_t kn, const char *rel, int fd,
				      const struct stat *st);

/* Staging helpers for heads and log lines: copy, and a decimal. */
static inline char *put(char *p, const void *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

#define PUTS(p, lit) put((p), (lit), sizeof(lit) - 1)

/* ---- access log (access_log.c); the loop's thread ---- */
/* Write what the loop buffered (also from the once-a-second timer). */
void httpd__log_flush(struct httpd_loop *lp);
void httpd__log_timer_cb(struct coil_timer *t);
/* Buffer one line for the request `s` just answered. */
void httpd__log_line(struct httpd_conn *s);
/* Keep a copy of a request header value for the log line, at most cap
 * bytes; returns the length kept. */
uint8_t httpd__log_keep(char *dst, size_t cap, const struct coil_http1_str *v);

#endif
