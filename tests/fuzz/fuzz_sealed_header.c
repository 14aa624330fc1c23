/* SPDX-License-Identifier: MIT */
/*
 * The clear header of a file of the file tier, read from the user's cache
 * directory, so from anyone who could write the file.  What parses must be
 * given back byte for byte by restore, and written again from its fields
 * must parse to the same fields.
 *
 * fuzz-sources: lib/common.c lib/text.c token/sealed_file.c
 * fuzz-max-len: 4096
 */
#include "autoconfig.h"

#include "tests/fuzz/fuzz.h"
#include "token/sealed_file.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static void same_fields(const struct sealed_header *a, const struct sealed_header *b)
{
	FUZZ_CHECK(!strcmp(a->context, b->context) && !strcmp(a->fp, b->fp) &&
		   !strcmp(a->tokhash, b->tokhash));
	FUZZ_CHECK(a->generation == b->generation && a->expires_at == b->expires_at &&
		   a->lifetime == b->lifetime);
	FUZZ_CHECK(!strcmp(a->server, b->server) && !strcmp(a->org, b->org));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstring(data, size), *copy, *again;
	struct sealed_header h, h2;
	size_t len = strlen(s);

	copy = xstrdup(s);
	if (sealed_header_parse(s, len, &h) == 0) {
		FUZZ_CHECK(h.len <= len && !strchr(h.server, '\n') && !strchr(h.org, '\n'));
		again = sealed_header_format(&h);
		FUZZ_CHECK(sealed_header_parse(again, strlen(again), &h2) == 0);
		same_fields(&h, &h2);
		free(again);
		sealed_header_restore(s, &h);
	}
	FUZZ_CHECK(!strcmp(s, copy));
	free(copy);
	free(s);
	return 0;
}
