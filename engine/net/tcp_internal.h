/* SPDX-License-Identifier: MIT */
/*
 * Between tcp.c (connections) and tcp_syn.c (segment parsing, listeners,
 * SYN queue and cookies, active open). Private to engine/net.
 */
#ifndef COIL_NET_TCP_INTERNAL_H
#define COIL_NET_TCP_INTERNAL_H

#include "tcp.h"

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10

/* A parsed, checked segment (host order except addresses and ports). */
struct coil__tcp_seg {
	uint32_t src;             /* the peer's address */
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint32_t off, len;        /* payload: p->data + off, len bytes */
	uint16_t win;             /* as sent (unscaled) */
	uint16_t mss;             /* option; 0: absent */
	uint8_t ws;               /* option; 0xff: absent */
	uint8_t flags;
};

uint64_t coil__tcp_now(const struct coil__tcp *tcp);
struct coil__tcb *coil__tcp_lookup(struct coil__tcp *tcp, uint32_t raddr,
				   uint16_t rport, uint16_t lport);
/* A zeroed tcb with its timers set up, or NULL (table full even after
 * recycling the oldest TIME_WAIT). */
struct coil__tcb *coil__tcb_alloc(struct coil__tcp *tcp);
void coil__tcb_free(struct coil__tcb *t);
void coil__tcb_hash(struct coil__tcb *t);
/* Send one segment (payload copied from t's send buffer at off). */
int coil__tcp_xmit(struct coil__tcp *tcp, uint32_t dst, uint16_t sport,
		   uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
		   uint16_t win, const uint8_t *opts, unsigned optlen,
		   struct coil__tcb *t, size_t off, uint32_t len);
void coil__tcb_send_syn(struct coil__tcb *t);
void coil__tcp_output(struct coil__tcb *t);
void coil__tcp_deliver(struct coil__tcb *t);
void coil__tcb_input(struct coil__tcb *t, struct coil__pkt *p,
		     const struct coil__tcp_seg *s);
/* No connection for the segment: listeners, cookies, or RST. */
void coil__tcp_listen_input(struct coil__tcp *tcp, struct coil__pkt *p,
			    const struct coil__tcp_seg *s);
void coil__tcb_syn_sent_input(struct coil__tcb *t, struct coil__pkt *p,
			      const struct coil__tcp_seg *s);
/* SYN_RCVD -> ESTABLISHED on the ACK s: accepted(). False when the
 * connection was refused (reset and freed). */
bool coil__tcb_established(struct coil__tcb *t, const struct coil__tcp_seg *s);
void coil__tcp_secret_init(struct coil__tcp *tcp);
/* One RTT measurement of r ms (RFC 6298 2.2/2.3). */
void coil__tcb_rtt_sample(struct coil__tcb *t, uint32_t r);

#endif
