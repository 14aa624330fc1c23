/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "lib/common.h"
#include "lib/text.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char error_buf[1024];
static int error_set;

int gc_exit_code(int err)
{
	if (err == GC_OK)
		return 0;
	if (err <= GCERR_FAIL && err >= GCERR_INPUT)
		return -err;
	return 1;
}

const char *gc_strerror(int err)
{
	switch (err) {
	case GC_OK:
		return "done";
	case GCERR_USAGE:
		return "bad usage; see 'galileo-credential --help'";
	case GCERR_NOTFOUND:
		return "no credential stored; run 'galileo-credential login'";
	case GCERR_REJECTED:
		return "the server rejected the credential; run 'galileo-credential login'";
	case GCERR_NETWORK:
		return "the token server could not be reached or failed";
	case GCERR_KEYSTORE:
		return "the keystore is unavailable; run 'galileo-credential doctor'";
	case GCERR_INPUT:
		return "bad input refused";
	case GCERR_NOMEM:
		return "out of memory";
	case GCERR_FULL:
		return "the keystore is full";
	default:
		return "unexpected internal failure; run with GALILEO_CREDENTIAL_DEBUG=1";
	}
}

int gc_error(int err, const char *fmt, ...)
{
	char raw[sizeof(error_buf)], *clean;
	va_list ap;

	if (error_set)
		return err;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* one line, always: a peer's text must not add lines or escapes to ours */
	clean = text_escape(raw);
	snprintf(error_buf, sizeof(error_buf), "%s", clean);
	free(clean);
	secret_wipe(raw, sizeof(raw));
	error_set = 1;
	return err;
}

const char *gc_error_message(void)
{
	return error_set ? error_buf : NULL;
}

void gc_error_clear(void)
{
	error_set = 0;
	error_buf[0] = '\0';
}

bool gc_debug_enabled(void)
{
	static int enabled = -1;

	if (enabled < 0) {
		const char *v = getenv("GALILEO_CREDENTIAL_DEBUG");
		enabled = v && *v && strcmp(v, "0") != 0;
	}
	return enabled;
}

void gc_debug(const char *fmt, ...)
{
	va_list ap;

	if (!gc_debug_enabled())
		return;
	fputs("galileo-credential: debug: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void secret_wipe(void *p, size_t n)
{
	if (p && n)
		explicit_bzero(p, n);
}

void secret_freezero(void *p, size_t n)
{
	if (!p)
		return;
	explicit_bzero(p, n);
	free(p);
}

void secret_free(char *s)
{
	if (s)
		secret_freezero(s, strlen(s));
}

static void oom(void)
{
	fputs("galileo-credential: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t nmemb, size_t n)
{
	void *p = calloc(nmemb ? nmemb : 1, n ? n : 1);

	if (!p)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	char *p;

	if (!s)
		return NULL;
	p = strdup(s);
	if (!p)
		oom();
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p;

	if (!s)
		return NULL;
	p = strndup(s, n);
	if (!p)
		oom();
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (r < 0)
		oom();
	return p;
}

/*
 * jansson frees without telling the size; keep it in a header word so the
 * whole block can be wiped.
 */
static void *json_wiping_malloc(size_t n)
{
	size_t *p = malloc(n + sizeof(size_t) * 2);

	if (!p)
		return NULL;
	p[0] = n;
	return p + 2;
}

static void json_wiping_free(void *ptr)
{
	size_t *p;

	if (!ptr)
		return;
	p = (size_t *)ptr - 2;
	secret_freezero(p, p[0] + sizeof(size_t) * 2);
}

void secret_json_init(void)
{
	json_set_alloc_funcs(json_wiping_malloc, json_wiping_free);
}
