/* SPDX-License-Identifier: MIT */
/*
 * Directories only the user can own (galileo-credential(1) TOKEN LIFETIME):
 * where the locks and the file tier's tokens live.  As ssh checks its
 * ControlPath and key directories: ours, mode 0700, reached without a
 * symbolic link, in a parent nobody else can write (or a sticky one).
 */
#ifndef GC_PRIVDIR_H
#define GC_PRIVDIR_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * uid may own what the program trusts (its configuration, its modules,
 * the directories above them): the user or root.  In a user namespace
 * that does not map root (rootless podman runs credential helpers in
 * one), root shows as the overflow uid; it is taken for root there, as
 * the namespace cannot tell root from another unmapped user.
 */
bool privdir_owner_trusted(uid_t uid);

/*
 * dir made (mode 0700) when missing, parent included when mkparent, then
 * opened and checked.  A descriptor (O_DIRECTORY, close-on-exec), or -1
 * with *why saying what is wrong with it (a static string or strerror).
 */
int privdir_open(const char *dir, int mkparent, const char **why);

/*
 * The user's cache directory for the program: $XDG_CACHE_HOME (when
 * absolute) or $HOME/.cache, then "/galileo-credential".  New string, or
 * NULL when there is no home to put it in.
 */
char *privdir_cache(void);

#endif
