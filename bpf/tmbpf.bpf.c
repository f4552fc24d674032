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

/* Maps first, then the helpers by concern; the programs below. */
#include "maps.bpf.h"
#include "common.bpf.h"
#include "tstate.bpf.h"
#include "stack_walk.bpf.h"
#include "blocks.bpf.h"

/* Session uprobes (kernel 6.13+): one program at entry and at return; an
 * entry that returns 1 skips the return. Weak, so that an older kernel still
 * loads the other programs (user space then does not load this one). */
extern bool bpf_session_is_return(void) __ksym __weak;


#include "predict.bpf.h"

/* An allocator's entry. Returns 1 when its return need not be seen (nested,
 * not traced, or recorded here from a prediction), else 0. */
static __always_inline int on_allocator_entry(struct pt_regs *ctx, int session)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 pid_tgid = current_pid_tgid();
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
	__u64 pid_tgid = current_pid_tgid();
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
	__u32 tgid = current_pid_tgid() >> 32;
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

/* Sampled mode: is this PyTraceMalloc_Track of size bytes a sample? The
 * same byte-weighted Poisson process as the stub's (patch/stub.h), with
 * its own counter per process; races between threads only blur the gaps. */
static __always_inline int track_sampled(const struct tm_proc_config *c, __u64 size)
{
	__u32 slot = c->mem_slot, k;
	struct tm_sample_state *st = bpf_map_lookup_elem(&sample_state, &slot);
	__u64 *iv;

	if (!st)
		return 0;
	st->remaining -= (__s64)size;
	if (st->remaining > 0)
		return 0;
	/* a random draw of the table, not the next one: a cycle through it would
	 * repeat its sampling points */
	k = bpf_get_prandom_u32() % TM_SAMPLE_INTERVALS;
	iv = bpf_map_lookup_elem(&sample_intervals, &k);
	st->remaining = iv ? (__s64)*iv : (__s64)c->sample_bytes;
	return 1;
}

SEC("uprobe")
int track_enter(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 pid_tgid = current_pid_tgid();
	struct tm_proc_config *c = live_proc(cookie, pid_tgid >> 32);
	struct regs g;
	__u64 addr;

	load_regs(ctx, &g);
	addr = arg(&g, cookie, 1);
	if (!c || !addr)
		return 0;
	if (c->sample_bytes && !track_sampled(c, arg(&g, cookie, 2)))
		return 0;
	record_block(c, pid_tgid, (__u32)arg(&g, cookie, 0), addr, arg(&g, cookie, 2), 0);
	return 0;
}

SEC("uprobe")
int untrack_enter(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 tgid = current_pid_tgid() >> 32;
	struct tm_proc_config *c = live_proc(cookie, tgid);
	struct regs g;

	load_regs(ctx, &g);
	if (c)
		forget_block(c, tgid, (__u32)arg(&g, cookie, 0), arg(&g, cookie, 1));
	return 0;
}

/* Block b of a new object: tracemalloc gives it the current traceback
 * (_PyTraceMalloc_NewReference / its 3.13 ref tracer), so an object taken
 * from a free list is attributed to where it was reused. A fresh object's
 * block was just recorded by this thread with this very stack. */
static __always_inline void reattribute(const struct tm_proc_config *c, __u64 pid_tgid, __u64 block)
{
	struct tm_block_key key = { .pid = pid_tgid >> 32, .domain = 0, .addr = block };
	struct pending *p = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0, 0);
	struct tm_block *b;

	if (p && p->last_addr == block) {
		p->last_addr = 0;
		return;
	}
	b = bpf_map_lookup_elem(&live_blocks, &key);
	if (!b)
		return; /* allocated before attach: tracemalloc cannot track it either */
	b->stack_id = capture_stack(c, key.pid, 0);
	count(c, TM_CNT_NEWREF);
}

/* An allocation the stub reports: recorded, and remembered as this
 * thread's last block (its _Py_NewReference needs no second walk). */
static __always_inline void stub_record(const struct tm_proc_config *c, __u64 pid_tgid, __u64 addr,
					__u64 size)
{
	struct pending *p = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0,
						 BPF_LOCAL_STORAGE_GET_F_CREATE);

	record_block(c, pid_tgid, 0, addr, size, 0);
	if (p)
		p->last_addr = addr;
}

/* The stub's quarantine: n entries at user address at, the block first. */
static __always_inline void forget_batch(const struct tm_proc_config *c, __u32 tgid, __u64 at, __u64 n)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);

	if (!s || n > TM_STUB_QUARANTINE)
		return;
	if (bpf_probe_read_user(s->quarantine, sizeof(s->quarantine), (const void *)at))
		return;
#pragma unroll
	for (int i = 0; i < TM_STUB_QUARANTINE; i++)
		if (i < n)
			forget_block(c, tgid, 0, s->quarantine[i * (TM_STUB_QENTRY_SIZE / 8)]);
}

/* Every report point of the stub (user/patch/stub/stub.S): the event in the
 * cookie, its values in the registers tmbpf_stub.h names. One program run
 * per event; nothing to pair. */
SEC("uprobe")
int stub_event(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 pid_tgid = current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct tm_proc_config *c = live_proc(cookie, tgid);
	__u64 ax = ctx->ax, bx = ctx->bx, r12 = ctx->r12;

	if (!c)
		return 0;
	switch (TM_COOKIE_STUB_EVENT(cookie)) {
	case TM_STUB_MALLOC:
		if (ax)
			stub_record(c, pid_tgid, ax, bx);
		break;
	case TM_STUB_CALLOC:
		if (ax)
			stub_record(c, pid_tgid, ax, bx * r12);
		break;
	case TM_STUB_REALLOC:
		if (!ax)
			break; /* failed: the old block stays */
		if (bx)
			forget_block(c, tgid, 0, bx);
		stub_record(c, pid_tgid, ax, r12);
		break;
	case TM_STUB_FREE:
		forget_block(c, tgid, 0, r12);
		break;
	case TM_STUB_FREE_BATCH:
		forget_batch(c, tgid, r12, bx);
		break;
	case TM_STUB_NEWREF:
		reattribute(c, pid_tgid, r12);
		break;
	case TM_STUB_SAMPLED_REALLOC:
		if (bx)
			forget_block(c, tgid, 0, bx);
		if (ax)
			stub_record(c, pid_tgid, ax, r12);
		break;
	}
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
	__u64 pid_tgid = current_pid_tgid();
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


SEC("uprobe")
int freelist_enter(struct pt_regs *ctx)
{
	__u64 pid_tgid = current_pid_tgid();
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
	__u64 pid_tgid = current_pid_tgid();
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
	__u32 tgid = current_pid_tgid() >> 32;
	struct tm_proc_config *c = proc_of(bpf_get_attach_cookie(ctx), tgid);
	struct tm_event *e;

	if (!c || c->finalizing)
		return 0;
	c->finalizing = 1;
	/* The finalizing thread only: it holds the GIL, so no other thread
	 * runs Python code (frees code objects) while it is stopped. */
	if (c->stop_on_finalize)
		bpf_send_signal_thread(c->finalize_signal ? c->finalize_signal : TM_SIGSTOP);
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


/* Process watch (tmbpf --all; loaded only then): new programs, forks and
 * exits of traced processes, as ring-buffer events for user space, which
 * decides what to trace. An exec or exit freezes a traced process's slot at
 * once, as finalization does: nothing of the next program can land in it. */
static __always_inline void proc_event(__u32 type, __u32 pid, __u32 child, const char *name)
{
	struct tm_proc_event *e = bpf_ringbuf_reserve(&proc_events, sizeof(*e), 0);

	if (!e)
		return; /* user space rescans /proc now and then */
	e->type = type;
	e->pid = pid;
	e->ts_ns = bpf_ktime_get_ns();
	e->child = child;
	e->_pad = 0;
	e->name[0] = '\0';
	if (name)
		bpf_probe_read_kernel_str(e->name, sizeof(e->name), name);
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void freeze_traced(__u32 tgid)
{
	__u32 *slot = bpf_map_lookup_elem(&traced_tgids, &tgid);
	struct tm_proc_config *c;

	if (!slot)
		return;
	c = bpf_map_lookup_elem(&procs, slot);
	if (c && c->pid == tgid)
		c->finalizing = 1;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(watch_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = current_pid_tgid() >> 32;

	if (!tgid)
		return 0; /* outside tmbpf's PID namespace */
	freeze_traced(tgid);
	proc_event(TM_EVENT_EXEC, tgid, 0, BPF_CORE_READ(bprm, filename));
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(watch_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 tgid = current_pid_tgid() >> 32;

	if (!tgid || child->pid != child->tgid || !bpf_map_lookup_elem(&traced_tgids, &tgid))
		return 0; /* a thread, or a process we do not trace */
	proc_event(TM_EVENT_FORK, tgid, (__u32)child->pid, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(watch_exit, struct task_struct *p, bool group_dead)
{
	__u64 id = current_pid_tgid();
	__u32 tgid = id >> 32;

	if (!tgid || !group_dead || !bpf_map_lookup_elem(&traced_tgids, &tgid))
		return 0;
	freeze_traced(tgid);
	proc_event(TM_EVENT_EXIT, tgid, 0, 0);
	return 0;
}
