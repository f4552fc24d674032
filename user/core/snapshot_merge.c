/* Merging snapshots (snapshot_merge.h). Each part's tracebacks are
 * re-interned once (a map from the part's traceback index to the merged
 * traceback), then its traces are appended through that map: a part of a
 * million traces sharing a few thousand tracebacks costs a few thousand
 * interning lookups. */
#include "core/snapshot_merge.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The metadata strings merged by distinct value. */
enum { V_CMDLINE, V_PYTHON, V_HOST, V_COVERAGE, V_NFIELDS };

struct value_list {
	char **v; /* distinct values in order of first appearance; NULL: a part had none */
	size_t n;
};

/* Where each part's traces start in the merge, and its snapshot time:
 * allocation times are shifted once, in tm_merge_take. */
struct part_range {
	size_t first;
	uint64_t snapshot_ns;
};

struct tm_merge_state {
	struct value_list f[V_NFIELDS];
	struct part_range *parts;
	size_t cap;
};

static char **meta_field(struct tm_snapshot_meta *m, int f)
{
	switch (f) {
	case V_CMDLINE: return &m->cmdline;
	case V_PYTHON: return &m->python_version;
	case V_HOST: return &m->hostname;
	default: return &m->coverage_mode;
	}
}

static const char *meta_value(const struct tm_snapshot_meta *m, int f)
{
	switch (f) {
	case V_CMDLINE: return m->cmdline;
	case V_PYTHON: return m->python_version;
	case V_HOST: return m->hostname;
	default: return m->coverage_mode;
	}
}

static void say(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int tm_merge_init(struct tm_merge *m)
{
	memset(m, 0, sizeof(*m));
	m->snap = tm_snapshot_new();
	m->state = calloc(1, sizeof(*m->state));
	if (!m->snap || !m->state)
		return -ENOMEM;
	return 0;
}

void tm_merge_release(struct tm_merge *m)
{
	if (!m)
		return;
	if (m->state) {
		for (int f = 0; f < V_NFIELDS; f++) {
			for (size_t i = 0; i < m->state->f[f].n; i++)
				free(m->state->f[f].v[i]);
			free(m->state->f[f].v);
		}
		free(m->state->parts);
		free(m->state);
	}
	tm_snapshot_free(m->snap);
	memset(m, 0, sizeof(*m));
}

/* Each part's blocks keep their age against the merge's (latest) snapshot
 * time; a part without a snapshot time has no ages, so no times. */
static void shift_times(struct tm_merge *m)
{
	struct tm_snapshot *snap = m->snap;
	uint64_t now = snap->meta.snapshot_ns;

	for (size_t p = 0; p < m->nparts; p++) {
		const struct part_range *r = &m->state->parts[p];
		size_t end = p + 1 < m->nparts ? m->state->parts[p + 1].first : snap->ntraces;

		for (size_t i = r->first; i < end; i++) {
			uint64_t *t = &snap->traces[i].alloc_ns;

			if (!r->snapshot_ns || (*t && *t > UINT64_MAX - (now - r->snapshot_ns)))
				*t = 0;
			else if (*t)
				*t += now - r->snapshot_ns;
		}
	}
}

struct tm_snapshot *tm_merge_take(struct tm_merge *m)
{
	struct tm_snapshot *snap = m->snap;

	if (snap)
		shift_times(m);
	m->snap = NULL;
	return snap;
}

static int value_seen(const struct value_list *l, const char *v)
{
	for (size_t i = 0; i < l->n; i++) {
		if (!l->v[i] ? !v : v && !strcmp(l->v[i], v))
			return 1;
	}
	return 0;
}

/* The field's merged value: the one distinct value, else all of them joined
 * ("?" for none). */
static int value_render(const struct value_list *l, char **field)
{
	size_t len = 1, sep = strlen(TM_MERGE_SEPARATOR);
	char *s, *p;

	if (l->n <= 1)
		return tm_snapshot_meta_set(field, l->n ? l->v[0] : NULL);
	for (size_t i = 0; i < l->n; i++)
		len += (l->v[i] ? strlen(l->v[i]) : 1) + sep;
	s = p = malloc(len);
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < l->n; i++)
		p += sprintf(p, "%s%s", i ? TM_MERGE_SEPARATOR : "", l->v[i] ? l->v[i] : "?");
	free(*field);
	*field = s;
	return 0;
}

static int value_add(struct value_list *l, const char *v, char **field)
{
	char **nv, *copy = NULL;

	if (value_seen(l, v))
		return 0;
	if (v && !(copy = strdup(v)))
		return -ENOMEM;
	nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
	if (!nv) {
		free(copy);
		return -ENOMEM;
	}
	l->v = nv;
	l->v[l->n++] = copy;
	return value_render(l, field);
}

static int add_u64(uint64_t *acc, uint64_t v)
{
	if (*acc > UINT64_MAX - v)
		return -EOVERFLOW;
	*acc += v;
	return 0;
}

/* Checked before anything of the part is merged: the one refusal that
 * depends on what the part is rather than on resources. */
static int check_sampling(const struct tm_merge *m, const struct tm_snapshot *part, char *err,
			  size_t errlen)
{
	uint64_t have = m->snap->meta.sample_interval_bytes, got = part->meta.sample_interval_bytes;

	if (!m->nparts || have == got)
		return 0;
	if (!have || !got)
		say(err, errlen,
		    "%s, the snapshots before it %s: sampled and full snapshots do not merge (a "
		    "pickle of a sampled one holds its estimates as full traces: convert it first)",
		    got ? "sampled" : "not sampled", got ? "are not" : "are sampled");
	else
		say(err, errlen,
		    "sampled every %llu bytes, the snapshots before it every %llu: only snapshots "
		    "sampled at the same interval merge",
		    (unsigned long long)got, (unsigned long long)have);
	return -EINVAL;
}

static int merge_meta(struct tm_merge *m, const struct tm_snapshot *part)
{
	struct tm_snapshot_meta *d = &m->snap->meta;
	const struct tm_snapshot_meta *s = &part->meta;
	int err = 0;

	for (int f = 0; f < V_NFIELDS && !err; f++)
		err = value_add(&m->state->f[f], meta_value(s, f), meta_field(d, f));
	for (uint32_t i = 0; i < s->ndrops && i < TM_MAX_DROP_COUNTERS && !err; i++)
		err = tm_snapshot_meta_add_drop(d, s->drops[i].name, s->drops[i].count);
	if (err)
		return err;
	if (!m->nparts) {
		d->pid = s->pid;
		m->snap->traceback_limit = part->traceback_limit;
		d->sample_interval_bytes = s->sample_interval_bytes;
		d->has_traced_memory = s->has_traced_memory;
	} else if (d->pid != s->pid) {
		d->pid = -1;
	}
	if (s->start_ns && (!d->start_ns || s->start_ns < d->start_ns))
		d->start_ns = s->start_ns;
	if (s->snapshot_ns > d->snapshot_ns)
		d->snapshot_ns = s->snapshot_ns;
	if (!s->has_traced_memory)
		d->has_traced_memory = 0;
	if (d->has_traced_memory &&
	    ((err = add_u64(&d->traced_current_bytes, s->traced_current_bytes)) ||
	     (err = add_u64(&d->traced_peak_bytes, s->traced_peak_bytes))))
		return err;
	if (!d->has_traced_memory)
		d->traced_current_bytes = d->traced_peak_bytes = 0;
	if (part->traceback_limit > m->snap->traceback_limit)
		m->snap->traceback_limit = part->traceback_limit;
	return 0;
}

static const char *intern(struct tm_snapshot *dst, const char *s)
{
	return s ? tm_snapshot_intern_str(dst, s, strlen(s)) : NULL;
}

/* tb of a part, interned in dst by (filename, lineno); frames is scratch
 * room for TM_MAX_FRAMES frames. */
static const struct tm_traceback *reintern(struct tm_snapshot *dst, const struct tm_traceback *tb,
					   struct tm_frame *frames)
{
	for (uint32_t i = 0; i < tb->nframe; i++) {
		frames[i].lineno = tb->frames[i].lineno;
		frames[i].filename = intern(dst, tb->frames[i].filename);
		frames[i].name = intern(dst, tb->frames[i].name);
		if (!frames[i].filename || (tb->frames[i].name && !frames[i].name))
			return NULL;
	}
	return tm_snapshot_intern_traceback(dst, frames, tb->nframe);
}

/* Every trace of part, appended to dst. */
static int merge_traces(struct tm_snapshot *dst, const struct tm_snapshot *part)
{
	size_t ntb = tm_snapshot_ntracebacks(part);
	const struct tm_traceback **map = calloc(ntb ? ntb : 1, sizeof(*map));
	struct tm_frame *frames = malloc(TM_MAX_FRAMES * sizeof(*frames));
	int err = -ENOMEM;

	if (!map || !frames)
		goto cleanup;
	for (size_t i = 0; i < ntb; i++) {
		map[i] = reintern(dst, tm_snapshot_traceback_at(part, i), frames);
		if (!map[i]) {
			err = -errno;
			goto cleanup;
		}
	}
	if ((err = tm_snapshot_reserve(dst, part->ntraces)))
		goto cleanup;
	for (size_t i = 0; i < part->ntraces; i++) {
		struct tm_trace t = part->traces[i];

		t.traceback = map[t.traceback->index];
		if ((err = tm_snapshot_add_trace(dst, &t)))
			goto cleanup;
	}
	err = 0;
cleanup:
	free(frames);
	free(map);
	return err;
}

static int note_part(struct tm_merge_state *st, size_t nparts, size_t first, uint64_t snapshot_ns)
{
	if (nparts == st->cap) {
		size_t ncap = st->cap ? st->cap * 2 : 16;
		struct part_range *n = realloc(st->parts, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		st->parts = n;
		st->cap = ncap;
	}
	st->parts[nparts] = (struct part_range){ first, snapshot_ns };
	return 0;
}

int tm_merge_add(struct tm_merge *m, const struct tm_snapshot *part, char *err, size_t errlen)
{
	int ret = check_sampling(m, part, err, errlen);

	if (ret)
		return ret;
	ret = note_part(m->state, m->nparts, m->snap->ntraces, part->meta.snapshot_ns);
	if (!ret)
		ret = merge_meta(m, part);
	if (!ret)
		ret = merge_traces(m->snap, part);
	if (ret == -ENOSPC)
		say(err, errlen, "more than %d distinct drop counters", TM_MAX_DROP_COUNTERS);
	else if (ret == -EOVERFLOW)
		say(err, errlen, "the merged sums do not fit in 64 bits");
	else if (ret)
		say(err, errlen, "%s", strerror(-ret));
	if (!ret)
		m->nparts++;
	return ret;
}

struct tm_snapshot *tm_snapshot_merge(const struct tm_snapshot *const *parts, size_t nparts,
				      char *err, size_t errlen)
{
	struct tm_merge m;
	struct tm_snapshot *out = NULL;
	int ret = tm_merge_init(&m);

	if (ret)
		say(err, errlen, "%s", strerror(-ret));
	for (size_t i = 0; i < nparts && !ret; i++)
		ret = tm_merge_add(&m, parts[i], err, errlen);
	if (!ret)
		out = tm_merge_take(&m);
	tm_merge_release(&m);
	if (!out)
		errno = -ret;
	return out;
}
