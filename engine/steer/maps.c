/* SPDX-License-Identifier: MIT */
/*
 * The public face of steering (coil/steer.h): find running servers by their
 * pin directories, and a view of one server's coil_state through the mmap
 * the eBPF side provides (ebpf.c). Fields of the shared state are changed
 * one at a time with atomic stores, never with a whole-value map update
 * (bpf/steer.h says why).
 */
#include <coil/steer.h>

#include "steering.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct coil_steer_maps {
	struct coil_steer_state *st;   /* coil__steer_state_map's mmap */
	char dir[96];
};

const char *coil_steer_pin_root(void)
{
	return COIL_STEER_PIN_ROOT;
}

static bool alive(unsigned pid)
{
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

int coil_steer_list(unsigned port, unsigned pid, struct coil_steer_server *out,
		    size_t max)
{
	struct dirent *e;
	DIR *d = opendir(COIL_STEER_PIN_ROOT);
	size_t n = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		unsigned p, q;
		char tail;

		if (sscanf(e->d_name, "%u-%u%c", &p, &q, &tail) != 2)
			continue;
		if ((port && p != port) || (pid && q != pid) || !alive(q))
			continue;
		if (n < max) {
			out[n].port = p;
			out[n].pid = q;
			coil__steer_dir(out[n].dir, sizeof(out[n].dir), p, q);
		}
		n++;
	}
	closedir(d);
	return (int)n;
}

int coil_steer_open(unsigned port, unsigned pid, const char *dir,
		    struct coil_steer_maps **out)
{
	struct coil_steer_server sv;
	struct coil_steer_maps *m;
	int ret;

	*out = NULL;
	if (!dir) {
		ret = coil_steer_list(port, pid, &sv, 1);
		if (ret == 0 || ret == -ENOENT)
			return -ENOENT;
		if (ret < 0)
			return ret;
		if (ret > 1)
			return -ENOTUNIQ;
		dir = sv.dir;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	if (snprintf(m->dir, sizeof(m->dir), "%s", dir) >= (int)sizeof(m->dir)) {
		ret = -ENAMETOOLONG;
		goto fail;
	}
	ret = coil__steer_state_map(m->dir, &m->st);
	if (ret)
		goto fail;
	*out = m;
	return 0;
fail:
	free(m);
	return ret;
}

void coil_steer_close(struct coil_steer_maps *m)
{
	if (!m)
		return;
	coil__steer_state_unmap(m->st);
	free(m);
}

static unsigned nloops(const struct coil_steer_maps *m)
{
	unsigned n = __atomic_load_n(&m->st->hdr.nloops, __ATOMIC_RELAXED);

	return n > COIL_STEER_MAX_LOOPS ? COIL_STEER_MAX_LOOPS : n;
}

int coil_steer_info(const struct coil_steer_maps *m, struct coil_steer_info *out)
{
	const struct coil_steer_hdr *h = &m->st->hdr;
	const char *pol;

	pol = coil__steer_policy_name(__atomic_load_n(&h->policy,
						      __ATOMIC_ACQUIRE));
	out->pid = h->pid;
	out->port = h->port;
	out->nloops = nloops(m);
	out->policy = pol ? pol : "unknown";
	out->user_id = __atomic_load_n(&h->user_id, __ATOMIC_ACQUIRE);
	snprintf(out->user_name, sizeof(out->user_name), "%.*s",
		 (int)sizeof(h->user_name), out->user_id ? h->user_name : "");
	out->dir = m->dir;
	return 0;
}

int coil_steer_loop_stats(const struct coil_steer_maps *m, unsigned loop,
			  struct coil_steer_loop_stats *out)
{
	const struct coil_steer_loop *l;
	int64_t owed;

	if (loop >= nloops(m))
		return -ERANGE;
	l = &m->st->loop[loop];
	out->cpu = l->cpu;
	out->accepted = __atomic_load_n(&l->accepted, __ATOMIC_RELAXED);
	out->active = __atomic_load_n(&l->active, __ATOMIC_RELAXED);
	out->draining = __atomic_load_n(&l->draining, __ATOMIC_ACQUIRE) != 0;
	out->steered = __atomic_load_n(&l->steered, __ATOMIC_RELAXED);
	owed = (int64_t)(out->steered - out->accepted) -
	       __atomic_load_n(&l->forgot, __ATOMIC_RELAXED);
	out->pending = owed > 0 ? (uint64_t)owed : 0;
	return 0;
}

/* The built-in policy `policy` names, or -EINVAL. */
static int policy_of(const char *policy)
{
	struct coil__steer_spec spec;

	if (!policy || coil__steer_parse(policy, &spec))
		return -EINVAL;
	if (spec.want != COIL__WANT_HASH && spec.want != COIL__WANT_CPU &&
	    spec.want != COIL__WANT_LEAST)
		return -EINVAL;
	return (int)coil__steer_policy_of(&spec);
}

int coil_steer_policy_check(const char *policy)
{
	int p = policy_of(policy);

	return p < 0 ? p : 0;
}

int coil_steer_set_policy(struct coil_steer_maps *m, const char *policy)
{
	int p = policy_of(policy);

	if (p < 0)
		return p;
	__atomic_store_n(&m->st->hdr.policy, (__u32)p, __ATOMIC_RELEASE);
	return 0;
}

int coil_steer_drain(struct coil_steer_maps *m, unsigned loop, bool drain)
{
	if (loop >= nloops(m))
		return -ERANGE;
	__atomic_store_n(&m->st->loop[loop].draining, drain ? 1u : 0u,
			 __ATOMIC_RELEASE);
	return 0;
}

int coil_steer_load(struct coil_steer_maps *m, const char *file, char *err,
		    size_t n)
{
	return coil__steer_user_load(m->dir, file, err, n);
}

int coil_steer_unload(struct coil_steer_maps *m, char *err, size_t n)
{
	return coil__steer_user_unload(m->dir, err, n);
}
