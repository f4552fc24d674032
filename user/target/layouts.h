/* CPython layouts (x86-64, GIL builds). 3.8-3.12: one table per minor
 * version, every offset checked with offsetof() against that version's
 * internal headers (docs/cpython-layouts.md). 3.13+: built from the
 * target's own _Py_DebugOffsets (debug_offsets.h), completed by a small
 * per-minor table of what those do not carry; the hard-coded 3.13 table is
 * kept for the tests' cross-check. TM_NO_OFFSET (from tmbpf.h) marks a
 * field the version does not have. */
#ifndef TM_TARGET_LAYOUTS_H
#define TM_TARGET_LAYOUTS_H

#include <stddef.h>
#include <stdint.h>

#include "target/debug_offsets.h"
#include "tmbpf.h"

enum tm_linetable_kind {
	TM_LINES_LNOTAB = 0,   /* 3.8, 3.9: co_lnotab (byte deltas, lasti in bytes) */
	TM_LINES_LINETABLE310, /* 3.10: co_linetable (sdelta bytes, ldelta, -128 = none) */
	TM_LINES_LOCATIONS,    /* 3.11+: location table (code units) */
};

struct tm_layout {
	int minor;
	/* _PyRuntimeState */
	uint32_t rt_interpreters_head;
	uint32_t rt_tstate_current;      /* gilstate.tstate_current (<=3.11) */
	uint32_t rt_autotss_key;         /* gilstate.autoTSSkey / autoTSSkey (Py_tss_t) */
	uint32_t rt_alloc_raw, rt_alloc_mem, rt_alloc_obj; /* allocators.standard (3.12+) */
	/* PyInterpreterState, PyThreadState */
	uint32_t is_threads_head;
	uint32_t ts_next;
	uint32_t ts_thread_id;
	uint32_t ts_native_thread_id;
	uint32_t ts_frame;               /* frame / cframe / current_frame */
	uint32_t cframe_current_frame;
	uint32_t ts_datastack_chunk;     /* 3.11+: _PyStackChunk *datastack_chunk */
	uint32_t ts_status;              /* 3.12+: _status bit-field word (bit 4: active) */
	/* frames */
	uint32_t frame_kind;             /* TM_FRAMES_* */
	uint32_t f_back, f_code, f_lasti, f_owner, f_read_size;
	/* PyCodeObject */
	uint32_t co_firstlineno, co_filename, co_name, co_lines;
	uint32_t co_qualname;            /* 3.11+; TM_NO_OFFSET before */
	uint32_t co_firsttraceable, co_code_adaptive;
	uint32_t co_code;                /* <=3.10: the co_code bytes object (its size
					  * bounds f_lasti); 3.11+ TM_NO_OFFSET: the
					  * code is inline, Py_SIZE(code) code units */
	enum tm_linetable_kind lines_kind;
	/* str */
	uint32_t ascii_data;             /* sizeof(PyASCIIObject) */
	uint32_t compact_data;           /* sizeof(PyCompactUnicodeObject) */
	/* Added with 3.14/3.15 (zero in the <=3.12 tables where not stated). */
	uint32_t ts_interp;              /* PyThreadState.interp (0x10 in every version) */
	uint32_t f_code_tags;            /* low bits of the frame's code word that are tags
					  * (3.14+: f_executable is a _PyStackRef, tag bits 3) */
	uint32_t from_debug_offsets;     /* 1: built by tm_layout_from_debug_offsets */
};

/* Common to all versions. */
#define TM_PY_OB_TYPE 0x8
#define TM_PY_VAR_SIZE 0x10         /* PyVarObject.ob_size */
#define TM_PY_BYTES_SIZE 0x10
#define TM_PY_BYTES_DATA 0x20
#define TM_PY_STR_LENGTH 0x10
#define TM_PY_STR_STATE 0x20
#define TM_PY_TSS_KEY 0x4          /* Py_tss_t._key (int) */
#define TM_PY_ALLOCATOR_SIZE 0x28  /* PyMemAllocatorEx */

/* Frame owners (3.11+). */
#define TM_OWNER_THREAD 0
#define TM_OWNER_GENERATOR 1

/* The hard-coded layout of 3.minor (3.8-3.13), or NULL. For 3.13 use
 * tm_layout_from_debug_offsets: its table stays for the tests' cross-check. */
const struct tm_layout *tm_layout_get(int minor);

/* 3.13+: the layout from the target's debug offsets o, plus the per-minor
 * facts they do not carry (layouts.c: allocator structs in _PyRuntime,
 * autoTSSkey, _co_firsttraceable, stack-reference tags, str data). A minor
 * newer than every table takes the newest table's facts: the caller must
 * confirm the allocators from code and warn. Returns 0, or -EPROTO with why
 * when a field tmbpf needs is missing or does not fit the BPF config. */
int tm_layout_from_debug_offsets(const struct tm_debug_offsets *o, struct tm_layout *l,
				 char *why, size_t whylen);

#endif
