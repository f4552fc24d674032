/* What an interpreter's or libc's machine code says about where data lives,
 * read from the ELF file with the decoder of x86_insn.h: the memory operands
 * of a function, the allocator structs behind CPython's exported wrappers,
 * glibc's thread-specific-data offset and the TLS access of
 * _PyThreadState_GetCurrent. File analysis only: no process. Every result is
 * a candidate that the caller validates (in the file or the process). */
#ifndef TM_PLACEMENT_CODE_REFS_H
#define TM_PLACEMENT_CODE_REFS_H

#include <stddef.h>
#include <stdint.h>

#include "placement/allocators.h"
#include "placement/elf_file.h"

/* One memory operand of an instruction: rip-relative, or an absolute disp32
 * (non-PIE code), possibly indexed (`mov table(,%idx,8),%reg`). */
struct tm_code_ref {
	uint64_t target;   /* vaddr referenced (an indexed operand: the table's start) */
	uint32_t at;       /* offset of the instruction from the function's start */
	uint8_t opcode;    /* one-byte-map opcode: 0x8b load, 0x8d lea, 0x89 store, 0xff call/jmp; 0 other maps */
	uint8_t reg;       /* ModRM reg field with REX.R (the destination of a load or lea) */
	uint8_t indexed;   /* an index register scales into the table */
	uint8_t scale;     /* its scale (1, 2, 4, 8) */
	uint8_t seg;       /* segment override (0x64: %fs), 0: none */
	uint8_t rex_w;     /* 64-bit operand */
};

/* The memory operands of the first len bytes of the function at vaddr,
 * decoded linearly from its start (stops at the first instruction not
 * decoded, or at the end of what the file holds). Returns how many were
 * stored (at most max), or a negative errno. */
int tm_code_refs(const struct tm_elf *e, uint64_t vaddr, size_t len, struct tm_code_ref *refs,
		 size_t max);

/* 3.8-3.11 allocator structs (RAW, MEM, OBJ) of a build without .symtab,
 * from the code of the exported wrappers PyMem_RawMalloc/PyMem_Malloc/
 * PyObject_Malloc (ctx at +0, malloc at +8) and *_Free (free at +0x20):
 * each candidate must look like a file initializer (four code addresses).
 * vaddr[] are ELF vaddrs. Returns 0 or -ENOENT. */
int tm_code_allocator_structs(const struct tm_elf *e, uint64_t vaddr[TM_NDOMAINS]);

/* glibc's offsetof(struct pthread, specific_1stblock), from the code of
 * pthread_getspecific in libc (e): `add $IMM8,%rax; shl $4,%rax; add
 * %fs:0x10,%rax; mov 0x8(%rax),..` gives IMM8 * 16. 0 or -ENOENT. */
int tm_code_tsd_offset(const struct tm_elf *e, uint32_t *off);

/* How the function fn of e reads a thread-local variable:
 *   1, *le_off: local exec, `mov %fs:OFF,%reg` (static executables; OFF < 0)
 *   0, *got:    general dynamic, `data16 lea GOT(%rip),%rdi; call __tls_get_addr`
 *               (shared libraries): the vaddr of the GOT pair (module id, offset)
 *   -ENOENT otherwise. */
int tm_code_tls_access(const struct tm_elf *e, const char *fn, uint64_t *got, int64_t *le_off);

/* The first data address in [lo, hi) that the first 64 bytes of the
 * exported function fn name, as a memory operand (rip-relative or absolute)
 * or as a 32-bit immediate moved into a register (`mov $addr,%edi`: a
 * non-PIE executable passing &_PyRuntime.field). 0 or -ENOENT. Used for
 * PyGILState_GetThisThreadState -> _PyRuntime.autoTSSkey (3.13, 3.14). */
int tm_code_first_ref_in(const struct tm_elf *e, const char *fn, uint64_t lo, uint64_t hi,
			 uint64_t *vaddr);

/* Candidates for pymalloc's usedpools[] in the code of its malloc
 * implementation at vaddr (stripped 3.8-3.11): `mov usedpools(,%idx,8),%reg`
 * (non-PIE: absolute, indexed) first, then rip-relative loads and leas of
 * data. Returns how many vaddrs were stored (at most max). */
int tm_code_usedpools_candidates(const struct tm_elf *e, uint64_t vaddr, uint64_t *out,
				 size_t max);

/* Offsets into the object named sym (e.g. _PyRuntime) that the code of
 * function fn (its first len bytes) reads or writes: memory operands
 * rip-relative to an address inside sym (sym_vaddr, sym_size: from the
 * symbol table), or based on a register loaded from sym's GOT entry
 * (shared libraries). Stored in code order, duplicates kept; returns how
 * many (at most max), or a negative errno. */
int tm_code_field_offsets(const struct tm_elf *e, const char *fn, size_t len, const char *sym,
			  uint64_t sym_vaddr, uint64_t sym_size, uint64_t *out, size_t max);

#endif
