/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "token/sealed_file.h"
#include "lib/common.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define MAGIC "gcf1"

char *sealed_header_format(const struct sealed_header *h)
{
	return xasprintf(MAGIC " %s %s %016" PRIx64 " %" PRId64 " %" PRId64 " %s\n%s\n%s\n",
			 h->context, h->fp, h->generation, h->expires_at, h->lifetime, h->tokhash,
			 h->server, h->org);
}

static int hex16(const char *s)
{
	return strlen(s) == 16 && strspn(s, "0123456789abcdef") == 16;
}

int sealed_header_parse(char *buf, size_t len, struct sealed_header *h)
{
	char *server, *org, *end;
	int n = 0;

	memset(h, 0, sizeof(*h));
	if (sscanf(buf, MAGIC " %16[0-9a-f] %16[0-9a-f] %" SCNx64 " %" SCNd64 " %" SCNd64
		   " %16[0-9a-f]%n", h->context, h->fp, &h->generation, &h->expires_at,
		   &h->lifetime, h->tokhash, &n) != 6 || (size_t)n >= len || buf[n] != '\n')
		return -1;
	if (!hex16(h->context) || !hex16(h->fp) || !hex16(h->tokhash))
		return -1;
	server = buf + n + 1;
	if (!(org = memchr(server, '\n', len - (size_t)(server - buf))))
		return -1;
	*org++ = '\0';
	if (!(end = memchr(org, '\n', len - (size_t)(org - buf)))) {
		org[-1] = '\n';
		return -1;
	}
	*end = '\0';
	h->server = server;
	h->org = org;
	h->len = (size_t)(end + 1 - buf);
	return 0;
}

void sealed_header_restore(char *buf, const struct sealed_header *h)
{
	buf[h->org - buf - 1] = '\n';
	buf[h->len - 1] = '\n';
}
