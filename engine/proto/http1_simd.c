/* SPDX-License-Identifier: MIT */
/*
 * SIMD scanners for the HTTP/1 parser, compiled with per-function target
 * attributes so the default build needs no -m flags; coil__http1_simd_level
 * picks one at run time (__builtin_cpu_supports), so a CPU without SSE4.2 or
 * AVX2 never executes them. Every load is a full unaligned 16/32-byte load
 * that ends at or before `end`: inputs may end right before an unmapped page.
 */
#include "proto/http1_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#define HAVE_X86 1
#include <immintrin.h>
#else
#define HAVE_X86 0
#endif

int coil__http1_simd_level = COIL__HTTP1_SIMD_NONE;

int coil__http1_simd_best(void)
{
#if HAVE_X86
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("sse4.2"))
		return COIL__HTTP1_SIMD_AVX2;
	if (__builtin_cpu_supports("sse4.2"))
		return COIL__HTTP1_SIMD_SSE42;
#endif
	return COIL__HTTP1_SIMD_NONE;
}

int coil__http1_simd_set(int level)
{
	int best = coil__http1_simd_best();

	if (level < 0 || level > best)
		level = best;
	coil__http1_simd_level = level;
	return level;
}

/* Detect once when the library is loaded, so the hot path reads a plain
 * int and no call needs an "initialized?" check. */
__attribute__((constructor)) static void simd_detect(void)
{
	coil__http1_simd_level = coil__http1_simd_best();
}

#if HAVE_X86

/* Ranges for _mm_cmpestri (pairs of inclusive bounds), padded to 16 bytes
 * because the whole vector is loaded; the length argument limits use. */
static const char value_ranges[16] = "\x00\x08\x0a\x1f\x7f\x7f";
static const char target_ranges[16] = "\x00\x20\x7f\xff";

#define CMP_MODE (_SIDD_UBYTE_OPS | _SIDD_CMP_RANGES | _SIDD_LEAST_SIGNIFICANT)

__attribute__((target("sse4.2")))
static inline const char *cmpestri_scan(const char *p, const char *end,
					__m128i ranges, int nranges)
{
	while (end - p >= 16) {
		__m128i b = _mm_loadu_si128((const __m128i *)(const void *)p);
		int i = _mm_cmpestri(ranges, nranges, b, 16, CMP_MODE);

		if (i != 16)
			return p + i;
		p += 16;
	}
	return p;
}

__attribute__((target("sse4.2")))
const char *coil__http1_scan_value_sse42(const char *p, const char *end)
{
	__m128i r = _mm_loadu_si128((const __m128i *)(const void *)value_ranges);

	return cmpestri_scan(p, end, r, 6);
}

__attribute__((target("sse4.2")))
const char *coil__http1_scan_target_sse42(const char *p, const char *end)
{
	__m128i r = _mm_loadu_si128((const __m128i *)(const void *)target_ranges);

	return cmpestri_scan(p, end, r, 4);
}

/* AVX2: a byte b stops a value scan when b <= 0x1f && b != HTAB, or
 * b == DEL. Unsigned "<=" is min_epu8(b, k) == b. */
__attribute__((target("avx2")))
const char *coil__http1_scan_value_avx2(const char *p, const char *end)
{
	const __m256i c1f = _mm256_set1_epi8(0x1f);
	const __m256i tab = _mm256_set1_epi8('\t');
	const __m256i del = _mm256_set1_epi8(0x7f);

	while (end - p >= 32) {
		__m256i v = _mm256_loadu_si256((const __m256i *)(const void *)p);
		__m256i ctl = _mm256_cmpeq_epi8(_mm256_min_epu8(v, c1f), v);
		__m256i bad = _mm256_or_si256(
			_mm256_andnot_si256(_mm256_cmpeq_epi8(v, tab), ctl),
			_mm256_cmpeq_epi8(v, del));
		unsigned m = (unsigned)_mm256_movemask_epi8(bad);

		if (m)
			return p + __builtin_ctz(m);
		p += 32;
	}
	if (end - p >= 16) {
		const __m128i c1f_x = _mm_set1_epi8(0x1f);
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		__m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, c1f_x), v);
		__m128i bad = _mm_or_si128(
			_mm_andnot_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\t')),
					 ctl),
			_mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)));
		unsigned m = (unsigned)_mm_movemask_epi8(bad);

		if (m)
			return p + __builtin_ctz(m);
		p += 16;
	}
	return p;
}

/* AVX2: a byte b stops a target scan when b <= 0x20 or b >= 0x7f. */
__attribute__((target("avx2")))
const char *coil__http1_scan_target_avx2(const char *p, const char *end)
{
	const __m256i c20 = _mm256_set1_epi8(0x20);
	const __m256i c7f = _mm256_set1_epi8(0x7f);

	while (end - p >= 32) {
		__m256i v = _mm256_loadu_si256((const __m256i *)(const void *)p);
		__m256i bad = _mm256_or_si256(
			_mm256_cmpeq_epi8(_mm256_min_epu8(v, c20), v),
			_mm256_cmpeq_epi8(_mm256_max_epu8(v, c7f), v));
		unsigned m = (unsigned)_mm256_movemask_epi8(bad);

		if (m)
			return p + __builtin_ctz(m);
		p += 32;
	}
	if (end - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		__m128i bad = _mm_or_si128(
			_mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x20)), v),
			_mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x7f)), v));
		unsigned m = (unsigned)_mm_movemask_epi8(bad);

		if (m)
			return p + __builtin_ctz(m);
		p += 16;
	}
	return p;
}

#else  /* no x86: the level stays NONE and these are never called */

const char *coil__http1_scan_value_sse42(const char *p, const char *end)
{
	(void)end;
	return p;
}

const char *coil__http1_scan_value_avx2(const char *p, const char *end)
{
	(void)end;
	return p;
}

const char *coil__http1_scan_target_sse42(const char *p, const char *end)
{
	(void)end;
	return p;
}

const char *coil__http1_scan_target_avx2(const char *p, const char *end)
{
	(void)end;
	return p;
}

#endif
