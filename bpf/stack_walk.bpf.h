/* Walking the Python frames of the current thread into the scratch stack,
 * interning it in `stacks` and announcing new ones to user space (with the
 * identity of their code objects). */
#ifndef TMBPF_STACK_WALK_BPF_H
#define TMBPF_STACK_WALK_BPF_H

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
	if (w->interp && w->f_owner != TM_NO_OFFSET && f[w->f_owner & (FRAME_BUF - 1)] >= TM_OWNER_CSTACK) {
		w->frame = back; /* shim, interpreter or base frame (3.12+): not a Python frame */
		return 0;
	}
	w->total++;
	n = w->n;
	if (n < w->max_frames && n < TM_BPF_MAX_FRAMES) {
		/* 3.14+: f_executable is a _PyStackRef whose low bits tag it;
		 * an object pointer is 16-byte aligned in every version, so
		 * clearing them is right for all. */
		code = buf_u64(f, w->f_code) & ~TM_CODE_TAG_BITS;
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
static __noinline __u64 capture_stack(const struct tm_proc_config *c, __u32 tgid, int viewed)
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

#endif
