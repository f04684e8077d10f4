/* SPDX-License-Identifier: MIT */
/*
 * Between the DPDK backend's files: dpdk.c (a loop's queue pair and turn:
 * rx/tx bursts, the net stack, steering TCP between loops, the link) and
 * dpdk_port.c (once per process: the EAL, the port, the mbuf pool, the
 * redirect rings, the port gate's interrupt-thread side). What they share
 * is the process-wide state below, set up by dpdk_port.c on the main
 * thread before the loops start and read-only afterwards except for the
 * gate's flags. Private to engine/backend.
 */
#ifndef COIL_BACKEND_DPDK_INTERNAL_H
#define COIL_BACKEND_DPDK_INTERNAL_H

#include "backend.h"
#include "../net/net.h"

#include <stdatomic.h>

struct rte_intr_handle;
struct rte_mempool;
struct rte_ring;

#define MAX_Q 16          /* loops that steer TCP to each other */

/*
 * The port gate. net_memif (DPDK 22.11) runs its control channel on the
 * EAL interrupt thread: when the peer goes away (its process exits or
 * disconnects), memif_disconnect() there clears the CONNECTED flag, then
 * munmap()s the shared regions that hold the rings and buffers and frees
 * their descriptors (memif_free_regions), and on the next connect maps
 * new ones, all with no synchronisation with eth_memif_rx/tx, which test
 * the flag once on entry and then read the rings. A loop that passed the
 * test (or is preempted inside a burst) while the peer disconnects reads
 * unmapped memory: SIGSEGV. Checking the link first only narrows that
 * window.
 *
 * So for such a port the loops burst only while the interrupt thread is
 * known to be elsewhere: parked in gate_cb (dpdk_port.c), a callback of
 * ours on an always-readable eventfd, which opens the gate, sleeps
 * GATE_SLICE_US and closes it again, waiting for every loop to leave its
 * burst before it returns and lets the thread run memif's callbacks. A loop
 * announces a burst in its busy flag and then checks the gate; gate_cb
 * closes the gate and then checks the flags (both sequentially consistent):
 * either the loop sees the gate closed and skips the burst, or gate_cb sees
 * the loop inside and waits. The interrupt thread is single, so while it is
 * parked no other callback of it (memif's) can run.
 *
 * net_vhost needs none of this (its queues have their own allow/while
 * queuing handshake with the vhost-user thread), nor net_virtio_user (its
 * rings are its own memory, never unmapped by a disconnect), nor NICs.
 */
struct gate_flag {
	_Alignas(64) atomic_int busy;
};

/* Process-wide: the EAL, the port and the pool (set up on the main thread
 * before the loops start, read-only afterwards). Defined in dpdk_port.c. */
struct coil__dpdk_process {
	bool eal, started, cleaned, has_port, tx_tcp_csum;
	uint16_t port;
	uint16_t nq;
	unsigned mbufs;
	struct rte_mempool *pool;
	struct coil__net_cfg cfg;
	unsigned idle_sleep_us;
	char driver[64];
	char *argbuf;
	/* TCP segments a loop received for another loop's flow: [from][to]
	 * (single producer, single consumer). */
	struct rte_ring *redir[MAX_Q][MAX_Q];
	/* the port gate (gated: the port needs it, see above) */
	bool gated;
	int gate_fd;
	struct rte_intr_handle *gate_ih;
	_Alignas(64) atomic_int gate_open;
	struct gate_flag busy[MAX_Q];
};
extern struct coil__dpdk_process coil__dpdk;

#endif
