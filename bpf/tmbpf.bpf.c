/* tmbpf capture: uprobes on a CPython's allocator implementations keep the
 * live blocks of each traced process, with the Python stack of the thread
 * that allocated each one, interned in `stacks`.
 *
 * Every probe is generic; its BPF cookie says what it probes and where the
 * arguments are (tmbpf.h, TM_COOKIE). Pairing of entry and return: a
 * per-thread pending record holds the outermost allocator call in progress
 * and the stack pointer at its entry. An entry with a lower stack pointer is
 * nested inside it (raw malloc under pymalloc, malloc inside realloc) and is
 * skipped, as tracemalloc's reentrancy guard does; its return is recognised
 * the same way. Frees need no pairing: a nested free only ever frees the
 * block its outer call frees, and the second removal finds nothing. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "tmbpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile struct tm_bpf_config tm_cfg = {
	.walk_limit = TM_WALK_LIMIT_DEFAULT,
};

/* Bytes of one frame read at a time (f_read_size is at most this). */
#define FRAME_BUF 256
/* 3.11+ frames live in the thread's data stack, the older ones just below
 * the newer: one read of this many bytes usually covers many frames. */
#ifndef WINDOW
#define WINDOW 2048
#endif
/* Bytes of PyThreadState read at once (tstate_read: 0xf0 in 3.12/3.13,
 * 0x108 in 3.11, 0xa0 in 3.8-3.10). */
#define TS_SPAN_MAX 512
/* A frame in the thread's current data-stack chunk: one read of everything
 * from the chunk's start (or CHUNK_WINDOW bytes below the frame's end) up to
 * the frame's end, exactly the bytes of the frames still to walk. */
#ifndef CHUNK_WINDOW
#define CHUNK_WINDOW 8192
#endif

struct pending {
	__u64 sp;       /* user %rsp at the outer call's entry (points at its return address) */
	__u64 size;     /* requested bytes */
	__u64 old_addr; /* realloc: the block being resized */
	__u64 last_addr; /* the block this thread allocated last: _Py_NewReference of
			  * a fresh object needs no second stack walk */
	__u64 predicted; /* TM_PREDICT_CHECK: the block predicted at entry */
	__u64 ts;       /* 3.12+: this thread's PyThreadState as last found (tstate_view) */
	__u32 kind;     /* TM_PROBE_* */
	__u32 active;
};

/* Where the walk is; in the per-CPU scratch value, not on the stack: the
 * verifier does not track a map value's contents, so the bpf_loop callback's
 * states converge whatever the window arithmetic. */
struct walk {
	__u64 frame;
	__u64 hash;
	__u32 n;
	__u32 total;
	__u32 iter;       /* chain entries walked (shim frames too): at most walk_limit */
	__u32 max_frames;
	__u32 read_size;
	__u32 interp;
	__u32 err;
	__u16 f_back, f_code, f_lasti, f_owner;
	__u64 win_lo, win_hi; /* user addresses that s->window holds (interp only); the
			       * thread's current data-stack chunk is s->tv's */
};

/* The current thread's PyThreadState, as tstate_view() read it. */
struct tsview {
	__u64 ts;        /* 0: none */
	__u64 frame;     /* the value at ts_frame: the first frame, or 3.11/3.12 the cframe */
	__u64 interp;    /* at ts_interp, when the config has it */
	__u64 chunk, chunk_end; /* 3.11+: datastack_chunk, datastack_limit (0: none; frame
				 * windows never read below the chunk) */
};

struct scratch {
	__u64 clock_jiffies, clock_ns; /* alloc_time(): this CPU's clock read in that tick */
	struct tsview tv;
	__u8 tsbuf[TS_SPAN_MAX + 8];
	struct walk w;
	struct tm_stack stack;
	__u8 frame[FRAME_BUF + 8];
	__u8 window[CHUNK_WINDOW + FRAME_BUF + 8]; /* slack: a frame read at any offset stays inside */
};

/* Indexed by the slot in each probe's cookie: an array lookup, which the
 * verifier inlines, instead of hashing the tgid in every program run. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TM_MAX_PROCS);
	__type(key, __u32);
	__type(value, struct tm_proc_config);
} procs SEC(".maps");

/* Preallocated: --max-blocks elements (~100 bytes each) are reserved when
 * the map is created. Without preallocation every insert and delete went
 * through the kernel's BPF memory allocator, whose per-CPU caches spill and
 * refill in batches: 26 % of all CPU samples on the dictlist workload
 * (unit_free, htab_map_update_elem), and tmbpf 24 % slower there. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 20); /* user space sets --max-blocks */
	__type(key, struct tm_block_key);
	__type(value, struct tm_block);
} live_blocks SEC(".maps");

/* Value size TM_STACK_BYTES(max_frames), set by user space before load; no
 * BTF value type, since the kernel would insist it matches that size. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 16); /* user space sets --max-stacks */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(key_size, sizeof(__u64));
	__uint(value_size, sizeof(struct tm_stack));
} stacks SEC(".maps");

/* Per thread: task-local storage, found from the task without hashing and
 * freed with the thread. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pending);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TM_MAX_PROCS * TM_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TM_MAX_PROCS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct tm_traced_memory);
} traced_memory SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20); /* ~37,000 new-stack events between two polls */
} events SEC(".maps");

/* Per-process counters: slot cfg.mem_slot, TM_CNT_MAX each. */
static __always_inline void count(const struct tm_proc_config *c, __u32 which)
{
	__u32 idx = c->mem_slot * TM_CNT_MAX + which;
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1;
}

/* The user registers indexed by x86-64 register number (ModRM numbering).
 * Copied with constant offsets: the verifier rejects a computed ctx pointer,
 * which is what a switch over ctx fields compiles to. */
struct regs {
	__u64 r[16];
};

static __always_inline void load_regs(const struct pt_regs *ctx, struct regs *g)
{
	g->r[0] = ctx->ax;
	g->r[1] = ctx->cx;
	g->r[2] = ctx->dx;
	g->r[3] = ctx->bx;
	g->r[4] = ctx->sp;
	g->r[5] = ctx->bp;
	g->r[6] = ctx->si;
	g->r[7] = ctx->di;
	g->r[8] = ctx->r8;
	g->r[9] = ctx->r9;
	g->r[10] = ctx->r10;
	g->r[11] = ctx->r11;
	g->r[12] = ctx->r12;
	g->r[13] = ctx->r13;
	g->r[14] = ctx->r14;
	g->r[15] = ctx->r15;
}

static __always_inline __u64 arg(const struct regs *g, __u64 cookie, int i)
{
	return g->r[TM_COOKIE_REG(cookie, i) & 15];
}

static __always_inline __u64 read_u64(__u64 addr)
{
	__u64 v = 0;

	if (bpf_probe_read_user(&v, sizeof(v), (const void *)addr))
		return 0;
	return v;
}

static __always_inline __u64 ts_u64(const struct scratch *s, __u32 off)
{
	off &= TS_SPAN_MAX - 1;
	return *(const __u64 *)(s->tsbuf + off);
}

/* Widen [lo, hi) to cover the n bytes at off. */
static __always_inline void span_add(__u32 *lo, __u32 *hi, __u32 off, __u32 n)
{
	if (off < *lo)
		*lo = off;
	if (off + n > *hi)
		*hi = off + n;
}

/* Read the fields of the thread state ts that BPF uses, in one read of the
 * span from the lowest to the end of the highest (at most TS_SPAN_MAX
 * bytes; a bpf_probe_read_user costs ~23 ns here, whatever it reads up to
 * a few hundred bytes): ts_frame, ts_interp (prediction's check),
 * datastack_chunk/top/limit (3.11+) and, when thread is set, thread_id,
 * which must equal it (the GIL holder is ours only if its pthread_t is this
 * thread). Fills s->tv; 0, or -1 when unreadable or not this thread's. */
static __always_inline int tstate_read(const struct tm_proc_config *c, struct scratch *s, __u64 ts,
				       __u64 thread, int active)
{
	__u32 lo = c->ts_frame, hi = c->ts_frame + 8, len;

	if (active)
		span_add(&lo, &hi, c->ts_status, 8);
	if (c->ts_interp != TM_NO_OFFSET)
		span_add(&lo, &hi, c->ts_interp, 8);
	if (thread)
		span_add(&lo, &hi, c->ts_thread_id, 8);
	if (c->ts_datastack_chunk != TM_NO_OFFSET)
		span_add(&lo, &hi, c->ts_datastack_chunk, 24);
	len = hi - lo;
	if (len > TS_SPAN_MAX)
		return -1;
	/* The mask keeps a bound on the register the read takes (clang may
	 * test a copy); with the test above, len <= TS_SPAN_MAX. */
	barrier_var(len);
	if (bpf_probe_read_user(s->tsbuf, len & (2 * TS_SPAN_MAX - 1), (const void *)(ts + lo)))
		return -1;
	if (thread && ts_u64(s, c->ts_thread_id - lo) != thread)
		return -1;
	if (active && (ts_u64(s, c->ts_status - lo) & (TM_TS_ACTIVE | TM_TS_UNBOUND)) != TM_TS_ACTIVE)
		return -1;
	s->tv.ts = ts;
	s->tv.frame = ts_u64(s, c->ts_frame - lo);
	s->tv.interp = c->ts_interp != TM_NO_OFFSET ? ts_u64(s, c->ts_interp - lo) : 0;
	if (c->ts_datastack_chunk != TM_NO_OFFSET) {
		s->tv.chunk = ts_u64(s, c->ts_datastack_chunk - lo);
		s->tv.chunk_end = ts_u64(s, c->ts_datastack_chunk + 16 - lo);
	}
	return 0;
}

/* The current thread's PyThreadState and its fields into s->tv (tv.ts 0:
 * none). 3.12+: the thread state this thread had last time, if it is still
 * bound to this thread and active (one read less than asking a route: ~23 ns
 * a capture); else the routes in tmbpf.h, tried in order. */
static __always_inline void tstate_view(const struct tm_proc_config *c, struct scratch *s)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 fsbase = task->thread.fsbase; /* a trusted pointer: a plain load */
	__u32 routes = c->tstate_routes;
	struct pending *p = 0;
	__u64 ts = 0;

	__builtin_memset(&s->tv, 0, sizeof(s->tv));
	if (c->ts_status != TM_NO_OFFSET) {
		p = bpf_task_storage_get(&pending, task, 0, 0);
		if (p && p->ts && tstate_read(c, s, p->ts, fsbase, 1) == 0)
			return;
	}
	if (routes & TM_TSTATE_TLS) {
		ts = read_u64(fsbase + c->tls_tstate_offset);
		if (ts && tstate_read(c, s, ts, 0, 0) == 0)
			goto found;
	}
	if ((routes & TM_TSTATE_GILSTATE) && c->tstate_current_addr) {
		ts = read_u64(c->tstate_current_addr);
		if (ts && tstate_read(c, s, ts, fsbase, 0) == 0)
			goto found;
	}
	if ((routes & TM_TSTATE_TSD) && c->tss_key_addr) {
		__u32 key = 0;

		if (bpf_probe_read_user(&key, sizeof(key), (const void *)c->tss_key_addr))
			goto none;
		if (key >= 32) /* glibc keeps keys >= 32 in a second level; not followed */
			goto none;
		ts = read_u64(fsbase + c->tsd_specific_offset + 16 * (__u64)key + 8);
		if (ts && tstate_read(c, s, ts, 0, 0) == 0)
			goto found;
	}
none: /* s->tv is still zero: tstate_read fills it only on success */
	return;
found:
	if (p)
		p->ts = ts;
}

static __always_inline __u64 buf_u64(const __u8 *buf, __u32 off)
{
	off &= FRAME_BUF - 1;
	return *(const __u64 *)(buf + off);
}

static __always_inline __u64 mix(__u64 h, __u64 v)
{
	h ^= v;
	h *= 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

/* The size bytes of the frame at addr: from the window when it holds them,
 * else refill it. A frame in the thread's current data-stack chunk: one read
 * of the bytes from the chunk's start (at most CHUNK_WINDOW below) up to the
 * frame's end, i.e. exactly the older frames of that chunk, never below its
 * start (the page under a fresh chunk, e.g. a new thread's, is often
 * unmapped). Another frame (a generator's, a previous chunk's): the WINDOW
 * bytes that end with it, or, when that read fails (below the start of the
 * mapping), the frame alone. NULL when the frame cannot be read. */
static __always_inline const __u8 *frame_bytes(struct scratch *s, struct walk *w, __u64 addr,
					       __u32 size)
{
	if (w->interp) {
		if (addr < w->win_lo || addr + size > w->win_hi) {
			__u64 end = addr + size, lo = end - WINDOW;
			__u64 len = WINDOW;

			if (addr >= s->tv.chunk && end <= s->tv.chunk_end) {
				lo = end - s->tv.chunk > CHUNK_WINDOW ? end - CHUNK_WINDOW : s->tv.chunk;
				len = end - lo;
			} else if (w->f_owner != TM_NO_OFFSET) {
				/* Outside the chunk: a generator's frame (in its
				 * object, nothing useful below it) or a C-stack
				 * shim reads alone; only a frame of an older
				 * chunk (owned by the thread) refills the window,
				 * for the frames below it. */
				if (bpf_probe_read_user(s->frame, size, (const void *)addr))
					return 0;
				if (s->frame[w->f_owner & (FRAME_BUF - 1)] != 0 /* FRAME_OWNED_BY_THREAD */)
					return s->frame;
			}
			barrier_var(len);
			if (len <= CHUNK_WINDOW &&
			    bpf_probe_read_user(s->window, len, (const void *)lo) == 0) {
				w->win_lo = lo;
				w->win_hi = end;
			} else {
				w->win_lo = w->win_hi = 0;
			}
		}
		if (addr >= w->win_lo && addr + size <= w->win_hi)
			return s->window + ((addr - w->win_lo) & (CHUNK_WINDOW - 1));
	}
	if (bpf_probe_read_user(s->frame, size, (const void *)addr))
		return 0;
	return s->frame;
}

/* One entry of the frame chain: 0 to go on, 1 when the walk ends. */
static __always_inline int walk_one(struct scratch *s, struct walk *w)
{
	__u64 back, code, lasti;
	const __u8 *f;
	__u32 n, size;

	if (!w->frame || w->iter >= tm_cfg.walk_limit)
		return 1;
	w->iter++;
	size = w->read_size;
	if (size > FRAME_BUF)
		size = FRAME_BUF;
	f = frame_bytes(s, w, w->frame, size);
	if (!f) {
		w->err = 1;
		return 1;
	}
	back = buf_u64(f, w->f_back);
	if (w->interp && w->f_owner != TM_NO_OFFSET && f[w->f_owner & (FRAME_BUF - 1)] == TM_OWNER_CSTACK) {
		w->frame = back; /* C-stack shim frame (3.12+): not a Python frame */
		return 0;
	}
	w->total++;
	n = w->n;
	if (n < w->max_frames && n < TM_BPF_MAX_FRAMES) {
		code = buf_u64(f, w->f_code);
		if (w->interp)
			lasti = buf_u64(f, w->f_lasti);
		else /* f_lasti is a C int; keep its sign (-1: not started) */
			lasti = (__u64)(__s64)(__s32)buf_u64(f, w->f_lasti);
		s->stack.frames[n].code = code;
		s->stack.frames[n].lasti = lasti;
		w->hash = mix(mix(w->hash, code), lasti);
		w->n = n + 1;
	}
	w->frame = back;
	return 0;
}

/* WALK_STEP entries per bpf_loop iteration (fewer callback calls); the
 * entries walked stay bounded by walk_limit (w->iter). */
#ifndef WALK_STEP
#define WALK_STEP 4
#endif

static long walk_frame(__u64 i, void *ctx)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);

	if (!s)
		return 1;
#pragma unroll
	for (int k = 0; k < WALK_STEP; k++)
		if (walk_one(s, &s->w))
			return 1;
	return 0;
}

/* Walk the current thread's Python stack into the scratch stack and intern
 * it. Returns the stack id, or 0 when it could not be stored (counted). */
/* Bytes of a code object read for its identity (covers co_filename and
 * co_firstlineno in every version: at most 0x78). */
#define CODE_HEAD 128

struct check_walk {
	__u16 co_filename, co_firstlineno;
	__u32 n;
};

static long check_frame(__u64 i, struct check_walk *cw)
{
	__u32 zero = 0, idx = (__u32)i & (TM_BPF_MAX_FRAMES - 1); /* bounded for the verifier */
	struct scratch *s;
	__u64 code, fn;
	__u32 first;

	if (i >= cw->n || i >= TM_BPF_MAX_FRAMES)
		return 1;
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 1;
	code = s->stack.frames[idx].code;
	s->stack.frames[idx].check = 0;
	if (!code || bpf_probe_read_user(s->frame, CODE_HEAD, (const void *)code))
		return 0;
	fn = buf_u64(s->frame, cw->co_filename);
	first = (__u32)buf_u64(s->frame, cw->co_firstlineno);
	s->stack.frames[idx].check = TM_CODE_CHECK(fn, first);
	return 0;
}

static __always_inline void announce_stack(const struct tm_proc_config *c, __u32 tgid, __u64 id)
{
	struct tm_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count(c, TM_CNT_EVENTS_LOST);
		return;
	}
	e->type = TM_EVENT_NEW_STACK;
	e->pid = tgid;
	e->ts_ns = 0;
	e->stack_id = id;
	bpf_ringbuf_submit(e, 0); /* wake the consumer: the sooner, the likelier the code lives */
}

/* viewed: the caller has filled s->tv for this thread (tstate_view). */
static __always_inline __u64 capture_stack(const struct tm_proc_config *c, __u32 tgid, int viewed)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	struct walk *w;
	__u64 frame = 0;

	if (!s)
		return 0;
	w = &s->w;
	__builtin_memset(w, 0, sizeof(*w));
	if (!viewed)
		tstate_view(c, s);
	if (!s->tv.ts) {
		count(c, TM_CNT_NO_TSTATE);
	} else {
		frame = s->tv.frame;
		if (frame && c->cframe_current_frame != TM_NO_OFFSET)
			frame = read_u64(frame + c->cframe_current_frame);
	}
	w->frame = frame;
	w->hash = 0xcbf29ce484222325ULL;
	w->max_frames = c->max_frames;
	w->read_size = c->f_read_size;
	w->interp = c->frame_kind == TM_FRAMES_INTERP;
	w->f_back = c->f_back;
	w->f_code = c->f_code;
	w->f_lasti = c->f_lasti;
	w->f_owner = c->f_owner;
	if (frame)
		bpf_loop((tm_cfg.walk_limit + WALK_STEP - 1) / WALK_STEP, walk_frame, NULL, 0);
	if (w->err)
		count(c, TM_CNT_DROP_FRAME_READ);
	s->stack.nframe = w->n;
	s->stack.total_nframe = w->total;
	w->hash = mix(mix(w->hash, w->n), w->total);
	if (!w->hash)
		w->hash = 1;
	if (bpf_map_lookup_elem(&stacks, &w->hash))
		return w->hash;
	/* A new stack: record who its code objects are, while they run. */
	if (w->n) {
		struct check_walk cw = {
			.co_filename = c->co_filename,
			.co_firstlineno = c->co_firstlineno,
			.n = w->n,
		};

		bpf_loop(w->n, check_frame, &cw, 0);
	}
	if (bpf_map_update_elem(&stacks, &w->hash, &s->stack, BPF_NOEXIST) == 0) {
		announce_stack(c, tgid, w->hash);
		return w->hash;
	}
	if (bpf_map_lookup_elem(&stacks, &w->hash)) /* raced with another CPU */
		return w->hash;
	count(c, TM_CNT_DROP_STACKS_FULL);
	return 0;
}

/* The live block count is not kept here: it is the counters' allocs -
 * frees - missed_free (exactly: each is counted where a block enters or
 * leaves live_blocks), which saves an atomic per allocation and per free. */
static __always_inline void traced_add(const struct tm_proc_config *c, __s64 delta)
{
	__u32 slot = c->mem_slot;
	struct tm_traced_memory *m = bpf_map_lookup_elem(&traced_memory, &slot);
	__u64 cur;

	if (!m)
		return;
	__sync_fetch_and_add(&m->current_bytes, (__u64)delta);
	cur = m->current_bytes;
	if (delta > 0 && (__s64)cur > 0 && cur > m->peak_bytes)
		m->peak_bytes = cur;
}

/* Remove a live block found at key; b points at its value. */
static __always_inline void drop_block(const struct tm_proc_config *c, struct tm_block_key *key,
				       struct tm_block *b)
{
	__u64 size = b->size_bytes;

	if (bpf_map_delete_elem(&live_blocks, key) == 0) {
		traced_add(c, -(__s64)size);
		count(c, TM_CNT_FREES);
	}
}

/* Forget the live block (tgid, domain, addr), if tmbpf saw it. */
static __always_inline void forget_block(const struct tm_proc_config *c, __u32 tgid,
					 __u32 domain, __u64 addr)
{
	struct tm_block_key key = { .pid = tgid, .domain = domain, .addr = addr };
	struct tm_block *b = bpf_map_lookup_elem(&live_blocks, &key);

	if (b)
		drop_block(c, &key, b);
	else
		count(c, TM_CNT_FREE_UNKNOWN);
}

/* The allocation time: bpf_ktime_get_ns() reads the TSC, ~30 ns an
 * allocation here (kernel.bpf_stats on the objects workload), so it is read
 * once per CPU per jiffy and reused within it: times lag by at most a tick
 * (1-10 ms), and stay CLOCK_MONOTONIC. 3.8's free-list probes compare an
 * allocation's time with a call's entry: precise there. */
static __always_inline __u64 alloc_time(const struct tm_proc_config *c)
{
	__u32 zero = 0;
	struct scratch *s;
	__u64 j;

	if (c->py_version < 0x0309)
		return bpf_ktime_get_ns();
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return bpf_ktime_get_ns();
	j = bpf_jiffies64();
	if (j != s->clock_jiffies) {
		s->clock_ns = bpf_ktime_get_ns();
		s->clock_jiffies = j;
	}
	return s->clock_ns;
}

static __always_inline void record_block(const struct tm_proc_config *c, __u64 pid_tgid,
					 __u32 domain, __u64 addr, __u64 size, int viewed)
{
	__u32 tgid = pid_tgid >> 32;
	struct tm_block_key key = { .pid = tgid, .domain = domain, .addr = addr };
	struct tm_block blk = {
		.size_bytes = size,
		.tid = (__u32)pid_tgid,
	};
	struct tm_block *old;
	long err;

	blk.stack_id = capture_stack(c, tgid, viewed);
	blk.alloc_ns = alloc_time(c);
	/* The usual case in one hash operation: the address is not live. */
	err = bpf_map_update_elem(&live_blocks, &key, &blk, BPF_NOEXIST);
	if (err == -17 /* EEXIST */) {
		old = bpf_map_lookup_elem(&live_blocks, &key);
		if (old) {
			/* Its free went unseen (e.g. freed through an unprobed path). */
			traced_add(c, -(__s64)old->size_bytes);
			count(c, TM_CNT_REPLACED);
		}
		err = bpf_map_update_elem(&live_blocks, &key, &blk, BPF_ANY);
		if (err && old)
			bpf_map_delete_elem(&live_blocks, &key);
	}
	if (err) {
		count(c, TM_CNT_DROP_BLOCKS_FULL);
		return;
	}
	traced_add(c, (__s64)size);
	count(c, TM_CNT_ALLOCS);
}

/* The config of the process the probe (its cookie) was attached for, or
 * NULL when the slot is not that process's (any more) or its maps are frozen. */
static __always_inline struct tm_proc_config *proc_of(__u64 cookie, __u32 tgid)
{
	__u32 slot = TM_COOKIE_SLOT(cookie);
	struct tm_proc_config *c = bpf_map_lookup_elem(&procs, &slot);

	return c && c->pid == tgid ? c : 0;
}

static __always_inline struct tm_proc_config *live_proc(__u64 cookie, __u32 tgid)
{
	struct tm_proc_config *c = proc_of(cookie, tgid);

	if (c && c->finalizing) {
		count(c, TM_CNT_FROZEN);
		return 0;
	}
	return c;
}

/* Session uprobes (kernel 6.13+): one program at entry and at return; an
 * entry that returns 1 skips the return. Weak, so that an older kernel still
 * loads the other programs (user space then does not load this one). */
extern bool bpf_session_is_return(void) __ksym __weak;

/* pymalloc's pool header, 3.8-3.13 (Objects/obmalloc.c). */
struct pool_head {
	__u32 count;     /* blocks allocated (ref.count) */
	__u32 _pad;
	__u64 freeblock; /* the block the next allocation of this pool returns */
	__u64 nextpool;
	__u64 prevpool;
	__u32 arenaindex;
	__u32 szidx;     /* size class */
};

/* Per CPU, per traced process and size class: the pool that was first in
 * usedpools for it last time. Only a hint: pool_is_first() proves it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TM_MAX_PROCS * TM_PYMALLOC_CLASSES);
	__type(key, __u32);
	__type(value, __u64);
} pool_hints SEC(".maps");

/* Is the pool whose header is h still usedpools[2 * cls] (the pool
 * pymalloc_alloc takes its block from), with a block to give? A pool in a
 * used list is in use (count > 0) and its prevpool is exact: the list head of
 * its class (the usedpools slot minus two pointers) only when it is first.
 * A pool that left the list keeps a stale prevpool, but then it is either
 * full (freeblock NULL) or empty (count 0, back in its arena's free pools);
 * re-linked or re-carved for any class, the fields are set again. */
static __always_inline int pool_is_first(const struct tm_proc_config *c, const struct pool_head *h,
					 __u32 cls)
{
	return h->count && h->freeblock && h->szidx == cls &&
	       h->prevpool == c->usedpools + (__u64)cls * 16 - 16;
}

/* The block pymalloc_alloc(size) is about to return, or 0 when that is not
 * known at entry (TM_PREDICT_* in tmbpf.h). Sizes 1..512 only: others go to
 * the raw allocator, whose own probes see them. The pool of the size class
 * is usedpools[2 * cls]; the hint of the last one saves reading that slot
 * (one bpf_probe_read_user, ~23 ns) while it is still the one. */
static __always_inline __u64 predict_pymalloc(const struct tm_proc_config *c, __u64 size,
						int *viewed)
{
	__u32 cls = (__u32)((size - 1) >> 4), key;
	struct pool_head h = {};
	__u64 pool, *hint;

	if (!(c->predict & TM_PREDICT_ON) || !c->usedpools || size - 1 >= 512)
		return 0;
	if (c->ts_interp != TM_NO_OFFSET) {
		__u32 zero = 0;
		struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);

		if (!s)
			return 0;
		tstate_view(c, s);
		*viewed = 1; /* the stack capture reuses it */
		if (!s->tv.ts || s->tv.interp != c->main_interp)
			return 0;
	}
	key = c->mem_slot * TM_PYMALLOC_CLASSES + (cls & (TM_PYMALLOC_CLASSES - 1));
	hint = bpf_map_lookup_elem(&pool_hints, &key);
	if (hint && *hint && bpf_probe_read_user(&h, sizeof(h), (const void *)*hint) == 0 &&
	    pool_is_first(c, &h, cls))
		return h.freeblock;
	pool = read_u64(c->usedpools + (__u64)cls * 16);
	if (!pool || bpf_probe_read_user(&h, sizeof(h), (const void *)pool))
		return 0;
	if (h.nextpool == pool) /* the size class has no usable pool: a new one is carved */
		return 0;
	if (hint)
		*hint = pool;
	return h.freeblock;
}

/* An allocator's entry. Returns 1 when its return need not be seen (nested,
 * not traced, or recorded here from a prediction), else 0. */
static __always_inline int on_allocator_entry(struct pt_regs *ctx, int session)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 kind = TM_COOKIE_KIND(cookie);
	__u64 sp = ctx->sp, size, old = 0, bp = 0;
	int viewed = 0;
	struct tm_proc_config *c;
	struct pending *p;
	struct regs g;

	c = live_proc(cookie, pid_tgid >> 32);
	if (!c)
		return 1;
	p = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!p) {
		count(c, TM_CNT_DROP_PENDING_FULL);
		return 1;
	}
	if (p->active) {
		/* Below the outer call's entry, or at it: a tail call from it
		 * (_PyObject_Realloc ends in `return PyMem_RawRealloc(...)`). */
		if (sp <= p->sp) {
			count(c, TM_CNT_NESTED);
			return 1;
		}
		count(c, TM_CNT_DROP_NO_RETURN); /* the outer call's return went unseen */
		p->active = 0;
	}
	load_regs(ctx, &g);
	if (kind == TM_PROBE_CALLOC)
		size = arg(&g, cookie, 1) * arg(&g, cookie, 2);
	else if (kind == TM_PROBE_REALLOC) {
		old = arg(&g, cookie, 1);
		size = arg(&g, cookie, 2);
	} else
		size = arg(&g, cookie, 1);
	if (session && (cookie & TM_COOKIE_PYMALLOC)) {
		/* pymalloc hands sizes 0 and > 512 to PyMem_RawMalloc/Calloc
		 * unchanged, whose own probes record them: same size, same
		 * stack, domain 0, as tracemalloc sees the outer call. */
		if (size - 1 >= 512)
			return 1;
		bp = predict_pymalloc(c, size, &viewed);
	}
	if (bp)
		count(c, TM_CNT_PREDICTED);
	if (bp && !(c->predict & TM_PREDICT_CHECK)) {
		record_block(c, pid_tgid, 0, bp, size, viewed);
		p->last_addr = bp;
		return 1;
	}
	p->sp = sp;
	p->kind = kind;
	p->old_addr = old;
	p->size = size;
	p->predicted = bp;
	p->active = 1;
	return 0;
}

static __always_inline void on_allocator_return(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 entry_sp = ctx->sp - 8; /* ret popped the return address */
	__u64 addr = ctx->ax;
	struct tm_proc_config *c;
	struct pending *p;

	p = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0, 0);
	/* Returns of nested calls come first (a tail-called one at the same
	 * entry_sp completes the record: the size requested is the outer's). */
	if (!p || !p->active || entry_sp < p->sp)
		return; /* nested call returning, or an entry we did not record */
	p->active = 0;
	c = live_proc(cookie, pid_tgid >> 32);
	if (!c)
		return;
	if (entry_sp > p->sp) {
		count(c, TM_CNT_DROP_NO_RETURN);
		return;
	}
	if (p->predicted && p->predicted != addr)
		count(c, TM_CNT_PREDICT_WRONG);
	if (!addr)
		return; /* frozen, or the allocation failed (a failed realloc keeps the old block) */
	if (p->kind == TM_PROBE_REALLOC && p->old_addr)
		forget_block(c, pid_tgid >> 32, 0, p->old_addr);
	record_block(c, pid_tgid, 0, addr, p->size, 0);
	p->last_addr = addr;
}

SEC("uprobe")
int allocator_enter(struct pt_regs *ctx)
{
	on_allocator_entry(ctx, 0);
	return 0;
}

SEC("uretprobe")
int allocator_exit(struct pt_regs *ctx)
{
	on_allocator_return(ctx);
	return 0;
}

/* The allocators' malloc, calloc and realloc as a session: entry and return
 * in one program, the return skipped when the entry predicted the block
 * (pymalloc) or the call is nested or handed to the raw allocator. */
SEC("uprobe")
int allocator_session(struct pt_regs *ctx)
{
	int skip;

	if (bpf_session_is_return && bpf_session_is_return()) {
		on_allocator_return(ctx);
		return 0;
	}
	skip = on_allocator_entry(ctx, 1);
	barrier_var(skip); /* the verifier wants an exit value it can bound */
	return skip ? 1 : 0;
}

SEC("uprobe")
int allocator_free(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct tm_block_key key = { .pid = tgid, .domain = 0 };
	struct tm_proc_config *c;
	struct tm_block *b;
	struct regs g;

	load_regs(ctx, &g);
	key.addr = arg(&g, cookie, 1);
	if (!key.addr)
		return 0;
	c = live_proc(cookie, tgid);
	if (!c)
		return 0;
	/* One lookup decides; a free of a block never seen costs nothing more. */
	b = bpf_map_lookup_elem(&live_blocks, &key);
	if (b)
		drop_block(c, &key, b);
	else
		count(c, TM_CNT_FREE_UNKNOWN);
	return 0;
}

SEC("uprobe")
int track_enter(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct tm_proc_config *c = live_proc(cookie, pid_tgid >> 32);
	struct regs g;
	__u64 addr;

	load_regs(ctx, &g);
	addr = arg(&g, cookie, 1);
	if (!c || !addr)
		return 0;
	record_block(c, pid_tgid, (__u32)arg(&g, cookie, 0), addr, arg(&g, cookie, 2), 0);
	return 0;
}

SEC("uprobe")
int untrack_enter(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct tm_proc_config *c = live_proc(cookie, tgid);
	struct regs g;

	load_regs(ctx, &g);
	if (c)
		forget_block(c, tgid, (__u32)arg(&g, cookie, 0), arg(&g, cookie, 1));
	return 0;
}

/* _Py_NewReference(op): tracemalloc gives the block of a new object the
 * current traceback (_PyTraceMalloc_NewReference / its 3.13 reftracer), so an
 * object taken from a free list is attributed to where it was reused, not to
 * where its memory was first allocated. A fresh object's block was just
 * recorded by this thread with this very stack: nothing to do then. */
SEC("uprobe")
int newref_enter(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct tm_block_key key = { .pid = pid_tgid >> 32, .domain = 0 };
	struct tm_proc_config *c;
	struct pending *p;
	struct tm_block *b;
	struct regs g;
	__u64 op, type = 0, flags = 0;

	c = live_proc(cookie, key.pid);
	if (!c)
		return 0;
	load_regs(ctx, &g);
	op = arg(&g, cookie, 0);
	if (!op || bpf_probe_read_user(&type, sizeof(type), (void *)(op + 8)) || !type ||
	    bpf_probe_read_user(&flags, sizeof(flags), (void *)(type + TM_TP_FLAGS)))
		return 0;
	key.addr = op - ((flags & c->newref_gc_mask) ? 16 : 0) -
		   ((flags & c->newref_preheader_mask) ? 16 : 0);
	p = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0, 0);
	if (p && p->last_addr == key.addr) {
		p->last_addr = 0;
		return 0;
	}
	b = bpf_map_lookup_elem(&live_blocks, &key);
	if (!b)
		return 0; /* allocated before attach: tracemalloc cannot track it either */
	b->stack_id = capture_stack(c, key.pid, 0);
	count(c, TM_CNT_NEWREF);
	return 0;
}

/* 3.8 inlines _Py_NewReference into each free list, so the functions that
 * pop them are probed instead, at entry and return: an object returned whose
 * block was allocated before the call began came from a free list. */
struct freelist_call {
	__u64 sp;    /* user %rsp at the outer call's entry; 0: none */
	__u64 ts_ns; /* its entry time */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 14);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct freelist_call);
} freelist_calls SEC(".maps");

SEC("uprobe")
int freelist_enter(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct freelist_call *r = bpf_map_lookup_elem(&freelist_calls, &pid_tgid);
	struct freelist_call n = { .sp = ctx->sp, .ts_ns = bpf_ktime_get_ns() };

	if (!live_proc(bpf_get_attach_cookie(ctx), pid_tgid >> 32))
		return 0;
	if (r && r->sp && ctx->sp < r->sp)
		return 0; /* nested (PyDict_New -> new_dict): the outer call decides */
	bpf_map_update_elem(&freelist_calls, &pid_tgid, &n, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int freelist_exit(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct freelist_call *r = bpf_map_lookup_elem(&freelist_calls, &pid_tgid);
	struct tm_block_key key = { .pid = pid_tgid >> 32, .domain = 0 };
	struct tm_proc_config *c;
	struct tm_block *b;
	__u64 op = ctx->ax, type = 0, flags = 0, ts;

	if (!r || r->sp != ctx->sp - 8)
		return 0; /* a nested call returning, or an entry not recorded */
	ts = r->ts_ns;
	r->sp = 0;
	c = live_proc(bpf_get_attach_cookie(ctx), key.pid);
	if (!c || !op || bpf_probe_read_user(&type, sizeof(type), (void *)(op + 8)) || !type ||
	    bpf_probe_read_user(&flags, sizeof(flags), (void *)(type + TM_TP_FLAGS)))
		return 0;
	key.addr = op - ((flags & c->newref_gc_mask) ? 16 : 0) -
		   ((flags & c->newref_preheader_mask) ? 16 : 0);
	b = bpf_map_lookup_elem(&live_blocks, &key);
	if (!b || b->alloc_ns >= ts)
		return 0; /* untraced, or allocated by this call */
	b->stack_id = capture_stack(c, key.pid, 0);
	count(c, TM_CNT_NEWREF);
	return 0;
}

SEC("uprobe")
int finalize_enter(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct tm_proc_config *c = proc_of(bpf_get_attach_cookie(ctx), tgid);
	struct tm_event *e;

	if (!c || c->finalizing)
		return 0;
	c->finalizing = 1;
	if (c->stop_on_finalize)
		bpf_send_signal(19 /* SIGSTOP */);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->type = TM_EVENT_FINALIZING;
	e->pid = tgid;
	e->ts_ns = bpf_ktime_get_ns();
	e->stack_id = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}
