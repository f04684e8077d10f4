/* SPDX-License-Identifier: MIT */
#ifndef COIL_HTTP1_H
#define COIL_HTTP1_H

/*
 * HTTP/1.1 (RFC 9112) request parsing and response writing, usable from a
 * protocol's on_data:
 *
 *  - coil_http1_parse(): an incremental, zero-copy, allocation-free request
 *    head parser. It is given the unconsumed input from the start of the
 *    request each time (exactly what on_data re-offers: the same bytes
 *    followed by new ones, contiguous) and remembers how far it scanned, so
 *    no byte is examined twice however the input is split. The result never
 *    depends on the split.
 *  - coil_http1_body_read(): the request body, Content-Length or chunked
 *    (with trailers), yielding slices of the input.
 *  - coil_http1_out_*(): a response head (status line, headers, cached Date,
 *    framing, keep-alive) written into a caller buffer.
 *
 * Nothing here allocates, takes locks or keeps global state, except the
 * once-detected CPU features. Every object belongs to one thread at a time
 * (in coil: the connection's loop); distinct objects may be used on
 * distinct threads at once.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A byte range inside the caller's input (zero copy), not NUL-terminated.
 * Valid as long as the input it was parsed from. */
struct coil_http1_str {
	const char *ptr;
	size_t len;
};

/* One header (or trailer) field line. */
struct coil_http1_header {
	struct coil_http1_str name;   /* a token, case as sent */
	struct coil_http1_str value;  /* without leading/trailing SP and HTAB */
	uint32_t name_off, value_off; /* private: offsets while parsing */
};

/*
 * Results. coil_http1_parse() returns the head length (> 0) when complete;
 * coil_http1_body_read() returns COIL_HTTP1_DATA or COIL_HTTP1_DONE.
 * Both return COIL_HTTP1_NEED_MORE (0) for "valid so far, give me more"
 * and a negative enum coil_http1_error for input that can never become
 * valid (answer with coil_http1_error_status() and close).
 */
enum {
	COIL_HTTP1_NEED_MORE = 0,
	COIL_HTTP1_DATA = 1,
	COIL_HTTP1_DONE = 2,
};

/*
 * Parse errors have a range of their own, below every -errno (Linux's are
 * -4095..-1), so that one is never read as an errno (-EINVAL, -ENOSPC of
 * the coil_http1_out_* calls) or passed to strerror(): name them with
 * coil_http1_strerror(). COIL_HTTP1_E_LAST <= err <= COIL_HTTP1_E_FIRST.
 */
enum coil_http1_error {   /* -4096 - n */
	COIL_HTTP1_E_BAD_METHOD = -4097,    /* not a token, or empty */
	COIL_HTTP1_E_BAD_TARGET = -4098,    /* bad byte or form in the target */
	COIL_HTTP1_E_BAD_VERSION = -4099,   /* not HTTP/d.d */
	COIL_HTTP1_E_VERSION = -4100,       /* major version != 1 (505) */
	COIL_HTTP1_E_BAD_EOL = -4101,       /* bare CR or LF, not CRLF */
	COIL_HTTP1_E_BAD_HEADER_NAME = -4102, /* not a token, or empty */
	COIL_HTTP1_E_HEADER_NAME_WS = -4103, /* whitespace before the colon */
	COIL_HTTP1_E_OBS_FOLD = -4104,      /* a line starting with SP/HTAB */
	COIL_HTTP1_E_BAD_HEADER_CHAR = -4105, /* a control byte in a value */
	COIL_HTTP1_E_MISSING_HOST = -4106,  /* HTTP/1.1 without Host */
	COIL_HTTP1_E_DUP_HOST = -4107,      /* more than one Host */
	COIL_HTTP1_E_BAD_HOST = -4108,      /* Host value not uri-host[:port] */
	COIL_HTTP1_E_CL_AND_TE = -4109,     /* Content-Length and
					       Transfer-Encoding */
	COIL_HTTP1_E_DUP_CL_DIFFERENT = -4110, /* Content-Lengths that differ */
	COIL_HTTP1_E_BAD_CL = -4111,        /* not 1*DIGIT, or overflow */
	COIL_HTTP1_E_BAD_TE = -4112,        /* chunked not last/once, or 1.0 */
	COIL_HTTP1_E_TE_UNSUPPORTED = -4113, /* a coding besides chunked
						 (501) */
	COIL_HTTP1_E_TOO_MANY_HEADERS = -4114, /* over max_headers (431) */
	COIL_HTTP1_E_LINE_TOO_LONG = -4115, /* request line (414) */
	COIL_HTTP1_E_HEAD_TOO_LARGE = -4116, /* header/trailer section (431) */
	COIL_HTTP1_E_BAD_CHUNK_SIZE = -4117, /* no hex digit, or junk after */
	COIL_HTTP1_E_CHUNK_OVERFLOW = -4118, /* chunk size over 2^64 - 1 */
	COIL_HTTP1_E_BAD_CHUNK_EXT = -4119, /* control byte in an extension */
	COIL_HTTP1_E_CHUNK_NO_CRLF = -4120, /* size line/data not ended
						 by CRLF */
	COIL_HTTP1_E_CHUNK_LINE_TOO_LONG = -4121, /* size line over 4 KiB */
	COIL_HTTP1_E_INPUT = -4122,         /* caller bug: input shorter than
					       what was already scanned */
	COIL_HTTP1_E_BAD_STATUS = -4123,    /* response: status not 3 digits in
					       100..999, or bad reason */
	COIL_HTTP1_E_FIRST = COIL_HTTP1_E_BAD_METHOD,
	COIL_HTTP1_E_LAST = COIL_HTTP1_E_BAD_STATUS,
};

/* Is `rc` (a result of the parse/read calls) an enum coil_http1_error? */
static inline bool coil_http1_is_error(int rc)
{
	return rc >= COIL_HTTP1_E_LAST && rc <= COIL_HTTP1_E_FIRST;
}

/* A short fixed description of a parse error ("bad method"); "unknown
 * error" for any other value (an errno included: use strerror for those).
 * Any thread. */
const char *coil_http1_strerror(int err);

/* The status to answer an error with: 400, 414, 431, 501 or 505 (400 for
 * an unknown negative value); 0 for a non-negative value. Any thread. */
int coil_http1_error_status(int err);

/* Methods recognized by name (case-sensitive, RFC 9110 9.1). Any other
 * token is COIL_HTTP1_OTHER: valid syntax, for the caller to answer 501. */
enum coil_http1_method {
	COIL_HTTP1_OTHER = 0,
	COIL_HTTP1_GET,
	COIL_HTTP1_HEAD,
	COIL_HTTP1_POST,
	COIL_HTTP1_PUT,
	COIL_HTTP1_DELETE,
	COIL_HTTP1_CONNECT,
	COIL_HTTP1_OPTIONS,
	COIL_HTTP1_TRACE,
	COIL_HTTP1_PATCH,
};

/* Facts derived from the head (coil_http1_request.flags). */
enum {
	COIL_HTTP1_F_CONTENT_LENGTH = 1u << 0,  /* content_length is valid */
	COIL_HTTP1_F_CHUNKED = 1u << 1,         /* Transfer-Encoding: chunked */
	COIL_HTTP1_F_KEEP_ALIVE = 1u << 2,      /* the connection persists:
						   1.1 without "close", or 1.0
						   with "keep-alive" */
	COIL_HTTP1_F_EXPECT_CONTINUE = 1u << 3, /* 1.1 Expect: 100-continue */
	COIL_HTTP1_F_EXPECT_OTHER = 1u << 4,    /* another Expect (417) */
	COIL_HTTP1_F_HOST = 1u << 5,            /* a Host field was present */
	COIL_HTTP1_F_CONN_CLOSE = 1u << 6,      /* Connection tokens, */
	COIL_HTTP1_F_CONN_KEEP_ALIVE = 1u << 7, /* case-insensitive, from */
	COIL_HTTP1_F_CONN_UPGRADE = 1u << 8,    /* comma lists */
	COIL_HTTP1_F_CLOSE_DELIMITED = 1u << 9, /* response only: the body
						   runs until the server
						   closes (no length, not
						   chunked) */
};

/* Defaults for zero fields of struct coil_http1_limits. */
#define COIL_HTTP1_DEFAULT_MAX_REQUEST_LINE 8192u
#define COIL_HTTP1_DEFAULT_MAX_HEAD 8192u
#define COIL_HTTP1_DEFAULT_MAX_HEADERS 64u
/* A chunk-size line (size and extensions) longer than this is an error. */
#define COIL_HTTP1_MAX_CHUNK_LINE 4096u

/* Parser limits; zero fields take the defaults. Copied at init. */
struct coil_http1_limits {
	size_t sz;                 /* sizeof(struct coil_http1_limits) */
	uint32_t max_request_line; /* bytes, CRLF (and leading empty lines)
				      included; over it: LINE_TOO_LONG (414) */
	uint32_t max_head;         /* bytes of the header section after the
				      request line, final CRLF included (and
				      of a trailer section); HEAD_TOO_LARGE */
	uint32_t max_headers;      /* field lines; TOO_MANY_HEADERS */
};

/* A parsed request head. Slices point into the input given to the call
 * that completed it. */
struct coil_http1_request {
	enum coil_http1_method method;
	unsigned version_minor;          /* 0 or 1 (1.2-1.9 report 1) */
	unsigned flags;                  /* COIL_HTTP1_F_* */
	struct coil_http1_str method_name;
	struct coil_http1_str target;    /* as sent: no decoding */
	struct coil_http1_str host;      /* the Host value; ptr NULL if none */
	struct coil_http1_header *headers; /* the array given to init */
	unsigned nheaders;
	uint64_t content_length;         /* with F_CONTENT_LENGTH, else 0 */
	size_t head_len;                 /* bytes of the head, final CRLF
					    included: the body starts here */
};

/* Private: the field-line machine shared by headers and trailers. */
struct coil__http1_fields {
	struct coil_http1_header *hdrs;
	uint32_t cap;      /* entries in hdrs (may be 0 for trailers) */
	uint32_t max;      /* most field lines accepted */
	uint32_t n;        /* field lines so far */
	uint32_t pos;      /* scan offset */
	uint32_t limit;    /* offset where the section must have ended */
	uint32_t mark;     /* name start of the current line */
	uint32_t name_len;
	uint32_t value_off;
	uint8_t state;
};

/* An incremental request parser: embed one per connection. Fields are
 * private. */
struct coil_http1_parser {
	struct coil__http1_fields f;
	uint32_t max_line, max_head;
	uint32_t pos;                 /* request line scan offset */
	uint32_t method_off, method_len, target_off, target_len;
	uint32_t host_off, host_len;
	uint64_t content_length;
	unsigned flags;
	int err;                      /* sticky error, 0 if none */
	uint8_t state, vidx, major, minor, method, nhost, te;
};

/*
 * Prepare `p` for a connection. `limits` may be NULL (defaults); it is
 * copied. `headers` is an array of `cap` entries owned by the caller that
 * receives the field lines; it must outlive the parser's use. At most
 * min(cap, limits->max_headers) header lines are accepted. Never fails.
 */
void coil_http1_parser_init(struct coil_http1_parser *p,
			    const struct coil_http1_limits *limits,
			    struct coil_http1_header *headers, unsigned cap);

/* Forget a partially parsed request (the parser is reset by itself after a
 * complete one; errors are sticky until this). */
void coil_http1_parser_reset(struct coil_http1_parser *p);

/*
 * Parse the request head at the start of `buf` (`len` bytes, not
 * NUL-terminated; never read past `len`). After COIL_HTTP1_NEED_MORE, call
 * again with the same bytes followed by more (their address may differ).
 *
 * Returns the head length (> 0) and fills `*req` when the head is complete;
 * bytes after it (body, pipelined requests) are untouched, and the parser
 * is ready for the next request, which the caller passes from its first
 * byte. Returns COIL_HTTP1_NEED_MORE or a negative enum coil_http1_error
 * (then the connection must be closed after the error response; the error
 * repeats until coil_http1_parser_reset). `req` is only written on
 * success; its slices point into `buf`.
 */
int coil_http1_parse(struct coil_http1_parser *p, const void *buf,
		     size_t len, struct coil_http1_request *req);

/*
 * A request body reader: Content-Length bytes or chunked framing with
 * trailers. Embed one per connection; public fields are read-only.
 */
struct coil_http1_body {
	uint64_t received;   /* body bytes returned so far */
	uint64_t announced;  /* bytes promised: the Content-Length, or the
				sum of the chunk sizes read so far. Compare it
				with a maximum body size (413) after any call:
				it grows before the data arrives. */
	unsigned ntrailers;  /* trailer fields stored, after DONE */
	/* private */
	struct coil__http1_fields tr;
	uint64_t remaining;
	uint32_t line;
	int err;
	uint8_t mode, state;
};

/*
 * Prepare `b` for the body of `req` (Content-Length, chunked, or none: then
 * the first read returns DONE). Trailer fields go into `trailers` (`cap`
 * entries, may be NULL/0: validated and counted against the limits, not
 * stored). `limits` may be NULL (defaults; max_head and max_headers apply
 * to the trailer section). Never fails.
 */
void coil_http1_body_init(struct coil_http1_body *b,
			  const struct coil_http1_request *req,
			  const struct coil_http1_limits *limits,
			  struct coil_http1_header *trailers, unsigned cap);

/*
 * Read body bytes from the start of `buf` (`len` bytes: the unconsumed
 * input after the head). Sets `*consumed` (always) to the bytes the caller
 * may drop; the rest must be passed again, followed by new input, next
 * time. Returns:
 *  COIL_HTTP1_DATA       `*data` is a slice of body bytes inside the
 *                        consumed part of `buf`; call again for more.
 *  COIL_HTTP1_NEED_MORE  everything usable was consumed (framing only).
 *  COIL_HTTP1_DONE       the body (and chunked trailers: in `trailers`,
 *                        slices of `buf`) ended; input after it is the next
 *                        request.
 *  < 0                   enum coil_http1_error (400): close.
 */
int coil_http1_body_read(struct coil_http1_body *b, const void *buf,
			 size_t len, struct coil_http1_str *data,
			 size_t *consumed);

/*
 * The HTTP Date header value (IMF-fixdate, RFC 9110 5.6.7), cached: keep
 * one per loop and call coil_http1_date_update() with the loop's clock; the
 * text is regenerated only when the second changes. No global state, no
 * locks: one thread per object.
 */
#define COIL_HTTP1_DATE_LEN 29  /* "Sun, 06 Nov 1994 08:49:37 GMT" */
struct coil_http1_date {
	int64_t sec;                     /* private: second of `str` */
	char str[COIL_HTTP1_DATE_LEN + 1]; /* NUL-terminated */
};

/* Start with no cached value. */
void coil_http1_date_init(struct coil_http1_date *d);

/* Make `d->str` the date of `unix_sec` (seconds since 1970, UTC) and return
 * it. Formats only when the second differs from the cached one. */
const char *coil_http1_date_update(struct coil_http1_date *d,
				   int64_t unix_sec);

/*
 * A response head (or chunk framing) written into a caller buffer. Errors
 * are sticky: write everything, then check coil_http1_out_end(). Values
 * containing CR, LF or other control bytes (except HTAB) are refused
 * (-EINVAL), so header injection cannot split a response.
 */
struct coil_http1_out {
	char *buf;
	size_t cap;
	size_t len;  /* bytes written so far */
	int err;     /* 0, -ENOSPC or -EINVAL */
};

/* Write into `buf` (`cap` bytes, caller-owned). */
void coil_http1_out_init(struct coil_http1_out *o, void *buf, size_t cap);

/* The standard reason phrase of `status` ("Not Found"), or "" if none. */
const char *coil_http1_reason(int status);

/* "HTTP/1.1 <status> <reason>\r\n"; `reason` NULL means the standard one.
 * `status` must be 100..999 (-EINVAL otherwise). HTTP/1.1 is sent to 1.0
 * clients too (RFC 9110 6.2: the highest version the server supports). */
void coil_http1_out_status(struct coil_http1_out *o, int status,
			   const char *reason);

/* "<name>: <value>\r\n". `name` is NUL-terminated and must be a token. */
void coil_http1_out_header(struct coil_http1_out *o, const char *name,
			   const char *value, size_t value_len);

/* "<name>: <decimal>\r\n". */
void coil_http1_out_header_u64(struct coil_http1_out *o, const char *name,
			       uint64_t value);

/* "Date: <d->str>\r\n" (call coil_http1_date_update first). */
void coil_http1_out_date(struct coil_http1_out *o,
			 const struct coil_http1_date *d);

/* "Content-Length: <n>\r\n". */
void coil_http1_out_content_length(struct coil_http1_out *o, uint64_t n);

/* "Transfer-Encoding: chunked\r\n" (then frame the body with the chunk
 * helpers; HTTP/1.1 clients only). */
void coil_http1_out_chunked(struct coil_http1_out *o);

/* What the connection does next, for a request of `version_minor`: a 1.1
 * close sends "Connection: close", a 1.0 keep-alive sends "Connection:
 * keep-alive"; the defaults send nothing. */
void coil_http1_out_connection(struct coil_http1_out *o,
			       unsigned version_minor, bool keep_alive);

/* Raw bytes (a body, a pre-rendered header block). */
void coil_http1_out_bytes(struct coil_http1_out *o, const void *data,
			  size_t len);

/* Chunked framing: "<hex size>\r\n" before `size` (> 0) data bytes, CRLF
 * after them, and the last chunk "0\r\n" followed by optional trailer
 * headers (coil_http1_out_header) and coil_http1_out_end(). */
void coil_http1_out_chunk(struct coil_http1_out *o, uint64_t size);
void coil_http1_out_chunk_end(struct coil_http1_out *o);
void coil_http1_out_last_chunk(struct coil_http1_out *o);

/* End the head (or trailers) with the empty line. Returns the bytes
 * written in total (>= 0), or -ENOSPC / -EINVAL if any step failed. */
int coil_http1_out_end(struct coil_http1_out *o);

/* The bytes written so far, or the sticky error. */
static inline int coil_http1_out_result(const struct coil_http1_out *o)
{
	return o->err ? o->err : (int)o->len;
}

/*
 * Client side: HTTP/1.x response heads, for load generators and proxies.
 * The body is read with coil_http1_body_read() after
 * coil_http1_response_body_init().
 */
struct coil_http1_response {
	unsigned version_minor;          /* HTTP/1.<minor> */
	int status;                      /* 100..999 */
	unsigned flags;                  /* COIL_HTTP1_F_CONTENT_LENGTH,
					    _CHUNKED, _KEEP_ALIVE,
					    _CONN_CLOSE, _CONN_KEEP_ALIVE,
					    _CONN_UPGRADE, _CLOSE_DELIMITED */
	struct coil_http1_str reason;    /* may be empty */
	struct coil_http1_header *headers; /* the caller's array */
	unsigned nheaders;               /* stored (at most cap) */
	uint64_t content_length;         /* with F_CONTENT_LENGTH, else 0; 0
					    also when the response has no
					    body (HEAD, 1xx, 204, 304) */
	size_t head_len;                 /* bytes of the head, final CRLF
					    included: the body starts here */
};

/*
 * Parse the response head at the start of `buf` (`len` bytes: everything
 * unconsumed since the previous response). Not resumable: pass the whole
 * head again, with more bytes, after NEED_MORE (heads are small; the work
 * is bounded by max_head). The result never depends on how the input was
 * split. `head_request` says the request was HEAD (then there is no body,
 * whatever the headers announce; so for 1xx, 204 and 304). Header lines
 * go into `hdrs` (`cap` entries, may be NULL/0: then only the framing
 * headers are looked at). `limits` may be NULL: max_request_line bounds
 * the status line, max_head the header section, max_headers their count.
 * Returns the head length (> 0), COIL_HTTP1_NEED_MORE (0), or a negative
 * enum coil_http1_error: BAD_VERSION / VERSION (not HTTP/1.x), BAD_STATUS,
 * BAD_EOL, BAD_HEADER_NAME, HEADER_NAME_WS, OBS_FOLD, BAD_HEADER_CHAR,
 * BAD_CL, DUP_CL_DIFFERENT, CL_AND_TE, LINE_TOO_LONG, HEAD_TOO_LARGE,
 * TOO_MANY_HEADERS. `*r` is cleared first: after anything but a head
 * length it holds no flag, length or header of an earlier response.
 * Slices point into `buf`. No allocation; any thread.
 */
int coil_http1_response_parse(const void *buf, size_t len, bool head_request,
			      struct coil_http1_response *r,
			      struct coil_http1_header *hdrs, unsigned cap,
			      const struct coil_http1_limits *limits);

/* Prepare `b` for the body of `r` (Content-Length or chunked; a response
 * without a body, or a close-delimited one, reads as DONE at once: the
 * caller reads a F_CLOSE_DELIMITED body to EOF itself). Trailers and
 * limits as for coil_http1_body_init(). Never fails. */
void coil_http1_response_body_init(struct coil_http1_body *b,
				   const struct coil_http1_response *r,
				   const struct coil_http1_limits *limits,
				   struct coil_http1_header *trailers,
				   unsigned cap);

/* ---- byte helpers (http1_util.c); no state, any thread ---- */

/* The value of the hex digit `c` (either case): 0..15, or -1. */
int coil_http1_hexval(int c);

/* Is `c` a token byte (RFC 9110 5.6.2 tchar)? */
bool coil_http1_is_tchar(unsigned char c);

/* Write `v` in decimal at `p`, without a NUL (at most 20 bytes: the caller
 * has room). Returns the byte after the last digit. */
char *coil_http1_put_u64(char *p, uint64_t v);

/* An HTTP-date in IMF-fixdate form ("Sun, 06 Nov 1994 08:49:37 GMT",
 * exactly COIL_HTTP1_DATE_LEN bytes; the obsolete forms are refused, as RFC
 * 9110 13.1 lets a conditional with an unparsable date be ignored) ->
 * seconds since 1970 (UTC), or -1 when `s` is not one. */
int64_t coil_http1_parse_date(const char *s, size_t n);

#endif
