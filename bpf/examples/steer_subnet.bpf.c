// SPDX-License-Identifier: MIT
/*
 * Example user steering program: send clients by IPv4 subnet to a chosen
 * loop. Rules live in the LPM trie `subnet_loop` (prefix -> loop id),
 * pinned next to the server's maps, so they change without reloading:
 *
 *   coil-steer --port 7000 load build/bpf/steer_subnet.bpf.o
 *   # 10.1.0.0/16 -> loop 1  (key: prefix length, then the address bytes)
 *   bpftool map update pinned /sys/fs/bpf/coil/7000-PID/subnet_loop \
 *       key 16 0 0 0 10 1 0 0 value 1 0 0 0
 *
 * A client that matches no rule, an IPv6 client, or a rule naming a loop
 * that is draining or gone: the program returns SK_PASS without selecting,
 * and the loop coil's built-in policy chose stands.
 *
 * The contract for any user program: one SEC("sk_reuseport") program
 * (coil-steer loads the first one it finds), bpf/steer.h included after
 * <bpf/bpf_helpers.h> so the object declares coil_socks and coil_state
 * exactly as the server does (the loader makes them the server's own), and
 * a bpf_sk_select_reuseport(md, &coil_socks, &loop_id, 0) to choose.
 * Return SK_PASS to accept (with or without a choice) or SK_DROP to refuse.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "../steer.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct subnet_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct subnet_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} subnet_loop SEC(".maps");

SEC("sk_reuseport")
int steer_subnet(struct sk_reuseport_md *md)
{
	struct subnet_key key = { .prefixlen = 32 };
	struct coil_steer_state *st;
	__u32 zero = 0, *loop, l;

	if (md->eth_protocol != bpf_htons(ETH_P_IP))
		return SK_PASS;
	/* md->data starts at the TCP header: the source address is read
	 * relative to the network header (offset 12 in IPv4). */
	if (bpf_skb_load_bytes_relative(md, 12, key.addr, 4,
					BPF_HDR_START_NET))
		return SK_PASS;
	loop = bpf_map_lookup_elem(&subnet_loop, &key);
	if (!loop)
		return SK_PASS;
	l = *loop;
	st = bpf_map_lookup_elem(&coil_state, &zero);
	if (!st || l >= st->hdr.nloops || l >= COIL_STEER_MAX_LOOPS ||
	    st->loop[l].draining)
		return SK_PASS;
	bpf_sk_select_reuseport(md, &coil_socks, &l, 0);
	return SK_PASS;
}
