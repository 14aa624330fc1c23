#include "autoconfig.h"

#include "token/cache.h"
#include "keystore/stack.h"
#include "lib/common.h"
#include "lib/tokentime.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAYLOAD_MAGIC "gc1"
#define TOKEN_MAX (8 * 1024)

void cached_token_release(struct cached_token *t)
{
	secret_free(t->token);
	memset(t, 0, sizeof(*t));
}

char *cache_format_payload(const struct cached_token *t)
{
	return xasprintf(PAYLOAD_MAGIC " %" PRId64 " %" PRId64 " %s %s",
			 t->expires_at, t->lifetime, t->fingerprint, t->token);
}

static bool is_token_char(unsigned char ch)
{
	return ch > 0x20 && ch < 0x7f;
}

/* the payload came from a store others can write to: check every field */
int cache_parse_payload(const char *payload, struct cached_token *out)
{
	long long expires, lifetime;
	int fp_start = 0, fp_end = 0, tok = 0;
	size_t len;

	memset(out, 0, sizeof(*out));
	if (sscanf(payload, PAYLOAD_MAGIC " %lld %lld %n%*[0-9a-f]%n %n",
		   &expires, &lifetime, &fp_start, &fp_end, &tok) != 2 || !tok)
		return GCERR_FAIL;
	if (fp_end - fp_start != 16 || expires <= 0 || lifetime < 0)
		return GCERR_FAIL;
	len = strlen(payload + tok);
	if (!len || len > TOKEN_MAX)
		return GCERR_FAIL;
	for (size_t i = 0; i < len; i++)
		if (!is_token_char(payload[tok + i]))
			return GCERR_FAIL;
	memcpy(out->fingerprint, payload + fp_start, 16);
	out->fingerprint[16] = '\0';
	out->expires_at = expires;
	out->lifetime = lifetime;
	out->token = xstrdup(payload + tok);
	return 0;
}

int cache_get(const struct token_tier *t, const char *server, const char *organization,
	      struct cached_token *out)
{
	char *payload = NULL;
	int err;

	memset(out, 0, sizeof(*out));
	if (!t)
		return GCERR_NOTFOUND;
	err = t->get(t, server, organization, &payload);
	if (err)
		return err;
	err = cache_parse_payload(payload, out);
	secret_free(payload);
	if (err) {
		gc_debug("cached token for '%s' is unreadable; ignoring it", server);
		return GCERR_NOTFOUND;
	}
	return 0;
}

int cache_put(const struct token_tier *t, const char *server, const char *organization,
	      const struct cached_token *tok)
{
	char *payload;
	int err;

	if (!t)
		return 0;
	payload = cache_format_payload(tok);
	err = t->put(t, server, organization, payload, tok->expires_at);
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

enum cache_verdict cache_judge(const struct cached_token *t, const char *fp,
			       int64_t now, long margin, long min_ttl)
{
	if (!t->token || strcmp(t->fingerprint, fp) != 0 || now >= t->expires_at)
		return CACHE_UNUSABLE;
	if (min_ttl > 0 && t->expires_at - now < min_ttl)
		return CACHE_STALE;
	if (tokentime_is_fresh(now, t->expires_at, t->lifetime, margin))
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
	if (tier->list(tier, server, &items, &nr))
		return NULL;
	for (size_t i = 0; i < nr && !org; i++) {
		struct cached_token t;

		if (cache_parse_payload(items[i].payload, &t))
			continue;
		if (strcmp(t.token, token) == 0)
			org = xstrdup(items[i].organization);
		cached_token_release(&t);
	}
	token_item_free_list(items, nr);
	return org;
}
