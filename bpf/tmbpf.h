/* The one ABI shared by bpf/tmbpf.bpf.c and user space.
 * Fixed-width fields, explicit padding, no pointers, no bool.
 * User space _Static_asserts the sizes (user/probe/abi_check.c). */
#ifndef TMBPF_ABI_H
#define TMBPF_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Processes traced at once by one session (procs, traced_memory, counters). */
#define TM_MAX_PROCS 64

/* Hard cap on --frames; stacks are fixed-size map values. */
#define TM_BPF_MAX_FRAMES 128

/* How BPF finds the current thread's PyThreadState (bits, tried in this order). */
#define TM_TSTATE_TLS 0x1      /* 3.12+: *(fsbase + tls_tstate_offset) (_Py_tss_tstate) */
#define TM_TSTATE_GILSTATE 0x2 /* <=3.11: *tstate_current_addr, valid if ->thread_id == fsbase */
#define TM_TSTATE_TSD 0x4      /* any: glibc TSD slot of autoTSSkey: *(fsbase + tsd_offset + 16*key + 8) */
#define TM_TSTATE_TLS_GILSTATE 0x8 /* 3.15+: *(fsbase + tls_gilstate_offset) (_Py_tss_gilstate, the
				    * autoTSSkey value's successor); tried after GILSTATE, before TSD */

/* Frame chain layout. */
#define TM_FRAMES_OBJECT 0   /* <=3.10: PyFrameObject list via f_back; lasti is f_lasti (int) */
#define TM_FRAMES_INTERP 1   /* 3.11+: _PyInterpreterFrame list via previous; lasti is the instr pointer */

/* offsetof(PyTypeObject, tp_flags), 3.8-3.13 (x86-64, release builds). */
#define TM_TP_FLAGS 0xa8

/* Frames with an owner at or above this are not Python frames and are
 * skipped, as tracemalloc skips them (_PyFrame_IsIncomplete): the C-stack
 * shim (3.12/3.13: CSTACK 3), 3.14's INTERPRETER 3 and CSTACK 4, and 3.15's
 * INTERPRETER 3, which also marks the base-frame sentinel of every thread. */
#define TM_OWNER_CSTACK 3

/* Low bits of a frame's code word that are tags, cleared by BPF and the
 * symbolizer: 3.14+ f_executable is a _PyStackRef (Py_TAG_BITS 3, e.g.
 * None | 1 in interpreter frames); before, a plain pointer whose low bits
 * are 0 (objects are 16-byte aligned). */
#define TM_CODE_TAG_BITS 3ULL

/* Per traced process: everything BPF needs, computed by user space at attach
 * (user/probe/). At index mem_slot of the `procs` array. Offsets are byte offsets;
 * TM_NO_OFFSET marks a field that this version does not have. */
#define TM_NO_OFFSET 0xffffu

struct tm_proc_config {
	__u32 py_version;       /* (major << 8) | minor, e.g. 0x030c */
	__u32 tstate_routes;    /* TM_TSTATE_* bits */
	__u64 tstate_current_addr; /* absolute address of _PyRuntime.gilstate.tstate_current */
	__u64 tss_key_addr;        /* absolute address of the int key in autoTSSkey (Py_tss_t._key) */
	__s64 tls_tstate_offset;   /* _Py_tss_tstate == fsbase + this (static TLS), when TM_TSTATE_TLS */
	__u32 tsd_specific_offset; /* glibc: offsetof(struct pthread, specific_1stblock) = 0x310 */
	__u32 frame_kind;          /* TM_FRAMES_* */
	/* PyThreadState */
	__u16 ts_thread_id;        /* pthread_t thread_id */
	__u16 ts_frame;            /* <=3.10 frame, 3.11/3.12 cframe, 3.13 current_frame */
	__u16 cframe_current_frame; /* 3.11/3.12: offset in _PyCFrame; else TM_NO_OFFSET */
	/* frames */
	__u16 f_back;              /* f_back / previous */
	__u16 f_code;              /* f_code / f_executable */
	__u16 f_lasti;             /* f_lasti (int) / prev_instr / instr_ptr */
	__u16 f_owner;             /* 3.11+: owner (char); else TM_NO_OFFSET */
	__u16 f_read_size;         /* bytes to read per frame: covers all fields above; < 256 */
	__u32 max_frames;          /* frames kept per stack, 1..TM_BPF_MAX_FRAMES */
	__u32 finalizing;          /* set by BPF when Py_FinalizeEx is entered: maps freeze */
	__u32 mem_slot;            /* index in `traced_memory`, set by the capture session */
	__u16 co_filename;         /* PyCodeObject.co_filename, co_firstlineno: the identity */
	__u16 co_firstlineno;      /*   check of new stacks (tm_frame_raw.check); capture sets them */
	/* _Py_NewReference(op): the block of op starts presize bytes before it;
	 * presize = 16 if tp_flags & newref_gc_mask, plus 16 if tp_flags &
	 * newref_preheader_mask (CPython's _PyType_PreHeaderSize). */
	__u32 newref_gc_mask;
	__u32 newref_preheader_mask;
	__u32 stop_on_finalize;    /* tmbpf run: stop the finalizing thread at Py_FinalizeEx
				    * (finalize_signal, default SIGSTOP), so the snapshot is
				    * symbolized before module teardown frees the code objects;
				    * user space resumes it right after */
	__u32 predict;             /* TM_PREDICT_* bits: pymalloc results predicted at entry */
	/* pymalloc's usedpools[] of the main interpreter (absolute), 0: no
	 * prediction. 3.12+: only for threads whose tstate->interp (at
	 * ts_interp) is main_interp (a subinterpreter may own its obmalloc). */
	__u64 usedpools;
	__u64 main_interp;
	__u16 ts_interp;           /* PyThreadState.interp; TM_NO_OFFSET: not checked (<=3.11) */
	__u16 ts_datastack_chunk;  /* 3.11+: PyThreadState.datastack_chunk (the current data-stack
				    * chunk: frame windows never read below it); else TM_NO_OFFSET */
	__u32 pid;                 /* the tgid this slot traces; 0: slot unused */
	__u16 ts_status;           /* 3.12+: PyThreadState._status (TM_TS_ACTIVE: current in its
				    * thread); else TM_NO_OFFSET: no per-thread tstate cache */
	__u16 _pad16[3];
	/* Appended: */
	__u64 sample_bytes;        /* sampled mode: PyTraceMalloc_Track is sampled here like the
				    * stub samples allocations (mean interval); 0: full */
	/* What a code object image (TM_EVENT_CODE) copies: offsets of
	 * co_lines (line table) and <=3.10 co_code in the code object, of the
	 * data of an ASCII / other compact str. */
	__u16 co_lines, co_code, str_ascii_data, str_compact_data;
	/* Appended for 3.15 and tmbpf run's finalization stop (issue 12). */
	__s64 tls_gilstate_offset; /* 3.15+: _Py_tss_gilstate == *(fsbase + this), when
				    * TM_TSTATE_TLS_GILSTATE */
	__u32 finalize_signal;     /* with stop_on_finalize: the signal finalize_enter sends the
				    * finalizing thread; tmbpf run keeps that thread ptrace-attached
				    * and uses SIGURG (default action: ignore), so the thread stops
				    * for the tracer, and runs on, signal ignored, if tmbpf dies */
	__u32 _pad_end;
};

/* Sampled mode, per process slot: the bytes until the next sample of
 * PyTraceMalloc_Track and where the next interval comes from (the map
 * `sample_intervals`, filled with exponential draws by user space). */
#define TM_SAMPLE_INTERVALS 1024
struct tm_sample_state {
	__s64 remaining;
	__u64 next;
};

/* pymalloc size classes (512 / 16 bytes): pool hints per process (pool_hints). */
#define TM_PYMALLOC_CLASSES 32

/* PyThreadState._status (3.12, 3.13): active (bit 4) is set while the
 * thread state is its thread's current one and cleared when it is swapped
 * out (the GIL released too); unbound (bit 2) is set when it is deleted
 * (the deleted current one keeps active set). Current: active, not unbound. */
#define TM_TS_ACTIVE 0x10u
#define TM_TS_UNBOUND 0x4u

/* Predicting pymalloc (session uprobes, kernel 6.13+): with the GIL held,
 * pymalloc_alloc(size) returns usedpools[2 * ((size - 1) >> 4)]->freeblock
 * whenever that pool is not the empty list head (pool != pool->nextpool), so
 * the entry probe can record the block and skip the return probe. */
#define TM_PREDICT_ON 1u
#define TM_PREDICT_CHECK 2u /* keep the return probe and compare (tests): predict_wrong */

/* One captured frame: code object address and the raw instruction position
 * (f_lasti for TM_FRAMES_OBJECT, the instruction pointer for TM_FRAMES_INTERP).
 * User space turns both into (filename, lineno). check identifies the code
 * object as it was when the stack was first seen: TM_CODE_CHECK(its
 * co_filename pointer, co_firstlineno). A code object freed before user space
 * symbolizes the stack (a module's code object dies when the module finishes)
 * and its address reused by another one is detected, not misattributed. */
struct tm_frame_raw {
	__u64 code;
	__u64 lasti;
	__u64 check;
};
#define TM_CODE_CHECK(filename_ptr, firstlineno)                                         \
	(((__u64)(filename_ptr) & 0xffffffffffffULL) | ((__u64)((firstlineno) & 0xffff) << 48))

/* Interned stacks: `stacks` maps a 64-bit hash of the frames (never 0) to
 * this. The map's value size is TM_STACK_BYTES(max_frames), set by user space
 * before load, so only the frames of --frames take room; BPF builds the
 * stack in a full-size per-CPU scratch copy. */
struct tm_stack {
	__u32 nframe;        /* frames stored (0: no Python frame: tracemalloc's <unknown>:0) */
	__u32 total_nframe;  /* Python frames on the thread's stack, up to walk_limit */
	struct tm_frame_raw frames[TM_BPF_MAX_FRAMES]; /* most recent first */
};
#define TM_STACK_BYTES(nframes) (8u + 24u * (nframes))

/* Frames counted at most per stack walk (total_nframe); the default recursion
 * limit is 1000. Load-time knob, see struct tm_bpf_config. */
#define TM_WALK_LIMIT_DEFAULT 1024u

/* Load-time knobs (the skeleton's rodata `tm_cfg`). */
struct tm_bpf_config {
	__u32 walk_limit;   /* 1..65535: frames counted per stack (total_nframe bound) */
	__u32 _pad;
	/* tmbpf's own PID namespace (st_dev and st_ino of /proc/self/ns/pid)
	 * when it is not the initial one: every pid BPF compares or records is
	 * then that namespace's (bpf_get_ns_current_pid_tgid), as tmbpf sees
	 * them in its /proc; 0: the initial namespace, bpf_get_current_pid_tgid. */
	__u64 pidns_dev, pidns_ino;
};

/* What one uprobe is, carried in its BPF cookie: the probe kind and which
 * register holds each argument at the probe point (x86-64 ModRM numbers,
 * rax 0 .. r15 15; the probe point may sit after `mov %rsi,%rdi`).
 * Allocator implementations take ctx first: malloc size = arg1, calloc nelem
 * = arg1 elsize = arg2, realloc ptr = arg1 size = arg2, free ptr = arg1;
 * PyTraceMalloc_Track domain = arg0 ptr = arg1 size = arg2. */
enum tm_probe_kind {
	TM_PROBE_MALLOC = 1,
	TM_PROBE_CALLOC,
	TM_PROBE_REALLOC,
	TM_PROBE_FREE,
	TM_PROBE_TRACK,
	TM_PROBE_UNTRACK,
	TM_PROBE_FINALIZE,
	TM_PROBE_NEWREF,   /* _Py_NewReference(op): op = arg0 */
	TM_PROBE_FREELIST, /* 3.8: a function that may pop a free list; entry + return (the object) */
	TM_PROBE_STUB,     /* a report point of the stub: the event in TM_COOKIE_STUB_EVENT */
};
#include "tmbpf_stub.h"
#define TM_COOKIE_STUB(event) ((__u64)TM_PROBE_STUB | ((__u64)(event) << 8))
#define TM_COOKIE_STUB_EVENT(c) ((__u32)(((c) >> 8) & 0xff))
#define TM_COOKIE(kind, r0, r1, r2)                                                   \
	((__u64)(kind) | ((__u64)(r0) << 8) | ((__u64)(r1) << 12) | ((__u64)(r2) << 16))
#define TM_COOKIE_KIND(c) ((__u32)((c) & 0xff))
/* The probed function is pymalloc's malloc or calloc (session programs). */
#define TM_COOKIE_PYMALLOC (1ull << 24)
/* The traced process's slot in `procs` (its mem_slot), added to every cookie
 * at attach: every link is for one process, so BPF finds the process's
 * config by an array index instead of hashing its tgid. */
#define TM_COOKIE_WITH_SLOT(slot) ((__u64)(slot) << 32)
#define TM_COOKIE_SLOT(c) ((__u32)((c) >> 32) & (TM_MAX_PROCS - 1))
#define TM_COOKIE_REG(c, i) ((__u32)(((c) >> (8 + 4 * (i))) & 0xf))

/* Traced memory of one process (slot cfg.mem_slot of the mmap-able array
 * `traced_memory`, so user space resets the peak in place), like
 * tracemalloc.get_traced_memory(). current_bytes is signed arithmetic on a
 * u64: frees of blocks never counted cannot occur (only blocks found in
 * live_blocks are subtracted). Peak is updated without a lock: it may miss a
 * concurrent increase by another thread of the same process. */
struct tm_traced_memory {
	__u64 current_bytes;
	__u64 peak_bytes;
	__u64 _pad[2];     /* live blocks: counters allocs - frees - missed_free (no atomic) */
};

/* Live blocks: (pid, domain, address) -> block. Domain 0 for the PyMem/PyObject
 * allocators (as tracemalloc), the caller's domain for PyTraceMalloc_Track. */
struct tm_block_key {
	__u32 pid;
	__u32 domain;
	__u64 addr;
};

struct tm_block {
	__u64 size_bytes;
	__u64 stack_id;   /* key in `stacks`; 0: stack not recorded (counted as a drop) */
	__u64 alloc_ns;   /* bpf_ktime_get_ns(); user space converts to wall time */
	__u32 tid;
	__u32 _pad;
};

/* Drop and event counters (per-CPU array `counters`), per process: slot
 * cfg.mem_slot * TM_CNT_MAX + counter. Names, meanings and remedies:
 * tmbpf_counters.h, the one table of them. */
#include "tmbpf_counters.h"

enum tm_counter {
#define TM_COUNTER_ENUM(e, name, loss, what, remedy) TM_CNT_##e,
	TM_COUNTERS(TM_COUNTER_ENUM)
#undef TM_COUNTER_ENUM
	TM_CNT_MAX,
};

/* Ring buffer events to user space. */
#define TM_EVENT_FINALIZING 1 /* the process entered Py_FinalizeEx; its maps are frozen */
#define TM_EVENT_CODE 3       /* struct tm_code_image: a code object of a new stack, the first
			       * time it is seen with this identity */
/* Process watch (tmbpf --all): struct tm_proc_event. */
#define TM_EVENT_EXEC 4       /* pid exec'd name (any process: user space picks the CPythons) */
#define TM_EVENT_FORK 5       /* traced pid forked child (a process, not a thread) */
#define TM_EVENT_EXIT 6       /* traced pid's last thread exits */
#define TM_EVENT_NEW_STACK 2  /* stack_id was interned: symbolize it while its code objects
			       * surely exist (a module's code object is freed when the module
			       * finishes, before Py_FinalizeEx). Wakes the consumer. */

/* The bytes user space needs to symbolize a code object, copied by BPF when
 * a new stack first names it (with that identity): the code object dies
 * when its module has run, often before user space reads it (a fast target
 * leaves no time). data = the code object's first head_len bytes, <=3.10
 * its co_code bytes header (cobytes_len bytes at cobytes_addr, always
 * TM_CODE_IMAGE_COBYTES of room), the str object of co_filename (header
 * and characters, str_len bytes at str_addr) and its line table's bytes
 * object (lines_len at lines_addr), in that order. A length 0: not copied
 * (user space reads memory instead). */
#define TM_CODE_IMAGE_HEAD 256
#define TM_CODE_IMAGE_COBYTES 24
#define TM_CODE_IMAGE_STR 1024   /* less than: a longer name is not copied */
#define TM_CODE_IMAGE_STR_MIN 0x30 /* at least: a str's header as user space reads it */
#define TM_CODE_IMAGE_LINES 4096 /* less than */
struct tm_code_image {
	__u32 type;            /* TM_EVENT_CODE */
	__u32 pid;
	__u64 code, check;     /* address, TM_CODE_CHECK identity */
	__u64 str_addr, lines_addr, cobytes_addr;
	__u16 head_len, str_len, lines_len, cobytes_len;
	__u8 data[6144]; /* head + cobytes + str (< 1024) + lines (< 4096), with slack for bounds */
};

struct tm_event {
	__u32 type;
	__u32 pid;
	__u64 ts_ns;
	__u64 stack_id;
};

#define TM_PROC_EVENT_NAME 128
struct tm_proc_event {
	__u32 type;            /* TM_EVENT_EXEC, _FORK, _EXIT */
	__u32 pid;             /* in tmbpf's PID namespace */
	__u64 ts_ns;
	__u32 child;           /* FORK: the child, in the initial namespace (in a PID
				* namespace of its own tmbpf finds it in /proc instead) */
	__u32 _pad;
	char name[TM_PROC_EVENT_NAME]; /* EXEC: the file exec'd */
};

#endif
