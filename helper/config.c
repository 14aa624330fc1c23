/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "helper/config.h"
#include "lib/common.h"
#include "lib/org.h"
#include "lib/privdir.h"
#include "lib/url.h"
#include "keystore/loader.h"
#include "keystore/stack.h"

#include <galileo-credential/module.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096
/* a config file is a few lines; anything bigger is not ours */
#define FILE_MAX_BYTES (1024 * 1024)
/* large enough for any sane number of seconds, small enough to add safely */
#define SECONDS_MAX 2147483647L

static void values_init(struct config_values *v)
{
	memset(v, 0, sizeof(*v));
	v->refresh_margin = -1;
	v->timeout = -1;
}

static void values_release(struct config_values *v)
{
	free(v->server);
	free(v->keystore);
	free(v->token_cache);
	free(v->token_path);
	free(v->organization_id);
	free(v->organization_slug);
	free(v->ca_file);
	free(v->refresh);
	values_init(v);
}

void config_init(struct config *cfg)
{
	cfg->path = NULL;
	values_init(&cfg->global);
	cfg->sections = NULL;
	cfg->nr_sections = 0;
	cfg->options = NULL;
	cfg->nr_options = 0;
}

void config_release(struct config *cfg)
{
	size_t i;

	free(cfg->path);
	values_release(&cfg->global);
	for (i = 0; i < cfg->nr_sections; i++) {
		free(cfg->sections[i].server);
		values_release(&cfg->sections[i].values);
	}
	free(cfg->sections);
	for (i = 0; i < cfg->nr_options; i++) {
		free(cfg->options[i].module);
		free(cfg->options[i].key);
		free(cfg->options[i].value);
	}
	free(cfg->options);
	config_init(cfg);
}

int config_default_path(char **path)
{
	const char *v;

	*path = NULL;
	v = getenv("GALILEO_CREDENTIAL_CONFIG");
	if (v && *v) {
		/*
		 * git runs helpers in the repository it works on: a relative
		 * path would let the repository choose the server that
		 * receives the key
		 */
		if (*v != '/')
			return gc_error(GCERR_FAIL, "GALILEO_CREDENTIAL_CONFIG '%s' is a relative path; set it to an absolute one",
					v);
		*path = xstrdup(v);
		return 0;
	}
	/* the XDG spec says a relative XDG_CONFIG_HOME is to be ignored; so is a relative HOME */
	v = getenv("XDG_CONFIG_HOME");
	if (v && *v == '/')
		*path = xasprintf("%s/galileo-credential/config", v);
	else if ((v = getenv("HOME")) && *v == '/')
		*path = xasprintf("%s/.config/galileo-credential/config", v);
	return 0;
}

/*
 * url_canonicalize() has already recorded its own message; put "PATH:LINE: "
 * in front of it, unless an older, unrelated message holds the slot.
 */
static int url_error_at(const char *path, unsigned int line, bool had_message)
{
	char *msg;

	if (had_message || !gc_error_message())
		return gc_error(GCERR_FAIL, "%s:%u: refused server URL", path, line);
	msg = xstrdup(gc_error_message());
	gc_error_clear();
	gc_error(GCERR_FAIL, "%s:%u: %s", path, line, msg);
	free(msg);
	return GCERR_FAIL;
}

static bool parse_seconds(const char *s, long *out)
{
	long v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (*s - '0');
		if (v > SECONDS_MAX)
			return false;
	}
	*out = v;
	return true;
}

static void set_string(char **slot, const char *value)
{
	free(*slot);
	*slot = xstrdup(value);
}

/*
 * Each check returns NULL when value is fine, else the hint for the
 * message "PATH:LINE: bad KEY 'VALUE'; HINT".
 */
static const char *check_token_cache(const char *v)
{
	return strcmp(v, "keyctl") && strcmp(v, "keystore") && strcmp(v, "file") &&
	       strcmp(v, "none") ? "use 'keyctl', 'keystore', 'file' or 'none'" : NULL;
}

static const char *check_token_path(const char *v)
{
	/* the organization goes after it as "?organization_…" */
	return v[0] != '/' || strpbrk(v, "?# \t") ?
	       "use a path starting with '/' and without '?' or '#'" : NULL;
}

static const char *check_uuid(const char *v)
{
	return url_is_uuid(v) ? NULL : "it must be a UUID";
}

static const char *check_refresh(const char *v)
{
	return strcmp(v, "background") && strcmp(v, "inline") ?
	       "use 'background' or 'inline'" : NULL;
}

static const char *check_stack(const char *v)
{
	struct keystore_stack st;
	static char why[256];

	/* an unknown backend name fails closed when it is chosen */
	if (!stack_parse(&st, v)) {
		stack_release(&st);
		return NULL;
	}
	snprintf(why, sizeof(why), "%s", gc_error_message() ? gc_error_message() : "bad stack");
	gc_error_clear();
	return why;
}

static const struct string_key {
	const char *name;
	size_t offset;
	const char *(*check)(const char *value);
	const char *bad;	/* the message's word for a refused value */
} string_keys[] = {
	{ "keystore", offsetof(struct config_values, keystore), check_stack, "bad" },
	{ "token-cache", offsetof(struct config_values, token_cache), check_token_cache, "unknown" },
	{ "token-path", offsetof(struct config_values, token_path), check_token_path, "bad" },
	{ "organization-id", offsetof(struct config_values, organization_id), check_uuid, "bad" },
	{ "organization-slug", offsetof(struct config_values, organization_slug), NULL, "bad" },
	{ "ca-file", offsetof(struct config_values, ca_file), NULL, "bad" },
	{ "refresh", offsetof(struct config_values, refresh), check_refresh, "unknown" },
};

static int set_seconds(long *slot, const char *path, unsigned int line, const char *key,
		       const char *value, long min)
{
	long n;

	if (!parse_seconds(value, &n) || n < min)
		return gc_error(GCERR_FAIL, "%s:%u: bad %s '%s'; use a whole number of seconds%s",
				path, line, key, value, min ? " above 0" : "");
	*slot = n;
	return 0;
}

static int set_server(struct config_values *v, bool in_section, const char *path,
		      unsigned int line, const char *value)
{
	bool had_message = gc_error_message() != NULL;
	char *canon;

	if (in_section)
		return gc_error(GCERR_FAIL, "%s:%u: 'server' is only allowed before the first [section]",
				path, line);
	if (url_canonicalize(value, &canon))
		return url_error_at(path, line, had_message);
	free(v->server);
	v->server = canon;
	return 0;
}

/*
 * An organization becomes a keystore attribute and a request parameter: not
 * UTF-8 is bad input (exit 7), as on the command line (galileo-credential(1)
 * SECURITY)
 */
static int check_org_text(const char *path, unsigned int line, const char *key,
			  const char *value)
{
	char *what;
	int err;

	if (strcmp(key, "organization-id") && strcmp(key, "organization-slug"))
		return 0;
	what = xasprintf("%s:%u: %s", path, line, key);
	err = org_check_text(value, what);
	free(what);
	return err;
}

static int set_key(struct config_values *v, bool in_section, const char *path,
		   unsigned int line, const char *key, const char *value)
{
	const char *hint;
	int err;

	if ((err = check_org_text(path, line, key, value)))
		return err;
	if (!strcmp(key, "server"))
		return set_server(v, in_section, path, line, value);
	if (!strcmp(key, "refresh-margin"))
		return set_seconds(&v->refresh_margin, path, line, key, value, 0);
	if (!strcmp(key, "timeout"))
		return set_seconds(&v->timeout, path, line, key, value, 1);
	for (size_t i = 0; i < sizeof(string_keys) / sizeof(string_keys[0]); i++) {
		const struct string_key *k = &string_keys[i];

		if (strcmp(key, k->name))
			continue;
		if (k->check && (hint = k->check(value)))
			return gc_error(GCERR_FAIL, "%s:%u: %s %s '%s'; %s", path, line, k->bad,
					key, value, hint);
		set_string((char **)((char *)v + k->offset), value);
		/* one default organization: the later line wins */
		if (!strcmp(key, "organization-id"))
			set_string(&v->organization_slug, NULL);
		else if (!strcmp(key, "organization-slug"))
			set_string(&v->organization_id, NULL);
		return 0;
	}
	return gc_error(GCERR_FAIL, "%s:%u: unknown key '%s'", path, line, key);
}

/* "NAME.KEY = value": kept for module NAME to ask for */
static int set_option(struct config *cfg, bool in_section, const char *path,
		      unsigned int line, const char *key, const char *value)
{
	const char *dot = strchr(key, '.');
	struct config_option *o;
	char *module;

	if (in_section)
		return gc_error(GCERR_FAIL, "%s:%u: module options such as '%s' are only allowed before the first [section]",
				path, line, key);
	module = xstrndup(key, (size_t)(dot - key));
	if (!keystore_name_valid(module) || !dot[1] ||
	    strspn(dot + 1, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(dot + 1)) {
		free(module);
		return gc_error(GCERR_FAIL, "%s:%u: bad module option '%s'; use NAME.KEY = value",
				path, line, key);
	}
	cfg->options = xrealloc(cfg->options, (cfg->nr_options + 1) * sizeof(*o));
	o = &cfg->options[cfg->nr_options++];
	o->module = module;
	o->key = xstrdup(dot + 1);
	o->value = xstrdup(value);
	o->line = line;
	return 0;
}

/* the section for server, reused when the same server appears twice */
static struct config_values *section_for(struct config *cfg, char *server)
{
	struct config_section *s;
	size_t i;

	for (i = 0; i < cfg->nr_sections; i++) {
		if (!strcmp(cfg->sections[i].server, server)) {
			free(server);
			return &cfg->sections[i].values;
		}
	}
	s = realloc(cfg->sections, (cfg->nr_sections + 1) * sizeof(*s));
	if (!s)
		abort();	/* as the x* allocators do */
	cfg->sections = s;
	s = &cfg->sections[cfg->nr_sections++];
	s->server = server;
	values_init(&s->values);
	return &s->values;
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return s;
}

static int parse_line(struct config *cfg, struct config_values **cur,
		      const char *path, unsigned int line, char *text)
{
	bool had_message = gc_error_message() != NULL;
	char *s = trim(text), *eq, *key, *value, *canon;

	if (!*s || *s == '#')
		return 0;
	if (*s == '[') {
		size_t n = strlen(s);

		if (s[n - 1] != ']')
			return gc_error(GCERR_FAIL,
					"%s:%u: bad section header; use [https://server]",
					path, line);
		s[n - 1] = '\0';
		if (url_canonicalize(trim(s + 1), &canon))
			return url_error_at(path, line, had_message);
		*cur = section_for(cfg, canon);
		return 0;
	}
	eq = strchr(s, '=');
	if (!eq)
		return gc_error(GCERR_FAIL, "%s:%u: expected 'key = value'", path, line);
	*eq = '\0';
	key = trim(s);
	value = trim(eq + 1);
	if (!*key)
		return gc_error(GCERR_FAIL, "%s:%u: expected 'key = value'", path, line);
	if (!*value)
		return gc_error(GCERR_FAIL, "%s:%u: empty value for '%s'", path, line, key);
	if (strchr(key, '.'))
		return set_option(cfg, *cur != &cfg->global, path, line, key, value);
	return set_key(*cur, *cur != &cfg->global, path, line, key, value);
}

int config_parse(struct config *cfg, const char *path, const char *text, size_t len)
{
	struct config tmp;
	struct config_values *cur;
	char buf[LINE_MAX_BYTES + 1];
	const char *name = path ? path : "config";
	unsigned int line = 0;
	size_t pos = 0;
	int err = 0;

	config_init(&tmp);
	cur = &tmp.global;
	while (pos < len) {
		const char *start = text + pos, *nl;
		size_t n;

		nl = memchr(start, '\n', len - pos);
		n = nl ? (size_t)(nl - start) : len - pos;
		pos += n + (nl ? 1 : 0);
		line++;
		if (n > LINE_MAX_BYTES) {
			err = gc_error(GCERR_FAIL, "%s:%u: line too long (over %d bytes)",
				       name, line, LINE_MAX_BYTES);
			break;
		}
		if (memchr(start, '\0', n)) {
			err = gc_error(GCERR_FAIL, "%s:%u: NUL byte", name, line);
			break;
		}
		memcpy(buf, start, n);
		/* files written on Windows end lines with CR LF */
		if (n > 0 && buf[n - 1] == '\r')
			n--;
		buf[n] = '\0';
		err = parse_line(&tmp, &cur, name, line, buf);
		if (err)
			break;
	}
	config_release(cfg);
	if (err) {
		config_release(&tmp);
		return err;
	}
	tmp.path = xstrdup(path);
	*cfg = tmp;
	return 0;
}

int config_load(struct config *cfg, const char *path)
{
	struct stat st;
	char *text;
	size_t got = 0;
	int fd, err;

	if (!path)
		return 0;	/* no HOME, no XDG_CONFIG_HOME: no file to read */
	/* O_NONBLOCK: a FIFO planted at the path must not hang us */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return gc_error(GCERR_FAIL, "cannot open config file '%s': %s",
				path, strerror(errno));
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return gc_error(GCERR_FAIL, "config file '%s' is not a regular file", path);
	}
	if (!privdir_owner_trusted(st.st_uid) || (st.st_mode & 022)) {
		close(fd);
		return gc_error(GCERR_FAIL, "config file '%s' is %s; refusing to use it (chown it to yourself and chmod go-w it)",
				path, st.st_mode & 022 ? "writable by group or others" :
				"owned by another user");
	}
	if (st.st_size > FILE_MAX_BYTES) {
		close(fd);
		return gc_error(GCERR_FAIL, "config file '%s' is too large", path);
	}
	text = xmalloc((size_t)st.st_size + 1);
	/* read at most one byte more than stat said, to notice growth */
	while (got <= (size_t)st.st_size) {
		ssize_t r = read(fd, text + got, (size_t)st.st_size + 1 - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = errno;
			close(fd);
			free(text);
			return gc_error(GCERR_FAIL, "cannot read config file '%s': %s",
					path, strerror(err));
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (got > (size_t)st.st_size) {
		free(text);
		return gc_error(GCERR_FAIL, "config file '%s' changed while being read", path);
	}
	err = config_parse(cfg, path, text, got);
	free(text);
	return err;
}

static void overlay(struct config_values *out, const struct config_values *v)
{
	if (v->keystore)
		out->keystore = v->keystore;
	if (v->token_cache)
		out->token_cache = v->token_cache;
	if (v->token_path)
		out->token_path = v->token_path;
	/* id and slug are one setting: a section naming either replaces both */
	if (v->organization_id || v->organization_slug) {
		out->organization_id = v->organization_id;
		out->organization_slug = v->organization_slug;
	}
	if (v->ca_file)
		out->ca_file = v->ca_file;
	if (v->refresh)
		out->refresh = v->refresh;
	if (v->refresh_margin >= 0)
		out->refresh_margin = v->refresh_margin;
	if (v->timeout >= 0)
		out->timeout = v->timeout;
}

void config_resolve(const struct config *cfg, const char *server,
		    struct config_values *out)
{
	size_t i;

	values_init(out);
	if (!cfg)
		return;
	*out = cfg->global;
	if (!server)
		return;
	for (i = 0; i < cfg->nr_sections; i++)
		if (!strcmp(cfg->sections[i].server, server))
			overlay(out, &cfg->sections[i].values);
}

bool config_has_section(const struct config *cfg, const char *server)
{
	for (size_t i = 0; i < cfg->nr_sections; i++)
		if (!strcmp(cfg->sections[i].server, server))
			return true;
	return false;
}

const char *config_option(const struct config *cfg, const char *module, const char *key)
{
	const char *v = NULL;

	/* the later line wins */
	for (size_t i = 0; i < cfg->nr_options; i++)
		if (!strcmp(cfg->options[i].module, module) && !strcmp(cfg->options[i].key, key))
			v = cfg->options[i].value;
	return v;
}

bool config_has_options(const struct config *cfg, const char *module)
{
	for (size_t i = 0; i < cfg->nr_options; i++)
		if (!strcmp(cfg->options[i].module, module))
			return true;
	return false;
}

/* "a, b and c", the keys declared, for the message; new string */
static char *declared_keys(const struct gc_option *declared)
{
	char *list = xstrdup(""), *next;
	size_t n = 0;

	while (declared && declared[n].key)
		n++;
	for (size_t i = 0; i < n; i++) {
		next = xasprintf("%s%s%s", list, i == 0 ? "" : i + 1 == n ? " and " : ", ",
				 declared[i].key);
		free(list);
		list = next;
	}
	return list;
}

static const struct gc_option *declaration(const struct gc_option *declared, const char *key)
{
	for (size_t i = 0; declared && declared[i].key; i++)
		if (!strcmp(declared[i].key, key))
			return &declared[i];
	return NULL;
}

int config_check_options(const struct config *cfg, const char *module,
			 const struct gc_option *declared)
{
	const char *path = cfg->path ? cfg->path : "config", *hint;

	for (size_t i = 0; i < cfg->nr_options; i++) {
		const struct config_option *o = &cfg->options[i];
		const struct gc_option *d;
		char *keys;
		int err;

		if (strcmp(o->module, module))
			continue;
		if (!(d = declaration(declared, o->key))) {
			keys = declared_keys(declared);
			err = gc_error(GCERR_FAIL, "%s:%u: unknown key '%s.%s': the keystore '%s' %s%s",
				       path, o->line, module, o->key, module,
				       *keys ? "takes " : "takes no options", keys);
			free(keys);
			return err;
		}
		if (d->check && (hint = d->check(o->value)))
			return gc_error(GCERR_FAIL, "%s:%u: bad %s.%s '%s'; %s", path, o->line,
					module, o->key, o->value, hint);
	}
	return 0;
}
