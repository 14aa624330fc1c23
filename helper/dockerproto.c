/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "helper/dockerproto.h"
#include "lib/common.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char *member_string(json_t *root, const char *name)
{
	json_t *v = json_object_get(root, name);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

int dockerproto_parse_store(const char *buf, size_t len, char **server_url,
			    char **username, char **secret)
{
	const char *server, *user, *sec;
	json_error_t jerr;
	json_t *root;

	*server_url = *username = *secret = NULL;
	if (len > DOCKERPROTO_MAX_INPUT)
		return gc_error(GCERR_INPUT, "the docker request is over %d bytes",
				DOCKERPROTO_MAX_INPUT);
	/*
	 * Duplicates refused: two "Secret" members would leave it to chance
	 * which one is stored.  jerr is not reported, as its text may quote
	 * the secret.
	 */
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root)
		return gc_error(GCERR_INPUT, "the docker request is not valid JSON");
	server = member_string(root, "ServerURL");
	user = member_string(root, "Username");
	sec = member_string(root, "Secret");
	if (!json_is_object(root) || !server || !user || !sec) {
		json_decref(root);
		return gc_error(GCERR_INPUT,
				"the docker request needs the strings ServerURL, Username and Secret");
	}
	*server_url = xstrdup(server);
	*username = xstrdup(user);
	*secret = xstrdup(sec);
	json_decref(root);
	return 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
	       c == '\v' || c == '\f';
}

int dockerproto_parse_server(const char *buf, size_t len, char **server_url)
{
	size_t start = 0, end = len;

	*server_url = NULL;
	if (len > DOCKERPROTO_MAX_INPUT)
		return gc_error(GCERR_INPUT, "the docker request is over %d bytes",
				DOCKERPROTO_MAX_INPUT);
	if (memchr(buf, '\0', len))
		return gc_error(GCERR_INPUT, "the docker request contains a NUL byte");
	while (start < end && is_space(buf[start]))
		start++;
	while (end > start && is_space(buf[end - 1]))
		end--;
	if (start == end)
		return gc_error(GCERR_INPUT, "the docker request names no server");
	if (memchr(buf + start, '\n', end - start) ||
	    memchr(buf + start, '\r', end - start))
		return gc_error(GCERR_INPUT,
				"the docker request holds more than one line");
	*server_url = xstrndup(buf + start, end - start);
	return 0;
}

/*
 * json_dumps() memory comes from jansson's (wiping) allocator, which the
 * caller's free()/secret_free() must not be handed; copy into our own.
 */
static char *dump(json_t *root)
{
	size_t n = json_dumpb(root, NULL, 0, JSON_COMPACT);
	char *out;

	if (n == 0)
		return NULL;
	out = xmalloc(n + 1);
	if (json_dumpb(root, out, n, JSON_COMPACT) != n) {
		secret_freezero(out, n + 1);
		return NULL;
	}
	out[n] = '\0';
	return out;
}

char *dockerproto_format_get(const char *server_url, const char *username,
			     const char *secret)
{
	json_t *root = json_object();
	char *out = NULL;

	if (!root)
		return NULL;
	/* json_string() returns NULL for invalid UTF-8; set_new fails then */
	if (!json_object_set_new(root, "ServerURL", json_string(server_url ? server_url : "")) &&
	    !json_object_set_new(root, "Username", json_string(username ? username : "")) &&
	    !json_object_set_new(root, "Secret", json_string(secret ? secret : "")))
		out = dump(root);
	json_decref(root);
	return out;
}

char *dockerproto_format_list(char *const *servers, char *const *usernames, size_t n)
{
	json_t *root = json_object();
	char *out = NULL;
	size_t i;

	if (!root)
		return NULL;
	for (i = 0; i < n; i++) {
		const char *user = usernames && usernames[i] ? usernames[i] : "";

		if (!servers[i] ||
		    json_object_set_new(root, servers[i], json_string(user)))
			break;
	}
	if (i == n)
		out = dump(root);
	json_decref(root);
	return out;
}

int dockerproto_read(FILE *in, char **buf, size_t *len)
{
	size_t cap = 4096, n = 0, r;
	char *b = xmalloc(cap + 1), *nb;

	for (;;) {
		if (n == cap) {
			if (cap > DOCKERPROTO_MAX_INPUT) {
				secret_freezero(b, cap + 1);
				return gc_error(GCERR_INPUT, "input over %d bytes refused",
						DOCKERPROTO_MAX_INPUT);
			}
			/* no realloc: it could leave a copy of a secret unwiped */
			nb = xmalloc(cap * 2 + 1);
			memcpy(nb, b, n);
			secret_freezero(b, cap + 1);
			b = nb;
			cap *= 2;
		}
		r = fread(b + n, 1, cap - n, in);
		n += r;
		if (r == 0)
			break;
	}
	if (n > DOCKERPROTO_MAX_INPUT) {
		secret_freezero(b, cap + 1);
		return gc_error(GCERR_INPUT, "input over %d bytes refused", DOCKERPROTO_MAX_INPUT);
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}
