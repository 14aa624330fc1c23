/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/codec.h"
#include "lib/common.h"
#include "lib/tokentime.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* 2026-11-28T05:00:00Z */
#define T0 INT64_C(1795842000)
#define EPOCH_MAX INT64_C(253402300799)

struct time_case {
	const char *in;
	int64_t want;
};

static void test_rfc3339_valid(void **state)
{
	static const struct time_case cases[] = {
		{ "2026-11-28T05:00:00Z", T0 },
		/* lower case t and z, and a space for T */
		{ "2026-11-28t05:00:00z", T0 },
		{ "2026-11-28 05:00:00Z", T0 },
		/* no offset means UTC */
		{ "2026-11-28T05:00:00", T0 },
		/* fractional seconds are truncated */
		{ "2026-11-28T05:00:00.123456Z", T0 },
		{ "2026-11-28T05:00:00.999999999", T0 },
		{ "2026-11-28T05:00:00.5+00:00", T0 },
		/* offsets both ways, and across a day */
		{ "2026-11-28T07:30:00+02:30", T0 },
		{ "2026-11-28T00:00:00-05:00", T0 },
		{ "2026-11-28T05:00:00-00:00", T0 },
		{ "2026-11-28T23:30:00-01:00", INT64_C(1795912200) },
		{ "2026-11-29T04:59:59+23:59", T0 - 1 - 23 * 3600 - 59 * 60 + 24 * 3600 },
		/* edges of the range and of the calendar */
		{ "1970-01-01T00:00:00Z", 0 },
		{ "2024-02-29T00:00:00Z", INT64_C(1709164800) },
		{ "2000-02-29T12:00:00Z", INT64_C(951825600) },
		{ "2038-01-19T03:14:08Z", INT64_C(2147483648) },
		{ "9999-12-31T23:59:59Z", EPOCH_MAX },
		/* a leap second is the first second of the next minute */
		{ "2016-12-31T23:59:60Z", INT64_C(1483228800) },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		int64_t t = -42;

		if (tokentime_parse_rfc3339(cases[i].in, &t))
			fail_msg("'%s' refused", cases[i].in);
		if (t != cases[i].want)
			fail_msg("'%s' gave %lld, want %lld", cases[i].in,
				 (long long)t, (long long)cases[i].want);
	}
}

static void test_rfc3339_invalid(void **state)
{
	static const char *const cases[] = {
		"2026-13-28T05:00:00Z",		/* month 13 */
		"2026-00-28T05:00:00Z",
		"2026-02-30T05:00:00Z",		/* Feb 30 */
		"2026-02-29T05:00:00Z",		/* not a leap year */
		"2100-02-29T05:00:00Z",
		"2026-04-31T05:00:00Z",
		"2026-11-00T05:00:00Z",
		"2026-11-32T05:00:00Z",
		"2026-11-28T24:00:00Z",
		"2026-11-28T05:60:00Z",
		"2026-11-28T05:00:61Z",
		"1969-12-31T23:59:59Z",		/* before the epoch */
		"10000-01-01T00:00:00Z",
		"2026-11-28T05:00:00+24:00",
		"2026-11-28T05:00:00+02:60",
		"2026-11-28T05:00:00+0200",
		"2026-11-28T05:00:00+02",
		"2026-11-28T05:00:00Zx",	/* trailing junk */
		"2026-11-28T05:00:00Z ",
		"2026-11-28T05:00:00+02:00Z",
		"2026-11-28T05:00:00.Z",	/* empty fraction */
		"2026-11-28T05:00:00,5Z",
		"2026-11-28T05:00Z",
		"2026-11-28",
		"2026-11-28X05:00:00Z",
		"2026-1-28T05:00:00Z",
		"+2026-11-28T05:00:00Z",
		" 2026-11-28T05:00:00Z",
		"26-11-28T05:00:00Z",
		"2026-11-28T05:00:00ZZ",
		"garbage",
		"",
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		int64_t t = -42;

		if (tokentime_parse_rfc3339(cases[i], &t) != GCERR_FAIL)
			fail_msg("'%s' accepted as %lld", cases[i], (long long)t);
		assert_int_equal(t, -42);
	}
	assert_int_equal(tokentime_parse_rfc3339(NULL, &(int64_t){ 0 }), GCERR_FAIL);
}

static void test_http_date(void **state)
{
	static const struct time_case cases[] = {
		/* the three formats of RFC 9110 section 5.6.7 */
		{ "Sun, 06 Nov 1994 08:49:37 GMT", INT64_C(784111777) },
		{ "Sunday, 06-Nov-94 08:49:37 GMT", INT64_C(784111777) },
		{ "Sun Nov  6 08:49:37 1994", INT64_C(784111777) },
		{ "Sat, 28 Nov 2026 05:00:00 GMT", T0 },
		{ "Saturday, 28-Nov-26 05:00:00 GMT", T0 },
		{ "Sat Nov 28 05:00:00 2026", T0 },
		{ "Thu Nov 26 05:00:00 2026", T0 - 2 * 86400 },
		/* header whitespace around the value */
		{ "  Sat, 28 Nov 2026 05:00:00 GMT\r\n", T0 },
	};
	static const char *const bad[] = {
		"Sat, 28 Nov 2026 05:00:00 UTC",
		"Sat, 28 Nov 2026 05:00:00",
		"Sat, 8 Nov 2026 05:00:00 GMT",
		"Sat, 28 Foo 2026 05:00:00 GMT",
		"Sat, 31 Nov 2026 05:00:00 GMT",
		"Sat, 28 Nov 2026 25:00:00 GMT",
		"Sat, 28 Nov 1969 05:00:00 GMT",
		"Sat, 28 Nov 2026 05:00:00 GMT junk",
		"Xyz, 28 Nov 2026 05:00:00 GMT",
		"Saturday, 28-Nov-2026 05:00:00 GMT",
		"Saturday, 28 Nov 2026 05:00:00 GMT",
		"Sat Nov 8 05:00:00 2026",
		"Sat Nov 28 05:00:00 26",
		"Sat Nov 28 05:00:00 2026 GMT",
		"2026-11-28T05:00:00Z",
		"",
	};
	size_t i;
	int64_t t;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		t = -42;
		if (tokentime_parse_http_date(cases[i].in, &t))
			fail_msg("'%s' refused", cases[i].in);
		if (t != cases[i].want)
			fail_msg("'%s' gave %lld, want %lld", cases[i].in,
				 (long long)t, (long long)cases[i].want);
	}
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		t = -42;
		if (tokentime_parse_http_date(bad[i], &t) != GCERR_FAIL)
			fail_msg("'%s' accepted as %lld", bad[i], (long long)t);
	}
	assert_int_equal(tokentime_parse_http_date(NULL, &t), GCERR_FAIL);
}

static void test_local_expiry(void **state)
{
	(void)state;
	/* no Date header: taken as is */
	assert_int_equal(tokentime_local_expiry(T0, -1, T0 - 3600), T0);
	assert_int_equal(tokentime_local_expiry(T0, -1, T0 + 999999), T0);
	/* clocks agree */
	assert_int_equal(tokentime_local_expiry(T0, T0 - 3600, T0 - 3600), T0);
	/* local clock 10 minutes ahead of the server: expiry moves later */
	assert_int_equal(tokentime_local_expiry(T0, T0 - 3600, T0 - 3000), T0 + 600);
	/* local clock 10 minutes behind: earlier, never stretched */
	assert_int_equal(tokentime_local_expiry(T0, T0 - 3600, T0 - 4200), T0 - 600);
	/* the lifetime, not the server's wall clock, is what counts */
	assert_int_equal(tokentime_local_expiry(T0 + 1800 + 600, T0 + 1800, T0), T0 + 600);
	assert_int_equal(tokentime_local_expiry(T0 - 1800 + 600, T0 - 1800, T0), T0 + 600);
	/* up to an hour off either way is believed */
	assert_int_equal(tokentime_local_expiry(T0 + 3600 + 60, T0 + 3600, T0), T0 + 60);
	assert_int_equal(tokentime_local_expiry(T0 - 3600 + 60, T0 - 3600, T0), T0 + 60);
	/* more is not: a Date of 1970 does not stretch 3 s into decades */
	assert_int_equal(tokentime_local_expiry(3, 0, T0), 3);
	assert_int_equal(tokentime_local_expiry(T0 + 3, 0, T0), T0 + 3);
	assert_int_equal(tokentime_local_expiry(T0 + 3, T0 + 3601, T0), T0 + 3);
	assert_int_equal(tokentime_local_expiry(T0 + 3, T0 - 3601, T0), T0 + 3);
	assert_false(tokentime_date_believed(T0 - 3601, T0));
	assert_false(tokentime_date_believed(T0 + 3601, T0));
	assert_true(tokentime_date_believed(T0 - 3600, T0));
	assert_true(tokentime_date_believed(T0 + 3600, T0));
	assert_false(tokentime_date_believed(-1, T0));
	assert_false(tokentime_date_believed(INT64_MAX, 0));
	/* absurd values saturate instead of wrapping */
	assert_true(tokentime_local_expiry(INT64_MAX, 0, INT64_MAX - 5) == INT64_MAX);
	assert_true(tokentime_local_expiry(INT64_MIN, INT64_MAX, 0) == INT64_MIN);
}

static void test_freshness(void **state)
{
	(void)state;
	/* margin 300 of a one-hour token */
	assert_true(tokentime_is_fresh(T0 - 3600, T0, 3600, 300));
	assert_true(tokentime_is_fresh(T0 - 301, T0, 3600, 300));
	assert_false(tokentime_is_fresh(T0 - 300, T0, 3600, 300));
	assert_false(tokentime_is_fresh(T0 - 1, T0, 3600, 300));
	/* margin capped at half the lifetime: a 2-minute token is used for 1 */
	assert_true(tokentime_is_fresh(T0 - 61, T0, 120, 300));
	assert_false(tokentime_is_fresh(T0 - 60, T0, 120, 300));
	assert_true(tokentime_is_fresh(T0 - 301, T0, 601, 300));
	assert_false(tokentime_is_fresh(T0 - 300, T0, 601, 300));
	/* margin 0: fresh up to the last second, never at or after expiry */
	assert_true(tokentime_is_fresh(T0 - 1, T0, 3600, 0));
	assert_false(tokentime_is_fresh(T0, T0, 3600, 0));
	assert_false(tokentime_is_fresh(T0 + 1, T0, 3600, 0));
	assert_true(tokentime_is_fresh(T0 - 1, T0, 1, 300));
	assert_false(tokentime_is_fresh(T0, T0, 1, 300));
	/* a negative margin counts as 0, never as extra time */
	assert_true(tokentime_is_fresh(T0 - 1, T0, 3600, -1000));
	assert_false(tokentime_is_fresh(T0, T0, 3600, -1000));
	/* an unknown lifetime leaves the whole margin */
	assert_true(tokentime_is_fresh(T0 - 301, T0, 0, 300));
	assert_false(tokentime_is_fresh(T0 - 300, T0, 0, 300));
	assert_false(tokentime_is_fresh(T0 - 300, T0, -5, 300));
	/* extremes do not overflow */
	assert_true(tokentime_is_fresh(INT64_MIN, INT64_MAX, INT64_MAX, 300));
	assert_false(tokentime_is_fresh(INT64_MAX, INT64_MAX, INT64_MAX, 300));
	assert_false(tokentime_is_fresh(INT64_MAX, INT64_MIN, 0, 0));
}

/* base64url without padding, as JWTs carry it */
static char *b64url(const char *json)
{
	char *s = codec_base64((const unsigned char *)json, strlen(json)), *p;

	for (p = s; *p; p++) {
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
		else if (*p == '=')
			*p = '\0';
	}
	return s;
}

static int jwt_exp_of(const char *payload_json, int64_t *exp)
{
	char *payload = b64url(payload_json), *jwt;
	int ret;

	jwt = xasprintf("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.%s.c2lnbmF0dXJl", payload);
	ret = tokentime_jwt_exp(jwt, exp);
	free(jwt);
	free(payload);
	return ret;
}

static void test_jwt_exp(void **state)
{
	static const char *const bad_json[] = {
		"{\"sub\":\"alice\",\"iat\":1516239022}",	/* no exp */
		"{\"exp\":\"1795842000\"}",			/* not numeric */
		"{\"exp\":true}",
		"{\"exp\":null}",
		"{\"exp\":[1795842000]}",
		"{\"exp\":-1}",
		"{\"exp\":253402300800}",			/* past year 9999 */
		"{\"exp\":1e300}",
		"{\"exp\":1795842000,\"exp\":1}",		/* ambiguous */
		"[1795842000]",
		"1795842000",
		"{\"exp\":1795842000",
		"",
	};
	static const char *const bad_jwt[] = {
		"",
		"abc",
		"a.b",
		"a.b.c.d",
		"eyJhbGciOiJub25lIn0..sig",
		/* bad base64url in the payload */
		"eyJhbGciOiJub25lIn0.eyJleHAiOjE3OTU4NDIwMDB9$.sig",
		"eyJhbGciOiJub25lIn0.eyJleHAiOjE3OTU4NDIwMDB9+.sig",
		"eyJhbGciOiJub25lIn0.e.sig",
	};
	int64_t exp;
	size_t i;

	(void)state;
	exp = -42;
	assert_int_equal(jwt_exp_of("{\"sub\":\"alice\",\"exp\":1795842000}", &exp), 0);
	assert_int_equal(exp, T0);
	/* NumericDate may have a fraction */
	exp = -42;
	assert_int_equal(jwt_exp_of("{\"exp\":1795842000.75}", &exp), 0);
	assert_int_equal(exp, T0);
	/* a literal token: {"exp":1795842000} with and without padding */
	exp = -42;
	assert_int_equal(tokentime_jwt_exp("eyJhbGciOiJub25lIn0.eyJleHAiOjE3OTU4NDIwMDB9.sig", &exp), 0);
	assert_int_equal(exp, T0);
	exp = -42;
	assert_int_equal(tokentime_jwt_exp("eyJhbGciOiJub25lIn0.eyJleHAiOjE3OTU4NDIwMDB9.", &exp), 0);
	assert_int_equal(exp, T0);
	exp = -42;
	assert_int_equal(tokentime_jwt_exp("h.eyJleHAiOjE3OTU4NDIwMX0=.s", &exp), 0);
	assert_int_equal(exp, INT64_C(179584201));

	for (i = 0; i < ARRAY_SIZE(bad_json); i++) {
		exp = -42;
		if (jwt_exp_of(bad_json[i], &exp) != GCERR_FAIL)
			fail_msg("payload '%s' accepted", bad_json[i]);
		assert_int_equal(exp, -42);
	}
	for (i = 0; i < ARRAY_SIZE(bad_jwt); i++) {
		exp = -42;
		if (tokentime_jwt_exp(bad_jwt[i], &exp) != GCERR_FAIL)
			fail_msg("token '%s' accepted", bad_jwt[i]);
		assert_int_equal(exp, -42);
	}
	assert_int_equal(tokentime_jwt_exp(NULL, &exp), GCERR_FAIL);
}

static void test_format(void **state)
{
	static const struct time_case cases[] = {
		{ "1970-01-01T00:00:00Z", 0 },
		{ "1994-11-06T08:49:37Z", INT64_C(784111777) },
		{ "2026-11-28T05:00:00Z", T0 },
		{ "2024-02-29T00:00:00Z", INT64_C(1709164800) },
		{ "9999-12-31T23:59:59Z", EPOCH_MAX },
		/* out of range values are clamped, never overflow buf */
		{ "1970-01-01T00:00:00Z", -1 },
		{ "1970-01-01T00:00:00Z", INT64_MIN },
		{ "9999-12-31T23:59:59Z", EPOCH_MAX + 1 },
		{ "9999-12-31T23:59:59Z", INT64_MAX },
	};
	char buf[21];
	size_t i;
	int64_t t;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		memset(buf, 'x', sizeof(buf));
		tokentime_format(cases[i].want, buf);
		assert_string_equal(buf, cases[i].in);
	}
	/* what format writes, parse reads back */
	for (t = 0; t < EPOCH_MAX; t += INT64_C(86399) * 3653 + 7) {
		int64_t back = -1;

		tokentime_format(t, buf);
		assert_int_equal(tokentime_parse_rfc3339(buf, &back), 0);
		assert_int_equal(back, t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc3339_valid),
		cmocka_unit_test(test_rfc3339_invalid),
		cmocka_unit_test(test_http_date),
		cmocka_unit_test(test_local_expiry),
		cmocka_unit_test(test_freshness),
		cmocka_unit_test(test_jwt_exp),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
