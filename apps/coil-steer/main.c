/* SPDX-License-Identifier: MIT */
/*
 * coil-steer: look at and change the eBPF connection steering of running
 * coil servers, through the maps they pin under /sys/fs/bpf/coil/.
 *
 *   coil-steer [--port P] [--pid PID] [--dir DIR] [--json] COMMAND
 *     list | stats | policy hash|cpu|least | load FILE.bpf.o | unload |
 *     drain LOOP | undrain LOOP
 */
#include <coil/options.h>
#include <coil/steer.h>
#include <coil/version.h>

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "coil-steer"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: coil-steer [options] COMMAND\n"
		"commands:\n"
		"  list               the coil servers with eBPF steering\n"
		"  stats              per-loop accepted and active connections, policy,\n"
		"                     user program\n"
		"  policy P           switch the built-in policy live: hash, cpu or least\n"
		"  load FILE.bpf.o    install a user steering program (replaces one)\n"
		"  unload             remove the user program\n"
		"  drain LOOP         steer no new connections to LOOP\n"
		"  undrain LOOP       undo drain\n"
		"options:\n"
		"  --port P           the server listening on port P\n"
		"  --pid PID          the server with process id PID\n"
		"  --dir DIR          the server whose maps are pinned in DIR\n"
		"                     (default: the only one running, or the one --port\n"
		"                     and --pid select, under %s)\n"
		"  --json             machine-readable output\n"
		"  --help, --version\n"
		"Needs root (or CAP_BPF and CAP_NET_ADMIN). Servers steering with classic\n"
		"BPF or the kernel's hash (see their log) have no maps to show.\n",
		coil_steer_pin_root());
}

static int no_server(int err, unsigned port, unsigned pid)
{
	if (err == -EACCES || err == -EPERM)
		fprintf(stderr, PROG ": cannot read %s: permission denied "
			"(needs root, or CAP_BPF and CAP_NET_ADMIN)\n",
			coil_steer_pin_root());
	else if (port || pid)
		fprintf(stderr, PROG ": no coil server with eBPF steering "
			"found%s%.0u%s%.0u (servers on classic BPF or the "
			"kernel's hash have no maps)\n",
			port ? " on port " : "", port, pid ? " with pid " : "",
			pid);
	else
		fprintf(stderr, PROG ": no coil server with eBPF steering is "
			"running (nothing under %s)\n", coil_steer_pin_root());
	return 1;
}

static int cmd_list(unsigned port, unsigned pid, bool json)
{
	struct coil_steer_server sv[64];
	int n = coil_steer_list(port, pid, sv, 64);

	if (n < 0 && n != -ENOENT)
		return no_server(n, port, pid);
	if (n < 0)
		n = 0;
	if (json)
		printf("[");
	for (int i = 0; i < n && i < 64; i++) {
		if (json)
			printf("%s{\"pid\": %u, \"port\": %u, \"dir\": \"%s\"}",
			       i ? ", " : "", sv[i].pid, sv[i].port, sv[i].dir);
		else
			printf("pid %u port %u %s\n", sv[i].pid, sv[i].port,
			       sv[i].dir);
	}
	if (json)
		printf("]\n");
	return 0;
}

static void print_stats(const struct coil_steer_maps *m, bool json)
{
	struct coil_steer_loop_stats ls;
	struct coil_steer_info in;

	coil_steer_info(m, &in);
	if (json) {
		printf("{\"pid\": %u, \"port\": %u, \"dir\": \"%s\", "
		       "\"policy\": \"%s\", \"user_program\": ",
		       in.pid, in.port, in.dir, in.policy);
		if (in.user_id)
			printf("{\"name\": \"%s\", \"id\": %u}", in.user_name,
			       in.user_id);
		else
			printf("null");
		printf(", \"loops\": [");
		for (unsigned i = 0; i < in.nloops; i++) {
			coil_steer_loop_stats(m, i, &ls);
			printf("%s{\"loop\": %u, \"cpu\": %d, \"accepted\": %llu, "
			       "\"active\": %llu, \"steered\": %llu, "
			       "\"pending\": %llu, \"draining\": %s}",
			       i ? ", " : "", i, ls.cpu,
			       (unsigned long long)ls.accepted,
			       (unsigned long long)ls.active,
			       (unsigned long long)ls.steered,
			       (unsigned long long)ls.pending,
			       ls.draining ? "true" : "false");
		}
		printf("]}\n");
		return;
	}
	printf("server: pid %u, port %u (%s)\n", in.pid, in.port, in.dir);
	printf("policy: %s\n", in.policy);
	if (in.user_id)
		printf("user program: %s (id %u)\n", in.user_name, in.user_id);
	else
		printf("user program: none\n");
	printf("%-5s %-4s %12s %10s %12s %8s %s\n", "loop", "cpu", "accepted",
	       "active", "steered", "pending", "draining");
	for (unsigned i = 0; i < in.nloops; i++) {
		coil_steer_loop_stats(m, i, &ls);
		printf("%-5u %-4d %12llu %10llu %12llu %8llu %s\n", i, ls.cpu,
		       (unsigned long long)ls.accepted,
		       (unsigned long long)ls.active,
		       (unsigned long long)ls.steered,
		       (unsigned long long)ls.pending,
		       ls.draining ? "yes" : "no");
	}
}

/* Open the server `dir` names, or the one --port/--pid select; says why
 * not on stderr. */
static int open_maps(unsigned port, unsigned pid, const char *dir,
		     struct coil_steer_maps **m)
{
	struct coil_steer_server sv[8];
	int ret = coil_steer_open(port, pid, dir, m), n;

	if (!ret)
		return 0;
	if (!dir && (ret == -ENOENT || ret == -EACCES || ret == -EPERM))
		return no_server(ret, port, pid);
	if (ret == -ENOTUNIQ) {
		n = coil_steer_list(port, pid, sv, 8);
		fprintf(stderr, PROG ": %d coil servers match; pick one with "
			"--port, --pid or --dir:\n", n);
		for (int i = 0; i < n && i < 8; i++)
			fprintf(stderr, "  pid %u port %u %s\n", sv[i].pid,
				sv[i].port, sv[i].dir);
		return 1;
	}
	if (!dir)
		dir = "the server's maps";
	if (ret == -EPERM || ret == -EACCES)
		fprintf(stderr, PROG ": %s: permission denied (needs root, or "
			"CAP_BPF and CAP_NET_ADMIN)\n", dir);
	else if (ret == -EPROTO)
		fprintf(stderr, PROG ": %s: not a coil steering map of this "
			"version\n", dir);
	else if (ret == -ENOTSUP)
		fprintf(stderr, PROG ": built without libbpf: cannot open "
			"steering maps\n");
	else
		fprintf(stderr, PROG ": %s: %s\n", dir, strerror(-ret));
	return 1;
}

/* drain/undrain LOOP. Returns the exit status. */
static int cmd_drain(struct coil_steer_maps *m, const char *arg, bool drain,
		     bool json)
{
	struct coil_steer_info in;
	unsigned long v;

	if (coil_arg_number(PROG, "LOOP", arg, 0, 0xffffffffu, &v, NULL))
		return 2;
	if (coil_steer_drain(m, (unsigned)v, drain) == -ERANGE) {
		coil_steer_info(m, &in);
		fprintf(stderr, PROG ": loop %lu: the server has %u loops\n", v,
			in.nloops);
		return 2;
	}
	if (!json)
		printf("loop %lu: %s\n", v, drain ? "draining" : "accepting");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "port", required_argument, 0, 'p' },
		{ "pid", required_argument, 0, 'P' },
		{ "dir", required_argument, 0, 'd' },
		{ "json", no_argument, 0, 'j' },
		{ "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, 'V' },
		{ 0, 0, 0, 0 },
	};
	struct coil_steer_maps *m = NULL;
	struct coil_steer_info in;
	unsigned port = 0, pid = 0;
	const char *dir = NULL, *cmd, *arg = NULL;
	bool json = false;
	unsigned long v;
	char err[256];
	int opt, ret = 0, nargs;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (coil_arg_number(PROG, "port", optarg, 1, 65535, &v,
					    NULL))
				return 2;
			port = (unsigned)v;
			break;
		case 'P':
			if (coil_arg_number(PROG, "pid", optarg, 1, 0x7fffffff,
					    &v, NULL))
				return 2;
			pid = (unsigned)v;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf(PROG " %s\n", COIL_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	nargs = argc - optind - 1;
	if (!strcmp(cmd, "policy") || !strcmp(cmd, "load") ||
	    !strcmp(cmd, "drain") || !strcmp(cmd, "undrain")) {
		if (nargs != 1) {
			fprintf(stderr, PROG ": %s takes one argument\n", cmd);
			return 2;
		}
		arg = argv[optind + 1];
	} else if (!strcmp(cmd, "list") || !strcmp(cmd, "stats") ||
		   !strcmp(cmd, "unload")) {
		if (nargs) {
			fprintf(stderr, PROG ": %s takes no argument\n", cmd);
			return 2;
		}
	} else {
		fprintf(stderr, PROG ": unknown command '%s'\n", cmd);
		usage(stderr);
		return 2;
	}
	if (!strcmp(cmd, "policy") && coil_steer_policy_check(arg)) {
		fprintf(stderr, PROG ": policy: expected hash, cpu or least, "
			"got '%s'\n", arg);
		return 2;
	}
	if (!strcmp(cmd, "list"))
		return cmd_list(port, pid, json);
	if (open_maps(port, pid, dir, &m))
		return 1;

	if (!strcmp(cmd, "stats")) {
		print_stats(m, json);
	} else if (!strcmp(cmd, "policy")) {
		const char *old;

		coil_steer_info(m, &in);
		old = in.policy;
		coil_steer_set_policy(m, arg);
		coil_steer_info(m, &in);
		if (!json)
			printf("policy: %s (was %s)\n", in.policy, old);
	} else if (!strcmp(cmd, "drain") || !strcmp(cmd, "undrain")) {
		ret = cmd_drain(m, arg, cmd[0] == 'd', json);
	} else if (!strcmp(cmd, "load")) {
		if (coil_steer_load(m, arg, err, sizeof(err))) {
			fprintf(stderr, PROG ": %s\n", err);
			ret = 1;
		} else if (!json) {
			coil_steer_info(m, &in);
			printf("loaded %s (program id %u)\n", arg, in.user_id);
		}
	} else if (!strcmp(cmd, "unload")) {
		if (coil_steer_unload(m, err, sizeof(err))) {
			fprintf(stderr, PROG ": %s\n", err);
			ret = 1;
		} else if (!json) {
			printf("user program removed\n");
		}
	}
	if (json && !ret && strcmp(cmd, "stats"))
		print_stats(m, true);
	coil_steer_close(m);
	return ret;
}
