/*
 * Single flight (CONTRACT section 8): at most one process per (server,
 * organization) exchanges at a time; the others wait for it and then read
 * its token from the cache.  An flock(2) on a file in a private directory
 * ($XDG_RUNTIME_DIR/galileo-credential, else /tmp/galileo-credential-UID):
 * the kernel releases it when its holder exits, even by SIGKILL.
 */
#ifndef GC_LOCK_H
#define GC_LOCK_H

/*
 * Take the lock for (server, organization), waiting at most timeout
 * seconds.  *fd is the lock to give to flight_unlock(), or -1 when the
 * directory is not safe to lock in (one warning line; the call goes on
 * unlocked).  GCERR_NETWORK when the wait timed out.
 */
int flight_lock(const char *server, const char *organization, long timeout, int *fd);
void flight_unlock(int fd);

/* the lock directory, as a new string */
char *flight_dir(void);

#endif
