/* statistics.c: _group_by for every key, cumulative counting of repeated
 * frames, sort keys and their tie-breaks (tracebacks compared oldest frame
 * first, shorter prefix first), compare_to matching by value across two
 * snapshots, old-only blocks, and the error cases. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/format.h"
#include "core/statistics.h"

/* Intern a traceback given oldest frame first as "file:line" strings. */
static const struct tm_traceback *tbv(struct tm_snapshot *s, int n, const char *const *spec)
{
	struct tm_frame fr[8];

	for (int i = 0; i < n; i++) {
		const char *colon = strrchr(spec[i], ':');

		fr[n - 1 - i].filename = tm_snapshot_intern_str(s, spec[i], (size_t)(colon - spec[i]));
		fr[n - 1 - i].lineno = (uint32_t)atoi(colon + 1);
	}
	return tm_snapshot_intern_traceback(s, fr, (uint32_t)n);
}

#define TB(s, ...) tbv(s, sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(char *), \
		       (const char *[]){ __VA_ARGS__ })

static void add(struct tm_snapshot *s, uint64_t size, const struct tm_traceback *t)
{
	struct tm_trace tr = { .size_bytes = size, .traceback = t, .total_nframe = t->nframe };

	tm_snapshot_add_trace(s, &tr);
}

/* str(Statistic) of stats[i], or "" past the end. */
static const char *line(struct tm_strbuf *sb, const struct tm_statistics *st, size_t i)
{
	tm_strbuf_reset(sb);
	if (i < st->nstats)
		tm_format_statistic(sb, &st->stats[i]);
	return tm_strbuf_str(sb);
}

static const char *dline(struct tm_strbuf *sb, const struct tm_statistic_diffs *d, size_t i)
{
	tm_strbuf_reset(sb);
	if (i < d->ndiffs)
		tm_format_statistic_diff(sb, &d->diffs[i]);
	return tm_strbuf_str(sb);
}

static void test_group_by(void)
{
	struct tm_snapshot *s = tm_snapshot_new();
	const struct tm_traceback *rec = TB(s, "main.py:1", "f.py:5", "f.py:5", "f.py:9");
	const struct tm_traceback *one = TB(s, "main.py:2", "g.py:7");
	struct tm_statistics st;
	struct tm_strbuf sb;

	tm_strbuf_init(&sb);
	add(s, 100, rec);
	add(s, 50, rec);
	add(s, 30, one);

	tm_statistics_compute(s, TM_KEY_LINENO, 0, &st);
	CHECK(st.nstats == 2, "lineno: one statistic per most recent frame");
	CHECK_STREQ(line(&sb, &st, 0), "f.py:9: size=150 B, count=2, average=75 B", "lineno #0");
	CHECK_STREQ(line(&sb, &st, 1), "g.py:7: size=30 B, count=1, average=30 B", "lineno #1");
	tm_statistics_release(&st);

	tm_statistics_compute(s, TM_KEY_FILENAME, 0, &st);
	CHECK_STREQ(line(&sb, &st, 0), "f.py:0: size=150 B, count=2, average=75 B", "filename key: lineno 0");
	tm_statistics_release(&st);

	tm_statistics_compute(s, TM_KEY_TRACEBACK, 0, &st);
	CHECK(st.nstats == 2 && st.stats[0].nframe == 4, "traceback key keeps whole tracebacks");
	CHECK_STREQ(line(&sb, &st, 0), "main.py:1: size=150 B, count=2, average=75 B",
		    "str() of a traceback statistic is its oldest frame");
	tm_statistics_release(&st);

	tm_statistics_compute(s, TM_KEY_LINENO, 1, &st);
	CHECK(st.nstats == 5, "cumulative lineno: one per distinct frame");
	CHECK_STREQ(line(&sb, &st, 0), "f.py:5: size=300 B, count=4, average=75 B",
		    "a frame twice in one traceback counts twice");
	CHECK(st.total_count == 2 * 4 + 2, "cumulative totals count every frame");
	tm_statistics_release(&st);

	tm_statistics_compute(s, TM_KEY_FILENAME, 1, &st);
	CHECK_STREQ(line(&sb, &st, 0), "f.py:0: size=450 B, count=6, average=75 B",
		    "cumulative filename: three f.py frames per trace");
	tm_statistics_release(&st);

	CHECK(tm_statistics_compute(s, TM_KEY_TRACEBACK, 1, &st) == -EINVAL,
	      "cumulative with key traceback is an error");
	tm_statistics_release(&st);
	CHECK(tm_statistics_compute(s, (enum tm_key_type)7, 0, &st) == -EINVAL, "unknown key");
	tm_statistics_release(&st);
	tm_strbuf_release(&sb);
	tm_snapshot_free(s);
}

static void test_ties(void)
{
	struct tm_snapshot *s = tm_snapshot_new();
	struct tm_statistics st;
	struct tm_strbuf sb;

	tm_strbuf_init(&sb);
	/* Same size and count: ordered by traceback, largest first, compared
	 * oldest frame first: ("b", ...) > ("a", 9, ...) > ("a", 2, "z") >
	 * ("a", 2) (a prefix is smaller). */
	add(s, 64, TB(s, "a.py:2"));
	add(s, 64, TB(s, "a.py:2", "z.py:1"));
	add(s, 64, TB(s, "b.py:1", "a.py:1"));
	add(s, 64, TB(s, "a.py:9", "a.py:0"));
	add(s, 65, TB(s, "0.py:0"));
	add(s, 32, TB(s, "c.py:1"));
	add(s, 32, TB(s, "c.py:2"));
	tm_statistics_compute(s, TM_KEY_TRACEBACK, 0, &st);
	CHECK_STREQ(line(&sb, &st, 0), "0.py:0: size=65 B, count=1, average=65 B", "size first");
	CHECK_STREQ(line(&sb, &st, 1), "b.py:1: size=64 B, count=1, average=64 B", "tie: b.py first");
	CHECK_STREQ(line(&sb, &st, 2), "a.py:9: size=64 B, count=1, average=64 B", "tie: a.py:9");
	CHECK(st.stats[3].nframe == 2 && st.stats[4].nframe == 1,
	      "tie: (a:2, z:1) before its prefix (a:2)");
	CHECK_STREQ(line(&sb, &st, 5), "c.py:2: size=32 B, count=1, average=32 B", "tie: lineno decides");
	tm_statistics_release(&st);

	/* count breaks a size tie before the traceback does */
	add(s, 16, TB(s, "d.py:1"));
	add(s, 16, TB(s, "d.py:1"));
	add(s, 32, TB(s, "a.py:1"));
	tm_statistics_compute(s, TM_KEY_LINENO, 0, &st);
	CHECK_STREQ(line(&sb, &st, 5), "d.py:1: size=32 B, count=2, average=16 B", "count breaks the tie");
	CHECK_STREQ(line(&sb, &st, 6), "c.py:2: size=32 B, count=1, average=32 B", "then the traceback");
	tm_statistics_release(&st);
	tm_strbuf_release(&sb);
	tm_snapshot_free(s);
}

static void test_compare(void)
{
	struct tm_snapshot *old = tm_snapshot_new(), *new = tm_snapshot_new();
	struct tm_statistic_diffs d;
	struct tm_strbuf sb;

	tm_strbuf_init(&sb);
	/* Interned separately: matching must be by value. Interning an extra
	 * string first makes the pointers differ for sure. */
	tm_snapshot_intern_str(new, "pad", 3);
	add(old, 100, TB(old, "same.py:1"));
	add(old, 4096, TB(old, "gone.py:1"));
	add(old, 10, TB(old, "grow.py:1"));
	add(new, 100, TB(new, "same.py:1"));
	add(new, 5010, TB(new, "grow.py:1"));
	add(new, 5000, TB(new, "fresh.py:1"));
	add(new, 16, TB(new, "tie.py:2"));
	add(old, 16, TB(old, "tie.py:1"));

	CHECK(tm_statistics_compare(new, old, TM_KEY_LINENO, 0, &d) == 0, "compare_to");
	CHECK(d.ndiffs == 6, "keys of both snapshots, matched by value");
	CHECK_STREQ(dline(&sb, &d, 0), "grow.py:1: size=5010 B (+5000 B), count=1 (+0), average=5010 B",
		    "|size_diff| ties: larger size first");
	CHECK_STREQ(dline(&sb, &d, 1), "fresh.py:1: size=5000 B (+5000 B), count=1 (+1), average=5000 B",
		    "new only");
	CHECK_STREQ(dline(&sb, &d, 2), "gone.py:1: size=0 B (-4096 B), count=0 (-1)", "old only");
	CHECK_STREQ(dline(&sb, &d, 3), "tie.py:2: size=16 B (+16 B), count=1 (+1), average=16 B",
		    "equal |size_diff|: size decides");
	CHECK_STREQ(dline(&sb, &d, 4), "tie.py:1: size=0 B (-16 B), count=0 (-1)", "then the old one");
	CHECK_STREQ(dline(&sb, &d, 5), "same.py:1: size=100 B (+0 B), count=1 (+0), average=100 B",
		    "unchanged last");
	tm_statistic_diffs_release(&d);
	CHECK(tm_statistics_compare(new, old, TM_KEY_TRACEBACK, 1, &d) == -EINVAL,
	      "compare_to: cumulative with key traceback is an error");
	tm_statistic_diffs_release(&d);
	tm_strbuf_release(&sb);
	tm_snapshot_free(old);
	tm_snapshot_free(new);
}

static void test_overflow(void)
{
	struct tm_snapshot *s = tm_snapshot_new();
	struct tm_statistics st;

	add(s, UINT64_MAX - 1, TB(s, "big.py:1"));
	add(s, 2, TB(s, "big.py:1"));
	CHECK(tm_statistics_compute(s, TM_KEY_LINENO, 0, &st) == -EOVERFLOW,
	      "a sum beyond 64 bits is refused, not wrapped");
	tm_statistics_release(&st);
	tm_snapshot_free(s);
}

static void test_cmp(void)
{
	struct tm_frame a[2] = { { "x", 1, NULL }, { "a", 1, NULL } }; /* oldest: a:1 */
	struct tm_frame b[1] = { { "b", 0, NULL } };
	struct tm_frame c[1] = { { "a", 1, NULL } };

	CHECK(tm_traceback_cmp(a, 2, b, 1) < 0, "oldest frame compared first");
	CHECK(tm_traceback_cmp(c, 1, a, 2) < 0, "a prefix is smaller");
	CHECK(tm_traceback_cmp(a, 2, a, 2) == 0, "equal tracebacks");
}

int main(void)
{
	test_group_by();
	test_ties();
	test_compare();
	test_overflow();
	test_cmp();
	return CHECK_DONE();
}
