/* SPDX-License-Identifier: MIT */
/*
 * ARP (RFC 826) for Ethernet/IPv4: replies for our address, requests for
 * next hops, and a per-loop cache: open addressing, entries expire on the
 * loop's clock (COIL__ARP_TTL_MS), a pending entry holds one packet and
 * asks again every COIL__ARP_RETRY_MS, COIL__ARP_TRIES times; when it
 * resolves, TCP resends the SYNs that waited on it (the held packet is
 * only the newest).
 *
 * Entries are also learned from IPv4 frames of on-link senders (their
 * source MAC), so a server answers without asking first; with RSS, each
 * loop learns the peers whose flows it receives.
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static unsigned slot_of(uint32_t ip)
{
	uint32_t h = ip * 2654435761u;

	return (h >> 16) & (COIL__ARP_SLOTS - 1);
}

static bool expired(const struct coil__net *n, const struct coil__arp_entry *e)
{
	return e->state == ARP_VALID && n->now_ms >= e->expire_ms;
}

struct coil__arp_entry *coil__arp_find(struct coil__net *n, uint32_t ip)
{
	unsigned s = slot_of(ip);

	for (unsigned i = 0; i < COIL__ARP_SLOTS; i++) {
		struct coil__arp_entry *e = &n->arp[(s + i) & (COIL__ARP_SLOTS - 1)];

		if (e->state == ARP_FREE)
			return NULL;
		if (e->ip == ip)
			return e;
	}
	return NULL;
}

/* A slot for ip: its entry, a free one, or (table full) an expired or
 * valid one to reuse; NULL only when every slot is pending. */
static struct coil__arp_entry *slot_for(struct coil__net *n, uint32_t ip)
{
	unsigned s = slot_of(ip);
	struct coil__arp_entry *victim = NULL;

	for (unsigned i = 0; i < COIL__ARP_SLOTS; i++) {
		struct coil__arp_entry *e = &n->arp[(s + i) & (COIL__ARP_SLOTS - 1)];

		if (e->state == ARP_FREE || e->ip == ip)
			return e;
		if (!victim && e->state == ARP_VALID)
			victim = e;
	}
	/* Reusing a slot in place keeps every probe chain intact. */
	return victim;
}

static void send_request(struct coil__net *n, uint32_t ip)
{
	struct coil__pkt p;
	struct coil__arp_hdr *a;

	if (n->io.alloc(n->io.ctx, &p)) {
		n->st.tx_nobufs++;
		return;
	}
	a = (struct coil__arp_hdr *)(p.data + COIL__ETH_HLEN);
	p.len = COIL__ETH_HLEN + COIL__ARP_LEN;
	a->htype = htons(1);
	a->ptype = htons(COIL__ETH_P_IP);
	a->hlen = 6;
	a->plen = 4;
	a->op = htons(1);
	memcpy(a->sha, n->cfg.mac, 6);
	a->spa = n->cfg.ip;
	memset(a->tha, 0, 6);
	a->tpa = ip;
	n->st.arp_requests++;
	coil__eth_xmit(n, &p, bcast, COIL__ETH_P_ARP);
}

static void drop_held(struct coil__net *n, struct coil__arp_entry *e)
{
	if (e->held.len) {
		n->io.free(n->io.ctx, &e->held);
		e->held.len = 0;
		n->st.tx_arp_fail++;
	}
}

void coil__arp_learn(struct coil__net *n, uint32_t ip, const uint8_t *mac,
		     bool create)
{
	struct coil__arp_entry *e = create ? slot_for(n, ip) : coil__arp_find(n, ip);
	bool resolved;

	if (!e || ip == 0 || (mac[0] & 1))
		return;
	if (e->state == ARP_FREE || e->ip != ip) {
		e->ip = ip;
		e->held.len = 0;
	}
	resolved = e->state == ARP_PENDING;
	if (resolved)
		n->npending--;
	e->state = ARP_VALID;
	memcpy(e->mac, mac, 6);
	e->expire_ms = n->now_ms + n->cfg.arp_ttl_ms;
	e->tries = 0;
	if (e->held.len) {
		struct coil__pkt p = e->held;

		e->held.len = 0;
		coil__eth_xmit(n, &p, e->mac, COIL__ETH_P_IP);
	}
	if (resolved && n->tcp)
		coil__tcp_neigh_up(n->tcp, ip);
}

int coil__arp_output(struct coil__net *n, struct coil__pkt *p, uint32_t nh)
{
	struct coil__arp_entry *e;

	if (nh == 0xffffffffu || nh == (n->cfg.ip | ~n->cfg.mask)) {
		coil__eth_xmit(n, p, bcast, COIL__ETH_P_IP);
		return 0;
	}
	e = coil__arp_find(n, nh);
	if (e && e->state == ARP_VALID && !expired(n, e)) {
		coil__eth_xmit(n, p, e->mac, COIL__ETH_P_IP);
		return 0;
	}
	if (!e)
		e = slot_for(n, nh);
	if (!e) {   /* every slot is being resolved: shed */
		n->io.free(n->io.ctx, p);
		n->st.tx_arp_fail++;
		return -EHOSTUNREACH;
	}
	if (e->state != ARP_PENDING) {
		/* new, or expired: ask (again) */
		e->ip = nh;
		e->state = ARP_PENDING;
		e->held.len = 0;
		e->tries = 1;
		e->expire_ms = n->now_ms + COIL__ARP_RETRY_MS;
		n->npending++;
		send_request(n, nh);
	}
	drop_held(n, e);   /* a newer datagram replaces the waiting one */
	e->held = *p;
	return 0;
}

void coil__net_link_up(struct coil__net *n)
{
	/* Requests sent while the port was down went nowhere: ask again
	 * now rather than a retry interval later. */
	for (unsigned i = 0; n->npending && i < COIL__ARP_SLOTS; i++) {
		struct coil__arp_entry *e = &n->arp[i];

		if (e->state != ARP_PENDING)
			continue;
		e->expire_ms = n->now_ms + COIL__ARP_RETRY_MS;
		send_request(n, e->ip);
	}
}

void coil__net_link_down(struct coil__net *n)
{
	/* Expired, not freed: the slots stay taken so probe chains stay
	 * intact; the next packet to each neighbour asks again. */
	for (unsigned i = 0; i < COIL__ARP_SLOTS; i++)
		if (n->arp[i].state == ARP_VALID)
			n->arp[i].expire_ms = 0;
}

void coil__net_tick(struct coil__net *n, uint64_t now_ms)
{
	n->now_ms = now_ms;
	if (!n->npending || now_ms < n->next_tick_ms)
		return;
	n->next_tick_ms = now_ms + 100;
	for (unsigned i = 0; i < COIL__ARP_SLOTS; i++) {
		struct coil__arp_entry *e = &n->arp[i];

		if (e->state != ARP_PENDING || now_ms < e->expire_ms)
			continue;
		if (e->tries >= COIL__ARP_TRIES) {
			/* No answer: give up on it. The slot stays taken (as
			 * an expired entry) so probe chains stay intact. */
			drop_held(n, e);
			e->state = ARP_VALID;
			e->expire_ms = 0;
			memset(e->mac, 0, 6);
			n->npending--;
			continue;
		}
		e->tries++;
		e->expire_ms = now_ms + COIL__ARP_RETRY_MS;
		send_request(n, e->ip);
	}
}

void coil__arp_input(struct coil__net *n, struct coil__pkt *p)
{
	struct coil__arp_hdr *a = (struct coil__arp_hdr *)(p->data + COIL__ETH_HLEN);
	uint8_t sha[6];
	uint32_t spa;

	if (p->len < COIL__ETH_HLEN + COIL__ARP_LEN) {
		n->st.drop_short++;
		goto drop;
	}
	if (a->htype != htons(1) || a->ptype != htons(COIL__ETH_P_IP) ||
	    a->hlen != 6 || a->plen != 4 ||
	    (a->op != htons(1) && a->op != htons(2)) || (a->sha[0] & 1)) {
		n->st.drop_arp_bad++;
		goto drop;
	}
	spa = a->spa;
	memcpy(sha, a->sha, 6);
	/* RFC 826: update an existing entry for the sender; add one when
	 * the request is for us (the asker will talk to us next). */
	coil__arp_learn(n, spa, sha, a->tpa == n->cfg.ip);
	if (a->op != htons(1) || a->tpa != n->cfg.ip)
		goto drop;   /* a reply, or not for us: nothing to send */
	/* Answer in place. */
	a->op = htons(2);
	memcpy(a->tha, sha, 6);
	a->tpa = spa;
	memcpy(a->sha, n->cfg.mac, 6);
	a->spa = n->cfg.ip;
	p->len = COIL__ETH_HLEN + COIL__ARP_LEN;
	n->st.arp_replies++;
	coil__eth_xmit(n, p, sha, COIL__ETH_P_ARP);
	return;
drop:
	n->io.free(n->io.ctx, p);
}
