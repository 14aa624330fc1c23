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
};

void cached_token_release(struct cached_token *t);

/*
 * Payload kept by a tier: "gc1 EXPIRES LIFETIME FINGERPRINT TOKEN".  New
 * string, caller secret_free()s.  Parse returns 0 or GCERR_FAIL.
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
 * Read the token cached for (server, organization) into out (transfer
 * full).  GCERR_NOTFOUND when none, or when the stored payload cannot be
 * read (a corrupt item is treated as absent, never handed out).
 */
int cache_get(const struct token_tier *t, const char *server, const char *organization,
	      struct cached_token *out);
/* GCERR_FULL when the tier's quota is full */
int cache_put(const struct token_tier *t, const char *server, const char *organization,
	      const struct cached_token *tok);
/* organization NULL: every token of server (and the tier's summary) */
int cache_erase(const struct token_tier *t, const char *server, const char *organization);
/* tokens of server, appended to *out (without the secrets) */
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
	CACHE_UNUSABLE,	/* expired, or obtained with another credential */
	CACHE_FRESH,	/* hand it out */
	CACHE_STALE,	/* inside the margin but not expired: refresh first */
};

/*
 * Judge a cached token for the credential with fingerprint fp at time now
 * (galileo-credential(1) TOKEN LIFETIME: margin capped at half the lifetime).
 * min_ttl > 0: a token with less than that left is stale too.
 */
enum cache_verdict cache_judge(const struct cached_token *t, const char *fp,
			       int64_t now, long margin, long min_ttl);

#endif
