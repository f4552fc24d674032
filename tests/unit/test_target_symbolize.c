/* tm_symbolize_frame over objects laid out in this process's own memory
 * exactly as each CPython version lays them out (offsets from layouts.h), so
 * the cases a live interpreter rarely shows can be forced: address reuse,
 * strings of every kind (incl. lone surrogates), non-compact strings, frames
 * in their prologue, non-code objects. The symbolizer reads them through
 * tm_target_read(getpid(), ...), the same path as for a real target. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "tmbpf.h"
#include "target/layouts.h"
#include "target/symbolize.h"
#include "target/target.h"

static uint64_t fake_type[4], fake_none[4];

struct fake {
	_Alignas(16) uint8_t code[0x200];
	_Alignas(16) uint8_t name1[0x100];
	_Alignas(16) uint8_t name2[0x100];
	_Alignas(16) uint8_t lines[0x80];
	_Alignas(16) uint8_t bytecode[0x40]; /* <=3.10 co_code: 12 bytes */
};

static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* A compact str holding n code points of the given kind (1, 2, 4). */
static void make_str(const struct tm_layout *l, uint8_t *obj, int kind, const uint32_t *cps, size_t n,
		     int compact)
{
	int ascii = kind == 1;

	for (size_t i = 0; i < n; i++)
		if (cps[i] > 0x7f)
			ascii = 0;
	memset(obj, 0, 0x100);
	put64(obj + TM_PY_OB_TYPE, (uint64_t)(uintptr_t)&fake_type);
	put64(obj + TM_PY_STR_LENGTH, n);
	put32(obj + TM_PY_STR_STATE, (uint32_t)(kind << 2 | (compact ? 1 << 5 : 0) | (ascii ? 1 << 6 : 0)));
	uint8_t *data = obj + (ascii ? l->ascii_data : l->compact_data);
	for (size_t i = 0; i < n; i++) {
		if (kind == 1)
			data[i] = (uint8_t)cps[i];
		else if (kind == 2) {
			data[2 * i] = (uint8_t)cps[i];
			data[2 * i + 1] = (uint8_t)(cps[i] >> 8);
		} else
			put32(data + 4 * i, cps[i]);
	}
}

static void make_ascii(const struct tm_layout *l, uint8_t *obj, const char *s)
{
	uint32_t cps[64];
	size_t n = strlen(s);

	for (size_t i = 0; i < n; i++)
		cps[i] = (uint8_t)s[i];
	make_str(l, obj, 1, cps, n, 1);
}

/* Line table giving firstlineno for bytes [0,4), +1 for [4,8), +2 for [8,12). */
static void make_lines(const struct tm_layout *l, uint8_t *obj)
{
	static const uint8_t lnotab[] = { 4, 1, 4, 1 };
	static const uint8_t lt310[] = { 4, 0, 4, 1, 4, 1 };
	static const uint8_t loc[] = { 0x80 | (10 << 3) | 1, 0, 1, 0x80 | (11 << 3) | 1, 0, 1,
				       0x80 | (11 << 3) | 1, 0, 1 };
	const uint8_t *t = l->lines_kind == TM_LINES_LNOTAB ? lnotab
			   : l->lines_kind == TM_LINES_LINETABLE310 ? lt310 : loc;
	size_t n = l->lines_kind == TM_LINES_LNOTAB ? sizeof(lnotab)
		   : l->lines_kind == TM_LINES_LINETABLE310 ? sizeof(lt310) : sizeof(loc);

	memset(obj, 0, 0x80);
	put64(obj, 1); /* ob_refcnt: alive */
	put64(obj + TM_PY_OB_TYPE, 1);
	put64(obj + TM_PY_BYTES_SIZE, n);
	memcpy(obj + TM_PY_BYTES_DATA, t, n);
}

static void make_code(const struct tm_layout *l, struct fake *f, uint8_t *name, int first)
{
	memset(f->code, 0, sizeof(f->code));
	put64(f->code, 1); /* ob_refcnt: alive */
	put64(f->code + TM_PY_OB_TYPE, (uint64_t)(uintptr_t)&fake_type);
	put64(f->code + l->co_filename, (uint64_t)(uintptr_t)name);
	put64(f->code + l->co_lines, (uint64_t)(uintptr_t)f->lines);
	put32(f->code + l->co_firstlineno, (uint32_t)first);
	if (l->co_firsttraceable != TM_NO_OFFSET)
		put32(f->code + l->co_firsttraceable, 0);
	/* 12 bytes of bytecode: inline (3.11+, Py_SIZE in code units) or co_code. */
	if (l->co_code == TM_NO_OFFSET) {
		put64(f->code + TM_PY_VAR_SIZE, 6);
	} else {
		memset(f->bytecode, 0, sizeof(f->bytecode));
		put64(f->bytecode, 1);
		put64(f->bytecode + TM_PY_BYTES_SIZE, 12);
		put64(f->code + l->co_code, (uint64_t)(uintptr_t)f->bytecode);
	}
}

/* The raw lasti BPF would store for byte offset addr into the code. */
static uint64_t raw_lasti(const struct tm_layout *l, const struct fake *f, int64_t addr)
{
	if (l->frame_kind == TM_FRAMES_INTERP)
		return (uint64_t)(uintptr_t)f->code + l->co_code_adaptive + (uint64_t)addr;
	if (l->lines_kind == TM_LINES_LINETABLE310)
		return (uint32_t)(int32_t)(addr / 2);
	return (uint32_t)(int32_t)addr;
}

/* Code objects die before the snapshot that names them (a module's code
 * object is freed when the module returns). Freed memory holds a free-list
 * pointer (or NULL) in ob_refcnt, glibc's tcache key in ob_type, or still the
 * old fields with a line table that was freed and reused. */
static void test_dead_code(const struct tm_layout *l, struct fake *f, struct tm_symbolizer *s, int minor)
{
	uint64_t code = (uint64_t)(uintptr_t)f->code;
	const char *fn;
	uint32_t line;
	int rc;

	tm_symbolizer_begin_pass(s);
	make_ascii(l, f->name1, "/app/main.py");
	make_lines(l, f->lines);
	make_code(l, f, f->name1, 20);
	rc = tm_symbolize_frame(s, code, raw_lasti(l, f, 4), &fn, &line);
	CHECK(rc == 0 && line == 21, "3.%d: live module code -> line 21 (got %u)", minor, line);

	/* pymalloc frees it (NULL next pointer), its line table is reused. */
	tm_symbolizer_begin_pass(s);
	put64(f->code, 0);
	memset(f->lines + TM_PY_BYTES_DATA, 0x7f, 8);
	rc = tm_symbolize_frame(s, code, raw_lasti(l, f, 4), &fn, &line);
	CHECK(rc == 0 && !strcmp(fn, "/app/main.py") && line == 21,
	      "3.%d: freed code object (fields intact) keeps the line read alive (%s:%u)", minor, fn, line);
	/* glibc: free-list pointer in ob_refcnt, tcache key in ob_type. */
	tm_symbolizer_begin_pass(s);
	put64(f->code, 0x55aa00001230ull);
	put64(f->code + TM_PY_OB_TYPE, 0x1d2c3b4a59687766ull);
	rc = tm_symbolize_frame(s, code, raw_lasti(l, f, 4), &fn, &line);
	CHECK(rc == 0 && !strcmp(fn, "/app/main.py") && line == 21,
	      "3.%d: freed code object (memory reused) keeps the entry read alive (%s:%u)", minor, fn, line);

	/* Never read while alive: <unknown>, not decoded from freed memory. */
	tm_symbolizer_flush(s);
	make_lines(l, f->lines);
	make_code(l, f, f->name1, 20);
	put64(f->code, 0x55aa00001230ull);
	rc = tm_symbolize_frame(s, code, raw_lasti(l, f, 4), &fn, &line);
	CHECK(rc == -ENOENT && !strcmp(fn, "<unknown>") && line == 0,
	      "3.%d: code object dead before its first read -> <unknown>:0", minor);
	/* Alive, but its line table freed (being torn down): file known, line 0. */
	tm_symbolizer_flush(s);
	make_code(l, f, f->name1, 20);
	put64(f->lines, 0);
	rc = tm_symbolize_frame(s, code, raw_lasti(l, f, 4), &fn, &line);
	CHECK(rc == 0 && !strcmp(fn, "/app/main.py") && line == 0,
	      "3.%d: freed line table -> line 0 (got %u)", minor, line);
	/* Its address reused by another live code object: read again. */
	tm_symbolizer_begin_pass(s);
	make_lines(l, f->lines);
	make_ascii(l, f->name2, "/app/other.py");
	make_code(l, f, f->name2, 50);
	rc = tm_symbolize_frame(s, code, raw_lasti(l, f, 4), &fn, &line);
	CHECK(rc == 0 && !strcmp(fn, "/app/other.py") && line == 51,
	      "3.%d: address reused by a live code object -> read again (%s:%u)", minor, fn, line);
	/* Reused within one pass by a larger code object: a position past the
	 * size checked earlier in the pass makes the symbolizer look again. */
	tm_symbolizer_begin_pass(s);
	tm_symbolize_frame(s, code, raw_lasti(l, f, 4), &fn, &line);
	make_code(l, f, f->name1, 60);
	if (l->co_code == TM_NO_OFFSET)
		put64(f->code + TM_PY_VAR_SIZE, 8);
	else
		put64(f->bytecode + TM_PY_BYTES_SIZE, 16);
	rc = tm_symbolize_frame(s, code, raw_lasti(l, f, 12), &fn, &line);
	/* The fake line table ends at 12: lnotab keeps its last line, 3.10+ none. */
	CHECK(rc == 0 && !strcmp(fn, "/app/main.py") &&
	      line == (l->lines_kind == TM_LINES_LNOTAB ? 62u : 0u),
	      "3.%d: reused within a pass, position past the old size -> read again (%s:%u)", minor,
	      fn, line);
	tm_symbolizer_begin_pass(s);
}

/* The image BPF would send for the code object now in f (struct
 * tm_code_image): its head, co_code's header, co_filename's str and the
 * line table, each at its place. */
static size_t make_image(const struct tm_layout *l, struct fake *f, uint8_t *name, size_t name_len,
			 struct tm_code_image *img)
{
	size_t off = TM_CODE_IMAGE_HEAD + TM_CODE_IMAGE_COBYTES, lines_len = 0x20 + 12;
	uint64_t fn, first = 0;

	memset(img, 0, sizeof(*img));
	img->type = TM_EVENT_CODE;
	img->pid = (uint32_t)getpid();
	img->code = (uint64_t)(uintptr_t)f->code;
	memcpy(&fn, f->code + l->co_filename, 8);
	memcpy(&first, f->code + l->co_firstlineno, 4);
	img->check = TM_CODE_CHECK(fn, (uint32_t)first);
	memcpy(img->data, f->code, TM_CODE_IMAGE_HEAD);
	img->head_len = TM_CODE_IMAGE_HEAD;
	if (l->co_code != TM_NO_OFFSET) {
		memcpy(img->data + TM_CODE_IMAGE_HEAD, f->bytecode, TM_CODE_IMAGE_COBYTES);
		img->cobytes_addr = (uint64_t)(uintptr_t)f->bytecode;
		img->cobytes_len = TM_CODE_IMAGE_COBYTES;
	}
	memcpy(img->data + off, name, name_len);
	img->str_addr = (uint64_t)(uintptr_t)name;
	img->str_len = (uint16_t)name_len;
	off += name_len;
	memcpy(img->data + off, f->lines, lines_len);
	img->lines_addr = (uint64_t)(uintptr_t)f->lines;
	img->lines_len = (uint16_t)lines_len;
	off += lines_len;
	return offsetof(struct tm_code_image, data) + off;
}

/* The bytes of an ASCII str BPF copies (send_image). */
static size_t str_bytes(const struct tm_layout *l, const char *name)
{
	size_t n = l->ascii_data + strlen(name);

	return n < TM_CODE_IMAGE_STR_MIN ? TM_CODE_IMAGE_STR_MIN : n;
}

/* Frames recorded with their code object's identity: answered from the
 * image BPF sent, or from memory holding that identity, never from another
 * object now at the address. */
static void test_checked(const struct tm_layout *l, struct fake *f, struct tm_symbolizer *s, int minor)
{
	struct tm_code_image *img = calloc(1, sizeof(*img));
	uint64_t code = (uint64_t)(uintptr_t)f->code, check, other;
	const char *fn;
	uint32_t line;
	size_t size;
	int rc;

	if (!img) {
		CHECK(0, "3.%d: image allocation", minor);
		return;
	}
	tm_symbolizer_flush(s);
	make_ascii(l, f->name1, "/a.py"); /* short: BPF copies at least a header */
	make_lines(l, f->lines);
	make_code(l, f, f->name1, 30);
	size = make_image(l, f, f->name1, str_bytes(l, "/a.py"), img);
	check = img->check;
	rc = tm_symbolizer_add_image(s, img, size);
	CHECK(rc == 0, "3.%d: image accepted (%d)", minor, rc);
	/* The object dies and everything it pointed at is reused. */
	memset(f->code, 0x5a, sizeof(f->code));
	memset(f->name1, 0x5a, sizeof(f->name1));
	memset(f->lines, 0x5a, sizeof(f->lines));
	memset(f->bytecode, 0x5a, sizeof(f->bytecode));
	rc = tm_symbolize_frame_checked(s, code, raw_lasti(l, f, 4), check, &fn, &line, NULL);
	CHECK(rc == 0 && !strcmp(fn, "/a.py") && line == 31,
	      "3.%d: dead code object symbolized from its image (%s:%u)", minor, fn, line);
	/* Another object at the address: the entry read with the identity stands. */
	make_ascii(l, f->name2, "/app/new.py");
	make_lines(l, f->lines);
	make_code(l, f, f->name2, 70);
	rc = tm_symbolize_frame_checked(s, code, raw_lasti(l, f, 8), check, &fn, &line, NULL);
	CHECK(rc == 0 && !strcmp(fn, "/a.py") && line == 32,
	      "3.%d: the identity's entry answers after the address is reused (%s:%u)", minor, fn, line);
	memcpy(&other, f->code + l->co_filename, 8);
	other = TM_CODE_CHECK(other, 70u);
	rc = tm_symbolize_frame_checked(s, code, raw_lasti(l, f, 0), other, &fn, &line, NULL);
	CHECK(rc == 0 && !strcmp(fn, "/app/new.py") && line == 70,
	      "3.%d: the new object's identity reads memory (%s:%u)", minor, fn, line);
	/* An identity neither imaged nor in memory: <unknown>, not the new object. */
	tm_symbolizer_flush(s);
	rc = tm_symbolize_frame_checked(s, code, raw_lasti(l, f, 0), check, &fn, &line, NULL);
	CHECK(rc == -ENOENT && !strcmp(fn, "<unknown>") && line == 0,
	      "3.%d: identity gone without an image -> <unknown>:0 (%s:%u)", minor, fn, line);
	/* Malformed images are refused. */
	size = make_image(l, f, f->name2, str_bytes(l, "/app/new.py"), img);
	img->lines_len = 0xffff;
	rc = tm_symbolizer_add_image(s, img, size);
	CHECK(rc == -EINVAL, "3.%d: image with lengths past its size refused (%d)", minor, rc);
	rc = tm_symbolizer_add_image(s, img, 8);
	CHECK(rc == -EINVAL, "3.%d: truncated image refused (%d)", minor, rc);
	free(img);
	tm_symbolizer_flush(s);
}

/* 3.14 and 3.15 as their _Py_DebugOffsets describe them (Debian 3.14.10,
 * 3.15.2 file images; the fields the layout takes). */
static int layout_from_offsets(int minor, struct tm_layout *l)
{
	struct tm_debug_offsets o = {
		.version = 0x03000000ull | (uint64_t)minor << 16, .minor = minor,
		.rt_size = 0x4d4c8, .rt_interpreters_head = minor == 14 ? 0x328 : 0x3a8,
		.is_size = 0x37248, .is_threads_head = minor == 14 ? 0x1cb0 : 0x1ca8,
		.ts_size = minor == 14 ? 0x340 : 0x378, .ts_next = 8, .ts_interp = 0x10,
		.ts_current_frame = 0x48, .ts_base_frame = minor == 14 ? TM_DO_NONE : 0x50,
		.ts_thread_id = minor == 14 ? 0x98 : 0xb0,
		.ts_native_thread_id = minor == 14 ? 0xa0 : 0xb8,
		.ts_datastack_chunk = minor == 14 ? 0xe8 : 0x100, .ts_status = 0x20,
		.if_size = 0x58, .if_previous = 8, .if_executable = 0, .if_instr_ptr = 0x38,
		.if_localsplus = 0x50, .if_owner = 0x4a,
		.co_size = 0xd8, .co_filename = 0x70, .co_name = 0x78, .co_qualname = 0x80,
		.co_linetable = 0x88, .co_firstlineno = 0x44, .co_code_adaptive = 0xd0,
		.ob_size = 0x10, .ob_type = 8, .tp_flags = 0xa8, .bytes_ob_size = 0x10,
		.bytes_ob_sval = 0x20, .str_state = 0x20, .str_length = 0x10, .str_ascii_size = 0x28,
		.str_compact_size = minor == 14 ? TM_DO_NONE : 0x38,
	};
	char why[160];

	return tm_layout_from_debug_offsets(&o, l, why, sizeof(why));
}

static void test_version(int minor)
{
	struct tm_layout derived;
	const struct tm_layout *l = minor <= 13 ? tm_layout_get(minor)
			: layout_from_offsets(minor, &derived) == 0 ? &derived : NULL;
	struct tm_target t;
	struct fake *f = calloc(1, sizeof(*f));
	struct tm_symbolizer *s;
	const char *fn;
	uint32_t line;
	uint64_t code;
	int rc;

	memset(&t, 0, sizeof(t));
	t.pid = getpid();
	t.major = 3;
	t.minor = minor;
	t.code_type_addr = (uint64_t)(uintptr_t)&fake_type;
	t.none_addr = minor >= 13 ? (uint64_t)(uintptr_t)&fake_none : 0;
	if (l)
		t.layout = *l;
	s = tm_symbolizer_new(&t);
	if (!s || !f || !l) {
		CHECK(0, "3.%d: symbolizer setup", minor);
		goto cleanup;
	}
	code = (uint64_t)(uintptr_t)f->code;
	make_ascii(l, f->name1, "/srv/app/cache.py");
	make_lines(l, f->lines);
	make_code(l, f, f->name1, 40);

	rc = tm_symbolize_frame(s, code, raw_lasti(l, f, 4), &fn, &line);
	CHECK(rc == 0 && !strcmp(fn, "/srv/app/cache.py") && line == 41, "3.%d: ascii name, line 41 (%s:%u)",
	      minor, fn, line);
	rc = tm_symbolize_frame(s, code, raw_lasti(l, f, 10), &fn, &line);
	CHECK(rc == 0 && line == 42, "3.%d: offset 10 -> line 42 (got %u)", minor, line);
	/* Past the bytecode: BPF saw another code object at this address. */
	rc = tm_symbolize_frame(s, code, raw_lasti(l, f, 12), &fn, &line);
	CHECK(rc == -ENOENT && !strcmp(fn, "<unknown>") && line == 0,
	      "3.%d: position past the bytecode -> <unknown>:0 (%s:%u)", minor, fn, line);
	/* Not started: f_lasti -1 (<=3.10) gives co_firstlineno; a 3.11+ prev_instr
	 * before the code is an incomplete frame, skipped (1) as tracemalloc does. */
	rc = tm_symbolize_frame(s, code, raw_lasti(l, f, -2), &fn, &line);
	if (l->frame_kind == TM_FRAMES_OBJECT)
		CHECK(rc == 0 && line == 40, "3.%d: not started -> co_firstlineno (got %u)", minor, line);
	else
		CHECK(rc == 1, "3.%d: prev_instr before the code -> incomplete frame (1)", minor);

	/* Address reuse: another code object (other name, first line) at the same address. */
	uint32_t ucs2[] = { '/', 0x4e2d, 0x6587, 0xdc80, '.', 'p', 'y' };
	make_str(l, f->name2, 2, ucs2, 7, 1);
	make_code(l, f, f->name2, 100);
	rc = tm_symbolize_frame(s, code, raw_lasti(l, f, 0), &fn, &line);
	CHECK(rc == 0 && !strcmp(fn, "/\xe4\xb8\xad\xe6\x96\x87\xed\xb2\x80.py") && line == 100,
	      "3.%d: reused address is read again (UCS-2, lone surrogate as surrogatepass)", minor);

	/* Within one pass an entry is checked once; the next pass sees the change. */
	tm_symbolizer_begin_pass(s);
	tm_symbolize_frame(s, code, raw_lasti(l, f, 0), &fn, &line);
	uint32_t ucs4[] = { '/', 0x1f600, 0xe9, '.', 'p', 'y' };
	make_str(l, f->name1, 4, ucs4, 6, 1);
	make_code(l, f, f->name1, 7);
	tm_symbolize_frame(s, code, raw_lasti(l, f, 0), &fn, &line);
	int same_pass_cached = line == 100;
	tm_symbolizer_begin_pass(s);
	rc = tm_symbolize_frame(s, code, raw_lasti(l, f, 0), &fn, &line);
	CHECK(same_pass_cached && rc == 0 && !strcmp(fn, "/\xf0\x9f\x98\x80\xc3\xa9.py") && line == 7,
	      "3.%d: begin_pass revalidates (UCS-4 name)", minor);

	tm_symbolizer_begin_pass(s); /* each following case is a new "snapshot" */
	uint32_t latin[] = { '/', 0xe9, 't', 0xe9, '.', 'p', 'y' };
	make_str(l, f->name2, 1, latin, 7, 1);
	make_code(l, f, f->name2, 8);
	rc = tm_symbolize_frame(s, code, raw_lasti(l, f, 0), &fn, &line);
	CHECK(rc == 0 && !strcmp(fn, "/\xc3\xa9t\xc3\xa9.py"), "3.%d: latin-1 name (%s)", minor, fn);

	/* A legacy (non-compact) str: tracemalloc-like <unknown>, 0. */
	tm_symbolizer_begin_pass(s);
	make_str(l, f->name1, 1, latin, 7, 0);
	make_code(l, f, f->name1, 9);
	rc = tm_symbolize_frame(s, code, raw_lasti(l, f, 0), &fn, &line);
	CHECK(rc == -ENOENT && !strcmp(fn, "<unknown>") && line == 0, "3.%d: non-compact str -> <unknown>:0",
	      minor);

	/* Not a code object. */
	tm_symbolizer_begin_pass(s);
	make_ascii(l, f->name1, "x.py");
	make_code(l, f, f->name1, 9);
	put64(f->code + TM_PY_OB_TYPE, 12345);
	rc = tm_symbolize_frame(s, code, raw_lasti(l, f, 0), &fn, &line);
	CHECK(rc == -ENOENT && !strcmp(fn, "<unknown>") && line == 0, "3.%d: wrong ob_type -> <unknown>:0",
	      minor);

	if (l->frame_kind == TM_FRAMES_INTERP) {
		/* _PyFrame_IsIncomplete: before RESUME (firsttraceable code units). */
		tm_symbolizer_begin_pass(s);
		make_code(l, f, f->name1, 9);
		put32(f->code + l->co_firsttraceable, 2);
		rc = tm_symbolize_frame(s, code, raw_lasti(l, f, 2), &fn, &line);
		int rc2 = tm_symbolize_frame(s, code, raw_lasti(l, f, 4), &fn, &line);
		CHECK(rc == 1 && rc2 == 0 && line == 10, "3.%d: prologue frame skipped (1), RESUME kept", minor);
	}
	if (t.none_addr) {
		rc = tm_symbolize_frame(s, t.none_addr, 0, &fn, &line);
		CHECK(rc == 1, "3.%d: shim frame (f_executable = None) skipped", minor);
	}
	if (minor >= 14) {
		/* f_executable is a _PyStackRef: None | 1 in interpreter frames, a
		 * code object possibly tagged too. */
		rc = tm_symbolize_frame(s, t.none_addr | 1, 0, &fn, &line);
		CHECK(rc == 1, "3.%d: interpreter frame (None | 1) skipped", minor);
		tm_symbolizer_begin_pass(s);
		make_code(l, f, f->name1, 9);
		rc = tm_symbolize_frame(s, code | 1, raw_lasti(l, f, 4), &fn, &line);
		CHECK(rc == 0 && !strcmp(fn, "x.py") && line == 10,
		      "3.%d: tagged code reference (code | 1) resolves (%s:%u)", minor, fn, line);
	}
	make_code(l, f, f->name1, 9);
	tm_symbolizer_flush(s);
	rc = tm_symbolize_frame(s, code, raw_lasti(l, f, 0), &fn, &line);
	CHECK(rc == 0 && !strcmp(fn, "x.py"), "3.%d: works after flush", minor);
	test_dead_code(l, f, s, minor);
	test_checked(l, f, s, minor);
cleanup:
	tm_symbolizer_free(s);
	free(f);
}

int main(void)
{
	for (int minor = 8; minor <= 15; minor++)
		test_version(minor);
	return CHECK_DONE();
}
