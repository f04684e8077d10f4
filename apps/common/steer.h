/* SPDX-License-Identifier: MIT */
/*
 * --steer, shared by the coil apps: one usage text, one check with one
 * clear message on stderr.
 */
#ifndef COIL_APP_STEER_H
#define COIL_APP_STEER_H

#include <coil/engine.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define APP_STEER_USAGE \
	"  --steer S          which loop gets each new connection: auto (default:\n" \
	"                     eBPF least, else the kernel hash),\n" \
	"                     hash, cpu, least, none (kernel hash) or a user\n" \
	"                     program FILE.bpf.o; see coil-steer and README\n"

/* Returns 0 when coil_engine_opts.steer may be `s`, or -1 after printing
 * "PROG: --steer: ..." to stderr. */
static inline int app_steer(const char *prog, const char *s)
{
	if (coil_engine_steer_check(s)) {
		fprintf(stderr, "%s: --steer: expected auto, hash, cpu, least, "
			"none or FILE.bpf.o, got '%s'\n", prog, s);
		return -1;
	}
	if (strstr(s, ".o") && access(s, R_OK)) {
		fprintf(stderr, "%s: --steer: cannot read %s: %s\n", prog, s,
			strerror(errno));
		return -1;
	}
	return 0;
}

#endif
