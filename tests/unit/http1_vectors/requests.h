/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.1 request vectors shared by test_http1.c, test_http1_diff.c and the
 * fuzz seed corpus. Written from RFC 9112 and from the request DATA of
 * llhttp's test/request markdown files (originally joyent/http-parser's test.c) and
 * public request-smuggling lists (PortSwigger's and the "HTTP Request
 * Smuggling in 2020" / RFC 9112 section 11.2 cases); no code was reused.
 * Where coil is stricter than those corpora (a 1.1 request without Host,
 * obs-fold, raw non-ASCII targets) the vector is listed as invalid, and a
 * corrected copy as valid.
 */
#ifndef COIL_TEST_HTTP1_VECTORS_H
#define COIL_TEST_HTTP1_VECTORS_H

#include <coil/http1.h>

#define KA COIL_HTTP1_F_KEEP_ALIVE
#define HO COIL_HTTP1_F_HOST
#define CL COIL_HTTP1_F_CONTENT_LENGTH
#define CH COIL_HTTP1_F_CHUNKED
#define EC COIL_HTTP1_F_EXPECT_CONTINUE
#define EO COIL_HTTP1_F_EXPECT_OTHER
#define CC COIL_HTTP1_F_CONN_CLOSE
#define CK COIL_HTTP1_F_CONN_KEEP_ALIVE
#define CU COIL_HTTP1_F_CONN_UPGRADE

#define H1_MAX_EXP_HEADERS 12

struct h1_valid {
	const char *name;
	const char *in;
	enum coil_http1_method method;
	const char *target;
	unsigned minor;
	unsigned flags;
	unsigned long long cl;
	unsigned nheaders;
	struct {
		const char *name, *value;
	} h[H1_MAX_EXP_HEADERS];  /* checked when name != NULL */
	/* 1: http-parser 2.9 reads it differently: it refuses unknown
	 * methods, equal duplicate Content-Lengths and 2^64-1; reports 1.2 as
	 * 1.2; keeps a 1.0 connection with "keep-alive, close"; misses
	 * "close" with trailing OWS, and "chunked" after an empty list
	 * element or before OWS. */
	int nodiff;
	size_t head_len;  /* 0: up to and including the first CRLFCRLF */
};

struct h1_invalid {
	const char *name;
	const char *in;
	size_t len;  /* 0: strlen(in) (set for inputs with NUL) */
	int rc;      /* the expected error */
};

static const struct h1_valid h1_valid[] = {
	/* --- llhttp/http-parser corpus (Host added where it lacked one) */
	{ "curl get",
	  "GET /test HTTP/1.1\r\n"
	  "User-Agent: curl/7.18.0 (i486-pc-linux-gnu) libcurl/7.18.0 "
	  "OpenSSL/0.9.8g zlib/1.2.3.3 libidn/1.1\r\n"
	  "Host: 0.0.0.0=5000\r\n"
	  "Accept: */*\r\n\r\n",
	  COIL_HTTP1_GET, "/test", 1, KA | HO, 0, 3,
	  { { "User-Agent", "curl/7.18.0 (i486-pc-linux-gnu) libcurl/7.18.0 "
	      "OpenSSL/0.9.8g zlib/1.2.3.3 libidn/1.1" },
	    { "Host", "0.0.0.0=5000" }, { "Accept", "*/*" } }, 0, 0 },
	{ "firefox get",
	  "GET /favicon.ico HTTP/1.1\r\n"
	  "Host: 0.0.0.0=5000\r\n"
	  "User-Agent: Mozilla/5.0 (X11; U; Linux i686; en-US; rv:1.9) "
	  "Gecko/2008061015 Firefox/3.0\r\n"
	  "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,"
	  "*/*;q=0.8\r\n"
	  "Accept-Language: en-us,en;q=0.5\r\n"
	  "Accept-Encoding: gzip,deflate\r\n"
	  "Accept-Charset: ISO-8859-1,utf-8;q=0.7,*;q=0.7\r\n"
	  "Keep-Alive: 300\r\n"
	  "Connection: keep-alive\r\n\r\n",
	  COIL_HTTP1_GET, "/favicon.ico", 1, KA | HO | CK, 0, 8,
	  { { "Host", "0.0.0.0=5000" },
	    { "User-Agent", "Mozilla/5.0 (X11; U; Linux i686; en-US; rv:1.9) "
	      "Gecko/2008061015 Firefox/3.0" },
	    { "Accept", "text/html,application/xhtml+xml,application/xml;"
	      "q=0.9,*/*;q=0.8" },
	    { "Accept-Language", "en-us,en;q=0.5" },
	    { "Accept-Encoding", "gzip,deflate" },
	    { "Accept-Charset", "ISO-8859-1,utf-8;q=0.7,*;q=0.7" },
	    { "Keep-Alive", "300" }, { "Connection", "keep-alive" } }, 0, 0 },
	{ "dumbluck",
	  "GET /dumbluck HTTP/1.1\r\nHost: h\r\naaaaaaaaaaaaa:++++++++++\r\n\r\n",
	  COIL_HTTP1_GET, "/dumbluck", 1, KA | HO, 0, 2,
	  { { "Host", "h" }, { "aaaaaaaaaaaaa", "++++++++++" } }, 0, 0 },
	{ "fragment in url",
	  "GET /forums/1/topics/2375?page=1#posts-17408 HTTP/1.1\r\n"
	  "Host: h\r\n\r\n",
	  COIL_HTTP1_GET, "/forums/1/topics/2375?page=1#posts-17408", 1,
	  KA | HO, 0, 1, { { "Host", "h" } }, 0, 0 },
	{ "get no headers no body (1.0)",
	  "GET /get_no_headers_no_body/world HTTP/1.0\r\n\r\n",
	  COIL_HTTP1_GET, "/get_no_headers_no_body/world", 0, 0, 0, 0,
	  { { 0 } }, 0, 0 },
	{ "get one header no body",
	  "GET /get_one_header_no_body HTTP/1.1\r\nAccept: */*\r\n"
	  "Host: h\r\n\r\n",
	  COIL_HTTP1_GET, "/get_one_header_no_body", 1, KA | HO, 0, 2,
	  { { "Accept", "*/*" }, { "Host", "h" } }, 0, 0 },
	{ "get funky content length body hello",
	  "GET /get_funky_content_length_body_hello HTTP/1.0\r\n"
	  "conTENT-Length: 5\r\n\r\nHELLO",
	  COIL_HTTP1_GET, "/get_funky_content_length_body_hello", 0, CL, 5, 1,
	  { { "conTENT-Length", "5" } }, 0, 0 },
	{ "post identity body world",
	  "POST /post_identity_body_world?q=search#hey HTTP/1.1\r\n"
	  "Accept: */*\r\nHost: h\r\nContent-Length: 5\r\n\r\nWorld",
	  COIL_HTTP1_POST, "/post_identity_body_world?q=search#hey", 1,
	  KA | HO | CL, 5, 3, { { "Accept", "*/*" } }, 0, 0 },
	{ "post chunked all your base",
	  "POST /post_chunked_all_your_base HTTP/1.1\r\nHost: h\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n"
	  "1e\r\nall your base are belong to us\r\n0\r\n\r\n",
	  COIL_HTTP1_POST, "/post_chunked_all_your_base", 1, KA | HO | CH, 0, 2,
	  { { "Host", "h" }, { "Transfer-Encoding", "chunked" } }, 0, 0 },
	{ "two chunks mult zero end",
	  "POST /two_chunks_mult_zero_end HTTP/1.1\r\nHost: h\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n"
	  "5\r\nhello\r\n6\r\n world\r\n000\r\n\r\n",
	  COIL_HTTP1_POST, "/two_chunks_mult_zero_end", 1, KA | HO | CH, 0, 2,
	  { { 0 } }, 0, 0 },
	{ "chunked with trailing headers",
	  "POST /chunked_w_trailing_headers HTTP/1.1\r\nHost: h\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n"
	  "5\r\nhello\r\n6\r\n world\r\n0\r\nVary: *\r\n"
	  "Content-Type: text/plain\r\n\r\n",
	  COIL_HTTP1_POST, "/chunked_w_trailing_headers", 1, KA | HO | CH, 0, 2,
	  { { 0 } }, 0, 0 },
	{ "with quotes",
	  "GET /with_\"stupid\"_quotes?foo=\"bar\" HTTP/1.1\r\nHost: h\r\n\r\n",
	  COIL_HTTP1_GET, "/with_\"stupid\"_quotes?foo=\"bar\"", 1, KA | HO, 0, 1,
	  { { 0 } }, 0, 0 },
	{ "apachebench get",
	  "GET /test HTTP/1.0\r\nHost: 0.0.0.0:5000\r\n"
	  "User-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n",
	  COIL_HTTP1_GET, "/test", 0, HO, 0, 3,
	  { { "Host", "0.0.0.0:5000" }, { "User-Agent", "ApacheBench/2.3" },
	    { "Accept", "*/*" } }, 0, 0 },
	{ "query url with question mark",
	  "GET /test.cgi?foo=bar?baz HTTP/1.1\r\nHost: h\r\n\r\n",
	  COIL_HTTP1_GET, "/test.cgi?foo=bar?baz", 1, KA | HO, 0, 1,
	  { { 0 } }, 0, 0 },
	{ "newline prefix get",
	  "\r\nGET /test HTTP/1.1\r\nHost: h\r\n\r\n",
	  COIL_HTTP1_GET, "/test", 1, KA | HO, 0, 1, { { 0 } }, 0, 0 },
	{ "upgrade request",
	  "GET /demo HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\n"
	  "Sec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\n"
	  "Sec-WebSocket-Protocol: sample\r\nUpgrade: WebSocket\r\n"
	  "Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\n"
	  "Origin: http://example.com\r\n\r\nHot diggity dogg",
	  COIL_HTTP1_GET, "/demo", 1, KA | HO | CU, 0, 7,
	  { { "Host", "example.com" }, { "Connection", "Upgrade" },
	    { "Sec-WebSocket-Key2", "12998 5 Y3 1  .P00" },
	    { "Sec-WebSocket-Protocol", "sample" },
	    { "Upgrade", "WebSocket" },
	    { "Sec-WebSocket-Key1", "4 @1  46546xW%0l 1 5" },
	    { "Origin", "http://example.com" } }, 0, 0 },
	{ "connect request",
	  "CONNECT 0-home0.netscape.com:443 HTTP/1.0\r\n"
	  "User-agent: Mozilla/1.1N\r\n"
	  "Proxy-authorization: basic aGVsbG86d29ybGQ=\r\n\r\n"
	  "some data\r\nand yet even more data",
	  COIL_HTTP1_CONNECT, "0-home0.netscape.com:443", 0, 0, 0, 2,
	  { { "User-agent", "Mozilla/1.1N" },
	    { "Proxy-authorization", "basic aGVsbG86d29ybGQ=" } }, 0, 0 },
	{ "report request",
	  "REPORT /test HTTP/1.1\r\nHost: h\r\n\r\n",
	  COIL_HTTP1_OTHER, "/test", 1, KA | HO, 0, 1, { { 0 } }, 0, 0 },
	{ "host terminated by a query string",
	  "GET http://hypnotoad.org?hail=all HTTP/1.1\r\nHost: h\r\n\r\n",
	  COIL_HTTP1_GET, "http://hypnotoad.org?hail=all", 1, KA | HO, 0, 1,
	  { { 0 } }, 0, 0 },
	{ "host:port terminated by a query string",
	  "GET http://hypnotoad.org:1234?hail=all HTTP/1.1\r\nHost: h\r\n\r\n",
	  COIL_HTTP1_GET, "http://hypnotoad.org:1234?hail=all", 1, KA | HO, 0,
	  1, { { 0 } }, 0, 0 },
	{ "host:port terminated by a space",
	  "GET http://hypnotoad.org:1234 HTTP/1.1\r\nHost: h\r\n\r\n",
	  COIL_HTTP1_GET, "http://hypnotoad.org:1234", 1, KA | HO, 0, 1,
	  { { 0 } }, 0, 0 },
	{ "PATCH request",
	  "PATCH /file.txt HTTP/1.1\r\nHost: www.example.com\r\n"
	  "Content-Type: application/example\r\nIf-Match: \"e0023aa4e\"\r\n"
	  "Content-Length: 10\r\n\r\ncccccccccc",
	  COIL_HTTP1_PATCH, "/file.txt", 1, KA | HO | CL, 10, 4,
	  { { "Host", "www.example.com" },
	    { "Content-Type", "application/example" },
	    { "If-Match", "\"e0023aa4e\"" }, { "Content-Length", "10" } },
	  0, 0 },
	{ "connect caps request",
	  "CONNECT HOME0.NETSCAPE.COM:443 HTTP/1.0\r\n"
	  "User-agent: Mozilla/1.1N\r\n"
	  "Proxy-authorization: basic aGVsbG86d29ybGQ=\r\n\r\n",
	  COIL_HTTP1_CONNECT, "HOME0.NETSCAPE.COM:443", 0, 0, 0, 2, { { 0 } },
	  0, 0 },
	{ "hostname underscore",
	  "CONNECT home_0.netscape.com:443 HTTP/1.0\r\n"
	  "User-agent: Mozilla/1.1N\r\n"
	  "Proxy-authorization: basic aGVsbG86d29ybGQ=\r\n\r\n",
	  COIL_HTTP1_CONNECT, "home_0.netscape.com:443", 0, 0, 0, 2, { { 0 } },
	  0, 0 },
	{ "eat CRLF between requests",
	  "POST / HTTP/1.1\r\nHost: www.example.com\r\n"
	  "Content-Type: application/x-www-form-urlencoded\r\n"
	  "Content-Length: 4\r\n\r\nq=42\r\n",
	  COIL_HTTP1_POST, "/", 1, KA | HO | CL, 4, 3, { { 0 } }, 0, 0 },
	{ "eat CRLF between requests with close",
	  "POST / HTTP/1.1\r\nHost: www.example.com\r\n"
	  "Content-Type: application/x-www-form-urlencoded\r\n"
	  "Content-Length: 4\r\nConnection: close\r\n\r\nq=42\r\n",
	  COIL_HTTP1_POST, "/", 1, HO | CL | CC, 4, 4, { { 0 } }, 0, 0 },
	{ "PURGE request",
	  "PURGE /file.txt HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
	  COIL_HTTP1_OTHER, "/file.txt", 1, KA | HO, 0, 1, { { 0 } }, 0, 0 },
	{ "SEARCH request",
	  "SEARCH / HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
	  COIL_HTTP1_OTHER, "/", 1, KA | HO, 0, 1, { { 0 } }, 0, 0 },
	{ "host with @ in url",
	  "GET http://a%12:b!&*$@hypnotoad.org:1234/toto HTTP/1.1\r\n"
	  "Host: hypnotoad.org:1234\r\n\r\n",
	  COIL_HTTP1_GET, "http://a%12:b!&*$@hypnotoad.org:1234/toto", 1,
	  KA | HO, 0, 1, { { 0 } }, 0, 0 },
	{ "content-length zero",
	  "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
	  COIL_HTTP1_GET, "/", 1, KA | HO | CL, 0, 2, { { 0 } }, 0, 0 },
	{ "link request",
	  "LINK /images/my_dog.jpg HTTP/1.1\r\nHost: example.com\r\n"
	  "Link: <http://example.com/profiles/joe>; rel=\"tag\"\r\n"
	  "Link: <http://example.com/profiles/sally>; rel=\"tag\"\r\n\r\n",
	  COIL_HTTP1_OTHER, "/images/my_dog.jpg", 1, KA | HO, 0, 3,
	  { { "Host", "example.com" },
	    { "Link", "<http://example.com/profiles/joe>; rel=\"tag\"" },
	    { "Link", "<http://example.com/profiles/sally>; rel=\"tag\"" } },
	  0, 0 },
	{ "unlink request",
	  "UNLINK /images/my_dog.jpg HTTP/1.1\r\nHost: example.com\r\n"
	  "Link: <http://example.com/profiles/sally>; rel=\"tag\"\r\n\r\n",
	  COIL_HTTP1_OTHER, "/images/my_dog.jpg", 1, KA | HO, 0, 2, { { 0 } },
	  0, 0 },
	{ "source request",
	  "SOURCE /music/sweet/music HTTP/1.1\r\nHost: example.com\r\n\r\n",
	  COIL_HTTP1_OTHER, "/music/sweet/music", 1, KA | HO, 0, 1, { { 0 } },
	  0, 0 },
	{ "m-search with a path",
	  "M-SEARCH /ssdp HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n"
	  "MAN: \"ssdp:discover\"\r\nST: \"ssdp:all\"\r\n\r\n",
	  COIL_HTTP1_OTHER, "/ssdp", 1, KA | HO, 0, 3,
	  { { "HOST", "239.255.255.250:1900" }, { "MAN", "\"ssdp:discover\"" },
	    { "ST", "\"ssdp:all\"" } }, 0, 0 },

	/* --- RFC 9112 / RFC 9110 semantics ------------------------------- */
	{ "plaintext",
	  "GET /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n",
	  COIL_HTTP1_GET, "/plaintext", 1, KA | HO, 0, 1,
	  { { "Host", "localhost" } }, 0, 0 },
	{ "HEAD", "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n",
	  COIL_HTTP1_HEAD, "/", 1, KA | HO, 0, 1, { { 0 } }, 0, 0 },
	{ "PUT", "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
	  COIL_HTTP1_PUT, "/x", 1, KA | HO | CL, 3, 2, { { 0 } }, 0, 0 },
	{ "DELETE", "DELETE /x HTTP/1.1\r\nHost: h\r\n\r\n",
	  COIL_HTTP1_DELETE, "/x", 1, KA | HO, 0, 1, { { 0 } }, 0, 0 },
	{ "TRACE", "TRACE /x HTTP/1.1\r\nHost: h\r\n\r\n",
	  COIL_HTTP1_TRACE, "/x", 1, KA | HO, 0, 1, { { 0 } }, 0, 0 },
	{ "OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
	  COIL_HTTP1_OPTIONS, "*", 1, KA | HO, 0, 1, { { 0 } }, 0, 0 },
	{ "OPTIONS path", "OPTIONS /a HTTP/1.1\r\nHost: h\r\n\r\n",
	  COIL_HTTP1_OPTIONS, "/a", 1, KA | HO, 0, 1, { { 0 } }, 0, 0 },
	{ "CONNECT 1.1", "CONNECT example.com:443 HTTP/1.1\r\n"
	  "Host: example.com:443\r\n\r\n",
	  COIL_HTTP1_CONNECT, "example.com:443", 1, KA | HO, 0, 1, { { 0 } },
	  0, 0 },
	{ "absolute-form https", "GET https://example.com/a/b?c=d HTTP/1.1\r\n"
	  "Host: example.com\r\n\r\n",
	  COIL_HTTP1_GET, "https://example.com/a/b?c=d", 1, KA | HO, 0, 1,
	  { { 0 } }, 0, 0 },
	{ "unknown method token", "BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n",
	  COIL_HTTP1_OTHER, "/pot", 1, KA | HO, 0, 1, { { 0 } }, 1, 0 },
	{ "methods are case-sensitive", "get / HTTP/1.1\r\nHost: h\r\n\r\n",
	  COIL_HTTP1_OTHER, "/", 1, KA | HO, 0, 1, { { 0 } }, 1, 0 },
	{ "HTTP/1.0 default close", "GET / HTTP/1.0\r\nHost: h\r\n\r\n",
	  COIL_HTTP1_GET, "/", 0, HO, 0, 1, { { 0 } }, 0, 0 },
	{ "HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nHost: h\r\n"
	  "Connection: Keep-Alive\r\n\r\n",
	  COIL_HTTP1_GET, "/", 0, HO | KA | CK, 0, 2, { { 0 } }, 0, 0 },
	{ "HTTP/1.0 keep-alive then close", "GET / HTTP/1.0\r\n"
	  "Connection: keep-alive, close\r\n\r\n",
	  COIL_HTTP1_GET, "/", 0, CK | CC, 0, 1, { { 0 } }, 1, 0 },
	{ "HTTP/1.1 close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
	  COIL_HTTP1_GET, "/", 1, HO | CC, 0, 2, { { 0 } }, 0, 0 },
	{ "Connection list, close last, mixed case",
	  "GET / HTTP/1.1\r\nHost: h\r\nConnection: TE, ,Foo ,  CLOSE \r\n\r\n",
	  COIL_HTTP1_GET, "/", 1, HO | CC, 0, 2,
	  { { "Host", "h" }, { "Connection", "TE, ,Foo ,  CLOSE" } }, 1, 0 },
	{ "Connection: closed is not close",
	  "GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n",
	  COIL_HTTP1_GET, "/", 1, KA | HO, 0, 2, { { 0 } }, 0, 0 },
	{ "two Connection fields",
	  "GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n"
	  "Connection: close\r\n\r\n",
	  COIL_HTTP1_GET, "/", 1, HO | CC | CU, 0, 3, { { 0 } }, 0, 0 },
	{ "HTTP/1.2 reads as 1.1", "GET / HTTP/1.2\r\nHost: h\r\n\r\n",
	  COIL_HTTP1_GET, "/", 1, KA | HO, 0, 1, { { 0 } }, 1, 0 },
	{ "Expect: 100-continue",
	  "PUT /u HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n"
	  "Expect: 100-Continue\r\n\r\n",
	  COIL_HTTP1_PUT, "/u", 1, KA | HO | CL | EC, 10, 3, { { 0 } }, 0, 0 },
	{ "Expect other", "PUT /u HTTP/1.1\r\nHost: h\r\nExpect: tea\r\n\r\n",
	  COIL_HTTP1_PUT, "/u", 1, KA | HO | EO, 0, 2, { { 0 } }, 0, 0 },
	{ "Expect ignored in 1.0",
	  "PUT /u HTTP/1.0\r\nExpect: 100-continue\r\n\r\n",
	  COIL_HTTP1_PUT, "/u", 0, 0, 0, 1, { { 0 } }, 0, 0 },
	{ "duplicate equal Content-Length",
	  "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
	  "Content-Length: 5\r\n\r\nhello",
	  COIL_HTTP1_POST, "/", 1, KA | HO | CL, 5, 3, { { 0 } }, 1, 0 },
	{ "largest Content-Length",
	  "POST / HTTP/1.1\r\nHost: h\r\n"
	  "Content-Length: 18446744073709551615\r\n\r\n",
	  COIL_HTTP1_POST, "/", 1, KA | HO | CL, 18446744073709551615ull, 2,
	  { { 0 } }, 1, 0 },
	{ "Content-Length with leading zeros",
	  "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0005\r\n\r\nhello",
	  COIL_HTTP1_POST, "/", 1, KA | HO | CL, 5, 2, { { 0 } }, 0, 0 },
	{ "Transfer-Encoding case-insensitive",
	  "POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding: ChUnKeD\r\n\r\n",
	  COIL_HTTP1_POST, "/", 1, KA | HO | CH, 0, 2, { { 0 } }, 0, 0 },
	{ "Transfer-Encoding empty list elements",
	  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , chunked ,\r\n\r\n",
	  COIL_HTTP1_POST, "/", 1, KA | HO | CH, 0, 2, { { 0 } }, 1, 0 },
	/* http-parser 2.9 misses "chunked" followed by OWS: a framing
	 * disagreement of the kind smuggling exploits (RFC 9110 5.6.1 says
	 * OWS around list elements is not part of them). */
	{ "Transfer-Encoding after HTAB OWS",
	  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\tchunked\t\r\n\r\n",
	  COIL_HTTP1_POST, "/", 1, KA | HO | CH, 0, 2,
	  { { "Host", "h" }, { "Transfer-Encoding", "chunked" } }, 1, 0 },
	{ "value OWS trimmed, inner kept",
	  "GET / HTTP/1.1\r\nHost: h\r\nX-A: \t a \t b \t \r\n\r\n",
	  COIL_HTTP1_GET, "/", 1, KA | HO, 0, 2,
	  { { "Host", "h" }, { "X-A", "a \t b" } }, 0, 0 },
	{ "empty values",
	  "GET / HTTP/1.1\r\nHost:\r\nX-Empty:   \r\nY:\r\n\r\n",
	  COIL_HTTP1_GET, "/", 1, KA | HO, 0, 3,
	  { { "Host", "" }, { "X-Empty", "" }, { "Y", "" } }, 0, 0 },
	{ "every tchar in a name",
	  "GET / HTTP/1.1\r\nHost: h\r\n!#$%&'*+-.^_`|~09azAZ: x\r\n\r\n",
	  COIL_HTTP1_GET, "/", 1, KA | HO, 0, 2,
	  { { "Host", "h" }, { "!#$%&'*+-.^_`|~09azAZ", "x" } }, 0, 0 },
	{ "obs-text in a value",
	  "GET / HTTP/1.1\r\nHost: h\r\nX-Name: caf\xc3\xa9 \xff\x80\r\n\r\n",
	  COIL_HTTP1_GET, "/", 1, KA | HO, 0, 2,
	  { { "Host", "h" }, { "X-Name", "caf\xc3\xa9 \xff\x80" } }, 0, 0 },
	{ "Host IPv6 literal with port",
	  "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
	  COIL_HTTP1_GET, "/", 1, KA | HO, 0, 1, { { "Host", "[::1]:8080" } },
	  0, 0 },
	{ "pipelined: first head only",
	  "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
	  COIL_HTTP1_GET, "/1", 1, KA | HO, 0, 1, { { 0 } }, 0, 0 },
	{ "several leading empty lines",
	  "\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
	  COIL_HTTP1_GET, "/", 1, KA | HO, 0, 1, { { 0 } }, 0,
	  sizeof("\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n") - 1 },
	{ "long values around SIMD block sizes",
	  "GET /0123456789abcdef0123456789abcdef0123456789abcdef HTTP/1.1\r\n"
	  "Host: h\r\n"
	  "A: 0123456789abcde\r\n"
	  "B: 0123456789abcdef\r\n"
	  "C: 0123456789abcdef0\r\n"
	  "D: 0123456789abcdef0123456789abcde\r\n"
	  "E: 0123456789abcdef0123456789abcdef\r\n"
	  "F: 0123456789abcdef0123456789abcdef0\r\n"
	  "G: \t0123456789\t0123456789\t0123456789\t0123456789\t\r\n\r\n",
	  COIL_HTTP1_GET, "/0123456789abcdef0123456789abcdef0123456789abcdef",
	  1, KA | HO, 0, 8,
	  { { "Host", "h" }, { "A", "0123456789abcde" },
	    { "B", "0123456789abcdef" }, { "C", "0123456789abcdef0" },
	    { "D", "0123456789abcdef0123456789abcde" },
	    { "E", "0123456789abcdef0123456789abcdef" },
	    { "F", "0123456789abcdef0123456789abcdef0" },
	    { "G", "0123456789\t0123456789\t0123456789\t0123456789" } },
	  0, 0 },
	{ "chrome get",
	  "GET /index.html?utm_source=test HTTP/1.1\r\n"
	  "Host: www.example.com\r\n"
	  "Connection: keep-alive\r\n"
	  "sec-ch-ua: \"Chromium\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n"
	  "sec-ch-ua-mobile: ?0\r\n"
	  "sec-ch-ua-platform: \"Linux\"\r\n"
	  "Upgrade-Insecure-Requests: 1\r\n"
	  "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
	  "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n"
	  "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,"
	  "image/avif,image/webp,*/*;q=0.8\r\n"
	  "Sec-Fetch-Site: none\r\n"
	  "Sec-Fetch-Mode: navigate\r\n"
	  "Accept-Encoding: gzip, deflate, br, zstd\r\n"
	  "Accept-Language: en-US,en;q=0.9\r\n"
	  "Cookie: session=0123456789abcdef; theme=dark\r\n\r\n",
	  COIL_HTTP1_GET, "/index.html?utm_source=test", 1, KA | HO | CK, 0, 13,
	  { { "Host", "www.example.com" }, { "Connection", "keep-alive" } },
	  0, 0 },
};

static const struct h1_invalid h1_invalid[] = {
	/* --- request line --------------------------------------------- */
	{ "empty method", " / HTTP/1.1\r\n", 0, COIL_HTTP1_E_BAD_METHOD },
	{ "bad byte in method", "GE(T / HTTP/1.1\r\n", 0,
	  COIL_HTTP1_E_BAD_METHOD },
	{ "HTAB after method", "GET\t/ HTTP/1.1\r\n", 0,
	  COIL_HTTP1_E_BAD_METHOD },
	{ "NUL first", "\0GET / HTTP/1.1\r\n", 17, COIL_HTTP1_E_BAD_METHOD },
	{ "bare LF first", "\nGET / HTTP/1.1\r\n", 0, COIL_HTTP1_E_BAD_METHOD },
	{ "CR without LF first", "\rGET / HTTP/1.1\r\n", 0,
	  COIL_HTTP1_E_BAD_EOL },
	{ "request line is only a method", "GET\r\n", 0,
	  COIL_HTTP1_E_BAD_METHOD },
	{ "two spaces before target", "GET  / HTTP/1.1\r\n", 0,
	  COIL_HTTP1_E_BAD_TARGET },
	{ "HTTP/0.9 request", "GET /\r\n\r\n", 0, COIL_HTTP1_E_BAD_TARGET },
	{ "DEL in target", "GET /a\x7f" "b HTTP/1.1\r\n", 0,
	  COIL_HTTP1_E_BAD_TARGET },
	{ "control byte in target", "GET /a\x01" "b HTTP/1.1\r\n", 0,
	  COIL_HTTP1_E_BAD_TARGET },
	{ "NUL in target", "GET /a\0b HTTP/1.1\r\n", 19,
	  COIL_HTTP1_E_BAD_TARGET },
	{ "HTAB in target", "GET /a\tb HTTP/1.1\r\n", 0,
	  COIL_HTTP1_E_BAD_TARGET },
	{ "utf-8 path request",
	  "GET /\xce\xb4\xc2\xb6/\xce\xb4t/pope?q=1#narf HTTP/1.1\r\n"
	  "Host: github.com\r\n\r\n", 0, COIL_HTTP1_E_BAD_TARGET },
	{ "target not in any form", "GET index.html HTTP/1.1\r\n", 0,
	  COIL_HTTP1_E_BAD_TARGET },
	{ "asterisk-form not OPTIONS", "GET * HTTP/1.1\r\n", 0,
	  COIL_HTTP1_E_BAD_TARGET },
	{ "m-search asterisk",
	  "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n", 0,
	  COIL_HTTP1_E_BAD_TARGET },
	{ "CONNECT origin-form", "CONNECT /a HTTP/1.1\r\n", 0,
	  COIL_HTTP1_E_BAD_TARGET },
	{ "CONNECT without port", "CONNECT example.com HTTP/1.1\r\n", 0,
	  COIL_HTTP1_E_BAD_TARGET },
	{ "scheme starting with a digit", "GET 1http://a/ HTTP/1.1\r\n", 0,
	  COIL_HTTP1_E_BAD_TARGET },
	{ "lowercase http", "GET / http/1.1\r\n", 0,
	  COIL_HTTP1_E_BAD_VERSION },
	{ "HTTPS name", "GET / HTTPS/1.1\r\n", 0, COIL_HTTP1_E_BAD_VERSION },
	{ "no dot", "GET / HTTP/11\r\n", 0, COIL_HTTP1_E_BAD_VERSION },
	{ "no minor", "GET / HTTP/1.\r\n", 0, COIL_HTTP1_E_BAD_VERSION },
	{ "two-digit minor", "GET / HTTP/1.10\r\n", 0,
	  COIL_HTTP1_E_BAD_VERSION },
	{ "letter major", "GET / HTTP/a.1\r\n", 0, COIL_HTTP1_E_BAD_VERSION },
	{ "space after version", "GET / HTTP/1.1 \r\n", 0,
	  COIL_HTTP1_E_BAD_VERSION },
	{ "junk after version", "GET / HTTP/1.1x\r\n", 0,
	  COIL_HTTP1_E_BAD_VERSION },
	{ "space inside target", "GET /a b HTTP/1.1\r\n", 0,
	  COIL_HTTP1_E_BAD_VERSION },
	{ "HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 0,
	  COIL_HTTP1_E_VERSION },
	{ "HTTP/0.9 line", "GET / HTTP/0.9\r\n\r\n", 0, COIL_HTTP1_E_VERSION },
	{ "bare LF after version", "GET / HTTP/1.1\nHost: h\n\n", 0,
	  COIL_HTTP1_E_BAD_EOL },
	{ "bare CR after version", "GET / HTTP/1.1\rHost: h\r\n\r\n", 0,
	  COIL_HTTP1_E_BAD_EOL },

	/* --- field lines ---------------------------------------------- */
	{ "bare LF after a field", "GET / HTTP/1.1\r\nHost: h\n\r\n", 0,
	  COIL_HTTP1_E_BAD_EOL },
	{ "bare LF ending the head", "GET / HTTP/1.1\r\nHost: h\r\n\n", 0,
	  COIL_HTTP1_E_BAD_EOL },
	{ "CR CR LF after a field", "GET / HTTP/1.1\r\nHost: h\r\r\n\r\n", 0,
	  COIL_HTTP1_E_BAD_EOL },
	{ "CR then junk ending the head", "GET / HTTP/1.1\r\nHost: h\r\n\rX",
	  0, COIL_HTTP1_E_BAD_EOL },
	{ "bare CR inside a value", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 0,
	  COIL_HTTP1_E_BAD_EOL },
	{ "empty name", "GET / HTTP/1.1\r\n: v\r\n\r\n", 0,
	  COIL_HTTP1_E_BAD_HEADER_NAME },
	{ "bad byte in name", "GET / HTTP/1.1\r\nX(: v\r\n\r\n", 0,
	  COIL_HTTP1_E_BAD_HEADER_NAME },
	{ "@ in name", "GET / HTTP/1.1\r\nX@Y: v\r\n\r\n", 0,
	  COIL_HTTP1_E_BAD_HEADER_NAME },
	{ "NUL in name", "GET / HTTP/1.1\r\nX\0Y: v\r\n\r\n", 27,
	  COIL_HTTP1_E_BAD_HEADER_NAME },
	{ "non-ASCII name", "GET / HTTP/1.1\r\n\xc3\x84: v\r\n\r\n", 0,
	  COIL_HTTP1_E_BAD_HEADER_NAME },
	{ "field without colon", "GET / HTTP/1.1\r\nHost\r\n\r\n", 0,
	  COIL_HTTP1_E_BAD_HEADER_NAME },
	{ "VT in name (smuggling)",
	  "GET / HTTP/1.1\r\nTransfer-Encoding\x0b: chunked\r\n\r\n", 0,
	  COIL_HTTP1_E_BAD_HEADER_NAME },
	{ "space before colon (smuggling)",
	  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n",
	  0, COIL_HTTP1_E_HEADER_NAME_WS },
	{ "HTAB before colon", "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 0,
	  COIL_HTTP1_E_HEADER_NAME_WS },
	{ "space inside name", "GET / HTTP/1.1\r\nX Y: v\r\n\r\n", 0,
	  COIL_HTTP1_E_HEADER_NAME_WS },
	{ "whitespace before the first field (smuggling)",
	  "POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: h\r\n\r\n",
	  0, COIL_HTTP1_E_OBS_FOLD },
	{ "obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 0,
	  COIL_HTTP1_E_OBS_FOLD },
	{ "obs-fold with HTAB", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n",
	  0, COIL_HTTP1_E_OBS_FOLD },
	{ "folded Transfer-Encoding (smuggling)",
	  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
	  0, COIL_HTTP1_E_OBS_FOLD },
	{ "line folding in header value (llhttp)",
	  "GET / HTTP/1.1\r\nLine1:   abc\r\n\tdef\r\n ghi\r\n\t\tjkl\r\n"
	  "  mno \r\n\t \tqrs\r\nLine2: \t line2\t\r\n\r\n", 0,
	  COIL_HTTP1_E_OBS_FOLD },
	{ "NUL in value", "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 25,
	  COIL_HTTP1_E_BAD_HEADER_CHAR },
	{ "DEL in value", "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", 0,
	  COIL_HTTP1_E_BAD_HEADER_CHAR },
	{ "ESC in value", "GET / HTTP/1.1\r\nX: \x1b[31m\r\n\r\n", 0,
	  COIL_HTTP1_E_BAD_HEADER_CHAR },
	{ "VT after chunked (smuggling)",
	  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\x0b\r\n\r\n",
	  0, COIL_HTTP1_E_BAD_HEADER_CHAR },
	{ "control byte in a long value (SIMD path)",
	  "GET / HTTP/1.1\r\nX: 0123456789abcdef0123456789abcdef0123456789"
	  "\x01" "abcdef\r\n\r\n", 0, COIL_HTTP1_E_BAD_HEADER_CHAR },

	/* --- Host ------------------------------------------------------ */
	{ "missing Host (http-parser dumbluck)",
	  "GET /dumbluck HTTP/1.1\r\naaaaaaaaaaaaa:++++++++++\r\n\r\n", 0,
	  COIL_HTTP1_E_MISSING_HOST },
	{ "missing Host, no fields", "GET / HTTP/1.1\r\n\r\n", 0,
	  COIL_HTTP1_E_MISSING_HOST },
	{ "two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
	  0, COIL_HTTP1_E_DUP_HOST },
	{ "two equal Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
	  0, COIL_HTTP1_E_DUP_HOST },
	{ "space in Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 0,
	  COIL_HTTP1_E_BAD_HOST },
	{ "slash in Host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 0,
	  COIL_HTTP1_E_BAD_HOST },
	{ "userinfo in Host", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 0,
	  COIL_HTTP1_E_BAD_HOST },

	/* --- framing (request smuggling) ------------------------------ */
	{ "CL then TE",
	  "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", 0,
	  COIL_HTTP1_E_CL_AND_TE },
	{ "TE then CL",
	  "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	  "Content-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n", 0,
	  COIL_HTTP1_E_CL_AND_TE },
	{ "identity TE with CL (http-parser post identity)",
	  "POST /post_identity_body_world?q=search#hey HTTP/1.1\r\n"
	  "Accept: */*\r\nTransfer-Encoding: identity\r\n"
	  "Content-Length: 5\r\n\r\nWorld", 0, COIL_HTTP1_E_CL_AND_TE },
	{ "differing Content-Length",
	  "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
	  "Content-Length: 2\r\n\r\n", 0, COIL_HTTP1_E_DUP_CL_DIFFERENT },
	{ "Content-Length list", "POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n",
	  0, COIL_HTTP1_E_BAD_CL },
	{ "Content-Length plus sign", "POST / HTTP/1.1\r\nContent-Length: +1\r\n",
	  0, COIL_HTTP1_E_BAD_CL },
	{ "Content-Length negative", "POST / HTTP/1.1\r\nContent-Length: -1\r\n",
	  0, COIL_HTTP1_E_BAD_CL },
	{ "Content-Length hex", "POST / HTTP/1.1\r\nContent-Length: 0x10\r\n",
	  0, COIL_HTTP1_E_BAD_CL },
	{ "Content-Length with inner space",
	  "POST / HTTP/1.1\r\nContent-Length: 1 2\r\n", 0, COIL_HTTP1_E_BAD_CL },
	{ "Content-Length empty", "POST / HTTP/1.1\r\nContent-Length:\r\n", 0,
	  COIL_HTTP1_E_BAD_CL },
	{ "Content-Length overflow",
	  "POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n", 0,
	  COIL_HTTP1_E_BAD_CL },
	{ "Content-Length far overflow",
	  "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n", 0,
	  COIL_HTTP1_E_BAD_CL },
	{ "TE identity", "POST / HTTP/1.1\r\nHost: h\r\n"
	  "Transfer-Encoding: identity\r\n\r\n", 0, COIL_HTTP1_E_BAD_TE },
	{ "TE chunked then identity", "POST / HTTP/1.1\r\nHost: h\r\n"
	  "Transfer-Encoding: chunked, identity\r\n\r\n", 0,
	  COIL_HTTP1_E_BAD_TE },
	{ "TE chunked twice", "POST / HTTP/1.1\r\nHost: h\r\n"
	  "Transfer-Encoding: chunked, chunked\r\n\r\n", 0, COIL_HTTP1_E_BAD_TE },
	{ "TE chunked in two fields", "POST / HTTP/1.1\r\nHost: h\r\n"
	  "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 0,
	  COIL_HTTP1_E_BAD_TE },
	{ "TE xchunked", "POST / HTTP/1.1\r\nHost: h\r\n"
	  "Transfer-Encoding: xchunked\r\n\r\n", 0, COIL_HTTP1_E_BAD_TE },
	{ "TE chunked with a parameter", "POST / HTTP/1.1\r\nHost: h\r\n"
	  "Transfer-Encoding: chunked;q=1\r\n\r\n", 0, COIL_HTTP1_E_BAD_TE },
	{ "TE quoted", "POST / HTTP/1.1\r\nHost: h\r\n"
	  "Transfer-Encoding: \"chunked\"\r\n\r\n", 0, COIL_HTTP1_E_BAD_TE },
	{ "TE chunked then junk", "POST / HTTP/1.1\r\nHost: h\r\n"
	  "Transfer-Encoding: chunked x\r\n\r\n", 0, COIL_HTTP1_E_BAD_TE },
	{ "TE empty", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n",
	  0, COIL_HTTP1_E_BAD_TE },
	{ "TE in HTTP/1.0", "POST / HTTP/1.0\r\n"
	  "Transfer-Encoding: chunked\r\n\r\n", 0, COIL_HTTP1_E_BAD_TE },
	{ "TE gzip, chunked", "POST / HTTP/1.1\r\nHost: h\r\n"
	  "Transfer-Encoding: gzip, chunked\r\n\r\n", 0,
	  COIL_HTTP1_E_TE_UNSUPPORTED },
	{ "TE gzip;q then chunked in two fields", "POST / HTTP/1.1\r\nHost: h\r\n"
	  "Transfer-Encoding: gzip ; level=1\r\nTransfer-Encoding: chunked\r\n"
	  "\r\n", 0, COIL_HTTP1_E_TE_UNSUPPORTED },
};

/* Valid prefixes: the parser must ask for more, never fail. */
static const char *const h1_partial[] = {
	"",
	"\r",
	"\r\n",
	"G",
	"GET",
	"GET ",
	"GET /",
	"GET / ",
	"GET / HTTP/1",
	"GET / HTTP/1.1",
	"GET / HTTP/1.1\r",
	"GET / HTTP/1.1\r\n",
	"GET / HTTP/1.1\r\nHost",
	"GET / HTTP/1.1\r\nHost:",
	"GET / HTTP/1.1\r\nHost: ",
	"GET / HTTP/1.1\r\nHost: h",
	"GET / HTTP/1.1\r\nHost: h \t",
	"GET / HTTP/1.1\r\nHost: h\r",
	"GET / HTTP/1.1\r\nHost: h\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\n\r",
	"POST / HTTP/1.1\r\nContent-Length: 12",
};

/* Chunked bodies (the part after the head). */
struct h1_chunked {
	const char *name;
	const char *in;
	size_t len;          /* 0: strlen */
	int rc;              /* DONE, NEED_MORE or an error */
	const char *data;    /* decoded bytes (for DONE/NEED_MORE) */
	unsigned ntrailers;
	const char *trailer_name, *trailer_value;  /* the first, if any */
	size_t consumed;     /* for DONE: bytes of the body; 0 = len */
	size_t data_len;     /* 0: strlen(data) */
};

static const struct h1_chunked h1_chunked[] = {
	{ "all your base", "1e\r\nall your base are belong to us\r\n0\r\n\r\n",
	  0, COIL_HTTP1_DONE, "all your base are belong to us", 0, 0, 0, 0, 0 },
	{ "two chunks, triple zero",
	  "5\r\nhello\r\n6\r\n world\r\n000\r\n\r\n", 0, COIL_HTTP1_DONE,
	  "hello world", 0, 0, 0, 0, 0 },
	{ "trailers", "5\r\nhello\r\n6\r\n world\r\n0\r\nVary: *\r\n"
	  "Content-Type: text/plain\r\n\r\n", 0, COIL_HTTP1_DONE,
	  "hello world", 2, "Vary", "*", 0, 0 },
	{ "extensions", "5;name=value;other\r\nhello\r\n"
	  "6 ; a=\"b c\"\t;d\r\n world\r\n0;last\r\n\r\n", 0, COIL_HTTP1_DONE,
	  "hello world", 0, 0, 0, 0, 0 },
	{ "BWS before CRLF", "5 \t\r\nhello\r\n0\r\n\r\n", 0, COIL_HTTP1_DONE,
	  "hello", 0, 0, 0, 0, 0 },
	{ "hex digits both cases", "A\r\n0123456789\r\nb\r\nabcdefghijk\r\n"
	  "0\r\n\r\n", 0, COIL_HTTP1_DONE, "0123456789abcdefghijk", 0, 0, 0, 0, 0 },
	{ "leading zeros", "00000000000000000000005\r\nhello\r\n0\r\n\r\n", 0,
	  COIL_HTTP1_DONE, "hello", 0, 0, 0, 0, 0 },
	{ "next request follows", "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n", 0,
	  COIL_HTTP1_DONE, "abc", 0, 0, 0,
	  sizeof("3\r\nabc\r\n0\r\n\r\n") - 1, 0 },
	{ "binary data with CRLF inside", "6\r\n\r\n\0\r\n\xff\r\n0\r\n\r\n", 16,
	  COIL_HTTP1_DONE, "\r\n\0\r\n\xff", 0, 0, 0, 0, 6 },
	{ "empty trailer value", "0\r\nX:\r\n\r\n", 0, COIL_HTTP1_DONE, "", 1,
	  "X", "", 0, 0 },
	{ "incomplete data", "5\r\nhel", 0, COIL_HTTP1_NEED_MORE, "hel", 0, 0,
	  0, 0, 0 },
	{ "incomplete trailers", "0\r\nX: y\r\n", 0, COIL_HTTP1_NEED_MORE, "",
	  0, 0, 0, 0, 0 },
	{ "largest chunk size", "ffffffffffffffff\r\nabc", 0,
	  COIL_HTTP1_NEED_MORE, "abc", 0, 0, 0, 0, 0 },
	{ "size overflow", "10000000000000000\r\n", 0,
	  COIL_HTTP1_E_CHUNK_OVERFLOW, 0, 0, 0, 0, 0, 0 },
	{ "size overflow, long", "fffffffffffffffff0\r\n", 0,
	  COIL_HTTP1_E_CHUNK_OVERFLOW, 0, 0, 0, 0, 0, 0 },
	{ "not hex", "g\r\n", 0, COIL_HTTP1_E_BAD_CHUNK_SIZE, 0, 0, 0, 0, 0, 0 },
	{ "empty size", "\r\n", 0, COIL_HTTP1_E_BAD_CHUNK_SIZE, 0, 0, 0, 0, 0, 0 },
	{ "negative size", "-1\r\n", 0, COIL_HTTP1_E_BAD_CHUNK_SIZE, 0, 0, 0,
	  0, 0, 0 },
	{ "0x prefix", "0x5\r\nhello\r\n", 0, COIL_HTTP1_E_BAD_CHUNK_SIZE, 0, 0,
	  0, 0, 0, 0 },
	{ "space before size", " 5\r\nhello\r\n", 0,
	  COIL_HTTP1_E_BAD_CHUNK_SIZE, 0, 0, 0, 0, 0, 0 },
	{ "junk after size", "5x\r\nhello\r\n", 0, COIL_HTTP1_E_BAD_CHUNK_SIZE,
	  0, 0, 0, 0, 0, 0 },
	{ "bare LF after size", "5\nhello\r\n0\r\n\r\n", 0,
	  COIL_HTTP1_E_CHUNK_NO_CRLF, 0, 0, 0, 0, 0, 0 },
	{ "CR CR after size", "5\r\rhello", 0, COIL_HTTP1_E_CHUNK_NO_CRLF, 0, 0,
	  0, 0, 0, 0 },
	{ "data longer than size", "5\r\nhelloX\r\n0\r\n\r\n", 0,
	  COIL_HTTP1_E_CHUNK_NO_CRLF, "hello", 0, 0, 0, 0, 0 },
	{ "bare LF after data", "5\r\nhello\n0\r\n\r\n", 0,
	  COIL_HTTP1_E_CHUNK_NO_CRLF, "hello", 0, 0, 0, 0, 0 },
	{ "control byte in extension", "5;a\x01\r\nhello\r\n", 0,
	  COIL_HTTP1_E_BAD_CHUNK_EXT, 0, 0, 0, 0, 0, 0 },
	{ "bare LF in extension (smuggling)", "5;a\nb\r\nhello\r\n", 0,
	  COIL_HTTP1_E_BAD_CHUNK_EXT, 0, 0, 0, 0, 0, 0 },
	{ "bare CR in extension", "5;a\rb\r\nhello\r\n", 0,
	  COIL_HTTP1_E_CHUNK_NO_CRLF, 0, 0, 0, 0, 0, 0 },
	{ "obs-fold in trailers", "0\r\nX: a\r\n b\r\n\r\n", 0,
	  COIL_HTTP1_E_OBS_FOLD, "", 0, 0, 0, 0, 0 },
	{ "space before colon in trailers", "0\r\nX : a\r\n\r\n", 0,
	  COIL_HTTP1_E_HEADER_NAME_WS, "", 0, 0, 0, 0, 0 },
	{ "bad byte in trailer value", "0\r\nX: a\x7f\r\n\r\n", 0,
	  COIL_HTTP1_E_BAD_HEADER_CHAR, "", 0, 0, 0, 0, 0 },
	{ "bare LF ending trailers", "0\r\n\n", 0, COIL_HTTP1_E_BAD_EOL, "", 0,
	  0, 0, 0, 0 },
};

#endif
