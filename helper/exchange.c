#include "autoconfig.h"

#include "helper/exchange.h"
#include "helper/codec.h"
#include "helper/common.h"
#include "helper/http.h"
#include "helper/tokentime.h"
#include "helper/url.h"
#include "keystore/keystore.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TOKEN (8 * 1024)
#define DEFAULT_TIMEOUT 30

void exchange_result_release(struct exchange_result *res)
{
	secret_free(res->access_token);
	free(res->token_type);
	memset(res, 0, sizeof(*res));
}

char *exchange_build_url(const struct exchange_params *p)
{
	const char *path = p->token_path && *p->token_path ? p->token_path : "/v1/token";
	const char *slash = *path == '/' ? "" : "/";
	char *esc, *url;

	if (!p->organization || !*p->organization)
		return xasprintf("%s%s%s", p->server, slash, path);
	esc = url_escape(p->organization);
	url = xasprintf("%s%s%s%c%s=%s", p->server, slash, path,
			strchr(path, '?') ? '&' : '?',
			url_is_uuid(p->organization) ? "organization_id" : "organization_slug",
			esc);
	free(esc);
	return url;
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

char *exchange_auth_header(const char *kind, const char *username, const char *secret)
{
	char *pair, *b64, *hdr;

	if (!kind)
		kind = "api-key";	/* the contract's default kind */
	/*
	 * A CR or LF in a header value would let a stored secret inject
	 * headers into the request; refuse it like an unknown kind.
	 */
	if (!secret || !credential_kind_valid(kind) || has_control(secret) ||
	    (username && has_control(username)))
		return NULL;
	if (!strcmp(kind, "api-key"))
		return xasprintf("Galileo-API-Key: %s", secret);
	if (!strcmp(kind, "bearer"))
		return xasprintf("Authorization: Bearer %s", secret);
	pair = xasprintf("%s:%s", username ? username : "", secret);
	b64 = codec_base64((const unsigned char *)pair, strlen(pair));
	secret_free(pair);
	if (!b64)
		return NULL;
	hdr = xasprintf("Authorization: Basic %s", b64);
	secret_free(b64);
	return hdr;
}

static bool token_ok(const char *t, size_t len)
{
	if (len == 0 || len > MAX_TOKEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return false;
	return true;
}

static int malformed(const char *server, const char *why)
{
	return gc_error(GCERR_NETWORK,
			"the server '%s' sent an invalid token response: %s",
			server, why);
}

static int parse_200(const char *server, const char *body, size_t body_len,
		     const char *date_header, int64_t now,
		     struct exchange_result *res)
{
	json_t *root, *tok, *type, *exp;
	int64_t expires = 0, server_date = -1;
	json_error_t jerr;
	int err = 0;

	/* jerr is never shown: its text can quote the token */
	root = json_loadb(body, body_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root)
		return malformed(server, "not JSON");
	if (!json_is_object(root)) {
		err = malformed(server, "not a JSON object");
		goto out;
	}
	tok = json_object_get(root, "access_token");
	type = json_object_get(root, "token_type");
	exp = json_object_get(root, "expires_at");
	if (!json_is_string(tok)) {
		err = malformed(server, "access_token is missing or not a string");
		goto out;
	}
	if (!token_ok(json_string_value(tok), json_string_length(tok))) {
		err = malformed(server, "access_token is not a printable token");
		goto out;
	}
	if (type && !json_is_string(type)) {
		err = malformed(server, "token_type is not a string");
		goto out;
	}
	if (exp && !json_is_string(exp)) {
		err = malformed(server, "expires_at is not a string");
		goto out;
	}

	if (exp && !tokentime_parse_rfc3339(json_string_value(exp), &expires)) {
		gc_debug("exchange: expires_at %s", json_string_value(exp));
	} else if (!tokentime_jwt_exp(json_string_value(tok), &expires)) {
		gc_debug("exchange: expires_at %s, using the token's exp claim",
			 exp ? "unreadable" : "missing");
	} else {
		/* the contract: hand the token out, but never cache it */
		gc_debug("exchange: token has no readable expiry; not cacheable");
		expires = 0;
	}

	if (expires) {
		if (date_header &&
		    tokentime_parse_http_date(date_header, &server_date)) {
			gc_debug("exchange: unreadable Date header ignored");
			server_date = -1;
		}
		expires = tokentime_local_expiry(expires, server_date, now);
		if (expires <= now) {
			err = gc_error(GCERR_NETWORK,
				       "the server '%s' sent a token that has already expired",
				       server);
			goto out;
		}
		res->lifetime = expires - now;
	}
	res->expires_at = expires;
	res->access_token = xstrdup(json_string_value(tok));
	/* OpenAPI default when absent */
	res->token_type = xstrdup(type ? json_string_value(type) : "bearer");
out:
	json_decref(root);
	return err;
}

/*
 * The server's words go into our one-line message: keep terminal control
 * sequences out of it.
 */
static void append_clean(char **buf, size_t *len, const char *s)
{
	size_t n = strlen(s);

	*buf = realloc(*buf, *len + n + 1);
	if (!*buf)
		abort();
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];

		(*buf)[(*len)++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	(*buf)[*len] = '\0';
}

/* "loc.a.b: msg; …" from a FastAPI/pydantic 422 body, or NULL */
static char *detail_text(const char *body, size_t body_len)
{
	json_t *root, *detail, *entry;
	char *out = NULL;
	size_t len = 0, i;

	root = json_loadb(body, body_len, 0, NULL);
	detail = json_object_get(root, "detail");
	if (json_is_string(detail))	/* HTTPException(422, detail="…") */
		append_clean(&out, &len, json_string_value(detail));
	json_array_foreach(detail, i, entry) {
		json_t *loc = json_object_get(entry, "loc");
		json_t *msg = json_object_get(entry, "msg");
		json_t *part;
		size_t j;

		if (!json_is_string(msg))
			continue;
		if (len)
			append_clean(&out, &len, "; ");
		json_array_foreach(loc, j, part) {
			char num[32];

			if (j)
				append_clean(&out, &len, ".");
			if (json_is_integer(part)) {
				snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
					 json_integer_value(part));
				append_clean(&out, &len, num);
			} else if (json_is_string(part)) {
				append_clean(&out, &len, json_string_value(part));
			}
		}
		if (json_array_size(loc))
			append_clean(&out, &len, ": ");
		append_clean(&out, &len, json_string_value(msg));
	}
	json_decref(root);
	return out;
}

int exchange_parse_response(const char *server, long status, const char *body,
			    size_t body_len, const char *date_header, int64_t now,
			    struct exchange_result *res)
{
	char *detail;
	int err;

	memset(res, 0, sizeof(*res));
	if (!body) {
		body = "";
		body_len = 0;
	}
	if (status == 200)
		return parse_200(server, body, body_len, date_header, now, res);
	if (status == 401 || status == 403)
		return gc_error(GCERR_REJECTED,
				"the server '%s' rejected the credential (HTTP %ld); run 'galileo-credential login --server %s'",
				server, status, server);
	if (status == 422) {
		detail = detail_text(body, body_len);
		if (detail)
			err = gc_error(GCERR_INPUT,
				       "the server '%s' refused the request: %s",
				       server, detail);
		else
			err = gc_error(GCERR_INPUT,
				       "the server '%s' refused the request (HTTP 422)",
				       server);
		free(detail);
		return err;
	}
	if (status >= 300 && status < 400)
		return gc_error(GCERR_NETWORK,
				"the server '%s' redirected the request (HTTP %ld); redirects are not followed",
				server, status);
	if (status >= 500 || status == 429)
		return gc_error(GCERR_NETWORK,
				"the server '%s' failed the token request (HTTP %ld); try again later",
				server, status);
	return gc_error(GCERR_NETWORK,
			"the server '%s' failed the token request (HTTP %ld); check the server URL and token-path",
			server, status);
}

int exchange_run(const struct http_ops *http, const struct exchange_params *p,
		 struct exchange_result *res)
{
	struct http_request req = { 0 };
	struct http_response resp = { 0 };
	const char *kind = p->kind ? p->kind : "api-key";
	char errbuf[256] = "";
	char *url, *header;
	int err;

	memset(res, 0, sizeof(*res));
	if (!http || http->abi_version != HTTP_ABI_VERSION || !http->get)
		return gc_error(GCERR_FAIL, "the HTTP module is missing or of another version");
	if (!credential_kind_valid(kind))
		return gc_error(GCERR_INPUT, "unknown credential kind '%s' for '%s'",
				kind, p->server);
	header = exchange_auth_header(kind, p->username, p->secret);
	if (!header)
		return gc_error(GCERR_INPUT,
				"the credential for '%s' holds a control character; run 'galileo-credential login --server %s'",
				p->server, p->server);
	url = exchange_build_url(p);

	req.url = url;
	req.auth_header = header;
	req.user_agent = "galileo-credential/" PACKAGE_VERSION;
	req.ca_file = p->ca_file;
	req.timeout_ms = (p->timeout > 0 ? p->timeout : DEFAULT_TIMEOUT) * 1000;
	req.debug = gc_debug_enabled();
	gc_debug("exchange: GET %s (%s credential: ***)", url, kind);

	err = http->get(&req, &resp, errbuf, sizeof(errbuf));
	secret_free(header);
	if (err) {
		gc_debug("exchange: transport failed: %s", errbuf);
		err = gc_error(GCERR_NETWORK, "cannot reach '%s': %s", p->server,
			       *errbuf ? errbuf : "unknown error");
	} else {
		gc_debug("exchange: HTTP %ld, %zu byte body%s%s", resp.status,
			 resp.body_len, resp.date ? ", Date: " : "",
			 resp.date ? resp.date : "");
		err = exchange_parse_response(p->server, resp.status, resp.body,
					      resp.body_len, resp.date,
					      (int64_t)time(NULL), res);
		if (!err)
			gc_debug("exchange: got a token (***), expires_at %lld, lifetime %lld s",
				 (long long)res->expires_at, (long long)res->lifetime);
	}
	if (http->response_release)
		http->response_release(&resp);
	free(url);
	return err;
}
