/* filter.c: fnmatch as CPython translates it, _normalize_filename, the
 * Filter/DomainFilter match rules and filter_traces' include-OR /
 * exclude-AND combination. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/filter.h"

static const char *const glob_names[] = {
	"a.py", "A.py", "app/x.py", "x/app/y.py", "[", "[x]", "-", "]", "b", "z", "\\", "\303\251.py", "\360\237\230\200", "a\012b", "", "ab", "aXb", "a]b", "!", "^", "&", "~",
};
/* fnmatch.fnmatch(glob_names[i], pat) for each i, from CPython 3.12. */
static const struct { const char *pat, *match; } globs[] = {
	{ "*.py", "1111000000010000000000" },
	{ "?.py", "1100000000010000000000" },
	{ "a*b", "0000000000000101110000" },
	{ "[", "0000100000000000000000" },
	{ "[]", "0000000000000000000000" },
	{ "[]]", "0000000100000000000000" },
	{ "[!]]", "0000101011101000001111" },
	{ "[!]", "0000000000000000000000" },
	{ "*[!]*", "0000000000000000000000" },
	{ "[a-c]", "0000000010000000000000" },
	{ "[!a-c]", "0000101101101000001111" },
	{ "[z-a]", "0000000000000000000000" },
	{ "[!z-a]", "0000101111101000001111" },
	{ "[b-a-z]", "0000001001000000000000" },
	{ "[a-]", "0000001000000000000000" },
	{ "[-a]", "0000001000000000000000" },
	{ "[]-a]", "0000000100000000000100" },
	{ "[\\]", "0000000000100000000000" },
	{ "[^a]", "0000000000000000000100" },
	{ "[&~]", "0000000000000000000011" },
	{ "a[!]]b", "0000000000000100100000" },
	{ "a[]]b", "0000000000000000010000" },
	{ "*", "1111111111111111111111" },
	{ "", "0000000000000010000000" },
	{ "[!b-a]", "0000101111101000001111" },
	{ "[[]", "0000100000000000000000" },
	{ "\\*", "0000000000100000000000" },
	{ "*\\", "0000000000100000000000" },
	{ "[a-c-e]", "0000001010000000000000" },
	{ "[--0]", "0000001000000000000000" },
	{ "\303\251*", "0000000000010000000000" },
	{ "[\360\237\230\200]", "0000000000001000000000" },
	{ "?", "0000101111101000001111" },
	{ "a?b", "0000000000000100110000" },
	{ "*a*a*b", "0000000000000000000000" },
	{ "[!-]", "0000100111101000001111" },
	{ "[a-a]", "0000000000000000000000" },
	{ "*[]-]*", "0000011100000000010000" },
	{ "[!!]", "0000101111101000000111" },
};

static void test_fnmatch(void)
{
	size_t nn = sizeof(glob_names) / sizeof(glob_names[0]);

	for (size_t p = 0; p < sizeof(globs) / sizeof(globs[0]); p++) {
		char got[64] = "";

		for (size_t i = 0; i < nn; i++)
			got[i] = tm_fnmatch(glob_names[i], globs[p].pat) > 0 ? '1' : '0';
		CHECK_STREQ(got, globs[p].match, "fnmatch pattern #%zu over %zu names", p, nn);
	}
}

static void test_normalize(void)
{
	static const char *const cases[][2] = {
		{ "a.pyc", "a.py" }, { "a.py", "a.py" }, { ".pyc", ".py" }, { "pyc", "pyc" },
		{ "A.PYC", "A.PYC" }, { "x.pyc.py", "x.pyc.py" }, { "", "" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *n = tm_normalize_filename(cases[i][0]);

		CHECK_STREQ(n, cases[i][1], "_normalize_filename('%s')", cases[i][0]);
		free(n);
	}
}


static const struct tm_traceback *tb(struct tm_snapshot *s, const char *f0, uint32_t l0,
				     const char *f1, uint32_t l1)
{
	struct tm_frame fr[2] = { { tm_snapshot_intern_str(s, f0, strlen(f0)), l0, NULL },
				  { f1 ? tm_snapshot_intern_str(s, f1, strlen(f1)) : NULL, l1, NULL } };

	return tm_snapshot_intern_traceback(s, fr, f1 ? 2 : 1);
}

static void add(struct tm_snapshot *s, uint32_t domain, uint64_t size,
		const struct tm_traceback *t)
{
	struct tm_trace tr = { .size_bytes = size, .traceback = t, .domain = domain,
			       .total_nframe = t->nframe };

	tm_snapshot_add_trace(s, &tr);
}

/* Sizes of the kept traces, summed: each trace has a distinct power of two. */
static uint64_t kept(const struct tm_snapshot *s, const struct tm_filter *f, size_t n)
{
	struct tm_snapshot *out = tm_snapshot_filter_traces(s, f, n);
	uint64_t mask = 0;

	if (!out)
		return UINT64_MAX;
	for (size_t i = 0; i < out->ntraces; i++)
		mask |= out->traces[i].size_bytes;
	CHECK(out->traceback_limit == s->traceback_limit, "filter_traces keeps traceback_limit");
	tm_snapshot_free(out);
	return mask;
}

static void test_filters(void)
{
	struct tm_snapshot *s = tm_snapshot_new();
	struct tm_filter f[3];

	/* most recent frame first */
	add(s, 0, 1, tb(s, "app/a.pyc", 10, "main.py", 1));
	add(s, 0, 2, tb(s, "app/b.py", 20, "main.py", 2));
	add(s, 1, 4, tb(s, "lib/c.py", 10, "app/a.py", 5));
	add(s, 2, 8, tb(s, "<frozen>", 1, NULL, 0));
	s->traceback_limit = 7;

	CHECK(kept(s, NULL, 0) == 15, "no filters: every trace");

	tm_filter_init(&f[0], 1, "app/*.py", 0, 0, 0, 0, 0);
	CHECK(kept(s, f, 1) == 3, "include app/*.py: .pyc frame normalized, only the most recent frame");
	tm_filter_release(&f[0]);

	tm_filter_init(&f[0], 1, "app/a.pyc", 0, 0, 1, 0, 0);
	CHECK_STREQ(f[0].pattern, "app/a.py", "the pattern is normalized too");
	CHECK(kept(s, f, 1) == 5, "include-any app/a.py: any frame");
	tm_filter_release(&f[0]);

	tm_filter_init(&f[0], 0, "app/a.py", 0, 0, 1, 0, 0);
	CHECK(kept(s, f, 1) == 10, "exclude-any app/a.py");
	tm_filter_release(&f[0]);

	tm_filter_init(&f[0], 1, "*", 1, 10, 0, 0, 0);
	CHECK(kept(s, f, 1) == 5, "include *:10: lineno of the most recent frame");
	tm_filter_release(&f[0]);

	tm_filter_init(&f[0], 0, "*", 1, 10, 0, 0, 0);
	CHECK(kept(s, f, 1) == 10, "exclude *:10");
	tm_filter_release(&f[0]);

	tm_filter_init(&f[0], 1, "*", 0, 0, 0, 1, 0);
	CHECK(kept(s, f, 1) == 3, "Filter(True, '*', domain=0): res and domain == 0");
	tm_filter_release(&f[0]);

	tm_filter_init(&f[0], 0, "app/*", 0, 0, 0, 1, 0);
	CHECK(kept(s, f, 1) == 12, "Filter(False, 'app/*', domain=0): res or domain != 0");
	tm_filter_release(&f[0]);

	tm_domain_filter_init(&f[0], 1, 1);
	CHECK(kept(s, f, 1) == 4, "DomainFilter(True, 1)");
	tm_domain_filter_init(&f[0], 0, 1);
	CHECK(kept(s, f, 1) == 11, "DomainFilter(False, 1)");

	/* Two includes are OR'ed, excludes AND'ed after them. */
	tm_filter_init(&f[0], 1, "lib/*", 0, 0, 0, 0, 0);
	tm_filter_init(&f[1], 1, "<*>", 0, 0, 0, 0, 0);
	tm_domain_filter_init(&f[2], 0, 2);
	CHECK(kept(s, f, 2) == 12, "include lib/* OR include <*>");
	CHECK(kept(s, f, 3) == 4, "... AND exclude domain 2");
	tm_filter_release(&f[0]);
	tm_filter_release(&f[1]);

	tm_filter_init(&f[0], 0, "*[z-a]*", 0, 0, 0, 0, 0);
	CHECK(kept(s, f, 1) == 15, "exclude of a never-matching set keeps everything");
	tm_filter_release(&f[0]);
	CHECK(tm_filter_init(&f[0], 1, NULL, 0, 0, 0, 0, 0) == -EINVAL, "NULL pattern is refused");
	tm_filter_release(&f[0]);
	tm_filter_release(NULL);
	tm_snapshot_free(s);
}

int main(void)
{
	test_fnmatch();
	test_normalize();
	test_filters();
	return CHECK_DONE();
}
