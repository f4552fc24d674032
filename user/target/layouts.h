/* Per-minor-version CPython layouts (x86-64, release, GIL build), 3.8-3.13.
 * Every offset was checked with offsetof() against that version's internal
 * headers (docs/cpython-layouts.md); 3.13 is also cross-checked at attach
 * against the target's own _Py_DebugOffsets. TM_NO_OFFSET (from tmbpf.h)
 * marks a field the version does not have. */
#ifndef TM_TARGET_LAYOUTS_H
#define TM_TARGET_LAYOUTS_H

#include <stddef.h>
#include <stdint.h>

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

/* The layout of 3.minor, or NULL when not supported. */
const struct tm_layout *tm_layout_get(int minor);

/* Size of _Py_DebugOffsets as tmbpf knows it (3.13). */
#define TM_DEBUG_OFFSETS_SIZE 584

/* Compare a 3.13+ layout with the target's _Py_DebugOffsets (the first
 * bytes of _PyRuntime). Returns 0 when they agree, -EPROTO with the first
 * mismatching field named in what otherwise. */
int tm_layout_check_debug_offsets(const struct tm_layout *l, const void *buf, size_t len,
				  char *what, size_t whatlen);

#endif
