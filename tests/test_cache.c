/* SPDX-License-Identifier: MIT */
/* Cache policy against a fake keystore injected through the interface. */
#include "autoconfig.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "token/cache.h"
#include "lib/common.h"
#include "tests/fake_tier.h"

static struct fake_tier fake;
#define fake_cache (fake.tier)
static const char *S = "https://api.example.com";
static const char *FP = "0123456789abcdef";
static const char *CTX = "00112233445566aa";

static int reset(void **state)
{
	(void)state;
	if (!fake.tier.name)
		fake_tier_init(&fake, "fake", false);
	fake_tier_clear(&fake);
	tier_bind(&fake.tier, CTX);
	return 0;
}

static struct cached_token make(const char *token, int64_t expires, int64_t lifetime)
{
	struct cached_token t = { 0 };

	t.token = (char *)token;
	t.expires_at = expires;
	t.lifetime = lifetime;
	memcpy(t.fingerprint, FP, 17);
	t.generation = 0x2a;
	memcpy(t.context, CTX, 17);
	return t;
}

static void test_payload_round_trip(void **state)
{
	struct cached_token in = make("tok.abc-123", 1800000000, 3600), out;
	char *p = cache_format_payload(&in);

	(void)state;
	assert_string_equal(p, "gc2 1800000000 3600 0123456789abcdef 000000000000002a 00112233445566aa tok.abc-123");
	assert_int_equal(cache_parse_payload(p, &out), 0);
	assert_string_equal(out.token, "tok.abc-123");
	assert_int_equal(out.expires_at, 1800000000);
	assert_int_equal(out.lifetime, 3600);
	assert_string_equal(out.fingerprint, FP);
	assert_int_equal(out.generation, 0x2a);
	assert_string_equal(out.context, CTX);
	cached_token_release(&out);
	secret_free(p);
}

static void test_payload_rejects_junk(void **state)
{
	static const char *bad[] = {
		"", "gc2", "gc1 1800000000 3600 0123456789abcdef tok",	/* the old format */
		"gc2 x 2 0123456789abcdef 1 00112233445566aa t",
		"gc2 1800000000 3600 0123456789abcde 1 00112233445566aa t",	/* short fingerprint */
		"gc2 1800000000 3600 0123456789abcdef 1 00112233445566a t",	/* short context */
		"gc2 1800000000 3600 0123456789abcdef zz 00112233445566aa t",	/* bad generation */
		"gc2 1800000000 3600 0123456789abcdef 1 00112233445566aa",	/* no token */
		"gc2 1800000000 3600 0123456789abcdef 1 00112233445566aa tok en",	/* space in token */
		"gc2 1800000000 3600 0123456789abcdef 1 00112233445566aa tok\n",
		"gc2 0 3600 0123456789abcdef 1 00112233445566aa tok",
		"gc2 1800000000 -1 0123456789abcdef 1 00112233445566aa tok",
	};
	struct cached_token out;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(cache_parse_payload(bad[i], &out), GCERR_FAIL);
		assert_null(out.token);
	}
}

static void test_put_get_per_organization(void **state)
{
	struct cached_token a = make("tok-a", 1800000000, 3600);
	struct cached_token b = make("tok-b", 1800000100, 3600);
	struct cached_token out;

	(void)state;
	assert_int_equal(cache_put(&fake_cache, S, "", NULL, &a), 0);
	assert_int_equal(cache_put(&fake_cache, S, "acme", NULL, &b), 0);
	assert_int_equal(cache_get(&fake_cache, S, "", NULL, &out), 0);
	assert_string_equal(out.token, "tok-a");
	cached_token_release(&out);
	assert_int_equal(cache_get(&fake_cache, S, "acme", NULL, &out), 0);
	assert_string_equal(out.token, "tok-b");
	assert_int_equal(out.expires_at, 1800000100);
	cached_token_release(&out);
	assert_int_equal(cache_get(&fake_cache, S, "other", NULL, &out), GCERR_NOTFOUND);
	assert_int_equal(cache_get(&fake_cache, "https://x.example", "", NULL, &out), GCERR_NOTFOUND);
}

static void test_corrupt_item_is_a_miss(void **state)
{
	struct cached_token out;

	(void)state;
	fake.tier.put(&fake.tier, S, "", NULL, "not a payload", 0);
	assert_int_equal(cache_get(&fake_cache, S, "", NULL, &out), GCERR_NOTFOUND);
	assert_null(out.token);
}

static void test_erase_one_and_all(void **state)
{
	struct cached_token a = make("tok-a", 1800000000, 3600), out;

	(void)state;
	cache_put(&fake_cache, S, "", NULL, &a);
	cache_put(&fake_cache, S, "acme", NULL, &a);
	cache_put(&fake_cache, "https://other.example", "", NULL, &a);
	assert_int_equal(cache_erase(&fake_cache, S, "acme"), 0);
	assert_int_equal(cache_get(&fake_cache, S, "acme", NULL, &out), GCERR_NOTFOUND);
	assert_int_equal(cache_get(&fake_cache, S, "", NULL, &out), 0);
	cached_token_release(&out);
	assert_int_equal(cache_erase(&fake_cache, S, NULL), 0);
	assert_int_equal(cache_get(&fake_cache, S, "", NULL, &out), GCERR_NOTFOUND);
	assert_int_equal(cache_get(&fake_cache, "https://other.example", "", NULL, &out), 0);
	cached_token_release(&out);
}

static void test_list_hides_tokens(void **state)
{
	struct cached_token a = make("tok-a", 1800000000, 3600);
	struct cache_entry *list = NULL;
	size_t n = 0;

	(void)state;
	cache_put(&fake_cache, S, "acme", NULL, &a);
	fake.tier.put(&fake.tier, S, "junk", NULL, "garbage", 0);
	assert_int_equal(cache_list(&fake_cache, S, &list, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].organization, "acme");
	assert_string_equal(list[0].tier, "fake");
	assert_null(list[0].meta.token);
	assert_int_equal(list[0].meta.expires_at, 1800000000);
	cache_entry_free_list(list, n);
}

static void test_find_token(void **state)
{
	struct cached_token a = make("tok-a", 1800000000, 3600);
	char *org;

	(void)state;
	cache_put(&fake_cache, S, "acme", NULL, &a);
	org = cache_find_token(&fake_cache, S, "tok-a");
	assert_non_null(org);
	assert_string_equal(org, "acme");
	free(org);
	assert_null(cache_find_token(&fake_cache, S, "tok-b"));
	assert_null(cache_find_token(&fake_cache, S, ""));
	assert_null(cache_find_token(&fake_cache, "https://other.example", "tok-a"));
}

static void test_no_tier_is_no_cache(void **state)
{
	struct cached_token a = make("tok-a", 1800000000, 3600), out;

	(void)state;
	assert_int_equal(cache_put(NULL, S, "", NULL, &a), 0);
	assert_int_equal(cache_get(NULL, S, "", NULL, &out), GCERR_NOTFOUND);
	assert_int_equal(cache_erase(NULL, S, NULL), 0);
	assert_null(cache_find_token(NULL, S, "tok-a"));
}

static enum cache_verdict judge(const struct cached_token *t, const char *fp, uint64_t gen,
				 int64_t now, long margin, long min_ttl)
{
	struct cache_want w = { fp, gen, now, margin, min_ttl };

	return cache_judge(t, &w);
}

static void test_judge(void **state)
{
	struct cached_token t = make("tok", 10000, 3600);

	(void)state;
	/* fresh until expires - 300 */
	assert_int_equal(judge(&t, FP, 0x2a, 9699, 300, 0), CACHE_FRESH);
	assert_int_equal(judge(&t, FP, 0x2a, 9700, 300, 0), CACHE_STALE);
	assert_int_equal(judge(&t, FP, 0x2a, 9999, 300, 0), CACHE_STALE);
	/* never after expiry */
	assert_int_equal(judge(&t, FP, 0x2a, 10000, 300, 0), CACHE_UNUSABLE);
	assert_int_equal(judge(&t, FP, 0x2a, 10000, 0, 0), CACHE_UNUSABLE);
	/* another credential's token */
	assert_int_equal(judge(&t, "fedcba9876543210", 0x2a, 5000, 300, 0), CACHE_UNUSABLE);
	/* one obtained before the last store or erase */
	assert_int_equal(judge(&t, FP, 0x2b, 5000, 300, 0), CACHE_UNUSABLE);
	assert_int_equal(judge(&t, FP, 0, 5000, 300, 0), CACHE_UNUSABLE);
	/* margin capped at half a 100 s lifetime: fresh for 50 s */
	t.lifetime = 100;
	assert_int_equal(judge(&t, FP, 0x2a, 9949, 300, 0), CACHE_FRESH);
	assert_int_equal(judge(&t, FP, 0x2a, 9950, 300, 0), CACHE_STALE);
	/* a minimum time to live makes a token with less left stale */
	t.lifetime = 3600;
	assert_int_equal(judge(&t, FP, 0x2a, 8000, 300, 1999), CACHE_FRESH);
	assert_int_equal(judge(&t, FP, 0x2a, 8000, 300, 2001), CACHE_STALE);
}

/* a tier several contexts share (a keystore) serves each only its own */
static void test_other_context_is_a_miss(void **state)
{
	struct cached_token a = make("tok-a", 1800000000, 3600), out;
	struct cache_entry *list = NULL;
	size_t n = 0;
	char *org;

	(void)state;
	assert_int_equal(cache_put(&fake_cache, S, "", NULL, &a), 0);
	tier_bind(&fake.tier, "ffeeddccbbaa9988");
	assert_int_equal(cache_get(&fake_cache, S, "", NULL, &out), GCERR_NOTFOUND);
	assert_null(out.token);
	assert_int_equal(cache_list(&fake_cache, S, &list, &n), 0);
	assert_int_equal(n, 0);
	free(list);
	assert_null(cache_find_token(&fake_cache, S, "tok-a"));
	/* cache_put writes the tier's context, whatever the token says */
	assert_int_equal(cache_put(&fake_cache, S, "", NULL, &a), 0);
	assert_int_equal(cache_get(&fake_cache, S, "", NULL, &out), 0);
	assert_string_equal(out.context, "ffeeddccbbaa9988");
	cached_token_release(&out);
	tier_bind(&fake.tier, CTX);
	org = cache_find_token(&fake_cache, S, "tok-a");
	assert_null(org);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_payload_round_trip, reset, reset),
		cmocka_unit_test_setup_teardown(test_payload_rejects_junk, reset, reset),
		cmocka_unit_test_setup_teardown(test_put_get_per_organization, reset, reset),
		cmocka_unit_test_setup_teardown(test_corrupt_item_is_a_miss, reset, reset),
		cmocka_unit_test_setup_teardown(test_erase_one_and_all, reset, reset),
		cmocka_unit_test_setup_teardown(test_list_hides_tokens, reset, reset),
		cmocka_unit_test_setup_teardown(test_find_token, reset, reset),
		cmocka_unit_test_setup_teardown(test_no_tier_is_no_cache, reset, reset),
		cmocka_unit_test_setup_teardown(test_judge, reset, reset),
		cmocka_unit_test_setup_teardown(test_other_context_is_a_miss, reset, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
