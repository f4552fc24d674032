/* Estimates from a sampled capture (tmbpf --sample-bytes R).
 *
 * The stub samples allocations as a Poisson process over allocated bytes
 * with mean interval R (exponential gaps, as Go's runtime heap profile): a
 * block of s bytes is sampled with probability p(s) = 1 - exp(-s / R),
 * independently of everything else. Each sampled block therefore stands
 * for 1 / p(s) blocks of its size: the Horvitz-Thompson estimator
 *   blocks ~ sum over samples of 1 / p(s)
 *   bytes  ~ sum over samples of s / p(s)
 * is unbiased for any set of blocks (a traceback, a line, the heap). Its
 * relative standard error for B bytes of small blocks is about
 * sqrt(R / B) (1 / sqrt of the samples expected); blocks much larger than R
 * are always sampled and exact.
 *
 * Statistics of a snapshot whose meta.sample_interval_bytes is R sum these
 * estimates per traceback and round them there (statistics.c); the
 * tracemalloc pickle of such a snapshot carries the estimates as that
 * many traces, so that Snapshot.load().statistics() shows them. */
#ifndef TM_CORE_SAMPLING_H
#define TM_CORE_SAMPLING_H

#include <stdint.h>

#include "core/snapshot.h"

/* 1 / p(size): the blocks one sample of size bytes stands for (1 for
 * interval 0, or size 0). */
double tm_sample_weight(uint64_t size, uint64_t interval);

/* The estimates per interned traceback of a sampled snapshot, rounded:
 * sizes[i] bytes and counts[i] blocks for tm_snapshot_traceback_at(i)
 * (arrays of tm_snapshot_ntracebacks entries, zeroed by the caller).
 * 0, -ENOMEM or -EOVERFLOW. */
int tm_sample_estimate(const struct tm_snapshot *snap, uint64_t *sizes, uint64_t *counts);

/* An exponential draw of mean mean bytes, at least 1: the gap to the next
 * sample of the Poisson process. rng: xorshift64* state, never 0. */
uint64_t tm_sample_draw(uint64_t *rng, uint64_t mean);

/* Round a non-negative estimate; -EOVERFLOW beyond 64 bits. */
int tm_sample_round(double v, uint64_t *out);

#endif
