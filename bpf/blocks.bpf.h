/* Live blocks: recording, forgetting and replacing them, traced memory
 * (current and peak), allocation times. */
#ifndef TMBPF_BLOCKS_BPF_H
#define TMBPF_BLOCKS_BPF_H

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
	if (err == -TM_EEXIST) {
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

#endif
