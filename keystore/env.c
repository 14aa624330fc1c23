/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include <galileo-credential/module.h>

#include "keystore/loader.h"

#include <stdlib.h>
#include <string.h>

/*
 * GALILEO_API_KEY as a read-only backend: the headless path, no D-Bus.  The
 * key is an api-key credential for the home server only
 * (galileo-credential(1) SERVER AND ORGANIZATION): a git or docker request
 * naming any other server never gets it.
 * Built in, but on the module interface like any other backend.
 */

static const struct gc_services *svc;

static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

static int env_get(const char *server, struct gc_credential *out)
{
	const char *key = getenv("GALILEO_API_KEY");

	if (!key || !*key || !svc->home_server || strcmp(server, svc->home_server))
		return GC_STATUS_NOTFOUND;
	if (has_control(key)) {
		svc->error("GALILEO_API_KEY holds a control character (a stray newline?); set it to the key alone");
		return GC_STATUS_ERROR;
	}
	memset(out, 0, sizeof(*out));
	out->server = strdup(server);
	out->kind = strdup("api-key");
	out->username = strdup("");
	out->organization = strdup("");
	out->secret = strdup(key);
	if (!out->server || !out->kind || !out->username || !out->organization || !out->secret) {
		svc->error("out of memory");
		return GC_STATUS_ERROR;
	}
	return GC_STATUS_SUCCESS;
}

static const struct gc_keystore_module env_module = {
	GC_MODULE_TABLE_HEADER,
	.name = "env",
	.supports = 0,
	.get = env_get,
};

const struct gc_keystore_module *keystore_env_init(const struct gc_services *services)
{
	svc = services;
	return &env_module;
}
