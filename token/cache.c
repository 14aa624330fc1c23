/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "token/cache.h"
#include "keystore/stack.h"
#include "lib/common.h"
#include "lib/tokentime.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAYLOAD_MAGIC "gc2"
#define TOKEN_MAX (8 * 1024)

void tier_bind(struct token_tier *t, const char *context)
{
	snprintf(t->context, sizeof(t->context), "%s", context);
}

void cached_token_release(struct cached_token *t)
{
	secret_free(t->token);
	memset(t, 0, sizeof(*t));
}

char *cache_format_payload(const struct cached_token *t)
{
	return xasprintf(PAYLOAD_MAGIC " %" PRId64 " %" PRId64 " %s %016" PRIx64 " %s %s",
			 t->expires_at, t->lifetime, t->fingerprint, t->generation, t->context,
			 t->token);
}

static bool is_token_char(unsigned char ch)
{
	return ch > 0x20 && ch < 0x7f;
}

/* the payload came from a store others can write to: check every field */
int cache_parse_payload(const char *payload, struct cached_token *out)
{
	long long expires, lifetime;
	unsigned long long generation;
	int fp_start = 0, fp_end = 0, ctx_start = 0, ctx_end = 0, tok = 0;
	size_t len;

	memset(out, 0, sizeof(*out));
	if (sscanf(payload, PAYLOAD_MAGIC " %lld %lld %n%*[0-9a-f]%n %llx %n%*[0-9a-f]%n %n",
		   &expires, &lifetime, &fp_start, &fp_end, &generation, &ctx_start, &ctx_end,
		   &tok) != 3 || !tok)
		return GCERR_FAIL;
	if (fp_end - fp_start != 16 || ctx_end - ctx_start != TIER_CONTEXT_LEN || expires <= 0 ||
	    lifetime < 0)
		return GCERR_FAIL;
	len = strlen(payload + tok);
	if (!len || len > TOKEN_MAX)
		return GCERR_FAIL;
	for (size_t i = 0; i < len; i++)
		if (!is_token_char(payload[tok + i]))
			return GCERR_FAIL;
	memcpy(out->fingerprint, payload + fp_start, 16);
	out->fingerprint[16] = '\0';
	memcpy(out->context, payload + ctx_start, TIER_CONTEXT_LEN);
	out->context[TIER_CONTEXT_LEN] = '\0';
	out->generation = generation;
	out->expires_at = expires;
	out->lifetime = lifetime;
	out->token = xstrdup(payload + tok);
	return 0;
}

int cache_get(const struct token_tier *t, const char *server, const char *organization,
	      const struct gc_credential *cred, struct cached_token *out)
{
	char *payload = NULL;
	int err;

	memset(out, 0, sizeof(*out));
	if (!t)
		return GCERR_NOTFOUND;
	err = t->get(t, server, organization, cred, &payload);
	if (err)
		return err;
	err = cache_parse_payload(payload, out);
	secret_free(payload);
	if (err) {
		gc_debug("cached token for '%s' is unreadable; ignoring it", server);
		return GCERR_NOTFOUND;
	}
	if (strcmp(out->context, t->context)) {
		/* a tier that several contexts share (a keystore): not ours */
		cached_token_release(out);
		return GCERR_NOTFOUND;
	}
	return 0;
}

int cache_put(const struct token_tier *t, const char *server, const char *organization,
	      const struct gc_credential *cred, const struct cached_token *tok)
{
	struct cached_token mine = *tok;
	char *payload;
	int err;

	if (!t)
		return 0;
	memcpy(mine.context, t->context, sizeof(mine.context));
	payload = cache_format_payload(&mine);
	err = t->put(t, server, organization, cred, payload, tok->expires_at);
	secret_free(payload);
	return err;
}

int cache_erase(const struct token_tier *t, const char *server, const char *organization)
{
	return t ? t->erase(t, server, organization) : 0;
}

int cache_list(const struct token_tier *t, const char *server, struct cache_entry **out,
	       size_t *n)
{
	struct gc_token_item *items = NULL;
	size_t nr = 0, k = *n;
	int err;

	if (!t)
		return 0;
	err = t->list(t, server, &items, &nr);
	if (err)
		return err == GCERR_NOTFOUND ? 0 : err;
	*out = xrealloc(*out, (k + nr + 1) * sizeof(**out));
	for (size_t i = 0; i < nr; i++) {
		struct cached_token tok;

		if (cache_parse_payload(items[i].payload, &tok))
			continue;
		if (strcmp(tok.context, t->context)) {
			cached_token_release(&tok);
			continue;
		}
		secret_free(tok.token);
		tok.token = NULL;
		(*out)[k].organization = xstrdup(items[i].organization);
		(*out)[k].tier = t->name;
		(*out)[k].meta = tok;
		k++;
	}
	*n = k;
	token_item_free_list(items, nr);
	return 0;
}

void cache_entry_free_list(struct cache_entry *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i].organization);
	free(list);
}

enum cache_verdict cache_judge(const struct cached_token *t, const struct cache_want *w)
{
	if (!t->token || strcmp(t->fingerprint, w->fp) != 0 || t->generation != w->generation ||
	    w->now >= t->expires_at)
		return CACHE_UNUSABLE;
	if (w->min_ttl > 0 && t->expires_at - w->now < w->min_ttl)
		return CACHE_STALE;
	if (tokentime_is_fresh(w->now, t->expires_at, t->lifetime, w->margin))
		return CACHE_FRESH;
	return CACHE_STALE;
}

char *cache_find_token(const struct token_tier *tier, const char *server, const char *token)
{
	struct gc_token_item *items = NULL;
	size_t nr = 0;
	char *org = NULL;

	if (!tier || !token || !*token)
		return NULL;
	if (tier->find) {
		if (tier->find(tier, server, token, &org))
			gc_error_clear();
		return org;
	}
	if (tier->list(tier, server, &items, &nr))
		return NULL;
	for (size_t i = 0; i < nr && !org; i++) {
		struct cached_token t;

		if (cache_parse_payload(items[i].payload, &t))
			continue;
		if (strcmp(t.context, tier->context)) {
			cached_token_release(&t);
			continue;
		}
		if (strcmp(t.token, token) == 0)
			org = xstrdup(items[i].organization);
		cached_token_release(&t);
	}
	token_item_free_list(items, nr);
	return org;
}
