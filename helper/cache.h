/*
 * The token cache: policy (freshness, fingerprints) over a storage tier.
 * The tier today is the keystore's token items; a faster tier can stand
 * behind the same struct cache_tier.
 */
#ifndef GC_CACHE_H
#define GC_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct keystore_ops;

struct cached_token {
	char *token;		/* secret */
	int64_t expires_at;	/* local clock */
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

/* Where tokens are kept: the keystore's token items, or nowhere. */
struct cache {
	const struct keystore_ops *ks;	/* NULL or without token ops: no cache */
};

/* One cached token as status sees it (token itself not kept). */
struct cache_entry {
	char *organization;
	struct cached_token meta;	/* meta.token is NULL */
};

bool cache_enabled(const struct cache *c);

/*
 * Read the token cached for (server, organization) into out (transfer
 * full).  GCERR_NOTFOUND when none, or when the stored payload cannot be
 * read (a corrupt item is treated as absent, never handed out).
 */
int cache_get(const struct cache *c, const char *server, const char *organization,
	      struct cached_token *out);
int cache_put(const struct cache *c, const char *server, const char *organization,
	      const struct cached_token *t);
/* organization NULL: every token of server */
int cache_erase(const struct cache *c, const char *server, const char *organization);
/* tokens of server, without the secrets; *out transfer full */
int cache_list(const struct cache *c, const char *server, struct cache_entry **out,
	       size_t *n);
void cache_entry_free_list(struct cache_entry *list, size_t n);

/*
 * The organization ("" for none) whose cached token for server equals
 * token, as a new string; NULL when no cached token matches.  Used to spot
 * git echoing back a token it was given.
 */
char *cache_find_token(const struct cache *c, const char *server, const char *token);

enum cache_verdict {
	CACHE_UNUSABLE,	/* expired, or obtained with another credential */
	CACHE_FRESH,	/* hand it out */
	CACHE_STALE,	/* inside the margin but not expired: refresh first */
};

/*
 * Judge a cached token for the credential with fingerprint fp at time now
 * (CONTRACT section 8: margin capped at half the lifetime).
 */
enum cache_verdict cache_judge(const struct cached_token *t, const char *fp,
			       int64_t now, long margin);

#endif
