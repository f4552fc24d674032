/* tmbpf run [--frames N] [-o FILE] -- CMD [ARGS]: start CMD with probes
 * attached before its first Python allocation; snapshot when the interpreter
 * starts finalizing; write it (-o) or print the top statistics. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "cli/commands.h"
#include "cli/live_render.h"
#include "cli/live_session.h"
#include "cli/output.h"
#include "patch/launch.h"

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

struct run_ctx {
	struct live_opts o;
	struct tm_stats_options r;
};

static const struct cli_table run_tables[] = {
	LIVE_CLI_TABLE("Capture options (root)", live_capture_options, struct run_ctx, o),
	LIVE_CLI_TABLE("Output (default: the top statistics on stdout)", live_output_options,
		       struct run_ctx, o),
	TM_STATS_CLI_TABLE(struct run_ctx, r),
	TM_FILTER_CLI_TABLE(struct run_ctx, r),
};

static int run_run(const struct cli_command *cmd, int argc, char **argv)
{
	struct run_ctx c;
	struct live_opts o;
	struct live_session s;
	struct tm_launch l;
	struct tm_snapshot *snap = NULL;
	struct cli_output out = { 0 };
	char err[512];
	int i, e, ret = RUN_FAILED, status = 0, exited = 0;

	live_opts_init(&c.o);
	tm_stats_options_init(&c.r);
	i = cli_parse(cmd, &c, argc, argv);
	if (i < 0 || tm_stats_options_check(&c.r, "tmbpf run")) {
		tm_stats_options_release(&c.r);
		return i == CLI_HELP ? 0 : RUN_FAILED;
	}
	o = c.o;
	/* The output is checked before CMD runs: its data must not be lost at the end. */
	if (o.output && cli_output_begin(&out, o.output, o.format)) {
		tm_stats_options_release(&c.r);
		return RUN_FAILED;
	}
	e = tm_launch_stopped(&argv[i], &l, err, sizeof(err));
	if (e) {
		fprintf(stderr, "tmbpf: run: %s\n", err);
		cli_output_abort(&out);
		tm_stats_options_release(&c.r);
		return e == -ENOENT ? RUN_NOT_FOUND
		       : e == -EACCES || e == -ENOEXEC || e == -EISDIR || e == -EPERM ? RUN_CANNOT_EXEC
										: RUN_FAILED;
	}
	o.pid = l.pid;
	o.stopped_tid = l.pid; /* stopped at its entry point: the stub is injected through us */
	/* Our own child: it may be stopped at Py_FinalizeEx while we take the
	 * snapshot. If tmbpf dies then, the kernel sends the orphaned, stopped
	 * process group SIGHUP and SIGCONT. */
	o.capture.stop_on_finalize = 1;
	if (live_attach(&s, &o)) {
		tm_launch_abort(&l);
		cli_output_abort(&out);
		tm_stats_options_release(&c.r);
		return RUN_FAILED;
	}
	/* Ctrl-C reaches the child too (same process group): we keep going until
	 * it finalizes or exits, so the snapshot is still taken. */
	live_install_signals();
	if (tm_launch_release(&l)) {
		fprintf(stderr, "tmbpf: run: could not resume PID %d: %s\n", l.pid, strerror(errno));
		tm_launch_abort(&l);
		goto out;
	}
	for (;;) {
		pid_t w;

		tm_capture_poll(s.capture, 50);
		if (!snap && tm_capture_finalizing(s.capture, l.pid)) {
			/* Stopped: symbolize every stack announced so far first. */
			while (tm_capture_poll(s.capture, 0) > 0)
				;
			snap = live_take_snapshot(&s);
			if (tm_capture_resume(s.capture, l.pid))
				fprintf(stderr, "tmbpf: run: could not resume PID %d: %s\n", l.pid,
					strerror(errno));
		}
		w = waitpid(l.pid, &status, WNOHANG);
		if (w == l.pid) {
			exited = 1;
			break;
		}
		if (w < 0 && errno != EINTR)
			break;
	}
	if (!snap) {
		/* Exited without finalizing (killed, os._exit): what was live then. */
		fprintf(stderr, "tmbpf: run: PID %d ended without finalizing; snapshot of the blocks "
				"live at its end\n", l.pid);
		snap = live_take_snapshot(&s);
	}
	ret = 0;
	if (snap && o.output)
		ret = cli_output_commit(&out, snap);
	else if (snap)
		ret = live_render_statistics(&c.r, snap, stdout);
	else
		ret = 1;
	live_print_drops(&s, stderr);
	if (ret && exited)
		fprintf(stderr, "tmbpf: run: exit status %d: tmbpf failed (CMD's status was %d)\n",
			RUN_FAILED, child_exit_code(status));
	if (ret)
		ret = RUN_FAILED;
	else
		ret = exited ? child_exit_code(status) : RUN_FAILED;
out:
	cli_output_abort(&out);
	tm_snapshot_free(snap);
	live_detach(&s);
	tm_stats_options_release(&c.r);
	return ret;
}

const struct cli_command cmd_run = {
	.name = "run",
	.usage = "run [OPTIONS] [--] CMD [ARGS...]",
	.summary = "Start CMD traced from its first allocation; snapshot when it finalizes.",
	.details = "Exit status: CMD's own (128+N when killed by signal N); 125 when tmbpf fails\n"
		   "(usage, tracing, writing -o), 126 when CMD cannot be executed, 127 when it is not\n"
		   "found.\n",
	.run = run_run,
	.tables = run_tables,
	.ntables = sizeof(run_tables) / sizeof(run_tables[0]),
	.operands_min = 1,
	.operands_max = -1,
	.options_first = 1,
};
