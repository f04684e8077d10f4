/* SPDX-License-Identifier: MIT */
/*
 * For the tests of engine/net (tests/unit/test_net.c, test_tcp.c,
 * tests/fuzz/fuzz_net.c, fuzz_tcp.c): packet buffers as a port hands
 * them out, and a peer's Ethernet + IPv4 + TCP frame. The frame is
 * written here, independently of the engine's output path (tcp_output.c),
 * so that a test does not check the engine against itself; the checksums
 * use the engine's coil__csum_* (test_net checks those on their own).
 */
#ifndef COIL_TESTS_NET_FRAMES_H
#define COIL_TESTS_NET_FRAMES_H

#include "net/net.h"

#include <arpa/inet.h>
#include <string.h>

#define NETF_BUF 2048u       /* a packet buffer, like an mbuf's room */
#define NETF_HEADROOM 128u

/* Describe the buffer b (NETF_BUF bytes) in p: empty, with headroom. */
static inline void netf_pkt_init(struct coil__pkt *p, uint8_t *b)
{
	memset(p, 0, sizeof(*p));
	p->handle = b;
	p->data = b + NETF_HEADROOM;
	p->headroom = NETF_HEADROOM;
	p->tailroom = NETF_BUF - NETF_HEADROOM;
}

/* One TCP segment (host order). */
struct netf_tcp {
	const uint8_t *dst_mac, *src_mac;
	uint32_t src, dst;
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;
	const uint8_t *opts;
	uint32_t optlen;         /* a multiple of 4 */
	const void *data;        /* NULL: the payload is in place already */
	uint32_t len;
};

static inline uint32_t netf_tcp_len(const struct netf_tcp *s)
{
	return COIL__ETH_HLEN + COIL__IP_HLEN + COIL__TCP_HLEN + s->optlen +
	       s->len;
}

/* Where the payload goes in the frame at b. */
static inline uint8_t *netf_tcp_payload(uint8_t *b, const struct netf_tcp *s)
{
	return b + COIL__ETH_HLEN + COIL__IP_HLEN + COIL__TCP_HLEN + s->optlen;
}

/* Write the frame of s into b (netf_tcp_len(s) bytes), checksums right. */
static inline void netf_tcp_frame(uint8_t *b, const struct netf_tcp *s)
{
	struct coil__eth_hdr *eh = (struct coil__eth_hdr *)b;
	struct coil__ip_hdr *ip = (struct coil__ip_hdr *)(eh + 1);
	struct coil__tcp_hdr *th = (struct coil__tcp_hdr *)(ip + 1);
	uint32_t thl = COIL__TCP_HLEN + s->optlen;

	memcpy(eh->dst, s->dst_mac, 6);
	memcpy(eh->src, s->src_mac, 6);
	eh->type = htons(COIL__ETH_P_IP);
	memset(ip, 0, sizeof(*ip));
	ip->vihl = 0x45;
	ip->tot_len = htons((uint16_t)(COIL__IP_HLEN + thl + s->len));
	ip->ttl = 64;
	ip->proto = COIL__IPPROTO_TCP;
	ip->src = htonl(s->src);
	ip->dst = htonl(s->dst);
	ip->csum = coil__csum_fold(coil__csum_add(0, ip, COIL__IP_HLEN));
	th->sport = htons(s->sport);
	th->dport = htons(s->dport);
	th->seq = htonl(s->seq);
	th->ack = htonl(s->ack);
	th->off = (uint8_t)((thl / 4) << 4);
	th->flags = s->flags;
	th->win = htons(s->win);
	th->csum = 0;
	th->urp = 0;
	if (s->optlen)
		memcpy(th + 1, s->opts, s->optlen);
	if (s->data && s->len)
		memcpy((uint8_t *)th + thl, s->data, s->len);
	th->csum = coil__csum_fold(coil__csum_add(
		coil__csum_pseudo(ip->src, ip->dst, COIL__IPPROTO_TCP,
				  (uint16_t)(thl + s->len)),
		th, thl + s->len));
}

/* Is the IPv4 + TCP checksum of the TCP frame at `ip` right? */
static inline bool netf_tcp_csum_ok(const struct coil__ip_hdr *ip)
{
	uint32_t l4 = ntohs(ip->tot_len) - COIL__IP_HLEN;

	return coil__csum_fold(coil__csum_add(0, ip, COIL__IP_HLEN)) == 0 &&
	       coil__csum_fold(coil__csum_add(
		       coil__csum_pseudo(ip->src, ip->dst, COIL__IPPROTO_TCP,
					 (uint16_t)l4),
		       ip + 1, l4)) == 0;
}

#endif
