/* SPDX-License-Identifier: MIT */
/*
 * coil/stats.h: per-loop counters summed on read, their Prometheus text
 * exposition, and a tiny HTTP responder for a separate metrics port.
 */
#include "internal.h"
#include "xthread.h"

#include <coil/stats.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

int coil_loop_stats(const struct coil_loop *loop, struct coil_stats *out)
{
	struct coil_stats s;
	unsigned refused = 0;

	if (!out || out->sz < sizeof(size_t) || !loop)
		return -EINVAL;
	memset(&s, 0, sizeof(s));
	s.sz = out->sz;
	s.loops = 1;
	s.conns_open = LD(loop->nconns);
	s.accepted = atomic_load_explicit(&loop->accepted,
					  memory_order_relaxed);
	s.closed = atomic_load_explicit(&loop->closed, memory_order_relaxed);
	for (unsigned i = 0; i < LD(loop->nlst); i++)
		refused += LD(loop->lst[i].refused);
	s.refused = refused;
	s.resets = LD(loop->st.resets);
	s.rx_bytes = LD(loop->rx_bytes);
	s.tx_bytes = LD(loop->tx_bytes);
	s.recvs = LD(loop->recvs);
	s.sends = LD(loop->sends);
	s.bufs = LD(loop->pool.count);
	s.bufs_in_use = s.bufs - LD(loop->pool.nfree);
	s.buf_starved = LD(loop->st.starved);
	s.held_bytes = LD(loop->st.held_bytes);
	s.write_paused = LD(loop->st.write_paused);
	s.send_heap = (uint64_t)LD(loop->seg_heap) + LD(loop->chunk_heap);
	s.timers_armed = LD(loop->wheel.count);
	s.turns = LD(loop->turns);
	s.submits = LD(loop->st.submits);
	s.completions = LD(loop->st.completions);
	s.cq_overflow = LD(loop->st.cq_overflow);
	if (loop->inbox) {
		const struct coil__inbox *in = loop->inbox;

		s.defer_submitted = LD(in->defers);
		s.defer_done = LD(in->defer_done);
		s.defer_refused = LD(in->defer_full);
		s.posts_run = LD(in->posts_run);
		if (in->pool) {
			s.defer_queued = coil__mpmc_len(&in->pool->q);
			s.defer_running = atomic_load_explicit(
				&in->pool->running, memory_order_relaxed);
		}
	}
	for (int i = 0; i < 5; i++)
		s.http[i] = LD(loop->st.http[i]);
	memcpy(out, &s, out->sz < sizeof(s) ? out->sz : sizeof(s));
	return 0;
}

int coil_engine_stats(struct coil_engine *eng, struct coil_stats *out)
{
	struct coil_stats sum, one;
	unsigned n = coil_engine_loops(eng);
	uint64_t *a = &sum.conns_open, *b = &one.conns_open;
	size_t words = (sizeof(sum) - offsetof(struct coil_stats, conns_open)) /
		       sizeof(uint64_t);

	if (!out || out->sz < sizeof(size_t))
		return -EINVAL;
	memset(&sum, 0, sizeof(sum));
	for (unsigned i = 0; i < n; i++) {
		struct coil_loop *loop = coil_engine_loop(eng, i);

		if (!loop)
			continue;
		one.sz = sizeof(one);
		coil_loop_stats(loop, &one);
		/* the pool is the engine's: count its gauges once */
		if (sum.loops)
			one.defer_queued = one.defer_running = 0;
		for (size_t w = 0; w < words; w++)
			a[w] += b[w];
		sum.loops++;
	}
	sum.sz = out->sz;
	memcpy(out, &sum, out->sz < sizeof(sum) ? out->sz : sizeof(sum));
	return 0;
}

void coil_stats_http(struct coil_loop *loop, int status)
{
	if (status >= 100 && status < 600)
		coil__stat_add(loop->st.http[status / 100 - 1], 1);
}

/* ---- Prometheus text exposition ---- */
struct out {
	char *p;
	size_t len, cap;
	bool full;
};

static void put(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len)
		o->full = true;
	else
		o->len += (size_t)n;
}

#define M(name, type, field, help) \
	{ name, type, offsetof(struct coil_stats, field), help }

static const struct metric {
	const char *name, *type;
	size_t off;
	const char *help;
} per_loop[] = {
	M("connections_open", "gauge", conns_open, "Open connections"),
	M("connections_accepted_total", "counter", accepted,
	  "Connections accepted (steered to this loop)"),
	M("connections_refused_total", "counter", refused,
	  "Connections refused at the connection limit (max_conns)"),
	M("connections_closed_total", "counter", closed, "Connections closed"),
	M("connections_reset_total", "counter", resets,
	  "Connections reset by the peer"),
	M("received_bytes_total", "counter", rx_bytes, "Bytes received"),
	M("sent_bytes_total", "counter", tx_bytes, "Bytes sent"),
	M("receives_total", "counter", recvs, "Receive completions"),
	M("sends_total", "counter", sends, "Sends issued"),
	M("buffers", "gauge", bufs, "Receive buffers"),
	M("buffers_in_use", "gauge", bufs_in_use, "Receive buffers not free"),
	M("buffer_starved_total", "counter", buf_starved,
	  "Receives ended for lack of receive buffers"),
	M("held_input_bytes_total", "counter", held_bytes,
	  "Input bytes held aside while a connection was paused"),
	M("write_paused_total", "counter", write_paused,
	  "Reads paused at the write high-water mark"),
	M("send_heap_total", "counter", send_heap,
	  "Send memory taken from the heap (loop slabs full)"),
	M("timers_armed", "gauge", timers_armed, "Timers armed"),
	M("loop_turns_total", "counter", turns, "Loop turns"),
	M("uring_submits_total", "counter", submits,
	  "io_uring submissions (per turn: divide by loop_turns)"),
	M("uring_completions_total", "counter", completions,
	  "io_uring completions reaped"),
	M("uring_cq_overflow_total", "counter", cq_overflow,
	  "io_uring completions that overflowed the CQ"),
	M("defer_submitted_total", "counter", defer_submitted,
	  "Jobs handed to the worker pool"),
	M("defer_done_total", "counter", defer_done,
	  "Jobs whose result came back"),
	M("defer_refused_total", "counter", defer_refused,
	  "Jobs refused with EAGAIN (queue full)"),
	M("posts_run_total", "counter", posts_run,
	  "Messages from other loops run"),
};

int coil_stats_prometheus(struct coil_engine *eng, char *buf, size_t cap)
{
	unsigned n = coil_engine_loops(eng), k;
	struct coil_stats *ls, sum;
	struct out o = { buf, 0, cap, cap == 0 };

	ls = calloc(n ? n : 1, sizeof(*ls));
	if (!ls)
		return -ENOMEM;
	for (k = 0; k < n; k++) {
		struct coil_loop *loop = coil_engine_loop(eng, k);

		ls[k].sz = sizeof(ls[k]);
		if (loop)
			coil_loop_stats(loop, &ls[k]);
	}
	sum.sz = sizeof(sum);
	coil_engine_stats(eng, &sum);
	for (size_t m = 0; m < sizeof(per_loop) / sizeof(per_loop[0]); m++) {
		const struct metric *d = &per_loop[m];

		put(&o, "# HELP coil_%s %s\n# TYPE coil_%s %s\n", d->name,
		    d->help, d->name, d->type);
		for (k = 0; k < n; k++)
			put(&o, "coil_%s{loop=\"%u\"} %llu\n", d->name, k,
			    (unsigned long long)*(const uint64_t *)(const void *)(
				    (const char *)&ls[k] + d->off));
	}
	put(&o, "# HELP coil_http_responses_total HTTP responses by status "
		"class\n# TYPE coil_http_responses_total counter\n");
	for (k = 0; k < n; k++)
		for (int c = 0; c < 5; c++)
			put(&o, "coil_http_responses_total{loop=\"%u\","
				"code=\"%dxx\"} %llu\n",
			    k, c + 1, (unsigned long long)ls[k].http[c]);
	put(&o, "# HELP coil_defer_queued Jobs waiting for a worker\n"
		"# TYPE coil_defer_queued gauge\ncoil_defer_queued %llu\n",
	    (unsigned long long)sum.defer_queued);
	put(&o, "# HELP coil_defer_running Jobs running on a worker\n"
		"# TYPE coil_defer_running gauge\ncoil_defer_running %llu\n",
	    (unsigned long long)sum.defer_running);
	put(&o, "# HELP coil_loops Loops running\n# TYPE coil_loops gauge\n"
		"coil_loops %u\n", sum.loops);
	free(ls);
	return o.full ? -ENOSPC : (int)o.len;
}

char *coil_stats_prometheus_dup(struct coil_engine *eng, size_t *len)
{
	size_t cap = 64u << 10;
	char *buf = NULL;
	int n = -ENOSPC;

	while (n == -ENOSPC && cap <= (64u << 20)) {
		char *nb = realloc(buf, cap);

		if (!nb)
			break;
		buf = nb;
		n = coil_stats_prometheus(eng, buf, cap);
		cap *= 2;
	}
	if (n < 0) {
		free(buf);
		return NULL;
	}
	*len = (size_t)n;
	return buf;
}

/* ---- a separate metrics port ---- */
static size_t metrics_data(struct coil_conn *c, const uint8_t *d, size_t n)
{
	struct coil_engine *eng = coil_conn_service_data(c);
	char *body, head[160];
	size_t len = 0;

	if (!memmem(d, n, "\r\n\r\n", 4) && !memmem(d, n, "\n\n", 2)) {
		if (n > 8192) {
			coil__log("loop %u: metrics request head over 8 KiB: "
				  "closing", coil_conn_loop(c)->id);
			coil_conn_close(c);
			return n;
		}
		return 0;  /* the rest of the head is to come */
	}
	body = coil_stats_prometheus_dup(eng, &len);
	if (!body) {
		static const char err[] = "HTTP/1.0 500 Internal Server Error\r\n"
					  "Content-Length: 0\r\n\r\n";

		coil_conn_write_static(c, err, sizeof(err) - 1);
	} else {
		int hl = snprintf(head, sizeof(head),
				  "HTTP/1.0 200 OK\r\nContent-Type: text/plain; "
				  "version=0.0.4; charset=utf-8\r\n"
				  "Content-Length: %zu\r\nConnection: close\r\n\r\n",
				  len);

		coil_conn_write(c, head, (size_t)hl);
		if (n < 5 || memcmp(d, "HEAD ", 5))
			coil_conn_write(c, body, len);
	}
	free(body);
	coil_conn_close(c);
	return n;
}

const struct coil_proto_ops coil_stats_http_ops = {
	.on_data = metrics_data,
};

void coil__stats_log(struct coil_loop *loop)
{
	struct coil_stats s = { .sz = sizeof(s) };

	coil_loop_stats(loop, &s);
	coil__log("loop %u: %llu resets, %llu refused, %llu starved, %llu "
		  "write pauses, %llu B held, %llu submits, %llu completions, "
		  "%llu CQ overflow, %llu jobs deferred (%llu refused), %llu "
		  "posts",
		  loop->id, (unsigned long long)s.resets,
		  (unsigned long long)s.refused,
		  (unsigned long long)s.buf_starved,
		  (unsigned long long)s.write_paused,
		  (unsigned long long)s.held_bytes,
		  (unsigned long long)s.submits,
		  (unsigned long long)s.completions,
		  (unsigned long long)s.cq_overflow,
		  (unsigned long long)s.defer_submitted,
		  (unsigned long long)s.defer_refused,
		  (unsigned long long)s.posts_run);
}
