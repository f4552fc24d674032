/* Offset tables, one per minor version. Values from offsetof() against each
 * pyenv build's internal headers (see docs/cpython-layouts.md for how). */
#include "target/layouts.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define NO TM_NO_OFFSET

static const struct tm_layout layouts[] = {
	{
		.minor = 8,
		.rt_interpreters_head = 0x20, .rt_tstate_current = 0x558, .rt_autotss_key = 0x570,
		.rt_alloc_raw = NO, .rt_alloc_mem = NO, .rt_alloc_obj = NO,
		.is_threads_head = 0x8, .ts_next = 0x8, .ts_thread_id = 0xb0,
		.ts_native_thread_id = NO, .ts_frame = 0x18, .cframe_current_frame = NO,
		.ts_datastack_chunk = NO, .ts_status = NO,
		.frame_kind = TM_FRAMES_OBJECT,
		.f_back = 0x18, .f_code = 0x20, .f_lasti = 0x68, .f_owner = NO, .f_read_size = 0x6c,
		.co_firstlineno = 0x28, .co_filename = 0x68, .co_name = 0x70, .co_lines = 0x78,
		.co_qualname = NO,
		.co_firsttraceable = NO, .co_code_adaptive = NO, .co_code = 0x30,
		.lines_kind = TM_LINES_LNOTAB,
		.ascii_data = 0x30, .compact_data = 0x48,
	},
	{
		.minor = 9,
		.rt_interpreters_head = 0x20, .rt_tstate_current = 0x238, .rt_autotss_key = 0x248,
		.rt_alloc_raw = NO, .rt_alloc_mem = NO, .rt_alloc_obj = NO,
		.is_threads_head = 0x8, .ts_next = 0x8, .ts_thread_id = 0xb0,
		.ts_native_thread_id = NO, .ts_frame = 0x18, .cframe_current_frame = NO,
		.ts_datastack_chunk = NO, .ts_status = NO,
		.frame_kind = TM_FRAMES_OBJECT,
		.f_back = 0x18, .f_code = 0x20, .f_lasti = 0x68, .f_owner = NO, .f_read_size = 0x6c,
		.co_firstlineno = 0x28, .co_filename = 0x68, .co_name = 0x70, .co_lines = 0x78,
		.co_qualname = NO,
		.co_firsttraceable = NO, .co_code_adaptive = NO, .co_code = 0x30,
		.lines_kind = TM_LINES_LNOTAB,
		.ascii_data = 0x30, .compact_data = 0x48,
	},
	{
		.minor = 10,
		.rt_interpreters_head = 0x20, .rt_tstate_current = 0x238, .rt_autotss_key = 0x248,
		.rt_alloc_raw = NO, .rt_alloc_mem = NO, .rt_alloc_obj = NO,
		.is_threads_head = 0x8, .ts_next = 0x8, .ts_thread_id = 0xb0,
		.ts_native_thread_id = NO, .ts_frame = 0x18, .cframe_current_frame = NO,
		.ts_datastack_chunk = NO, .ts_status = NO,
		.frame_kind = TM_FRAMES_OBJECT,
		.f_back = 0x18, .f_code = 0x20, .f_lasti = 0x60, .f_owner = NO, .f_read_size = 0x64,
		.co_firstlineno = 0x28, .co_filename = 0x68, .co_name = 0x70, .co_lines = 0x78,
		.co_qualname = NO,
		.co_firsttraceable = NO, .co_code_adaptive = NO, .co_code = 0x30,
		.lines_kind = TM_LINES_LINETABLE310,
		.ascii_data = 0x30, .compact_data = 0x48,
	},
	{
		.minor = 11,
		.rt_interpreters_head = 0x28, .rt_tstate_current = 0x240, .rt_autotss_key = 0x250,
		.rt_alloc_raw = NO, .rt_alloc_mem = NO, .rt_alloc_obj = NO,
		.is_threads_head = 0x10, .ts_next = 0x8, .ts_thread_id = 0x98,
		.ts_native_thread_id = 0xa0, .ts_frame = 0x38, .cframe_current_frame = 0x8,
		.ts_datastack_chunk = 0x128, .ts_status = NO,
		.frame_kind = TM_FRAMES_INTERP,
		.f_back = 0x30, .f_code = 0x20, .f_lasti = 0x38, .f_owner = 0x45, .f_read_size = 0x48,
		.co_firstlineno = 0x48, .co_filename = 0x70, .co_name = 0x78, .co_lines = 0x88,
		.co_qualname = 0x80,
		.co_firsttraceable = 0xa8, .co_code_adaptive = 0xb8, .co_code = NO,
		.lines_kind = TM_LINES_LOCATIONS,
		.ascii_data = 0x30, .compact_data = 0x48,
	},
	{
		.minor = 12,
		.rt_interpreters_head = 0x28, .rt_tstate_current = NO, .rt_autotss_key = 0x608,
		.rt_alloc_raw = 0x60, .rt_alloc_mem = 0x88, .rt_alloc_obj = 0xb0,
		.is_threads_head = 0x48, .ts_next = 0x8, .ts_thread_id = 0x88,
		.ts_native_thread_id = 0x90, .ts_frame = 0x38, .cframe_current_frame = 0x0,
		.ts_datastack_chunk = 0xe8, .ts_status = 0x18,
		.frame_kind = TM_FRAMES_INTERP,
		.f_back = 0x8, .f_code = 0x0, .f_lasti = 0x38, .f_owner = 0x46, .f_read_size = 0x48,
		.co_firstlineno = 0x44, .co_filename = 0x70, .co_name = 0x78, .co_lines = 0x88,
		.co_qualname = 0x80,
		.co_firsttraceable = 0xb0, .co_code_adaptive = 0xc0, .co_code = NO,
		.lines_kind = TM_LINES_LOCATIONS,
		.ascii_data = 0x28, .compact_data = 0x38,
	},
	{
		.minor = 13,
		.rt_interpreters_head = 0x278, .rt_tstate_current = NO, .rt_autotss_key = 0x870,
		.rt_alloc_raw = 0x2c0, .rt_alloc_mem = 0x2e8, .rt_alloc_obj = 0x310,
		.is_threads_head = 0x1cb0, .ts_next = 0x8, .ts_thread_id = 0x98,
		.ts_native_thread_id = 0xa0, .ts_frame = 0x48, .cframe_current_frame = NO,
		.ts_datastack_chunk = 0xe8, .ts_status = 0x20,
		.frame_kind = TM_FRAMES_INTERP,
		.f_back = 0x8, .f_code = 0x0, .f_lasti = 0x38, .f_owner = 0x46, .f_read_size = 0x48,
		.co_firstlineno = 0x44, .co_filename = 0x70, .co_name = 0x78, .co_lines = 0x88,
		.co_qualname = 0x80,
		.co_firsttraceable = 0xb8, .co_code_adaptive = 0xc8, .co_code = NO,
		.lines_kind = TM_LINES_LOCATIONS,
		.ascii_data = 0x28, .compact_data = 0x38,
	},
};

const struct tm_layout *tm_layout_get(int minor)
{
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (layouts[i].minor == minor)
			return &layouts[i];
	return NULL;
}

/* Indexes of u64 fields in the 3.13 _Py_DebugOffsets (Include/internal/pycore_runtime.h). */
enum {
	DO_VERSION = 1, DO_FREE_THREADED = 2, DO_RT_INTERPRETERS_HEAD = 5, DO_IS_THREADS_HEAD = 9,
	DO_TS_NEXT = 21, DO_TS_CURRENT_FRAME = 23, DO_TS_THREAD_ID = 24, DO_TS_NATIVE_THREAD_ID = 25,
	DO_IF_PREVIOUS = 29, DO_IF_EXECUTABLE = 30, DO_IF_INSTR_PTR = 31, DO_IF_OWNER = 33,
	DO_CO_FILENAME = 35, DO_CO_NAME = 36, DO_CO_QUALNAME = 37, DO_CO_LINETABLE = 38,
	DO_CO_FIRSTLINENO = 39, DO_CO_CODE_ADAPTIVE = 43, DO_PYOBJECT_OB_TYPE = 45, DO_BYTES_OB_SIZE = 65,
	DO_BYTES_OB_SVAL = 66, DO_UNICODE_STATE = 68, DO_UNICODE_LENGTH = 69,
	DO_UNICODE_ASCII_SIZE = 70, DO_COUNT = 73,
};

int tm_layout_check_debug_offsets(const struct tm_layout *l, const void *buf, size_t len,
				  char *what, size_t whatlen)
{
	const struct { int idx; uint64_t want; const char *name; } fields[] = {
		{ DO_FREE_THREADED, 0, "free_threaded" },
		{ DO_RT_INTERPRETERS_HEAD, l->rt_interpreters_head, "interpreters_head" },
		{ DO_IS_THREADS_HEAD, l->is_threads_head, "threads_head" },
		{ DO_TS_NEXT, l->ts_next, "thread_state.next" },
		{ DO_TS_CURRENT_FRAME, l->ts_frame, "current_frame" },
		{ DO_TS_THREAD_ID, l->ts_thread_id, "thread_id" },
		{ DO_TS_NATIVE_THREAD_ID, l->ts_native_thread_id, "native_thread_id" },
		{ DO_IF_PREVIOUS, l->f_back, "previous" },
		{ DO_IF_EXECUTABLE, l->f_code, "executable" },
		{ DO_IF_INSTR_PTR, l->f_lasti, "instr_ptr" },
		{ DO_IF_OWNER, l->f_owner, "owner" },
		{ DO_CO_FILENAME, l->co_filename, "co_filename" },
		{ DO_CO_NAME, l->co_name, "co_name" },
		{ DO_CO_QUALNAME, l->co_qualname, "co_qualname" },
		{ DO_CO_LINETABLE, l->co_lines, "co_linetable" },
		{ DO_CO_FIRSTLINENO, l->co_firstlineno, "co_firstlineno" },
		{ DO_CO_CODE_ADAPTIVE, l->co_code_adaptive, "co_code_adaptive" },
		{ DO_PYOBJECT_OB_TYPE, TM_PY_OB_TYPE, "ob_type" },
		{ DO_BYTES_OB_SIZE, TM_PY_BYTES_SIZE, "bytes.ob_size" },
		{ DO_BYTES_OB_SVAL, TM_PY_BYTES_DATA, "bytes.ob_sval" },
		{ DO_UNICODE_STATE, TM_PY_STR_STATE, "unicode.state" },
		{ DO_UNICODE_LENGTH, TM_PY_STR_LENGTH, "unicode.length" },
		{ DO_UNICODE_ASCII_SIZE, l->ascii_data, "asciiobject_size" },
	};
	uint64_t v[DO_COUNT];

	if (len < sizeof(v) || memcmp(buf, "xdebugpy", 8)) {
		snprintf(what, whatlen, "no _Py_DebugOffsets cookie");
		return -EPROTO;
	}
	memcpy(v, buf, sizeof(v));
	if (((v[DO_VERSION] >> 16) & 0xff) != (uint64_t)l->minor) {
		snprintf(what, whatlen, "version 0x%llx", (unsigned long long)v[DO_VERSION]);
		return -EPROTO;
	}
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (v[fields[i].idx] != fields[i].want) {
			snprintf(what, whatlen, "%s is 0x%llx, table says 0x%llx", fields[i].name,
				 (unsigned long long)v[fields[i].idx],
				 (unsigned long long)fields[i].want);
			return -EPROTO;
		}
	}
	return 0;
}
