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
#include "patch/launch.h"

static int child_exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

int cmd_run(int argc, char **argv)
{
	struct live_opts o;
	struct live_render r;
	struct live_session s;
	struct tm_launch l;
	struct tm_snapshot *snap = NULL;
	char err[512];
	int i, ret = 1, status = 0, exited = 0, rc;

	live_opts_init(&o);
	live_render_init(&r);
	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		rc = live_parse_option(&o, argc, argv, &i);
		if (rc == 0)
			rc = live_render_parse_option(&r, argc, argv, &i);
		if (rc < 0)
			return 2;
		if (rc == 0) {
			fprintf(stderr, "tmbpf: run: unknown option '%s' (usage: tmbpf run [--frames N] "
					"[-o FILE] -- CMD [ARGS])\n", argv[i]);
			return 2;
		}
	}
	if (i + 1 >= argc) {
		fprintf(stderr, "tmbpf: run: no command (usage: tmbpf run [--frames N] [-o FILE] -- CMD [ARGS])\n");
		return 2;
	}
	if (live_render_check(&r))
		return 2;
	if (o.pid) {
		fprintf(stderr, "tmbpf: run: -p does not go with run (use tmbpf -p PID)\n");
		return 2;
	}
	if (tm_launch_stopped(&argv[i + 1], &l, err, sizeof(err))) {
		fprintf(stderr, "tmbpf: run: %s\n", err);
		return 1;
	}
	o.pid = l.pid;
	/* Our own child: it may be stopped at Py_FinalizeEx while we take the
	 * snapshot. If tmbpf dies then, the kernel sends the orphaned, stopped
	 * process group SIGHUP and SIGCONT. */
	o.capture.stop_on_finalize = 1;
	if (live_attach(&s, &o)) {
		tm_launch_abort(&l);
		return 1;
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
		ret = live_write_snapshot(&s, snap, o.output);
	else if (snap)
		ret = live_render_statistics(&r, snap, stdout);
	else
		ret = 1;
	live_print_drops(&s, stderr);
	if (!ret && exited)
		ret = child_exit_code(status);
out:
	tm_snapshot_free(snap);
	live_detach(&s);
	live_render_release(&r);
	return ret;
}
