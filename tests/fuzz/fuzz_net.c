/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for engine/net: one Ethernet frame into the packet
 * layer (coil__net_input), as a DPDK loop hands it over. Build: clang
 * -fsanitize=fuzzer,address,undefined (tests/fuzz/meson.build); scripts/test
 * runs it for a bounded time.
 *
 * Input: one control byte, then the frame. The control byte sets the
 * receive-offload flags (checksum good/bad as a NIC would report them),
 * whether a UDP service is bound to port 7 (it echoes, exercising the send
 * path and ARP) and whether the port offloads transmit checksums. The
 * frame sits in a heap block of exactly its size (ASan sees any read past
 * it), with no headroom, as a received frame may have.
 *
 * Invariants (abort on failure): every buffer handed to the stack comes
 * back exactly once (freed or transmitted); a transmitted frame has an
 * Ethernet header and, for IPv4 without offload, a valid header checksum;
 * a delivered payload lies inside the frame; the counters add up: every
 * frame is received once.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"
#include "../net_frames.h"

static unsigned live;
static const uint8_t *frame_lo, *frame_hi;

static int f_alloc(void *ctx, struct coil__pkt *p)
{
	uint8_t *b = malloc(NETF_BUF);

	(void)ctx;
	if (!b)
		return -1;
	netf_pkt_init(p, b);
	live++;
	return 0;
}

static void f_free(void *ctx, struct coil__pkt *p)
{
	(void)ctx;
	if (!live)
		abort();
	live--;
	free(p->handle);
}

static void f_xmit(void *ctx, struct coil__pkt *p)
{
	const struct coil__net *n = ctx;

	if (p->len < COIL__ETH_HLEN)
		abort();
	if (p->len >= COIL__ETH_HLEN + COIL__IP_HLEN &&
	    p->data[12] == 0x08 && p->data[13] == 0x00 &&
	    !(p->flags & COIL__PKT_TX_IP_CSUM) &&
	    coil__csum_fold(coil__csum_add(0, p->data + COIL__ETH_HLEN,
					   COIL__IP_HLEN)) != 0)
		abort();
	if (memcmp(p->data + 6, n->cfg.mac, 6))
		abort();
	f_free(NULL, p);
}

static struct coil__net *cur;

static void on_udp(void *ctx, const uint8_t *payload, size_t len, uint32_t src,
		   uint16_t sport)
{
	struct sockaddr_in to = { .sin_family = AF_INET };

	(void)ctx;
	(void)to;
	if (payload < frame_lo || payload + len > frame_hi)
		abort();
	/* echo it: the send path, ARP output, held packets */
	(void)coil__net_udp_send(cur, htons(7), src, sport, payload, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct coil__net net;
	struct coil__net_cfg cfg = {
		.mac = { 0x02, 0, 0, 0, 0, 1 },
		.ip = htonl(0x0a000001), .mask = htonl(0xffffff00),
		.gw = htonl(0x0a0000fe),
	};
	struct coil__net_io io = { f_alloc, NULL, f_free, &net };
	struct coil__pkt p = { 0 };
	uint8_t ctl, *b;

	if (!size)
		return 0;
	ctl = data[0];
	data++;
	size--;
	cfg.tx_ip_csum = cfg.tx_udp_csum = ctl & 0x40;
	io.xmit = f_xmit;
	coil__net_init(&net, &cfg, &io, 1000);
	cur = &net;
	if (ctl & 0x80)
		(void)coil__net_udp_bind(&net, htons(7), on_udp, NULL);
	b = malloc(size ? size : 1);
	if (!b)
		return 0;
	memcpy(b, data, size);
	frame_lo = b;
	frame_hi = b + size;
	p.handle = b;
	p.data = b;
	p.len = (uint32_t)size;
	p.flags = ctl & (COIL__PKT_RX_IP_GOOD | COIL__PKT_RX_IP_BAD |
			 COIL__PKT_RX_L4_GOOD | COIL__PKT_RX_L4_BAD);
	live++;
	coil__net_input(&net, &p);
	/* the clock moves: ARP retries and give-ups */
	for (int t = 1; t <= 4; t++)
		coil__net_tick(&net, 1000 + (uint64_t)t * COIL__ARP_RETRY_MS);
	coil__net_fini(&net);
	if (live || net.st.rx_pkts != 1)
		abort();
	return 0;
}
