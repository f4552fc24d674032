/* Shared by the profile writers (profile.h). */
#include "core/profile.h"

#include "core/sampling.h"

#include <errno.h>
#include <stdlib.h>

int tm_traceback_totals(const struct tm_snapshot *snap, struct tm_tb_total **totals,
			struct tm_tb_total *sum)
{
	size_t ntb = tm_snapshot_ntracebacks(snap);
	struct tm_tb_total *t = calloc(ntb ? ntb : 1, sizeof(*t));

	*totals = NULL;
	sum->size_bytes = sum->count = 0;
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < snap->ntraces; i++) {
		const struct tm_trace *tr = &snap->traces[i];
		struct tm_tb_total *x = &t[tr->traceback->index];

		/* Every traceback total is at most the sum: one check suffices. */
		if (__builtin_add_overflow(sum->size_bytes, tr->size_bytes, &sum->size_bytes)) {
			free(t);
			return -EOVERFLOW;
		}
		x->size_bytes += tr->size_bytes;
		x->count++;
	}
	sum->count = snap->ntraces;
	if (snap->meta.sample_interval_bytes) {
		/* A sampled snapshot weighs what its statistics say: the estimates. */
		uint64_t *sz = calloc(ntb ? ntb : 1, 8), *ct = calloc(ntb ? ntb : 1, 8);
		int e = sz && ct ? tm_sample_estimate(snap, sz, ct) : -ENOMEM;

		sum->size_bytes = sum->count = 0;
		for (size_t i = 0; !e && i < ntb; i++) {
			t[i].size_bytes = sz[i];
			t[i].count = ct[i];
			if (__builtin_add_overflow(sum->size_bytes, sz[i], &sum->size_bytes))
				e = -EOVERFLOW;
			sum->count += ct[i];
		}
		free(sz);
		free(ct);
		if (e) {
			free(t);
			return e;
		}
	}
	*totals = t;
	return 0;
}

int tm_frame_label(struct tm_strbuf *sb, const struct tm_frame *frame)
{
	if (frame->name)
		return tm_strbuf_appendf(sb, "%s (%s:%u)", frame->name, frame->filename, frame->lineno);
	return tm_format_frame(sb, frame);
}
