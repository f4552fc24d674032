/* Making the stub area (stub_abi.h) in a running process, without its
 * cooperation.
 *
 * tm_inject_area() stops one thread with PTRACE_SEIZE + PTRACE_INTERRUPT
 * (never PTRACE_O_EXITKILL), checks that the target's seccomp filters allow
 * the syscalls to come (seccomp_check.h: a KILL answer would kill it),
 * copies the parasite (stub/parasite.S) into zero padding after an r-x
 * segment through /proc/PID/mem, points the thread at it with one
 * PTRACE_SETREGS (rip, rsp below the red zone, rax, orig_rax = -1 so that
 * the kernel does not restart an interrupted syscall on our rip; the
 * parasite resumes it itself) and detaches at once. The parasite maps the
 * area, restores every register and resumes the thread where it was.
 *
 * Safety if tmbpf dies at any moment: before SETREGS only a few bytes of
 * padding changed; after it the kernel detaches a dead tracer's tracee and
 * the parasite completes alone (measured: 480 SIGKILLs at random moments,
 * every target correct). Left in the target: the area (it must stay: a
 * thread may be inside the stub) and the padding page's private copy.
 *
 * Rules for callers: one injection into a process at a time (the parasite's
 * bytes are shared by its threads). Functions return 0 or a negative errno
 * with one line in err. */
#ifndef TM_PATCH_INJECT_H
#define TM_PATCH_INJECT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tm_inject_area {
	uint64_t base;         /* code at base, state at base + code_len */
	uint64_t code_len, state_len;
	uint64_t id;           /* the injection id the parasite wrote into the state */
	long stopped_us;       /* how long the interrupted thread was stopped */
	char how[160];         /* what that thread was doing (for -v) */
};

/* Make an area of code_len (from a memfd) + state_len (anonymous,
 * MADV_WIPEONFORK) bytes in pid; the parasite writes a fresh id at
 * id_off in the state when the area is complete. traced_tid: 0 to seize a
 * thread ourselves; else the thread of pid that the caller holds in a
 * ptrace stop (tmbpf run), which is run through the parasite with
 * PTRACE_SYSCALL and left stopped after it, still the caller's. Errors:
 * -EPERM (ptrace refused, or seccomp would refuse: err says which),
 * -ENOSPC (no padding for the parasite), -ESRCH (gone), -ETIMEDOUT. */
int tm_inject_area(pid_t pid, pid_t traced_tid, uint64_t code_len, uint64_t state_len,
		   uint64_t id_off, struct tm_inject_area *a, char *err, size_t errlen);

/* An area an earlier injection left in pid (a tmbpf that detached or
 * died): its code mapping is "/memfd:tmbpf-stub" with state_len more bytes
 * right after it, whose id at id_off is non-zero. 0 with *a filled, or
 * -ENOENT. */
int tm_inject_find(pid_t pid, uint64_t code_len, uint64_t id_off, struct tm_inject_area *a);

/* Open the memfd behind the area's code (through /proc/PID/map_files, which
 * works whatever the target's namespaces and root) with flags (O_RDWR to
 * write the stub before its first probe). A file descriptor or -errno. */
int tm_inject_open_code(pid_t pid, const struct tm_inject_area *a, int flags);

/* The path uprobes attach to ("/proc/PID/map_files/START-END"). */
int tm_inject_code_path(pid_t pid, const struct tm_inject_area *a, char *buf, size_t len);

#endif
