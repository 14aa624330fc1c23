#include "autoconfig.h"

#include "helper/cache.h"
#include "helper/common.h"
#include "helper/tokentime.h"
#include "keystore/keystore.h"

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

bool cache_enabled(const struct cache *c)
{
	return c->ks && c->ks->token_get && c->ks->token_store && c->ks->token_erase;
}

int cache_get(const struct cache *c, const char *server, const char *organization,
	      struct cached_token *out)
{
	char *payload = NULL;
	int err;

	memset(out, 0, sizeof(*out));
	if (!cache_enabled(c))
		return GCERR_NOTFOUND;
	err = c->ks->token_get(server, organization, &payload);
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

int cache_put(const struct cache *c, const char *server, const char *organization,
	      const struct cached_token *t)
{
	char *payload;
	int err;

	if (!cache_enabled(c))
		return 0;
	payload = cache_format_payload(t);
	err = c->ks->token_store(server, organization, payload, t->expires_at);
	secret_free(payload);
	return err;
}

int cache_erase(const struct cache *c, const char *server, const char *organization)
{
	if (!cache_enabled(c))
		return 0;
	return c->ks->token_erase(server, organization);
}

int cache_list(const struct cache *c, const char *server, struct cache_entry **out,
	       size_t *n)
{
	struct keystore_token *items = NULL;
	size_t nr = 0, k = 0;
	int err;

	*out = NULL;
	*n = 0;
	if (!cache_enabled(c) || !c->ks->token_list)
		return 0;
	err = c->ks->token_list(server, &items, &nr);
	if (err)
		return err == GCERR_NOTFOUND ? 0 : err;
	*out = xcalloc(nr, sizeof(**out));
	for (size_t i = 0; i < nr; i++) {
		struct cached_token t;

		if (cache_parse_payload(items[i].payload, &t))
			continue;
		secret_free(t.token);
		t.token = NULL;
		(*out)[k].organization = xstrdup(items[i].organization);
		(*out)[k].meta = t;
		k++;
	}
	*n = k;
	keystore_token_free_list(items, nr);
	return 0;
}

void cache_entry_free_list(struct cache_entry *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i].organization);
	free(list);
}

enum cache_verdict cache_judge(const struct cached_token *t, const char *fp,
			       int64_t now, long margin)
{
	if (!t->token || strcmp(t->fingerprint, fp) != 0 || now >= t->expires_at)
		return CACHE_UNUSABLE;
	if (tokentime_is_fresh(now, t->expires_at, t->lifetime, margin))
		return CACHE_FRESH;
	return CACHE_STALE;
}

char *cache_find_token(const struct cache *c, const char *server, const char *token)
{
	struct keystore_token *items = NULL;
	size_t nr = 0;
	char *org = NULL;

	if (!cache_enabled(c) || !c->ks->token_list || !token || !*token)
		return NULL;
	if (c->ks->token_list(server, &items, &nr))
		return NULL;
	for (size_t i = 0; i < nr && !org; i++) {
		struct cached_token t;

		if (cache_parse_payload(items[i].payload, &t))
			continue;
		if (strcmp(t.token, token) == 0)
			org = xstrdup(items[i].organization);
		cached_token_release(&t);
	}
	keystore_token_free_list(items, nr);
	return org;
}
