/* SPDX-License-Identifier: MIT */
/*
 * Token tiers (token-cache, galileo-credential(1) TOKEN CACHE): where cached
 * tokens live, separate from the credential stores.  A tier keeps opaque
 * payloads (token/cache.h) per (server, organization, context): a tier is
 * an instance bound to this call's context, and sees no token of another
 * context but to erase it.  What tiers differ in is a capability, never
 * their identity:
 *   TIER_SUMMARY  it also keeps a non-secret summary of the credential the
 *                 tokens belong to, so a cache hit reads no keystore;
 *   TIER_SEALED   it needs the credential's secret to read or write a
 *                 token (the file tier seals tokens under a key derived
 *                 from it), and its list withholds the tokens.
 */
#ifndef GC_TOKEN_TIER_H
#define GC_TOKEN_TIER_H

#include <galileo-credential/module.h>

#include <stdbool.h>
#include <stdint.h>

#define TIER_SUMMARY 0x1u
#define TIER_SEALED 0x2u

/* a context: 16 lower-case hex digits (helper/context.h) */
#define TIER_CONTEXT_LEN 16

struct token_tier {
	const char *name;		/* "keyctl", "keystore", "file" */
	unsigned int caps;
	char context[TIER_CONTEXT_LEN + 1];	/* the call's; set with tier_bind() */
	/*
	 * The payload for (server, org) of this context, new string;
	 * GCERR_NOTFOUND when none.  cred: the credential the token must
	 * belong to (TIER_SEALED: with its secret, else nothing is found).
	 */
	int (*get)(const struct token_tier *t, const char *server, const char *org,
		   const struct gc_credential *cred, char **payload);
	/* kept until expires_at (epoch); GCERR_FULL when the quota is full */
	int (*put)(const struct token_tier *t, const char *server, const char *org,
		   const struct gc_credential *cred, const char *payload, int64_t expires_at);
	/*
	 * The token of (server, org) in this context; org NULL: every token
	 * of server and its summary in every context, so that a store or
	 * erase leaves no token of the server anywhere.  0 also when none.
	 */
	int (*erase)(const struct token_tier *t, const char *server, const char *org);
	/*
	 * Every token of server in this context; *out transfer full.
	 * TIER_SEALED: each payload's token is "-".
	 */
	int (*list)(const struct token_tier *t, const char *server,
		    struct gc_token_item **out, size_t *n);
	/*
	 * May be NULL (then the list is searched): the organization ("" for
	 * none) of this context's token of server equal to token, new
	 * string; GCERR_NOTFOUND when none is.
	 */
	int (*find)(const struct token_tier *t, const char *server, const char *token, char **org);
	/*
	 * TIER_SUMMARY: kind, username and organization of the server's
	 * credential (secret NULL) in this context, and its fingerprint;
	 * GCERR_NOTFOUND when none.  put keeps it until expires_at, as the
	 * token it came with.
	 */
	int (*summary_get)(const struct token_tier *t, const char *server,
			   struct gc_credential *out, char fp[17]);
	int (*summary_put)(const struct token_tier *t, const struct gc_credential *cred,
			   const char *fp, int64_t expires_at);
	const void *data;		/* the tier's own */
};

/* t's context becomes context (TIER_CONTEXT_LEN hex digits) */
void tier_bind(struct token_tier *t, const char *context);

/*
 * The kernel user keyring (galileo-credential(1) TOKEN CACHE), unbound:
 * false when the kernel refuses keyctl here (a container's seccomp
 * profile), said in one debug line.
 */
bool tier_keyctl_init(struct token_tier *t);

/* t becomes the tier kept by the stack entry e, whose module supports GC_SUPPORTS_TOKENS */
struct stack_entry;
void tier_keystore_init(struct token_tier *t, const struct stack_entry *e);

/*
 * The sealed file tier (token-cache = file, and where keyctl is refused
 * and the stack cannot hold tokens): one file per (server, organization,
 * context) in the user's private cache directory.
 */
void tier_file_init(struct token_tier *t);

/*
 * Where each keeps the write generation of a server (token/generation.h):
 * get gives 0 when there is none; both return 0 or GCERR_*.
 */
bool tier_keyctl_usable(void);
int tier_keyctl_generation(const char *server, uint64_t *gen);
int tier_keyctl_set_generation(const char *server, uint64_t gen);
int tier_file_generation(const char *server, uint64_t *gen);
int tier_file_set_generation(const char *server, uint64_t gen);

#endif
