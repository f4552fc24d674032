/* CPython 3.13+ from their own files: the _Py_DebugOffsets in the file image
 * of _PyRuntime of pyenv's 3.13.0 and of the distribution builds of the test
 * roots (tools/test_roots.sh: sid 3.13.18, 3.14.10, 3.14.10 debug, 3.15.2,
 * trixie 3.13.5), and what tmbpf derives from them and from their code:
 *  - the 3.13 layout equals the hard-coded 3.13 table (its cross-check);
 *  - 3.14/3.15 offsets as measured in their headers (cpython-314-315 notes);
 *  - allocators, autoTSSkey and the thread-local routes decoded from code;
 *  - the inlined _Py_NewReference copies found in the LTO builds;
 *  - a newer minor (the 3.15 image relabelled 3.16) is accepted as newer, and
 *    refused, with the reason, once a field no longer fits.
 * Files only, no process; an interpreter not installed is skipped. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "placement/code_refs.h"
#include "placement/elf_file.h"
#include "placement/newref_sites.h"
#include "target/debug_offsets.h"
#include "target/layouts.h"

struct known {
	const char *name, *path;
	int minor, lto, debug;
	uint32_t tls_tstate;  /* -%fs offset of _Py_tss_tstate (local exec), 0: not checked */
	uint32_t tls_gilstate; /* 3.15 _Py_tss_gilstate, 0: none */
};

#define SID "/var/cache/tmbpf-test/sid/usr/bin/"
#define TRIXIE "/var/cache/tmbpf-test/trixie/usr/bin/"

static const struct known bins[] = {
	{ "pyenv 3.13.0", NULL, 13, 0, 0, 0, 0 },
	{ "trixie 3.13.5", TRIXIE "python3.13", 13, 1, 0, 0x18, 0 },
	{ "sid 3.13.18", SID "python3.13", 13, 1, 0, 0x18, 0 },
	{ "sid 3.14.10", SID "python3.14", 14, 1, 0, 0x18, 0 },
	{ "sid 3.14.10 debug", SID "python3.14d", 14, 0, 1, 0x8, 0 },
	{ "sid 3.15.2", SID "python3.15", 15, 1, 0, 0x20, 0x28 },
};

static int image(struct tm_elf *e, uint8_t *buf, size_t len, struct tm_elf_sym *rt)
{
	if (tm_elf_symbol(e, "_PyRuntime", rt))
		return -ENOENT;
	if (rt->size < len)
		len = rt->size;
	return tm_elf_read(e, rt->value, buf, len);
}

static void check_313_table(const char *name, const struct tm_layout *d)
{
	const struct tm_layout *t = tm_layout_get(13);

	CHECK(t && d->rt_interpreters_head == t->rt_interpreters_head &&
	      d->is_threads_head == t->is_threads_head && d->ts_next == t->ts_next &&
	      d->ts_thread_id == t->ts_thread_id && d->ts_frame == t->ts_frame &&
	      d->ts_datastack_chunk == t->ts_datastack_chunk && d->ts_status == t->ts_status &&
	      d->f_back == t->f_back && d->f_code == t->f_code && d->f_lasti == t->f_lasti &&
	      d->f_owner == t->f_owner && d->f_read_size == t->f_read_size &&
	      d->co_firstlineno == t->co_firstlineno && d->co_filename == t->co_filename &&
	      d->co_lines == t->co_lines && d->co_firsttraceable == t->co_firsttraceable &&
	      d->co_code_adaptive == t->co_code_adaptive && d->ascii_data == t->ascii_data &&
	      d->compact_data == t->compact_data && d->rt_alloc_raw == t->rt_alloc_raw &&
	      d->rt_autotss_key == t->rt_autotss_key && d->f_code_tags == 0,
	      "%s: the layout from _Py_DebugOffsets equals the hard-coded 3.13 table", name);
}

static void check_new(const char *name, int minor, const struct tm_layout *d)
{
	CHECK(d->ts_frame == 0x48 && d->f_back == 8 && d->f_code == 0 && d->f_lasti == 0x38 &&
	      d->f_owner == 0x4a && d->f_read_size == 0x50 && d->co_code_adaptive == 0xd0 &&
	      d->co_firsttraceable == 0xc0 && d->co_filename == 0x70 && d->co_firstlineno == 0x44 &&
	      d->ts_thread_id == (minor == 14 ? 0x98u : 0xb0u) &&
	      d->ts_datastack_chunk == (minor == 14 ? 0xe8u : 0x100u) && d->f_code_tags == 3,
	      "%s: 3.%d offsets (current_frame 0x%x, owner 0x%x, thread_id 0x%x, "
	      "co_code_adaptive 0x%x, tag bits %u)", name, minor, d->ts_frame, d->f_owner,
	      d->ts_thread_id, d->co_code_adaptive, d->f_code_tags);
}

static void check_code(const struct known *k, struct tm_elf *e, const struct tm_elf_sym *rt,
		       const struct tm_layout *l)
{
	uint64_t alloc[TM_NDOMAINS], key = 0, got = 0, tracer = 0;
	int64_t le = 0;
	int rc;

	if (!k->path) {
		/* A PIC libpython reaches _PyRuntime through the GOT: nothing to
		 * decode, tmbpf takes the table (checked above against the offsets). */
		printf("# %s: allocators and autoTSSkey from the table (GOT-relative code)\n", k->name);
		return;
	}
	CHECK(tm_code_allocator_structs(e, alloc) == 0 &&
	      alloc[TM_DOM_RAW] == rt->value + l->rt_alloc_raw &&
	      alloc[TM_DOM_MEM] == rt->value + l->rt_alloc_mem &&
	      alloc[TM_DOM_OBJ] == rt->value + l->rt_alloc_obj,
	      "%s: the allocator wrappers' code names allocators.standard at the table's offsets",
	      k->name);
	rc = tm_code_first_ref_in(e, "PyGILState_GetThisThreadState", rt->value,
				  rt->value + rt->size, &key);
	if (k->minor <= 14)
		CHECK(rc == 0 && key == rt->value + l->rt_autotss_key,
		      "%s: PyGILState_GetThisThreadState names autoTSSkey at +0x%llx", k->name,
		      (unsigned long long)(key - rt->value));
	else
		CHECK(rc == -ENOENT && l->rt_autotss_key == TM_NO_OFFSET,
		      "%s: no autoTSSkey any more (3.15)", k->name);
	if (k->tls_tstate)
		CHECK(tm_code_tls_access(e, "_PyThreadState_GetCurrent", &got, &le) == 1 &&
		      le == -(int64_t)k->tls_tstate,
		      "%s: _Py_tss_tstate at %%fs:-0x%x (local exec)", k->name, k->tls_tstate);
	if (k->tls_gilstate)
		CHECK(tm_code_tls_access(e, "PyGILState_GetThisThreadState", &got, &le) == 1 &&
		      le == -(int64_t)k->tls_gilstate,
		      "%s: _Py_tss_gilstate at %%fs:-0x%x (local exec)", k->name, k->tls_gilstate);
	if (k->lto) {
		struct tm_newref_inline *in = malloc(sizeof(*in));
		struct tm_elf_sym nr;

		rc = in && tm_elf_symbol(e, "_Py_NewReference", &nr) == 0 &&
		     tm_code_first_ref_in(e, "_Py_NewReference", rt->value, rt->value + rt->size,
					  &tracer) == 0
			     ? tm_newref_inline_sites(e, tracer, nr.value, nr.value + nr.size, in)
			     : -ENOENT;
		CHECK(rc == 0 && in->n > 200, "%s: %zu inlined _Py_NewReference copies found "
		      "(ref tracer at _PyRuntime+0x%llx)", k->name, rc == 0 ? in->n : 0,
		      (unsigned long long)(tracer - rt->value));
		free(in);
	}
}

/* The 3.15 image relabelled as 3.16: the newest table reads it; a broken
 * field refuses it. */
static void check_newer(const uint8_t *img, size_t len, uint64_t rt_size)
{
	uint8_t *b = malloc(len);
	struct tm_debug_offsets o;
	uint64_t v = 0x031000f0, bad = 0x100000;
	char why[160] = "";
	int newer = 0, rc;

	if (!b)
		return;
	memcpy(b, img, len);
	memcpy(b + 8, &v, 8);
	rc = tm_debug_offsets_parse(b, len, rt_size, &o, &newer, why, sizeof(why));
	CHECK(rc == 0 && newer && o.minor == 16 && o.table_minor == 15,
	      "3.15 image as 3.16: read with the 3.15 table, marked newer (%s)", why);
	memcpy(b + 0xb0, &bad, 8); /* thread_state.size */
	rc = tm_debug_offsets_parse(b, len, rt_size, &o, &newer, why, sizeof(why));
	CHECK(rc == -EPROTO && strstr(why, "thread_state.size"),
	      "3.16 with a field that no longer fits: refused (%s)", why);
	free(b);
}

int main(void)
{
	char pyenv[512] = "";
	FILE *p = popen("ls -d ${PYENV_ROOT:-$HOME/.pyenv}/versions/3.13.*/lib/libpython3.13.so.1.0 "
			"2>/dev/null | head -1", "r");

	if (p) {
		if (!fgets(pyenv, sizeof(pyenv), p))
			pyenv[0] = '\0';
		pyenv[strcspn(pyenv, "\n")] = '\0';
		pclose(p);
	}
	for (size_t i = 0; i < sizeof(bins) / sizeof(bins[0]); i++) {
		const struct known *k = &bins[i];
		const char *path = k->path ? k->path : pyenv;
		uint8_t img[TM_DEBUG_OFFSETS_MAX];
		struct tm_debug_offsets o;
		struct tm_layout l;
		struct tm_elf_sym rt;
		struct tm_elf *e;
		char why[160] = "";
		int newer = 0, rc;

		if (!path[0] || access(path, R_OK) || !(e = tm_elf_open(path))) {
			printf("skip - versions %s: %s not installed (tools/test_roots.sh)\n", k->name,
			       path[0] ? path : "pyenv 3.13");
			continue;
		}
		memset(img, 0, sizeof(img));
		rc = image(e, img, sizeof(img), &rt);
		if (!rc)
			rc = tm_debug_offsets_parse(img, rt.size < sizeof(img) ? rt.size : sizeof(img),
						    rt.size, &o, &newer, why, sizeof(why));
		if (!rc)
			rc = tm_layout_from_debug_offsets(&o, &l, why, sizeof(why));
		CHECK(rc == 0 && !newer && o.minor == k->minor,
		      "%s: _Py_DebugOffsets of the file image parse (version 0x%llx, runtime 0x%llx "
		      "bytes) %s", k->name, (unsigned long long)o.version,
		      (unsigned long long)o.rt_size, why);
		if (rc) {
			tm_elf_close(e);
			continue;
		}
		if (k->minor == 13)
			check_313_table(k->name, &l);
		else
			check_new(k->name, k->minor, &l);
		check_code(k, e, &rt, &l);
		if (k->minor == 15 && !k->debug)
			check_newer(img, rt.size < sizeof(img) ? rt.size : sizeof(img), rt.size);
		tm_elf_close(e);
	}
	return CHECK_DONE();
}
