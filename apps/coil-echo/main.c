/* SPDX-License-Identifier: MIT */
/*
 * coil-echo: a TCP echo server on the public coil API. Every byte received is
 * sent back without copying: the reply references the receive buffer, which
 * returns to the ring when the send completes.
 */
#include <coil/coil.h>

#include "coil_config.h"
#include "../common/args.h"
#include "../common/steer.h"

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

static void usage(FILE *f)
{
	fprintf(f,
		"usage: coil-echo [options]\n"
		"  --addr A           address to listen on (default 0.0.0.0)\n"
		"  --port P           TCP (or UDP) port (default 7000; 0 = ephemeral)\n"
		"  --udp              echo UDP datagrams on the port instead of TCP\n"
		"  --cores N          loops, one pinned thread each (default: all CPUs)\n"
		"  --backend B        auto|uring|epoll|dpdk (default auto)\n"
		"  --poll M           always|adaptive|never (default adaptive)\n"
		"  --poll-us US       adaptive spin budget in microseconds (default 50)\n"
		"  --bufs N           receive buffers per loop (default 2048; 512 with --udp)\n"
		"  --buf-size B       bytes per receive buffer (default 4096)\n"
		"  --max-conns N      connections per loop (default 65536)\n"
		"  --idle-timeout MS  close connections idle this long (default: never)\n"
		"  --drain-ms MS      graceful shutdown limit (default 5000)\n"
		"  --coalesce-us US   under load, sleep until 32 completions or US\n"
		"                     microseconds have passed (default 20; 0: off)\n"
		APP_STEER_USAGE
		"DPDK (kernel bypass over coil's own TCP/IP; TCP, or UDP with --udp):\n"
		"  --dpdk 'EAL ARGS'  use the DPDK backend on the first port, e.g.\n"
		"                     '--no-huge -m 128 --no-pci --vdev=net_af_packet0,iface=veth0'\n"
		"  --ip A.B.C.D/NN    the port's address (required with --dpdk)\n"
		"  --gw A.B.C.D       default gateway\n"
		"  --mbufs N          mbuf pool size (default 8192)\n"
		"  --idle-sleep-us US sleep this long after an idle turn (default 0: busy poll)\n"
		"  --help, --version\n");
}

static int num(const char *opt, const char *s, unsigned long min,
	       unsigned long max, unsigned long *out)
{
	return app_num("coil-echo", opt, s, min, max, out);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "addr", required_argument, 0, 'a' },
		{ "port", required_argument, 0, 'p' },
		{ "cores", required_argument, 0, 'c' },
		{ "backend", required_argument, 0, 'B' },
		{ "poll", required_argument, 0, 'P' },
		{ "poll-us", required_argument, 0, 'u' },
		{ "bufs", required_argument, 0, 'n' },
		{ "buf-size", required_argument, 0, 's' },
		{ "max-conns", required_argument, 0, 'm' },
		{ "idle-timeout", required_argument, 0, 'i' },
		{ "drain-ms", required_argument, 0, 'd' },
		{ "coalesce-us", required_argument, 0, 'C' },
		{ "steer", required_argument, 0, 'S' },
		{ "udp", no_argument, 0, 'U' },
		{ "dpdk", required_argument, 0, 'D' },
		{ "ip", required_argument, 0, 'I' },
		{ "gw", required_argument, 0, 'G' },
		{ "mbufs", required_argument, 0, 'M' },
		{ "idle-sleep-us", required_argument, 0, 'Z' },
		{ "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, 'V' },
		{ 0, 0, 0, 0 },
	};
	struct coil_engine_opts eo = { .sz = sizeof(eo), .name = "coil-echo" };
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
	struct coil_engine *eng;
	unsigned long v;
	int opt, ret, idx;
	int udp = 0;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			svc.addr = optarg;
			break;
		case 'p':
			if (num("port", optarg, 0, 65535, &v))
				return 2;
			svc.port = (uint16_t)v;
			break;
		case 'c':
			if (num("cores", optarg, 1, 1024, &v))
				return 2;
			eo.cores = (unsigned)v;
			break;
		case 'B':
			if (!strcmp(optarg, "auto"))
				eo.backend = COIL_BACKEND_AUTO;
			else if (!strcmp(optarg, "uring") || !strcmp(optarg, "io_uring"))
				eo.backend = COIL_BACKEND_URING;
			else if (!strcmp(optarg, "epoll"))
				eo.backend = COIL_BACKEND_EPOLL;
			else if (!strcmp(optarg, "dpdk"))
				eo.backend = COIL_BACKEND_DPDK;
			else {
				fprintf(stderr, "coil-echo: --backend: expected auto, uring, epoll or dpdk, got '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'P':
			if (!strcmp(optarg, "always"))
				eo.poll = COIL_POLL_ALWAYS;
			else if (!strcmp(optarg, "adaptive"))
				eo.poll = COIL_POLL_ADAPTIVE;
			else if (!strcmp(optarg, "never"))
				eo.poll = COIL_POLL_NEVER;
			else {
				fprintf(stderr, "coil-echo: --poll: expected always, adaptive or never, got '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'u':
			if (num("poll-us", optarg, 1, 1000000, &v))
				return 2;
			eo.poll_us = (unsigned)v;
			break;
		case 'n':
			if (num("bufs", optarg, 1, 32768, &v))
				return 2;
			eo.bufs = (unsigned)v;
			break;
		case 's':
			if (num("buf-size", optarg, 64, 1u << 20, &v))
				return 2;
			eo.buf_size = (unsigned)v;
			break;
		case 'm':
			if (num("max-conns", optarg, 1, 1u << 24, &v))
				return 2;
			eo.max_conns = (unsigned)v;
			break;
		case 'i':
			if (num("idle-timeout", optarg, 0, UINT_MAX, &v))
				return 2;
			svc.idle_timeout_ms = (unsigned)v;
			break;
		case 'd':
			if (num("drain-ms", optarg, 1, UINT_MAX, &v))
				return 2;
			eo.drain_ms = (unsigned)v;
			break;
		case 'C':
			if (num("coalesce-us", optarg, 0, 100000, &v))
				return 2;
			eo.coalesce_us = v ? (unsigned)v : COIL_COALESCE_OFF;
			break;
		case 'S':
			if (app_steer("coil-echo", optarg))
				return 2;
			eo.steer = optarg;
			break;
		case 'U':
			udp = 1;
			break;
		case 'D':
			eo.dpdk_args = optarg;
			eo.backend = COIL_BACKEND_DPDK;
			break;
		case 'I':
			eo.ip = optarg;
			break;
		case 'G':
			eo.gw = optarg;
			break;
		case 'M':
			if (num("mbufs", optarg, 512, 1u << 20, &v))
				return 2;
			eo.mbufs = (unsigned)v;
			break;
		case 'Z':
			if (num("idle-sleep-us", optarg, 0, 1000000, &v))
				return 2;
			eo.idle_sleep_us = (unsigned)v;
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
	ret = coil_engine_create(&eo, &eng);
	if (ret) {
		fprintf(stderr, "coil-echo: cannot create the engine: %s\n", strerror(-ret));
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
		return 1;
	}
	if (eo.ip) {
		/* DPDK: the port's own address, without the prefix length */
		static char ip[32];

		snprintf(ip, sizeof(ip), "%.*s", (int)strcspn(eo.ip, "/"), eo.ip);
		svc.addr = ip;
	}
	fprintf(stderr, "coil-echo: listening on %s:%u%s\n", svc.addr,
		udp ? coil_engine_udp_port(eng, idx) : coil_engine_port(eng, idx),
		udp ? " (udp)" : "");
	ret = coil_engine_run(eng);
	coil_engine_destroy(eng);
	if (ret) {
		fprintf(stderr, "coil-echo: %s\n", strerror(-ret));
		return 1;
	}
	return 0;
}
