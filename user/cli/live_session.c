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

volatile sig_atomic_t live_stop_requested;
volatile sig_atomic_t live_snapshot_requested;

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
	o->capture.redirect = 1;
	/* Capture variants for tests and comparisons (DEVELOPERS.md). */
	o->capture.perf_links = getenv("TMBPF_PERF_LINKS") != NULL;
	o->capture.no_predict = getenv("TMBPF_NO_PREDICT") != NULL;
	o->capture.check_prediction = getenv("TMBPF_CHECK_PREDICTION") != NULL;
}

static int parse_u32(const char *opt, const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "tmbpf: %s takes a whole number from %u to %u, not '%s'\n", opt, lo,
			hi, s);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static int parse_seconds(const char *opt, const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > 1e7) {
		fprintf(stderr, "tmbpf: %s takes a positive number of seconds, not '%s'\n", opt, s);
		return -1;
	}
	*out = v;
	return 0;
}

int live_parse_option(struct live_opts *o, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
	uint32_t n;

	if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
		o->verbose++;
		tm_log_set_level(o->verbose > 1 ? TM_LOG_TRACE : TM_LOG_DEBUG);
		return 1;
	}
	if (!strcmp(a, "--reset-peak")) {
		o->reset_peak = 1;
		return 1;
	}
	if (!strcmp(a, "--no-redirect")) {
		o->capture.redirect = 0;
		return 1;
	}
	if (!strcmp(a, "--no-newref")) {
		o->capture.no_newref = 1;
		return 1;
	}
	if (strcmp(a, "-p") && strcmp(a, "--pid") && strcmp(a, "--frames") && strcmp(a, "-o") &&
	    strcmp(a, "--output") && strcmp(a, "--format") && strcmp(a, "--interval") &&
	    strcmp(a, "--duration") && strcmp(a, "--every") && strcmp(a, "--max-blocks") &&
	    strcmp(a, "--max-stacks"))
		return 0;
	if (!v) {
		fprintf(stderr, "tmbpf: %s needs a value\n", a);
		return -1;
	}
	(*i)++;
	if (!strcmp(a, "-p") || !strcmp(a, "--pid")) {
		if (parse_u32(a, v, 1, INT_MAX, &n))
			return -1;
		o->pid = (pid_t)n;
	} else if (!strcmp(a, "--frames")) {
		if (parse_u32(a, v, 1, TM_BPF_MAX_FRAMES, &o->capture.max_frames))
			return -1;
	} else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
		o->output = v;
	} else if (!strcmp(a, "--format")) {
		if (tm_format_parse(v, &o->format)) {
			fprintf(stderr, "tmbpf: --format takes pickle, native or json, not '%s'\n", v);
			return -1;
		}
	} else if (!strcmp(a, "--interval")) {
		return parse_seconds(a, v, &o->interval_s) ? -1 : 1;
	} else if (!strcmp(a, "--duration")) {
		return parse_seconds(a, v, &o->duration_s) ? -1 : 1;
	} else if (!strcmp(a, "--every")) {
		return parse_seconds(a, v, &o->every_s) ? -1 : 1;
	} else if (!strcmp(a, "--max-blocks")) {
		return parse_u32(a, v, 1024, 1u << 28, &o->capture.max_blocks) ? -1 : 1;
	} else if (!strcmp(a, "--max-stacks")) {
		return parse_u32(a, v, 1024, 1u << 26, &o->capture.max_stacks) ? -1 : 1;
	}
	return 1;
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
	struct tm_snapshot *snap;
	char err[512];

	snap = tm_capture_snapshot(s->capture, s->target.pid, err, sizeof(err));
	if (!snap) {
		fprintf(stderr, "tmbpf: PID %d: snapshot failed: %s\n", s->target.pid, err);
		return NULL;
	}
	return snap; /* metadata (pid, cmdline, host, times, drops) filled by capture */
}

int live_write_snapshot(struct live_session *s, const struct tm_snapshot *snap, const char *path)
{
	char err[512];
	enum tm_file_format fmt = s->opts->format ? s->opts->format : tm_format_from_path(path);

	if (tm_snapshot_save(snap, path, fmt, err, sizeof(err))) {
		fprintf(stderr, "tmbpf: %s: %s\n", path, err);
		return 1;
	}
	s->snapshots_written++;
	fprintf(stderr, "tmbpf: wrote %s (%zu traces)\n", path, snap->ntraces);
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
	struct tm_capture_stats st;

	if (tm_capture_stats(s->capture, s->target.pid, &st))
		return;
	for (int i = 0; i < TM_CNT_MAX; i++) {
		if (!tm_counter_is_loss(i) || !st.counters[i])
			continue;
		fprintf(out, "tmbpf: dropped %llu events (%s): %s\n",
			(unsigned long long)st.counters[i], tm_counter_name(i),
			tm_counter_remedy(i));
	}
	if (s->opts->verbose) {
		for (int i = 0; i < TM_CNT_MAX; i++)
			fprintf(out, "tmbpf: counter %s = %llu\n", tm_counter_name(i),
				(unsigned long long)st.counters[i]);
	}
	fprintf(out, "tmbpf: drops: %llu\n", (unsigned long long)total_drops(&st));
}
