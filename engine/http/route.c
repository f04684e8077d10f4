/* SPDX-License-Identifier: MIT */
/*
 * coil's HTTP server (coil/http.h): from a request target to its handler.
 * The path is decoded and normalized (RFC 3986 5.2.4) into the loop's
 * buffer, the route table is searched (exact, then the longest prefix),
 * and OPTIONS, 404 and 405 (with Allow) are answered here.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

static const char *const method_names[COIL_HTTP_NMETHODS] = {
	[COIL_HTTP1_OTHER] = "-",
	[COIL_HTTP1_GET] = "GET",
	[COIL_HTTP1_HEAD] = "HEAD",
	[COIL_HTTP1_POST] = "POST",
	[COIL_HTTP1_PUT] = "PUT",
	[COIL_HTTP1_DELETE] = "DELETE",
	[COIL_HTTP1_CONNECT] = "CONNECT",
	[COIL_HTTP1_OPTIONS] = "OPTIONS",
	[COIL_HTTP1_TRACE] = "TRACE",
	[COIL_HTTP1_PATCH] = "PATCH",
};

/* ---- paths and routes ---- */

/* End the segment out[*seg, *o): drop "" and ".", resolve "..". */
static int end_segment(char *out, size_t *o, size_t *seg, bool slash)
{
	size_t n = *o - *seg;
	const char *sp = out + *seg;

	if (n == 0)
		return 0;
	if (n == 1 && sp[0] == '.') {
		*o = *seg;
		return 0;
	}
	if (n == 2 && sp[0] == '.' && sp[1] == '.') {
		size_t i;

		if (*seg == 1)
			return 403;  /* above the root */
		i = *seg - 1;    /* the '/' that ended the previous segment */
		while (i > 0 && out[i - 1] != '/')
			i--;
		*o = *seg = i;
		return 0;
	}
	if (slash) {
		if (*o >= HTTPD__PATH_MAX)
			return 414;
		out[(*o)++] = '/';
		*seg = *o;
	}
	return 0;
}

/*
 * The request target -> x->path (percent-decoded, "." and ".." resolved,
 * "//" collapsed), x->query and x->raw_path. Returns 0 or a status: 400
 * (bad escape, %00 or a control byte), 403 (".." above the root), 414.
 */
static int path_prepare(struct httpd_loop *lp, const struct coil_http1_str *t,
			struct coil_http_req *x)
{
	const char *p = t->ptr, *end = p + t->len, *q, *r;
	size_t o = 1, seg = 1, n;
	bool slow = false;
	int st;

	if (t->len == 1 && *p == '*') {
		x->path = *t;
		x->raw_path = *t;
		return 0;
	}
	if (*p != '/') {
		/* absolute-form: scheme "://" authority [path] */
		const char *colon = memchr(p, ':', t->len);

		if (!colon || end - colon < 3 || colon[1] != '/' ||
		    colon[2] != '/')
			return 400;
		p = colon + 3;
		while (p < end && *p != '/' && *p != '?')
			p++;
		if (p == end || *p == '?') {
			x->path.ptr = x->raw_path.ptr = "/";
			x->path.len = x->raw_path.len = 1;
			x->query.ptr = p < end ? p + 1 : p;
			x->query.len = p < end ? (size_t)(end - p - 1) : 0;
			return 0;
		}
	}
	q = memchr(p, '?', (size_t)(end - p));
	x->query.ptr = q ? q + 1 : end;
	x->query.len = q ? (size_t)(end - q - 1) : 0;
	if (q)
		end = q;
	n = (size_t)(end - p);
	x->raw_path.ptr = p;
	x->raw_path.len = n;
	for (r = p; r < end; r++) {
		if (*r == '%' || (*r == '/' && r + 1 < end &&
				  (r[1] == '/' || r[1] == '.'))) {
			slow = true;
			break;
		}
	}
	if (!slow) {
		if (n > HTTPD__PATH_MAX)
			return 414;
		x->path.ptr = p;
		x->path.len = n;
		return 0;
	}
	lp->path[0] = '/';
	for (r = p + 1; r < end; r++) {
		int ch = (unsigned char)*r;

		if (ch == '%') {
			int hi, lo;

			if (end - r < 3 || (hi = coil_http1_hexval(r[1])) < 0 ||
			    (lo = coil_http1_hexval(r[2])) < 0)
				return 400;
			ch = hi << 4 | lo;
			r += 2;
			if (ch < 0x20 || ch == 0x7f)
				return 400;   /* %00 and other controls */
		}
		if (ch == '/') {
			if ((st = end_segment(lp->path, &o, &seg, true)))
				return st;
			continue;
		}
		if (o >= HTTPD__PATH_MAX)
			return 414;
		lp->path[o++] = (char)ch;
	}
	if ((st = end_segment(lp->path, &o, &seg, false)))
		return st;
	lp->path[o] = '\0';
	x->path.ptr = lp->path;
	x->path.len = o;
	return 0;
}

static const struct coil_http_route *route_find(const struct coil_http_server *h,
					    struct coil_http_req *x)
{
	const struct coil_http_route *best = NULL;
	const char *p = x->path.ptr;
	size_t n = x->path.len, blen = 0;

	for (unsigned i = 0; i < h->nroutes; i++) {
		const struct coil_http_route *r = &h->routes[i];
		size_t rl = strlen(r->path);

		if (!(r->flags & COIL_HTTP_ROUTE_PREFIX)) {
			if (rl == n && !memcmp(p, r->path, n)) {
				x->rest.ptr = p + n;
				x->rest.len = 0;
				return r;
			}
			continue;
		}
		if (best && rl <= blen)
			continue;
		if (n >= rl && !memcmp(p, r->path, rl)) {
			best = r;
			blen = rl;
		} else if (rl > 1 && r->path[rl - 1] == '/' && n == rl - 1 &&
			   !memcmp(p, r->path, n)) {
			best = r;
			blen = rl;
		}
	}
	if (best) {
		size_t skip = blen < n ? blen : n;

		x->rest.ptr = p + skip;
		x->rest.len = n - skip;
	}
	return best;
}

/* "Allow: GET, HEAD, ...\r\n" for a route. */
static size_t allow_line(const struct coil_http_route *r, char *buf)
{
	static const uint8_t order[] = {
		COIL_HTTP1_GET, COIL_HTTP1_HEAD, COIL_HTTP1_POST,
		COIL_HTTP1_PUT, COIL_HTTP1_DELETE, COIL_HTTP1_OPTIONS,
		COIL_HTTP1_TRACE, COIL_HTTP1_PATCH,
	};
	char *p = PUTS(buf, "Allow: ");
	bool first = true;

	for (size_t i = 0; i < sizeof(order); i++) {
		unsigned m = order[i];
		bool ok = r ? r->on[m] != NULL : m != COIL_HTTP1_TRACE &&
						    m != COIL_HTTP1_DELETE &&
						    m != COIL_HTTP1_PATCH;

		if (r && m == COIL_HTTP1_HEAD)
			ok = ok || r->on[COIL_HTTP1_GET];
		if (m == COIL_HTTP1_OPTIONS)
			ok = true;
		if (!ok)
			continue;
		if (!first)
			p = PUTS(p, ", ");
		p = put(p, method_names[m], strlen(method_names[m]));
		first = false;
	}
	p = PUTS(p, "\r\n");
	return (size_t)(p - buf);
}

void httpd__dispatch(struct coil_http_req *x)
{
	const struct coil_http1_request *req = x->req;
	struct coil_http_server *h = x->lp->h;
	const struct coil_http_route *route;
	coil_http_handler fn;
	char allow[96];
	int st = path_prepare(x->lp, &req->target, x);

	if (st) {
		coil_http_respond_error(x, st);
		return;
	}
	if (x->path.ptr[0] == '*') {   /* OPTIONS * */
		size_t n = allow_line(NULL, allow);

		httpd__resp_head(x, 204, NULL, HTTPD__NO_LENGTH, allow, n);
		x->s->responded = true;
		return;
	}
	route = route_find(h, x);
	if (!route) {
		coil_http_respond_error(x, 404);
		return;
	}
	x->route = x->s->rq->route = route;
	fn = route->on[req->method];
	if (!fn && req->method == COIL_HTTP1_HEAD)
		fn = route->on[COIL_HTTP1_GET];
	if (fn) {
		fn(x);
		return;
	}
	if (req->method == COIL_HTTP1_OPTIONS) {
		size_t n = allow_line(route, allow);

		httpd__resp_head(x, 204, NULL, HTTPD__NO_LENGTH, allow, n);
		x->s->responded = true;
		return;
	}
	httpd__respond_error_extra(x, 405, allow, allow_line(route, allow));
}

int coil_http_server_route(struct coil_http_server *h, const struct coil_http_route *route)
{
	if (!route->path || route->path[0] != '/')
		return -EINVAL;
	for (unsigned i = 0; i < h->nroutes; i++) {
		if (h->routes[i].flags == route->flags &&
		    !strcmp(h->routes[i].path, route->path)) {
			h->routes[i] = *route;
			return 0;
		}
	}
	if (h->nroutes == HTTPD__MAX_ROUTES)
		return -ENOSPC;
	h->routes[h->nroutes++] = *route;
	return 0;
}
