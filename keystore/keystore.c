#include "autoconfig.h"

#include "keystore/keystore.h"
#include "helper/common.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * The backends, by name.  Built-in ones point at their ops; the others name
 * the module that holds them, so GLib and libsecret are only mapped into
 * the process when that backend is chosen (as libsecret's SECRET_BACKEND).
 */
static const struct keystore_entry {
	const char *name;
	const struct keystore_ops *builtin;
	const char *module;
} keystores[] = {
	{ "secret-service", NULL, "keystore-secret-service.so" },
	{ "env", &keystore_env_ops, NULL },
	{ NULL, NULL, NULL },
};

char *keystore_module_dir(void)
{
	const char *env = getenv("GALILEO_CREDENTIAL_MODULE_DIR");
	char exe[PATH_MAX];
	ssize_t n;
	char *slash;
	size_t plen = strlen(GC_PREFIX);

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

const void *keystore_load_module(const char *file, const char *symbol)
{
	char *dir = keystore_module_dir();
	char *path = xasprintf("%s/%s", dir, file);
	void *handle, *sym;

	free(dir);
	gc_debug("loading module '%s'", path);
	handle = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (!handle) {
		gc_error(GCERR_FAIL, "cannot load module '%s': %s; reinstall galileo-credential or set GALILEO_CREDENTIAL_MODULE_DIR",
			 path, dlerror());
		free(path);
		return NULL;
	}
	free(path);
	sym = dlsym(handle, symbol);
	if (!sym)
		gc_error(GCERR_FAIL, "module '%s' has no '%s'", file, symbol);
	return sym;
}

static const struct keystore_entry *entry(const char *name)
{
	const struct keystore_entry *e;

	for (e = keystores; e->name; e++)
		if (strcmp(e->name, name) == 0)
			return e;
	gc_error(GCERR_KEYSTORE, "unknown keystore '%s'; use 'secret-service' or 'env'", name);
	return NULL;
}

int keystore_check_name(const char *name)
{
	return entry(name) ? 0 : GCERR_KEYSTORE;
}

const struct keystore_ops *keystore_find(const char *name)
{
	const struct keystore_entry *e = entry(name);
	const struct keystore_ops *ops;

	if (!e)
		return NULL;
	if (e->builtin)
		return e->builtin;
	ops = keystore_load_module(e->module, "keystore_module_ops");
	if (!ops || ops->abi_version != KEYSTORE_ABI_VERSION) {
		gc_error(GCERR_KEYSTORE, "keystore '%s' cannot be loaded", name);
		return NULL;
	}
	return ops;
}

bool credential_kind_valid(const char *kind)
{
	return kind && (!strcmp(kind, "api-key") || !strcmp(kind, "basic") ||
			!strcmp(kind, "bearer"));
}

void credential_release(struct credential *c)
{
	free(c->server);
	free(c->kind);
	free(c->username);
	free(c->organization);
	secret_free(c->secret);
	memset(c, 0, sizeof(*c));
}

void credential_free_list(struct credential *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		credential_release(&list[i]);
	free(list);
}

void keystore_token_free_list(struct keystore_token *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(list[i].organization);
		secret_free(list[i].payload);
	}
	free(list);
}
