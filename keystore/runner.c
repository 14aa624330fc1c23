/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "keystore/runner.h"
#include "lib/common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * The child runs in a process group of its own (a deadline kills all it
 * started), with default signal dispositions and an empty mask, stdin a
 * socket written with MSG_NOSIGNAL (so a child that stops reading cannot
 * raise SIGPIPE here), stdout, stderr and fd 3 pipes, and nothing else of
 * the program's descriptors.  Outputs grow by copying and wiping, since
 * they may hold a secret.  Nothing here exits or aborts: it runs inside a
 * module's call, where that would be blamed on the module.
 */

#define OUTPUT_DEFAULT_MAX (64 * 1024)
#define KILL_GRACE_MS 200	/* SIGTERM, then this long, then SIGKILL */

extern char **environ;

long long runner_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- outputs ------------------------------------------------------------ */

struct out {
	char *p;
	size_t len, cap, max;
	int cut;
};

static void out_add(struct out *b, const char *s, size_t n)
{
	size_t cap;
	char *np;

	if (b->len + n > b->max) {
		b->cut = 1;
		n = b->max - b->len;
	}
	if (b->len + n + 1 > b->cap) {
		for (cap = b->cap ? b->cap : 512; cap < b->len + n + 1; cap *= 2)
			;
		if (!(np = malloc(cap))) {
			b->cut = 1;
			return;
		}
		if (b->p) {
			memcpy(np, b->p, b->len);
			secret_freezero(b->p, b->cap);
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void out_free(struct out *b)
{
	secret_freezero(b->p, b->cap);
	memset(b, 0, sizeof(*b));
}

/* ---- finding the program ---------------------------------------------- */

static char *executable(const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0)
		return strdup(path);
	return NULL;
}

/*
 * name as execvp would find it, but never relative to the working
 * directory (git runs us inside the repository it works on): only
 * absolute paths and absolute PATH entries.  New string or NULL.
 */
static char *find_program(const char *name)
{
	const char *path = getenv("PATH"), *p;
	size_t n;

	if (strchr(name, '/'))
		return name[0] == '/' ? executable(name) : NULL;
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p; p += n + (p[n] == ':')) {
		char *full, *found;

		n = strcspn(p, ":");
		if (n == 0 || p[0] != '/')
			continue;
		if (!(full = malloc(n + strlen(name) + 2)))
			return NULL;
		memcpy(full, p, n);
		full[n] = '/';
		strcpy(full + n + 1, name);
		found = executable(full);
		free(full);
		if (found)
			return found;
	}
	return NULL;
}

/* the program's environment without GALILEO_* (GALILEO_API_KEY is a secret) */
static char **default_env(void)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ && environ[n])
		n++;
	if (!(env = calloc(n + 1, sizeof(*env))))
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "GALILEO_", 8))
			env[k++] = environ[i];	/* borrowed */
	return env;
}

/* ---- starting the child ------------------------------------------------ */

static int spawn(const char *file, char *const argv[], char *const envp[], int in_fd,
		 const int out[3], int nout, pid_t *pid)
{
	static const int reset[] = { SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD,
				     SIGALRM, SIGTSTP, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2 };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, dfl;
	int rc = 0;

	sigemptyset(&none);
	sigemptyset(&dfl);
	for (size_t i = 0; i < sizeof(reset) / sizeof(reset[0]); i++)
		sigaddset(&dfl, reset[i]);
	if (posix_spawn_file_actions_init(&fa))
		return -1;
	if (posix_spawnattr_init(&attr)) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	rc |= posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
				       POSIX_SPAWN_SETSIGDEF);
	rc |= posix_spawnattr_setpgroup(&attr, 0);
	rc |= posix_spawnattr_setsigmask(&attr, &none);
	rc |= posix_spawnattr_setsigdefault(&attr, &dfl);
	if (in_fd < 0)
		rc |= posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	else
		rc |= posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	/* dup2 onto the same number clears close-on-exec (glibc >= 2.29, musl) */
	for (int i = 0; i < nout; i++)
		rc |= posix_spawn_file_actions_adddup2(&fa, out[i], i + 1);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
	/* descriptors of the program without close-on-exec (its locks) stay ours */
	rc |= posix_spawn_file_actions_addclosefrom_np(&fa, nout + 1);
#endif
	if (!rc)
		rc = posix_spawn(pid, file, &fa, &attr, argv, envp);
	else
		rc = -1;
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return rc;	/* 0, an errno of the exec, or -1 */
}

/* ---- moving the data ---------------------------------------------------- */

struct job {
	const struct gc_run *r;
	struct out o[3];	/* stdout, stderr, fd 3 */
	long long deadline;
	int timed_out;
};

/* write what stdin still needs; the descriptor, or -1 once closed */
static int feed(struct job *j, int in, size_t *sent)
{
	ssize_t w = 0;

	if (*sent < j->r->input_len)
		w = send(in, j->r->input + *sent, j->r->input_len - *sent,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w > 0)
		*sent += (size_t)w;
	else if (w < 0 && (errno == EAGAIN || errno == EINTR))
		return in;
	if (w < 0 || *sent == j->r->input_len) {
		close(in);	/* end of input: a reader to EOF goes on */
		return -1;
	}
	return in;
}

/* read one chunk of fd into b; the descriptor, or -1 once closed */
static int drain(int fd, struct out *b)
{
	char chunk[4096];
	ssize_t r = read(fd, chunk, sizeof(chunk));

	if (r > 0) {
		out_add(b, chunk, (size_t)r);
		secret_wipe(chunk, (size_t)r);
		return fd;
	}
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return fd;
	close(fd);
	return -1;
}

/* move stdin and the outputs until all are closed or the time is up; closes fds */
static void pump(struct job *j, int in, int rd[3])
{
	size_t sent = 0;

	for (;;) {
		struct pollfd p[4];
		int slot[4], np = 0;
		long long left = j->deadline - runner_now_ms();

		if (in >= 0) {
			p[np] = (struct pollfd){ .fd = in, .events = POLLOUT };
			slot[np++] = 3;
		}
		for (int i = 0; i < 3; i++)
			if (rd[i] >= 0) {
				p[np] = (struct pollfd){ .fd = rd[i], .events = POLLIN };
				slot[np++] = i;
			}
		if (np == 0)
			return;
		if (left <= 0)
			break;
		if (poll(p, (nfds_t)np, left > INT_MAX ? INT_MAX : (int)left) < 0 && errno != EINTR)
			break;
		for (int k = 0; k < np; k++) {
			if (!p[k].revents)
				continue;
			if (slot[k] == 3)
				in = feed(j, in, &sent);
			else
				rd[slot[k]] = drain(rd[slot[k]], &j->o[slot[k]]);
		}
	}
	j->timed_out = 1;
	if (in >= 0)
		close(in);
	for (int i = 0; i < 3; i++)
		if (rd[i] >= 0)
			close(rd[i]);
}

/* 1 once pid has ended, its wait status in *st (-1: not known) */
static int ended(pid_t pid, int *st)
{
	pid_t r;

	do
		r = waitpid(pid, st, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		*st = -1;	/* SIGCHLD ignored by the program: reaped already */
	return r != 0;
}

/* wait for the child within the time left; past it, kill its whole group */
static int reap(struct job *j, pid_t pid)
{
	int st = -1, i;

	while (!j->timed_out && !ended(pid, &st)) {
		if (j->deadline - runner_now_ms() <= 0)
			j->timed_out = 1;
		else
			nap(5);
	}
	if (!j->timed_out)
		return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	/* SIGTERM first: gpg then removes the output file it was writing */
	kill(-pid, SIGTERM);
	for (i = 0; i < KILL_GRACE_MS / 5 && !ended(pid, &st); i++)
		nap(5);
	kill(-pid, SIGKILL);
	if (i == KILL_GRACE_MS / 5)
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	return -1;
}

static void close_pair(int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
	p[0] = p[1] = -1;
}

#define NOT_STARTED -2	/* no memory, no descriptors */
#define NOT_RUNNABLE -3	/* the exec itself failed */

/* pipes, the child, the data: its exit code, -1, or NOT_* */
static int start_and_wait(struct job *j, const char *file, char **envp)
{
	const struct gc_run *r = j->r;
	int pipes[3][2] = { { -1, -1 }, { -1, -1 }, { -1, -1 } }, sv[2] = { -1, -1 };
	int nout = r->want_fd3 ? 3 : 2, wr[3], rd[3] = { -1, -1, -1 }, rc = NOT_STARTED;
	pid_t pid;

	for (int i = 0; i < nout; i++)
		if (pipe2(pipes[i], O_CLOEXEC) || fcntl(pipes[i][0], F_SETFL, O_NONBLOCK))
			goto fail;
	if (r->input && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		goto fail;
	for (int i = 0; i < nout; i++)
		wr[i] = pipes[i][1];
	if ((rc = spawn(file, (char *const *)r->argv, envp, sv[1], wr, nout, &pid))) {
		rc = rc == ENOENT || rc == EACCES || rc == ENOEXEC || rc == ENOTDIR ?
		     NOT_RUNNABLE : NOT_STARTED;
		goto fail;
	}
	for (int i = 0; i < nout; i++) {
		close(pipes[i][1]);
		rd[i] = pipes[i][0];
		pipes[i][0] = pipes[i][1] = -1;
	}
	if (sv[1] >= 0)
		close(sv[1]);
	pump(j, sv[0], rd);
	return reap(j, pid);
fail:
	for (int i = 0; i < 3; i++)
		close_pair(pipes[i]);
	close_pair(sv);
	return rc;
}

static void take(struct out *o, char **p, size_t *len)
{
	*p = o->p;
	*len = o->len;
	memset(o, 0, sizeof(*o));
}

int runner_run(struct gc_run *r, long long deadline)
{
	struct job j = { .r = r };
	char **envp = NULL, *file = NULL;
	size_t max;
	int code;

	if (!r || r->size < sizeof(struct gc_run) || !r->argv || !r->argv[0])
		return GC_STATUS_ERROR;
	max = r->max_output ? r->max_output : OUTPUT_DEFAULT_MAX;
	r->output = r->errors = r->fd3 = NULL;
	r->output_len = r->errors_len = r->fd3_len = 0;
	r->exit_code = -1;
	r->timed_out = r->truncated = 0;
	if (!(file = find_program(r->argv[0])))
		return GC_STATUS_UNAVAILABLE;
	if (!(envp = r->envp ? (char **)r->envp : default_env())) {
		free(file);
		return GC_STATUS_ERROR;
	}
	j.deadline = deadline;
	if (r->timeout_ms > 0 && runner_now_ms() + r->timeout_ms < deadline)
		j.deadline = runner_now_ms() + r->timeout_ms;
	for (int i = 0; i < 3; i++)
		j.o[i].max = max;
	code = start_and_wait(&j, file, envp);
	if (envp != (char **)r->envp)
		free(envp);
	free(file);
	if (code == NOT_STARTED || code == NOT_RUNNABLE) {
		for (int i = 0; i < 3; i++)
			out_free(&j.o[i]);
		return code == NOT_RUNNABLE ? GC_STATUS_UNAVAILABLE : GC_STATUS_ERROR;
	}
	r->exit_code = code;
	r->timed_out = j.timed_out;
	r->truncated = j.o[0].cut || j.o[1].cut || j.o[2].cut;
	take(&j.o[0], &r->output, &r->output_len);
	take(&j.o[1], &r->errors, &r->errors_len);
	take(&j.o[2], &r->fd3, &r->fd3_len);
	return GC_STATUS_SUCCESS;
}

void runner_release(struct gc_run *r)
{
	if (!r || r->size < sizeof(struct gc_run))
		return;
	secret_freezero(r->output, r->output_len);
	secret_freezero(r->errors, r->errors_len);
	secret_freezero(r->fd3, r->fd3_len);
	r->output = r->errors = r->fd3 = NULL;
	r->output_len = r->errors_len = r->fd3_len = 0;
}
