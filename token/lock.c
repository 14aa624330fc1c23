/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "token/lock.h"
#include "token/generation.h"
#include "lib/codec.h"
#include "lib/common.h"
#include "lib/privdir.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/*
 * The lock directory, and whether a missing parent may be made: the
 * runtime directory when there is one, else the user's /run/user/UID,
 * else the user's cache directory.  Never a fixed name in /tmp, which
 * another user could make first.
 */
static char *lock_dir(int *mkparent)
{
	const char *rt = getenv("XDG_RUNTIME_DIR");
	char run[64];
	struct stat st;

	*mkparent = 0;
	if (rt && rt[0] == '/')
		return xasprintf("%s/galileo-credential", rt);
	snprintf(run, sizeof(run), "/run/user/%lu", (unsigned long)geteuid());
	if (lstat(run, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid())
		return xasprintf("%s/galileo-credential", run);
	*mkparent = 1;
	return privdir_cache();
}

char *flight_dir(void)
{
	int mkparent;
	char *dir = lock_dir(&mkparent);

	return dir ? dir : xstrdup("(no home directory)");
}

/* the lock directory, opened; -1 and *why when it is not ours alone */
static int open_lock_dir(const char **why)
{
	int mkparent, fd;
	char *dir = lock_dir(&mkparent);

	if (!dir) {
		*why = "there is no runtime or home directory";
		return -1;
	}
	fd = privdir_open(dir, mkparent, why);
	free(dir);
	return fd;
}

static void wake(int sig)
{
	(void)sig;
}

static double monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Block in flock until it is ours or timeout seconds have passed.  A
 * repeating timer interrupts the wait (no SA_RESTART) to look at the clock,
 * so a tick that fires early cannot leave us blocked for good.
 */
static int wait_lock(int fd, long timeout)
{
	struct sigaction sa, old;
	struct itimerval tick = { { 0, 100000 }, { 0, 100000 } }, off = { { 0, 0 }, { 0, 0 } };
	double deadline = monotonic() + (double)timeout;
	int ret = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wake;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, &old);
	setitimer(ITIMER_REAL, &tick, NULL);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			ret = GCERR_FAIL;
			break;
		}
		if (monotonic() >= deadline) {
			ret = GCERR_NETWORK;
			break;
		}
	}
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old, NULL);
	return ret;
}

/* the lock file for name in the private directory, or -1 with *why */
static int open_lock_file(const char *name, int flags, const char **why)
{
	int dfd, fd = -1;

	dfd = open_lock_dir(why);
	if (dfd < 0)
		return -1;
	fd = openat(dfd, name, flags | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		*why = strerror(errno);
	close(dfd);
	return fd;
}

/* "lock-FP" or "write-FP": the name gives neither server nor organization away */
static void lock_name(const char *kind, const char *server, const char *org, char name[40])
{
	char fp[17];

	codec_fingerprint(kind, server, org, fp);
	snprintf(name, 40, "%s-%s", kind, fp);
}

/* fail closed: unlocked, no single flight and no serialised writes */
static int unsafe_dir(const char *why)
{
	char *dir = flight_dir();

	gc_error(GCERR_FAIL, "cannot lock in '%s': %s; make it yours alone (chmod 700) or remove it",
		 dir, why ? why : "unknown error");
	free(dir);
	return GCERR_FAIL;
}

/*
 * take name's lock, waiting at most timeout; GCERR_NETWORK when it ran
 * out, GCERR_FAIL (with the message) when there is no safe place to lock
 */
static int take(const char *name, long timeout, int *out)
{
	const char *why = NULL;
	int fd, err = 0;

	*out = -1;
	fd = open_lock_file(name, O_RDWR | O_CREAT, &why);
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK && timeout <= 0) {
			err = GCERR_NETWORK;
		} else if (errno == EWOULDBLOCK) {
			gc_debug("another galileo-credential holds the lock; waiting");
			err = wait_lock(fd, timeout);
		} else {
			err = GCERR_FAIL;
			why = strerror(errno);
		}
	}
	if (err == GCERR_NETWORK) {
		close(fd);
		return err;
	}
	if (fd < 0 || err) {
		if (fd >= 0)
			close(fd);
		return unsafe_dir(why);
	}
	*out = fd;
	return 0;
}

int flight_lock(const char *server, const char *organization, long timeout, int *out)
{
	char name[40];
	int err;

	lock_name("lock", server, organization, name);
	if ((err = take(name, timeout, out)) == GCERR_NETWORK)
		return gc_error(GCERR_NETWORK,
				"timed out after %ld s waiting for another galileo-credential to refresh the token for '%s'",
				timeout, server);
	return err;
}

int write_lock(const char *server, long timeout, int *out)
{
	char name[40];
	int err;

	lock_name("write", server, "", name);
	if ((err = take(name, timeout, out)) == GCERR_NETWORK)
		return gc_error(GCERR_KEYSTORE,
				"timed out after %ld s waiting for another galileo-credential to finish writing the credential for '%s'",
				timeout, server);
	return err;
}

void lock_release(int fd)
{
	if (fd >= 0)
		close(fd);	/* closing drops the flock */
}

void flight_note(const char *server, const char *organization, int err, const char *failure)
{
	const char *why = NULL;
	char name[40], *text;
	size_t n;
	int fd;

	lock_name("fail", server, organization, name);
	if (!failure) {
		if ((fd = open_lock_dir(&why)) >= 0) {
			unlinkat(fd, name, 0);
			close(fd);
		}
		return;
	}
	fd = open_lock_file(name, O_WRONLY | O_CREAT | O_TRUNC, &why);
	if (fd < 0)
		return;
	/* a note is about the credential stored now: a store or erase voids it */
	text = xasprintf("%020llu %d %s", (unsigned long long)generation_current(server), -err,
			 failure);
	n = strlen(text);
	if (write(fd, text, n) != (ssize_t)n)
		gc_debug("cannot note the failed refresh: %s", strerror(errno));
	free(text);
	close(fd);
}

bool flight_note_read(const char *server, const char *organization, struct flight_failure *out)
{
	const char *why = NULL;
	char name[40], buf[600], *msg;
	struct stat st;
	ssize_t n;
	int fd;

	lock_name("fail", server, organization, name);
	fd = open_lock_file(name, O_RDONLY, &why);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	if (fstat(fd, &st) < 0)
		st.st_mtime = 0;
	close(fd);
	if (n <= 23)
		return false;
	buf[n] = '\0';
	buf[strcspn(buf, "\n\r")] = '\0';
	if (strtoull(buf, &msg, 10) != generation_current(server))
		return false;
	out->err = -(int)strtol(msg, &msg, 10);
	out->age = (long)(time(NULL) - st.st_mtime);
	snprintf(out->message, sizeof(out->message), "%s", *msg == ' ' ? msg + 1 : msg);
	return true;
}
