/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "keystore/contain.h"
#include "keystore/loader.h"
#include "lib/common.h"
#include "lib/privdir.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_MAX_LEN 64
#define OPTIONS_MAX 64
/* the table of interface version 2 as first published: nothing may be smaller */
#define TABLE_V2_SIZE (offsetof(struct gc_keystore_module, teardown) + sizeof(void (*)(void)))

/* built in, so the headless path loads no module at all */
static const struct builtin {
	const char *name;
	gc_module_entry_fn init;
} builtins[] = {
	{ "env", keystore_env_init },
	{ NULL, NULL },
};

int module_dir_check(void)
{
	const char *env = getenv("GALILEO_CREDENTIAL_MODULE_DIR");

	if (env && *env && *env != '/')
		return gc_error(GCERR_FAIL, "GALILEO_CREDENTIAL_MODULE_DIR '%s' is not an absolute path; set it to an absolute one (git runs helpers inside the repository)",
				env);
	return 0;
}

char *module_dir(void)
{
	const char *env = getenv("GALILEO_CREDENTIAL_MODULE_DIR");
	size_t plen = strlen(GC_PREFIX);
	char exe[PATH_MAX], *slash;
	ssize_t n;

	if (module_dir_check())
		return NULL;
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

/* ---- the loading policy ------------------------------------------------- */

/* owned by root or us, and nobody else may write it (a sticky directory aside) */
static int judge(const char *module, const char *path, const struct stat *st, bool dir)
{
	if (!privdir_owner_trusted(st->st_uid))
		return gc_error(GCERR_KEYSTORE, "refusing to load module '%s': '%s' is owned by uid %u, not by you or root; install the module where only you or root can change it",
				module, path, (unsigned int)st->st_uid);
	if ((st->st_mode & 022) && !(dir && (st->st_mode & S_ISVTX)))
		return gc_error(GCERR_KEYSTORE, "refusing to load module '%s': '%s' is writable by group or others; run 'chmod go-w %s'",
				module, path, path);
	return 0;
}

int module_path_check(const char *path, char **real)
{
	struct stat st;
	char *r, *d, *slash;
	int err;

	*real = NULL;
	if (!(r = realpath(path, NULL)))
		return gc_error(GCERR_KEYSTORE, "cannot load module '%s': %s; reinstall galileo-credential or set GALILEO_CREDENTIAL_MODULE_DIR",
				path, strerror(errno));
	if (stat(r, &st) || !S_ISREG(st.st_mode))
		err = gc_error(GCERR_KEYSTORE, "cannot load module '%s': '%s' is not a regular file",
			       path, r);
	else
		err = judge(path, r, &st, false);
	/* every directory up to /: nobody else may swap the file or a directory */
	d = xstrdup(r);
	while (!err && (slash = strrchr(d, '/'))) {
		*slash = '\0';
		if (stat(*d ? d : "/", &st))
			err = gc_error(GCERR_KEYSTORE, "cannot load module '%s': %s", path,
				       strerror(errno));
		else
			err = judge(path, *d ? d : "/", &st, true);
		if (!*d)
			break;
	}
	free(d);
	if (err)
		free(r);
	else
		*real = r;
	return err;
}

static void *open_symbol(const char *path, const char *symbol)
{
	void *handle, *sym = NULL;

	gc_debug("loading module '%s'", path);
	handle = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (!handle)
		gc_error(GCERR_KEYSTORE, "cannot load module '%s': %s; reinstall galileo-credential or set GALILEO_CREDENTIAL_MODULE_DIR",
			 path, dlerror());
	else if (!(sym = dlsym(handle, symbol)))
		gc_error(GCERR_KEYSTORE, "module '%s' has no entry point '%s'; it is not a galileo-credential module",
			 path, symbol);
	return sym;
}

void *module_symbol(const char *file, const char *symbol)
{
	char *dir = module_dir(), *path, *real;
	void *sym = NULL;

	if (!dir)
		return NULL;
	path = xasprintf("%s/%s", dir, file);
	free(dir);
	if (!module_path_check(path, &real)) {
		sym = open_symbol(real, symbol);
		free(real);
	}
	free(path);
	return sym;
}

/* the services handed to helper modules, kept reachable for good */
struct kept_services {
	struct gc_services svc;
	struct kept_services *next;
};

const void *module_helper(const char *file, const char *symbol, const char *name)
{
	static struct kept_services *kept;
	const void *(*init)(const struct gc_services *);
	struct kept_services *k;
	struct gc_services *svc;
	const void *table;

	*(void **)&init = module_symbol(file, symbol);
	if (!init)
		return NULL;
	/* kept for good, and reachable: a module may keep its services */
	k = xcalloc(1, sizeof(*k));
	k->next = kept;
	kept = k;
	svc = &k->svc;
	svc->interface_version = GC_MODULE_INTERFACE_VERSION;
	svc->size = sizeof(*svc);
	svc->module_name = name;
	svc->debug = gc_debug;
	svc->wipe = secret_wipe;
	if (!(table = init(svc)))
		gc_error(GCERR_FAIL, "the module '%s' refused to start; reinstall galileo-credential",
			 file);
	return table;
}

/* ---- names --------------------------------------------------------------- */

static bool name_chars(const char *name, size_t max)
{
	size_t n = strlen(name);

	return n && n <= max && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

bool keystore_name_valid(const char *name)
{
	return name_chars(name, NAME_MAX_LEN);
}

static const struct builtin *builtin(const char *name)
{
	for (const struct builtin *b = builtins; b->name; b++)
		if (!strcmp(b->name, name))
			return b;
	return NULL;
}

bool keystore_builtin(const char *name)
{
	return builtin(name) != NULL;
}

static char *module_path(const char *name)
{
	char *dir = module_dir(), *path;

	if (!dir)
		return NULL;
	path = xasprintf("%s/keystore-%s.so", dir, name);
	free(dir);
	return path;
}

int keystore_present(const char *name)
{
	char *path;
	int ok;

	if (!keystore_name_valid(name))
		return gc_error(GCERR_KEYSTORE, "bad keystore name '%.64s'; names are [a-z0-9-]+", name);
	if (builtin(name))
		return 0;
	if (!(path = module_path(name)))
		return GCERR_FAIL;
	ok = access(path, R_OK) == 0;
	if (!ok)
		gc_error(GCERR_KEYSTORE, "unknown keystore '%s': no module '%s'; use env, secret-service, pass or persistent-keyring, or install the module",
			 name, path);
	free(path);
	return ok ? 0 : GCERR_KEYSTORE;
}

/* ---- the table ------------------------------------------------------------ */

/* the declared options: a bounded list of valid, distinct keys */
static bool options_ok(const struct gc_option *o)
{
	for (size_t i = 0; o && o[i].key; i++) {
		if (i >= OPTIONS_MAX || !name_chars(o[i].key, NAME_MAX_LEN))
			return false;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(o[i].key, o[j].key))
				return false;
	}
	return true;
}

/* every slot the table claims to support is there */
static bool table_ok(const struct gc_keystore_module *m, const char *name)
{
	if (!m->name || strcmp(m->name, name) || !m->get || !options_ok(m->options))
		return false;
	if ((m->supports & GC_SUPPORTS_WRITE) && (!m->store || !m->erase))
		return false;
	if ((m->supports & GC_SUPPORTS_TOKENS) &&
	    (!m->token_get || !m->token_store || !m->token_erase || !m->token_list))
		return false;
	return true;
}

/* check m and copy it into *table at this header's size */
static int table_take(const struct gc_keystore_module *m, const char *name,
		      struct gc_keystore_module *table)
{
	if (!m)
		return gc_error(GCERR_KEYSTORE, "keystore module '%s' refused to start", name);
	if (m->interface_version != GC_MODULE_INTERFACE_VERSION)
		return gc_error(GCERR_KEYSTORE, "keystore module '%s' speaks interface version %u, not %d; rebuild it against this galileo-credential",
				name, m->interface_version, GC_MODULE_INTERFACE_VERSION);
	if (m->size < TABLE_V2_SIZE)
		return gc_error(GCERR_KEYSTORE, "keystore module '%s' is malformed (its table says it is %zu bytes, under interface version %d's %zu)",
				name, m->size, GC_MODULE_INTERFACE_VERSION, (size_t)TABLE_V2_SIZE);
	memset(table, 0, sizeof(*table));
	memcpy(table, m, m->size < sizeof(*table) ? m->size : sizeof(*table));
	table->size = sizeof(*table);
	if (!table_ok(table, name))
		return gc_error(GCERR_KEYSTORE, "keystore module '%s' is malformed (its name, a slot it claims or its option list is wrong)",
				name);
	return 0;
}

int keystore_load_file(const char *path, const char *name, const struct gc_services *svc,
		       struct gc_keystore_module *table)
{
	gc_module_entry_fn init;

	*(void **)&init = open_symbol(path, GC_MODULE_ENTRY_SYMBOL);
	if (!init)
		return GCERR_KEYSTORE;
	return table_take(init(svc), name, table);
}

int keystore_load(const char *name, const struct gc_services *svc,
		  struct gc_keystore_module *table)
{
	const struct builtin *b = builtin(name);
	char *path, *real;
	int err;

	if ((err = keystore_present(name)))
		return err;
	if (b)
		return table_take(b->init(svc), name, table);
	if (!(path = module_path(name)))
		return GCERR_FAIL;
	err = module_path_check(path, &real);
	free(path);
	if (err)
		return err;
	/* its constructors and its entry point are the module's code too */
	contain_enter(name, "loading", svc->timeout);
	err = keystore_load_file(real, name, svc, table);
	contain_leave();
	free(real);
	return err;
}
