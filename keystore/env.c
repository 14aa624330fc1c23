#include "autoconfig.h"

#include "keystore/keystore.h"
#include "helper/common.h"

#include <stdlib.h>

/*
 * GALILEO_API_KEY as a read-only backend: the headless path, no D-Bus.  The
 * key counts as an api-key credential for whichever server was resolved.
 */
static int env_get(const char *server, struct credential *out)
{
	const char *key = getenv("GALILEO_API_KEY");

	if (!key || !*key)
		return GCERR_NOTFOUND;
	out->server = xstrdup(server);
	out->kind = xstrdup("api-key");
	out->username = xstrdup("");
	out->organization = xstrdup("");
	out->secret = xstrdup(key);
	return 0;
}

const struct keystore_ops keystore_env_ops = {
	.abi_version = KEYSTORE_ABI_VERSION,
	.name = "env",
	.get = env_get,
};
