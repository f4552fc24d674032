/* Writer of pprof profiles: a gzip-compressed profile.proto message (the
 * subset written is in docs/formats.md), encoded here without a protobuf
 * library.
 *
 * Traces become samples grouped by (traceback, domain, thread id), each with
 * two values, inuse_objects (count) and inuse_space (bytes), and the labels
 * "domain" and "thread" (numeric). Frames become locations (one line each)
 * and functions: the function is the frame's name where the capture read
 * it (co_qualname or co_name), else its file name, so `go tool pprof -top`
 * groups by function or file and `-top -lines` by FILE:LINE as `tmbpf stats`
 * does. A Profile's repeated fields may come in any order (protobuf merges
 * them), so samples are streamed as they are grouped and the tables that
 * they refer to (locations, functions, strings) follow. */
#include "core/bytebuf.h"
#include "core/sampling.h"
#include "core/snapshot_io.h"
#include "core/snapshot_io_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* profile.proto field numbers. */
enum {
	PROFILE_SAMPLE_TYPE = 1, PROFILE_SAMPLE = 2, PROFILE_MAPPING = 3, PROFILE_LOCATION = 4,
	PROFILE_FUNCTION = 5, PROFILE_STRING_TABLE = 6, PROFILE_TIME_NANOS = 9,
	PROFILE_DURATION_NANOS = 10, PROFILE_COMMENT = 13, PROFILE_DEFAULT_SAMPLE_TYPE = 14,
	VALUETYPE_TYPE = 1, VALUETYPE_UNIT = 2,
	SAMPLE_LOCATION_ID = 1, SAMPLE_VALUE = 2, SAMPLE_LABEL = 3,
	LABEL_KEY = 1, LABEL_NUM = 3,
	MAPPING_ID = 1, MAPPING_FILENAME = 5, MAPPING_HAS_FUNCTIONS = 7,
	MAPPING_HAS_FILENAMES = 8, MAPPING_HAS_LINE_NUMBERS = 9,
	LOCATION_ID = 1, LOCATION_MAPPING_ID = 2, LOCATION_LINE = 4,
	LINE_FUNCTION_ID = 1, LINE_LINE = 2,
	FUNCTION_ID = 1, FUNCTION_NAME = 2, FUNCTION_SYSTEM_NAME = 3, FUNCTION_FILENAME = 4,
};
#define WIRE_VARINT 0
#define WIRE_LEN 2


static void pb_uint(struct tm_bytebuf *b, unsigned field, uint64_t v)
{
	tm_bytebuf_varint(b, (uint64_t)field << 3 | WIRE_VARINT);
	tm_bytebuf_varint(b, v);
}

static void pb_bytes(struct tm_bytebuf *b, unsigned field, const void *data, size_t len)
{
	tm_bytebuf_varint(b, (uint64_t)field << 3 | WIRE_LEN);
	tm_bytebuf_varint(b, len);
	tm_bytebuf_put(b, data, len);
}

/* The whole profile goes through gzip as it is produced. */
struct pw {
	const struct tm_snapshot *snap;
	gzFile gz;
	struct tm_bytebuf msg, sub;  /* the message being built, a nested one */
	struct tm_ptrmap strmap, funcmap, locmap;
	const char **strs;   /* string table, index -> string (not owned) */
	size_t nstrs, strs_cap, nfuncs, nlocs;
	int err;
};

static void emit(struct pw *w, struct tm_bytebuf *b)
{
	if (!w->err && b->err)
		w->err = b->err;
	if (!w->err && b->len && gzwrite(w->gz, b->p, (unsigned)b->len) != (int)b->len)
		w->err = -EIO;
	b->len = 0;
}

/* Index of s in the string table; strings are interned (or literals), so a
 * pointer identifies a value. */
static uint64_t str_id(struct pw *w, const char *s)
{
	struct tm_ptrmap_slot *slot = tm_ptrmap_lookup(&w->strmap, s, 0);

	if (!slot) {
		w->err = -ENOMEM;
		return 0;
	}
	if (!slot->ptr) {
		if (w->nstrs == w->strs_cap) {
			size_t ncap = w->strs_cap ? 2 * w->strs_cap : 1024;
			const char **n = realloc(w->strs, ncap * sizeof(*n));

			if (!n) {
				w->err = -ENOMEM;
				return 0;
			}
			w->strs = n;
			w->strs_cap = ncap;
		}
		*slot = (struct tm_ptrmap_slot){ s, 0, (uint32_t)w->nstrs };
		w->strmap.count++;
		w->strs[w->nstrs++] = s;
	}
	return slot->value;
}

/* Function and location ids (from 1) of a frame, numbered in first use. */
static uint64_t function_id(struct pw *w, const struct tm_frame *f)
{
	const char *name = f->name ? f->name : f->filename;
	struct tm_ptrmap_slot *slot = tm_ptrmap_lookup(&w->funcmap, name,
							(uint64_t)(uintptr_t)f->filename);

	if (!slot) {
		w->err = -ENOMEM;
		return 0;
	}
	if (!slot->ptr) {
		*slot = (struct tm_ptrmap_slot){ name, (uint64_t)(uintptr_t)f->filename,
						 (uint32_t)++w->nfuncs };
		w->funcmap.count++;
	}
	return slot->value;
}

static uint64_t location_id(struct pw *w, const struct tm_frame *f)
{
	uint64_t fid = function_id(w, f);
	struct tm_ptrmap_slot *slot = tm_ptrmap_lookup(&w->locmap, f->filename,
							(uint64_t)f->lineno | fid << 32);

	if (!slot) {
		w->err = -ENOMEM;
		return 0;
	}
	if (!slot->ptr) {
		*slot = (struct tm_ptrmap_slot){ f->filename, (uint64_t)f->lineno | fid << 32,
						 (uint32_t)++w->nlocs };
		w->locmap.count++;
	}
	return slot->value;
}

/* ---- samples: traces grouped by (traceback, domain, thread) ---------------- */

struct group {
	uint32_t tb, domain; /* tb: traceback index + 1; 0 = empty slot */
	uint64_t tid, count, size;
	double est_count, est_size; /* a sampled snapshot: the estimates (sampling.h) */
};

static size_t group_hash(uint32_t tb, uint32_t domain, uint64_t tid)
{
	uint64_t h = ((uint64_t)tb << 32 | domain) * 0x9e3779b97f4a7c15ULL;

	h ^= tid * 0xff51afd7ed558ccdULL;
	return (size_t)(h ^ (h >> 29));
}

/* Groups in order of first appearance (stable output for equal inputs). */
static int group_traces(const struct tm_snapshot *snap, struct group **out, size_t *n)
{
	size_t cap = 1024, used = 0;
	uint32_t *slots;
	struct group *g;

	while (cap < 2 * snap->ntraces)
		cap *= 2;
	slots = calloc(cap, sizeof(*slots)); /* group index + 1 */
	g = malloc((snap->ntraces ? snap->ntraces : 1) * sizeof(*g));
	if (!slots || !g || snap->ntraces > UINT32_MAX - 1) {
		free(slots);
		free(g);
		return -ENOMEM;
	}
	for (size_t i = 0; i < snap->ntraces; i++) {
		const struct tm_trace *t = &snap->traces[i];
		uint32_t tb = t->traceback->index + 1;
		size_t j = group_hash(tb, t->domain, t->thread_id) & (cap - 1);
		struct group *x;

		for (; slots[j]; j = (j + 1) & (cap - 1)) {
			x = &g[slots[j] - 1];
			if (x->tb == tb && x->domain == t->domain && x->tid == t->thread_id)
				break;
		}
		if (!slots[j]) {
			g[used] = (struct group){ tb, t->domain, t->thread_id, 0, 0, 0, 0 };
			slots[j] = (uint32_t)++used;
		}
		x = &g[slots[j] - 1];
		if (snap->meta.sample_interval_bytes) {
			double wt = tm_sample_weight(t->size_bytes, snap->meta.sample_interval_bytes);

			x->est_count += wt;
			x->est_size += wt * (double)t->size_bytes;
		}
		x->count++;
		/* pprof values are int64. */
		if (__builtin_add_overflow(x->size, t->size_bytes, &x->size) || x->size > INT64_MAX) {
			free(slots);
			free(g);
			return -EOVERFLOW;
		}
	}
	free(slots);
	/* A sampled snapshot's values are its estimates, as its statistics. */
	for (size_t k = 0; snap->meta.sample_interval_bytes && k < used; k++)
		if (tm_sample_round(g[k].est_count, &g[k].count) ||
		    tm_sample_round(g[k].est_size, &g[k].size) || g[k].size > INT64_MAX) {
			free(g);
			return -EOVERFLOW;
		}
	*out = g;
	*n = used;
	return 0;
}

static void put_label(struct pw *w, struct tm_bytebuf *sample, const char *key, uint64_t num)
{
	w->sub.len = 0;
	pb_uint(&w->sub, LABEL_KEY, str_id(w, key));
	pb_uint(&w->sub, LABEL_NUM, num);
	if (w->sub.err)
		sample->err = w->sub.err;
	pb_bytes(sample, SAMPLE_LABEL, w->sub.p, w->sub.len);
}

static void put_sample(struct pw *w, const struct group *g)
{
	const struct tm_traceback *tb = tm_snapshot_traceback_at(w->snap, g->tb - 1);
	struct tm_bytebuf *m = &w->msg;
	unsigned char vals[20]; /* fixed buffers: two varints never outgrow them */
	struct tm_bytebuf v = { vals, 0, sizeof(vals), 0 };
	size_t start;

	/* location_id, packed: frames[0] is the leaf, as pprof wants. */
	w->sub.len = 0;
	for (uint32_t f = 0; f < tb->nframe; f++)
		tm_bytebuf_varint(&w->sub, location_id(w, &tb->frames[f]));
	start = m->len;
	pb_bytes(m, SAMPLE_LOCATION_ID, w->sub.p, w->sub.len);
	tm_bytebuf_varint(&v, g->count);
	tm_bytebuf_varint(&v, g->size);
	pb_bytes(m, SAMPLE_VALUE, v.p, v.len);
	put_label(w, m, "domain", g->domain);
	if (g->tid)
		put_label(w, m, "thread", g->tid);
	/* Wrap what was just built as field 2 of the Profile. */
	if (!m->err) {
		unsigned char hb[16];
		struct tm_bytebuf hdr = { hb, 0, sizeof(hb), 0 };

		tm_bytebuf_varint(&hdr, (uint64_t)PROFILE_SAMPLE << 3 | WIRE_LEN);
		tm_bytebuf_varint(&hdr, m->len - start);
		emit(w, &hdr);
	}
	emit(w, m);
}

/* ---- tables ----------------------------------------------------------------- */

static void put_value_type(struct pw *w, unsigned field, const char *type, const char *unit)
{
	w->sub.len = 0;
	pb_uint(&w->sub, VALUETYPE_TYPE, str_id(w, type));
	pb_uint(&w->sub, VALUETYPE_UNIT, str_id(w, unit));
	pb_bytes(&w->msg, field, w->sub.p, w->sub.len);
	w->msg.err = w->msg.err ? w->msg.err : w->sub.err;
}

static void put_functions_and_locations(struct pw *w)
{
	/* Walk the maps' slots: ids are the stored values. */
	for (size_t i = 0; i < w->funcmap.cap && !w->err; i++) {
		const struct tm_ptrmap_slot *s = &w->funcmap.slots[i];

		if (!s->ptr)
			continue;
		w->sub.len = 0;
		pb_uint(&w->sub, FUNCTION_ID, s->value);
		pb_uint(&w->sub, FUNCTION_NAME, str_id(w, s->ptr));
		pb_uint(&w->sub, FUNCTION_SYSTEM_NAME, str_id(w, s->ptr));
		pb_uint(&w->sub, FUNCTION_FILENAME, str_id(w, (const char *)(uintptr_t)s->tag));
		pb_bytes(&w->msg, PROFILE_FUNCTION, w->sub.p, w->sub.len);
		w->msg.err = w->msg.err ? w->msg.err : w->sub.err;
		if (w->msg.len > (1 << 16))
			emit(w, &w->msg);
	}
	for (size_t i = 0; i < w->locmap.cap && !w->err; i++) {
		const struct tm_ptrmap_slot *s = &w->locmap.slots[i];
		unsigned char line[24];
		struct tm_bytebuf l = { line, 0, sizeof(line), 0 };

		if (!s->ptr)
			continue;
		pb_uint(&l, LINE_FUNCTION_ID, s->tag >> 32);
		pb_uint(&l, LINE_LINE, (uint32_t)s->tag);
		w->sub.len = 0;
		pb_uint(&w->sub, LOCATION_ID, s->value);
		pb_uint(&w->sub, LOCATION_MAPPING_ID, 1);
		pb_bytes(&w->sub, LOCATION_LINE, l.p, l.len);
		pb_bytes(&w->msg, PROFILE_LOCATION, w->sub.p, w->sub.len);
		w->msg.err = w->msg.err ? w->msg.err : w->sub.err;
		if (w->msg.len > (1 << 16))
			emit(w, &w->msg);
	}
	emit(w, &w->msg);
}

static void put_header(struct pw *w, char *comment, size_t len)
{
	const struct tm_snapshot_meta *m = &w->snap->meta;

	str_id(w, ""); /* string_table[0] must be "" */
	put_value_type(w, PROFILE_SAMPLE_TYPE, "inuse_objects", "count");
	put_value_type(w, PROFILE_SAMPLE_TYPE, "inuse_space", "bytes");
	pb_uint(&w->msg, PROFILE_DEFAULT_SAMPLE_TYPE, str_id(w, "inuse_space"));
	/* One mapping stands for the interpreter: frames are already symbolized. */
	w->sub.len = 0;
	pb_uint(&w->sub, MAPPING_ID, 1);
	pb_uint(&w->sub, MAPPING_FILENAME, str_id(w, "python"));
	pb_uint(&w->sub, MAPPING_HAS_FUNCTIONS, 1);
	pb_uint(&w->sub, MAPPING_HAS_FILENAMES, 1);
	pb_uint(&w->sub, MAPPING_HAS_LINE_NUMBERS, 1);
	pb_bytes(&w->msg, PROFILE_MAPPING, w->sub.p, w->sub.len);
	w->msg.err = w->msg.err ? w->msg.err : w->sub.err;
	if (m->snapshot_ns)
		pb_uint(&w->msg, PROFILE_TIME_NANOS, m->snapshot_ns);
	if (m->snapshot_ns && m->start_ns && m->snapshot_ns > m->start_ns)
		pb_uint(&w->msg, PROFILE_DURATION_NANOS, m->snapshot_ns - m->start_ns);
	if (m->pid >= 0 || m->cmdline) {
		snprintf(comment, len, "tmbpf snapshot of PID %lld: %s; CPython %s; coverage %s",
			 (long long)m->pid, m->cmdline ? m->cmdline : "?",
			 m->python_version ? m->python_version : "?",
			 m->coverage_mode ? m->coverage_mode : "?");
		pb_uint(&w->msg, PROFILE_COMMENT, str_id(w, comment));
	}
	emit(w, &w->msg);
}

static void put_strings(struct pw *w)
{
	for (size_t i = 0; i < w->nstrs && !w->err; i++) {
		char *owned;
		const char *s = tm_utf8_escape(w->strs[i], &owned);

		if (!s) {
			w->err = -ENOMEM;
			break;
		}
		pb_bytes(&w->msg, PROFILE_STRING_TABLE, s, strlen(s));
		free(owned);
		if (w->msg.len > (1 << 16))
			emit(w, &w->msg);
	}
	emit(w, &w->msg);
}

int tm_pprof_write(const struct tm_snapshot *snap, FILE *fp, char *err, size_t errlen)
{
	struct pw w = { .snap = snap };
	struct group *groups = NULL;
	char comment[1024];
	size_t ngroups = 0;
	int fd, ret;

	ret = group_traces(snap, &groups, &ngroups);
	if (ret)
		goto cleanup;
	/* gzip over a duplicate of fp's descriptor: fp has not been written to;
	 * closing the gzFile flushes it and the caller then fsyncs fp. */
	fflush(fp);
	fd = dup(fileno(fp));
	w.gz = fd >= 0 ? gzdopen(fd, "wb1") : NULL;
	if (!w.gz) {
		if (fd >= 0)
			close(fd);
		ret = -ENOMEM;
		goto cleanup;
	}
	gzbuffer(w.gz, 1 << 17);
	put_header(&w, comment, sizeof(comment));
	for (size_t i = 0; i < ngroups && !w.err; i++)
		put_sample(&w, &groups[i]);
	put_functions_and_locations(&w);
	put_strings(&w);
	ret = w.err;
	if (gzclose(w.gz) != Z_OK && !ret)
		ret = -EIO;
cleanup:
	if (ret == -EOVERFLOW)
		tm_io_errf(err, errlen, "cannot write pprof: a size is larger than pprof's int64");
	else if (ret)
		tm_io_errf(err, errlen, "cannot write pprof: %s", strerror(-ret));
	tm_ptrmap_release(&w.strmap);
	tm_ptrmap_release(&w.funcmap);
	tm_ptrmap_release(&w.locmap);
	free(w.strs);
	free(w.msg.p);
	free(w.sub.p);
	free(groups);
	return ret;
}
