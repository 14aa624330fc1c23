/* SPDX-License-Identifier: MIT */
/*
 * Finding and loading modules (galileo-credential(1) KEYSTORE STACK,
 * galileo-credential-module(7) LOADING): keystore-NAME.so in the module
 * directory, a file nobody else could have written, one entry point, a
 * known interface version and a well-formed table, or the backend fails
 * closed.
 */
#ifndef GC_KEYSTORE_LOADER_H
#define GC_KEYSTORE_LOADER_H

#include <galileo-credential/module.h>

#include <stdbool.h>

/*
 * Directory of loadable modules: $GALILEO_CREDENTIAL_MODULE_DIR, else
 * $(pkglibdir) found relative to the running program.  New string; NULL
 * (with GCERR_FAIL recorded) when the variable holds a relative path.
 */
char *module_dir(void);

/*
 * GALILEO_CREDENTIAL_MODULE_DIR is unset or absolute: git runs helpers
 * inside the repository it works on, so a relative one would let the
 * repository choose the code that runs.  0, or GCERR_FAIL with the line.
 */
int module_dir_check(void);

/*
 * The loading policy, as ssh treats its files: path resolves (symbolic
 * links followed) to a regular file owned by root or the user and not
 * writable by group or others, in directories up to / that are each owned
 * by root or the user and not writable by group or others unless sticky
 * (/tmp).  0 with the resolved path in *real (new string), or
 * GCERR_KEYSTORE with a message naming the offending path.
 */
int module_path_check(const char *path, char **real);

/* dlopen dir/file (after module_path_check) and return dlsym(symbol); NULL with a message recorded */
void *module_symbol(const char *file, const char *symbol);

/*
 * The table of one of the program's own helper modules (http-curl.so,
 * seal-sodium.so): file loaded as module_symbol() does, its entry point
 * symbol called with services named name (debug lines and wiping) that
 * live as long as the process.  NULL with a message recorded when it
 * cannot be loaded or refuses to start.
 */
const void *module_helper(const char *file, const char *symbol, const char *name);

/* NAME matches [a-z0-9-]+ and is at most 64 bytes */
bool keystore_name_valid(const char *name);

/* NAME is built into the program (env): no module file, not a guest */
bool keystore_builtin(const char *name);

/*
 * The backend NAME exists: built in, or keystore-NAME.so is in the module
 * directory.  Loads nothing.  0, or GCERR_KEYSTORE with a message.
 */
int keystore_present(const char *name);

/*
 * Load backend NAME (a module: contained, galileo-credential-module(7)
 * CONTAINMENT) and hand it svc: its table into *table, checked (interface
 * version, size, name, a get slot, the slots its supports bits claim, its
 * options) and copied at this header's size (slots past the module's size
 * NULL).  0, or GCERR_KEYSTORE with the reason recorded.
 */
int keystore_load(const char *name, const struct gc_services *svc,
		  struct gc_keystore_module *table);

/*
 * Load the module file path as backend name, not contained (the module
 * checker runs it in a child of its own): the same checks.
 */
int keystore_load_file(const char *path, const char *name, const struct gc_services *svc,
		       struct gc_keystore_module *table);

/* the built-in env backend's entry point (GALILEO_API_KEY, read-only) */
const struct gc_keystore_module *keystore_env_init(const struct gc_services *svc);

#endif
