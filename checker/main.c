/* SPDX-License-Identifier: MIT */
/*
 * galileo-credential-module-check: the parent.  Reads the command line,
 * runs each step (check.h) in a child of its own, bounds every module call
 * the child announces by the timeout plus one second, turns a crash or an
 * exit() of the child into a breach naming the slot that was running, and
 * prints what the children found.
 */
#include "autoconfig.h"

#include "checker/check.h"
#include "keystore/loader.h"
#include "keystore/runner.h"
#include "lib/common.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROGRAM "galileo-credential-module-check"
#define DEFAULT_TIMEOUT 10
#define DEFAULT_SERVER "https://module-check.invalid"

struct check_config check = { .server = DEFAULT_SERVER, .timeout = DEFAULT_TIMEOUT };

static const char usage_text[] =
	"Usage: " PROGRAM " [OPTION]... MODULE\n"
	"\n"
	PROGRAM "\n"
	"checks a galileo-credential keystore module against the module interface\n"
	"(galileo-credential-module(7)), as pamtester checks a PAM module: it loads\n"
	"MODULE with fake services and drives every slot the module claims -\n"
	"statuses and their error lines, ownership and wiping of returned memory,\n"
	"store then read-back, list, replace, concurrent stores, erase, the token\n"
	"slots, standard output, and every call against the timeout - and reports\n"
	"each breach of the contract.\n"
	"\n"
	"MODULE is a file keystore-NAME.so, or a NAME in the module directory.\n"
	"It stores a test credential for the server of -s in the module's store\n"
	"and erases it again.\n"
	"\n"
	"  -o, --option KEY=VALUE  an option for the module, as NAME.KEY = VALUE in\n"
	"                          the configuration file (repeatable)\n"
	"  -t, --timeout SECONDS   the timeout handed to the module (default 10); a\n"
	"                          call still running a second later is a breach\n"
	"  -s, --server URL        the server of the test credential\n"
	"                          (default " DEFAULT_SERVER ")\n"
	"  -v, --verbose           also show each check that passed, and debug lines\n"
	"  -h, --help              show this and exit\n"
	"      --version           show the version and exit\n"
	"\n"
	"Exit status: 0 no breach found, 1 a breach found, 2 bad usage, or a\n"
	"module that could not be checked fully (its store is not reachable here).\n";

#define SEEN_MAX 64

static struct {
	unsigned int breaches, passed;	/* distinct breaches */
	bool stopped;
	char *seen[SEEN_MAX];		/* each breach is shown once */
	size_t n_seen;
} tally;

/* what the parent knows of a child while it runs */
struct watch {
	char slot[160];		/* the call last announced */
	int outstanding;	/* calls announced and not yet back */
	long long deadline;	/* of the oldest of them; 0: none */
	bool done;
	char buf[8192];
	size_t len;
};

/* ---- what a child says --------------------------------------------------- */

/* a breach, shown and counted once however many steps run into it */
static void breach(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void breach(const char *fmt, ...)
{
	char line[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < tally.n_seen; i++)
		if (!strcmp(tally.seen[i], line))
			return;
	if (tally.n_seen < SEEN_MAX)
		tally.seen[tally.n_seen++] = xstrdup(line);
	tally.breaches++;
	printf("breach: %s\n", line);
	fflush(stdout);
}

static void handle_line(struct watch *w, char *line)
{
	char *sp = strchr(line, ' ');
	const char *rest = sp ? sp + 1 : "";

	if (sp)
		*sp = '\0';
	if (!strcmp(line, "call")) {
		snprintf(w->slot, sizeof(w->slot), "%s", rest);
		if (!w->outstanding++)
			w->deadline = runner_now_ms() + (check.timeout + 1) * 1000LL;
	} else if (!strcmp(line, "back")) {
		if (w->outstanding > 0 && !--w->outstanding)
			w->deadline = 0;
	} else if (!strcmp(line, "breach")) {
		breach("%s", rest);
	} else if (!strcmp(line, "ok")) {
		tally.passed++;
		if (check.verbose)
			printf("ok: %s\n", rest);
	} else if (!strcmp(line, "stop")) {
		tally.stopped = true;
		printf("not checked: %s\n", rest);
	} else if (!strcmp(line, "done")) {
		w->done = true;
	}
	fflush(stdout);
}

/* read what is there and handle each whole line: what read(2) said */
static ssize_t read_lines(struct watch *w, int fd)
{
	ssize_t r = read(fd, w->buf + w->len, sizeof(w->buf) - 1 - w->len);
	char *nl;

	if (r <= 0)
		return r;
	w->len += (size_t)r;
	w->buf[w->len] = '\0';
	while ((nl = memchr(w->buf, '\n', w->len))) {
		*nl = '\0';
		handle_line(w, w->buf);
		w->len -= (size_t)(nl + 1 - w->buf);
		memmove(w->buf, nl + 1, w->len);
	}
	if (w->len == sizeof(w->buf) - 1)
		w->len = 0;	/* a line that long is no report line */
	return r;
}

/* ---- running a step ----------------------------------------------------------- */

static const char *signal_name(int sig)
{
	static char other[32];

	switch (sig) {
	case SIGSEGV: return "SIGSEGV";
	case SIGBUS: return "SIGBUS";
	case SIGILL: return "SIGILL";
	case SIGFPE: return "SIGFPE";
	case SIGABRT: return "SIGABRT";
	case SIGPIPE: return "SIGPIPE";
	default:
		snprintf(other, sizeof(other), "signal %d", sig);
		return other;
	}
}

/* follow the child until it ends or a call runs past its deadline */
static void supervise(pid_t pid, int fd)
{
	struct watch w = { .len = 0 };
	int st = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (w.deadline && runner_now_ms() >= w.deadline) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			breach("%s did not return within %ld seconds (the timeout it was handed, plus one)",
			       w.slot, check.timeout + 1);
			return;
		}
		if (poll(&p, 1, 100) > 0) {
			if (read_lines(&w, fd) == 0)
				break;
		} else if (!w.outstanding && waitpid(pid, &st, WNOHANG) == pid) {
			/* ended, though something it started keeps the pipe open */
			fcntl(fd, F_SETFL, O_NONBLOCK);
			while (read_lines(&w, fd) > 0)
				;
			goto ended;
		}
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
ended:
	if (WIFSIGNALED(st))
		breach("%s crashed with %s", w.outstanding ? w.slot : "the module",
		       signal_name(WTERMSIG(st)));
	else if (!w.done)
		breach("%s called exit(%d)", w.outstanding ? w.slot : "the module",
		       WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static void run_step(check_step step)
{
	int rep[2];
	pid_t pid;

	if (pipe2(rep, O_CLOEXEC)) {
		fprintf(stderr, "%s: cannot make a pipe: %s\n", PROGRAM, strerror(errno));
		exit(2);
	}
	fflush(NULL);
	if ((pid = fork()) < 0) {
		fprintf(stderr, "%s: cannot fork: %s\n", PROGRAM, strerror(errno));
		exit(2);
	}
	if (pid == 0) {
		close(rep[0]);
		child_run(rep[1], step);
	}
	close(rep[1]);
	supervise(pid, rep[0]);
	close(rep[0]);
}

/* ---- the command line ------------------------------------------------------------ */

__attribute__((noreturn, format(printf, 1, 2)))
static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", PROGRAM);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; see '%s --help'\n", PROGRAM);
	exit(2);
}

/* MODULE: a path to keystore-NAME.so, or a NAME in the module directory */
static void resolve(const char *arg)
{
	char *path, *dir, *base;
	size_t n;

	if (strchr(arg, '/')) {
		if (!(path = realpath(arg, NULL)))
			usage_error("cannot find the module '%s'", arg);
	} else {
		if (!keystore_name_valid(arg) || !(dir = module_dir()))
			usage_error("'%s' is neither a module file nor a module name", arg);
		path = xasprintf("%s/keystore-%s.so", dir, arg);
		free(dir);
	}
	base = strrchr(path, '/') + 1;
	n = strlen(base);
	if (n < 13 || strncmp(base, "keystore-", 9) || strcmp(base + n - 3, ".so"))
		usage_error("the module file '%s' is not named keystore-NAME.so", path);
	snprintf(check.name, sizeof(check.name), "%.*s", (int)(n - 12), base + 9);
	if (!keystore_name_valid(check.name))
		usage_error("the module file '%s' is not named keystore-NAME.so with NAME [a-z0-9-]+",
			    path);
	check.path = path;
}

static void add_option(const char *arg)
{
	const char *eq = strchr(arg, '=');

	if (!eq || eq == arg || check.n_options == CHECK_OPTIONS_MAX)
		usage_error("bad option '%s'; use -o KEY=VALUE", arg);
	check.option_key[check.n_options] = xstrndup(arg, (size_t)(eq - arg));
	check.option_value[check.n_options++] = eq + 1;
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "option", required_argument, NULL, 'o' },
		{ "timeout", required_argument, NULL, 't' },
		{ "server", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "o:t:s:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			add_option(optarg);
			break;
		case 't':
			check.timeout = strtol(optarg, &end, 10);
			if (*end || check.timeout < 1 || check.timeout > 3600)
				usage_error("bad timeout '%s'; use whole seconds from 1 to 3600", optarg);
			break;
		case 's':
			if (strncmp(optarg, "https://", 8) && strncmp(optarg, "http://", 7))
				usage_error("bad server '%s'; use an https:// URL", optarg);
			check.server = optarg;
			break;
		case 'v':
			check.verbose = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		case 'V':
			printf("%s (galileo-credential) %s, module interface version %d\n", PROGRAM,
			       PACKAGE_VERSION, GC_MODULE_INTERFACE_VERSION);
			exit(0);
		default:
			fprintf(stderr, "see '%s --help'\n", PROGRAM);
			exit(2);
		}
	}
	if (optind != argc - 1)
		usage_error("name exactly one MODULE");
	resolve(argv[optind]);
}

int main(int argc, char **argv)
{
	static const check_step steps[] = {
		step_load, step_open, step_get_missing, step_store, step_concurrent, step_erase,
		step_tokens,
	};
	char *real = NULL;

	signal(SIGPIPE, SIG_IGN);	/* as the program runs its modules */
	parse_args(argc, argv);
	printf("checking keystore '%s' (%s)\n", check.name, check.path);
	if (module_path_check(check.path, &real))
		printf("warning: %s\n", gc_error_message());
	free(real);
	gc_error_clear();
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]) && !tally.stopped; i++)
		run_step(steps[i]);
	if (tally.breaches)
		printf("keystore '%s': %u breach%s of galileo-credential-module(7)\n", check.name,
		       tally.breaches, tally.breaches == 1 ? "" : "es");
	else
		printf("keystore '%s': no breach found (%u checks passed%s)\n", check.name,
		       tally.passed, tally.stopped ? "; not every slot could be checked" : "");
	return tally.breaches ? 1 : tally.stopped ? 2 : 0;
}
