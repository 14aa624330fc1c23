#include "autoconfig.h"

#include "helper/prompt.h"
#include "lib/common.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
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
