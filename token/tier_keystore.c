#include "autoconfig.h"

#include "token/tier.h"
#include "lib/common.h"

#include <string.h>

/*
 * Tokens kept by a keystore backend (token-cache = keystore, and where the
 * kernel's quota is full or keyctl is refused): the module's token slots,
 * its statuses turned into the program's codes.  One item per (server,
 * organization) whatever the context, since a keystore may serve several
 * (token/cache.c passes over another context's payload).
 */

static const struct gc_keystore_module *mod(const struct token_tier *t)
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
	return code(mod(t)->token_get(server, org, payload));
}

static int ks_put(const struct token_tier *t, const char *server, const char *org,
		  const struct gc_credential *cred, const char *payload, int64_t expires_at)
{
	(void)cred;
	return code(mod(t)->token_store(server, org, payload, expires_at));
}

static int ks_erase(const struct token_tier *t, const char *server, const char *org)
{
	int err = code(mod(t)->token_erase(server, org));

	return err == GCERR_NOTFOUND ? 0 : err;
}

static int ks_list(const struct token_tier *t, const char *server,
		   struct gc_token_item **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	return code(mod(t)->token_list(server, out, n));
}

void tier_keystore_init(struct token_tier *t, const struct gc_keystore_module *m)
{
	memset(t, 0, sizeof(*t));
	t->name = "keystore";
	t->get = ks_get;
	t->put = ks_put;
	t->erase = ks_erase;
	t->list = ks_list;
	t->data = m;
}
