/* _Py_DebugOffsets (CPython 3.13+): the offsets a CPython publishes about
 * itself at the start of _PyRuntime (cookie "xdebugpy", then only uint64_t
 * fields, so field k sits at byte 8 * k). The struct is stable within a
 * minor version only: each minor inserts fields in the middle, so the index
 * of every field tmbpf reads is kept per minor (debug_offsets.c, from each
 * version's Include/internal/pycore_debug_offsets.h; pycore_runtime.h in
 * 3.13). A newer minor is read with the newest known table and accepted only
 * when every plausibility check below holds (the caller warns).
 *
 * Parsing only: the bytes come from the target's memory or its file image. */
#ifndef TM_TARGET_DEBUG_OFFSETS_H
#define TM_TARGET_DEBUG_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

/* Bytes to read from &_PyRuntime: the largest struct known (3.15: 888). */
#define TM_DEBUG_OFFSETS_MAX 1024

/* The fields tmbpf uses; TM_DO_NONE when the version has no such field. */
#define TM_DO_NONE UINT64_MAX

struct tm_debug_offsets {
	uint64_t version;           /* PY_VERSION_HEX */
	int minor;                  /* (version >> 16) & 0xff */
	int table_minor;            /* the minor whose field indexes were used */
	uint64_t free_threaded;
	uint64_t rt_size, rt_interpreters_head;
	uint64_t is_size, is_threads_head;
	uint64_t ts_size, ts_prev, ts_next, ts_interp, ts_current_frame, ts_base_frame;
	uint64_t ts_thread_id, ts_native_thread_id, ts_datastack_chunk, ts_status;
	uint64_t if_size, if_previous, if_executable, if_instr_ptr, if_localsplus, if_owner;
	uint64_t co_size, co_filename, co_name, co_qualname, co_linetable, co_firstlineno;
	uint64_t co_code_adaptive;
	uint64_t ob_size, ob_type;
	uint64_t tp_flags;
	uint64_t bytes_ob_size, bytes_ob_sval;
	uint64_t str_state, str_length, str_ascii_size, str_compact_size;
};

/* Decode buf (len bytes from &_PyRuntime). runtime_size is the size of the
 * _PyRuntime symbol (0: unknown), which runtime_state.size must equal.
 * Returns 0, or -EPROTO with the first failed check in why (no cookie,
 * free-threaded build, an offset outside its struct, ...), -EPROTONOSUPPORT
 * for a minor older than 13. *newer is set to 1 when the minor is newer than
 * every known table (parsed with the newest one). */
int tm_debug_offsets_parse(const void *buf, size_t len, uint64_t runtime_size,
			   struct tm_debug_offsets *o, int *newer, char *why, size_t whylen);

/* The newest minor whose layout is known. */
#define TM_DEBUG_OFFSETS_NEWEST 15

#endif
