/* SPDX-License-Identifier: MIT */
/*
 * Types shared by the steering program (bpf/steer.bpf.c), user steering
 * programs (bpf/examples/), the engine (engine/steer/) and coil-steer.
 *
 * One set of maps per listening service, pinned by name under
 * /sys/fs/bpf/coil/<port>-<pid>/ (COIL_STEER_PIN_ROOT):
 *
 *   coil_socks  REUSEPORT_SOCKARRAY, key = loop id, value = the loop's
 *               listening socket
 *   coil_state  ARRAY (BPF_F_MMAPABLE), one struct coil_steer_state: the
 *               policy (switched live) and per-loop counters that each loop
 *               updates through its own mmap of the map, without a syscall
 *   coil_user   PROG_ARRAY, one slot: the user program, tail-called after
 *               the built-in policy has made its choice
 *
 * coil_state is shared memory: change single fields through an mmap of the
 * map, never with a whole-value map update (that would overwrite counters
 * the loops are writing).
 */
#ifndef COIL_BPF_STEER_H
#define COIL_BPF_STEER_H

#include <linux/types.h>

#define COIL_STEER_PIN_ROOT "/sys/fs/bpf/coil"
#define COIL_STEER_MAX_LOOPS 256
#define COIL_STEER_MAX_CPUS 1024
#define COIL_STEER_MAGIC 0x72656574736c696full /* "oilsteer" */
#define COIL_STEER_VERSION 1

/* Built-in policies (coil_steer_hdr.policy). */
enum coil_steer_policy {
	COIL_STEER_HASH = 0,   /* md->hash: the 4-tuple hash, stable */
	COIL_STEER_CPU = 1,    /* the loop pinned to the CPU handling the SYN */
	COIL_STEER_LEAST = 2,  /* power of two choices over open + pending */
	COIL_STEER_NPOLICIES
};

/*
 * One loop's slot, a cache line of its own. The loop writes everything but
 * `steered`, which the program adds to atomically (from any CPU) each time
 * it picks the loop. What the loop is still owed, pending = steered -
 * accepted - forgot, counts against it at once, so a burst of SYNs is
 * spread before any of it is accepted; the loop's periodic reconcile moves
 * into `forgot` what will never arrive (handshakes that did not complete,
 * a user program's override), and below 0 what arrived uncounted.
 */
struct coil_steer_loop {
	__u64 accepted;   /* connections accepted so far */
	__u64 active;     /* connections open now */
	__u32 draining;   /* non-zero: never chosen for new connections */
	__s32 cpu;        /* the CPU the loop is pinned to */
	__u64 steered;    /* connections the program sent here (atomic) */
	__s64 forgot;     /* steered but written off by the loop (see above) */
	__u8 pad[24];
} __attribute__((aligned(64)));

struct coil_steer_hdr {
	__u64 magic;          /* COIL_STEER_MAGIC once set up */
	__u32 version;        /* COIL_STEER_VERSION */
	__u32 nloops;         /* loops (slots used in loop[] and coil_socks) */
	__u32 policy;         /* enum coil_steer_policy, switched live */
	__u32 pid;            /* the server's process */
	__u32 port;           /* the service's port */
	__u32 user_id;        /* BPF program id of the user program, 0: none */
	char user_name[64];   /* its object file's base name */
	__u8 pad[32];
} __attribute__((aligned(64)));

struct coil_steer_state {
	struct coil_steer_hdr hdr;
	struct coil_steer_loop loop[COIL_STEER_MAX_LOOPS];
	__u16 cpu_loop[COIL_STEER_MAX_CPUS]; /* loop id + 1 per CPU; 0: none */
};

#ifdef __bpf__
/*
 * The maps, as every program declares them. LIBBPF_PIN_BY_NAME plus the
 * loader's pin_root_path (the server's directory) makes a user program's
 * object reuse the server's maps instead of creating its own, so its
 * bpf_sk_select_reuseport(md, &coil_socks, &loop, 0) picks a coil loop.
 * Include <bpf/bpf_helpers.h> first.
 */
struct {
	__uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
	__uint(max_entries, COIL_STEER_MAX_LOOPS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} coil_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct coil_steer_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} coil_state SEC(".maps");
#endif

#endif
