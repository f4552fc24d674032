/* tracemalloc.Filter, tracemalloc.DomainFilter and Snapshot.filter_traces(),
 * as in CPython 3.12's Lib/tracemalloc.py and Lib/fnmatch.py on POSIX.
 *
 * Filter(inclusive, filename_pattern, lineno=None, all_frames=False,
 *        domain=None):
 *   - the pattern and every frame's filename are normalized like
 *     _normalize_filename(): os.path.normcase() (nothing on POSIX: matching is
 *     case-sensitive) and a trailing ".pyc" loses its "c";
 *   - fnmatch semantics on code points: '*' any run (including '/'), '?' one
 *     code point, "[seq]" / "[!seq]" with ranges, exactly as fnmatch.translate
 *     turns them into a regular expression (an unclosed '[' is literal,
 *     reversed ranges are dropped, "[]" style empty sets never match);
 *   - without all_frames only the most recent frame is tested.
 * DomainFilter(inclusive, domain) tests the trace's domain only.
 *
 * filter_traces: a trace is kept when it matches at least one inclusive
 * filter (if there is any) and every exclusive filter.
 */
#ifndef TM_CORE_FILTER_H
#define TM_CORE_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "core/snapshot.h"

struct tm_glob; /* private: a compiled pattern */

struct tm_filter {
	int inclusive;
	int is_domain_filter; /* DomainFilter: only domain is used */
	char *pattern;        /* owned, normalized (Filter.filename_pattern) */
	int has_lineno;
	int64_t lineno;
	int all_frames;
	int has_domain;
	uint32_t domain;
	struct tm_glob *glob; /* owned */
};

/* Filter(...). pattern is UTF-8 (lone surrogates as WTF-8 allowed).
 * Returns 0, -EINVAL (NULL pattern) or -ENOMEM; release with
 * tm_filter_release() in every case. */
int tm_filter_init(struct tm_filter *f, int inclusive, const char *pattern, int has_lineno,
		   int64_t lineno, int all_frames, int has_domain, uint32_t domain);
/* DomainFilter(inclusive, domain). */
void tm_domain_filter_init(struct tm_filter *f, int inclusive, uint32_t domain);
void tm_filter_release(struct tm_filter *f);

/* _normalize_filename(): a malloc'ed copy, or NULL with errno = ENOMEM. */
char *tm_normalize_filename(const char *filename);
/* fnmatch.fnmatch(filename, pattern) on POSIX (no normalization of .pyc). */
int tm_fnmatch(const char *filename, const char *pattern);

/* Filter._match(trace) / DomainFilter._match(trace): 1, 0, or -ENOMEM. */
int tm_filter_match_trace(const struct tm_filter *f, const struct tm_trace *trace);

/* Snapshot.filter_traces(filters): a new snapshot holding the kept traces
 * (in order) and the same traceback_limit and metadata. nfilters = 0 copies
 * every trace. NULL with errno set on failure. */
struct tm_snapshot *tm_snapshot_filter_traces(const struct tm_snapshot *snap,
					      const struct tm_filter *filters, size_t nfilters);

/* The same with one more condition, tested first: pred(ctx, trace) returns
 * 1 to keep the trace (if the filters do), 0 to drop it, or a negative
 * errno. */
typedef int (*tm_trace_pred_fn)(void *ctx, const struct tm_trace *trace);
struct tm_snapshot *tm_snapshot_filter_traces_ex(const struct tm_snapshot *snap,
						 const struct tm_filter *filters, size_t nfilters,
						 tm_trace_pred_fn pred, void *ctx);

#endif
