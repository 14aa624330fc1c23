/* SPDX-License-Identifier: MIT */
/*
 * The token policy (token/policy.c) against a fake credential store, a fake
 * tier and a fake transport injected through struct token_source and
 * struct token_tier; the locks are the real ones, in a private directory.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keystore/stack.h"
#include "lib/common.h"
#include "tests/fake_tier.h"
#include "token/lock.h"
#include "token/policy.h"

#define S "https://api.example.com"

static struct fake_tier tier, fallback;

/* the fake world: one stored credential (or none) and a token server */
static struct {
	const char *secret;		/* NULL: nothing stored */
	const char *organization;	/* stored default */
	int reads;			/* credential reads */
	int exchanges;
	char last_org[64];		/* organization of the last exchange */
	int fail;			/* the next exchange fails with this */
	int64_t lifetime;		/* of tokens handed out; 0: expiry unknown */
	/* called inside an exchange, as another process would act meanwhile */
	void (*meanwhile)(void);
	char tokens[4][32];		/* the tokens handed out */
	uint64_t generation;		/* the server's write generation */
} w;

static int fake_credential(void *ctx, struct gc_credential *out)
{
	(void)ctx;
	w.reads++;
	memset(out, 0, sizeof(*out));
	if (!w.secret)
		return gc_error(GCERR_NOTFOUND, "no credential stored for '%s'", S);
	out->server = xstrdup(S);
	out->kind = xstrdup("api-key");
	out->username = xstrdup("");
	out->organization = xstrdup(w.organization ? w.organization : "");
	out->secret = xstrdup(w.secret);
	return 0;
}

static int fake_exchange(void *ctx, const struct gc_credential *cred, const char *org,
			 struct exchange_result *res)
{
	int n = w.exchanges++;

	(void)ctx;
	memset(res, 0, sizeof(*res));
	snprintf(w.last_org, sizeof(w.last_org), "%s", org);
	if (w.meanwhile)
		w.meanwhile();
	if (w.fail) {
		int err = w.fail;

		w.fail = 0;
		return gc_error(err, "the fake server failed");
	}
	snprintf(w.tokens[n % 4], sizeof(w.tokens[0]), "tok-%d-%s", n, cred->secret);
	res->access_token = xstrdup(w.tokens[n % 4]);
	if (w.lifetime) {
		res->lifetime = w.lifetime;
		res->expires_at = (int64_t)time(NULL) + w.lifetime;
	}
	return 0;
}

static uint64_t fake_generation(void *ctx)
{
	(void)ctx;
	return w.generation;
}

static const struct token_tier *fake_fallback(void *ctx)
{
	(void)ctx;
	return &fallback.tier;
}

static struct token_policy policy(void)
{
	struct token_policy p = {
		.server = S,
		.margin = 300,
		.timeout = 5,
		.tier = &tier.tier,
		.src = { .credential = fake_credential, .exchange = fake_exchange,
			 .generation = fake_generation, .fallback = fake_fallback },
	};

	return p;
}

static int setup(void **state)
{
	static char dir[] = "/tmp/gc-test-policy-XXXXXX";

	(void)state;
	if (!getenv("XDG_RUNTIME_DIR") || strcmp(getenv("XDG_RUNTIME_DIR"), dir)) {
		assert_non_null(mkdtemp(dir));
		setenv("XDG_RUNTIME_DIR", dir, 1);
	}
	memset(&w, 0, sizeof(w));
	w.secret = "key-one";
	w.lifetime = 3600;
	fake_tier_init(&tier, "fake", true);
	fake_tier_init(&fallback, "fallback", false);
	tier_bind(&tier.tier, "00112233445566aa");
	tier_bind(&fallback.tier, "00112233445566aa");
	gc_error_clear();
	return 0;
}

/* token_obtain, asserting success; the token printed is returned (static) */
static const char *obtain(const struct token_policy *p, const struct token_request *r)
{
	static char got[64];
	struct gc_credential cred;
	struct cached_token tok;

	assert_int_equal(token_obtain(p, r, &cred, &tok), 0);
	snprintf(got, sizeof(got), "%s", tok.token);
	cached_token_release(&tok);
	credential_release(&cred);
	return got;
}

static void test_miss_then_hit_without_reading_the_store(void **state)
{
	struct token_policy p = policy();
	struct token_request r = { 0 };

	(void)state;
	assert_string_equal(obtain(&p, &r), "tok-0-key-one");
	assert_int_equal(w.exchanges, 1);
	assert_int_equal(tier.puts, 1);
	assert_int_equal(w.reads, 1);
	/* the summary lets the hit skip the credential store */
	assert_string_equal(obtain(&p, &r), "tok-0-key-one");
	assert_int_equal(w.exchanges, 1);
	assert_int_equal(w.reads, 1);
}

static void test_refresh_ignores_the_cache(void **state)
{
	struct token_policy p = policy();
	struct token_request r = { 0 }, fresh = { .refresh = true };

	(void)state;
	obtain(&p, &r);
	assert_string_equal(obtain(&p, &fresh), "tok-1-key-one");
	assert_int_equal(w.exchanges, 2);
	assert_string_equal(obtain(&p, &r), "tok-1-key-one");
}

static void test_another_credential_never_gets_the_token(void **state)
{
	struct token_policy p = policy();
	struct token_request r = { 0 };

	(void)state;
	p.env_credential = true;	/* fingerprint every time, as with GALILEO_API_KEY */
	obtain(&p, &r);
	w.secret = "key-two";
	assert_string_equal(obtain(&p, &r), "tok-1-key-two");
	assert_int_equal(w.exchanges, 2);
}

/* a token of key-one cached with left seconds to live, received with lifetime */
static void cache_token(const char *token, int64_t left, int64_t lifetime)
{
	struct gc_credential cred = { .kind = "api-key", .username = "", .secret = "key-one" };
	struct cached_token tok = { .token = (char *)token, .lifetime = lifetime };

	tok.expires_at = (int64_t)time(NULL) + left;
	token_fingerprint(&cred, tok.fingerprint);
	assert_int_equal(cache_put(&tier.tier, S, "", &cred, &tok), 0);
}

static void test_stale_token_survives_a_failed_refresh(void **state)
{
	struct token_policy p = policy();
	struct token_request r = { 0 }, longer = { .min_ttl = 600 };
	struct gc_credential cred;
	struct cached_token tok;

	(void)state;
	cache_token("tok-stale", 100, 3600);	/* inside the 300 s margin */
	w.fail = GCERR_NETWORK;
	assert_string_equal(obtain(&p, &r), "tok-stale");
	assert_int_equal(w.exchanges, 1);
	/* not when the caller asked for longer than it has left */
	w.fail = GCERR_NETWORK;
	assert_int_equal(token_obtain(&p, &longer, &cred, &tok), GCERR_NETWORK);
	gc_error_clear();
	/* a rejection is not papered over */
	w.fail = GCERR_REJECTED;
	assert_int_equal(token_obtain(&p, &r, &cred, &tok), GCERR_REJECTED);
	assert_null(tok.token);
	/* and a successful refresh replaces it */
	assert_string_equal(obtain(&p, &r), "tok-3-key-one");
}

/* what a store or erase does first, under any runtime directory */
static void bump_generation(void)
{
	w.generation += 7;
}

static void login_with_another_key(void)
{
	bump_generation();
	w.secret = "key-two";
	w.meanwhile = NULL;
}

/*
 * galileo-credential(1) TOKEN LIFETIME: no token of a replaced credential is
 * cached or served
 */
static void test_store_during_refresh_discards_its_token(void **state)
{
	struct token_policy p = policy();
	struct token_request r = { 0 };

	(void)state;
	w.meanwhile = login_with_another_key;
	assert_string_equal(obtain(&p, &r), "tok-1-key-two");
	assert_int_equal(w.exchanges, 2);
	assert_int_equal(w.reads, 3);	/* read, again under the write lock, again for the new one */
	assert_int_equal(tier.puts, 1);
	assert_non_null(strstr(fake_tier_payload(&tier, S, ""), "tok-1-key-two"));
}

/* an erase of nothing, or the same key stored again: the token is still good */
static void test_no_op_write_during_refresh_keeps_its_token(void **state)
{
	struct token_policy p = policy();
	struct token_request r = { 0 };

	(void)state;
	w.meanwhile = bump_generation;
	assert_string_equal(obtain(&p, &r), "tok-0-key-one");
	assert_int_equal(w.exchanges, 1);
	assert_int_equal(tier.puts, 1);
}

static void logout(void)
{
	bump_generation();
	w.secret = NULL;
}

static void test_logout_during_refresh_leaves_nothing(void **state)
{
	struct token_policy p = policy();
	struct token_request r = { 0 };
	struct gc_credential cred;
	struct cached_token tok;

	(void)state;
	w.meanwhile = logout;
	assert_int_equal(token_obtain(&p, &r, &cred, &tok), GCERR_NOTFOUND);
	assert_null(tok.token);
	assert_int_equal(tier.puts, 0);
	assert_null(fake_tier_payload(&tier, S, ""));
}

/*
 * A logout under another runtime directory shares no lock with a refresh:
 * its erase may come before the refresh writes back.  The token written
 * carries the old generation and is never served, not even from the
 * summary.
 */
static void test_token_of_an_older_generation_is_never_served(void **state)
{
	struct token_policy p = policy();
	struct token_request r = { 0 };
	struct gc_credential cred;
	struct cached_token tok;

	(void)state;
	obtain(&p, &r);
	assert_int_equal(tier.puts, 1);
	logout();
	assert_int_equal(token_obtain(&p, &r, &cred, &tok), GCERR_NOTFOUND);
	assert_null(tok.token);
	assert_int_equal(w.exchanges, 1);
	gc_error_clear();
	/* a new login: its token, not the old one */
	w.secret = "key-two";
	assert_string_equal(obtain(&p, &r), "tok-1-key-two");
	/* the same key stored again: the token is tagged anew, one exchange */
	bump_generation();
	assert_string_equal(obtain(&p, &r), "tok-2-key-two");
	assert_string_equal(obtain(&p, &r), "tok-2-key-two");
	assert_int_equal(w.exchanges, 3);
}

static void test_full_tier_falls_back(void **state)
{
	struct token_policy p = policy();
	struct token_request r = { 0 };

	(void)state;
	tier.full = true;
	obtain(&p, &r);
	assert_int_equal(tier.puts, 0);
	assert_int_equal(fallback.puts, 1);
	/* the next call finds it there: no second exchange */
	assert_string_equal(obtain(&p, &r), "tok-0-key-one");
	assert_int_equal(w.exchanges, 1);
}

static void test_unknown_expiry_is_not_cached(void **state)
{
	struct token_policy p = policy();
	struct token_request r = { 0 };

	(void)state;
	w.lifetime = 0;
	obtain(&p, &r);
	obtain(&p, &r);
	assert_int_equal(w.exchanges, 2);
	assert_int_equal(tier.puts, 0);
}

static void test_min_ttl(void **state)
{
	struct token_policy p = policy();
	struct token_request r = { 0 }, longer = { .min_ttl = 7200 };

	(void)state;
	obtain(&p, &r);
	assert_string_equal(obtain(&p, &longer), "tok-1-key-one");
	assert_int_equal(w.exchanges, 2);
}

static void test_organization_order(void **state)
{
	struct token_policy p = policy();
	struct token_request r = { .org_config = "from-config" };

	(void)state;
	p.tier = NULL;
	obtain(&p, &r);
	assert_string_equal(w.last_org, "from-config");
	w.organization = "stored";
	obtain(&p, &r);
	assert_string_equal(w.last_org, "stored");
	r.org = "asked";
	obtain(&p, &r);
	assert_string_equal(w.last_org, "asked");
}

static void test_nothing_stored(void **state)
{
	struct token_policy p = policy();
	struct token_request r = { 0 };
	struct gc_credential cred;
	struct cached_token tok;

	(void)state;
	w.secret = NULL;
	assert_int_equal(token_obtain(&p, &r, &cred, &tok), GCERR_NOTFOUND);
	assert_int_equal(w.exchanges, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_miss_then_hit_without_reading_the_store, setup),
		cmocka_unit_test_setup(test_refresh_ignores_the_cache, setup),
		cmocka_unit_test_setup(test_another_credential_never_gets_the_token, setup),
		cmocka_unit_test_setup(test_stale_token_survives_a_failed_refresh, setup),
		cmocka_unit_test_setup(test_store_during_refresh_discards_its_token, setup),
		cmocka_unit_test_setup(test_logout_during_refresh_leaves_nothing, setup),
		cmocka_unit_test_setup(test_no_op_write_during_refresh_keeps_its_token, setup),
		cmocka_unit_test_setup(test_token_of_an_older_generation_is_never_served, setup),
		cmocka_unit_test_setup(test_full_tier_falls_back, setup),
		cmocka_unit_test_setup(test_unknown_expiry_is_not_cached, setup),
		cmocka_unit_test_setup(test_min_ttl, setup),
		cmocka_unit_test_setup(test_organization_order, setup),
		cmocka_unit_test_setup(test_nothing_stored, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
