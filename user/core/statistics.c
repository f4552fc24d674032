/* Snapshot.statistics() and compare_to(). Traces are first summed per
 * interned traceback (one pass over the traces), then per key: a million
 * traces sharing a few thousand tracebacks cost one pass plus a few thousand
 * hash lookups. The result is the same as CPython's per-trace loop because
 * every trace with the same traceback lands on the same keys. */
#include "core/statistics.h"

#include "core/sampling.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int tm_key_type_parse(const char *name, enum tm_key_type *key)
{
	if (!strcmp(name, "lineno"))
		*key = TM_KEY_LINENO;
	else if (!strcmp(name, "filename"))
		*key = TM_KEY_FILENAME;
	else if (!strcmp(name, "traceback"))
		*key = TM_KEY_TRACEBACK;
	else
		return -EINVAL;
	return 0;
}

const char *tm_key_type_name(enum tm_key_type key)
{
	switch (key) {
	case TM_KEY_LINENO:
		return "lineno";
	case TM_KEY_FILENAME:
		return "filename";
	case TM_KEY_TRACEBACK:
		return "traceback";
	}
	return "?";
}

int tm_traceback_cmp(const struct tm_frame *a, uint32_t na, const struct tm_frame *b, uint32_t nb)
{
	uint32_t n = na < nb ? na : nb;

	/* Traceback._frames is oldest first: walk the stored arrays backwards. */
	for (uint32_t i = 1; i <= n; i++) {
		int c = tm_frame_cmp(&a[na - i], &b[nb - i]);

		if (c)
			return c;
	}
	if (na != nb)
		return na < nb ? -1 : 1;
	return 0;
}

#define CMP_NUM(x, y)                                  \
	do {                                           \
		if ((x) != (y))                        \
			return (x) < (y) ? -1 : 1;     \
	} while (0)

static uint64_t abs_i64(int64_t v)
{
	return v < 0 ? -(uint64_t)v : (uint64_t)v;
}

int tm_statistic_key_cmp(const struct tm_statistic *a, const struct tm_statistic *b)
{
	CMP_NUM(a->size_bytes, b->size_bytes);
	CMP_NUM(a->count, b->count);
	return tm_traceback_cmp(a->frames, a->nframe, b->frames, b->nframe);
}

int tm_statistic_diff_key_cmp(const struct tm_statistic_diff *a, const struct tm_statistic_diff *b)
{
	CMP_NUM(abs_i64(a->size_diff), abs_i64(b->size_diff));
	CMP_NUM(a->size_bytes, b->size_bytes);
	CMP_NUM(abs_i64(a->count_diff), abs_i64(b->count_diff));
	CMP_NUM(a->count, b->count);
	return tm_traceback_cmp(a->frames, a->nframe, b->frames, b->nframe);
}

/* sort(reverse=True): largest key first. Keys are distinct (each statistic
 * has its own traceback), so the order is total and stability is moot. */
static int stat_desc(const void *pa, const void *pb)
{
	return tm_statistic_key_cmp(pb, pa);
}

static int diff_desc(const void *pa, const void *pb)
{
	return tm_statistic_diff_key_cmp(pb, pa);
}

/* Open-addressing table of statistic indices keyed by a frame of this
 * snapshot (interned filename pointer + lineno). */
struct key_table {
	uint32_t *slots; /* stat index + 1; 0 = empty */
	size_t cap;
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

struct grouper {
	struct key_table table;
	struct tm_statistic *stats;
	size_t nstats, cap;
	struct tm_frame *keys; /* key frame of each stat (lineno/filename keys) */
};

static int grouper_grow(struct grouper *g)
{
	size_t ncap = g->cap ? g->cap * 2 : 256;
	struct tm_statistic *stats;
	struct tm_frame *keys;
	uint32_t *slots;

	if (ncap > UINT32_MAX - 1)
		return -EOVERFLOW;
	stats = realloc(g->stats, ncap * sizeof(*stats));
	if (!stats)
		return -ENOMEM;
	g->stats = stats;
	keys = realloc(g->keys, ncap * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	g->keys = keys;
	slots = calloc(ncap * 2, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < g->nstats; i++) {
		size_t j = mix64((uintptr_t)keys[i].filename ^ ((uint64_t)keys[i].lineno << 40));

		for (j &= ncap * 2 - 1; slots[j]; j = (j + 1) & (ncap * 2 - 1))
			;
		slots[j] = (uint32_t)i + 1;
	}
	free(g->table.slots);
	g->table.slots = slots;
	g->table.cap = ncap * 2;
	g->cap = ncap;
	return 0;
}

static int add_u64(uint64_t *acc, uint64_t v)
{
	if (*acc > UINT64_MAX - v)
		return -EOVERFLOW;
	*acc += v;
	return 0;
}

/* Add (size, count) to the statistic keyed by frame. */
static int grouper_add(struct grouper *g, const struct tm_frame *frame, uint64_t size,
		       uint64_t count)
{
	uint64_t h = mix64((uintptr_t)frame->filename ^ ((uint64_t)frame->lineno << 40));
	struct tm_statistic *st;
	size_t j;
	int err;

	if (g->nstats == g->cap && (err = grouper_grow(g)))
		return err;
	for (j = h & (g->table.cap - 1); g->table.slots[j]; j = (j + 1) & (g->table.cap - 1)) {
		struct tm_frame *k = &g->keys[g->table.slots[j] - 1];

		if (k->filename == frame->filename && k->lineno == frame->lineno) {
			st = &g->stats[g->table.slots[j] - 1];
			if ((err = add_u64(&st->size_bytes, size)) || (err = add_u64(&st->count, count)))
				return err;
			return 0;
		}
	}
	g->keys[g->nstats] = *frame;
	st = &g->stats[g->nstats];
	st->frames = NULL; /* set once keys stop moving */
	st->nframe = 1;
	st->size_bytes = size;
	st->count = count;
	g->table.slots[j] = (uint32_t)++g->nstats;
	return 0;
}

/* Sum size and count of the traces per interned traceback (estimates for
 * a sampled snapshot). */
static int sum_per_traceback(const struct tm_snapshot *snap, uint64_t **sizes, uint64_t **counts)
{
	size_t ntb = tm_snapshot_ntracebacks(snap);
	int err;

	*sizes = calloc(ntb ? ntb : 1, sizeof(**sizes));
	*counts = calloc(ntb ? ntb : 1, sizeof(**counts));
	if (!*sizes || !*counts)
		return -ENOMEM;
	if (snap->meta.sample_interval_bytes)
		return tm_sample_estimate(snap, *sizes, *counts);
	for (size_t i = 0; i < snap->ntraces; i++) {
		const struct tm_trace *t = &snap->traces[i];
		uint32_t idx = t->traceback->index;

		if ((err = add_u64(&(*sizes)[idx], t->size_bytes)))
			return err;
		(*counts)[idx]++;
	}
	return 0;
}

static int group_by_traceback(const struct tm_snapshot *snap, const uint64_t *sizes,
			      const uint64_t *counts, struct tm_statistics *out)
{
	size_t ntb = tm_snapshot_ntracebacks(snap), n = 0;

	out->stats = malloc((ntb ? ntb : 1) * sizeof(*out->stats));
	if (!out->stats)
		return -ENOMEM;
	for (size_t i = 0; i < ntb; i++) {
		const struct tm_traceback *tb = tm_snapshot_traceback_at(snap, i);

		if (!counts[i])
			continue;
		out->stats[n].frames = tb->frames;
		out->stats[n].nframe = tb->nframe;
		out->stats[n].size_bytes = sizes[i];
		out->stats[n].count = counts[i];
		n++;
	}
	out->nstats = n;
	return 0;
}

static int group_by_frame(const struct tm_snapshot *snap, enum tm_key_type key, int cumulative,
			  const uint64_t *sizes, const uint64_t *counts, struct tm_statistics *out)
{
	size_t ntb = tm_snapshot_ntracebacks(snap);
	struct grouper g = { 0 };
	int err = 0;

	for (size_t i = 0; i < ntb && !err; i++) {
		const struct tm_traceback *tb = tm_snapshot_traceback_at(snap, i);
		uint32_t nkeys = cumulative ? tb->nframe : 1;

		if (!counts[i])
			continue;
		for (uint32_t f = 0; f < nkeys && !err; f++) {
			struct tm_frame frame = tb->frames[f];

			if (key == TM_KEY_FILENAME)
				frame.lineno = 0;
			err = grouper_add(&g, &frame, sizes[i], counts[i]);
		}
	}
	if (err)
		goto cleanup;
	for (size_t i = 0; i < g.nstats; i++)
		g.stats[i].frames = &g.keys[i];
	out->stats = g.stats;
	out->nstats = g.nstats;
	out->key_frames = g.keys;
	g.stats = NULL;
	g.keys = NULL;
cleanup:
	free(g.table.slots);
	free(g.stats);
	free(g.keys);
	return err;
}

int tm_statistics_compute(const struct tm_snapshot *snap, enum tm_key_type key, int cumulative,
			  struct tm_statistics *out)
{
	uint64_t *sizes = NULL, *counts = NULL;
	int err;

	memset(out, 0, sizeof(*out));
	if (key != TM_KEY_LINENO && key != TM_KEY_FILENAME && key != TM_KEY_TRACEBACK)
		return -EINVAL;
	if (cumulative && key == TM_KEY_TRACEBACK)
		return -EINVAL;
	err = sum_per_traceback(snap, &sizes, &counts);
	if (err)
		goto cleanup;
	if (key == TM_KEY_TRACEBACK)
		err = group_by_traceback(snap, sizes, counts, out);
	else
		err = group_by_frame(snap, key, cumulative, sizes, counts, out);
	if (err)
		goto cleanup;
	for (size_t i = 0; i < out->nstats; i++) {
		if ((err = add_u64(&out->total_size_bytes, out->stats[i].size_bytes)) ||
		    (err = add_u64(&out->total_count, out->stats[i].count)))
			goto cleanup;
	}
	if (out->nstats > 1)
		qsort(out->stats, out->nstats, sizeof(*out->stats), stat_desc);
cleanup:
	free(sizes);
	free(counts);
	return err;
}

void tm_statistics_release(struct tm_statistics *st)
{
	if (!st)
		return;
	free(st->stats);
	free(st->key_frames);
	memset(st, 0, sizeof(*st));
}

static int frames_equal(const struct tm_frame *a, uint32_t na, const struct tm_frame *b, uint32_t nb)
{
	if (na != nb)
		return 0;
	for (uint32_t i = 0; i < na; i++) {
		if (a[i].lineno != b[i].lineno || strcmp(a[i].filename, b[i].filename))
			return 0;
	}
	return 1;
}

static int diff_i64(uint64_t a, uint64_t b, int64_t *out)
{
	if (a >= b) {
		if (a - b > (uint64_t)INT64_MAX)
			return -EOVERFLOW;
		*out = (int64_t)(a - b);
	} else {
		if (b - a > (uint64_t)INT64_MAX + 1)
			return -EOVERFLOW;
		*out = (int64_t)(0 - (b - a));
	}
	return 0;
}

/* _compare_grouped_stats: match new keys to old keys by value. */
static int match_groups(const struct tm_statistics *nst, const struct tm_statistics *ost,
			struct tm_statistic_diff *diffs, size_t *ndiffs)
{
	size_t cap = 16, n = 0;
	uint32_t *slots;
	char *used;
	int err = 0;

	while (cap < ost->nstats * 2)
		cap *= 2;
	slots = calloc(cap, sizeof(*slots));
	used = calloc(ost->nstats ? ost->nstats : 1, 1);
	if (!slots || !used) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < ost->nstats; i++) {
		const struct tm_statistic *s = &ost->stats[i];
		size_t j = tm_frames_hash(s->frames, s->nframe) & (cap - 1);

		while (slots[j])
			j = (j + 1) & (cap - 1);
		slots[j] = (uint32_t)i + 1;
	}
	for (size_t i = 0; i < nst->nstats; i++) {
		const struct tm_statistic *s = &nst->stats[i];
		struct tm_statistic_diff *d = &diffs[n++];
		const struct tm_statistic *prev = NULL;
		size_t j = tm_frames_hash(s->frames, s->nframe) & (cap - 1);

		for (; slots[j]; j = (j + 1) & (cap - 1)) {
			const struct tm_statistic *o = &ost->stats[slots[j] - 1];

			if (frames_equal(s->frames, s->nframe, o->frames, o->nframe)) {
				prev = o;
				used[slots[j] - 1] = 1;
				break;
			}
		}
		d->frames = s->frames;
		d->nframe = s->nframe;
		d->size_bytes = s->size_bytes;
		d->count = s->count;
		if ((err = diff_i64(s->size_bytes, prev ? prev->size_bytes : 0, &d->size_diff)) ||
		    (err = diff_i64(s->count, prev ? prev->count : 0, &d->count_diff)))
			goto cleanup;
	}
	for (size_t i = 0; i < ost->nstats; i++) {
		const struct tm_statistic *o = &ost->stats[i];
		struct tm_statistic_diff *d;

		if (used[i])
			continue;
		d = &diffs[n++];
		d->frames = o->frames;
		d->nframe = o->nframe;
		d->size_bytes = 0;
		d->count = 0;
		if ((err = diff_i64(0, o->size_bytes, &d->size_diff)) ||
		    (err = diff_i64(0, o->count, &d->count_diff)))
			goto cleanup;
	}
	*ndiffs = n;
cleanup:
	free(slots);
	free(used);
	return err;
}

int tm_statistics_compare(const struct tm_snapshot *new_snap, const struct tm_snapshot *old_snap,
			  enum tm_key_type key, int cumulative, struct tm_statistic_diffs *out)
{
	int err;

	memset(out, 0, sizeof(*out));
	err = tm_statistics_compute(new_snap, key, cumulative, &out->new_stats);
	if (err)
		return err;
	err = tm_statistics_compute(old_snap, key, cumulative, &out->old_stats);
	if (err)
		return err;
	if (out->old_stats.nstats > UINT32_MAX - 1)
		return -EOVERFLOW;
	out->diffs = malloc((out->new_stats.nstats + out->old_stats.nstats + 1) * sizeof(*out->diffs));
	if (!out->diffs)
		return -ENOMEM;
	err = match_groups(&out->new_stats, &out->old_stats, out->diffs, &out->ndiffs);
	if (err)
		return err;
	if (out->ndiffs > 1)
		qsort(out->diffs, out->ndiffs, sizeof(*out->diffs), diff_desc);
	return 0;
}

void tm_statistic_diffs_release(struct tm_statistic_diffs *d)
{
	if (!d)
		return;
	free(d->diffs);
	tm_statistics_release(&d->old_stats);
	tm_statistics_release(&d->new_stats);
	memset(d, 0, sizeof(*d));
}
