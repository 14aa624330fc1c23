/* SPDX-License-Identifier: MIT */
/*
 * Directories only the user can own (galileo-credential(1) TOKEN LIFETIME):
 * where the locks and the file tier's tokens live.  As ssh checks its
 * ControlPath and key directories: ours, mode 0700, reached without a
 * symbolic link, in a parent nobody else can write (or a sticky one).
 */
#ifndef GC_PRIVDIR_H
#define GC_PRIVDIR_H

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
