/*
 * Serialisation between processes (galileo-credential(1) TOKEN LIFETIME), with
 * flock(2) on files in a private directory
 * ($XDG_RUNTIME_DIR/galileo-credential, else /tmp/galileo-credential-UID); the
 * kernel releases a lock when its holder exits, even by SIGKILL.
 *
 * Single flight: at most one process per (server, organization) exchanges
 * at a time; the others wait for it and then read its token from the
 * cache.
 *
 * Writes: the stores, erases and token write-backs of one server take the
 * server's write lock.  Its file holds the server's write generation,
 * bumped by every store and erase: a refresh notes the generation before
 * it reads the credential and writes its token back only if, under the
 * lock, the generation is still the same, so a token obtained with a
 * credential that was replaced or removed meanwhile is never cached.
 */
#ifndef GC_LOCK_H
#define GC_LOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Take the exchange lock for (server, organization), waiting at most
 * timeout seconds (0: not at all).  *fd is the lock to give to lock_release(), or -1 when
 * the directory is not safe to lock in (one warning line per process; the
 * call goes on unlocked).  GCERR_NETWORK when the wait timed out.
 */
int flight_lock(const char *server, const char *organization, long timeout, int *fd);

/* The write lock of server, as flight_lock; GCERR_KEYSTORE on timeout. */
int write_lock(const char *server, long timeout, int *fd);

/* server's write generation now (no lock needed); 0 when unknown */
uint64_t write_generation(const char *server);

/* under the write lock fd: the generation + 1 */
void write_generation_bump(int fd);

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
