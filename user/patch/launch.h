/* Start a command stopped at the entry point of its CPython executable, so
 * probes can be attached before its first Python allocation (tmbpf run).
 *
 * The child is traced with ptrace only until it reaches the ELF entry point
 * (AT_ENTRY) of an executable image that has the interpreter mapped: by then
 * the dynamic loader has mapped libpython, and no Python code has run. Shell
 * wrappers that exec the interpreter (pyenv shims) are followed through each
 * exec. tm_launch_release() removes the breakpoint and detaches; from then on
 * the child runs untraced. */
#ifndef TM_PATCH_LAUNCH_H
#define TM_PATCH_LAUNCH_H

#include <stddef.h>
#include <sys/types.h>

struct tm_launch {
	pid_t pid;
	unsigned long entry;     /* address of the breakpoint, restored on release */
	unsigned long orig_word; /* original text word at entry */
	int stopped;             /* 1 while stopped at the entry breakpoint */
};

/* Fork and exec argv[0] (PATH lookup), and return with the child stopped at
 * the entry of the first exec'd image that maps a CPython interpreter.
 * Returns 0, or a negative errno with one line in err (the child is then
 * killed and reaped); when the exec itself failed, its errno (-ENOENT: no
 * such command). */
int tm_launch_stopped(char *const argv[], struct tm_launch *l, char *err, size_t errlen);

/* Restore the entry instruction and let the child run, untraced. */
int tm_launch_release(struct tm_launch *l);

/* Kill and reap a child that was never released. */
void tm_launch_abort(struct tm_launch *l);

#endif
