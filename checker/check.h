/* SPDX-License-Identifier: MIT */
/*
 * galileo-credential-module-check(1): drives every slot a keystore module
 * claims with fake services and reports each breach of
 * galileo-credential-module(7), as pamtester and `getent -s` do for PAM
 * and NSS.  It links the loader, never the dialects.
 *
 * Each check runs in a child of its own (child.c), which loads the module
 * afresh and tells the parent (main.c) on a pipe, one line each, what it
 * calls and what it finds; the parent bounds each call, and turns a crash
 * or an exit() of the child into a breach naming the slot that was
 * running.
 */
#ifndef GC_CHECKER_CHECK_H
#define GC_CHECKER_CHECK_H

#include <galileo-credential/module.h>

#include <stdbool.h>
#include <stddef.h>

#define CHECK_OPTIONS_MAX 32

/* what the command line says */
struct check_config {
	const char *path;		/* the module file */
	char name[65];			/* NAME of keystore-NAME.so */
	const char *server;		/* the server test credentials are stored for */
	long timeout;			/* seconds, handed to the module */
	bool verbose;
	const char *option_key[CHECK_OPTIONS_MAX];
	const char *option_value[CHECK_OPTIONS_MAX];
	size_t n_options;
};

extern struct check_config check;

/*
 * The child's side.  A step is one function run in a fresh child with the
 * module loaded; it reports with child_say().  child_run() does not
 * return.
 */
typedef void (*check_step)(const struct gc_keystore_module *m);

__attribute__((noreturn))
void child_run(int report_fd, check_step step);

/* one report line: kind is "breach", "ok", "stop" or "table" */
__attribute__((format(printf, 2, 3)))
void child_say(const char *kind, const char *fmt, ...);

/*
 * Frame one call of a module slot: before it, and after it with the
 * status it answered, which child_end() judges (a valid status; a line
 * through error() with unavailable, locked and error; nothing written on
 * stdout) and returns (an invalid one as GC_STATUS_ERROR).
 */
void child_begin(const char *slot);
int child_end(const char *slot, int status);
/* the program's own work on what a slot handed over: framed the same way */
void child_phase(const char *what, bool done);
/* the first error() line of the last call, or "no line" */
const char *child_last_error(void);
const char *child_status_name(int status);

/* prefix, 32 random hex digits, suffix: a secret never to show up in a line */
char *child_secret(const char *prefix, const char *suffix);
/* every field equal (secrets only when both have one) */
bool child_same(const struct gc_credential *a, const struct gc_credential *b);
/* the program's wipe and free() of what slot returned in *c */
void child_release(const char *slot, struct gc_credential *c);

/* the steps (child.c), in the order main.c runs them */
void step_load(const struct gc_keystore_module *m);
void step_open(const struct gc_keystore_module *m);
void step_get_missing(const struct gc_keystore_module *m);
void step_store(const struct gc_keystore_module *m);
void step_concurrent(const struct gc_keystore_module *m);
void step_erase(const struct gc_keystore_module *m);
void step_tokens(const struct gc_keystore_module *m);

#endif
