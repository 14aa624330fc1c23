/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "lib/org.h"
#include "lib/common.h"
#include "lib/text.h"
#include "lib/url.h"

#include <string.h>

#define SLUG_MARK "slug:"

char *org_from_slug(const char *slug)
{
	if (url_is_uuid(slug) || !strncmp(slug, SLUG_MARK, strlen(SLUG_MARK)))
		return xasprintf(SLUG_MARK "%s", slug);
	return xstrdup(slug);
}

bool org_is_id(const char *enc)
{
	return url_is_uuid(enc);
}

const char *org_value(const char *enc)
{
	if (!strncmp(enc, SLUG_MARK, strlen(SLUG_MARK)))
		return enc + strlen(SLUG_MARK);
	return enc;
}

int org_check_text(const char *value, const char *what)
{
	if (value && !text_is_utf8(value))
		return gc_error(GCERR_INPUT, "%s is not valid UTF-8; give it in UTF-8", what);
	return 0;
}
