/* SPDX-License-Identifier: MIT */
/*
 * docker credential-helper protocol: the JSON of "store" and the bare
 * server URL of "get"/"erase", both read from stdin.  Every input goes to
 * both parsers.  What parses must survive a round trip: store through
 * dockerproto_format_get(), get/erase through a second parse.
 *
 * fuzz-sources: lib/common.c lib/text.c helper/dockerproto.c
 */
#include "autoconfig.h"

#include "tests/fuzz/fuzz.h"
#include "helper/dockerproto.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	secret_json_init();
	return 0;
}

static void store(const uint8_t *data, size_t size)
{
	char *server, *user, *secret, *json;
	char *server2, *user2, *secret2;
	int err;

	err = dockerproto_parse_store((const char *)data, size, &server, &user, &secret);
	if (err) {
		FUZZ_CHECK(!server && !user && !secret);
		return;
	}
	FUZZ_CHECK(server && user && secret);

	json = dockerproto_format_get(server, user, secret);
	/* jansson accepted them, so they are valid UTF-8 without NUL */
	FUZZ_CHECK(json);
	err = dockerproto_parse_store(json, strlen(json), &server2, &user2, &secret2);
	FUZZ_CHECK(err == 0);
	FUZZ_CHECK(fuzz_same(server, server2));
	FUZZ_CHECK(fuzz_same(user, user2));
	FUZZ_CHECK(fuzz_same(secret, secret2));

	secret_free(json);
	free(server2);
	free(user2);
	secret_free(secret2);
	free(server);
	free(user);
	secret_free(secret);
}

static void server(const uint8_t *data, size_t size)
{
	char *url, *again;
	size_t n;
	int err;

	err = dockerproto_parse_server((const char *)data, size, &url);
	if (err) {
		FUZZ_CHECK(!url);
		return;
	}
	FUZZ_CHECK(url);
	n = strlen(url);
	FUZZ_CHECK(n > 0 && !strpbrk(url, "\n\r"));
	err = dockerproto_parse_server(url, n, &again);
	FUZZ_CHECK(err == 0 && fuzz_same(url, again));
	free(again);
	free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	store(data, size);
	gc_error_clear();
	server(data, size);
	gc_error_clear();
	return 0;
}
