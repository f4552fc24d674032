/* Every map of tmbpf's BPF programs, with the values only BPF uses (tmbpf.h
 * holds those shared with user space), and the load-time config. Included
 * once, by tmbpf.bpf.c, before the helpers (*.bpf.h by concern). */
#ifndef TMBPF_MAPS_BPF_H
#define TMBPF_MAPS_BPF_H

#include "tmbpf.h"

const volatile struct tm_bpf_config tm_cfg = {
	.walk_limit = TM_WALK_LIMIT_DEFAULT,
};

/* Bytes of one frame read at a time (f_read_size is at most this). */
#define FRAME_BUF 256
/* 3.11+ frames live in the thread's data stack, the older ones just below
 * the newer: one read of this many bytes usually covers many frames. */
#ifndef WINDOW
#define WINDOW 2048
#endif
/* Bytes of PyThreadState read at once (tstate_read: 0xf0 in 3.12/3.13,
 * 0x108 in 3.11, 0xa0 in 3.8-3.10). */
#define TS_SPAN_MAX 512
/* A frame in the thread's current data-stack chunk: one read of everything
 * from the chunk's start (or CHUNK_WINDOW bytes below the frame's end) up to
 * the frame's end, exactly the bytes of the frames still to walk. */
#ifndef CHUNK_WINDOW
#define CHUNK_WINDOW 8192
#endif

struct pending {
	__u64 sp;       /* user %rsp at the outer call's entry (points at its return address) */
	__u64 size;     /* requested bytes */
	__u64 old_addr; /* realloc: the block being resized */
	__u64 last_addr; /* the block this thread allocated last: _Py_NewReference of
			  * a fresh object needs no second stack walk */
	__u64 predicted; /* TM_PREDICT_CHECK: the block predicted at entry */
	__u64 ts;       /* 3.12+: this thread's PyThreadState as last found (tstate_view) */
	__u32 kind;     /* TM_PROBE_* */
	__u32 active;
};

/* Where the walk is; in the per-CPU scratch value, not on the stack: the
 * verifier does not track a map value's contents, so the bpf_loop callback's
 * states converge whatever the window arithmetic. */
struct walk {
	__u64 frame;
	__u64 hash;
	__u32 n;
	__u32 total;
	__u32 iter;       /* chain entries walked (shim frames too): at most walk_limit */
	__u32 max_frames;
	__u32 read_size;
	__u32 interp;
	__u32 err;
	__u16 f_back, f_code, f_lasti, f_owner;
	__u64 win_lo, win_hi; /* user addresses that s->window holds (interp only); the
			       * thread's current data-stack chunk is s->tv's */
};

/* The current thread's PyThreadState, as tstate_view() read it. */
struct tsview {
	__u64 ts;        /* 0: none */
	__u64 frame;     /* the value at ts_frame: the first frame, or 3.11/3.12 the cframe */
	__u64 interp;    /* at ts_interp, when the config has it */
	__u64 chunk, chunk_end; /* 3.11+: datastack_chunk, datastack_limit (0: none; frame
				 * windows never read below the chunk) */
};

struct scratch {
	__u64 clock_jiffies, clock_ns; /* alloc_time(): this CPU's clock read in that tick */
	struct tsview tv;
	__u8 tsbuf[TS_SPAN_MAX + 8];
	struct walk w;
	struct tm_stack stack;
	__u8 frame[FRAME_BUF + 8];
	__u8 window[CHUNK_WINDOW + FRAME_BUF + 8]; /* slack: a frame read at any offset stays inside */
	__u64 quarantine[TM_STUB_QUARANTINE * TM_STUB_QENTRY_SIZE / 8]; /* a stub's batch of frees */
};


/* pymalloc's pool header, 3.8-3.13 (Objects/obmalloc.c). */
struct pool_head {
	__u32 count;     /* blocks allocated (ref.count) */
	__u32 _pad;
	__u64 freeblock; /* the block the next allocation of this pool returns */
	__u64 nextpool;
	__u64 prevpool;
	__u32 arenaindex;
	__u32 szidx;     /* size class */
};

struct freelist_call {
	__u64 sp;    /* user %rsp at the outer call's entry; 0: none */
	__u64 ts_ns; /* its entry time */
};

/* Indexed by the slot in each probe's cookie: an array lookup, which the
 * verifier inlines, instead of hashing the tgid in every program run. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TM_MAX_PROCS);
	__type(key, __u32);
	__type(value, struct tm_proc_config);
} procs SEC(".maps");

/* Preallocated: --max-blocks elements (~100 bytes each) are reserved when
 * the map is created. Without preallocation every insert and delete went
 * through the kernel's BPF memory allocator, whose per-CPU caches spill and
 * refill in batches: 26 % of all CPU samples on the dictlist workload
 * (unit_free, htab_map_update_elem), and tmbpf 24 % slower there. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 20); /* user space sets --max-blocks */
	__type(key, struct tm_block_key);
	__type(value, struct tm_block);
} live_blocks SEC(".maps");

/* Value size TM_STACK_BYTES(max_frames), set by user space before load; no
 * BTF value type, since the kernel would insist it matches that size. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 16); /* user space sets --max-stacks */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(key_size, sizeof(__u64));
	__uint(value_size, sizeof(struct tm_stack));
} stacks SEC(".maps");

/* Per thread: task-local storage, found from the task without hashing and
 * freed with the thread. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pending);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TM_MAX_PROCS * TM_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TM_MAX_PROCS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct tm_traced_memory);
} traced_memory SEC(".maps");

/* Code objects whose image (TM_EVENT_CODE) was sent, by (pid, address,
 * identity): an image goes once, unless the address gets another object. */
struct code_key {
	__u32 pid, _pad;
	__u64 code, check;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 16);
	__type(key, struct code_key);
	__type(value, __u8);
} code_sent SEC(".maps");

/* Where a code image is built (too big for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tm_code_image);
} code_image SEC(".maps");

/* Sampled mode: PyTraceMalloc_Track's own sampling (tmbpf.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TM_MAX_PROCS);
	__type(key, __u32);
	__type(value, struct tm_sample_state);
} sample_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TM_SAMPLE_INTERVALS);
	__type(key, __u32);
	__type(value, __u64);
} sample_intervals SEC(".maps");

/* Traced processes by tgid (as current_pid_tgid names them) -> slot, kept
 * by user space: the process watch's tracepoints have no cookie. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TM_MAX_PROCS);
	__type(key, __u32);
	__type(value, __u32);
} traced_tgids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22); /* new stacks and the images of their code objects */
} events SEC(".maps");

/* Process events (exec, fork, exit: tmbpf --all) apart from the stacks and
 * images in `events`, so that user space can take them alone, at once,
 * while it is busy with something else (catching a process at start-up). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 18);
} proc_events SEC(".maps");


/* Per CPU, per traced process and size class: the pool that was first in
 * usedpools for it last time. Only a hint: pool_is_first() proves it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TM_MAX_PROCS * TM_PYMALLOC_CLASSES);
	__type(key, __u32);
	__type(value, __u64);
} pool_hints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 14);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct freelist_call);
} freelist_calls SEC(".maps");

#endif
