/* Where to put a uprobe in a function so that the kernel emulates the probed
 * instruction instead of single-stepping it (~0.6 us against ~20 us a hit on
 * these machines, cpython-internals.md section 4).
 *
 * tm_probe_point_find() decodes the first instructions of a function, as read
 * from the ELF file (process memory may hold int3 bytes of other uprobes), and
 * returns the first instruction that
 *   - the kernel emulates (push %reg, jmp/jcc rel, call rel32, canonical nops
 *     but never the 5-byte one, which 6.18 optimizes into a call that a
 *     forked child does not inherit),
 *   - every path through the function executes (nothing before it branches),
 *   - comes while each needed argument is still in some register (plain
 *     64-bit register-to-register moves are followed, so `mov %rsi,%rdi` keeps
 *     the argument alive in %rdi),
 *   - when a return probe is needed, comes before %rsp changes (a uretprobe
 *     hijacks the return address at *(%rsp)).
 * When nothing qualifies it falls back to offset 0, with emulated = 0: the
 * caller reports the single-step cost (-v). Decoding is x86_insn.h's; pure
 * code: no I/O. */
#ifndef TM_PLACEMENT_PROBE_POINT_H
#define TM_PLACEMENT_PROBE_POINT_H

#include <stddef.h>
#include <stdint.h>

#include "placement/x86_insn.h"

/* Bytes of a function decoded at most; probes further in are not worth it. */
#define TM_PROBE_SCAN_BYTES 64
#define TM_PROBE_MAX_ARGS 6

struct tm_probe_point {
	uint32_t offset;   /* from the function's start */
	uint32_t emulated; /* 1: the instruction at offset is emulated; 0: fallback, single-stepped */
	uint8_t arg_reg[TM_PROBE_MAX_ARGS]; /* where argument i (SysV order) lives at offset */
	uint8_t insn_len;
	char insn[24];     /* short mnemonic of the probed instruction, e.g. "push %rbx" */
	char why[64];      /* for a fallback: what stopped the scan */
};

/* Choose the probe point of the function whose first len bytes are code.
 * arg_mask: bit i set when the probe reads SysV integer argument i (bit 0:
 * %rdi at entry; the allocators' ctx needs no bit); need_return: a
 * uretprobe is attached at the same point. Always fills *pp (offset 0 and the
 * entry registers when nothing better qualifies) and returns 0, or -EINVAL
 * for bad arguments. arg_reg[i] is meaningful for the bits of arg_mask. */
int tm_probe_point_find(const uint8_t *code, size_t len, unsigned arg_mask, int need_return,
			struct tm_probe_point *pp);

#endif
