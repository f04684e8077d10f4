/* SPDX-License-Identifier: MIT */
/*
 * Static files under --root.
 *
 * Every path is resolved by the kernel with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_MAGICLINKS) against the root's descriptor, after route.c
 * decoded and normalized it: no "..", encoded or not, and no symlink (to
 * /etc, or ../secret) leads out of the root. Directories serve their
 * index.html. Responses carry Content-Type by extension, an ETag
 * (inode-size-mtime) and Last-Modified, and honour the preconditions in
 * RFC 9110 13.2.2 order: If-Match / If-Unmodified-Since (412), then
 * If-None-Match / If-Modified-Since (304), then Range with one byte range
 * (206, 416; several ranges get the whole file, which RFC 9110 allows)
 * under If-Range.
 *
 * Files up to a size limit live in a per-loop response cache (files_cache.c),
 * so a hot small file costs no system call: its head is staged with the
 * other responses and its body goes out from the cache without a copy,
 * pinned by the connection until its queued output drained. Larger files go
 * out with coil_conn_sendfile (splice/sendfile: never through user space).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Returns a descriptor or -errno. */
int httpd__open_beneath(int rootfd, const char *rel, int flags)
{
	struct open_how how = {
		/* openat2 refuses flags O_PATH ignores: no O_NOCTTY there */
		.flags = (uint64_t)(flags | O_CLOEXEC |
				    (flags & O_PATH ? 0 : O_NOCTTY)),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));

	return fd < 0 ? -errno : (int)fd;
}

int httpd__files_open_root(struct coil_http_server *h)
{
	int fd = open(h->cfg.root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int probe;

	if (fd < 0)
		return -errno;
	/* openat2 is Linux 5.6+; without it there is no safe way in. */
	probe = httpd__open_beneath(fd, ".", O_PATH);
	if (probe < 0) {
		close(fd);
		return probe;
	}
	close(probe);
	h->rootfd = fd;
	return 0;
}

/* ---- Content-Type ---- */

static const struct {
	const char *ext;
	const char *type;
} mime[] = {
	{ "html", "text/html; charset=utf-8" },
	{ "htm", "text/html; charset=utf-8" },
	{ "css", "text/css; charset=utf-8" },
	{ "js", "text/javascript; charset=utf-8" },
	{ "mjs", "text/javascript; charset=utf-8" },
	{ "json", "application/json" },
	{ "map", "application/json" },
	{ "txt", "text/plain; charset=utf-8" },
	{ "md", "text/markdown; charset=utf-8" },
	{ "csv", "text/csv; charset=utf-8" },
	{ "xml", "application/xml" },
	{ "svg", "image/svg+xml" },
	{ "png", "image/png" },
	{ "jpg", "image/jpeg" },
	{ "jpeg", "image/jpeg" },
	{ "gif", "image/gif" },
	{ "webp", "image/webp" },
	{ "avif", "image/avif" },
	{ "ico", "image/x-icon" },
	{ "wasm", "application/wasm" },
	{ "pdf", "application/pdf" },
	{ "woff", "font/woff" },
	{ "woff2", "font/woff2" },
	{ "ttf", "font/ttf" },
	{ "otf", "font/otf" },
	{ "mp4", "video/mp4" },
	{ "webm", "video/webm" },
	{ "mp3", "audio/mpeg" },
	{ "ogg", "audio/ogg" },
	{ "wav", "audio/wav" },
	{ "zip", "application/zip" },
	{ "gz", "application/gzip" },
	{ "tar", "application/x-tar" },
};

const char *httpd__mime_type(const char *path, size_t len)
{
	size_t i = len, n;

	while (i > 0 && path[i - 1] != '.' && path[i - 1] != '/')
		i--;
	if (i == 0 || path[i - 1] != '.')
		return "application/octet-stream";
	n = len - i;
	for (size_t k = 0; k < sizeof(mime) / sizeof(mime[0]); k++)
		if (strlen(mime[k].ext) == n &&
		    !strncasecmp(path + i, mime[k].ext, n))
			return mime[k].type;
	return "application/octet-stream";
}

/* ---- validators ---- */

void httpd__fill_validators(char *etag, size_t etag_cap, char *lastmod,
			    const struct stat *st)
{
	struct coil_http1_date d;

	snprintf(etag, etag_cap, "\"%llx-%llx-%llx\"",
		 (unsigned long long)st->st_ino,
		 (unsigned long long)st->st_size,
		 (unsigned long long)st->st_mtim.tv_sec * 1000000000ull +
			 (unsigned long long)st->st_mtim.tv_nsec);
	coil_http1_date_init(&d);
	memcpy(lastmod, coil_http1_date_update(&d, st->st_mtim.tv_sec),
	       COIL_HTTP1_DATE_LEN + 1);
}

/* ---- conditionals and ranges ---- */

/* A representation to send: a cache entry, or an open file. */
struct rep {
	uint64_t size;
	int64_t mtime;
	const char *etag;
	const char *lastmod;
	const char *ctype;
	struct httpd__centry *e;
	int fd;
};

/* The conditional and range header fields of a request. A list field
 * (If-Match, If-None-Match) may come in several lines: `im`/`inm` point at
 * the first, the matchers read them all. A field that must hold one value
 * (a date, If-Range, Range) and came more than once reads as a list, which
 * RFC 9110 says to treat as invalid: its pointer is set and `*_many` too. */
struct conds {
	const struct coil_http1_str *im, *ius, *inm, *ims, *range, *if_range;
	bool ius_many, ims_many, range_many, if_range_many;
};

static bool name_is(const struct coil_http1_header *h, const char *name,
		    size_t n)
{
	return h->name.len == n && !strncasecmp(h->name.ptr, name, n);
}

static void note(const struct coil_http1_str **slot, bool *many,
		 const struct coil_http1_str *v)
{
	if (*slot && many)
		*many = true;
	else if (!*slot)
		*slot = v;
}

static void scan_conds(const struct coil_http1_request *req, struct conds *k)
{
	memset(k, 0, sizeof(*k));
	for (unsigned i = 0; i < req->nheaders; i++) {
		const struct coil_http1_header *h = &req->headers[i];

		/* Only fields starting "If-" or "Range" matter: most
		 * requests have none, and this is one compare per field. */
		if (h->name.len < 5 || ((h->name.ptr[0] | 0x20) != 'i' &&
					(h->name.ptr[0] | 0x20) != 'r'))
			continue;
		if (name_is(h, "Range", 5))
			note(&k->range, &k->range_many, &h->value);
		else if (name_is(h, "If-Range", 8))
			note(&k->if_range, &k->if_range_many, &h->value);
		else if (name_is(h, "If-Match", 8))
			note(&k->im, NULL, &h->value);
		else if (name_is(h, "If-None-Match", 13))
			note(&k->inm, NULL, &h->value);
		else if (name_is(h, "If-Modified-Since", 17))
			note(&k->ims, &k->ims_many, &h->value);
		else if (name_is(h, "If-Unmodified-Since", 19))
			note(&k->ius, &k->ius_many, &h->value);
	}
}

/* One field line of If-Match / If-None-Match: "*" or a list of entity
 * tags. Strong comparison (If-Match, RFC 9110 8.8.3.2): a weak tag never
 * matches; weak comparison (If-None-Match): W/ is ignored. `etag` is ours,
 * always strong. */
static bool etag_line_match(const struct coil_http1_str *v, const char *etag,
			    bool strong)
{
	const char *p = v->ptr, *end = p + v->len;
	size_t elen = strlen(etag);

	while (p < end) {
		const char *q;
		bool weak = false;

		while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
			p++;
		if (p == end)
			break;
		if (*p == '*')
			return true;
		if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
			weak = true;
			p += 2;
		}
		if (p < end && *p == '"') {
			q = memchr(p + 1, '"', (size_t)(end - p - 1));
			if (!q)
				return false;
			if (!(strong && weak) && (size_t)(q + 1 - p) == elen &&
			    !memcmp(p, etag, elen))
				return true;
			p = q + 1;
		} else {
			while (p < end && *p != ',')
				p++;
		}
	}
	return false;
}

/* Every line of the list field `first` points at (the first line named
 * `name`). */
static bool etag_match(const struct coil_http1_request *req,
		       const struct coil_http1_str *first, const char *name,
		       const char *etag, bool strong)
{
	size_t n = strlen(name);
	bool seen = false;

	for (unsigned i = 0; i < req->nheaders; i++) {
		const struct coil_http1_header *h = &req->headers[i];

		if (&h->value == first)
			seen = true;
		if (seen && name_is(h, name, n) &&
		    etag_line_match(&h->value, etag, strong))
			return true;
	}
	return false;
}

/* An HTTP-date field, or -1 when it is absent, repeated or not a date
 * (then RFC 9110 13.1.3/13.1.4 say to ignore it). */
static int64_t cond_date(const struct coil_http1_str *v, bool many)
{
	return v && !many ? coil_http1_parse_date(v->ptr, v->len) : -1;
}

/* If-Range (RFC 9110 13.1.5): a strong entity tag equal to ours, or a date
 * equal to Last-Modified where that is a strong validator (the file is at
 * least a second older than the response's Date). A weak tag, a list or
 * anything else: false, the whole representation is sent. */
static bool if_range_ok(const struct conds *k, const struct rep *r,
			int64_t now_sec)
{
	const struct coil_http1_str *v = k->if_range;
	int64_t t;

	if (k->if_range_many)
		return false;
	if (v->len && v->ptr[0] == '"')
		return v->len == strlen(r->etag) &&
		       !memcmp(v->ptr, r->etag, v->len);
	t = coil_http1_parse_date(v->ptr, v->len);
	return t >= 0 && t == r->mtime && now_sec - r->mtime >= 1;
}

/* RFC 9110 13.2.2, steps 1-4, for GET and HEAD: 0 (go on to the range),
 * 412 or 304. */
static int preconditions(const struct coil_http1_request *req,
			 const struct conds *k, const struct rep *r)
{
	int64_t t;

	if (k->im) {
		if (!etag_match(req, k->im, "If-Match", r->etag, true))
			return 412;
	} else if ((t = cond_date(k->ius, k->ius_many)) >= 0 && r->mtime > t) {
		return 412;
	}
	if (k->inm) {
		if (etag_match(req, k->inm, "If-None-Match", r->etag, false))
			return 304;
	} else if ((t = cond_date(k->ims, k->ims_many)) >= 0 && r->mtime <= t) {
		return 304;
	}
	return 0;
}

enum { RANGE_NONE, RANGE_OK, RANGE_UNSAT };

/* "bytes=a-b", "bytes=a-", "bytes=-n". Anything else, several ranges
 * included, is RANGE_NONE: the whole representation. */
static int parse_range(const struct coil_http1_str *v, uint64_t size,
		       uint64_t *off, uint64_t *len)
{
	const char *p = v->ptr, *end = p + v->len;
	uint64_t a = 0, b = 0;
	bool has_a = false, has_b = false, big = false;

	if (v->len < 6 || strncasecmp(p, "bytes=", 6))
		return RANGE_NONE;
	p += 6;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (a > (UINT64_MAX - 9) / 10)
			big = true;
		else
			a = a * 10 + (uint64_t)(*p - '0');
		has_a = true;
	}
	if (p == end || *p != '-')
		return RANGE_NONE;
	for (p++; p < end && *p >= '0' && *p <= '9'; p++) {
		if (b > (UINT64_MAX - 9) / 10)
			b = UINT64_MAX;
		else
			b = b * 10 + (uint64_t)(*p - '0');
		has_b = true;
	}
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p != end)
		return RANGE_NONE;   /* a list (or junk): the whole file */
	if (!has_a) {
		if (!has_b)
			return RANGE_NONE;
		if (!b || !size)
			return RANGE_UNSAT;
		if (b > size)
			b = size;
		*off = size - b;
		*len = b;
		return RANGE_OK;
	}
	if (has_b && b < a)
		return RANGE_NONE;   /* invalid: ignored */
	if (big || a >= size)
		return RANGE_UNSAT;
	if (!has_b || b > size - 1)
		b = size - 1;
	*off = a;
	*len = b - a + 1;
	return RANGE_OK;
}

/* ---- sending ---- */

/* Pin `e` for this connection's queued output (false: no room, copy). */
static bool pin(struct httpd_conn *s, struct httpd__centry *e)
{
	for (unsigned i = 0; i < s->nheld; i++)
		if (s->held[i] == e)
			return true;
	if (s->nheld == HTTPD__HELD)
		return false;
	e->refs++;
	s->held[s->nheld++] = e;
	return true;
}

static void body_from_cache(struct coil_http_req *x, struct httpd__centry *e,
			    uint64_t off, uint64_t len)
{
	struct httpd_conn *s = x->s;
	const uint8_t *p = e->body + off;

	if (len <= HTTPD__INLINE_MAX) {
		httpd__out_put(x->lp, x->conn, p, (size_t)len);
		return;
	}
	/* Nothing queued (staged bytes are copies): no send reads a pinned
	 * entry any more. */
	if (s->nheld && !coil_conn_queued(x->conn))
		httpd__unpin_all(s);
	httpd__out_flush(x->lp);
	if (pin(s, e))
		(void)coil_conn_write_static(x->conn, p, (size_t)len);
	else
		(void)coil_conn_write(x->conn, p, (size_t)len);
}

static char *cat(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

#define CAT(p, lit) cat((p), (lit), sizeof(lit) - 1)

static void serve(struct coil_http_req *x, struct rep *r)
{
	struct httpd_conn *s = x->s;
	struct conds k;
	char extra[320], *p = extra;
	uint64_t off = 0, len = r->size;
	int status, rr = RANGE_NONE;

	scan_conds(x->req, &k);
	p = CAT(p, "ETag: ");
	p = cat(p, r->etag, strlen(r->etag));
	p = CAT(p, "\r\nLast-Modified: ");
	p = cat(p, r->lastmod, COIL_HTTP1_DATE_LEN);
	p = CAT(p, "\r\n");
	status = preconditions(x->req, &k, r);
	if (status == 304) {
		httpd__resp_head(x, 304, NULL, HTTPD__NO_LENGTH, extra,
				 (size_t)(p - extra));
		s->responded = true;
		goto out;
	}
	if (status == 412) {
		coil_http_respond_error(x, 412);
		goto out;
	}
	status = 200;
	p = CAT(p, "Accept-Ranges: bytes\r\n");
	/* Step 5: Range, unless If-Range says the client's copy is stale. */
	if (k.range && !k.range_many) {
		rr = parse_range(k.range, r->size, &off, &len);
		if (rr != RANGE_NONE && k.if_range &&
		    !if_range_ok(&k, r, x->lp->date_sec))
			rr = RANGE_NONE;
	}
	if (rr == RANGE_UNSAT) {
		char cr[64];
		int n = snprintf(cr, sizeof(cr), "Content-Range: bytes */%llu\r\n",
				 (unsigned long long)r->size);

		httpd__respond_error_extra(x, 416, cr, (size_t)n);
		goto out;
	}
	if (rr == RANGE_OK) {
		status = 206;
		p += snprintf(p, sizeof(extra) - (size_t)(p - extra),
			      "Content-Range: bytes %llu-%llu/%llu\r\n",
			      (unsigned long long)off,
			      (unsigned long long)(off + len - 1),
			      (unsigned long long)r->size);
	} else {
		off = 0;
		len = r->size;
	}
	if (httpd__resp_head(x, status, r->ctype, len, extra,
			     (size_t)(p - extra)))
		goto out;
	if (!x->head && len) {
		if (r->e) {
			body_from_cache(x, r->e, off, len);
		} else {
			httpd__out_flush(x->lp);
			(void)coil_conn_sendfile(x->conn, r->fd, off, len,
						 COIL_SENDFILE_CLOSE);
			r->fd = -1;   /* coil closes it */
		}
	}
	s->rq->sent = len;
	s->responded = true;
out:
	if (r->fd >= 0)
		close(r->fd);
}

static void serve_entry(struct coil_http_req *x, struct httpd__centry *e)
{
	struct rep r = {
		.size = e->size, .mtime = e->mtime_sec, .etag = e->etag,
		.lastmod = e->lastmod, .ctype = e->ctype, .e = e, .fd = -1,
	};

	serve(x, &r);
}

static int open_status(int err)
{
	switch (-err) {
	case ENOENT:
	case ENOTDIR:
		return 404;
	case EXDEV:     /* the path left the root (RESOLVE_BENEATH) */
	case ELOOP:     /* a magic link, or a symlink loop */
	case EACCES:
	case EPERM:
		return 403;
	case ENAMETOOLONG:
		return 414;
	case EMFILE:
	case ENFILE:
	case ENOMEM:
	case EAGAIN:
		return 503;
	default:
		return 500;
	}
}

/* "/dir" is a directory: send the client to "/dir/" so that relative
 * links in its index resolve. */
static void redirect_slash(struct coil_http_req *x)
{
	char *loc = x->lp->rel, *p;
	size_t n = x->raw_path.len + x->query.len + 16;

	if (n > sizeof(x->lp->rel)) {
		coil_http_respond_error(x, 414);
		return;
	}
	p = CAT(loc, "Location: ");
	p = cat(p, x->raw_path.ptr, x->raw_path.len);
	*p++ = '/';
	if (x->query.len) {
		*p++ = '?';
		p = cat(p, x->query.ptr, x->query.len);
	}
	p = CAT(p, "\r\n");
	httpd__respond_error_extra(x, 301, loc, (size_t)(p - loc));
}

/* Open lp->rel beneath the root for reading and stat it. Returns the fd,
 * or -1 with the error answered (open_status, 500 if fstat fails). */
static int open_stat(struct coil_http_req *x, struct stat *st)
{
	int fd = httpd__open_beneath(x->lp->h->rootfd, x->lp->rel,
				      O_RDONLY | O_NONBLOCK);

	if (fd < 0) {
		coil_http_respond_error(x, open_status(fd));
		return -1;
	}
	if (fstat(fd, st)) {
		close(fd);
		coil_http_respond_error(x, 500);
		return -1;
	}
	return fd;
}

void httpd__files_get(struct coil_http_req *x)
{
	struct httpd_loop *lp = x->lp;
	struct coil_http_server *h = lp->h;
	const char *key = x->path.ptr;
	size_t kn = x->path.len, rn;
	struct httpd__centry *e;
	struct stat st;
	struct rep r;
	int fd;

	if (h->cache_size) {
		e = httpd__cache_find(&lp->cache, key, kn);
		if (e && !httpd__cache_fresh(lp, e)) {
			httpd__cache_unlink(&lp->cache, e);
			e = NULL;
		}
		if (e) {
			serve_entry(x, e);
			return;
		}
	}
	/* key is normalized: "/" or "/a/b" or "/a/b/", never "..". */
	if (kn == 1) {
		memcpy(lp->rel, ".", 2);
		rn = 0;
	} else {
		rn = kn - 1;
		memcpy(lp->rel, key + 1, rn);
		lp->rel[rn] = '\0';
	}
	fd = open_stat(x, &st);
	if (fd < 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		if (key[kn - 1] != '/') {
			redirect_slash(x);
			return;
		}
		memcpy(lp->rel + rn, "index.html", sizeof("index.html"));
		rn += sizeof("index.html") - 1;
		fd = open_stat(x, &st);   /* no index.html: no listing */
		if (fd < 0)
			return;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		coil_http_respond_error(x, 403);
		return;
	}
	if (h->cache_size && (uint64_t)st.st_size <= lp->cache.max_file) {
		e = httpd__cache_add(lp, key, kn, lp->rel, fd, &st);
		if (e) {
			close(fd);
			serve_entry(x, e);
			return;
		}
	}
	{
		char etag[64], lastmod[COIL_HTTP1_DATE_LEN + 1];

		httpd__fill_validators(etag, sizeof(etag), lastmod, &st);
		r = (struct rep){
			.size = (uint64_t)st.st_size, .mtime = st.st_mtim.tv_sec,
			.etag = etag, .lastmod = lastmod,
			.ctype = httpd__mime_type(lp->rel, rn), .fd = fd,
		};
		serve(x, &r);
	}
}
