/* SPDX-License-Identifier: MIT */
/*
 * The benchmark's prepare step for "the first call inside the margin":
 * waits until no galileo-credential refresh holds an exchange lock and no
 * `galileo-credential refresh-ahead SERVER` process is left (the detached
 * refresh a previous run started, which still tears down after it let go
 * of the lock), then rewrites the EXPIRES field
 * of a cached token's kernel key so that it has SECONDS left: inside the
 * refresh margin for a small SECONDS, fresh for a large one.  The payload
 * ("gc2 EXPIRES LIFETIME FINGERPRINT GENERATION CONTEXT TOKEN",
 * token/cache.h) keeps every other field; the key (token/tier_keyctl.c)
 * keeps its serial, permissions and kernel timeout (keyctl_update).  Prints
 * nothing: the payload holds a secret.
 *
 *     agekey LOCKDIR DESCRIPTION SECONDS
 *     agekey LOCKDIR - SERVER     (only wait, for SERVER's refreshes)
 *
 * LOCKDIR is $XDG_RUNTIME_DIR/galileo-credential (token/lock.c); its
 * lock-* files are the exchange locks.  SERVER is read from DESCRIPTION
 * (galileo-credential:token:CONTEXT:SERVER#ORG).  Exit 0, or 1 (key missing,
 * payload not in that format, a lock or a refresh still there after 30 s).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <keyutils.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD_MAX 16384
#define TOKEN_PREFIX "galileo-credential:token:"
#define FIELDS 7
#define CONTEXT_LEN 16

static void nothing(int sig)
{
	(void)sig;
}

/* 0 when every lock-* file in dir could be taken (and was let go) */
static int wait_locks(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct sigaction sa;
	int fd, err = 0;

	if (!d)
		return 0;	/* no lock was ever taken */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = nothing;	/* no SA_RESTART: the alarm ends flock */
	sigaction(SIGALRM, &sa, NULL);
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "lock-", 5))
			continue;
		if ((fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		alarm(30);
		if (flock(fd, LOCK_EX) < 0)
			err = 1;
		alarm(0);
		close(fd);
	}
	closedir(d);
	return err;
}

/* whether a process runs `... refresh-ahead SERVER ...` (its argv[1] and [2]) */
static int refreshing(const char *server)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	char path[300], cmd[4096];
	int found = 0;

	if (!d)
		return 0;
	while (!found && (e = readdir(d))) {
		FILE *f;
		size_t n;
		char *a1, *a2;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		if (!(f = fopen(path, "re")))
			continue;
		n = fread(cmd, 1, sizeof(cmd) - 1, f);
		fclose(f);
		cmd[n] = '\0';
		a1 = memchr(cmd, '\0', n);
		if (!a1 || ++a1 >= cmd + n || strcmp(a1, "refresh-ahead"))
			continue;
		a2 = a1 + strlen(a1) + 1;
		found = a2 < cmd + n && !strcmp(a2, server);
	}
	closedir(d);
	return found;
}

static int wait_refreshes(const char *server)
{
	struct timespec tick = { 0, 1000000 };

	for (int i = 0; i < 30000; i++) {
		if (!refreshing(server))
			return 0;
		nanosleep(&tick, NULL);
	}
	return 1;
}

int main(int argc, char **argv)
{
	char buf[PAYLOAD_MAX + 1], out[PAYLOAD_MAX + 64], *f[FIELDS], *p;
	long id, n, left;
	int i, len;

	char server[4096];
	const char *s, *hash;

	if (argc != 4)
		return 2;
	if (!strcmp(argv[2], "-")) {
		snprintf(server, sizeof(server), "%s", argv[3]);
	} else {
		s = argv[2] + strlen(TOKEN_PREFIX) + CONTEXT_LEN + 1;
		hash = strrchr(argv[2], '#');
		if (strncmp(argv[2], TOKEN_PREFIX, strlen(TOKEN_PREFIX)) ||
		    strlen(argv[2]) < strlen(TOKEN_PREFIX) + CONTEXT_LEN + 1 || !hash || hash < s)
			return 2;
		snprintf(server, sizeof(server), "%.*s", (int)(hash - s), s);
	}
	left = atol(argv[3]);
	if (wait_locks(argv[1]) || wait_refreshes(server))
		return 1;
	if (!strcmp(argv[2], "-"))
		return 0;
	id = keyctl_search(KEY_SPEC_USER_KEYRING, "user", argv[2], 0);
	if (id < 0 || (n = keyctl_read((key_serial_t)id, buf, PAYLOAD_MAX)) < 0 || n > PAYLOAD_MAX)
		return 1;
	buf[n] = '\0';
	for (p = buf, i = 0; i < FIELDS; i++) {
		f[i] = p;
		if (i < FIELDS - 1) {
			if (!(p = strchr(p, ' ')))
				return 1;
			*p++ = '\0';
		}
	}
	if (strcmp(f[0], "gc2"))
		return 1;
	len = snprintf(out, sizeof(out), "gc2 %" PRId64 " %s %s %s %s %s",
		       (int64_t)time(NULL) + left, f[2], f[3], f[4], f[5], f[6]);
	if (len < 0 || len >= (int)sizeof(out))
		return 1;
	i = keyctl_update((key_serial_t)id, out, (size_t)len) < 0;
	explicit_bzero(buf, sizeof(buf));
	explicit_bzero(out, sizeof(out));
	return i;
}
