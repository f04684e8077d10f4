/* SPDX-License-Identifier: MIT */
/* coil-load's command line: strict parsing, one clear message per error. */
#include "load.h"

#include <coil/options.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sched.h>

#define PROG "coil-load"
#define ENGINE_FLAGS (COIL_ENGINE_FLAG_BACKEND | COIL_ENGINE_FLAG_POLL | \
		      COIL_ENGINE_FLAG_DPDK)

void load_usage(FILE *f)
{
	fprintf(f,
		"usage: coil-load echo HOST:PORT [options]\n"
		"       coil-load http URL [options]   (http:// or https://)\n"
		"\n"
		"echo: D messages of B bytes in flight per connection, each sent again\n"
		"when it comes back; http: keep-alive GET (or --method) requests.\n"
		"\n"
		"common options:\n"
		"  -c, --connections N  connections in total (default 10)\n"
		"  -d, --duration D     run time: 10, 10s, 500ms, 2m (default 10s)\n"
		"  -t, --threads N      loops, one pinned thread each (default: CPUs,\n"
		"                       or the number of --cores; 1 with --dpdk)\n"
		"      --cores LIST     CPUs to run on, e.g. 1 or 0,2-3\n"
		"      --timeout MS     a connection with work in flight and no\n"
		"                       progress for MS is a timeout (default 5000)\n"
		"      --link-wait MS   on DPDK, the run starts once the port's link\n"
		"                       is up: fail (status 2) if it is not within MS\n"
		"                       (default 10000)\n"
		"      --warmup D       run D (as -d) before counting anything\n"
		"      --cpu-pid PID    report the CPU time (user + system, all\n"
		"                       threads) that process PID, the server, spent\n"
		"                       over the counted time, per message/response\n"
		"      --json FILE      write every figure as JSON\n"
		"      --quiet          no progress line (it is shown on a TTY only)\n"
		"      --help\n"
		"echo options:\n"
		"      --size B         bytes per message (default 64; K/M suffixes)\n"
		"      --depth D        messages in flight per connection (default 1)\n"
		"      --verify         check every echoed byte against the\n"
		"                       connection's pseudo-random pattern\n"
		"http options:\n"
		"      --pipeline D     requests in flight per connection (default 1)\n"
		"      --rate R         open loop: R requests/s in total, latency\n"
		"                       measured from each request's intended send\n"
		"                       time (coordinated omission corrected)\n"
		"  -H, --header 'N: V'  add a request header (repeatable)\n"
		"      --method M       request method (default GET)\n"
		"      --body FILE      request body (sent with Content-Length)\n"
		"      --close          one request per connection (Connection: close)\n"
		"TLS options (an https:// URL; echo: --tls):\n"
		"      --tls            echo over TLS\n"
		"      --ca FILE        verify the server's certificate against the CAs\n"
		"                       in FILE, and its name against HOST (default:\n"
		"                       no verification)\n"
		"      --no-resume      a full handshake on every connection (default:\n"
		"                       resume the latest session the server gave)\n"
		"      --handshakes     one request (echo: one message) per connection,\n"
		"                       then a new connection and handshake: reports\n"
		"                       handshakes/s (full ones with --no-resume)\n"
		"\n"
		"Latency percentiles come from a log-linear histogram: each value is\n"
		"reported at most 0.78%% above the true one. The exit status is 1 when\n"
		"there were connect/read/write/timeout errors, invalid responses, echo\n"
		"mismatches or responses outside 2xx/3xx; 2 for bad arguments.\n"
		"\n"
		"With --dpdk the load runs over coil's own TCP/IP on the first DPDK\n"
		"port (kernel bypass; HOST must be an IPv4 address on --ip's network\n"
		"or reachable through --gw): one loop per queue pair the port grants.\n"
		"\n"
		"engine options:\n");
	coil_engine_opts_usage(f, ENGINE_FLAGS);
}

int load_parse_duration(const char *s, uint64_t *ms)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1000;

	errno = 0;
	if (!isdigit((unsigned char)*s))
		return -1;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	if (!strcmp(end, "ms"))
		mul = 1;
	else if (!strcmp(end, "s") || !*end)
		mul = 1000;
	else if (!strcmp(end, "m"))
		mul = 60000;
	else
		return -1;
	if (v == 0 || v > 7 * 86400000ull / mul)
		return -1;
	*ms = v * mul;
	return 0;
}

int load_parse_cpus(const char *s, int *cpus, unsigned max)
{
	unsigned n = 0;

	if (!*s)
		return -1;
	while (*s) {
		char *end;
		long a, b;

		if (!isdigit((unsigned char)*s))
			return -1;
		a = strtol(s, &end, 10);
		b = a;
		if (*end == '-') {
			if (!isdigit((unsigned char)end[1]))
				return -1;
			b = strtol(end + 1, &end, 10);
		}
		if (a < 0 || b < a || b >= CPU_SETSIZE)
			return -1;
		for (long c = a; c <= b; c++) {
			for (unsigned i = 0; i < n; i++)
				if (cpus[i] == c)
					return -1;   /* listed twice */
			if (n == max)
				return -1;
			cpus[n++] = (int)c;
		}
		if (*end == ',' && end[1])
			end++;
		else if (*end)
			return -1;
		s = end;
	}
	return (int)n;
}

static int set_port(const char *s, struct load_opts *o, char *why, size_t n)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = isdigit((unsigned char)*s) ? strtoul(s, &end, 10) : 0;
	if (!isdigit((unsigned char)*s) || errno || *end || v < 1 || v > 65535) {
		snprintf(why, n, "bad port '%s'", s);
		return -1;
	}
	o->port = (uint16_t)v;
	return 0;
}

/* host part: "[v6]" or a name/IPv4 without ':' */
static int set_host(const char *s, size_t len, struct load_opts *o, char *why,
		    size_t n)
{
	if (len && s[0] == '[') {
		if (len < 3 || s[len - 1] != ']') {
			snprintf(why, n, "bad IPv6 literal");
			return -1;
		}
		s++;
		len -= 2;
	}
	if (!len || len >= sizeof(o->host)) {
		snprintf(why, n, "missing or too long host");
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-._:", s[i])) {
			snprintf(why, n, "bad character in host");
			return -1;
		}
	memcpy(o->host, s, len);
	o->host[len] = '\0';
	return 0;
}

int load_parse_hostport(const char *s, struct load_opts *o, char *why,
			size_t n)
{
	const char *colon = s[0] == '[' ? strstr(s, "]:") : strrchr(s, ':');

	if (!colon) {
		snprintf(why, n, "expected HOST:PORT");
		return -1;
	}
	if (s[0] == '[')
		colon++;
	else if (memchr(s, ':', (size_t)(colon - s))) {
		snprintf(why, n, "an IPv6 address needs brackets: [ADDR]:PORT");
		return -1;
	}
	if (set_host(s, (size_t)(colon - s), o, why, n))
		return -1;
	return set_port(colon + 1, o, why, n);
}

int load_parse_url(const char *url, struct load_opts *o, char *why, size_t n)
{
	const char *p, *slash, *colon, *hend;
	size_t plen;

	if (!strncmp(url, "https://", 8)) {
		o->tls = true;
		p = url + 8;
	} else if (!strncmp(url, "http://", 7)) {
		o->tls = false;
		p = url + 7;
	} else {
		snprintf(why, n, "URL must start with http:// or https://");
		return -1;
	}
	slash = strchr(p, '/');
	hend = slash ? slash : p + strlen(p);
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(hend - p));

		if (!rb) {
			snprintf(why, n, "bad IPv6 literal");
			return -1;
		}
		colon = rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
		if (!colon && rb + 1 != hend) {
			snprintf(why, n, "junk after the IPv6 literal");
			return -1;
		}
	} else {
		colon = memchr(p, ':', (size_t)(hend - p));
	}
	if (memchr(p, '@', (size_t)(hend - p))) {
		snprintf(why, n, "user info in the URL is not supported");
		return -1;
	}
	if (set_host(p, (size_t)((colon ? colon : hend) - p), o, why, n))
		return -1;
	o->port = o->tls ? 443 : 80;
	if (colon) {
		char port[8];
		size_t len = (size_t)(hend - colon - 1);

		if (!len || len >= sizeof(port)) {
			snprintf(why, n, "bad port");
			return -1;
		}
		memcpy(port, colon + 1, len);
		port[len] = '\0';
		if (set_port(port, o, why, n))
			return -1;
	}
	if (!slash) {
		strcpy(o->path, "/");
		return 0;
	}
	plen = strlen(slash);
	if (plen >= sizeof(o->path)) {
		snprintf(why, n, "path too long");
		return -1;
	}
	for (size_t i = 0; i < plen; i++)
		if ((unsigned char)slash[i] <= ' ' || slash[i] == 0x7f) {
			snprintf(why, n, "bad byte in the path (encode it)");
			return -1;
		}
	/* A fragment is never sent. */
	plen = strcspn(slash, "#");
	memcpy(o->path, slash, plen);
	o->path[plen] = '\0';
	if (!plen)
		strcpy(o->path, "/");
	return 0;
}

static int resolve(struct load_opts *o, FILE *err)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int rc;

	rc = getaddrinfo(o->host, NULL, &hints, &res);
	if (rc) {
		fprintf(err, PROG ": cannot resolve '%s': %s\n", o->host,
			gai_strerror(rc));
		return -1;
	}
	/* IPv4 first, as most peers listen there. */
	for (int pass = 0; pass < 2; pass++)
		for (ai = res; ai; ai = ai->ai_next) {
			const void *a;

			if (pass == 0 && ai->ai_family != AF_INET)
				continue;
			a = ai->ai_family == AF_INET
				    ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
				    : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
			if (inet_ntop(ai->ai_family, a, o->addr, sizeof(o->addr))) {
				freeaddrinfo(res);
				return 0;
			}
		}
	freeaddrinfo(res);
	fprintf(err, PROG ": no address for '%s'\n", o->host);
	return -1;
}

static int header_ok(const char *h)
{
	const char *colon = strchr(h, ':');

	if (!colon || colon == h)
		return 0;
	for (const char *c = h; c < colon; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f || strchr("()<>@,;\\\"/[]?={}", *c))
			return 0;
	for (const char *c = colon + 1; *c; c++)
		if (((unsigned char)*c < ' ' && *c != '\t') || *c == 0x7f)
			return 0;
	return 1;
}

enum {
	O_CORES = 256, O_TIMEOUT, O_JSON, O_QUIET, O_SIZE, O_DEPTH,
	O_VERIFY, O_PIPELINE, O_RATE, O_METHOD, O_BODY, O_CLOSE, O_HELP,
	O_WARMUP, O_CPU_PID, O_TLS, O_CA, O_NO_RESUME, O_HANDSHAKES,
	O_LINK_WAIT,
};

int load_parse_args(int argc, char **argv, struct load_opts *o, FILE *out,
		    FILE *err)
{
	static const struct option longopts[] = {
		{ "connections", required_argument, 0, 'c' },
		{ "duration", required_argument, 0, 'd' },
		{ "threads", required_argument, 0, 't' },
		{ "header", required_argument, 0, 'H' },
		{ "cores", required_argument, 0, O_CORES },
		{ "timeout", required_argument, 0, O_TIMEOUT },
		{ "link-wait", required_argument, 0, O_LINK_WAIT },
		{ "json", required_argument, 0, O_JSON },
		{ "quiet", no_argument, 0, O_QUIET },
		{ "size", required_argument, 0, O_SIZE },
		{ "depth", required_argument, 0, O_DEPTH },
		{ "verify", no_argument, 0, O_VERIFY },
		{ "pipeline", required_argument, 0, O_PIPELINE },
		{ "rate", required_argument, 0, O_RATE },
		{ "method", required_argument, 0, O_METHOD },
		{ "body", required_argument, 0, O_BODY },
		{ "close", no_argument, 0, O_CLOSE },
		{ "help", no_argument, 0, O_HELP },
		{ "warmup", required_argument, 0, O_WARMUP },
		{ "cpu-pid", required_argument, 0, O_CPU_PID },
		{ "tls", no_argument, 0, O_TLS },
		{ "ca", required_argument, 0, O_CA },
		{ "no-resume", no_argument, 0, O_NO_RESUME },
		{ "handshakes", no_argument, 0, O_HANDSHAKES },
		{ 0, 0, 0, 0 },
	};
	struct coil_engine_opts eo = { .sz = sizeof(eo) };
	const char *target = NULL, *mode_only = NULL, *tls_only = NULL;
	bool tls_flag = false;
	bool threads_set = false;
	unsigned long long big;
	unsigned long v;
	char why[128];
	int opt, n;

	memset(o, 0, sizeof(*o));
	o->conns = 10;
	o->duration_ms = 10000;
	o->timeout_ms = 5000;
	o->link_wait_ms = 10000;
	o->size = 64;
	o->depth = 1;
	o->pipeline = 1;
	strcpy(o->method, "GET");
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			load_usage(out);
			return 1;
		}
	if (argc < 2) {
		load_usage(err);
		return -1;
	}
	if (!strcmp(argv[1], "echo")) {
		o->mode = MODE_ECHO;
	} else if (!strcmp(argv[1], "http")) {
		o->mode = MODE_HTTP;
	} else {
		fprintf(err, PROG ": unknown mode '%s' (echo or http)\n", argv[1]);
		return -1;
	}
	optind = 0;   /* reinitialise getopt (the tests call us repeatedly) */
	opterr = 0;
	argc--;
	argv++;
	if (coil_engine_opts_parse_args(&eo, ENGINE_FLAGS, PROG, &argc, argv,
					err))
		return -1;
	o->backend = (int)eo.backend;
	o->poll = (int)eo.poll;
	o->dpdk_args = eo.dpdk_args;
	o->ip = eo.ip;
	o->gw = eo.gw;
	o->mbufs = eo.mbufs;
	o->idle_sleep_us = eo.idle_sleep_us;
	if (o->backend == COIL_BACKEND_DPDK && !o->dpdk_args) {
		fprintf(err, PROG ": --backend dpdk needs --dpdk 'EAL ARGS'\n");
		return -1;
	}
	if (o->dpdk_args && !o->ip) {
		fprintf(err, PROG ": --dpdk needs the port's address: --ip A.B.C.D/NN\n");
		return -1;
	}
	if (!o->dpdk_args && (o->ip || o->gw || o->mbufs || o->idle_sleep_us)) {
		fprintf(err, PROG ": --ip, --gw, --mbufs and --idle-sleep-us go with --dpdk\n");
		return -1;
	}
	while ((opt = getopt_long(argc, argv, ":c:d:t:H:", longopts, NULL)) != -1) {
		const char *name = NULL;

		switch (opt) {
		case 'c':
			if (coil_arg_number(PROG, "connections", optarg, 1, 1000000, &v, err))
				return -1;
			o->conns = (unsigned)v;
			break;
		case 'd':
			if (load_parse_duration(optarg, &o->duration_ms)) {
				fprintf(err, PROG ": --duration: expected e.g. 10, 10s, 500ms or 2m (up to 7 days), got '%s'\n", optarg);
				return -1;
			}
			break;
		case 't':
			if (coil_arg_number(PROG, "threads", optarg, 1, LOAD_MAX_CPUS, &v, err))
				return -1;
			o->threads = (unsigned)v;
			threads_set = true;
			break;
		case O_CORES:
			n = load_parse_cpus(optarg, o->cpus, LOAD_MAX_CPUS);
			if (n <= 0) {
				fprintf(err, PROG ": --cores: expected a CPU list like 1 or 0,2-3 (each CPU once), got '%s'\n", optarg);
				return -1;
			}
			o->ncpus = (unsigned)n;
			break;
		case O_TIMEOUT:
			if (coil_arg_number(PROG, "timeout", optarg, 1, 3600000, &v, err))
				return -1;
			o->timeout_ms = v;
			break;
		case O_LINK_WAIT:
			if (coil_arg_number(PROG, "link-wait", optarg, 1, 3600000, &v, err))
				return -1;
			o->link_wait_ms = v;
			break;
		case O_JSON:
			o->json = optarg;
			break;
		case O_WARMUP:
			if (load_parse_duration(optarg, &o->warmup_ms)) {
				fprintf(err, PROG ": --warmup: expected e.g. 1, 1s or 500ms, got '%s'\n", optarg);
				return -1;
			}
			break;
		case O_CPU_PID:
			if (coil_arg_number(PROG, "cpu-pid", optarg, 1, 0x7fffffff, &v, err))
				return -1;
			o->cpu_pid = (int)v;
			if (load_cpu_us(o->cpu_pid) < 0) {
				fprintf(err, PROG ": --cpu-pid: cannot read the CPU clock of process %d: %s\n",
					o->cpu_pid, strerror(errno));
				return -1;
			}
			break;
		case O_QUIET:
			o->quiet = true;
			break;
		case O_SIZE:
			name = "--size";
			if (coil_arg_size(PROG, "size", optarg, 1, PAT_TAIL, &big, err))
				return -1;
			o->size = (uint32_t)big;
			break;
		case O_DEPTH:
			name = "--depth";
			if (coil_arg_number(PROG, "depth", optarg, 1, 1024, &v, err))
				return -1;
			o->depth = (uint32_t)v;
			break;
		case O_VERIFY:
			name = "--verify";
			o->verify = true;
			break;
		case O_PIPELINE:
			if (coil_arg_number(PROG, "pipeline", optarg, 1, 1024, &v, err))
				return -1;
			o->pipeline = (uint32_t)v;
			mode_only = "--pipeline";
			break;
		case O_RATE:
			if (coil_arg_number(PROG, "rate", optarg, 1, 100000000, &v, err))
				return -1;
			o->rate = v;
			mode_only = "--rate";
			break;
		case 'H':
			if (!header_ok(optarg)) {
				fprintf(err, PROG ": -H: expected 'Name: value' (a token name, no control bytes), got '%s'\n", optarg);
				return -1;
			}
			if (o->nheaders == LOAD_MAX_HEADERS) {
				fprintf(err, PROG ": -H: at most %d headers\n", LOAD_MAX_HEADERS);
				return -1;
			}
			o->headers[o->nheaders++] = optarg;
			mode_only = "-H";
			break;
		case O_METHOD:
			if (!*optarg || strlen(optarg) >= sizeof(o->method) ||
			    strspn(optarg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~") != strlen(optarg)) {
				fprintf(err, PROG ": --method: expected a token (e.g. GET, POST), got '%s'\n", optarg);
				return -1;
			}
			strcpy(o->method, optarg);
			mode_only = "--method";
			break;
		case O_BODY:
			o->body_file = optarg;
			mode_only = "--body";
			break;
		case O_CLOSE:
			o->close = true;
			mode_only = "--close";
			break;
		case O_TLS:
			name = "--tls";
			tls_flag = true;
			break;
		case O_CA:
			o->ca = optarg;
			tls_only = "--ca";
			break;
		case O_NO_RESUME:
			o->no_resume = true;
			tls_only = "--no-resume";
			break;
		case O_HANDSHAKES:
			o->handshakes = true;
			tls_only = "--handshakes";
			break;
		case 1:
			break;
		case ':':
			fprintf(err, PROG ": option '%s' needs a value\n", argv[optind - 1]);
			return -1;
		default:
			fprintf(err, PROG ": unknown option '%s'\n", argv[optind - 1]);
			return -1;
		}
		if (name && o->mode != MODE_ECHO) {
			fprintf(err, PROG ": %s is an echo option\n", name);
			return -1;
		}
	}
	if (mode_only && o->mode != MODE_HTTP) {
		fprintf(err, PROG ": %s is an http option\n", mode_only);
		return -1;
	}
	if (optind >= argc) {
		fprintf(err, PROG ": missing the %s\n",
			o->mode == MODE_ECHO ? "HOST:PORT" : "URL");
		return -1;
	}
	target = argv[optind++];
	if (optind < argc) {
		fprintf(err, PROG ": unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (o->mode == MODE_ECHO ? load_parse_hostport(target, o, why, sizeof(why))
				 : load_parse_url(target, o, why, sizeof(why))) {
		fprintf(err, PROG ": '%s': %s\n", target, why);
		return -1;
	}
	if (tls_flag)
		o->tls = true;
	if (tls_only && !o->tls) {
		fprintf(err, PROG ": %s goes with TLS: an https:// URL, or "
			"--tls in echo mode\n", tls_only);
		return -1;
	}
	if (o->tls && o->dpdk_args) {
		fprintf(err, PROG ": TLS runs over kernel sockets only: not "
			"with --dpdk\n");
		return -1;
	}
	if (o->handshakes) {
		if (o->rate) {
			fprintf(err, PROG ": --handshakes opens a connection "
				"per request: not with --rate\n");
			return -1;
		}
		if (o->mode == MODE_HTTP)
			o->close = true;
		else if (o->depth > 1) {
			fprintf(err, PROG ": --handshakes sends one message "
				"per connection: no --depth\n");
			return -1;
		}
	}
	if (o->close && o->pipeline > 1) {
		fprintf(err, PROG ": --close sends one request per connection: no --pipeline\n");
		return -1;
	}
	if (o->close && o->rate) {
		fprintf(err, PROG ": --rate works on kept-alive connections: not with --close\n");
		return -1;
	}
	if (!threads_set) {
		if (o->dpdk_args) {
			o->threads = 1;   /* a vdev has one queue pair */
		} else if (o->ncpus) {
			o->threads = o->ncpus;
		} else {
			cpu_set_t set;

			o->threads = sched_getaffinity(0, sizeof(set), &set) == 0
					     ? (unsigned)CPU_COUNT(&set)
					     : 1;
		}
	}
	if (resolve(o, err))
		return -1;
	if (o->dpdk_args && strchr(o->addr, ':')) {
		fprintf(err, PROG ": --dpdk: coil's stack is IPv4 only; '%s' "
			"resolved to %s\n", o->host, o->addr);
		return -1;
	}
	return 0;
}
