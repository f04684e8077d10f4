/* SPDX-License-Identifier: MIT */
/*
 * coil's HTTP/1.1 server (coil/http.h): RFC 9110/9112 semantics over
 * coil's public API. Here: the server object (its configuration, routes
 * it adds, the service it makes), its per-loop state, the per-loop output
 * staging and Date. Connections, reading requests, their life cycle and
 * timeouts are in request.c; answers are written by response.c, targets
 * routed by route.c; builtin.c has /plaintext, /json and /echo, files.c
 * static files, access_log.c the log, proxy.c proxy routes.
 *
 * Responses for one connection are staged in a per-loop buffer and handed
 * to coil in one coil_conn_write. The Date header, and the whole
 * /plaintext and /json responses, are rebuilt once a second per loop.
 */
#include "internal.h"
#include "core/internal.h"   /* the loop's connection limit */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define SERVER_LINE "Server: coil\r\n"
#define DEFAULT_HIGH_WATER (64u << 10)

/* ---- staged output ---- */

void httpd__out_flush(struct httpd_loop *lp)
{
	if (lp->out_len) {
		(void)coil_conn_write(lp->out_conn, lp->out, lp->out_len);
		lp->out_len = 0;
	}
	lp->flushes++;
}

void httpd__out_put(struct httpd_loop *lp, struct coil_conn *c,
		    const void *p, size_t n)
{
	out_bind(lp, c);
	if (n > HTTPD__OUT_CAP - lp->out_len) {
		httpd__out_flush(lp);
		if (n > HTTPD__OUT_CAP / 2) {
			(void)coil_conn_write(c, p, n);
			return;
		}
	}
	memcpy(lp->out + lp->out_len, p, n);
	lp->out_len += n;
}


/* ---- Date, once a second per loop ---- */

void httpd__date_refresh(struct httpd_loop *lp, uint64_t now)
{
	struct timespec ts;
	const char *d;
	char *p;

	clock_gettime(CLOCK_REALTIME, &ts);
	/* Recheck when the wall clock's second is over. */
	lp->date_next_ms = now + 1000 - (uint64_t)(ts.tv_nsec / 1000000);
	if (lp->common_len && lp->date_sec == ts.tv_sec)
		return;
	lp->date_sec = ts.tv_sec;
	d = coil_http1_date_update(&lp->date, ts.tv_sec);
	p = PUTS(lp->common, SERVER_LINE "Date: ");
	p = put(p, d, COIL_HTTP1_DATE_LEN);
	p = PUTS(p, "\r\n");
	lp->common_len = (uint32_t)(p - lp->common);
	/* "Sun, 06 Nov 1994 08:49:37 GMT" -> "06/Nov/1994:08:49:37 +0000" */
	memcpy(lp->clf, d + 5, 2);
	lp->clf[2] = '/';
	memcpy(lp->clf + 3, d + 8, 3);
	lp->clf[6] = '/';
	memcpy(lp->clf + 7, d + 12, 4);
	lp->clf[11] = ':';
	memcpy(lp->clf + 12, d + 17, 8);
	memcpy(lp->clf + 20, " +0000", 7);
	httpd__builtin_refresh(lp);
}

/* ---- per-loop state ---- */

struct httpd_loop *httpd__loop_get(struct coil_http_server *h,
				   struct coil_loop *loop)
{
	unsigned id = coil_loop_id(loop);
	struct httpd_loop *lp;

	if (id >= h->nloops)
		return NULL;
	lp = h->loops[id];
	if (lp)
		return lp;
	/* Once per loop, on its own thread: each loop writes only its slot. */
	lp = aligned_alloc(64, (sizeof(*lp) + 63) & ~(size_t)63);
	if (!lp)
		return NULL;
	memset(lp, 0, sizeof(*lp));
	lp->h = h;
	lp->loop = loop;
	lp->hdrs = calloc(h->limits.max_headers, sizeof(*lp->hdrs));
	if (!lp->hdrs)
		goto fail;
	/* A request part per connection at most, as the loop's connection
	 * slab reserves them: address space, resident only as far as
	 * requests at once have used it (or huge pages where the
	 * administrator reserved them, as for the connections). */
	if (coil__slab_init_align(&lp->rqs, sizeof(struct httpd_req),
				  loop->conns.count, 16))
		goto fail;
	coil_http1_parser_init(&lp->parser, &h->limits, lp->hdrs,
			       h->limits.max_headers);
	coil_http1_date_init(&lp->date);
	if (h->logfd >= 0) {
		lp->log = malloc(HTTPD__LOG_CAP);
		if (!lp->log)
			goto fail;
		coil_timer_init(&lp->log_timer, loop, httpd__log_timer_cb, NULL);
	}
	if (h->cache_size && httpd__cache_init(&lp->cache, h->cache_size))
		goto fail;
	httpd__date_refresh(lp, now_ms(lp));
	h->loops[id] = lp;
	return lp;
fail:
	coil__slab_fini(&lp->rqs);
	free(lp->log);
	free(lp->hdrs);
	free(lp);
	return NULL;
}

static void loop_free(struct httpd_loop *lp)
{
	coil__slab_fini(&lp->rqs);
	if (lp->log) {
		httpd__log_flush(lp);
		free(lp->log);
	}
	if (lp->h->cache_size)
		httpd__cache_fini(&lp->cache);
	free(lp->hdrs);
	free(lp);
}

/* ---- server ---- */

int coil_http_server_create(const struct coil_http_config *cfg, struct coil_http_server **out,
		 const char **failed)
{
	struct coil_http_server *h = calloc(1, sizeof(*h));
	struct coil_http_config *c;
	const char *what = "memory";
	int ret;

	if (!h) {
		ret = -ENOMEM;
		goto fail;
	}
	h->rootfd = h->logfd = -1;
	c = &h->cfg;
	memcpy(c, cfg, cfg->sz < sizeof(*c) ? cfg->sz : sizeof(*c));
	c->sz = sizeof(*c);
	if (!c->max_body)
		c->max_body = COIL_HTTP_DEFAULT_MAX_BODY;
	if (!c->header_timeout_ms)
		c->header_timeout_ms = COIL_HTTP_DEFAULT_HEADER_TIMEOUT_MS;
	if (!c->body_timeout_ms)
		c->body_timeout_ms = COIL_HTTP_DEFAULT_BODY_TIMEOUT_MS;
	if (!c->keepalive_timeout_ms)
		c->keepalive_timeout_ms = COIL_HTTP_DEFAULT_KEEPALIVE_TIMEOUT_MS;
	if (!c->send_timeout_ms)
		c->send_timeout_ms = c->keepalive_timeout_ms;
	if (c->cache_size == COIL_HTTP_CACHE_OFF)
		h->cache_size = 0;
	else
		h->cache_size = c->cache_size ? c->cache_size
					      : COIL_HTTP_DEFAULT_CACHE_SIZE;
	h->limits = c->limits;
	h->limits.sz = sizeof(h->limits);
	if (!h->limits.max_headers)
		h->limits.max_headers = COIL_HTTP_DEFAULT_MAX_HEADERS;
	if (h->limits.max_headers > COIL_HTTP_MAX_HEADERS) {
		/* Never lowered behind the caller's back. */
		what = "limits.max_headers";
		ret = -EINVAL;
		goto fail;
	}
	h->high_water = DEFAULT_HIGH_WATER;
	h->nloops = c->max_loops ? c->max_loops : 1024;
	h->loops = calloc(h->nloops, sizeof(*h->loops));
	if (!h->loops) {
		ret = -ENOMEM;
		goto fail;
	}
	if (c->root) {
		what = "the document root";
		ret = httpd__files_open_root(h);
		if (ret)
			goto fail;
	}
	if (c->access_log) {
		what = "the access log";
		h->logfd = open(c->access_log,
				O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (h->logfd < 0) {
			ret = -errno;
			goto fail;
		}
	}
	httpd__builtin_routes(h);
	if (h->rootfd >= 0) {
		struct coil_http_route files = { .path = "/",
					     .flags = COIL_HTTP_ROUTE_PREFIX };

		files.on[COIL_HTTP1_GET] = httpd__files_get;
		coil_http_server_route(h, &files);
	}
	*out = h;
	return 0;
fail:
	if (failed)
		*failed = what;
	if (h) {
		if (h->rootfd >= 0)
			close(h->rootfd);
		free(h->loops);
		free(h);
	}
	return ret;
}

void coil_http_server_service_init(struct coil_http_server *h, struct coil_service *svc)
{
	svc->ops = &httpd__ops;
	svc->state_size = h->logfd >= 0 ? sizeof(struct httpd_conn)
				       : offsetof(struct httpd_conn, ltarget);
	svc->data = h;
	if (!svc->write_high_water)
		svc->write_high_water = DEFAULT_HIGH_WATER;
	h->high_water = svc->write_high_water;
}

void coil_http_server_destroy(struct coil_http_server *h)
{
	if (!h)
		return;
	for (unsigned i = 0; i < h->nroutes; i++)
		if (h->routes[i].on[COIL_HTTP1_GET] == httpd__proxy_handle)
			httpd__proxy_free(h->routes[i].data);
	for (unsigned i = 0; i < h->nloops; i++)
		if (h->loops[i])
			loop_free(h->loops[i]);
	free(h->loops);
	if (h->rootfd >= 0)
		close(h->rootfd);
	if (h->logfd >= 0)
		close(h->logfd);
	free(h);
}
