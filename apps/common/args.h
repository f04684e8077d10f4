/* SPDX-License-Identifier: MIT */
/*
 * Command-line number parsing shared by the coil apps: strict (no sign, no
 * trailing bytes, range-checked) with one clear message on stderr.
 */
#ifndef COIL_APP_ARGS_H
#define COIL_APP_ARGS_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* Parse --opt's decimal value into *out, in [min, max]. Returns 0, or -1
 * after printing "PROG: --OPT: expected ..." to stderr. */
static inline int app_num(const char *prog, const char *opt, const char *s,
			  unsigned long min, unsigned long max,
			  unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max || *s == '-') {
		fprintf(stderr, "%s: --%s: expected a number in %lu..%lu, got '%s'\n",
			prog, opt, min, max, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* Like app_num, with an optional K, M or G suffix (powers of 1024). */
static inline int app_size(const char *prog, const char *opt, const char *s,
			   unsigned long long min, unsigned long long max,
			   unsigned long long *out)
{
	char *end;
	unsigned long long v, mul = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!errno && end != s && *s != '-' && *end && !end[1]) {
		switch (*end) {
		case 'k': case 'K': mul = 1ull << 10; end++; break;
		case 'm': case 'M': mul = 1ull << 20; end++; break;
		case 'g': case 'G': mul = 1ull << 30; end++; break;
		default: break;
		}
	}
	if (errno || end == s || *end || *s == '-' || v > max / mul ||
	    v * mul < min || v * mul > max) {
		fprintf(stderr, "%s: --%s: expected a size in %llu..%llu (K, M, G suffixes), got '%s'\n",
			prog, opt, min, max, s);
		return -1;
	}
	*out = v * mul;
	return 0;
}

#endif
