/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "token/tier.h"
#include "keystore/stack.h"
#include "lib/common.h"

#include <errno.h>
#include <keyutils.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOKEN_PREFIX "galileo-credential:token:"
#define SUMMARY_PREFIX "galileo-credential:credential:"
#define GENERATION_PREFIX "galileo-credential:generation:"
#define SUMMARY_MAGIC "gc1"
#define PAYLOAD_MAX (16 * 1024)
/* the owner only: possessor and user, nothing for group or other */
#define KEY_PERM (KEY_POS_ALL | KEY_USR_ALL)

/*
 * The kernel-keyring token tier (token-cache = keyctl).  Tokens are `user`
 * keys in the user keyring, described galileo-credential:token:CTX:SERVER#ORG,
 * readable by their owner only and dropped by the kernel at their expiry.
 * CTX is the context of the call that cached it (helper/context.h): the
 * user keyring is shared by everything the user runs, containers with
 * keyctl included, so the description keeps one context's tokens from
 * every other's.  A cache hit costs a few system calls: no D-Bus, no
 * GLib, no libcurl.
 *
 * Next to the tokens a context has one non-secret "summary" key per
 * server, galileo-credential:credential:CTX:SERVER, saying which
 * credential (by fingerprint) and which default organization and
 * username they belong to, so a hit needs no keystore read.  A server's
 * write generation (token/generation.h) is one more key,
 * galileo-credential:generation:SERVER, without a timeout, shared by
 * every context.
 */

bool tier_keyctl_usable(void)
{
	static int usable = -1;

	if (usable < 0) {
		usable = keyctl_get_keyring_ID(KEY_SPEC_USER_KEYRING, 1) >= 0;
		if (!usable)
			gc_debug("kernel keyring unavailable (%s); tokens go to the keystore or the file tier",
				 strerror(errno));
	}
	return usable;
}

static char *token_desc(const struct token_tier *t, const char *server, const char *organization)
{
	return xasprintf(TOKEN_PREFIX "%s:%s#%s", t->context, server, organization);
}

static char *summary_desc(const struct token_tier *t, const char *server)
{
	return xasprintf(SUMMARY_PREFIX "%s:%s", t->context, server);
}

static key_serial_t find(const char *desc)
{
	long id = keyctl_search(KEY_SPEC_USER_KEYRING, "user", desc, 0);

	return id < 0 ? -1 : (key_serial_t)id;
}

/* the payload of key id as a new string (secret_free it), or NULL */
static char *read_payload(key_serial_t id)
{
	char *buf = xmalloc(PAYLOAD_MAX + 1);
	long n = keyctl_read(id, buf, PAYLOAD_MAX);

	if (n < 0 || n > PAYLOAD_MAX || memchr(buf, '\0', (size_t)n)) {
		secret_freezero(buf, PAYLOAD_MAX + 1);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* kept until expires_at, or for good when it is 0 */
static int write_key(const char *desc, const char *payload, int64_t expires_at)
{
	int64_t left = expires_at ? expires_at - (int64_t)time(NULL) : 0;
	key_serial_t id;
	int err;

	if (expires_at && left <= 0)
		return 0;
	if (left > UINT_MAX)
		left = UINT_MAX;
	/*
	 * Made in our thread keyring, where we possess it and may set its
	 * permissions and timeout, then linked into the user keyring: the link
	 * replaces an older key of the same description in one step.
	 */
	id = add_key("user", desc, payload, strlen(payload), KEY_SPEC_THREAD_KEYRING);
	if (id < 0 && errno == EDQUOT)
		return gc_error(GCERR_FULL, "the kernel key quota of this user is full");
	if (id < 0)
		return gc_error(GCERR_KEYSTORE, "cannot add a key to the kernel keyring: %s",
				strerror(errno));
	if (keyctl_setperm(id, KEY_PERM) < 0 || keyctl_set_timeout(id, (unsigned)left) < 0 ||
	    keyctl_link(id, KEY_SPEC_USER_KEYRING) < 0) {
		err = gc_error(errno == EDQUOT ? GCERR_FULL : GCERR_KEYSTORE,
			       "cannot keep a key in the kernel keyring: %s", strerror(errno));
		keyctl_invalidate(id);
		return err;
	}
	keyctl_unlink(id, KEY_SPEC_THREAD_KEYRING);
	return 0;
}

/*
 * Unlinked first: the kernel gives the 4 bytes of quota a link costs back
 * when a key is unlinked, not when an invalidated key's link is collected,
 * so the other order would eat a non-root user's 20000 bytes for good.
 * Then invalidated, so no other keyring keeps the secret.
 */
static void drop(key_serial_t id)
{
	keyctl_unlink(id, KEY_SPEC_USER_KEYRING);
	keyctl_invalidate(id);
}

/*
 * What follows PREFIX CTX ":" SERVER in desc, when desc describes a key of
 * server of that kind in context ctx (NULL: in any context); else NULL.
 */
static const char *key_rest(const char *desc, const char *prefix, const char *ctx,
			    const char *server)
{
	size_t pl = strlen(prefix), sl = strlen(server);

	if (strncmp(desc, prefix, pl))
		return NULL;
	desc += pl;
	if (strspn(desc, "0123456789abcdef") != TIER_CONTEXT_LEN || desc[TIER_CONTEXT_LEN] != ':')
		return NULL;
	if (ctx && strncmp(desc, ctx, TIER_CONTEXT_LEN))
		return NULL;
	desc += TIER_CONTEXT_LEN + 1;
	return strncmp(desc, server, sl) ? NULL : desc + sl;
}

/*
 * Call fn for each key of server in the user keyring, in t's context or
 * (every) in all: its tokens (org as described) and its summary (org NULL).
 */
static int each_key(const struct token_tier *t, const char *server, bool every,
		    void (*fn)(key_serial_t id, const char *org, void *arg), void *arg)
{
	const char *ctx = every ? NULL : t->context, *rest;
	key_serial_t *ids = NULL;
	long len = keyctl_read_alloc(KEY_SPEC_USER_KEYRING, (void **)&ids);

	for (long i = 0; i < len / (long)sizeof(*ids); i++) {
		char *d = NULL, *desc;
		int semis = 0;

		/* "type;uid;gid;perm;description" */
		if (keyctl_describe_alloc(ids[i], &d) < 0)
			continue;
		for (desc = d; *desc && semis < 4; desc++)
			semis += *desc == ';';
		if (semis == 4 && strncmp(d, "user;", 5) == 0) {
			if ((rest = key_rest(desc, TOKEN_PREFIX, ctx, server)) && *rest == '#')
				fn(ids[i], rest + 1, arg);
			else if ((rest = key_rest(desc, SUMMARY_PREFIX, ctx, server)) && !*rest)
				fn(ids[i], NULL, arg);
		}
		free(d);
	}
	free(ids);
	return len < 0 ? GCERR_NOTFOUND : 0;
}

static int kc_token_get(const struct token_tier *t, const char *server, const char *organization,
			const struct gc_credential *cred, char **payload)
{
	char *desc = token_desc(t, server, organization);
	key_serial_t id = find(desc);

	(void)cred;
	free(desc);
	*payload = id < 0 ? NULL : read_payload(id);
	return *payload ? 0 : GCERR_NOTFOUND;
}

static int kc_token_put(const struct token_tier *t, const char *server, const char *organization,
			const struct gc_credential *cred, const char *payload, int64_t expires_at)
{
	char *desc = token_desc(t, server, organization);
	int err = write_key(desc, payload, expires_at);

	(void)cred;
	free(desc);
	return err;
}

static void drop_one(key_serial_t id, const char *org, void *arg)
{
	const char *only = arg;

	if (!only || (org && !strcmp(org, only)))
		drop(id);
}

static int kc_token_erase(const struct token_tier *t, const char *server,
			  const char *organization)
{
	each_key(t, server, !organization, drop_one, (void *)organization);
	return 0;
}

struct token_list {
	struct gc_token_item *items;
	size_t n;
};

static void add_token(key_serial_t id, const char *org, void *arg)
{
	struct token_list *l = arg;
	char *payload;

	if (!org || !(payload = read_payload(id)))
		return;
	l->items = xrealloc(l->items, (l->n + 1) * sizeof(*l->items));
	l->items[l->n].organization = xstrdup(org);
	l->items[l->n].payload = payload;
	l->n++;
}

static int kc_token_list(const struct token_tier *t, const char *server,
			 struct gc_token_item **out, size_t *n)
{
	struct token_list l = { NULL, 0 };
	int err = each_key(t, server, false, add_token, &l);

	*out = l.items;
	*n = l.n;
	return err;
}


/* "gc1\nFINGERPRINT\nKIND\nORGANIZATION\nUSERNAME": nothing secret */
static int kc_summary_get(const struct token_tier *t, const char *server,
			  struct gc_credential *out, char fp[17])
{
	char *desc = summary_desc(t, server);
	key_serial_t id = find(desc);
	char *payload, *field[5], *p;
	int n = 0;

	free(desc);
	memset(out, 0, sizeof(*out));
	if (id < 0 || !(payload = read_payload(id)))
		return GCERR_NOTFOUND;
	for (p = payload; n < 5; n++) {
		field[n] = p;
		p = strchr(p, '\n');
		if (!p)
			break;
		*p++ = '\0';
	}
	if (n != 4 || strcmp(field[0], SUMMARY_MAGIC) || strlen(field[1]) != 16 ||
	    strspn(field[1], "0123456789abcdef") != 16 || !credential_kind_valid(field[2])) {
		free(payload);
		return GCERR_NOTFOUND;
	}
	memcpy(fp, field[1], 17);
	out->server = xstrdup(server);
	out->kind = xstrdup(field[2]);
	out->organization = xstrdup(field[3]);
	out->username = xstrdup(field[4]);
	free(payload);
	return 0;
}

static int kc_summary_put(const struct token_tier *t, const struct gc_credential *cred,
			  const char *fp, int64_t expires_at)
{
	char *desc, *payload;
	int err;

	if (strchr(cred->organization, '\n') || strchr(cred->username, '\n'))
		return 0;	/* cannot be summarised: hits read the keystore */
	desc = summary_desc(t, cred->server);
	payload = xasprintf(SUMMARY_MAGIC "\n%s\n%s\n%s\n%s", fp, cred->kind,
			    cred->organization, cred->username);
	err = write_key(desc, payload, expires_at);
	free(desc);
	free(payload);
	return err;
}

static const struct token_tier keyctl_tier = {
	.name = "keyctl",
	.caps = TIER_SUMMARY,
	.get = kc_token_get,
	.put = kc_token_put,
	.erase = kc_token_erase,
	.list = kc_token_list,
	.summary_get = kc_summary_get,
	.summary_put = kc_summary_put,
};

bool tier_keyctl_init(struct token_tier *t)
{
	if (!tier_keyctl_usable())
		return false;
	*t = keyctl_tier;
	return true;
}

/* ---- the write generation ------------------------------------------------ */

int tier_keyctl_generation(const char *server, uint64_t *gen)
{
	char *desc = xasprintf(GENERATION_PREFIX "%s", server), *payload = NULL, *end;
	key_serial_t id = find(desc);

	free(desc);
	*gen = 0;
	if (!tier_keyctl_usable())
		return gc_error(GCERR_KEYSTORE, "the kernel refuses keyctl here");
	if (id >= 0 && (payload = read_payload(id)))
		*gen = strtoull(payload, &end, 16);
	free(payload);
	return 0;
}

/* updated in place when it exists: that costs no key quota, even a full one */
int tier_keyctl_set_generation(const char *server, uint64_t gen)
{
	char *desc = xasprintf(GENERATION_PREFIX "%s", server), payload[17];
	key_serial_t id = find(desc);
	int err = 0;

	snprintf(payload, sizeof(payload), "%016llx", (unsigned long long)gen);
	if (id < 0 || keyctl_update(id, payload, 16) < 0)
		err = write_key(desc, payload, 0);
	free(desc);
	return err;
}
