/* SPDX-License-Identifier: MIT */
/*
 * GET /v1/token: building the request, reading the answer
 * (galileo-credential(1) SERVER AND ORGANIZATION, TOKEN LIFETIME).
 */
#ifndef GC_EXCHANGE_H
#define GC_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>

#define EXCHANGE_DEFAULT_PATH "/v1/token"
#define EXCHANGE_DEFAULT_TIMEOUT 30	/* seconds */

struct http_ops;

struct exchange_params {
	const char *server;		/* canonical */
	const char *token_path;		/* "/v1/token" */
	const char *organization;	/* encoded (lib/org.h); NULL/"" none */
	const char *kind;		/* api-key | basic | bearer */
	const char *username;		/* basic */
	const char *secret;
	const char *ca_file;
	long timeout;			/* seconds for the whole exchange; <= 0: the default */
	struct http_call *call;		/* begun by exchange_begin() for this URL, or NULL */
};

struct exchange_result {
	char *access_token;	/* secret: secret_free */
	char *token_type;
	int64_t expires_at;	/* local clock, Date-corrected; 0 when unknown */
	int64_t lifetime;	/* seconds, as received; 0 when unknown */
};

void exchange_result_release(struct exchange_result *res);

/*
 * URL for the exchange: server + token_path + "?organization_id=…" or
 * "?organization_slug=…" (escaped), as the organization was given.  New
 * string, caller frees.
 */
char *exchange_build_url(const struct exchange_params *p);

/*
 * Header carrying the credential: "Galileo-API-Key: KEY",
 * "Authorization: Basic base64(user:pass)" or "Authorization: Bearer TOKEN".
 * New string, caller secret_free()s.  NULL for an unknown kind.
 * (added) kind NULL means "api-key"; also NULL when the secret or username
 * holds a control character, which could inject request headers.
 */
char *exchange_auth_header(const char *kind, const char *username, const char *secret);

/*
 * Interpret a response.  200: parse access_token (non-empty string of
 * printable ASCII without spaces, at most 8 KiB), token_type (string,
 * optional), expires_at (string, RFC 3339).  When expires_at is missing
 * the JWT exp claim is used, and when neither is readable the token is
 * returned with expires_at 0 (not cacheable).  An expiry already past is
 * GCERR_NETWORK.  date_header may be NULL; now is the local clock.
 * 401/403: GCERR_REJECTED.  422: GCERR_INPUT with the detail entries as
 * "loc.a.b: msg; …".  Anything else, or a malformed 200: GCERR_NETWORK.
 * Messages via gc_error() name the server; no secret ever.
 */
int exchange_parse_response(const char *server, long status, const char *body,
			    size_t body_len, const char *date_header, int64_t now,
			    struct exchange_result *res);

/*
 * Begin the exchange's connection before the credential is known (p's
 * credential fields unused): the first attempt of exchange_run() with
 * p->call set sends on it.  NULL when the transport cannot.
 */
struct http_call *exchange_begin(const struct http_ops *http, const struct exchange_params *p);

/* give up a begun call: nothing is sent on it */
void exchange_abandon(const struct http_ops *http, struct http_call *call);

/*
 * Do the whole exchange with the loaded transport, retrying what another
 * attempt may cure (galileo-credential(1) TOKEN LIFETIME): a transient
 * transport failure (HTTP_FAIL_TRANSIENT, HTTP_FAIL_TIMEOUT), 5xx and 429.  At
 * most 3 attempts; between them a wait of 250-500 ms, then 500-1000 ms (random
 * jitter), or what Retry-After asks when that is longer.  Every attempt and
 * wait fits in p->timeout: each attempt gets the time left, and when a wait
 * would not leave time for another attempt (a Retry-After beyond the timeout,
 * say), the last failure is final at once.  Anything else (other 4xx, 3xx, TLS
 * verification, a malformed 200, an oversize body) is final at the first
 * attempt.  The one message names the server, what failed last and, when more
 * than one, the number of attempts.
 */
int exchange_run(const struct http_ops *http, const struct exchange_params *p,
		 struct exchange_result *res);

#endif
