/* SPDX-License-Identifier: MIT */
/*
 * The load itself: one client service on the engine, every loop opening its
 * share of the connections from the loop_start hook and keeping them busy.
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
 *         receive buffer. Open loop (--rate): request i is due at start +
 *         i / rate (the loop's share of the rate); due requests go out as
 *         soon as a connection has room: when a response frees one (on
 *         that one first), when one opens, and on every loop turn
 *         (loop_turn; with --poll always the loop turns every few
 *         microseconds, otherwise when I/O completes and on a 1 ms
 *         tick). A request that has to wait keeps its intended time, and
 *         its latency is measured from there (coordinated omission
 *         corrected). A rate the connections cannot carry is refused at
 *         start (open_loop_check).
 *
 * Latency is measured with the loop's clock (read once per turn).
 */
#include "load.h"

#include <coil/coil.h>
#include <coil/http1.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REQ_COPIES 64           /* prebuilt requests (>= pipeline) */
#define TICK_MS 10              /* retries, timeouts, stats snapshot */
#define RETRY_MS 10             /* after a failed connect */
#define MAX_BODY (64u << 20)

enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };

struct load;

struct lctx {
	struct load *ld;
	struct coil_loop *loop;
	unsigned id;
	struct coil_timer tick, end;
	uint64_t start_ns, end_ns;
	bool done, started;
	unsigned nconns;             /* this loop's share */
	struct coil_conn **slot;     /* the connection of each slot, or NULL */
	uint8_t *retry;              /* slot waits for a (re)connect */
	unsigned nretry;
	uint64_t retry_at_ns;
	uint64_t next_check_ns;
	uint64_t next_progress_ns;
	uint64_t last_progress_done;
	unsigned *free;              /* open loop: slots that may have room */
	uint8_t *in_free;            /* open loop: slot is on `free` */
	unsigned nfree;
	uint64_t issued;             /* open loop: requests issued */
	uint64_t behind;             /* open loop: due at the end, not issued */
	double rate;                 /* open loop: this loop's requests/s */
	uint8_t *pat;                /* echo pattern */
	atomic_ullong snap_done, snap_err;
	struct load_stats st;
} __attribute__((aligned(64)));

struct load {
	const struct load_opts *o;
	struct coil_engine *eng;
	int svc;
	const char *req;             /* REQ_COPIES requests back to back */
	size_t req_len;              /* one of them */
	uint32_t depth;              /* in flight per connection */
	bool head_req;
	bool tty;
	struct lctx *lc;
	unsigned nloops;
	atomic_uint loops_done;
};

struct cs {
	struct lctx *lc;
	uint32_t slot;
	uint8_t opened, timed_out, invalid, body_mode;
	uint32_t inflight;
	uint32_t head;               /* ring index of the oldest in flight */
	uint64_t last_ns;            /* last progress (or connect start) */
	uint64_t remaining;          /* BODY_LENGTH bytes to skip */
	uint32_t pat_off;            /* echo: stream offset in the pattern */
	uint64_t tx_pos, rx_pos, msgs_rx;
	struct coil_http1_body body; /* BODY_CHUNKED */
	uint64_t ts[];               /* send (or intended) time per request */
};

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t errors_of(const struct load_stats *st)
{
	return st->connect_errors + st->read_errors + st->write_errors +
	       st->timeouts + st->invalid + st->mismatches;
}

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

static void send_reqs(struct coil_conn *c, struct cs *s, unsigned k,
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

static void free_push(struct lctx *lc, unsigned slot);
static void dispatch(struct lctx *lc, uint64_t now);

/* Open loop: a connection has room again (or just opened): what is due
 * goes out now, on it first. */
static void open_room(struct lctx *lc, struct cs *s, uint64_t now)
{
	if (s->opened != 1 || s->invalid || s->timed_out ||
	    s->inflight >= lc->ld->depth)
		return;
	free_push(lc, s->slot);
	dispatch(lc, now);
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

static size_t echo_data(struct coil_conn *c, const uint8_t *data, size_t len)
{
	struct cs *s = coil_conn_state(c);
	struct lctx *lc = s->lc;
	uint32_t size = lc->ld->o->size;
	uint64_t now = coil_loop_now_ns(lc->loop), k;

	if (lc->done)
		return len;
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
		lc->st.status[r.status]++;
		if (r.status < 200 && r.status != 101)
			continue;   /* interim (100 Continue): not the answer */
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
		send_reqs(c, s, again, now);
	if (ld->o->rate)
		open_room(lc, s, now);
	return used;
}

/* ---- connections ---- */

static void slot_connect(struct lctx *lc, unsigned slot);

static void slot_retry(struct lctx *lc, unsigned slot, uint64_t delay_ns)
{
	if (!lc->retry[slot]) {
		lc->retry[slot] = 1;
		lc->nretry++;
	}
	if (!lc->retry_at_ns || lc->retry_at_ns > coil_loop_now_ns(lc->loop) + delay_ns)
		lc->retry_at_ns = coil_loop_now_ns(lc->loop) + delay_ns;
}

static void slot_connect(struct lctx *lc, unsigned slot)
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
		send_reqs(c, s, ld->depth, coil_loop_now_ns(lc->loop));
	else
		open_room(lc, s, coil_loop_now_ns(lc->loop));
	return 0;
}

static void on_close(struct coil_conn *c, int reason)
{
	struct cs *s = coil_conn_state(c);
	struct lctx *lc = s->lc;

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
	} else if (reason == COIL_CLOSE_PEER) {
		if (s->body_mode == BODY_CLOSE)
			complete(s, coil_loop_now_ns(lc->loop));
		else if (s->inflight)
			lc->st.read_errors++;
	} else if (reason < 0) {
		if (reason == -EPIPE)
			lc->st.write_errors++;
		else
			lc->st.read_errors++;
	}
	slot_connect(lc, s->slot);
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

static const struct coil_proto_ops echo_ops = {
	.on_open = on_open,
	.on_data = echo_data,
	.on_close = on_close,
	.on_shutdown = on_shutdown,
};

static const struct coil_proto_ops http_ops = {
	.on_open = on_open,
	.on_data = http_data,
	.on_close = on_close,
	.on_shutdown = on_shutdown,
};

/* ---- per-loop timers ---- */

static void publish(struct lctx *lc)
{
	atomic_store_explicit(&lc->snap_done, lc->st.done, memory_order_relaxed);
	atomic_store_explicit(&lc->snap_err, errors_of(&lc->st),
			      memory_order_relaxed);
}

static void progress(struct lctx *lc, uint64_t now)
{
	struct load *ld = lc->ld;
	uint64_t done = 0, err = 0;

	for (unsigned i = 0; i < ld->nloops; i++) {
		done += atomic_load_explicit(&ld->lc[i].snap_done,
					     memory_order_relaxed);
		err += atomic_load_explicit(&ld->lc[i].snap_err,
					    memory_order_relaxed);
	}
	fprintf(stderr, "\r[%3llus] %llu %s, %llu/s in the last second, %llu errors ",
		(unsigned long long)((now - lc->start_ns) / 1000000000ull),
		(unsigned long long)done,
		ld->o->mode == MODE_ECHO ? "messages" : "responses",
		(unsigned long long)(done - lc->last_progress_done),
		(unsigned long long)err);
	lc->last_progress_done = done;
}

static void check_timeouts(struct lctx *lc, uint64_t now)
{
	uint64_t limit = lc->ld->o->timeout_ms * 1000000ull;

	for (unsigned i = 0; i < lc->nconns; i++) {
		struct coil_conn *c = lc->slot[i];
		struct cs *s;

		if (!c)
			continue;
		s = coil_conn_state(c);
		if (s->timed_out || now - s->last_ns <= limit)
			continue;
		if (s->opened && !s->inflight)
			continue;
		s->timed_out = 1;
		if (s->opened)
			lc->st.timeouts++;
		coil_conn_abort(c);
	}
}

/* Open loop: the slot's connection may have room for a request. */
static void free_push(struct lctx *lc, unsigned slot)
{
	if (lc->in_free[slot])
		return;
	lc->in_free[slot] = 1;
	lc->free[lc->nfree++] = slot;
}

/* Open loop: issue every request due by now on connections with room, the
 * most recently freed first. */
static void dispatch(struct lctx *lc, uint64_t now)
{
	struct load *ld = lc->ld;
	uint64_t due = (uint64_t)((double)(now - lc->start_ns) * lc->rate / 1e9);

	while (lc->issued < due && lc->nfree) {
		unsigned slot = lc->free[lc->nfree - 1];
		struct coil_conn *c = lc->slot[slot];
		struct cs *s = c ? coil_conn_state(c) : NULL;

		if (!s || s->opened != 1 || s->inflight >= ld->depth ||
		    s->invalid || s->timed_out) {
			lc->nfree--;   /* full, closed or closing */
			lc->in_free[slot] = 0;
			continue;
		}
		send_reqs(c, s, 1, lc->start_ns +
			  (uint64_t)((double)lc->issued * 1e9 / lc->rate));
		lc->issued++;
	}
}

/*
 * Open loop: can `conns` connections carry `rate` requests/s? Each has at
 * most `depth` requests in flight (--pipeline) and a request takes at
 * least a round trip, which we take to be OPEN_MIN_RTT_US: the rate needs
 * rate <= conns * depth / round trip. Returns 0, or -EINVAL after saying
 * why on stderr.
 */
#define OPEN_MIN_RTT_US 100
static int open_loop_check(const struct load_opts *o, unsigned depth)
{
	uint64_t per = (uint64_t)depth * (1000000 / OPEN_MIN_RTT_US);
	uint64_t cap = (uint64_t)o->conns * per;

	if (!o->rate || o->rate <= cap)
		return 0;
	fprintf(stderr,
		"coil-load: --rate %llu cannot be reached with %u connections: "
		"each carries %u request%s at a time (--pipeline) and a round "
		"trip takes at least %u us, so at most %llu requests/s per "
		"connection, %llu in all; use -c %llu or more\n",
		(unsigned long long)o->rate, o->conns, depth,
		depth == 1 ? "" : "s", OPEN_MIN_RTT_US,
		(unsigned long long)per, (unsigned long long)cap,
		(unsigned long long)((o->rate + per - 1) / per));
	return -EINVAL;
}

static void tick_fired(struct coil_timer *t)
{
	struct lctx *lc = t->data;
	uint64_t now = coil_loop_now_ns(lc->loop);

	if (lc->done)
		return;
	if (lc->rate > 0)
		dispatch(lc, now);
	if (now >= lc->next_check_ns) {
		lc->next_check_ns = now + TICK_MS * 1000000ull;
		if (lc->nretry && now >= lc->retry_at_ns) {
			lc->retry_at_ns = 0;
			for (unsigned i = 0; i < lc->nconns && lc->nretry; i++)
				if (lc->retry[i]) {
					lc->retry[i] = 0;
					lc->nretry--;
					slot_connect(lc, i);
				}
		}
		check_timeouts(lc, now);
		publish(lc);
		if (lc->id == 0 && lc->ld->tty && now >= lc->next_progress_ns) {
			if (lc->next_progress_ns)
				progress(lc, now);
			lc->next_progress_ns = now + 1000000000ull;
		}
	}
	coil_timer_start(t, lc->rate > 0 ? 1 : TICK_MS);
}

static void end_fired(struct coil_timer *t)
{
	struct lctx *lc = t->data;
	struct load *ld = lc->ld;

	lc->done = true;
	lc->end_ns = coil_loop_now_ns(lc->loop);
	if (lc->rate > 0)
		lc->behind = (uint64_t)((double)(lc->end_ns - lc->start_ns) *
					lc->rate / 1e9) - lc->issued;
	publish(lc);
	coil_timer_stop(&lc->tick);
	for (unsigned i = 0; i < lc->nconns; i++)
		if (lc->slot[i])
			coil_conn_abort(lc->slot[i]);
	if (atomic_fetch_add(&ld->loops_done, 1) + 1 == ld->nloops)
		coil_engine_stop(ld->eng);
}

/* Open loop: every loop turn sends what has come due, so the schedule is as
 * fine as the turns (every few microseconds with --poll always; with
 * adaptive polling while busy, else at the 1 ms tick). */
static void loop_turn(struct coil_loop *loop, void *arg)
{
	struct load *ld = arg;
	struct lctx *lc = &ld->lc[coil_loop_id(loop)];

	if (lc->started && !lc->done)
		dispatch(lc, coil_loop_now_ns(loop));
}

static void loop_start(struct coil_loop *loop, void *arg)
{
	struct load *ld = arg;
	struct lctx *lc = &ld->lc[coil_loop_id(loop)];

	lc->loop = loop;
	lc->started = true;
	lc->start_ns = coil_loop_now_ns(loop);
	coil_timer_init(&lc->tick, loop, tick_fired, lc);
	coil_timer_init(&lc->end, loop, end_fired, lc);
	coil_timer_start(&lc->end, ld->o->duration_ms);
	coil_timer_start(&lc->tick, lc->rate > 0 ? 1 : TICK_MS);
	for (unsigned i = 0; i < lc->nconns; i++)
		slot_connect(lc, i);
}

/* ---- setup ---- */

int load_build_request(const struct load_opts *o, char **out, size_t *len)
{
	char *body = NULL, *req = NULL, *p;
	size_t body_len = 0, n, cap;
	bool host = false;
	int ret = -1;

	if (o->body_file) {
		int fd = open(o->body_file, O_RDONLY | O_CLOEXEC);
		struct stat st;

		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
		    (uint64_t)st.st_size > MAX_BODY) {
			fprintf(stderr, "coil-load: --body %s: %s\n", o->body_file,
				fd < 0 ? strerror(errno)
				       : "not a regular file of at most 64 MiB");
			if (fd >= 0)
				close(fd);
			return -1;
		}
		body_len = (size_t)st.st_size;
		body = malloc(body_len + 1);
		if (!body || read(fd, body, body_len) != (ssize_t)body_len) {
			fprintf(stderr, "coil-load: --body %s: cannot read it\n",
				o->body_file);
			close(fd);
			goto out;
		}
		close(fd);
	}
	cap = 512 + strlen(o->path) + strlen(o->host) + body_len;
	for (unsigned i = 0; i < o->nheaders; i++) {
		cap += strlen(o->headers[i]) + 2;
		if (!strncasecmp(o->headers[i], "host:", 5))
			host = true;
	}
	req = malloc(cap);
	if (!req)
		goto out;
	p = req;
	p += sprintf(p, "%s %s HTTP/1.1\r\n", o->method, o->path);
	if (!host)
		p += sprintf(p, strchr(o->host, ':') ? "Host: [%s]" : "Host: %s",
			     o->host);
	if (!host && o->port != 80)
		p += sprintf(p, ":%u", o->port);
	if (!host)
		p += sprintf(p, "\r\n");
	for (unsigned i = 0; i < o->nheaders; i++)
		p += sprintf(p, "%s\r\n", o->headers[i]);
	if (o->body_file)
		p += sprintf(p, "Content-Length: %zu\r\n", body_len);
	if (o->close)
		p += sprintf(p, "Connection: close\r\n");
	p += sprintf(p, "\r\n");
	n = (size_t)(p - req);
	if (body_len)
		memcpy(p, body, body_len);
	*out = req;
	*len = n + body_len;
	req = NULL;
	ret = 0;
out:
	free(req);
	free(body);
	return ret;
}

int load_run(const struct load_opts *o, struct load_result *res)
{
	struct load ld = { .o = o };
	struct coil_engine_opts eo = {
		.sz = sizeof(eo),
		.name = "coil-load",
		.backend = (enum coil_backend_kind)o->backend,
		.poll = (enum coil_poll_mode)o->poll,
		.loop_start = loop_start,
		.loop_arg = &ld,
	};
	struct coil_service svc = { .sz = sizeof(svc) };
	char *one = NULL, *copies = NULL;
	uint64_t behind = 0;
	struct timespec ts;
	unsigned per;
	int ret;

	memset(res, 0, sizeof(*res));
	ld.tty = !o->quiet && isatty(2);
	ld.depth = o->mode == MODE_ECHO ? o->depth : o->close ? 1 : o->pipeline;
	ld.head_req = !strcmp(o->method, "HEAD");
	if (o->mode == MODE_HTTP) {
		if (load_build_request(o, &one, &ld.req_len))
			return -EINVAL;
		copies = malloc(ld.req_len * REQ_COPIES);
		if (!copies) {
			free(one);
			return -ENOMEM;
		}
		for (unsigned i = 0; i < REQ_COPIES; i++)
			memcpy(copies + i * ld.req_len, one, ld.req_len);
		free(one);
		ld.req = copies;
	}
	ret = open_loop_check(o, ld.depth);
	if (ret)
		goto out_req;
	if (o->ncpus) {
		cpu_set_t set;

		CPU_ZERO(&set);
		for (unsigned i = 0; i < o->ncpus; i++)
			CPU_SET(o->cpus[i], &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0) {
			ret = -errno;
			fprintf(stderr, "coil-load: --cores: %s\n", strerror(errno));
			goto out_req;
		}
	}
	if (o->rate)
		eo.loop_turn = loop_turn;
	ld.nloops = o->threads;
	per = (o->conns + ld.nloops - 1) / ld.nloops;
	eo.cores = ld.nloops;
	eo.max_conns = per * 2 + 64;
	ret = coil_engine_create(&eo, &ld.eng);
	if (ret) {
		fprintf(stderr, "coil-load: cannot create the engine: %s\n",
			strerror(-ret));
		goto out_req;
	}
	svc.addr = o->addr;
	svc.port = o->port;
	svc.ops = o->mode == MODE_ECHO ? &echo_ops : &http_ops;
	svc.state_size = sizeof(struct cs) + ld.depth * sizeof(uint64_t);
	svc.max_input = 16u << 20;
	ld.svc = coil_engine_client(ld.eng, &svc);
	if (ld.svc < 0) {
		ret = ld.svc;
		fprintf(stderr, "coil-load: %s:%u: %s\n", o->addr, o->port,
			strerror(-ret));
		goto out_eng;
	}
	ld.lc = aligned_alloc(64, sizeof(*ld.lc) * ld.nloops);
	if (!ld.lc) {
		ret = -ENOMEM;
		goto out_eng;
	}
	memset(ld.lc, 0, sizeof(*ld.lc) * ld.nloops);
	for (unsigned i = 0; i < ld.nloops; i++) {
		struct lctx *lc = &ld.lc[i];

		lc->ld = &ld;
		lc->id = i;
		hist_init(&lc->st.lat);
		/* connections and rate split as evenly as they go */
		lc->nconns = o->conns / ld.nloops + (i < o->conns % ld.nloops);
		/* the rate in proportion (a loop without connections, when
		 * -t exceeds -c, gets none) */
		if (o->rate)
			lc->rate = (double)o->rate * lc->nconns / o->conns;
		lc->slot = calloc(lc->nconns + 1, sizeof(*lc->slot));
		lc->retry = calloc(lc->nconns + 1, 1);
		lc->free = calloc(lc->nconns + 1, sizeof(*lc->free));
		lc->in_free = calloc(lc->nconns + 1, 1);
		if (o->mode == MODE_ECHO) {
			lc->pat = malloc(PAT_LEN + PAT_TAIL);
			if (lc->pat)
				pattern_fill(lc->pat, mix64(i + 1));
		}
		if (!lc->slot || !lc->retry || !lc->free || !lc->in_free ||
		    (o->mode == MODE_ECHO && !lc->pat)) {
			ret = -ENOMEM;
			goto out_lc;
		}
	}
	ret = coil_engine_run(ld.eng);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ld.tty)
		fputc('\n', stderr);
	res->backend = coil_engine_backend(ld.eng);
	res->threads = ld.nloops;
	hist_init(&res->st.lat);
	for (unsigned i = 0; i < ld.nloops; i++) {
		struct lctx *lc = &ld.lc[i];
		uint64_t end = lc->end_ns ? lc->end_ns
					  : (uint64_t)ts.tv_sec * 1000000000ull +
						    (uint64_t)ts.tv_nsec;
		double el;

		if (!lc->started)
			continue;
		el = (double)(end - lc->start_ns) / 1e9;
		if (el > res->elapsed_s)
			res->elapsed_s = el;
		load_stats_merge(&res->st, &lc->st);
		behind += lc->behind;
	}
	if (o->rate && behind > (uint64_t)((double)o->rate * res->elapsed_s / 100))
		fprintf(stderr,
			"coil-load: the rate was not reached: %llu requests "
			"were due but still waited for a free connection at "
			"the end (%.0f/s of %llu/s issued): the server is "
			"slower than -c %u connections need\n",
			(unsigned long long)behind,
			((double)o->rate * res->elapsed_s - (double)behind) /
				res->elapsed_s,
			(unsigned long long)o->rate, o->conns);
out_lc:
	for (unsigned i = 0; i < ld.nloops; i++) {
		free(ld.lc[i].slot);
		free(ld.lc[i].retry);
		free(ld.lc[i].free);
		free(ld.lc[i].in_free);
		free(ld.lc[i].pat);
	}
	free(ld.lc);
out_eng:
	coil_engine_destroy(ld.eng);
out_req:
	free(copies);
	return ret;
}
