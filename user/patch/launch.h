/* tmbpf run: start a command and stop every CPython its process tree
 * starts at that interpreter's ELF entry point, ptrace-attached by us, so
 * probes (and whatever else the capture must put in first) go in before
 * its first Python allocation.
 *
 * How. The command is our child, attached with PTRACE_SEIZE before it
 * execs; forks, vforks, clones and execs of the tree are followed
 * (PTRACE_O_TRACE*). At each exec an int3 goes at AT_ENTRY (by then the
 * dynamic loader has mapped libpython, and no Python code has run); when it
 * hits, the text and %rip are restored and tm_target_open() decides whether
 * the image is a CPython tmbpf can trace. A CPython is then held in a
 * PTRACE_EVENT_STOP (PTRACE_INTERRUPT before resuming it from the trap, so
 * it stops again before running one instruction) and reported:
 * TM_LAUNCH_CPYTHON. Without follow_children the first one is the only one:
 * every other process of the tree is detached and runs on untraced.
 *
 * A traced CPython stays attached (its threads are not, unless
 * follow_children) until it exits: tmbpf run stops its finalizing thread
 * for the exit snapshot by a signal the BPF program sends
 * (tm_launch_hold_signal: SIGURG), which we take as a signal-delivery-stop
 * and suppress (TM_LAUNCH_SIGNAL, then tm_launch_resume_thread). Every
 * other signal is delivered as it came.
 *
 * SIGKILL of tmbpf at any moment leaves nothing stopped: the kernel
 * detaches every tracee, which then runs on. A CPython held at its entry
 * or at an event stop resumes with no signal; a thread held for the exit
 * snapshot gets its SIGURG, whose default action is to ignore it (a
 * program that handles SIGURG sees one spurious call), so its atexit
 * handlers run. The one exception: a process between the exec that
 * planted the entry int3 and that int3 (a few milliseconds of dynamic
 * loading) has PTRACE_O_EXITKILL set, and is killed: it would die of the
 * breakpoint otherwise.
 *
 * All ptrace calls of tmbpf run are here (patch.h: the layer that may stop
 * a process). Not thread-safe. */
#ifndef TM_PATCH_LAUNCH_H
#define TM_PATCH_LAUNCH_H

#include <stddef.h>
#include <sys/types.h>

struct tm_launch;

enum tm_launch_event_kind {
	TM_LAUNCH_NONE = 0,
	/* A CPython at its entry point, in a ptrace-stop of ours (pid == tid:
	 * its only thread). It stays stopped until tm_launch_resume() or
	 * tm_launch_detach(): the capture attaches meanwhile. */
	TM_LAUNCH_CPYTHON,
	/* A thread of a traced CPython received the held signal and is
	 * stopped before its delivery: tm_launch_resume_thread() decides. */
	TM_LAUNCH_SIGNAL,
	/* A traced CPython exited (status as waitpid gives it). */
	TM_LAUNCH_EXITED,
	/* The command itself exited (status); its tree may still run. */
	TM_LAUNCH_COMMAND_EXITED,
};

struct tm_launch_event {
	enum tm_launch_event_kind kind;
	pid_t pid;   /* the CPython process (tgid), or the command */
	pid_t tid;   /* the stopped thread (TM_LAUNCH_CPYTHON, TM_LAUNCH_SIGNAL) */
	int sig;     /* TM_LAUNCH_SIGNAL */
	int status;  /* TM_LAUNCH_EXITED, TM_LAUNCH_COMMAND_EXITED */
	int command; /* an exit of the command itself (it may be the CPython) */
	char exe[256]; /* TM_LAUNCH_CPYTHON: the image as the process names it */
};

/* Fork argv[0] (PATH lookup), seize it, and let it exec. follow_children:
 * report every CPython of the tree, not only the first. Blocks SIGCHLD in
 * the calling thread (tm_launch_fd). Returns 0 and *out, or a negative
 * errno with one line in err (e.g. "cannot run 'x': No such file or
 * directory", which comes from the child and is returned here). */
int tm_launch_start(char *const argv[], int follow_children, struct tm_launch **out, char *err,
		    size_t errlen);

/* The command's pid (our child). */
pid_t tm_launch_pid(const struct tm_launch *l);

/* A file descriptor readable when tm_launch_next has something to do (a
 * signalfd of SIGCHLD), for the caller's poll loop. */
int tm_launch_fd(const struct tm_launch *l);

/* Signal to hold for the caller when a traced CPython's thread receives it
 * (0: none, the default). */
void tm_launch_hold_signal(struct tm_launch *l, int sig);

/* Handle the tree's stops, waiting up to timeout_ms (0: not at all), and
 * return 1 with the next event in *ev, 0 when there is none yet, or a
 * negative errno. Stops that need no decision (forks, execs of other
 * programs, signals, exits of other processes) are handled inside. */
int tm_launch_next(struct tm_launch *l, int timeout_ms, struct tm_launch_event *ev);

/* Let a CPython reported by TM_LAUNCH_CPYTHON run, still traced. */
int tm_launch_resume(struct tm_launch *l, pid_t pid);
/* Let a thread reported by TM_LAUNCH_SIGNAL run: deliver sig, or 0 to
 * suppress it (the signal was ours). */
int tm_launch_resume_thread(struct tm_launch *l, pid_t tid, int sig);
/* Stop tracing a CPython that cannot be traced after all (the capture
 * refused it): it runs on untraced; why is kept for tm_launch_why(). */
int tm_launch_detach(struct tm_launch *l, pid_t pid, const char *why);

/* How many CPythons were reported so far. */
unsigned tm_launch_found(const struct tm_launch *l);
/* Why no CPython could be traced, one line (e.g. "python3.7 (PID 12):
 * CPython 3.7 is not supported (tmbpf supports 3.8-3.15)", "no CPython
 * started (ran sh, ls)"). */
const char *tm_launch_why(const struct tm_launch *l);

/* Kill the command's whole tree and reap the command (tmbpf failed before
 * it could run). */
void tm_launch_abort(struct tm_launch *l);
/* Detach from everything still traced (it runs on) and free. Accepts NULL. */
void tm_launch_free(struct tm_launch *l);

#endif
