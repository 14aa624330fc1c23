/* SPDX-License-Identifier: MIT */
/*
 * keyctl-refused: run a program with the kernel key-management syscalls
 * refused, as the default seccomp profiles of container runtimes do.
 *
 *     keyctl-refused [--enosys] PROGRAM [ARG...]
 *
 * Installs a seccomp filter that makes keyctl(2), add_key(2) and
 * request_key(2) fail with EPERM (with --enosys: ENOSYS, as on a kernel
 * built without CONFIG_KEYS), then execs PROGRAM (looked up on PATH when it
 * has no slash).  Every other syscall is allowed.  The filter is inherited
 * across the exec and by every child.
 *
 * Exit status when PROGRAM could not be run: 77 when the filter cannot be
 * installed here (unsupported architecture, kernel without seccomp filters:
 * the tests skip), 127 when the exec fails, 2 for a usage error.
 *
 * Plain C and the kernel's UAPI headers only: this is a test tool.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sys/prctl.h>
#include <sys/syscall.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#if defined(__x86_64__)
#define FILTER_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define FILTER_ARCH AUDIT_ARCH_AARCH64
#endif

#define EXIT_SKIP 77
#define EXIT_EXEC 127
#define EXIT_USAGE 2

static void usage(void)
{
	fputs("usage: keyctl-refused [--enosys] PROGRAM [ARG...]\n", stderr);
}

#ifdef FILTER_ARCH

#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif

/* jump over the rest when the syscall number is not nr */
#define REFUSE(nr) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA))

static int install_filter(unsigned err)
{
	struct sock_filter code[] = {
		/* another architecture's syscall (e.g. i386 from x86_64): allow,
		 * its numbers mean other calls */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FILTER_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		REFUSE(__NR_keyctl),
		REFUSE(__NR_add_key),
		REFUSE(__NR_request_key),
#if defined(__x86_64__)
		/* the x32 ABI shares the arch value, with its own numbers */
		REFUSE(__X32_SYSCALL_BIT | __NR_keyctl),
		REFUSE(__X32_SYSCALL_BIT | __NR_add_key),
		REFUSE(__X32_SYSCALL_BIT | __NR_request_key),
#endif
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = (unsigned short)(sizeof(code) / sizeof(code[0])),
		.filter = code,
	};

	/* lets an unprivileged process install a filter */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		fprintf(stderr, "keyctl-refused: prctl(PR_SET_NO_NEW_PRIVS): %s\n",
			strerror(errno));
		return -1;
	}
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) {
		fprintf(stderr, "keyctl-refused: prctl(PR_SET_SECCOMP): %s\n",
			strerror(errno));
		return -1;
	}
	return 0;
}

#else

static int install_filter(unsigned err)
{
	(void)err;
	fputs("keyctl-refused: unsupported architecture (x86_64 and aarch64 only)\n",
	      stderr);
	return -1;
}

#endif

int main(int argc, char **argv)
{
	unsigned err = EPERM;
	int first = 1;

	if (argc > first && strcmp(argv[first], "--enosys") == 0) {
		err = ENOSYS;
		first++;
	} else if (argc > first && strcmp(argv[first], "--eperm") == 0) {
		first++;
	}
	if (argc > first && strcmp(argv[first], "--") == 0)
		first++;
	if (argc <= first || argv[first][0] == '-') {
		usage();
		return EXIT_USAGE;
	}
	if (install_filter(err) != 0)
		return EXIT_SKIP;
	execvp(argv[first], argv + first);
	fprintf(stderr, "keyctl-refused: cannot run %s: %s\n", argv[first], strerror(errno));
	return EXIT_EXEC;
}
