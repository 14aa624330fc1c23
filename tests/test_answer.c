/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "keystore/answer.h"

/*
 * keystore/answer.c: the one place a module's answers are judged.  Each
 * breach has its phrase; nothing well-formed is refused.
 */

#define SERVER "https://api.example.com"

static char secret[] = "gk-secret";
static char server[] = SERVER;
static char kind[] = "api-key";
static char empty[] = "";

static struct gc_credential good(void)
{
	struct gc_credential c = { server, kind, empty, empty, secret };

	return c;
}

static void test_status(void **state)
{
	(void)state;
	for (int s = GC_STATUS_SUCCESS; s <= GC_STATUS_ERROR; s++)
		assert_true(answer_status_valid(s));
	assert_false(answer_status_valid(-1));
	assert_false(answer_status_valid(5));
	assert_false(answer_status_valid(42));
}

static void test_credential(void **state)
{
	struct gc_credential c = good();
	char big[70000], ctl[] = "a\nb", bad_utf8[] = "\xc3(", other[] = "https://other.example";
	char weird_kind[] = "password";

	(void)state;
	assert_null(answer_credential(&c, SERVER));
	c.secret = NULL;
	assert_string_equal(answer_credential(&c, SERVER), "success with a NULL secret");
	c.secret = empty;
	assert_string_equal(answer_credential(&c, SERVER), "success with an empty secret");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	c.secret = big;
	assert_string_equal(answer_credential(&c, SERVER), "a secret over 65536 bytes");
	/* what the store holds is data: escaped where printed, refused where sent */
	c.secret = ctl;
	assert_null(answer_credential(&c, SERVER));
	c = good();
	c.username = ctl;
	c.organization = bad_utf8;
	assert_null(answer_credential(&c, SERVER));
	c = good();
	c.username = NULL;
	assert_non_null(strstr(answer_credential(&c, SERVER), "NULL username"));
	c = good();
	c.server = other;
	assert_string_equal(answer_credential(&c, SERVER), "the credential of another server");
	c = good();
	c.kind = weird_kind;
	assert_non_null(strstr(answer_credential(&c, SERVER), "unknown kind"));
}

static void test_list(void **state)
{
	struct gc_credential list[2] = { good(), good() };

	(void)state;
	list[0].secret = list[1].secret = NULL;
	assert_null(answer_list(list, 2));
	assert_null(answer_list(NULL, 0));
	assert_string_equal(answer_list(NULL, 1), "a NULL array with a nonzero count");
	/* an entry whose metadata cannot be read: kind "" */
	list[1].kind = empty;
	assert_null(answer_list(list, 2));
	list[1].secret = secret;
	assert_non_null(strstr(answer_list(list, 2), "with a secret"));
}

static void test_tokens(void **state)
{
	char payload[] = "gc1 1 2 0123456789abcdef tok", org[] = "acme";
	struct gc_token_item items[1] = { { org, payload } };

	(void)state;
	assert_null(answer_payload(payload));
	assert_string_equal(answer_payload(NULL), "success with a NULL payload");
	assert_string_equal(answer_payload(empty), "success with an empty payload");
	assert_null(answer_token_list(items, 1));
	items[0].organization = NULL;
	assert_non_null(answer_token_list(items, 1));
}

static void test_empty(void **state)
{
	struct gc_credential c = { 0 };

	(void)state;
	assert_true(answer_credential_empty(&c));
	c.kind = kind;
	assert_false(answer_credential_empty(&c));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_credential),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
