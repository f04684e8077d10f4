/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for coil's TCP (engine/net/tcp*.c): a script of peer
 * segments, clock steps and upper-layer calls against one TCP instance
 * with a listener, driving connections through every state. Build: clang
 * -fsanitize=fuzzer,address,undefined (tests/fuzz/meson.build).
 *
 * Input: a sequence of 8-byte commands (see run_cmd). Peer segments get
 * valid IPv4 and TCP checksums (one command sends arbitrary sequence,
 * acknowledgement, flags and option bytes, or a deliberately bad
 * checksum), so they reach the state machine. The peer's payload byte at sequence s is a function
 * of (port, s - peer ISN): whatever TCP delivers can be checked.
 *
 * Invariants (abort on failure): every delivered byte is the one the peer
 * sent at that position of its stream, in order, never twice (the k-th
 * byte delivered on a connection is the byte at irs + 1 + k); TCP asks the
 * upper layer to copy only bytes it holds and acknowledges no more than
 * it holds; packet buffers stay bounded while it runs (the held pool and
 * what one call transmits) and all come back at the end.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "fuzz_check.h"
#include "net/net.h"
#include "net/tcp.h"
#include "../net_frames.h"

#define LPORT 80
#define NPORTS 4
#define HELD_MAX 64
#define MAX_CONNS 8

static const uint8_t MY_MAC[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t PEER_MAC[6] = { 0x02, 0, 0, 0, 0, 0x02 };
#define MY_IP 0x0a000001u
#define PEER_IP 0x0a000002u

static unsigned live;

static int f_alloc(void *ctx, struct coil__pkt *p)
{
	uint8_t *b = malloc(NETF_BUF);

	(void)ctx;
	if (!b)
		return -ENOBUFS;
	netf_pkt_init(p, b);
	live++;
	return 0;
}

static void f_free(void *ctx, struct coil__pkt *p)
{
	(void)ctx;
	CHECK(live > 0);
	live--;
	free(p->handle);
	p->handle = NULL;
}

static uint32_t last_synack_seq[NPORTS];

static void f_xmit(void *ctx, struct coil__pkt *p)
{
	const struct coil__ip_hdr *ip =
		(const struct coil__ip_hdr *)(p->data + COIL__ETH_HLEN);

	CHECK(p->len >= COIL__ETH_HLEN + COIL__IP_HLEN + COIL__TCP_HLEN ||
	      p->data[12] != 0x08 || p->data[13] != 0x00);
	if (p->data[13] == 0x00 && ip->proto == COIL__IPPROTO_TCP) {
		const struct coil__tcp_hdr *th =
			(const struct coil__tcp_hdr *)(ip + 1);

		CHECK(netf_tcp_csum_ok(ip));
		for (unsigned i = 0; i < NPORTS; i++)
			if (ntohs(th->dport) == 40000 + i &&
			    (th->flags & 0x12) == 0x12)
				last_synack_seq[i] = ntohl(th->seq);
	}
	f_free(ctx, p);
}

/* ---- the upper layer: one per tcb slot ---- */

struct up {
	struct coil__tcb *t;
	uint32_t origin;        /* irs + 1: stream offset 0 of delivery */
	uint64_t delivered;
	size_t avail;           /* bytes "written", from snd_una on */
	size_t acked;
	uint32_t written;       /* total ever written (pattern offset) */
	bool open;
};

static struct up ups[MAX_CONNS];
static struct coil__tcp tcp;
static uint32_t peer_isn[NPORTS];

static uint8_t peer_byte(uint16_t port, uint32_t off)
{
	return (uint8_t)(off * 131u + port * 7u + (off >> 8));
}

static struct up *up_of(const struct coil__tcb *t)
{
	return &ups[t - tcp.tcbs];
}

static void *u_accepted(void *lctx, struct coil__tcb *t)
{
	struct up *u = up_of(t);

	(void)lctx;
	memset(u, 0, sizeof(*u));
	u->t = t;
	u->open = true;
	u->origin = t->irs + 1;
	coil__tcp_recv_arm(t, true);
	return u;
}

static void u_connected(void *uctx, int res)
{
	(void)uctx;
	(void)res;
}

static void u_recv(void *uctx, const uint8_t *data, size_t len)
{
	struct up *u = uctx;
	uint16_t port = ntohs(u->t->rport);
	uint32_t base = u->origin + (uint32_t)u->delivered;

	CHECK(u->open);
	CHECK(port >= 40000 && port < 40000 + NPORTS);
	for (size_t i = 0; i < len; i++)
		CHECK(data[i] == peer_byte(port, base + (uint32_t)i -
						   (peer_isn[port - 40000] + 1)));
	u->delivered += len;
}

static void u_eof(void *uctx)
{
	CHECK(((struct up *)uctx)->open);
}

static void u_acked(void *uctx, size_t n)
{
	struct up *u = uctx;

	CHECK(n <= u->avail);
	u->avail -= n;
	u->acked += n;
}

static void u_gone(void *uctx, int err)
{
	CHECK(err < 0);
	CHECK(((struct up *)uctx)->open);
}

static void u_copy(void *uctx, size_t off, uint8_t *dst, size_t len)
{
	struct up *u = uctx;

	CHECK(off + len <= u->avail);
	for (size_t i = 0; i < len; i++)
		dst[i] = (uint8_t)(u->acked + off + i);
}

static const struct coil__tcp_ops ops = {
	.accepted = u_accepted, .connected = u_connected, .recv = u_recv,
	.eof = u_eof, .acked = u_acked, .gone = u_gone, .copy = u_copy,
};

/* ---- the peer ---- */

static struct coil_loop *loop;
static struct coil__net net;

static void peer_frame(uint16_t sport, uint32_t seq, uint32_t ack,
		       uint8_t flags, uint16_t win, const uint8_t *opts,
		       uint32_t optlen, const uint8_t *raw, uint32_t len,
		       bool bad_csum)
{
	struct netf_tcp f = {
		.dst_mac = MY_MAC, .src_mac = PEER_MAC,
		.src = PEER_IP, .dst = MY_IP, .sport = sport, .dport = LPORT,
		.seq = seq, .ack = ack, .flags = flags, .win = win,
		.opts = opts, .optlen = optlen, .data = raw, .len = len,
	};
	uint32_t flen = netf_tcp_len(&f);
	uint8_t *b = malloc(flen);
	struct coil__tcp_hdr *th;
	struct coil__pkt p;

	if (!b)
		return;
	if (!raw) {
		uint8_t *d = netf_tcp_payload(b, &f);
		uint32_t o = seq - (peer_isn[sport - 40000] + 1);

		for (uint32_t i = 0; i < len; i++)
			d[i] = peer_byte(sport, o + i);
	}
	netf_tcp_frame(b, &f);
	th = (struct coil__tcp_hdr *)(b + COIL__ETH_HLEN + COIL__IP_HLEN);
	if (bad_csum)
		th->csum ^= 0x0100;
	memset(&p, 0, sizeof(p));
	p.data = b;
	p.len = flen;
	p.handle = b;
	live++;
	coil__net_input(&net, &p);
}

static struct coil__tcb *tcb_of_port(uint16_t port)
{
	for (unsigned i = 0; i < MAX_CONNS; i++) {
		struct up *u = &ups[i];

		if (u->open && u->t && ntohs(u->t->rport) == port)
			return u->t;
	}
	return NULL;
}

static void advance(uint32_t ms)
{
	for (uint32_t i = 0; i < ms; i++) {
		loop->now_ms++;
		while (coil__wheel_run(&loop->wheel, loop->now_ms,
				       COIL__TIMER_BUDGET))
			;
	}
}

static const uint8_t SYN_OPTS[8] = { 2, 4, 0x05, 0xb4, 1, 3, 3, 7 };

/* One command: c[0] op, c[1] port / flags, c[2..7] arguments. */
static void run_cmd(const uint8_t *c)
{
	unsigned pi = c[1] % NPORTS;
	uint16_t port = (uint16_t)(40000 + pi);
	struct coil__tcb *t = tcb_of_port(port);
	uint16_t a16 = (uint16_t)(c[2] << 8 | c[3]);
	uint16_t b16 = (uint16_t)(c[4] << 8 | c[5]);

	switch (c[0] % 12) {
	case 0: /* SYN with options */
		peer_frame(port, peer_isn[pi], 0, 0x02, b16, SYN_OPTS,
			   (c[6] & 1) ? sizeof(SYN_OPTS) : 4, NULL, 0, false);
		break;
	case 1: /* the handshake's ACK to the last SYN-ACK */
		peer_frame(port, peer_isn[pi] + 1, last_synack_seq[pi] + 1,
			   0x10, b16, NULL, 0, NULL, 0, false);
		break;
	case 2:
	case 3: { /* data (flags from c[1]'s high bits), ack near snd_una */
		uint32_t seq = peer_isn[pi] + 1 + a16;
		uint32_t ack = t ? t->snd_una + (c[6] % 4 ? 0 : c[7]) :
				   last_synack_seq[pi] + 1;
		uint8_t flags = (uint8_t)(0x10 | ((c[1] >> 2) & 0x0f));

		flags &= (uint8_t)~0x02;
		peer_frame(port, seq, ack, flags, b16, NULL, 0, NULL,
			   c[6] % 4 == 3 ? 1460u : c[7] * 3u, false);
		break;
	}
	case 4: /* ACK of everything sent (or of part) */
		if (t)
			peer_frame(port, peer_isn[pi] + 1 + a16,
				   t->snd_max - (c[6] & 3), 0x10, b16, NULL, 0,
				   NULL, 0, false);
		break;
	case 5: /* FIN or RST at an offset */
		peer_frame(port, peer_isn[pi] + 1 + a16,
			   t ? t->snd_una : 0, (c[6] & 1) ? 0x04 : 0x11, b16,
			   NULL, 0, NULL, 0, false);
		break;
	case 6: /* the clock */
		advance(a16 % 3000);
		break;
	case 7: /* the upper layer writes */
		if (t && !up_of(t)->avail && t->state >= TCP_ESTABLISHED) {
			struct up *u = up_of(t);

			u->avail = (size_t)a16 + 1;
			coil__tcp_send(t, u->avail);
		} else if (t) {
			struct up *u = up_of(t);

			u->avail += c[7];
			coil__tcp_send(t, u->avail);
		}
		break;
	case 8: /* the upper layer pauses / resumes reading */
		if (t)
			coil__tcp_recv_arm(t, c[6] & 1);
		break;
	case 9: /* the upper layer shuts down or closes */
		if (t) {
			struct up *u = up_of(t);

			if (c[6] % 3 == 0) {
				coil__tcp_shutdown(t);
			} else {
				u->open = false;
				coil__tcp_close(t, c[6] % 3 == 2);
			}
		}
		break;
	case 10: /* any sequence, ack, flags; garbage options (4 bytes) or
		  * a bad checksum; the payload stays the peer's stream */
		peer_frame(port, (uint32_t)a16 << 16 | b16,
			   (uint32_t)c[2] << 24 | (uint32_t)c[7] << 8 | c[5],
			   c[6], c[7], (c[1] & 0x40) ? c + 2 : NULL,
			   (c[1] & 0x40) ? 4 : 0, NULL, c[7] % 64,
			   (c[1] & 0x80) != 0);
		break;
	case 11:
		coil__tcp_poll(&tcp);
		break;
	}
	coil__tcp_poll(&tcp);
	/* bounded: held packets, and nothing else kept between calls */
	CHECK(live <= HELD_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct coil__net_cfg nc = { .ip = htonl(MY_IP),
				    .mask = htonl(0xffffff00u) };
	struct coil__net_io io = { f_alloc, f_xmit, f_free, NULL };
	struct coil__tcp_cfg cfg = { .max_conns = MAX_CONNS, .syn_backlog = 2,
				     .rcv_buf = 8192, .held_max = HELD_MAX,
				     .rx_pkts_max = 16, .msl_ms = 500,
				     .fin_wait2_ms = 1000, .max_retries = 4,
				     .syn_retries = 2 };

	if (size < 1)
		return 0;
	memcpy(nc.mac, MY_MAC, 6);
	live = 0;
	memset(ups, 0, sizeof(ups));
	memset(last_synack_seq, 0, sizeof(last_synack_seq));
	for (unsigned i = 0; i < NPORTS; i++)
		peer_isn[i] = (data[0] & 1) ? 0xfffffff0u - i * 1000 : i * 77777;
	loop = aligned_alloc(64, (sizeof(*loop) + 63) & ~(size_t)63);
	if (!loop)
		return 0;
	memset(loop, 0, sizeof(*loop));
	loop->now_ms = 5000;
	coil__wheel_init(&loop->wheel, loop->now_ms);
	coil__net_init(&net, &nc, &io, loop->now_ms);
	if (coil__tcp_init(&tcp, &net, loop, &cfg, &ops)) {
		free(loop);
		return 0;
	}
	coil__tcp_listen(&tcp, htons(LPORT), NULL);
	coil__arp_learn(&net, htonl(PEER_IP), PEER_MAC, true);
	data++;
	size--;
	for (; size >= 8; data += 8, size -= 8)
		run_cmd(data);
	coil__tcp_fini(&tcp);
	coil__net_fini(&net);
	CHECK(live == 0);
	free(loop);
	return 0;
}
