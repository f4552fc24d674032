/* tmbpf leaks -p PID [--window S] [OPTIONS]: watch a running CPython for S
 * seconds, then report the blocks allocated during that window and still
 * alive at its end, grouped as `tmbpf stats` groups them. tmbpf sees only
 * allocations made after it attached, so the snapshot taken at the end of
 * the window holds exactly those blocks; --older-than leaves out the ones
 * allocated in the window's last seconds (still in use rather than
 * leaked, most of the time). */
#include <stdio.h>
#include <time.h>

#include "cli/commands.h"
#include "cli/live_render.h"
#include "cli/live_session.h"
#include "cli/output.h"

struct leaks_ctx {
	struct live_opts o;
	struct tm_stats_options r;
};

static const struct cli_table leaks_tables[] = {
	LIVE_CLI_TABLE("Target", live_target_options, struct leaks_ctx, o),
	LIVE_CLI_TABLE("Window", live_leaks_options, struct leaks_ctx, o),
	LIVE_CLI_TABLE("Capture options (root)", live_capture_options, struct leaks_ctx, o),
	LIVE_CLI_TABLE("Output (besides the statistics on stdout)", live_output_options,
		       struct leaks_ctx, o),
	TM_STATS_CLI_TABLE(struct leaks_ctx, r),
	TM_FILTER_CLI_TABLE(struct leaks_ctx, r),
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Watch until the window is over (or Ctrl-C, or the target ends). */
static void watch(struct live_session *s, double window_s)
{
	double end = now_s() + window_s;

	while (!live_stop_requested && now_s() < end) {
		tm_capture_poll(s->capture, 100);
		if (tm_capture_finalizing(s->capture, s->target.pid)) {
			fprintf(stderr, "tmbpf: PID %d is finalizing: the window ends now\n",
				s->target.pid);
			return;
		}
		if (!live_target_alive(s->target.pid)) {
			fprintf(stderr, "tmbpf: PID %d exited: the window ends now\n", s->target.pid);
			return;
		}
	}
}

static int run_leaks(const struct cli_command *cmd, int argc, char **argv)
{
	struct leaks_ctx c;
	struct live_session s;
	struct cli_output out = { 0 };
	struct tm_snapshot *snap = NULL;
	double start;
	int rc, ret = 1;

	live_opts_init(&c.o);
	tm_stats_options_init(&c.r);
	rc = cli_parse(cmd, &c, argc, argv);
	if (rc < 0 || tm_stats_options_check(&c.r, "tmbpf leaks")) {
		tm_stats_options_release(&c.r);
		return rc == CLI_HELP ? 0 : 2;
	}
	if (!c.o.pid) {
		tm_stats_options_release(&c.r);
		cli_usage_error(cmd, "-p PID is required");
		return 2;
	}
	if (c.o.output && cli_output_begin(&out, c.o.output, c.o.format)) {
		tm_stats_options_release(&c.r);
		return 1;
	}
	live_install_signals();
	if (live_attach(&s, &c.o)) {
		cli_output_abort(&out);
		tm_stats_options_release(&c.r);
		return 1;
	}
	fprintf(stderr, "tmbpf: watching PID %d (CPython %s, %u frames) for %gs; Ctrl-C ends the "
			"window early\n", c.o.pid, s.target.version, c.o.capture.max_frames,
		c.o.window_s);
	start = now_s();
	watch(&s, c.o.window_s);
	snap = live_take_snapshot(&s);
	if (!snap)
		goto cleanup;
	fprintf(stderr, "tmbpf: PID %d: %zu blocks allocated in the last %.1fs are still alive\n",
		c.o.pid, snap->ntraces, now_s() - start);
	ret = live_render_statistics(&c.r, snap, stdout);
	if (c.o.output)
		ret |= cli_output_commit(&out, snap);
	live_print_drops(&s, stderr);
cleanup:
	cli_output_abort(&out);
	tm_snapshot_free(snap);
	live_detach(&s);
	tm_stats_options_release(&c.r);
	return ret ? 1 : 0;
}

const struct cli_command cmd_leaks = {
	.name = "leaks",
	.usage = "leaks -p PID [--window S] [OPTIONS]",
	.summary = "Blocks a running CPython allocates during --window seconds and still holds at its end.",
	.details = "Grouped as `tmbpf stats` groups them. --older-than D leaves out the blocks\n"
		   "allocated in the window's last D (those are usually still in use).\n",
	.run = run_leaks,
	.tables = leaks_tables,
	.ntables = sizeof(leaks_tables) / sizeof(leaks_tables[0]),
	.operands_min = 0,
	.operands_max = 0,
};
