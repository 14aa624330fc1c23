/* SPDX-License-Identifier: MIT */
/*
 * Shared plumbing: error codes, the one-line error message, debug logging,
 * and secret-wiping memory helpers.
 */
#ifndef GC_COMMON_H
#define GC_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Every library-style function returns 0 or one of these.  The negated value
 * is the process exit code of galileo-credential(1) EXIT STATUS (GCERR_NOMEM
 * exits 1).
 */
enum gc_err {
	GC_OK = 0,
	GCERR_FAIL = -1,	/* any other failure */
	GCERR_USAGE = -2,	/* unknown option or missing argument */
	GCERR_NOTFOUND = -3,	/* nothing stored for this server */
	GCERR_REJECTED = -4,	/* server rejected the credential (401/403) */
	GCERR_NETWORK = -5,	/* unreachable, timeout, TLS, redirect, 5xx, bad body */
	GCERR_KEYSTORE = -6,	/* keystore unavailable */
	GCERR_INPUT = -7,	/* bad input, refused URL, 422 */
	GCERR_NOMEM = -8,
	GCERR_FULL = -9,	/* a store's quota is full (the kernel's key quota) */
};

/* exit code for an error value (0 for GC_OK) */
int gc_exit_code(int err);

/* a short phrase for err, for when no message was recorded: never "failed" */
const char *gc_strerror(int err);

/*
 * Record the message for the current failure (printf-style, lower case, no
 * "galileo-credential: " prefix, no newline) and return err, so callers can
 * write `return gc_error(GCERR_INPUT, "bad '%s'", x);`.  The first message
 * set wins until gc_error_clear(); later, less specific ones are dropped.
 * Control characters and bidirectional controls in the result (a peer's
 * text quoted in it) are escaped.  Never pass a secret.
 */
int gc_error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *gc_error_message(void);	/* NULL when none recorded */
void gc_error_clear(void);

/* GALILEO_CREDENTIAL_DEBUG=1: one line on stderr per step; never a secret */
void gc_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool gc_debug_enabled(void);

/* Wipe n bytes so the compiler cannot elide it. */
void secret_wipe(void *p, size_t n);
/* Wipe a NUL-terminated string (strlen bytes) and free it; NULL is fine. */
void secret_free(char *s);
/* Wipe n bytes then free (OpenSSH freezero); NULL is fine. */
void secret_freezero(void *p, size_t n);
/* strdup/strndup that abort on OOM (as git's xstrdup); NULL in, NULL out */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t n);
void *xrealloc(void *p, size_t n);
/* malloc'd printf; aborts on OOM */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Make jansson wipe every block it frees (json_set_alloc_funcs); call before
 * jansson parses or builds anything holding a secret.
 */
void secret_json_init(void);

#endif
