/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "helper/dialect.h"
#include "lib/common.h"
#include "token/policy.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * exec (galileo-credential(1) CREDENTIAL HELPER SPEC): run COMMAND with
 * GALILEO_JWT_TOKEN and GALILEO_API_URL (or, with --api-key, GALILEO_API_KEY)
 * in its environment, as the Galileo SDKs read them.  No shell; the variables
 * go only into the child's environment, and our copies are wiped once it has
 * started.  COMMAND's exit status is ours; 128+signal when it was killed.
 */

#define DEFAULT_MIN_TTL 3600

extern char **environ;

/*
 * environ without the names we set and without an inherited
 * GALILEO_API_KEY (a secret goes to COMMAND only when asked for, with
 * --api-key), then NAME=VALUE for each pair
 */
static char **child_environ(char *const *vars, size_t nvars)
{
	size_t n = 0, k = 0;
	char **envp;

	while (environ[n])
		n++;
	envp = xcalloc(n + nvars + 1, sizeof(*envp));
	for (size_t i = 0; i < n; i++) {
		bool ours = !strncmp(environ[i], "GALILEO_API_KEY=", 16);

		for (size_t v = 0; v < nvars && !ours; v++)
			ours = !strncmp(environ[i], vars[v], strcspn(vars[v], "=") + 1);
		if (!ours)
			envp[k++] = environ[i];
	}
	for (size_t v = 0; v < nvars; v++)
		envp[k++] = vars[v];
	return envp;
}

/* what main() changed for itself, as the caller gave it (exec_keep_caller_defaults) */
static struct {
	bool kept;
	struct rlimit core;
	bool sigpipe_ignored;
} caller;

void exec_keep_caller_defaults(void)
{
	struct sigaction pipe_action;

	if (getrlimit(RLIMIT_CORE, &caller.core) == 0)
		caller.kept = true;
	caller.sigpipe_ignored = sigaction(SIGPIPE, NULL, &pipe_action) == 0 &&
				 pipe_action.sa_handler == SIG_IGN;
}

static volatile sig_atomic_t child_pid;

/*
 * A signal meant for the job reaches COMMAND, once.  The terminal sends
 * SIGINT, SIGQUIT and SIGHUP to its whole foreground process group
 * (si_code SI_KERNEL), which COMMAND shares with us: it has had that one
 * already, and a second Ctrl-C makes many tools force-quit.  A signal sent
 * to us alone (kill PID, a supervisor's SIGTERM) is passed on.
 */
static void forward(int sig, siginfo_t *info, void *uctx)
{
	(void)uctx;
	if (child_pid <= 0)
		return;
	if (info && info->si_code == SI_KERNEL && getpgid(child_pid) == getpgrp())
		return;
	kill(child_pid, sig);
}

/* in the child: the caller's limits and SIGPIPE, which galileo-credential changed for itself */
static void child_defaults(void)
{
	signal(SIGPIPE, caller.sigpipe_ignored ? SIG_IGN : SIG_DFL);
	if (caller.kept)
		setrlimit(RLIMIT_CORE, &caller.core);
}

/* a signal the caller ignored stays ignored, as for COMMAND (prompt.c does the same) */
static void forward_signal(int sig)
{
	struct sigaction sa, old;

	if (sigaction(sig, NULL, &old) == 0 && old.sa_handler == SIG_IGN)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = forward;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

/* fork, exec COMMAND, wait; its exit status, 128+signal, or 126/127 */
static int run_child(char **command, char **envp)
{
	int status, fd;
	pid_t pid;

	fflush(stdout);
	if ((pid = fork()) < 0)
		return gc_error(GCERR_FAIL, "cannot start '%s': %s", command[0], strerror(errno));
	if (pid == 0) {
		child_defaults();
		execvpe(command[0], command, envp);
		fd = errno == ENOENT ? 127 : 126;
		fprintf(stderr, "galileo-credential: cannot run '%s': %s\n", command[0],
			strerror(errno));
		_exit(fd);
	}
	child_pid = pid;
	/* a signal meant for the job reaches COMMAND; we wait for its end */
	forward_signal(SIGINT);
	forward_signal(SIGTERM);
	forward_signal(SIGHUP);
	forward_signal(SIGQUIT);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return gc_error(GCERR_FAIL, "cannot wait for '%s': %s", command[0], strerror(errno));
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* a token with at least min_ttl left; 0 asks for the default */
static int long_enough(struct session *s, struct token_request *r, long min_ttl,
		       struct gc_credential *cred, struct cached_token *tok)
{
	struct token_policy p;
	long left, want;
	int err;

	session_policy(s, &p);
	r->min_ttl = min_ttl;
	if ((err = token_obtain(&p, r, cred, tok)))
		return err;
	want = min_ttl > 0 ? min_ttl : tok->lifetime / 2 < DEFAULT_MIN_TTL ? tok->lifetime / 2 :
	       DEFAULT_MIN_TTL;
	left = (long)(tok->expires_at - (int64_t)time(NULL));
	if (tok->expires_at <= 0 || left >= want)
		return 0;
	cached_token_release(tok);
	credential_release(cred);
	r->min_ttl = want;
	if ((err = token_obtain(&p, r, cred, tok)))
		return err;
	left = (long)(tok->expires_at - (int64_t)time(NULL));
	if (left >= want)
		return 0;
	cached_token_release(tok);
	credential_release(cred);
	return gc_error(GCERR_NETWORK, "the server '%s' gives tokens for %ld s, less than the %ld s asked for; ask for less with --min-ttl",
			s->server, left, want);
}

static int api_key_of(struct session *s, char **key)
{
	struct gc_credential cred;
	int err = stack_get(session_stack(s), s->server, &cred, NULL);

	if (err == GCERR_NOTFOUND)
		return gc_error(err, "no credential stored for '%s'; run 'galileo-credential login --server %s'",
				s->server, s->server);
	if (!err && strcmp(cred.kind, "api-key"))
		err = gc_error(GCERR_INPUT, "the credential for '%s' is of kind %s, not an API key; use exec without --api-key",
			       s->server, cred.kind);
	if (!err)
		*key = xasprintf("GALILEO_API_KEY=%s", cred.secret);
	credential_release(&cred);
	return err;
}

int exec_main(struct session *s, const char *server, const char *org_id,
	      const char *org_slug, long min_ttl, bool api_key, char **command)
{
	struct token_request r = { 0 };
	struct gc_credential cred = { 0 };
	struct cached_token tok = { 0 };
	char *vars[2] = { NULL, NULL }, *org = NULL, **envp;
	int err;

	if ((err = session_explicit_org(org_id, org_slug, &org)) ||
	    (err = session_use_server(s, server, true)))
		goto out;
	r.org = org;
	r.org_config = s->org_config;
	if (api_key)
		err = api_key_of(s, &vars[0]);
	else if (!(err = long_enough(s, &r, min_ttl, &cred, &tok)))
		vars[0] = xasprintf("GALILEO_JWT_TOKEN=%s", tok.token);
	cached_token_release(&tok);
	credential_release(&cred);
	if (err)
		goto out;
	vars[1] = xasprintf("GALILEO_API_URL=%s", s->server);
	envp = child_environ(vars, 2);
	err = run_child(command, envp);
	free(envp);
out:
	secret_free(vars[0]);
	free(vars[1]);
	free(org);
	return err;
}
