/* user/capture/ -- the only user of libbpf and the BPF skeleton.
 * May: load and attach BPF programs, read their maps, and use every layer
 * below (target to find, patch to change what the capture needs in the
 * target). May not: print (core/log.h) or pick exit codes (cli/).
 *
 * A capture session: the BPF skeleton, the probes attached to each traced
 * process, and turning BPF maps into snapshots.
 *
 * Lifecycle: tm_capture_new() loads the programs; tm_capture_add_target()
 * attaches the probes of one process (pid-filtered uprobes on the functions
 * its live allocator pointers name, PyTraceMalloc_Track/Untrack, Py_FinalizeEx);
 * tm_capture_snapshot() reads live blocks and stacks and symbolizes them;
 * tm_capture_free() detaches everything. Links are plain perf-event uprobes
 * owned by this process's file descriptors, so the kernel removes them when
 * tmbpf exits for any reason, SIGKILL included (nothing is pinned;
 * tests/bpf/run.sh checks it).
 *
 * What is captured, per process (docs/capture-design.md):
 *  - allocations through the raw, mem and obj domains' malloc/calloc/realloc
 *    as domain 0, as tracemalloc records them; nested calls (raw malloc under
 *    pymalloc, malloc/free inside realloc) count once;
 *  - realloc: the old block leaves, the new one is attributed to the realloc
 *    site (also when the address is unchanged);
 *  - PyTraceMalloc_Track/Untrack in their own domain (numpy: 389047);
 *  - once the process enters Py_FinalizeEx its blocks are frozen: a snapshot
 *    taken after shows what was live when finalization began.
 * Everything lost is counted (enum tm_counter in bpf/tmbpf.h).
 *
 * Functions returning int return 0 or a negative errno; with an err buffer
 * they also leave one line there naming the PID and the remedy. Not
 * thread-safe: one thread drives a session. */
#ifndef TM_CAPTURE_CAPTURE_H
#define TM_CAPTURE_CAPTURE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/snapshot.h"
#include "target/target.h"

enum tm_probe_mode {
	TM_PROBE_MODE_STUB = 0, /* the stub (patch/stub.h): one cheap kernel entry per event */
	TM_PROBE_MODE_ENTRY,    /* uprobes on the allocator functions (entry, return), as before */
};

struct tm_capture_opts {
	enum tm_probe_mode probe_mode; /* falls back to entry probes, with a line, when the
					* stub cannot be set up (not in sampled mode) */
	uint64_t sample_bytes;  /* > 0: sampled mode (the stub's), one sample per this many
				 * bytes on average; 0: every allocation */
	uint32_t sample_slots;  /* sampled blocks live at once per process (power of two; 0: 2^16) */
	uint32_t max_frames;    /* --frames, 1..TM_BPF_MAX_FRAMES */
	uint32_t max_blocks;    /* live_blocks entries, all processes; 0: 1<<20 */
	uint32_t max_stacks;    /* distinct stacks, all processes; 0: 1<<16 */
	uint64_t max_memory;    /* bytes: max_blocks and max_stacks sized to fit it with the
				 * fixed maps (tm_capture_budget); 0: those two as given */
	uint32_t walk_limit;    /* frames counted for total_nframe; 0: TM_WALK_LIMIT_DEFAULT */
	int bpf_stats;          /* 1: enable kernel BPF run-time stats while the session lives */
	int redirect;           /* 1: on a build whose inlined allocator guards hide most calls
				 * (LTO, devirt.h), redirect the live allocator pointers to jmp
				 * stubs (redirect.h) and restore them on tm_capture_free */
	/* Variants for tests and comparisons (the CLI sets them from the
	 * environment: TMBPF_PERF_LINKS, TMBPF_NO_PREDICT, TMBPF_CHECK_PREDICTION). */
	int perf_links;         /* 1: perf-event links even where uprobe_multi exists */
	int no_predict;         /* 1: no session uprobes, no pymalloc prediction */
	int check_prediction;   /* 1: predict, keep the return probe and count predict_wrong */
	int stop_on_finalize;   /* 1: stop the finalizing thread (a signal from BPF,
				 * finalize_signal) when it enters Py_FinalizeEx, until it is
				 * resumed: module teardown frees code objects that new stacks
				 * may still need. Only for tmbpf run's own tree. */
	int watch;              /* 1: report execs, and forks and exits of traced processes
				 * (tm_capture_on_process; tmbpf --all) */
	int no_newref;          /* 1: do not probe _Py_NewReference. By default, as tracemalloc
				 * does, an object reused from a free list takes the traceback of
				 * its reuse (3.9+, where _Py_NewReference is out of line). */
	int finalize_signal;    /* with stop_on_finalize: the signal sent to the finalizing
				 * thread (0: SIGSTOP). tmbpf run uses SIGURG, whose default is to
				 * ignore it, and holds it as the thread's ptrace tracer
				 * (patch/launch.h): nothing stays stopped if tmbpf dies. */
};

struct tm_capture_stats {
	uint64_t live_blocks;
	uint64_t current_bytes;  /* like tracemalloc.get_traced_memory()[0] */
	uint64_t peak_bytes;     /* like tracemalloc.get_traced_memory()[1] */
	uint64_t counters[TM_CNT_MAX]; /* summed over CPUs and processes */
	uint64_t bpf_map_bytes;  /* tmbpf's own memory, like get_tracemalloc_memory(): maps (memlock) */
	uint64_t process_rss_bytes; /* tmbpf's own resident memory */
	uint64_t bpf_run_cnt;    /* program runs, all programs (needs opts.bpf_stats or */
	uint64_t bpf_run_ns;     /*   sysctl kernel.bpf_stats_enabled=1; else 0) */
	uint32_t single_stepped; /* probes of this process on single-stepped instructions */
	uint32_t finalizing;     /* 1 once the process entered Py_FinalizeEx */
	const char *coverage;    /* tm_coverage_str(): full, redirect or partial (static string) */
};

struct tm_capture;

/* BPF map entries that fit a memory budget of `bytes` (--max-memory; the
 * maps are shared by every traced process), at most: 3/4 for live blocks,
 * the rest for stacks of up to `frames` frames, after the fixed maps (the
 * event ring and per-process arrays). Returns what the whole reservation
 * comes to, or 0 when the budget is below TM_CAPTURE_MIN_BUDGET. */
#define TM_CAPTURE_MIN_BUDGET (16ull << 20)
uint64_t tm_capture_budget(uint64_t bytes, uint32_t frames, int watch, uint32_t *max_blocks,
			   uint32_t *max_stacks);

/* The counter table (bpf/tmbpf_counters.h): the short name
 * ("live_blocks_full", as snapshot metadata stores it), what it counts, the
 * remedy ("" for plain event counts), and 1 for counters of lost or
 * degraded data (what "drops" means in every header, snapshot and exit
 * summary). */
const char *tm_counter_name(enum tm_counter k);
const char *tm_counter_meaning(enum tm_counter k);
const char *tm_counter_remedy(enum tm_counter k);
int tm_counter_is_loss(enum tm_counter k);

/* Load the BPF programs and size the maps. Needs root (CAP_BPF+CAP_PERFMON). */
struct tm_capture *tm_capture_new(const struct tm_capture_opts *opts, char *err, size_t errlen);
/* Detach every probe and free the maps. Accepts NULL. */
void tm_capture_free(struct tm_capture *c);

/* Attach to one process. t must stay valid for the session (it is borrowed).
 * The probes are attached before this returns; allocations made from then on
 * are seen. On an LTO build with inlined allocator guards and opts.redirect,
 * the allocator pointers are redirected first (one line on stderr says so);
 * without it coverage is partial (stats.coverage, snapshot meta). Errors:
 * -EEXIST (already traced), -ENOSPC (too many processes), -ENOENT (an
 * allocator function outside t->elf_path), attach failures. */
int tm_capture_add_target(struct tm_capture *c, struct tm_target *t, char *err, size_t errlen);

/* Stop tracing pid: restore redirected pointers, detach its probes and
 * forget its blocks (stacks stay). Returns -ENOENT when pid is not traced. */
int tm_capture_remove_target(struct tm_capture *c, pid_t pid);

/* Wait up to timeout_ms for events and handle them: Py_FinalizeEx, and new
 * stacks, which are symbolized right away, while their code objects still
 * exist (a module's code object dies when the module has run; a stack first
 * symbolized later shows such frames as <unknown>). Call it continually while
 * targets run (the CLI loops with 50 ms); it returns as soon as events arrive.
 * Returns the number handled or a negative errno (-EINTR when a signal
 * arrived). */
int tm_capture_poll(struct tm_capture *c, int timeout_ms);
/* fn(ctx) is called between the long steps of tm_capture_add_target (tens
 * of milliseconds each), e.g. to take process events meanwhile
 * (tm_capture_poll_processes); it must not add or remove targets. */
void tm_capture_set_idle(struct tm_capture *c, void (*fn)(void *ctx), void *ctx);
/* With opts.watch: only the process events waiting now (the process
 * hook), without the stacks; returns how many or a negative errno. */
int tm_capture_poll_processes(struct tm_capture *c);
/* File descriptor that becomes readable when tm_capture_poll has events
 * (for the CLI's own poll loop). */
int tm_capture_fd(struct tm_capture *c);
/* 1 once the process entered Py_FinalizeEx (its blocks are frozen from then
 * on), 0 otherwise, -ENOENT when pid is not traced. */
int tm_capture_finalizing(struct tm_capture *c, pid_t pid);

/* With opts.watch: fn(ctx, e) for each process event (struct
 * tm_proc_event of bpf/tmbpf.h: any exec; fork and exit of a traced
 * process), called from tm_capture_poll. An exec or exit of a traced
 * process has frozen its blocks already, as finalization does. */
void tm_capture_on_process(struct tm_capture *c,
			   void (*fn)(void *ctx, const struct tm_proc_event *e), void *ctx);

/* Give traced process `to` every live block of `from` (a fork: the child
 * starts with what its parent had, as tracemalloc's traces in a forked
 * child). Call while `to` cannot run (held by patch/catch.h). The number
 * copied, or a negative errno (-ENOSPC-like errors when live_blocks is
 * full). */
long tm_capture_copy_blocks(struct tm_capture *c, pid_t from, pid_t to);

/* The process's live blocks as a tracemalloc snapshot: frames most recent
 * first, symbolized to (filename, lineno) (handling pending events first);
 * traces without any Python frame get tracemalloc's <unknown>:0. meta carries pid, version, cmdline,
 * current/peak traced memory and the non-zero drop counters. The caller owns
 * the result (tm_snapshot_free). Reading the maps does not stop the target:
 * blocks allocated or freed meanwhile may or may not appear. */
/* After a stop at finalization (opts.stop_on_finalize): let the process go on. */
int tm_capture_resume(struct tm_capture *c, pid_t pid);

struct tm_snapshot *tm_capture_snapshot(struct tm_capture *c, pid_t pid, char *err, size_t errlen);
int tm_capture_stats(struct tm_capture *c, pid_t pid, struct tm_capture_stats *st);
/* Delete the stacks that no live block of any process has used since the
 * previous call (a stack is kept one call longer than it is unused, for
 * the block BPF may be recording with it). Long system-wide sessions call
 * it now and then: BPF only adds stacks. Returns how many went, or a
 * negative errno. */
long tm_capture_collect_stacks(struct tm_capture *c);

/* tmbpf's own memory: its BPF maps (memlock, as fdinfo says) and its
 * resident set. */
void tm_capture_own_memory(struct tm_capture *c, uint64_t *map_bytes, uint64_t *rss_bytes);
/* Set the process's peak to its current traced memory (tracemalloc.reset_peak). */
int tm_capture_reset_peak(struct tm_capture *c, pid_t pid);

#endif
