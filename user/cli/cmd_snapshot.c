/* tmbpf snapshot -p PID -o FILE [--frames N] [--duration S | --every S]
 * Writes FILE at the end (duration over, Ctrl-C, the target finalizing or
 * exiting); numbered files (FILE.0001.ext, ...) every S seconds and on SIGUSR1. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/agent.h"
#include "cli/commands.h"
#include "cli/live_session.h"
#include "cli/output.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_now(struct live_session *s, const char *path)
{
	struct tm_snapshot *snap = live_take_snapshot(s);
	int ret;

	if (!snap)
		return 1;
	ret = live_write_snapshot(s, snap, path);
	tm_snapshot_free(snap);
	return ret;
}

/* The final file, prepared when tracing started. */
static int write_final(struct live_session *s, struct cli_output *out)
{
	struct tm_snapshot *snap = live_take_snapshot(s);
	int ret;

	if (!snap)
		return 1;
	ret = cli_output_commit(out, snap);
	ret |= live_snapshot_blind(s->capture, s->target.pid, snap);
	tm_snapshot_free(snap);
	return ret;
}

static int write_numbered(struct live_session *s, unsigned *n)
{
	char path[4096];

	if (live_numbered_path(s->opts->output, ++*n, path, sizeof(path))) {
		fprintf(stderr, "tmbpf: %s: name too long\n", s->opts->output);
		return 1;
	}
	return write_now(s, path);
}

static const struct cli_table snapshot_tables[] = {
	LIVE_CLI_TABLE("Target", live_target_options, struct live_opts, pid),
	LIVE_CLI_TABLE("System-wide (one snapshot per process)", live_select_options, struct live_opts,
		       pid),
	LIVE_CLI_TABLE("Capture options (root)", live_capture_options, struct live_opts, pid),
	LIVE_CLI_TABLE("Output", live_output_options, struct live_opts, pid),
	LIVE_CLI_TABLE("Timing", live_snapshot_options, struct live_opts, pid),
	LIVE_CLI_TABLE("Rotation", live_rotation_options, struct live_opts, pid),
};

static int run_snapshot(const struct cli_command *cmd, int argc, char **argv)
{
	struct live_opts o;
	struct live_session s;
	struct cli_output out = { 0 };
	unsigned n = 0;
	double start, next_every;
	int ret = 0, rc;

	live_opts_init(&o);
	rc = cli_parse(cmd, &o, argc, argv);
	if (rc < 0)
		return rc == CLI_HELP ? 0 : 2;
	if (live_opts_system_wide(&o))
		return agent_run(&o, AGENT_SNAPSHOT, "tmbpf snapshot");
	if (o.keep) {
		cli_usage_error(cmd, "--keep is for system-wide sessions (--all, --comm, -p A,B)");
		return 2;
	}
	if (!o.pid || !o.output) {
		cli_usage_error(cmd, "-p PID and -o FILE are required");
		return 2;
	}
	if (o.duration_s && o.every_s && o.every_s > o.duration_s) {
		cli_usage_error(cmd, "--every is longer than --duration");
		return 2;
	}
	/* Checked (and created, unnamed) before tracing: a typo in -o must not
	 * cost the whole --duration. */
	if (cli_output_begin(&out, o.output, o.format))
		return 1;
	live_install_signals();
	if (live_attach(&s, &o)) {
		cli_output_abort(&out);
		return 1;
	}
	fprintf(stderr, "tmbpf: tracing PID %d (CPython %s, %u frames)%s\n", o.pid,
		s.target.version, o.capture.max_frames,
		o.duration_s ? "" : "; Ctrl-C writes the snapshot");
	start = now_s();
	next_every = start + o.every_s;
	for (;;) {
		double t;

		tm_capture_poll(s.capture, 100);
		t = now_s();
		if (tm_capture_finalizing(s.capture, o.pid)) {
			fprintf(stderr, "tmbpf: PID %d is finalizing\n", o.pid);
			ret |= write_final(&s, &out);
			break;
		}
		if (!live_target_alive(o.pid)) {
			/* Not a clean end: say so in the exit code, after saving what we can. */
			fprintf(stderr, "tmbpf: PID %d exited; snapshot of the blocks live at its end\n",
				o.pid);
			write_final(&s, &out);
			ret = 1;
			break;
		}
		if (live_snapshot_requested) {
			live_snapshot_requested = 0;
			ret |= write_numbered(&s, &n);
		}
		if (o.every_s && t >= next_every) {
			next_every += o.every_s;
			ret |= write_numbered(&s, &n);
		}
		if ((o.duration_s && t - start >= o.duration_s) || live_stop_requested) {
			ret |= write_final(&s, &out);
			break;
		}
	}
	live_print_drops(&s, stderr);
	live_detach(&s);
	cli_output_abort(&out);
	return ret ? 1 : 0;
}

const struct cli_command cmd_snapshot = {
	.name = "snapshot",
	.usage = "snapshot {-p PID[,PID...] | --all | --comm NAME | --cgroup PATH} -o FILE [OPTIONS]",
	.summary = "Trace a running CPython and write its snapshot: at the end of --duration, on "
		   "Ctrl-C or when it exits.",
	.details = "--every S and SIGUSR1 also write numbered files (FILE.0001.ext, ...).\n"
		   "System-wide (--all, --comm, --cgroup, --exclude-comm, several -p): every selected\n"
		   "CPython, also those started later, one file each named by the -o pattern: %p pid,\n"
		   "%c comm, %h host, %t UTC time (20261202T031502Z), %n sequence, %% a '%'; written\n"
		   "every --every S, on SIGUSR1, when a process finalizes or exits, and for all on\n"
		   "SIGTERM, Ctrl-C or the end of --duration; SIGHUP checks the outputs and goes on.\n",
	.run = run_snapshot,
	.tables = snapshot_tables,
	.ntables = sizeof(snapshot_tables) / sizeof(snapshot_tables[0]),
	.operands_min = 0,
	.operands_max = 0,
};
