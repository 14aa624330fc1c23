/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "keystore/loader.h"
#include "lib/common.h"

/*
 * keystore/loader.c: names, the module directory from the environment,
 * and the loading policy (galileo-credential-module(7) LOADING), on files
 * and directories made here.
 */

static char root[64];

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/gc-test-loader-XXXXXX");
	return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_names(void **state)
{
	(void)state;
	assert_true(keystore_name_valid("secret-service"));
	assert_true(keystore_name_valid("pass"));
	assert_false(keystore_name_valid(""));
	assert_false(keystore_name_valid("../evil"));
	assert_false(keystore_name_valid("Pass"));
	assert_true(keystore_builtin("env"));
	assert_false(keystore_builtin("pass"));
}

static void test_module_dir(void **state)
{
	char *d;

	(void)state;
	setenv("GALILEO_CREDENTIAL_MODULE_DIR", ".libs", 1);
	gc_error_clear();
	assert_int_equal(module_dir_check(), GCERR_FAIL);
	assert_non_null(strstr(gc_error_message(), "'.libs' is not an absolute path"));
	assert_null(module_dir());
	setenv("GALILEO_CREDENTIAL_MODULE_DIR", "/opt/modules", 1);
	gc_error_clear();
	assert_int_equal(module_dir_check(), 0);
	d = module_dir();
	assert_string_equal(d, "/opt/modules");
	free(d);
	unsetenv("GALILEO_CREDENTIAL_MODULE_DIR");
	assert_int_equal(module_dir_check(), 0);
}

/* dir/name, made with mode; the path in buf */
static const char *make(char *buf, size_t len, const char *name, mode_t mode, bool dir)
{
	FILE *f;

	snprintf(buf, len, "%s/%s", root, name);
	if (dir) {
		assert_int_equal(mkdir(buf, 0700), 0);
	} else {
		assert_non_null(f = fopen(buf, "w"));
		fclose(f);
	}
	assert_int_equal(chmod(buf, mode), 0);
	return buf;
}

static void assert_refused(const char *path, const char *naming, const char *why)
{
	char *real = NULL;

	gc_error_clear();
	assert_int_equal(module_path_check(path, &real), GCERR_KEYSTORE);
	assert_null(real);
	assert_non_null(strstr(gc_error_message(), naming));
	assert_non_null(strstr(gc_error_message(), why));
}

static void test_policy(void **state)
{
	char ok[128], gw[128], dir[128], inside[256], sticky[128], in_sticky[256], link[128];
	char *real = NULL;

	(void)state;
	make(ok, sizeof(ok), "keystore-ok.so", 0644, false);
	gc_error_clear();
	assert_int_equal(module_path_check(ok, &real), 0);
	assert_string_equal(real, ok);
	free(real);
	make(gw, sizeof(gw), "keystore-gw.so", 0664, false);
	assert_refused(gw, gw, "writable by group or others");
	make(dir, sizeof(dir), "open", 0777, true);
	snprintf(inside, sizeof(inside), "%s/keystore-x.so", dir);
	fclose(fopen(inside, "w"));
	chmod(inside, 0644);
	assert_refused(inside, dir, "writable by group or others");
	/* a sticky directory (as /tmp) is safe */
	make(sticky, sizeof(sticky), "sticky", 01777, true);
	snprintf(in_sticky, sizeof(in_sticky), "%s/keystore-y.so", sticky);
	fclose(fopen(in_sticky, "w"));
	chmod(in_sticky, 0644);
	gc_error_clear();
	assert_int_equal(module_path_check(in_sticky, &real), 0);
	free(real);
	/* a link is judged by what it points to */
	snprintf(link, sizeof(link), "%s/keystore-link.so", root);
	assert_int_equal(symlink(inside, link), 0);
	assert_refused(link, dir, "writable by group or others");
	/* not a regular file */
	assert_refused(dir, dir, "not a regular file");
	if (geteuid() == 0) {
		assert_int_equal(chown(ok, 65534, 65534), 0);
		assert_refused(ok, ok, "owned by uid 65534");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_module_dir),
		cmocka_unit_test_setup_teardown(test_policy, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
