/* SPDX-License-Identifier: MIT */
/*
 * The token policy (galileo-credential(1) TOKEN LIFETIME): a cached token while
 * it is fresh, else one exchange per (server, organization) at a time, the
 * result cached only while the credential that obtained it is still the stored
 * one, and the cached token kept in use through a failed refresh until it
 * expires.
 *
 * The policy knows nothing of dialects, backends or transports: the
 * credential and the exchange come through struct token_source, tokens go
 * to struct token_tier.
 */
#ifndef GC_TOKEN_POLICY_H
#define GC_TOKEN_POLICY_H

#include "token/cache.h"
#include "token/exchange.h"
#include "token/tier.h"

#include <stdbool.h>

struct token_source {
	void *ctx;
	/* the server's credential, transfer full; GCERR_NOTFOUND when none */
	int (*credential)(void *ctx, struct gc_credential *out);
	/* one exchange of cred for a token of org ("" for none) */
	int (*exchange)(void *ctx, const struct gc_credential *cred, const char *org,
			struct exchange_result *res);
	/* the server's write generation now (token/generation.h) */
	uint64_t (*generation)(void *ctx);
	/*
	 * Where a token goes when the tier's quota is full, and where one may
	 * have gone: the keystore tier, or NULL.  Called on the slow path
	 * only.  May be NULL.
	 */
	const struct token_tier *(*fallback)(void *ctx);
	/*
	 * Start token_refresh_ahead() for org in a process of its own,
	 * detached from the caller (refresh = background), unless the
	 * exchange lock is busy; may be NULL.
	 */
	void (*spawn_ahead)(void *ctx, const char *org);
	/*
	 * About to read the credential for an exchange of org (as far as it
	 * is known yet): the transport may start connecting meanwhile.  May
	 * be NULL.
	 */
	void (*prepare)(void *ctx, const char *org);
};

struct token_policy {
	const char *server;		/* canonical */
	long margin;			/* refresh-margin, seconds */
	long timeout;			/* for the exchange lock */
	const struct token_tier *tier;	/* token-cache; NULL: none */
	/*
	 * The credential is GALILEO_API_KEY's, read without a keystore: a
	 * hit fingerprints it and keeps no summary of it.
	 */
	bool env_credential;
	/*
	 * refresh = background: a token inside the margin is served at once
	 * and a detached child refreshes it (galileo-credential(1) TOKEN
	 * LIFETIME).
	 */
	bool background;
	struct token_source src;
};

struct token_request {
	const char *org;	/* asked for (option, request, environment), encoded; NULL */
	const char *org_config;	/* the configuration's default, encoded; NULL */
	bool refresh;		/* ignore the cache */
	long min_ttl;		/* a cached token must have this long left; 0: any fresh one */
};

/*
 * The credential in use and a token for it under the organization order of
 * galileo-credential(1) SERVER AND ORGANIZATION; both transfer full, nothing to
 * release on failure.  cred->secret is NULL when a hit was served from the
 * tier's summary.
 */
int token_obtain(const struct token_policy *p, const struct token_request *r,
		 struct gc_credential *cred, struct cached_token *tok);

/*
 * The refresh a call inside the margin leaves behind, in the detached
 * process, holding the exchange lock lock (taken by the caller before it
 * let the process go, so that a busy lock means a refresh under way, and
 * released here): no stale fallback, the outcome noted for the calls that
 * serve the old token meanwhile (token/lock.h).
 */
int token_refresh_ahead(const struct token_policy *p, const struct token_request *r, int lock);

/* the organization a request ends up with: asked, stored default, config, "" */
const char *token_org(const struct token_request *r, const struct gc_credential *cred);

/* the token of an exchange by cred, moved out of res (released) into tok */
void token_from_result(struct exchange_result *res, const struct gc_credential *cred,
		       struct cached_token *tok);

/* fingerprint of a credential, as cached tokens carry it */
void token_fingerprint(const struct gc_credential *cred, char fp[17]);

/*
 * Cache tok for (server, org) in tier, or in fallback when tier's quota
 * is full, and keep tier's summary of cred (unless env_credential).  A
 * cache failure never fails the call: it becomes a debug line.
 */
void token_write_back(const struct token_policy *p, const struct gc_credential *cred,
		      const char *org, const struct cached_token *tok);

#endif
