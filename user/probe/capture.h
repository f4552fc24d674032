/* A capture session: the BPF skeleton, the probes attached to each traced
 * process, and turning BPF maps into snapshots.
 *
 * Lifecycle: tm_capture_new() loads the programs; tm_capture_add_target()
 * attaches the probes of one process (pid-filtered uprobes on the functions
 * its live allocator pointers name, PyTraceMalloc_Track/Untrack, Py_FinalizeEx);
 * tm_capture_snapshot() reads live blocks and stacks and symbolizes them;
 * tm_capture_free() detaches everything. Links are plain perf-event uprobes
 * owned by this process's file descriptors, so the kernel removes them when
 * tmbpf exits for any reason, SIGKILL included (nothing is pinned). */
#ifndef TM_PROBE_CAPTURE_H
#define TM_PROBE_CAPTURE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/snapshot.h"
#include "probe/target.h"

struct tm_capture_opts {
	uint32_t max_frames;    /* --frames, 1..TM_BPF_MAX_FRAMES */
	uint32_t max_blocks;    /* live_blocks entries */
	uint32_t max_stacks;    /* stacks entries */
	int verbose;            /* print probe placement and attach details to stderr */
};

struct tm_capture_stats {
	uint64_t live_blocks;
	uint64_t current_bytes;  /* like tracemalloc.get_traced_memory()[0] */
	uint64_t peak_bytes;     /* like tracemalloc.get_traced_memory()[1] */
	uint64_t counters[TM_CNT_MAX]; /* summed over CPUs */
	uint64_t bpf_map_bytes;  /* tmbpf's own memory, like get_tracemalloc_memory() */
	uint64_t process_rss_bytes;
};

struct tm_capture;

struct tm_capture *tm_capture_new(const struct tm_capture_opts *opts, char *err, size_t errlen);
void tm_capture_free(struct tm_capture *c);

/* Attach to one process. t must stay valid for the session. */
int tm_capture_add_target(struct tm_capture *c, struct tm_target *t, char *err, size_t errlen);

/* Wait up to timeout_ms for events. Returns the number handled or negative errno. */
int tm_capture_poll(struct tm_capture *c, int timeout_ms);
/* 1 once the process entered Py_FinalizeEx (its blocks are frozen from then on). */
int tm_capture_finalizing(struct tm_capture *c, pid_t pid);

struct tm_snapshot *tm_capture_snapshot(struct tm_capture *c, pid_t pid, char *err, size_t errlen);
int tm_capture_stats(struct tm_capture *c, pid_t pid, struct tm_capture_stats *st);
int tm_capture_reset_peak(struct tm_capture *c, pid_t pid);

#endif
