/* SPDX-License-Identifier: MIT */
/*
 * The kernel-keyring tier against the real kernel user keyring, under a
 * server name no one else uses.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <keyutils.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "lib/common.h"
#include "token/tier.h"
#include "keystore/stack.h"

static char server[64];
static struct token_tier kc_a, kc_b;
static const struct token_tier *kc = &kc_a, *other = &kc_b;

#define CTX_A "00112233445566aa"
#define CTX_B "ffeeddccbbaa9988"

static int setup(void **state)
{
	(void)state;
	snprintf(server, sizeof(server), "https://unit-%ld-%ld.invalid", (long)getpid(),
		 (long)time(NULL));
	return 0;
}

static int teardown(void **state)
{
	char *desc = xasprintf("galileo-credential:generation:%s", server);
	long id = keyctl_search(KEY_SPEC_USER_KEYRING, "user", desc, 0);

	(void)state;
	if (id >= 0) {
		keyctl_unlink((key_serial_t)id, KEY_SPEC_USER_KEYRING);
		keyctl_invalidate((key_serial_t)id);
	}
	free(desc);
	return kc->erase(kc, server, NULL);
}

static int64_t later(int seconds)
{
	return (int64_t)time(NULL) + seconds;
}

/* the permission mask of the key described desc, or -1 */
static long perm_of(const char *desc)
{
	long id = keyctl_search(KEY_SPEC_USER_KEYRING, "user", desc, 0);
	char *d = NULL;
	unsigned long perm;

	if (id < 0 || keyctl_describe_alloc((key_serial_t)id, &d) < 0)
		return -1;
	/* "type;uid;gid;perm;description" */
	if (sscanf(d, "%*[^;];%*[^;];%*[^;];%lx;", &perm) != 1)
		perm = (unsigned long)-1;
	free(d);
	return (long)perm;
}

static void test_store_get_owner_only(void **state)
{
	char *payload = NULL, *desc = xasprintf("galileo-credential:token:" CTX_A ":%s#acme", server);

	(void)state;
	assert_int_equal(kc->put(kc, server, "acme", NULL, "gc1 payload one", later(3600)), 0);
	assert_int_equal(kc->get(kc, server, "acme", NULL, &payload), 0);
	assert_string_equal(payload, "gc1 payload one");
	secret_free(payload);
	assert_int_equal(perm_of(desc) & 0xffff, 0);
	assert_int_equal(kc->get(kc, server, "", NULL, &payload), GCERR_NOTFOUND);
	/* a second store replaces the first */
	assert_int_equal(kc->put(kc, server, "acme", NULL, "gc1 payload two", later(3600)), 0);
	assert_int_equal(kc->get(kc, server, "acme", NULL, &payload), 0);
	assert_string_equal(payload, "gc1 payload two");
	secret_free(payload);
	free(desc);
}

static void test_expired_is_not_kept(void **state)
{
	char *payload = NULL;

	(void)state;
	assert_int_equal(kc->put(kc, server, "", NULL, "gc1 old", later(-1)), 0);
	assert_int_equal(kc->get(kc, server, "", NULL, &payload), GCERR_NOTFOUND);
	/* the kernel drops a key at its timeout */
	assert_int_equal(kc->put(kc, server, "", NULL, "gc1 short", later(1)), 0);
	sleep(2);
	assert_int_equal(kc->get(kc, server, "", NULL, &payload), GCERR_NOTFOUND);
}

static void test_list_and_erase(void **state)
{
	struct gc_token_item *list = NULL;
	struct gc_credential cred = { 0 };
	char fp[17];
	size_t n = 0;

	(void)state;
	assert_int_equal(kc->put(kc, server, "", NULL, "gc1 a", later(600)), 0);
	assert_int_equal(kc->put(kc, server, "acme", NULL, "gc1 b", later(600)), 0);
	assert_int_equal(kc->list(kc, server, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_true((!strcmp(list[0].organization, "") && !strcmp(list[1].organization, "acme")) ||
		    (!strcmp(list[1].organization, "") && !strcmp(list[0].organization, "acme")));
	token_item_free_list(list, n);

	assert_int_equal(kc->erase(kc, server, "acme"), 0);
	assert_int_equal(kc->list(kc, server, &list, &n), 0);
	assert_int_equal(n, 1);
	token_item_free_list(list, n);

	cred.server = server;
	cred.kind = "api-key";
	cred.organization = "";
	cred.username = "";
	assert_int_equal(kc->summary_put(kc, &cred, "0123456789abcdef", later(600)), 0);
	assert_int_equal(kc->erase(kc, server, NULL), 0);
	assert_int_equal(kc->list(kc, server, &list, &n), 0);
	assert_int_equal(n, 0);
	free(list);
	assert_int_equal(kc->summary_get(kc, server, &cred, fp), GCERR_NOTFOUND);
}

static void test_summary_round_trip(void **state)
{
	struct gc_credential in = { 0 }, out;
	char fp[17];
	char *desc = xasprintf("galileo-credential:credential:" CTX_A ":%s", server);

	(void)state;
	in.server = server;
	in.kind = "basic";
	in.organization = "acme";
	in.username = "some user";
	in.secret = "never kept";
	assert_int_equal(kc->summary_put(kc, &in, "0123456789abcdef", later(600)), 0);
	assert_int_equal(kc->summary_get(kc, server, &out, fp), 0);
	assert_string_equal(fp, "0123456789abcdef");
	assert_string_equal(out.kind, "basic");
	assert_string_equal(out.organization, "acme");
	assert_string_equal(out.username, "some user");
	assert_null(out.secret);
	credential_release(&out);
	assert_int_equal(perm_of(desc) & 0xffff, 0);

	/* a summary someone else wrote badly is no summary */
	assert_true(add_key("user", desc, "gc1\nnot-hex\napi-key\n\n", 21,
			    KEY_SPEC_USER_KEYRING) > 0);
	assert_int_equal(kc->summary_get(kc, server, &out, fp), GCERR_NOTFOUND);
	free(desc);
}

/* galileo-credential(1) TOKEN CACHE: one context never sees another's tokens */
static void test_contexts_apart(void **state)
{
	struct gc_token_item *list = NULL;
	struct gc_credential cred = { .server = server, .kind = "api-key", .organization = "",
				      .username = "" }, out;
	char *payload = NULL, fp[17];
	size_t n = 0;

	(void)state;
	assert_int_equal(kc->put(kc, server, "", NULL, "gc2 a", later(600)), 0);
	assert_int_equal(kc->put(kc, server, "acme", NULL, "gc2 a2", later(600)), 0);
	assert_int_equal(kc->summary_put(kc, &cred, "0123456789abcdef", later(600)), 0);
	assert_int_equal(other->get(other, server, "", NULL, &payload), GCERR_NOTFOUND);
	assert_int_equal(other->summary_get(other, server, &out, fp), GCERR_NOTFOUND);
	assert_int_equal(other->list(other, server, &list, &n), 0);
	assert_int_equal(n, 0);
	free(list);
	assert_int_equal(other->put(other, server, "", NULL, "gc2 b", later(600)), 0);
	assert_int_equal(kc->get(kc, server, "", NULL, &payload), 0);
	assert_string_equal(payload, "gc2 a");
	secret_free(payload);
	/* one organization's token: in this context only */
	assert_int_equal(other->erase(other, server, ""), 0);
	assert_int_equal(kc->get(kc, server, "", NULL, &payload), 0);
	secret_free(payload);
	/* all of a server's: in every context, summaries too */
	assert_int_equal(other->put(other, server, "", NULL, "gc2 b", later(600)), 0);
	assert_int_equal(other->erase(other, server, NULL), 0);
	assert_int_equal(kc->list(kc, server, &list, &n), 0);
	assert_int_equal(n, 0);
	free(list);
	assert_int_equal(kc->summary_get(kc, server, &out, fp), GCERR_NOTFOUND);
}

/* the write generation: kept for good, owner only, updated in place */
static void test_generation(void **state)
{
	char *desc = xasprintf("galileo-credential:generation:%s", server);
	uint64_t gen = 1;
	long id;

	(void)state;
	assert_int_equal(tier_keyctl_generation(server, &gen), 0);
	assert_int_equal(gen, 0);
	assert_int_equal(tier_keyctl_set_generation(server, 0x1234abcd5678ef00ull), 0);
	assert_int_equal(tier_keyctl_generation(server, &gen), 0);
	assert_int_equal(gen, 0x1234abcd5678ef00ull);
	id = keyctl_search(KEY_SPEC_USER_KEYRING, "user", desc, 0);
	assert_true(id > 0);
	assert_int_equal(perm_of(desc) & 0xffff, 0);
	assert_int_equal(tier_keyctl_set_generation(server, 7), 0);
	assert_int_equal(keyctl_search(KEY_SPEC_USER_KEYRING, "user", desc, 0), id);
	assert_int_equal(tier_keyctl_generation(server, &gen), 0);
	assert_int_equal(gen, 7);
	/* a store's erase of the server's tokens leaves it */
	assert_int_equal(kc->erase(kc, server, NULL), 0);
	assert_int_equal(tier_keyctl_generation(server, &gen), 0);
	assert_int_equal(gen, 7);
	free(desc);
}

/*
 * Share the integration tests' lock on this UID's kernel key quota
 * (harness.keys_lock()): test_quota fills the quota while it holds the
 * lock alone, and keys added meanwhile would fail.  Held until exit.
 */
static void keys_lock(void)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/gc-it-keys-%ld.lock", (long)getuid());
	fd = open(path, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0)
		(void)flock(fd, LOCK_SH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store_get_owner_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expired_is_not_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_and_erase, setup, teardown),
		cmocka_unit_test_setup_teardown(test_summary_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_contexts_apart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_generation, setup, teardown),
	};

	keys_lock();
	if (!tier_keyctl_init(&kc_a) || !tier_keyctl_init(&kc_b)) {
		/* not a pass: say why and let the harness count it as skipped */
		fprintf(stderr, "the kernel refuses keyctl here; the keyctl tier cannot be tested\n");
		return 77;
	}
	tier_bind(&kc_a, CTX_A);
	tier_bind(&kc_b, CTX_B);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
