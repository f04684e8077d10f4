/* SPDX-License-Identifier: MIT */
/*
 * coil-echo: a TCP echo server on the public coil API. Every byte received is
 * sent back without copying: the reply references the receive buffer, which
 * returns to the ring when the send completes.
 */
#include <coil/coil.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t echo_data(struct coil_conn *conn, const uint8_t *data, size_t len)
{
	coil_conn_write_ref(conn, data, len);
	return len;
}

static const struct coil_proto_ops echo_ops = {
	.on_data = echo_data,
};

/* --udp: every datagram goes back to its sender (a copy: the payload is
 * only lent for the duration of the callback). */
static void echo_datagram(struct coil_udp *udp, const struct coil_dgram *d)
{
	(void)coil_udp_send(udp, d->peer, d->peer_len, d->data, d->len);
}

static const struct coil_udp_ops echo_udp_ops = {
	.on_datagram = echo_datagram,
};

#define PROG "coil-echo"
#define ENGINE_FLAGS (COIL_ENGINE_FLAGS_SERVER | COIL_ENGINE_FLAG_DPDK | \
		      COIL_ENGINE_FLAG_TLS)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: coil-echo [options]\n"
		"  --addr A            address to listen on (default 0.0.0.0)\n"
		"  --port P            TCP (or UDP) port (default 7000; 0 = ephemeral)\n"
		"  --udp               echo UDP datagrams on the port instead of TCP\n"
		"                      (--bufs then defaults to 512)\n"
		"  --idle-timeout MS   close connections idle this long (default: never)\n"
		"  --metrics-port P    also serve Prometheus metrics over HTTP on port P\n"
		"                      (0 = ephemeral; default: none)\n"
		"  --help, --version\n"
		"engine options (DPDK is kernel bypass over coil's own TCP/IP: TCP,\n"
		"or UDP with --udp):\n");
	coil_engine_opts_usage(f, ENGINE_FLAGS);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "addr", required_argument, 0, 'a' },
		{ "port", required_argument, 0, 'p' },
		{ "idle-timeout", required_argument, 0, 'i' },
		{ "udp", no_argument, 0, 'U' },
		{ "metrics-port", required_argument, 0, 'R' },
		{ "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, 'V' },
		{ 0, 0, 0, 0 },
	};
	struct coil_engine_opts eo = { .sz = sizeof(eo), .name = PROG };
	struct coil_service msvc = { .sz = sizeof(msvc),
				     .ops = &coil_stats_http_ops,
				     .idle_timeout_ms = 10000 };
	int metrics = -1;
	struct coil_service svc = {
		.sz = sizeof(svc),
		.addr = "0.0.0.0",
		.port = 7000,
		.ops = &echo_ops,
	};
	struct coil_udp_service usvc = {
		.sz = sizeof(usvc),
		.ops = &echo_udp_ops,
	};
	struct coil_tls *tls = NULL;
	struct coil_engine *eng;
	unsigned long v;
	int opt, ret, idx;
	int udp = 0;

	if (coil_engine_opts_parse_args(&eo, ENGINE_FLAGS, PROG, &argc, argv,
					NULL))
		return 2;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			svc.addr = optarg;
			break;
		case 'p':
			if (coil_arg_number(PROG, "port", optarg, 0, 65535, &v, NULL))
				return 2;
			svc.port = (uint16_t)v;
			break;
		case 'i':
			if (coil_arg_number(PROG, "idle-timeout", optarg, 0,
					    UINT_MAX, &v, NULL))
				return 2;
			svc.idle_timeout_ms = (unsigned)v;
			break;
		case 'U':
			udp = 1;
			break;
		case 'R':
			if (coil_arg_number(PROG, "metrics-port", optarg, 0, 65535,
					    &v, NULL))
				return 2;
			metrics = (int)v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("coil-echo %s\n", COIL_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "coil-echo: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	/* TLS: certificates load (or fail, status 2) before anything runs. */
	if (coil_tls_from_engine_opts(&eo, NULL, PROG, &tls, NULL))
		return 2;
	if (tls && (udp || eo.backend == COIL_BACKEND_DPDK)) {
		fprintf(stderr, "coil-echo: --tls-cert: TLS is for TCP on "
			"kernel sockets (not --udp, not --dpdk)\n");
		coil_tls_destroy(tls);
		return 2;
	}
	svc.tls = tls;
	ret = coil_engine_create(&eo, &eng);
	if (ret) {
		fprintf(stderr, "coil-echo: cannot create the engine: %s\n", strerror(-ret));
		coil_tls_destroy(tls);
		return 1;
	}
	if (udp) {
		usvc.addr = svc.addr;
		usvc.port = svc.port;
		usvc.bufs = eo.bufs;   /* 0: the UDP default (512) */
		idx = coil_engine_udp(eng, &usvc);
	} else {
		idx = coil_engine_listen(eng, &svc);
	}
	if (idx < 0) {
		fprintf(stderr, "coil-echo: cannot listen on %s:%u%s: %s\n", svc.addr,
			svc.port, udp ? " (udp)" : "", strerror(-idx));
		coil_engine_destroy(eng);
		coil_tls_destroy(tls);
		return 1;
	}
	if (eo.ip) {
		/* DPDK: the port's own address, without the prefix length */
		static char ip[32];

		snprintf(ip, sizeof(ip), "%.*s", (int)strcspn(eo.ip, "/"), eo.ip);
		svc.addr = ip;
	}
	if (metrics >= 0) {
		msvc.addr = svc.addr;
		msvc.port = (uint16_t)metrics;
		msvc.data = eng;
		ret = coil_engine_listen(eng, &msvc);
		if (ret < 0) {
			fprintf(stderr, "coil-echo: cannot serve metrics on %s:%d: %s\n",
				msvc.addr, metrics, strerror(-ret));
			coil_engine_destroy(eng);
			coil_tls_destroy(tls);
			return 1;
		}
		fprintf(stderr, "coil-echo: metrics on %s:%u\n", msvc.addr,
			coil_engine_port(eng, ret));
	}
	fprintf(stderr, "coil-echo: listening on %s:%u%s\n", svc.addr,
		udp ? coil_engine_udp_port(eng, idx) : coil_engine_port(eng, idx),
		udp ? " (udp)" : tls ? " (tls)" : "");
	ret = coil_engine_run(eng);
	coil_engine_destroy(eng);
	coil_tls_destroy(tls);
	if (ret) {
		fprintf(stderr, "coil-echo: %s\n", strerror(-ret));
		return 1;
	}
	return 0;
}
