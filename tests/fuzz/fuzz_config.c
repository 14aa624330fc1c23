/* SPDX-License-Identifier: MIT */
/*
 * The config file: text written by the user, or by whoever can write to
 * $XDG_CONFIG_HOME.  config_parse() is the parser config_load() hands the
 * file's bytes to.  What parses is resolved for every server it names, and
 * every value must keep the promises config.h makes.
 *
 * fuzz-sources: lib/common.c lib/text.c helper/config.c lib/url.c
 * fuzz-sources: keystore/stack.c keystore/loader.c keystore/credential.c
 * fuzz-sources: keystore/env.c keystore/answer.c keystore/contain.c keystore/runner.c
 * fuzz-sources: lib/org.c lib/privdir.c
 * fuzz-max-len: 8192
 */
#include "autoconfig.h"

#include "tests/fuzz/fuzz.h"
#include "helper/config.h"
#include "lib/url.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static void check_canonical(const char *server)
{
	char *again;

	FUZZ_CHECK(url_canonicalize(server, &again) == 0);
	FUZZ_CHECK(strcmp(server, again) == 0);
	free(again);
	gc_error_clear();
}

static void check_values(const struct config_values *v)
{
	if (v->server)
		check_canonical(v->server);
	if (v->token_cache)
		FUZZ_CHECK(!strcmp(v->token_cache, "keyctl") ||
			   !strcmp(v->token_cache, "keystore") ||
			   !strcmp(v->token_cache, "file") ||
			   !strcmp(v->token_cache, "none"));
	if (v->token_path)
		FUZZ_CHECK(v->token_path[0] == '/');
	if (v->organization_id)
		FUZZ_CHECK(url_is_uuid(v->organization_id));
	FUZZ_CHECK(!(v->organization_id && v->organization_slug));
	FUZZ_CHECK(v->refresh_margin >= -1);
	FUZZ_CHECK(v->timeout == -1 || v->timeout > 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	struct config_values out;
	int err;

	config_init(&cfg);
	err = config_parse(&cfg, "fuzz.conf", (const char *)data, size);
	if (err) {
		FUZZ_CHECK(gc_error_message() != NULL);
		FUZZ_CHECK(!cfg.path && !cfg.sections && cfg.nr_sections == 0);
	} else {
		FUZZ_CHECK(cfg.path && !strcmp(cfg.path, "fuzz.conf"));
		check_values(&cfg.global);
		for (size_t i = 0; i < cfg.nr_sections; i++) {
			FUZZ_CHECK(cfg.sections[i].values.server == NULL);
			check_canonical(cfg.sections[i].server);
			check_values(&cfg.sections[i].values);
			config_resolve(&cfg, cfg.sections[i].server, &out);
			check_values(&out);
		}
		config_resolve(&cfg, NULL, &out);
		check_values(&out);
	}
	gc_error_clear();
	config_release(&cfg);
	return 0;
}
