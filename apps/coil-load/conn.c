/* SPDX-License-Identifier: MIT */
/*
 * coil-load's connections and their requests (see run.h).
 *
 *  echo   D messages in flight per connection; each message that comes back
 *         in full is sent again (closed loop). The bytes are a run of the
 *         loop's random pattern from the connection's own offset, sent
 *         without copying (coil_conn_write_static) and, with --verify,
 *         compared byte for byte as they arrive.
 *  http   closed loop: `pipeline` requests in flight, each completed
 *         response replaced at once; the requests of one turn go out in one
 *         write of a prebuilt buffer of copies (no formatting, no copy, no
 *         allocation per request). Responses are parsed in place from the
 *         receive buffer. With --rate, requests go out on the schedule of
 *         open.c instead.
 */
#include "run.h"

#include <errno.h>

/* ---- sending ---- */

static void track(struct cs *s, unsigned k, uint64_t t)
{
	struct load *ld = s->lc->ld;

	if (!s->inflight)
		s->last_ns = coil_loop_now_ns(s->lc->loop);
	for (unsigned i = 0; i < k; i++)
		s->ts[(s->head + s->inflight + i) % ld->depth] = t;
	s->inflight += k;
	s->lc->st.sent += k;
}

static void send_msgs(struct coil_conn *c, struct cs *s, unsigned k)
{
	struct lctx *lc = s->lc;
	uint64_t bytes = (uint64_t)k * lc->ld->o->size;

	track(s, k, coil_loop_now_ns(lc->loop));
	lc->st.tx_bytes += bytes;
	while (bytes) {
		uint32_t at = (uint32_t)((s->pat_off + s->tx_pos) % PAT_LEN);
		uint32_t n = bytes < PAT_TAIL ? (uint32_t)bytes : PAT_TAIL;

		if (coil_conn_write_static(c, lc->pat + at, n))
			return;   /* closing: on_close follows */
		s->tx_pos += n;
		bytes -= n;
	}
}

void load_send_reqs(struct coil_conn *c, struct cs *s, unsigned k,
		    uint64_t t)
{
	struct load *ld = s->lc->ld;

	track(s, k, t);
	s->lc->st.tx_bytes += (uint64_t)k * ld->req_len;
	while (k) {
		unsigned n = k < REQ_COPIES ? k : REQ_COPIES;

		if (coil_conn_write_static(c, ld->req, n * ld->req_len))
			return;
		k -= n;
	}
}

/* ---- completions ---- */

static void complete(struct cs *s, uint64_t now)
{
	struct lctx *lc = s->lc;

	hist_record(&lc->st.lat, now - s->ts[s->head]);
	s->head = (s->head + 1) % lc->ld->depth;
	s->inflight--;
	s->last_ns = now;
	lc->st.done++;
}

void load_tls_seen(struct coil_conn *c, struct cs *s)
{
	struct load_stats *st = &s->lc->st;
	struct coil_tls_info ti;

	s->tls_seen = 1;
	if (coil_conn_tls_info(c, &ti) || !ti.done)
		return;
	st->tls_full += !ti.resumed;
	st->tls_resumed += ti.resumed;
	if (!st->tls_version) {
		st->tls_version = ti.version;
		st->tls_cipher = ti.cipher;
	}
}

static size_t echo_data(struct coil_conn *c, const uint8_t *data, size_t len)
{
	struct cs *s = coil_conn_state(c);
	struct lctx *lc = s->lc;
	uint32_t size = lc->ld->o->size;
	uint64_t now = coil_loop_now_ns(lc->loop), k;

	if (lc->done)
		return len;
	if (!s->tls_seen && lc->ld->o->tls)
		load_tls_seen(c, s);
	lc->st.rx_bytes += len;
	if (s->rx_pos + len > s->tx_pos) {
		/* More bytes than were sent: a corrupting peer. */
		lc->st.mismatches += s->rx_pos + len - s->tx_pos;
		s->invalid = 1;
		coil_conn_abort(c);
		return len;
	}
	if (lc->ld->o->verify)
		lc->st.mismatches += pattern_check(lc->pat, s->pat_off,
						   s->rx_pos, data, len);
	s->rx_pos += len;
	s->last_ns = now;
	k = s->rx_pos / size - s->msgs_rx;
	s->msgs_rx += k;
	for (uint64_t i = 0; i < k; i++)
		complete(s, now);
	if (k && lc->ld->o->handshakes) {
		/* one message per connection: the next one is a new one */
		coil_conn_close(c);
		return len;
	}
	if (k)
		send_msgs(c, s, (unsigned)k);
	return len;
}

static void bad_response(struct coil_conn *c, struct cs *s)
{
	s->lc->st.invalid++;
	s->invalid = 1;
	coil_conn_abort(c);
}

/* A response ended: count it; keep the connection busy (closed loop). */
static void http_done(struct coil_conn *c, struct cs *s, int keep_alive,
		      uint64_t now, unsigned *again)
{
	s->lc->st.status[s->status]++;
	complete(s, now);
	if (!keep_alive || s->lc->ld->o->close) {
		/* The server (or --close) ends the connection after this one;
		 * a pipelined rest would be lost: close when none is left. */
		s->opened = 2;   /* draining: no more requests */
		if (!s->inflight)
			coil_conn_close(c);
		return;
	}
	if (!s->lc->ld->o->rate)
		(*again)++;
}

static size_t http_data(struct coil_conn *c, const uint8_t *data, size_t len)
{
	struct cs *s = coil_conn_state(c);
	struct lctx *lc = s->lc;
	struct load *ld = lc->ld;
	uint64_t now = coil_loop_now_ns(lc->loop);
	struct coil_http1_response r;
	unsigned again = 0;
	size_t used = 0;
	int rc;

	if (lc->done)
		return len;
	if (!s->tls_seen && ld->o->tls)
		load_tls_seen(c, s);
	while (used < len && !s->invalid) {
		switch (s->body_mode) {
		case BODY_LENGTH: {
			size_t n = len - used;

			if (n > s->remaining)
				n = (size_t)s->remaining;
			used += n;
			s->remaining -= n;
			if (!s->remaining) {
				s->body_mode = BODY_NONE;
				http_done(c, s, s->opened == 1, now, &again);
			}
			continue;
		}
		case BODY_CHUNKED: {
			struct coil_http1_str slice;
			size_t n;

			rc = coil_http1_body_read(&s->body, data + used,
						  len - used, &slice, &n);
			used += n;
			if (rc == COIL_HTTP1_DATA)
				continue;
			if (rc == COIL_HTTP1_DONE) {
				s->body_mode = BODY_NONE;
				http_done(c, s, s->opened == 1, now, &again);
				continue;
			}
			if (rc < 0)
				bad_response(c, s);
			goto out;
		}
		case BODY_CLOSE:
			used = len;   /* the end is the server's close */
			continue;
		}
		if (!s->inflight) {
			/* A response nobody asked for. */
			bad_response(c, s);
			break;
		}
		rc = coil_http1_response_parse(data + used, len - used,
					       ld->head_req, &r, NULL, 0, NULL);
		if (rc == COIL_HTTP1_NEED_MORE)
			break;
		if (rc < 0) {
			bad_response(c, s);
			break;
		}
		used += (size_t)rc;
		if (r.status < 200 && r.status != 101) {
			lc->st.status[r.status]++;
			continue;   /* interim (100 Continue): not the answer */
		}
		s->status = (uint16_t)r.status;   /* counted with done */
		if (!(r.flags & COIL_HTTP1_F_KEEP_ALIVE))
			s->opened = 2;
		if (r.flags & COIL_HTTP1_F_CHUNKED) {
			coil_http1_response_body_init(&s->body, &r, NULL, NULL,
						      0);
			s->body_mode = BODY_CHUNKED;
		} else if (r.flags & COIL_HTTP1_F_CLOSE_DELIMITED) {
			s->body_mode = BODY_CLOSE;
		} else if (r.content_length) {
			s->remaining = r.content_length;
			s->body_mode = BODY_LENGTH;
		} else {
			http_done(c, s, s->opened == 1, now, &again);
		}
	}
out:
	lc->st.rx_bytes += used;
	if (again && !s->invalid)
		load_send_reqs(c, s, again, now);
	if (ld->o->rate)
		load_open_room(lc, s, now);
	return used;
}

/* ---- connections ---- */

static void slot_retry(struct lctx *lc, unsigned slot, uint64_t delay_ns)
{
	if (!lc->retry[slot]) {
		lc->retry[slot] = 1;
		lc->nretry++;
	}
	if (!lc->retry_at_ns || lc->retry_at_ns > coil_loop_now_ns(lc->loop) + delay_ns)
		lc->retry_at_ns = coil_loop_now_ns(lc->loop) + delay_ns;
}

void load_slot_connect(struct lctx *lc, unsigned slot)
{
	struct coil_conn *c;
	struct cs *s;
	int ret;

	if (lc->done)
		return;
	ret = coil_loop_connect(lc->loop, lc->ld->svc, &c);
	if (ret < 0) {
		lc->st.connect_errors++;
		slot_retry(lc, slot, RETRY_MS * 1000000ull);
		return;
	}
	s = coil_conn_state(c);
	s->lc = lc;
	s->slot = slot;
	s->last_ns = coil_loop_now_ns(lc->loop);
	s->pat_off = (uint32_t)(mix64(((uint64_t)lc->id << 40) ^
				      ((uint64_t)slot << 20) ^
				      lc->st.connects ^ lc->st.connect_errors) %
				PAT_LEN);
	lc->slot[slot] = c;
}

static int on_open(struct coil_conn *c)
{
	struct cs *s = coil_conn_state(c);
	struct lctx *lc = s->lc;
	struct load *ld = lc->ld;

	s->opened = 1;
	lc->st.connects++;
	s->last_ns = coil_loop_now_ns(lc->loop);
	if (ld->o->mode == MODE_ECHO)
		send_msgs(c, s, ld->depth);
	else if (!ld->o->rate)
		load_send_reqs(c, s, ld->depth, coil_loop_now_ns(lc->loop));
	else
		load_open_room(lc, s, coil_loop_now_ns(lc->loop));
	return 0;
}

static void on_close(struct coil_conn *c, int reason)
{
	struct cs *s = coil_conn_state(c);
	struct lctx *lc = s->lc;
	struct coil_tls_info ti;

	if (!lc)
		return;
	if (lc->slot[s->slot] == c)
		lc->slot[s->slot] = NULL;
	if (lc->done)
		return;
	if (!s->opened) {
		if (reason != COIL_CLOSE_LOCAL || s->timed_out)
			lc->st.connect_errors++;
		slot_retry(lc, s->slot, RETRY_MS * 1000000ull);
		return;
	}
	if (s->timed_out || s->invalid) {
		/* counted when found */
	} else if (lc->ld->o->tls && !s->tls_seen && reason < 0 &&
		   !coil_conn_tls_info(c, &ti) && !ti.done) {
		/* the handshake failed (its reason is in the log) */
		lc->st.tls_errors++;
	} else if (reason == COIL_CLOSE_PEER) {
		if (s->body_mode == BODY_CLOSE) {
			lc->st.status[s->status]++;
			complete(s, coil_loop_now_ns(lc->loop));
		}
		else if (s->inflight)
			lc->st.read_errors++;
	} else if (reason < 0) {
		if (reason == -EPIPE)
			lc->st.write_errors++;
		else
			lc->st.read_errors++;
	}
	load_slot_connect(lc, s->slot);
}

static void on_shutdown(struct coil_conn *c)
{
	struct cs *s = coil_conn_state(c);
	struct lctx *lc = s->lc;

	if (!lc->done) {
		/* SIGINT/SIGTERM: the figures stop here. */
		lc->done = true;
		lc->end_ns = coil_loop_now_ns(lc->loop);
	}
	coil_conn_abort(c);
}

const struct coil_proto_ops load_echo_ops = {
	.on_open = on_open,
	.on_data = echo_data,
	.on_close = on_close,
	.on_shutdown = on_shutdown,
};

const struct coil_proto_ops load_http_ops = {
	.on_open = on_open,
	.on_data = http_data,
	.on_close = on_close,
	.on_shutdown = on_shutdown,
};
