/* Catching a CPython at start-up (catch.h). */
#include "patch/catch.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "placement/elf_file.h"
#include "target/proc_maps.h"


static long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

/* Wait for the next stop of pid until deadline (us). The raw status, or
 * -ESRCH (gone), -ETIMEDOUT (still running: blocked in a syscall). */
static int wait_until(pid_t pid, long deadline)
{
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, __WALL | WNOHANG);

		if (r < 0)
			return -errno;
		if (r == pid) {
			if (WIFEXITED(status) || WIFSIGNALED(status))
				return -ESRCH;
			if (WIFSTOPPED(status))
				return status;
			continue;
		}
		if (now_us() > deadline)
			return -ETIMEDOUT;
		usleep(50);
	}
}

/* A signature of the executable file mappings: it changes when the loader
 * maps another library. */
static uint64_t exec_maps_sig(pid_t pid)
{
	struct tm_maps m;
	uint64_t sig = 0;

	if (tm_maps_read(pid, &m))
		return 0;
	for (size_t i = 0; i < m.n; i++)
		if (m.maps[i].path[0] == '/' && tm_map_is_exec(&m.maps[i]))
			sig = sig * 31 + m.maps[i].inode + m.maps[i].start;
	tm_maps_release(&m);
	return sig;
}

/* The allocator pointers are relocated: each names an executable mapping. */
static int pointers_ready(const struct tm_target *t)
{
	struct tm_maps m;
	int ok = 1;

	if (tm_maps_read(t->pid, &m))
		return 0;
	for (int d = 0; d < TM_NDOMAINS && ok; d++)
		for (int f = 0; f < TM_NFNS && ok; f++) {
			const struct tm_map *mp = tm_maps_find(&m, tm_allocator_fn(&t->alloc[d], f));

			ok = mp && tm_map_is_exec(mp);
		}
	tm_maps_release(&m);
	return ok;
}

/* Ready: a CPython image, loaded and relocated. 1, 0 (not yet), or -ENOEXEC
 * once the loader is done (its main runs) and no interpreter appeared. */
static int ready(pid_t pid, struct tm_target *t, uint64_t *sig, int *opened)
{
	uint64_t now = exec_maps_sig(pid);
	char err[256];

	if (!*opened && now != *sig) {
		*sig = now;
		*opened = tm_target_open(pid, t, err, sizeof(err)) == 0;
	}
	if (!*opened)
		return 0;
	if (tm_target_read_allocators(t) || !pointers_ready(t))
		return 0;
	/* relocated, so every library is mapped: open again, now that the
	 * C library (thread-state routes) is there too */
	return tm_target_open(pid, t, err, sizeof(err)) == 0;
}

void tm_catch_release(struct tm_catch *k)
{
	if (!k->held)
		return;
	ptrace(PTRACE_DETACH, k->pid, 0, 0);
	k->held = 0;
}

int tm_catch_seize(pid_t pid, struct tm_catch *k)
{
	int e;

	memset(k, 0, sizeof(*k));
	k->pid = pid;
	k->seized_us = now_us();
	if (ptrace(PTRACE_SEIZE, pid, 0, (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC)))
		return -errno;
	k->held = 1;
	if (ptrace(PTRACE_INTERRUPT, pid, 0, 0)) {
		e = -errno;
		tm_catch_release(k);
		return e;
	}
	return 0;
}

/* Python has begun: the runtime lists an interpreter (core init ran). A
 * process held before that has run no Python code yet. */
static int interpreter_started(const struct tm_target *t)
{
	uint64_t head = 0;

	return tm_target_read(t->pid, t->runtime_addr + t->layout.rt_interpreters_head, &head,
			      sizeof(head)) ||
	       head != 0;
}

/* 3.10 computes its paths (getpath.c: readlink, stat, open...) inside a
 * window of its own after the interpreter exists (pathconfig_init); the
 * global _Py_path_config gets its module_search_path once it closed. 1
 * when past it (or another version), 0 while not. */
static int paths_ready(struct tm_catch *k, const struct tm_target *t)
{
	struct tm_elf_sym sym;
	struct tm_elf *e;
	uint64_t v = 0;

	if (t->major != 3 || t->minor != 10)
		return 1;
	if (!k->path_config_addr) {
		e = tm_elf_open(t->elf_path);
		if (!e)
			return 1;
		/* ._PyPathConfig: program_full_path, prefix, exec_prefix, module_search_path */
		if (tm_elf_symbol(e, "_Py_path_config", &sym) == 0)
			k->path_config_addr = sym.value + t->load_bias + 3 * 8;
		tm_elf_close(e);
		if (!k->path_config_addr)
			return 1;
	}
	return tm_target_read(t->pid, k->path_config_addr, &v, 8) || v != 0;
}

/* How long a process seen before its interpreter existed may be stepped
 * waiting for it (CPython creates it within milliseconds of its exec). */
#define WAIT_US 300000L

/* The allocator's own syscalls (malloc and free may make them anywhere). */
static int allocator_syscall(long nr)
{
	return nr == SYS_brk || nr == SYS_mmap || nr == SYS_munmap || nr == SYS_mremap ||
	       nr == SYS_mprotect || nr == SYS_madvise;
}

/* May the stub go in at this stop (a syscall exit when syscall_exit, else
 * our interrupt)? CPython's start-up sets the raw allocator to the default
 * and back around some of its steps (_PyMem_SetDefaultAllocator() ...
 * PyMem_SetAllocator(), e.g. _PyPreConfig_Read() around setlocale(), whose
 * file syscalls stop us inside): pointers written in such a window are put
 * back to the default when it closes, and the raw domain, where sampled
 * mode sees its frees, goes unseen for good (Debian's 3.11 under load: 1
 * process in 40 caught so, 64-94 frees missed each). Nor is the loader's
 * code a sign of "before main": lazy binding runs there too. Once the
 * interpreter exists, the windows left copy configuration strings, and
 * their only syscalls are the allocator's (but 3.10's: paths_ready); so a process seen before its
 * interpreter existed is held until then and takes the stub at the exit
 * of a syscall that is not the allocator's (what it allocated before has
 * no Python traceback; tracemalloc would not have started yet either). A
 * process first seen with its interpreter started (caught late) takes it
 * where it is, as a running one does. */
static int safe_point(struct tm_catch *k, const struct tm_target *t, int syscall_exit)
{
	struct user_regs_struct regs;

	if (!k->waited && !interpreter_started(t)) {
		k->waited = 1;
		k->wait_start_us = now_us();
		return 0;
	}
	if (!k->waited) {
		k->late = 1;
		return 1;
	}
	if (interpreter_started(t) && syscall_exit && paths_ready(k, t) &&
	    ptrace(PTRACE_GETREGS, k->pid, 0, &regs) == 0 && !allocator_syscall((long)regs.orig_rax))
		return 1;
	/* An embedder that starts Python later (or never): taken where it is
	 * after WAIT_US; a window open here is undone by capture's retake
	 * (allocator_reset), never silently. */
	if (now_us() - k->wait_start_us > WAIT_US) {
		k->no_interpreter = !interpreter_started(t);
		return 1;
	}
	return 0;
}

int tm_catch_exec(pid_t pid, int max_ms, struct tm_target *t, struct tm_catch *k, char *err,
		  size_t errlen)
{
	long start, deadline;
	uint64_t sig = 0;
	int opened = 0, is_ready = 0, pending_sig = 0, status, e;

	if (!(k->held && k->pid == pid)) {
		e = tm_catch_seize(pid, k);
		if (e) {
			snprintf(err, errlen, "PID %d: cannot catch it at start-up: %s", (int)pid,
				 strerror(-e));
			return e == -ESRCH ? e : -EPERM;
		}
	}
	/* max_ms of stepping: a process held in a queue meanwhile did not run */
	start = k->seized_us;
	deadline = now_us() + (long)max_ms * 1000;
	for (;;) {
		long until = k->waited && k->wait_start_us + WAIT_US < deadline ?
				     k->wait_start_us + WAIT_US : deadline;

		status = wait_until(pid, until);
		if (status == -ETIMEDOUT) {
			/* blocked in a syscall: past the loader; not what we wait
			 * for, unless an interpreter image waits for its interpreter
			 * (then taken at the stops that follow: the interrupted
			 * syscall's exit, then our interrupt) */
			ptrace(PTRACE_INTERRUPT, pid, 0, 0);
			status = wait_until(pid, now_us() + 1000000);
			if (status < 0 || !(is_ready && k->waited)) {
				e = -ETIMEDOUT;
				if (status < 0)
					k->held = status == -ESRCH ? 0 : k->held;
				goto fail;
			}
		}
		if (status < 0) {
			e = status;
			if (e == -ESRCH)
				k->held = 0;
			goto fail;
		}
		int sigstop = WSTOPSIG(status), event = status >> 16, inject = 0;

		if (sigstop == (SIGTRAP | 0x80)) {
			struct __ptrace_syscall_info si;

			/* only at an exit: an entry's registers would skip the syscall */
			if (ptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof(si), &si) > 0 &&
			    si.op == PTRACE_SYSCALL_INFO_EXIT) {
				k->stops++;
				if (!is_ready)
					is_ready = ready(pid, t, &sig, &opened) == 1;
				if (is_ready && safe_point(k, t, 1))
					break;
			}
		} else if (event == PTRACE_EVENT_EXEC) {
			opened = 0; /* a new image: start over */
			sig = 0;
			is_ready = k->waited = 0;
			k->path_config_addr = 0;
		} else if (event == PTRACE_EVENT_STOP) {
			if (sigstop == SIGTRAP) { /* our interrupt: a valid point too */
				if (!is_ready)
					is_ready = ready(pid, t, &sig, &opened) == 1;
				if (is_ready && safe_point(k, t, 0))
					break;
			}
		} else if (sigstop != SIGTRAP) {
			inject = sigstop; /* a signal for the process: deliver it */
		}
		pending_sig = inject;
		if (now_us() > deadline) {
			e = -ETIMEDOUT;
			goto fail;
		}
		if (k->between)
			k->between(k->ctx);
		if (ptrace(PTRACE_SYSCALL, pid, 0, (void *)(long)inject)) {
			e = -errno;
			goto fail;
		}
	}
	/* The pointers as they are now: start-up may have set others since
	 * they were first read (PYTHONMALLOC, -X dev: _PyPreConfig_Write). */
	e = tm_target_read_allocators(t);
	if (e)
		goto fail;
	t->stopped_tid = pid;
	k->held_us = now_us() - start;
	return 0;
fail:
	if (e == -ETIMEDOUT)
		snprintf(err, errlen, "PID %d: no CPython interpreter ready within %d ms of its exec",
			 (int)pid, max_ms);
	else if (e == -ESRCH)
		snprintf(err, errlen, "PID %d exited while starting", (int)pid);
	else
		snprintf(err, errlen, "PID %d: cannot follow its start-up: %s", (int)pid, strerror(-e));
	if (k->held && pending_sig) { /* held at its signal's delivery: let it have it */
		ptrace(PTRACE_DETACH, pid, 0, (void *)(long)pending_sig);
		k->held = 0;
	}
	tm_catch_release(k);
	return opened || e != -ETIMEDOUT ? e : -ENOEXEC;
}
