/* SPDX-License-Identifier: MIT */
/*
 * Cached tokens: the payload a tier keeps, and whether a token may be
 * handed out (galileo-credential(1) TOKEN LIFETIME).  The functions take the
 * tier to use; NULL means no cache.
 */
#ifndef GC_TOKEN_CACHE_H
#define GC_TOKEN_CACHE_H

#include "token/tier.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cached_token {
	char *token;		/* secret */
	int64_t expires_at;	/* local clock; 0 when unknown (not cacheable) */
	int64_t lifetime;	/* seconds, as received */
	char fingerprint[17];	/* of the credential that obtained it */
	uint64_t generation;	/* the server's write generation it was obtained under */
	char context[TIER_CONTEXT_LEN + 1];	/* the context it was cached in */
};

void cached_token_release(struct cached_token *t);

/*
 * Payload kept by a tier: "gc2 EXPIRES LIFETIME FINGERPRINT GENERATION
 * CONTEXT TOKEN" (generation in hex).  New string, caller secret_free()s.
 * Parse returns 0 or GCERR_FAIL.
 */
char *cache_format_payload(const struct cached_token *t);
int cache_parse_payload(const char *payload, struct cached_token *out);

/* One cached token as status sees it (token itself not kept). */
struct cache_entry {
	char *organization;
	const char *tier;		/* name of the tier holding it */
	struct cached_token meta;	/* meta.token is NULL */
};

/*
 * Read the token cached for (server, organization) in t's context into
 * out (transfer full); cred is the credential it must belong to (a
 * TIER_SEALED tier needs its secret).  GCERR_NOTFOUND when none, or when
 * the stored payload cannot be read or is another context's (a corrupt
 * item is treated as absent, never handed out).
 */
int cache_get(const struct token_tier *t, const char *server, const char *organization,
	      const struct gc_credential *cred, struct cached_token *out);
/* tok, obtained with cred, in t's context; GCERR_FULL when the tier's quota is full */
int cache_put(const struct token_tier *t, const char *server, const char *organization,
	      const struct gc_credential *cred, const struct cached_token *tok);
/* organization NULL: every token of server (and the tier's summary) */
int cache_erase(const struct token_tier *t, const char *server, const char *organization);
/* tokens of server in t's context, appended to *out (without the secrets) */
int cache_list(const struct token_tier *t, const char *server, struct cache_entry **out,
	       size_t *n);
void cache_entry_free_list(struct cache_entry *list, size_t n);

/*
 * The organization ("" for none) whose cached token for server equals
 * token, as a new string; NULL when no cached token matches.  Used to spot
 * git echoing back a token it was given.
 */
char *cache_find_token(const struct token_tier *t, const char *server, const char *token);

enum cache_verdict {
	CACHE_UNUSABLE,	/* expired, obtained with another credential or
			 * under another write generation */
	CACHE_FRESH,	/* hand it out */
	CACHE_STALE,	/* inside the margin but not expired: refresh first */
};

/* what a cached token is judged against */
struct cache_want {
	const char *fp;		/* the credential's fingerprint */
	uint64_t generation;	/* the server's write generation now */
	int64_t now;
	long margin;
	long min_ttl;		/* > 0: a token with less than that left is stale too */
};

/*
 * Judge a cached token (galileo-credential(1) TOKEN LIFETIME: margin capped
 * at half the lifetime).
 */
enum cache_verdict cache_judge(const struct cached_token *t, const struct cache_want *w);

#endif
