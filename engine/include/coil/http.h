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
/* Most header lines per request (a coil_http1_limits.max_headers above it
 * is lowered to it). */
#define COIL_HTTP_MAX_HEADERS 64u
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
};

/* A handler answers a request (or takes its body, see coil_http_body_accept).
 * It must respond exactly once, now or from its body callbacks; one that
 * returns having done neither gets a 500. */
typedef void (*coil_http_handler)(struct coil_http_req *x);
/* A slice of the request body, in order. `data` is lent for the call. */
typedef void (*coil_http_body_cb)(struct coil_http_req *x, const uint8_t *data,
			      size_t len);

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
 * other missing method answers 405 with Allow. Copied by coil_http_server_route(),
 * `path` must outlive the server. */
struct coil_http_route {
	const char *path;
	unsigned flags;                  /* HTTPD_ROUTE_* */
	coil_http_handler on[COIL_HTTP_NMETHODS];
	void *data;                      /* free for the route's owner */
};

/* What a handler sees. Fields are read-only. */
struct coil_http_req {
	struct coil_conn *conn;
	const struct coil_http_route *route;
	/* The request head: valid while the handler runs, NULL in body
	 * callbacks (copy what they need into `user`). */
	const struct coil_http1_request *req;
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
 * no openat2. Main thread.
 */
int coil_http_server_create(const struct coil_http_config *cfg, struct coil_http_server **out,
		 const char **failed);

/* Add (or replace, same path and flags) a route. Before the engine runs.
 * Returns 0, -EINVAL (path not starting with '/'), -ENOSPC. */
int coil_http_server_route(struct coil_http_server *h, const struct coil_http_route *route);

/* Fill ops, state_size and data of `svc` for this server (the caller sets
 * the address, port and other fields). */
void coil_http_server_service_init(struct coil_http_server *h, struct coil_service *svc);

/* Flush the access log and free everything. After the engine (or fake)
 * that served it is gone. Main thread. */
void coil_http_server_destroy(struct coil_http_server *h);

/* The value of the first request header `name` (case-insensitive), or
 * NULL. Only while x->req is valid. */
const struct coil_http1_str *coil_http_header(const struct coil_http_req *x,
					  const char *name);

/* Answer with `status`, `ctype` (NULL: none) and a body copied from `body`.
 * Returns 0, or -EPIPE when the connection is closing. */
int coil_http_respond(struct coil_http_req *x, int status, const char *ctype,
		  const void *body, size_t len);
/* The same without copying: `body` must outlive the engine (a literal). */
int coil_http_respond_static(struct coil_http_req *x, int status, const char *ctype,
			 const void *body, size_t len);
/* A short text/plain error ("404 Not Found\n"). */
int coil_http_respond_error(struct coil_http_req *x, int status);

/* Length for coil_http_respond_start(): the body is sent chunked (HTTP/1.1). */
#define COIL_HTTP_CHUNKED UINT64_MAX
/* A streamed response: the head now (Content-Length `len`, or
 * COIL_HTTP_CHUNKED), the body in coil_http_respond_data() calls that must add up
 * to `len`, then coil_http_respond_end(). */
int coil_http_respond_start(struct coil_http_req *x, int status, const char *ctype,
			uint64_t len);
int coil_http_respond_data(struct coil_http_req *x, const void *data, size_t len);
int coil_http_respond_end(struct coil_http_req *x);

/*
 * Take the request body: `on_body` gets its bytes in order (chunked framing
 * removed), `on_end` (required) runs once it is complete and must finish
 * the response. Sends "100 Continue" when the client asked for it. Call
 * from the handler, before responding. Without it a body is read and
 * discarded after the handler's response. Returns 0, or -EINVAL (no body,
 * or called twice).
 */
int coil_http_body_accept(struct coil_http_req *x, coil_http_body_cb on_body,
		      coil_http_handler on_end);

/* True when the request has a body (Content-Length > 0 or chunked). */
bool coil_http_has_body(const struct coil_http_req *x);

#endif
