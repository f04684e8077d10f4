/* SPDX-License-Identifier: MIT */
/* CHECK(): an invariant of a fuzz target; a failure names it and aborts,
 * which libFuzzer reports as a crash and saves the input. */
#ifndef COIL_FUZZ_CHECK_H
#define COIL_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(x)                                                        \
	do {                                                            \
		if (!(x)) {                                             \
			fprintf(stderr, "invariant failed: %s (%s:%d)\n", \
				#x, __FILE__, __LINE__);                \
			abort();                                        \
		}                                                       \
	} while (0)

#endif
