/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "lib/url.h"
#include "lib/common.h"

#include <stdlib.h>
#include <string.h>

/* far longer than any real server URL; keeps messages and keys bounded */
#define URL_MAX 2048

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static char to_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* one decimal octet of a dotted quad: 0..255, no leading zero */
static const char *parse_octet(const char *p)
{
	int v = 0, n = 0;

	if (p[0] == '0' && is_digit(p[1]))
		return NULL;	/* inet_aton would read it as octal */
	while (is_digit(*p) && n < 3) {
		v = v * 10 + (*p++ - '0');
		n++;
	}
	return (n && v <= 255) ? p : NULL;
}

bool url_host_is_loopback(const char *host)
{
	const char *p;
	int i;

	if (!host)
		return false;
	if (!strcmp(host, "localhost") || !strcmp(host, "[::1]"))
		return true;
	if (strncmp(host, "127.", 4))
		return false;
	p = host + 4;
	for (i = 0; i < 3; i++) {
		p = parse_octet(p);
		if (!p)
			return false;
		if (i < 2 && *p++ != '.')
			return false;
	}
	return *p == '\0';
}

static bool host_char_ok(char c)
{
	return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_';
}

/*
 * Parse "host[:port]" (len bytes at a) into a lower-case host and a port
 * (0 when absent).  Returns a reason on failure, NULL on success.
 */
static const char *parse_authority(const char *a, size_t len, char *host,
				   long *port)
{
	size_t hlen, i;
	const char *colon = NULL;

	*port = 0;
	if (len == 0)
		return "no host";
	if (a[0] == '[') {
		const char *end = memchr(a, ']', len);

		if (!end || end == a + 1)
			return "bad IPv6 address";
		for (i = 1; a + i < end; i++)
			if (!is_hex(a[i]) && a[i] != ':' && a[i] != '.')
				return "bad IPv6 address";
		hlen = (size_t)(end - a) + 1;
		if (hlen < len) {
			if (a[hlen] != ':')
				return "bad IPv6 address";
			colon = a + hlen;
		}
	} else {
		colon = memchr(a, ':', len);
		hlen = colon ? (size_t)(colon - a) : len;
		if (hlen == 0)
			return "no host";
		for (i = 0; i < hlen; i++) {
			if (!host_char_ok(a[i]))
				return "bad character in host";
			/* empty labels: ".x", "x..y", "x." */
			if (a[i] == '.' && (i == 0 || i + 1 == hlen || a[i + 1] == '.'))
				return "bad host name";
		}
	}
	for (i = 0; i < hlen; i++)
		host[i] = to_lower(a[i]);
	host[hlen] = '\0';
	if (colon) {
		const char *p = colon + 1, *end = a + len;
		long v = 0;

		if (p == end)
			return "empty port";
		for (; p < end; p++) {
			if (!is_digit(*p))
				return "bad port";
			v = v * 10 + (*p - '0');
			if (v > 65535)
				return "bad port";
		}
		if (v == 0)
			return "bad port";
		*port = v;
	}
	return NULL;
}

/*
 * What is refused before anything of the URL is quoted in a message, so a
 * message cannot be forged, garbled or made to show a password.
 */
static int check_text(const char *in)
{
	size_t len = strlen(in);

	if (!*in)
		return gc_error(GCERR_INPUT, "empty server URL; give it as https://host[/prefix]");
	if (len > URL_MAX)
		return gc_error(GCERR_INPUT, "server URL too long (over %d bytes)", URL_MAX);
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)in[i] <= ' ' || in[i] == 0x7f)
			return gc_error(GCERR_INPUT,
					"refused server URL: it contains a space or control character");
		/* stored as an attribute and a key name: ASCII, as on the wire */
		if ((unsigned char)in[i] >= 0x80)
			return gc_error(GCERR_INPUT,
					"refused server URL: it contains a character outside ASCII; give the host in ASCII (punycode) and percent-encode the path");
	}
	return 0;
}

/* the lower-case scheme into scheme[8]: https, or http; docker gives none */
static int parse_scheme(const char *in, const char *sep, char scheme[8])
{
	size_t slen = sep ? (size_t)(sep - in) : 0;

	if (!sep) {
		strcpy(scheme, "https");
		return 0;
	}
	if (slen == 0 || slen >= 8)
		return gc_error(GCERR_INPUT, "refused server URL '%s': unsupported scheme; use https", in);
	for (size_t i = 0; i < slen; i++)
		scheme[i] = to_lower(in[i]);
	scheme[slen] = '\0';
	if (strcmp(scheme, "https") && strcmp(scheme, "http"))
		return gc_error(GCERR_INPUT, "refused server URL '%s': unsupported scheme; use https", in);
	return 0;
}

int url_canonicalize(const char *in, char **out)
{
	const char *rest, *sep, *auth_end, *reason;
	char scheme[8], *host;
	size_t plen;
	long port;
	int err;

	*out = NULL;
	if ((err = check_text(in ? in : "")))
		return err;
	sep = strstr(in, "://");
	rest = sep ? sep + 3 : in;
	auth_end = rest + strcspn(rest, "/?#");
	/* userinfo may hold a password, whatever the scheme looks like */
	if (memchr(in, '@', (size_t)(auth_end - in)))
		return gc_error(GCERR_INPUT,
				"refused server URL: it carries a user name or password; give it as https://host[/prefix]");
	if (strpbrk(in, "?#"))
		return gc_error(GCERR_INPUT,
				"refused server URL starting '%.*s': a query or fragment is not allowed; give it as https://host[/prefix]",
				(int)strcspn(in, "?#"), in);
	if ((err = parse_scheme(in, sep, scheme)))
		return err;
	host = xmalloc((size_t)(auth_end - rest) + 1);
	reason = parse_authority(rest, (size_t)(auth_end - rest), host, &port);
	if (!reason && scheme[4] != 's' && !url_host_is_loopback(host))
		reason = "http is only allowed for localhost; use https";
	if (reason) {
		free(host);
		return gc_error(GCERR_INPUT, "refused server URL '%s': %s", in, reason);
	}
	if (port == (scheme[4] == 's' ? 443 : 80))
		port = 0;
	/* the prefix keeps its case; only trailing slashes go */
	plen = strlen(auth_end);
	while (plen > 0 && auth_end[plen - 1] == '/')
		plen--;
	if (port)
		*out = xasprintf("%s://%s:%ld%.*s", scheme, host, port, (int)plen, auth_end);
	else
		*out = xasprintf("%s://%s%.*s", scheme, host, (int)plen, auth_end);
	free(host);
	return 0;
}

int url_from_console(const char *console, char **out)
{
	char *canon, *hstart, *hend, *hit;
	int err;

	*out = NULL;
	err = url_canonicalize(console, &canon);
	if (err)
		return err;
	hstart = strstr(canon, "://") + 3;
	hend = hstart + strcspn(hstart, ":/");
	if (hend - hstart == 14 && !memcmp(hstart, "app.galileo.ai", 14)) {
		memcpy(hstart, "api", 3);
		*out = canon;
		return 0;
	}
	hit = strstr(hstart, "console");
	if (hit && hit + strlen("console") <= hend) {
		*hit = '\0';
		*out = xasprintf("%sapi%s", canon, hit + strlen("console"));
		free(canon);
		return 0;
	}
	*out = canon;
	return 0;
}

int url_from_git(const char *protocol, const char *host, char **out)
{
	char *joined;
	size_t i;
	int err;

	*out = NULL;
	if (!protocol || !*protocol)
		return gc_error(GCERR_INPUT, "git gave no protocol for the server");
	if (!host || !*host)
		return gc_error(GCERR_INPUT, "git gave no host for the server");
	for (i = 0; protocol[i]; i++)
		if (!is_alpha(protocol[i]))
			return gc_error(GCERR_INPUT, "refused git protocol '%.32s'; use https", protocol);
	/* host= is host[:port] only; anything that would start a path is refused */
	if (strpbrk(host, "/?#@\\"))
		return gc_error(GCERR_INPUT, "refused git host: it is not host[:port]");
	joined = xasprintf("%s://%s", protocol, host);
	err = url_canonicalize(joined, out);
	free(joined);
	return err;
}

bool url_is_uuid(const char *s)
{
	int i;

	if (!s)
		return false;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!is_hex(s[i])) {
			return false;
		}
	}
	return s[36] == '\0';
}

char *url_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out, *o;

	if (!s)
		return NULL;
	out = o = xmalloc(strlen(s) * 3 + 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (is_alpha(*s) || is_digit(*s) || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			*o++ = *s;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 0xf];
		}
	}
	*o = '\0';
	return out;
}

char *url_origin(const char *url)
{
	const char *sep = strstr(url, "://"), *auth, *end, *at;

	if (!sep)
		return NULL;
	auth = sep + 3;
	end = auth + strcspn(auth, "/?#");
	at = memchr(auth, '@', (size_t)(end - auth));
	if (at)
		auth = at + 1;
	return xasprintf("%.*s://%.*s", (int)(sep - url), url, (int)(end - auth), auth);
}
