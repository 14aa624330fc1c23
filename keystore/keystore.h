/*
 * Secret storage.  A backend is a const struct of operations chosen by name
 * from the `keystore` setting; a NULL slot means "not supported".  Backends
 * that pull heavy libraries live in a loadable module that exports
 * `const struct keystore_ops keystore_module_ops` and are loaded only when
 * chosen.
 */
#ifndef GC_KEYSTORE_H
#define GC_KEYSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEYSTORE_ABI_VERSION 2

/* One stored credential (CONTRACT section 2). */
struct credential {
	char *server;		/* canonical */
	char *kind;		/* "api-key" | "basic" | "bearer" */
	char *username;		/* "" when unknown */
	char *organization;	/* default organization, "" when none */
	char *secret;		/* NULL in list results */
};

/* One cached token item: opaque payload (see cache.h) per (server, org). */
struct keystore_token {
	char *organization;	/* "" when none */
	char *payload;		/* secret */
};

struct keystore_ops {
	int abi_version;
	const char *name;
	/*
	 * Reach the store now (connect, unlock), so that a caller can fail
	 * before it asks for or sends a secret.  NULL: nothing to reach.
	 */
	int (*open)(void);
	/*
	 * Each returns 0 or a GCERR_* code with a gc_error() message.
	 * GCERR_NOTFOUND when nothing matches; GCERR_KEYSTORE when the store
	 * cannot be reached or is locked.
	 */
	int (*get)(const char *server, struct credential *out);	/* transfer full */
	/* replace the server's credential atomically: never half-written */
	int (*store)(const struct credential *cred);
	int (*erase)(const char *server);	/* 0 also when nothing was there */
	/* every stored credential, secrets left NULL; *out transfer full */
	int (*list)(struct credential **out, size_t *n);

	int (*token_get)(const char *server, const char *organization, char **payload);
	/* expires_at: when the token inside expires (local clock); a tier may
	   drop it then */
	int (*token_store)(const char *server, const char *organization, const char *payload,
			   int64_t expires_at);
	/* organization NULL: every token of server; 0 also when none */
	int (*token_erase)(const char *server, const char *organization);
	int (*token_list)(const char *server, struct keystore_token **out, size_t *n);
};

/*
 * Find a backend by name ("secret-service", "env"), loading its module on
 * first use.  Unknown name or a module that cannot be loaded: NULL with
 * GCERR_KEYSTORE recorded via gc_error().
 */
const struct keystore_ops *keystore_find(const char *name);

/* 0 when name is a known backend, else GCERR_KEYSTORE recorded: fail closed */
int keystore_check_name(const char *name);

/*
 * Directory of loadable modules: $GALILEO_CREDENTIAL_MODULE_DIR, else
 * $(pkglibdir) found relative to the running program.  New string.
 */
char *keystore_module_dir(void);

/* Load module file name from the module dir, return dlsym(symbol) or NULL. */
const void *keystore_load_module(const char *file, const char *symbol);

/* "api-key", "basic" or "bearer" (CONTRACT section 2) */
bool credential_kind_valid(const char *kind);

void credential_release(struct credential *c);	/* wipes secret */
void credential_free_list(struct credential *list, size_t n);
void keystore_token_free_list(struct keystore_token *list, size_t n);

/* the env backend (built in): GALILEO_API_KEY, read-only */
extern const struct keystore_ops keystore_env_ops;

#endif
