/* snapshot_merge.c: the statistics of a merge are the sums of the parts'
 * for every key (cumulative too); function names never split a line; the
 * metadata rules of snapshot_merge.h (limit, pid, joined strings, times,
 * traced memory, drops, ages kept); sampling combined or refused. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/sampling.h"
#include "core/snapshot_merge.h"
#include "core/statistics.h"

#define SEC 1000000000ull

/* Intern a traceback given most recent frame first as "file:line[:name]". */
static const struct tm_traceback *tbv(struct tm_snapshot *s, int n, const char *const *spec)
{
	struct tm_frame fr[8];

	for (int i = 0; i < n; i++) {
		const char *c1 = strchr(spec[i], ':'), *c2 = strchr(c1 + 1, ':');

		fr[i].filename = tm_snapshot_intern_str(s, spec[i], (size_t)(c1 - spec[i]));
		fr[i].lineno = (uint32_t)atoi(c1 + 1);
		fr[i].name = c2 ? tm_snapshot_intern_str(s, c2 + 1, strlen(c2 + 1)) : NULL;
	}
	return tm_snapshot_intern_traceback(s, fr, (uint32_t)n);
}

#define TB(s, ...) tbv(s, sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(char *), \
		       (const char *[]){ __VA_ARGS__ })

static void add(struct tm_snapshot *s, uint64_t size, const struct tm_traceback *t, uint32_t domain,
		uint64_t alloc_ns)
{
	struct tm_trace tr = { .size_bytes = size, .traceback = t, .domain = domain,
			       .total_nframe = t->nframe, .alloc_ns = alloc_ns, .thread_id = 7 };

	tm_snapshot_add_trace(s, &tr);
}

static int same_frames(const struct tm_statistic *a, const struct tm_statistic *b)
{
	if (a->nframe != b->nframe)
		return 0;
	for (uint32_t i = 0; i < a->nframe; i++) {
		if (a->frames[i].lineno != b->frames[i].lineno ||
		    strcmp(a->frames[i].filename, b->frames[i].filename))
			return 0;
	}
	return 1;
}

/* Every statistic of the merge is the sum of the parts' statistics of its
 * key, and every key of a part is in the merge. */
static int sums_hold(const struct tm_snapshot *merged, const struct tm_snapshot *const *parts,
		     size_t nparts, enum tm_key_type key, int cumulative)
{
	struct tm_statistics m, p[4];
	size_t nkeys_seen = 0;
	int good = tm_statistics_compute(merged, key, cumulative, &m) == 0 && nparts <= 4;

	for (size_t k = 0; k < nparts && good; k++)
		good = tm_statistics_compute(parts[k], key, cumulative, &p[k]) == 0;
	for (size_t i = 0; i < m.nstats && good; i++) {
		uint64_t size = 0, count = 0;

		for (size_t k = 0; k < nparts; k++) {
			for (size_t j = 0; j < p[k].nstats; j++) {
				if (same_frames(&m.stats[i], &p[k].stats[j])) {
					size += p[k].stats[j].size_bytes;
					count += p[k].stats[j].count;
					nkeys_seen++;
				}
			}
		}
		good = size == m.stats[i].size_bytes && count == m.stats[i].count;
	}
	for (size_t k = 0; k < nparts && good; k++)
		nkeys_seen -= p[k].nstats;
	good = good && nkeys_seen == 0;
	for (size_t k = 0; k < nparts; k++)
		tm_statistics_release(&p[k]);
	tm_statistics_release(&m);
	return good;
}

/* Two parts sharing lines under other function names, a third of another
 * file; domains and repeated frames. */
static void make_parts(struct tm_snapshot *p[3])
{
	for (int i = 0; i < 3; i++)
		p[i] = tm_snapshot_new();
	add(p[0], 100, TB(p[0], "app.py:10:handle", "app.py:50:main"), 0, 0);
	add(p[0], 30, TB(p[0], "app.py:10:handle", "app.py:50:main"), 1, 0);
	add(p[0], 7, TB(p[0], "lib.py:3:f", "lib.py:3:f", "app.py:50:main"), 0, 0);
	add(p[1], 1000, TB(p[1], "app.py:10:<listcomp>", "app.py:50:main"), 0, 0);
	add(p[1], 5, TB(p[1], "app.py:11", "app.py:50"), 0, 0);
	add(p[1], 8, TB(p[1], "lib.py:3:g", "lib.py:3:g", "app.py:50"), 0, 0);
	add(p[2], 64, TB(p[2], "other.py:1"), 3, 0);
	add(p[2], 64, TB(p[2], "other.py:1"), 3, 0);
}

static void test_sums(void)
{
	struct tm_snapshot *p[3], *m;
	char err[256] = "";
	static const struct { enum tm_key_type key; int cum; } keys[] = {
		{ TM_KEY_LINENO, 0 }, { TM_KEY_FILENAME, 0 }, { TM_KEY_TRACEBACK, 0 },
		{ TM_KEY_LINENO, 1 }, { TM_KEY_FILENAME, 1 },
	};

	make_parts(p);
	m = tm_snapshot_merge((const struct tm_snapshot *const *)p, 3, err, sizeof(err));
	CHECK(m && m->ntraces == 8, "merge of 3 parts holds their 8 traces (%s)", err);
	if (!m)
		return;
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		CHECK(sums_hold(m, (const struct tm_snapshot *const *)p, 3, keys[k].key, keys[k].cum),
		      "merge: --key %s%s is the sum of the parts'", tm_key_type_name(keys[k].key),
		      keys[k].cum ? " --cumulative" : "");
	CHECK(tm_snapshot_ntracebacks(m) == 4,
	      "tracebacks interned by (filename, lineno): names do not split them (%zu)",
	      tm_snapshot_ntracebacks(m));
	CHECK(m->traces[3].traceback == m->traces[0].traceback,
	      "the other part's <listcomp> frame lands on the first part's traceback");
	CHECK_STREQ(m->traces[3].traceback->frames[0].name, "handle",
		    "the first part's function name stays");
	CHECK(m->traces[1].domain == 1 && m->traces[6].domain == 3 && m->traces[6].thread_id == 7 &&
	      m->traces[4].total_nframe == 2,
	      "domains, thread ids and total_nframe are kept per trace");
	tm_snapshot_free(m);
	for (int i = 0; i < 3; i++)
		tm_snapshot_free(p[i]);
}

static void test_meta(void)
{
	struct tm_snapshot *p[3], *m;
	struct tm_merge mg;
	char err[256] = "";

	make_parts(p);
	p[0]->traceback_limit = 5, p[1]->traceback_limit = 25, p[2]->traceback_limit = 1;
	p[0]->meta.pid = p[1]->meta.pid = p[2]->meta.pid = 42;
	tm_snapshot_meta_set(&p[0]->meta.hostname, "web-1");
	tm_snapshot_meta_set(&p[1]->meta.hostname, "web-2");
	tm_snapshot_meta_set(&p[2]->meta.hostname, "web-1");
	tm_snapshot_meta_set(&p[0]->meta.python_version, "3.11.7");
	tm_snapshot_meta_set(&p[2]->meta.python_version, "3.12.1");
	for (int i = 0; i < 3; i++)
		tm_snapshot_meta_set(&p[i]->meta.cmdline, "gunicorn app:wsgi");
	p[0]->meta.start_ns = 50 * SEC, p[1]->meta.start_ns = 20 * SEC;
	p[0]->meta.snapshot_ns = 100 * SEC, p[1]->meta.snapshot_ns = 300 * SEC;
	for (int i = 0; i < 3; i++) {
		p[i]->meta.has_traced_memory = 1;
		p[i]->meta.traced_current_bytes = 1000u * (i + 1);
		p[i]->meta.traced_peak_bytes = 2000u * (i + 1);
	}
	tm_snapshot_meta_add_drop(&p[0]->meta, "live_blocks_full", 3);
	tm_snapshot_meta_add_drop(&p[1]->meta, "live_blocks_full", 4);
	tm_snapshot_meta_add_drop(&p[1]->meta, "stack_walk", 1);

	m = tm_snapshot_merge((const struct tm_snapshot *const *)p, 3, err, sizeof(err));
	CHECK(m != NULL, "merge with metadata (%s)", err);
	if (!m)
		return;
	CHECK(m->traceback_limit == 25, "traceback_limit: the largest (%u)", m->traceback_limit);
	CHECK(m->meta.pid == 42, "a pid common to every part stays");
	CHECK_STREQ(m->meta.cmdline, "gunicorn app:wsgi", "a common command line stays");
	CHECK_STREQ(m->meta.hostname, "web-1 | web-2", "hosts: distinct values, first seen first");
	CHECK_STREQ(m->meta.python_version, "3.11.7 | ? | 3.12.1", "versions: '?' for a part without");
	CHECK(m->meta.coverage_mode == NULL, "unknown everywhere stays unknown");
	CHECK(m->meta.start_ns == 20 * SEC && m->meta.snapshot_ns == 300 * SEC,
	      "earliest start, latest snapshot time");
	CHECK(m->meta.has_traced_memory && m->meta.traced_current_bytes == 6000 &&
	      m->meta.traced_peak_bytes == 12000, "traced memory summed");
	CHECK(m->meta.ndrops == 2 && m->meta.drops[0].count == 7 && m->meta.drops[1].count == 1,
	      "drop counters summed by name");
	tm_snapshot_free(m);

	/* A pid that differs, traced memory one part lacks. */
	p[2]->meta.pid = 43;
	p[2]->meta.has_traced_memory = 0;
	m = tm_snapshot_merge((const struct tm_snapshot *const *)p, 3, err, sizeof(err));
	CHECK(m && m->meta.pid == -1, "pids that differ: unknown");
	CHECK(m && !m->meta.has_traced_memory && !m->meta.traced_current_bytes,
	      "traced memory unknown when a part lacks it");
	tm_snapshot_free(m);

	/* Too many drop counters. */
	for (int i = 0; i < TM_MAX_DROP_COUNTERS; i++) {
		char name[16];

		snprintf(name, sizeof(name), "c%d", i);
		tm_snapshot_meta_add_drop(&p[2]->meta, name, 1);
	}
	tm_merge_init(&mg);
	CHECK(tm_merge_add(&mg, p[1], err, sizeof(err)) == 0 &&
	      tm_merge_add(&mg, p[2], err, sizeof(err)) == -ENOSPC && strstr(err, "drop counters"),
	      "more than %d distinct drop counters: -ENOSPC, said (%s)", TM_MAX_DROP_COUNTERS, err);
	tm_merge_release(&mg);
	for (int i = 0; i < 3; i++)
		tm_snapshot_free(p[i]);
}

/* Ages survive: each block's age is measured from its own part's snapshot. */
static void test_ages(void)
{
	struct tm_snapshot *p[3], *m;
	const struct tm_traceback *t;
	char err[256] = "";

	for (int i = 0; i < 3; i++)
		p[i] = tm_snapshot_new();
	t = TB(p[0], "a.py:1");
	add(p[0], 10, t, 0, 90 * SEC);
	add(p[0], 10, t, 0, 0);
	p[0]->meta.snapshot_ns = 100 * SEC;
	add(p[1], 10, TB(p[1], "a.py:1"), 0, 150 * SEC);
	p[1]->meta.snapshot_ns = 200 * SEC;
	add(p[2], 10, TB(p[2], "a.py:1"), 0, 170 * SEC); /* no snapshot time: no age */
	m = tm_snapshot_merge((const struct tm_snapshot *const *)p, 3, err, sizeof(err));
	CHECK(m && m->meta.snapshot_ns == 200 * SEC, "ages: the latest snapshot time");
	if (m) {
		CHECK(m->meta.snapshot_ns - m->traces[0].alloc_ns == 10 * SEC &&
		      m->meta.snapshot_ns - m->traces[2].alloc_ns == 50 * SEC,
		      "each block keeps the age it had in its part");
		CHECK(m->traces[1].alloc_ns == 0 && m->traces[3].alloc_ns == 0,
		      "no time stays none; a part without a snapshot time gives no ages");
	}
	tm_snapshot_free(m);
	for (int i = 0; i < 3; i++)
		tm_snapshot_free(p[i]);
}

static void test_sampling(void)
{
	struct tm_snapshot *p[3], *m;
	char err[256] = "";
	uint64_t est_parts = 0, est_merged;
	struct tm_statistics st;

	make_parts(p);
	p[0]->meta.sample_interval_bytes = p[1]->meta.sample_interval_bytes = 512;
	m = tm_snapshot_merge((const struct tm_snapshot *const *)p, 2, err, sizeof(err));
	CHECK(m && m->meta.sample_interval_bytes == 512, "sampled parts at one interval: stay sampled");
	for (int k = 0; k < 2; k++) {
		tm_statistics_compute(p[k], TM_KEY_FILENAME, 0, &st);
		for (size_t i = 0; i < st.nstats; i++)
			est_parts += st.stats[i].count;
		tm_statistics_release(&st);
	}
	tm_statistics_compute(m, TM_KEY_FILENAME, 0, &st);
	est_merged = st.total_count;
	tm_statistics_release(&st);
	CHECK(est_merged + 2 >= est_parts && est_merged <= est_parts + 2 && est_merged > 6,
	      "estimated blocks: the parts' sum within their rounding (%llu vs %llu)",
	      (unsigned long long)est_merged, (unsigned long long)est_parts);
	tm_snapshot_free(m);

	errno = 0;
	m = tm_snapshot_merge((const struct tm_snapshot *const *)p, 3, err, sizeof(err));
	CHECK(!m && errno == EINVAL && strstr(err, "sampled and full snapshots do not merge") &&
	      strstr(err, "not sampled"), "full after sampled: refused (%s)", err);
	{
		const struct tm_snapshot *q[2] = { p[2], p[0] };

		m = tm_snapshot_merge(q, 2, err, sizeof(err));
		CHECK(!m && strstr(err, "sampled, the snapshots before it are not"),
		      "sampled after full: refused (%s)", err);
	}
	p[1]->meta.sample_interval_bytes = 4096;
	m = tm_snapshot_merge((const struct tm_snapshot *const *)p, 2, err, sizeof(err));
	CHECK(!m && strstr(err, "every 4096 bytes") && strstr(err, "every 512"),
	      "other intervals: refused, both named (%s)", err);
	for (int i = 0; i < 3; i++)
		tm_snapshot_free(p[i]);
}

static void test_edges(void)
{
	struct tm_snapshot *p[1], *m;
	const struct tm_snapshot *twice[2];
	char err[256] = "";

	m = tm_snapshot_merge(NULL, 0, err, sizeof(err));
	CHECK(m && m->ntraces == 0 && m->traceback_limit == 1, "no parts: an empty snapshot");
	tm_snapshot_free(m);

	p[0] = tm_snapshot_new();
	add(p[0], 1, TB(p[0], "x.py:1"), 0, 0);
	p[0]->traceback_limit = 9;
	twice[0] = twice[1] = p[0];
	m = tm_snapshot_merge(twice, 2, err, sizeof(err));
	CHECK(m && m->ntraces == 2 && tm_snapshot_ntracebacks(m) == 1 && m->traceback_limit == 9,
	      "a part merged with itself: its traces twice, one traceback");
	tm_snapshot_free(m);
	tm_snapshot_free(p[0]);
	tm_merge_release(NULL);
}

int main(void)
{
	test_sums();
	test_meta();
	test_ages();
	test_sampling();
	test_edges();
	return CHECK_DONE();
}
