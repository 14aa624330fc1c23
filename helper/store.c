/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "helper/store.h"
#include "lib/common.h"
#include "lib/text.h"
#include "lib/tokentime.h"
#include "token/generation.h"
#include "token/lock.h"
#include "token/policy.h"

#include <stdlib.h>
#include <string.h>

int store_check_values(const struct gc_credential *cred)
{
	const char *values[] = { cred->username, cred->organization, cred->secret };

	if (!credential_kind_valid(cred->kind))
		return gc_error(GCERR_INPUT, "unknown kind '%s'; use api-key, basic or bearer",
				cred->kind ? cred->kind : "");
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		if (!values[i])
			continue;
		/* a stored CR or LF could never be sent again: refuse it now */
		if (text_has_control(values[i]))
			return gc_error(GCERR_INPUT, "the %s holds a control character (a stray newline?); nothing stored",
					i == 2 ? "secret" : i ? "organization" : "username");
		if (!text_is_utf8(values[i]))
			return gc_error(GCERR_INPUT, "the %s is not valid UTF-8; nothing stored",
					i == 2 ? "secret" : i ? "organization" : "username");
	}
	return 0;
}

bool store_is_jwt_key(const struct gc_credential *cred)
{
	return !strcmp(cred->kind, "api-key") && tokentime_is_jwt(cred->secret);
}

bool store_is_cached_token(struct session *s, const char *secret)
{
	const struct token_tier *tiers[SESSION_TIERS];
	size_t n = session_token_tiers(s, tiers);
	char *org;

	for (size_t i = 0; i < n; i++) {
		if ((org = cache_find_token(tiers[i], s->server, secret))) {
			free(org);
			return true;
		}
	}
	return false;
}

/*
 * A new write generation for the server: in-flight refreshes of the old
 * credential, under whatever runtime directory, cache nothing that is
 * ever served (token/generation.h).
 */
static void new_generation(struct session *s)
{
	if (generation_bump(s->server)) {
		gc_debug("cannot change the write generation: %s", gc_error_message());
		gc_error_clear();
	}
}

/* every cached token of the server and the kernel's summaries, in every tier and context */
static void erase_tokens(struct session *s)
{
	const struct token_tier *tiers[SESSION_TIERS];
	size_t n = session_token_tiers(s, tiers);

	for (size_t i = 0; i < n; i++) {
		if (cache_erase(tiers[i], s->server, NULL)) {
			gc_debug("cannot drop the cached tokens in the %s tier: %s", tiers[i]->name,
				 gc_error_message() ? gc_error_message() : "unknown error");
			gc_error_clear();
		}
	}
}

int store_write(struct session *s, const struct gc_credential *cred,
		const struct cached_token *tok, const char *org)
{
	struct stack_entry *writer;
	struct token_policy p;
	int fd, err;

	if ((err = stack_writer(session_stack(s), &writer)))
		return err;
	if ((err = write_lock(s->server, s->timeout, &fd)))
		return err;
	new_generation(s);
	erase_tokens(s);
	err = stack_store(writer, cred);
	if (!err && tok && tok->token) {
		struct cached_token mine = *tok;

		/* obtained with the new credential: the new generation's */
		mine.generation = generation_current(s->server);
		session_policy(s, &p);
		token_write_back(&p, cred, org ? org : "", &mine);
	}
	lock_release(fd);
	return err;
}

int store_erase(struct session *s)
{
	int fd, err;

	if ((err = write_lock(s->server, s->timeout, &fd)))
		return err;
	/*
	 * The kernel's tokens go even when the keystore cannot be reached.
	 * The generation changes once the credential is gone (a refresh that
	 * wrote back meanwhile is never served); an erase that failed changed
	 * nothing, so a token cached where the keystore cannot be reached now
	 * is served again once it can.
	 */
	erase_tokens(s);
	if (!(err = stack_erase(session_stack(s), s->server)))
		new_generation(s);
	lock_release(fd);
	return err;
}

int store_drop_token(struct session *s, const char *secret, bool *dropped)
{
	const struct token_tier *tiers[SESSION_TIERS];
	size_t n = session_token_tiers(s, tiers);
	char *org = NULL;
	int fd, err = 0;

	*dropped = false;
	for (size_t i = 0; i < n && !*dropped; i++) {
		if (!(org = cache_find_token(tiers[i], s->server, secret)))
			continue;
		gc_debug("dropping one cached token of '%s'", s->server);
		if (!(err = write_lock(s->server, s->timeout, &fd))) {
			err = cache_erase(tiers[i], s->server, org);
			lock_release(fd);
		}
		free(org);
		*dropped = true;
	}
	return err;
}

/* fmt is a literal naming the server once */
#define refused(fmt, server) (gc_error(GCERR_INPUT, fmt, server), STORE_REFUSED)

/* the rules that need no exchange; stored: what is there now (may be empty) */
static int store_rules(struct session *s, const struct gc_credential *cred,
		       struct gc_credential *stored)
{
	bool known = false;
	int err;

	if (store_is_jwt_key(cred))
		return refused("that secret is an access token (a JWT), not an API key; nothing stored for '%s'",
			       s->server);
	if ((err = session_known(s, &known, stored)))
		return err;
	if (!known)
		return refused("'%s' is not a known Galileo server; nothing stored (this helper holds Galileo credentials only: in docker's config name it in credHelpers for the Galileo server, not as credsStore; to add a server, log in with 'galileo-credential login --server URL' or add a [URL] section to the configuration)",
			       s->server);
	if (stored->secret && !strcmp(stored->secret, cred->secret) &&
	    !strcmp(stored->kind, cred->kind) && !strcmp(stored->username, cred->username)) {
		gc_debug("store: the credential for '%s' is stored already", s->server);
		return 0;
	}
	if (store_is_cached_token(s, cred->secret))
		return refused("that secret is a token given out for '%s', not a credential; nothing stored",
			       s->server);
	return -1;	/* go on: verify */
}

int store_from_protocol(struct session *s, const struct gc_credential *cred, const char *org)
{
	struct gc_credential stored = { 0 };
	struct exchange_result res;
	struct cached_token tok = { 0 };
	struct token_request r = { .org = org, .org_config = s->org_config };
	const char *use_org;
	int err;

	if ((err = store_check_values(cred)))
		return err;
	err = store_rules(s, cred, &stored);
	credential_release(&stored);
	if (err != -1)
		return err;
	use_org = token_org(&r, cred);
	if ((err = session_exchange(s, cred, use_org, &res))) {
		gc_debug("store: the server did not accept the new secret: %s", gc_error_message());
		return STORE_REFUSED;
	}
	token_from_result(&res, cred, &tok);
	err = store_write(s, cred, &tok, use_org);
	cached_token_release(&tok);
	return err;
}
