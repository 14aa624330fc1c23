/* SPDX-License-Identifier: MIT */
/*
 * RFC 3339 date-times: the token response's expires_at.  What parses
 * inside the four-digit-year range must survive tokentime_format() and a
 * second parse unchanged.
 *
 * fuzz-sources: lib/common.c lib/text.c lib/tokentime.c lib/codec.c
 */
#include "autoconfig.h"

#include "tests/fuzz/fuzz.h"
#include "lib/tokentime.h"

/* 9999-12-31T23:59:59Z, as tokentime.c */
#define EPOCH_MAX INT64_C(253402300799)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstring(data, size);
	char buf[21];
	int64_t epoch = -1, again = -1;

	if (tokentime_parse_rfc3339(s, &epoch) == 0 && epoch >= 0 &&
	    epoch <= EPOCH_MAX) {
		tokentime_format(epoch, buf);
		FUZZ_CHECK(tokentime_parse_rfc3339(buf, &again) == 0);
		FUZZ_CHECK(again == epoch);
	}
	gc_error_clear();
	free(s);
	return 0;
}
