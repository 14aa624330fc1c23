/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/codec.h"
#include "lib/common.h"

static void sha256_hex(const void *data, size_t len, char hex[65])
{
	uint8_t md[32];
	int i;

	codec_sha256(data, len, md);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static void test_sha256_vectors(void **state)
{
	char hex[65];

	(void)state;
	sha256_hex("", 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha256_hex("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
	assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* lengths around the 55/56/64-byte padding boundaries, and many blocks */
static void test_sha256_block_boundaries(void **state)
{
	static const struct {
		size_t n;
		const char *hex;
	} cases[] = {
		{ 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318" },
		{ 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a" },
		{ 63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34" },
		{ 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb" },
		{ 65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0" },
		{ 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0" },
	};
	char *buf = malloc(1000000), hex[65];
	size_t i;

	(void)state;
	assert_non_null(buf);
	memset(buf, 'a', 1000000);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sha256_hex(buf, cases[i].n, hex);
		assert_string_equal(hex, cases[i].hex);
	}
	free(buf);
}

static void test_base64_vectors(void **state)
{
	/* RFC 4648 section 10 */
	static const char *const cases[][2] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
		{ "user:pass", "dXNlcjpwYXNz" },
	};
	static const unsigned char bin[] = { 0xfb, 0xff, 0x00 };
	size_t i;
	char *s;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s = codec_base64((const unsigned char *)cases[i][0], strlen(cases[i][0]));
		assert_string_equal(s, cases[i][1]);
		secret_free(s);
	}
	/* the standard alphabet, and a NUL byte encoded like any other */
	s = codec_base64(bin, 3);
	assert_string_equal(s, "+/8A");
	secret_free(s);
	s = codec_base64(bin, 2);
	assert_string_equal(s, "+/8=");
	secret_free(s);
}

static void check_decode(const char *in, const char *want, size_t want_len)
{
	unsigned char *out;
	size_t len = 12345;

	out = codec_base64url_decode(in, strlen(in), &len);
	assert_non_null(out);
	assert_int_equal(len, want_len);
	assert_memory_equal(out, want, want_len);
	assert_int_equal(out[len], '\0');
	free(out);
}

static void test_base64url_decode(void **state)
{
	(void)state;
	check_decode("", "", 0);
	check_decode("Zm9vYmFy", "foobar", 6);
	/* with and without padding */
	check_decode("Zm9vYg", "foob", 4);
	check_decode("Zm9vYg==", "foob", 4);
	check_decode("Zm9vYmE", "fooba", 5);
	check_decode("Zm9vYmE=", "fooba", 5);
	/* the URL-safe alphabet */
	check_decode("-_8", "\xfb\xff", 2);
	check_decode("-_8A", "\xfb\xff\x00", 3);
	/* a JWT header */
	check_decode("eyJhbGciOiJIUzI1NiJ9", "{\"alg\":\"HS256\"}", 15);
}

static void test_base64url_decode_refuses(void **state)
{
	static const char *const bad[] = {
		"+/8=",		/* standard alphabet is not base64url */
		"Zm9v!",
		"Z",		/* a lone sextet cannot make a byte */
		"Zm9vY",
		"Zm9vYg=",	/* padding that does not complete a quantum */
		"Zm9vYmE==",
		"Zm=9",		/* padding in the middle */
		"===",
		"Zm9v Yg",
		"Zm9vYg===",
	};
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(codec_base64url_decode(bad[i], strlen(bad[i]), &len));
	assert_null(codec_base64url_decode(NULL, 0, &len));
	/* only len bytes are read: the junk after them is not looked at */
	check_decode("Zm9v", "foo", 3);
	{
		unsigned char *out = codec_base64url_decode("Zm9v!!!", 4, &len);

		assert_non_null(out);
		assert_int_equal(len, 3);
		assert_memory_equal(out, "foo", 3);
		free(out);
	}
}

static void test_fingerprint(void **state)
{
	char a[17], b[17];

	(void)state;
	/* first 8 bytes of SHA-256("api-key\0alice\0s3cret"), pinned */
	codec_fingerprint("api-key", "alice", "s3cret", a);
	assert_string_equal(a, "9b60b25b13ca312f");
	codec_fingerprint("api-key", "alice", "s3cret", b);
	assert_string_equal(a, b);

	/* NULL username is the empty username */
	codec_fingerprint("api-key", NULL, "s3cret", a);
	assert_string_equal(a, "3a7ba31f9b41e6cb");
	codec_fingerprint("api-key", "", "s3cret", b);
	assert_string_equal(a, b);

	/* every part counts, and the separators keep parts apart */
	codec_fingerprint("api-key", "alice", "s3creT", b);
	assert_string_not_equal(b, "9b60b25b13ca312f");
	codec_fingerprint("bearer", "alice", "s3cret", b);
	assert_string_not_equal(b, "9b60b25b13ca312f");
	codec_fingerprint("basic", "ab", "c", a);
	codec_fingerprint("basic", "a", "bc", b);
	assert_string_not_equal(a, b);
	assert_int_equal(strlen(a), 16);
	assert_int_equal(strspn(a, "0123456789abcdef"), 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_vectors),
		cmocka_unit_test(test_sha256_block_boundaries),
		cmocka_unit_test(test_base64_vectors),
		cmocka_unit_test(test_base64url_decode),
		cmocka_unit_test(test_base64url_decode_refuses),
		cmocka_unit_test(test_fingerprint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
