/* Where a traced CPython keeps pymalloc's usedpools[] (the per-size-class
 * lists of pools with free blocks), so that BPF can predict the block a
 * pymalloc allocation returns at its entry and skip its return probe
 * (TM_PREDICT_* in bpf/tmbpf.h).
 *
 *   3.8-3.11  a static array `usedpools` in obmalloc.c: .symtab when the
 *             build is not stripped; else a rip-relative reference to it in
 *             the pymalloc malloc implementation (Debian's LTO python3.11).
 *   3.12      embedded in the main PyInterpreterState (interp->obmalloc).
 *   3.13      interp->obmalloc points to it.
 *
 * Every candidate is checked in the process's memory before it is used:
 * each of the 32 size classes up to 512 bytes is either an empty list head
 * (both entries point 16 bytes below themselves, CPython's PTA()) or a
 * pool (POOL_SIZE-aligned, so 4 KiB-aligned) whose header links back to that
 * head (prevpool) and names that class (szidx). A build where this fails
 * gets no prediction: return probes as before, never a guess. */
#ifndef TM_TARGET_PYMALLOC_PREDICT_H
#define TM_TARGET_PYMALLOC_PREDICT_H

#include <stddef.h>
#include <stdint.h>

#include "target/target.h"

struct tm_pymalloc_state {
	uint64_t usedpools;   /* absolute address of usedpools[0] */
	uint64_t main_interp; /* the main PyInterpreterState */
	uint16_t ts_interp;   /* PyThreadState.interp (3.12+ check); TM_NO_OFFSET before */
	char how[96];         /* for -v: where it was found */
};

/* Find usedpools in t, whose pymalloc malloc implementation is at
 * malloc_impl (absolute). Returns 0; -EAGAIN before Py_Initialize (no
 * interpreter yet: ask again later); another negative errno, with why
 * filled, when this build cannot be predicted. */
int tm_pymalloc_find(const struct tm_target *t, uint64_t malloc_impl,
		     struct tm_pymalloc_state *st, char *why, size_t whylen);

/* 1 when the 64 pointers at addr (read from the process) look like
 * usedpools[] at addr: the array half of the check above (the pool headers
 * are read by tm_pymalloc_find). */
int tm_pymalloc_usedpools_valid(const uint64_t *u, uint64_t addr);

#endif
