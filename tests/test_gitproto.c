/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/common.h"
#include "helper/gitproto.h"

static int setup(void **state)
{
	(void)state;
	gc_error_clear();
	return 0;
}

static int parse_str(struct git_request *req, const char *s)
{
	return gitproto_parse(req, s, strlen(s));
}

static void assert_message_has(const char *needle)
{
	const char *msg = gc_error_message();

	assert_non_null(msg);
	if (!strstr(msg, needle))
		fail_msg("message '%s' lacks '%s'", msg, needle);
}

static void assert_released(const struct git_request *req)
{
	assert_null(req->protocol);
	assert_null(req->host);
	assert_null(req->url);
	assert_null(req->username);
	assert_null(req->password);
	assert_null(req->credential);
	assert_false(req->cap_authtype);
	assert_false(req->has_ephemeral);
	assert_false(req->has_password_expiry_utc);
}

static const char all_keys[] =
	"capability[]=authtype\n"
	"protocol=https\n"
	"host=api.example.com:8443\n"
	"path=some/path\n"
	"url=https://api.example.com/x\n"
	"username=alice\n"
	"password=s3cret\n"
	"credential=tok\n"
	"authtype=Bearer\n"
	"organization_id=0b4c5e8e-1d7f-4f3a-9c55-0a5a3e9f2c11\n"
	"organization_slug=acme\n"
	"kind=basic\n"
	"password_expiry_utc=1700000000\n"
	"ephemeral=1\n";

static void check_all_keys(const struct git_request *req)
{
	assert_true(req->cap_authtype);
	assert_string_equal(req->protocol, "https");
	assert_string_equal(req->host, "api.example.com:8443");
	assert_string_equal(req->path, "some/path");
	assert_string_equal(req->url, "https://api.example.com/x");
	assert_string_equal(req->username, "alice");
	assert_string_equal(req->password, "s3cret");
	assert_string_equal(req->credential, "tok");
	assert_string_equal(req->authtype, "Bearer");
	assert_string_equal(req->organization_id, "0b4c5e8e-1d7f-4f3a-9c55-0a5a3e9f2c11");
	assert_string_equal(req->organization_slug, "acme");
	assert_string_equal(req->kind, "basic");
	assert_true(req->has_password_expiry_utc);
	assert_true(req->has_ephemeral);
}

static void test_parse_all_keys(void **state)
{
	struct git_request req;

	(void)state;
	gitproto_init(&req);
	assert_int_equal(parse_str(&req, all_keys), 0);
	check_all_keys(&req);
	gitproto_release(&req);
	assert_released(&req);
	/* release twice is harmless: release leaves req initialised */
	gitproto_release(&req);
}

static void test_absent_keys_null(void **state)
{
	struct git_request req;

	(void)state;
	gitproto_init(&req);
	assert_int_equal(parse_str(&req, "host=h\n"), 0);
	assert_string_equal(req.host, "h");
	assert_null(req.protocol);
	assert_null(req.password);
	assert_null(req.kind);
	assert_null(req.organization_id);
	assert_false(req.cap_authtype);
	gitproto_release(&req);
}

static void test_unknown_keys_ignored(void **state)
{
	struct git_request req;

	(void)state;
	gitproto_init(&req);
	assert_int_equal(parse_str(&req,
				   "wwwauth[]=Bearer realm=\"x\"\n"
				   "capability[]=state\n"
				   "state[]=helper:abc\n"
				   "oauth_refresh_token=zzz\n"
				   "Host=upper\n"
				   "=novalue\n"
				   "host=h\n"), 0);
	assert_string_equal(req.host, "h");
	assert_false(req.cap_authtype);
	assert_null(req.password);
	assert_null(req.credential);
	gitproto_release(&req);
}

static void test_blank_line_ends_request(void **state)
{
	struct git_request req;

	(void)state;
	gitproto_init(&req);
	/* what follows the blank line is not ours, not even bad lines */
	assert_int_equal(parse_str(&req, "host=a\n\nhost=b\ngarbage\n"), 0);
	assert_string_equal(req.host, "a");
	gitproto_release(&req);

	gitproto_init(&req);
	assert_int_equal(parse_str(&req, "\nhost=b\n"), 0);
	assert_null(req.host);
	gitproto_release(&req);
}

static void test_repeated_key_last_wins(void **state)
{
	struct git_request req;

	(void)state;
	gitproto_init(&req);
	assert_int_equal(parse_str(&req, "password=one\npassword=two\nhost=a\nhost=b\n"), 0);
	assert_string_equal(req.password, "two");
	assert_string_equal(req.host, "b");
	gitproto_release(&req);
}

static void test_values_kept_verbatim(void **state)
{
	struct git_request req;

	(void)state;
	gitproto_init(&req);
	/* CR kept as git keeps it; '=' in a value; empty value; no final LF */
	assert_int_equal(parse_str(&req, "host=a\r\npassword=x=y=\nusername=\nkind=bearer"), 0);
	assert_string_equal(req.host, "a\r");
	assert_string_equal(req.password, "x=y=");
	assert_non_null(req.username);
	assert_string_equal(req.username, "");
	assert_string_equal(req.kind, "bearer");
	gitproto_release(&req);
}

static void test_line_without_equals(void **state)
{
	struct git_request req;

	(void)state;
	gitproto_init(&req);
	assert_int_equal(parse_str(&req, "host=a\npassword=s\nnotakey\n"), GCERR_INPUT);
	assert_released(&req);
	assert_message_has("without '='");
	/* the offending line may be a secret: it is not quoted */
	assert_null(strstr(gc_error_message(), "notakey"));
}

static void test_parse_line_direct(void **state)
{
	struct git_request req;

	(void)state;
	gitproto_init(&req);
	assert_int_equal(gitproto_parse_line(&req, "username=bob-ignored", 12), 0);
	assert_string_equal(req.username, "bob");
	assert_int_equal(gitproto_parse_line(&req, "nothing", 7), GCERR_INPUT);
	gitproto_release(&req);
}

/* "password=" followed by filler up to len bytes, then "\n" */
static char *long_line(size_t len, size_t *total)
{
	char *buf = malloc(len + 2);

	assert_non_null(buf);
	memcpy(buf, "password=", 9);
	memset(buf + 9, 'k', len - 9);
	buf[len] = '\n';
	buf[len + 1] = '\0';
	*total = len + 1;
	return buf;
}

static void test_line_limit_parse(void **state)
{
	struct git_request req;
	size_t n;
	char *buf;

	(void)state;
	buf = long_line(GITPROTO_MAX_LINE, &n);
	gitproto_init(&req);
	assert_int_equal(gitproto_parse(&req, buf, n), 0);
	assert_int_equal(strlen(req.password), GITPROTO_MAX_LINE - 9);
	gitproto_release(&req);
	free(buf);

	buf = long_line(GITPROTO_MAX_LINE + 1, &n);
	gitproto_init(&req);
	assert_int_equal(gitproto_parse(&req, buf, n), GCERR_INPUT);
	assert_released(&req);
	assert_message_has("over 65535 bytes");
	free(buf);
}

static int read_buf(struct git_request *req, const char *buf, size_t n)
{
	FILE *f = fmemopen((void *)buf, n, "r");
	int err;

	assert_non_null(f);
	err = gitproto_read(req, f);
	fclose(f);
	return err;
}

static void test_line_limit_read(void **state)
{
	struct git_request req;
	size_t n;
	char *buf;

	(void)state;
	buf = long_line(GITPROTO_MAX_LINE, &n);
	gitproto_init(&req);
	assert_int_equal(read_buf(&req, buf, n), 0);
	assert_int_equal(strlen(req.password), GITPROTO_MAX_LINE - 9);
	gitproto_release(&req);
	/* also at EOF without the final newline */
	gitproto_init(&req);
	assert_int_equal(read_buf(&req, buf, n - 1), 0);
	assert_int_equal(strlen(req.password), GITPROTO_MAX_LINE - 9);
	gitproto_release(&req);
	free(buf);

	buf = long_line(GITPROTO_MAX_LINE + 1, &n);
	gitproto_init(&req);
	assert_int_equal(read_buf(&req, buf, n), GCERR_INPUT);
	assert_released(&req);
	assert_message_has("over 65535 bytes");
	free(buf);
}

static void test_nul_refused(void **state)
{
	static const char buf[] = "host=a\npass\0word=x\n";
	struct git_request req;

	(void)state;
	gitproto_init(&req);
	assert_int_equal(gitproto_parse(&req, buf, sizeof(buf) - 1), GCERR_INPUT);
	assert_released(&req);
	assert_message_has("NUL");

	gc_error_clear();
	gitproto_init(&req);
	assert_int_equal(read_buf(&req, buf, sizeof(buf) - 1), GCERR_INPUT);
	assert_released(&req);
	assert_message_has("NUL");
}

/* n bytes of "x=yyy…\n" lines, every line under the line limit */
static char *big_input(size_t n)
{
	char *buf = malloc(n);
	size_t pos = 0;

	assert_non_null(buf);
	while (pos < n) {
		size_t len = n - pos > 1000 ? 1000 : n - pos;

		memset(buf + pos, 'y', len);
		buf[pos] = 'x';
		if (len > 1)
			buf[pos + 1] = '=';
		buf[pos + len - 1] = '\n';
		pos += len;
	}
	/* the last chunk must be a key=value line too */
	assert_true(n % 1000 == 0 || n % 1000 > 2);
	return buf;
}

static void test_input_limit(void **state)
{
	struct git_request req;
	char *buf;

	(void)state;
	buf = big_input(GITPROTO_MAX_INPUT);
	gitproto_init(&req);
	assert_int_equal(gitproto_parse(&req, buf, GITPROTO_MAX_INPUT), 0);
	gitproto_release(&req);
	gitproto_init(&req);
	assert_int_equal(read_buf(&req, buf, GITPROTO_MAX_INPUT), 0);
	gitproto_release(&req);
	free(buf);

	buf = big_input(GITPROTO_MAX_INPUT + 4);
	gitproto_init(&req);
	assert_int_equal(gitproto_parse(&req, buf, GITPROTO_MAX_INPUT + 4), GCERR_INPUT);
	assert_released(&req);
	assert_message_has("over 1048576 bytes");
	gc_error_clear();
	gitproto_init(&req);
	assert_int_equal(read_buf(&req, buf, GITPROTO_MAX_INPUT + 4), GCERR_INPUT);
	assert_released(&req);
	assert_message_has("over 1048576 bytes");
	free(buf);
}

static void test_read_all_keys(void **state)
{
	struct git_request req;

	(void)state;
	gitproto_init(&req);
	assert_int_equal(read_buf(&req, all_keys, strlen(all_keys)), 0);
	check_all_keys(&req);
	gitproto_release(&req);
}

static void test_read_stops_at_blank_line(void **state)
{
	static const char buf[] = "host=a\nusername=u\n\nhost=b\n";
	struct git_request req;
	char rest[32];
	FILE *f;

	(void)state;
	f = fmemopen((void *)buf, sizeof(buf) - 1, "r");
	assert_non_null(f);
	gitproto_init(&req);
	assert_int_equal(gitproto_read(&req, f), 0);
	assert_string_equal(req.host, "a");
	assert_string_equal(req.username, "u");
	/* nothing past the blank line was consumed */
	assert_non_null(fgets(rest, sizeof(rest), f));
	assert_string_equal(rest, "host=b\n");
	fclose(f);
	gitproto_release(&req);
}

static void test_read_empty(void **state)
{
	struct git_request req;

	(void)state;
	gitproto_init(&req);
	assert_int_equal(read_buf(&req, "\n", 1), 0);
	assert_released(&req);
	gitproto_init(&req);
	assert_int_equal(read_buf(&req, "x", 0), 0);
	assert_released(&req);
}

static void test_read_bad_line(void **state)
{
	struct git_request req;

	(void)state;
	gitproto_init(&req);
	assert_int_equal(read_buf(&req, "host=a\nbad\n", 11), GCERR_INPUT);
	assert_released(&req);
}

static void test_write(void **state)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	f = open_memstream(&out, &len);
	assert_non_null(f);
	assert_int_equal(gitproto_write(f, "username", "token"), 0);
	assert_int_equal(gitproto_write(f, "password", ""), 0);
	assert_int_equal(gitproto_write(f, "capability[]", "authtype"), 0);
	assert_int_equal(gitproto_write(f, "password", "a\nhost=evil"), GCERR_INPUT);
	assert_message_has("'password'");
	assert_int_equal(gitproto_write(f, "password", "a\r"), GCERR_INPUT);
	assert_int_equal(gitproto_write(f, "bad\nkey", "v"), GCERR_INPUT);
	fclose(f);
	assert_string_equal(out, "username=token\npassword=\ncapability[]=authtype\n");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_parse_all_keys, setup),
		cmocka_unit_test_setup(test_absent_keys_null, setup),
		cmocka_unit_test_setup(test_unknown_keys_ignored, setup),
		cmocka_unit_test_setup(test_blank_line_ends_request, setup),
		cmocka_unit_test_setup(test_repeated_key_last_wins, setup),
		cmocka_unit_test_setup(test_values_kept_verbatim, setup),
		cmocka_unit_test_setup(test_line_without_equals, setup),
		cmocka_unit_test_setup(test_parse_line_direct, setup),
		cmocka_unit_test_setup(test_line_limit_parse, setup),
		cmocka_unit_test_setup(test_line_limit_read, setup),
		cmocka_unit_test_setup(test_nul_refused, setup),
		cmocka_unit_test_setup(test_input_limit, setup),
		cmocka_unit_test_setup(test_read_all_keys, setup),
		cmocka_unit_test_setup(test_read_stops_at_blank_line, setup),
		cmocka_unit_test_setup(test_read_empty, setup),
		cmocka_unit_test_setup(test_read_bad_line, setup),
		cmocka_unit_test_setup(test_write, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
