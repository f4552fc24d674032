/* tmbpf run: start a command stopped at its interpreter's entry point.
 * ptrace is used only on our own child and only until the entry breakpoint;
 * PTRACE_O_EXITKILL makes sure a child is never left stopped if tmbpf dies. */
#include "patch/launch.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "target/target.h"

/* How many execs to follow (wrapper scripts) before giving up. */
#define MAX_EXECS 8

static int read_entry(pid_t pid, unsigned long *entry)
{
	char path[64];
	Elf64_auxv_t aux;
	int fd, err = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/auxv", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (read(fd, &aux, sizeof(aux)) == sizeof(aux)) {
		if (aux.a_type == AT_ENTRY) {
			*entry = aux.a_un.a_val;
			err = 0;
			break;
		}
		if (aux.a_type == AT_NULL)
			break;
	}
	close(fd);
	return err;
}

/* Wait for the next ptrace stop of pid; re-inject unrelated signals.
 * Returns the raw status of the stop we want (exec event or SIGTRAP), or
 * -ECHILD when the child exited. */
static int wait_stop(pid_t pid, int want_exec)
{
	int status;

	for (;;) {
		if (waitpid(pid, &status, __WALL) < 0)
			return -errno;
		if (WIFEXITED(status) || WIFSIGNALED(status))
			return -ECHILD;
		if (!WIFSTOPPED(status))
			continue;
		if (want_exec && status >> 8 == (SIGTRAP | (PTRACE_EVENT_EXEC << 8)))
			return status;
		if (!want_exec && WSTOPSIG(status) == SIGTRAP && !(status >> 16))
			return status;
		/* An exec while we wait for the breakpoint: the image changed, start over. */
		if (!want_exec && status >> 8 == (SIGTRAP | (PTRACE_EVENT_EXEC << 8)))
			return status;
		if (ptrace(PTRACE_CONT, pid, 0, (void *)(long)(status >> 16 ? 0 : WSTOPSIG(status))) < 0)
			return -errno;
	}
}

static int is_cpython(pid_t pid)
{
	/* tm_target_open does the real work; a failure means "not (yet) Python". */
	struct tm_target *t = calloc(1, sizeof(*t));
	char err[256];
	int ok;

	if (!t)
		return 0;
	ok = tm_target_open(pid, t, err, sizeof(err)) == 0;
	free(t);
	return ok;
}

/* At an exec stop: plant int3 at AT_ENTRY and run to it. Returns 1 when
 * stopped at the entry of a CPython image, 0 when the image is something
 * else (the child then runs on to its next exec), negative errno on failure. */
static int run_to_entry(struct tm_launch *l)
{
	struct user_regs_struct regs;
	unsigned long entry = 0, word;
	int status, err;

	err = read_entry(l->pid, &entry);
	if (err)
		return err;
	errno = 0;
	word = ptrace(PTRACE_PEEKTEXT, l->pid, entry, 0);
	if (errno)
		return -errno;
	if (ptrace(PTRACE_POKETEXT, l->pid, entry, (word & ~0xffUL) | 0xcc) < 0)
		return -errno;
	if (ptrace(PTRACE_CONT, l->pid, 0, 0) < 0)
		return -errno;
	status = wait_stop(l->pid, 0);
	if (status < 0)
		return status;
	if (status >> 8 == (SIGTRAP | (PTRACE_EVENT_EXEC << 8)))
		return 0; /* exec'd again before its entry: the old text is gone */
	if (ptrace(PTRACE_GETREGS, l->pid, 0, &regs) < 0)
		return -errno;
	if (regs.rip != entry + 1)
		return -EPROTO;
	regs.rip = entry;
	if (ptrace(PTRACE_SETREGS, l->pid, 0, &regs) < 0 ||
	    ptrace(PTRACE_POKETEXT, l->pid, entry, word) < 0)
		return -errno;
	l->entry = entry;
	l->orig_word = word;
	if (is_cpython(l->pid)) {
		l->stopped = 1;
		return 1;
	}
	return 0;
}

int tm_launch_stopped(char *const argv[], struct tm_launch *l, char *err, size_t errlen)
{
	int execfail[2], status, ret, n;
	pid_t pid;

	memset(l, 0, sizeof(*l));
	if (pipe2(execfail, O_CLOEXEC) < 0) {
		ret = -errno;
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return ret;
	}
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(execfail[0]);
		close(execfail[1]);
		return ret;
	}
	if (pid == 0) {
		int e;

		close(execfail[0]);
		if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
			_exit(127);
		raise(SIGSTOP);
		execvp(argv[0], argv);
		e = errno;
		if (write(execfail[1], &e, sizeof(e)) < 0)
			_exit(127);
		_exit(127);
	}
	close(execfail[1]);
	l->pid = pid;
	if (waitpid(pid, &status, __WALL) < 0 || !WIFSTOPPED(status)) {
		ret = -ECHILD;
		snprintf(err, errlen, "could not start '%s'", argv[0]);
		goto fail;
	}
	if (ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL) < 0 ||
	    ptrace(PTRACE_CONT, pid, 0, 0) < 0) {
		ret = -errno;
		snprintf(err, errlen, "ptrace: %s", strerror(errno));
		goto fail;
	}
	for (n = 0; n < MAX_EXECS; n++) {
		status = wait_stop(pid, 1);
		if (status < 0) {
			int e = 0;

			ret = status;
			if (read(execfail[0], &e, sizeof(e)) == sizeof(e)) {
				ret = -e; /* the exec's own error: tmbpf run's 126/127 */
				snprintf(err, errlen, "cannot run '%s': %s", argv[0], strerror(e));
			}
			else
				snprintf(err, errlen, "'%s' exited before starting a CPython interpreter",
					 argv[0]);
			goto fail;
		}
		ret = run_to_entry(l);
		if (ret == 1) {
			close(execfail[0]);
			return 0;
		}
		if (ret == -ECHILD) {
			snprintf(err, errlen, "'%s' exited before starting a CPython interpreter",
				 argv[0]);
			goto fail;
		}
		if (ret < 0) {
			snprintf(err, errlen, "could not stop '%s' at its entry point: %s", argv[0],
				 strerror(-ret));
			goto fail;
		}
		/* Not Python (a wrapper script?): let it run to its next exec. */
		if (ptrace(PTRACE_CONT, pid, 0, 0) < 0) {
			ret = -errno;
			snprintf(err, errlen, "ptrace: %s", strerror(errno));
			goto fail;
		}
	}
	ret = -ENOEXEC;
	snprintf(err, errlen, "'%s' did not start a CPython interpreter (the command must exec a "
			      "CPython 3.8-3.13 interpreter in its own process)", argv[0]);
fail:
	close(execfail[0]);
	tm_launch_abort(l);
	return ret;
}

int tm_launch_release(struct tm_launch *l)
{
	if (!l->stopped)
		return -EINVAL;
	l->stopped = 0;
	if (ptrace(PTRACE_DETACH, l->pid, 0, 0) < 0)
		return -errno;
	return 0;
}

void tm_launch_abort(struct tm_launch *l)
{
	int status;

	if (l->pid <= 0)
		return;
	kill(l->pid, SIGKILL);
	while (waitpid(l->pid, &status, __WALL) < 0 && errno == EINTR)
		;
	l->pid = 0;
	l->stopped = 0;
}
