/* SPDX-License-Identifier: MIT */
/*
 * keystore-misbehave.so: a test module that breaks galileo-credential-module(7)
 * the ways module authors do by accident, one way at a time, so the tests
 * can watch the program contain it (tests/integration/test_modules.py) and
 * the checker report it.  Built by the tests from the installed header.
 *
 *   misbehave.do = WHAT   what goes wrong (whats[] below; default: nothing)
 *   misbehave.in = SLOT   where: init, open, get, store, erase, list
 *                         (default get)
 *
 * Otherwise get() answers the home server's credential from the
 * environment variable MISBEHAVE_KEY (notfound without it), so that a test
 * can watch a call succeed after the noise; store() and erase() answer
 * success and keep nothing.  Two behaviours use the program's services:
 * "prompt" asks for the key on the terminal, "run" hands it through
 * /bin/cat and back, and "run-hang" starts a helper that never ends.
 *
 * It builds against interface version 1 too (no options, no size), so
 * the same tests can be run against a program from before version 2.
 */
#include <galileo-credential/module.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct gc_services *svc;

static const char *const whats[] = {
	"hang", "print", "segv", "bus", "ill", "fpe", "abort", "exit",
	"null-secret", "empty-secret", "huge-secret", "bad-kind", "other-server",
	"bad-status", "list-secret", "no-message", "static-secret", "prompt", "run",
	"run-hang", NULL,
};

/* the breaches of an answer: these answer even without MISBEHAVE_KEY */
static const char *const bad_answers[] = {
	"null-secret", "empty-secret", "huge-secret", "bad-kind", "other-server",
	"bad-status", "static-secret", NULL,
};

static const char *check_do(const char *v)
{
	for (size_t i = 0; whats[i]; i++)
		if (!strcmp(v, whats[i]))
			return NULL;
	return "see tests/modules/keystore-misbehave.c";
}

static const char *check_in(const char *v)
{
	return strcmp(v, "init") && strcmp(v, "open") && strcmp(v, "get") && strcmp(v, "store") &&
	       strcmp(v, "erase") && strcmp(v, "list") ? "use init, open, get, store, erase or list" : NULL;
}

#if GC_MODULE_INTERFACE_VERSION >= 2
static const struct gc_option options[] = {
	{ "do", check_do },
	{ "in", check_in },
	{ NULL, NULL },
};
#else
#define GC_MODULE_TABLE_HEADER .interface_version = GC_MODULE_INTERFACE_VERSION
static const char *(*const checks[])(const char *) = { check_do, check_in };
#endif

/* the misbehaviour configured for slot, or "" */
static const char *what_in(const char *slot)
{
	const char *what = svc->option(svc, "do"), *in = svc->option(svc, "in");

	if (!what || strcmp(in ? in : "get", slot))
		return "";
	return what;
}

/* the misbehaviours that take the process, or never return */
static void wreck(const char *what)
{
	if (!strcmp(what, "hang")) {
		sigset_t all;

		/* no cooperation: every signal blocked, sleeping in a loop */
		sigfillset(&all);
		sigprocmask(SIG_BLOCK, &all, NULL);
		for (;;)
			sleep(1000);
	} else if (!strcmp(what, "print")) {
		printf("misbehave: noise from printf\n");
		fflush(stdout);
		if (write(STDOUT_FILENO, "misbehave: noise from write\n", 28) < 0)
			return;
		printf("misbehave: buffered noise\n");
	} else if (!strcmp(what, "segv")) {
		*(volatile int *)0 = 1;
	} else if (!strcmp(what, "bus")) {
		raise(SIGBUS);
	} else if (!strcmp(what, "ill")) {
		__builtin_trap();
	} else if (!strcmp(what, "fpe")) {
		raise(SIGFPE);
	} else if (!strcmp(what, "abort")) {
		abort();
	} else if (!strcmp(what, "exit")) {
		exit(0);
	}
}

static char *dup_or_die(const char *s)
{
	char *d = strdup(s);

	if (!d)
		abort();
	return d;
}

static int is_bad_answer(const char *what)
{
	for (size_t i = 0; bad_answers[i]; i++)
		if (!strcmp(what, bad_answers[i]))
			return 1;
	return 0;
}

/* a well-formed answer for server, then the configured breach of it */
static int answer(const char *server, struct gc_credential *out, const char *what)
{
	const char *key = getenv("MISBEHAVE_KEY");
	static char static_secret[] = "misbehave-static-secret";

	if (!is_bad_answer(what) && (!key || !svc->home_server || strcmp(server, svc->home_server)))
		return GC_STATUS_NOTFOUND;
	out->server = dup_or_die(!strcmp(what, "other-server") ? "https://other.example" : server);
	out->kind = dup_or_die(!strcmp(what, "bad-kind") ? "password" : "api-key");
	out->username = dup_or_die("");
	out->organization = dup_or_die("");
	if (!strcmp(what, "null-secret")) {
		out->secret = NULL;
	} else if (!strcmp(what, "empty-secret")) {
		out->secret = dup_or_die("");
	} else if (!strcmp(what, "huge-secret")) {
		out->secret = malloc(70001);
		if (!out->secret)
			abort();
		memset(out->secret, 'a', 70000);
		out->secret[70000] = '\0';
	} else if (!strcmp(what, "static-secret")) {
		out->secret = static_secret;	/* not the program's to free */
	} else {
		out->secret = dup_or_die(key ? key : "misbehave-key");
	}
	return !strcmp(what, "bad-status") ? 42 : GC_STATUS_SUCCESS;
}

static int mb_open(void)
{
	const char *what = what_in("open");

	wreck(what);
	if (!strcmp(what, "no-message"))
		return GC_STATUS_ERROR;
	return !strcmp(what, "bad-status") ? -7 : GC_STATUS_SUCCESS;
}

#if GC_MODULE_INTERFACE_VERSION >= 2
/* the key asked for on the terminal (the prompt service) */
static int prompted(const char *server, struct gc_credential *out)
{
	char *key = NULL;

	if (svc->prompt("misbehave key: ", GC_PROMPT_SECRET, &key) != GC_STATUS_SUCCESS) {
		svc->error("the misbehave keystore needs its key typed, and nobody is at a terminal");
		return GC_STATUS_LOCKED;
	}
	out->server = dup_or_die(server);
	out->kind = dup_or_die("api-key");
	out->username = dup_or_die("");
	out->organization = dup_or_die("");
	out->secret = key;
	return GC_STATUS_SUCCESS;
}

/* MISBEHAVE_KEY through a helper and back (the run service) */
static int through_helper(const char *server, struct gc_credential *out, int hang)
{
	const char *cat[] = { "/bin/cat", NULL };
	const char *never[] = { "/bin/sh", "-c", "sleep 987654 & sleep 987655", NULL };
	const char *key = getenv("MISBEHAVE_KEY");
	struct gc_run r = { .size = sizeof(r) };
	int status;

	r.argv = hang ? never : cat;
	r.input = key ? key : "";
	r.input_len = key ? strlen(key) : 0;
	status = svc->run(&r);
	if (status != GC_STATUS_SUCCESS || r.timed_out || r.exit_code != 0 || !key) {
		svc->run_release(&r);
		svc->error("the misbehave keystore's helper failed%s",
			   r.timed_out ? ": it was killed at the deadline" : "");
		return GC_STATUS_ERROR;
	}
	status = answer(server, out, "");
	if (status == GC_STATUS_SUCCESS) {
		svc->wipe(out->secret, strlen(out->secret));
		free(out->secret);
		out->secret = dup_or_die(r.output);
	}
	svc->run_release(&r);
	return status;
}
#endif

static int mb_get(const char *server, struct gc_credential *out)
{
	const char *what = what_in("get");

	wreck(what);
	if (!strcmp(what, "no-message"))
		return GC_STATUS_LOCKED;
#if GC_MODULE_INTERFACE_VERSION >= 2
	if (!strcmp(what, "prompt"))
		return prompted(server, out);
	if (!strcmp(what, "run") || !strcmp(what, "run-hang"))
		return through_helper(server, out, !strcmp(what, "run-hang"));
#endif
	return answer(server, out, what);
}

static int mb_store(const struct gc_credential *cred)
{
	wreck(what_in("store"));
	(void)cred;
	return GC_STATUS_SUCCESS;
}

static int mb_erase(const char *server)
{
	wreck(what_in("erase"));
	(void)server;
	return GC_STATUS_SUCCESS;
}

static int mb_list(struct gc_credential **out, size_t *n)
{
	const char *what = what_in("list");

	wreck(what);
	if (!strcmp(what, "list-secret")) {
		/* a list() item carries no secret: this one does */
		if (!(*out = calloc(1, sizeof(**out))))
			abort();
		*n = 1;
		(*out)->server = dup_or_die(svc->home_server ? svc->home_server : "https://x.example");
		(*out)->kind = dup_or_die("api-key");
		(*out)->username = dup_or_die("");
		(*out)->organization = dup_or_die("");
		(*out)->secret = dup_or_die("misbehave-listed-secret");
	}
	return GC_STATUS_SUCCESS;
}

static const struct gc_keystore_module module = {
	GC_MODULE_TABLE_HEADER,
	.name = "misbehave",
	.supports = GC_SUPPORTS_WRITE,
#if GC_MODULE_INTERFACE_VERSION >= 2
	.options = options,
#endif
	.open = mb_open,
	.get = mb_get,
	.store = mb_store,
	.erase = mb_erase,
	.list = mb_list,
};

const struct gc_keystore_module *gc_keystore_module_init(const struct gc_services *services)
{
	if (services->interface_version != GC_MODULE_INTERFACE_VERSION)
		return NULL;
	svc = services;
#if GC_MODULE_INTERFACE_VERSION < 2
	(void)checks;
#endif
	wreck(what_in("init"));
	return &module;
}
