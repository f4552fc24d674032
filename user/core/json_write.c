/* JSON export of a snapshot (`tmbpf convert --format json`; schema in
 * docs/formats.md). Tracebacks are listed once and referenced by index from
 * the traces, as in the native format; frames are most recent first, as in
 * tracemalloc's raw traces. Strings as text_encoding.h's tm_json_quote: what
 * json.loads gives back is the str Python holds for the name. */
#include "core/snapshot_io.h"
#include "core/snapshot_io_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void put(struct tm_out *o, const char *s)
{
	tm_out_write(o, s, strlen(s));
}

static void put_u64(struct tm_out *o, uint64_t v)
{
	char b[24];

	snprintf(b, sizeof(b), "%" PRIu64, v);
	put(o, b);
}

static void put_str(struct tm_out *o, const char *str)
{
	char *q;

	if (!str) {
		put(o, "null");
		return;
	}
	q = tm_json_quote(str);
	if (!q) {
		o->err = -ENOMEM;
		return;
	}
	put(o, q);
	free(q);
}

static void put_key_str(struct tm_out *o, const char *key, const char *v)
{
	put(o, key);
	put_str(o, v);
}

static void put_key_u64(struct tm_out *o, const char *key, uint64_t v)
{
	put(o, key);
	put_u64(o, v);
}

static void put_meta(struct tm_out *o, const struct tm_snapshot_meta *m)
{
	put(o, "\"meta\": {\"pid\": ");
	if (m->pid >= 0)
		put_u64(o, (uint64_t)m->pid);
	else
		put(o, "null");
	put_key_str(o, ", \"cmdline\": ", m->cmdline);
	put_key_str(o, ", \"python_version\": ", m->python_version);
	put_key_str(o, ", \"hostname\": ", m->hostname);
	put_key_str(o, ", \"coverage_mode\": ", m->coverage_mode);
	put_key_u64(o, ", \"start_ns\": ", m->start_ns);
	put_key_u64(o, ", \"snapshot_ns\": ", m->snapshot_ns);
	put_key_u64(o, ", \"sample_interval_bytes\": ", m->sample_interval_bytes);
	if (m->has_traced_memory) {
		put_key_u64(o, ", \"traced_current_bytes\": ", m->traced_current_bytes);
		put_key_u64(o, ", \"traced_peak_bytes\": ", m->traced_peak_bytes);
	} else {
		put(o, ", \"traced_current_bytes\": null, \"traced_peak_bytes\": null");
	}
	put(o, ", \"drops\": {");
	for (uint32_t i = 0; i < m->ndrops && i < TM_MAX_DROP_COUNTERS; i++) {
		if (i)
			put(o, ", ");
		put_str(o, m->drops[i].name);
		put_key_u64(o, ": ", m->drops[i].count);
	}
	put(o, "}},\n");
}

static void put_tracebacks(struct tm_out *o, const struct tm_snapshot *snap)
{
	size_t n = tm_snapshot_ntracebacks(snap);

	put(o, "\"tracebacks\": [");
	for (size_t i = 0; i < n && !o->err; i++) {
		const struct tm_traceback *tb = tm_snapshot_traceback_at(snap, i);

		put(o, i ? ",\n  [" : "\n  [");
		for (uint32_t f = 0; f < tb->nframe; f++) {
			put(o, f ? ", [" : "[");
			put_str(o, tb->frames[f].filename);
			put_key_u64(o, ", ", tb->frames[f].lineno);
			if (tb->frames[f].name) {
				put(o, ", ");
				put_str(o, tb->frames[f].name);
			}
			put(o, "]");
		}
		put(o, "]");
	}
	put(o, "],\n");
}

static void put_traces(struct tm_out *o, const struct tm_snapshot *snap)
{
	put(o, "\"traces\": [");
	for (size_t i = 0; i < snap->ntraces && !o->err; i++) {
		const struct tm_trace *t = &snap->traces[i];

		put_key_u64(o, i ? ",\n  {\"domain\": " : "\n  {\"domain\": ", t->domain);
		put_key_u64(o, ", \"size\": ", t->size_bytes);
		put_key_u64(o, ", \"traceback\": ", t->traceback->index);
		if (t->total_nframe == TM_NFRAME_UNKNOWN)
			put(o, ", \"total_nframe\": null");
		else
			put_key_u64(o, ", \"total_nframe\": ", t->total_nframe);
		put_key_u64(o, ", \"thread_id\": ", t->thread_id);
		put_key_u64(o, ", \"alloc_ns\": ", t->alloc_ns);
		put(o, "}");
	}
	put(o, "]\n");
}

int tm_json_write(const struct tm_snapshot *snap, FILE *fp, char *err, size_t errlen)
{
	struct tm_out o;
	int ret;

	ret = tm_out_init(&o, fp, 1 << 16);
	if (ret)
		goto cleanup;
	put(&o, "{\"format\": \"tmbpf-snapshot\", \"version\": 1,\n");
	put_key_u64(&o, "\"traceback_limit\": ", snap->traceback_limit);
	put_key_u64(&o, ",\n\"trace_count\": ", snap->ntraces);
	put(&o, ",\n");
	put_meta(&o, &snap->meta);
	put_tracebacks(&o, snap);
	put_traces(&o, snap);
	put(&o, "}\n");
	ret = tm_out_flush(&o);
cleanup:
	if (ret)
		tm_io_errf(err, errlen, "cannot write JSON: %s", strerror(-ret));
	tm_out_release(&o);
	return ret;
}
