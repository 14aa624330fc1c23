/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "keystore/runner.h"

/*
 * keystore/runner.c, the run service: data on pipes, outputs kept and
 * bounded, nothing of GALILEO_* in the child's environment, programs
 * found on absolute PATH entries only, and the whole process group killed
 * at the deadline.
 */

static int run(struct gc_run *r, const char *const *argv, const char *input, long ms)
{
	memset(r, 0, sizeof(*r));
	r->size = sizeof(*r);
	r->argv = argv;
	r->input = input;
	r->input_len = input ? strlen(input) : 0;
	return runner_run(r, runner_now_ms() + ms);
}

static void test_data_on_pipes(void **state)
{
	const char *cat[] = { "cat", NULL };
	const char *fd3[] = { "/bin/sh", "-c", "echo out; echo err >&2; echo status >&3; exit 3", NULL };
	struct gc_run r;

	(void)state;
	assert_int_equal(run(&r, cat, "a secret with\nlines", 5000), GC_STATUS_SUCCESS);
	assert_string_equal(r.output, "a secret with\nlines");
	assert_int_equal(r.exit_code, 0);
	runner_release(&r);
	assert_null(r.output);
	memset(&r, 0, sizeof(r));
	r.size = sizeof(r);
	r.argv = fd3;
	r.want_fd3 = 1;
	assert_int_equal(runner_run(&r, runner_now_ms() + 5000), GC_STATUS_SUCCESS);
	assert_string_equal(r.output, "out\n");
	assert_string_equal(r.errors, "err\n");
	assert_string_equal(r.fd3, "status\n");
	assert_int_equal(r.exit_code, 3);
	runner_release(&r);
}

static void test_environment(void **state)
{
	const char *show[] = { "/bin/sh", "-c", "echo ${GALILEO_API_KEY-unset} ${GC_RUNNER_TEST-unset}",
			       NULL };
	const char *env[] = { "GC_RUNNER_TEST=given", NULL };
	struct gc_run r;

	(void)state;
	setenv("GALILEO_API_KEY", "gk-never-in-a-child", 1);
	setenv("GC_RUNNER_TEST", "inherited", 1);
	assert_int_equal(run(&r, show, NULL, 5000), GC_STATUS_SUCCESS);
	assert_string_equal(r.output, "unset inherited\n");
	runner_release(&r);
	memset(&r, 0, sizeof(r));
	r.size = sizeof(r);
	r.argv = show;
	r.envp = env;
	assert_int_equal(runner_run(&r, runner_now_ms() + 5000), GC_STATUS_SUCCESS);
	assert_string_equal(r.output, "unset given\n");
	runner_release(&r);
	unsetenv("GALILEO_API_KEY");
}

static void test_not_found(void **state)
{
	const char *missing[] = { "/nonexistent/program", NULL };
	const char *unknown[] = { "gc-no-such-program", NULL };
	const char *relative[] = { "./cat", NULL };
	const char *cat[] = { "cat", NULL };
	struct gc_run r;

	(void)state;
	assert_int_equal(run(&r, missing, NULL, 1000), GC_STATUS_UNAVAILABLE);
	assert_int_equal(run(&r, unknown, NULL, 1000), GC_STATUS_UNAVAILABLE);
	assert_int_equal(run(&r, relative, NULL, 1000), GC_STATUS_UNAVAILABLE);
	/* a relative PATH entry is never searched: it is the working directory */
	setenv("PATH", ".:bin", 1);
	assert_int_equal(run(&r, cat, NULL, 1000), GC_STATUS_UNAVAILABLE);
	setenv("PATH", "/usr/bin:/bin", 1);
	memset(&r, 0, sizeof(r));
	r.size = 8;	/* a struct this program does not know */
	r.argv = cat;
	assert_int_equal(runner_run(&r, runner_now_ms() + 1000), GC_STATUS_ERROR);
}

static int sleepers(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	char path[300], buf[256];
	int n = 0;

	while (d && (e = readdir(d))) {
		FILE *f;
		size_t got;

		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		got = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		for (size_t i = 0; i < got; i++)
			if (!buf[i])
				buf[i] = ' ';
		buf[got] = '\0';
		n += strstr(buf, "sleep 31337") != NULL;
	}
	if (d)
		closedir(d);
	return n;
}

static void test_deadline_kills_the_group(void **state)
{
	const char *never[] = { "/bin/sh", "-c", "sleep 31337 & sleep 31337; echo late", NULL };
	long long start = runner_now_ms();
	struct gc_run r;

	(void)state;
	assert_int_equal(run(&r, never, NULL, 300), GC_STATUS_SUCCESS);
	assert_true(r.timed_out);
	assert_int_equal(r.exit_code, -1);
	assert_true(runner_now_ms() - start < 2000);
	runner_release(&r);
	usleep(100000);
	assert_int_equal(sleepers(), 0);
}

static void test_output_is_bounded(void **state)
{
	const char *lots[] = { "/bin/sh", "-c", "head -c 100000 /dev/zero | tr '\\0' a", NULL };
	struct gc_run r;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.size = sizeof(r);
	r.argv = lots;
	r.max_output = 1000;
	assert_int_equal(runner_run(&r, runner_now_ms() + 5000), GC_STATUS_SUCCESS);
	assert_true(r.truncated);
	assert_int_equal(r.output_len, 1000);
	runner_release(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_on_pipes),
		cmocka_unit_test(test_environment),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_deadline_kills_the_group),
		cmocka_unit_test(test_output_is_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
