/*
 * Token tiers (token-cache, galileo-credential(1) KEYSTORE STACK): where cached
 * tokens live, separate from the credential stores.  A tier keeps opaque
 * payloads (token/cache.h) per (server, organization).  What tiers differ in is
 * a capability, never their identity:
 *   TIER_SUMMARY  it also keeps a non-secret summary of the credential the
 *                 tokens belong to, so a cache hit reads no keystore.
 */
#ifndef GC_TOKEN_TIER_H
#define GC_TOKEN_TIER_H

#include <galileo-credential/module.h>

#include <stdint.h>

#define TIER_SUMMARY 0x1u

struct token_tier {
	const char *name;		/* "keyctl", "keystore" */
	unsigned int caps;
	/* the payload for (server, org), new string; GCERR_NOTFOUND when none */
	int (*get)(const struct token_tier *t, const char *server, const char *org,
		   char **payload);
	/* kept until expires_at (epoch); GCERR_FULL when the quota is full */
	int (*put)(const struct token_tier *t, const char *server, const char *org,
		   const char *payload, int64_t expires_at);
	/* org NULL: every token of server, and its summary; 0 also when none */
	int (*erase)(const struct token_tier *t, const char *server, const char *org);
	/* every token of server; *out transfer full */
	int (*list)(const struct token_tier *t, const char *server,
		    struct gc_token_item **out, size_t *n);
	/*
	 * TIER_SUMMARY: kind, username and organization of the server's
	 * credential (secret NULL) and its fingerprint; GCERR_NOTFOUND when
	 * none.  put keeps it until expires_at, as the token it came with.
	 */
	int (*summary_get)(const char *server, struct gc_credential *out, char fp[17]);
	int (*summary_put)(const struct gc_credential *cred, const char *fp, int64_t expires_at);
	const void *data;		/* the tier's own */
};

/*
 * The kernel user keyring (galileo-credential(1), TOKEN CACHE): NULL when
 * the kernel refuses keyctl here (a container's seccomp profile), said in
 * one debug line.
 */
const struct token_tier *tier_keyctl(void);

/* t becomes the tier kept by the stack entry e, whose module supports GC_SUPPORTS_TOKENS */
struct stack_entry;
void tier_keystore_init(struct token_tier *t, const struct stack_entry *e);

#endif
