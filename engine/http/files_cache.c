/* SPDX-License-Identifier: MIT */
/*
 * The per-loop response cache of static files (files.c): files up to a
 * size limit held in memory, keyed by request path, bounded in bytes with
 * the least recently used out first, and checked against the file on disk
 * (inode, size, mtime) at most once a second per entry, so a hot small
 * file costs no system call. An entry that left the table lives on while
 * a connection pins it for its queued output (httpd_conn.held).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint32_t hash_path(const char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 16777619u;
	return h;
}

int httpd__cache_init(struct httpd__cache *c, size_t limit)
{
	c->mask = 4095;
	c->buckets = calloc(c->mask + 1, sizeof(*c->buckets));
	if (!c->buckets)
		return -ENOMEM;
	c->lru.next = c->lru.prev = &c->lru;
	c->limit = limit;
	c->max_file = limit / 4 < HTTPD__MAX_CACHED_FILE ? limit / 4
							  : HTTPD__MAX_CACHED_FILE;
	c->bytes = 0;
	c->count = 0;
	return 0;
}

void httpd__cache_put(struct httpd__centry *e)
{
	if (--e->refs == 0)
		free(e);
}

void httpd__cache_unlink(struct httpd__cache *c, struct httpd__centry *e)
{
	struct httpd__centry **pp = &c->buckets[e->hash & c->mask];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	e->prev->next = e->next;
	e->next->prev = e->prev;
	c->bytes -= e->mem;
	c->count--;
	e->linked = false;
	httpd__cache_put(e);
}

void httpd__cache_fini(struct httpd__cache *c)
{
	/* Connections are gone: nothing pins an entry any more. */
	while (c->lru.next != &c->lru)
		httpd__cache_unlink(c, c->lru.next);
	free(c->buckets);
	c->buckets = NULL;
}

static void lru_front(struct httpd__cache *c, struct httpd__centry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->next = c->lru.next;
	e->prev = &c->lru;
	c->lru.next->prev = e;
	c->lru.next = e;
}

struct httpd__centry *httpd__cache_find(struct httpd__cache *c,
				       const char *key, size_t n)
{
	uint32_t h = hash_path(key, n);

	for (struct httpd__centry *e = c->buckets[h & c->mask]; e;
	     e = e->hnext) {
		if (e->hash == h && e->key_len == n && !memcmp(e->key, key, n)) {
			lru_front(c, e);
			return e;
		}
	}
	return NULL;
}

static bool same_file(const struct httpd__centry *e, const struct stat *st)
{
	return S_ISREG(st->st_mode) && st->st_dev == e->dev &&
	       st->st_ino == e->ino && (uint64_t)st->st_size == e->size &&
	       st->st_mtim.tv_sec == e->mtime_sec &&
	       st->st_mtim.tv_nsec == e->mtime_nsec;
}

/* Still the file on disk? Asked of the file system at most once a second
 * per entry. */
bool httpd__cache_fresh(struct httpd_loop *lp, struct httpd__centry *e)
{
	uint64_t now = coil_loop_now_ms(lp->loop);
	struct stat st;
	bool ok;
	int fd;

	if (now - e->checked_ms < 1000)
		return true;
	fd = httpd__open_beneath(lp->h->rootfd, e->rel, O_PATH);
	if (fd < 0)
		return false;
	ok = !fstat(fd, &st) && same_file(e, &st);
	close(fd);
	if (ok)
		e->checked_ms = now;
	return ok;
}

/* Read the open file `fd` into a new entry for `key`; NULL when it does
 * not fit, or changed while being read (then it is served uncached). */
struct httpd__centry *httpd__cache_add(struct httpd_loop *lp, const char *key,
				      size_t kn, const char *rel, int fd,
				      const struct stat *st)
{
	struct httpd__cache *c = &lp->cache;
	size_t rn = strlen(rel), size = (size_t)st->st_size, got = 0;
	size_t mem = sizeof(struct httpd__centry) + kn + 1 + rn + 1 + size;
	struct httpd__centry *e, **bucket;

	if (size > c->max_file || mem > c->limit || kn > UINT16_MAX)
		return NULL;
	while (c->bytes + mem > c->limit && c->lru.prev != &c->lru)
		httpd__cache_unlink(c, c->lru.prev);
	e = malloc(mem);
	if (!e)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->key = (char *)(e + 1);
	e->rel = e->key + kn + 1;
	e->body = (uint8_t *)e->rel + rn + 1;
	memcpy(e->key, key, kn);
	e->key[kn] = '\0';
	memcpy(e->rel, rel, rn + 1);
	while (got < size) {
		ssize_t n = pread(fd, e->body + got, size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != size) {
		free(e);
		return NULL;
	}
	e->key_len = (uint16_t)kn;
	e->hash = hash_path(key, kn);
	e->refs = 1;
	e->mem = mem;
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->size = size;
	e->mtime_sec = st->st_mtim.tv_sec;
	e->mtime_nsec = st->st_mtim.tv_nsec;
	e->checked_ms = coil_loop_now_ms(lp->loop);
	e->ctype = httpd__mime_type(rel, rn);
	httpd__fill_validators(e->etag, sizeof(e->etag), e->lastmod, st);
	bucket = &c->buckets[e->hash & c->mask];
	e->hnext = *bucket;
	*bucket = e;
	e->next = c->lru.next;
	e->prev = &c->lru;
	c->lru.next->prev = e;
	c->lru.next = e;
	e->linked = true;
	c->bytes += mem;
	c->count++;
	return e;
}
