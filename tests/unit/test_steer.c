/* SPDX-License-Identifier: MIT */
/*
 * Steering, user-space side: --steer parsing, the fallback decisions
 * (eBPF -> classic BPF -> kernel hash), the map layout the BPF objects and
 * user space must agree on, and the classic BPF program placing a
 * connection by the CPU that sends its SYN (loopback: the connecting CPU).
 *
 * usage: test-steer [example.bpf.o]   (the example checks the contract that
 * a user program's map declarations match the dispatcher's)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coil_config.h"
#include "steer/steering.h"

#include <coil/engine.h>
#include <coil/steer.h>

#if COIL_HAVE_BPF
#include <bpf/libbpf.h>
#include "steer.skel.h"
#endif

static const char *example_obj;

static void test_parse(void **unused)
{
	static const struct {
		const char *in;
		int ret;
		enum coil__steer_want want;
	} cases[] = {
		{ NULL, 0, COIL__WANT_AUTO },
		{ "", 0, COIL__WANT_AUTO },
		{ "auto", 0, COIL__WANT_AUTO },
		{ "hash", 0, COIL__WANT_HASH },
		{ "cpu", 0, COIL__WANT_CPU },
		{ "least", 0, COIL__WANT_LEAST },
		{ "least-loaded", 0, COIL__WANT_LEAST },
		{ "none", 0, COIL__WANT_NONE },
		{ "off", 0, COIL__WANT_NONE },
		{ "prog.bpf.o", 0, COIL__WANT_FILE },
		{ "/abs/dir/x.o", 0, COIL__WANT_FILE },
		{ "HASH", -EINVAL, 0 },
		{ "hash ", -EINVAL, 0 },
		{ "least-", -EINVAL, 0 },
		{ ".o", -EINVAL, 0 },
		{ "prog.bpf.c", -EINVAL, 0 },
		{ "random", -EINVAL, 0 },
	};
	struct coil__steer_spec sp;

	(void)unused;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret = coil__steer_parse(cases[i].in, &sp);

		assert_int_equal(ret, cases[i].ret);
		assert_int_equal(coil_engine_steer_check(cases[i].in), cases[i].ret);
		if (ret)
			continue;
		assert_int_equal(sp.want, cases[i].want);
		if (sp.want == COIL__WANT_FILE)
			assert_ptr_equal(sp.file, cases[i].in);
		else
			assert_null(sp.file);
	}
	/* The built-in policy each spec runs. */
	coil__steer_parse("hash", &sp);
	assert_int_equal(coil__steer_policy_of(&sp), COIL_STEER_HASH);
	coil__steer_parse("cpu", &sp);
	assert_int_equal(coil__steer_policy_of(&sp), COIL_STEER_CPU);
	coil__steer_parse("auto", &sp);
	assert_int_equal(coil__steer_policy_of(&sp), COIL_STEER_LEAST);
	coil__steer_parse("x.bpf.o", &sp);
	assert_int_equal(coil__steer_policy_of(&sp), COIL_STEER_LEAST);
	assert_string_equal(coil__steer_policy_name(COIL_STEER_HASH), "hash");
	assert_string_equal(coil__steer_policy_name(COIL_STEER_CPU), "cpu");
	assert_string_equal(coil__steer_policy_name(COIL_STEER_LEAST), "least");
	assert_null(coil__steer_policy_name(COIL_STEER_NPOLICIES));
}

static enum coil__steer_mode decide(struct coil__steer_caps c, char *why)
{
	return coil__steer_decide(&c, why, 256);
}

static void test_decide(void **unused)
{
	struct coil__steer_caps base = {
		.want = COIL__WANT_AUTO, .nloops = 2, .have_libbpf = true,
	}, c;
	char why[256];

	(void)unused;
	/* Everything available: eBPF for every policy. */
	for (int w = COIL__WANT_AUTO; w <= COIL__WANT_FILE; w++) {
		if (w == COIL__WANT_NONE)
			continue;
		c = base;
		c.want = (enum coil__steer_want)w;
		assert_int_equal(decide(c, why), COIL__STEER_EBPF);
		assert_string_equal(why, "");
	}
	/* none: no program at all, whatever is available. */
	c = base;
	c.want = COIL__WANT_NONE;
	assert_int_equal(decide(c, why), COIL__STEER_KERNEL);
	assert_non_null(strstr(why, "--steer none"));
	/* One loop: auto steers nothing, an explicit policy still loads. */
	c = base;
	c.nloops = 1;
	assert_int_equal(decide(c, why), COIL__STEER_KERNEL);
	assert_non_null(strstr(why, "one loop"));
	c.want = COIL__WANT_LEAST;
	assert_int_equal(decide(c, why), COIL__STEER_EBPF);
	/* Without libbpf: auto balances by the kernel's hash, saying why;
	 * cpu gets classic BPF. */
	c = base;
	c.have_libbpf = false;
	assert_int_equal(decide(c, why), COIL__STEER_KERNEL);
	assert_non_null(strstr(why, "built without libbpf"));
	assert_non_null(strstr(why, "burst from one CPU"));
	c.want = COIL__WANT_CPU;
	assert_int_equal(decide(c, why), COIL__STEER_CBPF);
	assert_non_null(strstr(why, "built without libbpf"));
	/* eBPF refused (not root): least is the kernel's hash, saying why. */
	c = base;
	c.want = COIL__WANT_LEAST;
	c.ebpf_err = -EPERM;
	assert_int_equal(decide(c, why), COIL__STEER_KERNEL);
	assert_non_null(strstr(why, "not permitted"));
	assert_non_null(strstr(why, "least needs eBPF"));
	/* A user program without eBPF: said, not silently dropped. */
	c.want = COIL__WANT_FILE;
	assert_int_equal(decide(c, why), COIL__STEER_KERNEL);
	assert_non_null(strstr(why, "user program not loaded"));
	/* ... and a reason text from the attempt wins over strerror. */
	c.want = COIL__WANT_CPU;
	c.ebpf_err = -EINVAL;
	c.ebpf_why = "verifier said no";
	assert_int_equal(decide(c, why), COIL__STEER_CBPF);
	assert_non_null(strstr(why, "verifier said no"));
	/* hash without eBPF is the kernel's own hash, not classic BPF. */
	c = base;
	c.want = COIL__WANT_HASH;
	c.ebpf_err = -EPERM;
	assert_int_equal(decide(c, why), COIL__STEER_KERNEL);
	/* Classic BPF failing too: the kernel's hash, both reasons. */
	c = base;
	c.want = COIL__WANT_CPU;
	c.ebpf_err = -EPERM;
	c.cbpf_err = -ENOPROTOOPT;
	assert_int_equal(decide(c, why), COIL__STEER_KERNEL);
	assert_non_null(strstr(why, "not permitted"));
	assert_non_null(strstr(why, "classic BPF failed"));
	/* Forcing the fallbacks (the tests do). */
	c = base;
	c.force = "cbpf";
	assert_int_equal(decide(c, why), COIL__STEER_KERNEL);
	assert_non_null(strstr(why, "COIL_STEER_FORCE=cbpf"));
	c.want = COIL__WANT_CPU;
	assert_int_equal(decide(c, why), COIL__STEER_CBPF);
	assert_non_null(strstr(why, "COIL_STEER_FORCE=cbpf"));
	c.force = "none";
	assert_int_equal(decide(c, why), COIL__STEER_KERNEL);
	assert_non_null(strstr(why, "COIL_STEER_FORCE=none"));
	c.force = "bogus";   /* ignored */
	assert_int_equal(decide(c, why), COIL__STEER_EBPF);
}

static void test_layout(void **unused)
{
	(void)unused;
	/* One cache line per loop: loops never write each other's lines. */
	assert_int_equal(sizeof(struct coil_steer_loop), 64);
	assert_int_equal(sizeof(struct coil_steer_hdr) % 64, 0);
	assert_int_equal(offsetof(struct coil_steer_state, loop) % 64, 0);
	assert_int_equal(offsetof(struct coil_steer_state, cpu_loop),
			 sizeof(struct coil_steer_hdr) +
				 COIL_STEER_MAX_LOOPS * sizeof(struct coil_steer_loop));
#if COIL_HAVE_BPF
	/* What the BPF object was compiled with (its BTF) is what user
	 * space maps: same sizes, same limits, mmapable state. */
	struct steer_bpf *skel = steer_bpf__open();

	assert_non_null(skel);
	assert_int_equal(bpf_map__value_size(skel->maps.coil_state),
			 sizeof(struct coil_steer_state));
	assert_int_equal(bpf_map__max_entries(skel->maps.coil_state), 1);
	assert_true(bpf_map__map_flags(skel->maps.coil_state) & BPF_F_MMAPABLE);
	assert_int_equal(bpf_map__type(skel->maps.coil_socks),
			 BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
	assert_int_equal(bpf_map__max_entries(skel->maps.coil_socks),
			 COIL_STEER_MAX_LOOPS);
	assert_int_equal(bpf_map__key_size(skel->maps.coil_socks), 4);
	assert_int_equal(bpf_map__value_size(skel->maps.coil_socks), 8);
	assert_int_equal(bpf_map__type(skel->maps.coil_user),
			 BPF_MAP_TYPE_PROG_ARRAY);
	assert_int_equal(bpf_program__type(skel->progs.coil_steer),
			 BPF_PROG_TYPE_SK_REUSEPORT);
	assert_int_equal(bpf_program__expected_attach_type(skel->progs.coil_steer),
			 BPF_SK_REUSEPORT_SELECT_OR_MIGRATE);

	/* The user-program contract: the example declares the shared maps
	 * exactly as the dispatcher does, so libbpf reuses the pinned ones. */
	if (example_obj) {
		struct bpf_object *obj = bpf_object__open_file(example_obj, NULL);
		const char *names[] = { "coil_socks", "coil_state" };

		assert_non_null(obj);
		for (int i = 0; i < 2; i++) {
			struct bpf_map *a = bpf_object__find_map_by_name(obj, names[i]);
			struct bpf_map *b = bpf_object__find_map_by_name(skel->obj,
									 names[i]);

			assert_non_null(a);
			assert_non_null(b);
			assert_int_equal(bpf_map__type(a), bpf_map__type(b));
			assert_int_equal(bpf_map__key_size(a), bpf_map__key_size(b));
			assert_int_equal(bpf_map__value_size(a), bpf_map__value_size(b));
			assert_int_equal(bpf_map__max_entries(a), bpf_map__max_entries(b));
			assert_int_equal(bpf_map__map_flags(a), bpf_map__map_flags(b));
		}
		bpf_object__close(obj);
	}
	steer_bpf__destroy(skel);
#endif
}

static int listener(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons(*port) };
	socklen_t len = sizeof(sa);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
				    sizeof(one)), 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static bool pin_to(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) == 0;
}

/* Which listener got a connection made from `cpu`: 0, 1, or -1. */
static int place_from_n(int cpu, const int *fds, int nfds, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons(port) };
	int c, got = -1;

	assert_true(pin_to(cpu));
	c = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(c >= 0);
	assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	for (int tries = 0; tries < 1000 && got < 0; tries++) {
		for (int i = 0; i < nfds && got < 0; i++) {
			int a = accept(fds[i], NULL, NULL);

			if (a >= 0) {
				close(a);
				got = i;
			}
		}
		if (got < 0)
			usleep(1000);
	}
	close(c);
	return got;
}

static int place_from(int cpu, const int *fds, uint16_t port)
{
	return place_from_n(cpu, fds, 2, port);
}

/* COIL_STEER_FORCE=cbpf: the classic BPF program sends a connection whose
 * SYN is handled on CPU k to the listener of the loop pinned to CPU k. */
/* The loop's reconcile: of what it is owed (steered - accepted - forgot) it
 * keeps what sits in its accept queue plus what was steered since the last
 * call, and writes off the rest; a negative count is forgotten too. */
static void test_reconcile(void **unused)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct coil_steer_loop l = { 0 };
	uint16_t port = 0;
	uint64_t mark;
	int fd, c[2];

	(void)unused;
	fd = listener(&port);
	/* 10 steered, 4 accepted, nothing queued, nothing new: 6 written off. */
	l.steered = 10, l.accepted = 4, mark = 10;
	coil__steer_reconcile(&l, fd, &mark);
	assert_int_equal(l.forgot, 6);
	assert_int_equal(mark, 10);
	/* 5 more steered since: those may still be in their handshake. */
	l.steered = 15;
	coil__steer_reconcile(&l, fd, &mark);
	assert_int_equal(l.forgot, 6);
	assert_int_equal(mark, 15);
	/* ... and one period later they are written off. */
	coil__steer_reconcile(&l, fd, &mark);
	assert_int_equal(l.forgot, 11);
	/* Two in the accept queue (TCP_INFO on the listener) are kept. */
	sa.sin_port = htons(port);
	for (int i = 0; i < 2; i++) {
		c[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(c[i] >= 0);
		assert_int_equal(connect(c[i], (struct sockaddr *)&sa,
					 sizeof(sa)), 0);
	}
	l.steered = 17;
	mark = 17;
	coil__steer_reconcile(&l, fd, &mark);
	assert_int_equal(l.steered - l.accepted - (uint64_t)l.forgot, 2);
	/* More accepted than steered (picks the program never counted):
	 * nothing owed, not less than nothing. */
	l.accepted = 20;
	coil__steer_reconcile(&l, fd, &mark);
	assert_int_equal((int64_t)(l.steered - l.accepted) - l.forgot, 0);
	/* No slot (not eBPF): nothing to do. */
	coil__steer_reconcile(NULL, fd, &mark);
	close(c[0]);
	close(c[1]);
	close(fd);
}

/* Classic BPF forced onto n fresh listeners, loop i pinned to cpus[i].
 * Returns the steering (detach it, close fds[0..n-1]); the test is
 * skipped (cmocka's skip: reported, not passed) when this machine lacks
 * CPUs 0 and 1. */
static struct coil__steer *cbpf_open(int *fds, const int *cpus, unsigned n,
				     uint16_t *port)
{
	struct coil__steer_spec spec = { .want = COIL__WANT_CPU };
	struct coil__steer_setup su = { .name = "test", .nloops = n,
					.fds = fds, .cpus = cpus };
	struct coil__steer *s = NULL;
	cpu_set_t set;

	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	if (!CPU_ISSET(0, &set) || !CPU_ISSET(1, &set)) {
		print_message("skipped: needs CPUs 0 and 1\n");
		skip();
	}
	*port = 0;
	for (unsigned i = 0; i < n; i++)
		fds[i] = listener(port);
	su.port = *port;
	setenv("COIL_STEER_FORCE", "cbpf", 1);
	assert_int_equal(coil__steer_attach(&spec, &su, &s), 0);
	unsetenv("COIL_STEER_FORCE");
	assert_int_equal(coil__steer_mode(s), COIL__STEER_CBPF);
	assert_null(coil__steer_slot(s, 0));
	return s;
}

static void test_cbpf(void **unused)
{
	cpu_set_t old;
	uint16_t port;
	int fds[2], cpus[2] = { 1, 0 };   /* loop 0 on CPU 1, loop 1 on CPU 0 */
	struct coil__steer *s;

	(void)unused;
	assert_int_equal(sched_getaffinity(0, sizeof(old), &old), 0);
	s = cbpf_open(fds, cpus, 2, &port);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(place_from(1, fds, port), 0);
		assert_int_equal(place_from(0, fds, port), 1);
	}
	sched_setaffinity(0, sizeof(old), &old);
	coil__steer_detach(s);
	close(fds[0]);
	close(fds[1]);
}

/* More loops than CPUs: the loops sharing the receiving CPU take turns at
 * random, none is left out. */
static void test_cbpf_shared(void **unused)
{
	cpu_set_t old;
	uint16_t port;
	int fds[4], cpus[4] = { 1, 0, 1, 0 }, got[4] = { 0 };
	struct coil__steer *s;

	(void)unused;
	assert_int_equal(sched_getaffinity(0, sizeof(old), &old), 0);
	s = cbpf_open(fds, cpus, 4, &port);
	for (int i = 0; i < 24; i++) {
		int a = place_from_n(1, fds, 4, port);
		int b = place_from_n(0, fds, 4, port);

		assert_true(a == 0 || a == 2);
		assert_true(b == 1 || b == 3);
		got[a]++;
		got[b]++;
	}
	/* All 24 on one loop of a pair: 2 * 2^-24, never by chance. */
	for (int i = 0; i < 4; i++)
		assert_true(got[i] > 0);
	sched_setaffinity(0, sizeof(old), &old);
	coil__steer_detach(s);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
}

/* The public face (coil/steer.h) without a server: names and refusals. */
static void test_public_names(void **unused)
{
	static const char *const good[] = { "hash", "cpu", "least",
					    "least-loaded" };
	static const char *const bad[] = { NULL, "", "auto", "none", "off",
					   "x.bpf.o", "HASH", "least-" };
	struct coil_steer_maps *m = (void *)1;

	(void)unused;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(coil_steer_policy_check(good[i]), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(coil_steer_policy_check(bad[i]), -EINVAL);
	assert_string_equal(coil_steer_pin_root(), COIL_STEER_PIN_ROOT);
	/* No server on port 1 in this process: nothing found, nothing set. */
	assert_int_equal(coil_steer_list(1, (unsigned)getpid(), NULL, 0) > 0, 0);
	assert_int_equal(coil_steer_open(1, (unsigned)getpid(), NULL, &m),
			 -ENOENT);
	assert_null(m);
	coil_steer_close(NULL);
}

/*
 * A "server" in this process (the engine's attach on two listeners), seen
 * and changed through coil/steer.h as coil-steer does: list, open by port
 * and pid, info, per-loop counters, policy, drain, user program. Needs
 * eBPF (root); skipped with a message otherwise.
 */
static void test_public_maps(void **unused)
{
	uint16_t port = 0, port2 = 0;
	int fds[2], fds2[2], cpus[2] = { 0, 1 };
	struct coil__steer_spec spec = { .want = COIL__WANT_LEAST };
	struct coil__steer_setup su = { .name = "test", .nloops = 2,
					.fds = fds, .cpus = cpus };
	struct coil__steer *s = NULL, *s2 = NULL;
	struct coil_steer_server sv[4];
	struct coil_steer_maps *m = NULL;
	struct coil_steer_info in;
	struct coil_steer_loop_stats ls;
	unsigned pid = (unsigned)getpid();
	char err[256];

	(void)unused;
	fds[0] = listener(&port);
	fds[1] = listener(&port);
	su.port = port;
	assert_int_equal(coil__steer_attach(&spec, &su, &s), 0);
	if (coil__steer_mode(s) != COIL__STEER_EBPF) {
		print_message("skipped: no eBPF steering here (not root, or "
			      "built without libbpf)\n");
		goto out;
	}
	assert_int_equal(coil_steer_list(port, pid, sv, 4), 1);
	assert_int_equal(sv[0].port, port);
	assert_int_equal(sv[0].pid, pid);
	assert_non_null(strstr(sv[0].dir, COIL_STEER_PIN_ROOT "/"));
	assert_int_equal(coil_steer_open(port, pid, NULL, &m), 0);
	assert_int_equal(coil_steer_info(m, &in), 0);
	assert_int_equal(in.pid, pid);
	assert_int_equal(in.port, port);
	assert_int_equal(in.nloops, 2);
	assert_string_equal(in.policy, "least");
	assert_int_equal(in.user_id, 0);
	assert_string_equal(in.user_name, "");
	assert_string_equal(in.dir, sv[0].dir);

	/* Counters the loops write are what the view reads. */
	coil__steer_opened(coil__steer_slot(s, 1));
	coil__steer_opened(coil__steer_slot(s, 1));
	coil__steer_closed(coil__steer_slot(s, 1));
	assert_int_equal(coil_steer_loop_stats(m, 1, &ls), 0);
	assert_int_equal(ls.cpu, 1);
	assert_int_equal(ls.accepted, 2);
	assert_int_equal(ls.active, 1);
	assert_false(ls.draining);
	assert_int_equal(ls.steered, 0);
	assert_int_equal(ls.pending, 0);   /* 2 accepted, none steered */
	/* What the program steered and the loop has not accepted. */
	s->state->loop[1].steered = 5;
	assert_int_equal(coil_steer_loop_stats(m, 1, &ls), 0);
	assert_int_equal(ls.steered, 5);
	assert_int_equal(ls.pending, 3);
	s->state->loop[1].forgot = 3;   /* written off by a reconcile */
	assert_int_equal(coil_steer_loop_stats(m, 1, &ls), 0);
	assert_int_equal(ls.pending, 0);
	s->state->loop[1].steered = 0;
	s->state->loop[1].forgot = 0;
	assert_int_equal(coil_steer_loop_stats(m, 0, &ls), 0);
	assert_int_equal(ls.cpu, 0);
	assert_int_equal(ls.accepted, 0);
	assert_int_equal(coil_steer_loop_stats(m, 2, &ls), -ERANGE);

	/* Policy and drain land in the server's shared state. */
	assert_int_equal(coil_steer_set_policy(m, "hash"), 0);
	assert_int_equal(s->state->hdr.policy, COIL_STEER_HASH);
	assert_int_equal(coil_steer_set_policy(m, "bogus"), -EINVAL);
	assert_int_equal(s->state->hdr.policy, COIL_STEER_HASH);
	coil_steer_info(m, &in);
	assert_string_equal(in.policy, "hash");
	assert_int_equal(coil_steer_drain(m, 1, true), 0);
	assert_int_equal(s->state->loop[1].draining, 1);
	coil_steer_loop_stats(m, 1, &ls);
	assert_true(ls.draining);
	assert_int_equal(coil_steer_drain(m, 1, false), 0);
	assert_int_equal(s->state->loop[1].draining, 0);
	assert_int_equal(coil_steer_drain(m, 2, true), -ERANGE);

	/* A user program: installed, named, removed. */
	assert_int_not_equal(coil_steer_load(m, "/nonexistent.bpf.o", err,
					     sizeof(err)), 0);
	assert_non_null(strstr(err, "/nonexistent.bpf.o"));
	if (example_obj) {
		const char *base = strrchr(example_obj, '/');

		assert_int_equal(coil_steer_load(m, example_obj, err,
						 sizeof(err)), 0);
		coil_steer_info(m, &in);
		assert_int_not_equal(in.user_id, 0);
		assert_string_equal(in.user_name, base ? base + 1 : example_obj);
		assert_int_equal(coil_steer_unload(m, err, sizeof(err)), 0);
		coil_steer_info(m, &in);
		assert_int_equal(in.user_id, 0);
	}
	coil_steer_close(m);
	m = NULL;

	/* Two servers of this process: by pid alone is ambiguous. */
	fds2[0] = listener(&port2);
	fds2[1] = listener(&port2);
	su.fds = fds2;
	su.port = port2;
	assert_int_equal(coil__steer_attach(&spec, &su, &s2), 0);
	assert_int_equal(coil__steer_mode(s2), COIL__STEER_EBPF);
	assert_true(coil_steer_list(0, pid, sv, 4) >= 2);
	assert_int_equal(coil_steer_open(0, pid, NULL, &m), -ENOTUNIQ);
	assert_null(m);
	assert_int_equal(coil_steer_open(port2, 0, NULL, &m), 0);
	coil_steer_info(m, &in);
	assert_int_equal(in.port, port2);
	coil_steer_close(m);
	/* By directory; a directory that is not a server's is -ENOENT. */
	assert_int_equal(coil_steer_open(0, 0, sv[0].dir, &m), 0);
	coil_steer_close(m);
	assert_int_equal(coil_steer_open(0, 0, COIL_STEER_PIN_ROOT "/0-0", &m),
			 -ENOENT);
	coil__steer_detach(s2);
	close(fds2[0]);
	close(fds2[1]);
	/* Gone with its pins. */
	assert_int_equal(coil_steer_list(port2, pid, sv, 4), 0);
out:
	coil__steer_detach(s);
	close(fds[0]);
	close(fds[1]);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_reconcile),
		cmocka_unit_test(test_cbpf),
		cmocka_unit_test(test_cbpf_shared),
		cmocka_unit_test(test_public_names),
		cmocka_unit_test(test_public_maps),
	};

	if (argc > 1)
		example_obj = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
