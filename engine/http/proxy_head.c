/* SPDX-License-Identifier: MIT */
/*
 * The reverse proxy's head rewriting (proxy.c has the resource, the
 * upstream choice and the relay): the request head as it goes upstream
 * (the target under the route's path, HTTP/1.1 with its own framing, Host
 * set to the upstream and swapped when a retry goes to another one,
 * X-Forwarded-For extended with the client, X-Forwarded-Proto and Via
 * added) and the response head's fields as they go to the client (Via
 * extended, the framing a HEAD answer would have had). Hop-by-hop fields
 * (Connection and the options it names, Keep-Alive, Proxy-Connection, TE,
 * Trailer, Transfer-Encoding, Upgrade) are dropped either way, RFC 9110
 * 7.6.1; the options named are gathered once per message into a set, so
 * dropping them is linear in the head.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool append(struct preq *p, const void *d, size_t n)
{
	if (n > p->cap - p->len) {
		char *b = coil__grow(p->buf, &p->cap, p->len + n, 1024);

		if (!b)
			return false;
		p->buf = b;
	}
	memcpy(p->buf + p->len, d, n);
	p->len += n;
	return true;
}

#define APPEND_LIT(p, lit) append((p), (lit), sizeof(lit) - 1)

static bool str_is(const struct coil_http1_str *s, const char *name)
{
	size_t n = strlen(name);

	return s->len == n && !strncasecmp(s->ptr, name, n);
}

/* The options the Connection fields list (RFC 9110 7.6.1), gathered
 * once per message into an open-addressed set keyed case-insensitively,
 * so dropping the fields they name costs one look-up per field: linear
 * in the head, not fields x options. */
struct hop_tok {
	const char *p;
	size_t len;
};

#define HOP_STACK_SLOTS 64u

struct hop_set {
	size_t mask;               /* slots - 1; 0 when there is no option */
	struct hop_tok *slot;
	struct hop_tok stack[HOP_STACK_SLOTS];
};

static uint32_t hop_hash(const char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)(p[i] | 0x20)) * 16777619u;
	return h;
}

/* Call `fn` on each token of the Connection fields of h[0..nh). */
static void conn_tokens(const struct coil_http1_header *h, unsigned nh,
			void (*fn)(struct hop_set *, const char *, size_t),
			struct hop_set *set, size_t *count)
{
	for (unsigned i = 0; i < nh; i++) {
		const char *p, *end;

		if (h[i].name.len != 10 ||
		    strncasecmp(h[i].name.ptr, "Connection", 10))
			continue;
		p = h[i].value.ptr;
		end = p + h[i].value.len;
		while (p < end) {
			const char *q;

			while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
				p++;
			q = p;
			while (q < end && *q != ',' && *q != ' ' && *q != '\t')
				q++;
			if (q > p) {
				if (fn)
					fn(set, p, (size_t)(q - p));
				else
					(*count)++;
			}
			p = q;
		}
	}
}

static void hop_add(struct hop_set *s, const char *p, size_t n)
{
	size_t i = hop_hash(p, n) & s->mask;

	while (s->slot[i].p) {
		if (s->slot[i].len == n && !strncasecmp(s->slot[i].p, p, n))
			return;
		i = (i + 1) & s->mask;
	}
	s->slot[i].p = p;
	s->slot[i].len = n;
}

/* Gather the options of h's Connection fields into `s`. The set is on
 * the stack up to HOP_STACK_SLOTS / 2 options, on the heap beyond (free
 * with hop_done). Returns 0, or -ENOMEM. */
static int hop_init(struct hop_set *s, const struct coil_http1_header *h,
		    unsigned nh)
{
	size_t count = 0, slots = HOP_STACK_SLOTS;

	s->mask = 0;
	s->slot = s->stack;
	conn_tokens(h, nh, NULL, NULL, &count);
	if (!count)
		return 0;
	while (slots < 2 * count)
		slots *= 2;
	if (slots > HOP_STACK_SLOTS) {
		s->slot = calloc(slots, sizeof(*s->slot));
		if (!s->slot) {
			s->slot = s->stack;
			return -ENOMEM;
		}
	} else {
		memset(s->stack, 0, sizeof(s->stack));
	}
	s->mask = slots - 1;
	conn_tokens(h, nh, hop_add, s, NULL);
	return 0;
}

static void hop_done(struct hop_set *s)
{
	if (s->slot != s->stack)
		free(s->slot);
}

/* Not forwarded, either way (RFC 9110 7.6.1), or rewritten by the proxy. */
static bool hop_by_hop(const struct hop_set *s,
		       const struct coil_http1_str *name)
{
	static const char *const hop[] = {
		"Connection", "Keep-Alive", "Proxy-Connection", "TE",
		"Trailer", "Transfer-Encoding", "Upgrade", "Content-Length",
	};

	for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		if (str_is(name, hop[i]))
			return true;
	if (!s->mask)
		return false;
	for (size_t i = hop_hash(name->ptr, name->len) & s->mask;
	     s->slot[i].p; i = (i + 1) & s->mask)
		if (s->slot[i].len == name->len &&
		    !strncasecmp(s->slot[i].p, name->ptr, name->len))
			return true;
	return false;
}

/* ---- the request head, for upstream ---- */

/* Point the request head's Host at upstream `i`. */
bool httpd__px_set_host(struct preq *p, unsigned i)
{
	const char *h = p->px->host[i];
	size_t n = strlen(h), tail = p->len - p->host_at - p->host_len;

	if (n > p->host_len && n - p->host_len > p->cap - p->len) {
		char *b = coil__grow(p->buf, &p->cap, p->len + n, 1024);

		if (!b)
			return false;
		p->buf = b;
	}
	memmove(p->buf + p->host_at + n, p->buf + p->host_at + p->host_len,
		tail);
	memcpy(p->buf + p->host_at, h, n);
	p->len = p->host_at + n + tail;
	p->host_len = n;
	return true;
}

/* Write the request head for upstream into p->buf. */
bool httpd__px_build_head(struct coil_http_req *x, struct preq *p)
{
	const struct coil_http1_request *req = x->req;
	const struct coil_http1_header *h = req->headers;
	char peer[INET6_ADDRSTRLEN] = "unknown";
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const struct coil_http1_str *xff = NULL, *via = NULL;
	struct hop_set hop;
	bool ok;

	if (!coil_http_peer(x, &ss, &sl)) {
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
				  peer, sizeof(peer));
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6,
				  &((struct sockaddr_in6 *)&ss)->sin6_addr, peer,
				  sizeof(peer));
	}
	const char *t = req->target.ptr;
	size_t tn = req->target.len;

	if (p->px->path && tn >= p->px->prefix_len &&
	    !memcmp(t, p->px->prefix, p->px->prefix_len)) {
		ok = append(p, req->method_name.ptr, req->method_name.len) &&
		     APPEND_LIT(p, " ") &&
		     append(p, p->px->path, strlen(p->px->path));
		t += p->px->prefix_len;
		tn -= p->px->prefix_len;
	} else {
		ok = append(p, req->method_name.ptr, req->method_name.len) &&
		     APPEND_LIT(p, " ");
	}
	ok = ok && append(p, t, tn) &&
	     APPEND_LIT(p, " HTTP/1.1\r\nHost: ");
	p->host_at = p->len;
	p->host_len = strlen(httpd__px_host(p));
	ok = ok && append(p, httpd__px_host(p), p->host_len) &&
	     APPEND_LIT(p, "\r\n");
	if (hop_init(&hop, h, req->nheaders))
		return false;
	for (unsigned i = 0; ok && i < req->nheaders; i++) {
		if (hop_by_hop(&hop, &h[i].name) ||
		    str_is(&h[i].name, "Host") ||
		    str_is(&h[i].name, "X-Forwarded-Proto") ||
		    str_is(&h[i].name, "Expect"))
			continue;
		if (str_is(&h[i].name, "X-Forwarded-For")) {
			xff = &h[i].value;
			continue;
		}
		if (str_is(&h[i].name, "Via")) {
			via = &h[i].value;
			continue;
		}
		ok = append(p, h[i].name.ptr, h[i].name.len) &&
		     APPEND_LIT(p, ": ") &&
		     append(p, h[i].value.ptr, h[i].value.len) &&
		     APPEND_LIT(p, "\r\n");
	}
	hop_done(&hop);
	ok = ok && APPEND_LIT(p, "X-Forwarded-For: ");
	if (ok && xff)
		ok = append(p, xff->ptr, xff->len) && APPEND_LIT(p, ", ");
	ok = ok && append(p, peer, strlen(peer)) &&
	     APPEND_LIT(p, "\r\nX-Forwarded-Proto: http\r\nVia: ");
	if (ok && via)
		ok = append(p, via->ptr, via->len) && APPEND_LIT(p, ", ");
	if (req->version_minor)
		ok = ok && APPEND_LIT(p, "1.1 coil\r\n");
	else
		ok = ok && APPEND_LIT(p, "1.0 coil\r\n");
	if (ok && p->chunked) {
		ok = APPEND_LIT(p, "Transfer-Encoding: chunked\r\n");
	} else if (ok && (req->flags & COIL_HTTP1_F_CONTENT_LENGTH)) {
		/* the length as announced, 0 included (a POST without a body
		 * still says so) */
		char cl[48];

		snprintf(cl, sizeof(cl), "Content-Length: %llu\r\n",
			 (unsigned long long)req->content_length);
		ok = append(p, cl, strlen(cl));
	}
	return ok && APPEND_LIT(p, "\r\n");
}

/* ---- the response head, for the client ---- */

int httpd__px_resp_fields(struct coil_http_req *x,
			  const struct coil_http1_response *r)
{
	char via[256] = "";
	struct hop_set hop;

	if (hop_init(&hop, r->headers, r->nheaders))
		return -ENOMEM;
	for (unsigned i = 0; i < r->nheaders; i++) {
		const struct coil_http1_header *h = &r->headers[i];

		if (hop_by_hop(&hop, &h->name))
			continue;
		if (str_is(&h->name, "Via")) {
			snprintf(via, sizeof(via), "%.*s, ",
				 (int)h->value.len, h->value.ptr);
			continue;
		}
		/* Date and Server are the server's own: refused, dropped.
		 * Straight from the parsed head: no copy per field. */
		(void)httpd__header_put(x, h->name.ptr, h->name.len,
					h->value.ptr, h->value.len, false);
	}
	hop_done(&hop);
	strncat(via, "1.1 coil", sizeof(via) - strlen(via) - 1);
	(void)coil_http_header_set(x, "Via", via);
	return 0;
}

uint64_t httpd__px_resp_length(const struct coil_http1_response *r,
			       bool head)
{
	uint64_t len;

	if (r->flags & COIL_HTTP1_F_CONTENT_LENGTH)
		len = r->content_length;
	else if (r->flags & (COIL_HTTP1_F_CHUNKED | COIL_HTTP1_F_CLOSE_DELIMITED))
		len = COIL_HTTP_CHUNKED;
	else
		len = 0;   /* 204, 304, or an answer to HEAD */
	if (head) {
		/* the parser zeroes a HEAD answer's framing (and has checked
		 * it: 1*DIGIT lengths, no CL with TE): relay what GET would
		 * have, a chunked coding or the announced length */
		len = 0;
		for (unsigned i = 0; i < r->nheaders; i++)
			if (str_is(&r->headers[i].name, "Transfer-Encoding"))
				len = COIL_HTTP_CHUNKED;
			else if (str_is(&r->headers[i].name, "Content-Length"))
				len = strtoull(r->headers[i].value.ptr, NULL,
					       10);
	}
	return len;
}
