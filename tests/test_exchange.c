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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/common.h"
#include "token/exchange.h"
#include "token/http.h"

#define SERVER "https://api.example.com"
#define NOW INT64_C(1700000000)		/* Tue, 14 Nov 2023 22:13:20 GMT */
#define UUID "0b4c5e8e-1d7f-4f3a-9c55-0a5a3e9f2c11"
/* {"alg":"none","typ":"JWT"}.{"sub":"u","exp":NOW+1800}.sig */
#define JWT "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." \
	"eyJzdWIiOiJ1IiwiZXhwIjoxNzAwMDAxODAwfQ.c2ln"
/* the same with exp NOW-1000 */
#define JWT_OLD "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." \
	"eyJzdWIiOiJ1IiwiZXhwIjoxNjk5OTk5MDAwfQ.c2ln"

static int setup(void **state)
{
	(void)state;
	gc_error_clear();
	return 0;
}

static void assert_message(const char *want)
{
	assert_non_null(gc_error_message());
	assert_string_equal(gc_error_message(), want);
}

static void assert_message_has(const char *needle)
{
	const char *msg = gc_error_message();

	assert_non_null(msg);
	if (!strstr(msg, needle))
		fail_msg("message '%s' lacks '%s'", msg, needle);
}

/* ---- exchange_build_url ---- */

static void expect_url(const char *server, const char *path, const char *org,
		       const char *want)
{
	struct exchange_params p = {
		.server = server, .token_path = path, .organization = org,
	};
	char *url = exchange_build_url(&p);

	assert_non_null(url);
	assert_string_equal(url, want);
	free(url);
}

static void test_build_url(void **state)
{
	(void)state;
	expect_url(SERVER, "/v1/token", NULL, SERVER "/v1/token");
	expect_url(SERVER, "/v1/token", "", SERVER "/v1/token");
	expect_url(SERVER, NULL, NULL, SERVER "/v1/token");
	expect_url("https://h:8443/galileo", "/v1/token", NULL,
		   "https://h:8443/galileo/v1/token");
	expect_url(SERVER, "/v1/token", UUID,
		   SERVER "/v1/token?organization_id=" UUID);
	expect_url(SERVER, "/v1/token", "0B4C5E8E-1D7F-4F3A-9C55-0A5A3E9F2C11",
		   SERVER "/v1/token?organization_id=0B4C5E8E-1D7F-4F3A-9C55-0A5A3E9F2C11");
	expect_url(SERVER, "/v1/token", "acme", SERVER "/v1/token?organization_slug=acme");
	/* one digit short of a UUID is a slug */
	expect_url(SERVER, "/v1/token", "0b4c5e8e-1d7f-4f3a-9c55-0a5a3e9f2c1",
		   SERVER "/v1/token?organization_slug=0b4c5e8e-1d7f-4f3a-9c55-0a5a3e9f2c1");
	expect_url(SERVER, "/v1/token", "acme corp/x&y=z#?\xc3\xa9",
		   SERVER "/v1/token?organization_slug=acme%20corp%2Fx%26y%3Dz%23%3F%C3%A9");
	expect_url(SERVER, "/v1/token", "a-b.c_d~e", SERVER "/v1/token?organization_slug=a-b.c_d~e");
}

/* ---- exchange_auth_header ---- */

static void expect_header(const char *kind, const char *user, const char *secret,
			  const char *want)
{
	char *h = exchange_auth_header(kind, user, secret);

	if (!want) {
		assert_null(h);
		return;
	}
	assert_non_null(h);
	assert_string_equal(h, want);
	secret_free(h);
}

static void test_auth_header(void **state)
{
	(void)state;
	expect_header("api-key", NULL, "k-123", "Galileo-API-Key: k-123");
	expect_header("basic", "user", "pass", "Authorization: Basic dXNlcjpwYXNz");
	expect_header("basic", "alice", "p:w", "Authorization: Basic YWxpY2U6cDp3");
	expect_header("bearer", NULL, "tok.en", "Authorization: Bearer tok.en");
	/* no kind: the contract's default */
	expect_header(NULL, NULL, "k", "Galileo-API-Key: k");
	expect_header("oauth", NULL, "k", NULL);
	expect_header("API-KEY", NULL, "k", NULL);
	expect_header("api-key", NULL, NULL, NULL);
	/* a CR/LF would inject headers into the request */
	expect_header("api-key", NULL, "k\r\nX-Evil: 1", NULL);
	expect_header("bearer", NULL, "k\n", NULL);
	expect_header("basic", "us\ner", "p", NULL);
}

/* ---- exchange_parse_response: 200 ---- */

static int parse(long status, const char *body, const char *date,
		 struct exchange_result *res)
{
	return exchange_parse_response(SERVER, status, body, body ? strlen(body) : 0,
				       date, NOW, res);
}

static void expect_token(const char *body, const char *date, const char *token,
			 int64_t expires_at, int64_t lifetime)
{
	struct exchange_result res;

	gc_error_clear();
	if (parse(200, body, date, &res))
		fail_msg("refused '%s': %s", body, gc_error_message());
	assert_string_equal(res.access_token, token);
	assert_int_equal(res.expires_at, expires_at);
	assert_int_equal(res.lifetime, lifetime);
	exchange_result_release(&res);
	assert_null(res.access_token);
	assert_null(res.token_type);
}

#define BODY(exp) "{\"access_token\":\"tok\",\"token_type\":\"bearer\",\"expires_at\":\"" exp "\"}"

static void test_200_expires_at_forms(void **state)
{
	(void)state;
	expect_token(BODY("2023-11-14T23:13:20Z"), NULL, "tok", NOW + 3600, 3600);
	expect_token(BODY("2023-11-15T00:13:20+01:00"), NULL, "tok", NOW + 3600, 3600);
	expect_token(BODY("2023-11-14T18:13:20-05:00"), NULL, "tok", NOW + 3600, 3600);
	/* naive: UTC */
	expect_token(BODY("2023-11-14T23:13:20"), NULL, "tok", NOW + 3600, 3600);
	/* fractional seconds */
	expect_token(BODY("2023-11-14T23:13:20.987654Z"), NULL, "tok", NOW + 3600, 3600);
	expect_token(BODY("2023-11-14T23:13:20.5+00:00"), NULL, "tok", NOW + 3600, 3600);
	expect_token(BODY("2023-11-14T22:13:21Z"), NULL, "tok", NOW + 1, 1);
}

static void test_200_date_header(void **state)
{
	struct exchange_result res;

	(void)state;
	/* server clock agrees with ours */
	expect_token(BODY("2023-11-14T23:13:20Z"), "Tue, 14 Nov 2023 22:13:20 GMT",
		     "tok", NOW + 3600, 3600);
	/* server clock 1 h ahead: its expiry is 1 h later than ours */
	expect_token(BODY("2023-11-15T00:13:20Z"), "Tue, 14 Nov 2023 23:13:20 GMT",
		     "tok", NOW + 3600, 3600);
	/* server clock 1 h behind: a token "already expired" locally is not */
	expect_token(BODY("2023-11-14T22:13:20Z"), "Tue, 14 Nov 2023 21:13:20 GMT",
		     "tok", NOW + 3600, 3600);
	/* the same answers without the Date header */
	expect_token(BODY("2023-11-15T00:13:20Z"), NULL, "tok", NOW + 7200, 7200);
	/* an unreadable Date header is ignored */
	expect_token(BODY("2023-11-14T23:13:20Z"), "yesterday-ish", "tok", NOW + 3600, 3600);
	/* a Date more than an hour off is not believed: expires_at counts as is */
	gc_error_clear();
	assert_int_equal(parse(200, BODY("1970-01-01T00:00:03Z"), "Thu, 01 Jan 1970 00:00:00 GMT",
			       &res), GCERR_NETWORK);
	assert_non_null(strstr(gc_error_message(), "already expired"));
	gc_error_clear();
	expect_token(BODY("2023-11-14T22:13:23Z"), "Thu, 01 Jan 1970 00:00:00 GMT",
		     "tok", NOW + 3, 3);
	expect_token(BODY("2023-11-14T22:13:23Z"), "Tue, 14 Nov 2023 23:13:21 GMT",
		     "tok", NOW + 3, 3);
	expect_token(BODY("2023-11-14T22:13:23Z"), "Tue, 14 Nov 2023 21:13:19 GMT",
		     "tok", NOW + 3, 3);
	/* half an hour off still is */
	expect_token(BODY("2023-11-14T22:43:23Z"), "Tue, 14 Nov 2023 22:43:20 GMT",
		     "tok", NOW + 3, 3);
}

static void test_200_jwt_fallback(void **state)
{
	(void)state;
	/* expires_at missing */
	expect_token("{\"access_token\":\"" JWT "\"}", NULL, JWT, NOW + 1800, 1800);
	/* expires_at unreadable */
	expect_token("{\"access_token\":\"" JWT "\",\"expires_at\":\"soon\"}", NULL,
		     JWT, NOW + 1800, 1800);
}

static void test_200_jwt_fallback_date(void **state)
{
	struct exchange_result res;

	(void)state;
	/* server 30 min ahead: exp NOW+1800 is "now" there, i.e. just expired */
	assert_int_equal(parse(200, "{\"access_token\":\"" JWT "\"}",
			       "Tue, 14 Nov 2023 22:43:20 GMT", &res), GCERR_NETWORK);
	assert_null(res.access_token);
	/* server 30 min behind: a full hour left locally */
	gc_error_clear();
	assert_int_equal(parse(200, "{\"access_token\":\"" JWT "\"}",
			       "Tue, 14 Nov 2023 21:43:20 GMT", &res), 0);
	assert_int_equal(res.expires_at, NOW + 3600);
	assert_int_equal(res.lifetime, 3600);
	exchange_result_release(&res);
}

static void test_200_no_expiry(void **state)
{
	struct exchange_result res;

	(void)state;
	/* neither: returned, not cacheable */
	expect_token("{\"access_token\":\"opaque\"}", NULL, "opaque", 0, 0);
	expect_token("{\"access_token\":\"opaque\",\"expires_at\":\"never\"}", NULL,
		     "opaque", 0, 0);
	expect_token("{\"access_token\":\"a.b.c\",\"expires_at\":\"\"}", NULL, "a.b.c", 0, 0);
	/* token_type defaults to bearer, else kept */
	assert_int_equal(parse(200, "{\"access_token\":\"opaque\"}", NULL, &res), 0);
	assert_string_equal(res.token_type, "bearer");
	exchange_result_release(&res);
	assert_int_equal(parse(200, "{\"access_token\":\"t\",\"token_type\":\"Bearer\"}",
			       NULL, &res), 0);
	assert_string_equal(res.token_type, "Bearer");
	exchange_result_release(&res);
}

static void expect_bad_200(const char *body, size_t len, const char *why)
{
	struct exchange_result res;

	gc_error_clear();
	assert_int_equal(exchange_parse_response(SERVER, 200, body, len, NULL, NOW, &res),
			 GCERR_NETWORK);
	assert_null(res.access_token);
	assert_null(res.token_type);
	assert_int_equal(res.expires_at, 0);
	assert_message_has("'" SERVER "'");
	assert_message_has(why);
	/* never a secret in the message */
	assert_null(strstr(gc_error_message(), "SECRETTOKEN"));
	exchange_result_release(&res);
}

#define BAD(body, why) expect_bad_200(body, sizeof(body) - 1, why)

static void test_200_already_expired(void **state)
{
	(void)state;
	BAD("{\"access_token\":\"SECRETTOKEN\",\"expires_at\":\"2023-11-14T22:13:19Z\"}",
	    "already expired");
	/* expiring this very second is expired: never handed out at expiry */
	BAD("{\"access_token\":\"SECRETTOKEN\",\"expires_at\":\"2023-11-14T22:13:20Z\"}",
	    "already expired");
	BAD("{\"access_token\":\"" JWT_OLD "\"}", "already expired");
	/* the epoch itself is a known expiry, long past: not "unknown" */
	BAD("{\"access_token\":\"SECRETTOKEN\",\"expires_at\":\"1970-01-01T00:00:00Z\"}",
	    "already expired");
}

static void test_200_malformed(void **state)
{
	static const char with_nul[] = "{\"access_token\":\"SECRETTOKEN\"}\0junk";

	(void)state;
	BAD("", "not JSON");
	BAD("SECRETTOKEN", "not JSON");
	BAD("<html>SECRETTOKEN</html>", "not JSON");
	BAD("{\"access_token\":\"SECRETTOKEN\"", "not JSON");
	BAD("[\"SECRETTOKEN\"]", "not a JSON object");
	BAD("\"SECRETTOKEN\"", "not a JSON object");
	BAD("{}", "access_token");
	BAD("{\"token\":\"SECRETTOKEN\",\"expires_at\":\"2023-11-14T23:13:20Z\"}", "access_token");
	BAD("{\"access_token\":123}", "access_token");
	BAD("{\"access_token\":null}", "access_token");
	BAD("{\"access_token\":[\"SECRETTOKEN\"]}", "access_token");
	BAD("{\"access_token\":\"SECRETTOKEN\",\"token_type\":5}", "token_type");
	BAD("{\"access_token\":\"SECRETTOKEN\",\"expires_at\":1700003600}", "expires_at");
	BAD("{\"access_token\":\"SECRETTOKEN\",\"expires_at\":null}", "expires_at");
	BAD("{\"access_token\":\"a\",\"access_token\":\"SECRETTOKEN\"}", "not JSON");
	/* the body is as long as the server said: a NUL inside is not JSON */
	expect_bad_200(with_nul, sizeof(with_nul) - 1, "not JSON");
	expect_bad_200(NULL, 0, "not JSON");
}

static void test_200_token_charset(void **state)
{
	char *body, *big;
	size_t n = 8 * 1024;
	struct exchange_result res;

	(void)state;
	BAD("{\"access_token\":\"\"}", "access_token");
	BAD("{\"access_token\":\"SECRET TOKEN\"}", "access_token");
	BAD("{\"access_token\":\"SECRETTOKEN\\t\"}", "access_token");
	BAD("{\"access_token\":\"SECRETTOKEN\\n\"}", "access_token");
	BAD("{\"access_token\":\"SECRETTOKEN\\u0001\"}", "access_token");
	BAD("{\"access_token\":\"SECRETTOKEN\\u007f\"}", "access_token");
	BAD("{\"access_token\":\"SECRETTOKEN\\u00e9\"}", "access_token");
	BAD("{\"access_token\":\"SECRETTOKEN\\u0000\"}", "not JSON");

	/* 8 KiB is the limit */
	big = malloc(n + 2);
	assert_non_null(big);
	memset(big, 'a', n + 1);
	big[n + 1] = '\0';
	body = xasprintf("{\"access_token\":\"%s\"}", big + 1);
	assert_int_equal(parse(200, body, NULL, &res), 0);
	assert_int_equal(strlen(res.access_token), n);
	exchange_result_release(&res);
	free(body);
	body = xasprintf("{\"access_token\":\"%s\"}", big);
	expect_bad_200(body, strlen(body), "access_token");
	free(body);
	free(big);
}

/* ---- exchange_parse_response: other statuses ---- */

static void expect_status(long status, const char *body, int want_err, const char *msg)
{
	struct exchange_result res;

	gc_error_clear();
	assert_int_equal(parse(status, body, NULL, &res), want_err);
	assert_null(res.access_token);
	assert_message(msg);
}

static void test_rejected(void **state)
{
	(void)state;
	expect_status(401, "{\"detail\":\"Not authenticated\"}", GCERR_REJECTED,
		      "the server '" SERVER "' rejected the credential (HTTP 401); "
		      "run 'galileo-credential login --server " SERVER "'");
	expect_status(403, NULL, GCERR_REJECTED,
		      "the server '" SERVER "' rejected the credential (HTTP 403); "
		      "run 'galileo-credential login --server " SERVER "'");
}

static void test_422(void **state)
{
	(void)state;
	expect_status(422,
		      "{\"detail\":[{\"loc\":[\"query\",\"organization_id\"],"
		      "\"msg\":\"Input should be a valid UUID\",\"type\":\"uuid_parsing\"},"
		      "{\"loc\":[\"other\",\"loc\"],\"msg\":\"msg\",\"type\":\"x\"}]}",
		      GCERR_INPUT,
		      "the server '" SERVER "' refused the request: "
		      "query.organization_id: Input should be a valid UUID; other.loc: msg");
	/* integer loc elements, control characters escaped (C0, C1, bidi) */
	expect_status(422,
		      "{\"detail\":[{\"loc\":[\"body\",0,\"name\"],\"msg\":\"bad\\u001b[31m\",\"type\":\"t\"}]}",
		      GCERR_INPUT,
		      "the server '" SERVER "' refused the request: body.0.name: bad\\x1b[31m");
	expect_status(422,
		      "{\"detail\":\"a\\u009bb\\u202ec\\u2066d\\ne\"}",
		      GCERR_INPUT,
		      "the server '" SERVER "' refused the request: a\\u009Bb\\u202Ec\\u2066d\\x0ae");
	/* FastAPI's HTTPException form */
	expect_status(422, "{\"detail\":\"Organization not found\"}", GCERR_INPUT,
		      "the server '" SERVER "' refused the request: Organization not found");
	expect_status(422, "oops", GCERR_INPUT,
		      "the server '" SERVER "' refused the request (HTTP 422)");
	expect_status(422, "{\"detail\":[]}", GCERR_INPUT,
		      "the server '" SERVER "' refused the request (HTTP 422)");
}

static void test_other_status(void **state)
{
	(void)state;
	expect_status(500, "{\"access_token\":\"SECRETTOKEN\"}", GCERR_NETWORK,
		      "the server '" SERVER "' failed the token request (HTTP 500); try again later");
	expect_status(503, NULL, GCERR_NETWORK,
		      "the server '" SERVER "' failed the token request (HTTP 503); try again later");
	expect_status(429, NULL, GCERR_NETWORK,
		      "the server '" SERVER "' failed the token request (HTTP 429); try again later");
	expect_status(404, NULL, GCERR_NETWORK,
		      "the server '" SERVER "' failed the token request (HTTP 404); "
		      "check the server URL and token-path");
	/* a 201 is not the documented success */
	expect_status(201, BODY("2023-11-14T23:13:20Z"), GCERR_NETWORK,
		      "the server '" SERVER "' failed the token request (HTTP 201); "
		      "check the server URL and token-path");
	expect_status(302, NULL, GCERR_NETWORK,
		      "the server '" SERVER "' redirected the request (HTTP 302); "
		      "redirects are not followed");
	expect_status(301, NULL, GCERR_NETWORK,
		      "the server '" SERVER "' redirected the request (HTTP 301); "
		      "redirects are not followed");
}

/* ---- exchange_run against a fake transport ---- */

/* one scripted answer of the fake transport */
struct step {
	int ret;			/* get()'s return; 0: an HTTP answer */
	enum http_failure failure;	/* with ret */
	const char *errmsg;		/* with ret */
	long status;
	const char *body, *date, *retry_after;
	long hang_ms;			/* answer this late; at the timeout: time out */
};

#define MAX_CALLS 8

static struct fake {
	/* what the helper sent */
	int calls, releases;
	char *url, *auth, *ua, *ca;
	long timeout_ms;		/* of the last attempt */
	long timeouts[MAX_CALLS];	/* of each attempt */
	int64_t at[MAX_CALLS];		/* when each began, ms after fake.start */
	int64_t start;
	/* what to answer: steps[i] for call i, the last one again after */
	const struct step *steps;
	int nsteps;
	/* or, without steps, always this */
	int ret;
	enum http_failure failure;
	long status;
	const char *body, *date, *errmsg;
} fake;

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fake_forget(void)
{
	free(fake.url);
	secret_free(fake.auth);
	free(fake.ua);
	free(fake.ca);
	fake.url = fake.auth = fake.ua = fake.ca = NULL;
}

static int fake_get(const struct http_request *req, struct http_response *resp,
		    char *errbuf, size_t errlen)
{
	struct step legacy = {
		.ret = fake.ret, .failure = fake.failure, .errmsg = fake.errmsg,
		.status = fake.status, .body = fake.body, .date = fake.date,
	};
	const struct step *st = &legacy;
	int i = fake.calls++;

	if (fake.nsteps)
		st = &fake.steps[i < fake.nsteps ? i : fake.nsteps - 1];
	if (i < MAX_CALLS) {
		fake.timeouts[i] = req->timeout_ms;
		fake.at[i] = mono_ms() - fake.start;
	}
	fake_forget();
	fake.url = xstrdup(req->url);
	fake.auth = xstrdup(req->auth_header);
	fake.ua = xstrdup(req->user_agent);
	fake.ca = xstrdup(req->ca_file);
	fake.timeout_ms = req->timeout_ms;
	memset(resp, 0, sizeof(*resp));
	assert_true(req->timeout_ms > 0);
	if (st->hang_ms) {
		long ms = st->hang_ms < req->timeout_ms ? st->hang_ms : req->timeout_ms;
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

		nanosleep(&ts, NULL);
		if (st->hang_ms >= req->timeout_ms) {
			snprintf(errbuf, errlen, "timed out after %ld ms", req->timeout_ms);
			resp->failure = HTTP_FAIL_TIMEOUT;
			return GCERR_NETWORK;
		}
	}
	if (st->ret) {
		snprintf(errbuf, errlen, "%s", st->errmsg ? st->errmsg : "");
		resp->failure = st->failure;
		return st->ret;
	}
	resp->status = st->status;
	resp->body = xstrdup(st->body ? st->body : "");
	resp->body_len = strlen(resp->body);
	resp->date = xstrdup(st->date);
	resp->retry_after = xstrdup(st->retry_after);
	return 0;
}

static void fake_release(struct http_response *resp)
{
	fake.releases++;
	secret_free(resp->body);
	free(resp->date);
	free(resp->retry_after);
	memset(resp, 0, sizeof(*resp));
}

static const struct http_ops fake_ops = {
	.abi_version = HTTP_ABI_VERSION,
	.get = fake_get,
	.response_release = fake_release,
};

static int run_setup(void **state)
{
	(void)state;
	gc_error_clear();
	memset(&fake, 0, sizeof(fake));
	fake.start = mono_ms();
	return 0;
}

static int run_teardown(void **state)
{
	(void)state;
	fake_forget();
	return 0;
}

static const struct exchange_params basic_params = {
	.server = SERVER,
	.token_path = "/v1/token",
	.organization = "acme corp",
	.kind = "basic",
	.username = "user",
	.secret = "pass",
	.ca_file = "/etc/ca.pem",
	.timeout = 5,
};

static void test_run_ok(void **state)
{
	struct exchange_result res;

	(void)state;
	fake.status = 200;
	fake.body = BODY("2999-01-01T00:00:00Z");
	assert_int_equal(exchange_run(&fake_ops, &basic_params, &res), 0);
	assert_int_equal(fake.calls, 1);
	assert_int_equal(fake.releases, 1);
	assert_string_equal(fake.url, SERVER "/v1/token?organization_slug=acme%20corp");
	assert_string_equal(fake.auth, "Authorization: Basic dXNlcjpwYXNz");
	assert_string_equal(fake.ua, "galileo-credential/" PACKAGE_VERSION);
	assert_string_equal(fake.ca, "/etc/ca.pem");
	assert_int_equal(fake.timeout_ms, 5000);
	assert_string_equal(res.access_token, "tok");
	assert_int_equal(res.expires_at, INT64_C(32472144000));
	assert_true(res.lifetime > 0);
	exchange_result_release(&res);
}

static void test_run_date_corrected(void **state)
{
	struct exchange_params p = basic_params;
	struct exchange_result res;
	char date[64], exp[64], body[256];
	time_t server_now = time(NULL) + 2400;	/* 40 minutes ahead */
	time_t server_exp = server_now + 3600;
	struct tm tm;

	(void)state;
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&server_now, &tm));
	strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&server_exp, &tm));
	snprintf(body, sizeof(body), "{\"access_token\":\"tok\",\"expires_at\":\"%s\"}", exp);
	fake.status = 200;
	fake.body = body;
	fake.date = date;
	p.kind = "api-key";
	p.secret = "KEY";
	p.organization = UUID;
	p.token_path = NULL;
	p.ca_file = NULL;
	p.timeout = 0;
	assert_int_equal(exchange_run(&fake_ops, &p, &res), 0);
	assert_string_equal(fake.url, SERVER "/v1/token?organization_id=" UUID);
	assert_string_equal(fake.auth, "Galileo-API-Key: KEY");
	assert_null(fake.ca);
	assert_int_equal(fake.timeout_ms, 30000);	/* the documented default */
	/* an hour from our now, not from the server's clock */
	assert_in_range(res.lifetime, 3599, 3601);
	assert_in_range(res.expires_at - time(NULL), 3598, 3601);
	exchange_result_release(&res);
}

static void test_run_transport_error(void **state)
{
	struct exchange_result res;

	(void)state;
	fake.ret = GCERR_NETWORK;
	fake.failure = HTTP_FAIL_PERMANENT;
	fake.errmsg = "TLS verification failed: certificate has expired";
	assert_int_equal(exchange_run(&fake_ops, &basic_params, &res), GCERR_NETWORK);
	assert_null(res.access_token);
	assert_message("the request to '" SERVER "' failed: TLS verification failed: "
		       "certificate has expired");
	assert_int_equal(fake.calls, 1);

	/* any transport failure is a network failure, not retried unless said */
	gc_error_clear();
	fake.calls = 0;
	fake.ret = GCERR_FAIL;
	fake.failure = HTTP_FAIL_NONE;
	fake.errmsg = "";
	assert_int_equal(exchange_run(&fake_ops, &basic_params, &res), GCERR_NETWORK);
	assert_message("the request to '" SERVER "' failed: unknown error");
	assert_int_equal(fake.calls, 1);
}

static void test_run_statuses(void **state)
{
	struct exchange_params p = basic_params;
	struct exchange_result res;

	(void)state;
	p.kind = "bearer";
	p.secret = "old.jwt";
	fake.status = 401;
	assert_int_equal(exchange_run(&fake_ops, &p, &res), GCERR_REJECTED);
	assert_string_equal(fake.auth, "Authorization: Bearer old.jwt");
	assert_message("the server '" SERVER "' rejected the credential (HTTP 401); "
		       "run 'galileo-credential login --server " SERVER "'");
	assert_int_equal(fake.releases, 1);
}

/* a 422 that echoes what was sent shows it as ***, in every form it went out */
static void test_run_422_redacts_sent_forms(void **state)
{
	struct exchange_result res;

	(void)state;
	fake.status = 422;
	/* "dXNlcjpwYXNz" is base64("user:pass"), the Basic form of basic_params */
	fake.body = "{\"detail\":\"bad header dXNlcjpwYXNz and pass\"}";
	assert_int_equal(exchange_run(&fake_ops, &basic_params, &res), GCERR_INPUT);
	assert_string_equal(gc_error_message(),
			    "the server '" SERVER "' refused the request: bad header *** and ***");
}

/* the message of a 422 whose detail is detail, for a credential of kind with secret */
static const char *refused_with(const char *kind, const char *user, const char *secret,
				const char *detail)
{
	static char body[1024];
	struct exchange_params p = basic_params;
	struct exchange_result res;

	/* details here hold no '"' or '\\' */
	snprintf(body, sizeof(body), "{\"detail\":\"%s\"}", detail);
	p.kind = kind;
	p.username = user;
	p.secret = secret;
	gc_error_clear();
	fake_forget();
	fake.status = 422;
	fake.body = body;
	assert_int_equal(exchange_run(&fake_ops, &p, &res), GCERR_INPUT);
	return gc_error_message() + strlen("the server '" SERVER "' refused the request: ");
}

/*
 * any 8 or more characters of a sent secret, in any case, raw, base64 or
 * percent-encoded, are shown as *** (galileo-credential(1) SECURITY)
 */
static void test_run_422_redacts_parts(void **state)
{
	const char *key = "gk-Abc123XyZ-987qwertyPLM";
	const char *odd = "k/ey+with=sp ace%x";	/* percent-encodes to k%2Fey%2Bwith%3Dsp%20ace%25x */

	(void)state;
	assert_string_equal(refused_with("api-key", NULL, key, "bad key gk-Abc123XyZ"), "bad key ***");
	assert_string_equal(refused_with("api-key", NULL, key, "bad key GK-ABC123XYZ-987QWERTYPLM!"),
			    "bad key ***!");
	assert_string_equal(refused_with("api-key", NULL, key, "near c123XyZ- here"), "near *** here");
	assert_string_equal(refused_with("api-key", NULL, key, "two: 987qwertyPLM and gk-abc123xyz."),
			    "two: *** and ***.");
	/* 7 characters are not a part worth hiding (nor can they be told from words) */
	assert_string_equal(refused_with("api-key", NULL, key, "short Abc123X"), "short Abc123X");
	/* percent-encoded, in either case of hex digit */
	assert_string_equal(refused_with("bearer", NULL, odd, "q=ey%2Bwith%3D end"), "q=*** end");
	assert_string_equal(refused_with("bearer", NULL, odd, "q=ey%2bwith%3d end"), "q=*** end");
	/* base64 of the secret, or of a part starting at any offset */
	/* base64("gk-Abc123XyZ-987qwertyPLM") = Z2stQWJjMTIzWHlaLTk4N3F3ZXJ0eVBMTQ== */
	assert_string_equal(refused_with("api-key", NULL, key, "b64 Z2stQWJjMTIzWHla"), "b64 ***");
	/* base64("k-Abc123XyZ-987qwertyPLM") = ay1BYmMxMjNYeVotOTg3cXdlcnR5UExN */
	assert_string_equal(refused_with("api-key", NULL, key, "b64 AY1BYMMXMJNYEVOT"), "b64 ***");
	/* base64("-Abc123XyZ-987qwertyPLM") = LUFiYzEyM1h5Wi05ODdxd2VydHlQTE0= */
	assert_string_equal(refused_with("api-key", NULL, key, "b64 ZEyM1h5Wi05OD"), "b64 ***");
	/* the Basic form, truncated and lower-cased: base64("user:pass-word-1") */
	assert_string_equal(refused_with("basic", "user", "pass-word-1", "auth dxnlcjpwyxnzlxdvcm"),
			    "auth ***");
	/* a bearer token's last word is not a form of its own: a 'z' stays a 'z' */
	assert_string_equal(refused_with("bearer", NULL, "tok-en value z", "zero z"), "zero z");
	/* a run that ends inside a character hides the whole character */
	assert_string_equal(refused_with("api-key", NULL, "abcdefgh\xc3\xa9", "x abcdefgh\xc3\xa8 y"),
			    "x *** y");
	assert_string_equal(refused_with("api-key", NULL, "\xc3\xa9" "abcdefgh",
					 "x \xc3\xa8" "abcdefgh y"),
			    "x \xc3\xa8*** y");
}

/* a slug that looks like an id stays a slug (lib/org.h) */
static void test_run_uuid_shaped_slug(void **state)
{
	struct exchange_params p = basic_params;
	struct exchange_result res;

	(void)state;
	fake.status = 200;
	fake.body = BODY("2999-01-01T00:00:00Z");
	p.organization = "slug:12345678-1234-1234-1234-123456789abc";
	assert_int_equal(exchange_run(&fake_ops, &p, &res), 0);
	assert_string_equal(fake.url, SERVER "/v1/token?organization_slug=12345678-1234-1234-1234-123456789abc");
	exchange_result_release(&res);
	fake_forget();
	p.organization = "12345678-1234-1234-1234-123456789abc";
	assert_int_equal(exchange_run(&fake_ops, &p, &res), 0);
	assert_string_equal(fake.url, SERVER "/v1/token?organization_id=12345678-1234-1234-1234-123456789abc");
	exchange_result_release(&res);
}

static void test_run_refused_before_io(void **state)
{
	struct exchange_params p = basic_params;
	struct http_ops old = fake_ops;
	struct exchange_result res;

	(void)state;
	p.kind = "oauth";
	assert_int_equal(exchange_run(&fake_ops, &p, &res), GCERR_INPUT);
	assert_message_has("unknown credential kind 'oauth'");

	gc_error_clear();
	p.kind = "api-key";
	p.secret = "KEY\r\nX-Evil: 1";
	assert_int_equal(exchange_run(&fake_ops, &p, &res), GCERR_INPUT);
	assert_message_has("control character");
	assert_null(strstr(gc_error_message(), "KEY"));

	gc_error_clear();
	old.abi_version = HTTP_ABI_VERSION + 1;
	assert_int_equal(exchange_run(&old, &basic_params, &res), GCERR_FAIL);
	assert_int_equal(exchange_run(NULL, &basic_params, &res), GCERR_FAIL);
	assert_int_equal(fake.calls, 0);
}

/* ---- retries (galileo-credential(1) TOKEN LIFETIME) ---- */

#define OK_200 { .status = 200, .body = BODY("2999-01-01T00:00:00Z") }
#define CONNECT_FAILED { .ret = GCERR_NETWORK, .failure = HTTP_FAIL_TRANSIENT, \
			 .errmsg = "cannot connect to the server" }

static int run_steps(const struct step *steps, int n, long timeout,
		     struct exchange_result *res)
{
	struct exchange_params p = basic_params;

	gc_error_clear();
	fake_forget();
	fake.calls = 0;
	fake.releases = 0;
	fake.steps = steps;
	fake.nsteps = n;
	fake.start = mono_ms();
	p.timeout = timeout;
	return exchange_run(&fake_ops, &p, res);
}

#define RUN(steps, timeout, res) run_steps(steps, sizeof(steps) / sizeof(steps[0]), timeout, res)

/* the wait before call i (1-based index of the later call) */
static int64_t gap(int i)
{
	return fake.at[i] - fake.at[i - 1];
}

static void test_retry_final_at_once(void **state)
{
	static const struct step answers[][1] = {
		{ { .status = 400 } }, { { .status = 401 } }, { { .status = 403 } },
		{ { .status = 404 } }, { { .status = 422, .body = "{\"detail\":\"no\"}" } },
		{ { .status = 302 } }, { { .status = 301 } }, { { .status = 201 } },
		{ { .status = 200, .body = "<html>" } },
		{ { .status = 200,
		    .body = "{\"access_token\":\"SECRETTOKEN\",\"expires_at\":\"2000-01-01T00:00:00Z\"}" } },
		{ { .ret = GCERR_NETWORK, .failure = HTTP_FAIL_PERMANENT,
		    .errmsg = "TLS verification failed: self-signed certificate" } },
		{ { .ret = GCERR_NETWORK, .failure = HTTP_FAIL_PERMANENT,
		    .errmsg = "response body over 64 KiB" } },
		{ { .ret = GCERR_NETWORK, .failure = HTTP_FAIL_PERMANENT,
		    .errmsg = "cannot read the CA file; check ca-file in the configuration" } },
	};
	struct exchange_result res;

	(void)state;
	for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		assert_int_not_equal(run_steps(answers[i], 1, 5, &res), 0);
		assert_null(res.access_token);
		if (fake.calls != 1)
			fail_msg("answer #%zu: %d attempts", i, fake.calls);
		assert_null(strstr(gc_error_message(), "attempts"));
		assert_int_equal(fake.releases, 1);
	}
}

static void test_retry_503_then_200(void **state)
{
	static const struct step steps[] = {
		{ .status = 503, .body = "{\"detail\":\"busy\"}" }, OK_200,
	};
	struct exchange_result res;

	(void)state;
	assert_int_equal(RUN(steps, 5, &res), 0);
	assert_int_equal(fake.calls, 2);
	assert_int_equal(fake.releases, 2);
	assert_string_equal(res.access_token, "tok");
	assert_null(gc_error_message());
	/* backoff 250-500 ms (an upper bound for a loaded machine) */
	assert_true(gap(1) >= 250);
	assert_true(gap(1) < 3000);
	/* the second attempt gets only what is left */
	assert_true(fake.timeouts[0] <= 5000);
	assert_true(fake.timeouts[1] <= 5000 - 250);
	exchange_result_release(&res);
}

static void test_retry_500_always(void **state)
{
	static const struct step steps[] = { { .status = 500, .body = "oops" } };
	struct exchange_result res;

	(void)state;
	assert_int_equal(RUN(steps, 10, &res), GCERR_NETWORK);
	assert_null(res.access_token);
	assert_int_equal(fake.calls, 3);
	assert_int_equal(fake.releases, 3);
	assert_message("the server '" SERVER "' failed the token request (HTTP 500; 3 attempts); "
		       "try again later");
	/* exponential: 250-500 ms, then 500-1000 ms */
	assert_true(gap(1) >= 250 && gap(1) < 3000);
	assert_true(gap(2) >= 500 && gap(2) < 4000);
	assert_true(fake.timeouts[2] <= 10000 - 750);
}

static void test_retry_429_and_transport(void **state)
{
	static const struct step throttled[] = { { .status = 429 }, OK_200 };
	static const struct step down[] = { CONNECT_FAILED };
	static const struct step blip[] = {
		{ .ret = GCERR_NETWORK, .failure = HTTP_FAIL_TRANSIENT,
		  .errmsg = "Failure when receiving data from the peer" },
		OK_200,
	};
	struct exchange_result res;

	(void)state;
	assert_int_equal(RUN(throttled, 10, &res), 0);
	assert_int_equal(fake.calls, 2);
	exchange_result_release(&res);

	assert_int_equal(RUN(down, 10, &res), GCERR_NETWORK);
	assert_int_equal(fake.calls, 3);
	assert_message("cannot reach '" SERVER "': cannot connect to the server (3 attempts)");

	assert_int_equal(RUN(blip, 10, &res), 0);
	assert_int_equal(fake.calls, 2);
	assert_string_equal(res.access_token, "tok");
	exchange_result_release(&res);
}

static void test_retry_last_failure_named(void **state)
{
	/* what failed last is reported, with the count */
	static const struct step then_401[] = { { .status = 502 }, { .status = 401 } };
	static const struct step then_bad[] = { { .status = 504 }, { .status = 200, .body = "[]" } };
	struct exchange_result res;

	(void)state;
	assert_int_equal(RUN(then_401, 10, &res), GCERR_REJECTED);
	assert_int_equal(fake.calls, 2);
	assert_message("the server '" SERVER "' rejected the credential (HTTP 401; 2 attempts); "
		       "run 'galileo-credential login --server " SERVER "'");
	assert_int_equal(RUN(then_bad, 10, &res), GCERR_NETWORK);
	assert_int_equal(fake.calls, 2);
	assert_message("the server '" SERVER "' sent an invalid token response: "
		       "not a JSON object (2 attempts)");
}

static void test_retry_after_honoured(void **state)
{
	static const struct step seconds[] = { { .status = 503, .retry_after = "1" }, OK_200 };
	/* a date one second after the server's Date, whatever our clock says */
	static const struct step date[] = {
		{ .status = 429, .date = "Tue, 14 Nov 2023 22:13:20 GMT",
		  .retry_after = "Tue, 14 Nov 2023 22:13:21 GMT" },
		OK_200,
	};
	/* unreadable, or in the past: the backoff */
	static const struct step junk[] = { { .status = 503, .retry_after = "soon" }, OK_200 };
	static const struct step past[] = {
		{ .status = 503, .date = "Tue, 14 Nov 2023 22:13:20 GMT",
		  .retry_after = "Tue, 14 Nov 2023 22:00:00 GMT" },
		OK_200,
	};
	struct exchange_result res;

	(void)state;
	assert_int_equal(RUN(seconds, 10, &res), 0);
	assert_int_equal(fake.calls, 2);
	assert_true(gap(1) >= 1000 && gap(1) < 4000);
	exchange_result_release(&res);

	assert_int_equal(RUN(date, 10, &res), 0);
	assert_int_equal(fake.calls, 2);
	assert_true(gap(1) >= 1000 && gap(1) < 4000);
	exchange_result_release(&res);

	assert_int_equal(RUN(junk, 10, &res), 0);
	assert_int_equal(fake.calls, 2);
	assert_true(gap(1) >= 250 && gap(1) < 3000);
	exchange_result_release(&res);

	assert_int_equal(RUN(past, 10, &res), 0);
	assert_int_equal(fake.calls, 2);
	assert_true(gap(1) >= 250 && gap(1) < 3000);
	exchange_result_release(&res);
}

static void test_retry_after_beyond_timeout(void **state)
{
	static const struct step seconds[] = { { .status = 429, .retry_after = "5" }, OK_200 };
	static const struct step date[] = {
		{ .status = 503, .date = "Tue, 14 Nov 2023 22:13:20 GMT",
		  .retry_after = "Tue, 14 Nov 2023 23:13:20 GMT" },
		OK_200,
	};
	static const struct step huge[] = {
		{ .status = 503, .retry_after = "99999999999999999999999" }, OK_200,
	};
	struct exchange_result res;
	int64_t t0;

	(void)state;
	t0 = mono_ms();
	assert_int_equal(RUN(seconds, 2, &res), GCERR_NETWORK);
	assert_int_equal(fake.calls, 1);
	assert_message("the server '" SERVER "' failed the token request (HTTP 429); "
		       "it asks to be tried again in 5 s");
	assert_int_equal(RUN(date, 2, &res), GCERR_NETWORK);
	assert_int_equal(fake.calls, 1);
	assert_message("the server '" SERVER "' failed the token request (HTTP 503); "
		       "it asks to be tried again in 3600 s");
	assert_int_equal(RUN(huge, 2, &res), GCERR_NETWORK);
	assert_int_equal(fake.calls, 1);
	assert_message_has("(HTTP 503); it asks to be tried again in ");
	/* at once: no waiting it out */
	assert_true(mono_ms() - t0 < 1500);
}

static void test_retry_within_timeout(void **state)
{
	static const struct step down[] = { CONNECT_FAILED };
	static const struct step silent[] = { { .hang_ms = 60000 }, OK_200 };
	static const struct step slow_503[] = { { .status = 503, .hang_ms = 700 }, OK_200 };
	struct exchange_result res;
	int64_t t0;

	(void)state;
	/* 1 s: room for 2 or 3 quick attempts, never a wait past the end */
	t0 = mono_ms();
	assert_int_equal(RUN(down, 1, &res), GCERR_NETWORK);
	assert_in_range(fake.calls, 2, 3);
	for (int i = 1; i < fake.calls; i++)
		assert_true(fake.at[i] < 1000 + 500);	/* slack for a loaded machine */
	assert_true(fake.timeouts[1] <= 1000 - 250);
	assert_true(mono_ms() - t0 < 3000);
	if (fake.calls == 2)
		assert_message("cannot reach '" SERVER "': cannot connect to the server (2 attempts)");
	else
		assert_message("cannot reach '" SERVER "': cannot connect to the server (3 attempts)");

	/* an attempt that uses up the timeout is the last */
	t0 = mono_ms();
	assert_int_equal(RUN(silent, 1, &res), GCERR_NETWORK);
	assert_int_equal(fake.calls, 1);
	assert_true(fake.timeouts[0] <= 1000);
	assert_true(mono_ms() - t0 >= 1000 - 20);
	assert_message("cannot reach '" SERVER "': timed out after 1 s");

	/* a slow failure leaves less for the rest: attempt 2 gets what is left */
	assert_int_equal(RUN(slow_503, 2, &res), 0);
	assert_int_equal(fake.calls, 2);
	assert_true(fake.timeouts[1] <= 2000 - 700 - 250);
	exchange_result_release(&res);
}

/*
 * Debug output names every step and no secret.  gc_debug_enabled() reads
 * the environment once, so this runs first, in a child that sets it.
 */
static void test_run_debug_has_no_secret(void **state)
{
	FILE *log = tmpfile();
	char buf[4096];
	size_t n;
	int status;
	pid_t pid;

	(void)state;
	assert_non_null(log);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct exchange_result res;
		int err;

		static const struct step steps[] = {
			{ .status = 503, .retry_after = "0" },
			{ .status = 200,
			  .body = "{\"access_token\":\"TOKENVALUE\",\"expires_at\":\"2999-01-01T00:00:00Z\"}" },
		};

		setenv("GALILEO_CREDENTIAL_DEBUG", "1", 1);
		dup2(fileno(log), 2);
		fake.steps = steps;
		fake.nsteps = 2;
		err = exchange_run(&fake_ops, &basic_params, &res);
		exchange_result_release(&res);
		fake_forget();
		_exit(err ? 1 : gc_debug_enabled() ? 0 : 2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	rewind(log);
	n = fread(buf, 1, sizeof(buf) - 1, log);
	buf[n] = '\0';
	fclose(log);
	if (!strstr(buf, "GET " SERVER "/v1/token?organization_slug=acme%20corp"))
		fail_msg("debug log lacks the request: %s", buf);
	assert_non_null(strstr(buf, "HTTP 200"));
	/* each attempt and each wait */
	if (!strstr(buf, "attempt 1 of 3: GET ") || !strstr(buf, "HTTP 503") ||
	    !strstr(buf, "Retry-After: 0") || !strstr(buf, "before attempt 2") ||
	    !strstr(buf, "attempt 2 of 3: GET "))
		fail_msg("debug log lacks the attempts: %s", buf);
	assert_null(strstr(buf, "TOKENVALUE"));
	assert_null(strstr(buf, "pass"));
	assert_null(strstr(buf, "dXNlcjpwYXNz"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* first: no earlier test may have read GALILEO_CREDENTIAL_DEBUG */
		cmocka_unit_test_setup_teardown(test_run_debug_has_no_secret, run_setup, run_teardown),
		cmocka_unit_test_setup(test_build_url, setup),
		cmocka_unit_test_setup(test_auth_header, setup),
		cmocka_unit_test_setup(test_200_expires_at_forms, setup),
		cmocka_unit_test_setup(test_200_date_header, setup),
		cmocka_unit_test_setup(test_200_jwt_fallback, setup),
		cmocka_unit_test_setup(test_200_jwt_fallback_date, setup),
		cmocka_unit_test_setup(test_200_no_expiry, setup),
		cmocka_unit_test_setup(test_200_already_expired, setup),
		cmocka_unit_test_setup(test_200_malformed, setup),
		cmocka_unit_test_setup(test_200_token_charset, setup),
		cmocka_unit_test_setup(test_rejected, setup),
		cmocka_unit_test_setup(test_422, setup),
		cmocka_unit_test_setup(test_other_status, setup),
		cmocka_unit_test_setup_teardown(test_run_ok, run_setup, run_teardown),
		cmocka_unit_test_setup_teardown(test_run_date_corrected, run_setup, run_teardown),
		cmocka_unit_test_setup_teardown(test_run_transport_error, run_setup, run_teardown),
		cmocka_unit_test_setup_teardown(test_run_statuses, run_setup, run_teardown),
		cmocka_unit_test_setup_teardown(test_run_refused_before_io, run_setup, run_teardown),
		cmocka_unit_test_setup_teardown(test_run_422_redacts_sent_forms, run_setup, run_teardown),
		cmocka_unit_test_setup_teardown(test_run_422_redacts_parts, run_setup, run_teardown),
		cmocka_unit_test_setup_teardown(test_run_uuid_shaped_slug, run_setup, run_teardown),
		cmocka_unit_test_setup_teardown(test_retry_final_at_once, run_setup, run_teardown),
		cmocka_unit_test_setup_teardown(test_retry_503_then_200, run_setup, run_teardown),
		cmocka_unit_test_setup_teardown(test_retry_500_always, run_setup, run_teardown),
		cmocka_unit_test_setup_teardown(test_retry_429_and_transport, run_setup, run_teardown),
		cmocka_unit_test_setup_teardown(test_retry_last_failure_named, run_setup, run_teardown),
		cmocka_unit_test_setup_teardown(test_retry_after_honoured, run_setup, run_teardown),
		cmocka_unit_test_setup_teardown(test_retry_after_beyond_timeout, run_setup, run_teardown),
		cmocka_unit_test_setup_teardown(test_retry_within_timeout, run_setup, run_teardown),
	};

	/* debug must be decided in the child of the debug test, not here */
	unsetenv("GALILEO_CREDENTIAL_DEBUG");
	secret_json_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
