#include "autoconfig.h"

#include "lib/privdir.h"
#include "lib/common.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* owned by the user or root, and nobody else may replace an entry in it */
static int parent_safe(const struct stat *st)
{
	if (st->st_uid != geteuid() && st->st_uid != 0)
		return 0;
	return !(st->st_mode & 022) || (st->st_mode & S_ISVTX);
}

int privdir_open(const char *dir, int mkparent, const char **why)
{
	char *parent = xstrdup(dir), *slash = strrchr(parent, '/');
	struct stat st;
	int fd = -1;

	*why = "not an absolute path";
	if (dir[0] != '/' || !slash)
		goto out;
	*slash = '\0';
	if (mkparent && mkdir(*parent ? parent : "/", 0700) < 0 && errno != EEXIST)
		goto fail;
	if (stat(*parent ? parent : "/", &st) < 0)
		goto fail;
	*why = "its parent directory can be written by other users";
	if (!parent_safe(&st))
		goto out;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		goto fail;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		goto fail;
	*why = "it is not private (another owner, or open to group or others)";
	if (fstat(fd, &st) == 0 && st.st_uid == geteuid() && !(st.st_mode & 077))
		*why = NULL;
	else {
		close(fd);
		fd = -1;
	}
	goto out;
fail:
	*why = strerror(errno);
out:
	free(parent);
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
