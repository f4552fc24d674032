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

struct tm_resolved_stack {
	uint64_t id;
	uint32_t nframe;        /* frames kept (skipped prologue frames removed) */
	uint32_t total_nframe;  /* minus the skipped frames */
	struct tm_resolved_frame frames[];
};

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
		r->frames[r->nframe].filename = fn;
		r->frames[r->nframe].name = name;
		r->frames[r->nframe].lineno = line;
		r->nframe++;
	}
	r->total_nframe = st->total_nframe > skipped ? st->total_nframe - skipped : 0;
	return r;
}

int tm_capture_stack_frames(struct tm_capture *c, struct tm_capture_proc *p, uint64_t id,
			    const struct tm_resolved_frame **frames, uint32_t *nframe,
			    uint32_t *total_nframe)
{
	struct tm_resolved_stack *r = cache_find(&p->stacks, id);
	int e;

	if (!r) {
		r = resolve(c, p, id);
		if (!r)
			return -ENOENT;
		e = cache_add(&p->stacks, r);
		if (e) {
			free(r);
			return e;
		}
	}
	*frames = r->frames;
	*nframe = r->nframe;
	*total_nframe = r->total_nframe;
	return 0;
}

void tm_capture_stack_announced(struct tm_capture *c, pid_t pid, uint64_t id)
{
	struct tm_capture_proc *p = tm_capture_proc_find(c, pid);
	const struct tm_resolved_frame *f;
	uint32_t n, total;

	if (p)
		tm_capture_stack_frames(c, p, id, &f, &n, &total);
}

void tm_capture_begin_pass(struct tm_capture_proc *p)
{
	p->pass++;
	if (p->sym)
		tm_symbolizer_begin_pass(p->sym);
}
