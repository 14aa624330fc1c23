/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "keystore/stack.h"
#include "keystore/answer.h"
#include "keystore/contain.h"
#include "keystore/loader.h"
#include "keystore/runner.h"
#include "lib/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[STACK_STATUSES] = {
	"success", "notfound", "unavailable", "locked", "error",
};

/* nsswitch's defaults: only a found credential or nothing-there goes on */
static const enum stack_action default_actions[STACK_STATUSES] = {
	STACK_RETURN, STACK_CONTINUE, STACK_CONTINUE, STACK_RETURN, STACK_RETURN,
};

/* the settings of the one stack of this process, for the services */
static const struct stack_settings *settings;

/* ---- services handed to modules ---------------------------------------- */

static void module_error(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	gc_error(GCERR_KEYSTORE, "%s", buf);
}

static void module_debug(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (!gc_debug_enabled())
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	gc_debug("%s", buf);
}

static const char *module_option(const struct gc_services *self, const char *key)
{
	if (!settings || !settings->option || !self || !key)
		return NULL;
	return settings->option(self->module_name, key);
}

static int module_prompt(const char *text, int style, char **answer)
{
	bool secret = style == GC_PROMPT_SECRET;

	if (answer)
		*answer = NULL;
	if (!text || (!secret && style != GC_PROMPT_INFO) || (secret && !answer))
		return GC_STATUS_ERROR;
	if (!settings || !settings->prompt ||
	    settings->prompt(text, secret, contain_deadline(settings->timeout), answer))
		return GC_STATUS_LOCKED;
	return GC_STATUS_SUCCESS;
}

static int module_run(struct gc_run *r)
{
	return runner_run(r, contain_deadline(settings ? settings->timeout : 30));
}

static struct gc_services *services_for(const struct keystore_stack *st, const char *name)
{
	struct gc_services *svc = xcalloc(1, sizeof(*svc));

	svc->interface_version = GC_MODULE_INTERFACE_VERSION;
	svc->size = sizeof(*svc);
	svc->module_name = name;
	svc->error = module_error;
	svc->debug = module_debug;
	svc->wipe = secret_wipe;
	svc->option = module_option;
	svc->timeout = st->settings.timeout;
	svc->interactive = st->settings.interactive;
	svc->home_server = st->settings.home_server;
	svc->prompt = module_prompt;
	svc->run = module_run;
	svc->run_release = runner_release;
	return svc;
}

/* ---- contained calls ----------------------------------------------------- */

/*
 * Every call of a module's slot: its code contained (a built-in backend is
 * the program's own), then its answer judged while still contained, since
 * reading what it handed back may fault too; a breach ends the program.
 */
static void enter(const struct stack_entry *e, const char *slot)
{
	if (!e->builtin)
		contain_enter(e->name, slot, e->svc->timeout);
}

static void leave(const struct stack_entry *e, const char *slot, const char *why)
{
	if (!e->builtin)
		contain_leave();
	if (why)
		contain_breach(e->name, slot, "answered %s", why);
}

static const char *judge_status(int status)
{
	return answer_status_valid(status) ? NULL : "a status that is no enum gc_status";
}

static int call_status(struct stack_entry *e, const char *slot, int (*fn)(void))
{
	int status;

	enter(e, slot);
	status = fn();
	leave(e, slot, judge_status(status));
	return status;
}

static int call_get(struct stack_entry *e, const char *server, struct gc_credential *out)
{
	const char *why;
	int status;

	memset(out, 0, sizeof(*out));
	enter(e, "get()");
	status = e->table.get(server, out);
	if (!(why = judge_status(status)) && status == GC_STATUS_SUCCESS)
		why = answer_credential(out, server);
	if (status != GC_STATUS_SUCCESS)
		credential_release(out);	/* what a failed call should not have left */
	leave(e, "get()", why);
	return status;
}

static int call_store(struct stack_entry *e, const struct gc_credential *cred)
{
	int status;

	enter(e, "store()");
	status = e->table.store(cred);
	leave(e, "store()", judge_status(status));
	return status;
}

static int call_erase(struct stack_entry *e, const char *server)
{
	int status;

	enter(e, "erase()");
	status = e->table.erase(server);
	leave(e, "erase()", judge_status(status));
	return status;
}

static int call_list(struct stack_entry *e, struct gc_credential **out, size_t *n)
{
	const char *why;
	int status;

	*out = NULL;
	*n = 0;
	enter(e, "list()");
	status = e->table.list(out, n);
	if (!(why = judge_status(status)) && status == GC_STATUS_SUCCESS)
		why = answer_list(*out, *n);
	if (status != GC_STATUS_SUCCESS) {
		credential_free_list(*out, *out ? *n : 0);
		*out = NULL;
		*n = 0;
	}
	leave(e, "list()", why);
	return status;
}

/* ---- parsing ------------------------------------------------------------ */

static int parse_actions(struct stack_entry *e, char *list)
{
	char *save = NULL, *item;

	for (item = strtok_r(list, " \t", &save); item; item = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(item, '=');
		size_t s;

		if (!eq)
			return gc_error(GCERR_KEYSTORE, "bad keystore action '%.64s' for '%s'; use [status=action]",
					item, e->name);
		*eq = '\0';
		for (s = 0; s < STACK_STATUSES && strcmp(status_names[s], item); s++)
			;
		if (s == STACK_STATUSES)
			return gc_error(GCERR_KEYSTORE, "unknown keystore status '%.64s' for '%s'; use success, notfound, unavailable, locked or error",
					item, e->name);
		if (!strcmp(eq + 1, "return"))
			e->on[s] = STACK_RETURN;
		else if (!strcmp(eq + 1, "continue"))
			e->on[s] = STACK_CONTINUE;
		else
			return gc_error(GCERR_KEYSTORE, "unknown keystore action '%.64s' for '%s'; use return or continue",
					eq + 1, e->name);
	}
	return 0;
}

static struct stack_entry *add_entry(struct keystore_stack *st, const char *name, size_t len)
{
	struct stack_entry *e;

	st->entries = xrealloc(st->entries, (st->n + 1) * sizeof(*st->entries));
	e = &st->entries[st->n++];
	memset(e, 0, sizeof(*e));
	e->name = xstrndup(name, len);
	e->open_status = -1;
	memcpy(e->on, default_actions, sizeof(e->on));
	return e;
}

int stack_parse(struct keystore_stack *st, const char *spec)
{
	const char *p = spec;
	int err = 0;

	st->entries = NULL;
	st->n = 0;
	while (!err && *(p += strspn(p, " \t"))) {
		size_t len = strcspn(p, " \t[");
		struct stack_entry *e;
		char *close, *list;

		if (!len) {
			err = gc_error(GCERR_KEYSTORE, "bad keystore stack '%.128s': '[' without a backend name", spec);
			break;
		}
		e = add_entry(st, p, len);
		if (!keystore_name_valid(e->name)) {
			err = gc_error(GCERR_KEYSTORE, "bad keystore name '%.64s'; names are [a-z0-9-]+", e->name);
			break;
		}
		p += len;
		p += strspn(p, " \t");
		if (*p != '[')
			continue;
		if (!(close = strchr(p, ']'))) {
			err = gc_error(GCERR_KEYSTORE, "bad keystore stack '%.128s': '[' without ']'", spec);
			break;
		}
		list = xstrndup(p + 1, (size_t)(close - p - 1));
		err = parse_actions(e, list);
		free(list);
		p = close + 1;
	}
	if (!err && !st->n)
		err = gc_error(GCERR_KEYSTORE, "empty keystore stack; name at least one backend, e.g. 'keystore = %s'",
			       STACK_DEFAULT);
	if (err)
		stack_release(st);
	return err;
}

/* a module's teardown, once per module however often the stack names it */
static void teardown(struct keystore_stack *st, size_t i)
{
	struct stack_entry *e = &st->entries[i];

	if (!e->mod || !e->table.teardown)
		return;
	for (size_t j = 0; j < i; j++)
		if (st->entries[j].mod && !strcmp(st->entries[j].name, e->name))
			return;
	enter(e, "teardown()");
	e->table.teardown();
	leave(e, "teardown()", NULL);
}

void stack_release(struct keystore_stack *st)
{
	for (size_t i = 0; i < st->n; i++)
		teardown(st, i);
	for (size_t i = 0; i < st->n; i++) {
		free(st->entries[i].name);
		free(st->entries[i].why);
		/* a loaded module may keep its services: they live as long as we do */
		if (!st->entries[i].mod)
			free(st->entries[i].svc);
	}
	free(st->entries);
	st->entries = NULL;
	st->n = 0;
}

int stack_check(struct keystore_stack *st, bool missing_ok)
{
	int err;

	if ((err = module_dir_check()))
		return err;
	for (size_t i = 0; i < st->n; i++) {
		if (!keystore_present(st->entries[i].name))
			continue;
		if (!missing_ok)
			return GCERR_KEYSTORE;
		gc_debug("%s", gc_error_message());
		gc_error_clear();
		st->entries[i].missing = true;
	}
	return 0;
}

/* ---- the walk ------------------------------------------------------------ */

/* load e once; a module that cannot be loaded stays faulty: GC_STATUS_ERROR */
static int entry_load(struct keystore_stack *st, struct stack_entry *e)
{
	if (e->missing) {
		gc_error(GCERR_KEYSTORE, "the keystore '%s' is not installed here; install its module (on Debian: galileo-credential-%s), or use a keystore that needs no desktop: set GALILEO_API_KEY, or 'keystore = env persistent-keyring' or 'keystore = env pass' in the configuration",
			 e->name, e->name);
		return GC_STATUS_UNAVAILABLE;
	}
	if (!e->tried) {
		e->tried = true;
		settings = &st->settings;
		e->svc = services_for(st, e->name);
		e->builtin = keystore_builtin(e->name);
		if (!keystore_load(e->name, e->svc, &e->table))
			e->mod = &e->table;
		else if (gc_error_message())
			e->why = xstrdup(gc_error_message());
	} else if (!e->mod && e->why) {
		/* asked again: say the same, even when the message was cleared since */
		gc_error(GCERR_KEYSTORE, "%s", e->why);
	}
	return e->mod ? GC_STATUS_SUCCESS : GC_STATUS_ERROR;
}

static int entry_open(struct keystore_stack *st, struct stack_entry *e)
{
	int status = entry_load(st, e);

	if (status != GC_STATUS_SUCCESS)
		return status;
	if (e->open_status < 0) {
		e->open_status = e->table.open ? call_status(e, "open()", e->table.open) :
				 GC_STATUS_SUCCESS;
		if (e->open_status != GC_STATUS_SUCCESS && gc_error_message())
			e->why = xstrdup(gc_error_message());
	} else if (e->open_status != GC_STATUS_SUCCESS && e->why) {
		gc_error(GCERR_KEYSTORE, "%s", e->why);
	}
	return e->open_status;
}

/* a status as the program's error code; the module said why */
static int status_error(const struct stack_entry *e, int status)
{
	switch (status) {
	case GC_STATUS_SUCCESS:
		return 0;
	case GC_STATUS_NOTFOUND:
		return GCERR_NOTFOUND;
	default:
		return gc_error(GCERR_KEYSTORE, "keystore '%s' is %s", e->name,
				status == GC_STATUS_UNAVAILABLE ? "unavailable" :
				status == GC_STATUS_LOCKED ? "locked" : "failing");
	}
}

/*
 * What the walk remembers of a backend that was passed over: its message,
 * reported at the end when nothing was found, since the credential may be
 * in it.
 */
struct passed {
	char *message;
	const struct stack_entry *entry;
	int status;
};

static void pass_over(struct passed *p, const struct stack_entry *e, int status)
{
	gc_debug("keystore '%s': %s, going on: %s", e->name, status_names[status],
		 gc_error_message() ? gc_error_message() : "no reason given");
	if (!p->message) {
		status_error(e, status);
		p->message = xstrdup(gc_error_message());
		p->entry = e;
		p->status = status;
	}
	gc_error_clear();
}

static int walk_end(struct passed *p)
{
	int err = GCERR_NOTFOUND;

	if (p->message) {
		gc_error_clear();
		err = gc_error(GCERR_KEYSTORE, "%s", p->message);
		free(p->message);
	}
	return err;
}

int stack_get(struct keystore_stack *st, const char *server, struct gc_credential *out,
	      const char **backend)
{
	struct passed passed = { 0 };

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < st->n; i++) {
		struct stack_entry *e = &st->entries[i];
		int status = entry_load(st, e);

		if (status == GC_STATUS_SUCCESS)
			status = call_get(e, server, out);
		if (status == GC_STATUS_SUCCESS && e->on[status] == STACK_RETURN) {
			gc_debug("credential for '%s' from keystore '%s'", server, e->name);
			if (backend)
				*backend = e->name;
			free(passed.message);
			return 0;
		}
		credential_release(out);
		if (e->on[status] == STACK_RETURN) {
			free(passed.message);
			return status_error(e, status);
		}
		if (status != GC_STATUS_SUCCESS && status != GC_STATUS_NOTFOUND)
			pass_over(&passed, e, status);
	}
	return walk_end(&passed);
}

int stack_writer(struct keystore_stack *st, struct stack_entry **out)
{
	struct passed passed = { 0 };

	for (size_t i = 0; i < st->n; i++) {
		struct stack_entry *e = &st->entries[i];
		int status = entry_load(st, e);

		if (status == GC_STATUS_SUCCESS && !(e->mod->supports & GC_SUPPORTS_WRITE))
			continue;
		if (status == GC_STATUS_SUCCESS)
			status = entry_open(st, e);
		if (status == GC_STATUS_UNAVAILABLE) {
			pass_over(&passed, e, status);
			continue;
		}
		free(passed.message);
		if (status != GC_STATUS_SUCCESS)
			return status_error(e, status);
		*out = e;
		return 0;
	}
	if (passed.message)
		return walk_end(&passed);
	return gc_error(GCERR_KEYSTORE, "no keystore in the stack can store a credential; add secret-service, pass or persistent-keyring to 'keystore' in the configuration");
}

int stack_store(struct stack_entry *e, const struct gc_credential *cred)
{
	return status_error(e, call_store(e, cred));
}

/*
 * An unavailable backend holds nothing anyone can use now: it is passed
 * over, and the erase fails as unavailable only when no writable backend
 * could be reached at all.
 */
int stack_erase(struct keystore_stack *st, const char *server)
{
	struct passed passed = { 0 };
	size_t reached = 0;
	int err = 0;

	/* a backend that cannot be loaded fails the erase closed: nothing is touched */
	for (size_t i = 0; i < st->n; i++) {
		if (entry_load(st, &st->entries[i]) == GC_STATUS_ERROR)
			return status_error(&st->entries[i], GC_STATUS_ERROR);
		gc_error_clear();
	}
	for (size_t i = 0; i < st->n; i++) {
		struct stack_entry *e = &st->entries[i];
		int status = entry_load(st, e), e_err;

		if (status == GC_STATUS_SUCCESS && !(e->mod->supports & GC_SUPPORTS_WRITE))
			continue;
		/* no open(): an erase needs no unlocked key, only the store */
		if (status == GC_STATUS_SUCCESS)
			status = call_erase(e, server);
		if (status == GC_STATUS_UNAVAILABLE) {
			pass_over(&passed, e, status);
			continue;
		}
		reached++;
		e_err = status == GC_STATUS_NOTFOUND ? 0 : status_error(e, status);
		if (!err)
			err = e_err;
	}
	if (!reached && passed.message)
		return walk_end(&passed);
	free(passed.message);
	return err;
}

int stack_probe(struct keystore_stack *st, size_t i)
{
	contain_budget(st->settings.timeout + 1);
	return entry_open(st, &st->entries[i]);
}

struct stack_entry *stack_token_store(struct keystore_stack *st)
{
	struct stack_entry *e = NULL;

	if (stack_writer(st, &e) || !(e->mod->supports & GC_SUPPORTS_TOKENS)) {
		gc_error_clear();
		return NULL;
	}
	return e;
}

int stack_token_get(const struct stack_entry *e, const char *server, const char *org,
		    char **payload)
{
	const char *why;
	int status;

	*payload = NULL;
	enter(e, "token_get()");
	status = e->table.token_get(server, org, payload);
	if (!(why = judge_status(status)) && status == GC_STATUS_SUCCESS)
		why = answer_payload(*payload);
	if (status != GC_STATUS_SUCCESS) {
		secret_free(*payload);
		*payload = NULL;
	}
	leave(e, "token_get()", why);
	return status;
}

int stack_token_store_payload(const struct stack_entry *e, const char *server,
			      const char *org, const char *payload, int64_t expires_at)
{
	int status;

	enter(e, "token_store()");
	status = e->table.token_store(server, org, payload, expires_at);
	leave(e, "token_store()", judge_status(status));
	return status;
}

int stack_token_erase(const struct stack_entry *e, const char *server, const char *org)
{
	int status;

	enter(e, "token_erase()");
	status = e->table.token_erase(server, org);
	leave(e, "token_erase()", judge_status(status));
	return status;
}

int stack_token_list(const struct stack_entry *e, const char *server,
		     struct gc_token_item **out, size_t *n)
{
	const char *why;
	int status;

	*out = NULL;
	*n = 0;
	enter(e, "token_list()");
	status = e->table.token_list(server, out, n);
	if (!(why = judge_status(status)) && status == GC_STATUS_SUCCESS)
		why = answer_token_list(*out, *n);
	if (status != GC_STATUS_SUCCESS) {
		token_item_free_list(*out, *out ? *n : 0);
		*out = NULL;
		*n = 0;
	}
	leave(e, "token_list()", why);
	return status;
}

/* ---- declared options ------------------------------------------------------ */

int stack_check_options(struct keystore_stack *st)
{
	const struct stack_settings *set = &st->settings;
	int err;

	if (!set->has_options || !set->check_options)
		return 0;
	for (size_t i = 0; i < st->n; i++) {
		struct stack_entry *e = &st->entries[i];

		if (e->missing || !set->has_options(e->name))
			continue;
		if (entry_load(st, e) != GC_STATUS_SUCCESS) {
			gc_error_clear();	/* the walk reports it when it gets there */
			continue;
		}
		/* a declared check is the module's code */
		enter(e, "its option check");
		err = set->check_options(e->name, e->table.options);
		leave(e, "its option check", NULL);
		if (err)
			return err;
	}
	return 0;
}

/* ---- listing ------------------------------------------------------------- */

static bool listed(const struct stack_item *items, size_t n, const char *server)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(items[i].cred.server, server))
			return true;
	return false;
}

/* move e's list into *items, each server once: the first backend wins */
static void take_list(struct stack_item **items, size_t *n, const struct stack_entry *e,
		      struct gc_credential *got, size_t ngot)
{
	for (size_t i = 0; i < ngot; i++) {
		if (!got[i].server || listed(*items, *n, got[i].server)) {
			credential_release(&got[i]);
			continue;
		}
		*items = xrealloc(*items, (*n + 1) * sizeof(**items));
		(*items)[*n].cred = got[i];
		(*items)[*n].backend = e->name;
		(*n)++;
	}
	free(got);
}

static int by_server(const void *a, const void *b)
{
	return strcmp(((const struct stack_item *)a)->cred.server,
		      ((const struct stack_item *)b)->cred.server);
}

int stack_list(struct keystore_stack *st, struct stack_item **out, size_t *n)
{
	struct passed passed = { 0 };

	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < st->n; i++) {
		struct stack_entry *e = &st->entries[i];
		struct gc_credential *got = NULL;
		size_t ngot = 0;
		int status = entry_load(st, e);

		if (status == GC_STATUS_SUCCESS && !e->table.list)
			continue;
		if (status == GC_STATUS_SUCCESS)
			status = call_list(e, &got, &ngot);
		if (status == GC_STATUS_SUCCESS || status == GC_STATUS_NOTFOUND) {
			take_list(out, n, e, got, ngot);
			continue;
		}
		if (status == GC_STATUS_UNAVAILABLE || e->on[status] == STACK_CONTINUE) {
			pass_over(&passed, e, status);
			continue;
		}
		free(passed.message);
		stack_item_free_list(*out, *n);
		*out = NULL;
		*n = 0;
		return status_error(e, status);
	}
	if (passed.message && (!*n || passed.status != GC_STATUS_UNAVAILABLE))
		return walk_end(&passed);
	free(passed.message);
	if (*n)
		qsort(*out, *n, sizeof(**out), by_server);
	return 0;
}

void stack_item_free_list(struct stack_item *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		credential_release(&list[i].cred);
	free(list);
}
