/* SPDX-License-Identifier: MIT */
/*
 * galileo-credential: one program, three dialects (native, git, docker).
 * main() hardens the process, picks the dialect, and turns the result
 * into output and an exit code; everything else lives in its module.
 */
#include "autoconfig.h"

#include "helper/dialect.h"
#include "helper/session.h"
#include "keystore/contain.h"
#include "lib/common.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

enum dialect { DIALECT_NATIVE, DIALECT_GIT, DIALECT_DOCKER };

/*
 * stdio's own buffers see every secret read or printed; give it ours so
 * they can be wiped before exit.  One page each, page-aligned: the wipe
 * then touches one page per stream, not three (every input and output
 * the program has is far smaller; longer ones are flushed in turn).
 */
#define STDIO_BUF 4096
static char stdin_buf[STDIO_BUF] __attribute__((aligned(STDIO_BUF)));
static char stdout_buf[STDIO_BUF] __attribute__((aligned(STDIO_BUF)));

static void harden_process(void)
{
	struct rlimit core;

	exec_keep_caller_defaults();
	/*
	 * No core file, no ptrace by the user's other processes (ssh-agent).
	 * Only the soft core limit: the hard one stays as the caller had it,
	 * so exec can give COMMAND the caller's limits back.
	 */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (getrlimit(RLIMIT_CORE, &core) == 0) {
		core.rlim_cur = 0;
		setrlimit(RLIMIT_CORE, &core);
	}
	/*
	 * A descriptor 0-2 closed at start would be reused by the next open:
	 * a token printed on "stdout" could land in a keyring socket or file.
	 */
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF &&
		    open("/dev/null", fd ? O_WRONLY : O_RDONLY) != fd)
			_exit(1);
	/* a closed pipe is an error to report (exit 1), not a silent death */
	signal(SIGPIPE, SIG_IGN);
}

static enum dialect dialect_of(const char *argv0)
{
	const char *base = strrchr(argv0, '/');

	base = base ? base + 1 : argv0;
	if (!strcmp(base, "git-credential-galileo"))
		return DIALECT_GIT;
	if (!strcmp(base, "docker-credential-galileo"))
		return DIALECT_DOCKER;
	return DIALECT_NATIVE;
}

/* --protocol=NAME before the action; 0, or 2 for an unknown one */
static int protocol_option(const char *arg, enum dialect *d)
{
	const char *p = arg + strlen("--protocol=");

	if (!strcmp(p, "git"))
		*d = DIALECT_GIT;
	else if (!strcmp(p, "docker"))
		*d = DIALECT_DOCKER;
	else if (!strcmp(p, "native"))
		*d = DIALECT_NATIVE;
	else
		return gc_error(GCERR_USAGE, "unknown protocol '%s'; use git or docker", p);
	return 0;
}

/* help and version need no configuration: a broken file does not hide them */
static bool needs_no_config(enum dialect d, const char *cmd)
{
	return d == DIALECT_NATIVE && (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") ||
				       !strcmp(cmd, "--version"));
}

static int run(enum dialect d, int argc, char **argv)
{
	struct session s;
	int err;

	if (needs_no_config(d, argv[0])) {
		memset(&s, 0, sizeof(s));
		config_init(&s.cfg);
		return native_main(&s, argc, argv);
	}
	/* a module's crash or hang, too, is one line where the dialect wants it */
	if (d == DIALECT_DOCKER)
		contain_report_on_stdout();
	err = session_init(&s);

	if (!err) {
		if (d == DIALECT_GIT)
			err = git_main(&s, argv[0]);
		else if (d == DIALECT_DOCKER)
			err = docker_main(&s, argv[0]);
		else
			err = native_main(&s, argc, argv);
	}
	session_release(&s);
	return err;
}

/*
 * galileo-credential(1) EXIT STATUS: output that did not get out is a failure
 */
static int flush_output(int err)
{
	if ((fflush(stdout) || ferror(stdout)) && !err)
		err = gc_error(GCERR_FAIL, "cannot write to standard output: %s", strerror(errno));
	return err;
}

static void report(enum dialect d, int err)
{
	const char *msg = gc_error_message();

	if (!msg)
		msg = gc_strerror(err);
	if (d == DIALECT_DOCKER && !ferror(stdout)) {
		/* docker reads errors from stdout, and knows this one by name */
		printf("%s\n", err == GCERR_NOTFOUND ? "credentials not found in native keychain" : msg);
		fflush(stdout);
	} else {
		fprintf(stderr, "galileo-credential: %s\n", msg);
	}
}

int main(int argc, char **argv)
{
	enum dialect d = dialect_of(argc > 0 ? argv[0] : "");
	int err = 0, argi = 1;

	harden_process();
	setvbuf(stdin, stdin_buf, _IOFBF, sizeof(stdin_buf));
	setvbuf(stdout, stdout_buf, _IOFBF, sizeof(stdout_buf));
	secret_json_init();
	if (argi < argc && !strncmp(argv[argi], "--protocol=", 11))
		err = protocol_option(argv[argi++], &d);
	if (!err && argi >= argc) {
		if (d == DIALECT_DOCKER) {
			printf("usage: docker-credential-galileo store|get|erase|list|version\n");
			return 1;
		}
		fputs(native_usage, stderr);
		return 2;
	}
	if (!err)
		err = run(d, argc - argi, argv + argi);
	if (err > 0) {
		/* exec: COMMAND's own status, passed on */
		secret_wipe(stdin_buf, sizeof(stdin_buf));
		secret_wipe(stdout_buf, sizeof(stdout_buf));
		return err;
	}
	err = flush_output(err);
	if (err)
		report(d, err);
	if (err && d == DIALECT_DOCKER)
		err = GCERR_FAIL;	/* docker knows one failure code */
	if (fclose(stdout) && !err) {
		fprintf(stderr, "galileo-credential: cannot write to standard output: %s\n",
			strerror(errno));
		err = GCERR_FAIL;
	}
	secret_wipe(stdin_buf, sizeof(stdin_buf));
	secret_wipe(stdout_buf, sizeof(stdout_buf));
	return gc_exit_code(err);
}
