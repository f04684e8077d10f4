/* SPDX-License-Identifier: MIT */
/*
 * Small HTTP/1 byte helpers shared by the codec's users (engine/http's
 * router, response writer, access log): hex digits, token bytes, decimal
 * numbers. Declared in coil/http1.h. No state; any thread.
 */
#include <coil/http1.h>

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

int coil_http1_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

bool coil_http1_is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

char *coil_http1_put_u64(char *p, uint64_t v)
{
	char tmp[20];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}
