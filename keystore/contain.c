/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "keystore/contain.h"
#include "keystore/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * Why these mechanisms (galileo-credential-module(7) CONTAINMENT):
 *   - the watchdog is a thread of its own, with every signal blocked,
 *     waiting on a condition variable with a CLOCK_MONOTONIC deadline: a
 *     module that blocks or catches SIGALRM, or sleeps in a system call,
 *     cannot hold it off;
 *   - a crash is caught by handlers on an alternate stack (a stack
 *     overflow crashes too), which write one line and _exit(): nothing of
 *     the crashed state is trusted further;
 *   - exit() runs the atexit handlers, so one registered before the
 *     first module code runs (its constructors included) sees a call still
 *     in progress and turns it into exit 6; _exit() and quick_exit() are
 *     beyond reach, and the manual says so;
 *   - fd 1 points at /dev/null while module code runs: whatever a module
 *     writes, through stdio or write(2), goes nowhere; stdio is flushed
 *     before and after so that neither side's buffered text crosses over.
 * A child a module forks is not the caller: none of this acts in it.
 */

#define EXIT_KEYSTORE 6
#define LINE_MAX_LEN 512
#define ALT_STACK_SIZE (64 * 1024)

static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
#define NCRASH (sizeof(crash_signals) / sizeof(crash_signals[0]))

static struct {
	bool ready;			/* handlers, atexit, watchdog in place */
	bool on_stdout;			/* docker: the line on stdout, exit 1 */
	volatile sig_atomic_t inside;	/* module code is running */
	pid_t pid;			/* of the process that called */
	int saved_stdout;		/* the caller's fd 1 during a call */
	int devnull;
	char module[96];
	char slot[32];
	long timeout;
	long long start;
	long long budget_left;		/* ms; -1: no budget */
	long budget_seconds;
} c = { .saved_stdout = -1, .devnull = -1, .budget_left = -1 };

static struct sigaction old_actions[NCRASH];
static char alt_stack[ALT_STACK_SIZE];

/* the watchdog's state, under mu */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static long long watch_until;		/* 0: not armed */
static long watch_seconds;

/* ---- the one line --------------------------------------------------------- */

/* async-signal-safe: strings only, write(2), _exit(2) */
static void append(char *buf, const char *s)
{
	size_t n = strlen(buf), m = strlen(s);

	if (n + m >= LINE_MAX_LEN)
		m = LINE_MAX_LEN - 1 - n;
	memcpy(buf + n, s, m);
	buf[n + m] = '\0';
}

/*
 * "keystore module 'NAME'" and the pieces (up to a NULL), then what to do;
 * on stderr (stdout for docker), and the exit
 */
__attribute__((noreturn, sentinel))
static void die(const char *piece, ...)
{
	static char line[LINE_MAX_LEN];
	static volatile int dying;
	va_list ap;
	int fd = 2;

	/* one line: a second thread that dies meanwhile waits for the _exit */
	if (__atomic_exchange_n(&dying, 1, __ATOMIC_SEQ_CST))
		for (;;)
			pause();
	line[0] = '\0';
	if (c.on_stdout)
		fd = c.inside && c.saved_stdout >= 0 ? c.saved_stdout : 1;
	else
		append(line, "galileo-credential: ");
	append(line, "keystore module '");
	append(line, c.module);
	append(line, "'");
	va_start(ap, piece);
	for (; piece; piece = va_arg(ap, const char *))
		append(line, piece);
	va_end(ap);
	append(line, "; fix the module or take it out of 'keystore' in the configuration\n");
	while (write(fd, line, strlen(line)) < 0 && errno == EINTR)
		;
	_exit(c.on_stdout ? 1 : EXIT_KEYSTORE);
}

static bool ours(void)
{
	return c.inside && getpid() == c.pid;
}

/* ---- crashes and exit() -------------------------------------------------- */

static const char *signal_name(int sig)
{
	switch (sig) {
	case SIGSEGV: return "SIGSEGV";
	case SIGBUS: return "SIGBUS";
	case SIGILL: return "SIGILL";
	case SIGFPE: return "SIGFPE";
	default: return "SIGABRT";
	}
}

static void on_crash(int sig, siginfo_t *info, void *ctx)
{
	size_t i;

	if (ours())
		die(" crashed with ", signal_name(sig), " during ", c.slot, (char *)NULL);
	/* not the module's: whatever was there before us takes it */
	for (i = 0; i < NCRASH && crash_signals[i] != sig; i++)
		;
	if (i < NCRASH && (old_actions[i].sa_flags & SA_SIGINFO) && old_actions[i].sa_sigaction) {
		old_actions[i].sa_sigaction(sig, info, ctx);
		return;
	}
	if (i < NCRASH && old_actions[i].sa_handler != SIG_DFL &&
	    old_actions[i].sa_handler != SIG_IGN) {
		old_actions[i].sa_handler(sig);
		return;
	}
	signal(sig, SIG_DFL);
	raise(sig);	/* delivered as this handler returns */
}

static void on_exit_check(void)
{
	if (ours())
		die(" called exit() during ", c.slot, (char *)NULL);
}

static void catch_crashes(void)
{
	struct sigaction sa;
	stack_t ss, cur;

	/* a sanitizer may have its own alternate stack: keep it */
	if (sigaltstack(NULL, &cur) == 0 && (cur.ss_flags & SS_DISABLE)) {
		ss.ss_sp = alt_stack;
		ss.ss_size = sizeof(alt_stack);
		ss.ss_flags = 0;
		sigaltstack(&ss, NULL);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_crash;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NCRASH; i++)
		sigaction(crash_signals[i], &sa, &old_actions[i]);
}

/* ---- the watchdog ------------------------------------------------------------ */

static void *watchdog(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	for (;;) {
		long long now = runner_now_ms();
		struct timespec ts;

		if (!watch_until) {
			pthread_cond_wait(&cv, &mu);
			continue;
		}
		if (now >= watch_until) {
			char seconds[32];

			snprintf(seconds, sizeof(seconds), "%ld seconds", watch_seconds);
			die(": ", c.slot, " did not return within ", seconds, (char *)NULL);
		}
		ts.tv_sec = (time_t)(watch_until / 1000);
		ts.tv_nsec = (long)(watch_until % 1000) * 1000000L;
		pthread_cond_timedwait(&cv, &mu, &ts);
	}
	return NULL;
}

static bool start_watchdog(void)
{
	pthread_condattr_t attr;
	sigset_t all, old;
	pthread_t t;
	int rc;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&cv, &attr);
	pthread_condattr_destroy(&attr);
	/* every signal stays with the other threads: the prompt's handlers */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&t, NULL, watchdog, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return false;
	pthread_detach(t);
	return true;
}

static void arm(long long until, long seconds)
{
	pthread_mutex_lock(&mu);
	watch_until = until;
	watch_seconds = seconds;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

/* ---- calls ------------------------------------------------------------------- */

void contain_report_on_stdout(void)
{
	c.on_stdout = true;
}

static void setup(void)
{
	/*
	 * Again at each call: exit handlers run last registered first, and
	 * one a library registered since (OpenSSL's, for the early TLS
	 * connect) must not free what a thread still uses before the exit()
	 * is seen for what it is.
	 */
	atexit(on_exit_check);
	if (c.ready)
		return;
	c.ready = true;
	catch_crashes();
	if (!start_watchdog())
		die(" cannot be run: no thread for its watchdog", (char *)NULL);
}

static void shield_stdout(void)
{
	fflush(stdout);
	if (c.devnull < 0)
		c.devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	c.saved_stdout = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	if (c.devnull < 0 || c.saved_stdout < 0 || dup2(c.devnull, STDOUT_FILENO) < 0)
		die(" cannot be run: standard output cannot be shielded from it", (char *)NULL);
}

static void unshield_stdout(void)
{
	fflush(stdout);		/* the module's text, if any, into /dev/null */
	dup2(c.saved_stdout, STDOUT_FILENO);
	close(c.saved_stdout);
	c.saved_stdout = -1;
}

void contain_enter(const char *module, const char *slot, long timeout)
{
	long long until;
	long seconds = timeout + 1;

	snprintf(c.module, sizeof(c.module), "%s", module);
	snprintf(c.slot, sizeof(c.slot), "%s", slot);
	setup();
	c.timeout = timeout;
	c.start = runner_now_ms();
	until = c.start + (long long)seconds * 1000;
	if (c.budget_left >= 0 && c.start + c.budget_left < until) {
		until = c.start + c.budget_left;
		seconds = c.budget_seconds;
	}
	shield_stdout();
	c.pid = getpid();
	arm(until, seconds);
	c.inside = 1;
}

void contain_leave(void)
{
	c.inside = 0;
	arm(0, 0);
	unshield_stdout();
	if (c.budget_left >= 0) {
		c.budget_left -= runner_now_ms() - c.start;
		if (c.budget_left < 0)
			c.budget_left = 0;
	}
}

long long contain_deadline(long timeout)
{
	long long end;

	if (!c.inside)
		return runner_now_ms() + (long long)timeout * 1000;
	end = c.start + (long long)c.timeout * 1000;
	if (c.budget_left >= 0 && c.start + c.budget_left - 1000 < end)
		end = c.start + c.budget_left - 1000;
	return end;
}

void contain_budget(long seconds)
{
	if (c.budget_left < 0) {
		c.budget_left = (long long)seconds * 1000;
		c.budget_seconds = seconds;
	}
}

void contain_breach(const char *module, const char *slot, const char *fmt, ...)
{
	char what[LINE_MAX_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(c.module, sizeof(c.module), "%s", module);
	die(" broke the module interface: ", slot, " ", what, (char *)NULL);
}
