/* SPDX-License-Identifier: MIT */
/*
 * The sealed file tier against a real private directory and the real
 * seal module (from GALILEO_CREDENTIAL_MODULE_DIR, as make check sets it).
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keystore/stack.h"
#include "lib/common.h"
#include "token/cache.h"
#include "token/policy.h"
#include "token/tier.h"

#define S "https://api.example.com"
#define CTX_A "00112233445566aa"
#define CTX_B "ffeeddccbbaa9988"

static char cache_home[40];
static char dir[80];
static struct token_tier ta, tb;
static struct gc_credential alice = { .server = S, .kind = "api-key", .username = "",
				      .organization = "", .secret = "gk-alice-key-0123" };
static struct gc_credential carol = { .server = S, .kind = "api-key", .username = "",
				      .organization = "", .secret = "gk-carol-key-4567" };

static struct cached_token token_of(const char *token, const struct gc_credential *cred)
{
	struct cached_token t = { .token = (char *)token, .lifetime = 3600, .generation = 5 };

	t.expires_at = (int64_t)time(NULL) + 3600;
	token_fingerprint(cred, t.fingerprint);
	return t;
}

/* the one token file in the directory: its name, or "" */
static const char *only_file(void)
{
	static char name[256];
	struct dirent *e;
	DIR *d = opendir(dir);

	name[0] = '\0';
	assert_non_null(d);
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "token-", 6))
			snprintf(name, sizeof(name), "%s", e->d_name);
	closedir(d);
	return name;
}

/* the whole file into buf; its length */
static size_t slurp(const char *name, char *buf, size_t max)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, max, f);
	fclose(f);
	free(path);
	return n;
}

static void spill(const char *name, const char *buf, size_t n)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, n, f), n);
	fclose(f);
	free(path);
}

static void test_sealed_round_trip_private(void **state)
{
	struct cached_token t = token_of("tok.secret-one", &alice), out;
	char buf[4096], *path;
	struct stat st;
	size_t n;

	(void)state;
	assert_int_equal(cache_put(&ta, S, "acme", &alice, &t), 0);
	assert_int_equal(cache_get(&ta, S, "acme", &alice, &out), 0);
	assert_string_equal(out.token, "tok.secret-one");
	assert_int_equal(out.generation, 5);
	cached_token_release(&out);
	/* 0600 in a 0700 directory, and the token nowhere in the clear */
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_string_not_equal(only_file(), "");
	n = slurp(only_file(), buf, sizeof(buf));
	assert_null(memmem(buf, n, "tok.secret-one", 14));
	assert_null(memmem(buf, n, "secret-one", 10));
	assert_null(memmem(buf, n, alice.secret, strlen(alice.secret)));
	path = xasprintf("%s/%s", dir, only_file());
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	free(path);
	/* without the credential's secret, nothing */
	assert_int_equal(cache_get(&ta, S, "acme", NULL, &out), GCERR_NOTFOUND);
}

static void test_other_credential_or_context_gets_nothing(void **state)
{
	struct cached_token t = token_of("tok.alice", &alice), out;

	(void)state;
	assert_int_equal(cache_put(&ta, S, "", &alice, &t), 0);
	assert_int_equal(cache_get(&ta, S, "", &carol, &out), GCERR_NOTFOUND);
	assert_int_equal(cache_get(&tb, S, "", &alice, &out), GCERR_NOTFOUND);
	/* each context its own file: B's token does not replace A's */
	t = token_of("tok.carol", &carol);
	assert_int_equal(cache_put(&tb, S, "", &carol, &t), 0);
	assert_int_equal(cache_get(&ta, S, "", &alice, &out), 0);
	assert_string_equal(out.token, "tok.alice");
	cached_token_release(&out);
	assert_int_equal(cache_get(&tb, S, "", &carol, &out), 0);
	assert_string_equal(out.token, "tok.carol");
	cached_token_release(&out);
}

static void test_tampered_or_cut_is_a_miss(void **state)
{
	struct cached_token t = token_of("tok.whole", &alice), out;
	char buf[4096], name[256];
	size_t n;

	(void)state;
	assert_int_equal(cache_put(&ta, S, "", &alice, &t), 0);
	snprintf(name, sizeof(name), "%s", only_file());
	n = slurp(name, buf, sizeof(buf));
	buf[n - 3] ^= 0x01;		/* in the box */
	spill(name, buf, n);
	assert_int_equal(cache_get(&ta, S, "", &alice, &out), GCERR_NOTFOUND);
	buf[n - 3] ^= 0x01;
	spill(name, buf, n - 1);	/* cut short */
	assert_int_equal(cache_get(&ta, S, "", &alice, &out), GCERR_NOTFOUND);
	buf[6] = buf[6] == 'a' ? 'b' : 'a';	/* the header, bound to the box */
	spill(name, buf, n);
	assert_int_equal(cache_get(&ta, S, "", &alice, &out), GCERR_NOTFOUND);
	spill(name, "", 0);
	assert_int_equal(cache_get(&ta, S, "", &alice, &out), GCERR_NOTFOUND);
}

static void test_list_find_erase(void **state)
{
	struct cached_token t = token_of("tok.listed", &alice);
	struct cache_entry *list = NULL;
	size_t n = 0;
	char *org;

	(void)state;
	assert_int_equal(cache_put(&ta, S, "acme", &alice, &t), 0);
	assert_int_equal(cache_put(&tb, S, "", &alice, &t), 0);
	assert_int_equal(cache_list(&ta, S, &list, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].organization, "acme");
	assert_string_equal(list[0].tier, "file");
	assert_int_equal(list[0].meta.expires_at, t.expires_at);
	cache_entry_free_list(list, n);
	org = cache_find_token(&ta, S, "tok.listed");
	assert_non_null(org);
	assert_string_equal(org, "acme");
	free(org);
	assert_null(cache_find_token(&ta, S, "tok.other"));
	/* one organization's in this context; all of the server's everywhere */
	assert_int_equal(cache_erase(&ta, S, "acme"), 0);
	assert_null(cache_find_token(&ta, S, "tok.listed"));
	assert_non_null(org = cache_find_token(&tb, S, "tok.listed"));
	free(org);
	assert_int_equal(cache_erase(&ta, S, NULL), 0);
	assert_null(cache_find_token(&tb, S, "tok.listed"));
	assert_string_equal(only_file(), "");
}

static void test_generation_file(void **state)
{
	uint64_t gen = 1;

	(void)state;
	assert_int_equal(tier_file_generation(S, &gen), 0);
	assert_int_equal(gen, 0);
	assert_int_equal(tier_file_set_generation(S, 0xfeedface12345678ull), 0);
	assert_int_equal(tier_file_generation(S, &gen), 0);
	assert_int_equal(gen, 0xfeedface12345678ull);
}

static int clean(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'/*", dir);
	int err = system(cmd);

	(void)state;
	free(cmd);
	return err ? -1 : 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_sealed_round_trip_private, clean),
		cmocka_unit_test_teardown(test_other_credential_or_context_gets_nothing, clean),
		cmocka_unit_test_teardown(test_tampered_or_cut_is_a_miss, clean),
		cmocka_unit_test_teardown(test_list_find_erase, clean),
		cmocka_unit_test_teardown(test_generation_file, clean),
	};
	char *cmd;
	int status;

	strcpy(cache_home, "/tmp/gc-test-file-XXXXXX");
	if (!mkdtemp(cache_home))
		return 1;
	setenv("XDG_CACHE_HOME", cache_home, 1);
	snprintf(dir, sizeof(dir), "%s/galileo-credential", cache_home);
	tier_file_init(&ta);
	tier_bind(&ta, CTX_A);
	tier_file_init(&tb);
	tier_bind(&tb, CTX_B);
	status = cmocka_run_group_tests(tests, NULL, NULL);
	cmd = xasprintf("rm -rf '%s'", cache_home);
	if (system(cmd) != 0)
		status = 1;
	free(cmd);
	return status;
}
