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

static int reset(void **state)
{
	(void)state;
	if (!fake.tier.name)
		fake_tier_init(&fake, "fake", false);
	fake_tier_clear(&fake);
	return 0;
}

static struct cached_token make(const char *token, int64_t expires, int64_t lifetime)
{
	struct cached_token t = { 0 };

	t.token = (char *)token;
	t.expires_at = expires;
	t.lifetime = lifetime;
	memcpy(t.fingerprint, FP, 17);
	return t;
}

static void test_payload_round_trip(void **state)
{
	struct cached_token in = make("tok.abc-123", 1800000000, 3600), out;
	char *p = cache_format_payload(&in);

	(void)state;
	assert_string_equal(p, "gc1 1800000000 3600 0123456789abcdef tok.abc-123");
	assert_int_equal(cache_parse_payload(p, &out), 0);
	assert_string_equal(out.token, "tok.abc-123");
	assert_int_equal(out.expires_at, 1800000000);
	assert_int_equal(out.lifetime, 3600);
	assert_string_equal(out.fingerprint, FP);
	cached_token_release(&out);
	secret_free(p);
}

static void test_payload_rejects_junk(void **state)
{
	static const char *bad[] = {
		"", "gc1", "gc2 1 2 0123456789abcdef t", "gc1 x 2 0123456789abcdef t",
		"gc1 1800000000 3600 0123456789abcde t",	/* short fingerprint */
		"gc1 1800000000 3600 0123456789abcdef",	/* no token */
		"gc1 1800000000 3600 0123456789abcdef tok en",	/* space in token */
		"gc1 1800000000 3600 0123456789abcdef tok\n",
		"gc1 0 3600 0123456789abcdef tok",
		"gc1 1800000000 -1 0123456789abcdef tok",
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
	assert_int_equal(cache_put(&fake_cache, S, "", &a), 0);
	assert_int_equal(cache_put(&fake_cache, S, "acme", &b), 0);
	assert_int_equal(cache_get(&fake_cache, S, "", &out), 0);
	assert_string_equal(out.token, "tok-a");
	cached_token_release(&out);
	assert_int_equal(cache_get(&fake_cache, S, "acme", &out), 0);
	assert_string_equal(out.token, "tok-b");
	assert_int_equal(out.expires_at, 1800000100);
	cached_token_release(&out);
	assert_int_equal(cache_get(&fake_cache, S, "other", &out), GCERR_NOTFOUND);
	assert_int_equal(cache_get(&fake_cache, "https://x.example", "", &out), GCERR_NOTFOUND);
}

static void test_corrupt_item_is_a_miss(void **state)
{
	struct cached_token out;

	(void)state;
	fake.tier.put(&fake.tier, S, "", "not a payload", 0);
	assert_int_equal(cache_get(&fake_cache, S, "", &out), GCERR_NOTFOUND);
	assert_null(out.token);
}

static void test_erase_one_and_all(void **state)
{
	struct cached_token a = make("tok-a", 1800000000, 3600), out;

	(void)state;
	cache_put(&fake_cache, S, "", &a);
	cache_put(&fake_cache, S, "acme", &a);
	cache_put(&fake_cache, "https://other.example", "", &a);
	assert_int_equal(cache_erase(&fake_cache, S, "acme"), 0);
	assert_int_equal(cache_get(&fake_cache, S, "acme", &out), GCERR_NOTFOUND);
	assert_int_equal(cache_get(&fake_cache, S, "", &out), 0);
	cached_token_release(&out);
	assert_int_equal(cache_erase(&fake_cache, S, NULL), 0);
	assert_int_equal(cache_get(&fake_cache, S, "", &out), GCERR_NOTFOUND);
	assert_int_equal(cache_get(&fake_cache, "https://other.example", "", &out), 0);
	cached_token_release(&out);
}

static void test_list_hides_tokens(void **state)
{
	struct cached_token a = make("tok-a", 1800000000, 3600);
	struct cache_entry *list = NULL;
	size_t n = 0;

	(void)state;
	cache_put(&fake_cache, S, "acme", &a);
	fake.tier.put(&fake.tier, S, "junk", "garbage", 0);
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
	cache_put(&fake_cache, S, "acme", &a);
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
	assert_int_equal(cache_put(NULL, S, "", &a), 0);
	assert_int_equal(cache_get(NULL, S, "", &out), GCERR_NOTFOUND);
	assert_int_equal(cache_erase(NULL, S, NULL), 0);
	assert_null(cache_find_token(NULL, S, "tok-a"));
}

static void test_judge(void **state)
{
	struct cached_token t = make("tok", 10000, 3600);

	(void)state;
	/* fresh until expires - 300 */
	assert_int_equal(cache_judge(&t, FP, 9699, 300, 0), CACHE_FRESH);
	assert_int_equal(cache_judge(&t, FP, 9700, 300, 0), CACHE_STALE);
	assert_int_equal(cache_judge(&t, FP, 9999, 300, 0), CACHE_STALE);
	/* never after expiry */
	assert_int_equal(cache_judge(&t, FP, 10000, 300, 0), CACHE_UNUSABLE);
	assert_int_equal(cache_judge(&t, FP, 10000, 0, 0), CACHE_UNUSABLE);
	/* another credential's token */
	assert_int_equal(cache_judge(&t, "fedcba9876543210", 5000, 300, 0), CACHE_UNUSABLE);
	/* margin capped at half a 100 s lifetime: fresh for 50 s */
	t.lifetime = 100;
	assert_int_equal(cache_judge(&t, FP, 9949, 300, 0), CACHE_FRESH);
	assert_int_equal(cache_judge(&t, FP, 9950, 300, 0), CACHE_STALE);
	/* a minimum time to live makes a token with less left stale */
	t.lifetime = 3600;
	assert_int_equal(cache_judge(&t, FP, 8000, 300, 1999), CACHE_FRESH);
	assert_int_equal(cache_judge(&t, FP, 8000, 300, 2001), CACHE_STALE);
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
