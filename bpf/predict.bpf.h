/* Predicting pymalloc's result at its entry (session uprobes): the pool
 * hints and the proof that a pool is the one pymalloc takes from. */
#ifndef TMBPF_PREDICT_BPF_H
#define TMBPF_PREDICT_BPF_H

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

#endif
