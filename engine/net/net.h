/* SPDX-License-Identifier: MIT */
/*
 * The packet layer of the DPDK backend: Ethernet II, ARP (replies,
 * requests, a cache with expiry on the loop's clock), IPv4 (checksum, TTL,
 * fragments and options dropped and counted), ICMP echo and UDP.
 *
 * It runs over a small packet-buffer abstraction (struct coil__pkt) and
 * three driver callbacks (struct coil__net_io), never over DPDK directly:
 * dpdk.c maps them to mbufs and rte_eth_tx_burst, the unit tests to
 * malloc'd buffers. One struct coil__net per loop, used by that loop only
 * (nothing here is thread-safe, nothing is shared). TCP (tcp.h) plugs in as
 * one more protocol under ipv4.c.
 *
 * All addresses and ports in this header are in network byte order unless
 * a name says _h (host order).
 */
#ifndef COIL_NET_H
#define COIL_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- packet buffers ---- */

enum {
	COIL__PKT_RX_IP_GOOD = 1u << 0,   /* the NIC checked the IPv4 header */
	COIL__PKT_RX_IP_BAD = 1u << 1,
	COIL__PKT_RX_L4_GOOD = 1u << 2,   /* ... and the UDP checksum */
	COIL__PKT_RX_L4_BAD = 1u << 3,
	COIL__PKT_TX_IP_CSUM = 1u << 8,   /* NIC: fill the IPv4 checksum */
	COIL__PKT_TX_UDP_CSUM = 1u << 9,  /* NIC: fill the UDP checksum (the
					     field holds the pseudo-header
					     sum) */
	COIL__PKT_TX_TCP_CSUM = 1u << 10, /* NIC: fill the TCP checksum (same) */
};

/* One frame in one contiguous buffer (the driver's: an mbuf segment). */
struct coil__pkt {
	uint8_t *data;       /* first byte of the Ethernet header */
	uint32_t len;        /* frame bytes */
	uint32_t headroom;   /* free bytes before data */
	uint32_t tailroom;   /* free bytes after data + len */
	uint32_t flags;      /* COIL__PKT_* */
	void *handle;        /* the driver's buffer */
};

/* Make room for n bytes of header before the data. NULL when the
 * headroom is too small. */
static inline uint8_t *coil__pkt_prepend(struct coil__pkt *p, uint32_t n)
{
	if (p->headroom < n)
		return NULL;
	p->data -= n;
	p->headroom -= n;
	p->len += n;
	return p->data;
}

struct coil__net_io {
	/* An empty buffer (len 0) with at least COIL__NET_HEADROOM bytes of
	 * headroom. Returns 0 or -ENOBUFS. */
	int (*alloc)(void *ctx, struct coil__pkt *p);
	/* Send (ownership passes; the driver frees it if it cannot). */
	void (*xmit)(void *ctx, struct coil__pkt *p);
	void (*free)(void *ctx, struct coil__pkt *p);
	void *ctx;
};

#define COIL__NET_HEADROOM 64   /* Ethernet + IPv4 + UDP = 42 */

/* ---- wire formats ---- */

#define COIL__ETH_HLEN 14
#define COIL__ETH_P_IP 0x0800
#define COIL__ETH_P_ARP 0x0806
#define COIL__IP_HLEN 20
#define COIL__UDP_HLEN 8
#define COIL__ARP_LEN 28
#define COIL__IPPROTO_ICMP 1
#define COIL__IPPROTO_UDP 17
#define COIL__IPPROTO_TCP 6
#define COIL__TCP_HLEN 20
#define COIL__IP_TTL 64

struct coil__eth_hdr {
	uint8_t dst[6], src[6];
	uint16_t type;
} __attribute__((packed));

struct coil__arp_hdr {
	uint16_t htype, ptype;
	uint8_t hlen, plen;
	uint16_t op;
	uint8_t sha[6];
	uint32_t spa;
	uint8_t tha[6];
	uint32_t tpa;
} __attribute__((packed));

struct coil__ip_hdr {
	uint8_t vihl, tos;
	uint16_t tot_len, id, frag_off;
	uint8_t ttl, proto;
	uint16_t csum;
	uint32_t src, dst;
} __attribute__((packed));

struct coil__udp_hdr {
	uint16_t sport, dport, len, csum;
} __attribute__((packed));

struct coil__tcp_hdr {
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t off;          /* data offset << 4 */
	uint8_t flags;
	uint16_t win, csum, urp;
} __attribute__((packed));

struct coil__icmp_hdr {
	uint8_t type, code;
	uint16_t csum;
	uint16_t id, seq;
} __attribute__((packed));

/* RFC 1071 one's-complement sum of `len` bytes added to `sum` (not
 * folded, not inverted). */
uint32_t coil__csum_add(uint32_t sum, const void *data, size_t len);
/* Fold and invert: the checksum field value. */
uint16_t coil__csum_fold(uint32_t sum);
/* The IPv4 pseudo-header sum for a UDP/TCP checksum (not folded). */
uint32_t coil__csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto,
			   uint16_t len_h);

/* ---- the per-loop stack ---- */

/* Counters, per loop (read by the loop, logged under COIL_STATS). */
struct coil__net_stats {
	uint64_t rx_pkts, rx_bytes, tx_pkts, tx_bytes;
	/* drops on input, by reason */
	uint64_t drop_short;      /* shorter than its headers */
	uint64_t drop_not_mine;   /* another MAC (promiscuous vdevs) */
	uint64_t drop_ethertype;  /* not IPv4 or ARP (VLAN, IPv6...) */
	uint64_t drop_arp_bad;    /* not Ethernet/IPv4 ARP, bad op */
	uint64_t drop_ip_bad;     /* version, header or total length */
	uint64_t drop_ip_csum;
	uint64_t drop_ip_frag;    /* fragments are not reassembled */
	uint64_t drop_ip_opts;    /* IPv4 options are not supported */
	uint64_t drop_ip_ttl;     /* TTL 0 */
	uint64_t drop_ip_dst;     /* not our address, not broadcast */
	uint64_t drop_proto;      /* not ICMP, UDP or (with TCP on) TCP */
	uint64_t drop_icmp_bad;   /* checksum or length */
	uint64_t drop_udp_bad;    /* length */
	uint64_t drop_udp_csum;
	uint64_t drop_no_port;    /* no UDP service on that port */
	/* output */
	uint64_t tx_nobufs;       /* no buffer for a reply or a send */
	uint64_t tx_arp_fail;     /* dropped: the neighbour never answered */
	uint64_t arp_requests, arp_replies, icmp_echo, icmp_other;
	uint64_t udp_rx, udp_tx;
};

#define COIL__ARP_SLOTS 256          /* power of two */
#define COIL__ARP_TTL_MS 60000       /* a learned entry lives this long */
#define COIL__ARP_RETRY_MS 1000      /* between requests */
#define COIL__ARP_TRIES 3            /* requests before giving up */

enum { ARP_FREE = 0, ARP_PENDING, ARP_VALID };

struct coil__arp_entry {
	uint32_t ip;
	uint8_t mac[6];
	uint8_t state;
	uint8_t tries;
	uint64_t expire_ms;       /* VALID: until; PENDING: next request */
	struct coil__pkt held;    /* PENDING: one packet waiting (len 0:
				     none) */
};

/* A UDP datagram for the bound port: payload lent for the duration of
 * the call (it points into the received frame). */
typedef void (*coil__net_udp_fn)(void *ctx, const uint8_t *payload,
				 size_t len, uint32_t src, uint16_t sport);

#define COIL__NET_MAX_BINDS 8

struct coil__net_cfg {
	uint8_t mac[6];
	uint32_t ip, mask, gw;    /* gw 0: none */
	uint16_t mtu;             /* IP MTU; default 1500 */
	bool tx_ip_csum;          /* the port fills IPv4 checksums */
	bool tx_udp_csum;         /* the port fills UDP checksums */
	uint32_t arp_ttl_ms;      /* default COIL__ARP_TTL_MS */
};

struct coil__tcp;

struct coil__net {
	struct coil__net_cfg cfg;
	struct coil__tcp *tcp;    /* TCP segments go here (tcp.h); NULL: none */
	struct coil__net_io io;
	struct coil__net_stats st;
	uint64_t now_ms;          /* the loop's clock, set by the driver */
	uint64_t next_tick_ms;
	uint16_t ip_id;
	unsigned npending;        /* ARP entries being resolved */
	struct {
		uint16_t port;    /* network order; 0: free */
		coil__net_udp_fn fn;
		void *ctx;
	} binds[COIL__NET_MAX_BINDS];
	struct coil__arp_entry arp[COIL__ARP_SLOTS];
};

/* TCP (tcp.c): the neighbour nh answered ARP; connections waiting on it
 * send their SYN again at once. */
void coil__tcp_neigh_up(struct coil__tcp *tcp, uint32_t nh);

/* Set up a stack (no allocation). cfg is copied. */
void coil__net_init(struct coil__net *n, const struct coil__net_cfg *cfg,
		    const struct coil__net_io *io, uint64_t now_ms);
/* Free held packets. */
void coil__net_fini(struct coil__net *n);

/* One received frame; the stack takes ownership (frees, answers in place
 * or transmits). Never fails: bad frames are dropped and counted. */
void coil__net_input(struct coil__net *n, struct coil__pkt *p);

/* The clock moved: ARP retries and give-ups. Cheap to call every turn. */
void coil__net_tick(struct coil__net *n, uint64_t now_ms);

/* The port's link came up: pending ARP requests go again at once. */
void coil__net_link_up(struct coil__net *n);
/* The port's link went down: what was learned of the neighbours expires
 * (the peer that comes back may be another, with another MAC). */
void coil__net_link_down(struct coil__net *n);

/* Deliver UDP datagrams for `port` (network order) to fn. Returns 0,
 * -EADDRINUSE or -ENOSPC. */
int coil__net_udp_bind(struct coil__net *n, uint16_t port,
		       coil__net_udp_fn fn, void *ctx);

/* Send a UDP datagram (the payload is copied into a new buffer behind
 * room for the headers). If the neighbour's MAC is not known yet, the
 * datagram waits for the ARP reply (one per neighbour; a newer one
 * replaces it). Returns 0, -EMSGSIZE (beyond the MTU: no fragmentation),
 * -ENOBUFS, -EHOSTUNREACH (off-link without a gateway). */
int coil__net_udp_send(struct coil__net *n, uint16_t sport, uint32_t dst,
		       uint16_t dport, const void *data, size_t len);

/* ---- inside the stack (ether.c, arp.c, ipv4.c, icmp.c, udp.c) ---- */
void coil__arp_input(struct coil__net *n, struct coil__pkt *p);
void coil__ipv4_input(struct coil__net *n, struct coil__pkt *p);
void coil__icmp_input(struct coil__net *n, struct coil__pkt *p,
		      struct coil__ip_hdr *ip, uint32_t l4len);
void coil__udp_input(struct coil__net *n, struct coil__pkt *p,
		     struct coil__ip_hdr *ip, uint32_t l4len);
/* Learn (or refresh) ip -> mac; sends a packet that waited for it. */
void coil__arp_learn(struct coil__net *n, uint32_t ip, const uint8_t *mac,
		     bool create);
/* Put the Ethernet header on an IPv4 packet for next hop `nh` and send
 * it, or hold it until ARP resolves. Takes ownership. Returns 0,
 * -EHOSTUNREACH. */
int coil__arp_output(struct coil__net *n, struct coil__pkt *p, uint32_t nh);
/* Prepend an IPv4 header to a packet holding an L4 segment and route it.
 * Takes ownership. Returns like coil__net_udp_send. */
int coil__ipv4_output(struct coil__net *n, struct coil__pkt *p, uint32_t dst,
		      uint8_t proto);
/* Write the Ethernet header (p->data points at it) and transmit. */
void coil__eth_xmit(struct coil__net *n, struct coil__pkt *p,
		    const uint8_t *dst, uint16_t type_h);
/* The entry for ip, or NULL. */
struct coil__arp_entry *coil__arp_find(struct coil__net *n, uint32_t ip);

/* One COIL_STATS line per counter group into buf. */
void coil__net_format_stats(const struct coil__net_stats *s, char *buf,
			    size_t n);

#endif
