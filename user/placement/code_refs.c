/* Data references found in machine code (code_refs.h). */
#include "placement/code_refs.h"

#include <errno.h>
#include <string.h>

#include "placement/x86_insn.h"

int tm_code_refs(const struct tm_elf *e, uint64_t vaddr, size_t len, struct tm_code_ref *refs,
		 size_t max)
{
	uint8_t code[512];
	size_t at = 0, n = 0;
	int err;

	if (len > sizeof(code))
		len = sizeof(code);
	/* Shorten until readable: the function may sit at the end of a segment. */
	while ((err = tm_elf_read(e, vaddr, code, len)) == -ENOENT && len > 16)
		len /= 2;
	if (err)
		return err;
	while (at < len && n < max) {
		struct tm_x86_insn in;
		uint64_t target;

		if (tm_x86_decode(code + at, len - at, &in))
			break;
		if (tm_x86_mem_target(&in, vaddr + at, 1, &target) == 0) {
			refs[n] = (struct tm_code_ref){
				.target = target,
				.at = (uint32_t)at,
				.opcode = in.map == 0 ? in.op : 0,
				.reg = in.reg,
				.indexed = in.index != TM_X86_NO_REG,
				.scale = in.scale,
				.seg = in.seg,
				.rex_w = (in.rex & 8) != 0,
			};
			n++;
		}
		at += in.len;
	}
	return (int)n;
}

/* The file image of a 3.8-3.11 allocator struct is its default initializer:
 * {ctx, malloc, calloc, realloc, free} with four code addresses. */
static int plausible_allocator_image(const struct tm_elf *e, uint64_t vaddr)
{
	uint64_t v[5];

	if (tm_elf_read(e, vaddr, v, sizeof(v)))
		return 0;
	for (int i = 1; i < 5; i++)
		if (!tm_elf_vaddr_is_exec(e, v[i]))
			return 0;
	return 1;
}

/* The exported wrapper loads fields of the struct it calls through
 * (PyMem_Malloc: ctx at +0 and malloc at +8; PyMem_Free: free at +0x20). */
static int allocator_struct(const struct tm_elf *e, const char *malloc_fn, const char *free_fn,
			    uint64_t *vaddr)
{
	const char *fns[2] = { malloc_fn, free_fn };
	const uint64_t field[2] = { 0x8, 0x20 };

	for (int f = 0; f < 2; f++) {
		struct tm_code_ref refs[32];
		struct tm_elf_sym sym;
		int n;

		if (tm_elf_dynsym(e, fns[f], &sym))
			continue;
		n = tm_code_refs(e, sym.value, 96, refs, 32);
		for (int i = 0; i < n; i++) {
			uint64_t s = refs[i].target - field[f];

			if (refs[i].opcode != 0x8b && refs[i].opcode != 0xff)
				continue; /* loads and indirect calls read the struct */
			if (plausible_allocator_image(e, s)) {
				*vaddr = s;
				return 0;
			}
		}
	}
	return -ENOENT;
}

int tm_code_allocator_structs(const struct tm_elf *e, uint64_t vaddr[TM_NDOMAINS])
{
	static const char *const fns[TM_NDOMAINS][2] = {
		{ "PyMem_RawMalloc", "PyMem_RawFree" },
		{ "PyMem_Malloc", "PyMem_Free" },
		{ "PyObject_Malloc", "PyObject_Free" },
	};

	for (int d = 0; d < TM_NDOMAINS; d++)
		if (allocator_struct(e, fns[d][0], fns[d][1], &vaddr[d]))
			return -ENOENT;
	return 0;
}

/* Decoded instructions of fn's first len bytes, at most max. */
static size_t decode_fn(const struct tm_elf *e, const char *fn, size_t len, struct tm_x86_insn *out,
			size_t max)
{
	struct tm_elf_sym sym;
	uint8_t code[128];
	size_t at = 0, n = 0;

	if (len > sizeof(code))
		len = sizeof(code);
	if (tm_elf_dynsym(e, fn, &sym) || tm_elf_read(e, sym.value, code, len))
		return 0;
	while (at < len && n < max && tm_x86_decode(code + at, len - at, &out[n]) == 0)
		at += out[n++].len;
	return n;
}

static int is_op_rax(const struct tm_x86_insn *in, uint8_t op, unsigned sub)
{
	return in->map == 0 && in->op == op && (in->rex & 8) && in->mod == 3 &&
	       in->rm == TM_REG_RAX && (in->reg & 7) == sub;
}

int tm_code_tsd_offset(const struct tm_elf *e, uint32_t *off)
{
	struct tm_x86_insn in[32];
	size_t n = decode_fn(e, "pthread_getspecific", 64, in, 32);

	for (size_t i = 0; i + 3 < n; i++) {
		const struct tm_x86_insn *add = &in[i], *shl = &in[i + 1], *fs = &in[i + 2],
					 *ld = &in[i + 3];

		if (!is_op_rax(add, 0x83, 0) || add->imm < 0 || !is_op_rax(shl, 0xc1, 4) ||
		    shl->imm != 4)
			continue;
		/* add %fs:0x10,%rax (the TCB's self pointer), then a load at +8 */
		if (fs->seg != 0x64 || fs->op != 0x03 || fs->reg != TM_REG_RAX ||
		    fs->base != TM_X86_NO_REG || fs->index != TM_X86_NO_REG || fs->disp != 0x10)
			continue;
		if (ld->op != 0x8b || ld->base != TM_REG_RAX || ld->disp != 8)
			continue;
		*off = (uint32_t)add->imm << 4;
		return 0;
	}
	return -ENOENT;
}

int tm_code_tls_access(const struct tm_elf *e, const char *fn, uint64_t *got, int64_t *le_off)
{
	struct tm_x86_insn in[24];
	struct tm_elf_sym sym;
	size_t n, at = 0;

	*got = 0;
	if (tm_elf_dynsym(e, fn, &sym))
		return -ENOENT;
	n = decode_fn(e, fn, 48, in, 24);
	for (size_t i = 0; i < n; at += in[i].len, i++) {
		if (in[i].map == 0 && in[i].op == 0x8d && in[i].p66 && in[i].rip_relative &&
		    in[i].reg == TM_REG_RDI) {
			*got = sym.value + at + in[i].len + (uint64_t)(int64_t)in[i].disp;
			return 0;
		}
		if (in[i].map == 0 && in[i].op == 0x8b && in[i].seg == 0x64 && (in[i].rex & 8) &&
		    in[i].base == TM_X86_NO_REG && in[i].index == TM_X86_NO_REG && in[i].disp < 0) {
			*le_off = in[i].disp;
			return 1;
		}
	}
	return -ENOENT;
}

int tm_code_first_ref_in(const struct tm_elf *e, const char *fn, uint64_t lo, uint64_t hi,
			 uint64_t *vaddr)
{
	struct tm_x86_insn in[24];
	struct tm_elf_sym sym;
	size_t n, at = 0;

	if (tm_elf_dynsym(e, fn, &sym))
		return -ENOENT;
	n = decode_fn(e, fn, 64, in, 24);
	for (size_t i = 0; i < n; at += in[i].len, i++) {
		uint64_t target;

		if (tm_x86_mem_target(&in[i], sym.value + at, 0, &target) == 0 && target >= lo &&
		    target < hi) {
			*vaddr = target;
			return 0;
		}
		/* mov $imm32,%r32 (b8+r): zero-extended */
		if (in[i].map == 0 && (in[i].op & 0xf8) == 0xb8 && !(in[i].rex & 8) &&
		    (uint64_t)(uint32_t)in[i].imm >= lo && (uint64_t)(uint32_t)in[i].imm < hi) {
			*vaddr = (uint32_t)in[i].imm;
			return 0;
		}
		if (tm_x86_flow(&in[i]) == TM_X86_RET || tm_x86_flow(&in[i]) == TM_X86_JMP)
			break; /* the end of the function's first path */
	}
	return -ENOENT;
}

int tm_code_usedpools_candidates(const struct tm_elf *e, uint64_t vaddr, uint64_t *out, size_t max)
{
	struct tm_code_ref refs[64];
	int n = tm_code_refs(e, vaddr, 256, refs, 64);
	size_t k = 0;

	/* pass 0: mov usedpools(,%idx,8),%reg; pass 1: rip-relative data */
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < n && k < max; i++) {
			const struct tm_code_ref *r = &refs[i];

			if (pass == 0 && !(r->opcode == 0x8b && r->rex_w && r->indexed && r->scale == 8))
				continue;
			if (pass == 1 && (r->indexed || (r->opcode != 0x8d && r->opcode != 0x8b) ||
					  tm_elf_vaddr_is_exec(e, r->target)))
				continue;
			out[k++] = r->target;
		}
	}
	return (int)k;
}

int tm_code_field_offsets(const struct tm_elf *e, const char *fn, size_t len, const char *sym,
			  uint64_t sym_vaddr, uint64_t sym_size, uint64_t *out, size_t max)
{
	uint64_t got = 0, holds[16] = { 0 }; /* holds[r]: 1 when r holds &sym */
	struct tm_elf_sym f;
	uint8_t code[256];
	size_t at = 0, n = 0;

	if (len > sizeof(code))
		len = sizeof(code);
	if (tm_elf_dynsym(e, fn, &f) && tm_elf_symbol(e, fn, &f))
		return -ENOENT;
	while (len > 16 && tm_elf_read(e, f.value, code, len))
		len /= 2;
	if (tm_elf_read(e, f.value, code, len))
		return -ENOENT;
	tm_elf_got_slot(e, sym, &got);
	while (at < len && n < max) {
		struct tm_x86_insn in;
		struct tm_x86_effect fx;
		uint64_t target;

		if (tm_x86_decode(code + at, len - at, &in))
			break;
		if (in.has_modrm && in.mod != 3) {
			if (tm_x86_mem_target(&in, f.value + at, 0, &target) == 0) {
				if (target >= sym_vaddr && target < sym_vaddr + sym_size)
					out[n++] = target - sym_vaddr;
			} else if (in.base != TM_X86_NO_REG && in.index == TM_X86_NO_REG &&
				   holds[in.base & 15] && in.disp >= 0) {
				out[n++] = (uint64_t)in.disp;
			}
		}
		/* linear: conditional branches fall through; calls clobber the
		 * caller-saved registers; the path ends at a jmp or ret */
		switch (tm_x86_flow(&in)) {
		case TM_X86_JMP: case TM_X86_JMP_INDIRECT: case TM_X86_RET:
			return (int)n;
		case TM_X86_CALL: case TM_X86_CALL_INDIRECT:
			for (int r = 0; r < 16; r++)
				if (r != TM_REG_RBX && r != TM_REG_RBP && r < TM_REG_R12)
					holds[r] = 0;
			break;
		default:
			tm_x86_effect(&in, &fx);
			if (fx.unknown)
				return (int)n;
			for (int r = 0; r < 16; r++)
				if (fx.writes & (1u << r))
					holds[r] = 0;
		}
		/* mov sym@GOTPCREL(%rip),%reg */
		if (got && in.map == 0 && in.op == 0x8b && (in.rex & 8) &&
		    tm_x86_mem_target(&in, f.value + at, 0, &target) == 0 && target == got)
			holds[in.reg & 15] = 1;
		at += in.len;
	}
	return (int)n;
}
