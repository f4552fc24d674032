/* Where to probe _Py_NewReference (3.9+): at its call sites rather than its
 * entry. tracemalloc re-attributes a new object's block to the current
 * traceback; that matters only for objects taken from a free list, since a
 * fresh object's block was recorded a moment before with the same traceback.
 * Most calls (every str, int, instance, fresh tuple) come from functions that
 * have just allocated the object: probing only the other call sites saves a
 * uprobe trap (~0.35 us here) per fresh object. Which functions allocate
 * fresh is known by name (the .symtab of an unstripped build); without names
 * the caller probes the entry as before. Pure ELF analysis: no process. */
#ifndef TM_PLACEMENT_NEWREF_SITES_H
#define TM_PLACEMENT_NEWREF_SITES_H

#include <stddef.h>
#include <stdint.h>

#include "placement/elf_file.h"

#define TM_NEWREF_MAX_SITES 256

struct tm_newref_sites {
	size_t n;                             /* call sites to probe */
	uint64_t vaddr[TM_NEWREF_MAX_SITES];  /* ELF vaddr of each `call`/`jmp` instruction */
	size_t nfresh;                        /* call sites left out: fresh allocations */
	size_t nfuncs;                        /* functions decoded */
};

/* 1 when a call of _Py_NewReference made in function name (a .symtab name;
 * ".cold", ".isra.0" and similar suffixes ignored) always follows the
 * allocation of the object it initialises. */
int tm_newref_site_is_fresh(const char *name);

/* Decode every function of e's .symtab and collect the instructions that
 * call or jump to newref_vaddr (or to its PLT stub). Returns 0; -ENOENT when
 * there is no .symtab or no site was found; -E2BIG when there are more than
 * TM_NEWREF_MAX_SITES; -ENOEXEC when a function holding a call could not be
 * decoded to its end (a site could be missed: probe the entry instead). */
int tm_newref_sites_find(const struct tm_elf *e, uint64_t newref_vaddr,
			 struct tm_newref_sites *out);

/* 3.13+ builds with LTO (Debian's) inline _Py_NewReference almost
 * everywhere: the out-of-line copy sees a few dozen of the hundreds of
 * places that make an object, and tracemalloc's re-attribution of objects
 * taken from a free list (ints, floats, tuples, lists, dicts...) goes
 * unseen (0.5 % of a program's bytes on the wrong line). Each inlined copy
 * reads the ref tracer and sets the refcount:
 *     mov  tracer_func(%rip),%R
 *     movq $1,(%OBJ)                 (within 4 instructions)
 *     test %R,%R
 *     je/jne                         <- probed: emulated, on every path
 * (the DESTROY side of _Py_Dealloc reads the tracer too, but never sets a
 * refcount of 1). The jcc is probed with the object in OBJ (OBJ not written
 * between the store and the jcc). */
#define TM_NEWREF_MAX_INLINE 1024

struct tm_newref_inline {
	size_t n;
	uint64_t vaddr[TM_NEWREF_MAX_INLINE]; /* ELF vaddr of each jcc */
	uint8_t reg[TM_NEWREF_MAX_INLINE];    /* register holding the object there (x86_insn.h) */
};

/* Scan e's executable segments for the inlined copies reading the tracer
 * function pointer at tracer_vaddr, leaving out [skip_lo, skip_hi) (the
 * out-of-line _Py_NewReference, probed at its entry). Returns 0; -ENOENT
 * when none was found; -E2BIG when there are more than the maximum. */
int tm_newref_inline_sites(const struct tm_elf *e, uint64_t tracer_vaddr, uint64_t skip_lo,
			   uint64_t skip_hi, struct tm_newref_inline *out);

#endif
