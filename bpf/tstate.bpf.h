/* The current thread's PyThreadState: the routes of tmbpf.h (TLS, GIL
 * holder, 3.15's gilstate TLS, glibc TSD), one read of the span of fields
 * used, and 3.12+'s per-thread cache proven by _status. */
#ifndef TMBPF_TSTATE_BPF_H
#define TMBPF_TSTATE_BPF_H

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
	if (routes & TM_TSTATE_TLS_GILSTATE) { /* 3.15+: the thread-local that replaced autoTSSkey */
		ts = read_u64(fsbase + c->tls_gilstate_offset);
		if (ts && tstate_read(c, s, ts, 0, 0) == 0)
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

#endif
