/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "token/tier.h"
#include "keystore/stack.h"
#include "lib/common.h"

#include <string.h>

/*
 * Tokens kept by a keystore backend (token-cache = keystore, and where the
 * kernel's quota is full or keyctl is refused): the module's token slots,
 * called through the stack (which contains them and checks their
 * answers), its statuses turned into the program's codes.  One item per
 * (server, organization) whatever the context, since a keystore may serve
 * several (token/cache.c passes over another context's payload).
 */

static const struct stack_entry *entry(const struct token_tier *t)
{
	return t->data;
}

static int code(int status)
{
	if (status == GC_STATUS_SUCCESS)
		return 0;
	if (status == GC_STATUS_NOTFOUND)
		return GCERR_NOTFOUND;
	return gc_error(GCERR_KEYSTORE, "the keystore cannot keep the token");
}

static int ks_get(const struct token_tier *t, const char *server, const char *org,
		  const struct gc_credential *cred, char **payload)
{
	(void)cred;
	*payload = NULL;
	return code(stack_token_get(entry(t), server, org, payload));
}

static int ks_put(const struct token_tier *t, const char *server, const char *org,
		  const struct gc_credential *cred, const char *payload, int64_t expires_at)
{
	(void)cred;
	return code(stack_token_store_payload(entry(t), server, org, payload, expires_at));
}

static int ks_erase(const struct token_tier *t, const char *server, const char *org)
{
	int err = code(stack_token_erase(entry(t), server, org));

	return err == GCERR_NOTFOUND ? 0 : err;
}

static int ks_list(const struct token_tier *t, const char *server,
		   struct gc_token_item **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	return code(stack_token_list(entry(t), server, out, n));
}

void tier_keystore_init(struct token_tier *t, const struct stack_entry *e)
{
	memset(t, 0, sizeof(*t));
	t->name = "keystore";
	t->get = ks_get;
	t->put = ks_put;
	t->erase = ks_erase;
	t->list = ks_list;
	t->data = e;
}
