/* tmbpf run's launcher: the command's process tree under ptrace until each
 * CPython it starts is at its entry point (launch.h). Every rule that keeps
 * a SIGKILL of tmbpf harmless is stated where the state is entered. */
#include "patch/launch.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "target/target.h"

/* Options of a task still looking for a CPython: follow everything. */
#define TREE_OPTIONS (PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE | \
		      PTRACE_O_TRACEEXEC)

enum task_state {
	T_RUNNING,    /* running, or in a stop we resume at once */
	T_ENTRY_BP,   /* exec'd: int3 planted at entry (EXITKILL on) */
	T_HOLDING,    /* a CPython resumed from the trap with PTRACE_INTERRUPT pending */
	T_HELD,       /* a CPython in its event stop at the entry: reported */
	T_HELD_SIGNAL, /* a CPython thread in the held signal's delivery stop: reported */
	T_DETACHING,  /* interrupted, to be detached at its next stop */
};

struct task {
	pid_t tid, tgid;
	enum task_state state;
	int cpython;             /* a thread of a traced CPython */
	int bp;                  /* the int3 is planted (T_ENTRY_BP, or T_DETACHING from it) */
	unsigned long entry;     /* where the int3 is */
	unsigned long orig_word; /* the text word it replaced */
	char exe[256];
};

struct tm_launch {
	pid_t pid;               /* the command */
	int follow;
	int hold_sig;
	unsigned found;
	int command_done;
	int sigfd;
	sigset_t oldmask;
	struct task *tasks;
	size_t ntasks, cap;
	char why[768];
	int why_rank;            /* 2: a CPython refused, 1: an interpreter-looking image, 0: none */
	char ran[256];           /* programs exec'd, for "no CPython started (ran ...)" */
};

static struct task *task_find(struct tm_launch *l, pid_t tid)
{
	for (size_t i = 0; i < l->ntasks; i++)
		if (l->tasks[i].tid == tid)
			return &l->tasks[i];
	return NULL;
}

static pid_t tgid_of(pid_t tid)
{
	char path[64], line[128];
	pid_t tgid = tid;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return tid;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

static struct task *task_add(struct tm_launch *l, pid_t tid)
{
	struct task *t;

	if (l->ntasks == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 16;
		struct task *n = realloc(l->tasks, ncap * sizeof(*n));

		if (!n)
			return NULL;
		l->tasks = n;
		l->cap = ncap;
	}
	t = &l->tasks[l->ntasks++];
	memset(t, 0, sizeof(*t));
	t->tid = tid;
	t->tgid = tgid_of(tid);
	return t;
}

static void task_remove(struct tm_launch *l, struct task *t)
{
	*t = l->tasks[--l->ntasks];
}

/* The reason kept for tm_launch_why: the highest rank seen last. */
static void note_why(struct tm_launch *l, int rank, const char *exe, pid_t pid, const char *why)
{
	const char *b = exe ? strrchr(exe, '/') : NULL;

	if (rank < l->why_rank)
		return;
	l->why_rank = rank;
	if (exe)
		snprintf(l->why, sizeof(l->why), "%s (PID %d): %s", b ? b + 1 : exe, (int)pid, why);
	else
		snprintf(l->why, sizeof(l->why), "%s", why);
}

static void exe_name(pid_t pid, char *out, size_t len)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, out, len - 1);
	out[n > 0 ? n : 0] = '\0';
	if (n <= 0)
		snprintf(out, len, "PID %d", (int)pid);
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

static void note_ran(struct tm_launch *l, const char *exe)
{
	const char *b = base_name(exe);
	size_t n = strlen(l->ran);

	if (strstr(l->ran, b) || n + strlen(b) + 3 >= sizeof(l->ran))
		return;
	snprintf(l->ran + n, sizeof(l->ran) - n, "%s%s", n ? ", " : "", b);
}

static int read_entry(pid_t pid, unsigned long *entry)
{
	char path[64];
	Elf64_auxv_t aux;
	int fd, err = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/auxv", (int)pid);
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

/* ---- detaching ---------------------------------------------------------- */

/* A task in a ptrace-stop: detach, delivering sig (a signal-delivery stop's).
 * A planted int3 goes first, and a task stopped by it is put back at the
 * entry instruction. */
static void detach_stopped(struct tm_launch *l, struct task *t, int sig)
{
	if (t->bp) {
		struct user_regs_struct regs;

		ptrace(PTRACE_POKETEXT, t->tid, t->entry, t->orig_word);
		if (sig == SIGTRAP && ptrace(PTRACE_GETREGS, t->tid, 0, &regs) == 0 &&
		    regs.rip == t->entry + 1) {
			regs.rip = t->entry;
			ptrace(PTRACE_SETREGS, t->tid, 0, &regs);
			sig = 0;
		}
	}
	ptrace(PTRACE_DETACH, t->tid, 0, (void *)(long)sig);
	task_remove(l, t);
}

/* Without follow_children, once a CPython is found nothing else of the tree
 * is traced: running tasks are interrupted and detached at that stop. */
static void detach_the_rest(struct tm_launch *l)
{
	for (size_t i = 0; i < l->ntasks; i++) {
		struct task *t = &l->tasks[i];

		if (t->cpython || t->state == T_DETACHING)
			continue;
		if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) == 0)
			t->state = T_DETACHING;
	}
}

/* ---- the entry breakpoint ---------------------------------------------------- */

/* At an exec stop: plant int3 at AT_ENTRY. EXITKILL while it is there:
 * a process left running with it would die of SIGTRAP; killing it is the
 * honest version of that. */
static int plant_entry(struct tm_launch *l, struct task *t)
{
	unsigned long entry = 0, word;
	int err = read_entry(t->tid, &entry);

	exe_name(t->tid, t->exe, sizeof(t->exe));
	note_ran(l, t->exe);
	if (err)
		return err;
	errno = 0;
	word = ptrace(PTRACE_PEEKTEXT, t->tid, entry, 0);
	if (errno)
		return -errno;
	if (ptrace(PTRACE_SETOPTIONS, t->tid, 0, TREE_OPTIONS | PTRACE_O_EXITKILL) < 0 ||
	    ptrace(PTRACE_POKETEXT, t->tid, entry, (word & ~0xffUL) | 0xcc) < 0)
		return -errno;
	t->entry = entry;
	t->orig_word = word;
	t->bp = 1;
	t->state = T_ENTRY_BP;
	return 0;
}

/* Is the image at its entry a CPython we can trace? Remember why not. */
static int is_cpython(struct tm_launch *l, struct task *t)
{
	struct tm_target *tg = calloc(1, sizeof(*tg));
	char err[384];
	int rc;

	if (!tg)
		return 0;
	rc = tm_target_open(t->tid, tg, err, sizeof(err));
	free(tg);
	if (rc == 0)
		return 1;
	/* "not a CPython process": another program (sh, chroot, timeout). */
	if (rc == -ENOEXEC && strstr(err, "not a CPython"))
		return 0;
	note_why(l, 1, t->exe, t->tid, err);
	return 0;
}

/* The int3 hit: restore the text and %rip, drop EXITKILL. A CPython is
 * resumed with PTRACE_INTERRUPT pending, which stops it again before its
 * first instruction, in an event stop: if tmbpf dies there, it runs on with
 * no signal (a SIGTRAP delivery stop would kill it). */
static int at_entry(struct tm_launch *l, struct task *t)
{
	struct user_regs_struct regs;
	unsigned opts;

	if (ptrace(PTRACE_GETREGS, t->tid, 0, &regs) < 0)
		return -errno;
	if (regs.rip != t->entry + 1)
		return -EPROTO;
	regs.rip = t->entry;
	if (ptrace(PTRACE_SETREGS, t->tid, 0, &regs) < 0 ||
	    ptrace(PTRACE_POKETEXT, t->tid, t->entry, t->orig_word) < 0)
		return -errno;
	t->bp = 0;
	if (!is_cpython(l, t)) {
		t->state = T_RUNNING;
		if (ptrace(PTRACE_SETOPTIONS, t->tid, 0, TREE_OPTIONS) < 0)
			return -errno;
		return ptrace(PTRACE_CONT, t->tid, 0, 0) < 0 ? -errno : 0;
	}
	/* Its threads and children only matter when every CPython is traced. */
	opts = l->follow ? TREE_OPTIONS : 0;
	t->cpython = 1;
	t->state = T_HOLDING;
	if (ptrace(PTRACE_SETOPTIONS, t->tid, 0, opts) < 0 ||
	    ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) < 0 || ptrace(PTRACE_CONT, t->tid, 0, 0) < 0)
		return -errno;
	l->found++;
	if (!l->follow)
		detach_the_rest(l);
	return 0;
}

/* ---- one wait status ----------------------------------------------------------- */

static int group_stop_sig(int sig)
{
	return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

/* A task we did not know: a new auto-attached child or thread (its first
 * stop can come before its parent's fork event). */
static struct task *new_task(struct tm_launch *l, pid_t tid)
{
	struct task *t = task_add(l, tid), *leader;

	if (!t)
		return NULL;
	leader = task_find(l, t->tgid);
	if (leader && leader != t && leader->cpython)
		t->cpython = 1; /* a thread of a traced CPython (follow_children) */
	if (!l->follow && l->found && !t->cpython)
		t->state = T_DETACHING; /* forked by a task being detached */
	return t;
}

static int on_stop(struct tm_launch *l, struct task *t, int status, struct tm_launch_event *ev)
{
	int sig = WSTOPSIG(status), event = status >> 16;

	if (t->state == T_DETACHING) {
		detach_stopped(l, t, event ? 0 : sig);
		return 0;
	}
	if (event == PTRACE_EVENT_EXEC) {
		t->tgid = t->tid;
		t->bp = 0; /* the old text is gone with the old image */
		if (t->cpython || (!l->follow && l->found)) {
			/* A traced CPython became another program: stop tracing it. */
			if (t->cpython) {
				ev->kind = TM_LAUNCH_EXITED;
				ev->pid = t->tid;
			}
			detach_stopped(l, t, 0);
			return ev->kind ? 1 : 0;
		}
		if (plant_entry(l, t))
			t->state = T_RUNNING;
		return ptrace(PTRACE_CONT, t->tid, 0, 0) < 0 ? -errno : 0;
	}
	if (event == PTRACE_EVENT_STOP) {
		if (t->state == T_HOLDING) {
			t->state = T_HELD;
			ev->kind = TM_LAUNCH_CPYTHON;
			ev->pid = t->tgid;
			ev->tid = t->tid;
			snprintf(ev->exe, sizeof(ev->exe), "%s", t->exe);
			return 1;
		}
		if (group_stop_sig(sig)) /* a job-control stop: stay in it, traced */
			return ptrace(PTRACE_LISTEN, t->tid, 0, 0) < 0 ? -errno : 0;
		return ptrace(PTRACE_CONT, t->tid, 0, 0) < 0 ? -errno : 0;
	}
	if (event) /* fork, vfork, clone: the child reports itself */
		return ptrace(PTRACE_CONT, t->tid, 0, 0) < 0 ? -errno : 0;
	if (sig == SIGTRAP && t->state == T_ENTRY_BP) {
		int err = at_entry(l, t);

		if (err) { /* not at our int3 after all: leave it be */
			t->state = T_RUNNING;
			return ptrace(PTRACE_CONT, t->tid, 0, 0) < 0 ? -errno : 0;
		}
		return 0;
	}
	if (t->cpython && l->hold_sig && sig == l->hold_sig) {
		t->state = T_HELD_SIGNAL;
		ev->kind = TM_LAUNCH_SIGNAL;
		ev->pid = t->tgid;
		ev->tid = t->tid;
		ev->sig = sig;
		return 1;
	}
	/* Any other signal: deliver it as it came. */
	return ptrace(PTRACE_CONT, t->tid, 0, (void *)(long)sig) < 0 ? -errno : 0;
}

static int on_status(struct tm_launch *l, pid_t tid, int status, struct tm_launch_event *ev)
{
	struct task *t = task_find(l, tid);

	if (WIFEXITED(status) || WIFSIGNALED(status)) {
		int was_cpython = t && t->cpython && t->tid == t->tgid;

		if (t)
			task_remove(l, t);
		if (tid == l->pid) {
			/* The command may also be the CPython: one event says both. */
			l->command_done = 1;
			ev->kind = was_cpython ? TM_LAUNCH_EXITED : TM_LAUNCH_COMMAND_EXITED;
			ev->command = 1;
			ev->pid = tid;
			ev->status = status;
			return 1;
		}
		if (was_cpython) {
			ev->kind = TM_LAUNCH_EXITED;
			ev->pid = tid;
			ev->status = status;
			return 1;
		}
		return 0;
	}
	if (!WIFSTOPPED(status))
		return 0;
	tm_log(TM_LOG_TRACE, "launch: PID %d stopped (signal %d, event %d)", (int)tid,
	       WSTOPSIG(status), status >> 16);
	if (!t && !(t = new_task(l, tid)))
		return -ENOMEM;
	return on_stop(l, t, status, ev);
}

/* ---- API ----------------------------------------------------------------------- */

/* Empty the signalfd: it stays readable (a caller's poll would spin) until
 * read, and every SIGCHLD it queued is answered by the waitpid sweep. */
static void drain_sigfd(struct tm_launch *l)
{
	struct signalfd_siginfo si;

	while (read(l->sigfd, &si, sizeof(si)) == sizeof(si))
		;
}

int tm_launch_next(struct tm_launch *l, int timeout_ms, struct tm_launch_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	drain_sigfd(l);
	for (int pass = 0; pass < 2; pass++) {
		for (;;) {
			int status, rc;
			pid_t tid = waitpid(-1, &status, __WALL | WNOHANG);

			if (tid == 0 || (tid < 0 && errno == ECHILD))
				break;
			if (tid < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			rc = on_status(l, tid, status, ev);
			if (rc)
				return rc;
		}
		if (pass || timeout_ms <= 0)
			break;
		{
			struct pollfd p = { .fd = l->sigfd, .events = POLLIN };

			if (poll(&p, 1, timeout_ms) > 0)
				drain_sigfd(l);
		}
	}
	return 0;
}

int tm_launch_resume(struct tm_launch *l, pid_t pid)
{
	struct task *t = task_find(l, pid);

	if (!t || t->state != T_HELD)
		return -ESRCH;
	t->state = T_RUNNING;
	return ptrace(PTRACE_CONT, t->tid, 0, 0) < 0 ? -errno : 0;
}

int tm_launch_resume_thread(struct tm_launch *l, pid_t tid, int sig)
{
	struct task *t = task_find(l, tid);

	if (!t || t->state != T_HELD_SIGNAL)
		return -ESRCH;
	t->state = T_RUNNING;
	return ptrace(PTRACE_CONT, t->tid, 0, (void *)(long)sig) < 0 ? -errno : 0;
}

int tm_launch_detach(struct tm_launch *l, pid_t pid, const char *why)
{
	int err = 0;

	note_why(l, 2, NULL, pid, why);
	for (size_t i = l->ntasks; i > 0; i--) {
		struct task *t = &l->tasks[i - 1];

		if (t->tgid != pid)
			continue;
		if (t->state == T_HELD || t->state == T_HELD_SIGNAL)
			detach_stopped(l, t, 0);
		else if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) == 0)
			t->state = T_DETACHING;
		else
			err = -errno;
	}
	if (l->found)
		l->found--;
	return err;
}

void tm_launch_hold_signal(struct tm_launch *l, int sig)
{
	l->hold_sig = sig;
}

pid_t tm_launch_pid(const struct tm_launch *l)
{
	return l->pid;
}

int tm_launch_fd(const struct tm_launch *l)
{
	return l->sigfd;
}

unsigned tm_launch_found(const struct tm_launch *l)
{
	return l->found;
}

const char *tm_launch_why(const struct tm_launch *l)
{
	static char buf[300];

	if (l->why_rank)
		return l->why;
	snprintf(buf, sizeof(buf), "no CPython started (ran %s)", l->ran[0] ? l->ran : "nothing");
	return buf;
}

int tm_launch_start(char *const argv[], int follow_children, struct tm_launch **out, char *err,
		    size_t errlen)
{
	struct tm_launch *l = calloc(1, sizeof(*l));
	int go[2] = { -1, -1 }, execfail[2] = { -1, -1 }, ret = 0, e;
	sigset_t chld;
	pid_t pid;

	*out = NULL;
	if (!l) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	l->follow = follow_children;
	l->sigfd = -1;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &l->oldmask);
	l->sigfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (l->sigfd < 0 || pipe2(go, O_CLOEXEC) < 0 || pipe2(execfail, O_CLOEXEC) < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot set up the launcher: %s", strerror(errno));
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		snprintf(err, errlen, "fork: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0) {
		char c;

		sigprocmask(SIG_SETMASK, &l->oldmask, NULL);
		/* Wait until the parent has seized us: every exec is then seen. */
		if (read(go[0], &c, 1) != 1)
			_exit(127);
		execvp(argv[0], argv);
		e = errno;
		if (write(execfail[1], &e, sizeof(e)) < 0)
			_exit(127);
		_exit(127);
	}
	l->pid = pid;
	close(go[0]);
	close(execfail[1]);
	go[0] = execfail[1] = -1;
	if (ptrace(PTRACE_SEIZE, pid, 0, TREE_OPTIONS) < 0 || !task_add(l, pid)) {
		ret = -errno;
		snprintf(err, errlen, "ptrace: %s", strerror(errno));
		goto fail;
	}
	if (write(go[1], "g", 1) != 1) {
		ret = -EIO;
		snprintf(err, errlen, "cannot start '%s'", argv[0]);
		goto fail;
	}
	close(go[1]);
	go[1] = -1;
	/* The exec either happens (execfail closes: read gives 0) or fails. */
	if (read(execfail[0], &e, sizeof(e)) == sizeof(e)) {
		ret = -e;
		snprintf(err, errlen, "cannot run '%s': %s", argv[0], strerror(e));
		goto fail;
	}
	close(execfail[0]);
	*out = l;
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (go[i] >= 0)
			close(go[i]);
		if (execfail[i] >= 0)
			close(execfail[i]);
	}
	tm_launch_abort(l);
	tm_launch_free(l);
	return ret;
}

void tm_launch_abort(struct tm_launch *l)
{
	int status;

	if (!l || l->pid <= 0)
		return;
	for (size_t i = 0; i < l->ntasks; i++)
		if (l->tasks[i].tid != l->pid)
			kill(l->tasks[i].tid, SIGKILL);
	kill(l->pid, SIGKILL);
	while (waitpid(l->pid, &status, __WALL) < 0 && errno == EINTR)
		;
	l->ntasks = 0;
	l->pid = 0;
}

void tm_launch_free(struct tm_launch *l)
{
	if (!l)
		return;
	/* Detach what is still traced: stopped tasks now; running ones after
	 * an interrupt (a running tracee cannot be detached). */
	for (int round = 0; round < 50 && l->ntasks; round++) {
		struct tm_launch_event ev;

		for (size_t i = l->ntasks; i > 0; i--) {
			struct task *t = &l->tasks[i - 1];

			if (t->state == T_HELD || t->state == T_HELD_SIGNAL)
				detach_stopped(l, t, 0);
			else if (t->state != T_DETACHING && ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) == 0)
				t->state = T_DETACHING;
			else if (t->state != T_DETACHING)
				task_remove(l, t); /* gone */
		}
		l->follow = 1; /* no more "detach the rest": everything goes */
		if (tm_launch_next(l, 20, &ev) < 0)
			break;
	}
	if (l->sigfd >= 0)
		close(l->sigfd);
	sigprocmask(SIG_SETMASK, &l->oldmask, NULL);
	free(l->tasks);
	free(l);
}
