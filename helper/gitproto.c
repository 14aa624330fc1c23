/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "helper/gitproto.h"
#include "lib/common.h"

#include <string.h>

void gitproto_init(struct git_request *req)
{
	memset(req, 0, sizeof(*req));
}

void gitproto_release(struct git_request *req)
{
	/*
	 * Only password and credential are secrets, but a user may paste a
	 * key into any field by mistake: wipe them all.
	 */
	secret_free(req->protocol);
	secret_free(req->host);
	secret_free(req->path);
	secret_free(req->url);
	secret_free(req->username);
	secret_free(req->password);
	secret_free(req->credential);
	secret_free(req->authtype);
	secret_free(req->organization_id);
	secret_free(req->organization_slug);
	secret_free(req->kind);
	gitproto_init(req);
}

static char **field(struct git_request *req, const char *key, size_t klen)
{
	static const struct {
		const char *key;
		size_t offset;
	} fields[] = {
#define F(name) { #name, offsetof(struct git_request, name) }
		F(protocol), F(host), F(path), F(url), F(username),
		F(password), F(credential), F(authtype),
		F(organization_id), F(organization_slug), F(kind),
#undef F
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (strlen(fields[i].key) == klen &&
		    !memcmp(fields[i].key, key, klen))
			return (char **)((char *)req + fields[i].offset);
	return NULL;
}

static bool key_is(const char *key, size_t klen, const char *name)
{
	return strlen(name) == klen && !memcmp(key, name, klen);
}

int gitproto_parse_line(struct git_request *req, const char *line, size_t len)
{
	const char *eq, *value;
	size_t klen, vlen;
	char **slot;

	/* also checked here, so callers feeding lines directly are bounded */
	if (len > GITPROTO_MAX_LINE)
		return gc_error(GCERR_INPUT,
				"the credential request has a line over %d bytes",
				GITPROTO_MAX_LINE);
	if (memchr(line, '\0', len))
		return gc_error(GCERR_INPUT,
				"the credential request contains a NUL byte");
	eq = memchr(line, '=', len);
	if (!eq)
		/* never quote the line: it may be a secret */
		return gc_error(GCERR_INPUT,
				"the credential request has a line without '='");
	klen = eq - line;
	value = eq + 1;
	vlen = len - klen - 1;

	slot = field(req, line, klen);
	if (slot) {
		secret_free(*slot);
		*slot = xstrndup(value, vlen);
	} else if (key_is(line, klen, "password_expiry_utc")) {
		req->has_password_expiry_utc = true;
	} else if (key_is(line, klen, "ephemeral")) {
		req->has_ephemeral = true;
	} else if (key_is(line, klen, "capability[]")) {
		if (vlen == 8 && !memcmp(value, "authtype", 8))
			req->cap_authtype = true;
	}
	/* anything else is a key of a newer git: ignored, as git does */
	return 0;
}

static int too_big(void)
{
	return gc_error(GCERR_INPUT, "the credential request is over %d bytes",
			GITPROTO_MAX_INPUT);
}

int gitproto_parse(struct git_request *req, const char *buf, size_t len)
{
	size_t pos = 0;
	int err;

	if (len > GITPROTO_MAX_INPUT) {
		gitproto_release(req);
		return too_big();
	}
	while (pos < len) {
		const char *line = buf + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t llen = nl ? (size_t)(nl - line) : len - pos;

		if (llen == 0)
			break;
		err = gitproto_parse_line(req, line, llen);
		if (err) {
			gitproto_release(req);
			return err;
		}
		pos += llen + 1;
	}
	return 0;
}

int gitproto_read(struct git_request *req, FILE *in)
{
	/* +1: room to notice the first byte past the limit */
	size_t cap = GITPROTO_MAX_LINE + 1;
	char *line = xmalloc(cap);
	size_t total = 0, len = 0, used = 0;
	int c, err = 0;

	for (;;) {
		c = getc(in);
		if (c != EOF && ++total > GITPROTO_MAX_INPUT) {
			err = too_big();
			break;
		}
		if (c == EOF || c == '\n') {
			if (len == 0)
				break;	/* blank line or clean EOF */
			err = gitproto_parse_line(req, line, len);
			if (err || c == EOF)
				break;
			len = 0;
			continue;
		}
		if (c == '\0') {
			err = gc_error(GCERR_INPUT,
				       "the credential request contains a NUL byte");
			break;
		}
		if (len == cap - 1) {
			err = gc_error(GCERR_INPUT,
				       "the credential request has a line over %d bytes",
				       GITPROTO_MAX_LINE);
			break;
		}
		line[len++] = (char)c;
		if (len > used)
			used = len;
	}
	if (!err && ferror(in))
		err = gc_error(GCERR_FAIL, "cannot read the credential request");
	/*
	 * Only the first `used` bytes ever held input: wiping all 64 KiB would
	 * cost a hit more than the rest of reading the request (16 pages).
	 */
	secret_freezero(line, used);
	if (err)
		gitproto_release(req);
	return err;
}

int gitproto_write(FILE *out, const char *key, const char *value)
{
	/* a newline would let a value forge further key=value lines */
	if (strpbrk(key, "\n\r=") || strpbrk(value, "\n\r"))
		return gc_error(GCERR_INPUT,
				"refusing to write '%s': it holds a newline or CR",
				key);
	if (fprintf(out, "%s=%s\n", key, value) < 0)
		return gc_error(GCERR_FAIL, "cannot write the credential");
	return 0;
}
