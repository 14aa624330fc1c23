/* SPDX-License-Identifier: MIT */
/*
 * git credential protocol: what git (or a user) writes on stdin.
 * gitproto_read() reads it from a FILE*, gitproto_parse() from memory; both
 * are fed the same bytes and must agree on the result (up to the 1 MiB
 * input limit, which they count differently past a blank line).
 *
 * fuzz-sources: lib/common.c lib/text.c helper/gitproto.c
 */
#include "autoconfig.h"

#include "tests/fuzz/fuzz.h"
#include "helper/gitproto.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static void same_request(const struct git_request *a, const struct git_request *b)
{
	FUZZ_CHECK(fuzz_same(a->protocol, b->protocol));
	FUZZ_CHECK(fuzz_same(a->host, b->host));
	FUZZ_CHECK(fuzz_same(a->path, b->path));
	FUZZ_CHECK(fuzz_same(a->url, b->url));
	FUZZ_CHECK(fuzz_same(a->username, b->username));
	FUZZ_CHECK(fuzz_same(a->password, b->password));
	FUZZ_CHECK(fuzz_same(a->credential, b->credential));
	FUZZ_CHECK(fuzz_same(a->authtype, b->authtype));
	FUZZ_CHECK(fuzz_same(a->organization_id, b->organization_id));
	FUZZ_CHECK(fuzz_same(a->organization_slug, b->organization_slug));
	FUZZ_CHECK(fuzz_same(a->kind, b->kind));
	FUZZ_CHECK(a->has_password_expiry_utc == b->has_password_expiry_utc);
	FUZZ_CHECK(a->has_ephemeral == b->has_ephemeral);
	FUZZ_CHECK(a->cap_authtype == b->cap_authtype);
}

/* what the release promises: every field gone */
static void released(const struct git_request *r)
{
	static const struct git_request empty;

	FUZZ_CHECK(memcmp(r, &empty, sizeof(empty)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct git_request from_file, from_mem;
	int err_file = 1, err_mem;
	FILE *in = NULL;

	gitproto_init(&from_file);
	gitproto_init(&from_mem);

	/* glibc refuses a zero-size fmemopen; an empty stdin is /dev/null */
	in = size ? fmemopen((void *)data, size, "r") : fopen("/dev/null", "r");
	if (in) {
		err_file = gitproto_read(&from_file, in);
		fclose(in);
		if (err_file)
			released(&from_file);
	}
	gc_error_clear();

	err_mem = gitproto_parse(&from_mem, (const char *)data, size);
	if (err_mem)
		released(&from_mem);
	gc_error_clear();

	if (in && size <= GITPROTO_MAX_INPUT) {
		FUZZ_CHECK(err_file == err_mem);
		same_request(&from_file, &from_mem);
	}

	gitproto_release(&from_file);
	gitproto_release(&from_mem);
	return 0;
}
