/* SPDX-License-Identifier: MIT */
/*
 * Ethernet II: the stack's entry point, frame output, checksums and the
 * counters.
 */
#include "net.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

uint32_t coil__csum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t s = sum;

	while (len >= 2) {
		s += (uint32_t)(p[0] << 8 | p[1]);
		p += 2;
		len -= 2;
	}
	if (len)
		s += (uint32_t)p[0] << 8;
	while (s >> 32)
		s = (s & 0xffffffffu) + (s >> 32);
	return (uint32_t)s;
}

uint16_t coil__csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	/* in network order, as it goes into the header */
	return htons((uint16_t)~sum);
}

uint32_t coil__csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto,
			   uint16_t len_h)
{
	uint32_t sum = coil__csum_add(0, &src, 4);

	sum = coil__csum_add(sum, &dst, 4);
	return sum + proto + len_h;
}

void coil__net_init(struct coil__net *n, const struct coil__net_cfg *cfg,
		    const struct coil__net_io *io, uint64_t now_ms)
{
	memset(n, 0, sizeof(*n));
	n->cfg = *cfg;
	if (!n->cfg.mtu)
		n->cfg.mtu = 1500;
	if (!n->cfg.arp_ttl_ms)
		n->cfg.arp_ttl_ms = COIL__ARP_TTL_MS;
	n->io = *io;
	n->now_ms = now_ms;
	n->next_tick_ms = now_ms + COIL__ARP_RETRY_MS;
}

void coil__net_fini(struct coil__net *n)
{
	for (unsigned i = 0; i < COIL__ARP_SLOTS; i++) {
		struct coil__arp_entry *e = &n->arp[i];

		if (e->state == ARP_PENDING && e->held.len)
			n->io.free(n->io.ctx, &e->held);
		e->state = ARP_FREE;
		e->held.len = 0;
	}
	n->npending = 0;
}

void coil__eth_xmit(struct coil__net *n, struct coil__pkt *p,
		    const uint8_t *dst, uint16_t type_h)
{
	struct coil__eth_hdr *eh = (struct coil__eth_hdr *)p->data;

	memcpy(eh->dst, dst, 6);
	memcpy(eh->src, n->cfg.mac, 6);
	eh->type = htons(type_h);
	n->st.tx_pkts++;
	n->st.tx_bytes += p->len;
	n->io.xmit(n->io.ctx, p);
}

void coil__net_input(struct coil__net *n, struct coil__pkt *p)
{
	const struct coil__eth_hdr *eh = (const struct coil__eth_hdr *)p->data;

	n->st.rx_pkts++;
	n->st.rx_bytes += p->len;
	if (p->len < COIL__ETH_HLEN) {
		n->st.drop_short++;
		goto drop;
	}
	if (memcmp(eh->dst, n->cfg.mac, 6) && memcmp(eh->dst, bcast, 6)) {
		n->st.drop_not_mine++;
		goto drop;
	}
	switch (ntohs(eh->type)) {
	case COIL__ETH_P_ARP:
		coil__arp_input(n, p);
		return;
	case COIL__ETH_P_IP:
		coil__ipv4_input(n, p);
		return;
	default:
		n->st.drop_ethertype++;
		break;
	}
drop:
	n->io.free(n->io.ctx, p);
}

void coil__net_format_stats(const struct coil__net_stats *s, char *buf,
			    size_t n)
{
	snprintf(buf, n,
		 "rx %llu pkts (%llu B), tx %llu pkts (%llu B), udp rx %llu "
		 "tx %llu, arp requests %llu replies %llu, icmp echo %llu "
		 "other %llu; drops: short %llu not_mine %llu ethertype %llu "
		 "arp_bad %llu ip_bad %llu ip_csum %llu ip_frag %llu ip_opts "
		 "%llu ip_ttl %llu ip_dst %llu proto %llu icmp_bad %llu "
		 "udp_bad %llu udp_csum %llu no_port %llu; tx_nobufs %llu "
		 "tx_arp_fail %llu",
		 (unsigned long long)s->rx_pkts, (unsigned long long)s->rx_bytes,
		 (unsigned long long)s->tx_pkts, (unsigned long long)s->tx_bytes,
		 (unsigned long long)s->udp_rx, (unsigned long long)s->udp_tx,
		 (unsigned long long)s->arp_requests,
		 (unsigned long long)s->arp_replies,
		 (unsigned long long)s->icmp_echo,
		 (unsigned long long)s->icmp_other,
		 (unsigned long long)s->drop_short,
		 (unsigned long long)s->drop_not_mine,
		 (unsigned long long)s->drop_ethertype,
		 (unsigned long long)s->drop_arp_bad,
		 (unsigned long long)s->drop_ip_bad,
		 (unsigned long long)s->drop_ip_csum,
		 (unsigned long long)s->drop_ip_frag,
		 (unsigned long long)s->drop_ip_opts,
		 (unsigned long long)s->drop_ip_ttl,
		 (unsigned long long)s->drop_ip_dst,
		 (unsigned long long)s->drop_proto,
		 (unsigned long long)s->drop_icmp_bad,
		 (unsigned long long)s->drop_udp_bad,
		 (unsigned long long)s->drop_udp_csum,
		 (unsigned long long)s->drop_no_port,
		 (unsigned long long)s->tx_nobufs,
		 (unsigned long long)s->tx_arp_fail);
}
