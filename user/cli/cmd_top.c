/* tmbpf [top] -p PID [--frames N] [--interval S] [--key K] [--limit N] [filters]
 * Prints a header and the top statistics every interval until Ctrl-C or the
 * target exits, then the final statistics. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "cli/live_render.h"
#include "cli/live_session.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct top_ctx {
	struct live_opts o;
	struct tm_stats_options r;
};

static const struct cli_table top_tables[] = {
	LIVE_CLI_TABLE("Target", live_target_options, struct top_ctx, o),
	LIVE_CLI_TABLE("Capture options (root)", live_capture_options, struct top_ctx, o),
	LIVE_CLI_TABLE("Reports", live_top_options, struct top_ctx, o),
	TM_STATS_CLI_TABLE(struct top_ctx, r),
};

static int report(struct live_session *s, const struct tm_stats_options *r, int final)
{
	struct tm_snapshot *snap = live_take_snapshot(s);
	int ret;

	if (!snap)
		return 1;
	if (final)
		printf("== final statistics\n");
	live_print_header(s, stdout);
	ret = live_render_statistics(r, snap, stdout);
	printf("\n");
	fflush(stdout);
	tm_snapshot_free(snap);
	if (s->opts->reset_peak)
		tm_capture_reset_peak(s->capture, s->target.pid);
	return ret;
}

static int run_top(const struct cli_command *cmd, int argc, char **argv)
{
	struct top_ctx c;
	struct live_opts *o = &c.o;
	struct live_session s;
	double next;
	int ret = 0, rc;

	live_opts_init(o);
	tm_stats_options_init(&c.r);
	rc = cli_parse(cmd, &c, argc, argv);
	if (rc < 0 || tm_stats_options_check(&c.r, "tmbpf top")) {
		tm_stats_options_release(&c.r);
		return rc == CLI_HELP ? 0 : 2;
	}
	if (!o->pid) {
		tm_stats_options_release(&c.r);
		cli_usage_error(cmd, "-p PID is required");
		return 2;
	}
	live_install_signals();
	if (live_attach(&s, o)) {
		tm_stats_options_release(&c.r);
		return 1;
	}
	fprintf(stderr, "tmbpf: tracing PID %d (CPython %s, %u frames), a report every %gs; "
			"Ctrl-C to stop\n", o->pid, s.target.version, o->capture.max_frames, o->interval_s);
	next = now_s() + o->interval_s;
	while (!live_stop_requested) {
		tm_capture_poll(s.capture, 100);
		if (tm_capture_finalizing(s.capture, o->pid)) {
			fprintf(stderr, "tmbpf: PID %d is finalizing\n", o->pid);
			break;
		}
		if (!live_target_alive(o->pid)) {
			fprintf(stderr, "tmbpf: PID %d exited\n", o->pid);
			break;
		}
		if (now_s() >= next) {
			next += o->interval_s;
			ret |= report(&s, &c.r, 0);
			if (ferror(stdout)) { /* tmbpf -p PID | head: do not trace on unseen */
				fprintf(stderr, "tmbpf: cannot write to stdout: detaching from PID %d\n",
					o->pid);
				ret = 1;
				break;
			}
		}
	}
	ret |= report(&s, &c.r, 1);
	live_print_drops(&s, stderr);
	live_detach(&s);
	tm_stats_options_release(&c.r);
	return ret ? 1 : 0;
}

const struct cli_command cmd_top = {
	.name = "top",
	.usage = "[top] -p PID [OPTIONS]",
	.summary = "Trace a running CPython: the top statistics every --interval seconds, final ones on Ctrl-C.",
	.run = run_top,
	.tables = top_tables,
	.ntables = sizeof(top_tables) / sizeof(top_tables[0]),
	.operands_min = 0,
	.operands_max = 0,
};
