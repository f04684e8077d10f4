/* SPDX-License-Identifier: MIT */
#ifndef COIL_ENGINE_H
#define COIL_ENGINE_H

#include <stddef.h>
#include <stdint.h>

struct coil_service;
struct coil_loop;

/* Which I/O backend the loops use. AUTO picks io_uring, then epoll. */
enum coil_backend_kind {
	COIL_BACKEND_AUTO = 0,
	COIL_BACKEND_URING,
	COIL_BACKEND_EPOLL,
	COIL_BACKEND_DPDK,   /* kernel bypass on coil's own IPv4 stack:
				TCP (listen and connect, coil_conn as on
				the other backends), UDP, ICMP echo and
				ARP, on the first DPDK port (a NIC or a
				vdev such as net_memif, net_vhost,
				net_virtio_user, net_af_packet); IPv4
				only (-EAFNOSUPPORT for IPv6); needs a
				build with libdpdk */
};

/*
 * How an idle loop waits. ADAPTIVE (the default) spins poll_us microseconds
 * after the last event, then sleeps: steady traffic never pays for a
 * wake-up, an idle server costs nothing; a spin that finds nothing (and
 * has nothing to submit) yields the CPU (sched_yield) first, so a thread
 * sharing the CPU (a client on the same machine, another process) is not
 * kept waiting by it. NEVER sleeps in the kernel whenever
 * idle (least CPU per message); ALWAYS busy-polls and never sleeps (lowest
 * latency, one core per loop at 100%). README has the measurements.
 */
enum coil_poll_mode {
	COIL_POLL_ADAPTIVE = 0,
	COIL_POLL_NEVER,
	COIL_POLL_ALWAYS,
};

/* Certificates the engine flags carry at most (COIL_TLS_MAX_CERTS). */
#define COIL_ENGINE_TLS_CERTS 8

/* Engine options; zero means default for every field. */
struct coil_engine_opts {
	size_t sz;                   /* sizeof(struct coil_engine_opts) */
	unsigned cores;              /* loops; default: every CPU we may run on */
	enum coil_backend_kind backend;
	enum coil_poll_mode poll;
	unsigned poll_us;            /* ADAPTIVE spin budget; default 50 */
	unsigned bufs;               /* receive buffers per loop; default 2048 */
	unsigned buf_size;           /* bytes per receive buffer; default 4096 */
	unsigned max_conns;          /* connections per loop; default 65536 */
	unsigned drain_ms;           /* graceful shutdown limit; default 5000 */
	const char *name;            /* log prefix; default "coil" */
	unsigned coalesce_us;        /* under load, a sleeping loop waits up to
					this long for a batch of completions
					instead of waking for the first;
					default 20, COIL_COALESCE_OFF: never.
					io_uring on kernels >= 6.12 */
	/* Called once on every loop's own thread when the loop is ready
	 * (listeners armed), before its first turn: the place to start
	 * per-loop timers and outgoing connections (coil_loop_connect).
	 * NULL: nothing. `loop_arg` is passed through. */
	void (*loop_start)(struct coil_loop *loop, void *arg);
	void *loop_arg;
	const char *steer;           /* which loop gets each new connection:
					"auto" (NULL: eBPF least, else the
					kernel's hash),
					"hash", "cpu", "least", "none" (the
					kernel's hash, no program) or a user
					program "FILE.bpf.o" (over "least");
					copied. README "Steering" */
	/* COIL_BACKEND_DPDK only: */
	const char *dpdk_args;       /* EAL arguments, split on blanks, e.g.
					"--no-huge -m 128 --no-pci
					--vdev=net_af_packet0,iface=veth0";
					the first ethdev port is used */
	const char *ip;              /* the port's address "A.B.C.D/NN"
					(required) */
	const char *gw;              /* default gateway "A.B.C.D" or NULL */
	unsigned mbufs;              /* mbuf pool size; default 8192 */
	unsigned idle_sleep_us;      /* sleep this long after a turn that
					found nothing (VMs, shared cores);
					0: busy-poll always */
	/* Cross-thread work (coil/defer.h, coil/post.h): */
	unsigned defer_threads;      /* worker threads; default 4 */
	unsigned defer_queue;        /* jobs queued at most, engine-wide (and
					per loop); default 1024, at most
					65536 */
	unsigned post_queue;         /* messages queued per loop at most;
					default 1024 */
	/* Called on every turn of every loop, on the loop's own thread, after
	 * the due timers and before the loop waits: for work finer than the
	 * 1 ms timers (an open-loop load generator's schedule). A turn comes
	 * whenever I/O completes or a timer is due, and with poll ALWAYS
	 * every few microseconds. NULL: nothing. Gets `loop_arg`. */
	void (*loop_turn)(struct coil_loop *loop, void *arg);
	/* TLS certificates from the command line (--tls-cert, --tls-key:
	 * coil/options.h), PEM files paired in order, the first the default;
	 * borrowed. The engine does not read them: an app makes its context
	 * with coil_tls_from_engine_opts (coil/tls.h). */
	const char *tls_cert[COIL_ENGINE_TLS_CERTS];
	const char *tls_key[COIL_ENGINE_TLS_CERTS];
	unsigned tls_handshake_ms;   /* --tls-handshake-ms; default 10000 */
};

#define COIL_COALESCE_OFF 0xffffffffu

/* Services one engine holds: coil_engine_listen and coil_engine_client
 * share one table of this many, coil_engine_udp has its own. One more
 * fails with -ENOSPC. */
#define COIL_ENGINE_MAX_SERVICES 8

struct coil_engine;

/*
 * Check a coil_engine_opts.steer value without creating anything: 0 when
 * coil_engine_create would take it, -EINVAL when not (files are not opened
 * here). Also accepts "least-loaded" for "least" and "off" for "none". Any
 * thread.
 */
int coil_engine_steer_check(const char *steer);

/*
 * Create an engine (no threads yet). Returns 0 and sets *out, or -errno
 * (-EINVAL for bad options). The caller owns the engine: destroy it with
 * coil_engine_destroy(). Main thread.
 */
int coil_engine_create(const struct coil_engine_opts *opts,
		       struct coil_engine **out);

/*
 * Open one SO_REUSEPORT listening socket per loop for `svc` (copied) and
 * attach steering to them as opts.steer says (logging one line: which
 * steering and why). Call before coil_engine_run(). Returns the service
 * index (>= 0) or -errno (-EADDRINUSE, -EINVAL for a bad address or no
 * on_data, -ENOSPC when COIL_ENGINE_MAX_SERVICES TCP services exist, the
 * error of a user steering program that does not load...). Main thread.
 */
int coil_engine_listen(struct coil_engine *eng, const struct coil_service *svc);

/*
 * Register a client service (Twisted's ClientFactory): `svc` (copied) gives
 * the protocol, state size and options of outgoing connections, and
 * svc->addr / svc->port the endpoint they connect to (a numeric IPv4 or
 * IPv6 address and a non-zero port). Nothing listens. Connections are
 * opened with coil_loop_connect() on any loop. Call before
 * coil_engine_run(). Returns the service index (>= 0) or -errno (-EINVAL:
 * bad address, port 0, no on_data; -ENOSPC when COIL_ENGINE_MAX_SERVICES
 * TCP services exist, as for coil_engine_listen). Main thread.
 */
int coil_engine_client(struct coil_engine *eng, const struct coil_service *svc);

/* The bound port of service `index` (useful with port 0), or 0. */
uint16_t coil_engine_port(const struct coil_engine *eng, int index);

/* Wait until the engine's network link is up, at most `timeout_ms`: on
 * DPDK, the port's link (a vdev's link is up once its peer is there: the
 * memif server, the vhost-user backend); on the kernel's backends the
 * kernel owns the link and this returns 0 at once. For clients that must
 * not start a measured run, or a deadline, on a link still coming up (a
 * server needs no wait: its link comes up with its first peer). Returns 0
 * when up, -ETIMEDOUT. Main thread, after coil_engine_create, before
 * coil_engine_run. */
int coil_engine_link_wait(struct coil_engine *eng, unsigned timeout_ms);

/* The backend the loops will use ("io_uring", ...), resolved at create. */
const char *coil_engine_backend(const struct coil_engine *eng);

/*
 * Start the loops (one pinned thread each) and block until SIGINT/SIGTERM
 * or coil_engine_stop(); then stop accepting, let connections drain for up
 * to drain_ms, and join the loops. SIGINT/SIGTERM are blocked in the calling
 * thread (and so in the loops). A second signal aborts the drain.
 * Returns 0, or -errno when a loop failed to start. Main thread, once.
 */
int coil_engine_run(struct coil_engine *eng);

/* Ask a running engine to stop, as a signal would. Any thread. */
void coil_engine_stop(struct coil_engine *eng);

/* Close the listeners, remove steering (and its pins under
 * /sys/fs/bpf/coil) and free the engine (after run returned, or instead of
 * it). Main thread. */
void coil_engine_destroy(struct coil_engine *eng);

#endif
