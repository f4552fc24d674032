/* Ages of live blocks (age.h). */
#include "core/age.h"

#include <errno.h>
#include <string.h>

size_t tm_snapshot_ntimed(const struct tm_snapshot *snap)
{
	size_t n = 0;

	if (!snap->meta.snapshot_ns)
		return 0;
	for (size_t i = 0; i < snap->ntraces; i++)
		n += snap->traces[i].alloc_ns != 0;
	return n;
}

static uint64_t age_of(uint64_t now, const struct tm_trace *t)
{
	return t->alloc_ns < now ? now - t->alloc_ns : 0;
}

struct age_ctx {
	const struct tm_age_filter *af;
	uint64_t now;
};

static int age_pred(void *ctx, const struct tm_trace *t)
{
	const struct age_ctx *c = ctx;
	uint64_t age;

	if (!t->alloc_ns)
		return 0;
	age = age_of(c->now, t);
	return (!c->af->has_older || age >= c->af->older_ns) &&
	       (!c->af->has_younger || age < c->af->younger_ns);
}

struct tm_snapshot *tm_snapshot_filter_age(const struct tm_snapshot *snap,
					   const struct tm_filter *filters, size_t nfilters,
					   const struct tm_age_filter *af)
{
	struct age_ctx c = { af, snap->meta.snapshot_ns };

	if (!af || (!af->has_older && !af->has_younger))
		return tm_snapshot_filter_traces(snap, filters, nfilters);
	if (!tm_snapshot_ntimed(snap)) {
		errno = ENODATA;
		return NULL;
	}
	return tm_snapshot_filter_traces_ex(snap, filters, nfilters, age_pred, &c);
}

int tm_age_histogram(const struct tm_snapshot *snap, struct tm_age_bucket *b)
{
	static const uint64_t s = 1000000000ull;
	static const uint64_t edges[TM_AGE_NBUCKETS - 1] = {
		0, s, 10 * s, 60 * s, 600 * s, 3600 * s, 86400 * s,
	};
	uint64_t now = snap->meta.snapshot_ns;

	memset(b, 0, TM_AGE_NBUCKETS * sizeof(*b));
	for (int k = 0; k < TM_AGE_NBUCKETS - 1; k++) {
		b[k].min_ns = edges[k];
		b[k].max_ns = k + 1 < TM_AGE_NBUCKETS - 1 ? edges[k + 1] : UINT64_MAX;
	}
	for (size_t i = 0; i < snap->ntraces; i++) {
		const struct tm_trace *t = &snap->traces[i];
		struct tm_age_bucket *x = &b[TM_AGE_NBUCKETS - 1]; /* no time */

		if (t->alloc_ns && now) {
			uint64_t age = age_of(now, t);
			int k = TM_AGE_NBUCKETS - 2;

			while (k > 0 && age < edges[k])
				k--;
			x = &b[k];
		}
		if (__builtin_add_overflow(x->size_bytes, t->size_bytes, &x->size_bytes))
			return -EOVERFLOW;
		x->count++;
	}
	return 0;
}
