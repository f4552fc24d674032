/* user/target/ -- reading a live CPython, never writing it.
 * May: read /proc/PID (maps, status, auxv, root), a process's memory
 * (process_vm_readv, /proc/PID/mem read-only), the interpreter's ELF, and
 * turn what it reads into what BPF needs (layouts.h, tm_target_open) and
 * into file:line (linetable.h, symbolize.h, pymalloc_predict.h's checks).
 * May not: write into a process, ptrace-stop it, use libbpf, print. */
/* A traced CPython process: where its interpreter lives and what BPF needs.
 * Filled by tm_target_open() from /proc/PID/maps, the ELF that defines
 * _PyRuntime (opened through /proc/PID/root or /proc/PID/map_files, so
 * containers and plain chroots work: proc_maps.h) and the process's memory.
 * Nothing is attached here. */
#ifndef TM_TARGET_TARGET_H
#define TM_TARGET_TARGET_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "placement/allocators.h"
#include "target/layouts.h"
#include "tmbpf.h"

/* Minor versions of CPython 3 with a known layout. A newer minor is traced
 * through its _Py_DebugOffsets when they pass every check (with a warning
 * through core/log.h), and refused with the failed check otherwise. */
#define TM_TARGET_MIN_MINOR 8
#define TM_TARGET_MAX_MINOR 15


struct tm_target {
	pid_t pid;
	char elf_path[PATH_MAX];  /* host path of the ELF defining _PyRuntime (proc_maps.h:
				   * /proc/PID/root/..., /proc/PID/map_files/... or the path) */
	uint64_t load_bias;       /* absolute address = ELF vaddr + load_bias */
	int major, minor, micro;
	char version[32];         /* "3.12.1" */
	int stripped;             /* no .symtab: static impl symbols unknown */
	uint64_t runtime_addr;    /* &_PyRuntime */
	struct tm_allocator alloc[TM_NDOMAINS];
	uint64_t track_fn, untrack_fn, finalize_fn; /* PyTraceMalloc_Track/Untrack, Py_FinalizeEx */
	struct tm_proc_config cfg; /* ready for the BPF `procs` map (max_frames left 0) */
	/* Added by the discovery half (appended; fields above are stable). */
	uint64_t code_type_addr;  /* &PyCode_Type: ob_type of every code object */
	uint64_t none_addr;       /* &_Py_NoneStruct (3.13 shim frames' f_executable) */
	uint64_t newref_fn;       /* _Py_NewReference (3.9+: out of line; 0 when absent) */
	/* 3.8 inlines _Py_NewReference: the functions that pop its free lists
	 * (tuples, frames, lists, dicts, floats, C functions, methods); 0 when absent. */
#define TM_FREELIST_FNS 7
	uint64_t freelist_fn[TM_FREELIST_FNS];
	int tls_modid;            /* 3.12+: libpython's TLS module id (0: unknown) */
	uint64_t tls_dtpoff;      /* 3.12+: _Py_tss_tstate's offset in libpython's TLS block */
	int tsd_offset_decoded;   /* 1: cfg.tsd_specific_offset read from the target's libc code */
	char tstate_note[128];    /* how the tstate routes were found, for -v */
	pid_t stopped_tid;        /* set by the caller: a thread of the target that it holds in
				   * a ptrace stop (tmbpf run), 0: none */
	/* Added with 3.14/3.15 and chroots (appended). */
	char map_path[PATH_MAX];  /* the same ELF as the target's maps name it (messages) */
	struct tm_layout layout;  /* the version's offsets: the 3.8-3.12 table, or 3.13+ from
				   * the target's _Py_DebugOffsets (layouts.h) */
	int newer;                /* 1: minor above TM_TARGET_MAX_MINOR, traced by its offsets */
	int debug_build;          /* 1: --with-pydebug (the default allocators are the debug hooks) */
};

/* What each field of t->cfg (struct tm_proc_config) means once tm_target_open
 * returned 0. All addresses are absolute in the target; fsbase is the
 * thread's %fs base (task->thread.fsbase), which on glibc x86-64 equals
 * pthread_self() and the TCB address.
 *
 *   py_version          (3 << 8) | minor.
 *   tstate_routes       TM_TSTATE_* bits; BPF tries TLS, then GILSTATE, then
 *                       TLS_GILSTATE, then TSD, and takes the first non-NULL tstate:
 *     TM_TSTATE_TLS      (3.12+, only when the static TLS offset was measured)
 *                        tstate = *(u64 *)(fsbase + tls_tstate_offset). This is
 *                        _Py_tss_tstate: NULL while the thread runs without the
 *                        GIL (e.g. raw allocations during I/O), then fall through.
 *     TM_TSTATE_GILSTATE (<=3.11) tstate = *(u64 *)tstate_current_addr, the GIL
 *                        holder; valid for this thread only if
 *                        *(u64 *)(tstate + ts_thread_id) == fsbase.
 *     TM_TSTATE_TLS_GILSTATE (3.15+, when its static TLS offset is known)
 *                        tstate = *(u64 *)(fsbase + tls_gilstate_offset): the
 *                        thread state last bound to this thread (what
 *                        autoTSSkey held up to 3.14); tracemalloc 3.15 uses it
 *                        for a thread that runs without the GIL.
 *     TM_TSTATE_TSD      (<=3.14) key = *(u32 *)tss_key_addr (autoTSSkey._key, set
 *                        at interpreter start, so read it at every hit);
 *                        usable only when key < 32 (glibc's first block);
 *                        tstate = *(u64 *)(fsbase + tsd_specific_offset + 16 * key + 8).
 *                        This is PyGILState_GetThisThreadState(), the tstate
 *                        tracemalloc itself uses in 3.8-3.11.
 *   tstate_current_addr &_PyRuntime.gilstate.tstate_current (<=3.11), else 0.
 *   tss_key_addr        &autoTSSkey._key (the int at Py_tss_t + 4).
 *   tls_tstate_offset   3.12+: signed, usually small negative (static TLS
 *                        block below the TCB); 0 when TM_TSTATE_TLS is not set.
 *   tsd_specific_offset offsetof(struct pthread, specific_1stblock): decoded
 *                        from the target's libc pthread_getspecific when
 *                        possible (tsd_offset_decoded), else glibc 2.36's 0x310.
 *   frame_kind          TM_FRAMES_OBJECT (<=3.10) or TM_FRAMES_INTERP (3.11+).
 *   ts_thread_id        offset of PyThreadState.thread_id (pthread_t, == fsbase).
 *   ts_frame            offset in PyThreadState of the first frame pointer:
 *                        <=3.10 `frame` (PyFrameObject *); 3.11/3.12 `cframe`
 *                        (_PyCFrame *, then read cframe + cframe_current_frame
 *                        to get the _PyInterpreterFrame *); 3.13 `current_frame`
 *                        (_PyInterpreterFrame *).
 *   cframe_current_frame 3.11: 0x8, 3.12: 0x0; TM_NO_OFFSET otherwise.
 *   f_back              offset of the next-older frame pointer (f_back / previous).
 *   f_code              offset of the code object pointer (f_code / f_executable).
 *   f_lasti             <=3.10: offset of int f_lasti (store it zero-extended as
 *                        u32; the symbolizer sign-extends it); 3.11+: offset of
 *                        the u64 instruction pointer (prev_instr / instr_ptr),
 *                        stored as is.
 *   f_owner             3.11+: offset of the char owner; skip frames with
 *                        owner >= TM_OWNER_CSTACK (3.12+ shim frames, 3.14+
 *                        interpreter frames, 3.15's base frame). Frames
 *                        still in their prologue are left to the symbolizer
 *                        (tm_symbolize_frame returns 1 for them).
 *   f_read_size         bytes to read per frame to cover all offsets above
 *                        (< 256: BPF masks it).
 *   ts_status           3.12+: offset of PyThreadState._status (bit 4 active,
 *                        bit 2 unbound): BPF keeps a thread's thread state while
 *                        it stays active and bound; TM_NO_OFFSET otherwise.
 *   pid                 set by the capture session (the procs slot's owner).
 *                        f_code's word is masked with ~TM_CODE_TAG_BITS (3.14+
 *                        _PyStackRef tags; harmless before).
 *   tls_gilstate_offset 3.15+: _Py_tss_gilstate's static TLS offset.
 * A NULL frame pointer ends the walk; a NULL code pointer is a frame that
 * cannot be symbolized (BPF may skip or keep it as code 0 -> "<unknown>"). */

/* Inspect PID. On failure returns a negative errno and one line in err, e.g.
 * "PID 123 is not a CPython process", "CPython 3.7 is not supported",
 * "no process with PID 123", "not permitted to read PID 123: run as root". */
int tm_target_open(pid_t pid, struct tm_target *t, char *err, size_t errlen);

/* Re-read the live allocator pointers (they change when someone hooks them). */
int tm_target_read_allocators(struct tm_target *t);

/* Map an absolute address in the target to an offset in t->elf_path, as
 * uprobes want it. Returns 0 or -ENOENT when no executable segment holds it. */
int tm_target_file_offset(const struct tm_target *t, uint64_t addr, uint64_t *offset);

/* Read len bytes of the target's memory (process_vm_readv, else
 * /proc/PID/mem). Returns 0 or negative errno (-EFAULT: not mapped). */
int tm_target_read(pid_t pid, uint64_t addr, void *buf, size_t len);

#endif
