#include "autoconfig.h"

#include "token/lock.h"
#include "lib/codec.h"
#include "lib/common.h"

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

/* the lock file for name in the private directory, or -1 with *why */
static int open_lock_file(const char *name, int flags, const char **why)
{
	char *dir = flight_dir();
	int dfd, fd = -1;

	dfd = open_private_dir(dir, why);
	free(dir);
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

static void unsafe_dir_warning(const char *why)
{
	static int warned;
	char *dir;

	if (warned++)
		return;
	dir = flight_dir();
	fprintf(stderr, "galileo-credential: warning: cannot lock in '%s': %s; going on without the lock\n",
		dir, why ? why : "unknown error");
	free(dir);
}

/* take name's lock, waiting at most timeout; GCERR_NETWORK when it ran out */
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
		unsafe_dir_warning(why);
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	*out = fd;
	return 0;
}

int flight_lock(const char *server, const char *organization, long timeout, int *out)
{
	char name[40];

	lock_name("lock", server, organization, name);
	if (take(name, timeout, out) == GCERR_NETWORK)
		return gc_error(GCERR_NETWORK,
				"timed out after %ld s waiting for another galileo-credential to refresh the token for '%s'",
				timeout, server);
	return 0;
}

int write_lock(const char *server, long timeout, int *out)
{
	char name[40];

	lock_name("write", server, "", name);
	if (take(name, timeout, out) == GCERR_NETWORK)
		return gc_error(GCERR_KEYSTORE,
				"timed out after %ld s waiting for another galileo-credential to finish writing the credential for '%s'",
				timeout, server);
	return 0;
}

/* the generation in an open write-lock file; 0 when empty or unreadable */
static uint64_t read_generation(int fd)
{
	char buf[24];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	uint64_t v = 0;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	for (char *p = buf; *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (uint64_t)(*p - '0');
	return v;
}

uint64_t write_generation(const char *server)
{
	const char *why = NULL;
	char name[40];
	uint64_t v;
	int fd;

	lock_name("write", server, "", name);
	fd = open_lock_file(name, O_RDONLY, &why);
	if (fd < 0)
		return 0;
	v = read_generation(fd);
	close(fd);
	return v;
}

void write_generation_bump(int fd)
{
	char buf[24];

	if (fd < 0)
		return;
	/* fixed width: a reader never sees a shorter, torn number */
	snprintf(buf, sizeof(buf), "%020llu", (unsigned long long)(read_generation(fd) + 1));
	if (pwrite(fd, buf, 20, 0) != 20)
		gc_debug("cannot write the write generation: %s", strerror(errno));
}

void lock_release(int fd)
{
	if (fd >= 0)
		close(fd);	/* closing drops the flock */
}

void flight_note(const char *server, const char *organization, int err, const char *failure)
{
	const char *why = NULL;
	char name[40], *dir, *text;
	size_t n;
	int fd;

	lock_name("fail", server, organization, name);
	if (!failure) {
		dir = flight_dir();
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			unlinkat(fd, name, 0);
			close(fd);
		}
		free(dir);
		return;
	}
	fd = open_lock_file(name, O_WRONLY | O_CREAT | O_TRUNC, &why);
	if (fd < 0)
		return;
	/* a note is about the credential stored now: a store or erase voids it */
	text = xasprintf("%020llu %d %s", (unsigned long long)write_generation(server), -err, failure);
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
	if (strtoull(buf, &msg, 10) != write_generation(server))
		return false;
	out->err = -(int)strtol(msg, &msg, 10);
	out->age = (long)(time(NULL) - st.st_mtime);
	snprintf(out->message, sizeof(out->message), "%s", *msg == ' ' ? msg + 1 : msg);
	return true;
}
