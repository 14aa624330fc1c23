/* SPDX-License-Identifier: MIT */
/*
 * What is stored and why things are as they are, for a person: status
 * (galileo-credential(1) COMMANDS) and doctor (KEYSTORE STACK).  Never a
 * secret; text that came from stored data is escaped.
 */
#ifndef GC_STATUS_H
#define GC_STATUS_H

#include "helper/session.h"

#include <stdbool.h>

/*
 * Every stored server (only s->server when only_server), with its kind,
 * username, backend, default organization and cached tokens; the env key's
 * server too.  GCERR_NOTFOUND when there is nothing to show.
 */
int status_print(struct session *s, bool only_server, bool json);

/*
 * The config file, the home server, each backend of the stack with its
 * status and reason, the token tier, the lock directory; then whether a
 * token can be served for s->server (0), else that error.
 */
int doctor_print(struct session *s);

/* "in 23 h 59 min", "in 4 min", "in 12 s", "expired", into buf */
void status_time_left(int64_t seconds, char *buf, size_t len);

#endif
