/* Call sites of _Py_NewReference (newref_sites.h). */
#include "placement/newref_sites.h"

#include <elf.h>
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

/* ---- inlined copies (LTO) ------------------------------------------------------ */

#define INLINE_WINDOW 6 /* instructions from the tracer load to the jcc */

/* `movq $1,(%X)`: c7 /0 with REX.W, a base register, no index, no
 * displacement (mod 00, or 01 with disp8 0 for %rbp/%r13), immediate 1. */
static int refcnt_one_store(const struct tm_x86_insn *in)
{
	return in->map == 0 && in->op == 0xc7 && (in->reg & 7) == 0 && (in->rex & 8) &&
	       in->mod != 3 && !in->rip_relative && in->base != TM_X86_NO_REG &&
	       in->index == TM_X86_NO_REG && in->disp == 0 && in->imm == 1;
}

/* From the tracer load at va (into reg r): the jcc and the object register,
 * or 0 when the pattern does not follow. */
static int inline_site(const uint8_t *c, size_t avail, uint64_t va, unsigned r, uint64_t *jcc,
		       uint8_t *obj)
{
	struct tm_x86_insn in;
	size_t at;
	int x = -1;

	if (tm_x86_decode(c, avail, &in))
		return 0;
	at = in.len;
	for (int k = 0; k < INLINE_WINDOW && at < avail; k++) {
		struct tm_x86_effect e;

		if (tm_x86_decode(c + at, avail - at, &in))
			return 0;
		if (refcnt_one_store(&in)) {
			x = in.base;
		} else if (in.map == 0 && in.op == 0x85 && in.mod == 3 && in.reg == r && in.rm == r &&
			   (in.rex & 8)) {
			/* test %R,%R: the jcc must come next */
			size_t j = at + in.len;

			if (x < 0 || tm_x86_decode(c + j, avail - j, &in) ||
			    tm_x86_flow(&in) != TM_X86_JCC || in.p66 || ((in.op & 0x0f) != 4 &&
			    (in.op & 0x0f) != 5))
				return 0;
			*jcc = va + j;
			*obj = (uint8_t)x;
			return 1;
		} else {
			tm_x86_effect(&in, &e);
			if (e.unknown || e.branch || (e.writes & (1u << r)))
				return 0;
			if (x >= 0 && (e.writes & (1u << x)))
				return 0; /* the object's register changed */
		}
		at += in.len;
	}
	return 0;
}

int tm_newref_inline_sites(const struct tm_elf *e, uint64_t tracer_vaddr, uint64_t skip_lo,
			   uint64_t skip_hi, struct tm_newref_inline *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < tm_elf_nsegments(e); i++) {
		const struct tm_elf_segment *sg = tm_elf_segment(e, i);
		uint8_t *buf;

		if (!sg || !(sg->flags & PF_X) || !sg->filesz || sg->filesz > (256u << 20))
			continue;
		buf = malloc(sg->filesz);
		if (!buf)
			return -ENOMEM;
		if (tm_elf_read(e, sg->vaddr, buf, sg->filesz)) {
			free(buf);
			continue;
		}
		/* mov disp32(%rip),%r64: REX.W (48/4c) 8b, ModRM mod 00 rm 101 */
		for (size_t k = 0; k + 7 <= sg->filesz; k++) {
			uint64_t va = sg->vaddr + k, jcc;
			int32_t disp;
			uint8_t obj;
			unsigned r;

			if ((buf[k] != 0x48 && buf[k] != 0x4c) || buf[k + 1] != 0x8b ||
			    (buf[k + 2] & 0xc7) != 0x05)
				continue;
			memcpy(&disp, buf + k + 3, 4);
			if (va + 7 + (int64_t)disp != tracer_vaddr || (va >= skip_lo && va < skip_hi))
				continue;
			r = ((buf[k + 2] >> 3) & 7) | (buf[k] == 0x4c ? 8 : 0);
			if (!inline_site(buf + k, sg->filesz - k, va, r, &jcc, &obj))
				continue;
			if (out->n == TM_NEWREF_MAX_INLINE) {
				free(buf);
				return -E2BIG;
			}
			out->vaddr[out->n] = jcc;
			out->reg[out->n++] = obj;
		}
		free(buf);
	}
	return out->n ? 0 : -ENOENT;
}
