/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "lib/privdir.h"
#include "lib/common.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* the uid unmapped ids show as, in a user namespace other than the first; else -1 */
static long overflow_uid(void)
{
	static long uid = -2;
	char buf[128];
	unsigned long inside, outside, count;
	FILE *f;

	if (uid != -2)
		return uid;
	uid = -1;
	/* the first namespace maps every id: "0 0 4294967295" */
	if ((f = fopen("/proc/self/uid_map", "re"))) {
		if (fscanf(f, "%lu %lu %lu", &inside, &outside, &count) == 3 && count < 4294967295UL)
			uid = 65534;
		fclose(f);
	}
	if (uid >= 0 && (f = fopen("/proc/sys/kernel/overflowuid", "re"))) {
		if (!fgets(buf, sizeof(buf), f) || (uid = strtol(buf, NULL, 10)) < 0)
			uid = 65534;
		fclose(f);
	}
	return uid;
}

bool privdir_owner_trusted(uid_t uid)
{
	return uid == geteuid() || uid == 0 || (long)uid == overflow_uid();
}

/* owned by the user or root, and nobody else may replace an entry in it */
static const char *parent_problem(const char *parent, int mkparent)
{
	struct stat st;

	if (mkparent && mkdir(parent, 0700) < 0 && errno != EEXIST)
		return strerror(errno);
	if (stat(parent, &st) < 0)
		return strerror(errno);
	if (!privdir_owner_trusted(st.st_uid) ||
	    ((st.st_mode & 022) && !(st.st_mode & S_ISVTX)))
		return "its parent directory can be written by other users";
	return NULL;
}

int privdir_open(const char *dir, int mkparent, const char **why)
{
	const char *slash = strrchr(dir, '/');
	char *parent;
	struct stat st;
	int fd;

	if (dir[0] != '/' || !slash[1]) {
		*why = "not an absolute path";
		return -1;
	}
	parent = slash == dir ? xstrdup("/") : xstrndup(dir, (size_t)(slash - dir));
	*why = parent_problem(parent, mkparent);
	free(parent);
	if (*why)
		return -1;
	if ((mkdir(dir, 0700) < 0 && errno != EEXIST) ||
	    (fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
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

char *privdir_cache(void)
{
	const char *cache = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	struct passwd *pw;

	if (cache && cache[0] == '/')
		return xasprintf("%s/galileo-credential", cache);
	if ((!home || home[0] != '/') && (pw = getpwuid(geteuid())))
		home = pw->pw_dir;
	if (!home || home[0] != '/')
		return NULL;
	return xasprintf("%s/.cache/galileo-credential", home);
}
