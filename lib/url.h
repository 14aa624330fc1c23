/* SPDX-License-Identifier: MIT */
/*
 * Server URL canonicalisation (galileo-credential(1) KEYSTORES, SERVER AND
 * ORGANIZATION).
 */
#ifndef GC_URL_H
#define GC_URL_H

#include <stdbool.h>

/*
 * Canonical form: scheme://host[:port][/prefix] with lower-case scheme and
 * host, the default port (443 https, 80 http) dropped, no trailing slash,
 * no userinfo, query or fragment.  A value without "://" is taken as https
 * (docker passes bare host names).  https only; http only for loopback
 * hosts (localhost, 127.0.0.0/8, [::1]).  IPv6 literals keep brackets.
 * Returns 0 and *out (new string, caller frees) or GCERR_INPUT with a
 * gc_error() message naming the URL.
 */
int url_canonicalize(const char *in, char **out);

/*
 * GALILEO_CONSOLE_URL to API server, as the Galileo SDKs map it: host
 * app.galileo.ai becomes api.galileo.ai, otherwise the first "console" in
 * the host becomes "api".  Result canonical; caller frees.  GCERR_INPUT on
 * a refused URL.
 */
int url_from_console(const char *console, char **out);

/* git's protocol= + host= (host may carry :port); result canonical. */
int url_from_git(const char *protocol, const char *host, char **out);

/*
 * "scheme://host[:port]" of a URL: userinfo, path, query and fragment
 * dropped, nothing checked (canonicalise it next).  New string, or NULL
 * when url has no "://".
 */
char *url_origin(const char *url);

/* RFC 4122 textual UUID (8-4-4-4-12 hex digits, any case) */
bool url_is_uuid(const char *s);

/* true for localhost, 127.0.0.0/8 and [::1] (host as in a URL, lower case) */
bool url_host_is_loopback(const char *host);

/*
 * Percent-encode s for a query value (unreserved characters kept).
 * New string, caller frees.
 */
char *url_escape(const char *s);

#endif
