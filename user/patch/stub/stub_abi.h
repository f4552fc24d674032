/* The layout contract between the stub's machine code (stub.S), the code
 * that writes it into a target (stub.c) and the BPF program that reads it
 * at its probe points (bpf/, through the registers named here). Included by
 * assembly and C: plain #defines only.
 *
 * A stub area in the target is
 *   [base, base + STUB_CODE_SIZE)             code and constants, from a memfd
 *                                             (MAP_PRIVATE, r-x: uprobes decode the
 *                                             file's bytes, so the probed nops must be
 *                                             there; private, or uprobes are ignored)
 *   [base + STUB_CODE_SIZE, + data size)      mutable state, anonymous, rw-,
 *                                             MADV_WIPEONFORK: a forked child sees
 *                                             zeros, so guard == 0 and every entry
 *                                             passes straight through (a child must
 *                                             not run the optimized probe call: its
 *                                             trampoline page is not inherited)
 * Code reaches both rip-relatively. The constants (the real allocator
 * functions, type-flag masks) are written with the code, before the first
 * probe is attached, and never change; the state is written by tmbpf
 * through /proc/PID/mem. */
#ifndef TM_PATCH_STUB_ABI_H
#define TM_PATCH_STUB_ABI_H

#define STUB_CODE_SIZE 0x2000
#define STUB_MAGIC 0x3142545346504d54ULL /* "TMPFSTB1" */
#define STUB_VERSION 1

/* guard byte (first byte of the state) */
#define STUB_GUARD_OFF 0      /* pass every call straight through (a child, or detached) */
#define STUB_GUARD_ON 1       /* report events */
#define STUB_GUARD_DRAIN 2    /* detaching: free what the quarantine holds, then pass */

/* Indices of the real functions in the constants' table (orig[]). */
#define STUB_ORIG_RAW 0       /* + fn: malloc 0, calloc 1, realloc 2, free 3 */
#define STUB_ORIG_MEM 4
#define STUB_ORIG_OBJ 8
#define STUB_ORIG_NEWREF 12   /* _Py_NewReference (3.9-3.12, through libpython's GOT) */
#define STUB_ORIG_NEWREF2 13  /* _Py_NewReferenceNoTotal (3.12) */
#define STUB_ORIG_TRACER 14   /* the ref tracer installed before ours (3.13+), or 0 */
#define STUB_NORIG 16

/* Requests pymalloc serves without calling the raw allocator: 1..512 bytes
 * (SMALL_REQUEST_THRESHOLD, 3.8-3.15), less the 24-32 bytes debug hooks add
 * around each block, with room to spare. */
#define STUB_SMALL_REQUEST 448

/* Sampled mode where mem/obj frees are pymalloc's: a sampled mem/obj block is
 * asked for at no less than this, one more than SMALL_REQUEST_THRESHOLD
 * (512, 3.8-3.15), so pymalloc takes it from the raw allocator and its free
 * reaches the raw free (stub.S: FLOOR_ALLOC). */
#define STUB_SAMPLE_FLOOR 513

/* Sampled mode: the filter in front of the set of sampled blocks, one byte
 * counter per 2^-STUB_FILTER_BITS of the hash space (16 KiB). */
#define STUB_FILTER_BITS 14

/* The report points' events and registers, and the quarantine of mem/obj
 * frees (they stay allocated until reported: no allocation can return their
 * address before BPF has forgotten them): shared with BPF. Entries are
 * { block, ctx, orig index }. */
#include "tmbpf_stub.h"
#define STUB_QUARANTINE TM_STUB_QUARANTINE
#define STUB_QENTRY_SIZE TM_STUB_QENTRY_SIZE

#endif
