/* Before injecting code that makes syscalls in a target: would its seccomp
 * filters let them through? A filter that answers KILL would kill the
 * target (SIGSYS) the moment the parasite runs, so the answer must come
 * from the filters themselves: they are fetched with
 * PTRACE_SECCOMP_GET_FILTER (the thread must be ptrace-stopped by us) and
 * run here, a classic-BPF interpreter over struct seccomp_data, for each
 * syscall the parasite will make with the arguments it will pass. Only
 * ALLOW (or LOG) for every syscall under every filter is a yes. */
#ifndef TM_PATCH_SECCOMP_CHECK_H
#define TM_PATCH_SECCOMP_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tm_syscall_use {
	int nr;
	uint64_t args[6];
	const char *name;
};

/* 0 when every call in calls[0..n) is allowed for thread tid (stopped by
 * our ptrace); -EPERM with why filled ("seccomp filter 1 of 2 answers
 * KILL_PROCESS to memfd_create") when one is not; another negative errno
 * when the filters cannot be read (treated as a no by the caller). ip is
 * the instruction pointer the calls are made from. */
int tm_seccomp_allows(pid_t pid, pid_t tid, uint64_t ip, const struct tm_syscall_use *calls,
		      size_t n, char *why, size_t whylen);

/* The interpreter alone (tests): run the len instructions of a filter
 * (struct sock_filter array) on one seccomp_data; returns the filter's
 * 32-bit return value, or SECCOMP_RET_KILL_PROCESS for a malformed filter. */
uint32_t tm_seccomp_run(const void *filter, size_t len, int nr, uint32_t arch, uint64_t ip,
			const uint64_t args[6]);

#endif
