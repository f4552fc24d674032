/* BPF component test against real CPythons (root): a script waits on a
 * handshake until the probes are attached, allocates known sizes on known
 * lines (large blocks through raw malloc, small objects, a thread, realloc
 * growth, PyTraceMalloc_Track in its own domain), and tmbpf's snapshot must
 * agree with the same workload's in-process tracemalloc, per line. Then the
 * script exits: the Py_FinalizeEx event must arrive and the blocks stay as
 * they were. Without root: skip. Run alone: test_capture_session [PYTHON...].
 * test_capture_session --hold PID attaches to PID, prints "attached" and waits
 * for EOF on stdin (tests/bpf/run.sh kills it there). */
#include <errno.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "core/log.h"
#include "capture/capture.h"
#include "target/target.h"

/* Line numbers below are checked: keep the script's layout. */
static const char script[] =
	"import sys, threading\n"                                      /* 1 */
	"oracle = len(sys.argv) > 1\n"                                 /* 2 */
	"try:\n"                                                       /* 3 */
	"    import ctypes\n"                                          /* 4 */
	"    api = ctypes.pythonapi; track, untrack = api.PyTraceMalloc_Track, api.PyTraceMalloc_Untrack\n" /* 5 */
	"except Exception:\n"                                          /* 6 */
	"    track = None\n"                                           /* 7 */
	"def big(n):\n"                                                /* 8 */
	"    return [bytearray(700) for _ in range(n)]\n"              /* 9 */
	"def small(n):\n"                                              /* 10 */
	"    return [(i, str(i)) for i in range(n)]\n"                 /* 11 */
	"def grow():\n"                                                /* 12 */
	"    b = bytearray()\n"                                        /* 13 */
	"    for i in range(3000):\n"                                  /* 14 */
	"        b += b'x' * 7\n"                                      /* 15 */
	"    return b\n"                                               /* 16 */
	"def worker(out):\n"                                           /* 17 */
	"    out.append([bytearray(600) for _ in range(500)])\n"       /* 18 */
	"def deep(k):\n"                                               /* 19 */
	"    return deep(k - 1) if k else [bytearray(1000) for _ in range(50)]\n" /* 20 */
	"sys.stdout.write('ready\\n'); sys.stdout.flush()\n"           /* 21 */
	"sys.stdin.readline()\n"                                       /* 22 */
	"if oracle:\n"                                                 /* 23 */
	"    import tracemalloc; tracemalloc.start(25)\n"              /* 24 */
	"a = big(1000)\n"                                              /* 25 */
	"b = small(1000)\n"                                            /* 26 */
	"c = grow()\n"                                                 /* 27 */
	"out = []\n"                                                   /* 28 */
	"t = threading.Thread(target=worker, args=(out,)); t.start(); t.join()\n" /* 29 */
	"d = deep(40)\n"                                               /* 30 */
	"if track:\n"                                                  /* 31 */
	"    track(389047, 0x10000, 4096); track(389047, 0x20000, 64); untrack(389047, 0x20000)\n" /* 32 */
	"if oracle:\n"                                                 /* 33 */
	"    snap = tracemalloc.take_snapshot()\n"                     /* 34 */
	"    for st in snap.statistics('lineno'):\n"                   /* 35 */
	"        f = st.traceback[0]\n"                                /* 36 */
	"        if f.filename == __file__:\n"                         /* 37 */
	"            print('LINE', f.lineno, st.size, st.count)\n"     /* 38 */
	"sys.stdout.write('done\\n'); sys.stdout.flush()\n"            /* 39 */
	"sys.stdin.readline()\n";                                      /* 40 */

#define MAXLINE 64

struct child {
	pid_t pid;
	FILE *in, *out;
};

static int spawn(const char *python, const char *path, int oracle, struct child *ch)
{
	int to[2], from[2];

	if (pipe(to) || pipe(from))
		return -errno;
	ch->pid = fork();
	if (ch->pid < 0)
		return -errno;
	if (ch->pid == 0) {
		dup2(to[0], 0);
		dup2(from[1], 1);
		close(to[1]);
		close(from[0]);
		execl(python, python, path, oracle ? "oracle" : (char *)NULL, (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	ch->in = fdopen(to[1], "w");
	ch->out = fdopen(from[0], "r");
	return 0;
}

static int expect(struct child *ch, const char *word, long sizes[MAXLINE])
{
	char line[256];

	while (fgets(line, sizeof(line), ch->out)) {
		int no;
		long size, n;

		if (strncmp(line, word, strlen(word)) == 0)
			return 0;
		if (sizes && sscanf(line, "LINE %d %ld %ld", &no, &size, &n) == 3 && no > 0 &&
		    no < MAXLINE)
			sizes[no] = size;
	}
	return -1;
}

static void say(struct child *ch)
{
	fputs("go\n", ch->in);
	fflush(ch->in);
}

static int reap(struct child *ch)
{
	int status = 0;

	fclose(ch->in);
	fclose(ch->out);
	waitpid(ch->pid, &status, 0);
	return status;
}

/* Live bytes per line of path (most recent frame), and frames seen. */
static void per_line(const struct tm_snapshot *s, const char *path, long sizes[MAXLINE],
		     uint32_t *max_total, uint32_t *domain_blocks)
{
	for (size_t i = 0; i < s->ntraces; i++) {
		const struct tm_trace *t = &s->traces[i];
		const struct tm_frame *f = &t->traceback->frames[0];

		if (t->domain == 389047)
			(*domain_blocks)++;
		if (t->total_nframe > *max_total && t->total_nframe != TM_NFRAME_UNKNOWN)
			*max_total = t->total_nframe;
		if (t->domain == 0 && strcmp(f->filename, path) == 0 && f->lineno < MAXLINE)
			sizes[f->lineno] += (long)t->size_bytes;
	}
}

static int within(long got, long want, double tol)
{
	double d = (double)(got - want);

	if (d < 0)
		d = -d;
	return want > 0 && d <= tol * (double)want;
}

static void run_version(struct tm_capture *cap, const char *python, const char *path)
{
	long want[MAXLINE] = { 0 }, got[MAXLINE] = { 0 }, after[MAXLINE] = { 0 };
	static const int lines[] = { 9, 11, 15, 18, 20 };
	struct tm_capture_stats st;
	struct tm_snapshot *snap = NULL, *snap2 = NULL;
	struct tm_target *t = calloc(1, sizeof(*t));
	struct child ch;
	char err[256];
	uint32_t max_total = 0, dom = 0, max2 = 0, dom2 = 0;
	int e, fin = 0;

	/* The oracle: the same workload under in-process tracemalloc. */
	if (spawn(python, path, 1, &ch) || expect(&ch, "ready", NULL)) {
		CHECK(0, "%s: oracle run starts", python);
		return;
	}
	say(&ch);
	expect(&ch, "done", want);
	say(&ch);
	reap(&ch);

	if (spawn(python, path, 0, &ch) || expect(&ch, "ready", NULL)) {
		CHECK(0, "%s: traced run starts", python);
		free(t);
		return;
	}
	e = tm_target_open(ch.pid, t, err, sizeof(err));
	CHECK(e == 0, "%s: tm_target_open (%s)", python, e ? err : t->version);
	if (e)
		goto cleanup;
	e = tm_capture_add_target(cap, t, err, sizeof(err));
	CHECK(e == 0, "%s: probes attached (%s)", python, e ? err : "ok");
	if (e)
		goto cleanup;
	say(&ch);
	expect(&ch, "done", NULL);
	snap = tm_capture_snapshot(cap, ch.pid, err, sizeof(err));
	CHECK(snap != NULL, "%s: snapshot (%s)", python, snap ? "ok" : err);
	if (!snap)
		goto cleanup;
	per_line(snap, path, got, &max_total, &dom);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		int l = lines[i];

		CHECK(within(got[l], want[l], 0.01), "%s: line %d: tmbpf %ld bytes, tracemalloc %ld",
		      python, l, got[l], want[l]);
	}
	CHECK(max_total >= 41, "%s: total_nframe counts past --frames (max %u)", python, max_total);
	CHECK(dom == 1, "%s: PyTraceMalloc_Track/Untrack: one block left in domain 389047 (%u)",
	      python, dom);
	tm_capture_stats(cap, ch.pid, &st);
	CHECK(st.current_bytes > 0 && st.peak_bytes >= st.current_bytes,
	      "%s: traced memory current %llu peak %llu, %llu blocks", python,
	      (unsigned long long)st.current_bytes, (unsigned long long)st.peak_bytes,
	      (unsigned long long)st.live_blocks);
	CHECK(st.single_stepped == 0, "%s: every probe on an emulated instruction", python);
	printf("# %s: allocs %llu frees %llu free_unknown %llu nested %llu missed_return %llu "
	       "frame_read %llu no_tstate %llu; bpf %llu runs, %.0f ns/run; maps %llu KiB\n",
	       python, (unsigned long long)st.counters[TM_CNT_ALLOCS],
	       (unsigned long long)st.counters[TM_CNT_FREES],
	       (unsigned long long)st.counters[TM_CNT_FREE_UNKNOWN],
	       (unsigned long long)st.counters[TM_CNT_NESTED],
	       (unsigned long long)st.counters[TM_CNT_DROP_NO_RETURN],
	       (unsigned long long)st.counters[TM_CNT_DROP_FRAME_READ],
	       (unsigned long long)st.counters[TM_CNT_NO_TSTATE],
	       (unsigned long long)st.bpf_run_cnt,
	       st.bpf_run_cnt ? (double)st.bpf_run_ns / (double)st.bpf_run_cnt : 0.0,
	       (unsigned long long)(st.bpf_map_bytes >> 10));

	/* Finalization: the event arrives and the blocks stay frozen. */
	say(&ch);
	for (int i = 0; i < 50 && !fin; i++) {
		tm_capture_poll(cap, 100);
		fin = tm_capture_finalizing(cap, ch.pid) == 1;
	}
	CHECK(fin, "%s: Py_FinalizeEx reported", python);
	reap(&ch);
	snap2 = tm_capture_snapshot(cap, ch.pid, err, sizeof(err));
	CHECK(snap2 != NULL, "%s: snapshot after exit (%s)", python, snap2 ? "ok" : err);
	if (snap2) {
		per_line(snap2, path, after, &max2, &dom2);
		CHECK(after[9] == got[9] && after[11] == got[11] && after[18] == got[18],
		      "%s: blocks frozen at finalization (%zu traces, then %zu)", python,
		      snap->ntraces, snap2->ntraces);
		/* The live block count comes from the counters (allocs - frees -
		 * missed_free): it must equal what the map holds. */
		tm_capture_stats(cap, ch.pid, &st);
		CHECK(st.live_blocks == snap2->ntraces,
		      "%s: live blocks from the counters %llu = traces in the map %zu", python,
		      (unsigned long long)st.live_blocks, snap2->ntraces);
	}
	ch.pid = 0;
cleanup:
	if (ch.pid) {
		kill(ch.pid, SIGKILL);
		reap(&ch);
	}
	tm_snapshot_free(snap);
	tm_snapshot_free(snap2);
	tm_capture_remove_target(cap, t->pid);
	free(t);
}

/* Library diagnostics as the CLI prints them. */
static void log_to_stderr(enum tm_log_level level, const char *line)
{
	(void)level;
	fprintf(stderr, "tmbpf: %s\n", line);
}

/* Attach to pid and wait: the subject of tests/bpf/run.sh. */
static int hold(pid_t pid)
{
	struct tm_capture_opts o = { .max_frames = 5, .bpf_stats = 1 };
	struct tm_target *t = calloc(1, sizeof(*t));
	struct tm_capture *cap = NULL;
	struct tm_capture_stats st;
	char err[256], buf[64];
	int rc = 1;

	if (!t)
		return 1;
	tm_log_set_level(TM_LOG_DEBUG);
	if (getenv("TM_FRAMES"))
		o.max_frames = (uint32_t)atoi(getenv("TM_FRAMES"));
	if (tm_target_open(pid, t, err, sizeof(err))) {
		fprintf(stderr, "hold: %s\n", err);
		goto cleanup;
	}
	cap = tm_capture_new(&o, err, sizeof(err));
	if (!cap || tm_capture_add_target(cap, t, err, sizeof(err))) {
		fprintf(stderr, "hold: %s\n", err);
		goto cleanup;
	}
	printf("attached\n");
	fflush(stdout);
	while (fgets(buf, sizeof(buf), stdin))
		;
	if (tm_capture_stats(cap, pid, &st) == 0)
		fprintf(stderr, "hold: %llu blocks, %llu allocs, %llu frees, %llu nested, bpf %llu runs %.0f ns/run\n",
			(unsigned long long)st.live_blocks, (unsigned long long)st.counters[TM_CNT_ALLOCS],
			(unsigned long long)st.counters[TM_CNT_FREES],
			(unsigned long long)st.counters[TM_CNT_NESTED], (unsigned long long)st.bpf_run_cnt,
			st.bpf_run_cnt ? (double)st.bpf_run_ns / (double)st.bpf_run_cnt : 0.0);
	rc = 0;
cleanup:
	tm_capture_free(cap);
	free(t);
	return rc;
}

int main(int argc, char **argv)
{
	tm_log_set(log_to_stderr);
	struct tm_capture_opts o = { .max_frames = 25, .bpf_stats = 1, .redirect = 1 };
	char path[] = "/tmp/tmbpf_capture_XXXXXX.py";
	const char *root = getenv("PYENV_ROOT");
	char pattern[512], err[256];
	struct tm_capture *cap;
	glob_t g = { 0 };
	FILE *f;
	int fd;

	if (argc == 3 && strcmp(argv[1], "--hold") == 0)
		return hold((pid_t)atoi(argv[2]));
	if (geteuid() != 0) {
		printf("skip - probe capture: needs root (BPF, uprobes)\n");
		return 0;
	}
	fd = mkstemps(path, 3);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f || fputs(script, f) < 0 || fclose(f)) {
		CHECK(0, "write the test script");
		return CHECK_DONE();
	}
	if (getenv("TM_VERBOSE"))
		tm_log_set_level(TM_LOG_DEBUG);
	cap = tm_capture_new(&o, err, sizeof(err));
	CHECK(cap != NULL, "capture session loads (%s)", cap ? "ok" : err);
	if (!cap)
		goto cleanup;
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			run_version(cap, argv[i], path);
	} else {
		snprintf(pattern, sizeof(pattern), "%s/versions/3.*/bin/python3.[0-9]*",
			 root ? root : "/root/.pyenv");
		glob(pattern, 0, NULL, &g);
		for (size_t i = 0; i < g.gl_pathc; i++) {
			const char *p = g.gl_pathv[i];
			int minor = atoi(strrchr(p, '.') + 1);

			if (minor >= 8 && minor <= 13 && !strstr(p, "-config"))
				run_version(cap, p, path);
		}
		if (g.gl_pathc == 0)
			printf("skip - probe capture: no pyenv CPython under %s\n", pattern);
		globfree(&g);
		/* Debian's LTO build: inlined allocators, redirect mode. */
		if (access("/usr/bin/python3.11", X_OK) == 0)
			run_version(cap, "/usr/bin/python3.11", path);
	}
	tm_capture_free(cap);
cleanup:
	unlink(path);
	return CHECK_DONE();
}
