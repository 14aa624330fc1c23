/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "helper/prompt.h"
#include "lib/common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

char *prompt_read_line(FILE *f)
{
	char *buf = xmalloc(SECRET_LINE_MAX + 2);
	size_t len;

	if (!fgets(buf, SECRET_LINE_MAX + 2, f)) {
		secret_freezero(buf, SECRET_LINE_MAX + 2);
		return NULL;
	}
	len = strlen(buf);
	if (len > SECRET_LINE_MAX) {
		secret_freezero(buf, SECRET_LINE_MAX + 2);
		gc_error(GCERR_INPUT, "secret longer than %d bytes refused", SECRET_LINE_MAX);
		return NULL;
	}
	/* the line's end only: a CR elsewhere is refused later, not eaten */
	if (len && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (len && buf[len - 1] == '\r')
		buf[--len] = '\0';
	return buf;
}

/*
 * The terminal as it was, for the signal handler: a signal at the prompt
 * puts echo back on before it takes its course (OpenBSD readpassphrase).
 */
static struct termios saved, quiet;
static volatile sig_atomic_t saved_fd = -1;
static const int caught[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGALRM, SIGTSTP,
			      SIGTTIN, SIGTTOU, SIGPIPE };
#define NCAUGHT (sizeof(caught) / sizeof(caught[0]))
static struct sigaction old_actions[NCAUGHT];

static void restore_and_reraise(int sig)
{
	struct sigaction ours;
	size_t i;

	if (saved_fd >= 0)
		tcsetattr(saved_fd, TCSAFLUSH, &saved);
	for (i = 0; i < NCAUGHT && caught[i] != sig; i++)
		;
	sigaction(sig, &old_actions[i], &ours);
	/* delivered when this handler returns: end, or stop until SIGCONT */
	raise(sig);
	if (sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
		sigset_t set;

		sigemptyset(&set);
		sigaddset(&set, sig);
		sigprocmask(SIG_UNBLOCK, &set, NULL);	/* stop now */
		sigaction(sig, &ours, NULL);		/* continued: prompt again */
		if (saved_fd >= 0)
			tcsetattr(saved_fd, TCSAFLUSH, &quiet);
	}
}

/*
 * A signal the caller ignored stays ignored, as shells leave it for the
 * commands they start (`cmd &` ignores SIGINT and SIGQUIT, nohup SIGHUP):
 * no handler for it, so it cannot end the prompt.
 */
static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = restore_and_reraise;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NCAUGHT; i++) {
		sigaction(caught[i], NULL, &old_actions[i]);
		if (old_actions[i].sa_handler != SIG_IGN)
			sigaction(caught[i], &sa, NULL);
	}
}

static void release_signals(void)
{
	for (size_t i = 0; i < NCAUGHT; i++)
		if (old_actions[i].sa_handler != SIG_IGN)
			sigaction(caught[i], &old_actions[i], NULL);
}

/* the terminal tty with echo off for one line; NULL on EOF or an oversize line */
static char *read_quietly(FILE *tty, const char *prompt)
{
	char *secret = NULL;

	fputs(prompt, tty);
	fflush(tty);
	if (tcgetattr(fileno(tty), &saved) == 0) {
		quiet = saved;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		saved_fd = fileno(tty);
		catch_signals();
		tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
		secret = prompt_read_line(tty);
		tcsetattr(fileno(tty), TCSAFLUSH, &saved);
		saved_fd = -1;
		release_signals();
		fputc('\n', tty);
	}
	return secret;
}

bool prompt_git_off(void)
{
	const char *v = getenv("GIT_TERMINAL_PROMPT");

	return v && (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") ||
		     !strcasecmp(v, "off"));
}

bool prompt_have_terminal(void)
{
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

char *prompt_terminal(const char *prompt)
{
	char *secret;
	FILE *tty;

	if (!(tty = fopen("/dev/tty", "r+e")))
		return NULL;
	secret = read_quietly(tty, prompt);
	fclose(tty);
	return secret;
}

char *prompt_secret(const char *prompt)
{
	char *secret;
	FILE *tty;

	if (!isatty(STDIN_FILENO) || !(tty = fopen("/dev/tty", "r+")))
		return prompt_read_line(stdin);
	secret = read_quietly(tty, prompt);
	fclose(tty);
	return secret;
}

/* ---- the prompt service of modules ------------------------------------- */

static long long monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put(int fd, const char *s)
{
	size_t n = strlen(s);

	while (n) {
		ssize_t w = write(fd, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* one line of the terminal fd before deadline; new string or NULL */
static char *tty_line(int fd, long long deadline)
{
	size_t cap = SECRET_LINE_MAX + 2, len = 0;
	char *buf = xmalloc(cap);

	while (len < cap - 1 && !memchr(buf, '\n', len)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long left = deadline - monotonic_ms();
		ssize_t r;

		if (left <= 0 || poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left) == 0)
			break;
		r = read(fd, buf + len, cap - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	if (!memchr(buf, '\n', len)) {
		secret_freezero(buf, cap);
		return NULL;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	return buf;
}

int prompt_tty(const char *text, bool secret, long long deadline, char **answer)
{
	char *line = NULL;
	int fd;

	if (answer)
		*answer = NULL;
	if (prompt_git_off() || (fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
		return -1;
	if (!secret) {
		put(fd, text);
		put(fd, "\n");
	} else if (tcgetattr(fd, &saved) == 0) {
		quiet = saved;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		put(fd, text);
		saved_fd = fd;
		catch_signals();
		tcsetattr(fd, TCSAFLUSH, &quiet);
		line = tty_line(fd, deadline);
		tcsetattr(fd, TCSAFLUSH, &saved);
		saved_fd = -1;
		release_signals();
		put(fd, "\n");
	}
	close(fd);
	if (secret && !line)
		return -1;
	if (answer)
		*answer = line;
	return 0;
}
