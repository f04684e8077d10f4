// SPDX-License-Identifier: MIT
/*
 * echo-integrity: byte-exact integrity client for an echo server.
 *
 * Opens --conns connections at once (nonblocking connects, at most --batch
 * in flight, retried with backoff on transient errors), then on every one
 * sends --msgs messages of random size in [--min-size, --max-size] while
 * reading the echo back as soon as it is readable and comparing every byte.
 * Message content is a deterministic stream per (seed, wave, connection):
 * byte i is derived from i alone, so sender and checker need no shared
 * buffer and a mismatch is reported at its exact stream offset.
 *
 * --resets K: K connections per wave stop in the middle of a message and
 * close with SO_LINGER {1, 0}, i.e. send an RST while the server is still
 * echoing to them. Whatever they got back before that is checked too.
 *
 * A wave ends when every connection is done (all bytes echoed, or reset);
 * --waves repeats that against the same server, stopping after the first
 * wave that failed, or after the wave in progress when SIGUSR1 arrives (a
 * test that must span some live change runs "enough" waves and stops it
 * once the change is done). Prints on stdout
 *   conns=N waves=W bytes=<echoed> mismatched=<n> missing=<n> errors=<n> ...
 * and exits 0 when all is well, 1 when the server lost, corrupted, added or
 * stalled data (or closed/reset a connection), 2 on usage/setup errors.
 */
#include "client_common.h"

#include <signal.h>

static volatile sig_atomic_t stop_after_wave;

static void on_usr1(int sig)
{
	(void)sig;
	stop_after_wave = 1;
}

#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/epoll.h>

#define MAX_MSG_SIZE (256u * 1024u)
#define MAX_CONNS 100000u
#define IO_CHUNK (64u * 1024u)
#define IO_ROUNDS 4	/* reads or writes per readiness event, for fairness */
#define MAX_REPORTS 20	/* detail lines printed per kind of problem */
#define EVENT_BATCH 512
#define DIAG_WINDOW 32		/* bytes compared when diagnosing a shift */
#define DIAG_MAX_SHIFT 4096	/* largest loss/repeat recognised */

enum conn_state {
	ST_NEW,		/* not started */
	ST_RETRY,	/* connect failed transiently, waiting for retry_at */
	ST_CONNECTING,	/* connect in progress */
	ST_OPEN,	/* connected */
	ST_DONE,	/* everything echoed (or reset as planned); closed */
	ST_FAILED,	/* error; closed */
};

struct conn {
	uint64_t key;		/* content stream key */
	uint64_t size_rng;	/* message-size PRNG, send side */
	uint64_t total;		/* bytes of all M messages */
	uint64_t limit;		/* bytes to send: total, or the reset point */
	uint64_t sent;
	uint64_t rcvd;
	uint64_t msg_end;	/* stream offset where the current message ends */
	uint64_t mismatched;
	int64_t retry_at;
	uint32_t msgs_left;	/* messages not started yet */
	uint32_t events;	/* epoll interest currently registered */
	int fd;
	int retries;
	enum conn_state state;
	bool reset;		/* planned mid-stream RST */
};

struct opts {
	const char *addr;
	unsigned port;
	uint32_t conns;
	uint32_t waves;
	uint32_t msgs;
	uint32_t min_size;
	uint32_t max_size;
	uint64_t seed;
	uint32_t resets;
	uint32_t timeout_s;
	uint32_t batch;
	bool verbose;
};

struct totals {
	uint64_t bytes;
	uint64_t mismatched;
	uint64_t missing;
	uint64_t errors;
	uint64_t resets;
	uint64_t stalled;
	uint64_t retries;
};

struct run {
	struct opts o;
	struct sockaddr_in sa;
	struct conn *conns;
	struct totals t;
	int ep;
	uint32_t wave;
	uint32_t next_new;	/* first ST_NEW connection */
	uint32_t connecting;	/* ST_CONNECTING count */
	uint32_t waiting;	/* ST_RETRY count */
	uint32_t finished;	/* ST_DONE + ST_FAILED in this wave */
	bool io_phase;		/* all connected: exchanging data */
	int64_t deadline;
	unsigned reports;
	unsigned char rbuf[IO_CHUNK];
	unsigned char ebuf[IO_CHUNK];
	unsigned char wbuf[IO_CHUNK];
};

/* splitmix64: a fast, well-mixed 64-bit PRNG and hash. */
static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rng_next(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ull;
	return mix64(*state);
}

/* Bytes [off, off + n) of the content stream @key. */
static void stream_fill(uint64_t key, uint64_t off, unsigned char *p, size_t n)
{
	while (n) {
		uint64_t v = mix64(key + ((off >> 3) + 1) * 0x9e3779b97f4a7c15ull);
		unsigned i = off & 7;

		for (; i < 8 && n; i++, n--, off++)
			*p++ = (unsigned char)(v >> (8 * i));
	}
}

/*
 * Message size in [min, max]: half the draws uniform, half log-uniform so
 * small messages (1 B, a few bytes, a few hundred) are common too.
 */
static uint32_t draw_size(const struct opts *o, uint64_t *rng)
{
	uint64_t span = (uint64_t)o->max_size - o->min_size + 1;
	uint64_t r = rng_next(rng);
	unsigned bits, k;
	uint64_t cap;

	if (r & 1)
		return o->min_size + (uint32_t)((r >> 1) % span);
	bits = 64 - (unsigned)__builtin_clzll(span);
	k = (unsigned)((r >> 1) % (bits + 1));
	cap = (1ull << k) < span ? (1ull << k) : span;
	return o->min_size + (uint32_t)(rng_next(rng) % cap);
}

static const char *state_name(enum conn_state s)
{
	static const char *const names[] = { "not-started", "connect-retry", "connecting",
					     "open", "done", "failed" };
	return names[s];
}

static bool report_ok(struct run *r)
{
	if (r->reports < MAX_REPORTS) {
		r->reports++;
		return true;
	}
	if (r->reports++ == MAX_REPORTS)
		fprintf(stderr, "echo-integrity: (further problem reports suppressed)\n");
	return false;
}

static void set_events(struct run *r, struct conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.u32 = (uint32_t)(c - r->conns) };

	if (c->events == events)
		return;
	if (epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev)) {
		perror("epoll_ctl(MOD)");
		exit(CC_EXIT_USAGE);
	}
	c->events = events;
}

/* Bytes that should have come back but did not. */
static uint64_t conn_missing(const struct conn *c)
{
	return (c->reset ? c->sent : c->total) - c->rcvd;
}

static void conn_close(struct run *r, struct conn *c, enum conn_state st)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->state == ST_CONNECTING)
		r->connecting--;
	c->state = st;
	r->finished++;
}

static void conn_fail(struct run *r, struct conn *c, const char *why, int err)
{
	uint32_t id = (uint32_t)(c - r->conns);

	if (report_ok(r))
		fprintf(stderr,
			"echo-integrity: wave %u conn %u: %s%s%s (state=%s sent=%" PRIu64
			" echoed=%" PRIu64 " total=%" PRIu64 "%s)\n",
			r->wave, id, why, err ? ": " : "", err ? strerror(err) : "",
			state_name(c->state), c->sent, c->rcvd, c->total,
			c->reset ? " reset-planned" : "");
	r->t.errors++;
	r->t.missing += conn_missing(c);
	conn_close(r, c, ST_FAILED);
}

static void conn_finish(struct run *r, struct conn *c)
{
	conn_close(r, c, ST_DONE);
}

/* Planned mid-stream abort: RST instead of FIN. */
static void conn_reset(struct run *r, struct conn *c)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)))
		perror("setsockopt(SO_LINGER)");
	r->t.resets++;
	conn_close(r, c, ST_DONE);
}

static void check_done(struct run *r, struct conn *c)
{
	if (c->state == ST_OPEN && !c->reset && c->rcvd == c->total)
		conn_finish(r, c);
}

/*
 * Explain a first mismatch when the bytes seen are the stream shifted by a
 * few bytes (data lost or repeated by the server) rather than garbage.
 */
static const char *diagnose(const struct conn *c, const unsigned char *got, size_t n, uint64_t off)
{
	static char msg[96];
	unsigned char want[DIAG_WINDOW];

	if (n < DIAG_WINDOW)
		return "";
	for (uint64_t d = 1; d <= DIAG_MAX_SHIFT; d++) {
		stream_fill(c->key, off + d, want, DIAG_WINDOW);
		if (!memcmp(got, want, DIAG_WINDOW)) {
			snprintf(msg, sizeof(msg), "; looks like %" PRIu64 " byte(s) lost", d);
			return msg;
		}
		if (d > off)
			continue;
		stream_fill(c->key, off - d, want, DIAG_WINDOW);
		if (!memcmp(got, want, DIAG_WINDOW)) {
			snprintf(msg, sizeof(msg), "; looks like %" PRIu64 " byte(s) repeated", d);
			return msg;
		}
	}
	return "";
}

/* Check @n echoed bytes in r->rbuf against the stream. false: conn failed. */
static bool verify(struct run *r, struct conn *c, size_t n)
{
	uint32_t id = (uint32_t)(c - r->conns);
	size_t ok_len = n, i, bad = 0, first = 0;

	if (c->rcvd + n > c->sent)
		ok_len = (size_t)(c->sent - c->rcvd);
	stream_fill(c->key, c->rcvd, r->ebuf, ok_len);
	if (memcmp(r->rbuf, r->ebuf, ok_len)) {
		for (i = 0; i < ok_len; i++) {
			if (r->rbuf[i] != r->ebuf[i]) {
				if (!bad)
					first = i;
				bad++;
			}
		}
		if (!c->mismatched && report_ok(r))
			fprintf(stderr,
				"echo-integrity: wave %u conn %u: mismatch at stream offset %" PRIu64
				": got 0x%02x expected 0x%02x (%zu bad bytes in this %zu-byte read)%s\n",
				r->wave, id, c->rcvd + first, r->rbuf[first], r->ebuf[first], bad,
				ok_len, diagnose(c, r->rbuf + first, ok_len - first, c->rcvd + first));
		c->mismatched += bad;
		r->t.mismatched += bad;
	}
	c->rcvd += ok_len;
	r->t.bytes += n;
	if (ok_len < n) {
		/* Bytes we never sent: garbage, duplicated or misrouted data. */
		c->mismatched += n - ok_len;
		r->t.mismatched += n - ok_len;
		conn_fail(r, c, "echoed more bytes than were sent", 0);
		return false;
	}
	return true;
}

static void do_read(struct run *r, struct conn *c)
{
	for (int round = 0; round < IO_ROUNDS; round++) {
		ssize_t n = recv(c->fd, r->rbuf, IO_CHUNK, 0);

		if (n > 0) {
			if (!verify(r, c, (size_t)n))
				return;
			if ((size_t)n < IO_CHUNK)
				break;
		} else if (n == 0) {
			conn_fail(r, c, "server closed the connection early", 0);
			return;
		} else if (errno == EINTR) {
			continue;
		} else if (errno == EAGAIN) {
			break;
		} else {
			conn_fail(r, c, "recv", errno);
			return;
		}
	}
	check_done(r, c);
}

static void do_write(struct run *r, struct conn *c)
{
	for (int round = 0; round < IO_ROUNDS && c->sent < c->limit; round++) {
		size_t len;
		ssize_t n;

		if (c->sent == c->msg_end) {
			/* sent < limit <= total, so a message is left. */
			c->msgs_left--;
			c->msg_end = c->sent + draw_size(&r->o, &c->size_rng);
		}
		len = (size_t)(c->msg_end - c->sent);
		if (len > c->limit - c->sent)
			len = (size_t)(c->limit - c->sent);
		if (len > IO_CHUNK)
			len = IO_CHUNK;
		stream_fill(c->key, c->sent, r->wbuf, len);
		n = send(c->fd, r->wbuf, len, MSG_NOSIGNAL);
		if (n > 0) {
			c->sent += (size_t)n;
			if ((size_t)n < len)
				break;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && errno == EAGAIN) {
			break;
		} else {
			conn_fail(r, c, "send", n < 0 ? errno : EIO);
			return;
		}
	}
	if (c->sent < c->limit)
		return;
	if (c->reset) {
		conn_reset(r, c);
		return;
	}
	set_events(r, c, EPOLLIN);
	check_done(r, c);
}

static void conn_connected(struct run *r, struct conn *c)
{
	c->state = ST_OPEN;
	r->connecting--;
	/* Data starts once everyone is connected; ERR/HUP are always reported. */
	set_events(r, c, r->io_phase ? EPOLLIN | EPOLLOUT : 0);
}

static void conn_connect_failed(struct run *r, struct conn *c, int err)
{
	if (cc_connect_retryable(err, c->retries)) {
		if (c->state == ST_CONNECTING)
			r->connecting--;
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		c->retries++;
		r->t.retries++;
		c->retry_at = cc_now_ms() + cc_backoff_ms(c->retries);
		c->state = ST_RETRY;
		r->waiting++;
		return;
	}
	conn_fail(r, c, "connect", -err);
}

static void conn_start(struct run *r, struct conn *c)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = (uint32_t)(c - r->conns) };
	int ret = cc_connect_start(&r->sa, true, &c->fd);

	if (ret == -EMFILE || ret == -ENFILE) {
		fprintf(stderr, "echo-integrity: out of descriptors: %s\n", strerror(-ret));
		exit(CC_EXIT_USAGE);
	}
	if (ret < 0) {
		c->state = ST_CONNECTING;
		r->connecting++;
		conn_connect_failed(r, c, ret);
		return;
	}
	if (epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev)) {
		perror("epoll_ctl(ADD)");
		exit(CC_EXIT_USAGE);
	}
	c->events = EPOLLOUT;
	c->state = ST_CONNECTING;
	r->connecting++;
	if (ret == 0)
		conn_connected(r, c);
}

/* Start connects up to the batch limit; returns ms until the next retry is due. */
static int64_t start_connects(struct run *r)
{
	int64_t now = cc_now_ms(), next = INT64_MAX;

	if (r->waiting) {
		for (uint32_t i = 0; i < r->next_new; i++) {
			struct conn *c = &r->conns[i];

			if (c->state != ST_RETRY)
				continue;
			if (c->retry_at > now) {
				if (c->retry_at - now < next)
					next = c->retry_at - now;
				continue;
			}
			if (r->connecting >= r->o.batch) {
				next = 1;
				break;
			}
			r->waiting--;
			conn_start(r, c);
		}
	}
	while (r->next_new < r->o.conns && r->connecting < r->o.batch)
		conn_start(r, &r->conns[r->next_new++]);
	return next;
}

static void handle_event(struct run *r, struct conn *c, uint32_t events)
{
	switch (c->state) {
	case ST_CONNECTING: {
		int err = cc_connect_result(c->fd);

		if (err)
			conn_connect_failed(r, c, err);
		else
			conn_connected(r, c);
		return;
	}
	case ST_OPEN:
		if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
			do_read(r, c);
		if (c->state == ST_OPEN && (events & EPOLLOUT))
			do_write(r, c);
		return;
	default:
		return; /* stale event for a connection closed earlier in this batch */
	}
}

static void init_wave(struct run *r)
{
	const struct opts *o = &r->o;

	r->next_new = r->connecting = r->waiting = r->finished = 0;
	r->io_phase = false;
	for (uint32_t i = 0; i < o->conns; i++) {
		struct conn *c = &r->conns[i];
		uint64_t rng, pick = 0, off = 0;

		memset(c, 0, sizeof(*c));
		c->fd = -1;
		c->key = mix64(o->seed ^ mix64(((uint64_t)r->wave << 32) | i));
		c->size_rng = c->key ^ 0x6a09e667f3bcc908ull;
		c->msgs_left = o->msgs;
		/* Exactly K of N connections, spread evenly, reset mid-stream. */
		c->reset = ((uint64_t)(i + 1) * o->resets) / o->conns !=
			   ((uint64_t)i * o->resets) / o->conns;
		if (c->reset) {
			uint64_t prng = c->key ^ 0xbb67ae8584caa73bull;

			pick = rng_next(&prng) % o->msgs;
			c->limit = rng_next(&prng); /* reused below as the cut point */
		}
		rng = c->size_rng;
		for (uint32_t m = 0; m < o->msgs; m++) {
			uint32_t size = draw_size(o, &rng);

			if (c->reset && m == pick)
				/* Cut strictly inside the message when it has an inside. */
				c->limit = size >= 2 ? off + 1 + c->limit % (size - 1) : off + size;
			off += size;
		}
		c->total = off;
		if (!c->reset)
			c->limit = c->total;
	}
}

static void report_stalled(struct run *r)
{
	unsigned shown = 0;

	for (uint32_t i = 0; i < r->o.conns; i++) {
		struct conn *c = &r->conns[i];

		if (c->state == ST_DONE || c->state == ST_FAILED)
			continue;
		if (shown++ < MAX_REPORTS)
			fprintf(stderr,
				"echo-integrity: wave %u conn %u stalled: state=%s sent=%" PRIu64
				"/%" PRIu64 " echoed=%" PRIu64 "%s\n",
				r->wave, i, state_name(c->state), c->sent, c->limit, c->rcvd,
				c->reset ? " reset-planned" : "");
		r->t.stalled++;
		r->t.errors++;
		r->t.missing += conn_missing(c);
		if (c->state == ST_CONNECTING)
			r->connecting--;
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		c->state = ST_FAILED;
	}
	if (shown > MAX_REPORTS)
		fprintf(stderr, "echo-integrity: ... and %u more stalled connections\n",
			shown - MAX_REPORTS);
}

/* One wave; returns false if the deadline passed. */
static bool run_wave(struct run *r)
{
	struct epoll_event evs[EVENT_BATCH];
	uint32_t n = r->o.conns;

	init_wave(r);
	for (;;) {
		int64_t now, wait_ms = start_connects(r);
		int got;

		if (!r->io_phase && r->next_new == n && !r->connecting && !r->waiting) {
			/* Everyone connected (or failed): start the data exchange. */
			r->io_phase = true;
			for (uint32_t i = 0; i < n; i++)
				if (r->conns[i].state == ST_OPEN)
					set_events(r, &r->conns[i], EPOLLIN | EPOLLOUT);
		}
		if (r->finished == n)
			return true;
		now = cc_now_ms();
		if (now >= r->deadline) {
			fprintf(stderr, "echo-integrity: timeout (%u s) in wave %u\n", r->o.timeout_s,
				r->wave);
			report_stalled(r);
			return false;
		}
		if (r->deadline - now < wait_ms)
			wait_ms = r->deadline - now;
		got = epoll_wait(r->ep, evs, EVENT_BATCH, (int)wait_ms);
		if (got < 0 && errno != EINTR) {
			perror("epoll_wait");
			exit(CC_EXIT_USAGE);
		}
		for (int i = 0; i < got; i++)
			handle_event(r, &r->conns[evs[i].data.u32], evs[i].events);
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: echo-integrity --port PORT [--addr 127.0.0.1] [--conns N] [--waves W]\n"
		"         [--msgs M] [--min-size B] [--max-size B] [--seed S] [--resets K]\n"
		"         [--timeout SECONDS] [--batch CONNECTS_IN_FLIGHT] [--verbose]\n"
		"Sizes are at most %u bytes. Exit: 0 ok, 1 server fault, 2 usage/setup.\n",
		MAX_MSG_SIZE);
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "conns", required_argument, NULL, 'c' },
		{ "waves", required_argument, NULL, 'w' },
		{ "msgs", required_argument, NULL, 'm' },
		{ "min-size", required_argument, NULL, 'n' },
		{ "max-size", required_argument, NULL, 'x' },
		{ "seed", required_argument, NULL, 's' },
		{ "resets", required_argument, NULL, 'r' },
		{ "timeout", required_argument, NULL, 't' },
		{ "batch", required_argument, NULL, 'b' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool have_port = false;
	int ch;

	*o = (struct opts){ .addr = "127.0.0.1", .conns = 1, .waves = 1, .msgs = 10,
			    .min_size = 1, .max_size = 65536, .seed = 1, .timeout_s = 60,
			    .batch = 256 };
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a': o->addr = optarg; break;
		case 'p': o->port = (unsigned)cc_parse_u64("port", optarg, 1, 65535); have_port = true; break;
		case 'c': o->conns = (uint32_t)cc_parse_u64("conns", optarg, 1, MAX_CONNS); break;
		case 'w': o->waves = (uint32_t)cc_parse_u64("waves", optarg, 1, 1000000); break;
		case 'm': o->msgs = (uint32_t)cc_parse_u64("msgs", optarg, 1, 100000000); break;
		case 'n': o->min_size = (uint32_t)cc_parse_u64("min-size", optarg, 1, MAX_MSG_SIZE); break;
		case 'x': o->max_size = (uint32_t)cc_parse_u64("max-size", optarg, 1, MAX_MSG_SIZE); break;
		case 's': o->seed = cc_parse_u64("seed", optarg, 0, UINT64_MAX); break;
		case 'r': o->resets = (uint32_t)cc_parse_u64("resets", optarg, 0, MAX_CONNS); break;
		case 't': o->timeout_s = (uint32_t)cc_parse_u64("timeout", optarg, 1, 86400); break;
		case 'b': o->batch = (uint32_t)cc_parse_u64("batch", optarg, 1, MAX_CONNS); break;
		case 'v': o->verbose = true; break;
		case 'h': usage(stdout); exit(CC_EXIT_OK);
		default: usage(stderr); exit(CC_EXIT_USAGE);
		}
	}
	if (optind != argc || !have_port) {
		usage(stderr);
		exit(CC_EXIT_USAGE);
	}
	if (o->min_size > o->max_size) {
		fprintf(stderr, "--min-size must not exceed --max-size\n");
		exit(CC_EXIT_USAGE);
	}
	if (o->resets > o->conns) {
		fprintf(stderr, "--resets must not exceed --conns\n");
		exit(CC_EXIT_USAGE);
	}
}

int main(int argc, char **argv)
{
	static struct run r; /* large buffers: keep off the stack */
	uint32_t waves_run = 0;
	bool timed_out = false;
	int64_t start;

	parse_opts(&r.o, argc, argv);
	if (cc_make_addr(r.o.addr, r.o.port, &r.sa)) {
		fprintf(stderr, "--addr: not an IPv4 address: %s\n", r.o.addr);
		return CC_EXIT_USAGE;
	}
	if (cc_raise_nofile((uint64_t)r.o.conns + 16))
		return CC_EXIT_USAGE;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR1, on_usr1);
	r.conns = calloc(r.o.conns, sizeof(*r.conns));
	r.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!r.conns || r.ep < 0) {
		perror("setup");
		return CC_EXIT_USAGE;
	}
	start = cc_now_ms();
	r.deadline = start + (int64_t)r.o.timeout_s * 1000;
	for (r.wave = 0; r.wave < r.o.waves && !stop_after_wave; r.wave++) {
		int64_t t0 = cc_now_ms();
		uint64_t b0 = r.t.bytes;

		waves_run++;
		if (!run_wave(&r)) {
			timed_out = true;
			break;
		}
		if (r.o.verbose)
			fprintf(stderr, "echo-integrity: wave %u: %" PRIu64 " bytes in %.3f s\n", r.wave,
				r.t.bytes - b0, (double)(cc_now_ms() - t0) / 1000);
		if (r.t.mismatched || r.t.missing || r.t.errors) {
			/* Later waves would only repeat the failure (or hide it in noise). */
			if (r.wave + 1 < r.o.waves)
				fprintf(stderr, "echo-integrity: stopping after wave %u: it failed\n",
					r.wave);
			break;
		}
	}
	printf("conns=%u waves=%u bytes=%" PRIu64 " mismatched=%" PRIu64 " missing=%" PRIu64
	       " errors=%" PRIu64 " resets=%" PRIu64 " stalled=%" PRIu64 " connect_retries=%" PRIu64
	       " timeout=%d secs=%.3f\n",
	       r.o.conns, waves_run, r.t.bytes, r.t.mismatched, r.t.missing, r.t.errors, r.t.resets,
	       r.t.stalled, r.t.retries, timed_out, (double)(cc_now_ms() - start) / 1000);
	fflush(stdout);
	close(r.ep);
	free(r.conns);
	if (timed_out || r.t.mismatched || r.t.missing || r.t.errors)
		return CC_EXIT_FAIL;
	return CC_EXIT_OK;
}
