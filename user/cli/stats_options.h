/* Options shared by every command that shows statistics (stats, compare and
 * the live commands), and the renderers that print them. Two tables: the
 * filters (also taken by flamegraph and convert) and the report options.
 *
 *   --key lineno|filename|traceback   Snapshot.statistics key_type (lineno)
 *   --key age                         tmbpf's: live bytes by age bucket (core/age.h)
 *   --cumulative                      cumulative=True (not with --key traceback)
 *   --limit N                         show the first N statistics; 0 = all (10)
 *   --traceback                       print Traceback.format() under each one
 *   --traceback-limit N               ... with limit=N (negative as in Python)
 *   --most-recent-first               ... with most_recent_first=True
 *   --include SPEC / --exclude SPEC   Filter(True/False, PATTERN, LINENO)
 *   --include-any / --exclude-any     the same with all_frames=True
 *   --domain N / --exclude-domain N   DomainFilter(True/False, N)
 *   --older-than D / --younger-than D keep blocks allocated at least / less than D
 *                                     before the snapshot (needs allocation times)
 *   --json                            JSON instead of text
 * SPEC is an fnmatch pattern with an optional ":LINENO" (digits only).
 *
 * stdout carries only the statistics; the summary line goes to stderr.
 */
#ifndef TM_CLI_STATS_OPTIONS_H
#define TM_CLI_STATS_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

#include "cli/options.h"
#include "core/age.h"
#include "core/filter.h"
#include "core/snapshot.h"
#include "core/statistics.h"

#define TM_STATS_DEFAULT_LIMIT 10

struct tm_stats_options {
	enum tm_key_type key;
	int cumulative;
	unsigned long limit; /* 0: all */
	int show_traceback;
	int has_traceback_limit;
	long traceback_limit;
	int most_recent_first;
	int json;
	int key_age;               /* --key age: buckets instead of statistics */
	int sort_by_count;         /* the live view's --sort count */
	struct tm_filter *filters; /* owned, in command-line order */
	size_t nfilters;
	struct tm_age_filter age;  /* --older-than, --younger-than */
};

void tm_stats_options_init(struct tm_stats_options *o);
void tm_stats_options_release(struct tm_stats_options *o);

/* The options above as two tables (options.h) with one setter; dst is a
 * struct tm_stats_options. */
extern const struct cli_option tm_stats_cli_options[], tm_filter_cli_options[];
int tm_stats_cli_set(void *dst, const struct cli_option *opt, const char *value, const char *prog);
#define TM_STATS_CLI_TABLE(ctx_type, member) \
	{ "Statistics options", tm_stats_cli_options, tm_stats_cli_set, offsetof(ctx_type, member) }
#define TM_FILTER_CLI_TABLE(ctx_type, member) \
	{ "Filters", tm_filter_cli_options, tm_stats_cli_set, offsetof(ctx_type, member) }

/* snap with the filters and age conditions applied: snap itself when there
 * are none (*own NULL), else a new snapshot in *own. NULL and errno set on
 * failure (ENODATA: ages asked of a snapshot without allocation times). */
const struct tm_snapshot *tm_stats_filtered(const struct tm_snapshot *snap,
					    const struct tm_stats_options *o,
					    struct tm_snapshot **own);
/* A line for an error of the functions here: strerror, or what ENODATA and
 * EOVERFLOW mean for a snapshot. */
const char *tm_stats_strerror(int err);
/* Checks that need all options (--cumulative with --key traceback).
 * 0 or -1 after printing one usage line. */
int tm_stats_options_check(const struct tm_stats_options *o, const char *prog);

/* Parse "PATTERN[:LINENO]" into a Filter. 0, -EINVAL (bad spec), -ENOMEM. */
int tm_filter_spec_parse(struct tm_filter *f, const char *spec, int inclusive, int all_frames);

/* Apply the filters, compute snap.statistics(), print the first o->limit
 * statistics (text or JSON) to out and a one-line summary to diag (NULL: no
 * summary). label names the snapshot in the summary. Returns 0 or a
 * negative errno; nothing is printed about the error: the caller reports it
 * with the file or PID it knows. */
int tm_stats_render_top(FILE *out, FILE *diag, const char *label, const struct tm_snapshot *snap,
			const struct tm_stats_options *o);
/* The same for new_snap.compare_to(old_snap). */
int tm_stats_render_compare(FILE *out, FILE *diag, const char *label,
			    const struct tm_snapshot *old_snap, const struct tm_snapshot *new_snap,
			    const struct tm_stats_options *o);

#endif
