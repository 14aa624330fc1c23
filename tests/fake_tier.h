/* SPDX-License-Identifier: MIT */
/*
 * An in-memory token tier for unit tests, injected through token/tier.h:
 * a few (server, organization) -> payload slots, an optional summary, and
 * a switch that makes put fail as a full kernel quota does.
 */
#ifndef GC_TESTS_FAKE_TIER_H
#define GC_TESTS_FAKE_TIER_H

#include "token/tier.h"

#include <stdbool.h>

struct fake_tier {
	struct token_tier tier;		/* first: the policy sees only this */
	bool full;			/* put fails GCERR_FULL */
	int puts;			/* successful puts */
};

/* t set up empty; with_summary gives it TIER_SUMMARY */
void fake_tier_init(struct fake_tier *t, const char *name, bool with_summary);
void fake_tier_clear(struct fake_tier *t);
/* the payload kept for (server, org), borrowed, or NULL */
const char *fake_tier_payload(const struct fake_tier *t, const char *server, const char *org);

#endif
