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

static int report(struct live_session *s, struct live_render *r, int final)
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

int cmd_top(int argc, char **argv)
{
	struct live_opts o;
	struct live_render r;
	struct live_session s;
	double next;
	int ret = 0, rc;

	live_opts_init(&o);
	live_render_init(&r);
	for (int i = 1; i < argc; i++) {
		rc = live_parse_option(&o, argc, argv, &i);
		if (rc == 0)
			rc = live_render_parse_option(&r, argc, argv, &i);
		if (rc < 0)
			return 2;
		if (rc == 0) {
			fprintf(stderr, "tmbpf: unknown option '%s' (try 'tmbpf --help')\n", argv[i]);
			return 2;
		}
	}
	if (live_render_check(&r))
		return 2;
	if (!o.pid) {
		fprintf(stderr, "tmbpf: -p PID is required\n");
		return 2;
	}
	live_install_signals();
	if (live_attach(&s, &o))
		return 1;
	fprintf(stderr, "tmbpf: tracing PID %d (CPython %s, %u frames), a report every %gs; "
			"Ctrl-C to stop\n", o.pid, s.target.version, o.capture.max_frames, o.interval_s);
	next = now_s() + o.interval_s;
	while (!live_stop_requested) {
		tm_capture_poll(s.capture, 100);
		if (tm_capture_finalizing(s.capture, o.pid)) {
			fprintf(stderr, "tmbpf: PID %d is finalizing\n", o.pid);
			break;
		}
		if (!live_target_alive(o.pid)) {
			fprintf(stderr, "tmbpf: PID %d exited\n", o.pid);
			break;
		}
		if (now_s() >= next) {
			next += o.interval_s;
			ret |= report(&s, &r, 0);
			if (ferror(stdout)) { /* tmbpf -p PID | head: do not trace on unseen */
				fprintf(stderr, "tmbpf: cannot write to stdout: detaching from PID %d\n",
					o.pid);
				ret = 1;
				break;
			}
		}
	}
	ret |= report(&s, &r, 1);
	live_print_drops(&s, stderr);
	live_detach(&s);
	live_render_release(&r);
	return ret ? 1 : 0;
}
