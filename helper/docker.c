/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "helper/dialect.h"
#include "helper/dockerproto.h"
#include "helper/login.h"
#include "helper/store.h"
#include "lib/common.h"
#include "token/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The docker dialect (galileo-credential(1) DOCKER DIALECT,
 * docker-credential-helpers): the ServerURL names the server; errors are one
 * line on stdout, exit 1.
 */

static int docker_get(struct session *s, const char *given)
{
	struct gc_credential cred;
	struct cached_token tok;
	struct token_request r = { .org_config = NULL };
	struct token_policy p;
	char *out;
	int err;

	if ((err = session_use_server(s, given, false)))
		return err;
	r.org_config = s->org_config;
	session_policy(s, &p);
	/* a ServerURL naming a user was refused above: one identity per server */
	err = token_obtain(&p, &r, &cred, &tok);
	if (err == GCERR_NOTFOUND)
		err = login_first_use(s, &r, NULL, false, &cred, &tok);
	if (err)
		return err;
	/* docker and the containers tools send nothing with an empty Username */
	out = dockerproto_format_get(given, *cred.username ? cred.username : "token", tok.token);
	if (out) {
		printf("%s\n", out);
		secret_free(out);
	} else {
		err = gc_error(GCERR_INPUT, "the server URL or username is not UTF-8");
	}
	cached_token_release(&tok);
	credential_release(&cred);
	return err;
}

static int docker_store(struct session *s, const char *buf, size_t len)
{
	struct gc_credential cred = { 0 };
	char *url = NULL;
	int err;

	if ((err = dockerproto_parse_store(buf, len, &url, &cred.username, &cred.secret)))
		goto out;
	if (!*cred.username) {
		err = gc_error(GCERR_INPUT, "no credentials username");
		goto out;
	}
	if (!*cred.secret) {
		err = gc_error(GCERR_INPUT, "no credentials secret");
		goto out;
	}
	if ((err = session_use_server(s, url, false)))
		goto out;
	/* docker login stores what get gave it: already in place, nothing to do */
	if (store_is_cached_token(s, cred.secret)) {
		gc_debug("store: the secret is a token given out for '%s'; nothing to store", s->server);
		goto out;
	}
	cred.server = xstrdup(s->server);
	cred.kind = xstrdup("api-key");
	cred.organization = xstrdup("");
	if ((err = store_from_protocol(s, &cred, NULL)) == STORE_REFUSED)
		err = GCERR_FAIL;	/* its reason is the one line */
out:
	credential_release(&cred);
	free(url);
	return err;
}

static int docker_list(struct session *s)
{
	struct stack_item *items = NULL;
	char **servers, **users, *out;
	size_t n = 0;
	int err;

	if ((err = session_use_server(s, NULL, false)) ||
	    (err = stack_list(session_stack(s), &items, &n)))
		return err;
	servers = xcalloc(n, sizeof(*servers));
	users = xcalloc(n, sizeof(*users));
	for (size_t i = 0; i < n; i++) {
		servers[i] = items[i].cred.server;
		users[i] = items[i].cred.username;
	}
	out = dockerproto_format_list(servers, users, n);
	if (out)
		printf("%s\n", out);
	else
		err = gc_error(GCERR_FAIL, "a stored server or username is not UTF-8");
	free(out);
	free(servers);
	free(users);
	stack_item_free_list(items, n);
	return err;
}

/* get and erase: stdin is the server URL */
static int docker_on_server(struct session *s, const char *action, const char *buf, size_t len)
{
	char *url = NULL;
	int err;

	if ((err = dockerproto_parse_server(buf, len, &url)))
		return err;
	if (!strcmp(action, "get"))
		err = docker_get(s, url);
	else if (!(err = session_use_server(s, url, false)))
		err = store_erase(s);
	free(url);
	return err;
}

int docker_main(struct session *s, const char *action)
{
	char *buf = NULL;
	size_t len = 0;
	int err;

	if (!strcmp(action, "version")) {
		printf("docker-credential-galileo (galileo-credential) %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (!strcmp(action, "list"))
		return docker_list(s);
	if (strcmp(action, "store") && strcmp(action, "get") && strcmp(action, "erase"))
		return gc_error(GCERR_USAGE, "unknown docker action '%s'", action);
	if ((err = dockerproto_read(stdin, &buf, &len)))
		return err;
	if (!strcmp(action, "store"))
		err = docker_store(s, buf, len);
	else
		err = docker_on_server(s, action, buf, len);
	secret_freezero(buf, len);
	return err;
}
