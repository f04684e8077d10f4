/* SPDX-License-Identifier: MIT */
/*
 * The HTTP server's access log: Combined Log Format lines, buffered per loop,
 * written at least once a second and when the loop ends. Every field a
 * client controls is escaped (\xHH), so it cannot break or forge a line.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- access log ---- */

void httpd__log_flush(struct httpd_loop *lp)
{
	size_t off = 0;

	while (off < lp->log_len) {
		ssize_t n = write(lp->h->logfd, lp->log + off, lp->log_len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;   /* a full disk loses log lines, never requests */
		off += (size_t)n;
	}
	lp->log_len = 0;
}

void httpd__log_timer_cb(struct coil_timer *t)
{
	httpd__log_flush(httpd__container_of(t, struct httpd_loop, log_timer));
}

/* The client's address as text, asked once per connection ("-" when the
 * socket no longer knows it: a peer that reset). */
static void log_peer(struct httpd_conn *s)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	const void *a = NULL;

	if (s->lpeerlen)
		return;
	if (!coil_conn_peer(s->conn, &ss, &sl)) {
		if (ss.ss_family == AF_INET)
			a = &((struct sockaddr_in *)&ss)->sin_addr;
		else if (ss.ss_family == AF_INET6)
			a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
	}
	if (!a || !inet_ntop(ss.ss_family, a, s->lpeer, sizeof(s->lpeer)))
		strcpy(s->lpeer, "-");
	s->lpeerlen = (uint8_t)strlen(s->lpeer);
}

/* `n` bytes of `v` as log text: '"', '\' and bytes outside printable
 * ASCII as \xHH (so a line cannot be forged or broken), at most 4n. */
static char *log_str(char *p, const char *v, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x7f) {
			p = PUTS(p, "\\x");
			*p++ = hex[ch >> 4];
			*p++ = hex[ch & 15];
		} else {
			*p++ = (char)ch;
		}
	}
	return p;
}

/* A quoted header value for the log, "-" when the request had none. */
static char *log_field(char *p, const char *v, size_t n)
{
	*p++ = '"';
	if (n)
		p = log_str(p, v, n);
	else
		*p++ = '-';
	*p++ = '"';
	return p;
}

#define LOG_LINE_MAX                                                     \
	(160 + HTTPD__LOG_PEER + 4 * (HTTPD__LOG_TARGET + 2 * HTTPD__LOG_FIELD))

/* Combined Log Format (nginx's and Apache's default): client, -, -, time,
 * request line, status, body bytes, Referer, User-Agent. The target,
 * Referer and User-Agent are cut at their first HTTPD__LOG_TARGET /
 * HTTPD__LOG_FIELD bytes. */
void httpd__log_line(struct httpd_conn *s)
{
	struct httpd_loop *lp = s->lp;
	char *p;

	if (HTTPD__LOG_CAP - lp->log_len < LOG_LINE_MAX)
		httpd__log_flush(lp);
	log_peer(s);
	p = lp->log + lp->log_len;
	p = put(p, s->lpeer, s->lpeerlen);
	p = PUTS(p, " - - [");
	p = put(p, lp->clf, 26);
	p = PUTS(p, "] \"");
	if (!s->ltlen) {
		*p++ = '-';
	} else {
		p = log_str(p, s->ltarget, s->ltlen);
		p = PUTS(p, " HTTP/1.");
		*p++ = (char)('0' + s->minor);
	}
	p = PUTS(p, "\" ");
	p = coil_http1_put_u64(p, s->status);
	*p++ = ' ';
	p = coil_http1_put_u64(p, s->rq->sent);
	*p++ = ' ';
	p = log_field(p, s->lref, s->lreflen);
	*p++ = ' ';
	p = log_field(p, s->lua, s->lualen);
	*p++ = '\n';
	lp->log_len = (size_t)(p - lp->log);
	if (!coil_timer_active(&lp->log_timer))
		coil_timer_start(&lp->log_timer, 1000);
}

/* Keep what the log line needs of the request head (it is gone by the
 * time a request with a body is answered). */
uint8_t httpd__log_keep(char *dst, size_t cap, const struct coil_http1_str *v)
{
	size_t n = !v ? 0 : v->len < cap ? v->len : cap;

	if (n)
		memcpy(dst, v->ptr, n);
	return (uint8_t)n;
}
