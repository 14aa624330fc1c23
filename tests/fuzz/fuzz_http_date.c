/* SPDX-License-Identifier: MIT */
/*
 * HTTP Date header (IMF-fixdate, RFC 850, asctime): the token response's
 * Date and Retry-After.  What parses is a date a four-digit year can name.
 *
 * fuzz-sources: lib/common.c lib/text.c lib/tokentime.c lib/codec.c
 */
#include "autoconfig.h"

#include "tests/fuzz/fuzz.h"
#include "lib/tokentime.h"

/* 9999-12-31T23:59:59Z, plus a leap second, as tokentime.c */
#define EPOCH_MAX INT64_C(253402300800)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstring(data, size);
	int64_t epoch = -1;

	if (tokentime_parse_http_date(s, &epoch) == 0)
		FUZZ_CHECK(epoch >= 0 && epoch <= EPOCH_MAX);
	gc_error_clear();
	free(s);
	return 0;
}
