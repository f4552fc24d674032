/* Filters. fnmatch.translate() turns a shell pattern into a regular
 * expression; we port that translation step by step (so its corner cases,
 * such as dropped reversed ranges, come out the same) into a list of
 * one-code-point tokens and stars, then match with the classic glob
 * algorithm (retry from the last star), which accepts exactly the strings
 * the regular expression accepts. */
#include "core/filter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { TOK_LIT, TOK_ANY, TOK_STAR, TOK_CLASS };

struct glob_tok {
	uint32_t kind;
	uint32_t cp;  /* TOK_LIT */
	uint32_t cls; /* TOK_CLASS: index into classes */
};

struct glob_class {
	int negate;
	size_t first, n; /* ranges[first .. first+n) */
};

struct tm_glob {
	int never; /* an empty set "(?!)": matches nothing */
	struct glob_tok *toks;
	size_t ntoks;
	struct glob_class *classes;
	size_t nclasses;
	uint32_t (*ranges)[2];
	size_t nranges;
};

/* Code points of UTF-8 with lone surrogates (WTF-8, as the pickle reader
 * stores them); a byte that starts no valid sequence maps to U+DC00+byte, as
 * Python's surrogateescape would. *out is malloc'ed. */
static int decode_cps(const char *s, uint32_t **out, size_t *n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s), o = 0;
	uint32_t *cps = malloc((len + 1) * sizeof(*cps));

	if (!cps)
		return -ENOMEM;
	for (size_t i = 0; i < len;) {
		uint32_t c = p[i];
		size_t k = 1;

		if (c >= 0xc2 && c <= 0xdf && i + 1 < len && (p[i + 1] & 0xc0) == 0x80) {
			c = ((c & 0x1f) << 6) | (p[i + 1] & 0x3f);
			k = 2;
		} else if (c >= 0xe0 && c <= 0xef && i + 2 < len && (p[i + 1] & 0xc0) == 0x80 &&
			   (p[i + 2] & 0xc0) == 0x80) {
			c = ((c & 0x0f) << 12) | ((uint32_t)(p[i + 1] & 0x3f) << 6) | (p[i + 2] & 0x3f);
			k = 3;
			if (c < 0x800) {
				c = 0xdc00 + p[i];
				k = 1;
			}
		} else if (c >= 0xf0 && c <= 0xf4 && i + 3 < len && (p[i + 1] & 0xc0) == 0x80 &&
			   (p[i + 2] & 0xc0) == 0x80 && (p[i + 3] & 0xc0) == 0x80) {
			c = ((c & 0x07) << 18) | ((uint32_t)(p[i + 1] & 0x3f) << 12) |
			    ((uint32_t)(p[i + 2] & 0x3f) << 6) | (p[i + 3] & 0x3f);
			k = 4;
			if (c < 0x10000 || c > 0x10ffff) {
				c = 0xdc00 + p[i];
				k = 1;
			}
		} else if (c >= 0x80) {
			c = 0xdc00 + c;
		}
		cps[o++] = c;
		i += k;
	}
	*out = cps;
	*n = o;
	return 0;
}

/* A character of the regular expression's set: escaped (literal) or the
 * bare '-' that fnmatch puts between two chunks to make a range. */
struct set_item {
	uint32_t cp;
	int dash;
};

struct cp_vec {
	uint32_t *v;
	size_t n, cap;
};

static int vec_push(struct cp_vec *a, uint32_t cp)
{
	if (a->n == a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 16;
		uint32_t *nv = realloc(a->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		a->v = nv;
		a->cap = ncap;
	}
	a->v[a->n++] = cp;
	return 0;
}

static int glob_push_tok(struct tm_glob *g, uint32_t kind, uint32_t cp, uint32_t cls, size_t *cap)
{
	if (kind == TOK_STAR && g->ntoks && g->toks[g->ntoks - 1].kind == TOK_STAR)
		return 0; /* "**" is "*" */
	if (g->ntoks == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct glob_tok *nt = realloc(g->toks, ncap * sizeof(*nt));

		if (!nt)
			return -ENOMEM;
		g->toks = nt;
		*cap = ncap;
	}
	g->toks[g->ntoks++] = (struct glob_tok){ kind, cp, cls };
	return 0;
}

static int glob_push_range(struct tm_glob *g, uint32_t lo, uint32_t hi)
{
	uint32_t(*nr)[2] = realloc(g->ranges, (g->nranges + 1) * sizeof(*nr));

	if (!nr)
		return -ENOMEM;
	g->ranges = nr;
	g->ranges[g->nranges][0] = lo;
	g->ranges[g->nranges][1] = hi;
	g->nranges++;
	return 0;
}

/* The chunks of a set containing '-' (fnmatch.translate, 3.10+): split at
 * range hyphens, drop reversed ranges, join with bare dashes. */
static int set_items_with_ranges(const uint32_t *p, size_t i, size_t j, struct set_item *items,
				 size_t *nitems)
{
	size_t maxchunks = j - i + 1, nchunks = 0, k = p[i] == '!' ? i + 2 : i + 1, n = 0;
	struct cp_vec *chunks = calloc(maxchunks, sizeof(*chunks));
	int err = 0;

	if (!chunks)
		return -ENOMEM;
	for (;;) {
		while (k < j && p[k] != '-')
			k++;
		if (k >= j)
			break;
		for (size_t x = i; x < k && !err; x++)
			err = vec_push(&chunks[nchunks], p[x]);
		nchunks++;
		i = k + 1;
		k = k + 3;
	}
	if (i < j) {
		for (size_t x = i; x < j && !err; x++)
			err = vec_push(&chunks[nchunks], p[x]);
		nchunks++;
	} else if (nchunks) {
		err = vec_push(&chunks[nchunks - 1], '-');
	}
	if (err)
		goto cleanup;
	for (size_t c = nchunks ? nchunks - 1 : 0; c > 0; c--) {
		struct cp_vec *a = &chunks[c - 1], *b = &chunks[c];

		if (!a->n || !b->n || a->v[a->n - 1] <= b->v[0])
			continue;
		a->n--;
		for (size_t x = 1; x < b->n && !err; x++)
			err = vec_push(a, b->v[x]);
		if (err)
			goto cleanup;
		free(b->v);
		memmove(&chunks[c], &chunks[c + 1], (nchunks - c - 1) * sizeof(chunks[0]));
		nchunks--;
		memset(&chunks[nchunks], 0, sizeof(chunks[0]));
	}
	for (size_t c = 0; c < nchunks; c++) {
		if (c)
			items[n++] = (struct set_item){ '-', 1 };
		for (size_t x = 0; x < chunks[c].n; x++)
			items[n++] = (struct set_item){ chunks[c].v[x], 0 };
	}
	*nitems = n;
cleanup:
	for (size_t c = 0; c < maxchunks; c++)
		free(chunks[c].v);
	free(chunks);
	return err;
}

/* The set p[i..j) ("[" at i-1, "]" at j). Appends a class, ANY, or marks the
 * pattern as never matching, like translate()'s three outcomes. */
static int glob_add_set(struct tm_glob *g, const uint32_t *p, size_t i, size_t j, size_t *tokcap)
{
	struct set_item *items = malloc((2 * (j - i) + 2) * sizeof(*items));
	size_t nitems = 0, x = 0, first;
	int err = 0, negate = 0, has_dash = 0;

	if (!items)
		return -ENOMEM;
	for (size_t k = i; k < j; k++)
		has_dash |= p[k] == '-';
	if (!has_dash) {
		for (size_t k = i; k < j; k++)
			items[nitems++] = (struct set_item){ p[k], 0 };
	} else if ((err = set_items_with_ranges(p, i, j, items, &nitems))) {
		goto cleanup;
	}
	if (nitems == 0) {
		g->never = 1; /* "(?!)" */
		goto cleanup;
	}
	if (nitems == 1 && items[0].cp == '!' && !items[0].dash) {
		err = glob_push_tok(g, TOK_ANY, 0, 0, tokcap);
		goto cleanup;
	}
	if (items[0].cp == '!' && !items[0].dash) {
		negate = 1;
		x = 1;
	}
	/* The regular expression's set parser: item, or item '-' item. */
	first = g->nranges;
	while (x < nitems && !err) {
		uint32_t lo = items[x++].cp, hi = lo;

		if (x + 1 < nitems && items[x].dash) {
			hi = items[x + 1].cp;
			x += 2;
			if (hi < lo) {
				err = -EINVAL; /* re.error; translate() never produces it */
				break;
			}
		}
		err = glob_push_range(g, lo, hi);
	}
	if (err)
		goto cleanup;
	g->classes = realloc(g->classes, (g->nclasses + 1) * sizeof(*g->classes));
	if (!g->classes) {
		err = -ENOMEM;
		goto cleanup;
	}
	g->classes[g->nclasses] = (struct glob_class){ negate, first, g->nranges - first };
	err = glob_push_tok(g, TOK_CLASS, 0, (uint32_t)g->nclasses++, tokcap);
cleanup:
	free(items);
	return err;
}

static void glob_free(struct tm_glob *g)
{
	if (!g)
		return;
	free(g->toks);
	free(g->classes);
	free(g->ranges);
	free(g);
}

static struct tm_glob *glob_compile(const char *pattern)
{
	struct tm_glob *g = calloc(1, sizeof(*g));
	size_t n, i = 0, tokcap = 0;
	uint32_t *p = NULL;
	int err;

	if (!g)
		return NULL;
	err = decode_cps(pattern, &p, &n);
	while (!err && i < n) {
		uint32_t c = p[i++];
		size_t j;

		if (c == '*') {
			err = glob_push_tok(g, TOK_STAR, 0, 0, &tokcap);
		} else if (c == '?') {
			err = glob_push_tok(g, TOK_ANY, 0, 0, &tokcap);
		} else if (c == '[') {
			j = i;
			if (j < n && p[j] == '!')
				j++;
			if (j < n && p[j] == ']')
				j++;
			while (j < n && p[j] != ']')
				j++;
			if (j >= n) {
				err = glob_push_tok(g, TOK_LIT, '[', 0, &tokcap);
			} else {
				err = glob_add_set(g, p, i, j, &tokcap);
				i = j + 1;
			}
		} else {
			err = glob_push_tok(g, TOK_LIT, c, 0, &tokcap);
		}
	}
	free(p);
	if (err) {
		glob_free(g);
		errno = -err;
		return NULL;
	}
	return g;
}

static int tok_match(const struct tm_glob *g, const struct glob_tok *t, uint32_t c)
{
	const struct glob_class *cls;
	int in = 0;

	switch (t->kind) {
	case TOK_LIT:
		return t->cp == c;
	case TOK_ANY:
		return 1;
	case TOK_CLASS:
		cls = &g->classes[t->cls];
		for (size_t r = cls->first; r < cls->first + cls->n && !in; r++)
			in = g->ranges[r][0] <= c && c <= g->ranges[r][1];
		return in ^ cls->negate;
	}
	return 0;
}

/* Every non-star token matches exactly one code point, so backtracking to
 * the most recent star is enough (the leftmost fit of each segment is as
 * good as any later one). */
static int glob_match(const struct tm_glob *g, const uint32_t *s, size_t n)
{
	size_t ti = 0, si = 0, star_t = SIZE_MAX, star_s = 0;

	if (g->never)
		return 0;
	while (si < n) {
		if (ti < g->ntoks && g->toks[ti].kind == TOK_STAR) {
			star_t = ti++;
			star_s = si;
		} else if (ti < g->ntoks && tok_match(g, &g->toks[ti], s[si])) {
			ti++;
			si++;
		} else if (star_t != SIZE_MAX) {
			ti = star_t + 1;
			si = ++star_s;
		} else {
			return 0;
		}
	}
	while (ti < g->ntoks && g->toks[ti].kind == TOK_STAR)
		ti++;
	return ti == g->ntoks;
}

static int glob_match_str(const struct tm_glob *g, const char *s)
{
	uint32_t *cps;
	size_t n;
	int m;

	if (decode_cps(s, &cps, &n))
		return -ENOMEM;
	m = glob_match(g, cps, n);
	free(cps);
	return m;
}

char *tm_normalize_filename(const char *filename)
{
	size_t n = strlen(filename);
	char *s = strdup(filename);

	if (!s)
		return NULL;
	/* os.path.normcase() is the identity on POSIX. */
	if (n >= 4 && !strcmp(s + n - 4, ".pyc"))
		s[n - 1] = '\0';
	return s;
}

int tm_fnmatch(const char *filename, const char *pattern)
{
	struct tm_glob *g = glob_compile(pattern);
	int m;

	if (!g)
		return -errno;
	m = glob_match_str(g, filename);
	glob_free(g);
	return m;
}

int tm_filter_init(struct tm_filter *f, int inclusive, const char *pattern, int has_lineno,
		   int64_t lineno, int all_frames, int has_domain, uint32_t domain)
{
	memset(f, 0, sizeof(*f));
	f->inclusive = !!inclusive;
	f->has_lineno = !!has_lineno;
	f->lineno = lineno;
	f->all_frames = !!all_frames;
	f->has_domain = !!has_domain;
	f->domain = domain;
	if (!pattern)
		return -EINVAL;
	f->pattern = tm_normalize_filename(pattern);
	if (!f->pattern)
		return -ENOMEM;
	f->glob = glob_compile(f->pattern);
	if (!f->glob)
		return -errno;
	return 0;
}

void tm_domain_filter_init(struct tm_filter *f, int inclusive, uint32_t domain)
{
	memset(f, 0, sizeof(*f));
	f->inclusive = !!inclusive;
	f->is_domain_filter = 1;
	f->has_domain = 1;
	f->domain = domain;
}

void tm_filter_release(struct tm_filter *f)
{
	if (!f)
		return;
	free(f->pattern);
	glob_free(f->glob);
	f->pattern = NULL;
	f->glob = NULL;
}

/* Filter._match_frame_impl. Negative errno on allocation failure. */
static int match_frame_impl(const struct tm_filter *f, const struct tm_frame *frame)
{
	char *name = tm_normalize_filename(frame->filename);
	int m;

	if (!name)
		return -ENOMEM;
	m = glob_match_str(f->glob, name);
	free(name);
	if (m <= 0)
		return m;
	return !f->has_lineno || (int64_t)frame->lineno == f->lineno;
}

/* Filter._match_traceback. */
static int match_traceback(const struct tm_filter *f, const struct tm_traceback *tb)
{
	int m;

	if (!f->all_frames) {
		m = match_frame_impl(f, &tb->frames[0]);
		return m < 0 ? m : m ^ !f->inclusive;
	}
	for (uint32_t i = 0; i < tb->nframe; i++) {
		m = match_frame_impl(f, &tb->frames[i]);
		if (m)
			return m < 0 ? m : f->inclusive;
	}
	return !f->inclusive;
}

static int combine_domain(const struct tm_filter *f, int res, uint32_t domain)
{
	if (!f->has_domain)
		return res;
	if (f->inclusive)
		return res && domain == f->domain;
	return res || domain != f->domain;
}

int tm_filter_match_trace(const struct tm_filter *f, const struct tm_trace *trace)
{
	int res;

	if (f->is_domain_filter)
		return (trace->domain == f->domain) ^ !f->inclusive;
	res = match_traceback(f, trace->traceback);
	if (res < 0)
		return res;
	return combine_domain(f, res, trace->domain);
}

/* Filter results per (filter, traceback) are computed once: the traceback
 * part of a match depends on nothing else. */
struct match_cache {
	signed char *res; /* nfilters x ntracebacks, -1 = not yet known */
	size_t ntb;
};

static int cached_match(const struct tm_filter *filters, size_t fi, struct match_cache *mc,
			const struct tm_trace *trace)
{
	const struct tm_filter *f = &filters[fi];
	signed char *slot;
	int m;

	if (f->is_domain_filter)
		return (trace->domain == f->domain) ^ !f->inclusive;
	slot = &mc->res[fi * mc->ntb + trace->traceback->index];
	if (*slot < 0) {
		m = match_traceback(f, trace->traceback);
		if (m < 0)
			return m;
		*slot = (signed char)m;
	}
	return combine_domain(f, *slot, trace->domain);
}

/* Snapshot._filter_trace. 1 keep, 0 drop, negative errno. */
static int keep_trace(const struct tm_filter *filters, size_t nfilters, struct match_cache *mc,
		      const struct tm_trace *trace)
{
	int have_include = 0, included = 0, m;

	for (size_t i = 0; i < nfilters && !included; i++) {
		if (!filters[i].inclusive)
			continue;
		have_include = 1;
		m = cached_match(filters, i, mc, trace);
		if (m < 0)
			return m;
		included = m;
	}
	if (have_include && !included)
		return 0;
	for (size_t i = 0; i < nfilters; i++) {
		if (filters[i].inclusive)
			continue;
		m = cached_match(filters, i, mc, trace);
		if (m <= 0)
			return m;
	}
	return 1;
}

static int copy_meta(struct tm_snapshot_meta *dst, const struct tm_snapshot_meta *src)
{
	int err;

	if ((err = tm_snapshot_meta_set(&dst->cmdline, src->cmdline)) ||
	    (err = tm_snapshot_meta_set(&dst->python_version, src->python_version)) ||
	    (err = tm_snapshot_meta_set(&dst->hostname, src->hostname)) ||
	    (err = tm_snapshot_meta_set(&dst->coverage_mode, src->coverage_mode)))
		return err;
	dst->pid = src->pid;
	dst->start_ns = src->start_ns;
	dst->snapshot_ns = src->snapshot_ns;
	dst->traced_current_bytes = src->traced_current_bytes;
	dst->traced_peak_bytes = src->traced_peak_bytes;
	dst->has_traced_memory = src->has_traced_memory;
	dst->sample_interval_bytes = src->sample_interval_bytes;
	dst->ndrops = src->ndrops;
	memcpy(dst->drops, src->drops, sizeof(dst->drops));
	return 0;
}

/* The traceback tb of the source snapshot, interned in dst. */
static const struct tm_traceback *copy_traceback(struct tm_snapshot *dst,
						 const struct tm_traceback *tb)
{
	struct tm_frame *frames = malloc(tb->nframe * sizeof(*frames));
	const struct tm_traceback *out = NULL;

	if (!frames)
		return NULL;
	for (uint32_t i = 0; i < tb->nframe; i++) {
		const char *fn = tb->frames[i].filename;

		frames[i].filename = tm_snapshot_intern_str(dst, fn, strlen(fn));
		frames[i].lineno = tb->frames[i].lineno;
		frames[i].name = NULL;
		if (!frames[i].filename)
			goto cleanup;
		if (tb->frames[i].name &&
		    !(frames[i].name = tm_snapshot_intern_str(dst, tb->frames[i].name,
							      strlen(tb->frames[i].name))))
			goto cleanup;
	}
	out = tm_snapshot_intern_traceback(dst, frames, tb->nframe);
cleanup:
	free(frames);
	return out;
}

struct tm_snapshot *tm_snapshot_filter_traces(const struct tm_snapshot *snap,
					      const struct tm_filter *filters, size_t nfilters)
{
	return tm_snapshot_filter_traces_ex(snap, filters, nfilters, NULL, NULL);
}

struct tm_snapshot *tm_snapshot_filter_traces_ex(const struct tm_snapshot *snap,
						 const struct tm_filter *filters, size_t nfilters,
						 tm_trace_pred_fn pred, void *ctx)
{
	size_t ntb = tm_snapshot_ntracebacks(snap);
	struct match_cache mc = { NULL, ntb };
	const struct tm_traceback **map = NULL;
	struct tm_snapshot *out = tm_snapshot_new();
	int err = -ENOMEM;

	if (!out)
		goto cleanup;
	out->traceback_limit = snap->traceback_limit;
	map = calloc(ntb ? ntb : 1, sizeof(*map));
	if (nfilters && ntb > SIZE_MAX / nfilters)
		goto cleanup;
	mc.res = malloc(nfilters * ntb + 1);
	if (!map || !mc.res)
		goto cleanup;
	memset(mc.res, -1, nfilters * ntb + 1);
	if ((err = copy_meta(&out->meta, &snap->meta)))
		goto cleanup;
	for (size_t i = 0; i < snap->ntraces; i++) {
		struct tm_trace t = snap->traces[i];
		uint32_t idx = t.traceback->index;
		int keep = pred ? pred(ctx, &t) : 1;

		if (keep > 0)
			keep = keep_trace(filters, nfilters, &mc, &t);

		if (keep < 0) {
			err = keep;
			goto cleanup;
		}
		if (!keep)
			continue;
		if (!map[idx] && !(map[idx] = copy_traceback(out, t.traceback))) {
			err = -errno;
			goto cleanup;
		}
		t.traceback = map[idx];
		if ((err = tm_snapshot_add_trace(out, &t)))
			goto cleanup;
	}
	err = 0;
cleanup:
	free(map);
	free(mc.res);
	if (err) {
		tm_snapshot_free(out);
		errno = -err;
		return NULL;
	}
	return out;
}
