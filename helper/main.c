/*
 * galileo-credential: one program, three dialects (native, git, docker).
 * This file is policy: which server, which credential, which token; the
 * formats, the cache, the keystores and the transport live in their modules.
 */
#include "autoconfig.h"

#include "helper/cache.h"
#include "helper/codec.h"
#include "helper/common.h"
#include "helper/config.h"
#include "helper/dockerproto.h"
#include "helper/exchange.h"
#include "helper/gitproto.h"
#include "helper/http.h"
#include "helper/lock.h"
#include "helper/tokentime.h"
#include "helper/url.h"
#include "keystore/keyctl.h"
#include "keystore/keystore.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SERVER "https://api.galileo.ai"
#define DEFAULT_KEYSTORE "secret-service"
#define DEFAULT_TOKEN_PATH "/v1/token"
#define DEFAULT_MARGIN 300
#define DEFAULT_TIMEOUT 30
#define SECRET_LINE_MAX (64 * 1024)

enum dialect { DIALECT_NATIVE, DIALECT_GIT, DIALECT_DOCKER };

struct options {
	const char *server;
	const char *kind;
	const char *username;
	const char *org_id;
	const char *org_slug;
	int no_verify;
	int refresh;
	int json;
};

/* Everything one invocation resolved; filled step by step. */
struct ctx {
	struct config cfg;
	struct config_values vals;
	char *server;
	const char *keystore_name;
	const char *token_cache;
	const char *token_path;
	long margin;
	long timeout;
	const struct keystore_ops *ks;
	struct cache cache;
	bool cache_opened;
};

static const char usage_text[] =
	"usage: galileo-credential login  [--server URL] [--kind api-key|basic|bearer]\n"
	"                                 [--username NAME] [--org-id UUID | --org-slug SLUG]\n"
	"                                 [--no-verify]\n"
	"       galileo-credential logout [--server URL]\n"
	"       galileo-credential token  [--server URL] [--org-id UUID | --org-slug SLUG] [--refresh]\n"
	"       galileo-credential status [--server URL] [--json]\n"
	"       galileo-credential get | store | erase | capability   (git format on stdin)\n"
	"       galileo-credential --help | --version\n"
	"\n"
	"Also runs as git-credential-galileo and docker-credential-galileo.\n"
	"See galileo-credential(1).\n";

/*
 * stdio's own buffers see every secret read or printed; give it ours so
 * they can be wiped before exit.
 */
static char stdin_buf[BUFSIZ], stdout_buf[BUFSIZ];

static void harden_process(void)
{
	struct rlimit no_core = { 0, 0 };

	/* no core file, no ptrace by the user's other processes (ssh-agent) */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	setrlimit(RLIMIT_CORE, &no_core);
}

static int64_t now_epoch(void)
{
	return (int64_t)time(NULL);
}

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* ---- settings -------------------------------------------------------- */

static int load_config(struct ctx *c)
{
	char *path = config_default_path();
	int err;

	config_init(&c->cfg);
	err = config_load(&c->cfg, path);
	free(path);
	return err;
}

/* CONTRACT section 3: explicit, GALILEO_API_URL, console URL, config, default */
static int resolve_server(struct ctx *c, const char *explicit_url)
{
	const char *v;
	int err;

	if (explicit_url)
		err = url_canonicalize(explicit_url, &c->server);
	else if ((v = env_nonempty("GALILEO_API_URL")))
		err = url_canonicalize(v, &c->server);
	else if ((v = env_nonempty("GALILEO_CONSOLE_URL")))
		err = url_from_console(v, &c->server);
	else if (c->cfg.global.server)
		err = url_canonicalize(c->cfg.global.server, &c->server);
	else
		err = url_canonicalize(DEFAULT_SERVER, &c->server);
	if (err)
		return err;

	config_resolve(&c->cfg, c->server, &c->vals);
	c->margin = c->vals.refresh_margin >= 0 ? c->vals.refresh_margin : DEFAULT_MARGIN;
	c->timeout = c->vals.timeout > 0 ? c->vals.timeout : DEFAULT_TIMEOUT;
	c->token_path = c->vals.token_path ? c->vals.token_path : DEFAULT_TOKEN_PATH;
	c->keystore_name = env_nonempty("GALILEO_CREDENTIAL_KEYSTORE");
	if (!c->keystore_name)
		c->keystore_name = c->vals.keystore ? c->vals.keystore : DEFAULT_KEYSTORE;
	c->token_cache = env_nonempty("GALILEO_CREDENTIAL_TOKEN_CACHE");
	if (!c->token_cache)
		c->token_cache = c->vals.token_cache ? c->vals.token_cache : "keyctl";
	if (strcmp(c->token_cache, "keyctl") && strcmp(c->token_cache, "keystore") &&
	    strcmp(c->token_cache, "none"))
		return gc_error(GCERR_FAIL, "unknown token-cache '%s'; use 'keyctl', 'keystore' or 'none'",
				c->token_cache);
	/* an unknown keystore fails closed, even when a cached token would do */
	if (keystore_check_name(c->keystore_name))
		return GCERR_KEYSTORE;
	gc_debug("server '%s', keystore '%s', token-cache '%s'", c->server,
		 c->keystore_name, c->token_cache);
	return 0;
}

static int check_org_id(const char *id)
{
	if (id && !url_is_uuid(id))
		return gc_error(GCERR_INPUT, "invalid organization id '%s'; expected a UUID", id);
	return 0;
}

/*
 * An organization given on the command line or in the environment, checked
 * before any I/O.  *org borrows; NULL when none was given there.
 */
static int explicit_org(const char *id, const char *slug, const char **org)
{
	int err;

	*org = NULL;
	if (id && slug)
		return gc_error(GCERR_USAGE, "give either an organization id or a slug, not both");
	if ((err = check_org_id(id)))
		return err;
	if (id || slug) {
		*org = id ? id : slug;
		return 0;
	}
	id = env_nonempty("GALILEO_ORGANIZATION_ID");
	if ((err = check_org_id(id)))
		return err;
	*org = id ? id : env_nonempty("GALILEO_ORGANIZATION_SLUG");
	return 0;
}

/* the rest of section 3's order, once the credential is known */
static const char *final_org(const struct ctx *c, const char *explicit_value,
			     const struct credential *cred)
{
	if (explicit_value)
		return explicit_value;
	if (cred && cred->organization && *cred->organization)
		return cred->organization;
	if (c->vals.organization_id)
		return c->vals.organization_id;
	if (c->vals.organization_slug)
		return c->vals.organization_slug;
	return "";
}

/* ---- keystore and cache ---------------------------------------------- */

static int open_keystore(struct ctx *c)
{
	if (c->ks)
		return 0;
	c->ks = keystore_find(c->keystore_name);
	return c->ks ? 0 : GCERR_KEYSTORE;
}

/* a keystore that can store, reached already: fail before any secret moves */
static int open_writable_keystore(struct ctx *c)
{
	int err = open_keystore(c);

	if (!err && !c->ks->store)
		err = gc_error(GCERR_KEYSTORE, "keystore '%s' is read-only; it cannot store a credential",
			       c->ks->name);
	if (!err && c->ks->open)
		err = c->ks->open();
	return err;
}

/*
 * The cache: the kernel keyring (keyctl) where the kernel allows it, else
 * the keystore's token items.  It is an optimisation: when it cannot be
 * opened the call goes on uncached.
 */
static void open_cache(struct ctx *c)
{
	if (c->cache_opened)
		return;
	c->cache_opened = true;
	if (strcmp(c->token_cache, "none") == 0)
		return;
	if (strcmp(c->token_cache, "keyctl") == 0 && keyctl_usable()) {
		c->cache.ks = &keystore_keyctl_ops;
		return;
	}
	if (open_keystore(c)) {
		gc_debug("no token cache: %s", gc_error_message());
		gc_error_clear();
		return;
	}
	c->cache.ks = c->ks;
	if (!cache_enabled(&c->cache))
		gc_debug("keystore '%s' cannot hold tokens; not caching", c->ks->name);
}

/* a cache failure never fails the call; forget its message */
static void cache_soft(int err, const char *what)
{
	if (err && err != GCERR_NOTFOUND) {
		gc_debug("token cache %s failed: %s", what,
			 gc_error_message() ? gc_error_message() : "unknown error");
		gc_error_clear();
	}
}

static int not_found(const char *server)
{
	return gc_error(GCERR_NOTFOUND,
			"no credential stored for '%s'; run 'galileo-credential login --server %s'",
			server, server);
}

/* GALILEO_API_KEY wins over the stored credential (section 3) */
static int load_credential(struct ctx *c, struct credential *cred)
{
	int err;

	memset(cred, 0, sizeof(*cred));
	if (env_nonempty("GALILEO_API_KEY")) {
		gc_debug("credential from GALILEO_API_KEY");
		return keystore_env_ops.get(c->server, cred);
	}
	if ((err = open_keystore(c)))
		return err;
	if (!c->ks->get)
		return not_found(c->server);
	err = c->ks->get(c->server, cred);
	if (err == GCERR_NOTFOUND)
		return not_found(c->server);
	return err;
}

static const struct http_ops *load_http(void)
{
	static const struct http_ops *http;

	if (!http) {
		http = keystore_load_module("http-curl.so", "http_module_ops");
		if (http && http->abi_version != HTTP_ABI_VERSION)
			http = NULL;
		if (!http)
			gc_error(GCERR_FAIL, "cannot load the HTTP module");
	}
	return http;
}

/* one exchange of cred for a token; res transfer full */
static int exchange(const struct ctx *c, const struct credential *cred, const char *org,
		    struct exchange_result *res)
{
	const struct http_ops *http = load_http();
	struct exchange_params p = {
		.server = c->server,
		.token_path = c->token_path,
		.organization = org,
		.kind = cred->kind,
		.username = cred->username,
		.secret = cred->secret,
		.ca_file = c->vals.ca_file,
		.timeout = c->timeout,
	};

	memset(res, 0, sizeof(*res));
	if (!http)
		return GCERR_FAIL;
	return exchange_run(http, &p, res);
}

static void fingerprint(const struct credential *cred, char fp[17])
{
	codec_fingerprint(cred->kind, cred->username, cred->secret, fp);
}

/*
 * A token for (server, org) under cred: the cached one while fresh, else a
 * new one, cached when its expiry is known.  out transfer full; expires_at
 * 0 means unknown.
 */
static int obtain_token(struct ctx *c, const struct credential *cred, const char *org,
			int refresh, struct cached_token *out)
{
	struct cached_token cached = { 0 };
	struct exchange_result res;
	enum cache_verdict verdict = CACHE_UNUSABLE;
	int64_t now = now_epoch();
	char fp[17];
	int err;

	fingerprint(cred, fp);
	if (!refresh) {
		err = cache_get(&c->cache, c->server, org, &cached);
		cache_soft(err, "read");
		if (!err)
			verdict = cache_judge(&cached, fp, now, c->margin);
		if (verdict == CACHE_FRESH) {
			gc_debug("token for '%s' served from the cache", c->server);
			*out = cached;
			return 0;
		}
	}

	gc_debug("exchanging the credential at '%s%s'", c->server, c->token_path);
	err = exchange(c, cred, org, &res);
	if (err) {
		if (verdict == CACHE_STALE && err == GCERR_NETWORK &&
		    now_epoch() < cached.expires_at) {
			/* section 8: inside the margin but not expired */
			fprintf(stderr, "galileo-credential: warning: %s; using the cached token, which expires in %" PRId64 " s\n",
				gc_error_message() ? gc_error_message() : "refresh failed",
				cached.expires_at - now_epoch());
			gc_error_clear();
			*out = cached;
			return 0;
		}
		cached_token_release(&cached);
		return err;
	}
	cached_token_release(&cached);

	memset(out, 0, sizeof(*out));
	out->token = res.access_token;
	res.access_token = NULL;
	out->expires_at = res.expires_at;
	out->lifetime = res.lifetime;
	memcpy(out->fingerprint, fp, sizeof(fp));
	exchange_result_release(&res);

	if (out->expires_at > 0)
		cache_soft(cache_put(&c->cache, c->server, org, out), "write");
	else
		gc_debug("token expiry unknown; not caching it");
	return 0;
}

/* with the kernel tier, what lets the next hit skip the keystore */
static void remember_credential(struct ctx *c, const struct credential *cred,
				const struct cached_token *tok)
{
	if (c->cache.ks == &keystore_keyctl_ops && tok->expires_at > 0 &&
	    !env_nonempty("GALILEO_API_KEY"))
		cache_soft(keyctl_summary_put(cred, tok->fingerprint, tok->expires_at), "write");
}

/*
 * A fresh cached token, if there is one, and the credential it belongs
 * to.  With GALILEO_API_KEY or the kernel tier this reads no keystore: the
 * credential is the env key or the kernel's summary of the stored one
 * (secret NULL).  Both transfer full.  On a miss, GCERR_NOTFOUND, and cred
 * still holds the credential when a whole one was read (else it is empty),
 * so the caller need not read it again.
 */
static int serve_cached(struct ctx *c, const char *org, struct credential *cred,
			struct cached_token *tok)
{
	char fp[17];
	int err;

	memset(cred, 0, sizeof(*cred));
	if (!cache_enabled(&c->cache))
		return GCERR_NOTFOUND;
	if (env_nonempty("GALILEO_API_KEY") || c->cache.ks != &keystore_keyctl_ops) {
		err = load_credential(c, cred);
		if (!err)
			fingerprint(cred, fp);
	} else {
		err = keyctl_summary_get(c->server, cred, fp);
	}
	if (!err) {
		err = cache_get(&c->cache, c->server, final_org(c, org, cred), tok);
		if (!err && cache_judge(tok, fp, now_epoch(), c->margin) == CACHE_FRESH) {
			gc_debug("token for '%s' served from the %s cache", c->server, c->cache.ks->name);
			return 0;
		}
		cached_token_release(tok);
		if (!cred->secret)
			credential_release(cred);
	}
	gc_error_clear();	/* the slow path says what is wrong, if anything */
	return GCERR_NOTFOUND;
}

/*
 * The credential in use and a token for it under the organization order of
 * section 3; both transfer full, nothing to release on failure.  A fresh
 * cached token is served at once.  Otherwise one process per (server,
 * organization as asked) refreshes while the others wait and then take
 * its token from the cache (section 8).
 */
static int credential_and_token(struct ctx *c, const char *org, int refresh,
				struct credential *cred, struct cached_token *tok)
{
	int lock, err;

	open_cache(c);
	memset(cred, 0, sizeof(*cred));
	if (!refresh && !serve_cached(c, org, cred, tok))
		return 0;
	if ((err = flight_lock(c->server, org ? org : "", c->timeout, &lock))) {
		credential_release(cred);
		return err;
	}
	/*
	 * obtain_token reads the cache again, now under the lock.  When only
	 * the kernel's summary was read, a token another process got while
	 * we waited is served without reading the keystore.
	 */
	if (!cred->secret) {
		if (!refresh && c->cache.ks == &keystore_keyctl_ops &&
		    !serve_cached(c, org, cred, tok))
			goto out;
		if ((err = load_credential(c, cred)))
			goto out;
	}
	err = obtain_token(c, cred, final_org(c, org, cred), refresh, tok);
	if (err)
		credential_release(cred);
	else
		remember_credential(c, cred, tok);
out:
	flight_unlock(lock);
	return err;
}

/*
 * Where a token of the server may be cached, whatever token-cache says now
 * (a token may predate a change of it): the kernel keyring, and the
 * keystore's token items once the keystore is open.
 */
static size_t token_tiers(const struct ctx *c, struct cache tiers[2])
{
	size_t n = 0;

	if (keyctl_usable())
		tiers[n++].ks = &keystore_keyctl_ops;
	tiers[n].ks = c->ks;
	if (cache_enabled(&tiers[n]))
		n++;
	return n;
}

/* every cached token of the server, with the kernel's summary */
static int erase_tokens(struct ctx *c)
{
	struct cache tiers[2];
	size_t n = token_tiers(c, tiers);
	int err = 0;

	for (size_t i = 0; i < n; i++) {
		int e = cache_erase(&tiers[i], c->server, NULL);

		if (!err)
			err = e;
	}
	return err;
}

/* storing a new credential drops the server's cached tokens (section 8) */
static int store_credential(struct ctx *c, const struct credential *cred)
{
	int err;

	if ((err = open_writable_keystore(c)))
		return err;
	if ((err = c->ks->store(cred)))
		return err;
	cache_soft(erase_tokens(c), "erase");
	return 0;
}

static int erase_all(struct ctx *c)
{
	int err = open_keystore(c), tokens_err;

	if (!err && c->ks->erase)
		err = c->ks->erase(c->server);
	/* the kernel's tokens go even when the keystore cannot be reached */
	tokens_err = erase_tokens(c);
	return err ? err : tokens_err;
}

/* ---- input ----------------------------------------------------------- */

/* read all of stdin, at most max bytes; buffer wiped by caller */
static int read_all(FILE *in, size_t max, char **buf, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *b = xmalloc(cap + 1);

	for (;;) {
		size_t r;

		if (n == cap) {
			char *nb;

			if (cap > max) {
				secret_freezero(b, cap + 1);
				return gc_error(GCERR_INPUT, "input over %zu bytes refused", max);
			}
			nb = xmalloc(cap * 2 + 1);
			memcpy(nb, b, n);
			secret_freezero(b, cap + 1);
			b = nb;
			cap *= 2;
		}
		r = fread(b + n, 1, cap - n, in);
		n += r;
		if (r == 0)
			break;
	}
	if (n > max) {
		secret_freezero(b, cap + 1);
		return gc_error(GCERR_INPUT, "input over %zu bytes refused", max);
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

/* one line from f, newline and CR stripped; NULL on EOF/oversize */
static char *read_secret_line(FILE *f)
{
	char *buf = xmalloc(SECRET_LINE_MAX + 2);
	size_t len;

	if (!fgets(buf, SECRET_LINE_MAX + 2, f)) {
		secret_freezero(buf, SECRET_LINE_MAX + 2);
		return NULL;
	}
	len = strlen(buf);
	if (len > SECRET_LINE_MAX) {
		secret_freezero(buf, SECRET_LINE_MAX + 2);
		gc_error(GCERR_INPUT, "secret longer than %d bytes refused", SECRET_LINE_MAX);
		return NULL;
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	return buf;
}

/* the terminal with echo off (as ssh's read_passphrase), else one stdin line */
static char *read_secret(const char *prompt)
{
	struct termios old, quiet;
	char *secret = NULL;
	FILE *tty;

	if (!isatty(STDIN_FILENO))
		return read_secret_line(stdin);
	tty = fopen("/dev/tty", "r+");
	if (!tty)
		return read_secret_line(stdin);
	fputs(prompt, tty);
	fflush(tty);
	if (tcgetattr(fileno(tty), &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
		secret = read_secret_line(tty);
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
		fputc('\n', tty);
	}
	fclose(tty);
	return secret;
}

/* ---- native commands ------------------------------------------------- */

/* fmt is a literal: the hint is appended at compile time */
#define usage_error(fmt, arg) \
	gc_error(GCERR_USAGE, fmt "; see 'galileo-credential --help'", arg)

/*
 * --name VALUE and --name=VALUE.  allowed lists the options the command
 * takes, as "|server|kind|".
 */
static int parse_options(int argc, char **argv, const char *allowed, struct options *o)
{
	static const struct {
		const char *name;
		size_t off;
		int flag;
	} table[] = {
		{ "server", offsetof(struct options, server), 0 },
		{ "kind", offsetof(struct options, kind), 0 },
		{ "username", offsetof(struct options, username), 0 },
		{ "org-id", offsetof(struct options, org_id), 0 },
		{ "org-slug", offsetof(struct options, org_slug), 0 },
		{ "no-verify", offsetof(struct options, no_verify), 1 },
		{ "refresh", offsetof(struct options, refresh), 1 },
		{ "json", offsetof(struct options, json), 1 },
	};

	memset(o, 0, sizeof(*o));
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i], *value = NULL;
		char name[32], pattern[40];
		size_t n, k;

		if (strncmp(arg, "--", 2) != 0)
			return usage_error("unexpected argument '%s'", arg);
		n = strcspn(arg + 2, "=");
		if (n >= sizeof(name))
			return usage_error("unknown option '%s'", arg);
		memcpy(name, arg + 2, n);
		name[n] = '\0';
		snprintf(pattern, sizeof(pattern), "|%s|", name);
		for (k = 0; k < sizeof(table) / sizeof(table[0]); k++)
			if (strcmp(table[k].name, name) == 0)
				break;
		if (k == sizeof(table) / sizeof(table[0]) || !strstr(allowed, pattern))
			return usage_error("unknown option '%s'", arg);
		if (table[k].flag) {
			if (arg[2 + n] == '=')
				return usage_error("option '--%s' takes no value", name);
			*(int *)((char *)o + table[k].off) = 1;
			continue;
		}
		if (arg[2 + n] == '=')
			value = arg + 3 + n;
		else if (i + 1 < argc)
			value = argv[++i];
		if (!value || !*value)
			return usage_error("option '--%s' needs a value", name);
		*(const char **)((char *)o + table[k].off) = value;
	}
	return 0;
}

static int cmd_login(struct ctx *c, const struct options *o)
{
	struct credential cred = { 0 };
	struct cached_token tok = { 0 };
	const char *kind = o->kind ? o->kind : "api-key";
	const char *org = NULL;
	char *prompt;
	int err;

	if (!credential_kind_valid(kind))
		return gc_error(GCERR_USAGE, "unknown kind '%s'; use api-key, basic or bearer", kind);
	if (!strcmp(kind, "basic") && !o->username)
		return gc_error(GCERR_USAGE, "--kind basic needs --username; see 'galileo-credential --help'");
	if ((err = explicit_org(o->org_id, o->org_slug, &org)))
		return err;
	if ((err = resolve_server(c, o->server)))
		return err;
	/* find out the keystore can store before asking for anything */
	if ((err = open_writable_keystore(c)))
		return err;

	if (!strcmp(kind, "basic"))
		prompt = xasprintf("Password for '%s' at '%s': ", o->username, c->server);
	else if (!strcmp(kind, "bearer"))
		prompt = xasprintf("Bearer token for '%s': ", c->server);
	else
		prompt = xasprintf("Galileo API key for '%s': ", c->server);
	cred.secret = read_secret(prompt);
	free(prompt);
	if (!cred.secret || !*cred.secret) {
		err = gc_error(GCERR_INPUT, "no secret given for '%s'; nothing stored", c->server);
		goto out;
	}
	cred.server = xstrdup(c->server);
	cred.kind = xstrdup(kind);
	cred.username = xstrdup(o->username ? o->username : "");
	/* only what was asked for is remembered as the default */
	cred.organization = xstrdup(o->org_id ? o->org_id : o->org_slug ? o->org_slug : "");

	if (!o->no_verify) {
		struct exchange_result res;

		org = final_org(c, org, &cred);
		if ((err = exchange(c, &cred, org, &res)))
			goto out;
		tok.token = res.access_token;
		res.access_token = NULL;
		tok.expires_at = res.expires_at;
		tok.lifetime = res.lifetime;
		fingerprint(&cred, tok.fingerprint);
		exchange_result_release(&res);
	}
	if ((err = store_credential(c, &cred)))
		goto out;
	if (tok.token && tok.expires_at > 0) {
		open_cache(c);
		cache_soft(cache_put(&c->cache, c->server, org, &tok), "write");
		remember_credential(c, &cred, &tok);
	}
	fprintf(stderr, "galileo-credential: logged in to '%s'\n", c->server);
out:
	cached_token_release(&tok);
	credential_release(&cred);
	return err;
}

static int cmd_logout(struct ctx *c, const struct options *o)
{
	int err;

	if ((err = resolve_server(c, o->server)))
		return err;
	return erase_all(c);
}

static int cmd_token(struct ctx *c, const struct options *o)
{
	struct credential cred;
	struct cached_token tok = { 0 };
	const char *org;
	int err;

	if ((err = explicit_org(o->org_id, o->org_slug, &org)))
		return err;
	if ((err = resolve_server(c, o->server)))
		return err;
	if ((err = credential_and_token(c, org, o->refresh, &cred, &tok)))
		return err;
	printf("%s\n", tok.token);
	fflush(stdout);
	cached_token_release(&tok);
	credential_release(&cred);
	return err;
}

/* one server of status: tokens listed from the cache, never a secret */
static void status_server(struct ctx *c, const struct credential *cred, const char *keystore,
			  int json, json_t *servers)
{
	struct cache_entry *toks = NULL;
	size_t nt = 0;
	int64_t now = now_epoch();
	char when[21];
	json_t *jt = json_array();

	if (cache_enabled(&c->cache))
		cache_soft(cache_list(&c->cache, cred->server, &toks, &nt), "list");
	if (!json) {
		printf("%s\n  kind: %s\n  username: %s\n  keystore: %s\n  organization: %s\n",
		       cred->server, cred->kind, *cred->username ? cred->username : "-",
		       keystore, *cred->organization ? cred->organization : "-");
	}
	for (size_t i = 0; i < nt; i++) {
		int64_t left = toks[i].meta.expires_at - now;

		if (left < 0)
			left = 0;
		tokentime_format(toks[i].meta.expires_at, when);
		if (json)
			json_array_append_new(jt, json_pack("{s:s, s:s, s:I}",
				"organization", toks[i].organization, "expires_at", when,
				"seconds_left", (json_int_t)left));
		else
			printf("  token: organization=%s expires_at=%s seconds_left=%" PRId64 "\n",
			       *toks[i].organization ? toks[i].organization : "-", when, left);
	}
	cache_entry_free_list(toks, nt);
	if (json)
		json_array_append_new(servers, json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}",
			"server", cred->server, "kind", cred->kind, "username", cred->username,
			"keystore", keystore, "organization", cred->organization, "tokens", jt));
	else
		json_decref(jt);
}

static int cmd_status(struct ctx *c, const struct options *o)
{
	struct credential *list = NULL;
	size_t n = 0, shown = 0;
	json_t *servers = json_array();
	int err;

	if ((err = resolve_server(c, o->server)))
		goto out;
	if (env_nonempty("GALILEO_API_KEY")) {
		/* the env key needs no keystore; a missing one is no error then */
		if (!open_keystore(c) && c->ks->list)
			cache_soft(c->ks->list(&list, &n), "list");
		gc_error_clear();
	} else {
		if ((err = open_keystore(c)))
			goto out;
		if (c->ks->list && (err = c->ks->list(&list, &n)))
			goto out;
	}
	open_cache(c);

	for (size_t i = 0; i < n; i++) {
		if (o->server && strcmp(list[i].server, c->server))
			continue;
		status_server(c, &list[i], c->ks->name, o->json, servers);
		shown++;
	}
	if (env_nonempty("GALILEO_API_KEY")) {
		struct credential env = { 0 };

		keystore_env_ops.get(c->server, &env);
		status_server(c, &env, "env", o->json, servers);
		credential_release(&env);
		shown++;
	}
	if (!shown) {
		err = o->server ? not_found(c->server) :
			gc_error(GCERR_NOTFOUND, "no credential stored; run 'galileo-credential login'");
		goto out;
	}
	if (o->json) {
		json_t *doc = json_pack("{s:O}", "servers", servers);

		json_dumpf(doc, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(doc);
	}
out:
	json_decref(servers);
	credential_free_list(list, n);
	return err;
}

/* ---- git dialect ----------------------------------------------------- */

static int git_server(struct ctx *c, const struct git_request *req)
{
	char *url = NULL, *slash;
	int err;

	if (req->url) {
		/* git's path is ignored, in url= as in path= (section 3) */
		if ((err = url_canonicalize(req->url, &url)))
			return err;
		slash = strchr(strstr(url, "://") + 3, '/');
		if (slash)
			*slash = '\0';
	} else if (req->protocol && req->host) {
		if ((err = url_from_git(req->protocol, req->host, &url)))
			return err;
	}
	err = resolve_server(c, url);
	free(url);
	return err;
}

static int git_get(struct ctx *c, const struct git_request *req)
{
	struct credential cred;
	struct cached_token tok = { 0 };
	const char *org;
	char expiry[32] = "";
	int err;

	if ((err = explicit_org(req->organization_id, req->organization_slug, &org)))
		return err;
	if ((err = git_server(c, req)))
		return err;
	if ((err = credential_and_token(c, org, 0, &cred, &tok)))
		return err;
	if (tok.expires_at > 0)
		snprintf(expiry, sizeof(expiry), "%" PRId64, tok.expires_at);

	/* refuse values git would split into lines before writing any */
	if (strpbrk(cred.username, "\r\n")) {
		err = gc_error(GCERR_INPUT, "stored username for '%s' holds a newline", c->server);
		goto out;
	}
	if (req->cap_authtype) {
		gitproto_write(stdout, "capability[]", "authtype");
		gitproto_write(stdout, "authtype", "Bearer");
		gitproto_write(stdout, "credential", tok.token);
		gitproto_write(stdout, "ephemeral", "1");
	} else {
		gitproto_write(stdout, "username", *cred.username ? cred.username : "token");
		gitproto_write(stdout, "password", tok.token);
	}
	if (*expiry)
		gitproto_write(stdout, "password_expiry_utc", expiry);
	fflush(stdout);
out:
	cached_token_release(&tok);
	credential_release(&cred);
	return err;
}

/* a cached token of this server equal to secret: which organization, where */
static char *cached_token_org(struct ctx *c, const char *secret, struct cache *where)
{
	struct cache tiers[2];
	size_t n = token_tiers(c, tiers);
	char *org;

	for (size_t i = 0; i < n; i++) {
		if ((org = cache_find_token(&tiers[i], c->server, secret))) {
			if (where)
				*where = tiers[i];
			return org;
		}
	}
	return NULL;
}

static int git_store(struct ctx *c, const struct git_request *req)
{
	struct credential cred = { 0 };
	const char *kind = req->kind ? req->kind : "api-key";
	const char *org = NULL;
	char *echo;
	int err;

	/* git stores after every use: what get gave out must not replace the key */
	if (req->has_password_expiry_utc || req->has_ephemeral || req->authtype ||
	    req->credential || !req->password || !*req->password) {
		gc_debug("store: nothing to store (echo of a token or no password)");
		return 0;
	}
	if (!credential_kind_valid(kind))
		return gc_error(GCERR_INPUT, "unknown kind '%s'; use api-key, basic or bearer", kind);
	if ((err = explicit_org(req->organization_id, req->organization_slug, &org)))
		return err;
	if ((err = git_server(c, req)))
		return err;
	if ((err = open_keystore(c)))
		return err;
	echo = cached_token_org(c, req->password, NULL);
	if (echo) {
		free(echo);
		gc_debug("store: password is a cached token; not storing it");
		return 0;
	}
	cred.server = xstrdup(c->server);
	cred.kind = xstrdup(kind);
	cred.username = xstrdup(req->username ? req->username : "");
	cred.organization = xstrdup(req->organization_id ? req->organization_id :
				    req->organization_slug ? req->organization_slug : "");
	cred.secret = xstrdup(req->password);
	err = store_credential(c, &cred);
	credential_release(&cred);
	return err;
}

static int git_erase(struct ctx *c, const struct git_request *req)
{
	const char *secret = req->password ? req->password : req->credential;
	struct credential stored;
	struct cache where;
	char *org;
	int err;

	if ((err = git_server(c, req)))
		return err;
	if (!secret)
		return erase_all(c);
	if ((err = open_keystore(c)))
		return err;

	/* git's reject after the server refused a token: drop that token only */
	org = cached_token_org(c, secret, &where);
	if (org) {
		gc_debug("erase: dropping one cached token of '%s'", c->server);
		err = cache_erase(&where, c->server, org);
		free(org);
		return err;
	}
	if (!c->ks->get)
		return 0;
	err = c->ks->get(c->server, &stored);
	if (err == GCERR_NOTFOUND)
		return 0;
	if (err)
		return err;
	if (strcmp(stored.secret, secret) == 0)
		err = erase_all(c);
	else
		gc_debug("erase: password matches nothing stored; nothing erased");
	credential_release(&stored);
	return err;
}

static int run_git(struct ctx *c, const char *action)
{
	struct git_request req;
	int err;

	if (!strcmp(action, "capability")) {
		printf("version 0\ncapability authtype\n");
		return 0;
	}
	if (strcmp(action, "get") && strcmp(action, "store") && strcmp(action, "erase"))
		return 0;	/* git: unknown actions are ignored */

	gitproto_init(&req);
	if ((err = gitproto_read(&req, stdin)))
		return err;
	if (!strcmp(action, "get"))
		err = git_get(c, &req);
	else if (!strcmp(action, "store"))
		err = git_store(c, &req);
	else
		err = git_erase(c, &req);
	gitproto_release(&req);
	return err;
}

/* ---- docker dialect -------------------------------------------------- */

static int docker_read(char **buf, size_t *len)
{
	return read_all(stdin, DOCKERPROTO_MAX_INPUT, buf, len);
}

static int docker_get(struct ctx *c, const char *given)
{
	struct credential cred;
	struct cached_token tok = { 0 };
	char *out;
	int err;

	if ((err = resolve_server(c, given)))
		return err;
	if ((err = credential_and_token(c, NULL, 0, &cred, &tok)))
		return err;
	/* NULL when a value is not UTF-8: JSON cannot carry it */
	out = dockerproto_format_get(given, cred.username, tok.token);
	if (out) {
		printf("%s\n", out);
		fflush(stdout);
		secret_free(out);
	} else {
		err = gc_error(GCERR_INPUT, "server URL or username is not UTF-8");
	}
	cached_token_release(&tok);
	credential_release(&cred);
	return err;
}

static int docker_store(struct ctx *c, const char *buf, size_t len)
{
	struct credential cred = { 0 };
	char *url = NULL, *user = NULL, *secret = NULL, *echo;
	int err;

	if ((err = dockerproto_parse_store(buf, len, &url, &user, &secret)))
		goto out;
	if (!*user) {
		err = gc_error(GCERR_INPUT, "no credentials username");
		goto out;
	}
	if (!*secret) {
		err = gc_error(GCERR_INPUT, "no credentials secret");
		goto out;
	}
	if ((err = resolve_server(c, url)) || (err = open_keystore(c)))
		goto out;
	if ((echo = cached_token_org(c, secret, NULL))) {
		free(echo);
		goto out;
	}
	cred.server = xstrdup(c->server);
	cred.kind = xstrdup("api-key");
	cred.username = user;
	cred.organization = xstrdup("");
	cred.secret = secret;
	user = secret = NULL;
	err = store_credential(c, &cred);
out:
	credential_release(&cred);
	free(url);
	free(user);
	secret_free(secret);
	return err;
}

static int docker_list(struct ctx *c)
{
	struct credential *list = NULL;
	size_t n = 0;
	char **servers, **users, *out;
	int err;

	if ((err = resolve_server(c, NULL)) || (err = open_keystore(c)))
		return err;
	if (c->ks->list && (err = c->ks->list(&list, &n)))
		return err;
	servers = xcalloc(n, sizeof(*servers));
	users = xcalloc(n, sizeof(*users));
	for (size_t i = 0; i < n; i++) {
		servers[i] = list[i].server;
		users[i] = list[i].username;
	}
	out = dockerproto_format_list(servers, users, n);
	if (out)
		printf("%s\n", out);
	else
		err = gc_error(GCERR_FAIL, "a stored server or username is not UTF-8");
	free(out);
	free(servers);
	free(users);
	credential_free_list(list, n);
	return err;
}

static int run_docker(struct ctx *c, const char *action)
{
	char *buf = NULL, *url = NULL;
	size_t len = 0;
	int err;

	if (!strcmp(action, "version")) {
		printf("docker-credential-galileo (galileo-credential) %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (!strcmp(action, "list"))
		return docker_list(c);
	if (strcmp(action, "store") && strcmp(action, "get") && strcmp(action, "erase"))
		return gc_error(GCERR_USAGE, "unknown docker action '%s'", action);
	if ((err = docker_read(&buf, &len)))
		return err;
	if (!strcmp(action, "store")) {
		err = docker_store(c, buf, len);
	} else if (!(err = dockerproto_parse_server(buf, len, &url))) {
		if (!strcmp(action, "get"))
			err = docker_get(c, url);
		else if (!(err = resolve_server(c, url)))
			err = erase_all(c);
	}
	free(url);
	secret_freezero(buf, len);
	return err;
}

/* ---- main ------------------------------------------------------------ */

static enum dialect dialect_of(const char *argv0)
{
	const char *base = strrchr(argv0, '/');

	base = base ? base + 1 : argv0;
	if (!strcmp(base, "git-credential-galileo"))
		return DIALECT_GIT;
	if (!strcmp(base, "docker-credential-galileo"))
		return DIALECT_DOCKER;
	return DIALECT_NATIVE;
}

static int run_native(struct ctx *c, int argc, char **argv)
{
	const char *cmd = argv[0];
	struct options o;
	int err;

	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version")) {
		printf("galileo-credential %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "get") || !strcmp(cmd, "store") || !strcmp(cmd, "erase") ||
	    !strcmp(cmd, "capability"))
		return run_git(c, cmd);
	if (!strcmp(cmd, "login"))
		err = parse_options(argc - 1, argv + 1,
				    "|server|kind|username|org-id|org-slug|no-verify|", &o);
	else if (!strcmp(cmd, "logout"))
		err = parse_options(argc - 1, argv + 1, "|server|", &o);
	else if (!strcmp(cmd, "token"))
		err = parse_options(argc - 1, argv + 1, "|server|org-id|org-slug|refresh|", &o);
	else if (!strcmp(cmd, "status"))
		err = parse_options(argc - 1, argv + 1, "|server|json|", &o);
	else
		return usage_error("unknown command '%s'", cmd);
	if (err)
		return err;
	if (!strcmp(cmd, "login"))
		return cmd_login(c, &o);
	if (!strcmp(cmd, "logout"))
		return cmd_logout(c, &o);
	if (!strcmp(cmd, "token"))
		return cmd_token(c, &o);
	return cmd_status(c, &o);
}

int main(int argc, char **argv)
{
	enum dialect dialect = dialect_of(argc > 0 ? argv[0] : "");
	struct ctx c = { 0 };
	int err, argi = 1;

	harden_process();
	setvbuf(stdin, stdin_buf, _IOFBF, sizeof(stdin_buf));
	setvbuf(stdout, stdout_buf, _IOFBF, sizeof(stdout_buf));
	secret_json_init();

	if (argi < argc && !strncmp(argv[argi], "--protocol=", 11)) {
		const char *p = argv[argi] + 11;

		if (!strcmp(p, "git"))
			dialect = DIALECT_GIT;
		else if (!strcmp(p, "docker"))
			dialect = DIALECT_DOCKER;
		else if (!strcmp(p, "native"))
			dialect = DIALECT_NATIVE;
		else {
			fprintf(stderr, "galileo-credential: unknown protocol '%s'; use git or docker\n", p);
			return 2;
		}
		argi++;
	}
	if (argi >= argc) {
		if (dialect == DIALECT_DOCKER) {
			printf("usage: docker-credential-galileo store|get|erase|list|version\n");
			return 1;
		}
		fputs(usage_text, stderr);
		return 2;
	}

	err = load_config(&c);
	if (!err) {
		if (dialect == DIALECT_GIT)
			err = run_git(&c, argv[argi]);
		else if (dialect == DIALECT_DOCKER)
			err = run_docker(&c, argv[argi]);
		else
			err = run_native(&c, argc - argi, argv + argi);
	}

	if (err) {
		const char *msg = gc_error_message();

		if (!msg)
			msg = "failed";
		if (dialect == DIALECT_DOCKER) {
			/* docker reads errors from stdout, and knows this one by name */
			printf("%s\n", err == GCERR_NOTFOUND ?
			       "credentials not found in native keychain" : msg);
			err = GCERR_FAIL;
		} else {
			fprintf(stderr, "galileo-credential: %s\n", msg);
		}
	}
	free(c.server);
	config_release(&c.cfg);
	fflush(stdout);
	secret_wipe(stdin_buf, sizeof(stdin_buf));
	secret_wipe(stdout_buf, sizeof(stdout_buf));
	return gc_exit_code(err);
}
