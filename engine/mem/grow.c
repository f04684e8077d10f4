/* SPDX-License-Identifier: MIT */
/*
 * One growable heap buffer policy for the library's byte strings that have
 * no fixed bound known up front (a request body held before its connection,
 * an upstream request head, handler-added response headers).
 */
#include "mem.h"

#include <stdlib.h>

void *coil__grow(void *buf, size_t *cap, size_t need, size_t first)
{
	size_t c = *cap ? *cap : first;
	void *p;

	if (need <= *cap)
		return buf;
	if (!c)
		c = 64;
	while (c < need) {
		if (c > SIZE_MAX / 2)
			return NULL;
		c *= 2;
	}
	p = realloc(buf, c);
	if (p)
		*cap = c;
	return p;
}
