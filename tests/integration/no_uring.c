// SPDX-License-Identifier: MIT
/*
 * no-uring: run a command with io_uring blocked the way container runtimes
 * block it. Docker's and containerd's default seccomp profiles (moby#46762,
 * containerd#9048) leave io_uring_setup, io_uring_enter and
 * io_uring_register out of their allow lists, so they fail with EPERM; this
 * installs a seccomp filter doing exactly that and execs the command, which
 * inherits the filter (as does everything it starts).
 *
 *   no-uring COMMAND [ARG...]
 *
 * Before the exec it checks that the filter took: io_uring_setup(0, NULL)
 * must fail with EPERM (EINVAL without the filter). Exits 77 (skip) when
 * seccomp filters are unavailable here, 2 on usage errors, 127 when the
 * command cannot be run.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define NATIVE_ARCH AUDIT_ARCH_I386
#elif defined(__riscv) && __riscv_xlen == 64
#define NATIVE_ARCH AUDIT_ARCH_RISCV64
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NATIVE_ARCH AUDIT_ARCH_PPC64LE
#elif defined(__s390x__)
#define NATIVE_ARCH AUDIT_ARCH_S390X
#endif

#ifndef __NR_io_uring_setup  /* same numbers on every architecture */
#define __NR_io_uring_setup 425
#define __NR_io_uring_enter 426
#define __NR_io_uring_register 427
#endif

int main(int argc, char **argv)
{
#ifdef NATIVE_ARCH
	/* Syscalls of another ABI (say i386 on x86_64) pass: the command is a
	 * native binary, and their numbers would mean something else. */
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
	};
	struct sock_fprog prog = {
		.len = sizeof(filter) / sizeof(filter[0]),
		.filter = filter,
	};
	long ret;

	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: no-uring COMMAND [ARG...]\n");
		return 2;
	}
	/* Lets an unprivileged process install a filter; it also means the
	 * command cannot gain privileges through setuid binaries. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		fprintf(stderr, "no-uring: PR_SET_NO_NEW_PRIVS: %s\n",
			strerror(errno));
		return 77;
	}
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0) {
		fprintf(stderr, "no-uring: cannot install a seccomp filter: %s\n",
			strerror(errno));
		return 77;
	}
	ret = syscall(__NR_io_uring_setup, 0, NULL);
	if (ret >= 0 || errno != EPERM) {
		fprintf(stderr, "no-uring: the filter did not take: "
				"io_uring_setup returned %ld (%s), want EPERM\n",
			ret, ret < 0 ? strerror(errno) : "no error");
		return 1;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "no-uring: %s: %s\n", argv[1], strerror(errno));
	return 127;
#else
	(void)argc;
	(void)argv;
	fprintf(stderr, "no-uring: no seccomp architecture for this build\n");
	return 77;
#endif
}
