/* SPDX-License-Identifier: MIT */
/*
 * coil-load: a load generator on the coil engine (one pinned loop per
 * thread, io_uring or epoll; or DPDK with coil's own TCP, --dpdk). Shared types of its parts:
 *   hist.c    log-linear latency histogram
 *   args.c    command line and URL parsing
 *   conn.c    the protocols (echo, http) on the engine loops
 *   open.c    the open loop (--rate)
 *   run.c     the loops' timers and the engine run (run.h: their state)
 *   report.c  text and JSON results
 */
#ifndef COIL_LOAD_H
#define COIL_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- histogram (hist.c) ----
 * Log-linear, like HdrHistogram: values below 2^HIST_SUB_BITS are exact;
 * above, each power of two is split into 2^HIST_SUB_BITS equal buckets, so
 * a reported value is at most 1/128 (0.78%) above the true one (never
 * below). Values are nanoseconds, clamped at 2^HIST_MAX_BITS - 1 (~18 min).
 * 35 KiB per histogram, no allocation, O(1) record. */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_BITS 40
#define HIST_BUCKETS ((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t count, min, max, sum;
	uint64_t b[HIST_BUCKETS];
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t v);
/* Add every value of `src` to `dst`. */
void hist_merge(struct hist *dst, const struct hist *src);
/* The value at percentile p (0 < p <= 100): the highest value of the bucket
 * holding the ceil(p% * count)-th smallest value, capped at the exact max;
 * 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double p);
/* Bucket index of v, and the highest value that bucket holds. */
unsigned hist_index(uint64_t v);
uint64_t hist_bucket_high(unsigned idx);

/* ---- echo pattern ----
 * Every connection sends a stream of bytes taken from one shared random
 * pattern of PAT_LEN bytes, starting at its own offset (wrapping). The
 * pattern holds PAT_LEN + PAT_TAIL bytes (the tail repeats the start), so
 * any run of up to PAT_TAIL bytes from any offset is contiguous. */
#define PAT_LEN (1u << 20)
#define PAT_TAIL (1u << 20)
/* Fill `pat` (PAT_LEN + PAT_TAIL bytes) from `seed`. */
void pattern_fill(uint8_t *pat, uint64_t seed);
/* Compare `len` received bytes with the stream of offset `off` at stream
 * position `pos`; returns the number of bytes that differ. */
uint64_t pattern_check(const uint8_t *pat, uint32_t off, uint64_t pos,
		       const uint8_t *data, size_t len);

/* ---- options (args.c) ---- */
enum load_mode { MODE_ECHO = 1, MODE_HTTP };

#define LOAD_MAX_HEADERS 32
#define LOAD_MAX_CPUS 1024

struct load_opts {
	enum load_mode mode;
	/* target */
	char host[256];          /* as given (Host header) */
	char addr[64];           /* numeric address connected to */
	uint16_t port;
	char path[2048];         /* http: path and query */
	/* common */
	unsigned conns;          /* -c, default 10 */
	unsigned threads;        /* -t, default: CPUs (or --cores count) */
	uint64_t duration_ms;    /* -d, default 10 s */
	uint64_t timeout_ms;     /* --timeout, default 5000 */
	uint64_t link_wait_ms;   /* --link-wait, default 10000 (DPDK) */
	int cpus[LOAD_MAX_CPUS]; /* --cores */
	unsigned ncpus;
	const char *json;        /* --json FILE */
	int backend;             /* enum coil_backend_kind */
	int poll;                /* enum coil_poll_mode */
	/* DPDK (--dpdk): coil's own TCP on the first port; borrowed from
	 * argv. NULL dpdk_args: kernel sockets. */
	const char *dpdk_args;
	const char *ip, *gw;     /* --ip A.B.C.D/NN (required), --gw */
	unsigned mbufs;          /* --mbufs (0: the engine's default) */
	unsigned idle_sleep_us;  /* --idle-sleep-us */
	bool quiet;              /* --quiet: no progress line */
	uint64_t warmup_ms;      /* --warmup: run this long before counting */
	int cpu_pid;             /* --cpu-pid: a server whose CPU time over
				    the counted time is reported; 0: none */
	/* echo */
	uint32_t size;           /* --size, default 64 */
	uint32_t depth;          /* --depth, default 1 */
	bool verify;             /* --verify */
	/* http */
	uint32_t pipeline;       /* --pipeline, default 1 */
	uint64_t rate;           /* --rate req/s, 0: closed loop */
	const char *headers[LOAD_MAX_HEADERS];
	unsigned nheaders;
	char method[32];         /* --method, default GET */
	const char *body_file;   /* --body */
	bool close;              /* --close: one request per connection */
	/* TLS: https:// or --tls */
	bool tls;
	const char *ca;          /* --ca FILE: verify the server; NULL: don't */
	bool no_resume;          /* --no-resume: a full handshake every time */
	bool handshakes;         /* --handshakes: one request (message) per
				    connection, then a new one */
};

/* Parse argv (argv[0] is the program). Returns 0 to run, 1 when --help
 * was printed to `out`, -1 after an error message on `err`. Resolves the
 * host (getaddrinfo) into o->addr. */
int load_parse_args(int argc, char **argv, struct load_opts *o, FILE *out,
		    FILE *err);
/* Split "http[s]://host[:port][/path]" into o->host, o->port, o->path
 * (https: o->tls, port 443; no resolution). Returns 0 or -1 with a reason in why. */
int load_parse_url(const char *url, struct load_opts *o, char *why, size_t n);
/* Split "host:port" / "[v6]:port". Returns 0 or -1 with a reason. */
int load_parse_hostport(const char *s, struct load_opts *o, char *why,
			size_t n);
/* Parse "0,2-3" into cpus[] (at most max). Returns the count or -1. */
int load_parse_cpus(const char *s, int *cpus, unsigned max);
/* Parse a duration: "10", "10s", "500ms", "2m". Returns 0 or -1. */
int load_parse_duration(const char *s, uint64_t *ms);
void load_usage(FILE *f);

/* ---- results ---- */
struct load_stats {
	uint64_t done;           /* responses / echoed messages */
	uint64_t rx_bytes, tx_bytes;
	uint64_t connects;       /* connections established */
	uint64_t connect_errors, read_errors, write_errors, timeouts;
	uint64_t invalid;        /* responses that failed to parse */
	uint64_t mismatches;     /* echo --verify: bytes that differed */
	uint64_t sent;           /* requests / messages sent */
	/* TLS: handshakes completed (counted time), resumed among them,
	 * and handshakes that failed (an error) */
	uint64_t tls_full, tls_resumed, tls_errors;
	const char *tls_version, *tls_cipher;   /* OpenSSL's static names */
	uint64_t status[1000];   /* responses per status code */
	struct hist lat;         /* ns */
};

struct load_result {
	struct load_stats st;    /* summed over threads */
	double elapsed_s;
	int64_t server_cpu_us;   /* --cpu-pid's CPU over the counted time;
				    -1: not measured */
	unsigned threads;
	const char *backend;
};

void load_stats_merge(struct load_stats *dst, const struct load_stats *src);
/* Errors that make the exit status non-zero: connect, read, write,
 * timeout, invalid, mismatches, and responses outside 2xx/3xx. */
uint64_t load_error_total(const struct load_stats *st);
uint64_t load_bad_status(const struct load_stats *st);
void load_report_text(FILE *f, const struct load_opts *o,
		      const struct load_result *r);
/* Returns 0 or -errno. */
int load_report_json(const char *path, const struct load_opts *o,
		     const struct load_result *r);

/* ---- the run (run.c) ---- */
/* CPU time (user + system, all threads) of process pid in µs, or -1 with
 * errno set. */
int64_t load_cpu_us(int pid);
/* Build the HTTP request of `o` into a malloc'd buffer (*out, *len).
 * Returns 0 or -1 with a message on stderr. */
int load_build_request(const struct load_opts *o, char **out, size_t *len);
/* Run the load described by `o`. Returns 0 or -errno (engine failure). */
int load_run(const struct load_opts *o, struct load_result *r);

#endif
