/* SPDX-License-Identifier: MIT */
/*
 * The dialects (galileo-credential(1) COMMANDS, GIT DIALECT, DOCKER DIALECT),
 * each an op table over its codec in the shape of git's
 * git-credential-libsecret.c.  Each returns 0 or a GCERR_* code with its one
 * message recorded; main() prints it as the dialect wants and turns it into the
 * exit code.  A dialect that must stay silent (git's not-found, ignored
 * requests) returns 0.  A positive value is an exit status to pass on as it is
 * (exec's COMMAND).
 */
#ifndef GC_DIALECT_H
#define GC_DIALECT_H

#include "helper/session.h"

#include <stdbool.h>
#include <stdio.h>

/* argv[0] is the command: login, token, … or a git action */
int native_main(struct session *s, int argc, char **argv);

int git_main(struct session *s, const char *action);

int docker_main(struct session *s, const char *action);

/* the credential-helper-spec's get: stdin holds {"uri": …} (helper/spec.c) */
int spec_get(struct session *s, FILE *in);
/* stdin starts with '{' (blanks skipped, nothing else consumed) */
bool spec_is_request(FILE *in);

/* exec -- COMMAND: the token in COMMAND's environment (helper/exec.c) */
int exec_main(struct session *s, const char *server, const char *org_id,
	      const char *org_slug, long min_ttl, bool api_key, char **command);

/*
 * Note the caller's core limit and SIGPIPE disposition, which main()
 * changes for itself, so that exec gives them back to COMMAND; call first.
 */
void exec_keep_caller_defaults(void);

/* the native usage text */
extern const char native_usage[];

#endif
