/* SPDX-License-Identifier: MIT */
/*
 * UDP: bound ports, delivery of a zero-copy view of the payload, and
 * output behind room for the headers with the checksum in software or
 * left to the port (pseudo-header sum in the field).
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

int coil__net_udp_bind(struct coil__net *n, uint16_t port, coil__net_udp_fn fn,
		       void *ctx)
{
	int free_slot = -1;

	for (int i = 0; i < COIL__NET_MAX_BINDS; i++) {
		if (n->binds[i].port == port)
			return -EADDRINUSE;
		if (!n->binds[i].port && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0 || !port)
		return port ? -ENOSPC : -EINVAL;
	n->binds[free_slot].port = port;
	n->binds[free_slot].fn = fn;
	n->binds[free_slot].ctx = ctx;
	return 0;
}

void coil__udp_input(struct coil__net *n, struct coil__pkt *p,
		     struct coil__ip_hdr *ip, uint32_t l4len)
{
	struct coil__udp_hdr *uh = (struct coil__udp_hdr *)(ip + 1);
	uint32_t ulen;
	int i;

	if (l4len < COIL__UDP_HLEN) {
		n->st.drop_short++;
		goto drop;
	}
	ulen = ntohs(uh->len);
	if (ulen < COIL__UDP_HLEN || ulen > l4len) {
		n->st.drop_udp_bad++;
		goto drop;
	}
	if (uh->csum && !(p->flags & COIL__PKT_RX_L4_GOOD)) {
		uint32_t sum = coil__csum_pseudo(ip->src, ip->dst,
						 COIL__IPPROTO_UDP,
						 (uint16_t)ulen);

		if ((p->flags & COIL__PKT_RX_L4_BAD) ||
		    coil__csum_fold(coil__csum_add(sum, uh, ulen)) != 0) {
			n->st.drop_udp_csum++;
			goto drop;
		}
	}
	/* port 0 marks a free bind slot: never a destination */
	for (i = 0; uh->dport && i < COIL__NET_MAX_BINDS; i++)
		if (n->binds[i].port == uh->dport)
			break;
	if (!uh->dport)
		i = COIL__NET_MAX_BINDS;
	if (i == COIL__NET_MAX_BINDS) {
		n->st.drop_no_port++;
		goto drop;
	}
	n->st.udp_rx++;
	n->binds[i].fn(n->binds[i].ctx, (const uint8_t *)(uh + 1),
		       ulen - COIL__UDP_HLEN, ip->src, uh->sport);
drop:
	n->io.free(n->io.ctx, p);
}

int coil__net_udp_send(struct coil__net *n, uint16_t sport, uint32_t dst,
		       uint16_t dport, const void *data, size_t len)
{
	struct coil__udp_hdr *uh;
	struct coil__pkt p;
	uint32_t ulen = (uint32_t)len + COIL__UDP_HLEN;

	if (len > (size_t)n->cfg.mtu - COIL__IP_HLEN - COIL__UDP_HLEN)
		return -EMSGSIZE;
	if (n->io.alloc(n->io.ctx, &p)) {
		n->st.tx_nobufs++;
		return -ENOBUFS;
	}
	if (p.tailroom < len) {
		n->io.free(n->io.ctx, &p);
		return -EMSGSIZE;
	}
	/* payload first, then the headers prepended into the headroom */
	memcpy(p.data, data, len);
	p.len = (uint32_t)len;
	p.tailroom -= (uint32_t)len;
	uh = (struct coil__udp_hdr *)coil__pkt_prepend(&p, COIL__UDP_HLEN);
	if (!uh) {
		n->io.free(n->io.ctx, &p);
		return -ENOBUFS;
	}
	uh->sport = sport;
	uh->dport = dport;
	uh->len = htons((uint16_t)ulen);
	uh->csum = 0;
	if (n->cfg.tx_udp_csum) {
		uint32_t sum = coil__csum_pseudo(n->cfg.ip, dst,
						 COIL__IPPROTO_UDP,
						 (uint16_t)ulen);

		while (sum >> 16)
			sum = (sum & 0xffff) + (sum >> 16);
		uh->csum = htons((uint16_t)sum);  /* not inverted */
		p.flags |= COIL__PKT_TX_UDP_CSUM;
	} else {
		uint16_t c = coil__csum_fold(coil__csum_add(
			coil__csum_pseudo(n->cfg.ip, dst, COIL__IPPROTO_UDP,
					  (uint16_t)ulen),
			uh, ulen));

		uh->csum = c ? c : 0xffff;   /* 0 means "no checksum" */
	}
	n->st.udp_tx++;
	return coil__ipv4_output(n, &p, dst, COIL__IPPROTO_UDP);
}
