#include <galileo-credential/module.h>

#include <stdarg.h>
#include <stdio.h>

#include <libsecret/secret.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/*
 * The `secret-service` backend: the freedesktop Secret Service through
 * libsecret's synchronous API.  One Key item per server, one Token item per
 * (server, organization); CONTRACT section 2 and decisions.md give schemas,
 * attributes and labels.
 */

static const SecretSchema key_schema = {
	.name = "ai.galileo.credential.Key",
	.flags = SECRET_SCHEMA_NONE,
	.attributes = {
		{ "server", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ "kind", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ "username", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ "organization", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ NULL, 0 },
	}
};

static const SecretSchema token_schema = {
	.name = "ai.galileo.credential.Token",
	.flags = SECRET_SCHEMA_NONE,
	.attributes = {
		{ "server", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ "organization", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ NULL, 0 },
	}
};

static SecretService *service;
static const struct gc_services *svc;

static char last_message[512];

/* the one line for the failure, kept so a later call in this process repeats it */
static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_message, sizeof(last_message), fmt, ap);
	va_end(ap);
	svc->error("%s", last_message);
}

static void secret_free(char *s)
{
	if (s) {
		svc->wipe(s, strlen(s));
		free(s);
	}
}

#define UNREACHABLE_HINT "start a keyring daemon or set GALILEO_API_KEY"

/*
 * GLib prints warnings on stderr by default; our stderr carries exactly one
 * line per failure, so its messages become debug lines.  The writer also
 * receives unstructured g_log() output via g_log_default_handler.
 */
static GLogWriterOutput log_writer(GLogLevelFlags level, const GLogField *fields,
				   gsize n_fields, gpointer data)
{
	const char *domain = "", *message = "";
	gsize i;

	(void)data;
	if (level & G_LOG_LEVEL_DEBUG)
		return G_LOG_WRITER_HANDLED;
	for (i = 0; i < n_fields; i++) {
		if (fields[i].length != -1)
			continue;
		if (strcmp(fields[i].key, "GLIB_DOMAIN") == 0)
			domain = fields[i].value;
		else if (strcmp(fields[i].key, "MESSAGE") == 0)
			message = fields[i].value;
	}
	svc->debug("secret-service: %s: %s", domain, message);
	return G_LOG_WRITER_HANDLED;
}

static void print_handler(const gchar *s)
{
	svc->debug("secret-service: %.*s", (int)strcspn(s, "\n"), s);
}

/*
 * Without a session bus address GLib would try to autolaunch a bus through
 * dbus-launch; refuse instead, exactly as the contract's "no D-Bus session".
 */
static int have_session_bus(void)
{
	const char *addr = getenv("DBUS_SESSION_BUS_ADDRESS");
	const char *dir = getenv("XDG_RUNTIME_DIR");
	struct stat st;
	char *path;
	int ok;

	if (addr && *addr)
		return 1;
	if (!dir || !*dir)
		return 0;
	path = g_strdup_printf("%s/bus", dir);
	ok = stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
	g_free(path);
	return ok;
}

static int locked_error(void)
{
	report("the Secret Service keyring is locked and was not unlocked; "
		   "unlock it or set GALILEO_API_KEY");
	return GC_STATUS_LOCKED;
}

/* Turn a GError into a status with a short one-line reason; frees it. */
static int fail(GError *err)
{
	const char *reason;
	int ret = GC_STATUS_UNAVAILABLE;

	if (!err)
		err = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_FAILED, "unknown error");
	svc->debug("secret-service: %s", err->message);
	if (g_error_matches(err, SECRET_ERROR, SECRET_ERROR_IS_LOCKED) ||
	    g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		g_error_free(err);
		return locked_error();
	}
	if (g_error_matches(err, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
	    g_error_matches(err, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER)) {
		reason = "no Secret Service on the session bus";
	} else {
		if (g_dbus_error_is_remote_error(err))
			ret = GC_STATUS_ERROR;
		g_dbus_error_strip_remote_error(err);
		reason = err->message;
	}
	report("cannot reach the Secret Service: %.200s; " UNREACHABLE_HINT, reason);
	g_error_free(err);
	return ret;
}

/*
 * gnome-keyring does not match xdg:schema on the items of a locked
 * collection, so a search there finds nothing: a locked keyring would pass
 * for an empty one and erase would silently leave the credential.  Unlock
 * the default collection (prompting, when a prompter is available) first.
 */
static int unlock_default_collection(void)
{
	SecretCollection *collection;
	GList *objects;
	GError *err = NULL;
	int unlocked;

	collection = secret_collection_for_alias_sync(service, SECRET_COLLECTION_DEFAULT,
						      SECRET_COLLECTION_NONE, NULL, &err);
	if (err)
		return fail(err);
	if (!collection)
		return 0;	/* none yet: storing creates it */
	if (!secret_collection_get_locked(collection)) {
		g_object_unref(collection);
		return 0;
	}
	svc->debug("secret-service: unlocking the default collection");
	objects = g_list_prepend(NULL, collection);
	unlocked = secret_service_unlock_sync(service, objects, NULL, NULL, &err);
	g_list_free_full(objects, g_object_unref);
	if (err)
		return fail(err);
	return unlocked > 0 ? 0 : locked_error();
}

/*
 * Connect and unlock once per process.  A failure is remembered, so one
 * call never asks twice (on a desktop: never prompts again right after the
 * user dismissed the prompt).
 */
static int ss_open(void)
{
	static int logging_routed;
	static char *failure;
	static int failure_status;
	GError *err = NULL;
	int ret;

	if (!logging_routed) {
		g_log_set_writer_func(log_writer, NULL, NULL);
		g_set_printerr_handler(print_handler);
		logging_routed = 1;
	}
	if (service)
		return 0;
	if (failure) {
		report("%s", failure);
		return failure_status;
	}
	if (!have_session_bus()) {
		report("cannot reach the Secret Service: no D-Bus session bus; " UNREACHABLE_HINT);
		ret = GC_STATUS_UNAVAILABLE;
	} else if (!(service = secret_service_get_sync(SECRET_SERVICE_OPEN_SESSION, NULL, &err))) {
		ret = fail(err);
	} else if ((ret = unlock_default_collection())) {
		g_object_unref(service);
		service = NULL;
	}
	if (ret) {
		failure = strdup(last_message);
		failure_status = ret;
	}
	return ret;
}

/* attribute table borrowing its strings; free with g_hash_table_unref */
static GHashTable *attrs_new(void)
{
	return g_hash_table_new(g_str_hash, g_str_equal);
}

static const char *attr(GHashTable *attrs, const char *name)
{
	const char *v = g_hash_table_lookup(attrs, name);

	return v ? v : "";
}

/* an item found by a search was deleted since, by another process */
static bool vanished(const GError *err)
{
	return g_error_matches(err, SECRET_ERROR, SECRET_ERROR_NO_SUCH_OBJECT) ||
	       g_error_matches(err, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT) ||
	       g_error_matches(err, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_INTERFACE) ||
	       g_error_matches(err, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD);
}

/*
 * Search schema/attrs with flags; *items transfer full.  0 (maybe an empty
 * list) or GCERR_KEYSTORE.  Searched again when an item found vanished
 * before its secret was loaded.
 */
static int search(const SecretSchema *schema, GHashTable *attrs,
		  SecretSearchFlags flags, GList **items)
{
	GError *err = NULL;
	int ret = ss_open();

	if (ret)
		return ret;
	for (int tries = 1;; tries++) {
		*items = secret_service_search_sync(service, schema, attrs, flags, NULL, &err);
		if (!err)
			return 0;
		g_list_free_full(*items, g_object_unref);
		*items = NULL;
		if (tries == 3 || !vanished(err))
			return fail(err);
		svc->debug("secret-service: an item vanished during the search; searching again");
		g_clear_error(&err);
	}
}

/*
 * The secret of an item loaded with SECRET_SEARCH_LOAD_SECRETS, new string;
 * *out NULL when the item was deleted since the search.
 */
static int item_secret(SecretItem *item, char **out)
{
	SecretValue *value;
	const char *data;
	gsize len;

	*out = NULL;
	value = secret_item_get_secret(item);
	if (!value)
		return secret_item_get_locked(item) ? locked_error() : 0;
	data = secret_value_get(value, &len);
	/* up to a NUL only, so that secret_free() wipes all of the copy */
	*out = strndup(data, len);
	/* the value's own buffer is libsecret's secure memory, wiped on free */
	secret_value_unref(value);
	return 0;
}

static int delete_items(GList *items)
{
	GError *err = NULL;
	GList *l;

	for (l = items; l; l = l->next) {
		if (secret_item_delete_sync(l->data, NULL, &err))
			continue;
		if (!vanished(err))
			return fail(err);
		g_clear_error(&err);	/* another process deleted it first */
	}
	return 0;
}

static int ss_get(const char *server, struct gc_credential *out)
{
	GHashTable *attrs = attrs_new(), *found;
	GList *items = NULL;
	char *secret = NULL;
	int ret;

	g_hash_table_insert(attrs, "server", (char *)server);
	ret = search(&key_schema, attrs, SECRET_SEARCH_UNLOCK | SECRET_SEARCH_LOAD_SECRETS,
		     &items);
	g_hash_table_unref(attrs);
	if (ret)
		return ret;
	if (items)
		ret = item_secret(items->data, &secret);
	if (!ret && !secret)
		ret = GC_STATUS_NOTFOUND;	/* none, or deleted since the search */
	if (ret == 0) {
		found = secret_item_get_attributes(items->data);
		out->server = strdup(server);
		out->kind = strdup(*attr(found, "kind") ? attr(found, "kind") : "api-key");
		out->username = strdup(attr(found, "username"));
		out->organization = strdup(attr(found, "organization"));
		out->secret = secret;
		g_hash_table_unref(found);
	}
	g_list_free_full(items, g_object_unref);
	return ret;
}

static int same_key(GHashTable *a, GHashTable *b)
{
	static const char *const names[] = { "server", "kind", "username", "organization" };
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(names); i++)
		if (strcmp(attr(a, names[i]), attr(b, names[i])) != 0)
			return 0;
	return 1;
}

/*
 * Storing an item whose attributes equal an existing one replaces it in one
 * D-Bus call; only once the new secret is safe are the server's other Key
 * items (another kind, username or organization) deleted.
 */
static int ss_store(const struct gc_credential *cred)
{
	GHashTable *attrs = attrs_new(), *by_server = attrs_new();
	GList *items = NULL, *stale = NULL, *l;
	GError *err = NULL;
	char *label;
	int ret = ss_open();

	if (ret)
		goto out;
	g_hash_table_insert(by_server, "server", cred->server);
	g_hash_table_insert(attrs, "server", cred->server);
	g_hash_table_insert(attrs, "kind", cred->kind ? cred->kind : "api-key");
	g_hash_table_insert(attrs, "username", cred->username ? cred->username : "");
	g_hash_table_insert(attrs, "organization",
			    cred->organization ? cred->organization : "");
	label = g_strdup_printf("Galileo credential for %s", cred->server);
	if (!secret_password_storev_sync(&key_schema, attrs, SECRET_COLLECTION_DEFAULT,
					 label, cred->secret, NULL, &err))
		ret = fail(err);
	g_free(label);
	if (ret)
		goto out;

	ret = search(&key_schema, by_server, SECRET_SEARCH_ALL | SECRET_SEARCH_UNLOCK,
		     &items);
	if (ret)
		goto out;
	for (l = items; l; l = l->next) {
		GHashTable *found = secret_item_get_attributes(l->data);

		if (!same_key(found, attrs))
			stale = g_list_prepend(stale, l->data);
		g_hash_table_unref(found);
	}
	ret = delete_items(stale);
	g_list_free(stale);
	g_list_free_full(items, g_object_unref);
out:
	g_hash_table_unref(by_server);
	g_hash_table_unref(attrs);
	return ret;
}

/* delete every item of schema matching attrs; 0 also when none */
static int delete_matching(const SecretSchema *schema, GHashTable *attrs)
{
	GList *items = NULL;
	int ret;

	ret = search(schema, attrs, SECRET_SEARCH_ALL | SECRET_SEARCH_UNLOCK, &items);
	if (ret == 0)
		ret = delete_items(items);
	g_list_free_full(items, g_object_unref);
	return ret;
}

static int ss_erase(const char *server)
{
	GHashTable *attrs = attrs_new();
	int ret;

	g_hash_table_insert(attrs, "server", (char *)server);
	ret = delete_matching(&key_schema, attrs);
	g_hash_table_unref(attrs);
	return ret;
}

static int ss_list(struct gc_credential **out, size_t *n)
{
	GHashTable *attrs = attrs_new();
	struct gc_credential *list;
	GList *items = NULL, *l;
	size_t i = 0;
	int ret;

	/* attributes only: items of other, locked collections stay locked */
	ret = search(&key_schema, attrs, SECRET_SEARCH_ALL, &items);
	g_hash_table_unref(attrs);
	if (ret)
		return ret;
	list = calloc(g_list_length(items) + 1, sizeof(*list));
	for (l = items; l; l = l->next) {
		GHashTable *found = secret_item_get_attributes(l->data);

		if (*attr(found, "server")) {
			list[i].server = strdup(attr(found, "server"));
			list[i].kind = strdup(*attr(found, "kind") ?
					       attr(found, "kind") : "api-key");
			list[i].username = strdup(attr(found, "username"));
			list[i].organization = strdup(attr(found, "organization"));
			i++;
		}
		g_hash_table_unref(found);
	}
	g_list_free_full(items, g_object_unref);
	*out = list;
	*n = i;
	return 0;
}

/* the attributes of one token item; borrows both strings */
static GHashTable *token_attrs(const char *server, const char *organization)
{
	GHashTable *attrs = attrs_new();

	g_hash_table_insert(attrs, "server", (char *)server);
	g_hash_table_insert(attrs, "organization", (char *)(organization ? organization : ""));
	return attrs;
}

static int ss_token_get(const char *server, const char *organization, char **payload)
{
	GHashTable *attrs;
	GError *err = NULL;
	char *secret;
	int ret = ss_open();

	if (ret)
		return ret;
	attrs = token_attrs(server, organization);
	secret = secret_password_lookupv_nonpageable_sync(&token_schema, attrs, NULL, &err);
	g_hash_table_unref(attrs);
	if (err)
		return fail(err);
	if (!secret)
		return GC_STATUS_NOTFOUND;
	*payload = strdup(secret);
	secret_password_free(secret);
	return 0;
}

/* expiry: gnome-keyring has no timeout; the cache judges the payload */
static int ss_token_store(const char *server, const char *organization, const char *payload,
			  int64_t expires_at)
{
	GHashTable *attrs;
	GError *err = NULL;
	char *label;
	int ret = ss_open();

	(void)expires_at;
	if (ret)
		return ret;
	attrs = token_attrs(server, organization);
	label = g_strdup_printf("Galileo token for %s", server);
	if (!secret_password_storev_sync(&token_schema, attrs, SECRET_COLLECTION_DEFAULT,
					 label, payload, NULL, &err))
		ret = fail(err);
	g_free(label);
	g_hash_table_unref(attrs);
	return ret;
}

static int ss_token_erase(const char *server, const char *organization)
{
	GHashTable *attrs = attrs_new();
	int ret;

	g_hash_table_insert(attrs, "server", (char *)server);
	if (organization)
		g_hash_table_insert(attrs, "organization", (char *)organization);
	ret = delete_matching(&token_schema, attrs);
	g_hash_table_unref(attrs);
	return ret;
}

static void token_list_free(struct gc_token_item *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(list[i].organization);
		secret_free(list[i].payload);
	}
	free(list);
}

static int ss_token_list(const char *server, struct gc_token_item **out, size_t *n)
{
	GHashTable *attrs = attrs_new();
	struct gc_token_item *list;
	GList *items = NULL, *l;
	size_t i = 0;
	int ret;

	g_hash_table_insert(attrs, "server", (char *)server);
	ret = search(&token_schema, attrs,
		     SECRET_SEARCH_ALL | SECRET_SEARCH_UNLOCK | SECRET_SEARCH_LOAD_SECRETS,
		     &items);
	g_hash_table_unref(attrs);
	if (ret)
		return ret;
	list = calloc(g_list_length(items) + 1, sizeof(*list));
	for (l = items; l && ret == 0; l = l->next) {
		GHashTable *found = secret_item_get_attributes(l->data);

		ret = item_secret(l->data, &list[i].payload);
		if (ret == 0 && list[i].payload)
			list[i++].organization = strdup(attr(found, "organization"));
		g_hash_table_unref(found);
	}
	g_list_free_full(items, g_object_unref);
	if (ret) {
		token_list_free(list, i);
		return ret;
	}
	*out = list;
	*n = i;
	return 0;
}

static const struct gc_keystore_module module = {
	.interface_version = GC_MODULE_INTERFACE_VERSION,
	.name = "secret-service",
	.supports = GC_SUPPORTS_WRITE | GC_SUPPORTS_TOKENS,
	.open = ss_open,
	.get = ss_get,
	.store = ss_store,
	.erase = ss_erase,
	.list = ss_list,
	.token_get = ss_token_get,
	.token_store = ss_token_store,
	.token_erase = ss_token_erase,
	.token_list = ss_token_list,
};

const struct gc_keystore_module *gc_keystore_module_init(const struct gc_services *services)
{
	if (!services || services->interface_version != GC_MODULE_INTERFACE_VERSION)
		return NULL;
	svc = services;
	return &module;
}
