// SPDX-License-Identifier: MIT
/*
 * dpdk-connect: active open on the DPDK stack through the public API
 * (coil_engine_client + coil_loop_connect), for dpdk_tcp.sh.
 *
 *   dpdk-connect 'EAL ARGS' A.B.C.D/NN SERVER PORT CLOSED_PORT BYTES CONNS
 *
 * From the loop, opens CONNS connections to SERVER:PORT (a kernel echo
 * server), sends BYTES of a pattern on each (as the send queue drains),
 * checks every byte echoed back, then closes; and one connection to
 * SERVER:CLOSED_PORT, which must end with -ECONNREFUSED. Prints one line
 * and exits 0 when all of that held, 1 otherwise, 2 on setup errors.
 */
#include <coil/coil.h>
#include <coil/engine.h>
#include <coil/loop.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct st {
	size_t sent, got;
	bool bad;
};

static size_t nbytes;
static unsigned nconns, ndone, nok, refused_ok;
static int svc_echo = -1, svc_closed = -1;
static struct coil_engine *eng;

static uint8_t pat(size_t i)
{
	return (uint8_t)(i * 7 + (i >> 10));
}

static void fill(struct coil_conn *c)
{
	struct st *s = coil_conn_state(c);
	uint8_t buf[16384];

	while (s->sent < nbytes) {
		size_t n = nbytes - s->sent < sizeof(buf) ? nbytes - s->sent
							  : sizeof(buf);

		for (size_t i = 0; i < n; i++)
			buf[i] = pat(s->sent + i);
		if (coil_conn_write(c, buf, n))
			return;   /* over the high-water mark: on_drain resumes */
		s->sent += n;
		if (s->sent - s->got > (1u << 20))
			return;
	}
}

static int e_open(struct coil_conn *c)
{
	fill(c);
	return 0;
}

static size_t e_data(struct coil_conn *c, const uint8_t *d, size_t len)
{
	struct st *s = coil_conn_state(c);

	for (size_t i = 0; i < len; i++)
		if (d[i] != pat(s->got + i))
			s->bad = true;
	s->got += len;
	if (s->got >= nbytes)
		coil_conn_close(c);
	else
		fill(c);
	return len;
}

static void e_drain(struct coil_conn *c)
{
	fill(c);
}

static void finish(void)
{
	if (++ndone == nconns + 1)
		coil_engine_stop(eng);
}

static void e_close(struct coil_conn *c, int reason)
{
	struct st *s = coil_conn_state(c);

	if (s->got == nbytes && !s->bad && reason >= 0)
		nok++;
	else
		fprintf(stderr, "dpdk-connect: a connection ended with %zu of "
			"%zu bytes back%s, reason %d\n", s->got, nbytes,
			s->bad ? " (corrupted)" : "", reason);
	finish();
}

static int r_open(struct coil_conn *c)
{
	(void)c;
	fprintf(stderr, "dpdk-connect: the closed port accepted\n");
	return 0;
}

static size_t r_data(struct coil_conn *c, const uint8_t *d, size_t len)
{
	(void)c;
	(void)d;
	return len;
}

static void r_close(struct coil_conn *c, int reason)
{
	(void)c;
	if (reason == -ECONNREFUSED)
		refused_ok = 1;
	else
		fprintf(stderr, "dpdk-connect: closed port: reason %d\n", reason);
	finish();
}

static const struct coil_proto_ops echo_ops = {
	.on_open = e_open, .on_data = e_data, .on_drain = e_drain,
	.on_close = e_close,
};
static const struct coil_proto_ops refused_ops = {
	.on_open = r_open, .on_data = r_data, .on_close = r_close,
};

static void loop_start(struct coil_loop *loop, void *arg)
{
	struct coil_conn *c;

	(void)arg;
	for (unsigned i = 0; i < nconns; i++)
		if (coil_loop_connect(loop, svc_echo, &c)) {
			fprintf(stderr, "dpdk-connect: connect failed\n");
			finish();
		}
	if (coil_loop_connect(loop, svc_closed, &c)) {
		fprintf(stderr, "dpdk-connect: connect (closed port) failed\n");
		finish();
	}
}

int main(int argc, char **argv)
{
	struct coil_engine_opts eo = { .sz = sizeof(eo), .name = "dpdk-connect" };
	struct coil_service echo = { .sz = sizeof(echo), .ops = &echo_ops,
				     .state_size = sizeof(struct st) };
	struct coil_service closed = { .sz = sizeof(closed),
				       .ops = &refused_ops };
	int ret;

	if (argc != 8) {
		fprintf(stderr, "usage: dpdk-connect 'EAL ARGS' A.B.C.D/NN SERVER "
			"PORT CLOSED_PORT BYTES CONNS\n");
		return 2;
	}
	eo.backend = COIL_BACKEND_DPDK;
	eo.dpdk_args = argv[1];
	eo.ip = argv[2];
	eo.cores = 1;
	eo.loop_start = loop_start;
	echo.addr = closed.addr = argv[3];
	echo.port = (uint16_t)atoi(argv[4]);
	closed.port = (uint16_t)atoi(argv[5]);
	nbytes = strtoull(argv[6], NULL, 10);
	nconns = (unsigned)atoi(argv[7]);
	ret = coil_engine_create(&eo, &eng);
	if (ret) {
		fprintf(stderr, "dpdk-connect: engine: %s\n", strerror(-ret));
		return 2;
	}
	svc_echo = coil_engine_client(eng, &echo);
	svc_closed = coil_engine_client(eng, &closed);
	if (svc_echo < 0 || svc_closed < 0) {
		fprintf(stderr, "dpdk-connect: client services: %d %d\n",
			svc_echo, svc_closed);
		coil_engine_destroy(eng);
		return 2;
	}
	ret = coil_engine_run(eng);
	coil_engine_destroy(eng);
	printf("dpdk-connect: %u of %u connections echoed %zu bytes intact; "
	       "closed port %s\n", nok, nconns, nbytes,
	       refused_ok ? "refused" : "NOT refused");
	return ret == 0 && nok == nconns && refused_ok ? 0 : 1;
}
