/* Catching a CPython that just started (tmbpf --all sees its exec), before
 * it runs the program: so that a program started after tmbpf is traced from its
 * interpreter's start-up, as `tmbpf run` traces it.
 *
 * tm_catch_exec() seizes the process (PTRACE_SEIZE + PTRACE_INTERRUPT,
 * never PTRACE_O_EXITKILL) and steps it from syscall exit to syscall exit
 * while the dynamic loader runs, until the image holds an interpreter whose
 * allocator pointers are relocated (each names code in an executable
 * mapping of the interpreter's file) and, for a process seen before its
 * interpreter existed, until that interpreter exists and the stop is at a
 * syscall that is not the allocator's (where start-up has not put the raw
 * allocator aside: catch.c, safe_point); it returns with the process held
 * at that stop and the target opened. Nothing is written into it: no
 * breakpoint, so if tmbpf dies the kernel detaches the tracee and it runs
 * on as if never caught. The caller attaches (tm_capture_add_target with
 * t->stopped_tid set: the stub is injected through the held thread) and
 * then calls tm_catch_release().
 *
 * May: ptrace-stop and resume the process. May not: write into it. */
#ifndef TM_PATCH_CATCH_H
#define TM_PATCH_CATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "target/target.h"

struct tm_catch {
	pid_t pid;
	int held;       /* 1 while the process is stopped by us */
	unsigned stops; /* syscall stops it took (for -v) */
	long held_us;   /* how long it was held so far */
	long seized_us; /* CLOCK_MONOTONIC when it was seized */
	int late;       /* 1: seized after the interpreter had started (allocations
			 * made before are not seen, as when attaching to a running one) */
	int waited;     /* 1: seen before its interpreter existed (caught once it
			 * does, at a safe point: catch.c) */
	long wait_start_us;  /* when it was first seen waiting for its interpreter */
	uint64_t path_config_addr; /* 3.10: &_Py_path_config.module_search_path (catch.c) */
	int no_interpreter; /* 1: no interpreter 0.3 s after it was first seen (an
			     * embedder that starts Python later): caught where it was */
	/* Set by the caller: called between two stops while the process is
	 * stepped (e.g. to hold other processes that exec meanwhile). */
	void (*between)(void *ctx);
	void *ctx;
};

/* Seize and interrupt pid at once (a few microseconds): it stops where it
 * is, to be caught (tm_catch_exec) when the caller gets to it. 0 with
 * k->held, or a negative errno. */
int tm_catch_seize(pid_t pid, struct tm_catch *k);
/* (tm_catch_seize clears k: set between/ctx after it.) */

/* Catch pid (which has just exec'd; seized already when k->held for it)
 * and open it into *t. Returns 0 with the
 * process held; -ENOEXEC when the image is not a CPython (released);
 * -ESRCH when it exited; -EPERM when ptrace is refused (another tracer);
 * -ETIMEDOUT when no interpreter image appeared within max_ms (released);
 * an image whose interpreter does not start within 0.3 s is caught where
 * it is (k->no_interpreter). err gets one line. */
int tm_catch_exec(pid_t pid, int max_ms, struct tm_target *t, struct tm_catch *k, char *err,
		  size_t errlen);

/* Let a held process go (PTRACE_DETACH). Safe to call twice. */
void tm_catch_release(struct tm_catch *k);

#endif
