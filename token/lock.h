/* SPDX-License-Identifier: MIT */
/*
 * Serialisation between processes (galileo-credential(1) TOKEN LIFETIME), with
 * flock(2) on files in a directory only the user can own:
 * $XDG_RUNTIME_DIR/galileo-credential, else /run/user/UID/galileo-credential
 * when that is the user's, else the user's cache directory (lib/privdir.h);
 * never a fixed name in /tmp.  A directory that fails the checks is not
 * used: taking a lock then fails, closed.  The kernel releases a lock when
 * its holder exits, even by SIGKILL.
 *
 * Single flight: at most one process per (server, organization) exchanges
 * at a time; the others wait for it and then read its token from the
 * cache.
 *
 * Writes: the stores, erases and token write-backs of one server take the
 * server's write lock.  What makes a store or erase final for a refresh
 * that holds no common lock with it (another runtime directory) is the
 * write generation (token/generation.h), not the lock.
 */
#ifndef GC_LOCK_H
#define GC_LOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Take the exchange lock for (server, organization), waiting at most
 * timeout seconds (0: not at all).  *fd is the lock to give to
 * lock_release().  GCERR_NETWORK when the wait timed out; GCERR_FAIL with
 * a message when the lock directory is not safe to lock in.
 */
int flight_lock(const char *server, const char *organization, long timeout, int *fd);

/* The write lock of server, as flight_lock; GCERR_KEYSTORE on timeout. */
int write_lock(const char *server, long timeout, int *fd);

void lock_release(int fd);

/*
 * The outcome of the last background refresh of (server, organization),
 * kept in the lock directory: its error and why it failed (one line, no
 * secret), or failure NULL once a refresh succeeded.  A store or erase of
 * the server voids every note.
 */
void flight_note(const char *server, const char *organization, int err, const char *failure);

struct flight_failure {
	int err;		/* GCERR_* */
	long age;		/* seconds since it was noted */
	char message[512];
};
/* the failure noted, if any */
bool flight_note_read(const char *server, const char *organization, struct flight_failure *out);

/* the lock directory, as a new string */
char *flight_dir(void);

#endif
