/* SPDX-License-Identifier: MIT */
/*
 * coil's HTTP server (coil/http.h): the built-in resources. GET /plaintext
 * and GET /json (the TechEmpower cases: their whole responses are rebuilt
 * once a second per loop, with the Date) and POST/PUT /echo.
 */
#include "internal.h"

#include <string.h>

static const char plain_body[] = "Hello, World!";
static const char json_body[] = "{\"message\":\"Hello, World!\"}";

static void build_fixed(struct httpd_loop *lp, char *buf, uint32_t *len,
			const char *ctype, const char *body, size_t blen)
{
	char *p = buf;

	p = PUTS(p, "HTTP/1.1 200 OK\r\n");
	p = put(p, lp->common, lp->common_len);
	p = PUTS(p, "Content-Type: ");
	p = put(p, ctype, strlen(ctype));
	p = PUTS(p, "\r\nContent-Length: ");
	p = coil_http1_put_u64(p, blen);
	p = PUTS(p, "\r\n\r\n");
	p = put(p, body, blen);
	*len = (uint32_t)(p - buf);
}

/* The Date changed (lp->common): rebuild the prebuilt responses. */
void httpd__builtin_refresh(struct httpd_loop *lp)
{
	build_fixed(lp, lp->plain, &lp->plain_len, "text/plain", plain_body,
		    sizeof(plain_body) - 1);
	build_fixed(lp, lp->json, &lp->json_len, "application/json", json_body,
		    sizeof(json_body) - 1);
}

/* A prebuilt response (buf, the whole of it with the loop's Date) where
 * it fits the request as is; the usual path otherwise. */
static void fixed(struct coil_http_req *x, const char *buf, uint32_t len,
		  const char *ctype, const char *body, size_t blen)
{
	struct httpd_conn *s = x->s;

	/* The TechEmpower case: the whole response is prebuilt per second. */
	if (!x->head && s->keep_alive && s->minor == 1 && !s->unread &&
	    !s->shutting) {
		httpd__out_put(x->lp, x->conn, buf, len);
		s->started = s->responded = true;
		s->status = 200;
		s->rq->sent = blen;
		return;
	}
	coil_http_respond_static(x, 200, ctype, body, blen);
}

static void h_plaintext(struct coil_http_req *x)
{
	fixed(x, x->lp->plain, x->lp->plain_len, "text/plain", plain_body,
	      sizeof(plain_body) - 1);
}

static void h_json(struct coil_http_req *x)
{
	fixed(x, x->lp->json, x->lp->json_len, "application/json", json_body,
	      sizeof(json_body) - 1);
}

/* user[0]: the response length (the request's Content-Length, or
 * COIL_HTTP_CHUNKED). The head waits for the first body bytes, so a body that
 * is bad from its start still gets its 400. */
static void echo_body(struct coil_http_req *x, const uint8_t *data, size_t len)
{
	if (!x->s->started)
		coil_http_respond_start(x, 200, "application/octet-stream",
				    *(uint64_t *)x->user);
	coil_http_respond_data(x, data, len);
}

static void echo_end(struct coil_http_req *x)
{
	if (!x->s->started)
		coil_http_respond(x, 200, "application/octet-stream", "", 0);
	else
		coil_http_respond_end(x);
}

/* POST/PUT /echo: the body comes back as it arrives (same length, or
 * chunked for a chunked upload), never buffered whole. */
static void h_echo(struct coil_http_req *x)
{
	const struct coil_http1_request *req = x->req;

	if (!coil_http_has_body(x)) {
		coil_http_respond(x, 200, "application/octet-stream", "", 0);
		return;
	}
	*(uint64_t *)x->user = (req->flags & COIL_HTTP1_F_CONTENT_LENGTH)
				       ? req->content_length : COIL_HTTP_CHUNKED;
	coil_http_body_accept(x, echo_body, echo_end);
}

void httpd__builtin_routes(struct coil_http_server *h)
{
	struct coil_http_route plain = { .path = "/plaintext" };
	struct coil_http_route json = { .path = "/json" };
	struct coil_http_route echo = { .path = "/echo" };

	plain.on[COIL_HTTP1_GET] = h_plaintext;
	json.on[COIL_HTTP1_GET] = h_json;
	echo.on[COIL_HTTP1_POST] = h_echo;
	echo.on[COIL_HTTP1_PUT] = h_echo;
	coil_http_server_route(h, &plain);
	coil_http_server_route(h, &json);
	coil_http_server_route(h, &echo);
}
