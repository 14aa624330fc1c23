/* SPDX-License-Identifier: MIT */
/*
 * The write generation of a server (galileo-credential(1) TOKEN LIFETIME):
 * a new value at every store and erase, carried by every token cached, and
 * a cached token is served only while it carries the current one, so that
 * after a logout or a new login no token of the old credential is handed
 * out again, even one a refresh in flight wrote back afterwards.
 *
 * It lives with the cache, never in a directory the caller's environment
 * chooses: in the kernel user keyring, or where the kernel refuses keyctl,
 * in the user's private cache directory (token/tier_file.c).  Every process
 * of the user sees the same one, whatever its runtime directory.
 */
#ifndef GC_GENERATION_H
#define GC_GENERATION_H

#include <stdint.h>

/* server's generation now; 0 when it never changed (or was lost with the tokens) */
uint64_t generation_current(const char *server);

/*
 * A new, random generation for server (under its write lock): 0, or
 * GCERR_* with a message when it cannot be kept.
 */
int generation_bump(const char *server);

#endif
