/* SPDX-License-Identifier: MIT */
/*
 * The exp claim of a JWT access token: base64url and JSON from the server.
 * Each input is tried twice: as the whole token, and as the JSON payload
 * of a token built around it (so the JSON parser is reached without the
 * fuzzer having to learn base64url).  An exp read is in range.
 *
 * fuzz-sources: lib/common.c lib/text.c lib/tokentime.c lib/codec.c
 */
#include "autoconfig.h"

#include "tests/fuzz/fuzz.h"
#include "lib/codec.h"
#include "lib/tokentime.h"

/* 9999-12-31T23:59:59Z, as tokentime.c */
#define EPOCH_MAX INT64_C(253402300799)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	secret_json_init();
	return 0;
}

static void check(const char *jwt)
{
	int64_t exp = -1;

	if (tokentime_jwt_exp(jwt, &exp) == 0)
		FUZZ_CHECK(exp >= 0 && exp <= EPOCH_MAX);
	gc_error_clear();
}

/* "eyJhbGciOiJub25lIn0." base64url(payload) ".c2ln" */
static char *wrap(const uint8_t *data, size_t size)
{
	char *b64 = codec_base64(data, size), *p, *jwt;

	FUZZ_CHECK(b64);
	for (p = b64; *p; p++) {
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
	}
	if ((p = strchr(b64, '=')))
		*p = '\0';
	jwt = xasprintf("eyJhbGciOiJub25lIn0.%s.c2ln", b64);
	free(b64);
	return jwt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstring(data, size);

	check(s);
	free(s);
	s = wrap(data, size);
	check(s);
	free(s);
	return 0;
}
