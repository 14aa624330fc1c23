/* SPDX-License-Identifier: MIT */
/*
 * The clear header of a file of the file tier (token/tier_file.c), which is
 * also the associated data of the box after it:
 *
 *   gcf1 CONTEXT FINGERPRINT GENERATION EXPIRES LIFETIME TOKENHASH\n
 *   SERVER\n
 *   ORGANIZATION\n
 *
 * CONTEXT, FINGERPRINT and TOKENHASH are 16 hex digits, GENERATION 16 hex
 * digits, EXPIRES and LIFETIME decimal.  Nothing in it is a secret.  Read
 * from a file, so from anyone who could write it: parsed with care.
 */
#ifndef GC_SEALED_FILE_H
#define GC_SEALED_FILE_H

#include <stddef.h>
#include <stdint.h>

struct sealed_header {
	char context[17], fp[17], tokhash[17];
	uint64_t generation;
	int64_t expires_at, lifetime;
	const char *server, *org;	/* into the buffer parsed */
	size_t len;			/* of the header */
};

/* the header for h's fields (len, server and org as given), a new string */
char *sealed_header_format(const struct sealed_header *h);

/*
 * Parse the header at the start of buf (len bytes, NUL-terminated at len):
 * 0 with h filled, its strings pointing into buf, whose two line ends they
 * cut; -1 when it is not one.
 */
int sealed_header_parse(char *buf, size_t len, struct sealed_header *h);

/* buf as it was before sealed_header_parse() cut it: the exact header again */
void sealed_header_restore(char *buf, const struct sealed_header *h);

#endif
