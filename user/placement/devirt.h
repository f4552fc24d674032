/* Devirtualized allocator calls in distribution builds of CPython.
 *
 * PGO+LTO builds (Debian's /usr/bin/python3.11, most distribution and
 * official-image Pythons) compile the pymalloc fast path into its callers
 * behind a guard on the live allocator pointer:
 *
 *     mov  _PyObject.malloc,%rax
 *     cmp  $_PyObject_Malloc,%rax        non-PIE: cmp $imm32,%r64
 *     jne  → call *%rax                   (PIE: lea impl(%rip),%reg; cmp %reg,..)
 *     ...inlined pymalloc...
 *
 * While the pointer holds the default implementation, those calls never reach
 * an out-of-line function, so uprobes on the implementation see about 1% of
 * allocations (cpython-internals.md section 1.5/1.6). tm_devirt_scan() reads
 * the ELF file that defines the allocators and counts, per live
 * implementation address, the guards that compare a register with it and
 * branch to an indirect call. It also gathers what redirect.h needs: the
 * default allocator values in the file, existing `jmp rel32 <impl>`
 * instructions, and the zero padding after the last executable segment.
 *
 * Nothing here touches the process: file analysis only (no root needed). */
#ifndef TM_PLACEMENT_DEVIRT_H
#define TM_PLACEMENT_DEVIRT_H

#include <stddef.h>
#include <stdint.h>

#include "placement/allocators.h"

/* Distinct function addresses among the 12 live pointers (at most 12). */
#define TM_DEVIRT_MAX_IMPLS (TM_NDOMAINS * TM_NFNS)

/* A compare is a guard only when je/jne follows and the not-equal path
 * reaches an indirect call: obmalloc's own "is pymalloc in use" checks
 * (_PyObject_DebugMallocStats, _PyMem_PymallocEnabled) compare the same
 * pointer and return, so every build has 1-2 `compares` but no build without
 * PGO devirtualization has `guards`. */

enum tm_coverage {
	TM_COVERAGE_FULL = 0,  /* no guard compares against a live function: probes see every call */
	TM_COVERAGE_REDIRECT,  /* guards exist, live pointers redirected to stubs (redirect.h) */
	TM_COVERAGE_PARTIAL,   /* guards exist, not redirected: most allocations are invisible */
};

struct tm_devirt_impl {
	uint64_t addr;        /* absolute address of a live allocator function */
	uint32_t domains;     /* bit d set when domain d's pointers name it */
	uint32_t fn;          /* enum tm_alloc_fn it is used as (first seen) */
	uint32_t guards;      /* devirtualization guards: compare + branch to an indirect call */
	int guards_live;      /* 1: some domain names addr now and by default, so its guards
			       * still take the inlined path (a guard compares with the
			       * default it was compiled for; PYTHONMALLOC=malloc points mem
			       * and obj at the raw functions, whose guards are raw sites) */
	uint32_t compares;    /* every compare of a register or memory with addr (guards included) */
	uint32_t jmps;        /* `jmp rel32 <addr>` byte sequences in executable segments */
	uint64_t jmp_stub;    /* absolute address of one of them, 0 if none */
	int jmp_stub_probe_ok; /* 1: jmp_stub is a proven instruction boundary (decoded from
				* its function's start in .eh_frame_hdr), so it may carry a
				* uprobe and a uretprobe. 0: only usable as a stub. */
};

struct tm_devirt {
	int stripped;          /* no .symtab in the file */
	int pie;               /* ET_DYN: PIE executable or shared library */
	int defaults_known;    /* file_alloc[] could be read (initialized data, or RELATIVE relocs) */
	int defaults;          /* every effective pointer and ctx equals its initializer */
	struct tm_allocator file_alloc[TM_NDOMAINS]; /* the initializers, absolute addresses */

	/* What the live pointers mean: t->alloc[] with every stub left by an
	 * earlier redirect (a tmbpf that died, or a hook that restored our
	 * stub) replaced by the implementation it jumps to. When not
	 * redirecting, probe THESE functions, never t->alloc[]: a stub in the
	 * padding must never carry a uprobe (the kernel would execute the
	 * file's zeros). impl[] is built from effective[]. */
	struct tm_allocator effective[TM_NDOMAINS];
	unsigned leftover_stubs; /* live pointers that are such stubs (all guards then fail) */

	unsigned nimpls;
	struct tm_devirt_impl impl[TM_DEVIRT_MAX_IMPLS]; /* distinct live functions */
	uint32_t guards;       /* sum over impl[] with guards_live: calls probes cannot see */

	/* Zero padding after the end of the last executable PT_LOAD, up to its
	 * page end: where redirect.c may write 5-byte jmp stubs. */
	uint64_t pad_addr;     /* absolute, 16-byte aligned; 0 when there is no room */
	uint32_t pad_len;      /* bytes */
	uint64_t pad_offset;   /* file offset of pad_addr */

	/* Nop stubs: padding between two functions (bytes no FDE of
	 * .eh_frame_hdr covers, every one a nop) holding a nop the kernel
	 * emulates (a canonical nop of 3, 4, 6, 7 or 8 bytes, never the 5-byte
	 * one) followed by at least 5 more padding bytes. redirect.c writes
	 * `jmp impl` right after the nop in the process; a pointer to the nop
	 * then reaches impl, and since a uprobe decodes the FILE's bytes (the
	 * nop) and emulates them, the stub carries entry and return probes
	 * with the caller's registers and return address untouched: the way to
	 * probe an implementation whose prologue moves %rsp before any emulated
	 * instruction (sid 3.13/3.14 pymalloc calloc and realloc). The first
	 * sites in address order, so a later tmbpf picks the same ones. */
	struct tm_devirt_nop_site {
		uint64_t addr;     /* absolute address of the nop (the stub's entry) */
		uint64_t offset;   /* its file offset */
		uint32_t nop_len;  /* the jmp goes at addr + nop_len */
		uint32_t room;     /* padding bytes from addr to the next function */
	} nop_site[TM_DEVIRT_MAX_IMPLS];
	unsigned nnop_sites;

	enum tm_coverage coverage; /* FULL or PARTIAL after the scan (REDIRECT when only leftover
				    * stubs remain); tm_redirect_apply sets REDIRECT */
	char detail[256];      /* one line: guard counts per function, what is missed */
};

/* Scan elf_path (loaded at load_bias) for guards against the functions that
 * the live allocator structs live[] (as tm_target_open or
 * tm_target_read_allocators left them in t->alloc[]) resolve to, and fill *d.
 * Returns 0, or a negative errno (-ENOENT: unreadable file, -ENOEXEC: not an
 * x86-64 ELF). Cost: one linear pass over the executable segments (~3 MB for
 * Debian's python3.11, a few ms). */
int tm_devirt_scan(const char *elf_path, uint64_t load_bias,
		   const struct tm_allocator live[TM_NDOMAINS], struct tm_devirt *d);

/* Lower level, for tools and tests: scan path (loaded at load_bias) for the
 * n absolute addresses in addrs and fill out[0..n) (addr, guards, compares,
 * jmps, jmp_stub, jmp_stub_probe_ok). stripped/pie may be NULL. */
int tm_devirt_scan_file(const char *path, uint64_t load_bias, const uint64_t *addrs, unsigned n,
			struct tm_devirt_impl *out, int *stripped, int *pie);

/* Human string for every output header:
 *   "full (out-of-line allocator)"
 *   "redirect (LTO-inlined allocator, pointers redirected)"
 *   "partial (LTO-inlined allocator, ~1% of allocations: restart with PYTHONMALLOC=malloc)" */
const char *tm_coverage_str(enum tm_coverage c);

/* The header string for this scan: tm_coverage_str(d->coverage), except for
 * a partial coverage whose pointers someone already changed (no redirect
 * possible; PYTHONMALLOC=malloc leaves the raw domain inlined):
 *   "partial (LTO-inlined allocator, pointers already changed: inlined calls
 *    missed; restart with PYTHONMALLOC=pymalloc_debug)" */
const char *tm_devirt_coverage_str(const struct tm_devirt *d);


#endif
