/* System-wide sessions of tmbpf snapshot and top (agent.h). */
#include "cli/agent.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "capture/watch.h"
#include "cli/live_render.h"
#include "cli/output.h"
#include "core/format.h"
#include "core/out_pattern.h"
#include "target/proc_info.h"

/* Without --max-memory, what the maps of a system-wide session may take:
 * about 1.7 million live blocks shared by every process. */
#define AGENT_DEFAULT_BUDGET (256ull << 20)
/* How often stacks no block uses any more are deleted (capture.h). */
#define AGENT_GC_PERIOD_S 10.0

struct agent_proc {
	pid_t pid;
	char comm[64];
	char version[32];
	unsigned seq;            /* snapshots written */
	char **kept;             /* --keep: the last files, oldest first */
	unsigned nkept;
	uint64_t last_current;   /* top: current bytes at the last report */
	int from_start;
};

struct agent {
	struct live_opts *o;
	enum agent_mode mode;
	const char *prog;
	struct tm_capture *c;
	struct tm_watch *w;
	struct agent_proc procs[TM_MAX_PROCS];
	size_t n;
	char host[256];
	uint64_t lost;           /* events lost, summed over ended processes */
	unsigned ended;
	int failed;              /* a snapshot could not be taken or written */
};

static volatile sig_atomic_t reopen_requested;

static void on_hup(int sig)
{
	(void)sig;
	reopen_requested = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct agent_proc *proc_of(struct agent *a, pid_t pid)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->procs[i].pid == pid)
			return &a->procs[i];
	return NULL;
}

/* The -o pattern can be expanded and its directory written: checked
 * before anything is traced (a typo must not cost a whole session). */
static int check_output(struct agent *a)
{
	struct tm_out_fields f = { .pid = getpid(), .comm = "tmbpf", .host = a->host,
				   .when = time(NULL), .seq = 0 };
	struct cli_output probe = { 0 };
	char path[PATH_MAX];
	int rc = tm_out_expand(a->o->output, &f, path, sizeof(path));

	if (rc) {
		fprintf(stderr, "%s: -o %s: %s\n", a->prog, a->o->output,
			rc == -EINVAL ? "unknown %-sequence (use %p %c %h %t %n %%)"
				      : "name too long");
		return 2;
	}
	if (tm_out_per_process(a->o->output) != 1) {
		fprintf(stderr, "%s: -o %s: a system-wide session writes one file per process: "
				"put %%p in the name\n", a->prog, a->o->output);
		return 2;
	}
	if (a->o->keep && tm_out_per_snapshot(a->o->output) != 1) {
		fprintf(stderr, "%s: --keep needs a name that differs per snapshot: put %%t or %%n "
				"in -o\n", a->prog);
		return 2;
	}
	if (cli_output_begin(&probe, path, a->o->format))
		return 1;
	cli_output_abort(&probe);
	return 0;
}

/* --keep: forget the oldest file of p beyond N. */
static void rotate(struct agent *a, struct agent_proc *p, const char *path)
{
	char **k;

	if (!a->o->keep)
		return;
	k = realloc(p->kept, (p->nkept + 1) * sizeof(*k));
	if (!k)
		return;
	p->kept = k;
	p->kept[p->nkept] = strdup(path);
	if (!p->kept[p->nkept])
		return;
	p->nkept++;
	while (p->nkept > a->o->keep) {
		if (unlink(p->kept[0]) && errno != ENOENT)
			fprintf(stderr, "tmbpf: cannot remove %s: %s\n", p->kept[0], strerror(errno));
		free(p->kept[0]);
		memmove(p->kept, p->kept + 1, --p->nkept * sizeof(*p->kept));
	}
}

/* Polling the capture may end processes (on_ending, nested): it writes
 * their last snapshot and forgets them, which moves a->procs. So p is
 * found again by pid after each poll; gone, its last file is written. */
static void write_snapshot(struct agent *a, struct agent_proc *p)
{
	pid_t pid = p->pid;
	struct tm_out_fields f = { .pid = pid, .host = a->host, .when = time(NULL) };
	struct cli_output out = { 0 };
	struct tm_snapshot *snap;
	char path[PATH_MAX], err[512];

	while (tm_capture_poll(a->c, 0) > 0)
		; /* stacks announced so far are symbolized first */
	if (!proc_of(a, pid))
		return;
	snap = tm_capture_snapshot(a->c, pid, err, sizeof(err));
	p = proc_of(a, pid);
	if (!p) {
		tm_snapshot_free(snap);
		return;
	}
	if (!snap) {
		fprintf(stderr, "tmbpf: PID %d: snapshot failed: %s\n", (int)pid, err);
		a->failed = 1;
		return;
	}
	f.comm = p->comm;
	f.seq = p->seq + 1;
	if (tm_out_expand(a->o->output, &f, path, sizeof(path)) ||
	    cli_output_begin(&out, path, a->o->format) || cli_output_commit(&out, snap)) {
		a->failed = 1;
	} else {
		p->seq++;
		rotate(a, p, path);
	}
	tm_snapshot_free(snap);
}

static void on_attached(void *ctx, pid_t pid, const struct tm_target *t, int from_start)
{
	struct agent *a = ctx;
	struct agent_proc *p;

	if (a->n == TM_MAX_PROCS)
		return; /* the capture refuses as many */
	p = &a->procs[a->n++];
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->from_start = from_start;
	if (tm_proc_comm(pid, p->comm, sizeof(p->comm)))
		snprintf(p->comm, sizeof(p->comm), "?");
	snprintf(p->version, sizeof(p->version), "%s", t->version);
	fprintf(stderr, "tmbpf: tracing PID %d %s (CPython %s)%s\n", (int)pid, p->comm, t->version,
		from_start ? ", from its start" : "");
}

static void forget(struct agent *a, struct agent_proc *p)
{
	for (unsigned i = 0; i < p->nkept; i++)
		free(p->kept[i]);
	free(p->kept);
	*p = a->procs[--a->n];
}

static void on_ending(void *ctx, pid_t pid, const char *why)
{
	struct agent *a = ctx;
	struct agent_proc *p = proc_of(a, pid);

	if (!p)
		return;
	fprintf(stderr, "tmbpf: PID %d %s %s\n", (int)pid, p->comm, why);
	if (a->mode == AGENT_SNAPSHOT)
		write_snapshot(a, p);
	a->lost += live_print_drops_capture(a->c, pid, a->o->verbose, stderr);
	a->ended++;
	p = proc_of(a, pid); /* the write may have ended others (moved a->procs) */
	if (p)
		forget(a, p);
}

/* top: one line per process, by current size (or growth, count). */
struct row {
	struct agent_proc *p;
	struct tm_capture_stats st;
	int64_t growth;
	char top[160];
};

static int row_cmp(const void *x, const void *y)
{
	const struct row *a = x, *b = y;

	return a->st.current_bytes < b->st.current_bytes   ? 1
	       : a->st.current_bytes > b->st.current_bytes ? -1
							   : a->p->pid - b->p->pid;
}

static int row_cmp_growth(const void *x, const void *y)
{
	const struct row *a = x, *b = y;

	return a->growth < b->growth ? 1 : a->growth > b->growth ? -1 : row_cmp(x, y);
}

static int row_cmp_count(const void *x, const void *y)
{
	const struct row *a = x, *b = y;

	return a->st.live_blocks < b->st.live_blocks ? 1
	       : a->st.live_blocks > b->st.live_blocks ? -1 : row_cmp(x, y);
}

/* The line holding the most bytes of p: "file.py:12 (1.2 MiB)". */
static void top_line(struct agent *a, struct agent_proc *p, char *buf, size_t len)
{
	struct tm_statistics st = { 0 };
	struct tm_snapshot *snap;
	char err[256], size[TM_SIZE_STRLEN];

	snprintf(buf, len, "-");
	snap = tm_capture_snapshot(a->c, p->pid, err, sizeof(err));
	if (!snap)
		return;
	if (tm_statistics_compute(snap, TM_KEY_LINENO, 0, &st) == 0 && st.nstats &&
	    st.stats[0].nframe) {
		tm_format_size_u64(size, sizeof(size), st.stats[0].size_bytes, 0);
		snprintf(buf, len, "%s:%u (%s)", st.stats[0].frames[0].filename,
			 st.stats[0].frames[0].lineno, size);
	}
	tm_statistics_release(&st);
	tm_snapshot_free(snap);
}

static void report(struct agent *a, FILE *out)
{
	struct row *rows = calloc(a->n ? a->n : 1, sizeof(*rows));
	uint64_t maps, rss;
	char cur[TM_SIZE_STRLEN], peak[TM_SIZE_STRLEN], grow[TM_SIZE_STRLEN], mem[TM_SIZE_STRLEN];
	char when[32];
	time_t now = time(NULL);
	struct tm tm;
	size_t n = 0;

	if (!rows)
		return;
	for (size_t i = 0; i < a->n; i++) {
		struct row *r = &rows[n];

		if (tm_capture_stats(a->c, a->procs[i].pid, &r->st))
			continue;
		r->p = &a->procs[i];
		r->growth = (int64_t)r->st.current_bytes - (int64_t)r->p->last_current;
		r->p->last_current = r->st.current_bytes;
		top_line(a, r->p, r->top, sizeof(r->top));
		n++;
	}
	qsort(rows, n, sizeof(*rows), a->o->sort == LIVE_SORT_GROWTH  ? row_cmp_growth
				      : a->o->sort == LIVE_SORT_COUNT ? row_cmp_count
								      : row_cmp);
	localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	tm_capture_own_memory(a->c, &maps, &rss);
	tm_format_size_u64(mem, sizeof(mem), maps + rss, 0);
	fprintf(out, "[%s] %zu processes traced, %u ended; tmbpf memory %s\n", when, n, a->ended,
		mem);
	fprintf(out, "%8s %-16s %-8s %11s %11s %11s %9s %6s  %s\n", "PID", "COMM", "CPYTHON",
		"CURRENT", "PEAK", "GROWTH", "BLOCKS", "DROPS", "TOP LINE");
	for (size_t i = 0; i < n; i++) {
		struct row *r = &rows[i];
		uint64_t drops = 0;

		for (int k = 0; k < TM_CNT_MAX; k++)
			if (tm_counter_is_loss(k))
				drops += r->st.counters[k];
		tm_format_size_u64(cur, sizeof(cur), r->st.current_bytes, 0);
		tm_format_size_u64(peak, sizeof(peak), r->st.peak_bytes, 0);
		tm_format_size_u64(grow, sizeof(grow), (uint64_t)(r->growth < 0 ? -r->growth : r->growth),
				   0);
		fprintf(out, "%8d %-16.16s %-8.8s %11s %11s %c%10s %9llu %6llu  %s\n", (int)r->p->pid,
			r->p->comm, r->p->version, cur, peak, r->growth < 0 ? '-' : '+', grow,
			(unsigned long long)r->st.live_blocks, (unsigned long long)drops, r->top);
	}
	fprintf(out, "\n");
	fflush(out);
	free(rows);
}

static int start(struct agent *a, struct tm_watch_select *sel)
{
	struct tm_watch_hooks hooks = { on_attached, on_ending, a };
	struct tm_capture_opts copts = a->o->capture;
	char err[512], mem[TM_SIZE_STRLEN];
	uint32_t blocks, stacks;
	uint64_t reserved;
	int n, sized;

	copts.watch = 1;
	if (!copts.max_memory)
		copts.max_memory = AGENT_DEFAULT_BUDGET;
	reserved = tm_capture_budget(copts.max_memory, copts.max_frames, 1, &blocks, &stacks);
	if (!reserved) {
		fprintf(stderr, "%s: --max-memory is below what a system-wide session needs (48 MiB)\n", a->prog);
		return 2;
	}
	sized = a->o->max_blocks_given || a->o->max_stacks_given;
	if (sized) {
		/* --max-blocks / --max-stacks are kept (the capture would split
		 * the budget over them); a map not sized takes its budget share. */
		if (a->o->max_blocks_given)
			blocks = copts.max_blocks;
		if (a->o->max_stacks_given)
			stacks = copts.max_stacks;
		copts.max_blocks = blocks;
		copts.max_stacks = stacks;
		copts.max_memory = 0;
	}
	a->c = tm_capture_new(&copts, err, sizeof(err));
	if (!a->c) {
		fprintf(stderr, "tmbpf: %s\n", err);
		return 1;
	}
	tm_format_size_u64(mem, sizeof(mem), reserved, 0);
	if (sized)
		fprintf(stderr, "tmbpf: BPF maps for every traced process: %u live blocks, %u stacks "
				"of up to %u frames (--max-blocks/--max-stacks as given)\n", blocks,
			stacks, copts.max_frames);
	else
		fprintf(stderr, "tmbpf: BPF maps for every traced process: up to %s (%u live blocks, "
				"%u stacks of up to %u frames)\n", mem, blocks, stacks, copts.max_frames);
	a->w = tm_watch_new(a->c, sel, &hooks);
	if (!a->w) {
		fprintf(stderr, "tmbpf: out of memory\n");
		return 1;
	}
	n = tm_watch_scan(a->w);
	if (n < 0) {
		fprintf(stderr, "tmbpf: cannot list processes: %s\n", strerror(-n));
		return 1;
	}
	if (!n && !sel->all) {
		fprintf(stderr, "tmbpf: none of the processes given could be traced\n");
		return 1;
	}
	fprintf(stderr, "tmbpf: %d processes traced%s; %s\n", n,
		sel->all ? ", and those that start from now on" : "",
		a->mode == AGENT_SNAPSHOT ? "SIGTERM or Ctrl-C writes the last snapshots"
					  : "Ctrl-C stops");
	return 0;
}

int agent_run(struct live_opts *o, enum agent_mode mode, const char *prog)
{
	struct agent *a = calloc(1, sizeof(*a));
	struct tm_watch_select sel = { 0 };
	struct sigaction sa = { 0 };
	double t0, next_every, next_report, next_gc;
	int ret = 0;

	if (!a) {
		fprintf(stderr, "tmbpf: out of memory\n");
		return 1;
	}
	a->o = o;
	a->mode = mode;
	a->prog = prog;
	if (gethostname(a->host, sizeof(a->host) - 1))
		snprintf(a->host, sizeof(a->host), "localhost");
	if (mode == AGENT_SNAPSHOT) {
		if (!o->output) {
			fprintf(stderr, "%s: -o PATTERN is required (e.g. -o /var/lib/tmbpf/%%c-%%p-%%t.tmbpf)\n",
				prog);
			ret = 2;
			goto out;
		}
		ret = check_output(a);
		if (ret)
			goto out;
	}
	/* A -p list is exact; --comm and the others filter --all. */
	sel.all = o->sel.all && !o->sel.npids;
	sel.pids = o->sel.pids;
	sel.npids = o->sel.npids;
	sel.comms = o->sel.comms;
	sel.ncomms = o->sel.ncomms;
	sel.exclude_comms = o->sel.exclude;
	sel.nexclude = o->sel.nexclude;
	sel.cgroups = o->sel.cgroups;
	sel.ncgroups = o->sel.ncgroups;
	live_print_pid_prefix = 1;
	live_install_signals();
	sa.sa_handler = on_hup;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
	ret = start(a, &sel);
	if (ret)
		goto out;
	t0 = now_s();
	next_every = t0 + o->every_s;
	next_report = t0 + o->interval_s;
	next_gc = t0 + AGENT_GC_PERIOD_S;
	while (!live_stop_requested) {
		double t;

		tm_capture_poll(a->c, 100);
		tm_watch_tick(a->w);
		t = now_s();
		if (reopen_requested) {
			reopen_requested = 0;
			/* Files are opened per snapshot: check the directory again,
			 * say so, go on (logrotate-style SIGHUP must not stop us). */
			if (mode == AGENT_SNAPSHOT && check_output(a))
				fprintf(stderr, "tmbpf: SIGHUP: the output directory is not writable now\n");
			else
				fprintf(stderr, "tmbpf: SIGHUP: outputs checked\n");
		}
		if (mode == AGENT_SNAPSHOT &&
		    (live_snapshot_requested || (o->every_s && t >= next_every))) {
			live_snapshot_requested = 0;
			if (o->every_s)
				while (next_every <= t)
					next_every += o->every_s;
			for (size_t i = 0; i < a->n; i++)
				write_snapshot(a, &a->procs[i]);
		}
		if (mode == AGENT_TOP && t >= next_report) {
			next_report = t + o->interval_s;
			report(a, stdout);
		}
		if (t >= next_gc) {
			long n = tm_capture_collect_stacks(a->c);

			next_gc = t + AGENT_GC_PERIOD_S;
			if (n < 0)
				fprintf(stderr, "tmbpf: cannot collect unused stacks: %s\n", strerror((int)-n));
		}
		if (o->duration_s && t - t0 >= o->duration_s)
			break;
	}
	/* The end (--duration, SIGTERM, Ctrl-C): the last snapshot of each. */
	if (mode == AGENT_TOP)
		report(a, stdout);
	for (size_t i = 0; i < a->n; i++) {
		if (mode == AGENT_SNAPSHOT)
			write_snapshot(a, &a->procs[i]);
		a->lost += live_print_drops_capture(a->c, a->procs[i].pid, o->verbose, stderr);
	}
	{
		uint64_t maps, rss;
		char m[TM_SIZE_STRLEN], r[TM_SIZE_STRLEN];

		tm_capture_own_memory(a->c, &maps, &rss);
		tm_format_size_u64(m, sizeof(m), maps, 0);
		tm_format_size_u64(r, sizeof(r), rss, 0);
		fprintf(stderr, "tmbpf: %zu processes traced at the end, %u ended before; %llu events "
				"lost in all; tmbpf memory: BPF maps %s + RSS %s\n", a->n, a->ended,
			(unsigned long long)a->lost, m, r);
	}
	ret = a->failed || a->lost ? 1 : 0;
out:
	tm_watch_free(a->w);
	tm_capture_free(a->c);
	while (a->n)
		forget(a, &a->procs[a->n - 1]);
	free(a);
	return ret;
}
