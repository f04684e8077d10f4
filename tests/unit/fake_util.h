/* SPDX-License-Identifier: MIT */
/* Shared helpers for the tests that drive protocols through the fake. */
#ifndef COIL_TEST_FAKE_UTIL_H
#define COIL_TEST_FAKE_UTIL_H

#include <stdint.h>
#include <stdlib.h>

/* A deterministic byte stream: byte i of stream `seed`. */
static inline uint8_t stream_byte(uint32_t seed, uint64_t i)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull ^ seed;

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 32;
	return (uint8_t)x;
}

static inline void stream_fill(uint8_t *buf, uint32_t seed, uint64_t off,
			       size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = stream_byte(seed, off + i);
}

static inline int stream_check(const uint8_t *buf, uint32_t seed,
			       uint64_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (buf[i] != stream_byte(seed, off + i))
			return (int)i;
	return -1;
}

#endif
