/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/common.h"
#include "lib/url.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct url_case {
	const char *in;
	const char *want;	/* NULL: refused */
};

static void check_canon(const struct url_case *c)
{
	char *out = (char *)"untouched";
	int err;

	gc_error_clear();
	err = url_canonicalize(c->in, &out);
	if (c->want) {
		if (err)
			fail_msg("'%s' refused: %s", c->in, gc_error_message());
		assert_non_null(out);
		if (strcmp(out, c->want))
			fail_msg("'%s' gave '%s', want '%s'", c->in, out, c->want);
		free(out);
	} else {
		if (err != GCERR_INPUT)
			fail_msg("'%s' accepted as '%s'", c->in, err ? "?" : out);
		assert_null(out);
		assert_non_null(gc_error_message());
	}
}

static void test_canonical_forms(void **state)
{
	static const struct url_case cases[] = {
		{ "https://api.galileo.ai", "https://api.galileo.ai" },
		/* case: scheme and host lower-cased, prefix kept */
		{ "HTTPS://API.Galileo.AI", "https://api.galileo.ai" },
		{ "https://API.example.com/Galileo/API/", "https://api.example.com/Galileo/API" },
		/* trailing slashes */
		{ "https://api.galileo.ai/", "https://api.galileo.ai" },
		{ "https://api.galileo.ai///", "https://api.galileo.ai" },
		/* default ports dropped, others kept */
		{ "https://api.galileo.ai:443", "https://api.galileo.ai" },
		{ "https://api.galileo.ai:443/", "https://api.galileo.ai" },
		{ "https://api.galileo.ai:0443", "https://api.galileo.ai" },
		{ "https://api.galileo.ai:8443", "https://api.galileo.ai:8443" },
		{ "https://api.galileo.ai:80", "https://api.galileo.ai:80" },
		{ "https://api.example.com:443/prefix/v2/", "https://api.example.com/prefix/v2" },
		/* bare host names (docker) are https */
		{ "api.galileo.ai", "https://api.galileo.ai" },
		{ "API.galileo.ai:8443/x/", "https://api.galileo.ai:8443/x" },
		{ "localhost:8088", "https://localhost:8088" },
		{ "my_host.internal", "https://my_host.internal" },
		/* http for loopback only */
		{ "http://localhost", "http://localhost" },
		{ "http://localhost:80/", "http://localhost" },
		{ "HTTP://LOCALHOST:8088", "http://localhost:8088" },
		{ "http://localhost:443", "http://localhost:443" },
		{ "http://127.0.0.1:8088", "http://127.0.0.1:8088" },
		{ "http://127.255.10.3/api/", "http://127.255.10.3/api" },
		{ "http://[::1]:8088/api", "http://[::1]:8088/api" },
		{ "HTTP://[::1]", "http://[::1]" },
		{ "https://localhost", "https://localhost" },
		/* IPv6 literals keep their brackets */
		{ "https://[2001:DB8::1]:443/", "https://[2001:db8::1]" },
		{ "https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443" },
		{ "https://[::ffff:192.0.2.1]", "https://[::ffff:192.0.2.1]" },
		{ "https://192.0.2.1:8443", "https://192.0.2.1:8443" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++)
		check_canon(&cases[i]);
}

static void test_refused(void **state)
{
	static const struct url_case cases[] = {
		/* http off loopback, including look-alikes of loopback */
		{ "http://api.galileo.ai", NULL },
		{ "http://example.com:80", NULL },
		{ "http://128.0.0.1", NULL },
		{ "http://127.0.0.1.evil.com", NULL },
		{ "http://0127.0.0.1", NULL },
		{ "http://127.0.0.01", NULL },
		{ "http://127.1", NULL },
		{ "http://127.0.0.256", NULL },
		{ "http://2130706433", NULL },
		{ "http://localhost.evil.com", NULL },
		{ "http://evil-localhost", NULL },
		{ "http://[::2]", NULL },
		{ "http://[0:0:0:0:0:0:0:1]", NULL },
		/* userinfo, query, fragment */
		{ "https://user@api.galileo.ai", NULL },
		{ "https://user:pw@api.galileo.ai/", NULL },
		{ "https://api.galileo.ai?x=1", NULL },
		{ "https://api.galileo.ai/#frag", NULL },
		{ "https://api.galileo.ai/p?q", NULL },
		{ "api.galileo.ai#x", NULL },
		/* other schemes */
		{ "ftp://api.galileo.ai", NULL },
		{ "ssh://api.galileo.ai", NULL },
		{ "httpsx://api.galileo.ai", NULL },
		{ "javascript:alert(1)", NULL },
		/* empty and garbage */
		{ "", NULL },
		{ "://", NULL },
		{ "https://", NULL },
		{ "https:///v1", NULL },
		{ "://api.galileo.ai", NULL },
		{ "garbage with spaces", NULL },
		{ "https://api galileo.ai", NULL },
		{ " https://api.galileo.ai", NULL },
		{ "https://api.galileo.ai\n", NULL },
		{ "https://api.galileo.ai/\tx", NULL },
		{ "https://ex%41mple.com", NULL },
		{ "https://a..b", NULL },
		{ "https://.a", NULL },
		{ "https://a.", NULL },
		{ "https://a!b", NULL },
		/* ports */
		{ "https://api.galileo.ai:", NULL },
		{ "https://api.galileo.ai:0", NULL },
		{ "https://api.galileo.ai:65536", NULL },
		{ "https://api.galileo.ai:99999999999999999999", NULL },
		{ "https://api.galileo.ai:8x", NULL },
		{ "https://api.galileo.ai:-1", NULL },
		{ "https://:443", NULL },
		/* broken IPv6 */
		{ "https://[::1", NULL },
		{ "https://[]", NULL },
		{ "https://[::1]x", NULL },
		{ "https://[::1]:", NULL },
		{ "https://[fe80::1%25eth0]", NULL },
		{ "https://[::g]", NULL },
	};
	char *out;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++)
		check_canon(&cases[i]);
	gc_error_clear();
	assert_int_equal(url_canonicalize(NULL, &out), GCERR_INPUT);
	assert_null(out);
}

static void test_refusal_messages(void **state)
{
	char *out, *big;

	(void)state;
	gc_error_clear();
	url_canonicalize("http://example.com", &out);
	assert_string_equal(gc_error_message(),
			    "refused server URL 'http://example.com': http is only allowed for localhost; use https");

	/* a password in the URL is never repeated back */
	gc_error_clear();
	url_canonicalize("https://bob:hunter2@api.galileo.ai", &out);
	assert_null(strstr(gc_error_message(), "hunter2"));
	assert_non_null(strstr(gc_error_message(), "user name or password"));

	gc_error_clear();
	url_canonicalize("bob:hunter2@evil://api.galileo.ai", &out);
	assert_null(strstr(gc_error_message(), "hunter2"));
	gc_error_clear();
	url_canonicalize("bob:hunter2@api.galileo.ai", &out);
	assert_null(strstr(gc_error_message(), "hunter2"));

	/* an @ in the prefix is not userinfo */
	gc_error_clear();
	assert_int_equal(url_canonicalize("https://api.galileo.ai/@team/", &out), 0);
	assert_string_equal(out, "https://api.galileo.ai/@team");
	free(out);

	/* nor is a query, which may carry a key */
	gc_error_clear();
	url_canonicalize("https://api.galileo.ai/x?api_key=hunter2", &out);
	assert_string_equal(gc_error_message(),
			    "refused server URL starting 'https://api.galileo.ai/x': a query or fragment is not allowed; give it as https://host[/prefix]");

	gc_error_clear();
	url_canonicalize("ftp://x", &out);
	assert_string_equal(gc_error_message(),
			    "refused server URL 'ftp://x': unsupported scheme; use https");

	gc_error_clear();
	url_canonicalize("https://a:99999", &out);
	assert_string_equal(gc_error_message(), "refused server URL 'https://a:99999': bad port");

	gc_error_clear();
	url_canonicalize("", &out);
	assert_string_equal(gc_error_message(), "empty server URL; give it as https://host[/prefix]");

	/* control characters never reach a message */
	gc_error_clear();
	url_canonicalize("https://a\033[2J", &out);
	assert_null(strchr(gc_error_message(), '\033'));

	/* nor bytes outside ASCII: invalid UTF-8 would reach the keystore */
	gc_error_clear();
	assert_int_equal(url_canonicalize("https://api.galileo.ai/\xff", &out), GCERR_INPUT);
	assert_string_equal(gc_error_message(),
			    "refused server URL: it contains a character outside ASCII; give the host in ASCII (punycode) and percent-encode the path");
	gc_error_clear();
	assert_int_equal(url_canonicalize("https://b\xc3\xbc" "cher.example", &out), GCERR_INPUT);

	big = malloc(5000);
	assert_non_null(big);
	memset(big, 'a', 4999);
	big[4999] = '\0';
	memcpy(big, "https://", 8);
	gc_error_clear();
	assert_int_equal(url_canonicalize(big, &out), GCERR_INPUT);
	assert_string_equal(gc_error_message(), "server URL too long (over 2048 bytes)");
	free(big);
	gc_error_clear();
}

static void test_loopback(void **state)
{
	(void)state;
	assert_true(url_host_is_loopback("localhost"));
	assert_true(url_host_is_loopback("127.0.0.1"));
	assert_true(url_host_is_loopback("127.0.0.0"));
	assert_true(url_host_is_loopback("127.255.255.255"));
	assert_true(url_host_is_loopback("[::1]"));
	assert_false(url_host_is_loopback("::1"));
	assert_false(url_host_is_loopback("127.0.0"));
	assert_false(url_host_is_loopback("127.0.0.1."));
	assert_false(url_host_is_loopback("127.0.0.1:80"));
	assert_false(url_host_is_loopback("127.0.0.1000"));
	assert_false(url_host_is_loopback("127..0.1"));
	assert_false(url_host_is_loopback("1127.0.0.1"));
	assert_false(url_host_is_loopback("localhost.localdomain"));
	assert_false(url_host_is_loopback("api.galileo.ai"));
	assert_false(url_host_is_loopback(""));
	assert_false(url_host_is_loopback(NULL));
}

static void test_console_mapping(void **state)
{
	static const struct url_case cases[] = {
		{ "https://app.galileo.ai", "https://api.galileo.ai" },
		{ "https://app.galileo.ai/", "https://api.galileo.ai" },
		{ "APP.GALILEO.AI", "https://api.galileo.ai" },
		{ "https://console.acme.rungalileo.io", "https://api.acme.rungalileo.io" },
		{ "https://Console.Acme.RunGalileo.io/", "https://api.acme.rungalileo.io" },
		/* only the first "console" in the host */
		{ "https://console.console.example.com", "https://api.console.example.com" },
		{ "https://myconsole.example.com", "https://myapi.example.com" },
		/* the port and the path are not the host */
		{ "https://console.example.com:8443/console/", "https://api.example.com:8443/console" },
		{ "https://example.com/console", "https://example.com/console" },
		/* nothing to map */
		{ "https://example.com", "https://example.com" },
		{ "https://app.galileo.ai.example.com", "https://app.galileo.ai.example.com" },
		{ "https://myapp.galileo.ai", "https://myapp.galileo.ai" },
		{ "http://localhost:3000", "http://localhost:3000" },
		/* refused like any server URL */
		{ "http://console.example.com", NULL },
		{ "https://u:p@console.example.com", NULL },
		{ "", NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		char *out = (char *)"untouched";
		int err;

		gc_error_clear();
		err = url_from_console(cases[i].in, &out);
		if (cases[i].want) {
			assert_int_equal(err, 0);
			if (strcmp(out, cases[i].want))
				fail_msg("'%s' gave '%s', want '%s'", cases[i].in, out, cases[i].want);
			free(out);
		} else {
			assert_int_equal(err, GCERR_INPUT);
			assert_null(out);
		}
	}
	gc_error_clear();
}

static void test_from_git(void **state)
{
	static const struct {
		const char *protocol, *host, *want;
	} cases[] = {
		{ "https", "api.galileo.ai", "https://api.galileo.ai" },
		{ "https", "api.galileo.ai:443", "https://api.galileo.ai" },
		{ "https", "api.galileo.ai:8443", "https://api.galileo.ai:8443" },
		{ "HTTPS", "Api.Galileo.AI", "https://api.galileo.ai" },
		{ "http", "localhost:8088", "http://localhost:8088" },
		{ "http", "127.0.0.1", "http://127.0.0.1" },
		{ "https", "[::1]:8443", "https://[::1]:8443" },
		{ "http", "api.galileo.ai", NULL },
		{ NULL, "api.galileo.ai", NULL },
		{ "", "api.galileo.ai", NULL },
		{ "https", NULL, NULL },
		{ "https", "", NULL },
		{ "ssh", "api.galileo.ai", NULL },
		{ "https://x", "api.galileo.ai", NULL },
		/* host= is host[:port]; a path or userinfo smuggled in is refused */
		{ "https", "api.galileo.ai/prefix", NULL },
		{ "https", "evil.com/@api.galileo.ai", NULL },
		{ "https", "user@api.galileo.ai", NULL },
		{ "https", "api.galileo.ai?x", NULL },
		{ "https", "api.galileo.ai#x", NULL },
		{ "https", "api.galileo.ai\\x", NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		char *out = (char *)"untouched";
		int err;

		gc_error_clear();
		err = url_from_git(cases[i].protocol, cases[i].host, &out);
		if (cases[i].want) {
			assert_int_equal(err, 0);
			assert_string_equal(out, cases[i].want);
			free(out);
		} else {
			if (err != GCERR_INPUT)
				fail_msg("case %zu accepted", i);
			assert_null(out);
			assert_non_null(gc_error_message());
		}
	}
	gc_error_clear();
}

static void test_uuid(void **state)
{
	(void)state;
	assert_true(url_is_uuid("123e4567-e89b-12d3-a456-426614174000"));
	assert_true(url_is_uuid("123E4567-E89B-12D3-A456-426614174000"));
	assert_true(url_is_uuid("00000000-0000-0000-0000-000000000000"));
	assert_true(url_is_uuid("aBcDeF01-2345-6789-abcd-EF0123456789"));
	assert_false(url_is_uuid("123e4567-e89b-12d3-a456-42661417400"));	/* 35 */
	assert_false(url_is_uuid("123e4567-e89b-12d3-a456-4266141740000"));	/* 37 */
	assert_false(url_is_uuid("123e4567e89b12d3a456426614174000"));
	assert_false(url_is_uuid("123e4567-e89b-12d3-a4564-26614174000"));
	assert_false(url_is_uuid("123e4567-e89b-12d3-a456_426614174000"));
	assert_false(url_is_uuid("g23e4567-e89b-12d3-a456-426614174000"));
	assert_false(url_is_uuid("{123e4567-e89b-12d3-a456-426614174000}"));
	assert_false(url_is_uuid("123e4567-e89b-12d3-a456-426614174000\n"));
	assert_false(url_is_uuid(" 123e4567-e89b-12d3-a456-426614174000"));
	assert_false(url_is_uuid("acme"));
	assert_false(url_is_uuid(""));
	assert_false(url_is_uuid(NULL));
}

static void test_escape(void **state)
{
	static const char *const cases[][2] = {
		{ "", "" },
		{ "acme-corp_2.0~x", "acme-corp_2.0~x" },
		{ "ABCxyz0189", "ABCxyz0189" },
		{ "a b&c=d/e", "a%20b%26c%3Dd%2Fe" },
		{ "100%+?#", "100%25%2B%3F%23" },
		{ "\xc3\xa9", "%C3%A9" },
		{ "\x01\x7f\xff", "%01%7F%FF" },
	};
	size_t i;
	char *s;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		s = url_escape(cases[i][0]);
		assert_string_equal(s, cases[i][1]);
		free(s);
	}
	assert_null(url_escape(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canonical_forms),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_refusal_messages),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_console_mapping),
		cmocka_unit_test(test_from_git),
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
