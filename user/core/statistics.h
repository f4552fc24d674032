/* Snapshot.statistics() and Snapshot.compare_to(), as CPython 3.12's
 * Lib/tracemalloc.py computes them.
 *
 * Grouping (Snapshot._group_by):
 *   lineno     key = the most recent frame of each trace
 *   filename   key = (filename of the most recent frame, 0)
 *   traceback  key = the whole traceback
 * cumulative: every frame of every traceback is a key (lineno, filename only);
 * a frame that appears twice in one traceback counts the trace twice.
 * cumulative with key traceback is an error (-EINVAL), like CPython's
 * ValueError.
 *
 * Order: Statistic sorted by (size, count, traceback) descending;
 * StatisticDiff by (|size_diff|, size, |count_diff|, count, traceback)
 * descending. Tracebacks compare as Python tuples of (filename, lineno) taken
 * oldest frame first, filenames by code point (UTF-8 byte order).
 *
 * A statistic's frames point into the snapshot (or into the result for the
 * filename key), most recent first like struct tm_traceback: the result must
 * not outlive the snapshots it was computed from.
 *
 * Sums that do not fit (size > UINT64_MAX, diff outside int64) give
 * -EOVERFLOW rather than a wrong answer.
 */
#ifndef TM_CORE_STATISTICS_H
#define TM_CORE_STATISTICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/snapshot.h"

enum tm_key_type {
	TM_KEY_LINENO = 0,
	TM_KEY_FILENAME,
	TM_KEY_TRACEBACK,
};

/* "lineno", "filename", "traceback" -> key; -EINVAL otherwise. */
int tm_key_type_parse(const char *name, enum tm_key_type *key);
const char *tm_key_type_name(enum tm_key_type key);

struct tm_statistic {
	const struct tm_frame *frames; /* most recent first */
	uint32_t nframe;
	uint64_t size_bytes;
	uint64_t count;
};

struct tm_statistic_diff {
	const struct tm_frame *frames; /* most recent first */
	uint32_t nframe;
	uint64_t size_bytes;
	int64_t size_diff;
	uint64_t count;
	int64_t count_diff;
};

/* Result of tm_statistics_compute(): stats[0..nstats) in CPython's order. */
struct tm_statistics {
	struct tm_statistic *stats;
	size_t nstats;
	uint64_t total_size_bytes; /* sum over all stats (cumulative counts repeats) */
	uint64_t total_count;
	struct tm_frame *key_frames; /* private: storage for filename keys */
};

/* Result of tm_statistics_compare(). */
struct tm_statistic_diffs {
	struct tm_statistic_diff *diffs;
	size_t ndiffs;
	struct tm_statistics old_stats; /* private */
	struct tm_statistics new_stats; /* private */
};

/* snapshot.statistics(key, cumulative) into out (caller storage, released
 * with tm_statistics_release even on failure). Returns 0, -EINVAL,
 * -ENOMEM or -EOVERFLOW. */
int tm_statistics_compute(const struct tm_snapshot *snap, enum tm_key_type key, int cumulative,
			  struct tm_statistics *out);
void tm_statistics_release(struct tm_statistics *st);

/* new_snap.compare_to(old_snap, key, cumulative) into out (released with
 * tm_statistic_diffs_release even on failure). Keys are matched by value:
 * the two snapshots intern their strings separately. Same returns as
 * tm_statistics_compute(). */
int tm_statistics_compare(const struct tm_snapshot *new_snap, const struct tm_snapshot *old_snap,
			  enum tm_key_type key, int cumulative, struct tm_statistic_diffs *out);
void tm_statistic_diffs_release(struct tm_statistic_diffs *d);

/* Traceback ordering: tuple comparison oldest frame first. -1, 0, 1. */
int tm_traceback_cmp(const struct tm_frame *a, uint32_t na, const struct tm_frame *b, uint32_t nb);
/* Statistic._sort_key / StatisticDiff._sort_key, ascending: -1, 0, 1. */
int tm_statistic_key_cmp(const struct tm_statistic *a, const struct tm_statistic *b);
int tm_statistic_diff_key_cmp(const struct tm_statistic_diff *a, const struct tm_statistic_diff *b);

#endif
