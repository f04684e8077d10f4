/* SPDX-License-Identifier: MIT */
/*
 * coil-httpd's HTTP/1.1 server, written against coil's public API only: the
 * protocol (persistent connections, pipelining, HEAD, 100-continue, request
 * bodies, limits and timeouts), a route table in the spirit of twisted.web's
 * Site/Resource, static files with a per-loop response cache, and an
 * optional access log. main.c turns flags into a struct httpd_config and
 * runs the engine; tests/unit/test_httpd.c drives the same code through the
 * fake backend.
 *
 * Threads: httpd_create/route/service/destroy on the main thread, before
 * coil_engine_run() (or around the fake). Handlers and the respond helpers
 * run on the connection's loop thread, inside a handler or body callback.
 */
#ifndef COIL_HTTPD_H
#define COIL_HTTPD_H

#include <coil/coil.h>
#include <coil/http1.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct httpd;
struct httpd_ctx;
struct httpd_conn;
struct httpd_loop;

/* Defaults for zero fields of struct httpd_config. */
#define HTTPD_DEFAULT_MAX_BODY (1ull << 20)        /* 1 MiB */
#define HTTPD_DEFAULT_HEADER_TIMEOUT_MS 10000u
#define HTTPD_DEFAULT_BODY_TIMEOUT_MS 30000u
#define HTTPD_DEFAULT_KEEPALIVE_TIMEOUT_MS 30000u
#define HTTPD_DEFAULT_CACHE_SIZE (32u << 20)       /* per loop */
/* cache_size value that turns the response cache off. */
#define HTTPD_CACHE_OFF ((size_t)-1)
/* Header lines per request: the default of limits.max_headers, and the
 * most it may ask for (httpd_create refuses more with -EINVAL). Each loop
 * sets aside room for max_headers parsed lines (32 B each) once. */
#define HTTPD_DEFAULT_MAX_HEADERS 64u
#define HTTPD_MAX_HEADERS 1024u
/* Bytes of per-request scratch a handler gets in httpd_ctx.user. */
#define HTTPD_USER_SIZE 32u

struct httpd_config {
	size_t sz;                  /* sizeof(struct httpd_config) */
	const char *root;           /* document root; NULL: no static files */
	uint64_t max_body;          /* request body limit (413) */
	unsigned header_timeout_ms; /* a request head must be complete this
				       long after its first byte (408) */
	unsigned body_timeout_ms;   /* longest pause inside a request body */
	unsigned keepalive_timeout_ms; /* idle time between requests */
	size_t cache_size;          /* response cache bytes per loop;
				       HTTPD_CACHE_OFF: no cache */
	const char *access_log;     /* file to append to; NULL: no log */
	struct coil_http1_limits limits; /* request line, head, header count */
	unsigned max_loops;         /* loops that may serve (default 1024) */
	unsigned send_timeout_ms;   /* output queued for the client may make
				       no progress this long, then the
				       connection is reset (nginx's
				       send_timeout; default: keep-alive) */
};

/* A handler answers a request (or takes its body, see httpd_body_accept).
 * It must respond exactly once, now or from its body callbacks; one that
 * returns having done neither gets a 500. */
typedef void (*httpd_handler)(struct httpd_ctx *x);
/* A slice of the request body, in order. `data` is lent for the call. */
typedef void (*httpd_body_cb)(struct httpd_ctx *x, const uint8_t *data,
			      size_t len);

enum { HTTPD_NMETHODS = COIL_HTTP1_PATCH + 1 };

enum {
	/* `path` is a prefix: it matches itself and everything below it
	 * ("/static/" matches "/static/a/b"); the longest prefix wins. Exact
	 * routes are tried first. */
	HTTPD_ROUTE_PREFIX = 1u << 0,
};

/* A resource: a path and one handler per method (indexed by enum
 * coil_http1_method). A missing HEAD handler falls back to GET with the
 * body left out; a missing OPTIONS handler answers 204 with Allow; any
 * other missing method answers 405 with Allow. Copied by httpd_route(),
 * `path` must outlive the server. */
struct httpd_route {
	const char *path;
	unsigned flags;                  /* HTTPD_ROUTE_* */
	httpd_handler on[HTTPD_NMETHODS];
	void *data;                      /* free for the route's owner */
};

/* What a handler sees. Fields are read-only. */
struct httpd_ctx {
	struct coil_conn *conn;
	const struct httpd_route *route;
	/* The request head: valid while the handler runs, NULL in body
	 * callbacks (copy what they need into `user`). */
	const struct coil_http1_request *req;
	struct coil_http1_str path;   /* percent-decoded, normalized: starts
					 with '/', no "." / ".." / "//" */
	struct coil_http1_str query;  /* raw, after '?'; len 0 if none */
	struct coil_http1_str rest;   /* path after a prefix route's prefix */
	bool head;                    /* HEAD: the body is left out */
	void *user;                   /* HTTPD_USER_SIZE bytes, zeroed per
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
 * no openat2; -EINVAL: limits.max_headers above HTTPD_MAX_HEADERS. Main
 * thread.
 */
int httpd_create(const struct httpd_config *cfg, struct httpd **out,
		 const char **failed);

/* Add (or replace, same path and flags) a route. Before the engine runs.
 * Returns 0, -EINVAL (path not starting with '/'), -ENOSPC. */
int httpd_route(struct httpd *h, const struct httpd_route *route);

/* Fill ops, state_size and data of `svc` for this server (the caller sets
 * the address, port and other fields). */
void httpd_service_init(struct httpd *h, struct coil_service *svc);

/* Flush the access log and free everything. After the engine (or fake)
 * that served it is gone. Main thread. */
void httpd_destroy(struct httpd *h);

/* The value of the first request header `name` (case-insensitive), or
 * NULL. Only while x->req is valid. */
const struct coil_http1_str *httpd_header(const struct httpd_ctx *x,
					  const char *name);

/* Answer with `status`, `ctype` (NULL: none) and a body copied from `body`.
 * Returns 0, or -EPIPE when the connection is closing. */
int httpd_respond(struct httpd_ctx *x, int status, const char *ctype,
		  const void *body, size_t len);
/* The same without copying: `body` must outlive the engine (a literal). */
int httpd_respond_static(struct httpd_ctx *x, int status, const char *ctype,
			 const void *body, size_t len);
/* A short text/plain error ("404 Not Found\n"). */
int httpd_respond_error(struct httpd_ctx *x, int status);

/* Length for httpd_respond_start(): the body is sent chunked (HTTP/1.1). */
#define HTTPD_CHUNKED UINT64_MAX
/* A streamed response: the head now (Content-Length `len`, or
 * HTTPD_CHUNKED), the body in httpd_respond_data() calls that must add up
 * to `len`, then httpd_respond_end(). */
int httpd_respond_start(struct httpd_ctx *x, int status, const char *ctype,
			uint64_t len);
int httpd_respond_data(struct httpd_ctx *x, const void *data, size_t len);
int httpd_respond_end(struct httpd_ctx *x);

/*
 * Take the request body: `on_body` gets its bytes in order (chunked framing
 * removed), `on_end` (required) runs once it is complete and must finish
 * the response. Sends "100 Continue" when the client asked for it. Call
 * from the handler, before responding. Without it a body is read and
 * discarded after the handler's response. Returns 0, or -EINVAL (no body,
 * or called twice).
 */
int httpd_body_accept(struct httpd_ctx *x, httpd_body_cb on_body,
		      httpd_handler on_end);

/* True when the request has a body (Content-Length > 0 or chunked). */
bool httpd_has_body(const struct httpd_ctx *x);

#endif
