/* SPDX-License-Identifier: MIT */
/* The echo verifier's byte pattern (see load.h). */
#include "load.h"

#include <string.h>

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void pattern_fill(uint8_t *pat, uint64_t seed)
{
	for (size_t i = 0; i < PAT_LEN; i += 8) {
		uint64_t v = splitmix(&seed);

		memcpy(pat + i, &v, 8);
	}
	memcpy(pat + PAT_LEN, pat, PAT_TAIL);
}

uint64_t pattern_check(const uint8_t *pat, uint32_t off, uint64_t pos,
		       const uint8_t *data, size_t len)
{
	uint64_t bad = 0;

	while (len) {
		uint32_t at = (uint32_t)((off + pos) % PAT_LEN);
		size_t n = len < PAT_TAIL ? len : PAT_TAIL;

		if (memcmp(pat + at, data, n))
			for (size_t i = 0; i < n; i++)
				bad += pat[at + i] != data[i];
		data += n;
		pos += n;
		len -= n;
	}
	return bad;
}
