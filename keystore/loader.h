/*
 * Finding and loading modules (galileo-credential(1) KEYSTORE STACK):
 * keystore-NAME.so in the module directory, one entry point, a known interface
 * version, or the backend fails closed.
 */
#ifndef GC_KEYSTORE_LOADER_H
#define GC_KEYSTORE_LOADER_H

#include <galileo-credential/module.h>

#include <stdbool.h>

/*
 * Directory of loadable modules: $GALILEO_CREDENTIAL_MODULE_DIR, else
 * $(pkglibdir) found relative to the running program.  New string.
 */
char *module_dir(void);

/* dlopen dir/file and return dlsym(symbol); NULL with a message recorded */
void *module_symbol(const char *file, const char *symbol);

/* NAME matches [a-z0-9-]+ and is at most 64 bytes */
bool keystore_name_valid(const char *name);

/*
 * The backend NAME exists: built in, or keystore-NAME.so is in the module
 * directory.  Loads nothing.  0, or GCERR_KEYSTORE with a message.
 */
int keystore_present(const char *name);

/*
 * Load backend NAME and hand it svc: its table, checked (interface
 * version, name, a get slot), or NULL with GCERR_KEYSTORE recorded.
 */
const struct gc_keystore_module *keystore_load(const char *name, const struct gc_services *svc);

/* the built-in env backend's entry point (GALILEO_API_KEY, read-only) */
const struct gc_keystore_module *keystore_env_init(const struct gc_services *svc);

#endif
