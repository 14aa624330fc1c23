/* SPDX-License-Identifier: MIT */
/*
 * The token endpoint's answer: status, body and Date header all come from
 * the server.  The first input byte picks the case (its low three bits, so
 * the seeds can start with '0'..'7'):
 *   0     200, the rest is the body, no Date header
 *   1, 3  200, the rest up to its first newline is the Date header, then
 *         the body
 *   2     422, the rest is the body (the detail list); also through
 *         exchange_run() with a fake transport, which must never show the
 *         secret it sent even when the server echoes it
 *   4     302, 5  401, 6  503, 7  404 (messages only)
 * A token handed out must keep the promises of exchange.h.
 *
 * fuzz-sources: lib/common.c lib/text.c token/exchange.c lib/codec.c
 * fuzz-sources: lib/tokentime.c lib/url.c lib/org.c keystore/credential.c
 * fuzz-max-len: 16384
 */
#include "autoconfig.h"

#include "tests/fuzz/fuzz.h"
#include "token/exchange.h"
#include "token/http.h"

#define SERVER "https://api.galileo.ai"
#define NOW INT64_C(1700000000)		/* Tue, 14 Nov 2023 22:13:20 GMT */
/* letters and digits only, so no separator of the message can forge it */
#define SECRET "gAlIlEoSeCrEt123"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	secret_json_init();
	return 0;
}

static void check_token(const struct exchange_result *res)
{
	const char *t = res->access_token;
	size_t n;

	FUZZ_CHECK(t && res->token_type);
	n = strlen(t);
	FUZZ_CHECK(n > 0 && n <= 8 * 1024);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)t[i] > 0x20 && (unsigned char)t[i] < 0x7f);
	if (res->expires_at) {
		FUZZ_CHECK(res->expires_at > NOW);
		FUZZ_CHECK(res->lifetime == res->expires_at - NOW);
	} else {
		FUZZ_CHECK(res->lifetime == 0);
	}
}

/* the fake transport: one 422 answer with the fuzzed body */
static const char *fake_body;
static size_t fake_len;

static int fake_get(const struct http_request *req, struct http_response *resp,
		    char *errbuf, size_t errlen)
{
	(void)req;
	(void)errbuf;
	(void)errlen;
	memset(resp, 0, sizeof(*resp));
	resp->status = 422;
	resp->body = xmalloc(fake_len + 1);
	if (fake_len)
		memcpy(resp->body, fake_body, fake_len);
	resp->body[fake_len] = '\0';
	resp->body_len = fake_len;
	return 0;
}

static void fake_release(struct http_response *resp)
{
	secret_freezero(resp->body, resp->body_len + 1);
	free(resp->date);
	free(resp->retry_after);
	memset(resp, 0, sizeof(*resp));
}

static const struct http_ops fake_http = {
	.abi_version = HTTP_ABI_VERSION,
	.get = fake_get,
	.response_release = fake_release,
};

static void run_422(const char *body, size_t body_len)
{
	struct exchange_params p = {
		.server = SERVER,
		.token_path = "/v1/token",
		.kind = "api-key",
		.secret = SECRET,
		.timeout = 30,
	};
	struct exchange_result res;
	const char *msg;

	fake_body = body;
	fake_len = body_len;
	FUZZ_CHECK(exchange_run(&fake_http, &p, &res) == GCERR_INPUT);
	msg = gc_error_message();
	FUZZ_CHECK(msg && !strstr(msg, SECRET));
	FUZZ_CHECK(!res.access_token);
	exchange_result_release(&res);
	gc_error_clear();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long other[] = { 302, 401, 503, 404 };
	struct exchange_result res;
	const uint8_t *body;
	size_t body_len;
	char *date = NULL, *copy;
	long status;
	int mode, err;

	if (size == 0)
		return 0;
	mode = data[0] & 7;
	body = data + 1;
	body_len = size - 1;
	if (mode == 1 || mode == 3) {
		const uint8_t *nl = memchr(body, '\n', body_len);
		size_t dlen = nl ? (size_t)(nl - body) : body_len;

		date = fuzz_cstring(body, dlen);
		body += nl ? dlen + 1 : dlen;
		body_len -= nl ? dlen + 1 : dlen;
	}
	status = mode == 2 ? 422 : mode >= 4 ? other[mode - 4] : 200;

	/* a block of exactly body_len bytes: ASan catches reads past it */
	copy = xmalloc(body_len);
	if (body_len)
		memcpy(copy, body, body_len);

	err = exchange_parse_response(SERVER, status, copy, body_len, date, NOW, &res);
	if (err) {
		FUZZ_CHECK(gc_error_message() != NULL);
		FUZZ_CHECK(!res.access_token && !res.token_type);
	} else {
		FUZZ_CHECK(status == 200);
		check_token(&res);
	}
	exchange_result_release(&res);
	gc_error_clear();

	if (status == 422)
		run_422(copy, body_len);

	free(copy);
	free(date);
	return 0;
}
