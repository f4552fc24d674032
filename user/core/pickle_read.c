/* Strict reader of tracemalloc.Snapshot.dump() pickles (CPython 3.8-3.13,
 * pickle protocol 4/5 as written by pickle.HIGHEST_PROTOCOL).
 *
 * Instead of a general object model, the value stack holds typed values that
 * are folded into the snapshot's own types as soon as a tuple is built:
 * (str, int) becomes a frame, a tuple of frames an interned traceback, and
 * (int, int, traceback[, int|None]) a trace. Anything that does not fit the
 * shape Snapshot.dump() produces is rejected with one line. The only memory
 * that grows with the input (value stack, memo, string table) grows by at
 * most one entry per input byte, and nothing recurses. */
#include "core/snapshot_io.h"
#include "core/snapshot_io_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum pv_type {
	PV_NONE = 1,
	PV_INT,        /* u: non-negative value */
	PV_NEGINT,     /* a negative integer: never valid where used */
	PV_STR,        /* a: string table index */
	PV_FRAME,      /* u: string table index << 32 | lineno */
	PV_TB,         /* p: interned traceback */
	PV_TRACE,      /* a: index in snap->traces (added when built) */
	PV_EMPTY_TUPLE,
	PV_TRACE_TUPLE, /* a tuple of traces (already added to the snapshot) */
	PV_LIST,       /* the traces list */
	PV_DICT,       /* a: index in dicts[] */
	PV_CLASS,      /* a: OBJ_SNAPSHOT or OBJ_TRACES */
	PV_OBJ,        /* a: OBJ_SNAPSHOT or OBJ_TRACES */
	PV_MEMO_WIDE,  /* memo only: payload indexes mwide[] */
};

enum { OBJ_SNAPSHOT, OBJ_TRACES };

/* A value on the stack (16 bytes); the memo keeps them packed in 8. */
struct pval {
	uint8_t type;
	uint32_t a;
	union {
		uint64_t u;
		const void *p;
	};
};

struct pstr {
	const unsigned char *bytes; /* in the input */
	uint32_t len;
	const char *interned;       /* filled on first use as a file name */
};

#define MAX_DICTS 4
enum { KEY_TRACES = 1, KEY_LIMIT = 2, KEY_TRACES_LIST = 4 };

struct pdict {
	unsigned keys; /* KEY_* seen */
	uint32_t traceback_limit;
};

struct preader {
	const unsigned char *buf, *pos, *end;
	struct tm_snapshot *snap;
	struct pval *stack;
	size_t nstack, stack_cap;
	size_t *marks;
	size_t nmarks, marks_cap;
	uint64_t *memo; /* packed values: see memo_pack() */
	size_t nmemo, memo_cap;
	struct pval *mwide; /* memoized values too wide to pack (dump() writes none) */
	size_t nmwide, mwide_cap;
	struct pstr *strs; /* one per string opcode */
	size_t nstrs, strs_cap;
	struct tm_frame *frames; /* scratch for building a traceback */
	size_t frames_cap;
	struct pdict dicts[MAX_DICTS];
	unsigned ndicts;
	int have_class[2], have_obj[2], built[2], have_list, have_container, attached;
	size_t nappended; /* traces moved into the traces container so far */
	char *err;
	size_t errlen;
};

#define FAIL(r, ...)                                            \
	do {                                                    \
		tm_io_errf((r)->err, (r)->errlen, __VA_ARGS__); \
		return -EINVAL;                                 \
	} while (0)

static int grow(void **arr, size_t *cap, size_t elem)
{
	size_t ncap = *cap ? *cap * 2 : 256;
	void *n = realloc(*arr, ncap * elem);

	if (!n)
		return -ENOMEM;
	*arr = n;
	*cap = ncap;
	return 0;
}

static int push(struct preader *r, const struct pval *v)
{
	if (r->nstack == r->stack_cap &&
	    grow((void **)&r->stack, &r->stack_cap, sizeof(*r->stack)))
		FAIL(r, "out of memory");
	r->stack[r->nstack++] = *v;
	return 0;
}

static size_t offset(const struct preader *r)
{
	return (size_t)(r->pos - r->buf);
}

static int need(struct preader *r, size_t n)
{
	if ((size_t)(r->end - r->pos) < n)
		FAIL(r, "truncated pickle: %zu bytes needed at offset %zu, %zu left", n, offset(r),
		     (size_t)(r->end - r->pos));
	return 0;
}

static uint64_t le(const unsigned char *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Number of items above the innermost MARK, or -EINVAL. */
static long items_since_mark(struct preader *r)
{
	if (!r->nmarks)
		FAIL(r, "corrupt pickle: no MARK before offset %zu", offset(r));
	return (long)(r->nstack - r->marks[r->nmarks - 1]);
}

static const char *intern_str(struct preader *r, const struct pval *v)
{
	struct pstr *ps = &r->strs[v->a];
	const char *s = ps->interned;

	if (s)
		return s;
	s = tm_snapshot_intern_str(r->snap, (const char *)ps->bytes, ps->len);
	if (!s) {
		tm_io_errf(r->err, r->errlen, errno == EINVAL ? "file name contains a NUL character"
							      : "out of memory");
		return NULL;
	}
	ps->interned = s;
	return s;
}

static int load_str(struct preader *r, unsigned lenbytes)
{
	struct pval v = { .type = PV_STR };
	uint64_t len;

	if (need(r, lenbytes))
		return -EINVAL;
	len = le(r->pos, lenbytes);
	r->pos += lenbytes;
	if (len > (uint64_t)(r->end - r->pos))
		FAIL(r, "truncated pickle: string of %llu bytes at offset %zu, %zu left",
		     (unsigned long long)len, offset(r), (size_t)(r->end - r->pos));
	if (!tm_utf8_valid(r->pos, len))
		FAIL(r, "corrupt pickle: invalid UTF-8 in string at offset %zu", offset(r));
	if (r->nstrs == r->strs_cap && grow((void **)&r->strs, &r->strs_cap, sizeof(*r->strs)))
		FAIL(r, "out of memory");
	if (len > UINT32_MAX)
		FAIL(r, "unsupported pickle: string of %llu bytes", (unsigned long long)len);
	r->strs[r->nstrs] = (struct pstr){ r->pos, (uint32_t)len, NULL };
	v.a = (uint32_t)r->nstrs++;
	r->pos += len;
	return push(r, &v);
}

static int load_long1(struct preader *r)
{
	struct pval v = { .type = PV_INT };
	unsigned n;

	if (need(r, 1))
		return -EINVAL;
	n = *r->pos++;
	if (need(r, n))
		return -EINVAL;
	if (n > 9 || (n == 9 && r->pos[8] != 0))
		FAIL(r, "unsupported pickle: integer wider than 64 bits at offset %zu", offset(r));
	if (n && (r->pos[n - 1] & 0x80)) {
		v.type = PV_NEGINT;
	} else {
		v.u = le(r->pos, n < 8 ? n : 8);
	}
	r->pos += n;
	return push(r, &v);
}

static int is_str(const struct preader *r, const struct pval *v, const char *s)
{
	const struct pstr *ps = v->type == PV_STR ? &r->strs[v->a] : NULL;

	return ps && ps->len == strlen(s) && !memcmp(ps->bytes, s, ps->len);
}

static int make_global(struct preader *r, const struct pstr *mod, const struct pstr *name)
{
	struct pval v = { .type = PV_CLASS };

	if (mod->len != 11 || memcmp(mod->bytes, "tracemalloc", 11))
		FAIL(r, "not a tracemalloc snapshot: pickle refers to another module");
	if (name->len == 8 && !memcmp(name->bytes, "Snapshot", 8))
		v.a = OBJ_SNAPSHOT;
	else if (name->len == 7 && !memcmp(name->bytes, "_Traces", 7))
		v.a = OBJ_TRACES;
	else
		FAIL(r, "not a tracemalloc snapshot: unexpected class tracemalloc.%.*s",
		     name->len > 40 ? 40 : (int)name->len, (const char *)name->bytes);
	if (r->have_class[v.a]++)
		FAIL(r, "corrupt pickle: class referenced twice");
	return push(r, &v);
}

static int load_stack_global(struct preader *r)
{
	if (r->nstack < 2 + (r->nmarks ? r->marks[r->nmarks - 1] : 0))
		FAIL(r, "corrupt pickle: stack underflow at offset %zu", offset(r));
	r->nstack -= 2;
	if (r->stack[r->nstack].type != PV_STR || r->stack[r->nstack + 1].type != PV_STR)
		FAIL(r, "not a tracemalloc snapshot: STACK_GLOBAL of a non-string");
	return make_global(r, &r->strs[r->stack[r->nstack].a], &r->strs[r->stack[r->nstack + 1].a]);
}

/* GLOBAL "module\nname\n" (protocols below 4; accepted for completeness). */
static int load_global(struct preader *r)
{
	const unsigned char *nl1, *nl2;
	struct pstr mod, name;

	nl1 = memchr(r->pos, '\n', (size_t)(r->end - r->pos));
	nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(r->end - nl1 - 1)) : NULL;
	if (!nl2)
		FAIL(r, "truncated pickle: GLOBAL at offset %zu", offset(r));
	mod = (struct pstr){ r->pos, (uint32_t)(nl1 - r->pos), NULL };
	name = (struct pstr){ nl1 + 1, (uint32_t)(nl2 - nl1 - 1), NULL };
	r->pos = nl2 + 1;
	return make_global(r, &mod, &name);
}

/* Traces are added to the snapshot when built; the container must then hold
 * each exactly once, in order (dump() never shares a trace tuple). */
static int add_traces(struct preader *r, const struct pval *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (items[i].type != PV_TRACE)
			FAIL(r, "not a tracemalloc snapshot: traces list holds a non-trace");
		if (items[i].a != r->nappended)
			FAIL(r, "not a tracemalloc snapshot: trace tuple shared or out of order");
		r->nappended++;
	}
	return 0;
}

static int build_frame(struct preader *r, struct pval *it, struct pval *out)
{
	const char *fn;

	if (it[1].type != PV_INT || it[1].u > UINT32_MAX)
		FAIL(r, "not a tracemalloc snapshot: frame line number is not an integer in range");
	fn = intern_str(r, &it[0]);
	if (!fn)
		return -EINVAL;
	out->type = PV_FRAME;
	out->u = (uint64_t)it[0].a << 32 | it[1].u;
	return 0;
}

static int build_traceback(struct preader *r, struct pval *it, size_t n, struct pval *out)
{
	const struct tm_traceback *tb;

	if (n > TM_MAX_FRAMES)
		FAIL(r, "unsupported pickle: traceback of %zu frames (at most %u)", n, TM_MAX_FRAMES);
	while (n > r->frames_cap) {
		if (grow((void **)&r->frames, &r->frames_cap, sizeof(*r->frames)))
			FAIL(r, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		if (it[i].type != PV_FRAME)
			FAIL(r, "not a tracemalloc snapshot: traceback holds a non-frame");
		r->frames[i].filename = r->strs[it[i].u >> 32].interned;
		r->frames[i].lineno = (uint32_t)it[i].u;
		r->frames[i].name = NULL; /* tracemalloc's Frame has none */
	}
	tb = tm_snapshot_intern_traceback(r->snap, r->frames, (uint32_t)n);
	if (!tb)
		FAIL(r, "out of memory");
	out->type = PV_TB;
	out->p = tb;
	return 0;
}

static int build_trace(struct preader *r, struct pval *it, size_t n, struct pval *out)
{
	struct tm_trace t = { 0 };

	if (r->snap->ntraces >= UINT32_MAX)
		FAIL(r, "unsupported pickle: more than %u traces", UINT32_MAX);
	if (it[0].type != PV_INT || it[0].u > UINT32_MAX)
		FAIL(r, "not a tracemalloc snapshot: trace domain is not an integer in range");
	if (it[1].type != PV_INT)
		FAIL(r, "not a tracemalloc snapshot: trace size is not a non-negative integer");
	t.traceback = it[2].p;
	t.domain = (uint32_t)it[0].u;
	t.size_bytes = it[1].u;
	t.total_nframe = TM_NFRAME_UNKNOWN;
	if (n == 4 && it[3].type == PV_INT && it[3].u < TM_NFRAME_UNKNOWN)
		t.total_nframe = (uint32_t)it[3].u;
	else if (n == 4 && it[3].type != PV_NONE)
		FAIL(r, "not a tracemalloc snapshot: total_nframe is neither an integer nor None");
	out->type = PV_TRACE;
	out->a = (uint32_t)r->snap->ntraces;
	if (tm_snapshot_add_trace(r->snap, &t))
		FAIL(r, "out of memory");
	return 0;
}

/* Replace the n topmost values by the tuple they form, folded to its meaning. */
static int build_tuple(struct preader *r, size_t n)
{
	struct pval *it = n ? r->stack + r->nstack - n : NULL, out = { 0 };
	int err;

	if (n == 0) {
		out.type = PV_EMPTY_TUPLE;
	} else if (n == 2 && it[0].type == PV_STR) {
		err = build_frame(r, it, &out);
		if (err)
			return err;
	} else if (it[0].type == PV_FRAME) {
		err = build_traceback(r, it, n, &out);
		if (err)
			return err;
	} else if ((n == 3 || n == 4) && it[0].type != PV_TRACE && it[2].type == PV_TB) {
		err = build_trace(r, it, n, &out);
		if (err)
			return err;
	} else if (it[0].type == PV_TRACE) {
		if (r->have_container++)
			FAIL(r, "not a tracemalloc snapshot: more than one traces container");
		err = add_traces(r, it, n);
		if (err)
			return err;
		out.type = PV_TRACE_TUPLE;
	} else {
		FAIL(r, "not a tracemalloc snapshot: unexpected %zu-tuple at offset %zu", n,
		     offset(r));
	}
	r->nstack -= n;
	return push(r, &out);
}

static int load_tuple_n(struct preader *r, size_t n)
{
	size_t floor = r->nmarks ? r->marks[r->nmarks - 1] : 0;

	if (r->nstack - floor < n)
		FAIL(r, "corrupt pickle: stack underflow at offset %zu", offset(r));
	return build_tuple(r, n);
}

static int load_tuple_mark(struct preader *r)
{
	long n = items_since_mark(r);

	if (n < 0)
		return (int)n;
	r->nmarks--;
	return build_tuple(r, (size_t)n);
}

static int load_appends(struct preader *r, int mark)
{
	size_t n = 1, base;
	int err;

	if (mark) {
		long m = items_since_mark(r);

		if (m < 0)
			return (int)m;
		n = (size_t)m;
		r->nmarks--;
	}
	base = r->nstack - n;
	if (r->nstack < n + 1 || base < 1 + (r->nmarks ? r->marks[r->nmarks - 1] : 0) ||
	    r->stack[base - 1].type != PV_LIST)
		FAIL(r, "not a tracemalloc snapshot: APPENDS to something that is not the traces list");
	err = add_traces(r, r->stack + base, n);
	r->nstack = base;
	return err;
}

static int set_item(struct preader *r, struct pdict *d, const struct pval *k, const struct pval *v)
{
	unsigned key;

	if (is_str(r, k, "traces") && v->type == PV_OBJ && v->a == OBJ_TRACES && r->built[OBJ_TRACES])
		key = KEY_TRACES;
	else if (is_str(r, k, "traceback_limit") && v->type == PV_INT && v->u <= TM_MAX_FRAMES)
		key = KEY_LIMIT, d->traceback_limit = (uint32_t)v->u;
	else if (is_str(r, k, "_traces") &&
		 (v->type == PV_LIST || v->type == PV_TRACE_TUPLE || v->type == PV_EMPTY_TUPLE))
		key = KEY_TRACES_LIST, r->attached = v->type != PV_EMPTY_TUPLE;
	else
		FAIL(r, "not a tracemalloc snapshot: unexpected attribute in object state");
	if (d->keys & key)
		FAIL(r, "corrupt pickle: attribute set twice");
	d->keys |= key;
	return 0;
}

static int load_setitems(struct preader *r, int mark)
{
	size_t n = 2, base;
	struct pdict *d;

	if (mark) {
		long m = items_since_mark(r);

		if (m < 0)
			return (int)m;
		n = (size_t)m;
		r->nmarks--;
	}
	base = r->nstack - n;
	if (n % 2 || r->nstack < n || base < 1 + (r->nmarks ? r->marks[r->nmarks - 1] : 0) ||
	    r->stack[base - 1].type != PV_DICT)
		FAIL(r, "corrupt pickle: SETITEMS without a dict at offset %zu", offset(r));
	d = &r->dicts[r->stack[base - 1].a];
	for (size_t i = base; i < r->nstack; i += 2) {
		int err = set_item(r, d, &r->stack[i], &r->stack[i + 1]);

		if (err)
			return err;
	}
	r->nstack = base;
	return 0;
}

static int load_newobj(struct preader *r)
{
	struct pval *top;
	struct pval v = { .type = PV_OBJ };

	if (r->nstack < 2 + (r->nmarks ? r->marks[r->nmarks - 1] : 0))
		FAIL(r, "corrupt pickle: stack underflow at offset %zu", offset(r));
	top = r->stack + r->nstack - 2;
	if (top[0].type != PV_CLASS || top[1].type != PV_EMPTY_TUPLE)
		FAIL(r, "not a tracemalloc snapshot: unexpected NEWOBJ at offset %zu", offset(r));
	v.a = top[0].a;
	if (r->have_obj[v.a]++)
		FAIL(r, "corrupt pickle: object created twice");
	r->nstack -= 2;
	return push(r, &v);
}

static int load_build(struct preader *r)
{
	struct pval *top;
	struct pdict *d;
	unsigned want;

	if (r->nstack < 2 + (r->nmarks ? r->marks[r->nmarks - 1] : 0))
		FAIL(r, "corrupt pickle: stack underflow at offset %zu", offset(r));
	top = r->stack + r->nstack - 2;
	if (top[0].type != PV_OBJ || top[1].type != PV_DICT)
		FAIL(r, "not a tracemalloc snapshot: unexpected BUILD at offset %zu", offset(r));
	d = &r->dicts[top[1].a];
	want = top[0].a == OBJ_SNAPSHOT ? (KEY_TRACES | KEY_LIMIT) : KEY_TRACES_LIST;
	if (d->keys != want || r->built[top[0].a]++)
		FAIL(r, "not a tracemalloc snapshot: unexpected object state");
	if (top[0].a == OBJ_SNAPSHOT)
		r->snap->traceback_limit = d->traceback_limit;
	r->nstack--;
	return 0;
}

/* The memo keeps 8 bytes per entry (type << 56 | 56-bit payload) so that a
 * large file's memo stays small and cache-friendly. Tracebacks are kept by
 * index; values that do not fit go to a side table. */
#define PAYLOAD_MASK ((1ULL << 56) - 1)

static int memo_pack(struct preader *r, const struct pval *v, uint64_t *out)
{
	uint64_t payload = v->a;

	if (v->type == PV_TB) {
		payload = ((const struct tm_traceback *)v->p)->index;
	} else if (v->type == PV_FRAME && v->u <= PAYLOAD_MASK) {
		payload = v->u;
	} else if (v->type == PV_FRAME || v->type == PV_INT || v->type == PV_NEGINT) {
		if (r->nmwide == r->mwide_cap &&
		    grow((void **)&r->mwide, &r->mwide_cap, sizeof(*r->mwide)))
			FAIL(r, "out of memory");
		r->mwide[r->nmwide] = *v;
		*out = (uint64_t)PV_MEMO_WIDE << 56 | r->nmwide++;
		return 0;
	}
	*out = (uint64_t)v->type << 56 | payload;
	return 0;
}

static void memo_unpack(const struct preader *r, uint64_t m, struct pval *v)
{
	uint64_t payload = m & PAYLOAD_MASK;

	v->type = (uint8_t)(m >> 56);
	v->a = (uint32_t)payload;
	v->u = payload;
	if (v->type == PV_TB)
		v->p = tm_snapshot_traceback_at(r->snap, payload);
	else if (v->type == PV_MEMO_WIDE)
		*v = r->mwide[payload];
}

static int load_get(struct preader *r, unsigned nbytes)
{
	struct pval v;
	uint64_t idx;

	if (need(r, nbytes))
		return -EINVAL;
	idx = le(r->pos, nbytes);
	r->pos += nbytes;
	if (idx >= r->nmemo)
		FAIL(r, "corrupt pickle: memo index %llu out of range at offset %zu",
		     (unsigned long long)idx, offset(r));
	memo_unpack(r, r->memo[idx], &v);
	return push(r, &v);
}

static int load_memoize(struct preader *r)
{
	if (r->nstack <= (r->nmarks ? r->marks[r->nmarks - 1] : 0))
		FAIL(r, "corrupt pickle: MEMOIZE on empty stack at offset %zu", offset(r));
	if (r->nmemo == r->memo_cap && grow((void **)&r->memo, &r->memo_cap, sizeof(*r->memo)))
		FAIL(r, "out of memory");
	return memo_pack(r, &r->stack[r->nstack - 1], &r->memo[r->nmemo++]);
}

static int load_int(struct preader *r, unsigned nbytes)
{
	struct pval v = { .type = PV_INT };

	if (need(r, nbytes))
		return -EINVAL;
	v.u = le(r->pos, nbytes);
	if (nbytes == 4 && (v.u & 0x80000000u))
		v.type = PV_NEGINT;
	r->pos += nbytes;
	return push(r, &v);
}

static int load_mark(struct preader *r)
{
	if (r->nmarks == r->marks_cap && grow((void **)&r->marks, &r->marks_cap, sizeof(*r->marks)))
		FAIL(r, "out of memory");
	r->marks[r->nmarks++] = r->nstack;
	return 0;
}

static int load_simple(struct preader *r, uint8_t type)
{
	struct pval v = { .type = type };

	if (type == PV_DICT) {
		if (r->ndicts == MAX_DICTS)
			FAIL(r, "not a tracemalloc snapshot: too many dicts");
		v.a = r->ndicts++;
	} else if (type == PV_LIST) {
		if (r->have_list++ || r->have_container++)
			FAIL(r, "not a tracemalloc snapshot: more than one traces container");
	}
	return push(r, &v);
}

static int load_frame_op(struct preader *r)
{
	if (need(r, 8))
		return -EINVAL;
	if (le(r->pos, 8) > (uint64_t)(r->end - r->pos - 8))
		FAIL(r, "truncated pickle: frame at offset %zu runs past the end", offset(r));
	r->pos += 8;
	return 0;
}

static int finish(struct preader *r)
{
	if (r->nmarks || r->nstack != 1 || r->stack[0].type != PV_OBJ ||
	    r->stack[0].a != OBJ_SNAPSHOT || !r->built[OBJ_SNAPSHOT])
		FAIL(r, "not a tracemalloc snapshot: pickle holds another object");
	if (r->pos != r->end)
		FAIL(r, "corrupt pickle: %zu bytes after STOP", (size_t)(r->end - r->pos));
	if (r->nappended != r->snap->ntraces || (r->snap->ntraces && !r->attached))
		FAIL(r, "not a tracemalloc snapshot: trace built outside the traces list");
	return 0;
}

static int step(struct preader *r, unsigned char op)
{
	switch (op) {
	case 0x8c: return load_str(r, 1);      /* SHORT_BINUNICODE */
	case 'X': return load_str(r, 4);       /* BINUNICODE */
	case 0x8d: return load_str(r, 8);      /* BINUNICODE8 */
	case 0x94: return load_memoize(r);     /* MEMOIZE */
	case 'h': return load_get(r, 1);       /* BINGET */
	case 'j': return load_get(r, 4);       /* LONG_BINGET */
	case 'K': return load_int(r, 1);       /* BININT1 */
	case 'M': return load_int(r, 2);       /* BININT2 */
	case 'J': return load_int(r, 4);       /* BININT */
	case 0x8a: return load_long1(r);       /* LONG1 */
	case 'N': return load_simple(r, PV_NONE);
	case '(': return load_mark(r);
	case 't': return load_tuple_mark(r);
	case ')': return load_simple(r, PV_EMPTY_TUPLE);
	case 0x85: return load_tuple_n(r, 1);
	case 0x86: return load_tuple_n(r, 2);
	case 0x87: return load_tuple_n(r, 3);
	case ']': return load_simple(r, PV_LIST);
	case 'a': return load_appends(r, 0);   /* APPEND */
	case 'e': return load_appends(r, 1);   /* APPENDS */
	case '}': return load_simple(r, PV_DICT);
	case 's': return load_setitems(r, 0);  /* SETITEM */
	case 'u': return load_setitems(r, 1);  /* SETITEMS */
	case 0x93: return load_stack_global(r);
	case 'c': return load_global(r);
	case 0x81: return load_newobj(r);
	case 'b': return load_build(r);
	case 0x95: return load_frame_op(r);    /* FRAME */
	default:
		FAIL(r, "not a tracemalloc snapshot: unsupported pickle opcode 0x%02x at offset %zu",
		     op, offset(r) - 1);
	}
}

/* Memo references to tracebacks land all over a large memo: each is a cache
 * miss. Scan the input a few hundred bytes ahead for LONG_BINGET opcodes and
 * prefetch their entries. A 'j' byte inside other data only wastes a
 * prefetch; indexes are checked against the memo's length. */
#define PREFETCH_AHEAD 512

static void prefetch_refs(struct preader *r, const unsigned char **pf)
{
	const unsigned char *lim, *p = *pf;

	if (r->end - r->pos <= PREFETCH_AHEAD + 8) /* room for the last index read */
		return;
	lim = r->pos + PREFETCH_AHEAD;
	if (p < r->pos)
		p = r->pos;
	for (; p < lim; p++) {
		if (*p == 'j') {
			uint64_t idx = le(p + 1, 4);

			if (idx < r->nmemo)
				__builtin_prefetch(&r->memo[idx]);
		}
	}
	*pf = p;
}

static int run(struct preader *r)
{
	const unsigned char *pf;

	if (r->end - r->pos < 2 || r->pos[0] != 0x80)
		FAIL(r, "not a pickle file");
	if (r->pos[1] < 4 || r->pos[1] > 5)
		FAIL(r, "unsupported pickle protocol %u (tracemalloc writes 4 or 5)", r->pos[1]);
	r->pos += 2;
	pf = r->pos;
	for (;;) {
		int err;

		if (pf - r->pos < PREFETCH_AHEAD / 2)
			prefetch_refs(r, &pf);
		if (r->pos == r->end)
			FAIL(r, "truncated pickle: no STOP opcode");
		if (*r->pos == '.') {
			r->pos++;
			return finish(r);
		}
		err = step(r, *r->pos++);
		if (err)
			return err;
	}
}

struct tm_snapshot *tm_pickle_load_mem(const void *data, size_t len, char *err, size_t errlen)
{
	struct preader r = { .buf = data, .pos = data, .end = (const unsigned char *)data + len,
			     .err = err, .errlen = errlen };
	struct tm_snapshot *snap = NULL;
	int ret = -ENOMEM;

	r.snap = tm_snapshot_new();
	if (!r.snap) {
		tm_io_errf(err, errlen, "out of memory");
		goto cleanup;
	}
	/* A guess that fits real files (about 16-30 bytes per trace); more grows. */
	if (tm_snapshot_reserve(r.snap, len / 32)) {
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
	free(r.frames);
	free(r.stack);
	free(r.marks);
	free(r.memo);
	free(r.mwide);
	free(r.strs);
	if (!snap)
		errno = ret == -ENOMEM ? ENOMEM : EINVAL;
	return snap;
}
