/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "helper/status.h"
#include "keystore/loader.h"
#include "lib/common.h"
#include "lib/text.h"
#include "lib/tokentime.h"
#include "token/cache.h"
#include "token/lock.h"
#include "token/policy.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void status_time_left(int64_t s, char *buf, size_t len)
{
	if (s <= 0)
		snprintf(buf, len, "expired");
	else if (s >= 3600)
		snprintf(buf, len, "in %" PRId64 " h %" PRId64 " min", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, len, "in %" PRId64 " min", s / 60);
	else
		snprintf(buf, len, "in %" PRId64 " s", s);
}

/* stored text, shown: "-" for none, control characters escaped */
static void print_field(const char *name, const char *value)
{
	char *clean = text_escape(value && *value ? value : "-");

	printf("  %s: %s\n", name, clean);
	free(clean);
}

static int by_org(const void *a, const void *b)
{
	return strcmp(((const struct cache_entry *)a)->organization,
		      ((const struct cache_entry *)b)->organization);
}

/* the server's cached tokens in every tier, sorted; never the tokens */
static size_t tokens_of(struct session *s, const char *server, struct cache_entry **out)
{
	const struct token_tier *tiers[SESSION_TIERS];
	size_t n = session_token_tiers(s, tiers), nt = 0;

	*out = NULL;
	for (size_t i = 0; i < n; i++) {
		if (cache_list(tiers[i], server, out, &nt)) {
			gc_debug("cannot list the %s tier: %s", tiers[i]->name,
				 gc_error_message() ? gc_error_message() : "unknown error");
			gc_error_clear();
		}
	}
	if (nt)
		qsort(*out, nt, sizeof(**out), by_org);
	return nt;
}

static void print_token(const struct cache_entry *t, int64_t now)
{
	int64_t left = t->meta.expires_at - now;
	char when[21], human[32], *org = text_escape(*t->organization ? t->organization : "-");

	if (left < 0)
		left = 0;
	tokentime_format(t->meta.expires_at, when);
	status_time_left(left, human, sizeof(human));
	printf("  token: organization=%s expires_at=%s seconds_left=%" PRId64 " tier=%s (%s)\n",
	       org, when, left, t->tier, human);
	free(org);
}

static json_t *token_json(const struct cache_entry *t, int64_t now)
{
	int64_t left = t->meta.expires_at - now;
	char when[21];

	tokentime_format(t->meta.expires_at, when);
	return json_pack("{s:s, s:s, s:I, s:s}", "organization", t->organization,
			 "expires_at", when, "seconds_left", (json_int_t)(left < 0 ? 0 : left),
			 "tier", t->tier);
}

/* one server: tokens listed from every tier, never a secret */
static void status_server(struct session *s, const struct gc_credential *cred,
			  const char *backend, json_t *servers)
{
	struct cache_entry *toks;
	size_t nt = tokens_of(s, cred->server, &toks);
	int64_t now = (int64_t)time(NULL);
	json_t *jt;

	if (!servers) {
		printf("%s\n", cred->server);
		print_field("kind", cred->kind);
		print_field("username", cred->username);
		print_field("keystore", backend);
		print_field("organization", cred->organization);
		for (size_t i = 0; i < nt; i++)
			print_token(&toks[i], now);
	} else {
		jt = json_array();
		for (size_t i = 0; i < nt; i++)
			json_array_append_new(jt, token_json(&toks[i], now));
		json_array_append_new(servers, json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}",
			"server", cred->server, "kind", cred->kind, "username", cred->username,
			"keystore", backend, "organization", cred->organization, "tokens", jt));
	}
	cache_entry_free_list(toks, nt);
}

/* the stored credentials; with the env key a keystore that is down is no error */
static int stored_list(struct session *s, struct stack_item **items, size_t *n)
{
	int err = stack_list(session_stack(s), items, n);

	if (err && session_env_key()) {
		gc_debug("not listing the keystore: %s", gc_error_message());
		gc_error_clear();
		return 0;
	}
	return err;
}

static void print_json(json_t *servers)
{
	json_t *doc = json_pack("{s:O}", "servers", servers);

	/* ASCII only: stored text cannot carry terminal controls out */
	json_dumpf(doc, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
	putchar('\n');
	json_decref(doc);
}

int status_print(struct session *s, bool only_server, bool json)
{
	struct stack_item *items = NULL;
	size_t n = 0, shown = 0;
	json_t *servers = json ? json_array() : NULL;
	struct gc_credential env = { 0 };
	int err;

	if ((err = stored_list(s, &items, &n)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (only_server && strcmp(items[i].cred.server, s->server))
			continue;
		status_server(s, &items[i].cred, items[i].backend, servers);
		shown++;
	}
	if (session_env_key()) {
		env.server = s->home;
		env.kind = "api-key";
		env.username = env.organization = "";
		status_server(s, &env, "env", servers);
		shown++;
	}
	if (!shown)
		err = only_server ? gc_error(GCERR_NOTFOUND, "no credential stored for '%s'; run 'galileo-credential login --server %s'",
					     s->server, s->server) :
			gc_error(GCERR_NOTFOUND, "no credential stored; run 'galileo-credential login'");
	else if (json)
		print_json(servers);
out:
	json_decref(servers);
	stack_item_free_list(items, n);
	return err;
}

/* ---- doctor -------------------------------------------------------------- */

static const char *const status_words[] = {
	"success", "notfound", "unavailable", "locked", "error",
};

static void doctor_backends(struct session *s)
{
	struct keystore_stack *st = session_stack(s);

	printf("keystore stack:\n");
	for (size_t i = 0; i < st->n; i++) {
		int status = stack_probe(st, i);
		const char *why = gc_error_message();
		char *clean = text_escape(why ? why : "");

		if (status < 0 || status > 4)
			status = 4;
		if (status == 0 && st->entries[i].mod)
			printf("  %s: reachable%s%s\n", st->entries[i].name,
			       st->entries[i].mod->supports & GC_SUPPORTS_WRITE ? ", can store" : ", read-only",
			       st->entries[i].mod->supports & GC_SUPPORTS_TOKENS ? ", can hold tokens" : "");
		else
			printf("  %s: %s: %s\n", st->entries[i].name, status_words[status], clean);
		free(clean);
		gc_error_clear();
	}
}

/* the token tier this call uses, from the same policy a token call builds */
static void doctor_tier(struct session *s)
{
	struct token_policy p;
	char *dir = flight_dir();

	session_policy(s, &p);
	printf("token cache: %s%s\n", p.tier ? p.tier->name : "none", session_tier_reason(s));
	printf("context: %s\n", s->context);
	printf("lock directory: %s\n", dir);
	free(dir);
	gc_error_clear();
}

int doctor_print(struct session *s)
{
	struct token_request r = { .org_config = s->org_config };
	struct token_policy p;
	struct gc_credential cred;
	struct cached_token tok;
	char *mdir = module_dir(), *org = NULL;
	int err;

	printf("config file: %s%s\n", s->cfg.path ? s->cfg.path : "(none)",
	       s->cfg.path ? "" : " (defaults)");
	printf("home server: %s\n", s->home);
	printf("server: %s\n", s->server);
	printf("module directory: %s\n", mdir);
	free(mdir);
	doctor_backends(s);
	doctor_tier(s);
	if ((err = session_explicit_org(NULL, NULL, &org)))
		return err;
	r.org = org;
	session_policy(s, &p);
	err = token_obtain(&p, &r, &cred, &tok);
	if (!err) {
		char human[32];

		status_time_left(tok.expires_at - (int64_t)time(NULL), human, sizeof(human));
		/* no secret read: a hit the kernel tier's summary answered */
		printf("token: can be served (%s%s; expires %s)\n",
		       cred.secret ? "credential from keystore " : "from the cache, no keystore read",
		       cred.secret && s->backend ? s->backend : "",
		       tok.expires_at ? human : "at an unknown time");
		cached_token_release(&tok);
		credential_release(&cred);
	} else {
		printf("token: cannot be served; see the line below\n");
	}
	free(org);
	return err;
}
