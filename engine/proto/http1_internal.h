/* SPDX-License-Identifier: MIT */
/* Private to engine/proto/http1*.c and their tests: the SIMD scanners and
 * the switch that picks them. */
#ifndef COIL_PROTO_HTTP1_INTERNAL_H
#define COIL_PROTO_HTTP1_INTERNAL_H

#include <stddef.h>

enum {
	COIL__HTTP1_SIMD_NONE = 0,  /* portable byte loop */
	COIL__HTTP1_SIMD_SSE42 = 1, /* _mm_cmpestri ranges, 16 bytes a step */
	COIL__HTTP1_SIMD_AVX2 = 2,  /* compares, 32 bytes a step */
};

/* The scanner level in use; set once at load time to the best the CPU
 * supports. */
extern int coil__http1_simd_level;

/* The best level this CPU supports. */
int coil__http1_simd_best(void);

/*
 * For tests and benchmarks: use `level` (clamped to what the CPU supports;
 * -1: the best) and return the level now in use. Not thread-safe: call it
 * while no parser runs.
 */
int coil__http1_simd_set(int level);

/*
 * Skip bytes that need no attention, 16 or 32 at a time, never loading a
 * byte at or past `end`. They return a pointer to the first byte to look
 * at (one that stops the scan), or a position less than 16 bytes from
 * `end` where the caller's byte loop takes over. Call only with
 * end - p >= 16.
 *  value:  stops at a control byte other than HTAB (CR, LF, NUL...) or DEL
 *  target: stops at a byte outside 0x21..0x7E (SP, controls, DEL, >= 0x80)
 */
const char *coil__http1_scan_value_sse42(const char *p, const char *end);
const char *coil__http1_scan_value_avx2(const char *p, const char *end);
const char *coil__http1_scan_target_sse42(const char *p, const char *end);
const char *coil__http1_scan_target_avx2(const char *p, const char *end);

#endif
