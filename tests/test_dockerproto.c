/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "lib/common.h"
#include "helper/dockerproto.h"

static int setup(void **state)
{
	(void)state;
	gc_error_clear();
	return 0;
}

static int store(const char *in, char **s, char **u, char **k)
{
	return dockerproto_parse_store(in, strlen(in), s, u, k);
}

static void test_store_ok(void **state)
{
	char *s, *u, *k;

	(void)state;
	assert_int_equal(store("{\"ServerURL\":\"https://api.example.com\","
			       "\"Username\":\"alice\",\"Secret\":\"k-1\\u00e9\","
			       "\"Extra\":[1,2]}\n", &s, &u, &k), 0);
	assert_string_equal(s, "https://api.example.com");
	assert_string_equal(u, "alice");
	assert_string_equal(k, "k-1\xc3\xa9");
	free(s);
	free(u);
	secret_free(k);
}

static void test_store_empty_username(void **state)
{
	char *s, *u, *k;

	(void)state;
	/* allowed here: the caller prints docker's "no credentials username" */
	assert_int_equal(store("{\"ServerURL\":\"h\",\"Username\":\"\",\"Secret\":\"x\"}",
			       &s, &u, &k), 0);
	assert_string_equal(u, "");
	free(s);
	free(u);
	secret_free(k);
}

static void expect_store_refused(const char *in)
{
	char *s = (char *)1, *u = (char *)1, *k = (char *)1;

	gc_error_clear();
	assert_int_equal(store(in, &s, &u, &k), GCERR_INPUT);
	assert_null(s);
	assert_null(u);
	assert_null(k);
	assert_non_null(gc_error_message());
	/* the message never echoes what was sent */
	assert_null(strstr(gc_error_message(), "topsecret"));
}

static void test_store_refused(void **state)
{
	(void)state;
	expect_store_refused("");
	expect_store_refused("not json topsecret");
	expect_store_refused("{\"ServerURL\":\"h\",\"Username\":\"u\",\"Secret\":\"topsecret\"");
	expect_store_refused("[\"h\",\"u\",\"topsecret\"]");
	expect_store_refused("\"topsecret\"");
	/* missing members */
	expect_store_refused("{\"Username\":\"u\",\"Secret\":\"topsecret\"}");
	expect_store_refused("{\"ServerURL\":\"h\",\"Secret\":\"topsecret\"}");
	expect_store_refused("{\"ServerURL\":\"h\",\"Username\":\"u\"}");
	/* wrong types */
	expect_store_refused("{\"ServerURL\":1,\"Username\":\"u\",\"Secret\":\"topsecret\"}");
	expect_store_refused("{\"ServerURL\":\"h\",\"Username\":null,\"Secret\":\"topsecret\"}");
	expect_store_refused("{\"ServerURL\":\"h\",\"Username\":\"u\",\"Secret\":[\"topsecret\"]}");
	expect_store_refused("{\"ServerURL\":\"h\",\"Username\":\"u\",\"Secret\":true}");
	/* member names are case-sensitive, as in docker */
	expect_store_refused("{\"serverurl\":\"h\",\"Username\":\"u\",\"Secret\":\"topsecret\"}");
	/* two secrets: refused rather than picking one */
	expect_store_refused("{\"ServerURL\":\"h\",\"Username\":\"u\",\"Secret\":\"a\",\"Secret\":\"topsecret\"}");
	/* a NUL inside a string */
	expect_store_refused("{\"ServerURL\":\"h\",\"Username\":\"u\",\"Secret\":\"top\\u0000secret\"}");
	/* trailing garbage */
	expect_store_refused("{\"ServerURL\":\"h\",\"Username\":\"u\",\"Secret\":\"topsecret\"} x");
}

static void test_store_oversize(void **state)
{
	char *s, *u, *k;
	char *buf;

	(void)state;
	buf = malloc(DOCKERPROTO_MAX_INPUT + 1);
	assert_non_null(buf);
	memset(buf, ' ', DOCKERPROTO_MAX_INPUT + 1);
	assert_int_equal(dockerproto_parse_store(buf, DOCKERPROTO_MAX_INPUT + 1, &s, &u, &k),
			 GCERR_INPUT);
	assert_null(s);
	free(buf);
}

static void expect_server(const char *in, size_t len, const char *want)
{
	char *s = (char *)1;

	gc_error_clear();
	if (want) {
		assert_int_equal(dockerproto_parse_server(in, len, &s), 0);
		assert_string_equal(s, want);
		free(s);
	} else {
		assert_int_equal(dockerproto_parse_server(in, len, &s), GCERR_INPUT);
		assert_null(s);
		assert_non_null(gc_error_message());
	}
}

#define SERVER(in, want) expect_server(in, sizeof(in) - 1, want)

static void test_server(void **state)
{
	(void)state;
	SERVER("https://api.example.com", "https://api.example.com");
	SERVER("https://api.example.com\n", "https://api.example.com");
	SERVER("api.example.com\r\n", "api.example.com");
	SERVER("  \thttps://h:8443/p \n\n", "https://h:8443/p");
	SERVER("", NULL);
	SERVER("\n", NULL);
	SERVER("  \r\n ", NULL);
	SERVER("https://a\nhttps://b\n", NULL);
	SERVER("https://a\rb", NULL);
	SERVER("https://a\0b", NULL);
	SERVER("https://a\n\0", NULL);
}

/* parse out with jansson; the caller json_decref()s */
static json_t *load(const char *out)
{
	json_error_t jerr;
	json_t *root;

	assert_non_null(out);
	root = json_loads(out, 0, &jerr);
	if (!root)
		fail_msg("output '%s' is not JSON: %s", out, jerr.text);
	assert_true(json_is_object(root));
	return root;
}

static void assert_member(json_t *root, const char *name, const char *want)
{
	json_t *v = json_object_get(root, name);

	assert_true(json_is_string(v));
	assert_string_equal(json_string_value(v), want);
}

static void test_format_get(void **state)
{
	char *out;
	json_t *root;

	(void)state;
	out = dockerproto_format_get("api.example.com", "alice", "tok\"en\\/\x01");
	root = load(out);
	assert_int_equal(json_object_size(root), 3);
	assert_member(root, "ServerURL", "api.example.com");
	assert_member(root, "Username", "alice");
	assert_member(root, "Secret", "tok\"en\\/\x01");
	json_decref(root);
	/* one line, compact, members in docker's order */
	assert_null(strchr(out, '\n'));
	assert_int_equal(strncmp(out, "{\"ServerURL\":", 13), 0);
	assert_non_null(strstr(out, "\",\"Username\":\"alice\",\"Secret\":"));
	secret_free(out);

	/* a NULL username is written as "" */
	out = dockerproto_format_get("h", NULL, "t");
	root = load(out);
	assert_member(root, "Username", "");
	json_decref(root);
	secret_free(out);

	/* invalid UTF-8 cannot be put in JSON */
	assert_null(dockerproto_format_get("h", "u", "bad\xff"));
}

static void test_format_list(void **state)
{
	char *servers[] = { "https://a.example.com", "https://b.example.com:8443/p", "https://c" };
	char *users[] = { "alice", "", NULL };
	char *out;
	json_t *root;

	(void)state;
	out = dockerproto_format_list(servers, users, 3);
	root = load(out);
	assert_int_equal(json_object_size(root), 3);
	assert_member(root, "https://a.example.com", "alice");
	assert_member(root, "https://b.example.com:8443/p", "");
	assert_member(root, "https://c", "");
	json_decref(root);
	free(out);

	out = dockerproto_format_list(NULL, NULL, 0);
	assert_non_null(out);
	assert_string_equal(out, "{}");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_store_ok, setup),
		cmocka_unit_test_setup(test_store_empty_username, setup),
		cmocka_unit_test_setup(test_store_refused, setup),
		cmocka_unit_test_setup(test_store_oversize, setup),
		cmocka_unit_test_setup(test_server, setup),
		cmocka_unit_test_setup(test_format_get, setup),
		cmocka_unit_test_setup(test_format_list, setup),
	};

	/* as the program does: jansson wipes what it frees */
	secret_json_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
