// SPDX-License-Identifier: MIT
/*
 * coil's SO_REUSEPORT dispatcher: picks the loop for each new connection
 * (and for each request migrated off a closing listener) by the policy in
 * coil_state, never a draining loop, then tail-calls the user program if
 * one is installed: it may override the choice with its own
 * bpf_sk_select_reuseport(), drop the connection (SK_DROP), or return
 * SK_PASS without selecting to keep the built-in choice.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "steer.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} coil_user SEC(".maps");

/* (hash * n) >> 32: a uniform index in [0, n) without a division. */
static __always_inline __u32 scale(__u32 h, __u32 n)
{
	return (__u32)(((__u64)h * n) >> 32);
}

/* A loop's load for `least`: connections open plus those steered to it
 * and not yet accepted (counted the moment they are steered, so a burst
 * sees its own earlier picks). Draining or past the end: never chosen. */
static __always_inline __u64 load_of(struct coil_steer_state *st, __u32 i)
{
	struct coil_steer_loop *l;
	__s64 pending;

	if (i >= COIL_STEER_MAX_LOOPS)
		return ~0ull;
	l = &st->loop[i];
	if (l->draining)
		return ~0ull;
	pending = (__s64)(l->steered - l->accepted) - l->forgot;
	return l->active + (pending > 0 ? (__u64)pending : 0);
}

static __always_inline __u32 choose(struct sk_reuseport_md *md,
				    struct coil_steer_state *st, __u32 n)
{
	__u32 policy = st->hdr.policy;

	if (policy == COIL_STEER_CPU) {
		__u32 cpu = bpf_get_smp_processor_id();

		if (cpu < COIL_STEER_MAX_CPUS) {
			__u32 l = st->cpu_loop[cpu];

			if (l && l <= n)
				return l - 1;
		}
	} else if (policy == COIL_STEER_LEAST && n > 1) {
		/* Power of two choices: two distinct random loops, the one
		 * with the lower load wins (with 2 loops: both), a tie goes
		 * to either at random. */
		__u32 r = bpf_get_prandom_u32();
		__u32 a = scale(r, n);
		__u32 b = a + 1 + scale(r << 16 | r >> 16, n - 1);
		__u64 la, lb;

		if (b >= n)
			b -= n;
		la = load_of(st, a);
		lb = load_of(st, b);
		if (la == lb)
			return bpf_get_prandom_u32() & 1 ? b : a;
		return lb < la ? b : a;
	}
	return scale(md->hash, n);
}

SEC("sk_reuseport/migrate")
int coil_steer(struct sk_reuseport_md *md)
{
	struct coil_steer_state *st;
	__u32 zero = 0, n, pick, sel = COIL_STEER_MAX_LOOPS;

	st = bpf_map_lookup_elem(&coil_state, &zero);
	if (!st)
		return SK_PASS;
	n = st->hdr.nloops;
	if (n == 0 || n > COIL_STEER_MAX_LOOPS)
		return SK_PASS;   /* not set up: the kernel's hash */
	pick = choose(md, st, n);
	/* The pick, or the next loop that is neither draining nor closed
	 * (select fails on a slot whose socket is gone). If every loop is
	 * draining, nothing is selected and the kernel hashes. */
	for (__u32 k = 0; k < COIL_STEER_MAX_LOOPS && k < n; k++) {
		__u32 i = pick + k;

		if (i >= n)
			i -= n;
		if (i >= COIL_STEER_MAX_LOOPS)
			break;
		if (st->loop[i].draining)
			continue;
		if (bpf_sk_select_reuseport(md, &coil_socks, &i, 0) == 0) {
			sel = i;
			break;
		}
	}
	/* Owed to the loop from now on, until it accepts (or its reconcile
	 * writes it off). */
	if (sel < COIL_STEER_MAX_LOOPS)
		__sync_fetch_and_add(&st->loop[sel].steered, 1);
	/* Migrations stay with the built-in policy: a user program sees only
	 * new connections. */
	if (!md->migrating_sk)
		bpf_tail_call(md, &coil_user, 0);
	return SK_PASS;
}
