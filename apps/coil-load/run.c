/* SPDX-License-Identifier: MIT */
/*
 * The load itself: one client service on the engine, every loop opening its
 * share of the connections from the loop_start hook and keeping them busy
 * (conn.c; open.c with --rate); here the loops' timers and the run.
 */
#include "run.h"

#include <coil/post.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY (64u << 20)

static uint64_t errors_of(const struct load_stats *st)
{
	return st->connect_errors + st->read_errors + st->write_errors +
	       st->timeouts + st->invalid + st->mismatches + st->tls_errors;
}

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

static void tick_fired(struct coil_timer *t)
{
	struct lctx *lc = t->data;
	uint64_t now = coil_loop_now_ns(lc->loop);

	if (lc->done)
		return;
	if (lc->rate > 0)
		load_open_dispatch(lc, now);
	if (now >= lc->next_check_ns) {
		lc->next_check_ns = now + TICK_MS * 1000000ull;
		if (lc->nretry && now >= lc->retry_at_ns) {
			lc->retry_at_ns = 0;
			for (unsigned i = 0; i < lc->nconns && lc->nretry; i++)
				if (lc->retry[i]) {
					lc->retry[i] = 0;
					lc->nretry--;
					load_slot_connect(lc, i);
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

int64_t load_cpu_us(int pid)
{
	clockid_t cid;
	struct timespec ts;

	/* ns resolution (clock ticks of /proc/PID/stat would put ~1% of
	 * noise on a short run) */
	/* (the clock id encodes the pid: one that does not exist can come
	 * out as some other clock, so ask whether it exists first) */
	if (pid <= 0 || (kill((pid_t)pid, 0) && errno != EPERM) ||
	    clock_getcpuclockid((pid_t)pid, &cid) ||
	    clock_gettime(cid, &ts))
		return -1;
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* --warmup is over: the figures start from here. */
static void warm_fired(struct coil_timer *t)
{
	struct lctx *lc = t->data;
	struct load *ld = lc->ld;

	/* the rates start again; connections and errors count from the
	 * start (an error in the warm-up is still an error) */
	lc->st.done = lc->st.sent = 0;
	lc->st.tls_full = lc->st.tls_resumed = 0;
	lc->st.rx_bytes = lc->st.tx_bytes = 0;
	memset(lc->st.status, 0, sizeof(lc->st.status));
	hist_init(&lc->st.lat);
	lc->start_ns = coil_loop_now_ns(lc->loop);
	lc->issued = 0;
	lc->last_progress_done = 0;
	if (lc->id == 0 && ld->o->cpu_pid)
		ld->cpu0_us = load_cpu_us(ld->o->cpu_pid);
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
	if (atomic_fetch_add(&ld->loops_done, 1) + 1 == ld->nloops) {
		if (ld->o->cpu_pid)
			ld->cpu1_us = load_cpu_us(ld->o->cpu_pid);
		coil_engine_stop(ld->eng);
	}
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
	coil_timer_init(&lc->warm, loop, warm_fired, lc);
	coil_timer_start(&lc->end, ld->o->warmup_ms + ld->o->duration_ms);
	if (ld->o->warmup_ms)
		coil_timer_start(&lc->warm, ld->o->warmup_ms);
	else if (lc->id == 0 && ld->o->cpu_pid)
		ld->cpu0_us = load_cpu_us(ld->o->cpu_pid);
	coil_timer_start(&lc->tick, lc->rate > 0 ? 1 : TICK_MS);
	for (unsigned i = 0; i < lc->nconns; i++)
		load_slot_connect(lc, i);
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
		.dpdk_args = o->dpdk_args,
		.ip = o->ip,
		.gw = o->gw,
		.mbufs = o->mbufs,
		.idle_sleep_us = o->idle_sleep_us,
	};
	struct coil_service svc = { .sz = sizeof(svc) };
	struct coil_tls *tls = NULL;
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
	ret = load_open_check(o, ld.depth);
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
	if (o->tls) {
		struct coil_tls_client_opts to = {
			.sz = sizeof(to),
			.ca_file = o->ca,
			.no_verify = !o->ca,
			.server_name = o->host,
			.alpn = o->mode == MODE_HTTP ? "http/1.1" : NULL,
			.handshake_timeout_ms = (unsigned)o->timeout_ms,
			.no_resume = o->no_resume,
		};
		char why[256];

		ret = coil_tls_client_create(&to, &tls, why, sizeof(why));
		if (ret) {
			fprintf(stderr, "coil-load: TLS%s%s: %s\n",
				o->ca ? ": --ca " : "", o->ca ? o->ca : "", why);
			goto out_req;
		}
	}
	if (o->rate)
		eo.loop_turn = load_open_turn;
	ld.nloops = o->threads;
	/* On DPDK the port may grant fewer queue pairs than loops asked for:
	 * then fewer loops carry every connection. */
	per = o->dpdk_args ? o->conns : (o->conns + ld.nloops - 1) / ld.nloops;
	eo.cores = ld.nloops;
	eo.max_conns = per * 2 + 64;
	ret = coil_engine_create(&eo, &ld.eng);
	if (ret) {
		fprintf(stderr, "coil-load: cannot create the engine: %s%s\n",
			strerror(-ret), o->dpdk_args ? " (DPDK: see the "
			"EAL's lines above)" : "");
		goto out_req;
	}
	if (coil_engine_loops(ld.eng) < ld.nloops) {
		ld.nloops = coil_engine_loops(ld.eng);
		fprintf(stderr, "coil-load: running %u loop(s): as many as the "
			"port has queue pairs\n", ld.nloops);
	}
	svc.addr = o->addr;
	svc.port = o->port;
	svc.ops = o->mode == MODE_ECHO ? &load_echo_ops : &load_http_ops;
	svc.state_size = sizeof(struct cs) + ld.depth * sizeof(uint64_t);
	svc.max_input = 16u << 20;
	svc.tls = tls;
	ld.svc = coil_engine_client(ld.eng, &svc);
	if (ld.svc < 0) {
		ret = ld.svc;
		fprintf(stderr, "coil-load: %s:%u: %s\n", o->addr, o->port,
			strerror(-ret));
		goto out_eng;
	}
	/* On DPDK the port's link comes up with its peer: the run (and its
	 * connect deadlines) starts once it is up, not while it comes up. */
	ret = coil_engine_link_wait(ld.eng, (unsigned)o->link_wait_ms);
	if (ret) {
		fprintf(stderr, "coil-load: the %s port's link is not up after "
			"%llu ms (--link-wait): is its peer there?\n",
			coil_engine_backend(ld.eng),
			(unsigned long long)o->link_wait_ms);
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
	ld.cpu0_us = ld.cpu1_us = -1;
	ret = coil_engine_run(ld.eng);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ld.tty)
		fputc('\n', stderr);
	res->backend = coil_engine_backend(ld.eng);
	res->server_cpu_us = ld.cpu0_us >= 0 && ld.cpu1_us >= ld.cpu0_us
				     ? ld.cpu1_us - ld.cpu0_us
				     : -1;
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
	coil_tls_destroy(tls);
	free(copies);
	return ret;
}
