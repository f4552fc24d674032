/* Stacks no live block needs any more (tm_capture_collect_stacks). The
 * `stacks` map is shared by every traced process and BPF only ever adds
 * to it; a long system-wide session (processes come and go, blocks die)
 * would fill it and then drop new stacks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "capture/capture_priv.h"

/* An open-addressing set of stack ids (0 is never an id). */
struct tm_stack_idset {
	uint64_t *v;
	size_t cap, n;
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static int set_add(struct tm_stack_idset *s, uint64_t id)
{
	if (!id)
		return 0;
	if (2 * (s->n + 1) > s->cap) {
		struct tm_stack_idset g = { calloc(s->cap ? 2 * s->cap : 4096, 8), s->cap ? 2 * s->cap : 4096, 0 };

		if (!g.v)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++)
			if (s->v[i])
				set_add(&g, s->v[i]);
		free(s->v);
		*s = g;
	}
	for (size_t i = mix64(id) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (s->v[i] == id)
			return 0;
		if (!s->v[i]) {
			s->v[i] = id;
			s->n++;
			return 0;
		}
	}
}

static int set_has(const struct tm_stack_idset *s, uint64_t id)
{
	if (!s->cap || !id)
		return 0;
	for (size_t i = mix64(id) & (s->cap - 1); s->v[i]; i = (i + 1) & (s->cap - 1))
		if (s->v[i] == id)
			return 1;
	return 0;
}

/* The stack ids of every live block, all processes. */
static int referenced(struct tm_capture *c, struct tm_stack_idset *ref)
{
	int fd = bpf_map__fd(c->skel->maps.live_blocks);
	enum { BATCH = 4096 };
	struct tm_block_key *keys = calloc(BATCH, sizeof(*keys)), in_b, out_b;
	struct tm_block *vals = calloc(BATCH, sizeof(*vals));
	void *in = NULL;
	int e = 0;

	while (keys && vals && !e) {
		__u32 n = BATCH;
		int r = bpf_map_lookup_batch(fd, in, &out_b, keys, vals, &n, NULL);
		int last = r < 0 && errno == ENOENT;

		if (r < 0 && !last) {
			e = -errno;
			break;
		}
		for (__u32 k = 0; k < n && !e; k++)
			e = set_add(ref, vals[k].stack_id);
		if (last)
			break;
		in_b = out_b;
		in = &in_b;
	}
	if (!keys || !vals)
		e = -ENOMEM;
	free(keys);
	free(vals);
	return e;
}

long tm_capture_collect_stacks(struct tm_capture *c)
{
	int fd = bpf_map__fd(c->skel->maps.stacks);
	struct tm_stack_idset ref = { 0 }, next = { 0 }, *prev = c->gc_unreferenced;
	uint64_t key, *del = NULL;
	size_t ndel = 0, cap = 0;
	long deleted = 0;
	void *at = NULL;
	int e;

	e = referenced(c, &ref);
	/* A stack unreferenced now and at the previous collection: no block
	 * has used it for that long (a stack BPF has just made, whose block
	 * is being recorded, is kept for one more round). */
	while (!e && bpf_map_get_next_key(fd, at, &key) == 0) {
		at = &key;
		if (set_has(&ref, key))
			continue;
		if (prev && set_has(prev, key)) {
			if (ndel == cap) {
				uint64_t *nd = realloc(del, (cap = cap ? 2 * cap : 4096) * 8);

				if (!nd) {
					e = -ENOMEM;
					break;
				}
				del = nd;
			}
			del[ndel++] = key;
		} else {
			e = set_add(&next, key);
		}
	}
	/* The symbolized copies in each process's cache stay: a stack BPF
	 * makes again gets the same id for the same frames. */
	for (size_t i = 0; !e && i < ndel; i++)
		if (bpf_map_delete_elem(fd, &del[i]) == 0)
			deleted++;
	free(del);
	free(ref.v);
	if (prev)
		free(prev->v);
	free(prev);
	c->gc_unreferenced = NULL;
	if (e) {
		free(next.v);
		return e;
	}
	c->gc_unreferenced = malloc(sizeof(next));
	if (c->gc_unreferenced)
		*c->gc_unreferenced = next;
	else
		free(next.v);
	return deleted;
}

void tm_capture_gc_free(struct tm_capture *c)
{
	if (c->gc_unreferenced)
		free(c->gc_unreferenced->v);
	free(c->gc_unreferenced);
	c->gc_unreferenced = NULL;
}
