/* SPDX-License-Identifier: MIT */
/* Token lifetime arithmetic (galileo-credential(1) TOKEN LIFETIME). */
#ifndef GC_TOKENTIME_H
#define GC_TOKENTIME_H

#include <stdbool.h>
#include <stdint.h>

/*
 * RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac][Z|+hh:mm|-hh:mm]; 't' and
 * ' ' accepted for 'T', 'z' for 'Z'.  No offset means UTC.  Fractional
 * seconds are truncated.  Returns 0 and *epoch, or GCERR_FAIL.
 */
int tokentime_parse_rfc3339(const char *s, int64_t *epoch);

/* HTTP Date header (IMF-fixdate, RFC 850, asctime).  0 or GCERR_FAIL. */
int tokentime_parse_http_date(const char *s, int64_t *epoch);

/*
 * The numeric "exp" claim of a JWT (payload base64url-decoded, parsed with
 * jansson).  No signature check: only used to learn a lifetime.  0 or
 * GCERR_FAIL.
 */
int tokentime_jwt_exp(const char *jwt, int64_t *exp);

/*
 * s is a JWT: three base64url segments, the first a JSON object naming
 * "alg" (galileo-credential(1) GIT DIALECT: an access token, never an API key).
 */
bool tokentime_is_jwt(const char *s);

/* how far (seconds) a Date header may be from the local clock and still be believed */
#define TOKENTIME_DATE_TRUST 3600

/*
 * A server's Date (server_date < 0: none) is believed: at most
 * TOKENTIME_DATE_TRUST seconds from now, either way.
 */
bool tokentime_date_believed(int64_t server_date, int64_t now);

/*
 * Expiry on the local clock.  When the server's Date is believed, the
 * lifetime is taken relative to it: now + (expires_at - server_date).
 * Otherwise (no Date header, server_date < 0, or one more than an hour
 * off) the server's expires_at is used as is, on the local clock.
 */
int64_t tokentime_local_expiry(int64_t expires_at, int64_t server_date, int64_t now);

/*
 * Fresh: now < expires - min(margin, lifetime / 2), where lifetime is the
 * token's lifetime when it was received (expires - received).  Never fresh
 * at or after expires.
 */
bool tokentime_is_fresh(int64_t now, int64_t expires, int64_t lifetime, long margin);

/* RFC 3339 UTC "YYYY-MM-DDTHH:MM:SSZ" into buf (at least 21 bytes) */
void tokentime_format(int64_t epoch, char buf[static 21]);

#endif
