/* Live commands' shared plumbing: options, attach/detach, signals, snapshots. */
#include "cli/live_session.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/format.h"
#include "core/log.h"
#include "cli/output.h"
#include "target/proc_info.h"

volatile sig_atomic_t live_stop_requested;
volatile sig_atomic_t live_snapshot_requested;
int live_print_pid_prefix;

static void on_stop(int sig)
{
	(void)sig;
	live_stop_requested = 1;
}

static void on_usr1(int sig)
{
	(void)sig;
	live_snapshot_requested = 1;
}

void live_install_signals(void)
{
	struct sigaction sa = { 0 };

	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	/* A closed stdout (tmbpf ... | head) must not kill us before we detach. */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

void live_opts_init(struct live_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->capture.max_frames = 1; /* tracemalloc's default */
	o->capture.max_blocks = 1u << 20;
	o->capture.max_stacks = 1u << 18;
	o->interval_s = 5;
	o->window_s = 60;
	o->capture.redirect = 1;
	/* Capture variants for tests and comparisons (DEVELOPERS.md). */
	o->capture.perf_links = getenv("TMBPF_PERF_LINKS") != NULL;
	o->capture.no_predict = getenv("TMBPF_NO_PREDICT") != NULL;
	o->capture.check_prediction = getenv("TMBPF_CHECK_PREDICTION") != NULL;
}

const struct cli_option live_target_options[] = {
	{ "pid", KEY_PID, "PID[,PID...]",
	  "the CPython process to trace (several: a system-wide session, one snapshot each)" },
	{ NULL, 0, NULL, NULL },
};

const struct cli_option live_select_options[] = {
	{ "all", KEY_ALL, NULL,
	  "every CPython of the host, in any container, and those started later (exec, fork)" },
	{ "comm", KEY_COMM, "NAME", "only processes whose comm is NAME (repeatable; implies --all)" },
	{ "exclude-comm", KEY_EXCLUDE_COMM, "NAME",
	  "not processes whose comm is NAME (repeatable; implies --all)" },
	{ "cgroup", KEY_CGROUP, "PATH",
	  "only processes in cgroup PATH or under it, e.g. /system.slice/app.service or its "
	  "directory /sys/fs/cgroup/system.slice/app.service (repeatable; implies --all)" },
	{ "max-memory", KEY_MAX_MEMORY, "N",
	  "size the BPF maps, shared by every traced process, to N bytes (k, m, g; "
	  "system-wide default 256m)" },
	{ NULL, 0, NULL, NULL },
};

const struct cli_option live_rotation_options[] = {
	{ "keep", KEY_KEEP, "N", "system-wide: keep the last N files per process (-o with %t or %n)" },
	{ NULL, 0, NULL, NULL },
};

int live_opts_system_wide(const struct live_opts *o)
{
	return o->sel.all || o->sel.npids > 1;
}

/* "NAME" into a list of at most LIVE_MAX_LIST. */
static int add_name(char **list, size_t *n, const char *v, const char *prog, const char *opt)
{
	if (*n == LIVE_MAX_LIST || !*v) {
		fprintf(stderr, "%s: --%s takes a name (at most %d of them), not '%s'\n", prog, opt,
			LIVE_MAX_LIST, v);
		return -1;
	}
	list[(*n)++] = (char *)v;
	return 0;
}

/* -p PID[,PID...] */
static int parse_pids(struct live_opts *o, const char *v, const char *prog, const char *opt)
{
	char item[32];
	uint32_t n;

	for (const char *p = v;; ) {
		size_t len = strcspn(p, ",");

		if (!len || len >= sizeof(item) || o->sel.npids == LIVE_MAX_LIST) {
			fprintf(stderr, "%s: --%s takes PID or PID,PID,... (at most %d), not '%s'\n",
				prog, opt, LIVE_MAX_LIST, v);
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		if (cli_parse_u32(prog, opt, item, 1, INT_MAX, &n))
			return -1;
		o->sel.pids[o->sel.npids++] = (pid_t)n;
		if (!p[len])
			break;
		p += len + 1;
	}
	o->pid = o->sel.pids[0];
	return 0;
}

const struct cli_option live_capture_options[] = {
	{ "frames", KEY_FRAMES, "N", "frames kept per traceback, 1-128 (default 1, as tracemalloc)" },
	{ "max-blocks", KEY_MAX_BLOCKS, "N",
	  "live blocks the BPF map holds, reserved at start, ~100 B each (default 1048576)" },
	{ "max-stacks", KEY_MAX_STACKS, "N", "distinct stacks the BPF map holds (default 262144)" },
	{ "sample-bytes", KEY_SAMPLE_BYTES, "N",
	  "sample one block per N allocated bytes on average (k, m, g): statistics are estimates, "
	  "the target's cost ~1%; default: every allocation, as tracemalloc" },
	{ "sample-set", KEY_SAMPLE_SET, "N",
	  "sampled mode: sampled blocks live at once per process, a power of two (default 65536)" },
	{ "probe-mode", KEY_PROBE_MODE, "stub|entry",
	  "stub: a hook put into the target, one cheap kernel entry per event (default); "
	  "entry: uprobes on the allocator functions" },
	{ "no-redirect", KEY_NO_REDIRECT, NULL,
	  "entry mode: never redirect an LTO build's allocator pointers (coverage drops)" },
	{ "no-newref", KEY_NO_NEWREF, NULL, "do not re-attribute objects reused from free lists" },
	{ "verbose", KEY_VERBOSE, NULL,
	  "probe placement, coverage and every counter on stderr (twice: libbpf's too)" },
	{ NULL, 0, NULL, NULL },
};

const struct cli_option live_output_options[] = {
	{ "output", KEY_OUTPUT, "FILE", "write the snapshot to FILE (atomically, mode 0600)" },
	{ "format", KEY_FORMAT, TM_FORMAT_NAMES, "file format (default: by FILE's extension)" },
	{ NULL, 0, NULL, NULL },
};

const struct cli_option live_top_options[] = {
	{ "interval", KEY_INTERVAL, "S", "seconds between reports (default 5, at least 0.1)" },
	{ "reset-peak", KEY_RESET_PEAK, NULL, "reset the peak after each report" },
	{ "sort", KEY_SORT, "size|count|growth",
	  "order of the statistics (default size; growth: since the last report)" },
	{ "batch", KEY_BATCH, NULL, "print reports one after another even on a terminal" },
	{ NULL, 0, NULL, NULL },
};

const struct cli_option live_leaks_options[] = {
	{ "window", KEY_WINDOW, "S",
	  "watch S seconds (default 60): report blocks allocated then and alive at the end" },
	{ NULL, 0, NULL, NULL },
};

const struct cli_option live_snapshot_options[] = {
	{ "duration", KEY_DURATION, "S", "stop and write the snapshot after S seconds" },
	{ "every", KEY_EVERY, "S", "also write numbered snapshots every S seconds (at least 0.1)" },
	{ NULL, 0, NULL, NULL },
};

const struct cli_option live_run_options[] = {
	{ "follow-children", KEY_FOLLOW_CHILDREN, NULL,
	  "trace every CPython the command's process tree starts, not only the first "
	  "(one file each: FILE.PID.ext after the first)" },
	{ NULL, 0, NULL, NULL },
};

/* The shortest period between reports or files: a report reads every live
 * block and stack of the target. */
#define MIN_PERIOD_S 0.1

int live_cli_set(void *dst, const struct cli_option *opt, const char *v, const char *prog)
{
	struct live_opts *o = dst;

	switch (opt->key) {
	case KEY_VERBOSE:
		o->verbose++;
		tm_log_set_level(o->verbose > 1 ? TM_LOG_TRACE : TM_LOG_DEBUG);
		return 0;
	case KEY_RESET_PEAK:
		o->reset_peak = 1;
		return 0;
	case KEY_BATCH:
		o->batch = 1;
		return 0;
	case KEY_SORT:
		if (!strcmp(v, "size"))
			o->sort = LIVE_SORT_SIZE;
		else if (!strcmp(v, "count"))
			o->sort = LIVE_SORT_COUNT;
		else if (!strcmp(v, "growth"))
			o->sort = LIVE_SORT_GROWTH;
		else {
			fprintf(stderr, "%s: --sort takes size, count or growth, not '%s'\n", prog, v);
			return -1;
		}
		return 0;
	case KEY_WINDOW:
		return cli_parse_seconds(prog, opt->name, v, MIN_PERIOD_S, &o->window_s);
	case KEY_FOLLOW_CHILDREN:
		o->follow_children = 1;
		return 0;
	case KEY_NO_REDIRECT:
		o->capture.redirect = 0;
		return 0;
	case KEY_SAMPLE_BYTES:
		return cli_parse_bytes(prog, opt->name, v, 1, 1ull << 40, &o->capture.sample_bytes);
	case KEY_SAMPLE_SET:
		if (cli_parse_u32(prog, opt->name, v, 1024, 1u << 24, &o->capture.sample_slots))
			return -1;
		if (o->capture.sample_slots & (o->capture.sample_slots - 1)) {
			fprintf(stderr, "%s: --sample-set takes a power of two, not '%s'\n", prog, v);
			return -1;
		}
		return 0;
	case KEY_PROBE_MODE:
		if (!strcmp(v, "stub"))
			o->capture.probe_mode = TM_PROBE_MODE_STUB;
		else if (!strcmp(v, "entry"))
			o->capture.probe_mode = TM_PROBE_MODE_ENTRY;
		else {
			fprintf(stderr, "%s: --probe-mode takes stub or entry, not '%s'\n", prog, v);
			return -1;
		}
		return 0;
	case KEY_NO_NEWREF:
		o->capture.no_newref = 1;
		return 0;
	case KEY_PID:
		return parse_pids(o, v, prog, opt->name);
	case KEY_ALL:
		o->sel.all = 1;
		return 0;
	case KEY_COMM:
		o->sel.all = 1;
		return add_name(o->sel.comms, &o->sel.ncomms, v, prog, opt->name);
	case KEY_EXCLUDE_COMM:
		o->sel.all = 1;
		return add_name(o->sel.exclude, &o->sel.nexclude, v, prog, opt->name);
	case KEY_CGROUP: {
		char cg[4096], *keep;

		o->sel.all = 1;
		if (tm_cgroup_resolve(v, cg, sizeof(cg))) {
			fprintf(stderr, "%s: --%s %s: no such cgroup in any mounted hierarchy (give it as "
				"/proc/PID/cgroup names it, e.g. /system.slice/app.service)\n", prog,
				opt->name, v);
			return -1;
		}
		keep = strdup(cg); /* lives as long as the options */
		return keep ? add_name(o->sel.cgroups, &o->sel.ncgroups, keep, prog, opt->name) : -1;
	}
	case KEY_MAX_MEMORY:
		return cli_parse_bytes(prog, opt->name, v, TM_CAPTURE_MIN_BUDGET, 1ull << 40,
				       &o->capture.max_memory);
	case KEY_KEEP:
		return cli_parse_u32(prog, opt->name, v, 1, 1u << 20, &o->keep);
	case KEY_FRAMES:
		return cli_parse_u32(prog, opt->name, v, 1, TM_BPF_MAX_FRAMES, &o->capture.max_frames);
	case KEY_MAX_BLOCKS:
		o->max_blocks_given = 1;
		return cli_parse_u32(prog, opt->name, v, 1024, 1u << 28, &o->capture.max_blocks);
	case KEY_MAX_STACKS:
		o->max_stacks_given = 1;
		return cli_parse_u32(prog, opt->name, v, 1024, 1u << 26, &o->capture.max_stacks);
	case KEY_OUTPUT:
		o->output = v;
		return 0;
	case KEY_FORMAT:
		if (tm_format_parse(v, &o->format)) {
			fprintf(stderr, "%s: --format takes %s, not '%s'\n", prog, TM_FORMAT_NAMES, v);
			return -1;
		}
		return 0;
	case KEY_INTERVAL:
		return cli_parse_seconds(prog, opt->name, v, MIN_PERIOD_S, &o->interval_s);
	case KEY_DURATION:
		return cli_parse_seconds(prog, opt->name, v, 0.001, &o->duration_s);
	case KEY_EVERY:
		return cli_parse_seconds(prog, opt->name, v, MIN_PERIOD_S, &o->every_s);
	}
	fprintf(stderr, "%s: unhandled option --%s (a tmbpf bug)\n", prog, opt->name);
	return -1;
}

int live_target_alive(pid_t pid)
{
	char path[64], buf[256], *paren;
	FILE *f;
	size_t n;

	if (kill(pid, 0) && errno != EPERM)
		return 0;
	/* A zombie still answers kill(): it has exited, its parent has just
	 * not reaped it yet. State is the field after the last ')'. */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return errno != ENOENT;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	paren = strrchr(buf, ')');
	return !(paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X'));
}

int live_attach(struct live_session *s, struct live_opts *o)
{
	char err[512];

	memset(s, 0, sizeof(*s));
	s->opts = o;
	if (tm_target_open(o->pid, &s->target, err, sizeof(err))) {
		fprintf(stderr, "tmbpf: %s\n", err);
		return 1;
	}
	s->capture = tm_capture_new(&o->capture, err, sizeof(err));
	if (!s->capture) {
		fprintf(stderr, "tmbpf: %s\n", err);
		return 1;
	}
	if (tm_capture_add_target(s->capture, &s->target, err, sizeof(err))) {
		fprintf(stderr, "tmbpf: %s\n", err);
		tm_capture_free(s->capture);
		s->capture = NULL;
		return 1;
	}
	return 0;
}

void live_detach(struct live_session *s)
{
	tm_capture_free(s->capture);
	s->capture = NULL;
}

struct tm_snapshot *live_take_snapshot(struct live_session *s)
{
	return live_take_snapshot_of(s, s->target.pid);
}

struct tm_snapshot *live_take_snapshot_of(struct live_session *s, pid_t pid)
{
	struct tm_snapshot *snap;
	char err[512];

	snap = tm_capture_snapshot(s->capture, pid, err, sizeof(err));
	if (!snap) {
		fprintf(stderr, "tmbpf: PID %d: snapshot failed: %s\n", pid, err);
		return NULL;
	}
	return snap; /* metadata (pid, cmdline, host, times, drops) filled by capture */
}

int live_snapshot_blind(struct tm_capture *c, pid_t pid, const struct tm_snapshot *snap)
{
	struct tm_capture_stats st;

	if (snap->ntraces || tm_capture_stats(c, pid, &st) || st.counters[TM_CNT_ALLOCS])
		return 0;
	fprintf(stderr, "tmbpf: PID %d: no allocation was seen while it was traced: the snapshot is "
			"empty (an idle process, or probes that saw nothing: -v tells)\n", (int)pid);
	return 1;
}

int live_write_snapshot(struct live_session *s, const struct tm_snapshot *snap, const char *path)
{
	struct cli_output o;

	if (cli_output_begin(&o, path, s->opts->format) || cli_output_commit(&o, snap))
		return 1;
	s->snapshots_written++;
	return 0;
}

int live_numbered_path(const char *path, unsigned n, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(path, '.');
	int w;

	if (!dot || (slash && dot < slash) || dot == path || (slash && dot == slash + 1))
		w = snprintf(buf, len, "%s.%04u", path, n);
	else
		w = snprintf(buf, len, "%.*s.%04u%s", (int)(dot - path), path, n, dot);
	return w < 0 || (size_t)w >= len ? -ENAMETOOLONG : 0;
}

static uint64_t total_drops(const struct tm_capture_stats *st)
{
	uint64_t n = 0;

	for (int i = 0; i < TM_CNT_MAX; i++)
		if (tm_counter_is_loss(i))
			n += st->counters[i];
	return n;
}

void live_print_header(struct live_session *s, FILE *out)
{
	struct tm_capture_stats st;
	char cur[TM_SIZE_STRLEN], peak[TM_SIZE_STRLEN], mem[TM_SIZE_STRLEN], when[64];
	time_t now = time(NULL);
	struct tm tm;

	if (tm_capture_stats(s->capture, s->target.pid, &st)) {
		fprintf(out, "tmbpf: PID %d: no statistics\n", s->target.pid);
		return;
	}
	localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	tm_format_size_u64(cur, sizeof(cur), st.current_bytes, 0);
	tm_format_size_u64(peak, sizeof(peak), st.peak_bytes, 0);
	tm_format_size_u64(mem, sizeof(mem), st.bpf_map_bytes + st.process_rss_bytes, 0);
	fprintf(out,
		"[%s] PID %d CPython %s: current %s, peak %s, %llu blocks, %llu allocs, "
		"%llu dropped; coverage %s; tmbpf memory %s\n",
		when, s->target.pid, s->target.version, cur, peak,
		(unsigned long long)st.live_blocks, (unsigned long long)st.counters[TM_CNT_ALLOCS],
		(unsigned long long)total_drops(&st), st.coverage ? st.coverage : "unknown", mem);
}

void live_print_drops(struct live_session *s, FILE *out)
{
	live_print_drops_of(s, s->target.pid, out);
}

void live_print_drops_of(struct live_session *s, pid_t pid, FILE *out)
{
	live_print_drops_capture(s->capture, pid, s->opts->verbose, out);
}

uint64_t live_print_drops_capture(struct tm_capture *c, pid_t pid, int verbose, FILE *out)
{
	struct tm_capture_stats st;
	char who[32] = "";

	if (tm_capture_stats(c, pid, &st))
		return 0;
	if (pid && live_print_pid_prefix)
		snprintf(who, sizeof(who), "PID %d: ", (int)pid);
	for (int i = 0; i < TM_CNT_MAX; i++) {
		if (!tm_counter_is_loss(i) || !st.counters[i])
			continue;
		fprintf(out, "tmbpf: %sdropped %llu events (%s): %s\n", who,
			(unsigned long long)st.counters[i], tm_counter_name(i),
			tm_counter_remedy(i));
	}
	if (verbose) {
		for (int i = 0; i < TM_CNT_MAX; i++)
			fprintf(out, "tmbpf: %scounter %s = %llu\n", who, tm_counter_name(i),
				(unsigned long long)st.counters[i]);
	}
	fprintf(out, "tmbpf: %sdrops: %llu\n", who, (unsigned long long)total_drops(&st));
	return total_drops(&st);
}
