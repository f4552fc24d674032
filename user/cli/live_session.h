/* What the live commands (top, snapshot, run) share: options, attaching to
 * one process, signals, and writing snapshots. */
#ifndef TM_CLI_LIVE_SESSION_H
#define TM_CLI_LIVE_SESSION_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli/options.h"
#include "core/snapshot_io.h"
#include "capture/capture.h"
#include "target/target.h"

#define LIVE_MAX_LIST 64 /* entries of -p, --comm, --exclude-comm, --cgroup each */

/* Which processes a system-wide session traces (capture/watch.h). */
struct live_select {
	int all;                 /* --all (also implied by --comm, --cgroup, --exclude-comm) */
	pid_t pids[LIVE_MAX_LIST]; /* -p PID[,PID...] */
	size_t npids;
	char *comms[LIVE_MAX_LIST], *exclude[LIVE_MAX_LIST], *cgroups[LIVE_MAX_LIST];
	size_t ncomms, nexclude, ncgroups;
};

struct live_opts {
	pid_t pid;               /* -p: the first (or only) PID */
	struct live_select sel;
	unsigned keep;           /* system-wide snapshot: files kept per process, 0: all */
	struct tm_capture_opts capture;
	const char *output;      /* -o FILE */
	enum tm_file_format format;
	double interval_s;       /* top: seconds between reports */
	double duration_s;       /* snapshot: stop after (0: until Ctrl-C / exit) */
	double every_s;          /* snapshot: periodic files */
	double window_s;         /* leaks: how long to watch */
	int reset_peak;          /* reset the peak after each report */
	enum live_sort { LIVE_SORT_SIZE, LIVE_SORT_COUNT, LIVE_SORT_GROWTH } sort; /* top */
	int batch;               /* top: line-oriented even on a terminal */
	int verbose;             /* -v: probe placement and every counter; -vv: libbpf too */
	int follow_children;     /* run: trace every CPython of the command's tree */
	int max_blocks_given;    /* --max-blocks / --max-stacks on the command line: a */
	int max_stacks_given;    /* system-wide session takes them over its budget's split */
};

struct live_session {
	struct live_opts *opts;
	struct tm_target target;
	struct tm_capture *capture;
	unsigned snapshots_written;
};

extern volatile sig_atomic_t live_stop_requested;   /* SIGINT / SIGTERM */
extern volatile sig_atomic_t live_snapshot_requested; /* SIGUSR1 */

/* The live commands' option tables (options.h), all stored by
 * live_cli_set into a struct live_opts: the target (-p), capture, output
 * (-o, --format), top's (--interval, --reset-peak, --sort, --batch),
 * snapshot's (--duration, --every) and leaks' (--window). */
extern const struct cli_option live_target_options[], live_capture_options[],
	live_output_options[], live_top_options[], live_snapshot_options[], live_leaks_options[],
	live_run_options[], live_select_options[], live_rotation_options[];
int live_cli_set(void *dst, const struct cli_option *opt, const char *value, const char *prog);
#define LIVE_CLI_TABLE(heading, options, ctx_type, member) \
	{ heading, options, live_cli_set, offsetof(ctx_type, member) }

void live_opts_init(struct live_opts *o);

/* 1 when the options ask for a system-wide session (cli/agent.h): --all,
 * --comm, --cgroup, --exclude-comm or more than one -p PID. */
int live_opts_system_wide(const struct live_opts *o);

void live_install_signals(void);

/* Open the target, load BPF and attach. Returns 0 or an exit code (1) after
 * printing one line. */
int live_attach(struct live_session *s, struct live_opts *o);
void live_detach(struct live_session *s);

/* Take a snapshot (metadata filled) or NULL after printing one line; _of:
 * of another process of the same capture (tmbpf run --follow-children). */
struct tm_snapshot *live_take_snapshot(struct live_session *s);
struct tm_snapshot *live_take_snapshot_of(struct live_session *s, pid_t pid);

/* Write snap to path (atomic). Returns 0 or 1 after printing one line. */
/* 1 after one line on stderr when snap is empty and the capture saw no
 * allocation of pid at all: never an empty snapshot with exit status 0. */
int live_snapshot_blind(struct tm_capture *c, pid_t pid, const struct tm_snapshot *snap);
int live_write_snapshot(struct live_session *s, const struct tm_snapshot *snap, const char *path);

/* The periodic file name for the n-th snapshot: "out.pickle" -> "out.0003.pickle". */
int live_numbered_path(const char *path, unsigned n, char *buf, size_t len);

/* One header line on stderr: time, current/peak, blocks, drops, coverage. */
void live_print_header(struct live_session *s, FILE *out);
/* Counter lines with remedies for every non-zero drop counter. */
void live_print_drops(struct live_session *s, FILE *out);
void live_print_drops_of(struct live_session *s, pid_t pid, FILE *out);
/* The same for pid of capture c; returns the number of lost events. */
uint64_t live_print_drops_capture(struct tm_capture *c, pid_t pid, int verbose, FILE *out);
/* 1: drop lines start with "PID N: " (sessions of several processes). */
extern int live_print_pid_prefix;

/* 1 while the target process exists. */
int live_target_alive(pid_t pid);

#endif
