/* SPDX-License-Identifier: MIT */
/*
 * coil-steer: look at and change the eBPF connection steering of running
 * coil servers, through the maps they pin under /sys/fs/bpf/coil/.
 *
 *   coil-steer [--port P] [--pid PID] [--dir DIR] [--json] COMMAND
 *     list | stats | policy hash|cpu|least | load FILE.bpf.o | unload |
 *     drain LOOP | undrain LOOP
 */
#include "coil_config.h"
#include "../common/args.h"
#include "../../engine/steer/steering.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "coil-steer"

struct server {
	unsigned port, pid;
	char dir[96];
};

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
		"                     and --pid select, under " COIL_STEER_PIN_ROOT ")\n"
		"  --json             machine-readable output\n"
		"  --help, --version\n"
		"Needs root (or CAP_BPF and CAP_NET_ADMIN). Servers steering with classic\n"
		"BPF or the kernel's hash (see their log) have no maps to show.\n");
}

static bool alive(unsigned pid)
{
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* Servers under the pin root matching port/pid (0: any). Returns the count
 * (up to max kept), or -errno. */
static int find_servers(unsigned port, unsigned pid, struct server *out,
			int max)
{
	struct dirent *e;
	DIR *d = opendir(COIL_STEER_PIN_ROOT);
	int n = 0;

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
			snprintf(out[n].dir, sizeof(out[n].dir), "%s/%u-%u",
				 COIL_STEER_PIN_ROOT, p, q);
		}
		n++;
	}
	closedir(d);
	return n;
}

static int no_server(int err, unsigned port, unsigned pid)
{
	if (err == -EACCES || err == -EPERM)
		fprintf(stderr, PROG ": cannot read " COIL_STEER_PIN_ROOT
			": permission denied (needs root, or CAP_BPF and "
			"CAP_NET_ADMIN)\n");
	else if (port || pid)
		fprintf(stderr, PROG ": no coil server with eBPF steering "
			"found%s%.0u%s%.0u (servers on classic BPF or the "
			"kernel's hash have no maps)\n",
			port ? " on port " : "", port, pid ? " with pid " : "",
			pid);
	else
		fprintf(stderr, PROG ": no coil server with eBPF steering is "
			"running (nothing under " COIL_STEER_PIN_ROOT ")\n");
	return 1;
}

static int cmd_list(unsigned port, unsigned pid, bool json)
{
	struct server sv[64];
	int n = find_servers(port, pid, sv, 64);

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

static void print_stats(const char *dir, const struct coil_steer_state *st,
			bool json)
{
	unsigned n = st->hdr.nloops, id = st->hdr.user_id;
	const char *pol = coil__steer_policy_name(st->hdr.policy);

	if (n > COIL_STEER_MAX_LOOPS)
		n = COIL_STEER_MAX_LOOPS;
	if (!pol)
		pol = "unknown";
	if (json) {
		printf("{\"pid\": %u, \"port\": %u, \"dir\": \"%s\", "
		       "\"policy\": \"%s\", \"user_program\": ",
		       st->hdr.pid, st->hdr.port, dir, pol);
		if (id)
			printf("{\"name\": \"%.64s\", \"id\": %u}",
			       st->hdr.user_name, id);
		else
			printf("null");
		printf(", \"loops\": [");
		for (unsigned i = 0; i < n; i++)
			printf("%s{\"loop\": %u, \"cpu\": %d, \"accepted\": %llu, "
			       "\"active\": %llu, \"draining\": %s}",
			       i ? ", " : "", i, st->loop[i].cpu,
			       (unsigned long long)st->loop[i].accepted,
			       (unsigned long long)st->loop[i].active,
			       st->loop[i].draining ? "true" : "false");
		printf("]}\n");
		return;
	}
	printf("server: pid %u, port %u (%s)\n", st->hdr.pid, st->hdr.port, dir);
	printf("policy: %s\n", pol);
	if (id)
		printf("user program: %.64s (id %u)\n", st->hdr.user_name, id);
	else
		printf("user program: none\n");
	printf("%-5s %-4s %12s %10s %s\n", "loop", "cpu", "accepted", "active",
	       "draining");
	for (unsigned i = 0; i < n; i++)
		printf("%-5u %-4d %12llu %10llu %s\n", i, st->loop[i].cpu,
		       (unsigned long long)st->loop[i].accepted,
		       (unsigned long long)st->loop[i].active,
		       st->loop[i].draining ? "yes" : "no");
}

static int open_state(const char *dir, struct coil_steer_state **st)
{
	int ret = coil__steer_state_map(dir, st);

	if (!ret)
		return 0;
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

static int parse_loop(const char *s, const struct coil_steer_state *st,
		      unsigned *out)
{
	unsigned long v;

	if (app_num(PROG, "LOOP", s, 0, COIL_STEER_MAX_LOOPS - 1, &v))
		return -1;
	if (v >= st->hdr.nloops) {
		fprintf(stderr, PROG ": loop %lu: the server has %u loops\n", v,
			st->hdr.nloops);
		return -1;
	}
	*out = (unsigned)v;
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
	struct coil_steer_state *st = NULL;
	unsigned port = 0, pid = 0, loop;
	const char *dir = NULL, *cmd, *arg = NULL;
	struct server sv[8];
	bool json = false;
	unsigned long v;
	char err[256];
	int opt, n, ret = 0, nargs;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (app_num(PROG, "port", optarg, 1, 65535, &v))
				return 2;
			port = (unsigned)v;
			break;
		case 'P':
			if (app_num(PROG, "pid", optarg, 1, 0x7fffffff, &v))
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
	if (!strcmp(cmd, "policy")) {
		struct coil__steer_spec spec;

		if (coil__steer_parse(arg, &spec) ||
		    (spec.want != COIL__WANT_HASH && spec.want != COIL__WANT_CPU &&
		     spec.want != COIL__WANT_LEAST)) {
			fprintf(stderr, PROG ": policy: expected hash, cpu or "
				"least, got '%s'\n", arg);
			return 2;
		}
	}
	if (!strcmp(cmd, "list"))
		return cmd_list(port, pid, json);

	if (!dir) {
		n = find_servers(port, pid, sv, 8);
		if (n <= 0)
			return no_server(n, port, pid);
		if (n > 1) {
			fprintf(stderr, PROG ": %d coil servers match; pick one "
				"with --port, --pid or --dir:\n", n);
			for (int i = 0; i < n && i < 8; i++)
				fprintf(stderr, "  pid %u port %u %s\n",
					sv[i].pid, sv[i].port, sv[i].dir);
			return 1;
		}
		dir = sv[0].dir;
	}
	if (open_state(dir, &st))
		return 1;

	if (!strcmp(cmd, "stats")) {
		print_stats(dir, st, json);
	} else if (!strcmp(cmd, "policy")) {
		struct coil__steer_spec spec;
		unsigned old = st->hdr.policy;

		coil__steer_parse(arg, &spec);
		__atomic_store_n(&st->hdr.policy, coil__steer_policy_of(&spec),
				 __ATOMIC_RELEASE);
		if (!json)
			printf("policy: %s (was %s)\n",
			       coil__steer_policy_name(st->hdr.policy),
			       coil__steer_policy_name(old) ? coil__steer_policy_name(old)
							    : "unknown");
	} else if (!strcmp(cmd, "drain") || !strcmp(cmd, "undrain")) {
		if (parse_loop(arg, st, &loop)) {
			ret = 2;
		} else {
			__atomic_store_n(&st->loop[loop].draining,
					 cmd[0] == 'd', __ATOMIC_RELEASE);
			if (!json)
				printf("loop %u: %s\n", loop,
				       cmd[0] == 'd' ? "draining" : "accepting");
		}
	} else if (!strcmp(cmd, "load")) {
		if (coil__steer_user_load(dir, arg, err, sizeof(err))) {
			fprintf(stderr, PROG ": %s\n", err);
			ret = 1;
		} else if (!json) {
			printf("loaded %s (program id %u)\n", arg, st->hdr.user_id);
		}
	} else if (!strcmp(cmd, "unload")) {
		if (coil__steer_user_unload(dir, err, sizeof(err))) {
			fprintf(stderr, PROG ": %s\n", err);
			ret = 1;
		} else if (!json) {
			printf("user program removed\n");
		}
	}
	if (json && !ret && strcmp(cmd, "stats"))
		print_stats(dir, st, true);
	coil__steer_state_unmap(st);
	return ret;
}
