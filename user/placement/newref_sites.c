/* Call sites of _Py_NewReference (newref_sites.h). */
#include "placement/newref_sites.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "placement/x86_insn.h"

/* Functions that call _Py_NewReference only on memory they have just
 * allocated (or reallocated: tracemalloc gives the new block the current
 * traceback at the realloc already), 3.9-3.13. Everything else is probed:
 * the free lists (tuple_alloc, PyList_New, new_dict and its inlined copies,
 * PyFloat_FromDouble, frames, contexts, slices, async generators,
 * MemoryError), PyObject_Init (extensions may recycle memory), and any
 * function this list does not know. */
static const char *const fresh_names[] = {
	"_PyObject_New", "_PyObject_NewVar", "_PyObject_GC_New", "_PyObject_GC_NewVar",
	"PyUnstable_Object_GC_NewWithExtraData", "PyType_GenericAlloc", "_PyType_AllocNoTrack",
	"PyUnicode_New", "resize_compact", "PyUnicode_BuildEncodingMap",
	"_PyLong_New", "PyLong_FromLong", "PyLong_FromLongLong", "_PyLong_Add",
	"_PyLong_Subtract", "_PyLong_Multiply", "_PyLong_GCD", "_PyLong_DivmodNear", "l_mod",
	"int___round__",
	"PyBytes_FromString", "PyBytes_FromStringAndSize", "_PyBytes_FromSize", "_PyBytes_Resize",
	"bytes_repeat", "bytes_new",
	"PyComplex_FromCComplex", "_PyTuple_Resize",
};

int tm_newref_site_is_fresh(const char *name)
{
	size_t len = strcspn(name, ".");

	/* long_add, long_mul, ...: int objects have no free list (3.9-3.13). */
	if (len > 5 && strncmp(name, "long_", 5) == 0)
		return 1;
	for (size_t i = 0; i < sizeof(fresh_names) / sizeof(fresh_names[0]); i++)
		if (strlen(fresh_names[i]) == len && strncmp(name, fresh_names[i], len) == 0)
			return 1;
	return 0;
}

struct scan {
	const struct tm_elf *e;
	uint64_t targets[2];
	size_t ntargets;
	struct tm_newref_sites *out;
	uint8_t *buf;
	size_t cap;
	int err;
};

static int is_target(const struct scan *s, uint64_t to)
{
	for (size_t i = 0; i < s->ntargets; i++)
		if (s->targets[i] == to)
			return 1;
	return 0;
}

/* One rel32 call or jmp to a target at each site; a rough byte search first,
 * so that only functions that may hold one are decoded. */
static int may_hold_site(const struct scan *s, const uint8_t *c, size_t len, uint64_t vaddr)
{
	for (size_t i = 0; i + 5 <= len; i++) {
		int32_t rel;

		if (c[i] != 0xe8 && c[i] != 0xe9)
			continue;
		memcpy(&rel, c + i + 1, 4);
		if (is_target(s, vaddr + i + 5 + (int64_t)rel))
			return 1;
	}
	return 0;
}

static int add_site(struct tm_newref_sites *out, uint64_t vaddr)
{
	for (size_t i = 0; i < out->n; i++)
		if (out->vaddr[i] == vaddr)
			return 0; /* an alias of a function already scanned */
	if (out->n == TM_NEWREF_MAX_SITES)
		return -E2BIG;
	out->vaddr[out->n++] = vaddr;
	return 0;
}

static int scan_func(void *arg, const char *name, uint64_t vaddr, uint64_t size)
{
	struct scan *s = arg;
	size_t at = 0;

	if (!tm_elf_vaddr_is_exec(s->e, vaddr) || size > (64u << 20))
		return 0;
	if (size > s->cap) {
		uint8_t *n = realloc(s->buf, size);

		if (!n)
			return -ENOMEM;
		s->buf = n;
		s->cap = size;
	}
	if (tm_elf_read(s->e, vaddr, s->buf, size))
		return 0;
	if (!may_hold_site(s, s->buf, size, vaddr))
		return 0;
	s->out->nfuncs++;
	while (at < size) {
		struct tm_x86_insn in;
		enum tm_x86_flow f;
		uint64_t target;
		int e;

		if (tm_x86_decode(s->buf + at, size - at, &in))
			return -ENOEXEC;
		f = tm_x86_flow(&in);
		/* call rel32, or jmp rel32 (a tail call) */
		if (in.len == 5 && (f == TM_X86_CALL || f == TM_X86_JMP) &&
		    tm_x86_branch_target(&in, vaddr + at, &target) == 0) {
			if (is_target(s, target)) {
				if (tm_newref_site_is_fresh(name)) {
					s->out->nfresh++;
				} else {
					e = add_site(s->out, vaddr + at);
					if (e)
						return e;
				}
			}
		}
		at += in.len;
	}
	return 0;
}

int tm_newref_sites_find(const struct tm_elf *e, uint64_t newref_vaddr,
			 struct tm_newref_sites *out)
{
	struct scan s = { .e = e, .out = out };
	uint64_t stub;
	int err;

	memset(out, 0, sizeof(*out));
	if (!tm_elf_has_symtab(e))
		return -ENOENT;
	s.targets[s.ntargets++] = newref_vaddr;
	if (tm_elf_plt_stub(e, "_Py_NewReference", &stub) == 0)
		s.targets[s.ntargets++] = stub;
	err = tm_elf_each_func(e, scan_func, &s);
	free(s.buf);
	if (err)
		return err;
	return out->n || out->nfresh ? 0 : -ENOENT;
}
