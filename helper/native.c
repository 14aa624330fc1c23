/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include "helper/dialect.h"
#include "helper/login.h"
#include "helper/status.h"
#include "helper/store.h"
#include "lib/common.h"
#include "lib/org.h"
#include "token/policy.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * The native dialect (galileo-credential(1) COMMANDS): login, logout, token,
 * status, doctor, and the git actions under their own names.
 */

struct options {
	const char *server;
	const char *kind;
	const char *username;
	const char *org_id;
	const char *org_slug;
	const char *min_ttl;
	int no_verify;
	int refresh;
	int json;
	int api_key;
};

const char native_usage[] =
	"usage: galileo-credential login  [--server URL] [--kind api-key|basic|bearer]\n"
	"                                 [--username NAME] [--org-id UUID | --org-slug SLUG]\n"
	"                                 [--no-verify]\n"
	"       galileo-credential logout [--server URL]\n"
	"       galileo-credential token  [--server URL] [--org-id UUID | --org-slug SLUG] [--refresh]\n"
	"                                 [--min-ttl SECONDS]\n"
	"       galileo-credential exec   [--server URL] [--org-id UUID | --org-slug SLUG]\n"
	"                                 [--min-ttl SECONDS] [--api-key] -- COMMAND [ARG...]\n"
	"       galileo-credential status [--server URL] [--json]\n"
	"       galileo-credential doctor [--server URL]\n"
	"       galileo-credential get | store | erase | capability   (git format on stdin)\n"
	"       galileo-credential --help | --version\n"
	"\n"
	"Also runs as git-credential-galileo and docker-credential-galileo.\n"
	"See galileo-credential(1).\n";

/* fmt is a literal: the hint is appended at compile time */
#define usage_error(fmt, arg) \
	gc_error(GCERR_USAGE, fmt "; see 'galileo-credential --help'", arg)

static const struct option_spec {
	const char *name;
	size_t off;
	int flag;
} option_table[] = {
	{ "server", offsetof(struct options, server), 0 },
	{ "kind", offsetof(struct options, kind), 0 },
	{ "username", offsetof(struct options, username), 0 },
	{ "org-id", offsetof(struct options, org_id), 0 },
	{ "org-slug", offsetof(struct options, org_slug), 0 },
	{ "min-ttl", offsetof(struct options, min_ttl), 0 },
	{ "no-verify", offsetof(struct options, no_verify), 1 },
	{ "api-key", offsetof(struct options, api_key), 1 },
	{ "refresh", offsetof(struct options, refresh), 1 },
	{ "json", offsetof(struct options, json), 1 },
};

static const struct option_spec *find_option(const char *name, const char *allowed)
{
	char pattern[40];

	snprintf(pattern, sizeof(pattern), "|%s|", name);
	if (!strstr(allowed, pattern))
		return NULL;
	for (size_t k = 0; k < sizeof(option_table) / sizeof(option_table[0]); k++)
		if (!strcmp(option_table[k].name, name))
			return &option_table[k];
	return NULL;
}

/*
 * --name VALUE and --name=VALUE.  allowed lists the options the command
 * takes, as "|server|kind|".
 */
static int parse_options(int argc, char **argv, const char *allowed, struct options *o)
{
	memset(o, 0, sizeof(*o));
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i], *value = NULL;
		const struct option_spec *spec;
		char name[32];
		size_t n;

		if (strncmp(arg, "--", 2) != 0)
			return usage_error("unexpected argument '%s'", arg);
		n = strcspn(arg + 2, "=");
		if (n >= sizeof(name))
			return usage_error("unknown option '%s'", arg);
		memcpy(name, arg + 2, n);
		name[n] = '\0';
		if (!(spec = find_option(name, allowed)))
			return usage_error("unknown option '%s'", arg);
		if (spec->flag) {
			if (arg[2 + n] == '=')
				return usage_error("option '--%s' takes no value", name);
			*(int *)((char *)o + spec->off) = 1;
			continue;
		}
		if (arg[2 + n] == '=')
			value = arg + 3 + n;
		else if (i + 1 < argc)
			value = argv[++i];
		if (!value || !*value)
			return usage_error("option '--%s' needs a value", name);
		*(const char **)((char *)o + spec->off) = value;
	}
	return 0;
}

static int cmd_login(struct session *s, const struct options *o)
{
	struct login_params lp = { .kind = o->kind ? o->kind : "api-key",
				   .username = o->username, .verify = !o->no_verify };
	struct gc_credential cred;
	struct cached_token tok;
	char *org = NULL, *remembered = NULL;
	int err;

	if (!credential_kind_valid(lp.kind))
		return gc_error(GCERR_USAGE, "unknown kind '%s'; use api-key, basic or bearer", lp.kind);
	if (!strcmp(lp.kind, "basic") && !o->username)
		return gc_error(GCERR_USAGE, "--kind basic needs --username; see 'galileo-credential --help'");
	if ((err = session_explicit_org(o->org_id, o->org_slug, &org)) ||
	    (err = session_use_server(s, o->server, true)))
		goto out;
	/* only what login was asked for is remembered as the default */
	remembered = o->org_id ? xstrdup(o->org_id) : o->org_slug ? org_from_slug(o->org_slug) : NULL;
	lp.organization = remembered;
	lp.org = org;
	if ((err = login_run(s, &lp, &cred, &tok)))
		goto out;
	fprintf(stderr, "galileo-credential: logged in to '%s'\n", s->server);
	cached_token_release(&tok);
	credential_release(&cred);
out:
	free(remembered);
	free(org);
	return err;
}

static int cmd_logout(struct session *s, const struct options *o)
{
	int err;

	if ((err = session_use_server(s, o->server, true)))
		return err;
	return store_erase(s);
}

/* --min-ttl SECONDS: 0 when not given */
static int min_ttl_of(const struct options *o, long *out)
{
	const char *v = o->min_ttl;
	long n = 0;

	*out = 0;
	if (!v)
		return 0;
	if (strspn(v, "0123456789") != strlen(v) || strlen(v) > 9)
		return usage_error("bad --min-ttl '%s'; give a whole number of seconds", v);
	for (; *v; v++)
		n = n * 10 + (*v - '0');
	*out = n;
	return 0;
}

static int cmd_token(struct session *s, const struct options *o)
{
	struct gc_credential cred;
	struct cached_token tok;
	struct token_request r = { .refresh = o->refresh };
	struct token_policy p;
	char *org = NULL;
	int err;

	if ((err = min_ttl_of(o, &r.min_ttl)))
		return err;
	if ((err = session_explicit_org(o->org_id, o->org_slug, &org)) ||
	    (err = session_use_server(s, o->server, true)))
		goto out;
	r.org = org;
	r.org_config = s->org_config;
	session_policy(s, &p);
	err = token_obtain(&p, &r, &cred, &tok);
	if (err == GCERR_NOTFOUND)
		err = login_first_use(s, &r, NULL, false, &cred, &tok);
	if (err)
		goto out;
	if (r.min_ttl && tok.expires_at > 0 && tok.expires_at - (int64_t)time(NULL) < r.min_ttl)
		err = gc_error(GCERR_NETWORK, "the server '%s' gives tokens for less than the %ld s asked for; ask for less with --min-ttl",
			       s->server, r.min_ttl);
	else
		printf("%s\n", tok.token);
	cached_token_release(&tok);
	credential_release(&cred);
out:
	free(org);
	return err;
}

static int cmd_status(struct session *s, const struct options *o)
{
	int err;

	if ((err = session_use_server(s, o->server, true)))
		return err;
	return status_print(s, o->server != NULL, o->json);
}

static int cmd_doctor(struct session *s, const struct options *o)
{
	int err;

	if ((err = session_use_server(s, o->server, true)))
		return err;
	return doctor_print(s);
}

/*
 * refresh-ahead SERVER home|other ORG LOCKFD: the detached refresh a call
 * inside the margin started (helper/session.c); not for people, not in
 * --help.
 */
static int cmd_refresh_ahead(struct session *s, char **argv)
{
	struct token_request r = { .org = *argv[3] ? argv[3] : NULL };
	struct token_policy p;
	int err;

	if ((err = session_use_server(s, argv[1], !strcmp(argv[2], "home"))))
		return err;
	r.org_config = s->org_config;
	session_policy(s, &p);
	return token_refresh_ahead(&p, &r, atoi(argv[4]));
}

static const char exec_usage[] =
	"usage: galileo-credential exec [--server URL] [--org-id UUID | --org-slug SLUG] [--min-ttl SECONDS] [--api-key] -- COMMAND [ARG...]\n";

/* exec's options end at "--"; what follows is the command, never parsed */
static int cmd_exec(struct session *s, int argc, char **argv)
{
	struct options o;
	long min_ttl;
	int dd, err;

	for (dd = 1; dd < argc && strcmp(argv[dd], "--"); dd++)
		if (!strcmp(argv[dd], "--help") || !strcmp(argv[dd], "-h")) {
			fputs(exec_usage, stdout);
			return 0;
		}
	if (dd >= argc - 1)
		return usage_error("exec needs '--' and a command after it%s", "");
	if ((err = parse_options(dd - 1, argv + 1, "|server|org-id|org-slug|min-ttl|api-key|", &o)) ||
	    (err = min_ttl_of(&o, &min_ttl)))
		return err;
	return exec_main(s, o.server, o.org_id, o.org_slug, min_ttl, o.api_key, argv + dd + 1);
}

static const struct command {
	const char *name;
	const char *options;
	int (*run)(struct session *s, const struct options *o);
	const char *usage;
} commands[] = {
	{ "login", "|server|kind|username|org-id|org-slug|no-verify|", cmd_login,
	  "usage: galileo-credential login [--server URL] [--kind api-key|basic|bearer] [--username NAME] [--org-id UUID | --org-slug SLUG] [--no-verify]\n" },
	{ "logout", "|server|", cmd_logout,
	  "usage: galileo-credential logout [--server URL]\n" },
	{ "token", "|server|org-id|org-slug|refresh|min-ttl|", cmd_token,
	  "usage: galileo-credential token [--server URL] [--org-id UUID | --org-slug SLUG] [--refresh] [--min-ttl SECONDS]\n" },
	{ "status", "|server|json|", cmd_status,
	  "usage: galileo-credential status [--server URL] [--json]\n" },
	{ "doctor", "|server|", cmd_doctor,
	  "usage: galileo-credential doctor [--server URL]\n" },
	{ NULL, NULL, NULL, NULL },
};

static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	return false;
}

int native_main(struct session *s, int argc, char **argv)
{
	const char *cmd = argv[0];
	struct options o;
	int err;

	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		fputs(native_usage, stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version")) {
		printf("galileo-credential %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "get") && spec_is_request(stdin))
		return spec_get(s, stdin);
	if (!strcmp(cmd, "get") || !strcmp(cmd, "store") || !strcmp(cmd, "erase") ||
	    !strcmp(cmd, "capability"))
		return git_main(s, cmd);
	if (!strcmp(cmd, "exec"))
		return cmd_exec(s, argc, argv);
	if (!strcmp(cmd, "refresh-ahead") && argc == 5)
		return cmd_refresh_ahead(s, argv);
	for (const struct command *c = commands; c->name; c++) {
		if (strcmp(c->name, cmd))
			continue;
		if (wants_help(argc, argv)) {
			fputs(c->usage, stdout);
			return 0;
		}
		if ((err = parse_options(argc - 1, argv + 1, c->options, &o)))
			return err;
		return c->run(s, &o);
	}
	return usage_error("unknown command '%s'", cmd);
}
