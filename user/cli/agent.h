/* The system-wide session of `tmbpf snapshot` and `tmbpf [top]` (--all,
 * --comm, --cgroup, --exclude-comm, -p PID,PID...): one capture whose BPF
 * maps are shared by every selected CPython (sized by --max-memory), the
 * processes followed as they start, fork and end (capture/watch.h), and
 * per process:
 *  - snapshot: files named by the -o pattern (core/out_pattern.h), written
 *    every --every seconds, on SIGUSR1, when the process finalizes or exits,
 *    and for all at the end (--duration, SIGTERM, SIGINT); --keep N files
 *    per process; SIGHUP checks the output directory again and goes on;
 *  - top: a table of the processes (current, peak, growth since the last
 *    report, drops, top line) every --interval seconds.
 * Loss is counted per process and printed when it ends and at the end. */
#ifndef TM_CLI_AGENT_H
#define TM_CLI_AGENT_H

#include "cli/live_session.h"
#include "core/statistics.h"

enum agent_mode { AGENT_SNAPSHOT, AGENT_TOP };

/* Runs until the end; returns the command's exit status: 0, 1 when a
 * snapshot could not be written or data was lost, 2 for bad options. */
int agent_run(struct live_opts *o, enum agent_mode mode, const char *prog);

#endif
