/* SPDX-License-Identifier: MIT */
/*
 * Server URLs from outside: --server, GALILEO_CONSOLE_URL, docker's server
 * name, git's protocol= and host=.  The whole input goes to
 * url_canonicalize() and url_from_console(); split at its first newline it
 * is git's protocol and host for url_from_git().  Whatever comes out must
 * be canonical: canonicalising it again changes nothing.
 *
 * fuzz-sources: lib/common.c lib/text.c lib/url.c
 */
#include "autoconfig.h"

#include "tests/fuzz/fuzz.h"
#include "lib/url.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/*
 * out is canonical: https (or http on loopback), no userinfo (an '@' may
 * only be in the prefix), query or fragment, and a fixed point
 */
static void check_canonical(const char *out)
{
	const char *auth;
	char *again;

	FUZZ_CHECK(!strncmp(out, "https://", 8) || !strncmp(out, "http://", 7));
	auth = strstr(out, "://") + 3;
	FUZZ_CHECK(!memchr(auth, '@', strcspn(auth, "/")));
	FUZZ_CHECK(!strpbrk(out, "?# \t\r\n"));
	FUZZ_CHECK(url_canonicalize(out, &again) == 0);
	FUZZ_CHECK(strcmp(out, again) == 0);
	free(again);
}

static void check(int err, char *out)
{
	if (err) {
		FUZZ_CHECK(err == GCERR_INPUT && !out);
		FUZZ_CHECK(gc_error_message() != NULL);
	} else {
		FUZZ_CHECK(out);
		check_canonical(out);
	}
	free(out);
	gc_error_clear();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstring(data, size), *nl, *out, *esc;
	int err;

	err = url_canonicalize(s, &out);
	check(err, out);
	err = url_from_console(s, &out);
	check(err, out);

	(void)url_is_uuid(s);
	(void)url_host_is_loopback(s);
	esc = url_escape(s);
	FUZZ_CHECK(esc && strlen(esc) <= strlen(s) * 3);
	free(esc);

	nl = strchr(s, '\n');
	if (nl) {
		*nl = '\0';
		err = url_from_git(s, nl + 1, &out);
		check(err, out);
	}
	free(s);
	return 0;
}
