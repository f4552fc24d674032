/* Writer of tmbpf's native snapshot format (layout: docs/formats.md): version 2
 * when a frame has a function name, else version 1, which older readers open.
 *
 * A 16-byte header, then chunks of at most 16 MiB each (uncompressed), each
 * zlib-compressed with a CRC-32 of its header and of its compressed bytes
 * (zlib's Adler-32 covers the inflated bytes), so a reader
 * holds one chunk at a time. Strings, frames and tracebacks are tables
 * numbered in file order; traces refer to tracebacks by number and are stored
 * column by column (domain, size, traceback, total_nframe, thread, time) which
 * deflate compresses well. Every count and reference is checked before use;
 * a count claimed in META is only a hint for reserving memory, and only when
 * the file is large enough to hold it (native_read.c). */
#include "core/bytebuf.h"
#include "core/snapshot_io.h"
#include "core/snapshot_io_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define WRITE_CHUNK_RAW (1u << 20)
#define TRACES_PER_CHUNK 65536u

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}


static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static void buf_field(struct tm_bytebuf *b, unsigned tag, const void *data, size_t len)
{
	tm_bytebuf_varint(b, tag);
	tm_bytebuf_varint(b, len);
	tm_bytebuf_put(b, data, len);
}

static void buf_field_u64(struct tm_bytebuf *b, unsigned tag, uint64_t v)
{
	struct tm_bytebuf t = { 0 };

	tm_bytebuf_varint(&t, v);
	if (t.err)
		b->err = t.err;
	else
		buf_field(b, tag, t.p, t.len);
	free(t.p);
}

struct nwriter {
	struct tm_out out;
	struct tm_bytebuf raw;
	unsigned char *comp;
	size_t comp_cap;
};

static int write_chunk(struct nwriter *w, uint32_t type)
{
	unsigned char hdr[TM_NATIVE_CHUNK_HDR_LEN];
	uLongf clen = (uLongf)w->comp_cap;
	int ret;

	if (w->raw.err)
		return w->raw.err;
	if (w->raw.len > TM_NATIVE_MAX_CHUNK_RAW) /* a single file name over 16 MiB */
		return -EFBIG;
	if (compress2(w->comp, &clen, w->raw.p ? w->raw.p : (const Bytef *)"", (uLong)w->raw.len,
		      6) != Z_OK)
		return -EIO;
	put32(hdr, type);
	put32(hdr + 4, (uint32_t)w->raw.len);
	put32(hdr + 8, (uint32_t)clen);
	put32(hdr + 12, (uint32_t)crc32(0, w->comp, (uInt)clen));
	put32(hdr + 16, (uint32_t)crc32(0, hdr, 16));
	ret = tm_out_write(&w->out, hdr, sizeof(hdr));
	if (!ret)
		ret = tm_out_write(&w->out, w->comp, clen);
	w->raw.len = 0;
	return ret;
}

static void meta_str(struct tm_bytebuf *b, unsigned tag, const char *str)
{
	char *owned;
	const char *s = str ? tm_utf8_escape(str, &owned) : NULL;

	if (!str)
		return;
	if (!s) {
		b->err = -ENOMEM;
		return;
	}
	buf_field(b, tag, s, strlen(s));
	free(owned);
}

static void put_meta(struct tm_bytebuf *b, const struct tm_snapshot *snap, uint64_t nframes,
		     uint64_t nstrs)
{
	const struct tm_snapshot_meta *m = &snap->meta;
	struct tm_bytebuf counts = { 0 };

	if (m->pid >= 0)
		buf_field_u64(b, M_PID, zigzag(m->pid));
	meta_str(b, M_CMDLINE, m->cmdline);
	meta_str(b, M_PYTHON, m->python_version);
	meta_str(b, M_HOST, m->hostname);
	meta_str(b, M_COVERAGE, m->coverage_mode);
	if (m->start_ns)
		buf_field_u64(b, M_START_NS, m->start_ns);
	if (m->snapshot_ns)
		buf_field_u64(b, M_SNAPSHOT_NS, m->snapshot_ns);
	if (m->sample_interval_bytes)
		buf_field_u64(b, M_SAMPLE_INTERVAL, m->sample_interval_bytes);
	if (m->has_traced_memory) {
		buf_field_u64(b, M_TRACED_CURRENT, m->traced_current_bytes);
		buf_field_u64(b, M_TRACED_PEAK, m->traced_peak_bytes);
	}
	for (uint32_t i = 0; i < m->ndrops && i < TM_MAX_DROP_COUNTERS; i++) {
		struct tm_bytebuf d = { 0 };
		size_t len = strnlen(m->drops[i].name, sizeof(m->drops[i].name));

		tm_bytebuf_varint(&d, len);
		tm_bytebuf_put(&d, m->drops[i].name, len);
		tm_bytebuf_varint(&d, m->drops[i].count);
		if (d.err)
			b->err = d.err;
		else
			buf_field(b, M_DROP, d.p, d.len);
		free(d.p);
	}
	buf_field_u64(b, M_TRACEBACK_LIMIT, snap->traceback_limit);
	tm_bytebuf_varint(&counts, snap->ntraces);
	tm_bytebuf_varint(&counts, tm_snapshot_ntracebacks(snap));
	tm_bytebuf_varint(&counts, nframes);
	tm_bytebuf_varint(&counts, nstrs);
	if (counts.err)
		b->err = counts.err;
	else
		buf_field(b, M_COUNTS, counts.p, counts.len);
	free(counts.p);
}

/* Number every distinct string and frame used by the snapshot's tracebacks. */
struct tables {
	struct tm_ptrmap strmap, framemap;
	const char **strs;
	struct tm_frame *frames;    /* filename and name hold string ids + 1 (0: none) */
	size_t nstrs, nframes;
	int named;                  /* some frame has a name: version 2 */
	uint32_t *tb_frame_ids; /* all tracebacks' frame ids, in order */
};

static int number(struct tm_ptrmap *m, const void *ptr, uint64_t tag, size_t *n, uint32_t *id)
{
	struct tm_ptrmap_slot *s = tm_ptrmap_lookup(m, ptr, tag);

	if (!s)
		return -ENOMEM;
	if (!s->ptr) {
		s->ptr = ptr;
		s->tag = tag;
		s->value = (uint32_t)(*n)++;
		m->count++;
	}
	*id = s->value;
	return 0;
}

static int string_id(struct tables *t, const char *s, uint32_t *sid)
{
	size_t before = t->nstrs;

	if (number(&t->strmap, s, 0, &t->nstrs, sid))
		return -ENOMEM;
	if (t->nstrs != before)
		t->strs[*sid] = s;
	return 0;
}

static int build_tables(const struct tm_snapshot *snap, struct tables *t)
{
	size_t ntb = tm_snapshot_ntracebacks(snap), total = 0, k = 0;

	for (size_t i = 0; i < ntb; i++)
		total += tm_snapshot_traceback_at(snap, i)->nframe;
	t->tb_frame_ids = malloc((total ? total : 1) * sizeof(*t->tb_frame_ids));
	/* At most two strings (file, function) and one frame per traceback frame. */
	t->strs = malloc((total ? 2 * total : 1) * sizeof(*t->strs));
	t->frames = malloc((total ? total : 1) * sizeof(*t->frames));
	if (!t->tb_frame_ids || !t->strs || !t->frames)
		return -ENOMEM;
	for (size_t i = 0; i < ntb; i++) {
		const struct tm_traceback *tb = tm_snapshot_traceback_at(snap, i);

		for (uint32_t f = 0; f < tb->nframe; f++) {
			const struct tm_frame *fr = &tb->frames[f];
			size_t before = t->nframes;
			uint32_t id, sid, nid = 0;

			/* A frame record per (filename, lineno, name): a 3.11
			 * comprehension and its function share a line. */
			if (fr->name) {
				if (string_id(t, fr->name, &nid))
					return -ENOMEM;
				nid++;
				t->named = 1;
			}
			if (number(&t->framemap, fr->filename, fr->lineno | (uint64_t)nid << 32, &t->nframes,
				   &id))
				return -ENOMEM;
			if (t->nframes != before) {
				if (string_id(t, fr->filename, &sid))
					return -ENOMEM;
				t->frames[id].filename = (const char *)(uintptr_t)sid;
				t->frames[id].lineno = fr->lineno;
				t->frames[id].name = (const char *)(uintptr_t)nid;
			}
			t->tb_frame_ids[k++] = id;
		}
	}
	return 0;
}

static int write_strings(struct nwriter *w, const struct tables *t)
{
	size_t i = 0;

	do {
		size_t start = i, bytes = 0;
		int ret;

		while (i < t->nstrs && bytes < WRITE_CHUNK_RAW)
			bytes += strlen(t->strs[i++]) * 3 + 10;
		tm_bytebuf_varint(&w->raw, i - start);
		for (size_t k = start; k < i; k++) {
			char *owned;
			const char *s = tm_utf8_escape(t->strs[k], &owned);
			size_t len = s ? strlen(s) : 0;

			if (!s)
				return -ENOMEM;
			tm_bytebuf_varint(&w->raw, len);
			tm_bytebuf_put(&w->raw, s, len);
			free(owned);
		}
		ret = write_chunk(w, CH_STRS);
		if (ret)
			return ret;
	} while (i < t->nstrs);
	return 0;
}

static int write_frames(struct nwriter *w, const struct tables *t)
{
	size_t i = 0;

	do {
		size_t n = t->nframes - i < 65536 ? t->nframes - i : 65536;
		int ret;

		tm_bytebuf_varint(&w->raw, n);
		for (size_t k = i; k < i + n; k++) {
			tm_bytebuf_varint(&w->raw, (uintptr_t)t->frames[k].filename);
			tm_bytebuf_varint(&w->raw, t->frames[k].lineno);
			if (t->named)
				tm_bytebuf_varint(&w->raw, (uintptr_t)t->frames[k].name);
		}
		ret = write_chunk(w, CH_FRMS);
		if (ret)
			return ret;
		i += n;
	} while (i < t->nframes);
	return 0;
}

/* Tracebacks share their outer (oldest) frames: the event loop, the request
 * handler... Each traceback is written as its own most recent frames plus
 * "the last m frames of traceback j", j being an earlier traceback with the
 * longest equal suffix, found through a hash table of every suffix seen. */
struct suffix_slot {
	uint64_t key; /* suffix hash | 1; 0: empty */
	uint32_t tb, m;
};

struct suffixes {
	struct suffix_slot *slots;
	size_t cap, count;
	uint64_t *h; /* h[m]: hash of the current traceback's last m frames */
	size_t h_cap;
};

static int suffix_insert(struct suffixes *sx, uint64_t key, uint32_t tb, uint32_t m)
{
	size_t j;

	if ((sx->count + 1) * 2 > sx->cap) {
		size_t ncap = sx->cap ? sx->cap * 2 : 1 << 16;
		struct suffix_slot *n = calloc(ncap, sizeof(*n));

		if (!n)
			return -ENOMEM;
		for (size_t i = 0; i < sx->cap; i++) {
			if (!sx->slots[i].key)
				continue;
			for (j = sx->slots[i].key & (ncap - 1); n[j].key; j = (j + 1) & (ncap - 1))
				;
			n[j] = sx->slots[i];
		}
		free(sx->slots);
		sx->slots = n;
		sx->cap = ncap;
	}
	for (j = key & (sx->cap - 1); sx->slots[j].key; j = (j + 1) & (sx->cap - 1))
		;
	sx->slots[j] = (struct suffix_slot){ key, tb, m };
	sx->count++;
	return 0;
}

/* Longest suffix (at least 2 frames) of traceback i shared with an earlier
 * one: *ref gets that traceback's index, returns m (0: none). */
static uint32_t suffix_find(const struct suffixes *sx, const struct tables *t,
			    const struct tm_snapshot *snap, const size_t *off, uint32_t i,
			    uint32_t n, uint32_t *ref)
{
	const uint32_t *ids = t->tb_frame_ids + off[i];

	for (uint32_t m = n; m >= 2 && sx->cap; m--) {
		for (size_t j = sx->h[m] & (sx->cap - 1); sx->slots[j].key; j = (j + 1) & (sx->cap - 1)) {
			const struct suffix_slot *s = &sx->slots[j];
			uint32_t on = tm_snapshot_traceback_at(snap, s->tb)->nframe;

			if (s->key != sx->h[m] || s->m != m ||
			    memcmp(t->tb_frame_ids + off[s->tb] + on - m, ids + n - m, m * sizeof(*ids)))
				continue;
			*ref = s->tb;
			return m;
		}
	}
	return 0;
}

static int write_traceback(struct nwriter *w, struct suffixes *sx, const struct tables *t,
			   const struct tm_snapshot *snap, const size_t *off, uint32_t i)
{
	uint32_t n = tm_snapshot_traceback_at(snap, i)->nframe, ref = 0, m;
	const uint32_t *ids = t->tb_frame_ids + off[i];
	uint64_t h = 0x9e3779b97f4a7c15ULL;

	if (n + 1 > sx->h_cap) {
		uint64_t *nh = realloc(sx->h, (n + 1) * sizeof(*nh));

		if (!nh)
			return -ENOMEM;
		sx->h = nh;
		sx->h_cap = n + 1;
	}
	for (uint32_t k = 1; k <= n; k++) {
		h = (h ^ ids[n - k]) * 0xff51afd7ed558ccdULL;
		h ^= h >> 31;
		sx->h[k] = h | 1;
	}
	m = suffix_find(sx, t, snap, off, i, n, &ref);
	tm_bytebuf_varint(&w->raw, n);
	tm_bytebuf_varint(&w->raw, m ? (uint64_t)ref + 1 : 0);
	if (m)
		tm_bytebuf_varint(&w->raw, m);
	for (uint32_t f = 0; f < n - m; f++)
		tm_bytebuf_varint(&w->raw, ids[f]);
	/* Shorter suffixes are in the table already (they are ref's). */
	for (uint32_t k = m ? m + 1 : 1; k <= n; k++) {
		if (suffix_insert(sx, sx->h[k], i, k))
			return -ENOMEM;
	}
	return 0;
}

static int write_tracebacks(struct nwriter *w, const struct tm_snapshot *snap,
			    const struct tables *t)
{
	size_t ntb = tm_snapshot_ntracebacks(snap), i = 0, k = 0;
	struct suffixes sx = { 0 };
	size_t *off = malloc((ntb ? ntb : 1) * sizeof(*off));
	int ret = off ? 0 : -ENOMEM;

	for (size_t x = 0; x < ntb && off; x++) {
		off[x] = k;
		k += tm_snapshot_traceback_at(snap, x)->nframe;
	}
	do {
		size_t start = i, nfr = 0;

		while (i < ntb && nfr < WRITE_CHUNK_RAW / 4)
			nfr += tm_snapshot_traceback_at(snap, i++)->nframe;
		tm_bytebuf_varint(&w->raw, i - start);
		for (size_t x = start; x < i && !ret; x++)
			ret = write_traceback(w, &sx, t, snap, off, (uint32_t)x);
		ret = ret ? ret : write_chunk(w, CH_TBKS);
	} while (!ret && i < ntb);
	free(sx.slots);
	free(sx.h);
	free(off);
	return ret;
}

/* A trace column: mode 1 and one value when all n values are equal (domain,
 * thread and time columns usually are), else mode 0 and the n values. */
static void put_column(struct tm_bytebuf *b, const uint64_t *v, size_t n)
{
	size_t k = 1;

	while (k < n && v[k] == v[0])
		k++;
	tm_bytebuf_varint(b, k == n);
	if (k == n) {
		tm_bytebuf_varint(b, v[0]);
		return;
	}
	for (k = 0; k < n; k++)
		tm_bytebuf_varint(b, v[k]);
}

static int write_traces(struct nwriter *w, const struct tm_snapshot *snap)
{
	uint64_t *col = malloc(TRACES_PER_CHUNK * sizeof(*col));

	if (!col)
		return -ENOMEM;
	for (size_t i = 0; i < snap->ntraces; i += TRACES_PER_CHUNK) {
		size_t n = snap->ntraces - i < TRACES_PER_CHUNK ? snap->ntraces - i : TRACES_PER_CHUNK;
		const struct tm_trace *t = snap->traces + i;
		uint64_t prev_ns = 0;
		int ret;

		tm_bytebuf_varint(&w->raw, n);
		for (size_t k = 0; k < n; k++)
			col[k] = t[k].domain;
		put_column(&w->raw, col, n);
		for (size_t k = 0; k < n; k++)
			col[k] = t[k].size_bytes;
		put_column(&w->raw, col, n);
		for (size_t k = 0; k < n; k++) /* always explicit: a trace takes >= 1 byte */
			tm_bytebuf_varint(&w->raw, t[k].traceback->index);
		for (size_t k = 0; k < n; k++)
			col[k] = t[k].total_nframe == TM_NFRAME_UNKNOWN ? 0 : (uint64_t)t[k].total_nframe + 1;
		put_column(&w->raw, col, n);
		for (size_t k = 0; k < n; k++)
			col[k] = t[k].thread_id;
		put_column(&w->raw, col, n);
		for (size_t k = 0; k < n; k++) {
			col[k] = zigzag((int64_t)(t[k].alloc_ns - prev_ns));
			prev_ns = t[k].alloc_ns;
		}
		put_column(&w->raw, col, n);
		ret = write_chunk(w, CH_TRCS);
		if (ret) {
			free(col);
			return ret;
		}
	}
	free(col);
	return 0;
}

int tm_native_write(const struct tm_snapshot *snap, FILE *fp, char *err, size_t errlen)
{
	struct nwriter w = { 0 };
	struct tables t = { 0 };
	unsigned char hdr[TM_NATIVE_HEADER_LEN];
	int ret;

	ret = tm_out_init(&w.out, fp, 1 << 16);
	if (ret)
		goto cleanup;
	w.comp_cap = compressBound(TM_NATIVE_MAX_CHUNK_RAW);
	w.comp = malloc(w.comp_cap);
	ret = w.comp ? build_tables(snap, &t) : -ENOMEM;
	if (ret)
		goto cleanup;
	memcpy(hdr, TM_NATIVE_MAGIC, TM_NATIVE_MAGIC_LEN);
	hdr[8] = t.named ? 2 : 1, hdr[9] = 0; /* format version */
	hdr[10] = 0, hdr[11] = 0;               /* flags */
	put32(hdr + 12, (uint32_t)crc32(0, hdr, 12));
	ret = tm_out_write(&w.out, hdr, sizeof(hdr));
	put_meta(&w.raw, snap, t.nframes, t.nstrs);
	ret = ret ? ret : write_chunk(&w, CH_META);
	ret = ret ? ret : write_strings(&w, &t);
	ret = ret ? ret : write_frames(&w, &t);
	ret = ret ? ret : write_tracebacks(&w, snap, &t);
	ret = ret ? ret : write_traces(&w, snap);
	if (!ret) {
		tm_bytebuf_varint(&w.raw, snap->ntraces);
		tm_bytebuf_varint(&w.raw, tm_snapshot_ntracebacks(snap));
		tm_bytebuf_varint(&w.raw, t.nframes);
		tm_bytebuf_varint(&w.raw, t.nstrs);
		ret = write_chunk(&w, CH_END);
	}
	ret = ret ? ret : tm_out_flush(&w.out);
cleanup:
	if (ret)
		tm_io_errf(err, errlen, "cannot write native snapshot: %s", strerror(-ret));
	tm_ptrmap_release(&t.strmap);
	tm_ptrmap_release(&t.framemap);
	free(t.strs);
	free(t.frames);
	free(t.tb_frame_ids);
	free(w.comp);
	free(w.raw.p);
	tm_out_release(&w.out);
	return ret;
}
