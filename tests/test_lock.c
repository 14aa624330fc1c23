/* SPDX-License-Identifier: MIT */
/* Single-flight lock: directory checks, waiting, timeouts, dead holders. */
#include "autoconfig.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/common.h"
#include "token/lock.h"

#define S "https://api.example.com"

static char runtime[32];

static int setup(void **state)
{
	(void)state;
	strcpy(runtime, "/tmp/gc-test-lock-XXXXXX");
	assert_non_null(mkdtemp(runtime));
	setenv("XDG_RUNTIME_DIR", runtime, 1);
	return 0;
}

static int teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", runtime);

	(void)state;
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

static void test_dir_and_file_are_private(void **state)
{
	char *dir = flight_dir();
	struct stat st;
	struct dirent *e;
	DIR *d;
	int fd = -1, files = 0;

	(void)state;
	assert_int_equal(flight_lock(S, "", 5, &fd), 0);
	assert_true(fd >= 0);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_non_null(d = opendir(dir));
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		files++;
		assert_int_equal(strncmp(e->d_name, "lock-", 5), 0);
		assert_int_equal(strlen(e->d_name), 5 + 16);
		assert_int_equal(fstatat(dirfd(d), e->d_name, &st, 0), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
	}
	closedir(d);
	assert_int_equal(files, 1);
	lock_release(fd);
	free(dir);
}

static void test_held_lock_times_out(void **state)
{
	int a = -1, b = -1;

	(void)state;
	assert_int_equal(flight_lock(S, "acme", 5, &a), 0);
	assert_true(a >= 0);
	/* flock locks belong to the open file: a second open conflicts */
	assert_int_equal(flight_lock(S, "acme", 1, &b), GCERR_NETWORK);
	assert_int_equal(b, -1);
	assert_non_null(strstr(gc_error_message(), "timed out after 1 s"));
	gc_error_clear();
	/* another organization has its own lock */
	assert_int_equal(flight_lock(S, "other", 1, &b), 0);
	assert_true(b >= 0);
	lock_release(b);
	lock_release(a);
	assert_int_equal(flight_lock(S, "acme", 1, &b), 0);
	assert_true(b >= 0);
	lock_release(b);
}

static void test_killed_holder_releases(void **state)
{
	int ready[2], fd = -1, status;
	pid_t pid;
	char c;

	(void)state;
	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int held;

		if (flight_lock(S, "", 5, &held) || held < 0)
			_exit(1);
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	assert_int_equal(read(ready[0], &c, 1), 1);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(flight_lock(S, "", 2, &fd), 0);
	assert_true(fd >= 0);
	lock_release(fd);
	close(ready[0]);
	close(ready[1]);
}

/* galileo-credential(1) TOKEN LIFETIME: no lock where others may reach, closed */
static void test_unsafe_dir_fails_closed(void **state)
{
	char *dir = flight_dir();
	int fd = 0;

	(void)state;
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(flight_lock(S, "", 1, &fd), GCERR_FAIL);
	assert_non_null(strstr(gc_error_message(), "cannot lock in"));
	gc_error_clear();
	assert_int_equal(write_lock(S, 1, &fd), GCERR_FAIL);
	gc_error_clear();
	free(dir);
}

/* a runtime directory others can write is no place for our locks either */
static void test_open_runtime_dir_fails_closed(void **state)
{
	int fd = 0;

	(void)state;
	assert_int_equal(chmod(runtime, 0777), 0);
	assert_int_equal(flight_lock(S, "", 1, &fd), GCERR_FAIL);
	gc_error_clear();
}

/*
 * Without XDG_RUNTIME_DIR: /run/user/UID when it is the user's, else the
 * user's cache directory, made private; never a name in /tmp.
 */
static void test_fallback_dir_without_runtime_dir(void **state)
{
	char run[64], *dir, *want, *cache = xasprintf("%s/cache", runtime);
	struct stat st;
	int fd = -1;

	(void)state;
	unsetenv("XDG_RUNTIME_DIR");
	setenv("XDG_CACHE_HOME", cache, 1);
	snprintf(run, sizeof(run), "/run/user/%lu", (unsigned long)geteuid());
	if (lstat(run, &st) == 0 && st.st_uid == geteuid())
		want = xasprintf("%s/galileo-credential", run);
	else
		want = xasprintf("%s/galileo-credential", cache);
	dir = flight_dir();
	assert_string_equal(dir, want);
	assert_null(strstr(dir, "/tmp/galileo-credential-"));
	assert_int_equal(flight_lock(S, "", 1, &fd), 0);
	assert_true(fd >= 0);
	lock_release(fd);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	unsetenv("XDG_CACHE_HOME");
	free(dir);
	free(want);
	free(cache);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dir_and_file_are_private, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_lock_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_holder_releases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsafe_dir_fails_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_runtime_dir_fails_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fallback_dir_without_runtime_dir, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
