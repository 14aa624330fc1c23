/* SPDX-License-Identifier: MIT */
/*
 * Logging in (galileo-credential(1) COMMANDS login, FIRST USE): a secret
 * read from a person, checked, verified with one exchange and stored.
 * `login` and the first use of get and token share this one path.
 */
#ifndef GC_LOGIN_H
#define GC_LOGIN_H

#include "helper/session.h"
#include "token/cache.h"
#include "token/policy.h"

#include <stdbool.h>

struct login_params {
	const char *kind;		/* api-key, basic or bearer */
	const char *username;		/* NULL: none */
	const char *organization;	/* the default to store, encoded; NULL: none */
	const char *org;		/* the organization asked for, encoded; NULL */
	bool verify;			/* one exchange before storing */
	/*
	 * First use: the secret comes from the terminal only, and an empty
	 * answer is "nothing stored" (GCERR_NOTFOUND), not bad input.
	 */
	bool first_use;
};

/*
 * Ask for the secret of s->server (echo off on the terminal, else one line
 * of stdin; only the terminal for first use), check it, exchange it once
 * unless lp->verify is false, and store it with the token obtained.  On
 * success cred and tok (tok->token NULL when not verified) are filled,
 * transfer full; on failure nothing is stored and nothing is left to
 * release.
 */
int login_run(struct session *s, const struct login_params *lp, struct gc_credential *cred,
	      struct cached_token *tok);

/*
 * First use: get or token found nothing stored for s->server (the
 * message of that is recorded).  When a person is there (a controlling
 * terminal that /dev/tty opens; for git, GIT_TERMINAL_PROMPT not 0, false,
 * no or off), the server is known and the stack has a writer, log in on
 * the terminal as login does and return 0
 * with the new credential and a token of r's organization (transfer
 * full).  Otherwise, or when the person answers nothing, GCERR_NOTFOUND
 * with a message; any other failure as login's.  username: the one the
 * request named (NULL, "" and "token" mean none).
 */
int login_first_use(struct session *s, const struct token_request *r, const char *username,
		    bool git, struct gc_credential *cred, struct cached_token *tok);

/*
 * One identity per server: a request naming asked (NULL, "" or "token":
 * none) may be answered with the credential of stored_username ("" when
 * none is stored).
 */
bool login_same_identity(const char *asked, const char *stored_username);

/*
 * The user name in a URL's userinfo (scheme://NAME[:…]@host…),
 * percent-decoded, as a new string; NULL when it names none.
 */
char *login_url_username(const char *url);

#endif
