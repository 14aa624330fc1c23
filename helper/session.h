/* SPDX-License-Identifier: MIT */
/*
 * One invocation's settings (galileo-credential(1) SERVER AND ORGANIZATION,
 * CONFIGURATION): the config file, the home server and the server of this call,
 * the organization order, which servers are known, and the stack, tiers and
 * policy those give.  Dialects ask the session; nothing here prints.
 */
#ifndef GC_SESSION_H
#define GC_SESSION_H

#include "helper/config.h"
#include "keystore/stack.h"
#include "token/policy.h"
#include "token/tier.h"

#include <stdbool.h>

#define DEFAULT_SERVER "https://api.galileo.ai"
#define DEFAULT_TOKEN_PATH "/v1/token"
#define DEFAULT_MARGIN 300
#define DEFAULT_TIMEOUT 30

struct session {
	struct config cfg;
	char *config_path;		/* the configuration file in use, found or not */
	char *home;			/* the home server */
	char *server;			/* this call's server */
	struct config_values vals;	/* for server; borrows from cfg */
	long margin;
	long timeout;
	const char *token_path;
	const char *backend;		/* the backend the credential came from */
	char *org_config;		/* the configuration's default, encoded */
	struct keystore_stack stack;
	bool stack_ready;
	char context[TIER_CONTEXT_LEN + 1];	/* whose tokens (helper/context.h) */
	bool tier_ready;
	const struct token_tier *tier;
	struct token_tier kernel_tier;	/* name NULL: keyctl refused here */
	struct token_tier keystore_tier;	/* name NULL: not made yet */
	struct token_tier file_tier;
	struct http_call *call;		/* a connection begun for call_org */
	char *call_org;
};

/* read the configuration (refusing a file others could write); no other I/O */
int session_init(struct session *s);
void session_release(struct session *s);

/*
 * The server of this call: url when given (canonicalised; for the native
 * dialect also the home server, as --server is), else the home server.
 * Checks the stack and token-cache settings, loading nothing.
 */
int session_use_server(struct session *s, const char *url, bool url_is_home);

/* the stack, parsed and checked (every backend exists) */
struct keystore_stack *session_stack(struct session *s);

/*
 * Known (galileo-credential(1) SERVER AND ORGANIZATION): the home server, one
 * with a [section] in the config file, or one with a stored credential.
 * *stored (may be NULL) receives that credential when it was read (transfer
 * full).
 */
int session_known(struct session *s, bool *known, struct gc_credential *stored);

/* the policy for this call's server, borrowing from s */
void session_policy(struct session *s, struct token_policy *p);

/*
 * Every tier a token of this server may be in, whatever token-cache says
 * now (a token may predate a change of it).  Returns how many.
 */
#define SESSION_TIERS 3
size_t session_token_tiers(struct session *s, const struct token_tier *out[SESSION_TIERS]);

/* why the tier in use is the one it is, for doctor: a phrase, or "" */
const char *session_tier_reason(struct session *s);

/*
 * Begin connecting to the token endpoint for org (encoded) while the
 * credential is read (no secret involved); the next session_exchange()
 * for that organization sends on it.
 */
void session_prepare(struct session *s, const char *org);

/* one exchange of cred for a token of org (encoded; "" none); res transfer full */
int session_exchange(struct session *s, const struct gc_credential *cred, const char *org,
		     struct exchange_result *res);

/*
 * The organization given on the command line or in a request (id or
 * slug), else by GALILEO_ORGANIZATION_ID / _SLUG, checked before any I/O;
 * *org encoded (lib/org.h), a new string, or NULL when none was given.
 */
int session_explicit_org(const char *id, const char *slug, char **org);

/* GALILEO_API_KEY is set */
bool session_env_key(void);

#endif
