/* SPDX-License-Identifier: MIT */
/*
 * IPv4: header checks (version, lengths, checksum unless the NIC checked
 * it), no fragments and no options (both dropped and counted), TTL, our
 * address or broadcast; output with a fresh header, software checksum or
 * the port's offload, routed on-link or through the gateway.
 */
#include "net.h"
#include "tcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#define IP_MF 0x2000
#define IP_OFFMASK 0x1fff

static bool for_us(const struct coil__net *n, uint32_t dst)
{
	return dst == n->cfg.ip || dst == 0xffffffffu ||
	       dst == (n->cfg.ip | ~n->cfg.mask);
}

void coil__ipv4_input(struct coil__net *n, struct coil__pkt *p)
{
	struct coil__ip_hdr *ip = (struct coil__ip_hdr *)(p->data + COIL__ETH_HLEN);
	const struct coil__eth_hdr *eh = (const struct coil__eth_hdr *)p->data;
	uint32_t avail = p->len - COIL__ETH_HLEN, tot, hlen;

	if (avail < COIL__IP_HLEN) {
		n->st.drop_short++;
		goto drop;
	}
	hlen = (uint32_t)(ip->vihl & 0x0f) * 4;
	tot = ntohs(ip->tot_len);
	if ((ip->vihl >> 4) != 4 || hlen < COIL__IP_HLEN || tot < hlen ||
	    tot > avail) {
		n->st.drop_ip_bad++;
		goto drop;
	}
	if (p->flags & COIL__PKT_RX_IP_BAD) {
		n->st.drop_ip_csum++;
		goto drop;
	}
	if (!(p->flags & COIL__PKT_RX_IP_GOOD) &&
	    coil__csum_fold(coil__csum_add(0, ip, hlen)) != 0) {
		n->st.drop_ip_csum++;
		goto drop;
	}
	if (hlen != COIL__IP_HLEN) {
		n->st.drop_ip_opts++;
		goto drop;
	}
	if (ntohs(ip->frag_off) & (IP_MF | IP_OFFMASK)) {
		n->st.drop_ip_frag++;
		goto drop;
	}
	if (ip->ttl == 0) {
		n->st.drop_ip_ttl++;
		goto drop;
	}
	if (!for_us(n, ip->dst)) {
		n->st.drop_ip_dst++;
		goto drop;
	}
	/* Ethernet pads short frames: the IP length is the truth. */
	p->len = COIL__ETH_HLEN + tot;
	if ((ip->src & n->cfg.mask) == (n->cfg.ip & n->cfg.mask) &&
	    ip->src != n->cfg.ip)
		coil__arp_learn(n, ip->src, eh->src, true);
	switch (ip->proto) {
	case COIL__IPPROTO_ICMP:
		coil__icmp_input(n, p, ip, tot - hlen);
		return;
	case COIL__IPPROTO_UDP:
		coil__udp_input(n, p, ip, tot - hlen);
		return;
	case COIL__IPPROTO_TCP:
		if (!n->tcp)
			break;
		coil__tcp_input(n->tcp, p, ip, tot - hlen);
		return;
	default:
		break;
	}
	n->st.drop_proto++;
drop:
	n->io.free(n->io.ctx, p);
}

int coil__ipv4_output(struct coil__net *n, struct coil__pkt *p, uint32_t dst,
		      uint8_t proto)
{
	struct coil__ip_hdr *ip;
	uint32_t nh = dst;

	if ((dst & n->cfg.mask) != (n->cfg.ip & n->cfg.mask) &&
	    dst != 0xffffffffu) {
		if (!n->cfg.gw) {
			n->io.free(n->io.ctx, p);
			return -EHOSTUNREACH;
		}
		nh = n->cfg.gw;
	}
	ip = (struct coil__ip_hdr *)coil__pkt_prepend(p, COIL__IP_HLEN);
	if (!ip || !coil__pkt_prepend(p, COIL__ETH_HLEN)) {
		n->io.free(n->io.ctx, p);
		return -ENOBUFS;
	}
	ip->vihl = 0x45;
	ip->tos = 0;
	ip->tot_len = htons((uint16_t)(p->len - COIL__ETH_HLEN));
	ip->id = htons(n->ip_id++);
	ip->frag_off = htons(0x4000);   /* DF: we never fragment */
	ip->ttl = COIL__IP_TTL;
	ip->proto = proto;
	ip->csum = 0;
	ip->src = n->cfg.ip;
	ip->dst = dst;
	if (n->cfg.tx_ip_csum)
		p->flags |= COIL__PKT_TX_IP_CSUM;
	else
		ip->csum = coil__csum_fold(coil__csum_add(0, ip, COIL__IP_HLEN));
	return coil__arp_output(n, p, nh);
}
