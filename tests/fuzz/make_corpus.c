/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpus of fuzz_http1 from the unit-test vectors:
 *   cc -Iengine/include -Itests/unit tests/fuzz/make_corpus.c -o /tmp/mc &&
 *   /tmp/mc tests/fuzz/corpus/http1
 * Each file is fuzz_http1's input: two control bytes (split point, limits,
 * request or bare chunked body), then the bytes.
 */
#include <stdio.h>
#include <string.h>

#include "http1_vectors/requests.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int put(const char *dir, const char *kind, size_t i, unsigned char c0,
	       unsigned char c1, const char *in, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s-%02zu", dir, kind, i);
	f = fopen(path, "wb");
	if (!f || fputc(c0, f) == EOF || fputc(c1, f) == EOF ||
	    fwrite(in, 1, n, f) != n || fclose(f)) {
		perror(path);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int err = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	/* Every other valid vector, every fourth invalid one, every third
	 * chunked body: a few dozen seeds covering each feature. */
	for (size_t i = 0; i < NELEM(h1_valid); i += 2)
		err |= put(argv[1], "valid", i, 0x00, (unsigned char)(i * 7),
			   h1_valid[i].in, strlen(h1_valid[i].in));
	for (size_t i = 0; i < NELEM(h1_invalid); i += 4) {
		size_t n = h1_invalid[i].len ? h1_invalid[i].len :
			strlen(h1_invalid[i].in);

		err |= put(argv[1], "invalid", i, 0x00, (unsigned char)i,
			   h1_invalid[i].in, n);
	}
	for (size_t i = 0; i < NELEM(h1_chunked); i += 3) {
		size_t n = h1_chunked[i].len ? h1_chunked[i].len :
			strlen(h1_chunked[i].in);

		err |= put(argv[1], "chunked", i, 0x80, (unsigned char)(i * 3),
			   h1_chunked[i].in, n);
	}
	/* Small limits. */
	err |= put(argv[1], "limits", 0, 0x40, 20, h1_valid[0].in,
		   strlen(h1_valid[0].in));
	return err;
}
