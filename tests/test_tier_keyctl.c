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
static const struct token_tier *kc;

static int setup(void **state)
{
	(void)state;
	snprintf(server, sizeof(server), "https://unit-%ld-%ld.invalid", (long)getpid(),
		 (long)time(NULL));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
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
	char *payload = NULL, *desc = xasprintf("galileo-credential:token:%s#acme", server);

	(void)state;
	assert_int_equal(kc->put(kc, server, "acme", "gc1 payload one", later(3600)), 0);
	assert_int_equal(kc->get(kc, server, "acme", &payload), 0);
	assert_string_equal(payload, "gc1 payload one");
	secret_free(payload);
	assert_int_equal(perm_of(desc) & 0xffff, 0);
	assert_int_equal(kc->get(kc, server, "", &payload), GCERR_NOTFOUND);
	/* a second store replaces the first */
	assert_int_equal(kc->put(kc, server, "acme", "gc1 payload two", later(3600)), 0);
	assert_int_equal(kc->get(kc, server, "acme", &payload), 0);
	assert_string_equal(payload, "gc1 payload two");
	secret_free(payload);
	free(desc);
}

static void test_expired_is_not_kept(void **state)
{
	char *payload = NULL;

	(void)state;
	assert_int_equal(kc->put(kc, server, "", "gc1 old", later(-1)), 0);
	assert_int_equal(kc->get(kc, server, "", &payload), GCERR_NOTFOUND);
	/* the kernel drops a key at its timeout */
	assert_int_equal(kc->put(kc, server, "", "gc1 short", later(1)), 0);
	sleep(2);
	assert_int_equal(kc->get(kc, server, "", &payload), GCERR_NOTFOUND);
}

static void test_list_and_erase(void **state)
{
	struct gc_token_item *list = NULL;
	struct gc_credential cred = { 0 };
	char fp[17];
	size_t n = 0;

	(void)state;
	assert_int_equal(kc->put(kc, server, "", "gc1 a", later(600)), 0);
	assert_int_equal(kc->put(kc, server, "acme", "gc1 b", later(600)), 0);
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
	assert_int_equal(kc->summary_put(&cred, "0123456789abcdef", later(600)), 0);
	assert_int_equal(kc->erase(kc, server, NULL), 0);
	assert_int_equal(kc->list(kc, server, &list, &n), 0);
	assert_int_equal(n, 0);
	free(list);
	assert_int_equal(kc->summary_get(server, &cred, fp), GCERR_NOTFOUND);
}

static void test_summary_round_trip(void **state)
{
	struct gc_credential in = { 0 }, out;
	char fp[17];
	char *desc = xasprintf("galileo-credential:credential:%s", server);

	(void)state;
	in.server = server;
	in.kind = "basic";
	in.organization = "acme";
	in.username = "some user";
	in.secret = "never kept";
	assert_int_equal(kc->summary_put(&in, "0123456789abcdef", later(600)), 0);
	assert_int_equal(kc->summary_get(server, &out, fp), 0);
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
	assert_int_equal(kc->summary_get(server, &out, fp), GCERR_NOTFOUND);
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
	};

	keys_lock();
	kc = tier_keyctl();
	if (!kc) {
		/* not a pass: say why and let the harness count it as skipped */
		fprintf(stderr, "the kernel refuses keyctl here; the keyctl tier cannot be tested\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
