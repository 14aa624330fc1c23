/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "lib/text.h"
#include "lib/common.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

bool text_has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/*
 * Length of the well-formed UTF-8 sequence at s and its code point, or 0
 * when the bytes there are not one (RFC 3629: shortest form, no
 * surrogates, at most U+10FFFF).
 */
static size_t utf8_seq(const unsigned char *s, uint32_t *cp)
{
	static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t n;
	uint32_t c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		c = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		c = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		c = s[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;	/* also stops at the NUL */
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

bool text_is_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	size_t n;

	while (*p) {
		if (!(n = utf8_seq(p, &cp)))
			return false;
		p += n;
	}
	return true;
}

static bool is_bidi(uint32_t cp)
{
	return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

char *text_escape(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	/* the longest escape, \uNNNN, is 6 bytes for at least 2 of input */
	char *out = xmalloc(strlen(s) * 4 + 1), *o = out;
	uint32_t cp;
	size_t n;

	while (*p) {
		n = utf8_seq(p, &cp);
		if (!n) {
			o += sprintf(o, "\\x%02x", *p++);
		} else if (cp < 0x20 || cp == 0x7f) {
			o += sprintf(o, "\\x%02x", (unsigned)cp);
			p++;
		} else if ((cp >= 0x80 && cp <= 0x9f) || is_bidi(cp)) {
			o += sprintf(o, "\\u%04X", (unsigned)cp);
			p += n;
		} else {
			memcpy(o, p, n);
			o += n;
			p += n;
		}
	}
	*o = '\0';
	return out;
}
