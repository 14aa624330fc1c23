/* SPDX-License-Identifier: MIT */
/*
 * Writing credentials (galileo-credential(1) KEYSTORES, GIT DIALECT, DOCKER
 * DIALECT, TOKEN LIFETIME): what may be stored, the rules a git or docker store
 * passes before it stores anything, and every store and erase of a server
 * serialised under its write lock, with the server's cached tokens dropped
 * first.
 */
#ifndef GC_STORE_H
#define GC_STORE_H

#include "helper/session.h"
#include "token/cache.h"

#include <stdbool.h>

/* a store rule said no: nothing stored, the reason recorded (gc_error) */
#define STORE_REFUSED 1

/*
 * The values of cred may be stored: a known kind, no control character
 * in any of them, UTF-8.  0 or GCERR_INPUT (exit 7) with a message.
 */
int store_check_values(const struct gc_credential *cred);

/*
 * A store from git or docker (cred->server is s->server): stored only
 * when the values are good, the server is known, the secret is not a
 * token given out (an echo) nor a JWT passed as an API key, it differs
 * from the one stored, and the server accepts it (one exchange, whose
 * token is cached).  0 when stored or already stored; STORE_REFUSED when
 * a rule said no; a GCERR_* code on failure.  org: the organization the
 * request asked for (encoded) or NULL.
 */
int store_from_protocol(struct session *s, const struct gc_credential *cred, const char *org);

/*
 * Make cred the server's credential: under the write lock, bump the
 * generation, drop every cached token of the server, store in the
 * stack's writer, then cache tok (may be NULL) obtained with cred for
 * org.
 */
int store_write(struct session *s, const struct gc_credential *cred,
		const struct cached_token *tok, const char *org);

/* Remove the server's credential from every writable backend, and its tokens. */
int store_erase(struct session *s);

/*
 * A cached token of the server equal to secret: drop it alone and set
 * *dropped.  Nothing matched: 0 with *dropped false.
 */
int store_drop_token(struct session *s, const char *secret, bool *dropped);

/* secret equals a token of the server cached in any tier */
bool store_is_cached_token(struct session *s, const char *secret);

/* cred's secret is an access token posing as an API key */
bool store_is_jwt_key(const struct gc_credential *cred);

#endif
