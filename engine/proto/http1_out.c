/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1 response writer: the status line, header fields, framing
 * (Content-Length, chunked), Connection, and the cached IMF-fixdate for
 * the Date field, appended to a caller's buffer with one error kept for
 * the end (coil_http1_out_end). Text that could end a line early is
 * refused, not written (response splitting).
 */
#include <coil/http1.h>

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "proto/http1_internal.h"

/* --- Date ------------------------------------------------------------- */

void coil_http1_date_init(struct coil_http1_date *d)
{
	d->sec = INT64_MIN;
	d->str[0] = '\0';
}

/* Days since 1970-01-01 to a civil date (H. Hinnant's days_from_civil
 * inverse): no libc, no time zone, no lock. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void put2(char *s, unsigned v)
{
	s[0] = (char)('0' + v / 10);
	s[1] = (char)('0' + v % 10);
}

const char *coil_http1_date_update(struct coil_http1_date *d,
				   int64_t unix_sec)
{
	static const char wday[] = "ThuFriSatSunMonTueWed";  /* from 1970-01-01 */
	static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	int64_t t = unix_sec, days, y;
	unsigned m, md, sod;
	char *s = d->str;

	if (t == d->sec)
		return d->str;
	d->sec = t;
	/* IMF-fixdate has a 4-digit year: clamp to 1970..9999. */
	if (t < 0)
		t = 0;
	if (t > 253402300799)
		t = 253402300799;
	days = t / 86400;
	sod = (unsigned)(t % 86400);
	civil_from_days(days, &y, &m, &md);
	memcpy(s, wday + (days % 7) * 3, 3);
	s[3] = ',';
	s[4] = ' ';
	put2(s + 5, md);
	s[7] = ' ';
	memcpy(s + 8, mon + (m - 1) * 3, 3);
	s[11] = ' ';
	put2(s + 12, (unsigned)(y / 100));
	put2(s + 14, (unsigned)(y % 100));
	s[16] = ' ';
	put2(s + 17, sod / 3600);
	s[19] = ':';
	put2(s + 20, sod / 60 % 60);
	s[22] = ':';
	put2(s + 23, sod % 60);
	memcpy(s + 25, " GMT", 5);
	return d->str;
}

/* --- response writer -------------------------------------------------- */

void coil_http1_out_init(struct coil_http1_out *o, void *buf, size_t cap)
{
	o->buf = buf;
	o->cap = cap > INT_MAX ? INT_MAX : cap;
	o->len = 0;
	o->err = 0;
}

static void put(struct coil_http1_out *o, const void *s, size_t n)
{
	if (o->err)
		return;
	if (n > o->cap - o->len) {
		o->err = -ENOSPC;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}
#define PUTS(o, lit) put((o), lit, sizeof(lit) - 1)

/* Refuse what would end a line early: CR, LF, other controls but HTAB,
 * DEL (response splitting). */
static bool safe_text(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!coil__http1_value_ok[(unsigned char)s[i]])
			return false;
	return true;
}

static void fail_out(struct coil_http1_out *o, int err)
{
	if (!o->err)
		o->err = err;
}

const char *coil_http1_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	}
	return "";
}

void coil_http1_out_status(struct coil_http1_out *o, int status,
			   const char *reason)
{
	char code[4];

	if (status < 100 || status > 999) {
		fail_out(o, -EINVAL);
		return;
	}
	if (!reason)
		reason = coil_http1_reason(status);
	if (!safe_text(reason, strlen(reason))) {
		fail_out(o, -EINVAL);
		return;
	}
	code[0] = (char)('0' + status / 100);
	code[1] = (char)('0' + status / 10 % 10);
	code[2] = (char)('0' + status % 10);
	code[3] = ' ';
	PUTS(o, "HTTP/1.1 ");
	put(o, code, 4);
	put(o, reason, strlen(reason));
	PUTS(o, "\r\n");
}

void coil_http1_out_header(struct coil_http1_out *o, const char *name,
			   const char *value, size_t value_len)
{
	size_t n = strlen(name);

	if (!n || coil__http1_scan_token(name, name + n) != name + n ||
	    !safe_text(value, value_len)) {
		fail_out(o, -EINVAL);
		return;
	}
	put(o, name, n);
	PUTS(o, ": ");
	put(o, value, value_len);
	PUTS(o, "\r\n");
}

/* Decimal digits of v into the end of buf[20]; returns the first. */
static char *u64_dec(char buf[20], uint64_t v)
{
	char *s = buf + 20;

	do {
		*--s = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return s;
}

void coil_http1_out_header_u64(struct coil_http1_out *o, const char *name,
			       uint64_t value)
{
	char buf[20], *s = u64_dec(buf, value);

	coil_http1_out_header(o, name, s, (size_t)(buf + 20 - s));
}

void coil_http1_out_date(struct coil_http1_out *o,
			 const struct coil_http1_date *d)
{
	PUTS(o, "Date: ");
	put(o, d->str, COIL_HTTP1_DATE_LEN);
	PUTS(o, "\r\n");
}

void coil_http1_out_content_length(struct coil_http1_out *o, uint64_t n)
{
	char buf[20], *s = u64_dec(buf, n);

	PUTS(o, "Content-Length: ");
	put(o, s, (size_t)(buf + 20 - s));
	PUTS(o, "\r\n");
}

void coil_http1_out_chunked(struct coil_http1_out *o)
{
	PUTS(o, "Transfer-Encoding: chunked\r\n");
}

void coil_http1_out_connection(struct coil_http1_out *o,
			       unsigned version_minor, bool keep_alive)
{
	if (version_minor && !keep_alive)
		PUTS(o, "Connection: close\r\n");
	else if (!version_minor && keep_alive)
		PUTS(o, "Connection: keep-alive\r\n");
}

void coil_http1_out_bytes(struct coil_http1_out *o, const void *data,
			  size_t len)
{
	put(o, data, len);
}

void coil_http1_out_chunk(struct coil_http1_out *o, uint64_t size)
{
	char buf[18], *s = buf + 16;

	if (!size) {  /* a zero chunk would end the body */
		fail_out(o, -EINVAL);
		return;
	}
	s[0] = '\r';
	s[1] = '\n';
	do {
		*--s = "0123456789abcdef"[size & 15];
		size >>= 4;
	} while (size);
	put(o, s, (size_t)(buf + 18 - s));
}

void coil_http1_out_chunk_end(struct coil_http1_out *o)
{
	PUTS(o, "\r\n");
}

void coil_http1_out_last_chunk(struct coil_http1_out *o)
{
	PUTS(o, "0\r\n");
}

int coil_http1_out_end(struct coil_http1_out *o)
{
	PUTS(o, "\r\n");
	return coil_http1_out_result(o);
}
