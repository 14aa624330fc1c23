/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/common.h"
#include "helper/config.h"

#include <galileo-credential/module.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PATH "/etc/gc.conf"
#define ORG "123e4567-e89b-12d3-a456-426614174000"

static int parse(struct config *cfg, const char *text)
{
	gc_error_clear();
	return config_parse(cfg, PATH, text, strlen(text));
}

static void assert_empty(const struct config *cfg)
{
	assert_null(cfg->path);
	assert_null(cfg->global.server);
	assert_null(cfg->global.keystore);
	assert_null(cfg->global.token_cache);
	assert_int_equal(cfg->global.timeout, -1);
	assert_int_equal(cfg->global.refresh_margin, -1);
	assert_int_equal(cfg->nr_sections, 0);
}

static void test_all_keys(void **state)
{
	struct config cfg;

	(void)state;
	config_init(&cfg);
	assert_empty(&cfg);
	assert_int_equal(parse(&cfg,
			       "server = HTTPS://Api.Example.com:443/\n"
			       "keystore = secret-service\n"
			       "token-cache = keyctl\n"
			       "token-path = /api/v2/token\n"
			       "organization-id = " ORG "\n"
			       "refresh-margin = 120\n"
			       "timeout = 10\n"
			       "ca-file = /etc/ssl/my ca.pem\n"), 0);
	assert_string_equal(cfg.path, PATH);
	/* the default server is stored canonical */
	assert_string_equal(cfg.global.server, "https://api.example.com");
	assert_string_equal(cfg.global.keystore, "secret-service");
	assert_string_equal(cfg.global.token_cache, "keyctl");
	assert_string_equal(cfg.global.token_path, "/api/v2/token");
	assert_string_equal(cfg.global.organization_id, ORG);
	assert_null(cfg.global.organization_slug);
	assert_int_equal(cfg.global.refresh_margin, 120);
	assert_int_equal(cfg.global.timeout, 10);
	/* inner spaces of a value are kept */
	assert_string_equal(cfg.global.ca_file, "/etc/ssl/my ca.pem");
	assert_int_equal(cfg.nr_sections, 0);
	config_release(&cfg);
	assert_empty(&cfg);

	/* each token-cache value, a zero margin, an unknown keystore name */
	config_init(&cfg);
	assert_int_equal(parse(&cfg, "token-cache = none\nrefresh-margin = 0\n"
			       "keystore = no-such-backend\norganization-slug = acme\n"), 0);
	assert_string_equal(cfg.global.token_cache, "none");
	assert_int_equal(cfg.global.refresh_margin, 0);
	assert_string_equal(cfg.global.keystore, "no-such-backend");
	assert_string_equal(cfg.global.organization_slug, "acme");
	assert_int_equal(parse(&cfg, "token-cache = keystore\n"), 0);
	assert_string_equal(cfg.global.token_cache, "keystore");
	config_release(&cfg);
}

static void test_layout(void **state)
{
	struct config cfg;

	(void)state;
	config_init(&cfg);
	/* comments, blank lines, tabs, CR LF, no final newline, '=' in a value */
	assert_int_equal(parse(&cfg,
			       "# a comment\n"
			       "\n"
			       "   # indented comment = not a key\n"
			       "\t\n"
			       "\ttimeout\t=\t5\t\r\n"
			       "keystore=env\r\n"
			       "organization-slug = a=b #c\n"
			       "timeout = 7"), 0);
	assert_int_equal(cfg.global.timeout, 7);	/* the later line wins */
	assert_string_equal(cfg.global.keystore, "env");
	assert_string_equal(cfg.global.organization_slug, "a=b #c");
	config_release(&cfg);

	/* empty text is an empty config */
	config_init(&cfg);
	assert_int_equal(config_parse(&cfg, PATH, "", 0), 0);
	assert_null(cfg.global.keystore);
	assert_int_equal(cfg.nr_sections, 0);
	config_release(&cfg);

	/* only len bytes are read */
	config_init(&cfg);
	assert_int_equal(config_parse(&cfg, PATH, "timeout = 12bogus", 12), 0);
	assert_int_equal(cfg.global.timeout, 12);
	config_release(&cfg);
}

static void test_sections(void **state)
{
	struct config cfg;
	struct config_values v;

	(void)state;
	config_init(&cfg);
	assert_int_equal(parse(&cfg,
			       "server = https://api.galileo.ai\n"
			       "timeout = 30\n"
			       "refresh-margin = 300\n"
			       "keystore = secret-service\n"
			       "organization-id = " ORG "\n"
			       "\n"
			       "[ HTTPS://Galileo.Example.com:443/ ]\n"
			       "timeout = 5\n"
			       "organization-slug = acme\n"
			       "[http://localhost:8088]\n"
			       "keystore = env\n"
			       "token-path = /v2/token\n"
			       "[https://galileo.example.com]\n"
			       "ca-file = /etc/ca.pem\n"
			       "timeout = 6\n"), 0);
	/* the same server twice is one section */
	assert_int_equal(cfg.nr_sections, 2);
	assert_string_equal(cfg.sections[0].server, "https://galileo.example.com");
	assert_string_equal(cfg.sections[1].server, "http://localhost:8088");

	config_resolve(&cfg, "https://galileo.example.com", &v);
	assert_string_equal(v.server, "https://api.galileo.ai");
	assert_int_equal(v.timeout, 6);
	assert_int_equal(v.refresh_margin, 300);
	assert_string_equal(v.keystore, "secret-service");
	assert_string_equal(v.ca_file, "/etc/ca.pem");
	/* a section's organization replaces the global one, id or slug */
	assert_null(v.organization_id);
	assert_string_equal(v.organization_slug, "acme");

	config_resolve(&cfg, "http://localhost:8088", &v);
	assert_string_equal(v.keystore, "env");
	assert_string_equal(v.token_path, "/v2/token");
	assert_int_equal(v.timeout, 30);
	assert_string_equal(v.organization_id, ORG);
	assert_null(v.organization_slug);
	assert_null(v.ca_file);

	/* other servers, or none, get the global settings */
	config_resolve(&cfg, "https://other.example.com", &v);
	assert_int_equal(v.timeout, 30);
	assert_null(v.token_path);
	config_resolve(&cfg, NULL, &v);
	assert_int_equal(v.timeout, 30);
	assert_string_equal(v.organization_id, ORG);
	config_release(&cfg);

	/* an empty config resolves to nothing set */
	config_init(&cfg);
	config_resolve(&cfg, "https://api.galileo.ai", &v);
	assert_null(v.server);
	assert_null(v.keystore);
	assert_int_equal(v.timeout, -1);
	assert_int_equal(v.refresh_margin, -1);
	config_release(&cfg);
}

static void test_organization_is_one_setting(void **state)
{
	struct config cfg;

	(void)state;
	config_init(&cfg);
	assert_int_equal(parse(&cfg, "organization-id = " ORG "\norganization-slug = acme\n"), 0);
	assert_null(cfg.global.organization_id);
	assert_string_equal(cfg.global.organization_slug, "acme");
	assert_int_equal(parse(&cfg, "organization-slug = acme\norganization-id = " ORG "\n"), 0);
	assert_string_equal(cfg.global.organization_id, ORG);
	assert_null(cfg.global.organization_slug);
	config_release(&cfg);
}

static void test_errors(void **state)
{
	static const char *const cases[][2] = {
		{ "foo = bar\n", PATH ":1: unknown key 'foo'" },
		{ "# c\n\nTimeout = 5\n", PATH ":3: unknown key 'Timeout'" },
		{ "timeout = abc\n", PATH ":1: bad timeout 'abc'; use a whole number of seconds above 0" },
		{ "timeout = 0\n", PATH ":1: bad timeout '0'; use a whole number of seconds above 0" },
		{ "timeout = -5\n", PATH ":1: bad timeout '-5'; use a whole number of seconds above 0" },
		{ "timeout = 30s\n", PATH ":1: bad timeout '30s'; use a whole number of seconds above 0" },
		{ "timeout = 99999999999999999999\n",
		  PATH ":1: bad timeout '99999999999999999999'; use a whole number of seconds above 0" },
		{ "refresh-margin = -1\n", PATH ":1: bad refresh-margin '-1'; use a whole number of seconds" },
		{ "refresh-margin = 1.5\n", PATH ":1: bad refresh-margin '1.5'; use a whole number of seconds" },
		{ "refresh-margin = 0x10\n", PATH ":1: bad refresh-margin '0x10'; use a whole number of seconds" },
		{ "token-cache = redis\n", PATH ":1: unknown token-cache 'redis'; use 'keyctl', 'keystore', 'file' or 'none'" },
		{ "token-cache = Keyctl\n", PATH ":1: unknown token-cache 'Keyctl'; use 'keyctl', 'keystore', 'file' or 'none'" },
		{ "[https://x.example]\nserver = https://y.example\n",
		  PATH ":2: 'server' is only allowed before the first [section]" },
		{ "organization-id = acme\n", PATH ":1: bad organization-id 'acme'; it must be a UUID" },
		{ "token-path = v1/token\n",
		  PATH ":1: bad token-path 'v1/token'; use a path starting with '/' and without '?' or '#'" },
		{ "token-path = /v1/token?x=1\n",
		  PATH ":1: bad token-path '/v1/token?x=1'; use a path starting with '/' and without '?' or '#'" },
		{ "timeout\n", PATH ":1: expected 'key = value'" },
		{ " = 5\n", PATH ":1: expected 'key = value'" },
		{ "timeout =   \n", PATH ":1: empty value for 'timeout'" },
		{ "[https://x.example\n", PATH ":1: bad section header; use [https://server]" },
		{ "[https://x.example] # c\n", PATH ":1: bad section header; use [https://server]" },
		{ "[]\n", PATH ":1: empty server URL; give it as https://host[/prefix]" },
		{ "timeout = 5\n[http://example.com]\n",
		  PATH ":2: refused server URL 'http://example.com': http is only allowed for localhost; use https" },
		{ "server = ftp://x\n", PATH ":1: refused server URL 'ftp://x': unsupported scheme; use https" },
		/* the first error stops the parse */
		{ "a = 1\nb = 2\n", PATH ":1: unknown key 'a'" },
	};
	struct config cfg;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		config_init(&cfg);
		if (parse(&cfg, cases[i][0]) != GCERR_FAIL)
			fail_msg("accepted: %s", cases[i][0]);
		assert_string_equal(gc_error_message(), cases[i][1]);
		assert_empty(&cfg);
		config_release(&cfg);
	}

	/* a failed parse empties a config that had settings */
	config_init(&cfg);
	assert_int_equal(parse(&cfg, "timeout = 5\n[https://x.example]\ntimeout = 1\n"), 0);
	assert_int_equal(parse(&cfg, "timeout = 7\nbogus = 1\n"), GCERR_FAIL);
	assert_empty(&cfg);
	config_release(&cfg);

	/* without a path the message still has a name */
	config_init(&cfg);
	gc_error_clear();
	assert_int_equal(config_parse(&cfg, NULL, "x = 1", 5), GCERR_FAIL);
	assert_string_equal(gc_error_message(), "config:1: unknown key 'x'");
	config_release(&cfg);
	gc_error_clear();
}

static void test_nul_and_long_lines(void **state)
{
	static const char nul[] = "timeout = 5\nkeystore = a\0b\n";
	struct config cfg;
	char *text;

	(void)state;
	config_init(&cfg);
	gc_error_clear();
	assert_int_equal(config_parse(&cfg, PATH, nul, sizeof(nul) - 1), GCERR_FAIL);
	assert_string_equal(gc_error_message(), PATH ":2: NUL byte");
	assert_empty(&cfg);

	/* a 4096-byte line is fine, 4097 is not */
	text = malloc(4098 + 20);
	assert_non_null(text);
	memset(text, ' ', 4096);
	text[0] = '#';
	strcpy(text + 4096, "\ntimeout = 3\n");
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(cfg.global.timeout, 3);
	memset(text, ' ', 4097);
	text[0] = '#';
	strcpy(text + 4097, "\n");
	assert_int_equal(parse(&cfg, text), GCERR_FAIL);
	assert_string_equal(gc_error_message(), PATH ":1: line too long (over 4096 bytes)");
	assert_empty(&cfg);
	free(text);
	config_release(&cfg);
	gc_error_clear();
}

static void test_load(void **state)
{
	const char *tmp = getenv("TMPDIR");
	char *dir, *path, *missing;
	struct config cfg;
	FILE *f;

	(void)state;
	dir = xasprintf("%s/test_config.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(dir));
	path = xasprintf("%s/config", dir);
	missing = xasprintf("%s/nope/config", dir);

	/* a missing file, or a missing directory, is an empty config */
	config_init(&cfg);
	gc_error_clear();
	assert_int_equal(config_load(&cfg, path), 0);
	assert_empty(&cfg);
	assert_int_equal(config_load(&cfg, missing), 0);
	assert_int_equal(config_load(&cfg, NULL), 0);
	assert_null(gc_error_message());

	f = fopen(path, "w");
	assert_non_null(f);
	fputs("timeout = 9\n[https://x.example]\ntoken-cache = none\n", f);
	fclose(f);
	assert_int_equal(config_load(&cfg, path), 0);
	assert_string_equal(cfg.path, path);
	assert_int_equal(cfg.global.timeout, 9);
	assert_int_equal(cfg.nr_sections, 1);
	assert_string_equal(cfg.sections[0].values.token_cache, "none");
	config_release(&cfg);

	/* the error names the file it read */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("\n\ntimeout = soon\n", f);
	fclose(f);
	config_init(&cfg);
	gc_error_clear();
	assert_int_equal(config_load(&cfg, path), GCERR_FAIL);
	{
		char *want = xasprintf("%s:3: bad timeout 'soon'; use a whole number of seconds above 0", path);

		assert_string_equal(gc_error_message(), want);
		free(want);
	}
	assert_empty(&cfg);

	/* a directory is not a config file */
	gc_error_clear();
	assert_int_equal(config_load(&cfg, dir), GCERR_FAIL);
	assert_non_null(strstr(gc_error_message(), "is not a regular file"));
	config_release(&cfg);
	gc_error_clear();

	unlink(path);
	rmdir(dir);
	free(dir);
	free(path);
	free(missing);
}

/* an organization that is not UTF-8 is bad input (exit 7), wherever it is */
static void test_organization_not_utf8(void **state)
{
	static const char *const cases[][2] = {
		{ "organization-slug = caf\xe9\n", PATH ":1: organization-slug is not valid UTF-8; give it in UTF-8" },
		{ "timeout = 5\n[https://x.example]\norganization-slug = \xff\xfe\n",
		  PATH ":3: organization-slug is not valid UTF-8; give it in UTF-8" },
		{ "organization-id = \xc0\xaf\n", PATH ":1: organization-id is not valid UTF-8; give it in UTF-8" },
	};
	struct config cfg;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		config_init(&cfg);
		gc_error_clear();
		assert_int_equal(parse(&cfg, cases[i][0]), GCERR_INPUT);
		assert_string_equal(gc_error_message(), cases[i][1]);
		assert_empty(&cfg);
		config_release(&cfg);
	}
	/* UTF-8 beyond ASCII is a slug like any other */
	config_init(&cfg);
	assert_int_equal(parse(&cfg, "organization-slug = caf\xc3\xa9\n"), 0);
	assert_string_equal(cfg.global.organization_slug, "caf\xc3\xa9");
	config_release(&cfg);
	gc_error_clear();
}

static char *default_path(void)
{
	char *p = (char *)"unset";

	assert_int_equal(config_default_path(&p), 0);
	return p;
}

static void test_default_path(void **state)
{
	char *p;

	(void)state;
	setenv("GALILEO_CREDENTIAL_CONFIG", "/srv/gc.conf", 1);
	setenv("XDG_CONFIG_HOME", "/xdg", 1);
	setenv("HOME", "/home/alice", 1);
	p = default_path();
	assert_string_equal(p, "/srv/gc.conf");
	free(p);

	setenv("GALILEO_CREDENTIAL_CONFIG", "", 1);
	p = default_path();
	assert_string_equal(p, "/xdg/galileo-credential/config");
	free(p);

	/* a relative XDG_CONFIG_HOME is ignored, as the XDG spec says */
	setenv("XDG_CONFIG_HOME", "relative", 1);
	p = default_path();
	assert_string_equal(p, "/home/alice/.config/galileo-credential/config");
	free(p);

	unsetenv("GALILEO_CREDENTIAL_CONFIG");
	unsetenv("XDG_CONFIG_HOME");
	p = default_path();
	assert_string_equal(p, "/home/alice/.config/galileo-credential/config");
	free(p);

	/* so is a relative HOME: git runs helpers inside the repository */
	setenv("HOME", "repo", 1);
	assert_null(default_path());
	unsetenv("HOME");
	assert_null(default_path());
}

/* a relative GALILEO_CREDENTIAL_CONFIG is refused, never read */
static void test_default_path_relative(void **state)
{
	static const char *const relative[] = { "config", "./config", ".git/../config",
						"~/config" };
	char *p;

	(void)state;
	setenv("HOME", "/home/alice", 1);
	for (size_t i = 0; i < sizeof(relative) / sizeof(relative[0]); i++) {
		gc_error_clear();
		setenv("GALILEO_CREDENTIAL_CONFIG", relative[i], 1);
		p = (char *)"unset";
		assert_int_equal(config_default_path(&p), GCERR_FAIL);
		assert_null(p);
		assert_non_null(strstr(gc_error_message(), "is a relative path"));
		assert_non_null(strstr(gc_error_message(), relative[i]));
	}
	gc_error_clear();
	unsetenv("GALILEO_CREDENTIAL_CONFIG");
	unsetenv("HOME");
}

static const char *check_dir(const char *v)
{
	return v[0] == '/' ? NULL : "use an absolute path";
}

/* NAME.KEY lines are checked against what module NAME declares, by line */
static void test_module_options(void **state)
{
	static const struct gc_option declared[] = {
		{ "dir", check_dir }, { "status", NULL }, { NULL, NULL },
	};
	struct config cfg;

	(void)state;
	config_init(&cfg);
	assert_int_equal(parse(&cfg, "# options\nexample.dir = /tmp\n\nexample.status = x\n"
			       "other.key = y\n"), 0);
	assert_true(config_has_options(&cfg, "example"));
	assert_false(config_has_options(&cfg, "pass"));
	gc_error_clear();
	assert_int_equal(config_check_options(&cfg, "example", declared), 0);
	/* a module that declares none: any line of it names its line */
	assert_int_equal(config_check_options(&cfg, "other", NULL), GCERR_FAIL);
	assert_string_equal(gc_error_message(),
			    PATH ":5: unknown key 'other.key': the keystore 'other' takes no options");
	config_release(&cfg);

	assert_int_equal(parse(&cfg, "example.dirr = /tmp\n"), 0);
	gc_error_clear();
	assert_int_equal(config_check_options(&cfg, "example", declared), GCERR_FAIL);
	assert_string_equal(gc_error_message(),
			    PATH ":1: unknown key 'example.dirr': the keystore 'example' takes dir and status");
	config_release(&cfg);

	assert_int_equal(parse(&cfg, "server = https://a.example\nexample.dir = relative\n"), 0);
	gc_error_clear();
	assert_int_equal(config_check_options(&cfg, "example", declared), GCERR_FAIL);
	assert_string_equal(gc_error_message(),
			    PATH ":2: bad example.dir 'relative'; use an absolute path");
	config_release(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_keys),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_organization_is_one_setting),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_nul_and_long_lines),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_organization_not_utf8),
		cmocka_unit_test(test_default_path),
		cmocka_unit_test(test_default_path_relative),
		cmocka_unit_test(test_module_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
