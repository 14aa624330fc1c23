/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "checker/check.h"
#include "keystore/answer.h"
#include "keystore/stack.h"
#include "lib/common.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * The checks, each run in a child of its own with the module freshly
 * loaded (child.c).  A write step leaves the test credential stored for
 * the next one; the erase step removes it.  Values are compared, never
 * shown: they are secrets.
 */

/* ---- calls, judged as the program judges them --------------------------- */

/* open(), when there is one: anything but success stops the checks */
static bool opened(const struct gc_keystore_module *m)
{
	int status;

	if (!m->open)
		return true;
	child_begin("open()");
	status = child_end("open()", m->open());
	if (status == GC_STATUS_SUCCESS)
		return true;
	child_say("stop", "open() answered %s (%s); the store cannot be reached here, so the other slots cannot be checked",
		  child_status_name(status), child_last_error());
	return false;
}

/* get() of server into *out, judged; the status (a breach counts as error) */
static int get(const struct gc_keystore_module *m, const char *server, struct gc_credential *out)
{
	const char *why;
	int status, raw;

	memset(out, 0, sizeof(*out));
	child_begin("get()");
	raw = m->get(server, out);
	status = child_end("get()", raw);
	if (status == GC_STATUS_SUCCESS && (why = answer_credential(out, server))) {
		child_say("breach", "get() answered %s", why);
		child_release("get()", out);
		return GC_STATUS_ERROR;
	}
	if (status != GC_STATUS_SUCCESS && status == raw && !answer_credential_empty(out)) {
		child_say("breach", "get() answered %s but left *out set; leave it empty on failure",
			  child_status_name(status));
		child_release("get()", out);
	}
	return status;
}

static int store(const struct gc_keystore_module *m, const struct gc_credential *cred)
{
	child_begin("store()");
	return child_end("store()", m->store(cred));
}

static int erase(const struct gc_keystore_module *m, const char *server)
{
	child_begin("erase()");
	return child_end("erase()", m->erase(server));
}

/* how often list() names server (-1: no list(), or it failed) */
static int listed(const struct gc_keystore_module *m, const char *server,
		  struct gc_credential *found)
{
	struct gc_credential *list = NULL;
	size_t n = 0;
	const char *why;
	int status, count = 0;

	if (!m->list)
		return -1;
	child_begin("list()");
	status = child_end("list()", m->list(&list, &n));
	if (status != GC_STATUS_SUCCESS) {
		child_say("ok", "list() answered %s (%s)", child_status_name(status), child_last_error());
		return -1;
	}
	if ((why = answer_list(list, n)))
		child_say("breach", "list() answered %s", why);
	for (size_t i = 0; !why && i < n; i++) {
		if (strcmp(list[i].server, server))
			continue;
		if (count++ == 0 && found) {
			*found = list[i];
			memset(&list[i], 0, sizeof(list[i]));
		}
	}
	child_phase("the program's wipe and free() of what list() returned", false);
	credential_free_list(list, why ? 0 : n);
	child_phase("the program's wipe and free() of what list() returned", true);
	return why ? -1 : count;
}

/* ---- loading, opening, nothing stored ------------------------------------------ */

void step_load(const struct gc_keystore_module *m)
{
	size_t n = 0;

	while (m->options && m->options[n].key)
		n++;
	if (m->supports & ~(GC_SUPPORTS_WRITE | GC_SUPPORTS_TOKENS))
		child_say("breach", "its supports bits 0x%x name capabilities the interface does not define",
			  m->supports);
	child_say("ok", "loaded: interface version %u, %s%s, %zu option(s) declared, open() %s, list() %s, teardown() %s",
		  m->interface_version, m->supports & GC_SUPPORTS_WRITE ? "can store" : "read-only",
		  m->supports & GC_SUPPORTS_TOKENS ? ", holds tokens" : "", n,
		  m->open ? "yes" : "no", m->list ? "yes" : "no", m->teardown ? "yes" : "no");
}

void step_open(const struct gc_keystore_module *m)
{
	if (opened(m))
		child_say("ok", "open() %s", m->open ? "answered success" : "is not there (optional)");
}

void step_get_missing(const struct gc_keystore_module *m)
{
	char *server = xasprintf("%s/gc-check-nothing-here", check.server);
	struct gc_credential out;
	int status = get(m, server, &out);

	if (status == GC_STATUS_SUCCESS) {
		child_say("breach", "get() of a server nothing was stored for answered success");
		child_release("get()", &out);
	} else if (status == GC_STATUS_NOTFOUND) {
		child_say("ok", "get() of a server nothing was stored for answered notfound");
	} else {
		child_say("ok", "get() of a server nothing was stored for answered %s (%s)",
			  child_status_name(status), child_last_error());
	}
	free(server);
}

/* ---- the credential slots ----------------------------------------------------- */

static void fill(struct gc_credential *c, const char *kind, const char *user, const char *org,
		 char *secret)
{
	c->server = xstrdup(check.server);
	c->kind = xstrdup(kind);
	c->username = xstrdup(user);
	c->organization = xstrdup(org);
	c->secret = secret;
}

/* store cred and read it back; true when it reads back exactly */
static bool round_trip(const struct gc_keystore_module *m, const struct gc_credential *cred,
		       const char *what)
{
	struct gc_credential got;
	int status = store(m, cred);
	bool ok;

	if (status != GC_STATUS_SUCCESS) {
		child_say("stop", "store() of %s answered %s (%s); read-back, list and erase cannot be checked",
			  what, child_status_name(status), child_last_error());
		return false;
	}
	if ((status = get(m, check.server, &got)) != GC_STATUS_SUCCESS) {
		child_say("breach", "get() after a successful store() of %s answered %s",
			  what, child_status_name(status));
		return false;
	}
	if (!(ok = child_same(&got, cred)))
		child_say("breach", "get() after store() of %s answered another credential (a field or the secret differs)",
			  what);
	child_release("get()", &got);
	return ok;
}

static void check_listed(const struct gc_keystore_module *m, const struct gc_credential *cred)
{
	struct gc_credential found = { 0 };
	int count = listed(m, check.server, &found);

	if (count == 0)
		child_say("breach", "list() does not name the server a credential was just stored for");
	else if (count > 1)
		child_say("breach", "list() names one server %d times; once per server", count);
	else if (count == 1 && !child_same(&found, cred))
		child_say("breach", "list() gives other metadata (kind, username, organization) than was stored");
	else if (count == 1)
		child_say("ok", "list() names the stored credential once, without its secret");
	credential_release(&found);
}

void step_store(const struct gc_keystore_module *m)
{
	struct gc_credential a = { 0 }, b = { 0 };

	if (!(m->supports & GC_SUPPORTS_WRITE)) {
		child_say("ok", "read-only: store() and erase() are not claimed");
		return;
	}
	if (!opened(m))
		return;
	fill(&a, "basic", "checker", "org-a", child_secret("chk A ", " \xc3\xa4#"));
	fill(&b, "api-key", "", "", child_secret("chk-b-", ""));
	if (round_trip(m, &a, "a basic credential")) {
		child_say("ok", "store() then get(): the credential reads back exactly");
		check_listed(m, &a);
		if (round_trip(m, &b, "a second credential for the same server"))
			child_say("ok", "a second store() replaces the first");
	}
	credential_release(&a);
	credential_release(&b);
}

/*
 * One of two stores racing each other, in a process of its own, forked
 * before any call (a module may start threads, GLib's, that a fork would
 * not take along).
 */
static pid_t racer(const struct gc_keystore_module *m, struct gc_credential *cred)
{
	pid_t pid = fork();

	if (pid == 0) {
		int status = opened(m) ? store(m, cred) : GC_STATUS_UNAVAILABLE;

		if (status != GC_STATUS_SUCCESS)
			child_say("ok", "a concurrent store() answered %s (%s)",
				  child_status_name(status), child_last_error());
		_exit(status == GC_STATUS_SUCCESS ? 0 : 3);
	}
	return pid;
}

static void wait_racer(pid_t pid, int *stored)
{
	int st;

	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(st))
		child_say("breach", "a concurrent store() crashed with signal %d", WTERMSIG(st));
	else if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		(*stored)++;
	else if (WIFEXITED(st) && WEXITSTATUS(st) != 3)
		child_say("breach", "a concurrent store() called exit(%d)", WEXITSTATUS(st));
}

void step_concurrent(const struct gc_keystore_module *m)
{
	struct gc_credential c = { 0 }, d = { 0 }, got;
	int stored = 0;
	pid_t p1, p2;

	if (!(m->supports & GC_SUPPORTS_WRITE))
		return;
	fill(&c, "api-key", "", "", child_secret("chk-c-", ""));
	fill(&d, "api-key", "", "", child_secret("chk-d-", ""));
	p1 = racer(m, &c);
	p2 = racer(m, &d);
	wait_racer(p1, &stored);
	wait_racer(p2, &stored);
	if (!stored) {
		child_say("ok", "two concurrent store()s both failed, each with its line");
	} else if (get(m, check.server, &got) != GC_STATUS_SUCCESS) {
		child_say("breach", "after two concurrent store()s nothing is stored; one of them must be");
	} else {
		if (!child_same(&got, &c) && !child_same(&got, &d))
			child_say("breach", "after two concurrent store()s get() answers neither of them");
		else
			child_say("ok", "two concurrent store()s leave exactly one of them");
		child_release("get()", &got);
	}
	credential_release(&c);
	credential_release(&d);
}

void step_erase(const struct gc_keystore_module *m)
{
	struct gc_credential got;
	int status;

	if (!(m->supports & GC_SUPPORTS_WRITE))
		return;
	if ((status = erase(m, check.server)) != GC_STATUS_SUCCESS) {
		child_say("breach", "erase() of the stored credential answered %s (%s)",
			  child_status_name(status), child_last_error());
		return;
	}
	if ((status = get(m, check.server, &got)) == GC_STATUS_SUCCESS) {
		child_say("breach", "get() after erase() still finds the credential");
		child_release("get()", &got);
	}
	if ((status = erase(m, check.server)) != GC_STATUS_SUCCESS)
		child_say("breach", "erase() with nothing stored answered %s; it is success",
			  child_status_name(status));
	if (listed(m, check.server, NULL) > 0)
		child_say("breach", "list() still names the server after erase()");
	child_say("ok", "erase() removes the credential, and answers success when there is none");
}

/* ---- the token slots ------------------------------------------------------------ */

/* token_get() equals want (NULL: notfound) */
static void token_is(const struct gc_keystore_module *m, const char *org, const char *want,
		     const char *when)
{
	char *payload = NULL;
	const char *why;
	int status;

	child_begin("token_get()");
	status = child_end("token_get()", m->token_get(check.server, org, &payload));
	if (status == GC_STATUS_SUCCESS && (why = answer_payload(payload)))
		child_say("breach", "token_get() answered %s", why);
	else if (want && status != GC_STATUS_SUCCESS)
		child_say("breach", "token_get() %s answered %s", when, child_status_name(status));
	else if (want && strcmp(payload, want))
		child_say("breach", "token_get() %s answered another payload", when);
	else if (!want && status != GC_STATUS_NOTFOUND)
		child_say("breach", "token_get() %s answered %s, not notfound", when,
			  child_status_name(status));
	child_phase("the program's wipe and free() of what token_get() returned", false);
	secret_free(payload);
	child_phase("the program's wipe and free() of what token_get() returned", true);
}

static int token_call(const char *slot, int status)
{
	status = child_end(slot, status);
	if (status != GC_STATUS_SUCCESS)
		child_say("breach", "%s answered %s (%s)", slot, child_status_name(status),
			  child_last_error());
	return status;
}

static void token_list_is(const struct gc_keystore_module *m, size_t want)
{
	struct gc_token_item *items = NULL;
	size_t n = 0;
	const char *why;

	child_begin("token_list()");
	if (token_call("token_list()", m->token_list(check.server, &items, &n)) != GC_STATUS_SUCCESS)
		return;
	if ((why = answer_token_list(items, n)))
		child_say("breach", "token_list() answered %s", why);
	else if (n != want)
		child_say("breach", "token_list() names %zu token(s), not the %zu stored", n, want);
	child_phase("the program's wipe and free() of what token_list() returned", false);
	token_item_free_list(items, why ? 0 : n);
	child_phase("the program's wipe and free() of what token_list() returned", true);
}

void step_tokens(const struct gc_keystore_module *m)
{
	char *p1, *p2;
	int64_t later = (int64_t)time(NULL) + 600;

	if (!(m->supports & GC_SUPPORTS_TOKENS) || !opened(m))
		return;
	p1 = child_secret("gcchk-p1-", "");
	p2 = child_secret("gcchk-p2-", "");
	child_begin("token_store()");
	if (token_call("token_store()", m->token_store(check.server, "", p1, later)) == 0) {
		token_is(m, "", p1, "after token_store()");
		child_begin("token_store()");
		token_call("token_store()", m->token_store(check.server, "org-x", p2, later));
		token_list_is(m, 2);
		child_begin("token_erase()");
		token_call("token_erase()", m->token_erase(check.server, "org-x"));
		token_is(m, "org-x", NULL, "after token_erase() of its organization");
		token_is(m, "", p1, "of another organization after token_erase()");
		child_begin("token_erase()");
		token_call("token_erase()", m->token_erase(check.server, NULL));
		token_is(m, "", NULL, "after token_erase() of every organization");
		token_list_is(m, 0);
		child_begin("token_erase()");
		token_call("token_erase()", m->token_erase(check.server, NULL));
		child_say("ok", "token_store(), token_get(), token_list() and token_erase() keep one payload per organization");
	}
	secret_free(p1);
	secret_free(p2);
}
