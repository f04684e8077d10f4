/* SPDX-License-Identifier: MIT */
/*
 * The engine's command-line layer (coil/options.h): every flag lands in its
 * field of struct coil_engine_opts, bad values are refused with one clear
 * line, and whatever is not an engine flag (or not one the app takes) is
 * left to the app, in order.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <coil/options.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALL (COIL_ENGINE_FLAGS_SERVER | COIL_ENGINE_FLAG_DPDK)

static char errbuf[4096];

/* Parse a blank-separated command line (after "prog") with `which`; the
 * message, if any, lands in errbuf. Leaves the app's arguments in
 * argv_out[0..*argc_out-1] (argv_out[0] is "prog"). */
static int parse(struct coil_engine_opts *eo, unsigned which, const char *line,
		 int *argc_out, char **argv_out)
{
	static char copy[1024];
	FILE *err = fmemopen(errbuf, sizeof(errbuf), "w");
	int argc = 0, ret;

	assert_non_null(err);
	snprintf(copy, sizeof(copy), "prog %s", line);
	for (char *t = strtok(copy, " "); t && argc < 63; t = strtok(NULL, " "))
		argv_out[argc++] = t;
	argv_out[argc] = NULL;
	memset(eo, 0, sizeof(*eo));
	eo->sz = sizeof(*eo);
	ret = coil_engine_opts_parse_args(eo, which, "prog", &argc, argv_out, err);
	fclose(err);
	*argc_out = argc;
	return ret;
}

/* argv (argc entries) is exactly `want` (NULL-terminated), then NULL. */
static void assert_argv(int argc, char **argv, const char *const *want)
{
	int n = 0;

	for (; want[n]; n++) {
		assert_true(n < argc);
		assert_string_equal(argv[n], want[n]);
	}
	assert_int_equal(argc, n);
	assert_null(argv[n]);
}

static void test_each_flag(void **unused)
{
	struct coil_engine_opts eo;
	char *argv[64];
	int argc;

	(void)unused;
	assert_int_equal(parse(&eo, ALL,
			       "--cores 3 --backend epoll --poll always "
			       "--poll-us 70 --coalesce-us 33 --steer cpu --bufs 512 "
			       "--buf-size 8192 --max-conns 100 --drain-ms 250 "
			       "--ip 10.0.0.2/24 --gw 10.0.0.1 --mbufs 1024 "
			       "--idle-sleep-us 5", &argc, argv), 0);
	assert_int_equal(argc, 1);
	assert_null(argv[1]);
	assert_int_equal(eo.cores, 3);
	assert_int_equal(eo.backend, COIL_BACKEND_EPOLL);
	assert_int_equal(eo.poll, COIL_POLL_ALWAYS);
	assert_int_equal(eo.poll_us, 70);
	assert_int_equal(eo.coalesce_us, 33);
	assert_string_equal(eo.steer, "cpu");
	assert_int_equal(eo.bufs, 512);
	assert_int_equal(eo.buf_size, 8192);
	assert_int_equal(eo.max_conns, 100);
	assert_int_equal(eo.drain_ms, 250);
	assert_string_equal(eo.ip, "10.0.0.2/24");
	assert_string_equal(eo.gw, "10.0.0.1");
	assert_int_equal(eo.mbufs, 1024);
	assert_int_equal(eo.idle_sleep_us, 5);
	assert_null(eo.dpdk_args);

	/* The other spellings and values. */
	assert_int_equal(parse(&eo, ALL, "--backend=io_uring --poll=never "
			       "--coalesce-us=0 --steer=least-loaded", &argc, argv), 0);
	assert_int_equal(eo.backend, COIL_BACKEND_URING);
	assert_int_equal(eo.poll, COIL_POLL_NEVER);
	assert_int_equal(eo.coalesce_us, COIL_COALESCE_OFF);
	assert_string_equal(eo.steer, "least-loaded");
	assert_int_equal(parse(&eo, ALL, "--backend uring --poll adaptive",
			       &argc, argv), 0);
	assert_int_equal(eo.backend, COIL_BACKEND_URING);
	assert_int_equal(eo.poll, COIL_POLL_ADAPTIVE);
	assert_int_equal(parse(&eo, ALL, "--backend auto", &argc, argv), 0);
	assert_int_equal(eo.backend, COIL_BACKEND_AUTO);
	/* --dpdk takes its EAL arguments and selects the DPDK backend. */
	assert_int_equal(parse(&eo, ALL, "--dpdk=--no-huge", &argc, argv), 0);
	assert_string_equal(eo.dpdk_args, "--no-huge");
	assert_int_equal(eo.backend, COIL_BACKEND_DPDK);
	assert_int_equal(parse(&eo, ALL, "--backend dpdk", &argc, argv), 0);
	assert_int_equal(eo.backend, COIL_BACKEND_DPDK);
	/* Limits are inclusive. */
	assert_int_equal(parse(&eo, ALL, "--cores 1024 --buf-size 64 "
			       "--drain-ms 4294967295 --idle-sleep-us 0",
			       &argc, argv), 0);
	assert_int_equal(eo.cores, 1024);
	assert_int_equal(eo.buf_size, 64);
	assert_int_equal(eo.drain_ms, 4294967295u);
	/* One flag at a time, as an app with its own getopt table would. */
	memset(&eo, 0, sizeof(eo));
	assert_int_equal(coil_engine_opts_set(&eo, ALL, "prog", "bufs", "7",
					      NULL), 0);
	assert_int_equal(eo.bufs, 7);
	assert_int_equal(coil_engine_opts_set(&eo, ALL, "prog", "root", "/",
					      NULL), -ENOENT);
	assert_int_equal(coil_engine_opts_set(&eo, COIL_ENGINE_FLAG_POLL,
					      "prog", "bufs", "7", NULL), -ENOENT);
}

static void test_bad_values(void **unused)
{
	static const struct {
		unsigned which;
		const char *line, *message;
	} cases[] = {
		{ ALL, "--cores 0", "prog: --cores: expected a number in 1..1024, got '0'\n" },
		{ ALL, "--cores 1025", "prog: --cores: expected a number in 1..1024, got '1025'\n" },
		{ ALL, "--cores -1", "prog: --cores: expected a number in 1..1024, got '-1'\n" },
		{ ALL, "--cores +2", "prog: --cores: expected a number in 1..1024, got '+2'\n" },
		{ ALL, "--cores 2x", "prog: --cores: expected a number in 1..1024, got '2x'\n" },
		{ ALL, "--cores=", "prog: --cores: expected a number in 1..1024, got ''\n" },
		{ ALL, "--poll-us 0", "prog: --poll-us: expected a number in 1..1000000, got '0'\n" },
		{ ALL, "--coalesce-us 100001", "prog: --coalesce-us: expected a number in 0..100000, got '100001'\n" },
		{ ALL, "--bufs 32769", "prog: --bufs: expected a number in 1..32768, got '32769'\n" },
		{ ALL, "--buf-size 63", "prog: --buf-size: expected a number in 64..1048576, got '63'\n" },
		{ ALL, "--max-conns 16777217", "prog: --max-conns: expected a number in 1..16777216, got '16777217'\n" },
		{ ALL, "--drain-ms 0", "prog: --drain-ms: expected a number in 1..4294967295, got '0'\n" },
		{ ALL, "--drain-ms 4294967296", "prog: --drain-ms: expected a number in 1..4294967295, got '4294967296'\n" },
		{ ALL, "--mbufs 511", "prog: --mbufs: expected a number in 512..1048576, got '511'\n" },
		{ ALL, "--idle-sleep-us 1000001", "prog: --idle-sleep-us: expected a number in 0..1000000, got '1000001'\n" },
		{ ALL, "--backend kqueue", "prog: --backend: expected auto, uring, epoll or dpdk, got 'kqueue'\n" },
		{ COIL_ENGINE_FLAGS_SERVER, "--backend dpdk", "prog: --backend: expected auto, uring or epoll, got 'dpdk'\n" },
		{ ALL, "--poll sometimes", "prog: --poll: expected always, adaptive or never, got 'sometimes'\n" },
		{ ALL, "--steer random", "prog: --steer: expected auto, hash, cpu, least, none or FILE.bpf.o, got 'random'\n" },
		{ ALL, "--steer /nonexistent/x.bpf.o", "prog: --steer: cannot read /nonexistent/x.bpf.o: No such file or directory\n" },
		{ ALL, "--port 1 --cores", "prog: --cores: needs a value\n" },
	};
	struct coil_engine_opts eo;
	char *argv[64];
	int argc;

	(void)unused;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(errbuf, 0, sizeof(errbuf));
		if (parse(&eo, cases[i].which, cases[i].line, &argc, argv) !=
		    -EINVAL)
			fail_msg("accepted: %s", cases[i].line);
		if (strcmp(errbuf, cases[i].message))
			fail_msg("%s: said '%s', want '%s'", cases[i].line,
				 errbuf, cases[i].message);
	}
	/* NULL err: stderr, still refused. */
	memset(&eo, 0, sizeof(eo));
	assert_int_equal(coil_engine_opts_set(&eo, ALL, "prog", "cores", "x",
					      NULL), -EINVAL);
	assert_int_equal(eo.cores, 0);
}

/* What is not an engine flag in `which` stays, in order, for the app. */
static void test_app_flags_left(void **unused)
{
	struct coil_engine_opts eo;
	char *argv[64];
	int argc;

	(void)unused;
	assert_int_equal(parse(&eo, ALL, "--port 80 --cores 2 --root /srv -x "
			       "--corest 1 --bufs=8 positional --steer hash "
			       "--udp", &argc, argv), 0);
	/* "--corest" is not a prefix match of --cores */
	assert_argv(argc, argv, (const char *const[]){
		"prog", "--port", "80", "--root", "/srv", "-x", "--corest",
		"1", "positional", "--udp", NULL });
	assert_int_equal(eo.cores, 2);
	assert_int_equal(eo.bufs, 8);
	assert_string_equal(eo.steer, "hash");

	/* Flags the app did not ask for are the app's (coil-load's --cores
	 * is a CPU list), and so is everything after "--". */
	assert_int_equal(parse(&eo, COIL_ENGINE_FLAG_BACKEND |
			       COIL_ENGINE_FLAG_POLL,
			       "echo --cores 0,2-3 --poll never --dpdk x -- "
			       "--backend epoll", &argc, argv), 0);
	assert_int_equal(eo.poll, COIL_POLL_NEVER);
	assert_int_equal(eo.backend, COIL_BACKEND_AUTO);
	assert_null(eo.dpdk_args);
	assert_argv(argc, argv, (const char *const[]){
		"prog", "echo", "--cores", "0,2-3", "--dpdk", "x", "--",
		"--backend", "epoll", NULL });
}

static void test_usage(void **unused)
{
	static const char *const server[] = {
		"--cores N", "--backend B", "--poll M", "--poll-us US",
		"--coalesce-us US", "--steer S", "--bufs N", "--buf-size B",
		"--max-conns N", "--drain-ms MS",
	};
	static const char *const dpdk[] = {
		"--dpdk 'EAL ARGS'", "--ip A.B.C.D/NN", "--gw A.B.C.D",
		"--mbufs N", "--idle-sleep-us US",
	};
	char buf[8192];
	FILE *f;

	(void)unused;
	memset(buf, 0, sizeof(buf));
	f = fmemopen(buf, sizeof(buf), "w");
	coil_engine_opts_usage(f, COIL_ENGINE_FLAGS_SERVER);
	fclose(f);
	for (size_t i = 0; i < sizeof(server) / sizeof(server[0]); i++)
		assert_non_null(strstr(buf, server[i]));
	for (size_t i = 0; i < sizeof(dpdk) / sizeof(dpdk[0]); i++)
		assert_null(strstr(buf, dpdk[i]));
	assert_non_null(strstr(buf, "auto|uring|epoll (default auto)"));
	/* Every description starts in one column. */
	for (char *l = buf; *l; l = strchr(l, '\n') + 1)
		assert_true(l[22] != ' ' && l[21] == ' ');

	memset(buf, 0, sizeof(buf));
	f = fmemopen(buf, sizeof(buf), "w");
	coil_engine_opts_usage(f, COIL_ENGINE_FLAG_POLL | COIL_ENGINE_FLAG_DPDK);
	fclose(f);
	assert_non_null(strstr(buf, "--poll M"));
	assert_null(strstr(buf, "--cores"));
	assert_null(strstr(buf, "--backend"));
	for (size_t i = 0; i < sizeof(dpdk) / sizeof(dpdk[0]); i++)
		assert_non_null(strstr(buf, dpdk[i]));
}

static void test_numbers(void **unused)
{
	unsigned long v = 99;
	unsigned long long s = 99;
	FILE *null = fopen("/dev/null", "w");

	(void)unused;
	assert_int_equal(coil_arg_number("p", "n", "0", 0, 5, &v, null), 0);
	assert_int_equal(v, 0);
	assert_int_equal(coil_arg_number("p", "n", "5", 0, 5, &v, null), 0);
	assert_int_equal(v, 5);
	assert_int_equal(coil_arg_number("p", "n", "6", 0, 5, &v, null), -EINVAL);
	assert_int_equal(coil_arg_number("p", "n", " 5", 0, 5, &v, null), -EINVAL);
	assert_int_equal(coil_arg_number("p", "n", "", 0, 5, &v, null), -EINVAL);
	assert_int_equal(coil_arg_number("p", "n", "99999999999999999999999",
					 0, ~0ul, &v, null), -EINVAL);
	assert_int_equal(v, 5);   /* untouched by refusals */
	assert_int_equal(coil_arg_size("p", "s", "1K", 1, 1ull << 40, &s, null), 0);
	assert_int_equal(s, 1024);
	assert_int_equal(coil_arg_size("p", "s", "3m", 1, 1ull << 40, &s, null), 0);
	assert_int_equal(s, 3ull << 20);
	assert_int_equal(coil_arg_size("p", "s", "2G", 1, 1ull << 40, &s, null), 0);
	assert_int_equal(s, 2ull << 30);
	assert_int_equal(coil_arg_size("p", "s", "7", 1, 1ull << 40, &s, null), 0);
	assert_int_equal(s, 7);
	assert_int_equal(coil_arg_size("p", "s", "2M", 1, 1ull << 20, &s, null), -EINVAL);
	assert_int_equal(coil_arg_size("p", "s", "1KB", 1, 1ull << 40, &s, null), -EINVAL);
	assert_int_equal(coil_arg_size("p", "s", "K", 1, 1ull << 40, &s, null), -EINVAL);
	assert_int_equal(coil_arg_size("p", "s", "-1K", 1, 1ull << 40, &s, null), -EINVAL);
	assert_int_equal(coil_arg_size("p", "s", "17179869184G", 1, ~0ull, &s, null), -EINVAL);
	assert_int_equal(s, 7);
	fclose(null);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_flag),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_app_flags_left),
		cmocka_unit_test(test_usage),
		cmocka_unit_test(test_numbers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
