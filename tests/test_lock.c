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

static void test_unsafe_dir_goes_unlocked(void **state)
{
	char *dir = flight_dir();
	int fd = 0;

	(void)state;
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(flight_lock(S, "", 1, &fd), 0);
	assert_int_equal(fd, -1);
	free(dir);
}

static void test_fallback_dir_without_runtime_dir(void **state)
{
	char *dir, *want = xasprintf("/tmp/galileo-credential-%lu", (unsigned long)geteuid());

	(void)state;
	unsetenv("XDG_RUNTIME_DIR");
	dir = flight_dir();
	assert_string_equal(dir, want);
	free(dir);
	free(want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dir_and_file_are_private, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_lock_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_holder_releases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsafe_dir_goes_unlocked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fallback_dir_without_runtime_dir, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
