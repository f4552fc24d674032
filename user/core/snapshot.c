/* Snapshot storage: traces array, interned strings and tracebacks.
 * Interning uses open-addressing tables over arena-allocated records so that a
 * million traces with shared tracebacks cost one pointer each. */
#include "snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK (1u << 20)

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	unsigned char data[];
};

struct intern_table {
	void **slots; /* NULL or record pointer */
	uint64_t *hashes;
	size_t cap, count; /* cap is a power of two */
};

struct tm_snapshot_pools {
	struct arena_chunk *arena;
	struct intern_table strs;
	struct intern_table tbs;
	const struct tm_traceback **tb_by_index;
	size_t tb_by_index_cap;
	size_t traces_cap;
};

static void *arena_alloc(struct tm_snapshot_pools *p, size_t size)
{
	struct arena_chunk *c = p->arena;

	size = (size + 7) & ~(size_t)7;
	if (!c || c->cap - c->used < size) {
		size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;

		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->next = p->arena;
		c->used = 0;
		c->cap = cap;
		p->arena = c;
	}
	c->used += size;
	return c->data + c->used - size;
}

static uint64_t hash_bytes(const void *data, size_t len, uint64_t h)
{
	const unsigned char *b = data;

	/* FNV-1a, 64-bit: simple and stable across runs and machines. */
	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Word-at-a-time string hash: hashing tracebacks is the hot path of loading
 * a million-trace file, and byte-wise FNV over every filename cost a third of
 * `tmbpf stats`. A function of the bytes only, so equal values hash equally
 * across snapshots. */
static uint64_t str_hash(const char *s)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL, w;
	size_t len = strlen(s), i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&w, s + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	w = 0;
	memcpy(&w, s + i, len - i);
	h = (h ^ w ^ len) * 0xc4ceb9fe1a85ec53ULL;
	return h ^ (h >> 29);
}

uint64_t tm_frames_hash(const struct tm_frame *frames, uint32_t nframe)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (uint32_t i = 0; i < nframe; i++) {
		h = (h ^ str_hash(frames[i].filename)) * 0x100000001b3ULL;
		h = (h ^ frames[i].lineno) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 31;
	}
	return h;
}

int tm_frame_cmp(const struct tm_frame *a, const struct tm_frame *b)
{
	int c = a->filename == b->filename ? 0 : strcmp(a->filename, b->filename);

	if (c)
		return c < 0 ? -1 : 1;
	if (a->lineno != b->lineno)
		return a->lineno < b->lineno ? -1 : 1;
	return 0;
}

static int table_grow(struct intern_table *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 1024;
	void **slots = calloc(ncap, sizeof(*slots));
	uint64_t *hashes = calloc(ncap, sizeof(*hashes));

	if (!slots || !hashes) {
		free(slots);
		free(hashes);
		return -ENOMEM;
	}
	for (size_t i = 0; i < t->cap; i++) {
		size_t j;

		if (!t->slots[i])
			continue;
		for (j = t->hashes[i] & (ncap - 1); slots[j]; j = (j + 1) & (ncap - 1))
			;
		slots[j] = t->slots[i];
		hashes[j] = t->hashes[i];
	}
	free(t->slots);
	free(t->hashes);
	t->slots = slots;
	t->hashes = hashes;
	t->cap = ncap;
	return 0;
}

/* Find the slot for (hash, key); eq decides equality. Grows first if needed. */
static void **table_find(struct intern_table *t, uint64_t hash, const void *key,
			 int (*eq)(const void *rec, const void *key), size_t *slot)
{
	size_t j;

	if ((t->count + 1) * 2 > t->cap && table_grow(t))
		return NULL;
	for (j = hash & (t->cap - 1); t->slots[j]; j = (j + 1) & (t->cap - 1)) {
		if (t->hashes[j] == hash && eq(t->slots[j], key))
			break;
	}
	*slot = j;
	return &t->slots[j];
}

struct str_key {
	const char *s;
	size_t len;
};

static int str_eq(const void *rec, const void *key)
{
	const struct str_key *k = key;

	return strncmp(rec, k->s, k->len) == 0 && ((const char *)rec)[k->len] == '\0';
}

const char *tm_snapshot_intern_str(struct tm_snapshot *snap, const char *s, size_t len)
{
	struct tm_snapshot_pools *p = snap->pools;
	struct str_key key = { s, len };
	uint64_t h;
	size_t slot;
	void **found;
	char *copy;

	if (memchr(s, '\0', len)) {
		errno = EINVAL;
		return NULL;
	}
	h = hash_bytes(s, len, 0xcbf29ce484222325ULL);
	found = table_find(&p->strs, h, &key, str_eq, &slot);
	if (!found) {
		errno = ENOMEM;
		return NULL;
	}
	if (*found)
		return *found;
	copy = arena_alloc(p, len + 1);
	if (!copy) {
		errno = ENOMEM;
		return NULL;
	}
	memcpy(copy, s, len);
	copy[len] = '\0';
	*found = copy;
	p->strs.hashes[slot] = h;
	p->strs.count++;
	return copy;
}

struct tb_key {
	const struct tm_frame *frames;
	uint32_t nframe;
};

static int tb_eq(const void *rec, const void *key)
{
	const struct tm_traceback *tb = rec;
	const struct tb_key *k = key;

	if (tb->nframe != k->nframe)
		return 0;
	for (uint32_t i = 0; i < k->nframe; i++) {
		/* Filenames are interned in this snapshot: pointer equality suffices. */
		if (tb->frames[i].filename != k->frames[i].filename ||
		    tb->frames[i].lineno != k->frames[i].lineno)
			return 0;
	}
	return 1;
}

const struct tm_traceback *tm_snapshot_intern_traceback(struct tm_snapshot *snap,
							const struct tm_frame *frames,
							uint32_t nframe)
{
	struct tm_snapshot_pools *p = snap->pools;
	struct tb_key key = { frames, nframe };
	struct tm_traceback *tb;
	uint64_t h;
	size_t slot;
	void **found;

	if (nframe == 0 || nframe > TM_MAX_FRAMES) {
		errno = EINVAL;
		return NULL;
	}
	h = tm_frames_hash(frames, nframe);
	found = table_find(&p->tbs, h, &key, tb_eq, &slot);
	if (!found)
		goto nomem;
	if (*found)
		return *found;
	if (p->tbs.count == p->tb_by_index_cap) {
		size_t ncap = p->tb_by_index_cap ? p->tb_by_index_cap * 2 : 1024;
		const struct tm_traceback **n = realloc(p->tb_by_index, ncap * sizeof(*n));

		if (!n)
			goto nomem;
		p->tb_by_index = n;
		p->tb_by_index_cap = ncap;
	}
	tb = arena_alloc(p, sizeof(*tb) + (size_t)nframe * sizeof(tb->frames[0]));
	if (!tb)
		goto nomem;
	tb->nframe = nframe;
	tb->index = (uint32_t)p->tbs.count;
	tb->hash = h;
	memcpy(tb->frames, frames, (size_t)nframe * sizeof(frames[0]));
	*found = tb;
	p->tbs.hashes[slot] = h;
	p->tb_by_index[p->tbs.count++] = tb;
	return tb;
nomem:
	errno = ENOMEM;
	return NULL;
}

int tm_snapshot_reserve(struct tm_snapshot *snap, size_t n)
{
	struct tm_snapshot_pools *p = snap->pools;
	struct tm_trace *traces;
	size_t want = snap->ntraces + n;

	if (want < snap->ntraces || want > SIZE_MAX / sizeof(*traces))
		return -EOVERFLOW;
	if (want <= p->traces_cap)
		return 0;
	traces = realloc(snap->traces, want * sizeof(*traces));
	if (!traces)
		return -ENOMEM;
	snap->traces = traces;
	p->traces_cap = want;
	return 0;
}

int tm_snapshot_add_trace(struct tm_snapshot *snap, const struct tm_trace *trace)
{
	struct tm_snapshot_pools *p = snap->pools;

	if (snap->ntraces == p->traces_cap) {
		size_t grow = p->traces_cap ? p->traces_cap : 1024;
		int err = tm_snapshot_reserve(snap, grow);

		if (err)
			return err;
	}
	snap->traces[snap->ntraces++] = *trace;
	return 0;
}

size_t tm_snapshot_ntracebacks(const struct tm_snapshot *snap)
{
	return snap->pools->tbs.count;
}

const struct tm_traceback *tm_snapshot_traceback_at(const struct tm_snapshot *snap, size_t index)
{
	if (index >= snap->pools->tbs.count)
		return NULL;
	return snap->pools->tb_by_index[index];
}

int tm_snapshot_meta_set(char **field, const char *value)
{
	char *copy = NULL;

	if (value) {
		copy = strdup(value);
		if (!copy)
			return -ENOMEM;
	}
	free(*field);
	*field = copy;
	return 0;
}

int tm_snapshot_meta_add_drop(struct tm_snapshot_meta *meta, const char *name, uint64_t count)
{
	uint32_t i;

	if (strlen(name) >= sizeof(meta->drops[0].name))
		return -ENAMETOOLONG;
	for (i = 0; i < meta->ndrops; i++) {
		if (strcmp(meta->drops[i].name, name) == 0) {
			meta->drops[i].count += count;
			return 0;
		}
	}
	if (meta->ndrops == TM_MAX_DROP_COUNTERS)
		return -ENOSPC;
	strcpy(meta->drops[i].name, name);
	meta->drops[i].count = count;
	meta->ndrops++;
	return 0;
}

struct tm_snapshot *tm_snapshot_new(void)
{
	struct tm_snapshot *snap = calloc(1, sizeof(*snap));

	if (!snap)
		return NULL;
	snap->pools = calloc(1, sizeof(*snap->pools));
	if (!snap->pools) {
		free(snap);
		errno = ENOMEM;
		return NULL;
	}
	snap->traceback_limit = 1;
	snap->meta.pid = -1;
	return snap;
}

void tm_snapshot_free(struct tm_snapshot *snap)
{
	struct arena_chunk *c, *next;

	if (!snap)
		return;
	if (snap->pools) {
		for (c = snap->pools->arena; c; c = next) {
			next = c->next;
			free(c);
		}
		free(snap->pools->strs.slots);
		free(snap->pools->strs.hashes);
		free(snap->pools->tbs.slots);
		free(snap->pools->tbs.hashes);
		free(snap->pools->tb_by_index);
		free(snap->pools);
	}
	free(snap->meta.cmdline);
	free(snap->meta.python_version);
	free(snap->meta.hostname);
	free(snap->meta.coverage_mode);
	free(snap->traces);
	free(snap);
}
