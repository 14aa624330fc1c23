/* SPDX-License-Identifier: MIT */
/*
 * keystore-secret-service.so: the freedesktop Secret Service through
 * libsecret, as a galileo-credential keystore module
 * (<galileo-credential/module.h>).  It uses libc, GLib and libsecret and
 * the services the program lends it; nothing of the program.
 *
 * Items (galileo-credential(1), WHAT IS STORED): one Key item per server,
 * one Token item per (server, organization), every attribute always
 * present.  Each item also carries `generation`, which orders the stores
 * of a slot totally (see make_generation()).  A store never overwrites an
 * item: it writes a new one, reads its secret back, and only then deletes
 * the slot's older items.  Readers take the newest generation and ignore
 * the rest, so at every moment, and after the daemon died mid-store, they
 * find exactly one credential.  Overwriting (CreateItem with replace) is
 * avoided because KeePassXC 2.7 raises an access dialog whenever an item
 * that another process created is replaced.
 *
 * Why the asynchronous API with a main context of our own: no call may
 * wait longer than services->timeout, and an unanswered prompt must be
 * dismissed.  libsecret dismisses a prompt (Prompt.Dismiss) when the
 * GCancellable of the call that raised it is cancelled
 * (secret-prompt.c, on_prompt_cancelled()).  The _sync calls run a private
 * main context, so a timer on any context of ours would never fire during
 * them, and a watchdog thread would make libsecret send the Dismiss from
 * that thread and dispatch its reply on a context nobody runs.  Running
 * every call on one context of this module, with two timers on it, keeps
 * everything on the calling thread: at the deadline the operation's
 * cancellable is cancelled (prompts dismissed, D-Bus calls abandoned
 * locally), and a little later a hard stop gives up on libsecret
 * altogether, for providers that never complete a dismissed prompt (a
 * Completed signal whose result has the wrong type leaves libsecret's task
 * unfinished forever).  Abandoned calls finish later into reference
 * counted closures (struct pending), never into freed memory.
 *
 * One exception to dismissing: gnome-keyring (42.1 in Debian 12, and
 * upstream since) aborts on Prompt.Dismiss of an unlock prompt that is
 * showing: gkd-secret-unlock.c mark_as_complete() pops the prompt itself
 * off its unlock queue and perform_next_unlock() then fails
 * g_assert (!self->current).  Killing the user's keyring daemon is worse
 * than leaving its unlock dialog up, so those prompts (path
 * /org/freedesktop/secrets/prompt/uN, service owned by gnome-keyring) are
 * run without our cancellable and abandoned at the deadline: the call
 * returns at once, the dialog stays for the person to answer later (which
 * unlocks the keyring, as asked) or cancel.  See guarded_prompt_async().
 */
#define _GNU_SOURCE	/* dladdr() */

#include <galileo-credential/module.h>

#include <libsecret/secret.h>

#include <dlfcn.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const SecretSchema key_schema = {
	.name = "ai.galileo.credential.Key",
	.flags = SECRET_SCHEMA_NONE,
	.attributes = {
		{ "server", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ "kind", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ "username", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ "organization", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ "generation", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ NULL, 0 },
	}
};

static const SecretSchema token_schema = {
	.name = "ai.galileo.credential.Token",
	.flags = SECRET_SCHEMA_NONE,
	.attributes = {
		{ "server", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ "organization", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ "generation", SECRET_SCHEMA_ATTRIBUTE_STRING },
		{ NULL, 0 },
	}
};

#define HINT "start a keyring daemon or set GALILEO_API_KEY"
#define LOCKED_LINE "the Secret Service keyring is locked and was not unlocked; " \
	"unlock it or set GALILEO_API_KEY"
#define WAITING_LINE "the Secret Service is waiting for someone to answer a prompt " \
	"(unlock or access request); unlock the keyring or allow access, then try again"
#define DENIED_LINE "the Secret Service refused access to the galileo-credential items; " \
	"allow access in the keyring, or set GALILEO_API_KEY"
#define KEPT_LINE "the Secret Service did not keep the secret as written " \
	"(KeePassXC expands placeholders such as {USERNAME})"

/*
 * After the deadline: time for libsecret to dismiss a prompt (and for a
 * store to remove what it wrote) before the call gives up regardless; then
 * at most FLUSH_MS to put the Dismiss on the wire.  Both inside the 1 s
 * the contract allows beyond `timeout`.
 */
#define GRACE_MS 600
#define FLUSH_MS 200

/* internal only: the item went away (another process deleted it) */
#define VANISHED (-1)

static const struct gc_services *svc;
/* every libsecret call of this module runs and completes here */
static GMainContext *context;
static GDBusConnection *session_bus;
static SecretService *service;
static SecretCollection *default_collection;
/* the Secret Service is gnome-keyring: see the top of this file */
static int gnome_keyring;
/* prompts running that must not be dismissed: give up at the deadline */
static int undismissable_prompts;
/* open's failure, so one process never prompts twice in a row */
static int failed_status;
static char failed_line[512];
/* the line last reported, for failed_line */
static char last_line[512];
/*
 * A first attempt that may be retried (run_op()) keeps its line to itself
 * until it is known whether the retry replaces it: the program keeps the
 * first line it is given.
 */
static int deferring;
static int deferred;
static char deferred_line[512];

static int report(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int report(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_line, sizeof(last_line), fmt, ap);
	va_end(ap);
	if (!deferring)
		svc->error("%s", last_line);
	else if (!deferred++)
		memcpy(deferred_line, last_line, sizeof(deferred_line));
	return status;
}

/*
 * Text from the daemon goes into our one line: printable ASCII only, so a
 * hostile or broken daemon cannot put control characters on a terminal.
 */
static const char *printable(const char *s, char *buf, size_t size)
{
	size_t i;

	for (i = 0; s && s[i] && i + 1 < size; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

/*
 * GLib prints warnings on stderr by default; the program's stderr carries
 * exactly one line per failure, so GLib's messages become debug lines.
 * Unstructured g_log() output reaches this writer too.
 */
static GLogWriterOutput log_writer(GLogLevelFlags level, const GLogField *fields,
				   gsize n_fields, gpointer data)
{
	const char *domain = "", *message = "";
	char buf[256];
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
	svc->debug("secret-service: %s: %s", domain, printable(message, buf, sizeof(buf)));
	return G_LOG_WRITER_HANDLED;
}

static void print_handler(const gchar *s)
{
	char buf[256];

	svc->debug("secret-service: %s", printable(s, buf, sizeof(buf)));
}

/*
 * GLib's type system and its D-Bus worker thread cannot be unloaded: stay
 * mapped even if a loader dlclose()s us.
 */
static void pin_module(void)
{
	Dl_info info;

	if (dladdr((void *)pin_module, &info) && info.dli_fname)
		(void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
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
	path = g_build_filename(dir, "bus", NULL);
	ok = stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
	g_free(path);
	return ok;
}

/* ---------------------------------------------------------------------
 * One operation: a deadline, a cancellable, calls awaited on our context
 */

struct op {
	GCancellable *cancellable;	/* cancelled at the deadline */
	GCancellable *cleanup;		/* undoing a store: cancelled at the hard stop */
	int undoing;			/* calls use cleanup */
	int timed_out;			/* the deadline passed */
	int expired;			/* the hard stop passed: wait no more */
	int connecting;			/* an error now means "cannot reach" */
	int session_failed;		/* the failure may be the session's: try a fresh one */
	GSource *deadline, *hard_stop;
};

/* a call in flight; freed by whichever of caller and callback is last */
struct pending {
	gint refs;
	GAsyncResult *result;
};

static long timeout_ms(void)
{
	long s = svc->timeout;

	/* 0 or less would make every call fail at once; a day is plenty */
	if (s < 1)
		s = 1;
	if (s > 86400)
		s = 86400;
	return s * 1000;
}

static gboolean on_deadline(gpointer data)
{
	struct op *op = data;

	op->timed_out = 1;
	svc->debug("secret-service: no answer within %ld s; %s", timeout_ms() / 1000,
		   undismissable_prompts ? "leaving gnome-keyring's unlock prompt up"
					 : "dismissing any prompt");
	if (undismissable_prompts)
		op->expired = 1;	/* nothing will complete: stop now */
	g_cancellable_cancel(op->cancellable);
	return G_SOURCE_REMOVE;
}

static gboolean on_hard_stop(gpointer data)
{
	struct op *op = data;

	op->timed_out = op->expired = 1;
	svc->debug("secret-service: giving up on the Secret Service");
	g_cancellable_cancel(op->cleanup);
	return G_SOURCE_REMOVE;
}

static GSource *add_timer(long ms, GSourceFunc fn, struct op *op)
{
	GSource *source = g_timeout_source_new((guint)ms);

	g_source_set_callback(source, fn, op, NULL);
	g_source_attach(source, context);
	return source;
}

static void op_begin(struct op *op)
{
	long ms = timeout_ms();

	memset(op, 0, sizeof(*op));
	g_main_context_push_thread_default(context);
	op->cancellable = g_cancellable_new();
	op->cleanup = g_cancellable_new();
	op->deadline = add_timer(ms, on_deadline, op);
	op->hard_stop = add_timer(ms + GRACE_MS, on_hard_stop, op);
	svc->debug("secret-service: calls bounded by %ld s (%s)", ms / 1000,
		   svc->interactive ? "interactive" : "not interactive");
}

static GCancellable *cancellable(struct op *op)
{
	return op->undoing ? op->cleanup : op->cancellable;
}

static struct pending *pending_new(void)
{
	struct pending *p = g_new0(struct pending, 1);

	p->refs = 2;	/* the caller's and the callback's */
	return p;
}

static void pending_unref(struct pending *p)
{
	if (!g_atomic_int_dec_and_test(&p->refs))
		return;
	g_clear_object(&p->result);
	g_free(p);
}

static void on_ready(GObject *source, GAsyncResult *result, gpointer data)
{
	struct pending *p = data;

	(void)source;
	p->result = g_object_ref(result);
	pending_unref(p);
}

/*
 * Run our context until the call completes or the hard stop passes.  The
 * result (a new reference), or NULL when given up on: then the call may
 * still complete later, into p, which the callback frees.
 */
static GAsyncResult *await(struct op *op, struct pending *p)
{
	GAsyncResult *result;

	while (!p->result && !op->expired)
		g_main_context_iteration(context, TRUE);
	result = p->result ? g_object_ref(p->result) : NULL;
	pending_unref(p);
	return result;
}

static gboolean on_flush_timeout(gpointer data)
{
	((struct op *)data)->expired = 1;
	return G_SOURCE_REMOVE;
}

/*
 * After a dismissal, make sure the Dismiss has left the process before the
 * program exits: a queued D-Bus message dies with it.
 */
static void flush_bus(void)
{
	GDBusConnection *bus = session_bus;
	struct pending *p = pending_new();
	struct op stop = { .expired = 0 };
	GSource *timer = add_timer(FLUSH_MS, on_flush_timeout, &stop);
	GAsyncResult *result;

	g_dbus_connection_flush(bus, NULL, on_ready, p);
	result = await(&stop, p);
	if (result)
		g_dbus_connection_flush_finish(bus, result, NULL);
	g_clear_object(&result);
	g_source_destroy(timer);
	g_source_unref(timer);
}

static int op_end(struct op *op, int status)
{
	int i;

	if (op->timed_out && session_bus)
		flush_bus();
	g_source_destroy(op->deadline);
	g_source_unref(op->deadline);
	g_source_destroy(op->hard_stop);
	g_source_unref(op->hard_stop);
	/* dispatch whatever is ready (a Dismiss reply), never wait for more */
	for (i = 0; i < 100 && g_main_context_iteration(context, FALSE); i++)
		;
	g_object_unref(op->cancellable);
	g_object_unref(op->cleanup);
	g_main_context_pop_thread_default(context);
	return status;
}

/* ---------------------------------------------------------------------
 * Errors: GError to status and one line
 */

static GError *abandoned(void)
{
	return g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "no answer in time");
}

/* an item found by a search was deleted since, by another process */
static int vanished(const GError *err)
{
	return g_error_matches(err, SECRET_ERROR, SECRET_ERROR_NO_SUCH_OBJECT) ||
	       g_error_matches(err, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT) ||
	       g_error_matches(err, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_INTERFACE) ||
	       g_error_matches(err, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD);
}

/* the daemon or the bus went away: "not there at all" */
static int gone(const GError *err)
{
	return g_error_matches(err, G_DBUS_ERROR, G_DBUS_ERROR_NO_REPLY) ||
	       g_error_matches(err, G_DBUS_ERROR, G_DBUS_ERROR_DISCONNECTED) ||
	       g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CLOSED) ||
	       g_error_matches(err, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE) ||
	       g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
}

/* gone, or no Secret Service on the bus (any more) */
static int unreachable(const GError *err)
{
	return gone(err) || g_error_matches(err, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
	       g_error_matches(err, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER);
}

/*
 * Report err (freed) as one line; returns the status.  A failure of the
 * Secret Service itself (not unreachable, locked, refused or unanswered)
 * marks op->session_failed: KWallet's sessions fail at random (see
 * run_op()).
 */
static int fail(struct op *op, GError *err)
{
	char reason[201];
	int ret;

	if (!err)
		err = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_FAILED, "unknown error");
	g_dbus_error_strip_remote_error(err);
	printable(err->message, reason, sizeof(reason));
	svc->debug("secret-service: %s", reason);
	/*
	 * Our deadline cancelled the call, or the daemon let a D-Bus call
	 * time out: someone is expected to answer something.
	 */
	if (op->timed_out || g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
	    g_error_matches(err, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
		ret = report(GC_STATUS_LOCKED, WAITING_LINE);
	else if (g_error_matches(err, SECRET_ERROR, SECRET_ERROR_IS_LOCKED))
		ret = report(GC_STATUS_LOCKED, LOCKED_LINE);
	else if (g_error_matches(err, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED))
		ret = report(GC_STATUS_LOCKED, DENIED_LINE);
	else if (g_error_matches(err, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
		 g_error_matches(err, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER))
		ret = report(GC_STATUS_UNAVAILABLE, "cannot reach the Secret Service: "
			     "no Secret Service on the session bus; " HINT);
	else if (op->connecting || gone(err))
		ret = report(GC_STATUS_UNAVAILABLE, "cannot reach the Secret Service: %s; " HINT,
			     reason);
	else
		ret = report(GC_STATUS_ERROR, "the Secret Service failed: %s; "
			     "try again, or set GALILEO_API_KEY", reason);
	if (!unreachable(err) && (ret == GC_STATUS_ERROR || ret == GC_STATUS_UNAVAILABLE))
		op->session_failed = 1;
	g_error_free(err);
	return ret;
}

static int waiting(void)
{
	return report(GC_STATUS_LOCKED, WAITING_LINE);
}

/* ---------------------------------------------------------------------
 * Connecting and unlocking
 */

/*
 * Our SecretService subclass, only to decide per prompt whether libsecret
 * may dismiss it (see the top of this file).  GObject's type system wants
 * these structs; they are registered by hand so that no symbol is exported.
 */
struct gc_service {
	SecretService parent;
};

struct gc_service_class {
	SecretServiceClass parent_class;
};

static void (*parent_prompt_async)(SecretService *self, SecretPrompt *prompt,
				   const GVariantType *return_type, GCancellable *cancellable,
				   GAsyncReadyCallback callback, gpointer user_data);

struct relay {
	GAsyncReadyCallback callback;
	gpointer user_data;
};

static void relay_done(GObject *source, GAsyncResult *result, gpointer data)
{
	struct relay *r = data;

	undismissable_prompts--;
	r->callback(source, result, r->user_data);
	g_free(r);
}

static void guarded_prompt_async(SecretService *self, SecretPrompt *prompt,
				 const GVariantType *return_type, GCancellable *cancellable,
				 GAsyncReadyCallback callback, gpointer user_data)
{
	const char *path = g_dbus_proxy_get_object_path(G_DBUS_PROXY(prompt));
	struct relay *r;

	if (!gnome_keyring || !g_str_has_prefix(path, "/org/freedesktop/secrets/prompt/u")) {
		parent_prompt_async(self, prompt, return_type, cancellable, callback, user_data);
		return;
	}
	svc->debug("secret-service: gnome-keyring unlock prompt %s: not dismissed at the deadline",
		   path);
	r = g_new(struct relay, 1);
	r->callback = callback;
	r->user_data = user_data;
	undismissable_prompts++;
	parent_prompt_async(self, prompt, return_type, NULL, relay_done, r);
}

static void service_class_init(gpointer klass, gpointer data)
{
	SecretServiceClass *service_class = klass;

	(void)data;
	parent_prompt_async = service_class->prompt_async;
	service_class->prompt_async = guarded_prompt_async;
}

static GType service_type(void)
{
	static gsize type;

	if (g_once_init_enter(&type)) {
		GType t = g_type_register_static_simple(
			SECRET_TYPE_SERVICE, g_intern_static_string("GalileoCredentialSecretService"),
			sizeof(struct gc_service_class), service_class_init,
			sizeof(struct gc_service), NULL, 0);

		g_once_init_leave(&type, t);
	}
	return type;
}

/*
 * Whether the Secret Service is gnome-keyring: it also owns
 * org.gnome.keyring, under the same unique name.
 */
static void detect_provider(struct op *op)
{
	GDBusConnection *bus = g_dbus_proxy_get_connection(G_DBUS_PROXY(service));
	char *owner = g_dbus_proxy_get_name_owner(G_DBUS_PROXY(service));
	struct pending *p = pending_new();
	GAsyncResult *result;
	GVariant *reply = NULL;
	const char *gk = NULL;

	g_dbus_connection_call(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			       "org.freedesktop.DBus", "GetNameOwner",
			       g_variant_new("(s)", "org.gnome.keyring"), G_VARIANT_TYPE("(s)"),
			       G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, cancellable(op), on_ready, p);
	if ((result = await(op, p)))
		reply = g_dbus_connection_call_finish(bus, result, NULL);
	if (reply)
		g_variant_get(reply, "(&s)", &gk);
	gnome_keyring = owner && gk && strcmp(owner, gk) == 0;
	svc->debug("secret-service: the Secret Service is %s",
		   gnome_keyring ? "gnome-keyring" : "not gnome-keyring");
	if (reply)
		g_variant_unref(reply);
	g_clear_object(&result);
	g_free(owner);
}

/*
 * The session bus first, on its own: g_bus_get() makes a connection that
 * raise(SIGTERM)s the process when the bus closes, and a dying bus must be
 * an error line, not a killed helper.
 */
static int connect_bus(struct op *op)
{
	struct pending *p;
	GAsyncResult *result;
	GError *err = NULL;

	if (session_bus)
		return 0;	/* connected already: a fresh session reuses the bus */
	p = pending_new();
	g_bus_get(G_BUS_TYPE_SESSION, cancellable(op), on_ready, p);
	if (!(result = await(op, p)))
		return waiting();
	/* kept: libsecret takes the same singleton, and flush_bus() needs it */
	session_bus = g_bus_get_finish(result, &err);
	g_object_unref(result);
	if (!session_bus)
		return fail(op, err);
	g_dbus_connection_set_exit_on_close(session_bus, FALSE);
	return 0;
}

static int connect_service(struct op *op)
{
	struct pending *p;
	GAsyncResult *result;
	GError *err = NULL;
	int ret;

	if (!have_session_bus())
		return report(GC_STATUS_UNAVAILABLE, "cannot reach the Secret Service: "
			      "no D-Bus session bus; " HINT);
	op->connecting = 1;
	ret = connect_bus(op);
	if (ret == 0) {
		p = pending_new();
		secret_service_open(service_type(), NULL, SECRET_SERVICE_OPEN_SESSION,
				    cancellable(op), on_ready, p);
		if (!(result = await(op, p)))
			ret = waiting();
		else if (!(service = secret_service_open_finish(result, &err)))
			ret = fail(op, err);
		g_clear_object(&result);
	}
	op->connecting = 0;
	if (ret == 0)
		detect_provider(op);
	return ret;
}

/*
 * Unlock objects (proxies, borrowed), prompting where the daemon wants to.
 * 0 when at least one was unlocked.
 */
static int unlock(struct op *op, GList *objects)
{
	struct pending *p = pending_new();
	GAsyncResult *result;
	GList *unlocked = NULL;
	GError *err = NULL;
	gint n;

	secret_service_unlock(service, objects, cancellable(op), on_ready, p);
	if (!(result = await(op, p)))
		return waiting();
	n = secret_service_unlock_finish(service, result, &unlocked, &err);
	g_object_unref(result);
	g_list_free_full(unlocked, g_object_unref);
	if (err)
		return fail(op, err);
	if (n > 0)
		return 0;
	/* dismissed: by our deadline, or by the person */
	return op->timed_out ? waiting() : report(GC_STATUS_LOCKED, LOCKED_LINE);
}

/*
 * gnome-keyring does not match xdg:schema on the items of a locked
 * collection, so a search there finds nothing: a locked keyring would pass
 * for an empty one and erase would silently leave the credential.  Unlock
 * the default collection (prompting, when a prompter is available) first.
 */
static int unlock_default_collection(struct op *op)
{
	struct pending *p = pending_new();
	GAsyncResult *result;
	GError *err = NULL;
	GList *objects;
	int ret;

	secret_collection_for_alias(service, SECRET_COLLECTION_DEFAULT, SECRET_COLLECTION_NONE,
				    cancellable(op), on_ready, p);
	if (!(result = await(op, p)))
		return waiting();
	default_collection = secret_collection_for_alias_finish(result, &err);
	g_object_unref(result);
	if (err)
		return fail(op, err);
	if (!default_collection || !secret_collection_get_locked(default_collection))
		return 0;	/* none yet (a store creates it), or unlocked */
	svc->debug("secret-service: unlocking the default collection");
	objects = g_list_prepend(NULL, default_collection);
	ret = unlock(op, objects);
	g_list_free(objects);
	return ret;
}

/*
 * Connect and unlock once per process.  A failure is remembered, so one
 * process never asks twice (on a desktop: never prompts again right after
 * the user dismissed the prompt or let it time out).
 */
static int ensure_open(struct op *op)
{
	int ret;

	if (failed_status)
		return report(failed_status, "%s", failed_line);
	if (service)
		return 0;
	ret = connect_service(op);
	if (ret == 0)
		ret = unlock_default_collection(op);
	if (ret) {
		failed_status = ret;
		memcpy(failed_line, last_line, sizeof(failed_line));
		g_clear_object(&default_collection);
		g_clear_object(&service);
	}
	return ret;
}

/* ---------------------------------------------------------------------
 * Items found, and which of them counts
 */

struct found {
	SecretItem *item;
	GHashTable *attrs;
};

static void found_free(gpointer data)
{
	struct found *f = data;

	g_object_unref(f->item);
	g_hash_table_unref(f->attrs);
	g_free(f);
}

/* the items of a search as struct found; consumes the list */
static GPtrArray *found_from(GList *items)
{
	GPtrArray *all = g_ptr_array_new_with_free_func(found_free);
	GList *l;

	for (l = items; l; l = l->next) {
		struct found *f = g_new0(struct found, 1);

		f->item = l->data;
		f->attrs = secret_item_get_attributes(f->item);
		g_ptr_array_add(all, f);
	}
	g_list_free(items);
	return all;
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

/* what make_generation() writes: 20 digits, '-', 10 digits */
static int valid_generation(const char *g)
{
	size_t i;

	for (i = 0; i < 31; i++)
		if (i == 20 ? g[i] != '-' : !g_ascii_isdigit(g[i]))
			return 0;
	return g[31] == '\0';
}

/*
 * Order of the stores of one slot: by generation; an item without one
 * (older versions, other tools) is older than any with one.  Ties (only
 * among such items) go by object path, so every reader picks the same.
 */
static int compare_found(const struct found *a, const struct found *b)
{
	const char *ga = attr(a->attrs, "generation"), *gb = attr(b->attrs, "generation");
	int va = valid_generation(ga), vb = valid_generation(gb);

	if (va != vb)
		return va - vb;
	if (va && strcmp(ga, gb) != 0)
		return strcmp(ga, gb);
	return strcmp(g_dbus_proxy_get_object_path(G_DBUS_PROXY(a->item)),
		      g_dbus_proxy_get_object_path(G_DBUS_PROXY(b->item)));
}

/* the newest item whose attribute key is value (key NULL: of all), borrowed */
static struct found *newest(GPtrArray *all, const char *key, const char *value)
{
	struct found *best = NULL;
	guint i;

	for (i = 0; i < all->len; i++) {
		struct found *f = all->pdata[i];

		if (key && strcmp(attr(f->attrs, key), value) != 0)
			continue;
		if (!best || compare_found(f, best) > 0)
			best = f;
	}
	return best;
}

/*
 * A generation newer than floor_ns: CLOCK_REALTIME nanoseconds, at least
 * one more than the newest existing store (so a clock stepped back cannot
 * make a later store lose), then the pid, which orders two stores of the
 * same nanosecond.  Zero-padded, so that string order is numeric order.
 */
static void make_generation(char *buf, size_t size, uint64_t floor_ns)
{
	struct timespec ts;
	uint64_t ns;

	clock_gettime(CLOCK_REALTIME, &ts);
	ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	if (ns <= floor_ns)
		ns = floor_ns + 1;
	snprintf(buf, size, "%020" PRIu64 "-%010ld", ns, (long)getpid());
}

static uint64_t newest_ns(GPtrArray *all)
{
	struct found *f = newest(all, NULL, NULL);
	const char *g = f ? attr(f->attrs, "generation") : "";

	return valid_generation(g) ? g_ascii_strtoull(g, NULL, 10) : 0;
}

/* ---------------------------------------------------------------------
 * Calls
 */

/*
 * Every item of schema matching attrs, locked ones included, without
 * secrets (nothing to unlock, so no prompt).  Not reported: *err set.
 */
static gboolean search_once(struct op *op, const SecretSchema *schema, GHashTable *attrs,
			    GPtrArray **all, GError **err)
{
	struct pending *p = pending_new();
	GAsyncResult *result;
	GList *items;

	secret_service_search(service, schema, attrs, SECRET_SEARCH_ALL, cancellable(op),
			      on_ready, p);
	if (!(result = await(op, p))) {
		*err = abandoned();
		return FALSE;
	}
	items = secret_service_search_finish(service, result, err);
	g_object_unref(result);
	if (*err) {
		g_list_free_full(items, g_object_unref);
		return FALSE;
	}
	*all = found_from(items);
	return TRUE;
}

/*
 * search_once, again when an item vanished between the search and the
 * loading of its properties (another process deleted it).  Not reported.
 */
static gboolean search_quiet(struct op *op, const SecretSchema *schema, GHashTable *attrs,
			     GPtrArray **all, GError **err)
{
	int tries;

	for (tries = 1;; tries++) {
		if (search_once(op, schema, attrs, all, err))
			return TRUE;
		if (tries == 3 || !vanished(*err) || op->timed_out)
			return FALSE;
		svc->debug("secret-service: an item vanished during the search; searching again");
		g_clear_error(err);
	}
}

/* search_quiet, reported */
static int search(struct op *op, const SecretSchema *schema, GHashTable *attrs,
		  GPtrArray **all)
{
	GError *err = NULL;

	return search_quiet(op, schema, attrs, all, &err) ? 0 : fail(op, err);
}

static gboolean delete_item(struct op *op, SecretItem *item, GError **err)
{
	struct pending *p = pending_new();
	GAsyncResult *result;
	gboolean ok;

	secret_item_delete(item, cancellable(op), on_ready, p);
	if (!(result = await(op, p))) {
		*err = abandoned();
		return FALSE;
	}
	ok = secret_item_delete_finish(item, result, err);
	g_object_unref(result);
	return ok;
}

/* delete every item of schema matching attrs; 0 also when none */
static int delete_all(struct op *op, const SecretSchema *schema, GHashTable *attrs)
{
	GPtrArray *all = NULL;
	GError *err = NULL;
	guint i;
	int ret = search(op, schema, attrs, &all);

	for (i = 0; ret == 0 && i < all->len; i++) {
		struct found *f = all->pdata[i];

		if (delete_item(op, f->item, &err))
			continue;
		if (vanished(err) && !op->timed_out)
			g_clear_error(&err);	/* another process deleted it first */
		else
			ret = fail(op, err);
	}
	if (all)
		g_ptr_array_unref(all);
	return ret;
}

/*
 * The secret of item, unlocking it first when it is locked (KeePassXC
 * shows its items locked to a client until access is allowed).  *value
 * transfer full, in libsecret's nonpageable memory.  0, VANISHED, a
 * reported status, or GC_STATUS_ERROR with *err set and not reported.
 */
static int load_value(struct op *op, SecretItem *item, SecretValue **value, GError **err)
{
	struct pending *p;
	GAsyncResult *result;
	GList *objects;
	int ret;

	if (secret_item_get_locked(item)) {
		objects = g_list_prepend(NULL, item);
		ret = unlock(op, objects);
		g_list_free(objects);
		if (ret)
			return ret;
	}
	p = pending_new();
	secret_item_load_secret(item, cancellable(op), on_ready, p);
	if (!(result = await(op, p)))
		return waiting();
	if (!secret_item_load_secret_finish(item, result, err)) {
		g_object_unref(result);
		if (vanished(*err) && !op->timed_out) {
			g_clear_error(err);
			return VANISHED;
		}
		return GC_STATUS_ERROR;
	}
	g_object_unref(result);
	*value = secret_item_get_secret(item);
	return *value ? 0 : report(GC_STATUS_LOCKED, LOCKED_LINE);
}

/* the secret of item as a malloc()ed string (*out); 0, VANISHED or reported */
static int item_secret(struct op *op, SecretItem *item, char **out)
{
	SecretValue *value = NULL;
	GError *err = NULL;
	const gchar *data;
	gsize len;
	int ret = load_value(op, item, &value, &err);

	if (ret == GC_STATUS_ERROR && err)
		return fail(op, err);
	if (ret)
		return ret;
	data = secret_value_get(value, &len);
	/* up to a NUL only, so that the program's wipe covers all of the copy */
	len = strnlen(data, len);
	*out = malloc(len + 1);
	if (*out) {
		memcpy(*out, data, len);
		(*out)[len] = '\0';
	}
	/* the value's own buffer is libsecret's secure memory, wiped on free */
	secret_value_unref(value);
	return *out ? 0 : report(GC_STATUS_ERROR, "out of memory");
}

/*
 * The secret of the newest item of all that holds one; the item in *from.
 * An empty secret is a store cut short: gnome-keyring's CreateItem saves
 * the item, then its secret, so a daemon killed in between leaves an
 * item of the newest generation with none.  No store writes an empty
 * secret, so such an item is passed over, and the next store removes it.
 */
static int newest_secret(struct op *op, GPtrArray *all, struct found **from, char **secret)
{
	struct found *f;
	int ret;

	while ((f = newest(all, NULL, NULL))) {
		if ((ret = item_secret(op, f->item, secret)))
			return ret;
		if (**secret) {
			*from = f;
			return 0;
		}
		free(*secret);
		*secret = NULL;
		svc->debug("secret-service: an item without a secret (a store cut short) passed over");
		g_ptr_array_remove_fast(all, f);
	}
	return GC_STATUS_NOTFOUND;
}

/*
 * The secret and attributes (*attrs transfer full, may be NULL) of the
 * newest item matching match; NOTFOUND when none.  Searched again when
 * the newest vanished before its secret was read.
 */
static int read_newest(struct op *op, const SecretSchema *schema, GHashTable *match,
		       GHashTable **attrs, char **secret)
{
	GPtrArray *all;
	struct found *f = NULL;
	int ret, tries;

	for (tries = 1;; tries++) {
		if ((ret = search(op, schema, match, &all)))
			return ret;
		ret = newest_secret(op, all, &f, secret);
		if (ret == 0 && attrs)
			*attrs = g_hash_table_ref(f->attrs);
		g_ptr_array_unref(all);
		if (ret != VANISHED)
			return ret;
		if (tries == 3)
			return GC_STATUS_NOTFOUND;	/* erased meanwhile, again and again */
		svc->debug("secret-service: the item vanished before it was read; searching again");
	}
}

/* ---------------------------------------------------------------------
 * Storing: write new, read back, delete older
 */

/* the default collection, created (a prompt for its password) when missing */
static int ensure_collection(struct op *op)
{
	struct pending *p;
	GAsyncResult *result;
	GError *err = NULL;

	if (default_collection)
		return 0;
	svc->debug("secret-service: creating the default collection");
	p = pending_new();
	secret_collection_create(service, "Default keyring", SECRET_COLLECTION_DEFAULT,
				 SECRET_COLLECTION_CREATE_NONE, cancellable(op), on_ready, p);
	if (!(result = await(op, p)))
		return waiting();
	default_collection = secret_collection_create_finish(result, &err);
	g_object_unref(result);
	return default_collection ? 0 : fail(op, err);
}

/* a new item, never replacing one; *item transfer full; 0 or reported */
static int write_item(struct op *op, const SecretSchema *schema, GHashTable *attrs,
		      const char *label, const char *secret, SecretItem **item)
{
	struct pending *p;
	GAsyncResult *result;
	SecretValue *value;
	GError *err = NULL;
	int ret = ensure_collection(op);

	if (ret)
		return ret;
	value = secret_value_new(secret, -1, "text/plain");
	p = pending_new();
	secret_item_create(default_collection, schema, attrs, label, value,
			   SECRET_ITEM_CREATE_NONE, cancellable(op), on_ready, p);
	secret_value_unref(value);
	if (!(result = await(op, p)))
		return waiting();
	*item = secret_item_create_finish(result, &err);
	g_object_unref(result);
	return *item ? 0 : fail(op, err);
}

/*
 * Remove what a failed store wrote: the item, or when the failure hid it
 * from us (cancelled while CreateItem was being answered), whatever carries
 * our generation.  On the cleanup cancellable, so it runs after the
 * deadline too, until the hard stop.  1 when nothing of ours is left.
 */
static int undo(struct op *op, const SecretSchema *schema, GHashTable *attrs, SecretItem *item)
{
	GPtrArray *all = NULL;
	GError *err = NULL;
	guint i;
	int ok = 1;

	op->undoing = 1;
	if (item) {
		ok = delete_item(op, item, &err) || vanished(err);
	} else if (search_quiet(op, schema, attrs, &all, &err)) {
		for (i = 0; i < all->len && ok; i++)
			ok = delete_item(op, ((struct found *)all->pdata[i])->item, &err) ||
			     vanished(err);
		g_ptr_array_unref(all);
	} else {
		ok = 0;
	}
	if (err)
		svc->debug("secret-service: removing the new item: %s", err->message);
	g_clear_error(&err);
	op->undoing = 0;
	return ok;
}

/*
 * Read the new item back: 0 when it holds exactly secret; VANISHED when a
 * newer store (or an erase) already deleted it.  Otherwise the new item is
 * removed again and the failure reported.
 */
static int verify(struct op *op, const SecretSchema *schema, GHashTable *attrs,
		  SecretItem *item, const char *secret, const char *label)
{
	SecretValue *value = NULL;
	GError *err = NULL;
	const gchar *data;
	gsize len;
	int ret = load_value(op, item, &value, &err), refused, kept;

	if (ret == VANISHED)
		return VANISHED;
	if (ret == 0) {
		data = secret_value_get(value, &len);
		kept = len == strlen(secret) && memcmp(data, secret, len) == 0;
		secret_value_unref(value);
		if (kept)
			return 0;
		svc->debug("secret-service: the secret read back differs from the one written");
	}
	/*
	 * A refusal to read it back (KeePassXC and {REF:...}) fails as a change
	 * would; a secret that does not decrypt is a broken session
	 * (KWallet), and a daemon that went away is just that.
	 */
	refused = ret == GC_STATUS_ERROR && err && !op->timed_out && !unreachable(err) &&
		  !g_error_matches(err, SECRET_ERROR, SECRET_ERROR_PROTOCOL);
	if (refused)
		svc->debug("secret-service: reading back refused: %s", err->message);
	else if (err)
		ret = fail(op, g_steal_pointer(&err));	/* locked, unreachable: reported */
	g_clear_error(&err);
	kept = undo(op, schema, attrs, item);
	if (ret == 0 || refused)
		return kept ? report(GC_STATUS_ERROR, KEPT_LINE "; nothing stored")
			    : report(GC_STATUS_ERROR, KEPT_LINE ", and the item written could "
				     "not be removed; remove '%s' in the keyring", label);
	if (!kept)
		svc->debug("secret-service: the new item could not be removed");
	return ret;
}

/*
 * Delete the slot's items older than generation.  Never a failure: the
 * new item is the newest, so readers already ignore what is left, and the
 * next store deletes it.  Items newer than ours (a concurrent store) are
 * left alone, so two concurrent stores never end with none.
 */
static void delete_older(struct op *op, const SecretSchema *schema, GHashTable *match,
			 const char *generation)
{
	GPtrArray *all = NULL;
	GError *err = NULL;
	guint i;

	if (!search_quiet(op, schema, match, &all, &err))
		goto out;
	for (i = 0; i < all->len && !op->timed_out; i++) {
		struct found *f = all->pdata[i];
		const char *g = attr(f->attrs, "generation");

		if (valid_generation(g) && strcmp(g, generation) >= 0)
			continue;
		if (!delete_item(op, f->item, &err) && !vanished(err))
			break;
		g_clear_error(&err);
	}
	g_ptr_array_unref(all);
out:
	if (err || op->timed_out)
		svc->debug("secret-service: older items left in place (%s)",
			   err ? err->message : "no answer in time");
	g_clear_error(&err);
}

/*
 * Make a new item with attrs (plus generation) the newest of the slot that
 * match selects, then delete the slot's older items.  0 or reported.
 */
static int replace_item(struct op *op, const SecretSchema *schema, GHashTable *match,
			GHashTable *attrs, const char *label, const char *secret)
{
	char generation[48];
	SecretItem *item = NULL;
	GPtrArray *all;
	int ret;

	if ((ret = search(op, schema, match, &all)))
		return ret;
	make_generation(generation, sizeof(generation), newest_ns(all));
	g_ptr_array_unref(all);
	g_hash_table_insert(attrs, "generation", generation);
	svc->debug("secret-service: writing generation %s", generation);
	ret = write_item(op, schema, attrs, label, secret, &item);
	/* a write that failed may have made the item all the same (KWallet) */
	if (ret && !undo(op, schema, attrs, NULL))
		svc->debug("secret-service: a failed store may have left an item");
	if (ret == 0)
		ret = verify(op, schema, attrs, item, secret, label);
	if (ret == 0)
		delete_older(op, schema, match, generation);
	if (ret == VANISHED) {
		svc->debug("secret-service: a newer store or an erase superseded this one");
		ret = 0;
	}
	g_clear_object(&item);
	g_hash_table_remove(attrs, "generation");	/* it points into this frame */
	return ret;
}

/* ---------------------------------------------------------------------
 * The operations
 */

/* the attributes selecting a slot; organization NULL: all of a server's */
static GHashTable *slot_attrs(const char *server, const char *organization)
{
	GHashTable *attrs = attrs_new();

	g_hash_table_insert(attrs, "server", (char *)server);
	if (organization)
		g_hash_table_insert(attrs, "organization", (char *)organization);
	return attrs;
}

static char *dup_or_null(const char *s, int *oom)
{
	char *copy = strdup(s);

	if (!copy)
		*oom = 1;
	return copy;
}

static void credential_clear(struct gc_credential *c)
{
	free(c->server);
	free(c->kind);
	free(c->username);
	free(c->organization);
	if (c->secret) {
		svc->wipe(c->secret, strlen(c->secret));
		free(c->secret);
	}
	memset(c, 0, sizeof(*c));
}

/* fill c from an item's attributes (copies); secret adopted; 0 or reported */
static int fill_credential(struct gc_credential *c, GHashTable *attrs, char *secret)
{
	const char *kind = attr(attrs, "kind");
	int oom = 0;

	c->server = dup_or_null(attr(attrs, "server"), &oom);
	c->kind = dup_or_null(*kind ? kind : "api-key", &oom);
	c->username = dup_or_null(attr(attrs, "username"), &oom);
	c->organization = dup_or_null(attr(attrs, "organization"), &oom);
	c->secret = secret;
	if (!oom)
		return 0;
	credential_clear(c);
	return report(GC_STATUS_ERROR, "out of memory");
}

/*
 * Connect afresh: a new SecretService opens a new session.  What a
 * failed open left remembered goes too.
 */
static void drop_service(void)
{
	g_clear_object(&default_collection);
	g_clear_object(&service);
	failed_status = 0;
}

/*
 * One operation: body on a connection, within one deadline.  KWallet 5.103
 * fails about 1.5% of its Secret Service sessions at random (KDE bug
 * 514194): OpenSession refuses our public key, the secrets of a session do
 * not decrypt, or the session is gone on the next call.  So a body that
 * failed on the Secret Service itself (not unreachable, locked, refused or
 * unanswered) runs again on a fresh session, at most SESSION_RETRIES
 * times, all within the one deadline; the lines of the attempts that are
 * run again are kept back.  Once was not enough: two broken sessions in a
 * row came about once in 2000 calls (tests/integration/KWALLET-NOTES.md).
 * A store that failed has removed the item it wrote (replace_item()), so
 * running it again leaves one.
 */
#define SESSION_RETRIES 2

static int run_op(int (*body)(struct op *op, void *arg), void *arg)
{
	struct op op;
	int ret, tries = 0;

	op_begin(&op);
	for (;;) {
		deferring = tries < SESSION_RETRIES;
		deferred = 0;
		op.session_failed = 0;
		ret = ensure_open(&op);
		if (ret == 0)
			ret = body(&op, arg);
		deferring = 0;
		if (!ret || !op.session_failed || op.timed_out || tries++ == SESSION_RETRIES)
			break;
		svc->debug("secret-service: failed (%s); again on a fresh session", deferred_line);
		drop_service();
	}
	if (ret && deferred)
		svc->error("%s", deferred_line);
	return op_end(&op, ret);
}

static int open_body(struct op *op, void *arg)
{
	(void)op;
	(void)arg;
	return 0;
}

static int ss_open(void)
{
	return run_op(open_body, NULL);
}

struct get_args {
	const char *server;
	struct gc_credential *out;
};

static int get_body(struct op *op, void *arg)
{
	struct get_args *a = arg;
	GHashTable *match = slot_attrs(a->server, NULL), *found = NULL;
	char *secret = NULL;
	int ret = read_newest(op, &key_schema, match, &found, &secret);

	if (ret == 0) {
		memset(a->out, 0, sizeof(*a->out));
		ret = fill_credential(a->out, found, secret);
		g_hash_table_unref(found);
	}
	g_hash_table_unref(match);
	return ret;
}

static int ss_get(const char *server, struct gc_credential *out)
{
	struct get_args a = { server, out };

	return run_op(get_body, &a);
}

struct store_args {
	const SecretSchema *schema;
	GHashTable *match, *attrs;
	const char *label, *secret, *what;
};

static int store_body(struct op *op, void *arg)
{
	struct store_args *a = arg;

	if (!a->secret)
		return report(GC_STATUS_ERROR, "no %s to store in the Secret Service", a->what);
	return replace_item(op, a->schema, a->match, a->attrs, a->label, a->secret);
}

/* replace schema's items matching match by one of attrs; takes the tables and label */
static int store_slot(const SecretSchema *schema, GHashTable *match, GHashTable *attrs,
		      char *label, const char *secret, const char *what)
{
	struct store_args a = { schema, match, attrs, label, secret, what };
	int ret = run_op(store_body, &a);

	g_free(label);
	g_hash_table_unref(attrs);
	g_hash_table_unref(match);
	return ret;
}

struct erase_args {
	const SecretSchema *schema;
	GHashTable *match;
};

static int erase_body(struct op *op, void *arg)
{
	struct erase_args *a = arg;

	return delete_all(op, a->schema, a->match);
}

/* delete schema's items matching match; takes the table */
static int erase_slot(const SecretSchema *schema, GHashTable *match)
{
	struct erase_args a = { schema, match };
	int ret = run_op(erase_body, &a);

	g_hash_table_unref(match);
	return ret;
}

static int ss_store(const struct gc_credential *cred)
{
	GHashTable *attrs = attrs_new();

	g_hash_table_insert(attrs, "server", cred->server);
	g_hash_table_insert(attrs, "kind", cred->kind && *cred->kind ? cred->kind : "api-key");
	g_hash_table_insert(attrs, "username", cred->username ? cred->username : "");
	g_hash_table_insert(attrs, "organization", cred->organization ? cred->organization : "");
	return store_slot(&key_schema, slot_attrs(cred->server, NULL), attrs,
			  g_strdup_printf("Galileo credential for %s", cred->server),
			  cred->secret, "secret");
}

static int ss_erase(const char *server)
{
	return erase_slot(&key_schema, slot_attrs(server, NULL));
}

/* the entries of all whose attribute key is value: a new array of borrowed entries */
static GPtrArray *items_with(GPtrArray *all, const char *key, const char *value)
{
	GPtrArray *some = g_ptr_array_new();
	guint i;

	for (i = 0; i < all->len; i++)
		if (!strcmp(attr(((struct found *)all->pdata[i])->attrs, key), value))
			g_ptr_array_add(some, all->pdata[i]);
	return some;
}

/*
 * The item of all whose attribute key is value that a reader would take
 * (the newest holding a secret: read_newest()) into *from, and its secret
 * (*secret, may be NULL); NOTFOUND when none holds one, or it vanished.
 */
static int readers_item(struct op *op, GPtrArray *all, const char *key, const char *value,
			struct found **from, char **secret)
{
	GPtrArray *some = items_with(all, key, value);
	char *s = NULL;
	int ret = newest_secret(op, some, from, &s);

	g_ptr_array_unref(some);
	if (ret == VANISHED)
		ret = GC_STATUS_NOTFOUND;	/* erased meanwhile */
	if (ret == 0 && secret)
		*secret = s;
	else if (s) {
		svc->wipe(s, strlen(s));
		free(s);
	}
	return ret;
}

/*
 * The credential of each server, once each, as readers see it: an item
 * left without its secret (a store cut short) is passed over, as
 * read_newest() passes it over.  Attributes only in *out.
 */
static int list_items(struct op *op, GPtrArray *all, struct gc_credential **out, size_t *n)
{
	struct gc_credential *list = calloc(all->len + 1, sizeof(*list));
	struct found *from;
	size_t k = 0;
	guint i;
	int ret = list ? 0 : report(GC_STATUS_ERROR, "out of memory");

	for (i = 0; ret == 0 && i < all->len; i++) {
		struct found *f = all->pdata[i];
		const char *server = attr(f->attrs, "server");

		if (!*server || newest(all, "server", server) != f)
			continue;	/* nameless, or an older store of that server */
		ret = readers_item(op, all, "server", server, &from, NULL);
		if (ret == GC_STATUS_NOTFOUND) {
			ret = 0;
			continue;
		}
		if (ret == 0 && fill_credential(&list[k], from->attrs, NULL) == 0)
			k++;
		else if (ret == 0)
			ret = GC_STATUS_ERROR;
	}
	if (ret) {
		while (k > 0)
			credential_clear(&list[--k]);
		free(list);
		return ret;
	}
	*out = list;
	*n = k;
	return 0;
}

struct list_args {
	struct gc_credential **out;
	size_t *n;
};

static int list_body(struct op *op, void *arg)
{
	struct list_args *a = arg;
	GHashTable *none = attrs_new();
	GPtrArray *all = NULL;
	int ret = search(op, &key_schema, none, &all);

	if (ret == 0) {
		ret = list_items(op, all, a->out, a->n);
		g_ptr_array_unref(all);
	}
	g_hash_table_unref(none);
	return ret;
}

static int ss_list(struct gc_credential **out, size_t *n)
{
	struct list_args a = { out, n };

	return run_op(list_body, &a);
}

struct token_get_args {
	const char *server, *organization;
	char **payload;
};

static int token_get_body(struct op *op, void *arg)
{
	struct token_get_args *a = arg;
	GHashTable *match = slot_attrs(a->server, a->organization ? a->organization : "");
	int ret = read_newest(op, &token_schema, match, NULL, a->payload);

	g_hash_table_unref(match);
	return ret;
}

static int ss_token_get(const char *server, const char *organization, char **payload)
{
	struct token_get_args a = { server, organization, payload };

	return run_op(token_get_body, &a);
}

/* expires_at: gnome-keyring has no expiry of its own; the cache judges the payload */
static int ss_token_store(const char *server, const char *organization, const char *payload,
			  int64_t expires_at)
{
	const char *org = organization ? organization : "";

	(void)expires_at;
	return store_slot(&token_schema, slot_attrs(server, org), slot_attrs(server, org),
			  g_strdup_printf("Galileo token for %s", server), payload, "token");
}

static int ss_token_erase(const char *server, const char *organization)
{
	return erase_slot(&token_schema, slot_attrs(server, organization));
}

static void token_list_free(struct gc_token_item *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(list[i].organization);
		svc->wipe(list[i].payload, strlen(list[i].payload));
		free(list[i].payload);
	}
	free(list);
}

/*
 * The token of each organization as readers see it (the newest item
 * holding a payload), with its payload.  One that vanished before it was
 * read (erased meanwhile) is left out.
 */
static int token_items(struct op *op, GPtrArray *all, struct gc_token_item **out, size_t *n)
{
	struct gc_token_item *list = calloc(all->len + 1, sizeof(*list));
	struct found *from;
	char *payload, *org;
	size_t k = 0;
	guint i;
	int ret = list ? 0 : report(GC_STATUS_ERROR, "out of memory");

	for (i = 0; ret == 0 && i < all->len; i++) {
		struct found *f = all->pdata[i];
		const char *o = attr(f->attrs, "organization");

		if (newest(all, "organization", o) != f)
			continue;
		ret = readers_item(op, all, "organization", o, &from, &payload);
		if (ret) {
			ret = ret == GC_STATUS_NOTFOUND ? 0 : ret;
			continue;
		}
		if (!(org = strdup(o))) {
			svc->wipe(payload, strlen(payload));
			free(payload);
			ret = report(GC_STATUS_ERROR, "out of memory");
			continue;
		}
		list[k].organization = org;
		list[k++].payload = payload;
	}
	if (ret) {
		if (list)
			token_list_free(list, k);
		return ret;
	}
	*out = list;
	*n = k;
	return 0;
}

struct token_list_args {
	const char *server;
	struct gc_token_item **out;
	size_t *n;
};

static int token_list_body(struct op *op, void *arg)
{
	struct token_list_args *a = arg;
	GHashTable *match = slot_attrs(a->server, NULL);
	GPtrArray *all = NULL;
	int ret = search(op, &token_schema, match, &all);

	if (ret == 0) {
		ret = token_items(op, all, a->out, a->n);
		g_ptr_array_unref(all);
	}
	g_hash_table_unref(match);
	return ret;
}

static int ss_token_list(const char *server, struct gc_token_item **out, size_t *n)
{
	struct token_list_args a = { server, out, n };

	return run_op(token_list_body, &a);
}

static const struct gc_keystore_module module = {
	GC_MODULE_TABLE_HEADER,
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

/*
 * A table only for the interface this file was written for: with another
 * version the struct behind services may differ, so not even its error()
 * is called; the program reports the module as unusable.
 */
const struct gc_keystore_module *gc_keystore_module_init(const struct gc_services *services)
{
	if (!services || services->interface_version != GC_MODULE_INTERFACE_VERSION)
		return NULL;
	if (!services->error || !services->debug || !services->wipe)
		return NULL;
	if (svc)
		return &module;	/* called again: GLib's log writer is set only once */
	svc = services;
	pin_module();
	g_log_set_writer_func(log_writer, NULL, NULL);
	g_set_printerr_handler(print_handler);
	context = g_main_context_new();
	return &module;
}
