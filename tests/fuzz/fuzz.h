/* SPDX-License-Identifier: MIT */
/*
 * Shared by the libFuzzer targets in this directory (built by scripts/fuzz,
 * not by automake).  Each target includes this once.
 */
#ifndef GC_FUZZ_H
#define GC_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * A property the parser promises does not hold: say which, then abort so
 * libFuzzer saves the input as a crash artifact.
 */
#define FUZZ_CHECK(cond)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: fuzz check failed: %s\n",    \
				__FILE__, __LINE__, #cond);                  \
			abort();                                             \
		}                                                            \
	} while (0)

/*
 * The input as a C string, in a block of exactly size + 1 bytes so ASan
 * sees any read past the terminator.  An embedded NUL just ends the string,
 * as it would for a caller holding a C string.
 */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);

	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* both NULL, or both strings and equal */
static inline int fuzz_same(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

#endif
