/* SPDX-License-Identifier: MIT */
/*
 * Connection steering across the loops of one service (private): parse the
 * --steer value, decide eBPF -> classic BPF -> kernel hash, attach, and the
 * per-loop counters the loops keep for the eBPF policies. Never installed.
 */
#ifndef COIL_STEERING_H
#define COIL_STEERING_H

#include "../../bpf/steer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What --steer asked for. */
enum coil__steer_want {
	COIL__WANT_AUTO = 0,  /* eBPF least, else the kernel's hash */
	COIL__WANT_HASH,
	COIL__WANT_CPU,
	COIL__WANT_LEAST,
	COIL__WANT_NONE,      /* the kernel's SO_REUSEPORT hash, no program */
	COIL__WANT_FILE,      /* a user program, over the auto policy */
};

struct coil__steer_spec {
	enum coil__steer_want want;
	const char *file;     /* COIL__WANT_FILE: the object file (borrowed) */
};

/*
 * Parse a --steer value: auto (or NULL/""), hash, cpu, least (alias
 * least-loaded), none (alias off), or a path ending in ".o". Returns 0, or
 * -EINVAL. `out->file` points into `s`. Pure; any thread.
 */
int coil__steer_parse(const char *s, struct coil__steer_spec *out);

/* The built-in eBPF policy a spec runs (auto and files: least). */
enum coil_steer_policy coil__steer_policy_of(const struct coil__steer_spec *spec);

/* Name of a built-in policy ("hash", "cpu", "least"), or NULL. */
const char *coil__steer_policy_name(unsigned policy);

/* How a service is steered in the end. */
enum coil__steer_mode {
	COIL__STEER_EBPF = 0,
	COIL__STEER_CBPF,     /* SO_ATTACH_REUSEPORT_CBPF: receiving CPU */
	COIL__STEER_KERNEL,   /* no program: the kernel's hash */
};

/* What the machine and the build allow, and what was tried already. */
struct coil__steer_caps {
	enum coil__steer_want want;
	unsigned nloops;
	bool have_libbpf;     /* built with libbpf (COIL_HAVE_BPF) */
	const char *force;    /* COIL_STEER_FORCE: "cbpf" or "none"; NULL */
	int ebpf_err;         /* -errno from an eBPF attempt, 0: not failed */
	const char *ebpf_why; /* text for ebpf_err, or NULL */
	int cbpf_err;         /* -errno from a classic BPF attempt, 0 */
};

/*
 * The next mode to try, given what failed so far: eBPF, then classic BPF
 * for `cpu` only (the kernel hashes `hash` itself, and balances auto,
 * least and user programs better by hash than by receiving CPU), then the
 * kernel hash.
 * Writes why the better modes were not taken into why[n] ("" for eBPF).
 * Pure: the engine calls it again after each failed attempt.
 */
enum coil__steer_mode coil__steer_decide(const struct coil__steer_caps *c,
					 char *why, size_t n);

/* What coil__steer_attach needs to know about the service. */
struct coil__steer_setup {
	const char *name;     /* the log prefix (app name) */
	unsigned port;
	unsigned nloops;
	const int *fds;       /* [nloops] listening sockets, loop order */
	const int *cpus;      /* [nloops] the CPU each loop is pinned to */
};

struct coil__steer {
	enum coil__steer_mode mode;
	struct coil_steer_state *state;  /* eBPF: our mmap of coil_state */
	void *skel;                      /* eBPF: struct steer_bpf */
	char dir[96];                    /* eBPF: the pin directory */
};

/*
 * Attach steering to one service's listeners as `spec` asks, degrading as
 * the machine requires, and log one line saying what and why. Returns 0 and
 * sets *out (free it with coil__steer_detach), or -errno for a user
 * error that must stop the server (a user program that does not load).
 * Main thread, before the loops start.
 */
int coil__steer_attach(const struct coil__steer_spec *spec,
		       const struct coil__steer_setup *su,
		       struct coil__steer **out);

/* The mode attach settled on. */
enum coil__steer_mode coil__steer_mode(const struct coil__steer *s);

/* Loop `loop`'s counter slot (eBPF only), or NULL. */
struct coil_steer_loop *coil__steer_slot(struct coil__steer *s, unsigned loop);

/* Remove the pins and free everything (after the loops have stopped).
 * NULL is fine. Main thread. */
void coil__steer_detach(struct coil__steer *s);

/* ---- the eBPF side (engine/steer/ebpf.c; -ENOTSUP without libbpf) ---- */

/* Load the dispatcher, pin its maps, fill them and attach it to su->fds.
 * Returns 0, or -errno with a reason in why[n] (nothing left behind). */
int coil__steer_ebpf_open(struct coil__steer *s, enum coil_steer_policy policy,
			  const struct coil__steer_setup *su, char *why,
			  size_t n);
void coil__steer_ebpf_close(struct coil__steer *s);

/* The pin directory for a service: COIL_STEER_PIN_ROOT/<port>-<pid>. */
void coil__steer_dir(char *buf, size_t n, unsigned port, unsigned pid);

/*
 * Load a user steering program from `file` into the server whose maps are
 * pinned in `dir`, replacing any installed one. Its maps declared with
 * LIBBPF_PIN_BY_NAME (coil_socks, coil_state from bpf/steer.h) are the
 * server's. Returns 0, or -errno with a reason in err[n]. Any thread of a
 * process with BPF privileges (the engine at start, coil-steer).
 */
int coil__steer_user_load(const char *dir, const char *file, char *err,
			  size_t n);

/* Remove the user program (and pins its object added). 0 or -errno. */
int coil__steer_user_unload(const char *dir, char *err, size_t n);

/*
 * Map the coil_state of the server pinned in `dir` read-write. Returns 0
 * and sets *out (munmap with coil__steer_state_unmap), or -errno.
 */
int coil__steer_state_map(const char *dir, struct coil_steer_state **out);
void coil__steer_state_unmap(struct coil_steer_state *st);

/* ---- the loops' side: single writer per slot, no syscall ---- */

static inline void coil__steer_opened(struct coil_steer_loop *s)
{
	if (!s)
		return;
	__atomic_store_n(&s->accepted,
			 __atomic_load_n(&s->accepted, __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&s->active,
			 __atomic_load_n(&s->active, __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
}

static inline void coil__steer_closed(struct coil_steer_loop *s)
{
	if (!s)
		return;
	__atomic_store_n(&s->active,
			 __atomic_load_n(&s->active, __ATOMIC_RELAXED) - 1,
			 __ATOMIC_RELAXED);
}

/*
 * How often each loop reconciles what the program counted against it
 * (coil__steer_reconcile), in ms: a handshake that never completes is
 * owed at most this long, plus the while it sits in the SYN queue.
 */
#define COIL__STEER_RECONCILE_MS 100

/*
 * Settle the count of connections steered to this loop but not accepted:
 * of them, keep at most those in the listener's accept queue (`fd`, read
 * with TCP_INFO) plus those steered since the last call (*mark, updated),
 * which may still be in their handshake; write off the rest (handshakes
 * that never completed, picks a user program overrode), and forget a
 * negative count (connections accepted that the program never counted).
 * NULL `s` does nothing. The loop's own thread, every
 * COIL__STEER_RECONCILE_MS.
 */
void coil__steer_reconcile(struct coil_steer_loop *s, int fd, uint64_t *mark);

/* The loop stops accepting: no new connection may be steered to it. */
static inline void coil__steer_draining(struct coil_steer_loop *s)
{
	if (s)
		__atomic_store_n(&s->draining, 1, __ATOMIC_RELEASE);
}

#endif
