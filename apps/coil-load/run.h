/* SPDX-License-Identifier: MIT */
/*
 * coil-load's run, in three parts that share the per-loop state below:
 *   conn.c  the connections and their requests: sending, parsing the
 *           echo/http responses, reconnecting (the closed loop)
 *   open.c  the open loop (--rate): requests on a schedule
 *   run.c   the loops' timers and the engine run itself
 *
 * Latency is measured with the loop's clock (read once per turn).
 */
#ifndef COIL_LOAD_RUN_H
#define COIL_LOAD_RUN_H

#include "load.h"

#include <coil/coil.h>
#include <coil/http1.h>

#include <stdatomic.h>

#define REQ_COPIES 64           /* prebuilt requests (>= pipeline) */
#define TICK_MS 10              /* retries, timeouts, stats snapshot */
#define RETRY_MS 10             /* after a failed connect */

enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };

struct load;

struct lctx {
	struct load *ld;
	struct coil_loop *loop;
	unsigned id;
	struct coil_timer tick, end, warm;
	uint64_t start_ns, end_ns;
	bool done, started;
	unsigned nconns;             /* this loop's share */
	struct coil_conn **slot;     /* the connection of each slot, or NULL */
	uint8_t *retry;              /* slot waits for a (re)connect */
	unsigned nretry;
	uint64_t retry_at_ns;
	uint64_t next_check_ns;
	uint64_t next_progress_ns;
	uint64_t last_progress_done;
	unsigned *free;              /* open loop: slots that may have room */
	uint8_t *in_free;            /* open loop: slot is on `free` */
	unsigned nfree;
	uint64_t issued;             /* open loop: requests issued */
	uint64_t behind;             /* open loop: due at the end, not issued */
	double rate;                 /* open loop: this loop's requests/s */
	uint8_t *pat;                /* echo pattern */
	atomic_ullong snap_done, snap_err;
	struct load_stats st;
} __attribute__((aligned(64)));

struct load {
	const struct load_opts *o;
	struct coil_engine *eng;
	int svc;
	const char *req;             /* REQ_COPIES requests back to back */
	size_t req_len;              /* one of them */
	uint32_t depth;              /* in flight per connection */
	bool head_req;
	bool tty;
	struct lctx *lc;
	unsigned nloops;
	atomic_uint loops_done;
	int64_t cpu0_us, cpu1_us;    /* --cpu-pid at the counting's ends */
};


struct cs {
	struct lctx *lc;
	uint32_t slot;
	uint8_t opened, timed_out, invalid, body_mode;
	uint16_t status;          /* of the response being read: counted
				     when it completes, with done */
	uint8_t tls_seen;            /* its handshake was counted */
	uint32_t inflight;
	uint32_t head;               /* ring index of the oldest in flight */
	uint64_t last_ns;            /* last progress (or connect start) */
	uint64_t remaining;          /* BODY_LENGTH bytes to skip */
	uint32_t pat_off;            /* echo: stream offset in the pattern */
	uint64_t tx_pos, rx_pos, msgs_rx;
	struct coil_http1_body body; /* BODY_CHUNKED */
	uint64_t ts[];               /* send (or intended) time per request */
};
static inline uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* ---- conn.c ---- */
/* TLS: count c's completed handshake once (its first plaintext). */
void load_tls_seen(struct coil_conn *c, struct cs *s);
extern const struct coil_proto_ops load_echo_ops, load_http_ops;
/* Send k prebuilt requests on c, each tracked as sent at t. */
void load_send_reqs(struct coil_conn *c, struct cs *s, unsigned k, uint64_t t);
/* Open the connection of `slot` (on failure, schedule a retry). */
void load_slot_connect(struct lctx *lc, unsigned slot);

/* ---- open.c (--rate) ---- */
/* A connection has room again (or just opened): what is due goes out. */
void load_open_room(struct lctx *lc, struct cs *s, uint64_t now);
/* Issue every request due by now on connections with room. */
void load_open_dispatch(struct lctx *lc, uint64_t now);
/* 0 when the connections can carry the rate; else -EINVAL, said on stderr. */
int load_open_check(const struct load_opts *o, unsigned depth);
/* The engine's loop_turn hook with --rate (arg: the struct load). */
void load_open_turn(struct coil_loop *loop, void *arg);

#endif
