/* SPDX-License-Identifier: MIT */
/*
 * A cached token's payload, read back from a store that others (another
 * process of the same user, a keyring item) may have written.  What parses
 * must survive cache_format_payload() and a second parse unchanged.
 *
 * fuzz-sources: lib/common.c lib/text.c token/cache.c lib/tokentime.c
 * fuzz-sources: lib/codec.c keystore/credential.c
 * fuzz-max-len: 16384
 */
#include "autoconfig.h"

#include "tests/fuzz/fuzz.h"
#include "token/cache.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstring(data, size), *again;
	struct cached_token t, t2;

	if (cache_parse_payload(s, &t) == 0) {
		FUZZ_CHECK(t.token && *t.token);
		FUZZ_CHECK(t.expires_at > 0 && t.lifetime >= 0);
		FUZZ_CHECK(strlen(t.fingerprint) == 16 &&
			   strspn(t.fingerprint, "0123456789abcdef") == 16);
		FUZZ_CHECK(strlen(t.context) == 16 &&
			   strspn(t.context, "0123456789abcdef") == 16);
		again = cache_format_payload(&t);
		FUZZ_CHECK(cache_parse_payload(again, &t2) == 0);
		FUZZ_CHECK(strcmp(t.token, t2.token) == 0);
		FUZZ_CHECK(t.expires_at == t2.expires_at && t.lifetime == t2.lifetime);
		FUZZ_CHECK(strcmp(t.fingerprint, t2.fingerprint) == 0);
		FUZZ_CHECK(strcmp(t.context, t2.context) == 0 && t.generation == t2.generation);
		cached_token_release(&t2);
		secret_free(again);
	} else {
		FUZZ_CHECK(!t.token);
	}
	cached_token_release(&t);
	gc_error_clear();
	free(s);
	return 0;
}
