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
 * Versioning: GC_MODULE_INTERFACE_VERSION changes whenever any struct below
 * changes incompatibly.  The program refuses a module whose table carries a
 * version it does not know, and a module should return NULL from its entry
 * point when services->interface_version is not the one it was built for.
 * Either way the backend fails closed: every call that reaches it exits 6.
 *
 * See galileo-credential-module(7) for a worked example.
 */
#ifndef GALILEO_CREDENTIAL_MODULE_H
#define GALILEO_CREDENTIAL_MODULE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GC_MODULE_INTERFACE_VERSION 1
#define GC_MODULE_ENTRY_SYMBOL "gc_keystore_module_init"

/*
 * What every operation returns: the five statuses of the keystore stack,
 * as nsswitch's.  With anything but GC_STATUS_SUCCESS or
 * GC_STATUS_NOTFOUND the module reports one line through
 * services->error() saying what is wrong and what to do.
 */
enum gc_status {
	GC_STATUS_SUCCESS = 0,	/* done; for a lookup: found */
	GC_STATUS_NOTFOUND,	/* reachable, nothing stored for the key */
	GC_STATUS_UNAVAILABLE,	/* not there at all: no daemon, no store */
	GC_STATUS_LOCKED,	/* there, but locked, or access refused */
	GC_STATUS_ERROR,	/* anything else, a failed read-back included */
};

/*
 * One credential (galileo-credential(1), WHAT IS STORED).  Every string is
 * NUL-terminated UTF-8 without control characters; "" when unknown.
 * Strings a module hands back are malloc()ed; the program wipes and frees
 * them.
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
	char *payload;		/* a secret */
};

/*
 * What the program lends a module.  Valid from the entry point call until
 * the process exits.  A module must not print anything itself.
 */
struct gc_services {
	unsigned int interface_version;	/* GC_MODULE_INTERFACE_VERSION */
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
	 * being self->module_name; NULL when not set.  Called as
	 * services->option(services, "prefix").
	 */
	const char *(*option)(const struct gc_services *self, const char *key);
	/*
	 * Seconds any one operation may wait, prompts and unlock dialogs
	 * included; a prompt not answered in time is dismissed and the
	 * operation fails GC_STATUS_LOCKED.
	 */
	long timeout;
	/* nonzero when a person at a terminal started the program */
	int interactive;
	/*
	 * The home server (galileo-credential(1), WHICH SERVER): the one the
	 * user's environment and configuration name.  Canonical.
	 */
	const char *home_server;
};

/* gc_keystore_module.supports */
#define GC_SUPPORTS_WRITE	0x1u	/* store and erase */
#define GC_SUPPORTS_TOKENS	0x2u	/* the token_* slots: can cache tokens */

/*
 * A backend.  A NULL slot means "not supported" (get is required).  Each
 * operation returns an enum gc_status and never waits longer than
 * services->timeout.
 */
struct gc_keystore_module {
	unsigned int interface_version;	/* GC_MODULE_INTERFACE_VERSION */
	const char *name;		/* NAME, as in keystore-NAME.so */
	unsigned int supports;		/* GC_SUPPORTS_* bits */
	/*
	 * Reach the store (connect, unlock) without reading a secret, so a
	 * caller can fail before it asks a person for one or sends one.
	 */
	int (*open)(void);
	/* server's credential into *out (transfer full) */
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
	/* every stored credential, once per server, secret NULL; transfer full */
	int (*list)(struct gc_credential **out, size_t *n);

	/* GC_SUPPORTS_TOKENS: one payload per (server, organization) */
	int (*token_get)(const char *server, const char *organization, char **payload);
	/* expires_at: epoch seconds; the store may drop the item after it */
	int (*token_store)(const char *server, const char *organization,
			   const char *payload, int64_t expires_at);
	/* organization NULL: every token of server; success also when none */
	int (*token_erase)(const char *server, const char *organization);
	int (*token_list)(const char *server, struct gc_token_item **out, size_t *n);
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
