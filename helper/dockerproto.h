/* SPDX-License-Identifier: MIT */
/*
 * docker credential-helper protocol codec (galileo-credential(1) DOCKER
 * DIALECT).
 */
#ifndef GC_DOCKERPROTO_H
#define GC_DOCKERPROTO_H

#include <stddef.h>
#include <stdio.h>

#define DOCKERPROTO_MAX_INPUT (1024 * 1024)

/*
 * store input: {"ServerURL":…,"Username":…,"Secret":…}.  All three must be
 * strings (Username may be empty: the caller decides); extra members are
 * ignored.  New strings, caller frees (secret with secret_free).
 * GCERR_INPUT on anything else.
 */
int dockerproto_parse_store(const char *buf, size_t len, char **server_url,
			    char **username, char **secret);

/*
 * get/erase input: the server URL, surrounding whitespace and the final
 * newline trimmed.  Empty, NUL or embedded newline is GCERR_INPUT.
 */
int dockerproto_parse_server(const char *buf, size_t len, char **server_url);

/*
 * {"ServerURL":…,"Username":…,"Secret":…}; new string, caller secret_free()s.
 * (added) NULL username is written as ""; NULL when a value is not valid
 * UTF-8, which JSON cannot carry.
 */
char *dockerproto_format_get(const char *server_url, const char *username,
			     const char *secret);

/*
 * {"server":"username",…} from parallel arrays; new string, caller frees.
 * (added) usernames or an element of it may be NULL (written as ""); NULL
 * on invalid UTF-8.
 */
char *dockerproto_format_list(char *const *servers, char *const *usernames, size_t n);

/*
 * All of in, at most DOCKERPROTO_MAX_INPUT bytes, NUL-terminated; *buf
 * transfer full: secret_freezero(*buf, *len) it, as it may hold a secret.
 */
int dockerproto_read(FILE *in, char **buf, size_t *len);

#endif
