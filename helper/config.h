/* SPDX-License-Identifier: MIT */
/* The config file (galileo-credential(1) CONFIGURATION). */
#ifndef GC_CONFIG_H
#define GC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* One set of settings; NULL / -1 mean "not set here". */
struct config_values {
	char *server;		/* global only */
	char *keystore;
	char *token_cache;	/* keyctl | keystore | file | none (validated) */
	char *token_path;	/* must start with '/' */
	char *organization_id;	/* validated as UUID */
	char *organization_slug;
	char *ca_file;
	char *refresh;		/* background | inline (validated) */
	long refresh_margin;	/* >= 0 */
	long timeout;		/* > 0 */
};

/* "NAME.KEY = value": an option for the keystore module NAME (global only) */
struct config_option {
	char *module;
	char *key;
	char *value;
	unsigned int line;	/* where the file sets it */
};

struct gc_option;

struct config_section {
	char *server;		/* canonical (url_canonicalize) */
	struct config_values values;
};

struct config {
	char *path;		/* file it came from, or NULL */
	struct config_values global;
	struct config_section *sections;
	size_t nr_sections;
	struct config_option *options;
	size_t nr_options;
};

void config_init(struct config *cfg);
void config_release(struct config *cfg);

/*
 * Path of the config file into *path: $GALILEO_CREDENTIAL_CONFIG, else
 * $XDG_CONFIG_HOME/galileo-credential/config, else
 * $HOME/.config/galileo-credential/config; NULL when none of them is set
 * (a relative XDG_CONFIG_HOME or HOME counts as unset).  A relative
 * GALILEO_CREDENTIAL_CONFIG is GCERR_FAIL with a message: git runs helpers
 * inside the repository.  New string, caller frees.
 */
int config_default_path(char **path);

/*
 * Parse text (len bytes, may lack a final newline) as a config file named
 * path.  Lines "key = value" (whitespace around both trimmed), "#" comments
 * and blank lines; "[URL]" starts a per-server section (URL canonicalised).
 * Keys: server (global only), keystore (a stack, syntax checked),
 * token-cache, token-path, organization-id, organization-slug,
 * refresh-margin, timeout, ca-file, refresh; and NAME.KEY module options
 * (global only).
 * Anything else, a bad value, a NUL byte, or a line over 4096 bytes is
 * GCERR_FAIL with gc_error("PATH:LINE: what is wrong").  On error cfg is
 * left initialised (empty).
 */
int config_parse(struct config *cfg, const char *path, const char *text, size_t len);

/*
 * Read and parse path; a missing file is fine (0, empty config).  As ssh
 * does, a file owned by someone other than the user or root, or writable
 * by group or others, is refused (GCERR_FAIL naming it): its server line
 * would receive the key.
 */
int config_load(struct config *cfg, const char *path);

/*
 * Settings for one server: the matching section's values over the global
 * ones.  out borrows strings from cfg.  server is canonical or NULL.
 */
void config_resolve(const struct config *cfg, const char *server,
		    struct config_values *out);

/* server (canonical) has a [section] of its own */
bool config_has_section(const struct config *cfg, const char *server);

/* the value of "module.key", or NULL */
const char *config_option(const struct config *cfg, const char *module, const char *key);

/* the file sets at least one option for module */
bool config_has_options(const struct config *cfg, const char *module);

/*
 * Every "module.KEY = value" line of the file names a KEY that declared
 * lists (a NULL-key-ended array; NULL: none) and a value its check takes
 * (galileo-credential-module(7) OPTIONS).  0, or GCERR_FAIL with
 * "PATH:LINE: what is wrong".
 */
int config_check_options(const struct config *cfg, const char *module,
			 const struct gc_option *declared);

#endif
