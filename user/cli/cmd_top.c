/* tmbpf [top] -p PID [OPTIONS]: the top statistics every --interval seconds
 * until Ctrl-C, q or the target's end, then the final statistics. On a
 * terminal the view redraws in place (live_tty.h) and takes keys: s, c, g
 * sort by size, count or growth since the last report; q quits. Elsewhere
 * (a pipe, a file, --batch) reports follow one another. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/agent.h"
#include "cli/commands.h"
#include "cli/live_render.h"
#include "cli/live_session.h"
#include "cli/live_tty.h"

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
	LIVE_CLI_TABLE("System-wide (a table of processes)", live_select_options, struct top_ctx, o),
	LIVE_CLI_TABLE("Capture options (root)", live_capture_options, struct top_ctx, o),
	LIVE_CLI_TABLE("Reports", live_top_options, struct top_ctx, o),
	TM_STATS_CLI_TABLE(struct top_ctx, r),
	TM_FILTER_CLI_TABLE(struct top_ctx, r),
};

struct top {
	struct top_ctx *c;
	struct live_session s;
	struct live_tty tty;
	struct tm_snapshot *prev; /* the last report's, for --sort growth */
};

static const char *const sort_names[] = { "size", "count", "growth" };

/* One report into out: header, statistics (sorted as asked). */
static int render(struct top *t, FILE *out, int final)
{
	struct tm_snapshot *snap = live_take_snapshot(&t->s);
	struct tm_stats_options *r = &t->c->r;
	int ret, err;

	if (!snap)
		return 1;
	if (final)
		fprintf(out, "== final statistics\n");
	live_print_header(&t->s, out);
	if (t->tty.on)
		fprintf(out, "sort: %s   keys: s size, c count, g growth, q quit\n\n",
			sort_names[t->c->o.sort]);
	r->sort_by_count = t->c->o.sort == LIVE_SORT_COUNT;
	if (t->c->o.sort == LIVE_SORT_GROWTH && t->prev && !r->key_age) {
		err = tm_stats_render_compare(out, NULL, "snapshot", t->prev, snap, r);
		ret = err ? 1 : 0;
		if (err)
			fprintf(stderr, "tmbpf: statistics: %s\n", tm_stats_strerror(err));
	} else {
		ret = live_render_statistics(r, snap, out);
	}
	fprintf(out, "\n");
	tm_snapshot_free(t->prev);
	t->prev = snap;
	if (t->c->o.reset_peak)
		tm_capture_reset_peak(t->s.capture, t->s.target.pid);
	return ret;
}

static int report(struct top *t, int final)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem;
	int ret;

	if (!t->tty.on) {
		ret = render(t, stdout, final);
		fflush(stdout);
		return ret;
	}
	mem = open_memstream(&text, &len);
	if (!mem)
		return 1;
	ret = render(t, mem, final);
	fclose(mem);
	live_tty_show(&t->tty, text);
	free(text);
	return ret;
}

/* Keys on the terminal: 1 to quit, 2 to redraw now, 0 nothing. */
static int handle_key(struct top *t)
{
	int k = live_tty_key(&t->tty);

	switch (k) {
	case 'q': case 'Q': return 1;
	case 's': t->c->o.sort = LIVE_SORT_SIZE; return 2;
	case 'c': t->c->o.sort = LIVE_SORT_COUNT; return 2;
	case 'g': t->c->o.sort = LIVE_SORT_GROWTH; return 2;
	case ' ': return 2;
	}
	return 0;
}

static int run_top(const struct cli_command *cmd, int argc, char **argv)
{
	struct top_ctx c;
	struct top t = { .c = &c };
	struct live_opts *o = &c.o;
	double next;
	int ret = 0, rc;

	live_opts_init(o);
	tm_stats_options_init(&c.r);
	rc = cli_parse(cmd, &c, argc, argv);
	if (rc < 0 || tm_stats_options_check(&c.r, "tmbpf top")) {
		tm_stats_options_release(&c.r);
		return rc == CLI_HELP ? 0 : 2;
	}
	if (live_opts_system_wide(o)) {
		tm_stats_options_release(&c.r);
		return agent_run(o, AGENT_TOP, "tmbpf top");
	}
	if (!o->pid) {
		tm_stats_options_release(&c.r);
		cli_usage_error(cmd, "-p PID is required");
		return 2;
	}
	live_install_signals();
	if (live_attach(&t.s, o)) {
		tm_stats_options_release(&c.r);
		return 1;
	}
	fprintf(stderr, "tmbpf: tracing PID %d (CPython %s, %u frames), a report every %gs; "
			"%s to stop\n", o->pid, t.s.target.version, o->capture.max_frames,
		o->interval_s, !o->batch && live_tty_usable() ? "q or Ctrl-C" : "Ctrl-C");
	if (!o->batch && live_tty_usable() && live_tty_start(&t.tty))
		live_tty_stop(&t.tty); /* cannot set the terminal up: line-oriented */
	next = now_s() + o->interval_s;
	if (t.tty.on)
		ret |= report(&t, 0); /* a screen at once, not a blank one */
	while (!live_stop_requested) {
		int key;

		tm_capture_poll(t.s.capture, 100);
		if (tm_capture_finalizing(t.s.capture, o->pid)) {
			live_tty_stop(&t.tty);
			fprintf(stderr, "tmbpf: PID %d is finalizing\n", o->pid);
			break;
		}
		if (!live_target_alive(o->pid)) {
			live_tty_stop(&t.tty);
			fprintf(stderr, "tmbpf: PID %d exited\n", o->pid);
			break;
		}
		key = handle_key(&t);
		if (key == 1)
			break;
		if (key == 2 || now_s() >= next) {
			if (key != 2)
				next += o->interval_s;
			ret |= report(&t, 0);
			if (ferror(stdout)) { /* tmbpf -p PID | head: do not trace on unseen */
				fprintf(stderr, "tmbpf: cannot write to stdout: detaching from PID %d\n",
					o->pid);
				ret = 1;
				break;
			}
		}
	}
	live_tty_stop(&t.tty);
	ret |= report(&t, 1);
	live_print_drops(&t.s, stderr);
	tm_snapshot_free(t.prev);
	live_detach(&t.s);
	tm_stats_options_release(&c.r);
	return ret ? 1 : 0;
}

const struct cli_command cmd_top = {
	.name = "top",
	.usage = "[top] {-p PID[,PID...] | --all | --comm NAME | --cgroup PATH} [OPTIONS]",
	.summary = "Trace a running CPython: the top statistics every --interval seconds, final ones on Ctrl-C.",
	.details = "On a terminal the view redraws in place; keys: s, c, g sort by size, count or\n"
		   "growth since the last report, q quits. Piped or with --batch, reports follow one\n"
		   "another.\n",
	.run = run_top,
	.tables = top_tables,
	.ntables = sizeof(top_tables) / sizeof(top_tables[0]),
	.operands_min = 0,
	.operands_max = 0,
};
