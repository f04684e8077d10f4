/* SPDX-License-Identifier: MIT */
/*
 * The packet layer (engine/net) without DPDK: canned frames go in through
 * a malloc-backed packet buffer sized exactly to the frame (ASan sees any
 * read past it), transmitted frames are captured and checked with this
 * file's own checksum code. Valid, truncated (every prefix), bad checksum,
 * fragments, options, ARP resolution, retries and expiry on a fake clock,
 * checksum offload.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"
#include "../net_frames.h"

#define MAXTX 64

static const uint8_t MY_MAC[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t PEER_MAC[6] = { 0x02, 0, 0, 0, 0, 0x02 };
static const uint8_t BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
#define MY_IP 0x0a000001u    /* 10.0.0.1/24 (host order here) */
#define PEER_IP 0x0a000002u
#define GW_IP 0x0a0000feu

struct cap {
	uint8_t *frame[MAXTX];
	uint32_t len[MAXTX];
	uint32_t flags[MAXTX];
	unsigned n;
	unsigned live;      /* buffers handed out and not yet back */
	bool fail_alloc;
};

static int t_alloc(void *ctx, struct coil__pkt *p)
{
	struct cap *c = ctx;
	uint8_t *b;

	if (c->fail_alloc)
		return -ENOBUFS;
	b = malloc(NETF_BUF);
	assert_non_null(b);
	netf_pkt_init(p, b);
	c->live++;
	return 0;
}

static void t_free(void *ctx, struct coil__pkt *p)
{
	struct cap *c = ctx;

	free(p->handle);
	p->handle = NULL;
	c->live--;
}

static void t_xmit(void *ctx, struct coil__pkt *p)
{
	struct cap *c = ctx;

	assert_true(c->n < MAXTX);
	c->frame[c->n] = malloc(p->len);
	memcpy(c->frame[c->n], p->data, p->len);
	c->len[c->n] = p->len;
	c->flags[c->n] = p->flags;
	c->n++;
	t_free(ctx, p);
}

static struct cap cap;
static struct coil__net net;

struct rx {
	uint8_t data[2048];
	size_t len;
	uint32_t src;
	uint16_t sport;
	unsigned n;
} rx;

static void on_udp(void *ctx, const uint8_t *payload, size_t len, uint32_t src,
		   uint16_t sport)
{
	struct rx *r = ctx;

	memcpy(r->data, payload, len);
	r->len = len;
	r->src = src;
	r->sport = sport;
	r->n++;
}

static void cap_clear(void)
{
	for (unsigned i = 0; i < cap.n; i++)
		free(cap.frame[i]);
	cap.n = 0;
}

static int setup_opts(bool offload)
{
	struct coil__net_cfg cfg = {
		.ip = htonl(MY_IP), .mask = htonl(0xffffff00u),
		.gw = htonl(GW_IP), .tx_ip_csum = offload,
		.tx_udp_csum = offload,
	};
	struct coil__net_io io = { t_alloc, t_xmit, t_free, &cap };

	memcpy(cfg.mac, MY_MAC, 6);
	memset(&cap, 0, sizeof(cap));
	memset(&rx, 0, sizeof(rx));
	coil__net_init(&net, &cfg, &io, 1000);
	assert_int_equal(coil__net_udp_bind(&net, htons(7), on_udp, &rx), 0);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	return setup_opts(false);
}

static int setup_offload(void **state)
{
	(void)state;
	return setup_opts(true);
}

static int teardown(void **state)
{
	(void)state;
	coil__net_fini(&net);
	cap_clear();
	/* every buffer the stack was given or took went back */
	assert_int_equal(cap.live, 0);
	return 0;
}

/* ---- this file's own frame builder and checksum ---- */

static uint16_t ref_csum(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static size_t eth(uint8_t *f, const uint8_t *dst, const uint8_t *src,
		  uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	put16(f + 12, type);
	return 14;
}

/* An IPv4 frame from PEER to `dst` carrying l4[0..l4len). */
static size_t ip_frame(uint8_t *f, uint32_t dst, uint8_t proto,
		       const uint8_t *l4, size_t l4len)
{
	uint8_t *ip = f + 14;

	eth(f, MY_MAC, PEER_MAC, 0x0800);
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + l4len));
	put16(ip + 4, 0x1234);
	put16(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = proto;
	put32(ip + 12, PEER_IP);
	put32(ip + 16, dst);
	put16(ip + 10, ref_csum(ip, 20, 0));
	memcpy(ip + 20, l4, l4len);
	return 14 + 20 + l4len;
}

static size_t udp_seg(uint8_t *u, uint32_t src, uint32_t dst, uint16_t sport,
		      uint16_t dport, const void *pl, size_t len, bool csum)
{
	uint32_t ps;

	put16(u, sport);
	put16(u + 2, dport);
	put16(u + 4, (uint16_t)(8 + len));
	put16(u + 6, 0);
	memcpy(u + 8, pl, len);
	if (csum) {
		ps = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) +
		     17 + (uint32_t)(8 + len);
		uint16_t c = ref_csum(u, 8 + len, ps);
		put16(u + 6, c ? c : 0xffff);
	}
	return 8 + len;
}

static size_t udp_frame(uint8_t *f, const void *pl, size_t len, bool csum)
{
	uint8_t seg[1600];
	size_t n = udp_seg(seg, PEER_IP, MY_IP, 5555, 7, pl, len, csum);

	return ip_frame(f, MY_IP, 17, seg, n);
}

static size_t arp_frame(uint8_t *f, uint16_t op, const uint8_t *dst_mac,
			uint32_t spa, uint32_t tpa)
{
	uint8_t *a = f + 14;

	eth(f, dst_mac, PEER_MAC, 0x0806);
	put16(a, 1);
	put16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, PEER_MAC, 6);
	put32(a + 14, spa);
	memset(a + 18, 0, 6);
	if (op == 2)
		memcpy(a + 18, MY_MAC, 6);
	put32(a + 24, tpa);
	return 14 + 28;
}

/* Feed a frame in a buffer of exactly its length. */
static void feed(const uint8_t *f, size_t len, uint32_t flags)
{
	struct coil__pkt p = { 0 };
	uint8_t *b = malloc(len ? len : 1);

	assert_non_null(b);
	memcpy(b, f, len);
	p.handle = b;
	p.data = b;
	p.len = (uint32_t)len;
	p.flags = flags;
	cap.live++;
	coil__net_input(&net, &p);
}

static uint64_t drops(void)
{
	const struct coil__net_stats *s = &net.st;

	return s->drop_short + s->drop_not_mine + s->drop_ethertype +
	       s->drop_arp_bad + s->drop_ip_bad + s->drop_ip_csum +
	       s->drop_ip_frag + s->drop_ip_opts + s->drop_ip_ttl +
	       s->drop_ip_dst + s->drop_proto + s->drop_icmp_bad +
	       s->drop_udp_bad + s->drop_udp_csum + s->drop_no_port;
}

/* Check a transmitted IPv4/UDP frame: headers, both checksums. */
static void check_udp_out(unsigned i, const uint8_t *dst_mac, uint32_t dst,
			  uint16_t dport, const void *pl, size_t len)
{
	const uint8_t *f = cap.frame[i], *ip = f + 14, *u = f + 34;
	uint32_t ps;

	assert_int_equal(cap.len[i], 14 + 20 + 8 + len);
	assert_memory_equal(f, dst_mac, 6);
	assert_memory_equal(f + 6, MY_MAC, 6);
	assert_int_equal(get16(f + 12), 0x0800);
	assert_int_equal(ip[0], 0x45);
	assert_int_equal(get16(ip + 2), 20 + 8 + len);
	assert_int_equal(ip[8], 64);
	assert_int_equal(ip[9], 17);
	assert_int_equal(get32(ip + 12), MY_IP);
	assert_int_equal(get32(ip + 16), dst);
	assert_int_equal(ref_csum(ip, 20, 0), 0);
	assert_int_equal(get16(u + 2), dport);
	assert_int_equal(get16(u + 4), 8 + len);
	ps = (MY_IP >> 16) + (MY_IP & 0xffff) + (dst >> 16) + (dst & 0xffff) +
	     17 + (uint32_t)(8 + len);
	assert_int_not_equal(get16(u + 6), 0);
	assert_int_equal(ref_csum(u, 8 + len, ps), 0);
	assert_memory_equal(u + 8, pl, len);
}

/* ---- tests ---- */

static void test_csum_reference(void **state)
{
	uint8_t buf[301];

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 37 + 11);
	for (size_t len = 0; len <= sizeof(buf); len++)
		assert_int_equal(ntohs(coil__csum_fold(coil__csum_add(0, buf, len))),
				 ref_csum(buf, len, 0));
}

static void test_arp_request_reply(void **state)
{
	uint8_t f[64];
	const uint8_t *a;

	(void)state;
	feed(f, arp_frame(f, 1, BCAST, PEER_IP, MY_IP), 0);
	assert_int_equal(cap.n, 1);
	assert_int_equal(cap.len[0], 42);
	a = cap.frame[0] + 14;
	assert_memory_equal(cap.frame[0], PEER_MAC, 6);
	assert_memory_equal(cap.frame[0] + 6, MY_MAC, 6);
	assert_int_equal(get16(cap.frame[0] + 12), 0x0806);
	assert_int_equal(get16(a + 6), 2);
	assert_memory_equal(a + 8, MY_MAC, 6);
	assert_int_equal(get32(a + 14), MY_IP);
	assert_memory_equal(a + 18, PEER_MAC, 6);
	assert_int_equal(get32(a + 24), PEER_IP);
	assert_int_equal(net.st.arp_replies, 1);
	/* the asker was learned: a send goes straight out */
	assert_int_equal(coil__net_udp_send(&net, htons(7), htonl(PEER_IP),
					    htons(9), "hi", 2), 0);
	assert_int_equal(cap.n, 2);
	check_udp_out(1, PEER_MAC, PEER_IP, 9, "hi", 2);

	/* a request for someone else: no reply, nothing learned */
	cap_clear();
	feed(f, arp_frame(f, 1, BCAST, 0x0a000009u, 0x0a000003u), 0);
	assert_int_equal(cap.n, 0);
	assert_null(coil__arp_find(&net, htonl(0x0a000009u)));
}

static void test_arp_bad(void **state)
{
	uint8_t f[64];
	size_t n = arp_frame(f, 1, BCAST, PEER_IP, MY_IP);

	(void)state;
	f[14 + 4] = 8;  /* hlen */
	feed(f, n, 0);
	n = arp_frame(f, 3, BCAST, PEER_IP, MY_IP);  /* op 3 */
	feed(f, n, 0);
	assert_int_equal(net.st.drop_arp_bad, 2);
	assert_int_equal(cap.n, 0);
}

static void test_icmp_echo(void **state)
{
	uint8_t f[200], ic[64 + 8];
	const uint8_t *ip, *r;

	(void)state;
	ic[0] = 8;
	ic[1] = 0;
	put16(ic + 2, 0);
	put16(ic + 4, 0x77);
	put16(ic + 6, 3);
	for (int i = 8; i < 72; i++)
		ic[i] = (uint8_t)i;
	put16(ic + 2, ref_csum(ic, 72, 0));
	feed(f, ip_frame(f, MY_IP, 1, ic, 72), 0);
	assert_int_equal(cap.n, 1);
	assert_int_equal(net.st.icmp_echo, 1);
	ip = cap.frame[0] + 14;
	r = ip + 20;
	assert_memory_equal(cap.frame[0], PEER_MAC, 6);
	assert_int_equal(get32(ip + 12), MY_IP);
	assert_int_equal(get32(ip + 16), PEER_IP);
	assert_int_equal(ref_csum(ip, 20, 0), 0);
	assert_int_equal(r[0], 0);
	assert_int_equal(ref_csum(r, 72, 0), 0);
	assert_memory_equal(r + 4, ic + 4, 68);

	/* a corrupted echo request is dropped */
	cap_clear();
	ic[20] ^= 1;
	feed(f, ip_frame(f, MY_IP, 1, ic, 72), 0);
	assert_int_equal(cap.n, 0);
	assert_int_equal(net.st.drop_icmp_bad, 1);
}

static void test_udp_deliver(void **state)
{
	uint8_t f[1600], pl[1472];

	(void)state;
	for (size_t i = 0; i < sizeof(pl); i++)
		pl[i] = (uint8_t)(i * 3);
	feed(f, udp_frame(f, pl, sizeof(pl), true), 0);
	assert_int_equal(rx.n, 1);
	assert_int_equal(rx.len, sizeof(pl));
	assert_memory_equal(rx.data, pl, sizeof(pl));
	assert_int_equal(rx.src, htonl(PEER_IP));
	assert_int_equal(rx.sport, htons(5555));
	/* checksum 0 means "none": accepted */
	feed(f, udp_frame(f, pl, 10, false), 0);
	assert_int_equal(rx.n, 2);
	assert_int_equal(rx.len, 10);
	/* an empty datagram */
	feed(f, udp_frame(f, pl, 0, true), 0);
	assert_int_equal(rx.n, 3);
	assert_int_equal(rx.len, 0);
	/* Ethernet padding after the IP datagram is ignored */
	{
		size_t n = udp_frame(f, pl, 4, true);

		memset(f + n, 0xee, 60 - n);
		feed(f, 60, 0);
		assert_int_equal(rx.n, 4);
		assert_int_equal(rx.len, 4);
	}
	assert_int_equal(drops(), 0);
	assert_int_equal(net.st.udp_rx, 4);
}

static void test_udp_bad(void **state)
{
	uint8_t f[1600], pl[100] = { 1, 2, 3 };
	size_t n;

	(void)state;
	n = udp_frame(f, pl, sizeof(pl), true);
	f[14 + 20 + 8 + 50] ^= 0x40;     /* payload bit flip */
	feed(f, n, 0);
	assert_int_equal(net.st.drop_udp_csum, 1);
	/* the NIC said the checksum was good: not checked again */
	feed(f, n, COIL__PKT_RX_L4_GOOD);
	assert_int_equal(rx.n, 1);
	/* the NIC said bad */
	n = udp_frame(f, pl, sizeof(pl), true);
	feed(f, n, COIL__PKT_RX_L4_BAD);
	assert_int_equal(net.st.drop_udp_csum, 2);
	/* UDP length beyond the IP payload */
	n = udp_frame(f, pl, sizeof(pl), false);
	put16(f + 34 + 4, 200);
	feed(f, n, 0);
	assert_int_equal(net.st.drop_udp_bad, 1);
	/* unbound port */
	{
		uint8_t seg[200];
		size_t m = udp_seg(seg, PEER_IP, MY_IP, 1, 9999, pl, 10, true);

		feed(f, ip_frame(f, MY_IP, 17, seg, m), 0);
		assert_int_equal(net.st.drop_no_port, 1);
		/* port 0 (what a free bind slot holds; found by fuzz-net) */
		m = udp_seg(seg, PEER_IP, MY_IP, 1, 0, pl, 10, true);
		feed(f, ip_frame(f, MY_IP, 17, seg, m), 0);
		assert_int_equal(net.st.drop_no_port, 2);
	}
	assert_int_equal(rx.n, 1);
}

static void test_ip_bad(void **state)
{
	uint8_t f[1600], g[1600], pl[32] = { 9 };
	size_t n = udp_frame(f, pl, sizeof(pl), true);
	uint8_t *ip = g + 14;

	(void)state;
	/* bad header checksum */
	memcpy(g, f, n);
	ip[10] ^= 1;
	feed(g, n, 0);
	assert_int_equal(net.st.drop_ip_csum, 1);
	/* the NIC said bad */
	feed(f, n, COIL__PKT_RX_IP_BAD);
	assert_int_equal(net.st.drop_ip_csum, 2);

#define REFIX() do { put16(ip + 10, 0); put16(ip + 10, ref_csum(ip, (ip[0] & 15) * 4, 0)); } while (0)
	/* more-fragments, then a non-zero offset */
	memcpy(g, f, n);
	put16(ip + 6, 0x2000);
	REFIX();
	feed(g, n, 0);
	memcpy(g, f, n);
	put16(ip + 6, 0x0010);
	REFIX();
	feed(g, n, 0);
	assert_int_equal(net.st.drop_ip_frag, 2);
	/* options: IHL 6 */
	memcpy(g, f, 14 + 20);
	g[14] = 0x46;
	memset(g + 34, 1, 4);                 /* a NOP option word */
	memcpy(g + 38, f + 34, n - 34);
	put16(ip + 2, (uint16_t)(n - 14 + 4));
	REFIX();
	feed(g, n + 4, 0);
	assert_int_equal(net.st.drop_ip_opts, 1);
	/* version 6 in an IPv4 frame; total length beyond the frame */
	memcpy(g, f, n);
	g[14] = 0x65;
	REFIX();
	feed(g, n, 0);
	memcpy(g, f, n);
	put16(ip + 2, (uint16_t)(n - 14 + 1));
	REFIX();
	feed(g, n, 0);
	assert_int_equal(net.st.drop_ip_bad, 2);
	/* TTL 0 */
	memcpy(g, f, n);
	ip[8] = 0;
	REFIX();
	feed(g, n, 0);
	assert_int_equal(net.st.drop_ip_ttl, 1);
	/* someone else's address; another MAC; IPv6 ethertype */
	{
		uint8_t seg[64];
		size_t m = udp_seg(seg, PEER_IP, 0x0a000005u, 1, 7, pl, 4, true);

		feed(g, ip_frame(g, 0x0a000005u, 17, seg, m), 0);
		assert_int_equal(net.st.drop_ip_dst, 1);
	}
	memcpy(g, f, n);
	g[5] = 0x33;
	feed(g, n, 0);
	assert_int_equal(net.st.drop_not_mine, 1);
	memcpy(g, f, n);
	put16(g + 12, 0x86dd);
	feed(g, n, 0);
	assert_int_equal(net.st.drop_ethertype, 1);
	/* an unknown protocol */
	feed(g, ip_frame(g, MY_IP, 6, pl, 20), 0);
	assert_int_equal(net.st.drop_proto, 1);
	assert_int_equal(rx.n, 0);
	assert_int_equal(cap.n, 0);
#undef REFIX
}

/* Every prefix of valid frames: dropped and counted, never read past. */
static void test_truncated(void **state)
{
	uint8_t f[1600], pl[200], ic[16] = { 8 };
	size_t lens[3];
	uint8_t frames[3][1600];

	(void)state;
	for (size_t i = 0; i < sizeof(pl); i++)
		pl[i] = (uint8_t)i;
	lens[0] = udp_frame(frames[0], pl, sizeof(pl), true);
	lens[1] = arp_frame(frames[1], 1, BCAST, PEER_IP, MY_IP);
	put16(ic + 2, ref_csum(ic, 16, 0));
	lens[2] = ip_frame(frames[2], MY_IP, 1, ic, 16);
	for (int k = 0; k < 3; k++) {
		for (size_t len = 0; len < lens[k]; len++) {
			uint64_t before = drops();

			memcpy(f, frames[k], len);
			feed(f, len, 0);
			assert_int_equal(drops(), before + 1);
		}
	}
	assert_int_equal(rx.n, 0);
	assert_int_equal(cap.n, 0);
	assert_int_equal(net.st.rx_pkts, lens[0] + lens[1] + lens[2]);
}

static void test_send_resolves(void **state)
{
	uint8_t f[64];
	const uint8_t *a;

	(void)state;
	/* unknown neighbour: an ARP request goes out, the datagram waits */
	assert_int_equal(coil__net_udp_send(&net, htons(7), htonl(PEER_IP),
					    htons(9), "abc", 3), 0);
	assert_int_equal(cap.n, 1);
	assert_memory_equal(cap.frame[0], BCAST, 6);
	a = cap.frame[0] + 14;
	assert_int_equal(get16(a + 6), 1);
	assert_int_equal(get32(a + 14), MY_IP);
	assert_int_equal(get32(a + 24), PEER_IP);
	/* the reply releases it */
	feed(f, arp_frame(f, 2, MY_MAC, PEER_IP, MY_IP), 0);
	assert_int_equal(cap.n, 2);
	check_udp_out(1, PEER_MAC, PEER_IP, 9, "abc", 3);
	assert_int_equal(net.st.arp_requests, 1);
}

static void test_send_gateway_and_limits(void **state)
{
	uint8_t big[1500] = { 0 };
	uint8_t f[64];

	(void)state;
	/* off-link: the gateway is resolved, not the destination */
	assert_int_equal(coil__net_udp_send(&net, htons(7), htonl(0x08080808u),
					    htons(53), "q", 1), 0);
	assert_int_equal(cap.n, 1);
	assert_int_equal(get32(cap.frame[0] + 14 + 24), GW_IP);
	feed(f, arp_frame(f, 2, MY_MAC, GW_IP, MY_IP), 0);
	assert_int_equal(cap.n, 2);
	check_udp_out(1, PEER_MAC, 0x08080808u, 53, "q", 1);
	/* MTU: 1472 fits, 1473 does not */
	assert_int_equal(coil__net_udp_send(&net, htons(7), htonl(0x08080808u),
					    htons(53), big, 1472), 0);
	assert_int_equal(coil__net_udp_send(&net, htons(7), htonl(0x08080808u),
					    htons(53), big, 1473), -EMSGSIZE);
	/* no buffers */
	cap.fail_alloc = true;
	assert_int_equal(coil__net_udp_send(&net, htons(7), htonl(0x08080808u),
					    htons(53), big, 10), -ENOBUFS);
	cap.fail_alloc = false;
	assert_int_equal(net.st.tx_nobufs, 1);
	/* no gateway */
	net.cfg.gw = 0;
	assert_int_equal(coil__net_udp_send(&net, htons(7), htonl(0x08080808u),
					    htons(53), big, 10), -EHOSTUNREACH);
}

static void test_arp_retry_and_give_up(void **state)
{
	(void)state;
	assert_int_equal(coil__net_udp_send(&net, htons(7), htonl(PEER_IP),
					    htons(9), "x", 1), 0);
	/* a newer datagram replaces the one waiting (counted) */
	assert_int_equal(coil__net_udp_send(&net, htons(7), htonl(PEER_IP),
					    htons(9), "y", 1), 0);
	assert_int_equal(net.st.tx_arp_fail, 1);
	assert_int_equal(cap.n, 1);
	coil__net_tick(&net, 1000 + 999);
	assert_int_equal(cap.n, 1);
	coil__net_tick(&net, 1000 + 1000);
	assert_int_equal(cap.n, 2);          /* second request */
	coil__net_tick(&net, 1000 + 2000);
	assert_int_equal(cap.n, 3);          /* third */
	assert_int_equal(net.st.arp_requests, 3);
	coil__net_tick(&net, 1000 + 3000);   /* give up: drop the waiting one */
	assert_int_equal(cap.n, 3);
	assert_int_equal(net.st.tx_arp_fail, 2);
	assert_int_equal(net.npending, 0);
	/* a later send asks again */
	assert_int_equal(coil__net_udp_send(&net, htons(7), htonl(PEER_IP),
					    htons(9), "z", 1), 0);
	assert_int_equal(cap.n, 4);
	assert_int_equal(net.st.arp_requests, 4);
}

/* A request sent while the port's link was down went nowhere: when the
 * link comes up it goes again at once, not a retry interval later. */
static void test_arp_link_up(void **state)
{
	uint8_t f[64];

	(void)state;
	assert_int_equal(coil__net_udp_send(&net, htons(7), htonl(PEER_IP),
					    htons(9), "x", 1), 0);
	assert_int_equal(cap.n, 1);
	coil__net_tick(&net, 1000 + 10);
	assert_int_equal(cap.n, 1);
	coil__net_link_up(&net);
	assert_int_equal(cap.n, 2);          /* asked again at once */
	assert_int_equal(get32(cap.frame[1] + 14 + 24), PEER_IP);
	assert_int_equal(net.st.arp_requests, 2);
	feed(f, arp_frame(f, 2, MY_MAC, PEER_IP, MY_IP), 0);
	assert_int_equal(cap.n, 3);
	check_udp_out(2, PEER_MAC, PEER_IP, 9, "x", 1);
	coil__net_link_up(&net);             /* nothing pending: nothing */
	assert_int_equal(cap.n, 3);
}

static void test_arp_expiry(void **state)
{
	uint8_t f[64];

	(void)state;
	feed(f, arp_frame(f, 1, BCAST, PEER_IP, MY_IP), 0);   /* learn */
	cap_clear();
	coil__net_tick(&net, 1000 + COIL__ARP_TTL_MS - 1);
	assert_int_equal(coil__net_udp_send(&net, htons(7), htonl(PEER_IP),
					    htons(9), "a", 1), 0);
	assert_int_equal(cap.n, 1);          /* still valid: straight out */
	check_udp_out(0, PEER_MAC, PEER_IP, 9, "a", 1);
	coil__net_tick(&net, 1000 + COIL__ARP_TTL_MS);
	assert_int_equal(coil__net_udp_send(&net, htons(7), htonl(PEER_IP),
					    htons(9), "b", 1), 0);
	assert_int_equal(cap.n, 2);          /* expired: asks first */
	assert_int_equal(get16(cap.frame[1] + 12), 0x0806);
	/* learning from an IPv4 frame of an on-link sender refreshes it */
	{
		uint8_t g[200];

		feed(g, udp_frame(g, "p", 1, true), 0);
	}
	assert_int_equal(cap.n, 3);          /* the waiting datagram left */
	check_udp_out(2, PEER_MAC, PEER_IP, 9, "b", 1);
}

static void test_offload(void **state)
{
	const uint8_t *u;
	uint8_t f[64];
	uint32_t ps;

	(void)state;
	feed(f, arp_frame(f, 1, BCAST, PEER_IP, MY_IP), 0);
	cap_clear();
	assert_int_equal(coil__net_udp_send(&net, htons(7), htonl(PEER_IP),
					    htons(9), "offload", 7), 0);
	assert_int_equal(cap.n, 1);
	assert_true(cap.flags[0] & COIL__PKT_TX_IP_CSUM);
	assert_true(cap.flags[0] & COIL__PKT_TX_UDP_CSUM);
	/* left to the NIC: IPv4 checksum 0, UDP field = pseudo-header sum */
	assert_int_equal(get16(cap.frame[0] + 14 + 10), 0);
	u = cap.frame[0] + 34;
	ps = (MY_IP >> 16) + (MY_IP & 0xffff) + (PEER_IP >> 16) +
	     (PEER_IP & 0xffff) + 17 + 15;
	while (ps >> 16)
		ps = (ps & 0xffff) + (ps >> 16);
	assert_int_equal(get16(u + 6), ps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csum_reference),
		cmocka_unit_test_setup_teardown(test_arp_request_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arp_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_icmp_echo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_deliver, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ip_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_resolves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_gateway_and_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arp_retry_and_give_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arp_link_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arp_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offload, setup_offload, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
