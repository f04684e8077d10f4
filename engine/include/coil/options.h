/* SPDX-License-Identifier: MIT */
/*
 * The engine's command-line flags, shared by every app: one parser that
 * recognises them into struct coil_engine_opts, one help text, one set of
 * error messages. The app parses its own flags from what is left:
 *
 *	struct coil_engine_opts eo = { .sz = sizeof(eo), .name = "myapp" };
 *
 *	if (coil_engine_opts_parse_args(&eo, COIL_ENGINE_FLAGS_SERVER, "myapp",
 *					&argc, argv, NULL))
 *		return 2;
 *	while ((opt = getopt_long(argc, argv, ...)) != -1)   // the app's own
 *
 * Flags take their value as the next argument or after '=' (--cores 4,
 * --cores=4). Messages read "PROG: --FLAG: expected ..., got 'VALUE'".
 */
#ifndef COIL_OPTIONS_H
#define COIL_OPTIONS_H

#include <coil/engine.h>

#include <stdio.h>

/* Which engine flags an app takes (OR them; `which` below). */
enum coil_engine_flags {
	COIL_ENGINE_FLAG_CORES = 1u << 0,     /* --cores N: loops, 1..1024 */
	COIL_ENGINE_FLAG_BACKEND = 1u << 1,   /* --backend auto|uring|epoll
						 (io_uring: alias of uring;
						 dpdk too with FLAG_DPDK) */
	COIL_ENGINE_FLAG_POLL = 1u << 2,      /* --poll always|adaptive|never */
	COIL_ENGINE_FLAG_POLL_US = 1u << 3,   /* --poll-us US, 1..1000000 */
	COIL_ENGINE_FLAG_COALESCE = 1u << 4,  /* --coalesce-us US, 0..100000
						 (0: COIL_COALESCE_OFF) */
	COIL_ENGINE_FLAG_STEER = 1u << 5,     /* --steer S (a FILE.bpf.o must
						 be readable) */
	COIL_ENGINE_FLAG_BUFS = 1u << 6,      /* --bufs N, 1..32768, and
						 --buf-size B, 64..1048576 */
	COIL_ENGINE_FLAG_MAX_CONNS = 1u << 7, /* --max-conns N, 1..16777216 */
	COIL_ENGINE_FLAG_DRAIN = 1u << 8,     /* --drain-ms MS, 1..4294967295 */
	COIL_ENGINE_FLAG_DPDK = 1u << 9,      /* --dpdk 'EAL ARGS' (sets
						 backend dpdk), --ip A.B.C.D/NN,
						 --gw A.B.C.D, --mbufs N
						 (512..1048576),
						 --idle-sleep-us US (0..1000000) */
	/* What a server on kernel sockets takes: all but DPDK (and TLS,
	 * which a server asks for apart). */
	COIL_ENGINE_FLAGS_SERVER = (1u << 9) - 1,
	COIL_ENGINE_FLAG_TLS = 1u << 10,      /* --tls-cert FILE, --tls-key FILE
						 (repeatable, paired in order,
						 up to 8: SNI), --tls-handshake-ms
						 MS (1..3600000); see
						 coil_tls_from_engine_opts in
						 coil/tls.h */
};

/*
 * Take every engine flag in `which` out of argv[1..*argc-1] into *eo,
 * leaving argv[0], the app's own arguments (in order) and a final NULL, and
 * *argc their count. Scanning stops at "--" (kept for the app). Strings
 * (steer, dpdk_args, ip, gw, tls_cert, tls_key) point into argv: borrowed, argv must outlive
 * the engine's creation. Fields of flags not given are left as they are.
 * A flag outside `which` is left to the app, as is an unknown one; an app
 * flag whose value is itself an engine flag name must be written with '='.
 * Returns 0, or -EINVAL after printing one line "PROG: --FLAG: ..." to
 * `err` (stderr when NULL): a bad value, or a missing one. Main thread (it
 * rewrites argv).
 */
int coil_engine_opts_parse_args(struct coil_engine_opts *eo, unsigned which,
				const char *prog, int *argc, char **argv,
				FILE *err);

/*
 * Set one engine flag: `flag` is its name without dashes ("cores"),
 * `value` its value (borrowed as in coil_engine_opts_parse_args). Returns 0
 * when set, -ENOENT when `flag` is not an engine flag in `which` (the
 * app's: nothing printed), or -EINVAL after printing one line to `err`
 * (stderr when NULL). Any thread.
 */
int coil_engine_opts_set(struct coil_engine_opts *eo, unsigned which,
			 const char *prog, const char *flag, const char *value,
			 FILE *err);

/* Print the help lines of the flags in `which` (two-space indent, the
 * descriptions in one column) to f. Any thread. */
void coil_engine_opts_usage(FILE *f, unsigned which);

/*
 * Parse a flag's decimal value strictly (no sign, no blanks, no trailing
 * bytes) into *out, within [min, max]: the parser of the engine flags, for
 * the app's own. Returns 0, or -EINVAL after printing "PROG: --FLAG:
 * expected a number in MIN..MAX, got 'S'" to `err` (stderr when NULL). Any
 * thread.
 */
int coil_arg_number(const char *prog, const char *flag, const char *s,
		    unsigned long min, unsigned long max, unsigned long *out,
		    FILE *err);

/* Like coil_arg_number, with an optional K, M or G suffix (powers of
 * 1024): "expected a size in MIN..MAX (K, M, G suffixes), got 'S'". */
int coil_arg_size(const char *prog, const char *flag, const char *s,
		  unsigned long long min, unsigned long long max,
		  unsigned long long *out, FILE *err);

#endif
