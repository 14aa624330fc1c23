/* SPDX-License-Identifier: MIT */
/*
 * The benchmark's timing runner: runs every row of a spec as its own
 * process (posix_spawn, execve of an absolute path: no shell, no PATH
 * search), INTERLEAVED: round r runs each row once, starting at row
 * r mod N, so that a change in the machine's load touches every row alike.
 *
 *     runner SPEC OUT ROUNDS WARMUP
 *
 * SPEC, one "KEY VALUE" a line (VALUE is the rest of the line, verbatim):
 *     row NAME      starts a row
 *     arg WORD      the next argv word of the current step (the first: a path)
 *     in PATH       stdin of the current step (default /dev/null), opened
 *                   before the clock starts
 *     env K=V       set in the row's environment (the runner's own, plus these)
 *     prep WORD     the next argv word of the row's prepare command, run
 *                   before each of its runs, untimed; it must exit 0
 *     step -        a second step: started when the first has exited, its
 *                   stdin is a pipe holding PREFIX then the first step's stdout
 *     prefix TEXT   written to that pipe before the first step starts
 * stdout and stderr of every timed process go to /dev/null.
 *
 * OUT, one line per timed run: "ROW ROUND WALL_NS USER_US SYS_US MINFLT STATUS",
 * WALL from just before the first spawn to the return of the last wait4,
 * USER, SYS and MINFLT (minor page faults) from wait4's rusage (summed over
 * the steps; a child's rusage includes the children it waited for), STATUS the first
 * non-zero wait status (0 when every step exited 0).  Warm-up rounds are not
 * written.  Exit 0, or 1 when the spec is bad or a prepare failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct argv {
	char **v;
	size_t n;
};

struct step {
	struct argv argv;
	char *in;
};

struct row {
	char *name;
	struct step step[2];
	int nsteps;
	char *prefix;
	struct argv prep;
	struct argv env;	/* NULL-terminated envp */
};

static void die(const char *what)
{
	fprintf(stderr, "runner: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void *xrealloc(void *p, size_t n)
{
	if (!(p = realloc(p, n)))
		die("realloc");
	return p;
}

static void push(struct argv *a, char *s)
{
	a->v = xrealloc(a->v, (a->n + 2) * sizeof(*a->v));
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d)
		die("strdup");
	return d;
}

/* the runner's environment with the row's K=V set over it */
static void make_env(struct row *r, struct argv *set)
{
	for (char **e = environ; *e; e++) {
		size_t klen = strcspn(*e, "=");
		int overridden = 0;

		for (size_t i = 0; i < set->n; i++)
			if (!strncmp(set->v[i], *e, klen + 1))
				overridden = 1;
		if (!overridden)
			push(&r->env, *e);
	}
	for (size_t i = 0; i < set->n; i++)
		push(&r->env, set->v[i]);
}

static struct row *parse(const char *path, size_t *nrows)
{
	FILE *f = fopen(path, "r");
	struct row *rows = NULL, *r = NULL;
	struct argv *sets = NULL;
	char *line = NULL;
	size_t cap = 0, n = 0;
	ssize_t len;

	if (!f)
		die(path);
	while ((len = getline(&line, &cap, f)) >= 0) {
		char *val;

		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		if (!len)
			continue;
		val = strchr(line, ' ');
		val = val ? (*val++ = '\0', xstrdup(val)) : xstrdup("");
		if (!strcmp(line, "row")) {
			rows = xrealloc(rows, (n + 1) * sizeof(*rows));
			sets = xrealloc(sets, (n + 1) * sizeof(*sets));
			r = &rows[n];
			memset(r, 0, sizeof(*r));
			memset(&sets[n], 0, sizeof(*sets));
			r->name = val;
			r->nsteps = 1;
			n++;
			continue;
		}
		if (!r) {
			fprintf(stderr, "runner: %s: '%s' before the first row\n", path, line);
			exit(1);
		}
		if (!strcmp(line, "arg"))
			push(&r->step[r->nsteps - 1].argv, val);
		else if (!strcmp(line, "in"))
			r->step[r->nsteps - 1].in = val;
		else if (!strcmp(line, "env"))
			push(&sets[n - 1], val);
		else if (!strcmp(line, "prep"))
			push(&r->prep, val);
		else if (!strcmp(line, "prefix"))
			r->prefix = val;
		else if (!strcmp(line, "step") && r->nsteps == 1)
			r->nsteps = 2;
		else {
			fprintf(stderr, "runner: %s: unknown line '%s'\n", path, line);
			exit(1);
		}
	}
	free(line);
	fclose(f);
	for (size_t i = 0; i < n; i++) {
		for (int s = 0; s < rows[i].nsteps; s++)
			if (!rows[i].step[s].argv.n) {
				fprintf(stderr, "runner: row '%s' has a step without arguments\n",
					rows[i].name);
				exit(1);
			}
		make_env(&rows[i], &sets[i]);
	}
	*nrows = n;
	return rows;
}

static pid_t spawn(char **argv, char **envp, int in, int out, int err)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int e;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_adddup2(&fa, out, 1);
	posix_spawn_file_actions_adddup2(&fa, err, 2);
	e = posix_spawn(&pid, argv[0], &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	if (e) {
		errno = e;
		die(argv[0]);
	}
	return pid;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int open_in(const char *path, int null)
{
	int fd;

	if (!path)
		fd = fcntl(null, F_DUPFD_CLOEXEC, 3);
	else
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(path ? path : "/dev/null");
	return fd;
}
static void prepare(struct row *r, int null)
{
	int st;
	pid_t pid;

	if (!r->prep.n)
		return;
	pid = spawn(r->prep.v, r->env.v, null, null, 2);
	if (waitpid(pid, &st, 0) < 0)
		die("waitpid");
	if (st) {
		fprintf(stderr, "runner: the prepare command of '%s' failed (status %d)\n",
			r->name, st);
		exit(1);
	}
}

/* one timed run of r: its line, or nothing during warm-up */
static void run_row(FILE *out, struct row *r, size_t idx, long round, int null)
{
	struct rusage ru;
	int64_t t0, t1, user = 0, sys = 0, minflt = 0;
	int fd0, p[2] = { -1, -1 }, st, status = 0;
	pid_t pid;

	prepare(r, null);
	fd0 = open_in(r->step[0].in, null);
	if (r->nsteps == 2) {
		if (pipe2(p, O_CLOEXEC) < 0)
			die("pipe");
		if (r->prefix && write(p[1], r->prefix, strlen(r->prefix)) < 0)
			die("write");
	}
	t0 = now_ns();
	for (int s = 0; s < r->nsteps; s++) {
		int in = s ? p[0] : fd0, o = s == 0 && r->nsteps == 2 ? p[1] : null;

		pid = spawn(r->step[s].argv.v, r->env.v, in, o, null);
		if (s == 0 && r->nsteps == 2) {
			close(p[1]);	/* the second step sees EOF after the first's output */
			p[1] = -1;
		}
		if (wait4(pid, &st, 0, &ru) < 0)
			die("wait4");
		user += (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec;
		sys += (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
		minflt += ru.ru_minflt;
		if (st && !status)
			status = st;
	}
	t1 = now_ns();
	close(fd0);
	if (p[0] >= 0)
		close(p[0]);
	if (round >= 0)
		fprintf(out, "%zu %ld %lld %lld %lld %lld %d\n", idx, round, (long long)(t1 - t0),
			(long long)user, (long long)sys, (long long)minflt, status);
}

int main(int argc, char **argv)
{
	size_t n;
	struct row *rows;
	long rounds, warmup;
	FILE *out;
	int null;

	if (argc != 5) {
		fprintf(stderr, "usage: runner SPEC OUT ROUNDS WARMUP\n");
		return 2;
	}
	rows = parse(argv[1], &n);
	rounds = atol(argv[3]);
	warmup = atol(argv[4]);
	if (!n || rounds < 1 || warmup < 0) {
		fprintf(stderr, "runner: nothing to run\n");
		return 1;
	}
	if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
		die("/dev/null");
	if (!(out = fopen(argv[2], "w")))
		die(argv[2]);
	for (long r = -warmup; r < rounds; r++) {
		size_t start = (size_t)((r % (long)n + (long)n) % (long)n);

		for (size_t k = 0; k < n; k++) {
			size_t i = (start + k) % n;

			run_row(out, &rows[i], i, r < 0 ? -1 : r, null);
		}
	}
	if (fclose(out))
		die(argv[2]);
	return 0;
}
