#include "autoconfig.h"

#include "keystore/loader.h"
#include "lib/common.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAME_MAX_LEN 64

/* built in, so the headless path loads no module at all */
static const struct builtin {
	const char *name;
	gc_module_entry_fn init;
} builtins[] = {
	{ "env", keystore_env_init },
	{ NULL, NULL },
};

char *module_dir(void)
{
	const char *env = getenv("GALILEO_CREDENTIAL_MODULE_DIR");
	size_t plen = strlen(GC_PREFIX);
	char exe[PATH_MAX], *slash;
	ssize_t n;

	if (env && *env)
		return xstrdup(env);
	/*
	 * Relative to the installed program, so a relocated tree (DESTDIR,
	 * a copied prefix) finds its own modules: PREFIX/bin/x ->
	 * PREFIX/lib/galileo-credential.
	 */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0 && strncmp(GC_PKGLIBDIR, GC_PREFIX, plen) == 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			slash = strrchr(exe, '/');
		}
		if (slash && strcmp(slash, "/bin") == 0) {
			*slash = '\0';
			return xasprintf("%s%s", exe, GC_PKGLIBDIR + plen);
		}
	}
	return xstrdup(GC_PKGLIBDIR);
}

void *module_symbol(const char *file, const char *symbol)
{
	char *dir = module_dir();
	char *path = xasprintf("%s/%s", dir, file);
	void *handle, *sym = NULL;

	free(dir);
	gc_debug("loading module '%s'", path);
	handle = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (!handle)
		gc_error(GCERR_KEYSTORE, "cannot load module '%s': %s; reinstall galileo-credential or set GALILEO_CREDENTIAL_MODULE_DIR",
			 path, dlerror());
	else if (!(sym = dlsym(handle, symbol)))
		gc_error(GCERR_KEYSTORE, "module '%s' has no entry point '%s'; it is not a galileo-credential module",
			 path, symbol);
	free(path);
	return sym;
}

bool keystore_name_valid(const char *name)
{
	size_t n = strlen(name);

	return n && n <= NAME_MAX_LEN && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static const struct builtin *builtin(const char *name)
{
	for (const struct builtin *b = builtins; b->name; b++)
		if (!strcmp(b->name, name))
			return b;
	return NULL;
}

int keystore_present(const char *name)
{
	char *dir, *path;
	int ok;

	if (!keystore_name_valid(name))
		return gc_error(GCERR_KEYSTORE, "bad keystore name '%.64s'; names are [a-z0-9-]+", name);
	if (builtin(name))
		return 0;
	dir = module_dir();
	path = xasprintf("%s/keystore-%s.so", dir, name);
	ok = access(path, R_OK) == 0;
	if (!ok)
		gc_error(GCERR_KEYSTORE, "unknown keystore '%s': no module '%s'; use env, secret-service, pass or persistent-keyring, or install the module",
			 name, path);
	free(path);
	free(dir);
	return ok ? 0 : GCERR_KEYSTORE;
}

/* every slot the table claims to support is there */
static bool table_ok(const struct gc_keystore_module *m, const char *name)
{
	if (!m->name || strcmp(m->name, name) || !m->get)
		return false;
	if ((m->supports & GC_SUPPORTS_WRITE) && (!m->store || !m->erase))
		return false;
	if ((m->supports & GC_SUPPORTS_TOKENS) &&
	    (!m->token_get || !m->token_store || !m->token_erase || !m->token_list))
		return false;
	return true;
}

const struct gc_keystore_module *keystore_load(const char *name, const struct gc_services *svc)
{
	const struct builtin *b = builtin(name);
	const struct gc_keystore_module *m;
	gc_module_entry_fn init;
	char *file;

	if (keystore_present(name))
		return NULL;
	if (b) {
		init = b->init;
	} else {
		file = xasprintf("keystore-%s.so", name);
		*(void **)&init = module_symbol(file, GC_MODULE_ENTRY_SYMBOL);
		free(file);
		if (!init)
			return NULL;
	}
	m = init(svc);
	if (!m) {
		gc_error(GCERR_KEYSTORE, "keystore module '%s' refused to start", name);
		return NULL;
	}
	if (m->interface_version != GC_MODULE_INTERFACE_VERSION) {
		gc_error(GCERR_KEYSTORE, "keystore module '%s' speaks interface version %u, not %d; rebuild it against this galileo-credential",
			 name, m->interface_version, GC_MODULE_INTERFACE_VERSION);
		return NULL;
	}
	if (!table_ok(m, name)) {
		gc_error(GCERR_KEYSTORE, "keystore module '%s' is malformed (its name or a slot it claims is missing)", name);
		return NULL;
	}
	return m;
}
