/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "helper/dialect.h"
#include "helper/gitproto.h"
#include "helper/login.h"
#include "helper/store.h"
#include "lib/common.h"
#include "lib/org.h"
#include "lib/url.h"
#include "token/policy.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * The git dialect (galileo-credential(1) GIT DIALECT, git-credential(1)).  Run
 * unscoped (credential.helper = galileo) it sees every request git makes, for
 * every host: it answers only for servers it holds a credential for, stays
 * silent for the rest so the next helper can answer, and never adopts a secret
 * for a server that is not known.
 */

/*
 * The server a request names: 1 with s->server set; 0 when it names none
 * (no host, another protocol, http to a host that is not loopback, a URL
 * that is not one), which the caller ignores silently, with no I/O.
 */
static int git_server(struct session *s, const struct git_request *req)
{
	char *url = NULL, *canon = NULL;
	int err;

	if (req->url) {
		url = url_origin(req->url);
	} else if (req->protocol && req->host && *req->host &&
		   !strpbrk(req->host, "/?#@\\")) {
		url = xasprintf("%s://%s", req->protocol, req->host);
	}
	/* only https, and http for loopback, name a server (url_canonicalize) */
	if (url && (!strncasecmp(url, "https://", 8) || !strncasecmp(url, "http://", 7)) &&
	    url_canonicalize(url, &canon))
		gc_error_clear();
	free(url);
	if (!canon) {
		gc_debug("the request names no server this helper serves; ignored");
		return 0;
	}
	err = session_use_server(s, canon, false);
	free(canon);
	return err ? err : 1;
}

static int write_answer(const struct git_request *req, const struct gc_credential *cred,
			const struct cached_token *tok)
{
	char expiry[32] = "";

	if (tok->expires_at > 0)
		snprintf(expiry, sizeof(expiry), "%" PRId64, tok->expires_at);
	/* refuse values git would split into lines before writing any */
	if (strpbrk(cred->username, "\r\n"))
		return gc_error(GCERR_INPUT, "the stored username for '%s' holds a newline", cred->server);
	if (req->cap_authtype) {
		gitproto_write(stdout, "capability[]", "authtype");
		gitproto_write(stdout, "authtype", "Bearer");
		gitproto_write(stdout, "credential", tok->token);
		gitproto_write(stdout, "ephemeral", "1");
	} else {
		gitproto_write(stdout, "username", *cred->username ? cred->username : "token");
		gitproto_write(stdout, "password", tok->token);
	}
	if (*expiry)
		gitproto_write(stdout, "password_expiry_utc", expiry);
	return 0;
}

/* the user the request names: username=, else the url's userinfo; new string or NULL */
static char *asked_username(const struct git_request *req)
{
	if (req->username)
		return xstrdup(req->username);
	return login_url_username(req->url);
}

static int git_get(struct session *s, const struct git_request *req)
{
	struct gc_credential cred;
	struct cached_token tok;
	struct token_request r = { 0 };
	struct token_policy p;
	char *org = NULL, *asked = NULL;
	int err;

	if ((err = session_explicit_org(req->organization_id, req->organization_slug, &org)) ||
	    (err = git_server(s, req)) <= 0)
		goto out;
	r.org = org;
	r.org_config = s->org_config;
	asked = asked_username(req);
	session_policy(s, &p);
	err = token_obtain(&p, &r, &cred, &tok);
	if (err == GCERR_NOTFOUND)
		err = login_first_use(s, &r, asked, true, &cred, &tok);
	if (!err && !login_same_identity(asked, cred.username)) {
		/* one identity per server: another user's request is not ours */
		cached_token_release(&tok);
		credential_release(&cred);
		err = gc_error(GCERR_NOTFOUND, "the request names another user than the one stored for '%s'",
			       s->server);
	}
	if (err == GCERR_NOTFOUND) {
		/* as git's own helpers: nothing here, let the next helper answer */
		gc_debug("%s", gc_error_message() ? gc_error_message() : "nothing stored");
		gc_error_clear();
		err = 0;
		goto out;
	}
	if (!err) {
		cred.server = cred.server ? cred.server : xstrdup(s->server);
		err = write_answer(req, &cred, &tok);
		cached_token_release(&tok);
		credential_release(&cred);
	}
out:
	free(asked);
	free(org);
	return err;
}

/* git stores after every use: what get gave out must not replace the key */
static bool is_echo(const struct git_request *req)
{
	return req->has_password_expiry_utc || req->has_ephemeral || req->authtype ||
	       req->credential || !req->password || !*req->password;
}

static int git_store(struct session *s, const struct git_request *req)
{
	struct gc_credential cred = { 0 };
	char *org = NULL;
	int err;

	if (is_echo(req)) {
		gc_debug("store: nothing to store (an echo of a token, or no password)");
		return 0;
	}
	if ((err = session_explicit_org(req->organization_id, req->organization_slug, &org)) ||
	    (err = git_server(s, req)) <= 0)
		goto out;
	cred.server = xstrdup(s->server);
	cred.kind = xstrdup(req->kind ? req->kind : "api-key");
	cred.username = xstrdup(req->username ? req->username : "");
	cred.organization = req->organization_id ? xstrdup(req->organization_id) :
			    req->organization_slug ? org_from_slug(req->organization_slug) :
			    xstrdup("");
	cred.secret = xstrdup(req->password);
	err = store_from_protocol(s, &cred, org);
	if (err == STORE_REFUSED) {
		/* git ignores what a store says: stay quiet, as its helpers do */
		gc_debug("store: %s", gc_error_message());
		gc_error_clear();
		err = 0;
	}
out:
	credential_release(&cred);
	free(org);
	return err;
}

static int git_erase(struct session *s, const struct git_request *req)
{
	const char *secret = req->password ? req->password : req->credential;
	struct gc_credential stored;
	bool dropped;
	int err;

	if ((err = git_server(s, req)) <= 0)
		return err;
	if (!secret)
		return store_erase(s);
	/* git's reject after the server refused a token: drop that token only */
	if ((err = store_drop_token(s, secret, &dropped)) || dropped)
		return err;
	err = stack_get(session_stack(s), s->server, &stored, NULL);
	if (err == GCERR_NOTFOUND) {
		gc_error_clear();
		return 0;
	}
	if (err)
		return err;
	if (!strcmp(stored.secret, secret))
		err = store_erase(s);
	else
		gc_debug("erase: the password matches nothing stored; nothing erased");
	credential_release(&stored);
	return err;
}

static const struct git_op {
	const char *name;
	int (*run)(struct session *s, const struct git_request *req);
} git_ops[] = {
	{ "get", git_get },
	{ "store", git_store },
	{ "erase", git_erase },
	{ NULL, NULL },
};

int git_main(struct session *s, const char *action)
{
	struct git_request req;
	int err;

	if (!strcmp(action, "capability")) {
		printf("version 0\ncapability authtype\n");
		return 0;
	}
	for (const struct git_op *op = git_ops; op->name; op++) {
		if (strcmp(op->name, action))
			continue;
		gitproto_init(&req);
		if ((err = gitproto_read(&req, stdin)))
			return err;
		err = op->run(s, &req);
		gitproto_release(&req);
		return err;
	}
	return 0;	/* git: unknown actions are ignored */
}
