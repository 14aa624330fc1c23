/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "keystore/answer.h"
#include "keystore/stack.h"

#include <string.h>

bool answer_status_valid(int status)
{
	return status >= GC_STATUS_SUCCESS && status <= GC_STATUS_ERROR;
}

/*
 * One string field: NULL when fine, else the phrase.  Only the shape is
 * judged: what a field holds is the store's data (a value planted in the
 * keyring by another program included), which the program escapes when
 * it prints it and refuses where it would send it.
 */
static const char *field(const char *s, size_t max, bool may_be_empty, int which)
{
	static const char *const bad[][3] = {
		/* NULL, empty, too long */
		{ "a NULL server", "an empty server", "a server over 2048 bytes" },
		{ "a NULL kind", "an empty kind", "a kind over 1024 bytes" },
		{ "a NULL username (\"\" is unknown)", "", "a username over 1024 bytes" },
		{ "a NULL organization (\"\" is none)", "", "an organization over 1024 bytes" },
		{ "success with a NULL secret", "success with an empty secret",
		  "a secret over 65536 bytes" },
		{ "success with a NULL payload", "success with an empty payload",
		  "a payload over 65536 bytes" },
	};

	if (!s)
		return bad[which][0];
	if (!*s && !may_be_empty)
		return bad[which][1];
	if (strnlen(s, max + 1) > max)
		return bad[which][2];
	return NULL;
}

enum { F_SERVER, F_KIND, F_USERNAME, F_ORGANIZATION, F_SECRET, F_PAYLOAD };

/* the fields every credential carries (secret aside) */
static const char *metadata(const struct gc_credential *c, bool kind_may_be_empty)
{
	const char *why;

	if ((why = field(c->server, ANSWER_SERVER_MAX, false, F_SERVER)) ||
	    (why = field(c->kind, ANSWER_FIELD_MAX, kind_may_be_empty, F_KIND)) ||
	    (why = field(c->username, ANSWER_FIELD_MAX, true, F_USERNAME)) ||
	    (why = field(c->organization, ANSWER_FIELD_MAX, true, F_ORGANIZATION)))
		return why;
	if (*c->kind && !credential_kind_valid(c->kind))
		return "an unknown kind (not api-key, basic or bearer)";
	return NULL;
}

const char *answer_credential(const struct gc_credential *c, const char *server)
{
	const char *why;

	if ((why = field(c->secret, ANSWER_SECRET_MAX, false, F_SECRET)) ||
	    (why = metadata(c, false)))
		return why;
	if (strcmp(c->server, server))
		return "the credential of another server";
	return NULL;
}

const char *answer_list(const struct gc_credential *list, size_t n)
{
	const char *why;

	if (n > ANSWER_LIST_MAX)
		return "over 100000 items";
	if (n && !list)
		return "a NULL array with a nonzero count";
	for (size_t i = 0; i < n; i++) {
		if (list[i].secret)
			return "an item with a secret (list() items carry none)";
		/* an entry whose metadata cannot be read says kind "" */
		if ((why = metadata(&list[i], true)))
			return why;
	}
	return NULL;
}

const char *answer_payload(const char *payload)
{
	return field(payload, ANSWER_SECRET_MAX, false, F_PAYLOAD);
}

const char *answer_token_list(const struct gc_token_item *list, size_t n)
{
	const char *why;

	if (n > ANSWER_LIST_MAX)
		return "over 100000 items";
	if (n && !list)
		return "a NULL array with a nonzero count";
	for (size_t i = 0; i < n; i++)
		if ((why = field(list[i].organization, ANSWER_FIELD_MAX, true, F_ORGANIZATION)) ||
		    (why = answer_payload(list[i].payload)))
			return why;
	return NULL;
}

bool answer_credential_empty(const struct gc_credential *c)
{
	return !c->server && !c->kind && !c->username && !c->organization && !c->secret;
}
