/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "keystore/places.h"

#include <string.h>

/*
 * Not the D-Bus session of secret-service: a cron job, or a second
 * terminal, reaches the same keyring by another bus address.  And none
 * for persistent-keyring, which is the user's wherever it is asked.
 */
static const struct place {
	const char *backend;
	const char *const env[3];
} places[] = {
	{ "pass", { "PASSWORD_STORE_DIR", "GNUPGHOME", NULL } },
	{ NULL, { NULL } },
};

const char *const *keystore_place_env(const char *backend)
{
	const struct place *p;

	for (p = places; p->backend; p++)
		if (!strcmp(p->backend, backend))
			break;
	return p->env;
}
