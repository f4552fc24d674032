/* From BPF maps to a tracemalloc snapshot: read the live blocks of one
 * process in batches, fetch each distinct stack once, symbolize its frames
 * and intern them in the snapshot. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "capture/capture_priv.h"

#define BATCH 4096

/* stack id -> interned traceback, open addressing. */
struct stack_cache {
	struct stack_slot {
		uint64_t id; /* 0: empty */
		const struct tm_traceback *tb;
		uint32_t total_nframe;
	} *slots;
	size_t cap, used;
};

static struct stack_slot *cache_slot(struct stack_cache *sc, uint64_t id)
{
	size_t i = (size_t)(id * 0x9e3779b97f4a7c15ULL) & (sc->cap - 1);

	while (sc->slots[i].id && sc->slots[i].id != id)
		i = (i + 1) & (sc->cap - 1);
	return &sc->slots[i];
}

static int cache_grow(struct stack_cache *sc)
{
	struct stack_cache n = { .cap = sc->cap ? 2 * sc->cap : 1024 };

	n.slots = calloc(n.cap, sizeof(*n.slots));
	if (!n.slots)
		return -ENOMEM;
	for (size_t i = 0; i < sc->cap; i++)
		if (sc->slots[i].id) {
			*cache_slot(&n, sc->slots[i].id) = sc->slots[i];
			n.used++;
		}
	free(sc->slots);
	*sc = n;
	return 0;
}

struct build {
	struct tm_capture *c;
	struct tm_capture_proc *p;
	struct tm_snapshot *snap;
	struct stack_cache cache;
	struct tm_frame *frames;     /* max_frames */
	struct tm_resolved_frame *resolved; /* max_frames: a stack's frames as symbolized */
	const char *unknown;         /* interned "<unknown>" */
	int64_t mono_to_real;        /* CLOCK_REALTIME - CLOCK_MONOTONIC */
	uint64_t pending[TM_STUB_QUARANTINE]; /* frees the stub holds back, not yet reported */
	size_t npending;
};

/* A block the program has freed, still in the stub's quarantine (its free
 * is reported with the next batch): not live. */
static int freed_pending(const struct build *b, uint64_t addr)
{
	for (size_t i = 0; i < b->npending; i++)
		if (b->pending[i] == addr)
			return 1;
	return 0;
}

/* Stack id as an interned traceback (tracemalloc's <unknown>:0 when nothing
 * is known). */
static int resolve_stack(struct build *b, uint64_t id, struct stack_slot *out)
{
	struct tm_resolved_frame *rf = b->resolved;
	uint32_t n = 0, total = 1;

	if (id && tm_capture_stack_frames(b->c, b->p, id, rf, b->c->opts.max_frames, &n, &total) == 0) {
		for (uint32_t i = 0; i < n; i++) {
			b->frames[i].filename = tm_snapshot_intern_str(b->snap, rf[i].filename,
								       strlen(rf[i].filename));
			if (!b->frames[i].filename)
				return -errno;
			b->frames[i].lineno = rf[i].lineno;
			b->frames[i].name = rf[i].name ? tm_snapshot_intern_str(b->snap, rf[i].name,
									      strlen(rf[i].name))
						       : NULL;
			if (rf[i].name && !b->frames[i].name)
				return -errno;
		}
	}
	if (n == 0) {
		b->frames[0].filename = b->unknown;
		b->frames[0].lineno = 0;
		b->frames[0].name = NULL;
		n = 1;
		if (total == 0)
			total = 1;
	}
	out->id = id;
	out->tb = tm_snapshot_intern_traceback(b->snap, b->frames, n);
	out->total_nframe = total;
	return out->tb ? 0 : -errno;
}

static int add_block(struct build *b, const struct tm_block_key *k, const struct tm_block *v)
{
	struct stack_slot *s, tmp;
	struct tm_trace tr;
	uint64_t id = v->stack_id;
	int e;

	if ((b->cache.used + 1) * 2 > b->cache.cap) {
		e = cache_grow(&b->cache);
		if (e)
			return e;
	}
	if (id == 0) { /* stack not recorded (counted in BPF): <unknown>, not cached */
		e = resolve_stack(b, 0, &tmp);
		if (e)
			return e;
		s = &tmp;
		goto add;
	}
	s = cache_slot(&b->cache, id);
	if (!s->id) {
		e = resolve_stack(b, id, s);
		if (e) {
			s->id = 0;
			return e;
		}
		s->id = id;
		b->cache.used++;
	}
add:
	memset(&tr, 0, sizeof(tr));
	tr.size_bytes = v->size_bytes;
	tr.traceback = s->tb;
	tr.thread_id = v->tid;
	tr.alloc_ns = (uint64_t)((int64_t)v->alloc_ns + b->mono_to_real);
	tr.domain = k->domain;
	tr.total_nframe = s->total_nframe;
	return tm_snapshot_add_trace(b->snap, &tr);
}

/* Every live block of the process, BATCH at a time. */
static int read_blocks(struct build *b)
{
	int fd = bpf_map__fd(b->c->skel->maps.live_blocks);
	struct tm_block_key *keys = calloc(BATCH, sizeof(*keys));
	struct tm_block *vals = calloc(BATCH, sizeof(*vals));
	struct tm_block_key in_batch, out_batch;
	void *in = NULL;
	int e = 0;

	if (!keys || !vals) {
		e = -ENOMEM;
		goto cleanup;
	}
	unsigned batches = 0;

	for (;;) {
		__u32 n = BATCH;
		int r = bpf_map_lookup_batch(fd, in, &out_batch, keys, vals, &n, NULL);
		int last = r < 0 && errno == ENOENT;

		if (r < 0 && !last) {
			e = -errno;
			goto cleanup;
		}
		for (__u32 i = 0; i < n && !e; i++)
			if (keys[i].pid == (__u32)b->p->pid && !freed_pending(b, keys[i].addr))
				e = add_block(b, &keys[i], &vals[i]);
		if (e || last)
			break;
		in_batch = out_batch;
		in = &in_batch;
		if (++batches % 16 == 0)
			tm_capture_idle(b->c); /* a big map takes a while: events meanwhile */
	}
cleanup:
	free(keys);
	free(vals);
	return e;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fill_meta(struct tm_capture *c, struct tm_capture_proc *p, struct tm_snapshot *snap)
{
	struct tm_snapshot_meta *m = &snap->meta;
	struct tm_capture_stats st;
	char path[64], buf[4096], host[256];
	FILE *f;

	m->pid = p->pid;
	m->sample_interval_bytes = p->stub_ready ? p->stub.sample_bytes : 0;
	tm_snapshot_meta_set(&m->python_version, p->t->version);
	tm_snapshot_meta_set(&m->coverage_mode, p->coverage ? p->coverage
						: p->devirt_ok ? tm_coverage_str(p->dv.coverage)
							       : "unknown (ELF not scanned)");
	if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		tm_snapshot_meta_set(&m->hostname, host);
	}
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)p->pid);
	f = fopen(path, "r");
	if (f) {
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);

		fclose(f);
		while (n > 0 && buf[n - 1] == '\0')
			n--;
		for (size_t i = 0; i < n; i++)
			if (buf[i] == '\0')
				buf[i] = ' ';
		buf[n] = '\0';
		if (n)
			tm_snapshot_meta_set(&m->cmdline, buf);
	}
	m->start_ns = p->start_ns;
	m->snapshot_ns = clock_ns(CLOCK_REALTIME);
	if (tm_capture_stats(c, p->pid, &st) == 0) {
		m->traced_current_bytes = st.current_bytes;
		m->traced_peak_bytes = st.peak_bytes;
		m->has_traced_memory = 1;
		for (int k = 0; k < TM_CNT_MAX; k++)
			if (tm_counter_is_loss(k) && st.counters[k])
				tm_snapshot_meta_add_drop(m, tm_counter_name(k), st.counters[k]);
	}
}

struct tm_snapshot *tm_capture_snapshot(struct tm_capture *c, pid_t pid, char *err, size_t errlen)
{
	struct build b = { .c = c };
	int e = 0;

	/* symbolize what was announced, while it exists; first, as the poll
	 * may end pid (its exit event), which frees its tm_capture_proc */
	tm_capture_poll(c, 0);
	b.p = tm_capture_proc_find(c, pid);
	if (!b.p) {
		snprintf(err, errlen, "PID %d is not traced", (int)pid);
		errno = ENOENT;
		return NULL;
	}
	b.snap = tm_snapshot_new();
	b.frames = calloc(c->opts.max_frames + 1, sizeof(*b.frames));
	b.resolved = calloc(c->opts.max_frames + 1, sizeof(*b.resolved));
	if (!b.snap || !b.frames || !b.resolved) {
		e = -ENOMEM;
		goto cleanup;
	}
	b.snap->traceback_limit = c->opts.max_frames;
	b.unknown = tm_snapshot_intern_str(b.snap, "<unknown>", 9);
	if (!b.unknown) {
		e = -errno;
		goto cleanup;
	}
	b.mono_to_real = (int64_t)clock_ns(CLOCK_REALTIME) - (int64_t)clock_ns(CLOCK_MONOTONIC);
	tm_capture_begin_pass(b.p);
	if (b.p->stub_ready) {
		int n = tm_stub_pending_frees(&b.p->stub, b.pending, TM_STUB_QUARANTINE);

		b.npending = n > 0 ? (size_t)n : 0;
	}
	e = read_blocks(&b);
	if (e)
		goto cleanup;
	fill_meta(c, b.p, b.snap);
cleanup:
	free(b.cache.slots);
	free(b.frames);
	free(b.resolved);
	if (e) {
		snprintf(err, errlen, "PID %d: cannot read the live blocks: %s", (int)pid, strerror(-e));
		tm_snapshot_free(b.snap);
		errno = -e;
		return NULL;
	}
	return b.snap;
}
