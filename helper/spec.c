/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "helper/dialect.h"
#include "helper/dockerproto.h"
#include "helper/login.h"
#include "lib/common.h"
#include "lib/tokentime.h"
#include "lib/url.h"
#include "token/policy.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * The credential-helper-spec (galileo-credential(1) CREDENTIAL HELPER SPEC;
 * EngFlow's spec, as Bazel 6+ and Siso speak it): `get` with {"uri":
 * "https://HOST/…"} on stdin answers {"headers":{"Authorization":["Bearer
 * TOKEN"]},"expires":…}.  The servers answered are the git dialect's: the
 * server of the URI when it has a credential, or the home server's
 * GALILEO_API_KEY.  Failures print nothing on stdout and one line on stderr,
 * non-zero.
 */

/* the server the request's uri names, as a new string */
static int spec_server(const char *buf, size_t len, char **server)
{
	json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *uri = json_object_get(root, "uri");
	char *origin = NULL;
	int err;

	*server = NULL;
	if (!json_is_string(uri))
		err = gc_error(GCERR_INPUT, "the request is not a JSON object with a string \"uri\"");
	else if (!(origin = url_origin(json_string_value(uri))) ||
		 (strncasecmp(origin, "https://", 8) && strncasecmp(origin, "http://", 7)))
		err = gc_error(GCERR_INPUT, "the request's uri is not an https URL");
	else
		err = url_canonicalize(origin, server);
	free(origin);
	json_decref(root);
	return err;
}

/* {"headers":…,"expires":…} as a new string (secret_free it) */
static char *spec_answer(const struct cached_token *tok)
{
	char *bearer = xasprintf("Bearer %s", tok->token), when[21], *out = NULL;
	json_t *root = json_pack("{s:{s:[s]}}", "headers", "Authorization", bearer);
	size_t n;

	if (root && tok->expires_at > 0) {
		tokentime_format(tok->expires_at, when);
		json_object_set_new(root, "expires", json_string(when));
	}
	n = root ? json_dumpb(root, NULL, 0, JSON_COMPACT) : 0;
	if (n) {
		out = xmalloc(n + 1);
		json_dumpb(root, out, n, JSON_COMPACT);
		out[n] = '\0';
	}
	json_decref(root);
	secret_free(bearer);
	return out;
}

int spec_get(struct session *s, FILE *in)
{
	struct token_request r = { 0 };
	struct gc_credential cred;
	struct cached_token tok;
	struct token_policy p;
	char *buf = NULL, *server = NULL, *out;
	size_t len = 0;
	int err;

	if ((err = dockerproto_read(in, &buf, &len)) || (err = spec_server(buf, len, &server)) ||
	    (err = session_use_server(s, server, false)))
		goto out;
	r.org_config = s->org_config;
	session_policy(s, &p);
	err = token_obtain(&p, &r, &cred, &tok);
	if (err == GCERR_NOTFOUND)
		err = login_first_use(s, &r, NULL, false, &cred, &tok);
	if (err)
		goto out;
	if ((out = spec_answer(&tok))) {
		printf("%s\n", out);
		secret_free(out);
	} else {
		err = gc_error(GCERR_FAIL, "cannot format the answer");
	}
	cached_token_release(&tok);
	credential_release(&cred);
out:
	free(server);
	secret_freezero(buf, len);
	return err;
}

bool spec_is_request(FILE *in)
{
	int c;

	while ((c = getc(in)) == ' ' || c == '\t')
		;
	if (c != EOF)
		ungetc(c, in);
	return c == '{';
}
