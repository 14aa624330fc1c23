/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "token/exchange.h"
#include "lib/codec.h"
#include "lib/common.h"
#include "token/http.h"
#include "lib/tokentime.h"
#include "lib/url.h"
#include "keystore/stack.h"
#include "lib/org.h"
#include "lib/text.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define MAX_TOKEN (8 * 1024)
#define MAX_ATTEMPTS 3
#define BACKOFF_MS 250		/* first wait 250-500 ms, then doubling */
#define MIN_ATTEMPT_MS 100	/* no retry with less time than this left */

/*
 * How many attempts a message reports ("" for one), and when the server
 * asked to be tried again, when that was too late for us.
 */
struct tries {
	char semi[32];		/* "; 3 attempts", inside "(HTTP 503…)" */
	char paren[32];		/* " (3 attempts)", after a phrase */
	long retry_in;		/* seconds; 0: not said */
};

static void tries_init(struct tries *t, int attempts, long retry_in)
{
	memset(t, 0, sizeof(*t));
	if (attempts > 1) {
		snprintf(t->semi, sizeof(t->semi), "; %d attempts", attempts);
		snprintf(t->paren, sizeof(t->paren), " (%d attempts)", attempts);
	}
	t->retry_in = retry_in;
}

void exchange_result_release(struct exchange_result *res)
{
	secret_free(res->access_token);
	free(res->token_type);
	memset(res, 0, sizeof(*res));
}

char *exchange_build_url(const struct exchange_params *p)
{
	const char *path = p->token_path && *p->token_path ? p->token_path : EXCHANGE_DEFAULT_PATH;
	const char *slash = *path == '/' ? "" : "/";
	char *esc, *url;

	if (!p->organization || !*p->organization)
		return xasprintf("%s%s%s", p->server, slash, path);
	esc = url_escape(org_value(p->organization));
	url = xasprintf("%s%s%s%c%s=%s", p->server, slash, path,
			strchr(path, '?') ? '&' : '?',
			org_is_id(p->organization) ? "organization_id" : "organization_slug",
			esc);
	free(esc);
	return url;
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
	if (!secret || !credential_kind_valid(kind) || text_has_control(secret) ||
	    (username && text_has_control(username)))
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

static int malformed(const char *server, const char *why, const struct tries *t)
{
	return gc_error(GCERR_NETWORK,
			"the server '%s' sent an invalid token response: %s%s",
			server, why, t->paren);
}

/* the fields of a 200's object, checked; the reason when one is wrong */
static const char *check_fields(json_t *root, json_t **tok, json_t **type, json_t **exp)
{
	if (!json_is_object(root))
		return "not a JSON object";
	*tok = json_object_get(root, "access_token");
	*type = json_object_get(root, "token_type");
	*exp = json_object_get(root, "expires_at");
	if (!json_is_string(*tok))
		return "access_token is missing or not a string";
	if (!token_ok(json_string_value(*tok), json_string_length(*tok)))
		return "access_token is not a printable token";
	if (*type && !json_is_string(*type))
		return "token_type is not a string";
	if (*exp && !json_is_string(*exp))
		return "expires_at is not a string";
	return NULL;
}

/*
 * The token's expiry on the local clock, Date-corrected, into *expires:
 * from expires_at, else the JWT's exp claim.  false when neither can be
 * read (the contract: hand the token out, but never cache it).
 */
static bool expiry_of(json_t *tok, json_t *exp, const char *date_header, int64_t now,
		      int64_t *expires)
{
	int64_t server_date = -1;

	if (exp && !tokentime_parse_rfc3339(json_string_value(exp), expires)) {
		gc_debug("exchange: expires_at %s", json_string_value(exp));
	} else if (!tokentime_jwt_exp(json_string_value(tok), expires)) {
		gc_debug("exchange: expires_at %s, using the token's exp claim",
			 exp ? "unreadable" : "missing");
	} else {
		gc_debug("exchange: token has no readable expiry; not cacheable");
		*expires = 0;
		return false;
	}
	if (date_header && tokentime_parse_http_date(date_header, &server_date)) {
		gc_debug("exchange: unreadable Date header ignored");
		server_date = -1;
	} else if (date_header && !tokentime_date_believed(server_date, now)) {
		gc_debug("exchange: the Date header is more than %d s from the local clock; not believed",
			 TOKENTIME_DATE_TRUST);
	}
	*expires = tokentime_local_expiry(*expires, server_date, now);
	return true;
}

static int parse_200(const char *server, const char *body, size_t body_len,
		     const char *date_header, int64_t now, const struct tries *t,
		     struct exchange_result *res)
{
	json_t *root, *tok = NULL, *type = NULL, *exp = NULL;
	const char *why;
	json_error_t jerr;
	int64_t expires;
	bool known;
	int err = 0;

	/* jerr is never shown: its text can quote the token */
	root = json_loadb(body, body_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root)
		return malformed(server, "not JSON", t);
	if ((why = check_fields(root, &tok, &type, &exp))) {
		err = malformed(server, why, t);
		goto out;
	}
	known = expiry_of(tok, exp, date_header, now, &expires);
	/* an expiry read as the epoch itself is long past, not unknown */
	if (known && expires <= now) {
		err = gc_error(GCERR_NETWORK, "the server '%s' sent a token that has already expired%s",
			       server, t->paren);
		goto out;
	}
	res->lifetime = known ? expires - now : 0;
	res->expires_at = expires;
	res->access_token = xstrdup(json_string_value(tok));
	/* OpenAPI default when absent */
	res->token_type = xstrdup(type ? json_string_value(type) : "bearer");
out:
	json_decref(root);
	return err;
}

/* append s to the growing *buf (gc_error() escapes what it must show) */
static void append(char **buf, size_t *len, const char *s)
{
	size_t n = strlen(s);

	*buf = xrealloc(*buf, *len + n + 1);
	memcpy(*buf + *len, s, n);
	*len += n;
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
		append(&out, &len, json_string_value(detail));
	json_array_foreach(detail, i, entry) {
		json_t *loc = json_object_get(entry, "loc");
		json_t *msg = json_object_get(entry, "msg");
		json_t *part;
		size_t j;

		if (!json_is_string(msg))
			continue;
		if (len)
			append(&out, &len, "; ");
		json_array_foreach(loc, j, part) {
			char num[32];

			if (j)
				append(&out, &len, ".");
			if (json_is_integer(part)) {
				snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
					 json_integer_value(part));
				append(&out, &len, num);
			} else if (json_is_string(part)) {
				append(&out, &len, json_string_value(part));
			}
		}
		if (json_array_size(loc))
			append(&out, &len, ": ");
		append(&out, &len, json_string_value(msg));
	}
	json_decref(root);
	return out;
}

/* every copy of secret in text (a server echoing it back) becomes "***" */
static char *redact_one(char *text, const char *secret)
{
	size_t n = secret ? strlen(secret) : 0, off = 0;
	char *hit, *out;

	while (text && n && (hit = strstr(text + off, secret))) {
		off = (size_t)(hit - text);
		out = xasprintf("%.*s***%s", (int)off, text, hit + n);
		secret_free(text);
		text = out;
		off += 3;
	}
	return text;
}

/*
 * Parts of a secret (galileo-credential(1) SECURITY): a server that echoes
 * any REDACT_RUN characters of a secret, in any letter case, raw, base64 or
 * percent-encoded, has echoed enough to show.  Every REDACT_RUN-byte window
 * of each form, folded to lower case, is one 64-bit gram; every window of
 * the text found among them is hidden.
 */
#define REDACT_RUN 8

struct grams {
	uint64_t *v;
	size_t n, cap;
};

static uint64_t gram_at(const char *p)
{
	uint64_t g = 0;

	for (int i = 0; i < REDACT_RUN; i++) {
		unsigned char c = (unsigned char)p[i];

		g = g << 8 | (c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	return g;
}

/* the grams of form; form is wiped and freed */
static void grams_add(struct grams *g, char *form)
{
	size_t len = form ? strlen(form) : 0;

	for (size_t i = 0; i + REDACT_RUN <= len; i++) {
		if (g->n == g->cap) {
			uint64_t *v = xcalloc(g->cap = g->cap ? 2 * g->cap : 64, sizeof(*v));

			if (g->n)
				memcpy(v, g->v, g->n * sizeof(*v));
			secret_freezero(g->v, g->n * sizeof(*v));
			g->v = v;
		}
		g->v[g->n++] = gram_at(form + i);
	}
	secret_free(form);
}

static int gram_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* s as it may come back: raw, percent-encoded, base64 at each of the 3 alignments */
static void grams_of_secret(struct grams *g, const char *s)
{
	size_t len = strlen(s);

	grams_add(g, xstrdup(s));
	grams_add(g, url_escape(s));
	for (size_t k = 0; k < 3 && k < len; k++)
		grams_add(g, codec_base64((const unsigned char *)s + k, len - k));
}

/* marked[i] for each byte of text inside a window of a sent secret */
static bool mark_runs(const char *text, const char *const *sent, unsigned char *marked)
{
	struct grams g = { 0 };
	size_t len = strlen(text);
	bool any = false;

	for (; sent && *sent; sent++)
		grams_of_secret(&g, *sent);
	if (g.n)
		qsort(g.v, g.n, sizeof(*g.v), gram_cmp);
	for (size_t i = 0; g.n && i + REDACT_RUN <= len; i++) {
		uint64_t key = gram_at(text + i);

		if (bsearch(&key, g.v, g.n, sizeof(*g.v), gram_cmp)) {
			memset(marked + i, 1, REDACT_RUN);
			any = true;
		}
	}
	secret_freezero(g.v, g.cap * sizeof(*g.v));
	return any;
}

static bool utf8_continuation(char c)
{
	return ((unsigned char)c & 0xc0) == 0x80;
}

/* text with each run of a sent secret (whole characters) as "***"; text is freed */
static char *redact_runs(char *text, const char *const *sent)
{
	size_t len = text ? strlen(text) : 0, o = 0;
	unsigned char *marked;
	char *out;

	if (len < REDACT_RUN)
		return text;
	marked = xcalloc(len, 1);
	if (!mark_runs(text, sent, marked)) {
		free(marked);
		return text;
	}
	out = xmalloc(len + 4);
	for (size_t i = 0; i < len;) {
		size_t end = i;

		if (!marked[i]) {
			out[o++] = text[i++];
			continue;
		}
		if (utf8_continuation(text[i])) {
			/* the run starts inside a character: hide all of it */
			while (o && utf8_continuation(out[o - 1]))
				o--;
			if (o && (unsigned char)out[o - 1] >= 0xc0)
				o--;
		}
		/* and ends after the last byte of a character */
		while (end < len && (marked[end] || utf8_continuation(text[end])))
			end++;
		memcpy(out + o, "***", 3);
		o += 3;
		i = end;
	}
	/* what was backed over may be a secret's first bytes */
	memset(out + o, 0, len + 4 - o);
	free(marked);
	secret_free(text);
	return out;
}

/* each form of the credential that was sent (NULL-terminated list) */
static char *redact(char *text, const char *const *sent)
{
	for (const char *const *s = sent; s && *s; s++)
		text = redact_one(text, *s);
	return redact_runs(text, sent);
}

/* sent: every form of the credential that went out, never to be shown */
static int parse_response(const char *server, long status, const char *body,
			  size_t body_len, const char *date_header, int64_t now,
			  const struct tries *t, const char *const *sent,
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
		return parse_200(server, body, body_len, date_header, now, t, res);
	if (status == 401 || status == 403)
		return gc_error(GCERR_REJECTED,
				"the server '%s' rejected the credential (HTTP %ld%s); run 'galileo-credential login --server %s'",
				server, status, t->semi, server);
	if (status == 422) {
		detail = redact(detail_text(body, body_len), sent);
		if (detail)
			err = gc_error(GCERR_INPUT,
				       "the server '%s' refused the request: %s%s",
				       server, detail, t->paren);
		else
			err = gc_error(GCERR_INPUT,
				       "the server '%s' refused the request (HTTP 422%s)",
				       server, t->semi);
		secret_free(detail);
		return err;
	}
	if (status >= 300 && status < 400)
		return gc_error(GCERR_NETWORK,
				"the server '%s' redirected the request (HTTP %ld%s); redirects are not followed",
				server, status, t->semi);
	if ((status >= 500 || status == 429) && t->retry_in > 0)
		return gc_error(GCERR_NETWORK,
				"the server '%s' failed the token request (HTTP %ld%s); it asks to be tried again in %ld s",
				server, status, t->semi, t->retry_in);
	if (status >= 500 || status == 429)
		return gc_error(GCERR_NETWORK,
				"the server '%s' failed the token request (HTTP %ld%s); try again later",
				server, status, t->semi);
	return gc_error(GCERR_NETWORK,
			"the server '%s' failed the token request (HTTP %ld%s); check the server URL and token-path",
			server, status, t->semi);
}

int exchange_parse_response(const char *server, long status, const char *body,
			    size_t body_len, const char *date_header, int64_t now,
			    struct exchange_result *res)
{
	struct tries one;

	tries_init(&one, 1, 0);
	return parse_response(server, status, body, body_len, date_header, now, &one, NULL, res);
}

static int64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/*
 * The wait before attempt n + 1: BACKOFF_MS << (n - 1), plus up to as much
 * again at random, so that clients failed by the same outage do not come
 * back in step.  The kernel's generator; without it, no jitter.
 */
static int64_t backoff_ms(int n)
{
	int64_t base = (int64_t)BACKOFF_MS << (n - 1);
	uint32_t r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = 0;
	return base + r % (uint32_t)(base + 1);
}

/*
 * Retry-After in ms: delta-seconds, or an HTTP-date taken relative to the
 * response's Date (else the local clock), so a skewed clock does not
 * stretch it.  -1 when absent or unreadable.
 */
static int64_t retry_after_ms(const struct http_response *resp)
{
	const char *v = resp->retry_after;
	int64_t secs = 0, when, base;

	if (!v || !*v)
		return -1;
	if (strspn(v, "0123456789") == strlen(v)) {
		for (; *v && secs < 100000000; v++)	/* a few years is forever */
			secs = secs * 10 + (*v - '0');
		return secs * 1000;
	}
	if (tokentime_parse_http_date(v, &when))
		return -1;
	if (!resp->date || tokentime_parse_http_date(resp->date, &base))
		base = (int64_t)time(NULL);
	return when > base ? (when - base) * 1000 : 0;
}

/* what one exchange carries from attempt to attempt */
struct attempts {
	const struct http_ops *http;
	struct http_call *call;		/* the first attempt's, begun earlier */
	const char *kind;
	struct http_request req;
	struct http_response resp;
	char errbuf[256];
	int64_t deadline;
	int n;			/* attempts made */
	int err;		/* of the last attempt's transport */
	bool transient;		/* the last failure may be cured by another try */
	long retry_in;		/* seconds the server asked for, beyond our time */
};

static int64_t attempt_once(struct attempts *a)
{
	int64_t left = a->deadline - monotonic_ms();

	a->req.timeout_ms = left > 0 ? (long)left : 1;
	gc_debug("exchange: attempt %d of %d: GET %s (%s credential: ***), %ld ms left",
		 a->n, MAX_ATTEMPTS, a->req.url, a->kind, a->req.timeout_ms);
	a->errbuf[0] = '\0';
	if (a->call) {
		a->err = a->http->send(a->call, a->req.auth_header, &a->resp, a->errbuf,
				       sizeof(a->errbuf));
		a->call = NULL;
	} else {
		a->err = a->http->get(&a->req, &a->resp, a->errbuf, sizeof(a->errbuf));
	}
	if (a->err) {
		a->transient = a->resp.failure == HTTP_FAIL_TRANSIENT ||
			       a->resp.failure == HTTP_FAIL_TIMEOUT;
		gc_debug("exchange: attempt %d failed: %s", a->n,
			 *a->errbuf ? a->errbuf : "unknown error");
		return -1;
	}
	a->transient = a->resp.status >= 500 || a->resp.status == 429;
	gc_debug("exchange: HTTP %ld, %zu byte body%s%s%s%s", a->resp.status,
		 a->resp.body_len, a->resp.date ? ", Date: " : "",
		 a->resp.date ? a->resp.date : "",
		 a->resp.retry_after ? ", Retry-After: " : "",
		 a->resp.retry_after ? a->resp.retry_after : "");
	return a->transient ? retry_after_ms(&a->resp) : -1;
}

/*
 * galileo-credential(1) TOKEN LIFETIME: every attempt and every wait inside
 * timeout
 */
static void run_attempts(struct attempts *a)
{
	int64_t wait, left, ra;

	for (a->n = 1;; a->n++) {
		ra = attempt_once(a);
		if (!a->transient || a->n == MAX_ATTEMPTS)
			return;
		wait = backoff_ms(a->n);
		if (ra > wait)
			wait = ra;
		left = a->deadline - monotonic_ms();
		if (wait + MIN_ATTEMPT_MS > left) {
			gc_debug("exchange: no attempt %d: waiting %lld ms would leave too little of %lld ms",
				 a->n + 1, (long long)wait, (long long)left);
			if (ra > left)	/* the server's own word: say it */
				a->retry_in = (long)((ra + 999) / 1000);
			return;
		}
		gc_debug("exchange: waiting %lld ms before attempt %d%s", (long long)wait,
			 a->n + 1, ra >= 0 ? " (Retry-After)" : "");
		if (a->http->response_release)
			a->http->response_release(&a->resp);
		memset(&a->resp, 0, sizeof(a->resp));
		sleep_ms(wait);
	}
}

/* the last attempt's outcome as the one message of the exchange */
static int outcome(struct attempts *a, const struct exchange_params *p, long timeout,
		   const char *const *sent, struct exchange_result *res)
{
	struct tries t;
	int err;

	tries_init(&t, a->n, a->retry_in);
	if (a->err && a->resp.failure == HTTP_FAIL_TIMEOUT)
		return gc_error(GCERR_NETWORK, "cannot reach '%s': timed out after %ld s%s",
				p->server, timeout, t.paren);
	if (a->err)
		return gc_error(GCERR_NETWORK, a->transient ? "cannot reach '%s': %s%s"
							    : "the request to '%s' failed: %s%s",
				p->server, *a->errbuf ? a->errbuf : "unknown error", t.paren);
	err = parse_response(p->server, a->resp.status, a->resp.body, a->resp.body_len,
			     a->resp.date, (int64_t)time(NULL), &t, sent, res);
	if (!err)
		gc_debug("exchange: got a token (***), expires_at %lld, lifetime %lld s",
			 (long long)res->expires_at, (long long)res->lifetime);
	return err;
}

static void request_of(const struct exchange_params *p, struct http_request *req, char *url)
{
	long timeout = p->timeout > 0 ? p->timeout : EXCHANGE_DEFAULT_TIMEOUT;

	memset(req, 0, sizeof(*req));
	req->url = url;
	req->user_agent = "galileo-credential/" PACKAGE_VERSION;
	req->ca_file = p->ca_file;
	req->debug = gc_debug_enabled();
	req->timeout_ms = timeout * 1000;
}

struct http_call *exchange_begin(const struct http_ops *http, const struct exchange_params *p)
{
	struct http_request req;
	struct http_call *call;
	char *url;

	if (!http || http->abi_version != HTTP_ABI_VERSION || !http->begin)
		return NULL;
	url = exchange_build_url(p);
	request_of(p, &req, url);
	call = http->begin(&req);
	free(url);
	return call;
}

void exchange_abandon(const struct http_ops *http, struct http_call *call)
{
	struct http_response resp;
	char errbuf[64];

	if (!call)
		return;
	http->send(call, NULL, &resp, errbuf, sizeof(errbuf));
	if (http->response_release)
		http->response_release(&resp);
}

int exchange_run(const struct http_ops *http, const struct exchange_params *p,
		 struct exchange_result *res)
{
	const char *kind = p->kind ? p->kind : "api-key";
	long timeout = p->timeout > 0 ? p->timeout : EXCHANGE_DEFAULT_TIMEOUT;
	struct attempts a = { .http = http, .kind = kind };
	const char *sent[3] = { p->secret, NULL, NULL };
	char *url, *header;
	int err;

	memset(res, 0, sizeof(*res));
	if (!http || http->abi_version != HTTP_ABI_VERSION || !http->get)
		return gc_error(GCERR_FAIL, "the HTTP module is missing or of another version");
	header = credential_kind_valid(kind) ? exchange_auth_header(kind, p->username, p->secret) : NULL;
	if (!header) {
		exchange_abandon(http, p->call);	/* nothing goes out */
		if (!credential_kind_valid(kind))
			return gc_error(GCERR_INPUT, "unknown credential kind '%s' for '%s'",
					kind, p->server);
		return gc_error(GCERR_INPUT,
				"the credential for '%s' holds a control character; run 'galileo-credential login --server %s'",
				p->server, p->server);
	}
	/* what went out besides the secret itself: the Basic base64 (never a space in it) */
	if (!strcmp(kind, "basic"))
		sent[1] = strrchr(header, ' ') + 1;
	url = exchange_build_url(p);
	request_of(p, &a.req, url);
	a.req.auth_header = header;
	a.call = p->call;
	a.deadline = monotonic_ms() + (int64_t)timeout * 1000;
	run_attempts(&a);
	err = outcome(&a, p, timeout, sent, res);
	secret_free(header);
	if (http->response_release)
		http->response_release(&a.resp);
	free(url);
	return err;
}
