/* Ages of live blocks: how long before the snapshot each was allocated.
 * Not part of tracemalloc's model: tmbpf's capture records an allocation
 * time per block (CLOCK_REALTIME, converted from BPF's monotonic clock when
 * the snapshot is read; exact to a kernel tick), the native and JSON
 * formats keep it (docs/formats.md), pickles do not.
 *
 * A trace's age is meta.snapshot_ns - alloc_ns (0 when the time is later
 * than the snapshot's). Traces with no time (alloc_ns 0) have no age and
 * match no age condition. */
#ifndef TM_CORE_AGE_H
#define TM_CORE_AGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/filter.h"
#include "core/snapshot.h"

struct tm_age_filter {
	int has_older, has_younger;
	uint64_t older_ns;   /* keep age >= older_ns */
	uint64_t younger_ns; /* keep age < younger_ns */
};

/* Traces that carry an allocation time; 0 also when the snapshot's own time
 * is unknown (no age can be computed then). */
size_t tm_snapshot_ntimed(const struct tm_snapshot *snap);

/* Snapshot.filter_traces(filters) restricted to the ages in af (af NULL or
 * empty: filters only). NULL and errno set on failure; ENODATA when af asks
 * for ages and tm_snapshot_ntimed() is 0. */
struct tm_snapshot *tm_snapshot_filter_age(const struct tm_snapshot *snap,
					   const struct tm_filter *filters, size_t nfilters,
					   const struct tm_age_filter *af);

/* Age buckets, youngest first: [0, 1 s), [1 s, 10 s), [10 s, 1 min),
 * [1 min, 10 min), [10 min, 1 h), [1 h, 1 day), [1 day, ...), then the
 * traces without a time. */
#define TM_AGE_NBUCKETS 8
struct tm_age_bucket {
	uint64_t min_ns, max_ns; /* max_ns UINT64_MAX: open; both 0: no time */
	uint64_t size_bytes, count;
};
/* Fill b[TM_AGE_NBUCKETS]. -EOVERFLOW when a size sum overflows. */
int tm_age_histogram(const struct tm_snapshot *snap, struct tm_age_bucket *b);

#endif
