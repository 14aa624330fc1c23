/* SPDX-License-Identifier: MIT */
/*
 * The keystore stack (galileo-credential(1) KEYSTORE STACK): the configured
 * backends in order, each with nsswitch-style actions per status, walked for
 * reads, the first usable one written, every writable one erased.  Modules are
 * loaded only when the walk reaches them.
 */
#ifndef GC_KEYSTORE_STACK_H
#define GC_KEYSTORE_STACK_H

#include <galileo-credential/module.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STACK_DEFAULT "env secret-service"
#define STACK_STATUSES 5	/* enum gc_status values */

enum stack_action { STACK_RETURN, STACK_CONTINUE };

struct stack_entry {
	char *name;
	enum stack_action on[STACK_STATUSES];	/* by enum gc_status */
	/*
	 * Once loaded: &table, for its name, supports bits and options.  Its
	 * slots are called only through the stack_* functions, which contain
	 * the call and check the answer.
	 */
	const struct gc_keystore_module *mod;
	struct gc_keystore_module table;	/* checked, at this header's size */
	bool builtin;		/* the program's own code (env): not contained */
	bool tried;		/* load attempted; mod NULL then: faulty */
	bool missing;		/* not installed, and that is allowed: unavailable */
	int open_status;	/* -1 until open() was asked */
	char *why;		/* the message of a failed load or open() */
	struct gc_services *svc;
};

/* What every module is handed, besides the program's own functions. */
struct stack_settings {
	long timeout;
	int interactive;
	const char *home_server;
	/* "NAME.KEY" options from the config file, or NULL */
	const char *(*option)(const char *module, const char *key);
	/* the config file sets options for module */
	bool (*has_options)(const char *module);
	/*
	 * Every option the config file sets for module is declared (and its
	 * value passes the declared check): 0, or GCERR_FAIL naming file and
	 * line.
	 */
	int (*check_options)(const char *module, const struct gc_option *declared);
	/*
	 * The prompt service's terminal (helper/prompt.c): ask with echo off
	 * (secret) or show one line, until deadline (runner_now_ms() time).
	 * 0 (*answer a new string when secret), or -1: nobody there, no
	 * answer in time.
	 */
	int (*prompt)(const char *text, bool secret, long long deadline, char **answer);
};

struct keystore_stack {
	struct stack_entry *entries;
	size_t n;
	struct stack_settings settings;
};

/*
 * Parse "env secret-service [unavailable=continue] pass": names matching
 * [a-z0-9-]+, each optionally followed by one bracketed list of
 * status=action (statuses success notfound unavailable locked error,
 * actions return continue).  0, or GCERR_KEYSTORE with a message saying
 * what is wrong; st is left empty then.
 */
int stack_parse(struct keystore_stack *st, const char *spec);
/* calls the teardown slot of every module loaded, then frees st */
void stack_release(struct keystore_stack *st);

/*
 * Every backend named exists (built in, or its module file is in the
 * module directory), without loading any: an unknown name fails closed
 * (GCERR_KEYSTORE) before any cached token is served.  missing_ok (the
 * built-in default stack, which names a module a package may leave out):
 * a missing one is unavailable instead.  A relative
 * GALILEO_CREDENTIAL_MODULE_DIR is GCERR_FAIL, before anything is read.
 */
int stack_check(struct keystore_stack *st, bool missing_ok);

/*
 * The configuration's options for the backends of this stack are all
 * declared (galileo-credential-module(7) OPTIONS): each backend the file
 * sets options for is loaded now, to read its declaration.  0, or
 * GCERR_FAIL naming file and line.  A backend that cannot be loaded is
 * left for the walk to report.
 */
int stack_check_options(struct keystore_stack *st);

/*
 * Walk the stack for server's credential (transfer full).  *backend (may
 * be NULL) names the backend that answered.  GCERR_NOTFOUND when every
 * backend said notfound; GCERR_KEYSTORE with the backend's message when
 * one that returns was locked or failed, or when the walk ended with
 * nothing found and some backend was unavailable.
 */
int stack_get(struct keystore_stack *st, const char *server, struct gc_credential *out,
	      const char **backend);

/*
 * The backend writes go to: the first that can write and is not
 * unavailable, opened.  GCERR_KEYSTORE when it is locked or failing, or
 * when there is none.
 */
int stack_writer(struct keystore_stack *st, struct stack_entry **out);

/* Store cred in the writer e (after stack_writer()). */
int stack_store(struct stack_entry *e, const struct gc_credential *cred);

/*
 * Erase server's credential from every backend that can write, passing
 * over unavailable ones; GCERR_KEYSTORE when none could be reached, or
 * the first failure after all were tried.
 */
int stack_erase(struct keystore_stack *st, const char *server);

/* One credential as status and docker list see it. */
struct stack_item {
	struct gc_credential cred;	/* secret NULL */
	const char *backend;
};

/*
 * Every stored credential, each server once (the backend a read would
 * find it in), sorted by server.  Unavailable backends are skipped; when
 * no backend could be listed at all, GCERR_KEYSTORE.  *out transfer full.
 */
int stack_list(struct keystore_stack *st, struct stack_item **out, size_t *n);
void stack_item_free_list(struct stack_item *list, size_t n);

/*
 * Open the i-th backend (loading it) and return its status, for doctor.
 * The message for a non-success status is left recorded.  From the first
 * probe on, all module calls of the process together are bounded by
 * timeout plus one second (doctor is bounded in total).
 */
int stack_probe(struct keystore_stack *st, size_t i);

/* a module that can hold tokens and is where writes go, or NULL */
struct stack_entry *stack_token_store(struct keystore_stack *st);

/*
 * The token slots of e (from stack_token_store()), contained and their
 * answers checked: each returns an enum gc_status, the module's line
 * recorded for any but success and notfound.  *payload and *out transfer
 * full.
 */
int stack_token_get(const struct stack_entry *e, const char *server, const char *org,
		    char **payload);
int stack_token_store_payload(const struct stack_entry *e, const char *server,
			      const char *org, const char *payload, int64_t expires_at);
int stack_token_erase(const struct stack_entry *e, const char *server, const char *org);
int stack_token_list(const struct stack_entry *e, const char *server,
		     struct gc_token_item **out, size_t *n);

/* ---- credentials ------------------------------------------------------ */

/* "api-key", "basic" or "bearer" (galileo-credential(1) KEYSTORES) */
bool credential_kind_valid(const char *kind);
void credential_release(struct gc_credential *c);	/* wipes the secret */
void credential_free_list(struct gc_credential *list, size_t n);
void token_item_free_list(struct gc_token_item *list, size_t n);

#endif
