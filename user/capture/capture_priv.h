/* Internals shared by capture.c (session, stats), capture_attach.c (probe
 * placement and uprobes) and capture_snapshot.c (maps to snapshots). Not an
 * API: only these files include it. */
#ifndef TM_CAPTURE_CAPTURE_PRIV_H
#define TM_CAPTURE_CAPTURE_PRIV_H

#include <bpf/libbpf.h>

#include "capture/capture.h"
#include "placement/devirt.h"
#include "target/layouts.h"
#include "patch/redirect.h"
#include "patch/stub.h"
#include "target/symbolize.h"
#include "bpf/tmbpf.skel.h"

#define TM_CAPTURE_MAX_PROCS TM_MAX_PROCS

/* capture_stacks.c: symbolized stacks of one process. */
struct tm_resolved_frame {
	const char *filename;  /* owned by the process's symbolizer */
	uint32_t lineno;
	const char *name;      /* function name, same owner; NULL: unknown */
};
struct tm_resolved_stack;
/* Code objects whose identity was read in the current pass (direct-mapped). */
#define TM_CODE_SEEN 4096
struct tm_code_seen {
	uint64_t code, id;
	uint64_t pass;
};
/* Symbolized stacks of one process. Their frames are 8 bytes each (a
 * location index and a line): the (filename, name) pairs, which thousands
 * of stacks share, are interned once in locs[]. At 24 bytes a frame, 20
 * processes at 10 frames held ~190 MiB of them (docs/system-wide.md). */
struct tm_frame_loc {
	const char *filename; /* owned by the process's symbolizer */
	const char *name;     /* same owner; NULL: unknown */
};
struct tm_stack_cache {
	struct tm_resolved_stack **slots;
	size_t cap, used;
	struct tm_frame_loc *locs;
	size_t nlocs, locs_cap;
	uint32_t *loc_slots;  /* open addressing over locs[]: index + 1, 0 empty */
	size_t loc_slots_cap;
};

struct tm_capture_proc {
	pid_t pid;
	struct tm_target *t;
	struct tm_symbolizer *sym;
	struct bpf_link **links;  /* perf-event links (kernels without uprobe_multi) */
	size_t nlinks, caplinks;
	int predict;              /* usedpools found: BPF predicts pymalloc (TM_PREDICT_ON) */
	int predict_tries;        /* tm_capture_try_predict() calls so far (gives up at 200) */
	uint64_t pymalloc_fn[2];  /* the default pymalloc malloc and calloc (absolute) */
	int link_fds[16];         /* uprobe_multi links: one per (program, entry/return) */
	size_t nlink_fds;
	uint64_t start_ns;        /* CLOCK_REALTIME when probes were attached */
	uint32_t slot;            /* in traced_memory */
	int finalizing;           /* the ring buffer reported Py_FinalizeEx */
	uint32_t nsinglestep;     /* probes that could not be placed on an emulated instruction */
	int devirt_ok;            /* dv holds a scan of the target's ELF */
	struct tm_devirt dv;      /* LTO guards against the live allocator functions */
	struct tm_redirect rd;    /* rd.applied while the pointers go through our stubs */
	struct tm_stub stub;      /* stub mode: the pointers go through the stub (patch/stub.h) */
	int stub_ready;           /* stub prepared and its report points planned */
	uint64_t retake_checked_ns; /* CLOCK_MONOTONIC of tm_capture_keep_stub's last look */
	uint64_t allocator_resets;  /* times the target put the stub's pointers back */
	const char *coverage;     /* stub mode's coverage statement, else NULL (devirt's) */
	struct tm_stack_cache stacks; /* symbolized stacks */
	const struct tm_layout *layout; /* the version's offsets (co_filename, co_firstlineno) */
	uint64_t pass;            /* bumped per poll and snapshot: memory is re-read once a pass */
	struct tm_code_seen *seen; /* TM_CODE_SEEN entries */
};

struct tm_stack_idset;

#define WATCH_EVENTS_BYTES (32u << 20) /* the events ring of a system-wide session */

struct tm_capture {
	struct tm_capture_opts opts;
	struct tmbpf_bpf *skel;
	struct tm_stack_idset *gc_unreferenced; /* capture_gc.c: stacks unused at the last
						 * collection */
	int multi;                /* programs loaded for uprobe_multi links (uprobe_multi.h) */
	int session;              /* allocator_session loaded: pymalloc results predicted */
	struct ring_buffer *rb;
	struct ring_buffer *proc_rb;  /* proc_events alone (opts.watch), also in rb */
#define PROC_QUEUE_MAX 1024
	struct tm_proc_event proc_queue[PROC_QUEUE_MAX]; /* read, not handed to the hook yet */
	unsigned nproc_queue, proc_queue_lost;
	void (*idle)(void *ctx);      /* tm_capture_set_idle */
	void *idle_ctx;
	int stats_fd;             /* bpf_enable_stats() while opts.bpf_stats, else -1 */
	struct tm_traced_memory *mem; /* mmap of the traced_memory array */
	size_t mem_len;
	uint64_t slots_used;      /* bit per traced_memory slot */
	struct tm_stack *stack_buf; /* TM_STACK_BYTES(max_frames): one `stacks` value */
	struct tm_capture_proc procs[TM_CAPTURE_MAX_PROCS];
	size_t nprocs;
	struct bpf_link *watch_links[3]; /* opts.watch: exec, fork, exit */
	void (*on_process)(void *ctx, const struct tm_proc_event *e);
	void *on_process_ctx;
};

struct tm_capture_proc *tm_capture_proc_find(struct tm_capture *c, pid_t pid);

/* capture_attach.c: attach every probe of p's target. */
void tm_capture_try_predict(struct tm_capture *c, struct tm_capture_proc *p);
/* capture_attach.c: take back the stub's pointers the target put back
 * (looked at every 0.2 s; counted in allocator_reset). */
void tm_capture_keep_stub(struct tm_capture_proc *p, uint64_t now_ns);
int tm_capture_attach_probes(struct tm_capture *c, struct tm_capture_proc *p, char *err,
			     size_t errlen);

/* The symbolized frames of stack id in p (most recent first; prologue frames
 * already skipped) into frames[max] (at least opts.max_frames), symbolizing
 * and caching it on first use. Returns 0, or -ENOENT when the stack is not
 * in the map, -ENOMEM. The strings stay valid until p is detached. */
int tm_capture_stack_frames(struct tm_capture *c, struct tm_capture_proc *p, uint64_t id,
			    struct tm_resolved_frame *frames, uint32_t max, uint32_t *nframe,
			    uint32_t *total_nframe);
/* A TM_EVENT_NEW_STACK: symbolize it now, while its code objects exist. */
void tm_capture_stack_announced(struct tm_capture *c, pid_t pid, uint64_t id);
void tm_stack_cache_release(struct tm_stack_cache *sc);
/* Start a pass over p: code objects and the symbolizer re-check memory once. */
void tm_capture_begin_pass(struct tm_capture_proc *p);

/* The process's counters, summed over CPUs. */
int tm_capture_read_counters(struct tm_capture *c, const struct tm_capture_proc *p,
			     uint64_t out[TM_CNT_MAX]);

/* Call the idle hook (between the long steps of an attach). */
void tm_capture_idle(struct tm_capture *c);

/* capture_gc.c: its state freed with the capture. */
void tm_capture_gc_free(struct tm_capture *c);

#endif
