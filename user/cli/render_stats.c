/* Rendering statistics and statistic diffs as tracemalloc's text or as JSON,
 * both from the same structs (core/statistics.h). */
#include "cli/stats_options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/format.h"
#include "core/text_encoding.h"

/* One JSON string, as every JSON tmbpf writes (core/text_encoding.h). */
static int json_str(struct tm_strbuf *sb, const char *s)
{
	char *q = tm_json_quote(s);
	int err;

	if (!q)
		return -ENOMEM;
	err = tm_strbuf_appends(sb, q);
	free(q);
	return err;
}

/* The traceback as tracemalloc's sequence: oldest frame first. */
static int json_frames(struct tm_strbuf *sb, const struct tm_frame *frames, uint32_t nframe)
{
	int err = tm_strbuf_append(sb, "[", 1);

	for (uint32_t k = 0; k < nframe && !err; k++) {
		const struct tm_frame *f = &frames[nframe - 1 - k];

		if ((err = tm_strbuf_appends(sb, k ? ", {\"filename\": " : "{\"filename\": ")) ||
		    (err = json_str(sb, f->filename)))
			break;
		err = tm_strbuf_appendf(sb, ", \"lineno\": %u}", f->lineno);
	}
	return err ? err : tm_strbuf_append(sb, "]", 1);
}

static int json_text(struct tm_strbuf *sb, struct tm_strbuf *text)
{
	int err = tm_strbuf_appends(sb, ", \"text\": ");

	return err ? err : json_str(sb, tm_strbuf_str(text));
}

static int json_average(struct tm_strbuf *sb, uint64_t size, uint64_t count)
{
	if (!count)
		return tm_strbuf_appends(sb, ", \"average\": null");
	return tm_strbuf_appendf(sb, ", \"average\": %.17g", tm_div_u64(size, count));
}

static int render_tb(struct tm_strbuf *sb, const struct tm_frame *frames, uint32_t nframe,
		     const struct tm_stats_options *o, struct tm_linecache *lc)
{
	if (!o->show_traceback)
		return 0;
	return tm_traceback_format(sb, frames, nframe, o->has_traceback_limit, o->traceback_limit,
				   o->most_recent_first, lc);
}

static int json_traceback_lines(struct tm_strbuf *sb, struct tm_strbuf *lines)
{
	const char *p = tm_strbuf_str(lines), *nl;
	int err = tm_strbuf_appends(sb, ", \"traceback_lines\": [");
	int first = 1;

	for (; !err && (nl = strchr(p, '\n')); p = nl + 1, first = 0) {
		char *line = strndup(p, (size_t)(nl - p));

		if (!line)
			return -ENOMEM;
		if (!(err = tm_strbuf_appends(sb, first ? "" : ", ")))
			err = json_str(sb, line);
		free(line);
	}
	return err ? err : tm_strbuf_append(sb, "]", 1);
}

/* One statistic (diff = NULL) or diff, as a text line (+ traceback) or as a
 * JSON object, appended to sb. */
static int render_one(struct tm_strbuf *sb, const struct tm_statistic *st,
		      const struct tm_statistic_diff *diff, const struct tm_stats_options *o,
		      struct tm_linecache *lc, int first)
{
	const struct tm_frame *frames = st ? st->frames : diff->frames;
	uint32_t nframe = st ? st->nframe : diff->nframe;
	uint64_t size = st ? st->size_bytes : diff->size_bytes;
	uint64_t count = st ? st->count : diff->count;
	struct tm_strbuf text, tb;
	int err;

	tm_strbuf_init(&text);
	tm_strbuf_init(&tb);
	err = st ? tm_format_statistic(&text, st) : tm_format_statistic_diff(&text, diff);
	if (!err)
		err = render_tb(&tb, frames, nframe, o, lc);
	if (err)
		goto cleanup;
	if (!o->json) {
		if (!(err = tm_strbuf_append(sb, text.data, text.len)) &&
		    !(err = tm_strbuf_append(sb, "\n", 1)))
			err = tm_strbuf_append(sb, tm_strbuf_str(&tb), tb.len);
		goto cleanup;
	}
	err = tm_strbuf_appendf(sb, "%s\n    {\"size\": %llu, \"count\": %llu", first ? "" : ",",
				(unsigned long long)size, (unsigned long long)count);
	if (!err && diff)
		err = tm_strbuf_appendf(sb, ", \"size_diff\": %lld, \"count_diff\": %lld",
					(long long)diff->size_diff, (long long)diff->count_diff);
	if (!err)
		err = json_average(sb, size, count);
	if (!err && !(err = tm_strbuf_appends(sb, ", \"traceback\": ")))
		err = json_frames(sb, frames, nframe);
	if (!err && o->show_traceback)
		err = json_traceback_lines(sb, &tb);
	if (!err)
		err = json_text(sb, &text);
	if (!err)
		err = tm_strbuf_append(sb, "}", 1);
cleanup:
	tm_strbuf_release(&text);
	tm_strbuf_release(&tb);
	return err;
}

/* The statistics of a sampled snapshot are estimates: said on the summary
 * line (stderr), never in the tracemalloc-compatible text. */
static const char *sampled_note(const struct tm_snapshot *s, char *buf, size_t len)
{
	if (!s->meta.sample_interval_bytes)
		return "";
	snprintf(buf, len, "; sizes and counts ESTIMATED from byte-weighted samples (one per %llu "
		 "bytes on average)", (unsigned long long)s->meta.sample_interval_bytes);
	return buf;
}

static int write_out(FILE *out, const struct tm_strbuf *sb)
{
	if (sb->len && fwrite(sb->data, 1, sb->len, out) != sb->len)
		return -EIO;
	return fflush(out) ? -errno : 0;
}

static size_t shown(size_t n, const struct tm_stats_options *o)
{
	return o->limit && o->limit < n ? o->limit : n;
}

static int json_head(struct tm_strbuf *sb, const char *what, const struct tm_stats_options *o,
		     size_t n)
{
	return tm_strbuf_appendf(sb, "{\"key_type\": \"%s\", \"cumulative\": %s, \"total\": %zu, "
				     "\"%s\": [",
				 tm_key_type_name(o->key), o->cumulative ? "true" : "false", n, what);
}

static const struct tm_snapshot *filtered(const struct tm_snapshot *snap,
					  const struct tm_stats_options *o, struct tm_snapshot **own)
{
	return tm_stats_filtered(snap, o, own);
}

/* "10 s", "1 min", "1 h", "1 day": a bucket edge. */
static void age_edge(char *buf, size_t len, uint64_t ns)
{
	uint64_t s = ns / 1000000000u;

	if (s >= 86400)
		snprintf(buf, len, "%llu day", (unsigned long long)(s / 86400));
	else if (s >= 3600)
		snprintf(buf, len, "%llu h", (unsigned long long)(s / 3600));
	else if (s >= 60)
		snprintf(buf, len, "%llu min", (unsigned long long)(s / 60));
	else
		snprintf(buf, len, "%llu s", (unsigned long long)s);
}

/* One bucket as a Statistic-like line: "age 10 s - 1 min: size=..., count=..., average=...". */
static int format_bucket(struct tm_strbuf *sb, const struct tm_age_bucket *b)
{
	char lo[32], hi[32], size[TM_SIZE_STRLEN], avg[TM_SIZE_STRLEN];
	int err;

	if (b->max_ns == 0)
		err = tm_strbuf_appends(sb, "age unknown");
	else if (b->max_ns == UINT64_MAX)
		age_edge(lo, sizeof(lo), b->min_ns), err = tm_strbuf_appendf(sb, "age >= %s", lo);
	else
		age_edge(lo, sizeof(lo), b->min_ns), age_edge(hi, sizeof(hi), b->max_ns),
			err = tm_strbuf_appendf(sb, "age %s - %s", lo, hi);
	if (err || (err = tm_format_size_u64(size, sizeof(size), b->size_bytes, 0)) ||
	    (err = tm_format_size_double(avg, sizeof(avg), tm_div_u64(b->size_bytes, b->count), 0)))
		return err;
	return tm_strbuf_appendf(sb, ": size=%s, count=%llu, average=%s", size,
				 (unsigned long long)b->count, avg);
}

/* --key age: the buckets with blocks, youngest first, as text or JSON. */
static int render_ages(FILE *out, FILE *diag, const char *label, const struct tm_snapshot *s,
		       const struct tm_stats_options *o)
{
	struct tm_age_bucket b[TM_AGE_NBUCKETS];
	struct tm_strbuf sb, line;
	size_t shown_n = 0;
	int err;

	if (!tm_snapshot_ntimed(s) && s->ntraces)
		return -ENODATA;
	err = tm_age_histogram(s, b);
	if (err)
		return err;
	tm_strbuf_init(&sb);
	tm_strbuf_init(&line);
	if (o->json)
		err = tm_strbuf_appendf(&sb, "{\"key_type\": \"age\", \"buckets\": [");
	for (int k = 0; k < TM_AGE_NBUCKETS && !err; k++) {
		if (!b[k].count)
			continue;
		tm_strbuf_reset(&line);
		err = format_bucket(&line, &b[k]);
		if (err)
			break;
		if (!o->json) {
			err = tm_strbuf_appendf(&sb, "%s\n", tm_strbuf_str(&line));
		} else {
			err = tm_strbuf_appendf(&sb, "%s\n    {\"min_ns\": %llu, \"max_ns\": ",
						shown_n ? "," : "", (unsigned long long)b[k].min_ns);
			if (!err && b[k].max_ns == UINT64_MAX)
				err = tm_strbuf_appends(&sb, "null");
			else if (!err)
				err = tm_strbuf_appendf(&sb, "%llu", (unsigned long long)b[k].max_ns);
			if (!err)
				err = tm_strbuf_appendf(&sb, ", \"known\": %s, \"size\": %llu, \"count\": %llu",
							b[k].max_ns ? "true" : "false",
							(unsigned long long)b[k].size_bytes,
							(unsigned long long)b[k].count);
			if (!err)
				err = json_average(&sb, b[k].size_bytes, b[k].count);
			if (!err)
				err = json_text(&sb, &line);
			if (!err)
				err = tm_strbuf_append(&sb, "}", 1);
		}
		shown_n++;
	}
	if (!err && o->json)
		err = tm_strbuf_appends(&sb, "\n]}\n");
	if (!err)
		err = write_out(out, &sb);
	if (!err && diag)
		fprintf(diag, "%s: %zu traces, %zu of them with an allocation time, %zu age buckets\n",
			label, s->ntraces, tm_snapshot_ntimed(s), shown_n);
	tm_strbuf_release(&sb);
	tm_strbuf_release(&line);
	return err;
}

/* The live view's --sort count: (count, size, traceback) descending, as
 * tracemalloc orders by (size, count, traceback). */
static int cmp_count(const void *a, const void *b)
{
	const struct tm_statistic *x = a, *y = b;

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	if (x->size_bytes != y->size_bytes)
		return x->size_bytes < y->size_bytes ? 1 : -1;
	return -tm_traceback_cmp(x->frames, x->nframe, y->frames, y->nframe);
}

int tm_stats_render_top(FILE *out, FILE *diag, const char *label, const struct tm_snapshot *snap,
			const struct tm_stats_options *o)
{
	struct tm_statistics st = { 0 };
	struct tm_linecache *lc = NULL;
	struct tm_snapshot *own;
	const struct tm_snapshot *s = filtered(snap, o, &own);
	struct tm_strbuf sb;
	size_t n;
	char total[TM_SIZE_STRLEN], note[160];
	int err;

	tm_strbuf_init(&sb);
	if (!s)
		return -errno;
	if (o->key_age) {
		err = render_ages(out, diag, label, s, o);
		goto cleanup;
	}
	err = tm_statistics_compute(s, o->key, o->cumulative, &st);
	if (!err && o->sort_by_count)
		qsort(st.stats, st.nstats, sizeof(st.stats[0]), cmp_count);
	if (!err && o->show_traceback && !(lc = tm_linecache_new()))
		err = -ENOMEM;
	if (err)
		goto cleanup;
	n = shown(st.nstats, o);
	if (o->json && (err = json_head(&sb, "statistics", o, st.nstats)))
		goto cleanup;
	for (size_t i = 0; i < n && !err; i++)
		err = render_one(&sb, &st.stats[i], NULL, o, lc, i == 0);
	if (!err && o->json)
		err = tm_strbuf_appends(&sb, "\n]}\n");
	if (!err)
		err = write_out(out, &sb);
	if (!err && diag && !(err = tm_format_size_u64(total, sizeof(total), st.total_size_bytes, 0)))
		fprintf(diag, "%s: %zu traces, %zu statistics by %s%s (%zu shown), total %s in %llu "
			"blocks%s\n", label, s->ntraces, st.nstats, tm_key_type_name(o->key),
			o->cumulative ? " (cumulative)" : "", n, total,
			(unsigned long long)st.total_count, sampled_note(s, note, sizeof(note)));
cleanup:
	tm_linecache_free(lc);
	tm_strbuf_release(&sb);
	tm_statistics_release(&st);
	tm_snapshot_free(own);
	return err;
}

int tm_stats_render_compare(FILE *out, FILE *diag, const char *label,
			    const struct tm_snapshot *old_snap, const struct tm_snapshot *new_snap,
			    const struct tm_stats_options *o)
{
	struct tm_statistic_diffs d = { 0 };
	struct tm_linecache *lc = NULL;
	struct tm_snapshot *own_old = NULL, *own_new = NULL;
	const struct tm_snapshot *so = filtered(old_snap, o, &own_old), *sn;
	struct tm_strbuf sb;
	size_t n;
	char note[160];
	int err;

	tm_strbuf_init(&sb);
	if (!so)
		return -errno;
	sn = filtered(new_snap, o, &own_new);
	if (!sn) {
		err = -errno;
		goto cleanup;
	}
	err = tm_statistics_compare(sn, so, o->key, o->cumulative, &d);
	if (!err && o->show_traceback && !(lc = tm_linecache_new()))
		err = -ENOMEM;
	if (err)
		goto cleanup;
	n = shown(d.ndiffs, o);
	if (o->json && (err = json_head(&sb, "diffs", o, d.ndiffs)))
		goto cleanup;
	for (size_t i = 0; i < n && !err; i++)
		err = render_one(&sb, NULL, &d.diffs[i], o, lc, i == 0);
	if (!err && o->json)
		err = tm_strbuf_appends(&sb, "\n]}\n");
	if (!err)
		err = write_out(out, &sb);
	if (!err && diag)
		fprintf(diag, "%s: %zu -> %zu traces, %zu differences by %s%s (%zu shown)%s%s\n",
			label, so->ntraces, sn->ntraces, d.ndiffs, tm_key_type_name(o->key),
			o->cumulative ? " (cumulative)" : "", n, sampled_note(so, note, sizeof(note)),
			so->meta.sample_interval_bytes ? "" : sampled_note(sn, note, sizeof(note)));
cleanup:
	tm_linecache_free(lc);
	tm_strbuf_release(&sb);
	tm_statistic_diffs_release(&d);
	tm_snapshot_free(own_old);
	tm_snapshot_free(own_new);
	return err;
}
