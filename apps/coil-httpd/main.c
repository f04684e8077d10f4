/* SPDX-License-Identifier: MIT */
/*
 * coil-httpd: an HTTP/1.1 server on the public coil API. Flags in, engine
 * out: the protocol, routes and static files are coil's HTTP library
 * (engine/http, <coil/http.h>).
 */
#include <coil/coil.h>
#include <coil/http.h>
#include <coil/http_client.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "coil-httpd"

/* coil-httpd serves on kernel sockets or, with --dpdk, on coil's own TCP */
#define ENGINE_FLAGS (COIL_ENGINE_FLAGS_SERVER | COIL_ENGINE_FLAG_DPDK | \
		      COIL_ENGINE_FLAG_TLS)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: coil-httpd [options]\n"
		"  --addr A               address to listen on (default 0.0.0.0)\n"
		"  --port P               TCP port (default 8080; 0 = ephemeral)\n"
		"  --root DIR             serve static files from DIR (default: none;\n"
		"                         only /plaintext, /json and /echo answer)\n"
		"  --max-body SIZE        request body limit, 413 above (default 1M)\n"
		"  --max-head SIZE        request header section limit, 431 above (default 8K)\n"
		"  --max-line SIZE        request line limit, 414 above (default 8K)\n"
		"  --max-headers N        header lines per request, 431 above (default 64,\n"
		"                         at most 1024; --max-head bounds their bytes)\n"
		"  --header-timeout MS    a request head must arrive within MS of its first\n"
		"                         byte, else 408 and close (default 10000)\n"
		"  --body-timeout MS      longest pause inside a request body (default 30000)\n"
		"  --keepalive-timeout MS close connections idle this long between\n"
		"                         requests (default 30000)\n"
		"  --send-timeout MS      reset a connection whose queued output made no\n"
		"                         progress this long (default: keep-alive timeout)\n"
		"  --idle-timeout MS      close connections without input this long\n"
		"                         (engine-wide; default: never)\n"
		"  --cache-size SIZE      in-memory cache for small files, per loop\n"
		"                         (default 32M; 0: off)\n"
		"  --access-log FILE      append a Combined Log Format line per request\n"
		"                         (buffered per loop, flushed every second; off by default)\n"
		"  --metrics-path PATH    serve Prometheus metrics at PATH (e.g. /metrics;\n"
		"                         default: none)\n"
		"  --proxy /PREFIX=http://HOST:PORT[/PATH]\n"
		"                         reverse-proxy requests under /PREFIX to HOST:PORT\n"
		"                         (numeric address; keep-alive upstream connections;\n"
		"                         with /PATH, it replaces /PREFIX in the target;\n"
		"                         repeatable, up to 32; the same /PREFIX again adds\n"
		"                         an upstream to it, with the same /PATH)\n"
		"  --proxy-balance round-robin|least-conn\n"
		"                         how a prefix with several upstreams picks one\n"
		"                         (default round-robin)\n"
		"  --proxy-max-fails N    failures (refused, reset, timeout) within the fail\n"
		"                         timeout that mark an upstream down (default 1)\n"
		"  --proxy-fail-timeout MS\n"
		"                         the window for those failures, and how long an\n"
		"                         upstream stays down (default 10000)\n"
		"  --proxy-timeout MS     upstream connect and response timeout, 504 after\n"
		"                         (default 30000)\n"
		"  --proxy-conns N        upstream connections per loop and upstream\n"
		"                         (default 16)\n"
		"  --help, --version\n"
		"SIZE takes a K, M or G suffix (powers of 1024).\n"
		"engine options:\n");
	coil_engine_opts_usage(f, ENGINE_FLAGS);
}

#define MAX_PROXIES 32

struct proxy_arg {
	char *prefix;        /* "/api" */
	char *host;          /* numeric address */
	char *hostport;      /* Host header: "HOST:PORT" */
	char *path;          /* replaces the prefix, or NULL */
	uint16_t port;
	bool added;
};

/* "/PREFIX=http://HOST:PORT" (HOST: IPv4 or [IPv6]). Returns 0 or 2. */
static int proxy_arg(const char *s, struct proxy_arg *pa)
{
	char *dup = strdup(s), *eq, *h, *colon, *end;
	unsigned long port;

	if (!dup)
		return 2;
	eq = strchr(dup, '=');
	if (dup[0] != '/' || !eq || strncmp(eq + 1, "http://", 7))
		goto bad;
	*eq = '\0';
	pa->prefix = dup;
	pa->hostport = eq + 8;
	h = eq + 8;
	pa->path = NULL;
	pa->added = false;
	if ((end = strchr(h, '/'))) {
		/* the path: copied, then the host part ends there */
		pa->path = strdup(end);
		*end = '\0';
		if (!pa->path)
			goto bad;
	}
	colon = strrchr(h, ':');
	if (!colon || colon == h)
		goto bad;
	port = strtoul(colon + 1, &end, 10);
	if (*end || !port || port > 65535)
		goto bad;
	pa->port = (uint16_t)port;
	if (*h == '[') {
		if (colon[-1] != ']')
			goto bad;
		pa->host = strndup(h + 1, (size_t)(colon - h - 2));
	} else {
		pa->host = strndup(h, (size_t)(colon - h));
	}
	return pa->host ? 0 : 2;
bad:
	fprintf(stderr, "coil-httpd: --proxy: expected /PREFIX=http://HOST:PORT, got '%s'\n",
		s);
	free(dup);
	return 2;
}

static bool same_path(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Register each upstream as a client service, and each prefix as a route
 * with the upstreams given for it. */
static int proxies_add(struct coil_engine *eng, struct coil_http_server *h,
		       struct proxy_arg *pa, unsigned n,
		       struct coil_http_proxy_opts *po)
{
	struct coil_http_upstream up[MAX_PROXIES];

	for (unsigned i = 0; i < n; i++) {
		unsigned k = 0;
		int ret = 0;

		if (pa[i].added)
			continue;
		for (unsigned j = i; j < n && ret >= 0; j++) {
			struct coil_service cs = {
				.sz = sizeof(cs), .addr = pa[j].host,
				.port = pa[j].port, .ops = &coil_http_client_ops,
				.state_size = coil_http_client_state_size(),
			};

			if (strcmp(pa[j].prefix, pa[i].prefix))
				continue;
			if (!same_path(pa[j].path, pa[i].path)) {
				fprintf(stderr, "coil-httpd: --proxy %s: every upstream of a prefix takes the same /PATH\n",
					pa[i].prefix);
				return -1;
			}
			pa[j].added = true;
			ret = coil_engine_client(eng, &cs);
			up[k].host = pa[j].hostport;
			up[k++].service = ret;
		}
		if (ret >= 0) {
			po->prefix = pa[i].prefix;
			po->path = pa[i].path;
			po->upstreams = up;
			po->nupstreams = k;
			ret = coil_http_server_proxy_upstreams(h, po);
		}
		if (ret < 0) {
			fprintf(stderr, "coil-httpd: --proxy %s=http://%s: %s\n",
				pa[i].prefix, pa[i].hostport, strerror(-ret));
			return -1;
		}
	}
	return 0;
}

static int num(const char *opt, const char *s, unsigned long min,
	       unsigned long max, unsigned long *out)
{
	return coil_arg_number(PROG, opt, s, min, max, out, NULL);
}

static int size_arg(const char *opt, const char *s, unsigned long long min,
		    unsigned long long max, unsigned long long *out)
{
	return coil_arg_size(PROG, opt, s, min, max, out, NULL);
}

struct uint_opt {
	int id;
	const char *name;
	unsigned long min, max;
	unsigned *dst;
};

static const struct uint_opt *uint_opt_find(const struct uint_opt *t,
					    size_t n, int id)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].id == id)
			return &t[i];
	return NULL;
}

/* GET --metrics-path: the engine's counters, Prometheus text format. */
static void metrics_get(struct coil_http_req *x)
{
	struct coil_engine *eng = coil_loop_engine(coil_conn_loop(x->conn));
	size_t len;
	char *buf = coil_stats_prometheus_dup(eng, &len);

	if (!buf)
		coil_http_respond_error(x, 500);
	else
		coil_http_respond(x, 200, "text/plain; version=0.0.4; charset=utf-8",
			      buf, len);
	free(buf);
}

int main(int argc, char **argv)
{
	enum {
		O_ADDR = 256, O_PORT, O_ROOT, O_MAX_BODY, O_MAX_HEAD,
		O_MAX_LINE, O_MAX_HEADERS, O_HDR_TO, O_BODY_TO, O_KA_TO,
		O_SEND_TO, O_IDLE_TO, O_CACHE, O_LOG, O_HELP, O_VERSION,
		O_PROXY, O_PROXY_TO, O_PROXY_CONNS, O_METRICS, O_PROXY_BAL,
		O_PROXY_FAILS, O_PROXY_FAIL_TO,
	};
	const char *metrics_path = NULL;
	static const struct option longopts[] = {
		{ "addr", required_argument, 0, O_ADDR },
		{ "port", required_argument, 0, O_PORT },
		{ "root", required_argument, 0, O_ROOT },
		{ "max-body", required_argument, 0, O_MAX_BODY },
		{ "max-head", required_argument, 0, O_MAX_HEAD },
		{ "max-line", required_argument, 0, O_MAX_LINE },
		{ "max-headers", required_argument, 0, O_MAX_HEADERS },
		{ "header-timeout", required_argument, 0, O_HDR_TO },
		{ "body-timeout", required_argument, 0, O_BODY_TO },
		{ "keepalive-timeout", required_argument, 0, O_KA_TO },
		{ "send-timeout", required_argument, 0, O_SEND_TO },
		{ "idle-timeout", required_argument, 0, O_IDLE_TO },
		{ "cache-size", required_argument, 0, O_CACHE },
		{ "access-log", required_argument, 0, O_LOG },
		{ "metrics-path", required_argument, 0, O_METRICS },
		{ "proxy", required_argument, 0, O_PROXY },
		{ "proxy-timeout", required_argument, 0, O_PROXY_TO },
		{ "proxy-conns", required_argument, 0, O_PROXY_CONNS },
		{ "proxy-balance", required_argument, 0, O_PROXY_BAL },
		{ "proxy-max-fails", required_argument, 0, O_PROXY_FAILS },
		{ "proxy-fail-timeout", required_argument, 0, O_PROXY_FAIL_TO },
		{ "help", no_argument, 0, O_HELP },
		{ "version", no_argument, 0, O_VERSION },
		{ 0, 0, 0, 0 },
	};
	struct coil_engine_opts eo = { .sz = sizeof(eo), .name = PROG };
	struct coil_http_config hc = { .sz = sizeof(hc) };
	struct coil_service svc = {
		.sz = sizeof(svc),
		.addr = "0.0.0.0",
		.port = 8080,
	};
	struct coil_http_client_opts co = { .sz = sizeof(co) };
	struct coil_http_proxy_opts po = { .sz = sizeof(po), .client = &co };
	struct proxy_arg proxies[MAX_PROXIES];
	unsigned nproxies = 0;
	const char *what = "";
	struct coil_tls *tls = NULL;
	struct coil_engine *eng;
	struct coil_http_server *h;
	unsigned long v;
	unsigned long long sz;
	int opt, ret, idx;
	/* Options that set one unsigned number, checked against their range. */
	const struct uint_opt uint_opts[] = {
		{ O_MAX_HEADERS, "max-headers", 1, COIL_HTTP_MAX_HEADERS, &hc.limits.max_headers },
		{ O_HDR_TO, "header-timeout", 1, UINT_MAX, &hc.header_timeout_ms },
		{ O_BODY_TO, "body-timeout", 1, UINT_MAX, &hc.body_timeout_ms },
		{ O_KA_TO, "keepalive-timeout", 1, UINT_MAX, &hc.keepalive_timeout_ms },
		{ O_SEND_TO, "send-timeout", 1, UINT_MAX, &hc.send_timeout_ms },
		{ O_IDLE_TO, "idle-timeout", 0, UINT_MAX, &svc.idle_timeout_ms },
		{ O_PROXY_TO, "proxy-timeout", 1, UINT_MAX, &co.timeout_ms },
		{ O_PROXY_CONNS, "proxy-conns", 1, 1u << 20, &co.max_conns },
		{ O_PROXY_FAILS, "proxy-max-fails", 1, 1u << 20, &po.max_fails },
		{ O_PROXY_FAIL_TO, "proxy-fail-timeout", 1, UINT_MAX, &po.fail_timeout_ms },
	};

	hc.limits.sz = sizeof(hc.limits);
	if (coil_engine_opts_parse_args(&eo, ENGINE_FLAGS, PROG,
					&argc, argv, NULL))
		return 2;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		const struct uint_opt *u = uint_opt_find(uint_opts,
				sizeof(uint_opts) / sizeof(uint_opts[0]), opt);

		if (u) {
			if (num(u->name, optarg, u->min, u->max, &v))
				return 2;
			*u->dst = (unsigned)v;
			continue;
		}
		switch (opt) {
		case O_ADDR:
			svc.addr = optarg;
			break;
		case O_PORT:
			if (num("port", optarg, 0, 65535, &v))
				return 2;
			svc.port = (uint16_t)v;
			break;
		case O_ROOT:
			hc.root = optarg;
			break;
		case O_MAX_BODY:
			if (size_arg("max-body", optarg, 1, 1ull << 50, &sz))
				return 2;
			hc.max_body = sz;
			break;
		case O_MAX_HEAD:
			if (size_arg("max-head", optarg, 256, 1u << 20, &sz))
				return 2;
			hc.limits.max_head = (uint32_t)sz;
			break;
		case O_MAX_LINE:
			if (size_arg("max-line", optarg, 64, 1u << 20, &sz))
				return 2;
			hc.limits.max_request_line = (uint32_t)sz;
			break;
		case O_CACHE:
			if (size_arg("cache-size", optarg, 0, 1ull << 40, &sz))
				return 2;
			hc.cache_size = sz ? (size_t)sz : COIL_HTTP_CACHE_OFF;
			break;
		case O_LOG:
			hc.access_log = optarg;
			break;
		case O_METRICS:
			if (optarg[0] != '/') {
				fprintf(stderr, "coil-httpd: --metrics-path: expected a path starting with '/', got '%s'\n",
					optarg);
				return 2;
			}
			metrics_path = optarg;
			break;
		case O_PROXY:
			if (nproxies == MAX_PROXIES) {
				fprintf(stderr, "coil-httpd: at most %d --proxy\n",
					MAX_PROXIES);
				return 2;
			}
			if (proxy_arg(optarg, &proxies[nproxies++]))
				return 2;
			break;
		case O_PROXY_BAL:
			if (!strcmp(optarg, "round-robin")) {
				po.balance = COIL_HTTP_BALANCE_ROUND_ROBIN;
			} else if (!strcmp(optarg, "least-conn")) {
				po.balance = COIL_HTTP_BALANCE_LEAST_CONN;
			} else {
				fprintf(stderr, "coil-httpd: --proxy-balance: expected round-robin or least-conn, got '%s'\n",
					optarg);
				return 2;
			}
			break;
		case O_HELP:
			usage(stdout);
			return 0;
		case O_VERSION:
			printf("coil-httpd %s\n", COIL_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "coil-httpd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	/* HTTPS: the certificates load (or fail, status 2) before anything
	 * runs; ALPN answers http/1.1. */
	if (coil_tls_from_engine_opts(&eo, "http/1.1", PROG, &tls, NULL))
		return 2;
	if (tls && eo.backend == COIL_BACKEND_DPDK) {
		fprintf(stderr, "coil-httpd: --tls-cert: TLS needs kernel "
			"sockets (not --dpdk)\n");
		coil_tls_destroy(tls);
		return 2;
	}
	svc.tls = tls;
	hc.max_loops = eo.cores ? eo.cores : 1024;
	ret = coil_http_server_create(&hc, &h, &what);
	if (ret) {
		if (ret == -ENOSYS)
			fprintf(stderr, "coil-httpd: --root needs openat2(2) (Linux 5.6 or later)\n");
		else if (!strcmp(what, "the document root"))
			fprintf(stderr, "coil-httpd: cannot open the document root '%s': %s\n",
				hc.root, strerror(-ret));
		else if (!strcmp(what, "the access log"))
			fprintf(stderr, "coil-httpd: cannot open the access log '%s': %s\n",
				hc.access_log, strerror(-ret));
		else
			fprintf(stderr, "coil-httpd: %s\n", strerror(-ret));
		coil_tls_destroy(tls);
		return 1;
	}
	if (metrics_path) {
		struct coil_http_route r = { .path = metrics_path };

		r.on[COIL_HTTP1_GET] = metrics_get;
		ret = coil_http_server_route(h, &r);
		if (ret) {
			fprintf(stderr, "coil-httpd: --metrics-path: %s\n", strerror(-ret));
			coil_http_server_destroy(h);
			coil_tls_destroy(tls);
			return 1;
		}
	}
	ret = coil_engine_create(&eo, &eng);
	if (ret) {
		fprintf(stderr, "coil-httpd: cannot create the engine: %s\n", strerror(-ret));
		coil_http_server_destroy(h);
		coil_tls_destroy(tls);
		return 1;
	}
	if (proxies_add(eng, h, proxies, nproxies, &po)) {
		coil_engine_destroy(eng);
		coil_http_server_destroy(h);
		coil_tls_destroy(tls);
		return 1;
	}
	coil_http_server_service_init(h, &svc);
	idx = coil_engine_listen(eng, &svc);
	if (idx < 0) {
		fprintf(stderr, "coil-httpd: cannot listen on %s:%u: %s\n", svc.addr,
			svc.port, strerror(-idx));
		coil_engine_destroy(eng);
		coil_http_server_destroy(h);
		coil_tls_destroy(tls);
		return 1;
	}
	if (hc.root)
		fprintf(stderr, "coil-httpd: serving %s\n", hc.root);
	if (eo.ip) {
		/* DPDK: the port's own address, without the prefix length */
		static char ip[32];

		snprintf(ip, sizeof(ip), "%.*s", (int)strcspn(eo.ip, "/"), eo.ip);
		svc.addr = ip;
	}
	fprintf(stderr, "coil-httpd: listening on %s:%u%s\n", svc.addr,
		coil_engine_port(eng, idx), tls ? " (https)" : "");
	ret = coil_engine_run(eng);
	coil_engine_destroy(eng);
	coil_http_server_destroy(h);   /* flushes the access log */
	coil_tls_destroy(tls);
	for (unsigned i = 0; i < nproxies; i++) {
		free(proxies[i].prefix);
		free(proxies[i].host);
		free(proxies[i].path);
	}
	if (ret) {
		fprintf(stderr, "coil-httpd: %s\n", strerror(-ret));
		return 1;
	}
	return 0;
}
