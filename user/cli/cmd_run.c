/* tmbpf run [OPTIONS] [--] CMD [ARGS]: start CMD; trace the first CPython
 * its process tree starts (forks and execs followed: chroot, unshare --fork,
 * sh -c, timeout), every one with --follow-children, from that interpreter's
 * entry point; snapshot each when it starts finalizing (its finalizing
 * thread held meanwhile, patch/launch.h); write the snapshots (-o) or print
 * the top statistics. The exit status is CMD's. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "cli/commands.h"
#include "cli/live_render.h"
#include "cli/live_session.h"
#include "cli/output.h"
#include "patch/launch.h"

/* The signal BPF sends the finalizing thread: its default action is to
 * ignore it, so if tmbpf dies the thread runs on (launch.h). */
#define FINALIZE_SIGNAL SIGURG
/* A finalizing thread we do not trace (not the main thread, without
 * --follow-children) is never held: snapshot it this soon anyway. */
#define UNHELD_FINALIZE_WAIT_S 0.2
#define MAX_RUN_PROCS 64

/* tmbpf's own failures, told apart from CMD's status as env(1) and
 * timeout(1) do (cli_exit_status_text). */
#define RUN_FAILED 125
#define RUN_CANNOT_EXEC 126
#define RUN_NOT_FOUND 127

static int child_exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct run_ctx {
	struct live_opts o;
	struct tm_stats_options r;
};

static const struct cli_table run_tables[] = {
	LIVE_CLI_TABLE("Capture options (root)", live_capture_options, struct run_ctx, o),
	LIVE_CLI_TABLE("Process tree", live_run_options, struct run_ctx, o),
	LIVE_CLI_TABLE("Output (default: the top statistics on stdout)", live_output_options,
		       struct run_ctx, o),
	TM_STATS_CLI_TABLE(struct run_ctx, r),
	TM_FILTER_CLI_TABLE(struct run_ctx, r),
};

/* One traced CPython. The first uses the session's own target. */
struct run_proc {
	pid_t pid;
	struct tm_target *t;     /* heap, borrowed by the capture (NULL: s.target) */
	struct tm_snapshot *snap;
	char exe[256];
	double finalizing_since; /* when the capture saw Py_FinalizeEx, 0: not yet */
	int exited;
};

struct run_state {
	struct run_ctx *c;
	struct live_opts o;
	struct live_session s;
	int have_session;        /* s.capture loaded */
	int capture_broken;      /* loading BPF failed: nothing can be traced */
	struct tm_launch *l;
	struct cli_output out;   /* -o of the first process, prepared before CMD runs */
	struct run_proc procs[MAX_RUN_PROCS];
	unsigned nprocs;
	int command_done, command_status;
};

static struct run_proc *proc_of(struct run_state *rs, pid_t pid)
{
	for (unsigned i = 0; i < rs->nprocs; i++)
		if (rs->procs[i].pid == pid)
			return &rs->procs[i];
	return NULL;
}

/* Symbolize every stack announced so far, then read the maps. */
static void take_snapshot(struct run_state *rs, struct run_proc *p)
{
	while (tm_capture_poll(rs->s.capture, 0) > 0)
		;
	p->snap = live_take_snapshot_of(&rs->s, p->pid);
}

/* A CPython stopped at its entry: attach, then let it run. */
static void on_cpython(struct run_state *rs, const struct tm_launch_event *ev)
{
	struct run_proc *p;
	struct tm_target *t;
	char err[512];
	int e;

	if (rs->capture_broken || rs->nprocs == MAX_RUN_PROCS) {
		tm_launch_detach(rs->l, ev->pid, rs->capture_broken ? "the capture could not start"
								  : "too many CPythons at once");
		return;
	}
	p = &rs->procs[rs->nprocs];
	memset(p, 0, sizeof(*p));
	p->pid = ev->pid;
	snprintf(p->exe, sizeof(p->exe), "%s", ev->exe);
	/* The first one uses the session's target; the capture borrows each. */
	t = rs->nprocs ? (p->t = calloc(1, sizeof(*p->t))) : &rs->s.target;
	e = t ? tm_target_open(ev->pid, t, err, sizeof(err)) : -ENOMEM;
	if (!e && !rs->s.capture) {
		rs->s.opts = &rs->o;
		rs->s.capture = tm_capture_new(&rs->o.capture, err, sizeof(err));
		if (!rs->s.capture) {
			e = -errno;
			rs->capture_broken = 1;
		}
	}
	if (!e) {
		t->stopped_tid = ev->tid; /* held by us: the stub is injected through it */
		e = tm_capture_add_target(rs->s.capture, t, err, sizeof(err));
	}
	if (e) {
		fprintf(stderr, "tmbpf: %s\n", t ? err : "out of memory");
		free(p->t);
		p->t = NULL;
		tm_launch_detach(rs->l, ev->pid, t ? err : "out of memory");
		return;
	}
	rs->have_session = 1;
	rs->nprocs++;
	fprintf(stderr, "tmbpf: tracing PID %d %s (CPython %s, %u frames)\n", ev->pid, ev->exe,
		t->version, rs->o.capture.max_frames);
	if (tm_launch_resume(rs->l, ev->pid))
		fprintf(stderr, "tmbpf: run: could not resume PID %d: %s\n", ev->pid, strerror(errno));
}

static void on_event(struct run_state *rs, const struct tm_launch_event *ev)
{
	struct run_proc *p = proc_of(rs, ev->pid);

	switch (ev->kind) {
	case TM_LAUNCH_CPYTHON:
		on_cpython(rs, ev);
		break;
	case TM_LAUNCH_SIGNAL:
		/* Ours when BPF marked the process finalizing; else the
		 * program's own SIGURG, delivered. */
		if (p && !p->snap && tm_capture_finalizing(rs->s.capture, p->pid) == 1) {
			take_snapshot(rs, p);
			tm_launch_resume_thread(rs->l, ev->tid, 0);
		} else {
			tm_launch_resume_thread(rs->l, ev->tid, ev->sig);
		}
		break;
	case TM_LAUNCH_EXITED:
		if (p && !p->snap) {
			/* Exited without finalizing (killed, os._exit): what was live then. */
			fprintf(stderr, "tmbpf: run: PID %d ended without finalizing; snapshot of the "
					"blocks live at its end\n", p->pid);
			take_snapshot(rs, p);
		}
		if (p)
			p->exited = 1;
		break;
	default:
		break;
	}
	/* The command's own exit (it may be the CPython just handled). */
	if ((ev->kind == TM_LAUNCH_EXITED || ev->kind == TM_LAUNCH_COMMAND_EXITED) && ev->command) {
		rs->command_done = 1;
		rs->command_status = ev->status;
	}
}


/* Finalizing processes whose thread was not held: snapshot after a grace
 * period (the capture's event may come before the held stop). */
static void check_unheld(struct run_state *rs)
{
	for (unsigned i = 0; rs->have_session && i < rs->nprocs; i++) {
		struct run_proc *p = &rs->procs[i];

		if (p->snap || p->exited || tm_capture_finalizing(rs->s.capture, p->pid) != 1)
			continue;
		if (!p->finalizing_since)
			p->finalizing_since = now_s();
		else if (now_s() - p->finalizing_since > UNHELD_FINALIZE_WAIT_S)
			take_snapshot(rs, p);
	}
}

static int all_exited(const struct run_state *rs)
{
	for (unsigned i = 0; i < rs->nprocs; i++)
		if (!rs->procs[i].exited)
			return 0;
	return 1;
}

static int wait_loop(struct run_state *rs)
{
	while (!rs->command_done || !all_exited(rs)) {
		struct pollfd fds[2] = {
			{ .fd = tm_launch_fd(rs->l), .events = POLLIN },
			{ .fd = rs->have_session ? tm_capture_fd(rs->s.capture) : -1, .events = POLLIN },
		};
		struct tm_launch_event ev;
		int rc;

		if (poll(fds, 2, 50) < 0 && errno != EINTR)
			return -errno;
		if (rs->have_session)
			tm_capture_poll(rs->s.capture, 0);
		while ((rc = tm_launch_next(rs->l, 0, &ev)) > 0)
			on_event(rs, &ev);
		if (rc < 0)
			return rc;
		check_unheld(rs);
	}
	return 0;
}

/* The first process writes FILE; the others FILE.PID.ext (or, on stdout,
 * their statistics after a "# PID" line). */
static int write_outputs(struct run_state *rs)
{
	int ret = 0;

	for (unsigned i = 0; i < rs->nprocs; i++) {
		struct run_proc *p = &rs->procs[i];
		char path[4096];

		if (!p->snap) {
			ret = 1;
			continue;
		}
		if (rs->o.output && i == 0) {
			ret |= cli_output_commit(&rs->out, p->snap);
			ret |= live_snapshot_blind(rs->s.capture, p->pid, p->snap);
		} else if (rs->o.output) {
			if (live_numbered_path(rs->o.output, (unsigned)p->pid, path, sizeof(path))) {
				fprintf(stderr, "tmbpf: %s: name too long\n", rs->o.output);
				ret = 1;
				continue;
			}
			ret |= live_write_snapshot(&rs->s, p->snap, path);
		} else {
			if (rs->nprocs > 1)
				printf("# PID %d %s\n", p->pid, p->exe);
			ret |= live_render_statistics(&rs->c->r, p->snap, stdout);
		}
		live_print_drops_of(&rs->s, p->pid, stderr);
	}
	return ret;
}

static int run_run(const struct cli_command *cmd, int argc, char **argv)
{
	static struct run_state rs; /* MAX_RUN_PROCS records: not on the stack */
	struct run_ctx c;
	char err[512];
	int i, e, ret = RUN_FAILED;

	live_opts_init(&c.o);
	tm_stats_options_init(&c.r);
	i = cli_parse(cmd, &c, argc, argv);
	if (i < 0 || tm_stats_options_check(&c.r, "tmbpf run")) {
		tm_stats_options_release(&c.r);
		return i == CLI_HELP ? 0 : RUN_FAILED;
	}
	memset(&rs, 0, sizeof(rs));
	rs.c = &c;
	rs.o = c.o;
	rs.o.capture.stop_on_finalize = 1;
	rs.o.capture.finalize_signal = FINALIZE_SIGNAL;
	/* Ctrl-C reaches the command too (same process group): we keep going
	 * until every traced CPython finalizes or exits, so the snapshots are
	 * still taken. */
	live_install_signals();
	/* The output is checked before CMD runs: its data must not be lost at the end. */
	if (rs.o.output && cli_output_begin(&rs.out, rs.o.output, rs.o.format)) {
		tm_stats_options_release(&c.r);
		return RUN_FAILED;
	}
	e = tm_launch_start(&argv[i], rs.o.follow_children, &rs.l, err, sizeof(err));
	if (e) {
		fprintf(stderr, "tmbpf: run: %s\n", err);
		cli_output_abort(&rs.out);
		tm_stats_options_release(&c.r);
		return e == -ENOENT ? RUN_NOT_FOUND
		       : e == -EACCES || e == -ENOEXEC || e == -EISDIR || e == -EPERM ? RUN_CANNOT_EXEC
										: RUN_FAILED;
	}
	tm_launch_hold_signal(rs.l, FINALIZE_SIGNAL);
	if (wait_loop(&rs)) {
		fprintf(stderr, "tmbpf: run: lost track of '%s': %s\n", argv[i], strerror(errno));
		goto out;
	}
	if (!rs.nprocs) {
		fprintf(stderr, "tmbpf: run: nothing traced: %s\n", tm_launch_why(rs.l));
		ret = child_exit_code(rs.command_status);
		goto out;
	}
	ret = write_outputs(&rs);
	if (ret)
		fprintf(stderr, "tmbpf: run: exit status %d: tmbpf failed (CMD's status was %d)\n",
			RUN_FAILED, child_exit_code(rs.command_status));
	ret = ret ? RUN_FAILED : child_exit_code(rs.command_status);
out:
	cli_output_abort(&rs.out);
	for (unsigned k = 0; k < rs.nprocs; k++)
		tm_snapshot_free(rs.procs[k].snap);
	if (rs.have_session)
		live_detach(&rs.s);
	for (unsigned k = 0; k < rs.nprocs; k++)
		free(rs.procs[k].t);
	tm_launch_free(rs.l);
	tm_stats_options_release(&c.r);
	return ret;
}

const struct cli_command cmd_run = {
	.name = "run",
	.usage = "run [OPTIONS] [--] CMD [ARGS...]",
	.summary = "Start CMD; trace the first CPython it starts from its first allocation; "
		   "snapshot when it finalizes.",
	.details = "CMD may start the interpreter in a child or through other programs (chroot,\n"
		   "unshare --fork, sh -c, timeout): the whole process tree is followed.\n"
		   "Exit status: CMD's own (128+N when killed by signal N), also when nothing\n"
		   "could be traced (one line on stderr says why); 125 when tmbpf fails (usage,\n"
		   "tracing, writing -o), 126 when CMD cannot be executed, 127 when it is not found.\n",
	.run = run_run,
	.tables = run_tables,
	.ntables = sizeof(run_tables) / sizeof(run_tables[0]),
	.operands_min = 1,
	.operands_max = -1,
	.options_first = 1,
};
