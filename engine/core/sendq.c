/* SPDX-License-Identifier: MIT */
/*
 * The send queue of a connection: copied chunks, receive-buffer references,
 * static memory and file segments, in order; one send in flight, short sends
 * continued from the right offset; the high-water mark that pauses reading.
 */
#include "internal.h"
#include "../backend/backend.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_HIGH_WATER (256u << 10)

static size_t high_water(const struct coil_conn *c)
{
	size_t hw = c->lst->svc->write_high_water;
	return hw ? hw : DEFAULT_HIGH_WATER;
}

size_t coil_conn_queued(const struct coil_conn *c)
{
	return c->queued;
}

/* ---- segments ---- */

struct coil__seg *coil__seg_new(struct coil_loop *loop, bool chunk)
{
	struct coil__slab *s = chunk ? &loop->chunks : &loop->segs;
	struct coil__seg *seg = coil__slab_get(s);

	if (seg) {
		seg->heap = 0;
	} else {
		/* The send memory set aside is used up: fall back to the heap
		 * rather than fail a write (counted; never on a healthy path). */
		seg = malloc(chunk ? COIL__CHUNK_SIZE : sizeof(*seg));
		if (!seg)
			return NULL;
		seg->heap = 1;
		if (chunk)
			loop->chunk_heap++;
		else
			loop->seg_heap++;
	}
	seg->next = NULL;
	seg->len = 0;
	seg->room = 0;
	seg->close_fd = 0;
	if (chunk) {
		seg->kind = SEG_CHUNK;
		seg->data = (const uint8_t *)(seg + 1);
		seg->room = COIL__CHUNK_SIZE - (uint32_t)sizeof(*seg);
	}
	return seg;
}

void coil__seg_free(struct coil_loop *loop, struct coil__seg *seg)
{
	if (seg->kind >= 0)
		coil__buf_put(&loop->pool, (uint32_t)seg->kind);
	else if (seg->kind == SEG_FILE && seg->close_fd)
		close(seg->fd);
	if (seg->heap) {
		free(seg);
	} else if (seg->kind == SEG_CHUNK) {
		coil__slab_put(&loop->chunks, seg);
		/* A burst that used every chunk of the loop (and then the
		 * heap) is over: give the chunks' memory back. Not after
		 * smaller ones, whose pages the next one would fault in again
		 * (and RSS would swing with the timing). */
		if (!loop->chunks.used &&
		    loop->chunks.bumped == loop->chunks.count)
			coil__slab_trim(&loop->chunks);
	} else {
		coil__slab_put(&loop->segs, seg);
	}
}

static void seg_append(struct coil_conn *c, struct coil__seg *seg)
{
	if (c->sq_tail)
		c->sq_tail->next = seg;
	else
		c->sq_head = seg;
	c->sq_tail = seg;
}

static void queued_grew(struct coil_conn *c, size_t len)
{
	c->queued += len;
	coil__conn_mark(c);
	if (c->queued > high_water(c) && !(c->flags & CONN_WPAUSED)) {
		/* A slow reader: stop reading from it so its output cannot
		 * grow without bound (Twisted's pauseProducing). */
		c->flags |= CONN_WPAUSED;
		coil__stat_add(c->loop->st.write_paused, 1);
	}
}

static int write_check(struct coil_conn *c)
{
	if (c->flags & (CONN_CLOSING | CONN_FREED))
		return -EPIPE;
	return 0;
}

int coil_conn_write(struct coil_conn *c, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t left = len;
	int ret = write_check(c);

	if (ret || !len)
		return ret;
	while (left) {
		struct coil__seg *t = c->sq_tail;
		uint32_t n;

		if (!t || (t->kind != SEG_CHUNK && t->kind != SEG_SMALL) ||
		    !t->room) {
			bool small = left <= sizeof(t->small);

			t = coil__seg_new(c->loop, !small);
			if (!t)
				goto nomem;
			if (small) {
				t->kind = SEG_SMALL;
				t->data = t->small;
				t->room = sizeof(t->small);
			}
			seg_append(c, t);
		}
		n = left < t->room ? (uint32_t)left : t->room;
		/* Appending to a chunk a send is reading is safe: the send
		 * covers only bytes queued before it was issued. */
		memcpy((uint8_t *)t->data + t->len, p, n);
		t->len += n;
		t->room -= n;
		p += n;
		left -= n;
	}
	queued_grew(c, len);
	return 0;
nomem:
	/* Part was queued: the stream is broken, so the connection must go. */
	queued_grew(c, len - left);
	c->close_reason = -ENOMEM;
	coil_conn_abort(c);
	return -ENOMEM;
}

static int write_seg(struct coil_conn *c, const void *data, size_t len,
		     int32_t kind)
{
	struct coil__seg *t = c->sq_tail;
	struct coil__seg *seg;

	if (len > UINT32_MAX / 2)
		return coil_conn_write(c, data, len);
	/* Extend the tail when the new bytes follow it in the same memory. */
	if (t && t->kind == kind && t->data + t->len == data &&
	    (kind == SEG_STATIC || t->len + len <= c->loop->pool.size)) {
		t->len += (uint32_t)len;
		queued_grew(c, len);
		return 0;
	}
	seg = coil__seg_new(c->loop, false);
	if (!seg) {
		c->close_reason = -ENOMEM;
		coil_conn_abort(c);
		return -ENOMEM;
	}
	seg->kind = kind;
	seg->data = data;
	seg->len = (uint32_t)len;
	if (kind >= 0)
		coil__buf_get(&c->loop->pool, (uint32_t)kind);
	seg_append(c, seg);
	queued_grew(c, len);
	return 0;
}

int coil_conn_write_ref(struct coil_conn *c, const void *data, size_t len)
{
	struct coil_loop *loop = c->loop;
	const uint8_t *p = data;
	int ret = write_check(c);

	if (ret || !len)
		return ret;
	if (loop->cur_bid < 0 || !(c->flags & CONN_IN_DATA) ||
	    p < loop->cur_base || p + len > loop->cur_base + loop->cur_len)
		return coil_conn_write(c, data, len);
	return write_seg(c, data, len, loop->cur_bid);
}

int coil_conn_write_static(struct coil_conn *c, const void *data, size_t len)
{
	int ret = write_check(c);

	if (ret || !len)
		return ret;
	return write_seg(c, data, len, SEG_STATIC);
}

int coil_conn_sendfile(struct coil_conn *c, int fd, uint64_t off,
		       uint64_t len, unsigned flags)
{
	int ret = write_check(c);

	if (!ret && fd < 0)
		ret = -EINVAL;
	if (ret || !len)
		goto out;
	while (len) {
		/* Segments of at most 1 GiB keep the byte counts in 32 bits. */
		uint32_t n = len > (1u << 30) ? 1u << 30 : (uint32_t)len;
		struct coil__seg *seg = coil__seg_new(c->loop, false);

		if (!seg) {
			c->close_reason = -ENOMEM;
			coil_conn_abort(c);
			ret = -ENOMEM;
			goto out;
		}
		seg->kind = SEG_FILE;
		seg->data = NULL;
		seg->fd = fd;
		seg->off = off;
		seg->len = n;
		off += n;
		len -= n;
		/* the last segment owns the fd */
		seg->close_fd = !len && (flags & COIL_SENDFILE_CLOSE);
		seg_append(c, seg);
		queued_grew(c, n);
	}
	return 0;
out:
	if (flags & COIL_SENDFILE_CLOSE && fd >= 0)
		close(fd);
	return ret;
}

/* Drop everything queued that no send is reading. */
void coil__sendq_drop(struct coil_conn *c)
{
	struct coil__seg *s = c->sq_head;

	assert(!(c->flags & CONN_SENDING));
	while (s) {
		struct coil__seg *next = s->next;

		coil__seg_free(c->loop, s);
		s = next;
	}
	c->sq_head = c->sq_tail = NULL;
	c->queued = 0;
}

/* ---- send ---- */

/* Send vectors a loop has used at once beyond which, once none is in use,
 * their pages go back to the kernel (a burst of sends at once is over). */
#define COIL__KEEP_SENDV 256u

static void sendv_put(struct coil_loop *loop, struct iovec *iov)
{
	coil__slab_put(&loop->sendvs, iov);
	if (!loop->sendvs.used && loop->sendvs.bumped > COIL__KEEP_SENDV)
		coil__slab_trim(&loop->sendvs);
}

void coil__conn_sent(struct coil_conn *c, int res)
{
	struct coil_loop *loop = c->loop;
	size_t done;

	c->flags &= ~(CONN_SENDING | CONN_SEND_CANCEL);
	c->file_seg = NULL;
	if (c->iov) {
		sendv_put(loop, c->iov);
		c->iov = NULL;
	}
	coil__conn_mark(c);
	if (res < 0) {
		if (!c->close_reason)
			c->close_reason = res == -ECANCELED ? 0 : res;
		coil_conn_abort(c);
		return;
	}
	assert((uint32_t)res <= c->inflight);
	if (c->tls)
		coil__tls_sent(c, (size_t)res);
	done = (size_t)res;
	c->queued -= done;
	c->inflight = 0;
	while (done) {
		struct coil__seg *s = c->sq_head;
		uint32_t n = done < s->len ? (uint32_t)done : s->len;

		if (s->kind == SEG_FILE)
			s->off += n;
		else
			s->data += n;
		s->len -= n;
		done -= n;
		/* An emptied chunk goes back at once, also the tail with room
		 * left: an idle connection then holds no send memory, and the
		 * loop's chunks serve the connections with output in flight,
		 * not every connection ever answered (which made the heap
		 * take over past the slab: issue 18). */
		if (s->len == 0) {
			c->sq_head = s->next;
			if (!c->sq_head)
				c->sq_tail = NULL;
			coil__seg_free(loop, s);
		}
	}
	if ((c->flags & CONN_WPAUSED) && c->queued <= high_water(c) / 2) {
		c->flags &= ~CONN_WPAUSED;
		if (c->carry_len || c->held_head)
			c->flags |= CONN_CARRY_DUE;
		if (c->lst->svc->ops->on_drain && !(c->flags & CONN_CLOSING))
			c->lst->svc->ops->on_drain(c);
	}
}

void coil__send_start(struct coil_conn *c)
{
	struct coil__seg *s = c->sq_head;
	uint32_t n = 0;
	size_t total = 0;
	/* TLS: only the ciphertext at the head is sent (coil__tls_flush). */
	size_t cap = c->tls ? coil__tls_pending(c) : (size_t)1 << 30;

	if (!cap)
		return;
	while (s && !s->len)
		s = s->next;
	if (s && s->kind == SEG_FILE && !c->tls) {
		/* A file goes alone, a pipe's worth at a time. */
		c->file_seg = s;
		c->niov = 0;
		c->inflight = s->len < COIL__FILE_SEND_MAX ? s->len
							    : COIL__FILE_SEND_MAX;
		c->flags |= CONN_SENDING;
		coil__stat_add(c->loop->sends, 1);
		c->loop->be->send_file(c);
		return;
	}
	if (!s)
		return;
	/* Never NULL: one per connection, one send in flight each. */
	c->iov = coil__slab_get(&c->loop->sendvs);
	assert(c->iov);
	while (s && n < COIL__SEND_IOV && total < cap &&
	       s->kind != SEG_FILE) {
		if (s->len) {
			c->iov[n].iov_base = (void *)s->data;
			c->iov[n].iov_len = s->len;
			total += s->len;
			n++;
		}
		s = s->next;
	}
	if (!n) {
		sendv_put(c->loop, c->iov);
		c->iov = NULL;
		return;
	}
	c->niov = n;
	c->inflight = (uint32_t)total;
	c->flags |= CONN_SENDING;
	coil__stat_add(c->loop->sends, 1);
	coil__stat_add(c->loop->tx_bytes, total);
	c->loop->be->send(c);
}

