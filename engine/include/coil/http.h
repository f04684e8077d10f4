/* SPDX-License-Identifier: MIT */
/*
 * coil's HTTP/1.1 server library, twisted.web's Site/Resource on coil's
 * public API: the protocol (persistent connections, pipelining, HEAD,
 * 100-continue, request bodies, limits and timeouts), a route table of
 * resources with one handler per method, answers given now or later
 * (coil_http_defer, twisted.web's NOT_DONE_YET), static files with a
 * per-loop response cache, and an optional access log. coil-httpd is one
 * app on it; tests/unit/test_httpd.c drives it through the fake backend.
 *
 * Threads: coil_http_server_create/route/service_init/destroy on the main
 * thread, before coil_engine_run() (or around the fake). Handlers, body
 * callbacks and every call taking a struct coil_http_req run on the
 * connection's loop thread.
 */
#ifndef COIL_HTTP_H
#define COIL_HTTP_H

#include <coil/coil.h>
#include <coil/http1.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct coil_http_server;
struct coil_http_req;
struct httpd_conn;
struct httpd_loop;

/* Defaults for zero fields of struct coil_http_config. */
#define COIL_HTTP_DEFAULT_MAX_BODY (1ull << 20)        /* 1 MiB */
#define COIL_HTTP_DEFAULT_HEADER_TIMEOUT_MS 10000u
#define COIL_HTTP_DEFAULT_BODY_TIMEOUT_MS 30000u
#define COIL_HTTP_DEFAULT_KEEPALIVE_TIMEOUT_MS 30000u
#define COIL_HTTP_DEFAULT_CACHE_SIZE (32u << 20)       /* per loop */
/* cache_size value that turns the response cache off. */
#define COIL_HTTP_CACHE_OFF ((size_t)-1)
/* Header lines per request: the default of limits.max_headers, and the
 * most it may ask for (coil_http_server_create refuses more with -EINVAL).
 * Each loop sets aside room for max_headers parsed lines (32 B each) once. */
#define COIL_HTTP_DEFAULT_MAX_HEADERS 64u
#define COIL_HTTP_MAX_HEADERS 1024u
/* Bytes of per-request scratch a handler gets in coil_http_req.user. */
#define COIL_HTTP_USER_SIZE 32u

struct coil_http_config {
	size_t sz;                  /* sizeof(struct coil_http_config) */
	const char *root;           /* document root; NULL: no static files */
	uint64_t max_body;          /* request body limit (413) */
	unsigned header_timeout_ms; /* a request head must be complete this
				       long after its first byte (408) */
	unsigned body_timeout_ms;   /* longest pause inside a request body */
	unsigned keepalive_timeout_ms; /* idle time between requests */
	size_t cache_size;          /* response cache bytes per loop;
				       COIL_HTTP_CACHE_OFF: no cache */
	const char *access_log;     /* file to append to; NULL: no log */
	struct coil_http1_limits limits; /* request line, head, header count */
	unsigned max_loops;         /* loops that may serve (default 1024) */
	unsigned send_timeout_ms;   /* output queued for the client may make
				       no progress this long, then the
				       connection is reset (nginx's
				       send_timeout; default: keep-alive) */
};

/* Most bytes of header lines a handler may add to one answer
 * (coil_http_header_set/add). */
#define COIL_HTTP_HEADERS_MAX 8192u

/*
 * A handler answers a request: now (one of the coil_http_respond* calls
 * before it returns), later (coil_http_defer(), then an answer from any
 * callback on the same loop), or after the body (coil_http_body_accept()).
 * One that returns having done none of these gets a 500.
 */
typedef void (*coil_http_handler)(struct coil_http_req *x);
/* A slice of the request body, in order. `data` is lent for the call. */
typedef void (*coil_http_body_cb)(struct coil_http_req *x,
				  const uint8_t *data, size_t len);
/* A deferred answer is not wanted any more: the client went away (closed,
 * reset, timed out, the engine stopped) or its request body failed (the
 * server answers the error itself). `x` must not be used after this
 * returns; free what the answer held. `arg` is coil_http_defer's. */
typedef void (*coil_http_cancel_cb)(struct coil_http_req *x, void *arg);
/* The answer's output drained (see coil_http_on_drain). */
typedef void (*coil_http_drain_cb)(struct coil_http_req *x, void *arg);

enum { COIL_HTTP_NMETHODS = COIL_HTTP1_PATCH + 1 };

enum {
	/* `path` is a prefix: it matches itself and everything below it
	 * ("/static/" matches "/static/a/b"); the longest prefix wins. Exact
	 * routes are tried first. */
	COIL_HTTP_ROUTE_PREFIX = 1u << 0,
};

/* A resource: a path and one handler per method (indexed by enum
 * coil_http1_method). A missing HEAD handler falls back to GET with the
 * body left out; a missing OPTIONS handler answers 204 with Allow; any
 * other missing method answers 405 with Allow. Copied by
 * coil_http_server_route(); `path` must outlive the server. */
struct coil_http_route {
	const char *path;
	unsigned flags;                  /* COIL_HTTP_ROUTE_* */
	coil_http_handler on[COIL_HTTP_NMETHODS];
	void *data;                      /* free for the route's owner */
};

/*
 * One request and its answer, what a handler gets (twisted.web's Request).
 * Fields are read-only. The pointer stays the same for the whole request:
 * a handler that deferred keeps it until its answer is complete or its
 * cancel callback ran.
 */
struct coil_http_req {
	struct coil_conn *conn;
	const struct coil_http_route *route;
	/* The request head (method, target, version, headers: see
	 * coil/http1.h). Lent for the handler call only; NULL in body
	 * callbacks and later (copy what they need into `user`). */
	const struct coil_http1_request *req;
	/* Lent like `req` ("" afterwards): */
	struct coil_http1_str path;   /* percent-decoded, normalized: starts
					 with '/', no "." / ".." / "//" */
	struct coil_http1_str query;  /* raw, after '?'; len 0 if none */
	struct coil_http1_str rest;   /* path after a prefix route's prefix */
	bool head;                    /* HEAD: the body is left out */
	void *user;                   /* COIL_HTTP_USER_SIZE bytes, zeroed per
					 request, kept until it is answered */
	/* private */
	struct coil_http1_str raw_path; /* the path as sent (redirects) */
	struct httpd_conn *s;
	struct httpd_loop *lp;
};

/*
 * Create a server from `cfg` (copied; one server per engine): opens the
 * document root and the access log, adds the built-in routes (GET
 * /plaintext, GET /json, POST|PUT /echo, and GET / as a prefix for the
 * static files when a root is given). Returns 0 and sets *out, or -errno
 * and, if `failed` is not NULL, sets *failed to what failed ("the root
 * '<dir>'", "the access log '<file>'", "memory"); -ENOSYS: the kernel has
 * no openat2; -EINVAL: limits.max_headers above COIL_HTTP_MAX_HEADERS.
 * Main thread.
 */
int coil_http_server_create(const struct coil_http_config *cfg,
			    struct coil_http_server **out,
			    const char **failed);

/* Add (or replace, same path and flags) a route. Before the engine runs.
 * Returns 0, -EINVAL (path not starting with '/'), -ENOSPC. Main thread. */
int coil_http_server_route(struct coil_http_server *h,
			   const struct coil_http_route *route);

/* Fill ops, state_size and data of `svc` for this server (the caller sets
 * the address, port and other fields). Main thread. */
void coil_http_server_service_init(struct coil_http_server *h,
				   struct coil_service *svc);

struct coil_http_client_opts;
/*
 * A reverse proxy resource (twisted.web's ReverseProxyResource), with one
 * upstream: coil_http_server_proxy_upstreams with
 * { .prefix = prefix, .path = path, .upstreams = { host,
 * copts->service }, .nupstreams = 1, .client = copts }. Same returns.
 */
int coil_http_server_proxy(struct coil_http_server *h, const char *prefix,
			   const char *host, const char *path,
			   const struct coil_http_client_opts *copts);

/* Most upstreams per proxied route. */
#define COIL_HTTP_MAX_UPSTREAMS 32u

/* How a proxied route picks its upstream (coil_http_proxy_opts.balance). */
enum {
	COIL_HTTP_BALANCE_ROUND_ROBIN = 0,  /* each in turn */
	COIL_HTTP_BALANCE_LEAST_CONN = 1,   /* the fewest requests in flight
					       (on this loop); ties in turn */
};

/* One upstream of a proxied route. */
struct coil_http_upstream {
	const char *host;      /* the Host sent to it ("HOST:PORT") */
	int service;           /* its client service (coil_engine_client),
				  protocol coil_http_client_ops, see
				  coil/http_client.h */
};

struct coil_http_proxy_opts {
	size_t sz;             /* sizeof(struct coil_http_proxy_opts) */
	const char *prefix;    /* the route, a prefix starting with '/' */
	const char *path;      /* NULL: the target goes unchanged; else it
				  replaces the prefix ("/api/" -> "/" sends
				  "/api/x?q" as "/x?q"); starts with '/' */
	const struct coil_http_upstream *upstreams;
	unsigned nupstreams;   /* 1 .. COIL_HTTP_MAX_UPSTREAMS */
	unsigned balance;      /* COIL_HTTP_BALANCE_* */
	unsigned max_fails;    /* failures (refused, reset, timed out) ... */
	unsigned fail_timeout_ms; /* ... within this long mark an upstream
				  down for this long; 0: 1 and 10000 (nginx's
				  max_fails / fail_timeout) */
	const struct coil_http_client_opts *client; /* pool size, timeouts,
				  write_high_water of each upstream's client
				  (its `service` is ignored) */
};

/*
 * A reverse proxy resource (twisted.web's ReverseProxyResource) in front
 * of several upstreams: requests under o->prefix (every method but
 * CONNECT) go to one of o->upstreams, picked by o->balance, over
 * keep-alive connections pooled per loop and upstream. Hop-by-hop header
 * fields are dropped both ways, X-Forwarded-For / X-Forwarded-Proto / Via
 * added. Bodies stream both ways with back-pressure and bounded memory:
 * the request body goes upstream as it is read (Content-Length kept, a
 * chunked body sent chunked), the client paused while the upstream's send
 * queue is above client->write_high_water; response bodies likewise.
 *
 * Health is passive and per loop: an upstream failing max_fails times
 * within fail_timeout_ms is skipped for fail_timeout_ms (when every
 * upstream is down, they are tried anyway). A request without a body and
 * with an idempotent method (GET, HEAD, PUT, DELETE, OPTIONS, TRACE) that
 * an upstream refused or reset before any answer goes to the next
 * upstream not tried yet (nginx's proxy_next_upstream error); a timeout
 * is not retried, nor is a request with a body (its body streamed as it
 * was read: there is nothing left to send again). An upstream that fails
 * answers 502, one that times out 504 (the reason is logged); one failing
 * after the answer started cuts the connection.
 *
 * Everything is copied. Before the engine runs. Returns 0, -EINVAL,
 * -ENOSPC (routes), -ENOMEM. Main thread.
 */
int coil_http_server_proxy_upstreams(struct coil_http_server *h,
				     const struct coil_http_proxy_opts *o);

/* Flush the access log and free everything. After the engine (or fake)
 * that served it is gone. Main thread. */
void coil_http_server_destroy(struct coil_http_server *h);

/* ---- the request (the loop's thread) ---- */

/* The value of the first request header `name` (case-insensitive), or
 * NULL. Only while x->req is valid (during the handler). */
const struct coil_http1_str *coil_http_header(const struct coil_http_req *x,
					      const char *name);

/* The request's method (COIL_HTTP1_OTHER for one coil does not know);
 * valid for the whole request, a deferred one included. */
enum coil_http1_method coil_http_method(const struct coil_http_req *x);

/* The client's address, copied into *addr / *len (see coil_conn_peer).
 * Returns 0, -EPIPE once the connection is closing, or coil_conn_peer's
 * -errno. */
int coil_http_peer(const struct coil_http_req *x,
		   struct sockaddr_storage *addr, socklen_t *len);

/* True when the request has a body not read yet (Content-Length > 0 or
 * chunked). */
bool coil_http_has_body(const struct coil_http_req *x);

/*
 * Take the request body: `on_body` (may be NULL) gets its bytes in order
 * (chunked framing removed), `on_end` (required) runs once it is complete
 * and answers, or defers, or leaves a started answer to be ended later.
 * Sends "100 Continue" when the client asked for it. Call from the
 * handler, before answering. Without it a body is read and discarded (to
 * reach the next request) while or after the handler answers. Returns 0,
 * or -EINVAL (no body, called twice, or the answer already started).
 */
int coil_http_body_accept(struct coil_http_req *x, coil_http_body_cb on_body,
			  coil_http_handler on_end);

/*
 * Answer later (twisted.web's NOT_DONE_YET): the handler (or body `on_end`)
 * may return without answering; any callback on the connection's loop (a
 * timer, an upstream reply, a thread's completion delivered to the loop)
 * answers later through `x` with the coil_http_respond* calls below, which
 * then send at once. Meanwhile the connection reads no further request: a
 * pipeline's answers leave in request order. If the client goes away
 * first, or the request body fails, `on_cancel` (may be NULL) is called
 * once with `arg`, and `x` is dead. Server timeouts do not apply to the
 * wait: the handler owns its time. Returns 0, -EALREADY (already
 * answered), -EPIPE (the connection is closing: no cancel follows).
 */
int coil_http_defer(struct coil_http_req *x, coil_http_cancel_cb on_cancel,
		    void *arg);

/* ---- the answer (the loop's thread; in the handler or, deferred, later) ---- */

/*
 * Add a header line to the answer: `set` replaces the lines of the same
 * name (case-insensitive) the handler added before, `add` appends one more
 * (Set-Cookie may repeat). Both copy. Before the answer starts. Framing
 * and connection headers belong to the server (Content-Length,
 * Transfer-Encoding, Connection, Keep-Alive, Upgrade, Date, Server):
 * -EINVAL, as for a name that is not a token or a value with a control
 * byte (CR, LF, NUL). Returns 0, -EALREADY (the head is out), -EPIPE,
 * -ENOSPC (over COIL_HTTP_HEADERS_MAX), -ENOMEM.
 */
int coil_http_header_set(struct coil_http_req *x, const char *name,
			 const char *value);
int coil_http_header_add(struct coil_http_req *x, const char *name,
			 const char *value);

/* Answer with `status` (its standard reason phrase), `ctype` (NULL: no
 * Content-Type, unless set as a header), the headers added, and a body
 * copied from `body`. Returns 0, -EALREADY (already answered), -EPIPE
 * (the connection is closing), -ENOSPC (a head over 16 KiB), -EINVAL (a
 * control byte in `ctype`, as for a header value; nothing was sent). */
int coil_http_respond(struct coil_http_req *x, int status, const char *ctype,
		      const void *body, size_t len);
/* The same without copying: `body` must outlive the engine (a literal, a
 * table built before the engine runs). */
int coil_http_respond_static(struct coil_http_req *x, int status,
			     const char *ctype, const void *body, size_t len);
/* The same with the body read from `fd` at `off`, `len` bytes, without
 * copying through user space (coil_conn_sendfile; `flags` as there:
 * COIL_SENDFILE_CLOSE gives `fd` to coil, which closes it in every case,
 * errors included). */
int coil_http_respond_file(struct coil_http_req *x, int status,
			   const char *ctype, int fd, uint64_t off,
			   uint64_t len, unsigned flags);
/* A short text/plain error ("404 Not Found\n"). */
int coil_http_respond_error(struct coil_http_req *x, int status);

/* Length for coil_http_respond_start(): the body is sent chunked (or, to
 * an HTTP/1.0 client, ended by the close). */
#define COIL_HTTP_CHUNKED UINT64_MAX
/*
 * A streamed answer: the head now (Content-Length `len`, or
 * COIL_HTTP_CHUNKED), the body in coil_http_respond_data() calls that must
 * add up to `len` (each one copied if small, zero-copy from the request's
 * receive buffer inside a body callback), then coil_http_respond_end().
 * The calls may be spread over several callbacks (an answer started and
 * not ended is still to come, like a deferred one). Same returns as
 * coil_http_respond; _data and _end: -EINVAL when no answer is started or
 * it has ended.
 */
int coil_http_respond_start(struct coil_http_req *x, int status,
			    const char *ctype, uint64_t len);
int coil_http_respond_data(struct coil_http_req *x, const void *data,
			   size_t len);
int coil_http_respond_end(struct coil_http_req *x);

/*
 * Back-pressure for answers produced faster than the client reads (a
 * producer: an upstream, a generator): coil_http_respond_busy is true once
 * the connection's queued output passed the service's write_high_water;
 * then stop producing and call coil_http_on_drain: `cb` (NULL: none) runs
 * once, with `arg`, when the output fell below half of it. Not after the
 * answer completed or was cancelled. on_drain returns 0 or -EPIPE.
 */
bool coil_http_respond_busy(const struct coil_http_req *x);
int coil_http_on_drain(struct coil_http_req *x, coil_http_drain_cb cb,
		       void *arg);

#endif
