/* Writer of tracemalloc pickles that Snapshot.load() opens on CPython 3.9-3.13.
 *
 * The layout is what Snapshot.dump() writes (protocol 4 with FRAME opcodes):
 * a Snapshot object whose state holds a _Traces object whose _traces is a
 * list of 4-tuples (domain, size, traceback, total_nframe). Strings, frames
 * and tracebacks are written once and referenced through the memo afterwards,
 * so a file costs a few bytes per trace plus its distinct tracebacks. */
#include "core/snapshot_io.h"
#include "core/snapshot_io_internal.h"
#include "core/sampling.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_TARGET (64u * 1024) /* as CPython's _FRAME_SIZE_TARGET */
#define BATCH 1000                /* as CPython's _BATCHSIZE */

struct pwriter {
	struct tm_out out;
	unsigned char *fb; /* the current FRAME's bytes */
	size_t flen, fcap;
	uint32_t nmemo;
	struct tm_ptrmap memo; /* strings (tag 0) and frames (tag lineno | 1 << 32) */
	uint32_t *tb_memo; /* by traceback index: memo index + 1, 0 when not written */
	int err;
};

static void emit(struct pwriter *w, const void *data, size_t len)
{
	if (w->err)
		return;
	if (w->fcap - w->flen < len) {
		size_t ncap = w->fcap * 2 > w->flen + len ? w->fcap * 2 : w->flen + len;
		unsigned char *n = realloc(w->fb, ncap);

		if (!n) {
			w->err = -ENOMEM;
			return;
		}
		w->fb = n;
		w->fcap = ncap;
	}
	memcpy(w->fb + w->flen, data, len);
	w->flen += len;
}

static void op(struct pwriter *w, unsigned char c)
{
	emit(w, &c, 1);
}

static void put_le(unsigned char *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* Close the current FRAME (only ever between opcodes). */
static void end_frame(struct pwriter *w, int force)
{
	unsigned char hdr[9] = { 0x95 };

	if (w->err || (!force && w->flen < FRAME_TARGET) || !w->flen)
		return;
	put_le(hdr + 1, w->flen, 8);
	if (tm_out_write(&w->out, hdr, sizeof(hdr)) || tm_out_write(&w->out, w->fb, w->flen))
		w->err = w->out.err;
	w->flen = 0;
}

static void put_int(struct pwriter *w, uint64_t v)
{
	unsigned char b[11];

	if (v < 0x100) {
		b[0] = 'K', b[1] = (unsigned char)v;
		emit(w, b, 2);
	} else if (v < 0x10000) {
		b[0] = 'M';
		put_le(b + 1, v, 2);
		emit(w, b, 3);
	} else if (v < 0x80000000u) {
		b[0] = 'J';
		put_le(b + 1, v, 4);
		emit(w, b, 5);
	} else {
		/* LONG1: little-endian two's complement, a zero byte when the top bit is set. */
		unsigned n = 0;

		for (uint64_t t = v; t; t >>= 8)
			n++;
		if ((v >> (8 * n - 1)) & 1)
			n++;
		b[0] = 0x8a;
		b[1] = (unsigned char)n;
		put_le(b + 2, v, n > 8 ? 8 : n);
		if (n == 9)
			b[10] = 0;
		emit(w, b, 2 + n);
	}
}

static void memoize(struct pwriter *w)
{
	op(w, 0x94);
	w->nmemo++;
}

static void get(struct pwriter *w, uint32_t idx)
{
	unsigned char b[5];

	if (idx < 0x100) {
		b[0] = 'h', b[1] = (unsigned char)idx;
		emit(w, b, 2);
	} else {
		b[0] = 'j';
		put_le(b + 1, idx, 4);
		emit(w, b, 5);
	}
}

static void put_str(struct pwriter *w, const char *str)
{
	char *owned;
	const char *s = tm_utf8_escape(str, &owned);
	size_t len;
	unsigned char b[9];

	if (!s) {
		w->err = -ENOMEM;
		return;
	}
	len = strlen(s);

	if (len < 0x100) {
		b[0] = 0x8c, b[1] = (unsigned char)len;
		emit(w, b, 2);
	} else if (len <= UINT32_MAX) {
		b[0] = 'X';
		put_le(b + 1, len, 4);
		emit(w, b, 5);
	} else {
		b[0] = 0x8d;
		put_le(b + 1, len, 8);
		emit(w, b, 9);
	}
	emit(w, s, len);
	memoize(w);
	free(owned);
}

static struct tm_ptrmap_slot *lookup(struct pwriter *w, const void *ptr, uint64_t tag)
{
	struct tm_ptrmap_slot *s = w->err ? NULL : tm_ptrmap_lookup(&w->memo, ptr, tag);

	if (!s && !w->err)
		w->err = -ENOMEM;
	return s;
}

static void remember(struct pwriter *w, struct tm_ptrmap_slot *s, const void *ptr, uint64_t tag)
{
	s->ptr = ptr;
	s->tag = tag;
	s->value = w->nmemo - 1;
	w->memo.count++;
}

static void put_frame(struct pwriter *w, const struct tm_frame *f)
{
	uint64_t tag = f->lineno | (1ULL << 32);
	struct tm_ptrmap_slot *s = lookup(w, f->filename, tag);

	if (!s)
		return;
	if (s->ptr) {
		get(w, s->value);
		return;
	}
	{
		struct tm_ptrmap_slot *fs = lookup(w, f->filename, 0);

		if (!fs)
			return;
		if (fs->ptr) {
			get(w, fs->value);
		} else {
			put_str(w, f->filename);
			remember(w, fs, f->filename, 0);
		}
	}
	put_int(w, f->lineno);
	op(w, 0x86); /* TUPLE2 */
	memoize(w);
	/* The string insert may have grown the table: look the frame up again. */
	s = lookup(w, f->filename, tag);
	if (s)
		remember(w, s, f->filename, tag);
}

static void put_traceback(struct pwriter *w, const struct tm_traceback *tb)
{
	if (w->tb_memo[tb->index]) {
		get(w, w->tb_memo[tb->index] - 1);
		return;
	}
	if (tb->nframe > 3)
		op(w, '(');
	for (uint32_t i = 0; i < tb->nframe; i++)
		put_frame(w, &tb->frames[i]);
	op(w, tb->nframe > 3 ? 't' : (unsigned char)(0x84 + tb->nframe)); /* TUPLE or TUPLE1-3 */
	memoize(w);
	w->tb_memo[tb->index] = w->nmemo;
}

static void put_trace(struct pwriter *w, const struct tm_trace *t)
{
	op(w, '(');
	put_int(w, t->domain);
	put_int(w, t->size_bytes);
	put_traceback(w, t->traceback);
	if (t->total_nframe == TM_NFRAME_UNKNOWN)
		op(w, 'N');
	else
		put_int(w, t->total_nframe);
	op(w, 't');
}

static void put_header(struct pwriter *w)
{
	put_str(w, "tracemalloc");                 /* memo 0 */
	put_str(w, "Snapshot");                    /* memo 1 */
	op(w, 0x93), memoize(w);                   /* STACK_GLOBAL, memo 2 */
	op(w, ')'), op(w, 0x81), memoize(w);       /* Snapshot(), memo 3 */
	op(w, '}'), memoize(w), op(w, '(');        /* its state dict, memo 4 */
	put_str(w, "traces");                      /* memo 5 */
	get(w, 0);
	put_str(w, "_Traces");                     /* memo 6 */
	op(w, 0x93), memoize(w);                   /* memo 7 */
	op(w, ')'), op(w, 0x81), memoize(w);       /* _Traces(), memo 8 */
	op(w, '}'), memoize(w);                    /* memo 9 */
	put_str(w, "_traces");                     /* memo 10 */
	op(w, ']'), memoize(w);                    /* the list, memo 11 */
}

/* A sampled snapshot (sampling.h) as tracemalloc sees a full one: per
 * traceback and domain, as many traces as the estimated blocks, whose
 * sizes add up to the estimated bytes. */
static int by_traceback_domain(const void *a, const void *b, void *arg)
{
	const struct tm_trace *x = *(const struct tm_trace *const *)a;
	const struct tm_trace *y = *(const struct tm_trace *const *)b;

	(void)arg;
	if (x->traceback->index != y->traceback->index)
		return x->traceback->index < y->traceback->index ? -1 : 1;
	return x->domain < y->domain ? -1 : x->domain > y->domain;
}

static void put_estimated_traces(struct pwriter *w, const struct tm_snapshot *snap)
{
	const struct tm_trace **order = malloc((snap->ntraces ? snap->ntraces : 1) * sizeof(*order));
	size_t batch = 0;

	if (!order) {
		w->err = -ENOMEM;
		return;
	}
	for (size_t i = 0; i < snap->ntraces; i++)
		order[i] = &snap->traces[i];
	qsort_r(order, snap->ntraces, sizeof(*order), by_traceback_domain, NULL);
	for (size_t i = 0; i < snap->ntraces && !w->err;) {
		double es = 0, ec = 0;
		uint64_t bytes, blocks;
		size_t j = i;

		for (; j < snap->ntraces && by_traceback_domain(&order[i], &order[j], NULL) == 0; j++) {
			double wt = tm_sample_weight(order[j]->size_bytes, snap->meta.sample_interval_bytes);

			es += wt * (double)order[j]->size_bytes;
			ec += wt;
		}
		if (tm_sample_round(es, &bytes) || tm_sample_round(ec, &blocks)) {
			w->err = -EOVERFLOW;
			break;
		}
		if (!blocks)
			blocks = 1;
		for (uint64_t k = 0; k < blocks && !w->err; k++) {
			struct tm_trace t = *order[i];

			t.size_bytes = bytes / blocks + (k < bytes % blocks ? 1 : 0);
			if (!batch)
				op(w, '(');
			put_trace(w, &t);
			end_frame(w, 0);
			if (++batch == BATCH) {
				op(w, 'e');
				batch = 0;
			}
		}
		i = j;
	}
	if (batch)
		op(w, 'e');
	free(order);
}

static void put_traces(struct pwriter *w, const struct tm_snapshot *snap)
{
	if (snap->meta.sample_interval_bytes) {
		put_estimated_traces(w, snap);
		return;
	}
	for (size_t i = 0; i < snap->ntraces && !w->err; i += BATCH) {
		size_t n = snap->ntraces - i < BATCH ? snap->ntraces - i : BATCH;

		if (n > 1)
			op(w, '(');
		for (size_t k = 0; k < n; k++) {
			put_trace(w, &snap->traces[i + k]);
			end_frame(w, 0);
		}
		op(w, n > 1 ? 'e' : 'a'); /* APPENDS or APPEND */
	}
}

int tm_pickle_write(const struct tm_snapshot *snap, FILE *fp, char *err, size_t errlen)
{
	struct pwriter w = { 0 };
	static const unsigned char proto[] = { 0x80, 4 };
	size_t ntb = tm_snapshot_ntracebacks(snap);
	int ret;

	ret = tm_out_init(&w.out, fp, 1 << 16);
	if (ret)
		goto cleanup;
	w.tb_memo = calloc(ntb ? ntb : 1, sizeof(*w.tb_memo));
	w.fcap = FRAME_TARGET * 2;
	w.fb = malloc(w.fcap);
	if (!w.tb_memo || !w.fb) {
		ret = -ENOMEM;
		goto cleanup;
	}
	tm_out_write(&w.out, proto, sizeof(proto));
	put_header(&w);
	put_traces(&w, snap);
	op(&w, 's');                 /* _traces = list */
	op(&w, 'b');                 /* _Traces.__dict__.update */
	put_str(&w, "traceback_limit");
	put_int(&w, snap->traceback_limit);
	op(&w, 'u');                 /* traces = ..., traceback_limit = ... */
	op(&w, 'b');
	op(&w, '.');
	end_frame(&w, 1);
	ret = w.err ? w.err : tm_out_flush(&w.out);
	if (!ret && w.nmemo == UINT32_MAX)
		ret = -EOVERFLOW;
cleanup:
	if (ret)
		tm_io_errf(err, errlen, "cannot write pickle: %s", strerror(-ret));
	tm_out_release(&w.out);
	free(w.fb);
	tm_ptrmap_release(&w.memo);
	free(w.tb_memo);
	return ret;
}
