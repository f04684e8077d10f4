/* SPDX-License-Identifier: MIT */
/*
 * The engine's command-line flags (coil/options.h): one table gives each
 * flag's name, range, field and help line, so the parser, the help text and
 * the messages cannot drift apart between apps.
 */
#include <coil/options.h>

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum kind {
	NUM,       /* unsigned field in [min, max] */
	BACKEND,
	POLL,
	COALESCE,  /* NUM, with 0 meaning COIL_COALESCE_OFF */
	STEER,
	STR,       /* const char * field, borrowed */
	DPDK,      /* STR, and backend dpdk */
	LIST,      /* const char *[COIL_ENGINE_TLS_CERTS]: the next free slot
		      (a repeatable flag) */
};

struct flag {
	const char *name;
	unsigned bit;          /* enum coil_engine_flags */
	enum kind kind;
	unsigned long min, max;
	size_t off;            /* the field in struct coil_engine_opts */
	const char *arg;       /* the value's name in the help text */
	const char *help;      /* its help, lines split by '\n' */
};

#define OFF(f) offsetof(struct coil_engine_opts, f)

static const struct flag flags[] = {
	{ "cores", COIL_ENGINE_FLAG_CORES, NUM, 1, 1024, OFF(cores), "N",
	  "loops, one pinned thread each (default: all CPUs)" },
	{ "backend", COIL_ENGINE_FLAG_BACKEND, BACKEND, 0, 0, OFF(backend), "B",
	  NULL /* depends on FLAG_DPDK: usage() */ },
	{ "poll", COIL_ENGINE_FLAG_POLL, POLL, 0, 0, OFF(poll), "M",
	  "how an idle loop waits: always|adaptive|never\n"
	  "(default adaptive)" },
	{ "poll-us", COIL_ENGINE_FLAG_POLL_US, NUM, 1, 1000000, OFF(poll_us),
	  "US", "adaptive spin budget in microseconds (default 50)" },
	{ "coalesce-us", COIL_ENGINE_FLAG_COALESCE, COALESCE, 0, 100000,
	  OFF(coalesce_us), "US",
	  "under load, sleep until 32 completions or US\n"
	  "microseconds have passed (default 20; 0: off)" },
	{ "steer", COIL_ENGINE_FLAG_STEER, STEER, 0, 0, OFF(steer), "S",
	  "which loop gets each new connection: auto\n"
	  "(default: eBPF least, else the kernel hash),\n"
	  "hash, cpu, least, none (kernel hash) or a\n"
	  "user program FILE.bpf.o; see coil-steer and\n"
	  "README" },
	{ "bufs", COIL_ENGINE_FLAG_BUFS, NUM, 1, 32768, OFF(bufs), "N",
	  "receive buffers per loop (default 2048)" },
	{ "buf-size", COIL_ENGINE_FLAG_BUFS, NUM, 64, 1u << 20, OFF(buf_size),
	  "B", "bytes per receive buffer (default 4096)" },
	{ "max-conns", COIL_ENGINE_FLAG_MAX_CONNS, NUM, 1, 1u << 24,
	  OFF(max_conns), "N", "connections per loop (default 65536)" },
	{ "drain-ms", COIL_ENGINE_FLAG_DRAIN, NUM, 1, 0xffffffffu,
	  OFF(drain_ms), "MS", "graceful shutdown limit (default 5000)" },
	{ "dpdk", COIL_ENGINE_FLAG_DPDK, DPDK, 0, 0, OFF(dpdk_args),
	  "'EAL ARGS'", "use the DPDK backend on the first port, e.g.\n"
	  "'--no-huge -m 128 --no-pci\n"
	  "--vdev=net_af_packet0,iface=veth0'" },
	{ "ip", COIL_ENGINE_FLAG_DPDK, STR, 0, 0, OFF(ip), "A.B.C.D/NN",
	  "the port's address (required with --dpdk)" },
	{ "gw", COIL_ENGINE_FLAG_DPDK, STR, 0, 0, OFF(gw), "A.B.C.D",
	  "default gateway" },
	{ "mbufs", COIL_ENGINE_FLAG_DPDK, NUM, 512, 1u << 20, OFF(mbufs), "N",
	  "mbuf pool size (default 8192)" },
	{ "idle-sleep-us", COIL_ENGINE_FLAG_DPDK, NUM, 0, 1000000,
	  OFF(idle_sleep_us), "US",
	  "sleep this long after an idle turn (default 0:\n"
	  "busy poll)" },
	{ "tls-cert", COIL_ENGINE_FLAG_TLS, LIST, 0, 0, OFF(tls_cert), "FILE",
	  "serve TLS 1.2/1.3 with this PEM certificate\n"
	  "(leaf first, then its chain); repeat with\n"
	  "--tls-key for up to 8, chosen by SNI name, the\n"
	  "first the default" },
	{ "tls-key", COIL_ENGINE_FLAG_TLS, LIST, 0, 0, OFF(tls_key), "FILE",
	  "the PEM private key of the --tls-cert before it" },
	{ "tls-handshake-ms", COIL_ENGINE_FLAG_TLS, NUM, 1, 3600000,
	  OFF(tls_handshake_ms), "MS",
	  "close a TLS handshake not done by then\n"
	  "(default 10000)" },
};

#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

static FILE *out_or_stderr(FILE *err)
{
	return err ? err : stderr;
}

int coil_arg_number(const char *prog, const char *flag, const char *s,
		    unsigned long min, unsigned long max, unsigned long *out,
		    FILE *err)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max || *s == '-' ||
	    *s == '+' || *s == ' ' || *s == '\t') {
		fprintf(out_or_stderr(err),
			"%s: --%s: expected a number in %lu..%lu, got '%s'\n",
			prog, flag, min, max, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int coil_arg_size(const char *prog, const char *flag, const char *s,
		  unsigned long long min, unsigned long long max,
		  unsigned long long *out, FILE *err)
{
	char *end;
	unsigned long long v, mul = 1;
	bool sign = *s == '-' || *s == '+' || *s == ' ' || *s == '\t';

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!errno && end != s && !sign && *end && !end[1]) {
		switch (*end) {
		case 'k': case 'K': mul = 1ull << 10; end++; break;
		case 'm': case 'M': mul = 1ull << 20; end++; break;
		case 'g': case 'G': mul = 1ull << 30; end++; break;
		default: break;
		}
	}
	if (errno || end == s || *end || sign || v > max / mul ||
	    v * mul < min || v * mul > max) {
		fprintf(out_or_stderr(err),
			"%s: --%s: expected a size in %llu..%llu (K, M, G "
			"suffixes), got '%s'\n", prog, flag, min, max, s);
		return -EINVAL;
	}
	*out = v * mul;
	return 0;
}

static const struct flag *find(unsigned which, const char *name, size_t len)
{
	for (size_t i = 0; i < NFLAGS; i++)
		if ((flags[i].bit & which) && strlen(flags[i].name) == len &&
		    !memcmp(flags[i].name, name, len))
			return &flags[i];
	return NULL;
}

static int set_backend(struct coil_engine_opts *eo, unsigned which,
		       const char *prog, const char *v, FILE *err)
{
	bool dpdk = which & COIL_ENGINE_FLAG_DPDK;

	if (!strcmp(v, "auto"))
		eo->backend = COIL_BACKEND_AUTO;
	else if (!strcmp(v, "uring") || !strcmp(v, "io_uring"))
		eo->backend = COIL_BACKEND_URING;
	else if (!strcmp(v, "epoll"))
		eo->backend = COIL_BACKEND_EPOLL;
	else if (dpdk && !strcmp(v, "dpdk"))
		eo->backend = COIL_BACKEND_DPDK;
	else {
		fprintf(out_or_stderr(err), "%s: --backend: expected auto, "
			"uring%s epoll%s, got '%s'\n", prog, dpdk ? "," : " or",
			dpdk ? " or dpdk" : "", v);
		return -EINVAL;
	}
	return 0;
}

static int set_poll(struct coil_engine_opts *eo, const char *prog,
		    const char *v, FILE *err)
{
	if (!strcmp(v, "always"))
		eo->poll = COIL_POLL_ALWAYS;
	else if (!strcmp(v, "adaptive"))
		eo->poll = COIL_POLL_ADAPTIVE;
	else if (!strcmp(v, "never"))
		eo->poll = COIL_POLL_NEVER;
	else {
		fprintf(out_or_stderr(err), "%s: --poll: expected always, "
			"adaptive or never, got '%s'\n", prog, v);
		return -EINVAL;
	}
	return 0;
}

static int check_steer(const char *prog, const char *v, FILE *err)
{
	if (coil_engine_steer_check(v)) {
		fprintf(out_or_stderr(err), "%s: --steer: expected auto, hash, "
			"cpu, least, none or FILE.bpf.o, got '%s'\n", prog, v);
		return -EINVAL;
	}
	if (strstr(v, ".o") && access(v, R_OK)) {
		fprintf(out_or_stderr(err), "%s: --steer: cannot read %s: %s\n",
			prog, v, strerror(errno));
		return -EINVAL;
	}
	return 0;
}

static int set(struct coil_engine_opts *eo, unsigned which, const char *prog,
	       const struct flag *f, const char *v, FILE *err)
{
	void *field = (char *)eo + f->off;
	unsigned long n;

	switch (f->kind) {
	case NUM:
	case COALESCE:
		if (coil_arg_number(prog, f->name, v, f->min, f->max, &n, err))
			return -EINVAL;
		if (f->kind == COALESCE && !n)
			n = COIL_COALESCE_OFF;
		*(unsigned *)field = (unsigned)n;
		return 0;
	case BACKEND:
		return set_backend(eo, which, prog, v, err);
	case POLL:
		return set_poll(eo, prog, v, err);
	case STEER:
		if (check_steer(prog, v, err))
			return -EINVAL;
		eo->steer = v;
		return 0;
	case LIST: {
		const char **slot = field;
		unsigned i = 0;

		while (i < COIL_ENGINE_TLS_CERTS && slot[i])
			i++;
		if (i == COIL_ENGINE_TLS_CERTS) {
			fprintf(out_or_stderr(err), "%s: --%s: at most %d, "
				"got '%s' too\n", prog, f->name,
				COIL_ENGINE_TLS_CERTS, v);
			return -EINVAL;
		}
		slot[i] = v;
		return 0;
	}
	case DPDK:
		eo->backend = COIL_BACKEND_DPDK;
		/* fall through */
	case STR:
		*(const char **)field = v;
		return 0;
	}
	return -EINVAL;
}

int coil_engine_opts_set(struct coil_engine_opts *eo, unsigned which,
			 const char *prog, const char *flag, const char *value,
			 FILE *err)
{
	const struct flag *f = find(which, flag, strlen(flag));

	if (!f)
		return -ENOENT;
	return set(eo, which, prog, f, value, err);
}

int coil_engine_opts_parse_args(struct coil_engine_opts *eo, unsigned which,
				const char *prog, int *argc, char **argv,
				FILE *err)
{
	int in = 1, kept = 1, n = *argc;

	while (in < n) {
		const char *a = argv[in], *eq = NULL, *value;
		const struct flag *f = NULL;

		if (!strcmp(a, "--"))
			break;
		if (!strncmp(a, "--", 2)) {
			eq = strchr(a + 2, '=');
			f = find(which, a + 2,
				 eq ? (size_t)(eq - a - 2) : strlen(a + 2));
		}
		if (!f) {
			argv[kept++] = argv[in++];
			continue;
		}
		if (eq) {
			value = eq + 1;
			in++;
		} else if (in + 1 < n) {
			value = argv[in + 1];
			in += 2;
		} else {
			fprintf(out_or_stderr(err), "%s: --%s: needs a value\n",
				prog, f->name);
			return -EINVAL;
		}
		if (set(eo, which, prog, f, value, err))
			return -EINVAL;
	}
	while (in < n)
		argv[kept++] = argv[in++];
	argv[kept] = NULL;
	*argc = kept;
	return 0;
}

/* The help column: "  --flag ARG" is padded to it. */
#define HELP_COL 22

void coil_engine_opts_usage(FILE *f, unsigned which)
{
	bool dpdk = which & COIL_ENGINE_FLAG_DPDK;

	for (size_t i = 0; i < NFLAGS; i++) {
		const struct flag *fl = &flags[i];
		const char *h = fl->help, *nl;
		int len;

		if (!(fl->bit & which))
			continue;
		if (fl->kind == BACKEND)
			h = dpdk ? "auto|uring|epoll|dpdk (default auto)"
				 : "auto|uring|epoll (default auto)";
		len = fprintf(f, "  --%s %s", fl->name, fl->arg);
		if (len >= HELP_COL - 1)
			fprintf(f, "\n%*s", HELP_COL, "");
		else
			fprintf(f, "%*s", HELP_COL - len, "");
		while ((nl = strchr(h, '\n'))) {
			fprintf(f, "%.*s\n%*s", (int)(nl - h), h, HELP_COL, "");
			h = nl + 1;
		}
		fprintf(f, "%s\n", h);
	}
}
