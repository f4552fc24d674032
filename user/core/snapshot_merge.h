/* Merging snapshots: the live blocks of several snapshots (the pre-forked
 * workers of one server, one service on several hosts, other CPython
 * versions) as one snapshot whose statistics are the sums of theirs.
 *
 * The merged snapshot holds every trace of every part, in part order, each
 * with its own size, domain, total_nframe and thread id. Tracebacks are
 * re-interned by (filename, lineno), as everywhere in tracemalloc's model,
 * so a line that two parts share is one key of the merged statistics
 * whatever function names the parts carry (the first part's name stays).
 * tracemalloc's statistics are sums over traces, so for every key type
 * (lineno, filename, traceback; cumulative too) and every filter, the
 * merged statistic of a key is the sum of the parts' statistics of that key.
 *
 * Metadata (docs/formats.md, "Merged snapshots"):
 *   traceback_limit        the largest of the parts'
 *   sample_interval_bytes  the parts' common interval: sampled and full parts,
 *                          or parts sampled at different intervals, are
 *                          refused (-EINVAL): a sample's weight depends on its
 *                          own interval and a snapshot holds one. Parts at the
 *                          same interval merge their samples: the estimates of
 *                          the merge are the sums of the parts' unrounded
 *                          estimates (each rounded once, per traceback)
 *   pid                    the parts' common pid, else -1 (unknown)
 *   cmdline, python_version, hostname, coverage_mode
 *                          the common value; when the parts differ, their
 *                          distinct values in order of first appearance joined
 *                          by " | " ("?" for a part that has none)
 *   start_ns, snapshot_ns  the earliest start and the latest snapshot time
 *   traced memory          the sums, when every part has them (the peak sum
 *                          bounds the combined peak: parts peak apart)
 *   drop counters          summed by name
 *   allocation times       shifted by (merged snapshot_ns - the part's), so
 *                          each block keeps the age it had in its part;
 *                          dropped for a part whose snapshot time is unknown
 *
 * Usage: tm_merge_init, tm_merge_add once per part (a part may be freed
 * right after: nothing of it is kept), tm_merge_take, tm_merge_release.
 * Nothing here prints; failures write one line (no file name) into err. */
#ifndef TM_CORE_SNAPSHOT_MERGE_H
#define TM_CORE_SNAPSHOT_MERGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/snapshot.h"

#define TM_MERGE_SEPARATOR " | "

struct tm_merge {
	struct tm_snapshot *snap;       /* the merge so far; owned until tm_merge_take */
	size_t nparts;                  /* parts added */
	struct tm_merge_state *state;   /* private: distinct metadata strings, part ranges */
};

/* 0 or -ENOMEM. Release with tm_merge_release in every case. */
int tm_merge_init(struct tm_merge *m);

/* Add every trace and the metadata of part. Returns 0; -EINVAL when part's
 * sampling cannot be combined with the parts before it; -ENOMEM;
 * -EOVERFLOW (sums beyond 64 bits); -ENOSPC (more than
 * TM_MAX_DROP_COUNTERS distinct drop counters). On failure the merge is
 * unusable (release it) and err holds one line. */
int tm_merge_add(struct tm_merge *m, const struct tm_snapshot *part, char *err, size_t errlen);

/* The merged snapshot, now the caller's (tm_snapshot_free); NULL after the
 * first call. */
struct tm_snapshot *tm_merge_take(struct tm_merge *m);

/* Free what the merge still owns. Accepts a merge never initialised if it
 * was zeroed. */
void tm_merge_release(struct tm_merge *m);

/* The whole merge of parts[0..nparts) in one call: a new snapshot, or NULL
 * with errno set and one line in err. */
struct tm_snapshot *tm_snapshot_merge(const struct tm_snapshot *const *parts, size_t nparts,
				      char *err, size_t errlen);

#endif
