/* format.c: _format_size at unit boundaries, Python's int true division,
 * str() of statistics, Traceback.format() slicing and linecache decoding.
 * Expected strings come from CPython 3.12's tracemalloc (noted per table). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/format.h"
#include "core/statistics.h"

/* _format_size(v, False), _format_size(v, True) from CPython 3.12. */
static const struct {
	unsigned long long v;
	const char *plain, *sign;
} uints[] = {
	{ 0ULL, "0 B", "+0 B" },
	{ 1ULL, "1 B", "+1 B" },
	{ 99ULL, "99 B", "+99 B" },
	{ 100ULL, "100 B", "+100 B" },
	{ 10239ULL, "10239 B", "+10239 B" },
	{ 10240ULL, "10.0 KiB", "+10.0 KiB" },
	{ 10241ULL, "10.0 KiB", "+10.0 KiB" },
	{ 102348ULL, "99.9 KiB", "+99.9 KiB" },
	{ 102349ULL, "100.0 KiB", "+100.0 KiB" },
	{ 102400ULL, "100 KiB", "+100 KiB" },
	{ 1048575ULL, "1024 KiB", "+1024 KiB" },
	{ 10485759ULL, "10240 KiB", "+10240 KiB" },
	{ 10485760ULL, "10.0 MiB", "+10.0 MiB" },
	{ 104805376ULL, "100.0 MiB", "+100.0 MiB" },
	{ 104805377ULL, "100.0 MiB", "+100.0 MiB" },
	{ 109951162777599ULL, "100.0 TiB", "+100.0 TiB" },
	{ 11258999068426240ULL, "10240 TiB", "+10240 TiB" },
	{ 9007199254740993ULL, "8192 TiB", "+8192 TiB" },
	{ 9223372036854775807ULL, "8388608 TiB", "+8388608 TiB" },
};

static const struct {
	long long v;
	const char *sign;
} negs[] = {
	{ -1LL, "-1 B" },
	{ -10239LL, "-10239 B" },
	{ -10240LL, "-10.0 KiB" },
	{ -102349LL, "-100.0 KiB" },
	{ -102400LL, "-100 KiB" },
	{ -4611686018427387904LL, "-4194304 TiB" },
};

/* Floats (averages): ties round half to even, as Python's '%.0f'. */
static const struct {
	double v;
	const char *plain;
} floats[] = {
	{ 0.5, "0 B" },		{ 1.5, "2 B" },		   { 2.5, "2 B" },
	{ 99.5, "100 B" },	{ 10239.5, "10240 B" },	   { 10240.0, "10.0 KiB" },
	{ 102349.0, "100.0 KiB" }, { 0.25, "0 B" },	   { 1048524.8, "1024 KiB" },
	{ 102348.8, "100.0 KiB" }, { 102347.776, "99.9 KiB" },
};

/* a / b in CPython (correctly rounded int true division). */
static const struct {
	unsigned long long a, b;
	double q;
} divs[] = {
	{ 18014398509481987ULL, 3ULL, 6004799503160662.0 },
	{ 18446744073709551615ULL, 3ULL, 6.148914691236517e+18 },
	{ 9223372036854775809ULL, 9007199254740993ULL, 1023.9999999999999 },
	{ 10000000000000000000ULL, 7ULL, 1.4285714285714286e+18 },
	{ 5ULL, 2ULL, 2.5 },
	{ 9007199254740993ULL, 1ULL, 9007199254740992.0 },
};

static void test_sizes(void)
{
	char buf[TM_SIZE_STRLEN];

	for (size_t i = 0; i < sizeof(uints) / sizeof(uints[0]); i++) {
		tm_format_size_u64(buf, sizeof(buf), uints[i].v, 0);
		CHECK_STREQ(buf, uints[i].plain, "_format_size(%llu, False)", uints[i].v);
		tm_format_size_u64(buf, sizeof(buf), uints[i].v, 1);
		CHECK_STREQ(buf, uints[i].sign, "_format_size(%llu, True)", uints[i].v);
		if (uints[i].v <= INT64_MAX) {
			tm_format_size_i64(buf, sizeof(buf), (int64_t)uints[i].v, 1);
			CHECK_STREQ(buf, uints[i].sign, "i64 _format_size(%llu, True)", uints[i].v);
		}
	}
	for (size_t i = 0; i < sizeof(negs) / sizeof(negs[0]); i++) {
		tm_format_size_i64(buf, sizeof(buf), negs[i].v, 1);
		CHECK_STREQ(buf, negs[i].sign, "_format_size(%lld, True)", negs[i].v);
	}
	for (size_t i = 0; i < sizeof(floats) / sizeof(floats[0]); i++) {
		tm_format_size_double(buf, sizeof(buf), floats[i].v, 0);
		CHECK_STREQ(buf, floats[i].plain, "_format_size(%.17g, False)", floats[i].v);
	}
	CHECK(tm_format_size_u64(buf, 4, 123456, 0) == -ENOSPC, "small buffer is refused");
	for (size_t i = 0; i < sizeof(divs) / sizeof(divs[0]); i++)
		CHECK(tm_div_u64(divs[i].a, divs[i].b) == divs[i].q, "%llu / %llu correctly rounded",
		      divs[i].a, divs[i].b);
}

static void test_text(void)
{
	struct tm_frame frames[3] = { { "new.py", 3, NULL }, { "mid.py", 2, NULL },
				      { "old.py", 1, NULL } };
	struct tm_statistic st = { frames, 3, 3 * 1024 * 1024 + 1, 3 };
	struct tm_statistic_diff d = { frames, 1, 0, -20480, 0, -2 };
	struct tm_strbuf sb;

	tm_strbuf_init(&sb);
	CHECK_STREQ(tm_strbuf_str(&sb), "", "an empty strbuf reads as \"\"");
	tm_format_statistic(&sb, &st);
	CHECK_STREQ(sb.data, "old.py:1: size=3072 KiB, count=3, average=1024 KiB",
		    "str(Statistic) shows the oldest frame");
	tm_strbuf_reset(&sb);
	tm_format_statistic_diff(&sb, &d);
	CHECK_STREQ(sb.data, "new.py:3: size=0 B (-20.0 KiB), count=0 (-2)",
		    "str(StatisticDiff) without average when count is 0");
	tm_strbuf_reset(&sb);
	st.count = 0;
	st.size_bytes = 0;
	tm_format_statistic(&sb, &st);
	CHECK_STREQ(sb.data, "old.py:1: size=0 B, count=0", "str(Statistic) with count 0");
	tm_strbuf_release(&sb);
}

static void test_trace(void)
{
	struct tm_snapshot *s = tm_snapshot_new();
	struct tm_frame fr[2] = { { tm_snapshot_intern_str(s, "new.py", 6), 7, NULL },
				  { tm_snapshot_intern_str(s, "old.py", 6), 1, NULL } };
	struct tm_trace t = { .size_bytes = 102349, .traceback = tm_snapshot_intern_traceback(s, fr, 2) };
	struct tm_strbuf sb;

	tm_strbuf_init(&sb);
	tm_format_trace(&sb, &t);
	CHECK_STREQ(tm_strbuf_str(&sb), "old.py:1: 100.0 KiB", "str(Trace): oldest frame and size");
	tm_strbuf_reset(&sb);
	tm_format_frame(&sb, &fr[0]);
	CHECK_STREQ(tm_strbuf_str(&sb), "new.py:7", "str(Frame)");
	tm_strbuf_release(&sb);
	tm_snapshot_free(s);
}

static const char *fmt(struct tm_strbuf *sb, int has_limit, long limit, int mrf)
{
	static struct tm_frame frames[3] = { { "c.py", 3, NULL }, { "b.py", 2, NULL },
					     { "a.py", 1, NULL } };

	tm_strbuf_reset(sb);
	tm_traceback_format(sb, frames, 3, has_limit, limit, mrf, NULL);
	return tm_strbuf_str(sb);
}

#define A "  File \"a.py\", line 1\n"
#define B "  File \"b.py\", line 2\n"
#define C "  File \"c.py\", line 3\n"

static void test_traceback_format(void)
{
	struct tm_strbuf sb;

	tm_strbuf_init(&sb);
	CHECK_STREQ(fmt(&sb, 0, 0, 0), A B C, "format(): oldest first");
	CHECK_STREQ(fmt(&sb, 0, 0, 1), C B A, "format(most_recent_first=True)");
	CHECK_STREQ(fmt(&sb, 1, 2, 0), B C, "format(2): the 2 most recent");
	CHECK_STREQ(fmt(&sb, 1, 5, 0), A B C, "format(5) on 3 frames");
	CHECK_STREQ(fmt(&sb, 1, 0, 0), "", "format(0): self[:0]");
	CHECK_STREQ(fmt(&sb, 1, -1, 0), A B, "format(-1): self[:-1]");
	CHECK_STREQ(fmt(&sb, 1, -1, 1), B A, "format(-1, most_recent_first=True)");
	CHECK_STREQ(fmt(&sb, 1, -7, 0), "", "format(-7) on 3 frames");
	CHECK_STREQ(fmt(&sb, 1, 1, 1), C, "format(1, True)");
	tm_strbuf_release(&sb);
}

static void write_file(const char *path, const char *data)
{
	size_t len = strlen(data);

	FILE *f = fopen(path, "wb");

	if (f) {
		fwrite(data, 1, len, f);
		fclose(f);
	}
}

static void check_line(struct tm_linecache *lc, const char *file, uint32_t lineno,
		       const char *want, const char *what)
{
	const char *line;
	size_t len;
	char buf[256] = "";

	tm_linecache_getline(lc, file, lineno, &line, &len);
	if (len < sizeof(buf))
		memcpy(buf, line ? line : "", len);
	CHECK_STREQ(buf, want, "linecache: %s", what);
}

static void test_linecache(void)
{
	char dir[] = "/tmp/tmbpf-lc-XXXXXX", p[6][64];
	struct tm_linecache *lc;

	if (!mkdtemp(dir)) {
		CHECK(0, "mkdtemp");
		return;
	}
	for (int i = 0; i < 6; i++)
		snprintf(p[i], sizeof(p[i]), "%s/f%d.py", dir, i);
	write_file(p[0], "\xef\xbb\xbf  first  \r\nsecond\rthird\n\xe3\x80\x80wide\xc2\xa0\n");
	write_file(p[1], "# -*- coding: latin-1 -*-\nx = '\xe9'\n");
	write_file(p[2], "ok\nbad \xff\n");
	write_file(p[3], "\xef\xbb\xbf# coding: latin-1\nx\n");
	write_file(p[4], "#!/bin/python\n# coding=latin-1\n\xfc\n");
	write_file(p[5], "no newline at end");
	lc = tm_linecache_new();
	check_line(lc, p[0], 1, "first", "BOM skipped, CRLF, stripped");
	check_line(lc, p[0], 2, "second", "lone CR ends a line");
	check_line(lc, p[0], 3, "third", "third line");
	check_line(lc, p[0], 4, "wide", "U+3000 and U+00A0 are stripped");
	check_line(lc, p[0], 5, "", "past the end");
	check_line(lc, p[0], 0, "", "line 0");
	check_line(lc, p[1], 2, "x = '\xc3\xa9'", "latin-1 cookie decodes to UTF-8");
	check_line(lc, p[2], 1, "", "invalid UTF-8 anywhere: no lines at all");
	check_line(lc, p[3], 2, "", "BOM with a non-UTF-8 cookie: no lines");
	check_line(lc, p[4], 3, "\xc3\xbc", "cookie on line 2 after a comment line");
	check_line(lc, p[5], 1, "no newline at end", "last line without newline");
	check_line(lc, "<string>", 1, "", "<...> names have no source");
	check_line(lc, dir, 1, "", "a directory has no lines");
	/* Lines are cached: a file changed afterwards is not reread. */
	write_file(p[5], "changed");
	check_line(lc, p[5], 1, "no newline at end", "lines are read once per name");
	tm_linecache_free(lc);
	for (int i = 0; i < 6; i++)
		unlink(p[i]);
	rmdir(dir);
}

int main(void)
{
	test_sizes();
	test_text();
	test_trace();
	test_traceback_format();
	test_linecache();
	return CHECK_DONE();
}
