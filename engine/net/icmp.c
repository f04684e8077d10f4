/* SPDX-License-Identifier: MIT */
/*
 * ICMP: echo requests are answered in place (addresses swapped, type 0,
 * checksums updated); everything else is counted and dropped.
 */
#include "net.h"

#include <arpa/inet.h>
#include <string.h>

void coil__icmp_input(struct coil__net *n, struct coil__pkt *p,
		      struct coil__ip_hdr *ip, uint32_t l4len)
{
	struct coil__icmp_hdr *ic = (struct coil__icmp_hdr *)(ip + 1);
	struct coil__eth_hdr *eh = (struct coil__eth_hdr *)p->data;
	uint8_t mac[6];
	uint32_t sum;

	if (l4len < sizeof(*ic) ||
	    coil__csum_fold(coil__csum_add(0, ic, l4len)) != 0) {
		n->st.drop_icmp_bad++;
		goto drop;
	}
	if (ic->type != 8 || ic->code != 0 || ip->dst != n->cfg.ip) {
		/* not an echo request to our own address (no replies to
		 * broadcast pings) */
		n->st.icmp_other++;
		goto drop;
	}
	n->st.icmp_echo++;
	ic->type = 0;
	ic->csum = 0;
	sum = coil__csum_add(0, ic, l4len);
	ic->csum = coil__csum_fold(sum);
	ip->dst = ip->src;
	ip->src = n->cfg.ip;
	ip->ttl = COIL__IP_TTL;
	ip->csum = 0;
	ip->frag_off = 0;
	p->flags = 0;
	if (n->cfg.tx_ip_csum)
		p->flags |= COIL__PKT_TX_IP_CSUM;
	else
		ip->csum = coil__csum_fold(coil__csum_add(0, ip, COIL__IP_HLEN));
	/* back to the frame's sender: no ARP lookup needed */
	memcpy(mac, eh->src, 6);
	coil__eth_xmit(n, p, mac, COIL__ETH_P_IP);
	return;
drop:
	n->io.free(n->io.ctx, p);
}
