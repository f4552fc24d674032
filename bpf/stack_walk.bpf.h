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

/* The image of the code object of frame i of the scratch stack, once per
 * (pid, address, identity): head, co_filename's str, the line table and,
 * <=3.10, co_code's header (struct tm_code_image). Each part that cannot
 * be read is left out: user space reads memory for it instead. */
struct image_walk {
	__u32 tgid, mem_slot;
	__u16 co_filename, co_lines, co_code, str_ascii_data, str_compact_data;
};

static __always_inline __u64 img_u64(const struct tm_code_image *img, __u32 off)
{
	off &= TM_CODE_IMAGE_HEAD - 8;
	return *(const __u64 *)(img->data + off);
}

static long send_image(__u64 i, struct image_walk *iw)
{
	__u32 zero = 0, idx = (__u32)i & (TM_BPF_MAX_FRAMES - 1), len, off;
	struct code_key key = { .pid = iw->tgid };
	struct tm_code_image *img;
	struct scratch *s;
	__u64 hdr[6], addr, length;
	__u32 state, kind, data_off;
	__u8 one = 1;

	s = bpf_map_lookup_elem(&scratch, &zero);
	img = bpf_map_lookup_elem(&code_image, &zero);
	if (!s || !img || i >= TM_BPF_MAX_FRAMES)
		return 1;
	key.code = s->stack.frames[idx].code;
	key.check = s->stack.frames[idx].check;
	if (!key.code || !key.check || bpf_map_lookup_elem(&code_sent, &key))
		return 0;
	img->type = TM_EVENT_CODE;
	img->pid = iw->tgid;
	img->code = key.code;
	img->check = key.check;
	img->str_len = img->lines_len = img->cobytes_len = 0;
	img->str_addr = img->lines_addr = img->cobytes_addr = 0;
	if (bpf_probe_read_user(img->data, TM_CODE_IMAGE_HEAD, (const void *)key.code))
		return 0;
	img->head_len = TM_CODE_IMAGE_HEAD;
	/* <=3.10: co_code's header (its size bounds a position) */
	if (iw->co_code != TM_NO_OFFSET) {
		addr = img_u64(img, iw->co_code);
		if (addr && !bpf_probe_read_user(img->data + TM_CODE_IMAGE_HEAD, TM_CODE_IMAGE_COBYTES,
						 (const void *)addr)) {
			img->cobytes_addr = addr;
			img->cobytes_len = TM_CODE_IMAGE_COBYTES;
		}
	}
	off = TM_CODE_IMAGE_HEAD + TM_CODE_IMAGE_COBYTES;
	/* co_filename: a compact str, header then characters */
	addr = img_u64(img, iw->co_filename);
	if (addr && !bpf_probe_read_user(hdr, 0x30, (const void *)addr)) {
		length = hdr[2];       /* +0x10 */
		state = (__u32)hdr[4]; /* +0x20 */
		kind = (state & (1u << 6)) ? 1 : (state >> 2) & 7;
		data_off = (state & (1u << 6)) ? iw->str_ascii_data : iw->str_compact_data;
		len = data_off + (__u32)(length < TM_CODE_IMAGE_STR ? length : TM_CODE_IMAGE_STR) * kind;
		if (len < TM_CODE_IMAGE_STR_MIN)
			len = TM_CODE_IMAGE_STR_MIN; /* what user space reads of a header */
		if ((state & (1u << 5)) && kind <= 4 && length < TM_CODE_IMAGE_STR && len < TM_CODE_IMAGE_STR) {
			barrier_var(len); /* keep the mask: the verifier bounds this register */
			len &= TM_CODE_IMAGE_STR - 1;
			if (!bpf_probe_read_user(img->data + off, len, (const void *)addr)) {
				img->str_addr = addr;
				img->str_len = (__u16)len;
				off += len;
			}
		}
	}
	/* the line table: a bytes object, header then data */
	addr = img_u64(img, iw->co_lines);
	if (addr && !bpf_probe_read_user(hdr, 0x20, (const void *)addr) &&
	    hdr[2] + 0x20 < TM_CODE_IMAGE_LINES) {
		len = (__u32)hdr[2] + 0x20;
		barrier_var(len);
		len &= TM_CODE_IMAGE_LINES - 1;
		barrier_var(off);
		off &= 2047;
		if (!bpf_probe_read_user(img->data + off, len, (const void *)addr)) {
			img->lines_addr = addr;
			img->lines_len = (__u16)len;
			off += len;
		}
	}
	len = offsetof(struct tm_code_image, data) + off;
	barrier_var(len);
	len &= 8191;
	if (len > sizeof(*img))
		return 0;
	if (bpf_ringbuf_output(&events, img, len, 0)) {
		count_slot(iw->mem_slot, TM_CNT_EVENTS_LOST);
		return 0;
	}
	bpf_map_update_elem(&code_sent, &key, &one, BPF_ANY);
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

		struct image_walk iw = {
			.tgid = tgid, .mem_slot = c->mem_slot,
			.co_filename = c->co_filename, .co_lines = c->co_lines, .co_code = c->co_code,
			.str_ascii_data = c->str_ascii_data, .str_compact_data = c->str_compact_data,
		};

		bpf_loop(w->n, check_frame, &cw, 0);
		bpf_loop(w->n, send_image, &iw, 0);
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
