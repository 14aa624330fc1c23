/* SPDX-License-Identifier: MIT */
/*
 * Organizations (galileo-credential(1) KEYSTORES): an organization_id (a UUID)
 * or an organization_slug, and it stays what it was given as.  Everywhere past
 * the input (cache keys, stored defaults, the request) one string carries both:
 * a UUID is an id; "slug:VALUE" is the slug VALUE, used for slugs that would
 * otherwise read as an id or as such a prefix; anything else is a slug.  "" is
 * no organization.
 */
#ifndef GC_ORG_H
#define GC_ORG_H

#include <stdbool.h>

/* the encoded form of a slug; new string, caller frees */
char *org_from_slug(const char *slug);

/* whether enc names an organization_id, and the value to send for it */
bool org_is_id(const char *enc);
const char *org_value(const char *enc);	/* borrows from enc */

/*
 * value (an id or slug; NULL is fine) becomes a keystore attribute and a
 * request parameter, so it must be valid UTF-8 (galileo-credential(1)
 * SECURITY): libsecret never completes a call with an attribute that is
 * not.  0, or GCERR_INPUT with a message naming what (where it came from).
 */
int org_check_text(const char *value, const char *what);

#endif
