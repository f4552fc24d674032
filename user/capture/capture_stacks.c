/* Symbolized stacks, per traced process: stack id -> (filename, lineno)
 * frames. BPF announces each new stack on the ring buffer; tm_capture_poll
 * symbolizes it then, while its code objects certainly exist (the code object
 * of a module is freed when the module finishes, often long before a
 * snapshot). Stacks not announced (ring buffer full) are symbolized at the
 * snapshot. Filenames point into the process's symbolizer, which keeps them
 * until it is freed (symbolize.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "capture/capture_priv.h"

struct packed_frame {
	uint32_t loc;           /* index into the cache's locs[] */
	uint32_t lineno;
};

struct tm_resolved_stack {
	uint64_t id;
	uint32_t nframe;        /* frames kept (skipped prologue frames removed) */
	uint32_t total_nframe;  /* minus the skipped frames */
	struct packed_frame frames[];
};

static size_t loc_hash(const char *filename, const char *name)
{
	uint64_t h = ((uintptr_t)filename * 0x9e3779b97f4a7c15ULL) ^ (uintptr_t)name;

	return (size_t)((h * 0xbf58476d1ce4e5b9ULL) >> 17);
}

static int locs_rehash(struct tm_stack_cache *sc)
{
	size_t ncap = sc->loc_slots_cap ? 2 * sc->loc_slots_cap : 1024;
	uint32_t *n = calloc(ncap, sizeof(*n));

	if (!n)
		return -ENOMEM;
	for (size_t i = 0; i < sc->nlocs; i++) {
		size_t j = loc_hash(sc->locs[i].filename, sc->locs[i].name) & (ncap - 1);

		while (n[j])
			j = (j + 1) & (ncap - 1);
		n[j] = (uint32_t)i + 1;
	}
	free(sc->loc_slots);
	sc->loc_slots = n;
	sc->loc_slots_cap = ncap;
	return 0;
}

/* The index of (filename, name) in sc->locs, added if new; -ENOMEM. The
 * pointers are the symbolizer's (one per distinct string): compared as
 * pointers. */
static int64_t loc_index(struct tm_stack_cache *sc, const char *filename, const char *name)
{
	size_t j;

	if ((sc->nlocs + 1) * 2 > sc->loc_slots_cap && locs_rehash(sc))
		return -ENOMEM;
	for (j = loc_hash(filename, name) & (sc->loc_slots_cap - 1); sc->loc_slots[j];
	     j = (j + 1) & (sc->loc_slots_cap - 1)) {
		const struct tm_frame_loc *l = &sc->locs[sc->loc_slots[j] - 1];

		if (l->filename == filename && l->name == name)
			return sc->loc_slots[j] - 1;
	}
	if (sc->nlocs == sc->locs_cap) {
		size_t ncap = sc->locs_cap ? 2 * sc->locs_cap : 256;
		struct tm_frame_loc *n = ncap < UINT32_MAX ? realloc(sc->locs, ncap * sizeof(*n)) : NULL;

		if (!n)
			return -ENOMEM;
		sc->locs = n;
		sc->locs_cap = ncap;
	}
	sc->locs[sc->nlocs] = (struct tm_frame_loc){ filename, name };
	sc->loc_slots[j] = (uint32_t)++sc->nlocs;
	return sc->nlocs - 1;
}

static size_t slot_of(const struct tm_stack_cache *sc, uint64_t id)
{
	return (size_t)(id * 0x9e3779b97f4a7c15ULL) & (sc->cap - 1);
}

static int cache_grow(struct tm_stack_cache *sc)
{
	size_t ncap = sc->cap ? 2 * sc->cap : 1024;
	struct tm_resolved_stack **n = calloc(ncap, sizeof(*n));
	struct tm_stack_cache old = *sc;

	if (!n)
		return -ENOMEM;
	sc->slots = n;
	sc->cap = ncap;
	for (size_t i = 0; i < old.cap; i++) {
		struct tm_resolved_stack *r = old.slots[i];
		size_t j;

		if (!r)
			continue;
		for (j = slot_of(sc, r->id); sc->slots[j]; j = (j + 1) & (sc->cap - 1))
			;
		sc->slots[j] = r;
	}
	free(old.slots);
	return 0;
}

void tm_stack_cache_release(struct tm_stack_cache *sc)
{
	for (size_t i = 0; i < sc->cap; i++)
		free(sc->slots[i]);
	free(sc->slots);
	free(sc->locs);
	free(sc->loc_slots);
	memset(sc, 0, sizeof(*sc));
}

static struct tm_resolved_stack *cache_find(const struct tm_stack_cache *sc, uint64_t id)
{
	if (!sc->cap)
		return NULL;
	for (size_t j = slot_of(sc, id); sc->slots[j]; j = (j + 1) & (sc->cap - 1))
		if (sc->slots[j]->id == id)
			return sc->slots[j];
	return NULL;
}

static int cache_add(struct tm_stack_cache *sc, struct tm_resolved_stack *r)
{
	size_t j;
	int e;

	if ((sc->used + 1) * 2 > sc->cap) {
		e = cache_grow(sc);
		if (e)
			return e;
	}
	for (j = slot_of(sc, r->id); sc->slots[j]; j = (j + 1) & (sc->cap - 1))
		;
	sc->slots[j] = r;
	sc->used++;
	return 0;
}

/* Read stack id from the map and symbolize it into a new entry. */
static struct tm_resolved_stack *resolve(struct tm_capture *c, struct tm_capture_proc *p,
					 uint64_t id)
{
	struct tm_resolved_stack *r;
	struct tm_stack *st = c->stack_buf;
	uint32_t nf, skipped = 0;
	int64_t loc;

	if (bpf_map_lookup_elem(bpf_map__fd(c->skel->maps.stacks), &id, st))
		return NULL;
	nf = st->nframe < c->opts.max_frames ? st->nframe : c->opts.max_frames;
	r = calloc(1, sizeof(*r) + nf * sizeof(r->frames[0]));
	if (!r)
		return NULL;
	r->id = id;
	for (uint32_t i = 0; i < nf; i++) {
		const char *fn = NULL, *name = NULL;
		uint32_t line = 0;
		int rc;

		/* the object the frame saw (its identity), never another one */
		rc = tm_symbolize_frame_checked(p->sym, st->frames[i].code, st->frames[i].lasti,
						st->frames[i].check, &fn, &line, &name);

		if (rc == 1) {
			skipped++;
			continue;
		}
		if (rc < 0 || !fn) {
			fn = "<unknown>";
			line = 0;
			name = NULL;
		}
		loc = loc_index(&p->stacks, fn, name);
		if (loc < 0) {
			free(r);
			return NULL;
		}
		r->frames[r->nframe].loc = (uint32_t)loc;
		r->frames[r->nframe].lineno = line;
		r->nframe++;
	}
	r->total_nframe = st->total_nframe > skipped ? st->total_nframe - skipped : 0;
	return r;
}

/* Stack id of p, symbolized and cached on first use; NULL when it is not in
 * the map (or out of memory). */
static struct tm_resolved_stack *cached(struct tm_capture *c, struct tm_capture_proc *p,
					uint64_t id)
{
	struct tm_resolved_stack *r = cache_find(&p->stacks, id);

	if (r)
		return r;
	r = resolve(c, p, id);
	if (r && cache_add(&p->stacks, r)) {
		free(r);
		r = NULL;
	}
	return r;
}

int tm_capture_stack_frames(struct tm_capture *c, struct tm_capture_proc *p, uint64_t id,
			    struct tm_resolved_frame *frames, uint32_t max, uint32_t *nframe,
			    uint32_t *total_nframe)
{
	struct tm_resolved_stack *r = cached(c, p, id);
	uint32_t n;

	if (!r)
		return -ENOENT;
	n = r->nframe < max ? r->nframe : max;
	for (uint32_t i = 0; i < n; i++) {
		const struct tm_frame_loc *l = &p->stacks.locs[r->frames[i].loc];

		frames[i] = (struct tm_resolved_frame){ .filename = l->filename,
							.lineno = r->frames[i].lineno,
							.name = l->name };
	}
	*nframe = n;
	*total_nframe = r->total_nframe;
	return 0;
}

void tm_capture_stack_announced(struct tm_capture *c, pid_t pid, uint64_t id)
{
	struct tm_capture_proc *p = tm_capture_proc_find(c, pid);

	if (p)
		cached(c, p, id);
}

void tm_capture_begin_pass(struct tm_capture_proc *p)
{
	p->pass++;
	if (p->sym)
		tm_symbolizer_begin_pass(p->sym);
}
