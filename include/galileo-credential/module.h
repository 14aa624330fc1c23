/* SPDX-License-Identifier: MIT */
/*
 * galileo-credential keystore modules: the public interface.
 *
 * A keystore backend is a shared object named keystore-NAME.so in the
 * module directory ($(pkglibdir), or $GALILEO_CREDENTIAL_MODULE_DIR), NAME
 * matching [a-z0-9-]+.  It exports one symbol, GC_MODULE_ENTRY_SYMBOL, a
 * function of type gc_module_entry_fn.  The program calls it once, hands it
 * the services it may use, and receives a const table of operations.  A
 * module links against nothing of the program.
 *
 * Compatibility.  GC_MODULE_INTERFACE_VERSION changes only when something
 * below changes incompatibly.  The program refuses a table that carries
 * another version, and a module returns NULL from its entry point when
 * services->interface_version is not the one it was built for; either way
 * the backend fails closed (every call that reaches it exits 6).  Within
 * one version change is additive only: a new member is appended at the end
 * of struct gc_services, struct gc_keystore_module or struct gc_run, never
 * removed, moved or retyped, and every new slot or service is optional.
 * Each of those structs carries its size as its builder compiled it:
 *   - the program reads a module's table only as far as table->size; a
 *     slot past it is NULL, "not supported";
 *   - a module uses a service only when GC_SERVICES_HAVE(services, member)
 *     is true: the program's struct reaches that far and the member is set;
 *   - the program reads and fills a struct gc_run only as far as its size.
 * So a module built against this header keeps working with a later
 * program of the same version, and a later module can tell which services
 * an earlier program has.  The version is also the variable
 * interface_version of galileo-credential-module.pc.
 *
 * The module runs as a guest in the caller's process, so the program
 * contains it (galileo-credential-module(7) CONTAINMENT): every call is
 * bounded by services->timeout plus one second, stdout is shielded, a
 * crash or an exit() in a call ends the program with exit 6 and one line
 * naming the module, and every answer is checked before anything else
 * sees it; an answer that breaks this interface also ends the program with
 * exit 6.  galileo-credential-module-check(1) drives every slot of a
 * module with fake services and reports each breach.
 *
 * See galileo-credential-module(7) for the execution environment and a
 * worked example.
 */
#ifndef GALILEO_CREDENTIAL_MODULE_H
#define GALILEO_CREDENTIAL_MODULE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GC_MODULE_INTERFACE_VERSION 2
#define GC_MODULE_ENTRY_SYMBOL "gc_keystore_module_init"

/*
 * What every operation returns: the five statuses of the keystore stack,
 * as nsswitch's.  With anything but GC_STATUS_SUCCESS or
 * GC_STATUS_NOTFOUND the module reports one line through
 * services->error() saying what is wrong and what to do.  Any other value
 * breaks the interface.
 */
enum gc_status {
	GC_STATUS_SUCCESS = 0,	/* done; for a lookup: found */
	GC_STATUS_NOTFOUND,	/* reachable, nothing stored for the key */
	GC_STATUS_UNAVAILABLE,	/* not there at all: no daemon, no store, no program */
	GC_STATUS_LOCKED,	/* there, but locked, access refused, or not unlocked in time */
	GC_STATUS_ERROR,	/* anything else: a failed read-back, a timeout of its own */
};

/*
 * One credential (galileo-credential(1), WHAT IS STORED).  Every string is
 * NUL-terminated, never NULL ("" when unknown) but for secret in list()
 * results, and holds what the store holds (the program stores UTF-8
 * without control characters, and escapes or refuses anything else it
 * reads).  Strings a module hands back are malloc()ed and become the
 * program's: it wipes and frees them.  Limits: server 2048 bytes; kind,
 * username and organization 1024; secret 65536 and at least one byte.
 */
struct gc_credential {
	char *server;		/* canonical: scheme://host[:port][/prefix] */
	char *kind;		/* "api-key", "basic" or "bearer" */
	char *username;
	char *organization;	/* default organization, encoded as stored */
	char *secret;		/* NULL in list() results */
};

/* One cached token item: an opaque payload per (server, organization). */
struct gc_token_item {
	char *organization;	/* "" for none */
	char *payload;		/* a secret, at most 65536 bytes */
};

/* services->prompt() styles, as PAM's conversation */
#define GC_PROMPT_SECRET	1	/* ask, echo off; *answer is a secret */
#define GC_PROMPT_INFO		2	/* show one line; no answer */

/*
 * One run of a helper program through services->run().  The module fills
 * in the request (zero what it does not use) and sets size; run() fills in
 * the result; services->run_release() wipes and frees the outputs.
 */
struct gc_run {
	size_t size;			/* sizeof(struct gc_run), as the module built it */
	/* request */
	const char *const *argv;	/* argv[0]: an absolute path, or a name looked up on PATH */
	const char *const *envp;	/* the whole environment; NULL: the program's, without GALILEO_* */
	const char *input;		/* written to stdin, which is then closed; NULL: /dev/null */
	size_t input_len;
	int want_fd3;			/* nonzero: fd 3 is a pipe too, read into fd3 (gpg --status-fd=3) */
	size_t max_output;		/* most bytes kept of each output; 0: 65536 */
	long timeout_ms;		/* most it may take; 0 or more than is left: what the call has left */
	/* result */
	char *output;			/* stdout, NUL-terminated (may be a secret) */
	size_t output_len;
	char *errors;			/* stderr */
	size_t errors_len;
	char *fd3;			/* fd 3, when want_fd3 */
	size_t fd3_len;
	int exit_code;			/* its exit status; -1: killed by a signal or at the deadline */
	int timed_out;			/* killed at the deadline, with its whole process group */
	int truncated;			/* an output was longer than max_output and was cut */
};

/*
 * What the program lends a module.  Valid from the entry point call until
 * the process exits.  A module must not print anything itself.
 */
struct gc_services {
	unsigned int interface_version;	/* GC_MODULE_INTERFACE_VERSION */
	size_t size;			/* sizeof(struct gc_services) in the program */
	const char *module_name;	/* NAME of keystore-NAME.so */
	/*
	 * The one line for a failure, printf-style, lower case, no
	 * "galileo-credential: " prefix and no newline: what failed, then
	 * what to do.  The first message of a call wins.  Never a secret.
	 */
	void (*error)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
	/* a debug line when GALILEO_CREDENTIAL_DEBUG=1; never a secret */
	void (*debug)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
	/* wipe n bytes in a way the compiler cannot elide */
	void (*wipe)(void *p, size_t n);
	/*
	 * The value of "NAME.KEY = value" in the configuration file, NAME
	 * being self->module_name, for a KEY the table's options declare;
	 * NULL when not set.  Called as services->option(services, "prefix").
	 * The string lives as long as the process.
	 */
	const char *(*option)(const struct gc_services *self, const char *key);
	/*
	 * Seconds any one operation may take, prompts, unlock dialogs and
	 * helper programs included.  The program ends a call that is still
	 * running one second later (exit 6).  A prompt not answered in time is
	 * dismissed and the operation returns GC_STATUS_LOCKED.
	 */
	long timeout;
	/* nonzero when a person at a terminal started the program */
	int interactive;
	/*
	 * The home server (galileo-credential(1), WHICH SERVER): the one the
	 * user's environment and configuration name.  Canonical.
	 */
	const char *home_server;
	/*
	 * Ask the person at the controlling terminal (PAM's conversation):
	 * GC_PROMPT_SECRET shows text and reads one line with echo off into
	 * *answer (transfer full: wipe, then free()); GC_PROMPT_INFO shows
	 * text as one line (answer may be NULL).  The terminal and signals
	 * are handled as for `login`.  GC_STATUS_SUCCESS, or
	 * GC_STATUS_LOCKED when no person is there (no terminal,
	 * GIT_TERMINAL_PROMPT=0) or nothing was answered before the time of
	 * the call ran out; *answer is NULL then.  Nothing is reported: the
	 * module says what it needed.
	 */
	int (*prompt)(const char *text, int style, char **answer);
	/*
	 * Run a helper program (struct gc_run) with data on pipes, never in
	 * argv, in a process group of its own that is killed (SIGTERM, then
	 * SIGKILL) at the deadline.  GC_STATUS_SUCCESS once it has ended,
	 * whatever its exit code (see exit_code and timed_out);
	 * GC_STATUS_UNAVAILABLE when argv[0] is not found or cannot be run;
	 * GC_STATUS_ERROR when it could not be started (no memory, no
	 * descriptors).  Nothing is reported: the module says what failed.
	 */
	int (*run)(struct gc_run *run);
	/* wipe and free the outputs of a run; the struct may be reused */
	void (*run_release)(struct gc_run *run);
};

/* the program has service member (a later one than the module knows of: no) */
#define GC_SERVICES_HAVE(svc, member) \
	((svc)->size >= offsetof(struct gc_services, member) + sizeof((svc)->member) && \
	 (svc)->member != NULL)

/*
 * A configuration option the module takes: "NAME.KEY = value".  check,
 * when set, judges a value: NULL when it is fine, else a short hint for
 * the message "PATH:LINE: bad NAME.KEY 'VALUE'; HINT".  An option the
 * table does not declare is an error naming the file and line.
 */
struct gc_option {
	const char *key;		/* [a-z0-9-]+; NULL ends the list */
	const char *(*check)(const char *value);
};

/* gc_keystore_module.supports */
#define GC_SUPPORTS_WRITE	0x1u	/* store and erase */
#define GC_SUPPORTS_TOKENS	0x2u	/* the token_* slots: can cache tokens */

/* the first members of every table */
#define GC_MODULE_TABLE_HEADER \
	.interface_version = GC_MODULE_INTERFACE_VERSION, \
	.size = sizeof(struct gc_keystore_module)

/*
 * A backend.  A NULL slot means "not supported" (get is required).  Each
 * operation returns an enum gc_status and never waits longer than
 * services->timeout.  Output arguments are zeroed by the program before a
 * call; on any status but GC_STATUS_SUCCESS a module leaves them so.
 */
struct gc_keystore_module {
	unsigned int interface_version;	/* GC_MODULE_INTERFACE_VERSION */
	size_t size;			/* sizeof(struct gc_keystore_module) */
	const char *name;		/* NAME, as in keystore-NAME.so */
	unsigned int supports;		/* GC_SUPPORTS_* bits */
	const struct gc_option *options;	/* the options it takes, or NULL: none */
	/*
	 * Reach the store (connect, unlock) without reading a secret, so a
	 * caller can fail before it asks a person for one or sends one.
	 */
	int (*open)(void);
	/* server's credential into *out (transfer full); NOTFOUND when none */
	int (*get)(const char *server, struct gc_credential *out);
	/*
	 * Make cred the server's only credential.  Atomic as readers see it:
	 * they find exactly the old or exactly the new one at any moment,
	 * and after a failure (the store's daemon dying mid-call included)
	 * still one of the two.  Concurrent stores end with one of them
	 * stored, never none.  Success only once the secret reads back
	 * exactly as written; otherwise GC_STATUS_ERROR with the old
	 * credential still the one found.
	 */
	int (*store)(const struct gc_credential *cred);
	/* remove the server's credential; success also when none */
	int (*erase)(const char *server);
	/*
	 * Every stored credential, once per server, secret NULL: *out a
	 * malloc()ed array of *n (transfer full: the program frees each
	 * string and the array); *out may be NULL when *n is 0.
	 */
	int (*list)(struct gc_credential **out, size_t *n);

	/* GC_SUPPORTS_TOKENS: one payload per (server, organization) */
	int (*token_get)(const char *server, const char *organization, char **payload);
	/* expires_at: epoch seconds; the store may drop the item after it */
	int (*token_store)(const char *server, const char *organization,
			   const char *payload, int64_t expires_at);
	/* organization NULL: every token of server; success also when none */
	int (*token_erase)(const char *server, const char *organization);
	/* as list(): a malloc()ed array, transfer full */
	int (*token_list)(const char *server, struct gc_token_item **out, size_t *n);

	/*
	 * Optional: called once before the program exits, after the last
	 * call (not after a crash or a timeout): close connections, free
	 * what the module holds.
	 */
	void (*teardown)(void);
};

/*
 * The entry point: return the module's table, or NULL (after
 * services->error()) when it cannot work with these services.
 */
typedef const struct gc_keystore_module *(*gc_module_entry_fn)(const struct gc_services *services);

const struct gc_keystore_module *gc_keystore_module_init(const struct gc_services *services);

#ifdef __cplusplus
}
#endif

#endif
