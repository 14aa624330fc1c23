/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "keystore/stack.h"
#include "lib/common.h"

#include <stdlib.h>
#include <string.h>

bool credential_kind_valid(const char *kind)
{
	return kind && (!strcmp(kind, "api-key") || !strcmp(kind, "basic") ||
			!strcmp(kind, "bearer"));
}

void credential_release(struct gc_credential *c)
{
	free(c->server);
	free(c->kind);
	free(c->username);
	free(c->organization);
	secret_free(c->secret);
	memset(c, 0, sizeof(*c));
}

void credential_free_list(struct gc_credential *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		credential_release(&list[i]);
	free(list);
}

void token_item_free_list(struct gc_token_item *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(list[i].organization);
		secret_free(list[i].payload);
	}
	free(list);
}
