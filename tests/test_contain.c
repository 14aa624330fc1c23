/* SPDX-License-Identifier: MIT */
#include "autoconfig.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "keystore/contain.h"

/*
 * keystore/contain.c: a module call that crashes, calls exit(), prints or
 * hangs ends the process with exit 6 and one line naming the module.
 * Each case runs in a child, whose stdout and stderr are read back.
 */

struct result {
	int status;		/* wait status */
	char out[4096], err[4096];
	double seconds;
};

static void drain(int fd, char *buf, size_t len)
{
	size_t n = 0;
	ssize_t r;

	while (n < len - 1 && (r = read(fd, buf + n, len - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	close(fd);
}

static void in_child(void (*fn)(void), struct result *res)
{
	int out[2], err[2];
	struct timespec a, b;
	pid_t pid;

	assert_int_equal(pipe(out), 0);
	assert_int_equal(pipe(err), 0);
	fflush(NULL);
	clock_gettime(CLOCK_MONOTONIC, &a);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* cmocka catches crashes to report them: the program does not */
		const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };

		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			signal(sigs[i], SIG_DFL);
		dup2(out[1], 1);
		dup2(err[1], 2);
		close(out[0]);
		close(err[0]);
		fn();
		fflush(stdout);
		_exit(0);
	}
	close(out[1]);
	close(err[1]);
	drain(out[0], res->out, sizeof(res->out));
	drain(err[0], res->err, sizeof(res->err));
	waitpid(pid, &res->status, 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	res->seconds = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

static void assert_exit(const struct result *r, int code)
{
	assert_true(WIFEXITED(r->status));
	assert_int_equal(WEXITSTATUS(r->status), code);
}

static void segv_inside(void)
{
	contain_enter("mod", "get()", 5);
	raise(SIGSEGV);
}

static void abort_inside(void)
{
	contain_enter("mod", "store()", 5);
	abort();
}

static void exit_inside(void)
{
	contain_enter("mod", "open()", 5);
	exit(0);
}

static void test_crash_and_exit(void **state)
{
	struct result r;

	(void)state;
	in_child(segv_inside, &r);
	assert_exit(&r, 6);
	assert_string_equal(r.err, "galileo-credential: keystore module 'mod' crashed with SIGSEGV during get(); fix the module or take it out of 'keystore' in the configuration\n");
	assert_string_equal(r.out, "");
	in_child(abort_inside, &r);
	assert_exit(&r, 6);
	assert_non_null(strstr(r.err, "crashed with SIGABRT during store()"));
	in_child(exit_inside, &r);
	assert_exit(&r, 6);
	assert_non_null(strstr(r.err, "keystore module 'mod' called exit() during open()"));
}

static void segv_outside(void)
{
	contain_enter("mod", "get()", 5);
	contain_leave();
	raise(SIGSEGV);
}

static void exit_outside(void)
{
	contain_enter("mod", "get()", 5);
	contain_leave();
	printf("done\n");
	exit(0);
}

static void test_outside_a_call_nothing_changes(void **state)
{
	struct result r;

	(void)state;
	in_child(segv_outside, &r);
	assert_true(WIFSIGNALED(r.status));
	assert_int_equal(WTERMSIG(r.status), SIGSEGV);
	assert_string_equal(r.err, "");
	in_child(exit_outside, &r);
	assert_exit(&r, 0);
	assert_string_equal(r.out, "done\n");
}

static void print_inside(void)
{
	printf("before\n");
	contain_enter("mod", "get()", 5);
	printf("noise from printf\n");
	fflush(stdout);
	if (write(1, "noise from write\n", 17) < 0)
		abort();
	printf("buffered noise\n");
	contain_leave();
	printf("after\n");
}

static void test_stdout_is_shielded(void **state)
{
	struct result r;

	(void)state;
	in_child(print_inside, &r);
	assert_exit(&r, 0);
	assert_string_equal(r.out, "before\nafter\n");
}

static void hang_inside(void)
{
	sigset_t all;

	contain_enter("mod", "get()", 1);
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	for (;;)
		sleep(100);
}

static void hang_in_budget(void)
{
	contain_budget(1);
	contain_enter("mod", "open()", 30);
	for (;;)
		sleep(100);
}

static void test_watchdog(void **state)
{
	struct result r;

	(void)state;
	in_child(hang_inside, &r);
	assert_exit(&r, 6);
	assert_non_null(strstr(r.err, "keystore module 'mod': get() did not return within 2 seconds"));
	assert_true(r.seconds > 1.9 && r.seconds < 4);
	in_child(hang_in_budget, &r);
	assert_exit(&r, 6);
	assert_non_null(strstr(r.err, "open() did not return within 1 seconds"));
	assert_true(r.seconds < 3);
}

static void docker_crash(void)
{
	contain_report_on_stdout();
	contain_enter("mod", "get()", 5);
	raise(SIGBUS);
}

static void breach(void)
{
	contain_breach("mod", "get()", "answered %s", "success with an empty secret");
}

static void test_lines(void **state)
{
	struct result r;

	(void)state;
	/* docker reads errors from stdout: the real one, not the shield */
	in_child(docker_crash, &r);
	assert_exit(&r, 1);
	assert_string_equal(r.err, "");
	assert_string_equal(r.out, "keystore module 'mod' crashed with SIGBUS during get(); fix the module or take it out of 'keystore' in the configuration\n");
	in_child(breach, &r);
	assert_exit(&r, 6);
	assert_non_null(strstr(r.err, "keystore module 'mod' broke the module interface: get() answered success with an empty secret"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_and_exit),
		cmocka_unit_test(test_outside_a_call_nothing_changes),
		cmocka_unit_test(test_stdout_is_shielded),
		cmocka_unit_test(test_watchdog),
		cmocka_unit_test(test_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
