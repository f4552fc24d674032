/* Decoding _Py_DebugOffsets (debug_offsets.h). The byte offset of each field
 * inside the struct, per minor version, as the compiler laid them out
 * (offsetof() over each release's header: 3.13.5/3.13.18
 * Include/internal/pycore_runtime.h:62, 3.14.10 and 3.15.2
 * Include/internal/pycore_debug_offsets.h:67; 3.13's two patch releases are
 * textually identical there). */
#include "target/debug_offsets.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum field {
	F_FREE_THREADED, F_RT_SIZE, F_RT_INTERP_HEAD, F_IS_SIZE, F_IS_THREADS_HEAD,
	F_TS_SIZE, F_TS_PREV, F_TS_NEXT, F_TS_INTERP, F_TS_CURRENT_FRAME, F_TS_BASE_FRAME,
	F_TS_THREAD_ID, F_TS_NATIVE_THREAD_ID, F_TS_DATASTACK_CHUNK, F_TS_STATUS,
	F_IF_SIZE, F_IF_PREVIOUS, F_IF_EXECUTABLE, F_IF_INSTR_PTR, F_IF_LOCALSPLUS, F_IF_OWNER,
	F_CO_SIZE, F_CO_FILENAME, F_CO_NAME, F_CO_QUALNAME, F_CO_LINETABLE, F_CO_FIRSTLINENO,
	F_CO_CODE_ADAPTIVE, F_OB_SIZE, F_OB_TYPE, F_TP_FLAGS, F_BYTES_OB_SIZE, F_BYTES_OB_SVAL,
	F_STR_STATE, F_STR_LENGTH, F_STR_ASCII_SIZE, F_STR_COMPACT_SIZE, F_COUNT,
};

#define NA 0xffff /* not in this version's struct */

struct table {
	int minor;
	uint16_t size;            /* sizeof(_Py_DebugOffsets) */
	uint16_t at[F_COUNT];     /* byte offset of each field in the struct */
};

static const struct table tables[] = {
	{ 13, 0x248, {
		[F_FREE_THREADED] = 0x010, [F_RT_SIZE] = 0x018, [F_RT_INTERP_HEAD] = 0x028,
		[F_IS_SIZE] = 0x030, [F_IS_THREADS_HEAD] = 0x048,
		[F_TS_SIZE] = 0x098, [F_TS_PREV] = 0x0a0, [F_TS_NEXT] = 0x0a8, [F_TS_INTERP] = 0x0b0,
		[F_TS_CURRENT_FRAME] = 0x0b8, [F_TS_BASE_FRAME] = NA, [F_TS_THREAD_ID] = 0x0c0,
		[F_TS_NATIVE_THREAD_ID] = 0x0c8, [F_TS_DATASTACK_CHUNK] = 0x0d0, [F_TS_STATUS] = 0x0d8,
		[F_IF_SIZE] = 0x0e0, [F_IF_PREVIOUS] = 0x0e8, [F_IF_EXECUTABLE] = 0x0f0,
		[F_IF_INSTR_PTR] = 0x0f8, [F_IF_LOCALSPLUS] = 0x100, [F_IF_OWNER] = 0x108,
		[F_CO_SIZE] = 0x110, [F_CO_FILENAME] = 0x118, [F_CO_NAME] = 0x120,
		[F_CO_QUALNAME] = 0x128, [F_CO_LINETABLE] = 0x130, [F_CO_FIRSTLINENO] = 0x138,
		[F_CO_CODE_ADAPTIVE] = 0x158, [F_OB_SIZE] = 0x160, [F_OB_TYPE] = 0x168,
		[F_TP_FLAGS] = 0x188, [F_BYTES_OB_SIZE] = 0x208, [F_BYTES_OB_SVAL] = 0x210,
		[F_STR_STATE] = 0x220, [F_STR_LENGTH] = 0x228, [F_STR_ASCII_SIZE] = 0x230,
		[F_STR_COMPACT_SIZE] = NA,
	} },
	/* 3.14 inserts threads_main, code_object_generation, tlbc_generation,
	 * frame stackpointer and tlbc_index, co_tlbc, set_object and more. */
	{ 14, 0x2f8, {
		[F_FREE_THREADED] = 0x010, [F_RT_SIZE] = 0x018, [F_RT_INTERP_HEAD] = 0x028,
		[F_IS_SIZE] = 0x030, [F_IS_THREADS_HEAD] = 0x048,
		[F_TS_SIZE] = 0x0b0, [F_TS_PREV] = 0x0b8, [F_TS_NEXT] = 0x0c0, [F_TS_INTERP] = 0x0c8,
		[F_TS_CURRENT_FRAME] = 0x0d0, [F_TS_BASE_FRAME] = NA, [F_TS_THREAD_ID] = 0x0d8,
		[F_TS_NATIVE_THREAD_ID] = 0x0e0, [F_TS_DATASTACK_CHUNK] = 0x0e8, [F_TS_STATUS] = 0x0f0,
		[F_IF_SIZE] = 0x0f8, [F_IF_PREVIOUS] = 0x100, [F_IF_EXECUTABLE] = 0x108,
		[F_IF_INSTR_PTR] = 0x110, [F_IF_LOCALSPLUS] = 0x118, [F_IF_OWNER] = 0x120,
		[F_CO_SIZE] = 0x138, [F_CO_FILENAME] = 0x140, [F_CO_NAME] = 0x148,
		[F_CO_QUALNAME] = 0x150, [F_CO_LINETABLE] = 0x158, [F_CO_FIRSTLINENO] = 0x160,
		[F_CO_CODE_ADAPTIVE] = 0x180, [F_OB_SIZE] = 0x190, [F_OB_TYPE] = 0x198,
		[F_TP_FLAGS] = 0x1b8, [F_BYTES_OB_SIZE] = 0x258, [F_BYTES_OB_SVAL] = 0x260,
		[F_STR_STATE] = 0x270, [F_STR_LENGTH] = 0x278, [F_STR_ASCII_SIZE] = 0x280,
		[F_STR_COMPACT_SIZE] = NA,
	} },
	/* 3.15 adds base_frame (the sentinel frame), last_profiled_frame*,
	 * holds_gil, err_stackitem, tp_basicsize, heap types, gc fields and
	 * compactunicodeobject_size. */
	{ 15, 0x378, {
		[F_FREE_THREADED] = 0x010, [F_RT_SIZE] = 0x018, [F_RT_INTERP_HEAD] = 0x028,
		[F_IS_SIZE] = 0x030, [F_IS_THREADS_HEAD] = 0x048,
		[F_TS_SIZE] = 0x0b0, [F_TS_PREV] = 0x0b8, [F_TS_NEXT] = 0x0c0, [F_TS_INTERP] = 0x0c8,
		[F_TS_CURRENT_FRAME] = 0x0d0, [F_TS_BASE_FRAME] = 0x0d8, [F_TS_THREAD_ID] = 0x0f0,
		[F_TS_NATIVE_THREAD_ID] = 0x0f8, [F_TS_DATASTACK_CHUNK] = 0x100, [F_TS_STATUS] = 0x108,
		[F_IF_SIZE] = 0x138, [F_IF_PREVIOUS] = 0x140, [F_IF_EXECUTABLE] = 0x148,
		[F_IF_INSTR_PTR] = 0x150, [F_IF_LOCALSPLUS] = 0x158, [F_IF_OWNER] = 0x160,
		[F_CO_SIZE] = 0x178, [F_CO_FILENAME] = 0x180, [F_CO_NAME] = 0x188,
		[F_CO_QUALNAME] = 0x190, [F_CO_LINETABLE] = 0x198, [F_CO_FIRSTLINENO] = 0x1a0,
		[F_CO_CODE_ADAPTIVE] = 0x1c0, [F_OB_SIZE] = 0x1d0, [F_OB_TYPE] = 0x1d8,
		[F_TP_FLAGS] = 0x1f8, [F_BYTES_OB_SIZE] = 0x2b8, [F_BYTES_OB_SVAL] = 0x2c0,
		[F_STR_STATE] = 0x2d0, [F_STR_LENGTH] = 0x2d8, [F_STR_ASCII_SIZE] = 0x2e0,
		[F_STR_COMPACT_SIZE] = 0x2e8,
	} },
};

#define NTABLES (sizeof(tables) / sizeof(tables[0]))

static uint64_t field(const struct table *t, const uint8_t *buf, enum field f)
{
	uint64_t v;

	if (t->at[f] == NA)
		return TM_DO_NONE;
	memcpy(&v, buf + t->at[f], sizeof(v));
	return v;
}

static int bad(char *why, size_t whylen, const char *fmt, const char *name, uint64_t v,
	       uint64_t limit)
{
	snprintf(why, whylen, fmt, name, (unsigned long long)v, (unsigned long long)limit);
	return -EPROTO;
}

/* Every field offset inside its struct, every size plausible: a table
 * that does not fit the struct (a newer minor that moved fields) yields
 * values that fail these. */
static int plausible(const struct tm_debug_offsets *o, uint64_t runtime_size, char *why,
		     size_t whylen)
{
	const struct { const char *name; uint64_t off, width, size; } in[] = {
		{ "interpreters_head", o->rt_interpreters_head, 8, o->rt_size },
		{ "threads_head", o->is_threads_head, 8, o->is_size },
		{ "thread_state.next", o->ts_next, 8, o->ts_size },
		{ "thread_state.interp", o->ts_interp, 8, o->ts_size },
		{ "current_frame", o->ts_current_frame, 8, o->ts_size },
		{ "thread_id", o->ts_thread_id, 8, o->ts_size },
		{ "datastack_chunk", o->ts_datastack_chunk, 24, o->ts_size },
		{ "thread_state.status", o->ts_status, 4, o->ts_size },
		{ "frame.previous", o->if_previous, 8, o->if_size },
		{ "frame.executable", o->if_executable, 8, o->if_size },
		{ "frame.instr_ptr", o->if_instr_ptr, 8, o->if_size },
		{ "frame.owner", o->if_owner, 1, o->if_size },
		{ "co_filename", o->co_filename, 8, o->co_size },
		{ "co_linetable", o->co_linetable, 8, o->co_size },
		{ "co_firstlineno", o->co_firstlineno, 4, o->co_size },
		{ "co_code_adaptive", o->co_code_adaptive, 2, o->co_size + 2 },
		{ "ob_type", o->ob_type, 8, o->ob_size },
		{ "bytes.ob_sval", o->bytes_ob_sval, 1, 0x100 },
		{ "unicode.state", o->str_state, 4, o->str_ascii_size },
		{ "unicode.length", o->str_length, 8, o->str_ascii_size },
	};

	if (runtime_size && o->rt_size != runtime_size)
		return bad(why, whylen, "%s is 0x%llx, the _PyRuntime symbol 0x%llx",
			   "runtime_state.size", o->rt_size, runtime_size);
	if (o->ts_size > 0x2000)
		return bad(why, whylen, "%s 0x%llx over 0x%llx", "thread_state.size", o->ts_size, 0x2000);
	if (o->if_size > 0x100)
		return bad(why, whylen, "%s 0x%llx over 0x%llx", "frame.size", o->if_size, 0x100);
	if (o->co_size > 0x400)
		return bad(why, whylen, "%s 0x%llx over 0x%llx", "code.size", o->co_size, 0x400);
	if (o->is_size > 0x1000000)
		return bad(why, whylen, "%s 0x%llx over 0x%llx", "interp.size", o->is_size, 0x1000000);
	if (o->str_ascii_size > 0x100)
		return bad(why, whylen, "%s 0x%llx over 0x%llx", "asciiobject_size", o->str_ascii_size,
			   0x100);
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		if (in[i].off == TM_DO_NONE || in[i].off + in[i].width > in[i].size)
			return bad(why, whylen, "%s at 0x%llx is outside its struct (size 0x%llx)",
				   in[i].name, in[i].off, in[i].size);
	/* What every CPython 3 object header and frame has had. */
	if (o->ob_size != 0x10 || o->ob_type != 8)
		return bad(why, whylen, "%s 0x%llx, want 0x%llx", "PyObject size", o->ob_size, 0x10);
	if (o->ts_prev != 0 || o->ts_next != 8)
		return bad(why, whylen, "%s 0x%llx, want 0x%llx", "thread_state.next", o->ts_next, 8);
	if (o->if_previous > 0x40 || o->if_executable > 0x40)
		return bad(why, whylen, "%s 0x%llx over 0x%llx", "frame.previous", o->if_previous,
			   0x40);
	return 0;
}

int tm_debug_offsets_parse(const void *buf, size_t len, uint64_t runtime_size,
			   struct tm_debug_offsets *o, int *newer, char *why, size_t whylen)
{
	const uint8_t *b = buf;
	const struct table *t = NULL;
	uint64_t version;
	int minor;

	memset(o, 0, sizeof(*o));
	*newer = 0;
	if (len < 16 || memcmp(b, "xdebugpy", 8)) {
		snprintf(why, whylen, "no _Py_DebugOffsets cookie at the start of _PyRuntime");
		return -EPROTO;
	}
	memcpy(&version, b + 8, 8);
	minor = (int)((version >> 16) & 0xff);
	if (version >> 24 != 3 || minor < 13) {
		snprintf(why, whylen, "_Py_DebugOffsets of version 0x%llx",
			 (unsigned long long)version);
		return -EPROTONOSUPPORT;
	}
	for (size_t i = 0; i < NTABLES; i++)
		if (tables[i].minor == minor)
			t = &tables[i];
	if (!t) {
		t = &tables[NTABLES - 1];
		*newer = 1;
	}
	if (len < t->size) {
		snprintf(why, whylen, "_Py_DebugOffsets truncated (%zu of %u bytes)", len, t->size);
		return -EPROTO;
	}
	o->version = version;
	o->minor = minor;
	o->table_minor = t->minor;
	o->free_threaded = field(t, b, F_FREE_THREADED);
	o->rt_size = field(t, b, F_RT_SIZE);
	o->rt_interpreters_head = field(t, b, F_RT_INTERP_HEAD);
	o->is_size = field(t, b, F_IS_SIZE);
	o->is_threads_head = field(t, b, F_IS_THREADS_HEAD);
	o->ts_size = field(t, b, F_TS_SIZE);
	o->ts_prev = field(t, b, F_TS_PREV);
	o->ts_next = field(t, b, F_TS_NEXT);
	o->ts_interp = field(t, b, F_TS_INTERP);
	o->ts_current_frame = field(t, b, F_TS_CURRENT_FRAME);
	o->ts_base_frame = field(t, b, F_TS_BASE_FRAME);
	o->ts_thread_id = field(t, b, F_TS_THREAD_ID);
	o->ts_native_thread_id = field(t, b, F_TS_NATIVE_THREAD_ID);
	o->ts_datastack_chunk = field(t, b, F_TS_DATASTACK_CHUNK);
	o->ts_status = field(t, b, F_TS_STATUS);
	o->if_size = field(t, b, F_IF_SIZE);
	o->if_previous = field(t, b, F_IF_PREVIOUS);
	o->if_executable = field(t, b, F_IF_EXECUTABLE);
	o->if_instr_ptr = field(t, b, F_IF_INSTR_PTR);
	o->if_localsplus = field(t, b, F_IF_LOCALSPLUS);
	o->if_owner = field(t, b, F_IF_OWNER);
	o->co_size = field(t, b, F_CO_SIZE);
	o->co_filename = field(t, b, F_CO_FILENAME);
	o->co_name = field(t, b, F_CO_NAME);
	o->co_qualname = field(t, b, F_CO_QUALNAME);
	o->co_linetable = field(t, b, F_CO_LINETABLE);
	o->co_firstlineno = field(t, b, F_CO_FIRSTLINENO);
	o->co_code_adaptive = field(t, b, F_CO_CODE_ADAPTIVE);
	o->ob_size = field(t, b, F_OB_SIZE);
	o->ob_type = field(t, b, F_OB_TYPE);
	o->tp_flags = field(t, b, F_TP_FLAGS);
	o->bytes_ob_size = field(t, b, F_BYTES_OB_SIZE);
	o->bytes_ob_sval = field(t, b, F_BYTES_OB_SVAL);
	o->str_state = field(t, b, F_STR_STATE);
	o->str_length = field(t, b, F_STR_LENGTH);
	o->str_ascii_size = field(t, b, F_STR_ASCII_SIZE);
	o->str_compact_size = field(t, b, F_STR_COMPACT_SIZE);
	if (o->free_threaded) {
		snprintf(why, whylen, "a free-threaded build (Py_GIL_DISABLED): not supported");
		return -EPROTONOSUPPORT;
	}
	return plausible(o, runtime_size, why, whylen);
}
