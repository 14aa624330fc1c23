/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "helper/login.h"
#include "helper/prompt.h"
#include "helper/store.h"
#include "lib/common.h"
#include "token/policy.h"

#include <stdlib.h>
#include <string.h>

static char *login_prompt(const char *server, const struct login_params *lp)
{
	if (!strcmp(lp->kind, "basic"))
		return xasprintf("Password for '%s' at '%s': ", lp->username, server);
	if (!strcmp(lp->kind, "bearer"))
		return xasprintf("Bearer token for '%s': ", server);
	return xasprintf("Galileo API key for '%s': ", server);
}

/* the credential given, checked: exit 7 for what cannot be stored */
static int read_credential(struct session *s, const struct login_params *lp,
			   struct gc_credential *cred)
{
	char *prompt = login_prompt(s->server, lp);
	int err;

	cred->secret = lp->first_use ? prompt_terminal(prompt) : prompt_secret(prompt);
	free(prompt);
	if (!cred->secret && gc_error_message())
		return GCERR_INPUT;	/* an oversize line, said already */
	if ((!cred->secret || !*cred->secret) && lp->first_use)
		return gc_error(GCERR_NOTFOUND, "no credential stored for '%s' and none given; run 'galileo-credential login --server %s'",
				s->server, s->server);
	if (!cred->secret || !*cred->secret)
		return gc_error(GCERR_INPUT, "no secret given for '%s'; nothing stored", s->server);
	cred->server = xstrdup(s->server);
	cred->kind = xstrdup(lp->kind);
	cred->username = xstrdup(lp->username ? lp->username : "");
	cred->organization = xstrdup(lp->organization ? lp->organization : "");
	if ((err = store_check_values(cred)))
		return err;
	if (store_is_jwt_key(cred))
		return gc_error(GCERR_INPUT, "that is an access token (a JWT), not an API key; nothing stored for '%s'",
				s->server);
	return 0;
}

int login_run(struct session *s, const struct login_params *lp, struct gc_credential *cred,
	      struct cached_token *tok)
{
	struct token_request r = { .org = lp->org, .org_config = s->org_config };
	struct stack_entry *writer;
	struct exchange_result res;
	const char *org;
	int err;

	memset(cred, 0, sizeof(*cred));
	memset(tok, 0, sizeof(*tok));
	/* find out the keystore can store before asking for anything */
	if ((err = stack_writer(session_stack(s), &writer)) ||
	    (err = read_credential(s, lp, cred)))
		goto fail;
	org = token_org(&r, cred);
	if (lp->verify) {
		if ((err = session_exchange(s, cred, org, &res)))
			goto fail;
		token_from_result(&res, cred, tok);
	}
	if (!(err = store_write(s, cred, tok->token ? tok : NULL, org)))
		return 0;
fail:
	cached_token_release(tok);
	credential_release(cred);
	return err;
}

int login_first_use(struct session *s, const struct token_request *r, const char *username,
		    bool git, struct gc_credential *cred, struct cached_token *tok)
{
	struct login_params lp = { .kind = "api-key", .org = r->org, .verify = true,
				   .first_use = true };
	bool known = !strcmp(s->server, s->home) || config_has_section(&s->cfg, s->server);
	struct stack_entry *writer;

	/*
	 * The "nothing stored" recorded stays the answer when nobody is asked,
	 * and when nothing could store the answer (keystore = env): the first
	 * message recorded wins, so the writer's reason is dropped.
	 */
	if (!known || (git && prompt_git_off()) || !prompt_have_terminal() ||
	    stack_writer(session_stack(s), &writer))
		return GCERR_NOTFOUND;
	gc_error_clear();
	gc_debug("nothing stored for '%s': asking on the terminal (first use)", s->server);
	if (username && *username && strcmp(username, "token"))
		lp.username = username;
	return login_run(s, &lp, cred, tok);
}

bool login_same_identity(const char *asked, const char *stored_username)
{
	if (!asked || !*asked || !strcmp(asked, "token") || !stored_username || !*stored_username)
		return true;
	return !strcmp(asked, stored_username);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *login_url_username(const char *url)
{
	const char *p = url ? strstr(url, "://") : NULL, *at, *end;
	char *name, *o;
	size_t n;

	if (!p)
		return NULL;
	p += 3;
	n = strcspn(p, "/?#");
	for (at = NULL, end = p; end < p + n; end++)
		if (*end == '@')
			at = end;
	if (!at)
		return NULL;
	n = strcspn(p, ":@");
	if (p + n > at)
		n = (size_t)(at - p);
	o = name = xmalloc(n + 1);
	for (const char *q = p; q < p + n; q++) {
		if (*q == '%' && q + 2 < p + n && hex_digit(q[1]) >= 0 && hex_digit(q[2]) >= 0) {
			*o++ = (char)(hex_digit(q[1]) * 16 + hex_digit(q[2]));
			q += 2;
		} else {
			*o++ = *q;
		}
	}
	*o = '\0';
	if (!*name) {
		free(name);
		return NULL;
	}
	return name;
}
