/* SPDX-License-Identifier: MIT */
/*
 * Steering: what --steer asked for, what the machine allows (eBPF ->
 * classic BPF -> the kernel's hash), and the classic BPF fallback itself.
 */
#include "steering.h"
#include "../core/log.h"
#include "coil_config.h"

#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && !strcmp(s + n - m, suffix);
}

int coil__steer_parse(const char *s, struct coil__steer_spec *out)
{
	static const struct {
		const char *name;
		enum coil__steer_want want;
	} words[] = {
		{ "auto", COIL__WANT_AUTO },   { "hash", COIL__WANT_HASH },
		{ "cpu", COIL__WANT_CPU },     { "least", COIL__WANT_LEAST },
		{ "least-loaded", COIL__WANT_LEAST },
		{ "none", COIL__WANT_NONE },   { "off", COIL__WANT_NONE },
	};

	out->want = COIL__WANT_AUTO;
	out->file = NULL;
	if (!s || !*s)
		return 0;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcmp(s, words[i].name)) {
			out->want = words[i].want;
			return 0;
		}
	if (!ends_with(s, ".o"))
		return -EINVAL;
	out->want = COIL__WANT_FILE;
	out->file = s;
	return 0;
}

enum coil_steer_policy coil__steer_policy_of(const struct coil__steer_spec *spec)
{
	switch (spec->want) {
	case COIL__WANT_HASH:
		return COIL_STEER_HASH;
	case COIL__WANT_CPU:
		return COIL_STEER_CPU;
	default:
		return COIL_STEER_LEAST;
	}
}

const char *coil__steer_policy_name(unsigned policy)
{
	static const char *const names[] = { "hash", "cpu", "least" };

	return policy < COIL_STEER_NPOLICIES ? names[policy] : NULL;
}

static void err_text(int err, const char *given, char *buf, size_t n)
{
	if (given && *given)
		snprintf(buf, n, "%s", given);
	else if (err == -EPERM || err == -EACCES)
		snprintf(buf, n, "not permitted: needs root, or CAP_BPF and "
			 "CAP_NET_ADMIN");
	else
		snprintf(buf, n, "%s", strerror(-err));
}

enum coil__steer_mode coil__steer_decide(const struct coil__steer_caps *c,
					 char *why, size_t n)
{
	char ebpf[160] = "", cbpf[96] = "";
	bool force_cbpf = c->force && !strcmp(c->force, "cbpf");
	bool force_none = c->force && !strcmp(c->force, "none");

	why[0] = 0;
	if (c->want == COIL__WANT_NONE) {
		snprintf(why, n, "--steer none");
		return COIL__STEER_KERNEL;
	}
	if (force_none) {
		snprintf(why, n, "COIL_STEER_FORCE=none");
		return COIL__STEER_KERNEL;
	}
	if (c->nloops < 2 && c->want == COIL__WANT_AUTO) {
		snprintf(why, n, "one loop, nothing to steer");
		return COIL__STEER_KERNEL;
	}
	if (!c->have_libbpf)
		snprintf(ebpf, sizeof(ebpf), "built without libbpf");
	else if (force_cbpf)
		snprintf(ebpf, sizeof(ebpf), "COIL_STEER_FORCE=cbpf");
	else if (c->ebpf_err)
		err_text(c->ebpf_err, c->ebpf_why, ebpf, sizeof(ebpf));
	else
		return COIL__STEER_EBPF;
	if (c->want == COIL__WANT_HASH) {
		/* The kernel's own choice is a hash of the 4-tuple too. */
		snprintf(why, n, "eBPF unavailable: %s", ebpf);
		return COIL__STEER_KERNEL;
	}
	if (c->want != COIL__WANT_CPU) {
		/* auto, least, a user program: what they want is balance.
		 * Blind to load, the 4-tuple hash spreads any burst evenly
		 * in expectation; classic BPF can only go by the receiving
		 * CPU, and sends a burst one CPU handles (loopback, a NIC
		 * with one receive queue) all to one loop. */
		snprintf(why, n, "eBPF unavailable: %s; %s", ebpf,
			 c->want == COIL__WANT_FILE
				 ? "user program not loaded"
				 : "least needs eBPF, and by receiving CPU a "
				   "burst from one CPU would go to one loop");
		return COIL__STEER_KERNEL;
	}
	if (!c->cbpf_err) {
		snprintf(why, n, "eBPF unavailable: %s", ebpf);
		return COIL__STEER_CBPF;
	}
	err_text(c->cbpf_err, NULL, cbpf, sizeof(cbpf));
	snprintf(why, n, "eBPF unavailable: %s; classic BPF failed: %s", ebpf,
		 cbpf);
	return COIL__STEER_KERNEL;
}

/*
 * Classic BPF (--steer cpu only): the socket index (= loop id: the
 * listeners joined the group in loop order) of the loop pinned to the CPU
 * handling the SYN, one of them at random (SKF_AD_RANDOM) when several
 * loops share that CPU (more loops than CPUs); an index past the group (no
 * loop on that CPU) makes the kernel hash.
 */
static int cbpf_attach(const struct coil__steer_setup *su)
{
	/* Per CPU: its test, and a return (1 loop) or random, mod and a
	 * test and return per loop (k loops): at most 5 per loop. */
	struct sock_filter code[2 + 5 * COIL_STEER_MAX_LOOPS];
	struct sock_fprog prog = { .filter = code };
	unsigned n = 0, grp[COIL_STEER_MAX_LOOPS];
	bool seen[COIL_STEER_MAX_LOOPS] = { false };

	if (su->nloops > COIL_STEER_MAX_LOOPS)
		return -E2BIG;
	code[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
						 (__u32)(SKF_AD_OFF + SKF_AD_CPU));
	for (unsigned i = 0; i < su->nloops; i++) {
		unsigned k = 0, len;

		if (seen[i])
			continue;
		for (unsigned j = i; j < su->nloops; j++)
			if (su->cpus[j] == su->cpus[i]) {
				grp[k++] = j;
				seen[j] = true;
			}
		len = k == 1 ? 1 : 2 * k + 1;   /* what the test skips */
		if (len > 255)
			return -E2BIG;          /* a jump offset is 8 bits */
		code[n++] = (struct sock_filter)BPF_JUMP(
			BPF_JMP | BPF_JEQ | BPF_K, (__u32)su->cpus[i], 0,
			(__u8)len);
		if (k > 1) {
			code[n++] = (struct sock_filter)BPF_STMT(
				BPF_LD | BPF_W | BPF_ABS,
				(__u32)(SKF_AD_OFF + SKF_AD_RANDOM));
			code[n++] = (struct sock_filter)BPF_STMT(
				BPF_ALU | BPF_MOD | BPF_K, k);
			for (unsigned j = 0; j + 1 < k; j++) {
				code[n++] = (struct sock_filter)BPF_JUMP(
					BPF_JMP | BPF_JEQ | BPF_K, j, 0, 1);
				code[n++] = (struct sock_filter)BPF_STMT(
					BPF_RET | BPF_K, grp[j]);
			}
		}
		code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
							 grp[k - 1]);
	}
	code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffffu);
	prog.len = (unsigned short)n;
	if (setsockopt(su->fds[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog,
		       sizeof(prog)) < 0)
		return -errno;
	return 0;
}

int coil__steer_attach(const struct coil__steer_spec *spec,
		       const struct coil__steer_setup *su,
		       struct coil__steer **out)
{
	struct coil__steer_caps caps = {
		.want = spec->want,
		.nloops = su->nloops,
		.have_libbpf = COIL_HAVE_BPF,
		.force = getenv("COIL_STEER_FORCE"),
	};
	enum coil_steer_policy policy = coil__steer_policy_of(spec);
	char why[256], ebpf_why[160];
	struct coil__steer *s;
	int ret;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (;;) {
		s->mode = coil__steer_decide(&caps, why, sizeof(why));
		if (s->mode == COIL__STEER_EBPF) {
			ret = coil__steer_ebpf_open(s, policy, su, ebpf_why,
						    sizeof(ebpf_why));
			if (!ret)
				break;
			caps.ebpf_err = ret;
			caps.ebpf_why = ebpf_why;
			continue;
		}
		if (s->mode == COIL__STEER_CBPF) {
			ret = cbpf_attach(su);
			if (!ret)
				break;
			caps.cbpf_err = ret;
			continue;
		}
		break;
	}
	if (s->mode == COIL__STEER_EBPF && spec->file) {
		/* eBPF works: a user program that does not load is the
		 * user's error, not something to degrade around. */
		ret = coil__steer_user_load(s->dir, spec->file, why,
					    sizeof(why));
		if (ret) {
			coil__log("steering: %s", why);
			coil__steer_detach(s);
			return ret;
		}
	}
	switch (s->mode) {
	case COIL__STEER_EBPF:
		coil__log("steering: eBPF, policy %s%s%s, maps in %s "
			  "(coil-steer --port %u)",
			  coil__steer_policy_name(policy),
			  spec->file ? ", user program " : "",
			  spec->file ? spec->file : "", s->dir, su->port);
		break;
	case COIL__STEER_CBPF:
		coil__log("steering: classic BPF, by receiving CPU (%s)", why);
		break;
	case COIL__STEER_KERNEL:
		coil__log("steering: kernel SO_REUSEPORT hash (%s)", why);
		break;
	}
	*out = s;
	return 0;
}

enum coil__steer_mode coil__steer_mode(const struct coil__steer *s)
{
	return s ? s->mode : COIL__STEER_KERNEL;
}

struct coil_steer_loop *coil__steer_slot(struct coil__steer *s, unsigned loop)
{
	if (!s || !s->state || loop >= COIL_STEER_MAX_LOOPS)
		return NULL;
	return &s->state->loop[loop];
}

void coil__steer_reconcile(struct coil_steer_loop *s, int fd, uint64_t *mark)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	__u64 steered, queued = 0, keep;
	__s64 forgot, pending;

	if (!s)
		return;
	steered = __atomic_load_n(&s->steered, __ATOMIC_RELAXED);
	forgot = __atomic_load_n(&s->forgot, __ATOMIC_RELAXED);
	/* On a listener, tcpi_unacked is the accept queue's length. */
	if (fd >= 0 &&
	    getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
	    ti.tcpi_state == TCP_LISTEN)
		queued = ti.tcpi_unacked;
	pending = (__s64)(steered - __atomic_load_n(&s->accepted,
						     __ATOMIC_RELAXED)) -
		  forgot;
	keep = queued + (steered - *mark);
	if (pending < 0)
		forgot += pending;
	else if ((__u64)pending > keep)
		forgot += pending - (__s64)keep;
	__atomic_store_n(&s->forgot, forgot, __ATOMIC_RELAXED);
	*mark = steered;
}

void coil__steer_detach(struct coil__steer *s)
{
	if (!s)
		return;
	coil__steer_ebpf_close(s);
	free(s);
}
