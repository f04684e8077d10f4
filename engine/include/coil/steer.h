/* SPDX-License-Identifier: MIT */
/*
 * Steering of running coil servers, from outside them (what coil-steer
 * does): a server that steers its connections with eBPF (coil_engine_opts
 * .steer, README "Steering") pins its maps under coil_steer_pin_root()/
 * <port>-<pid>/. These calls find such servers, read each loop's counters,
 * switch the built-in policy live, install or remove a user steering
 * program, and drain a loop (steer no new connections to it).
 *
 * They need BPF privileges (root, or CAP_BPF and CAP_NET_ADMIN), and
 * opening maps needs a build with libbpf (without it coil_steer_open
 * returns -ENOTSUP). Servers that fell back to classic BPF or the kernel's
 * hash pin nothing: they are not found. Nothing here touches the calling
 * process's own engine.
 */
#ifndef COIL_STEER_H
#define COIL_STEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One running server with eBPF steering, as coil_steer_list finds it. */
struct coil_steer_server {
	unsigned port;            /* the steered service's port */
	unsigned pid;             /* the server's process id */
	char dir[96];             /* the directory its maps are pinned in */
};

/* An open view of one server's steering maps (opaque). */
struct coil_steer_maps;

/* What a server's maps say about it, as coil_steer_info reads it. */
struct coil_steer_info {
	unsigned pid, port;
	unsigned nloops;          /* loops, numbered 0..nloops-1 */
	const char *policy;       /* "hash", "cpu", "least", or "unknown" (a
				     value this version does not name) */
	unsigned user_id;         /* BPF program id of the user program; 0:
				     none installed */
	char user_name[65];       /* its object file's base name, or "" */
	const char *dir;          /* the pin directory; borrowed from the
				     view, valid until coil_steer_close */
};

/* One loop's counters (written live by that loop: a snapshot). */
struct coil_steer_loop_stats {
	int cpu;                  /* the CPU the loop is pinned to, -1: none */
	uint64_t accepted;        /* connections accepted so far */
	uint64_t active;          /* connections open now */
	bool draining;            /* true: never chosen for new connections */
	uint64_t steered;         /* connections the steering program sent
				     here so far */
	uint64_t pending;         /* steered here, not yet accepted: what
				     `least` counts against the loop on top
				     of `active` (settled every 100 ms) */
};

/* The directory servers pin their maps under ("/sys/fs/bpf/coil"). Static
 * storage. Pure; any thread. */
const char *coil_steer_pin_root(void);

/*
 * The running servers with eBPF steering whose port is `port` and whose pid
 * is `pid` (0: any), found under coil_steer_pin_root() (servers that died
 * without cleaning up are skipped). Fills out[0..max-1] and returns how many
 * match (which may exceed max: only max are written), or -errno: -ENOENT
 * when no server ever pinned anything there, -EACCES/-EPERM without
 * privileges. The caller owns `out`. Any thread.
 */
int coil_steer_list(unsigned port, unsigned pid, struct coil_steer_server *out,
		    size_t max);

/*
 * Open the steering maps of one running server: the one pinned in `dir`
 * when `dir` is not NULL, else the only server coil_steer_list(port, pid)
 * finds. Returns 0 and sets *out (close it with coil_steer_close), or
 * -errno: -ENOENT (no such server), -ENOTUNIQ (several match: list them
 * with coil_steer_list and pick one), -EACCES/-EPERM (no privileges),
 * -EPROTO (maps of another coil version), -ENOTSUP (built without libbpf),
 * -ENOMEM. `dir` is copied. Any thread; one view is used by one thread at a
 * time.
 */
int coil_steer_open(unsigned port, unsigned pid, const char *dir,
		    struct coil_steer_maps **out);

/* Unmap and free a view (the server is not touched). NULL is fine. The
 * thread using the view. */
void coil_steer_close(struct coil_steer_maps *m);

/* Read the server's header (policy, loops, user program) into *out.
 * Returns 0. The thread using the view. */
int coil_steer_info(const struct coil_steer_maps *m, struct coil_steer_info *out);

/* Read loop `loop`'s counters into *out. Returns 0, or -ERANGE when the
 * server has no such loop (loop >= coil_steer_info's nloops). The thread
 * using the view. */
int coil_steer_loop_stats(const struct coil_steer_maps *m, unsigned loop,
			  struct coil_steer_loop_stats *out);

/* 0 when `policy` names a built-in policy coil_steer_set_policy takes
 * ("hash", "cpu", "least" or its alias "least-loaded"), else -EINVAL.
 * Pure; any thread. */
int coil_steer_policy_check(const char *policy);

/* Switch the server's built-in policy live (new connections only). Returns
 * 0, or -EINVAL for a name coil_steer_policy_check refuses. The thread
 * using the view. */
int coil_steer_set_policy(struct coil_steer_maps *m, const char *policy);

/* Steer no new connections to loop `loop` (drain true) or undo it (false);
 * the loop's open connections are not touched. Returns 0, or -ERANGE when
 * the server has no such loop. The thread using the view. */
int coil_steer_drain(struct coil_steer_maps *m, unsigned loop, bool drain);

/*
 * Install the user steering program in `file` (a BPF object: its first
 * program runs after the built-in policy, bpf/examples/) into the server,
 * replacing any installed one. Returns 0, or -errno with one line saying
 * why in err[n] (libbpf's verifier messages go to stderr). `file` and `err`
 * are the caller's. The thread using the view.
 */
int coil_steer_load(struct coil_steer_maps *m, const char *file, char *err,
		    size_t n);

/* Remove the user program (the built-in policy alone steers again).
 * Returns 0 (also when none was installed), or -errno with a reason in
 * err[n]. The thread using the view. */
int coil_steer_unload(struct coil_steer_maps *m, char *err, size_t n);

#endif
