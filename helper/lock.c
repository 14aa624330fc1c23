#include "autoconfig.h"

#include "helper/lock.h"
#include "helper/codec.h"
#include "helper/common.h"

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

char *flight_dir(void)
{
	const char *rt = getenv("XDG_RUNTIME_DIR");

	if (rt && *rt)
		return xasprintf("%s/galileo-credential", rt);
	return xasprintf("/tmp/galileo-credential-%lu", (unsigned long)geteuid());
}

/*
 * The directory, made if missing, opened; -1 and *why when it is not ours
 * alone (as ssh checks its ControlPath and key directories).
 */
static int open_private_dir(const char *dir, const char **why)
{
	struct stat st;
	int fd;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		*why = strerror(errno);
		return -1;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		*why = strerror(errno);
		return -1;
	}
	if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 077)) {
		*why = "it is not private (another owner, or open to group or others)";
		close(fd);
		return -1;
	}
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

int flight_lock(const char *server, const char *organization, long timeout, int *out)
{
	char *dir = flight_dir();
	char fp[17], name[sizeof("lock-") + 16];
	const char *why = NULL;
	int dfd, fd = -1, err = 0;

	*out = -1;
	dfd = open_private_dir(dir, &why);
	if (dfd >= 0) {
		/* one file per (server, organization); its name gives neither away */
		codec_fingerprint("lock", server, organization, fp);
		snprintf(name, sizeof(name), "lock-%s", fp);
		fd = openat(dfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			why = strerror(errno);
		close(dfd);
	}
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			gc_debug("another galileo-credential is refreshing the token; waiting");
			err = wait_lock(fd, timeout);
		} else {
			err = GCERR_FAIL;
			why = strerror(errno);
		}
	}
	if (err == GCERR_NETWORK) {
		close(fd);
		err = gc_error(GCERR_NETWORK,
			       "timed out after %ld s waiting for another galileo-credential to refresh the token for '%s'",
			       timeout, server);
		free(dir);
		return err;
	}
	if (fd < 0 || err) {
		fprintf(stderr, "galileo-credential: warning: cannot lock in '%s': %s; refreshing without the lock\n",
			dir, why ? why : "unknown error");
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	free(dir);
	*out = fd;
	return 0;
}

void flight_unlock(int fd)
{
	if (fd >= 0)
		close(fd);	/* closing drops the flock */
}
