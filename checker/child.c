/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "checker/check.h"
#include "keystore/answer.h"
#include "keystore/loader.h"
#include "keystore/runner.h"
#include "keystore/stack.h"
#include "lib/common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * The child's side of a check: fake services that record what the module
 * does with them, each module call framed by "call SLOT" / "back SLOT"
 * lines (so the parent can bound it and name it when it crashes), and the
 * steps.  Every report line is one write(2) under PIPE_BUF, so the lines
 * of concurrent children never mix.
 */

#define SECRETS_MAX 8
#define ASKED_MAX 16
#define LINE_MAX_LEN 1200

static const char *const status_names[] = {
	"success", "notfound", "unavailable", "locked", "error",
};

static int report = -1;
static int stdout_rd = -1;	/* the module's stdout ends here */
static struct gc_services svc;
static struct {
	char first[1024];	/* the first error() line of the current call */
	bool seen;
} err;
static char *secrets[SECRETS_MAX];	/* handed to the module: never in a line */
static size_t n_secrets;
static char asked[ASKED_MAX][65];	/* keys the module asked option() for */
static size_t n_asked;
static long long call_deadline;

void child_say(const char *kind, const char *fmt, ...)
{
	char line[LINE_MAX_LEN];
	size_t n;
	va_list ap;

	n = (size_t)snprintf(line, sizeof(line), "%s ", kind);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	n = strlen(line);
	line[n++] = '\n';
	while (write(report, line, n) < 0 && errno == EINTR)
		;
}

/* ---- the fake services ------------------------------------------------- */

static void judge_line(const char *service, const char *line)
{
	for (size_t i = 0; i < n_secrets; i++)
		if (strstr(line, secrets[i]))
			child_say("breach", "a line given to services->%s() holds a secret the checker handed the module; never log a secret",
				  service);
	if (!strncmp(line, "galileo-credential:", 19))
		child_say("breach", "a line given to services->%s() starts with 'galileo-credential:', which the program adds",
			  service);
	if (strchr(line, '\n'))
		child_say("breach", "a line given to services->%s() holds a newline; it is one line",
			  service);
}

__attribute__((format(printf, 1, 2)))
static void fake_error(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	judge_line("error", line);
	if (!err.seen)
		snprintf(err.first, sizeof(err.first), "%s", line);
	err.seen = true;
}

__attribute__((format(printf, 1, 2)))
static void fake_debug(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	judge_line("debug", line);
	if (check.verbose)
		fprintf(stderr, "  debug: %s\n", line);
}

static const char *fake_option(const struct gc_services *self, const char *key)
{
	const char *value = NULL;

	(void)self;
	if (!key)
		return NULL;
	if (n_asked < ASKED_MAX)
		snprintf(asked[n_asked++], sizeof(asked[0]), "%s", key);
	for (size_t i = 0; i < check.n_options; i++)
		if (!strcmp(check.option_key[i], key))
			value = check.option_value[i];
	return value;
}

/* nobody is at a terminal here */
static int fake_prompt(const char *text, int style, char **answer)
{
	(void)text;
	(void)style;
	if (answer)
		*answer = NULL;
	return GC_STATUS_LOCKED;
}

static int fake_run(struct gc_run *r)
{
	return runner_run(r, call_deadline);
}

static void services_init(void)
{
	svc.interface_version = GC_MODULE_INTERFACE_VERSION;
	svc.size = sizeof(svc);
	svc.module_name = check.name;
	svc.error = fake_error;
	svc.debug = fake_debug;
	svc.wipe = secret_wipe;
	svc.option = fake_option;
	svc.timeout = check.timeout;
	svc.interactive = 0;
	svc.home_server = check.server;
	svc.prompt = fake_prompt;
	svc.run = fake_run;
	svc.run_release = runner_release;
}

/* ---- framing module calls ------------------------------------------------ */

void child_begin(const char *slot)
{
	err.seen = false;
	err.first[0] = '\0';
	fflush(stdout);
	call_deadline = runner_now_ms() + (long long)check.timeout * 1000;
	child_say("call", "%s", slot);
}

/* the call returned status: judge what can be judged of every call */
int child_end(const char *slot, int status)
{
	char junk[512];
	bool wrote = false;

	fflush(stdout);
	while (read(stdout_rd, junk, sizeof(junk)) > 0)
		wrote = true;
	child_say("back", "%s", slot);
	if (wrote)
		child_say("breach", "%s wrote to standard output, which belongs to the caller (git, docker, a script)",
			  slot);
	if (!answer_status_valid(status)) {
		child_say("breach", "%s answered %d, which is no enum gc_status", slot, status);
		return GC_STATUS_ERROR;
	}
	if (status >= GC_STATUS_UNAVAILABLE && !err.seen)
		child_say("breach", "%s answered %s without a line through services->error()",
			  slot, status_names[status]);
	return status;
}

void child_phase(const char *what, bool done)
{
	child_say(done ? "back" : "call", "%s", what);
}

const char *child_status_name(int status)
{
	return answer_status_valid(status) ? status_names[status] : "no status";
}

const char *child_last_error(void)
{
	return err.seen ? err.first : "no line";
}

/* ---- test data ---------------------------------------------------------- */

char *child_secret(const char *prefix, const char *suffix)
{
	unsigned char r[16] = { 0 };
	char hex[33];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		for (size_t i = 0; i < sizeof(r); i++)
			r[i] = (unsigned char)(rand() ^ (int)getpid());
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(hex + 2 * i, 3, "%02x", r[i]);
	if (n_secrets < SECRETS_MAX)
		secrets[n_secrets++] = xasprintf("%s", hex);
	return xasprintf("%s%s%s", prefix, hex, suffix);
}

bool child_same(const struct gc_credential *a, const struct gc_credential *b)
{
	return !strcmp(a->server, b->server) && !strcmp(a->kind, b->kind) &&
	       !strcmp(a->username, b->username) && !strcmp(a->organization, b->organization) &&
	       (!a->secret || !b->secret || !strcmp(a->secret, b->secret));
}

void child_release(const char *slot, struct gc_credential *c)
{
	char what[96];

	snprintf(what, sizeof(what), "the program's wipe and free() of what %s returned", slot);
	child_phase(what, false);
	credential_release(c);
	child_phase(what, true);
}

/* ---- the child --------------------------------------------------------------- */

static const struct gc_keystore_module *load(void)
{
	static struct gc_keystore_module table;
	int e;

	child_begin("loading (its constructors and entry point)");
	e = keystore_load_file(check.path, check.name, &svc, &table);
	child_end("loading (its constructors and entry point)", GC_STATUS_SUCCESS);
	if (e) {
		child_say("breach", "it cannot be loaded: %s",
			  gc_error_message() ? gc_error_message() : "no reason given");
		child_say("stop", "nothing else can be checked");
		return NULL;
	}
	return &table;
}

static void check_asked(const struct gc_keystore_module *m)
{
	for (size_t i = 0; i < n_asked; i++) {
		bool declared = false;

		for (size_t j = 0; m->options && m->options[j].key; j++)
			declared = declared || !strcmp(m->options[j].key, asked[i]);
		if (!declared)
			child_say("breach", "it asks services->option() for '%s', which its table does not declare in options",
				  asked[i]);
	}
	n_asked = 0;
}

/*
 * A sanitizer (a build with --enable-sanitizers) reports an invalid free
 * and exits 1: end as an uninstrumented build would, so the parent sees
 * the crash for what it is.
 */
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static void sanitizer_died(void)
{
	signal(SIGABRT, SIG_DFL);
	raise(SIGABRT);
}

/* a crash is the child's death by its signal, which the parent names */
static void crashes_are_deaths(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	if (__sanitizer_set_death_callback)
		__sanitizer_set_death_callback(sanitizer_died);
}

void child_run(int report_fd, check_step step)
{
	const struct gc_keystore_module *m;
	int p[2];

	report = report_fd;
	setpgid(0, 0);	/* the parent kills the whole group at a deadline */
	crashes_are_deaths();
	if (pipe2(p, O_CLOEXEC) || dup2(p[1], STDOUT_FILENO) < 0) {
		child_say("stop", "cannot set up a pipe for the module's stdout: %s", strerror(errno));
		_exit(0);
	}
	close(p[1]);
	stdout_rd = p[0];
	fcntl(stdout_rd, F_SETFL, O_NONBLOCK);
	services_init();
	if ((m = load())) {
		step(m);
		if (m->teardown) {
			child_begin("teardown()");
			m->teardown();
			child_end("teardown()", GC_STATUS_SUCCESS);
		}
		check_asked(m);
	}
	child_say("done", "-");
	_exit(0);
}
