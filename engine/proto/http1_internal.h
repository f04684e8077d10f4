/* SPDX-License-Identifier: MIT */
/* Private to engine/proto/http1*.c and their tests: the SIMD scanners and
 * the switch that picks them; what the codec's files share (byte classes,
 * limits, the field-line machine, Transfer-Encoding facts). */
#ifndef COIL_PROTO_HTTP1_INTERNAL_H
#define COIL_PROTO_HTTP1_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <coil/http1.h>

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

/* ---- shared by http1.c, http1_fields.c, http1_body.c, http1_out.c and
 * http1_response.c ---- */

/* Offsets are 32-bit and the head length is returned as an int. */
#define COIL__HTTP1_LIMIT_MAX (1u << 30)

/* Token bytes (RFC 9110 5.6.2 tchar); in http1_fields.c. (Local to
 * libcoil.so like every coil__ name, engine/libcoil.map: the linker turns
 * the parser loops' GOT loads into direct addresses.) */
extern const uint8_t coil__http1_tchar[256];
/* Field-value bytes (RFC 9110 5.5): HTAB, SP, VCHAR, obs-text. */
extern const uint8_t coil__http1_value_ok[256];

/* Optional whitespace (RFC 9110 5.6.3): SP or HTAB. */
static inline bool coil__http1_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Tokens (methods, field names) are scanned byte by byte: they are short
 * (~10 bytes), and a 16-byte pshufb nibble-lookup scanner measured slower
 * than this loop in tests/fuzz/bench_http1.c. */
static inline const char *coil__http1_scan_token(const char *p,
						 const char *end)
{
	while (p < end && coil__http1_tchar[(unsigned char)*p])
		p++;
	return p;
}

/* A limit from `l` (struct coil_http1_limits, may be NULL or shorter than
 * this build's), `def` when absent or 0, at most COIL__HTTP1_LIMIT_MAX. */
static inline uint32_t coil__http1_limit_of(const struct coil_http1_limits *l,
					    size_t off, uint32_t v,
					    uint32_t def)
{
	if (!l || l->sz < off + sizeof(uint32_t) || !v)
		return def;
	return v > COIL__HTTP1_LIMIT_MAX ? COIL__HTTP1_LIMIT_MAX : v;
}
#define COIL__HTTP1_LIMIT(l, field, def) \
	coil__http1_limit_of((l), offsetof(struct coil_http1_limits, field), \
			     (l) ? (l)->field : 0, (def))

/* Transfer-Encoding facts, gathered over all its field lines. */
enum {
	COIL__HTTP1_TE_SEEN = 1,         /* the field was present */
	COIL__HTTP1_TE_LAST_CHUNKED = 2, /* the last coding so far is chunked */
	COIL__HTTP1_TE_BAD = 4,          /* chunked twice or not last, or bad
					  * syntax */
	COIL__HTTP1_TE_OTHER = 8,        /* a coding other than chunked */
};

/*
 * Run the field-line machine over buf[f->pos, len) (http1_fields.c).
 * `p` receives each complete line's framing facts (request or response
 * headers), or is NULL (trailers: syntax only). Returns COIL_HTTP1_DONE
 * (f->pos = end of section), NEED_MORE, or an error.
 */
int coil__http1_fields_run(struct coil__http1_fields *f, const char *buf,
			   size_t len, struct coil_http1_parser *p);
/* Turn the stored offsets of the fields into slices of `buf`. */
void coil__http1_fields_slices(const struct coil__http1_fields *f,
			       const char *buf);

#endif
