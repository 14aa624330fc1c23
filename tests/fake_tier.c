/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "tests/fake_tier.h"
#include "keystore/stack.h"
#include "lib/common.h"

#include <stdlib.h>
#include <string.h>

#define SLOTS 8

struct slot {
	char *server, *org, *payload;
};

struct fake_data {
	struct slot slots[SLOTS];
	struct gc_credential summary;	/* server NULL: none */
	char summary_fp[17];
};

static struct fake_data data[4];
static int used;

static struct fake_tier *self(const struct token_tier *t)
{
	return (struct fake_tier *)t;
}

static struct fake_data *d(const struct token_tier *t)
{
	return (struct fake_data *)t->data;
}

static int find(const struct token_tier *t, const char *server, const char *org)
{
	for (int i = 0; i < SLOTS; i++)
		if (d(t)->slots[i].server && !strcmp(d(t)->slots[i].server, server) &&
		    !strcmp(d(t)->slots[i].org, org))
			return i;
	return -1;
}

static void clear_slot(struct slot *s)
{
	free(s->server);
	free(s->org);
	secret_free(s->payload);
	memset(s, 0, sizeof(*s));
}

static int fake_get(const struct token_tier *t, const char *server, const char *org,
		    const struct gc_credential *cred, char **payload)
{
	int i = find(t, server, org);

	(void)cred;
	if (i < 0)
		return GCERR_NOTFOUND;
	*payload = xstrdup(d(t)->slots[i].payload);
	return 0;
}

static int fake_put(const struct token_tier *t, const char *server, const char *org,
		    const struct gc_credential *cred, const char *payload, int64_t expires_at)
{
	int i = find(t, server, org);

	(void)cred;
	(void)expires_at;
	if (self(t)->full)
		return gc_error(GCERR_FULL, "the fake tier is full");
	if (i < 0)
		for (i = 0; i < SLOTS && d(t)->slots[i].server; i++)
			;
	if (i == SLOTS)
		return gc_error(GCERR_FULL, "the fake tier has no slot left");
	clear_slot(&d(t)->slots[i]);
	d(t)->slots[i].server = xstrdup(server);
	d(t)->slots[i].org = xstrdup(org);
	d(t)->slots[i].payload = xstrdup(payload);
	self(t)->puts++;
	return 0;
}

static int fake_erase(const struct token_tier *t, const char *server, const char *org)
{
	for (int i = 0; i < SLOTS; i++)
		if (d(t)->slots[i].server && !strcmp(d(t)->slots[i].server, server) &&
		    (!org || !strcmp(d(t)->slots[i].org, org)))
			clear_slot(&d(t)->slots[i]);
	if (!org && d(t)->summary.server && !strcmp(d(t)->summary.server, server))
		credential_release(&d(t)->summary);
	return 0;
}

static int fake_list(const struct token_tier *t, const char *server,
		     struct gc_token_item **out, size_t *n)
{
	*out = xcalloc(SLOTS, sizeof(**out));
	*n = 0;
	for (int i = 0; i < SLOTS; i++)
		if (d(t)->slots[i].server && !strcmp(d(t)->slots[i].server, server)) {
			(*out)[*n].organization = xstrdup(d(t)->slots[i].org);
			(*out)[*n].payload = xstrdup(d(t)->slots[i].payload);
			(*n)++;
		}
	return 0;
}

static int fake_summary_get(const struct token_tier *summary_tier, const char *server,
			    struct gc_credential *out, char fp[17])
{
	const struct gc_credential *c = &d(summary_tier)->summary;

	memset(out, 0, sizeof(*out));
	if (!c->server || strcmp(c->server, server))
		return GCERR_NOTFOUND;
	out->server = xstrdup(c->server);
	out->kind = xstrdup(c->kind);
	out->username = xstrdup(c->username);
	out->organization = xstrdup(c->organization);
	memcpy(fp, d(summary_tier)->summary_fp, 17);
	return 0;
}

static int fake_summary_put(const struct token_tier *summary_tier,
			    const struct gc_credential *cred, const char *fp, int64_t expires_at)
{
	struct gc_credential *c = &d(summary_tier)->summary;

	(void)expires_at;
	if (self(summary_tier)->full)
		return gc_error(GCERR_FULL, "the fake tier is full");
	credential_release(c);
	c->server = xstrdup(cred->server);
	c->kind = xstrdup(cred->kind);
	c->username = xstrdup(cred->username);
	c->organization = xstrdup(cred->organization);
	memcpy(d(summary_tier)->summary_fp, fp, 17);
	return 0;
}

void fake_tier_init(struct fake_tier *t, const char *name, bool with_summary)
{
	memset(t, 0, sizeof(*t));
	t->tier.name = name;
	t->tier.get = fake_get;
	t->tier.put = fake_put;
	t->tier.erase = fake_erase;
	t->tier.list = fake_list;
	t->tier.data = &data[used++ % 4];
	if (with_summary) {
		t->tier.caps = TIER_SUMMARY;
		t->tier.summary_get = fake_summary_get;
		t->tier.summary_put = fake_summary_put;
	}
	fake_tier_clear(t);
}

void fake_tier_clear(struct fake_tier *t)
{
	for (int i = 0; i < SLOTS; i++)
		clear_slot(&d(&t->tier)->slots[i]);
	credential_release(&d(&t->tier)->summary);
	t->puts = 0;
	t->full = false;
}

const char *fake_tier_payload(const struct fake_tier *t, const char *server, const char *org)
{
	int i = find(&t->tier, server, org);

	return i < 0 ? NULL : d(&t->tier)->slots[i].payload;
}
