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
		.ascii_data = 0x30, .compact_data = 0x48, .ts_interp = 0x10,
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
		.ascii_data = 0x30, .compact_data = 0x48, .ts_interp = 0x10,
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
		.ascii_data = 0x30, .compact_data = 0x48, .ts_interp = 0x10,
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
		.ascii_data = 0x30, .compact_data = 0x48, .ts_interp = 0x10,
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
		.ascii_data = 0x28, .compact_data = 0x38, .ts_interp = 0x10,
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
		.ascii_data = 0x28, .compact_data = 0x38, .ts_interp = 0x10,
	},
};

const struct tm_layout *tm_layout_get(int minor)
{
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (layouts[i].minor == minor)
			return &layouts[i];
	return NULL;
}

/* What _Py_DebugOffsets do not say, per minor (3.13+), measured with
 * offsetof() against each release's headers built with its own flags
 * (Debian 3.14/3.15: -D_Py_JIT -D_Py_TIER2=3), the same in release and
 * debug builds and in every patch release measured (3.13.5, 3.13.18):
 *  - allocators.standard.{raw,mem,obj} in _PyRuntimeState;
 *  - autoTSSkey (Py_tss_t) in _PyRuntimeState, gone in 3.15 (a thread-local
 *    _Py_tss_gilstate replaces it; target.c decodes both from code and
 *    prefers that);
 *  - _co_firsttraceable: co_code_adaptive - 0x10 (int, then co_extra);
 *  - f_executable tag bits (_PyStackRef since 3.14, Py_TAG_BITS 3);
 *  - sizeof(PyCompactUnicodeObject) (carried by the offsets from 3.15). */
struct extra {
	int minor;
	uint32_t alloc_raw, alloc_mem, alloc_obj;
	uint32_t autotss_key;
	uint32_t firsttraceable_before_code; /* co_code_adaptive - _co_firsttraceable */
	uint32_t f_code_tags;
	uint32_t compact_data;
};

static const struct extra extras[] = {
	{ 13, 0x2c0, 0x2e8, 0x310, 0x870, 0x10, 0, 0x38 },
	{ 14, 0x370, 0x398, 0x3c0, 0x920, 0x10, 3, 0x38 },
	{ 15, 0x3f0, 0x418, 0x440, NO, 0x10, 3, 0x38 },
};

static int fits16(uint64_t v)
{
	return v < TM_NO_OFFSET;
}

int tm_layout_from_debug_offsets(const struct tm_debug_offsets *o, struct tm_layout *l,
				 char *why, size_t whylen)
{
	const struct extra *x = &extras[sizeof(extras) / sizeof(extras[0]) - 1];
	uint64_t read_end;

	for (size_t i = 0; i < sizeof(extras) / sizeof(extras[0]); i++)
		if (extras[i].minor == o->minor)
			x = &extras[i];
	memset(l, 0, sizeof(*l));
	l->minor = o->minor;
	l->from_debug_offsets = 1;
	l->rt_interpreters_head = (uint32_t)o->rt_interpreters_head;
	l->rt_tstate_current = NO;
	l->rt_autotss_key = x->autotss_key;
	l->rt_alloc_raw = x->alloc_raw;
	l->rt_alloc_mem = x->alloc_mem;
	l->rt_alloc_obj = x->alloc_obj;
	l->is_threads_head = (uint32_t)o->is_threads_head;
	l->ts_next = (uint32_t)o->ts_next;
	l->ts_interp = (uint32_t)o->ts_interp;
	l->ts_thread_id = (uint32_t)o->ts_thread_id;
	l->ts_native_thread_id = (uint32_t)o->ts_native_thread_id;
	l->ts_frame = (uint32_t)o->ts_current_frame;
	l->cframe_current_frame = NO;
	l->ts_datastack_chunk = (uint32_t)o->ts_datastack_chunk;
	l->ts_status = (uint32_t)o->ts_status;
	l->frame_kind = TM_FRAMES_INTERP;
	l->f_back = (uint32_t)o->if_previous;
	l->f_code = (uint32_t)o->if_executable;
	l->f_lasti = (uint32_t)o->if_instr_ptr;
	l->f_owner = (uint32_t)o->if_owner;
	l->f_code_tags = x->f_code_tags;
	/* Bytes BPF reads per frame: up to the end of the last field it uses. */
	read_end = o->if_owner + 1;
	if (o->if_previous + 8 > read_end)
		read_end = o->if_previous + 8;
	if (o->if_executable + 8 > read_end)
		read_end = o->if_executable + 8;
	if (o->if_instr_ptr + 8 > read_end)
		read_end = o->if_instr_ptr + 8;
	l->f_read_size = (uint32_t)((read_end + 7) & ~7ull);
	l->co_firstlineno = (uint32_t)o->co_firstlineno;
	l->co_filename = (uint32_t)o->co_filename;
	l->co_name = (uint32_t)o->co_name;
	/* a name is an annotation: beyond the header the symbolizer reads, none */
	l->co_qualname = o->co_qualname + 8 <= 0x100 ? (uint32_t)o->co_qualname : NO;
	l->co_lines = (uint32_t)o->co_linetable;
	l->co_code_adaptive = (uint32_t)o->co_code_adaptive;
	l->co_firsttraceable = (uint32_t)(o->co_code_adaptive - x->firsttraceable_before_code);
	l->co_code = NO;
	l->lines_kind = TM_LINES_LOCATIONS;
	l->ascii_data = (uint32_t)o->str_ascii_size;
	l->compact_data = o->str_compact_size != TM_DO_NONE ? (uint32_t)o->str_compact_size
							    : x->compact_data;
	/* BPF holds offsets in 16 bits, reads a frame of at most 256 bytes
	 * and a code object head of 128 (stack_walk.bpf.h); the symbolizer
	 * a code object header of 256 bytes; tp_flags is a BPF constant. */
	if (!fits16(o->ts_current_frame) || !fits16(o->ts_thread_id) || !fits16(o->ts_status) ||
	    !fits16(o->ts_datastack_chunk) || !fits16(o->ts_interp) || l->f_read_size >= 256 ||
	    o->co_filename + 8 > 128 || o->co_firstlineno + 4 > 128 || o->co_linetable + 8 > 0x100 ||
	    o->co_code_adaptive > 0x100) {
		snprintf(why, whylen, "offsets beyond what tmbpf's BPF reads (frame %u bytes, "
			 "co_filename 0x%llx)", l->f_read_size, (unsigned long long)o->co_filename);
		return -EPROTO;
	}
	if (o->tp_flags != TM_TP_FLAGS) {
		snprintf(why, whylen, "type_object.tp_flags is 0x%llx, tmbpf's BPF reads 0x%x",
			 (unsigned long long)o->tp_flags, TM_TP_FLAGS);
		return -EPROTO;
	}
	if (o->str_state != TM_PY_STR_STATE || o->str_length != TM_PY_STR_LENGTH ||
	    o->bytes_ob_size != TM_PY_BYTES_SIZE || o->bytes_ob_sval != TM_PY_BYTES_DATA) {
		snprintf(why, whylen, "str/bytes layout moved (state 0x%llx, ob_sval 0x%llx)",
			 (unsigned long long)o->str_state, (unsigned long long)o->bytes_ob_sval);
		return -EPROTO;
	}
	return 0;
}
