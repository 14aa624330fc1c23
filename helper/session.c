/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "helper/prompt.h"
#include "helper/session.h"
#include "helper/context.h"
#include "keystore/loader.h"
#include "lib/common.h"
#include "lib/org.h"
#include "lib/text.h"
#include "lib/url.h"
#include "token/generation.h"
#include "token/http.h"
#include "token/lock.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

bool session_env_key(void)
{
	return env_nonempty("GALILEO_API_KEY") != NULL;
}

int session_init(struct session *s)
{
	int err;

	memset(s, 0, sizeof(*s));
	config_init(&s->cfg);
	if ((err = config_default_path(&s->config_path)))
		return err;
	return config_load(&s->cfg, s->config_path);
}

static const struct http_ops *load_http(void);

void session_release(struct session *s)
{
	if (s->call)
		exchange_abandon(load_http(), s->call);
	free(s->call_org);
	free(s->config_path);
	free(s->home);
	free(s->server);
	free(s->org_config);
	if (s->stack_ready)
		stack_release(&s->stack);
	config_release(&s->cfg);
	memset(s, 0, sizeof(*s));
}

/*
 * galileo-credential(1) SERVER AND ORGANIZATION, steps 2-5: the environment,
 * the config, the default
 */
static int home_server(struct session *s, char **out)
{
	const char *v;

	if ((v = env_nonempty("GALILEO_API_URL")))
		return url_canonicalize(v, out);
	if ((v = env_nonempty("GALILEO_CONSOLE_URL")))
		return url_from_console(v, out);
	if (s->cfg.global.server)
		return url_canonicalize(s->cfg.global.server, out);
	return url_canonicalize(DEFAULT_SERVER, out);
}

static const char *stack_spec(const struct session *s)
{
	const char *v = env_nonempty("GALILEO_CREDENTIAL_KEYSTORE");

	if (v)
		return v;
	return s->vals.keystore ? s->vals.keystore : STACK_DEFAULT;
}

static const char *token_cache_name(const struct session *s)
{
	const char *v = env_nonempty("GALILEO_CREDENTIAL_TOKEN_CACHE");

	return v ? v : s->vals.token_cache ? s->vals.token_cache : "keyctl";
}

/* the configuration modules' options come from (one session per process) */
static const struct config *option_source;

static const char *module_option(const char *module, const char *key)
{
	return option_source ? config_option(option_source, module, key) : NULL;
}

static bool module_has_options(const char *module)
{
	return option_source && config_has_options(option_source, module);
}

static int module_check_options(const char *module, const struct gc_option *declared)
{
	return option_source ? config_check_options(option_source, module, declared) : 0;
}

static int settle(struct session *s)
{
	const char *cache;
	int err;

	config_resolve(&s->cfg, s->server, &s->vals);
	cache = token_cache_name(s);
	s->margin = s->vals.refresh_margin >= 0 ? s->vals.refresh_margin : DEFAULT_MARGIN;
	s->timeout = s->vals.timeout > 0 ? s->vals.timeout : EXCHANGE_DEFAULT_TIMEOUT;
	s->token_path = s->vals.token_path ? s->vals.token_path : EXCHANGE_DEFAULT_PATH;
	if (s->vals.organization_id)
		s->org_config = xstrdup(s->vals.organization_id);
	else if (s->vals.organization_slug)
		s->org_config = org_from_slug(s->vals.organization_slug);
	if (strcmp(cache, "keyctl") && strcmp(cache, "keystore") && strcmp(cache, "file") &&
	    strcmp(cache, "none"))
		return gc_error(GCERR_FAIL, "unknown token-cache '%s'; use 'keyctl', 'keystore', 'file' or 'none'",
				cache);
	if ((err = stack_parse(&s->stack, stack_spec(s))))
		return err;
	s->stack_ready = true;
	s->stack.settings.timeout = s->timeout;
	s->stack.settings.interactive = isatty(STDERR_FILENO);
	s->stack.settings.home_server = s->home;
	s->stack.settings.option = module_option;
	s->stack.settings.has_options = module_has_options;
	s->stack.settings.check_options = module_check_options;
	s->stack.settings.prompt = prompt_tty;
	option_source = &s->cfg;
	/*
	 * An unknown backend fails closed, even when a cached token would do;
	 * but the default stack names secret-service, which a headless install
	 * leaves out: there it is merely unavailable.
	 */
	if ((err = stack_check(&s->stack, !strcmp(stack_spec(s), STACK_DEFAULT))) ||
	    (err = stack_check_options(&s->stack)))
		return err;
	context_of(s->config_path, &s->stack, &s->cfg, s->context);
	gc_debug("server '%s', keystore '%s', token-cache '%s', context %s", s->server,
		 stack_spec(s), cache, s->context);
	return 0;
}

int session_use_server(struct session *s, const char *url, bool url_is_home)
{
	int err;

	if (url) {
		if ((err = url_canonicalize(url, &s->server)))
			return err;
		s->home = url_is_home ? xstrdup(s->server) : NULL;
	}
	if (!s->home && (err = home_server(s, &s->home)))
		return err;
	if (!s->server)
		s->server = xstrdup(s->home);
	return settle(s);
}

struct keystore_stack *session_stack(struct session *s)
{
	return &s->stack;
}

int session_known(struct session *s, bool *known, struct gc_credential *stored)
{
	struct gc_credential cred;
	int err;

	*known = !strcmp(s->server, s->home) || config_has_section(&s->cfg, s->server);
	err = stack_get(&s->stack, s->server, &cred, &s->backend);
	if (err == GCERR_NOTFOUND)
		return 0;
	if (err)
		return err;
	*known = true;
	if (stored)
		*stored = cred;
	else
		credential_release(&cred);
	return 0;
}

/* ---- tiers and policy ---------------------------------------------------- */

/* the tier kept by the stack's writer, or NULL when it cannot hold tokens */
static const struct token_tier *keystore_tier(struct session *s)
{
	struct stack_entry *e;

	if (s->keystore_tier.name)
		return &s->keystore_tier;
	if (!(e = stack_token_store(&s->stack))) {
		gc_debug("the keystore cannot hold tokens");
		return NULL;
	}
	tier_keystore_init(&s->keystore_tier, e);
	tier_bind(&s->keystore_tier, s->context);
	return &s->keystore_tier;
}

static const struct token_tier *kernel_tier(struct session *s)
{
	if (!s->kernel_tier.name && tier_keyctl_init(&s->kernel_tier))
		tier_bind(&s->kernel_tier, s->context);
	return s->kernel_tier.name ? &s->kernel_tier : NULL;
}

static const struct token_tier *file_tier(struct session *s)
{
	if (!s->file_tier.name) {
		tier_file_init(&s->file_tier);
		tier_bind(&s->file_tier, s->context);
	}
	return &s->file_tier;
}

static bool env_first(const struct session *s);

/*
 * keyctl where the kernel allows it; where it refuses (a container), the
 * keystore's token items, unless the credential is GALILEO_API_KEY's (a
 * hit must read no keystore) or the keystore cannot hold tokens: then
 * the sealed files.
 */
static const struct token_tier *session_tier(struct session *s)
{
	const char *name = token_cache_name(s);

	if (s->tier_ready)
		return s->tier;
	s->tier_ready = true;
	if (!strcmp(name, "none"))
		s->tier = NULL;
	else if (!strcmp(name, "file"))
		s->tier = file_tier(s);
	else if (!strcmp(name, "keystore"))
		s->tier = keystore_tier(s);
	else if (!(s->tier = kernel_tier(s)) && (env_first(s) || !(s->tier = keystore_tier(s))))
		s->tier = file_tier(s);
	return s->tier;
}

const char *session_tier_reason(struct session *s)
{
	const struct token_tier *t = session_tier(s);

	if (!t || strcmp(token_cache_name(s), "keyctl") || t == &s->kernel_tier)
		return "";
	if (t == &s->keystore_tier)
		return " (the kernel refuses keyctl here)";
	return env_first(s) ? " (the kernel refuses keyctl here; the credential is GALILEO_API_KEY's)" :
			      " (the kernel refuses keyctl here and the keystore cannot hold tokens)";
}

static int source_credential(void *ctx, struct gc_credential *out)
{
	struct session *s = ctx;
	int err = stack_get(&s->stack, s->server, out, &s->backend);

	if (err == GCERR_NOTFOUND)
		err = gc_error(err, "no credential stored for '%s'; run 'galileo-credential login --server %s'",
			       s->server, s->server);
	/* it becomes a request parameter and a keystore attribute: never a wait */
	if (!err && !text_is_utf8(out->organization)) {
		credential_release(out);
		err = gc_error(GCERR_INPUT, "the organization stored for '%s' is not valid UTF-8; run 'galileo-credential login --server %s' to replace it",
			       s->server, s->server);
	}
	return err;
}

static int source_exchange(void *ctx, const struct gc_credential *cred, const char *org,
			   struct exchange_result *res)
{
	return session_exchange(ctx, cred, org, res);
}

static uint64_t source_generation(void *ctx)
{
	return generation_current(((struct session *)ctx)->server);
}

static void source_prepare(void *ctx, const char *org)
{
	session_prepare(ctx, org);
}

/* where a token goes when the kernel's key quota is full */
static const struct token_tier *source_fallback(void *ctx)
{
	struct session *s = ctx;
	const struct token_tier *t;

	if (!session_tier(s) || session_tier(s) != &s->kernel_tier)
		return NULL;
	return (t = keystore_tier(s)) ? t : file_tier(s);
}

/*
 * In the detached refresh: 0-2 on /dev/null and nothing else of the
 * caller's kept but the lock (fd 3), so no pipeline waits on us.
 */
static void detach_descriptors(int lock)
{
	int fd;

	/* dup2 clears close-on-exec; a lock that is fd 3 already needs it cleared */
	if (lock < 0 || (lock == 3 ? fcntl(3, F_SETFD, 0) : dup2(lock, 3)) < 0)
		_exit(0);
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 3)
			close(fd);
	}
	if (close_range(4, ~0U, 0) < 0)
		for (fd = 4; fd < 1024; fd++)
			close(fd);
}

/*
 * A process of its own for the refresh ahead: forked twice so that no
 * zombie is left to us, in its own session, with none of the caller's
 * descriptors so that git and docker (and anything else reading from a
 * pipe we inherited) see this call end now, and exec'd afresh, since a
 * process that forks after GLib started threads cannot use D-Bus again.
 * It inherits the exchange lock as fd 3.  argv carries no secret.
 */
static void source_spawn_ahead(void *ctx, const char *org)
{
	struct session *s = ctx;
	const char *home = !strcmp(s->server, s->home) ? "home" : "other";
	char *argv[] = { "galileo-credential", "refresh-ahead", s->server, (char *)home,
			 (char *)org, "3", NULL };
	pid_t pid;
	int lock;

	/* single flight: a busy lock is a refresh under way already */
	if (flight_lock(s->server, org, 0, &lock)) {
		gc_debug("no refresh ahead: %s", gc_error_message());
		gc_error_clear();
		return;
	}
	fflush(NULL);
	if ((pid = fork()) != 0) {
		if (pid > 0)
			waitpid(pid, NULL, 0);
		lock_release(lock);	/* the refresh holds it now */
		return;
	}
	if (fork() != 0)
		_exit(0);
	setsid();
	detach_descriptors(lock);
	execv("/proc/self/exe", argv);
	_exit(0);
}

/* the env key is read first, without any keystore (SERVER AND ORGANIZATION) */
static bool env_first(const struct session *s)
{
	return session_env_key() && !strcmp(s->server, s->home) &&
	       s->stack.n && !strcmp(s->stack.entries[0].name, "env");
}

void session_policy(struct session *s, struct token_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->server = s->server;
	p->margin = s->margin;
	p->timeout = s->timeout;
	p->tier = session_tier(s);
	p->env_credential = env_first(s);
	p->background = !s->vals.refresh || strcmp(s->vals.refresh, "inline");
	p->src.ctx = s;
	p->src.credential = source_credential;
	p->src.exchange = source_exchange;
	p->src.generation = source_generation;
	p->src.fallback = source_fallback;
	p->src.spawn_ahead = source_spawn_ahead;
	p->src.prepare = source_prepare;
}

size_t session_token_tiers(struct session *s, const struct token_tier *out[SESSION_TIERS])
{
	size_t n = 0;

	if ((out[n] = kernel_tier(s)))
		n++;
	if ((out[n] = keystore_tier(s)))
		n++;
	out[n++] = file_tier(s);
	return n;
}

/* ---- the exchange -------------------------------------------------------- */

/* the loading policy's reason, when it refused the file, else a plain one */
static const struct http_ops *load_http(void)
{
	static const struct http_ops *http;

	if (http)
		return http;
	http = module_helper(HTTP_MODULE_FILE, HTTP_ENTRY_SYMBOL, "http-curl");
	if (http && http->abi_version != HTTP_ABI_VERSION) {
		http = NULL;
		gc_error(GCERR_FAIL, "the HTTP module '%s' is of another version; reinstall galileo-credential",
			 HTTP_MODULE_FILE);
	}
	if (!http && !gc_error_message())
		gc_error(GCERR_FAIL, "cannot load the HTTP module '%s'; reinstall galileo-credential or set GALILEO_CREDENTIAL_MODULE_DIR",
			 HTTP_MODULE_FILE);
	return http;
}

/*
 * galileo-credential(1) CONFIGURATION: a CA file that is not a regular file
 * fails at once
 */
static int check_ca_file(const char *server, const char *path)
{
	struct stat st;

	/* a missing or unreadable one is curl's to report */
	if (!path || stat(path, &st) || S_ISREG(st.st_mode))
		return 0;
	return gc_error(GCERR_NETWORK, "the request to '%s' failed: the ca-file '%s' is not a regular file; check ca-file in the configuration",
			server, path);
}

static void exchange_params_of(const struct session *s, const char *org,
			       struct exchange_params *p)
{
	memset(p, 0, sizeof(*p));
	p->server = s->server;
	p->token_path = s->token_path;
	p->organization = org;
	p->ca_file = s->vals.ca_file;
	p->timeout = s->timeout;
}

void session_prepare(struct session *s, const char *org)
{
	const struct http_ops *http;
	struct exchange_params p;

	/*
	 * Only to a server known without the keystore (the home server, one
	 * with a section): an unscoped helper asked about any host must not
	 * even connect to it before a credential for it is found.
	 */
	if (strcmp(s->server, s->home) && !config_has_section(&s->cfg, s->server))
		return;
	if (s->call || check_ca_file(s->server, s->vals.ca_file) || !(http = load_http())) {
		gc_error_clear();	/* the exchange says so, if it comes to that */
		return;
	}
	exchange_params_of(s, org, &p);
	if ((s->call = exchange_begin(http, &p)))
		s->call_org = xstrdup(org);
}

int session_exchange(struct session *s, const struct gc_credential *cred, const char *org,
		     struct exchange_result *res)
{
	const struct http_ops *http;
	struct exchange_params p;
	int err;

	memset(res, 0, sizeof(*res));
	if ((err = check_ca_file(s->server, s->vals.ca_file)))
		return err;
	if (!(http = load_http()))
		return GCERR_FAIL;
	exchange_params_of(s, org, &p);
	p.kind = cred->kind;
	p.username = cred->username;
	p.secret = cred->secret;
	if (s->call && !strcmp(s->call_org, org))
		p.call = s->call;	/* begun for this very URL */
	else if (s->call)
		exchange_abandon(http, s->call);
	s->call = NULL;
	free(s->call_org);
	s->call_org = NULL;
	return exchange_run(http, &p, res);
}

/* ---- organizations ------------------------------------------------------- */

static int check_org_id(const char *id)
{
	if (id && !url_is_uuid(id))
		return gc_error(GCERR_INPUT, "invalid organization id '%s'; expected a UUID", id);
	return 0;
}

int session_explicit_org(const char *id, const char *slug, char **org)
{
	bool env = false;
	int err;

	*org = NULL;
	if (id && slug)
		return gc_error(GCERR_USAGE, "give either an organization id or a slug, not both");
	if (!id && !slug) {
		id = env_nonempty("GALILEO_ORGANIZATION_ID");
		slug = id ? NULL : env_nonempty("GALILEO_ORGANIZATION_SLUG");
		env = true;
	}
	if ((err = org_check_text(id, env ? "GALILEO_ORGANIZATION_ID" : "the organization id")) ||
	    (err = org_check_text(slug, env ? "GALILEO_ORGANIZATION_SLUG" : "the organization slug")) ||
	    (err = check_org_id(id)))
		return err;
	if (id)
		*org = xstrdup(id);
	else if (slug)
		*org = org_from_slug(slug);
	return 0;
}
