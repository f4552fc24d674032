/* Reader of tmbpf's native snapshot format, versions 1 and 2 (layout:
 * docs/formats.md; version 2 adds a function name to each frame).
 *
 * The file is read as a stream, one chunk at a time, through a read callback,
 * so memory is the snapshot itself plus one chunk (at most 16 MiB inflated).
 * Nothing is allocated from a claimed count unless the input is large enough
 * to hold that many records: a header claiming 2^40 traces is refused before
 * any allocation. */
#include "core/snapshot_io.h"
#include "core/snapshot_io_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define MAX_TRACES 0xffffffffULL
/* Deflate expands at most 1032:1; a trace takes at least 1 byte inflated. */
#define MIN_TRACE_BYTES 1
#define MAX_DEFLATE_RATIO 1032

struct nreader {
	tm_read_fn read;
	void *ctx;
	uint64_t size_hint, consumed;
	struct tm_snapshot *snap;
	unsigned char *comp, *raw; /* sized to the largest chunk seen */
	size_t comp_cap, raw_cap;
	const char **strs;
	size_t nstrs, strs_cap;
	struct tm_frame *frames;
	size_t nframes, frames_cap;
	const struct tm_traceback **tbs;
	size_t ntbs, tbs_cap;
	struct tm_frame *scratch; /* one traceback being built */
	size_t scratch_cap;
	unsigned meta_seen; /* bit per meta tag */
	unsigned version;   /* of the file: 1 or 2 (frames with names) */
	char *err;
	size_t errlen;
};

struct cur {
	const unsigned char *p, *end;
};

#define FAIL(r, ...)                                            \
	do {                                                    \
		tm_io_errf((r)->err, (r)->errlen, __VA_ARGS__); \
		return -EINVAL;                                 \
	} while (0)

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* 0, or -1 when the varint is truncated or wider than 64 bits. */
static inline int varint(struct cur *c, uint64_t *v)
{
	uint64_t x = 0;

	for (unsigned shift = 0; shift < 64 && c->p < c->end; shift += 7) {
		unsigned char b = *c->p++;

		if (shift == 63 && b > 1)
			return -1;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

static size_t left(const struct cur *c)
{
	return (size_t)(c->end - c->p);
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 1024;
	void *n;

	while (ncap < need)
		ncap *= 2;
	if (ncap == *cap)
		return 0;
	n = realloc(*arr, ncap * elem);
	if (!n)
		return -ENOMEM;
	*arr = n;
	*cap = ncap;
	return 0;
}

static int bad_uv(struct nreader *r, uint64_t v, const char *what, int truncated)
{
	if (truncated)
		FAIL(r, "corrupt snapshot: bad or truncated number (%s)", what);
	FAIL(r, "corrupt snapshot: %s %llu out of range", what, (unsigned long long)v);
}

/* A varint no larger than max; the one-byte case is inlined (most values). */
static inline int get_uv(struct nreader *r, struct cur *c, uint64_t *v, uint64_t max,
			 const char *what)
{
	if (c->p < c->end && *c->p < 0x80) {
		*v = *c->p++;
	} else if (varint(c, v)) {
		return bad_uv(r, 0, what, 1);
	}
	if (*v > max)
		return bad_uv(r, *v, what, 0);
	return 0;
}

static int check_counts(struct nreader *r, struct cur *c)
{
	uint64_t ntraces, ntbs, nframes, nstrs;
	uint64_t room = r->size_hint ? r->size_hint * MAX_DEFLATE_RATIO : UINT64_MAX;

	if (get_uv(r, c, &ntraces, UINT64_MAX, "trace count") ||
	    get_uv(r, c, &ntbs, UINT64_MAX, "traceback count") ||
	    get_uv(r, c, &nframes, UINT64_MAX, "frame count") ||
	    get_uv(r, c, &nstrs, UINT64_MAX, "string count"))
		return -EINVAL;
	if (ntraces > MAX_TRACES)
		FAIL(r, "header claims %llu traces, more than the %llu supported",
		     (unsigned long long)ntraces, MAX_TRACES);
	if (ntraces > room / MIN_TRACE_BYTES || ntbs > room / 2 || nframes > room / 2 ||
	    nstrs > room)
		FAIL(r, "corrupt snapshot: header claims more records than a %llu-byte file can hold",
		     (unsigned long long)r->size_hint);
	/* Plausible: reserve, but cap what a stream of unknown size makes us take. */
	if (!r->size_hint && ntraces > (1u << 20))
		ntraces = 1u << 20;
	if (tm_snapshot_reserve(r->snap, (size_t)ntraces))
		FAIL(r, "out of memory for %llu traces", (unsigned long long)ntraces);
	return 0;
}

static int meta_string(struct nreader *r, char **field, const unsigned char *p, size_t len)
{
	char *copy;

	if (memchr(p, '\0', len) || !tm_utf8_valid(p, len))
		FAIL(r, "corrupt snapshot: metadata string is not UTF-8 text");
	copy = strndup((const char *)p, len);
	if (!copy)
		FAIL(r, "out of memory");
	free(*field);
	*field = copy;
	return 0;
}

static int meta_drop(struct nreader *r, struct cur *c)
{
	struct tm_snapshot_meta *m = &r->snap->meta;
	uint64_t len, count;
	char name[sizeof(m->drops[0].name)];

	if (get_uv(r, c, &len, sizeof(name) - 1, "drop counter name length"))
		return -EINVAL;
	if (len > left(c) || memchr(c->p, '\0', len))
		FAIL(r, "corrupt snapshot: bad drop counter name");
	memcpy(name, c->p, len);
	name[len] = '\0';
	c->p += len;
	if (get_uv(r, c, &count, UINT64_MAX, "drop count"))
		return -EINVAL;
	if (tm_snapshot_meta_add_drop(m, name, count))
		FAIL(r, "corrupt snapshot: more than %d drop counters", TM_MAX_DROP_COUNTERS);
	return 0;
}

static int meta_field(struct nreader *r, uint64_t tag, struct cur *v)
{
	struct tm_snapshot_meta *m = &r->snap->meta;
	uint64_t x = 0;
	int ret = 0;

	switch (tag) {
	case M_CMDLINE: return meta_string(r, &m->cmdline, v->p, left(v));
	case M_PYTHON: return meta_string(r, &m->python_version, v->p, left(v));
	case M_HOST: return meta_string(r, &m->hostname, v->p, left(v));
	case M_COVERAGE: return meta_string(r, &m->coverage_mode, v->p, left(v));
	case M_DROP: ret = meta_drop(r, v); break;
	case M_COUNTS: ret = check_counts(r, v); break;
	case M_PID: case M_START_NS: case M_SNAPSHOT_NS: case M_TRACED_CURRENT:
	case M_TRACED_PEAK: case M_TRACEBACK_LIMIT: case M_SAMPLE_INTERVAL:
		ret = get_uv(r, v, &x, tag == M_TRACEBACK_LIMIT ? TM_MAX_FRAMES : UINT64_MAX,
			     "metadata value");
		break;
	default:
		return 0; /* a field from a later minor revision: skip it */
	}
	if (ret)
		return ret;
	if (left(v))
		FAIL(r, "corrupt snapshot: metadata field %llu has trailing bytes",
		     (unsigned long long)tag);
	switch (tag) {
	case M_PID: m->pid = (int64_t)(x >> 1) ^ -(int64_t)(x & 1); break;
	case M_START_NS: m->start_ns = x; break;
	case M_SNAPSHOT_NS: m->snapshot_ns = x; break;
	case M_TRACED_CURRENT: m->traced_current_bytes = x, m->has_traced_memory = 1; break;
	case M_TRACED_PEAK: m->traced_peak_bytes = x, m->has_traced_memory = 1; break;
	case M_TRACEBACK_LIMIT: r->snap->traceback_limit = (uint32_t)x; break;
	case M_SAMPLE_INTERVAL: m->sample_interval_bytes = x; break;
	}
	return 0;
}

static int parse_meta(struct nreader *r, struct cur *c)
{
	while (left(c)) {
		uint64_t tag, len;
		struct cur v;
		int ret;

		if (get_uv(r, c, &tag, 1000000, "metadata tag") ||
		    get_uv(r, c, &len, left(c), "metadata length"))
			return -EINVAL;
		if (tag != M_DROP && tag < 32) {
			if (r->meta_seen & (1u << tag))
				FAIL(r, "corrupt snapshot: metadata field %llu repeated",
				     (unsigned long long)tag);
			r->meta_seen |= 1u << tag;
		}
		v.p = c->p;
		v.end = c->p + len;
		c->p += len;
		ret = meta_field(r, tag, &v);
		if (ret)
			return ret;
	}
	return 0;
}

static int parse_strings(struct nreader *r, struct cur *c)
{
	uint64_t n, len;

	if (get_uv(r, c, &n, left(c), "string count"))
		return -EINVAL;
	if (grow((void **)&r->strs, &r->strs_cap, r->nstrs + n, sizeof(*r->strs)))
		FAIL(r, "out of memory");
	for (uint64_t i = 0; i < n; i++) {
		const char *s;

		if (get_uv(r, c, &len, left(c), "string length"))
			return -EINVAL;
		if (!tm_utf8_valid(c->p, len))
			FAIL(r, "corrupt snapshot: file name is not UTF-8");
		s = tm_snapshot_intern_str(r->snap, (const char *)c->p, len);
		if (!s)
			FAIL(r, errno == EINVAL ? "corrupt snapshot: NUL in a file name" : "out of memory");
		r->strs[r->nstrs++] = s;
		c->p += len;
	}
	return 0;
}

static int parse_frames(struct nreader *r, struct cur *c)
{
	uint64_t n, sid, lineno, name = 0;

	if (get_uv(r, c, &n, left(c) / (r->version >= 2 ? 3 : 2), "frame count"))
		return -EINVAL;
	if (grow((void **)&r->frames, &r->frames_cap, r->nframes + n, sizeof(*r->frames)))
		FAIL(r, "out of memory");
	for (uint64_t i = 0; i < n; i++) {
		if (get_uv(r, c, &sid, r->nstrs ? r->nstrs - 1 : 0, "string reference") ||
		    get_uv(r, c, &lineno, UINT32_MAX, "line number") ||
		    (r->version >= 2 && get_uv(r, c, &name, r->nstrs, "function name reference")))
			return -EINVAL;
		if (!r->nstrs)
			FAIL(r, "corrupt snapshot: frame before any string");
		r->frames[r->nframes].filename = r->strs[sid];
		r->frames[r->nframes].name = name ? r->strs[name - 1] : NULL;
		r->frames[r->nframes++].lineno = (uint32_t)lineno;
	}
	return 0;
}

/* A traceback: its own most recent frames, then optionally the last m frames
 * of an earlier traceback (docs/formats.md, TBKS). */
static int parse_traceback(struct nreader *r, struct cur *c, const struct tm_traceback **out)
{
	const struct tm_traceback *from = NULL;
	uint64_t nf, ref, m = 0, fid;

	if (get_uv(r, c, &nf, TM_MAX_FRAMES, "frames in a traceback") ||
	    get_uv(r, c, &ref, r->ntbs, "traceback reference"))
		return -EINVAL;
	if (ref) {
		from = r->tbs[ref - 1];
		if (get_uv(r, c, &m, nf < from->nframe ? nf : from->nframe, "shared frames"))
			return -EINVAL;
	}
	if (nf == 0 || (!r->nframes && nf > m))
		FAIL(r, "corrupt snapshot: empty traceback");
	if (grow((void **)&r->scratch, &r->scratch_cap, nf, sizeof(*r->scratch)))
		FAIL(r, "out of memory");
	for (uint64_t f = 0; f < nf - m; f++) {
		if (get_uv(r, c, &fid, r->nframes - 1, "frame reference"))
			return -EINVAL;
		r->scratch[f] = r->frames[fid];
	}
	if (m)
		memcpy(r->scratch + (nf - m), from->frames + (from->nframe - m),
		       m * sizeof(*r->scratch));
	*out = tm_snapshot_intern_traceback(r->snap, r->scratch, (uint32_t)nf);
	if (!*out)
		FAIL(r, "out of memory");
	return 0;
}

static int parse_tracebacks(struct nreader *r, struct cur *c)
{
	uint64_t n;

	if (get_uv(r, c, &n, left(c) / 2, "traceback count"))
		return -EINVAL;
	if (grow((void **)&r->tbs, &r->tbs_cap, r->ntbs + n, sizeof(*r->tbs)))
		FAIL(r, "out of memory");
	for (uint64_t i = 0; i < n; i++) {
		int ret = parse_traceback(r, c, &r->tbs[r->ntbs]);

		if (ret)
			return ret;
		r->ntbs++;
	}
	return 0;
}

/* A column's mode: 0, n values follow; 1, one value stands for all n. */
static int column_mode(struct nreader *r, struct cur *c, uint64_t *cval, uint64_t max,
		       const char *what)
{
	uint64_t mode;

	if (get_uv(r, c, &mode, 1, "column mode"))
		return -EINVAL;
	if (!mode)
		return 0;
	if (get_uv(r, c, cval, max, what))
		return -EINVAL;
	return 1;
}

#define COLUMN(r, c, n, max, what, assign)                                    \
	do {                                                                  \
		uint64_t v_ = 0;                                              \
		int const_ = column_mode(r, c, &v_, max, what);                \
                                                                              \
		if (const_ < 0)                                               \
			return const_;                                        \
		for (uint64_t k = 0; k < (n); k++) {                          \
			if (!const_ && get_uv(r, c, &v_, max, what))          \
				return -EINVAL;                               \
			assign;                                               \
		}                                                             \
	} while (0)

static int parse_traces(struct nreader *r, struct cur *c)
{
	struct tm_snapshot *snap = r->snap;
	struct tm_trace *t;
	uint64_t n, v, ns = 0;

	/* The traceback column is always explicit: a trace takes >= 1 byte. */
	if (get_uv(r, c, &n, left(c) / MIN_TRACE_BYTES, "trace count"))
		return -EINVAL;
	if (snap->ntraces + n > MAX_TRACES)
		FAIL(r, "corrupt snapshot: more than %llu traces", MAX_TRACES);
	if (!n)
		return 0;
	if (!r->ntbs)
		FAIL(r, "corrupt snapshot: trace before any traceback");
	if (tm_snapshot_reserve(snap, (size_t)n))
		FAIL(r, "out of memory");
	t = snap->traces + snap->ntraces;
	COLUMN(r, c, n, UINT32_MAX, "domain", t[k].domain = (uint32_t)v_);
	COLUMN(r, c, n, UINT64_MAX, "size", t[k].size_bytes = v_);
	for (uint64_t k = 0; k < n; k++) {
		if (get_uv(r, c, &v, r->ntbs - 1, "traceback reference"))
			return -EINVAL;
		t[k].traceback = r->tbs[v];
	}
	COLUMN(r, c, n, UINT32_MAX, "total_nframe",
	       t[k].total_nframe = v_ ? (uint32_t)(v_ - 1) : TM_NFRAME_UNKNOWN);
	COLUMN(r, c, n, UINT64_MAX, "thread id", t[k].thread_id = v_);
	COLUMN(r, c, n, UINT64_MAX, "allocation time",
	       (ns += (v_ >> 1) ^ -(v_ & 1), t[k].alloc_ns = ns));
	snap->ntraces += (size_t)n;
	return 0;
}

static int parse_end(struct nreader *r, struct cur *c)
{
	uint64_t want[4], have[4] = { r->snap->ntraces, r->ntbs, r->nframes, r->nstrs };

	for (int i = 0; i < 4; i++) {
		if (get_uv(r, c, &want[i], UINT64_MAX, "final count"))
			return -EINVAL;
		if (want[i] != have[i])
			FAIL(r, "corrupt snapshot: %s count %llu, but %llu were read",
			     (const char *[]){ "trace", "traceback", "frame", "string" }[i],
			     (unsigned long long)want[i], (unsigned long long)have[i]);
	}
	return 0;
}

static int read_exact(struct nreader *r, void *buf, size_t len, const char *what)
{
	long n = r->read(r->ctx, buf, len);

	if (n < 0)
		FAIL(r, "read error: %s", strerror((int)-n));
	r->consumed += (uint64_t)n;
	if ((size_t)n != len)
		FAIL(r, "truncated snapshot: %s cut short", what);
	return 0;
}

/* Read, check and inflate one chunk; *type 0 means a clean end of input. */
static int next_chunk(struct nreader *r, uint32_t *type, struct cur *c)
{
	unsigned char h[TM_NATIVE_CHUNK_HDR_LEN];
	uint32_t raw_len, comp_len;
	uLongf out_len;
	long n;

	n = r->read(r->ctx, h, sizeof(h));
	if (n < 0)
		FAIL(r, "read error: %s", strerror((int)-n));
	r->consumed += (uint64_t)n;
	*type = 0;
	if (n == 0)
		return 0;
	if (n != (long)sizeof(h))
		FAIL(r, "truncated snapshot: chunk header cut short");
	if (get32(h + 16) != (uint32_t)crc32(0, h, 16))
		FAIL(r, "corrupt snapshot: chunk header checksum mismatch at byte %llu",
		     (unsigned long long)(r->consumed - sizeof(h)));
	*type = get32(h);
	raw_len = get32(h + 4);
	comp_len = get32(h + 8);
	if (raw_len > TM_NATIVE_MAX_CHUNK_RAW || comp_len > compressBound(raw_len))
		FAIL(r, "corrupt snapshot: chunk of %u bytes (%u compressed) is too large", raw_len,
		     comp_len);
	if (r->size_hint && comp_len > r->size_hint - r->consumed)
		FAIL(r, "truncated snapshot: chunk runs past the end of the file");
	if (grow((void **)&r->comp, &r->comp_cap, comp_len, 1) ||
	    grow((void **)&r->raw, &r->raw_cap, raw_len, 1))
		FAIL(r, "out of memory");
	if (read_exact(r, r->comp, comp_len, "chunk"))
		return -EINVAL;
	if (get32(h + 12) != (uint32_t)crc32(0, r->comp, comp_len))
		FAIL(r, "corrupt snapshot: chunk checksum mismatch");
	out_len = raw_len;
	if (uncompress(r->raw, &out_len, r->comp, comp_len) != Z_OK || out_len != raw_len)
		FAIL(r, "corrupt snapshot: chunk does not decompress");
	c->p = r->raw;
	c->end = r->raw + raw_len;
	return 0;
}

static int read_header(struct nreader *r)
{
	unsigned char h[TM_NATIVE_HEADER_LEN];
	unsigned version;

	if (read_exact(r, h, sizeof(h), "header"))
		return -EINVAL;
	if (memcmp(h, TM_NATIVE_MAGIC, TM_NATIVE_MAGIC_LEN))
		FAIL(r, "not a tmbpf native snapshot");
	if (get32(h + 12) != (uint32_t)crc32(0, h, 12))
		FAIL(r, "corrupt snapshot: header checksum mismatch");
	version = h[8] | h[9] << 8;
	if (version < 1 || version > TM_NATIVE_VERSION)
		FAIL(r, "native format version %u is not supported (this tmbpf reads versions 1-%u)",
		     version, TM_NATIVE_VERSION);
	r->version = version;
	if (h[10] || h[11])
		FAIL(r, "unsupported native format flags 0x%02x%02x", h[11], h[10]);
	return 0;
}

static int parse_chunk(struct nreader *r, uint32_t type, struct cur *c)
{
	switch (type) {
	case CH_STRS: return parse_strings(r, c);
	case CH_FRMS: return parse_frames(r, c);
	case CH_TBKS: return parse_tracebacks(r, c);
	case CH_TRCS: return parse_traces(r, c);
	case CH_END: return parse_end(r, c);
	case CH_META: FAIL(r, "corrupt snapshot: second META chunk");
	default:
		FAIL(r, "unsupported snapshot: unknown chunk type 0x%08x", type);
	}
}

static int run(struct nreader *r)
{
	uint32_t type;
	struct cur c;
	int ret;

	ret = read_header(r);
	ret = ret ? ret : next_chunk(r, &type, &c);
	if (ret)
		return ret;
	if (type != CH_META)
		FAIL(r, "corrupt snapshot: first chunk is not META");
	ret = parse_meta(r, &c);
	for (; !ret; ) {
		ret = next_chunk(r, &type, &c);
		if (ret)
			return ret;
		if (!type)
			FAIL(r, "truncated snapshot: no END chunk");
		ret = parse_chunk(r, type, &c);
		if (!ret && left(&c))
			FAIL(r, "corrupt snapshot: chunk has %zu trailing bytes", left(&c));
		if (!ret && type == CH_END)
			break;
	}
	if (ret)
		return ret;
	{
		unsigned char extra;

		if (r->read(r->ctx, &extra, 1) != 0)
			FAIL(r, "corrupt snapshot: data after the END chunk");
	}
	return 0;
}

struct tm_snapshot *tm_native_load_stream(tm_read_fn read, void *ctx, uint64_t size_hint,
					  char *err, size_t errlen)
{
	struct nreader r = { .read = read, .ctx = ctx, .size_hint = size_hint, .err = err,
			     .errlen = errlen };
	struct tm_snapshot *snap = NULL;
	int ret = -ENOMEM;

	r.snap = tm_snapshot_new();
	if (!r.snap) {
		tm_io_errf(err, errlen, "out of memory");
		goto cleanup;
	}
	ret = run(&r);
	if (!ret) {
		snap = r.snap;
		r.snap = NULL;
	}
cleanup:
	tm_snapshot_free(r.snap);
	free(r.comp);
	free(r.raw);
	free(r.scratch);
	free(r.strs);
	free(r.frames);
	free(r.tbs);
	if (!snap)
		errno = ret == -ENOMEM ? ENOMEM : EINVAL;
	return snap;
}
