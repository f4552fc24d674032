/* Helpers every program uses: counters, the user registers by number,
 * reads of the target, the stack hash, finding the process of a probe. */
#ifndef TMBPF_COMMON_BPF_H
#define TMBPF_COMMON_BPF_H

/* errno and signal numbers (vmlinux.h carries no macros) */
#define TM_EEXIST 17
#define TM_SIGSTOP 19

/* The current task's (tgid << 32 | pid) as tmbpf sees pids: in its own
 * PID namespace when it runs in one (tm_cfg.pidns_*; a task outside it is
 * 0, never traced), else the initial namespace's. */
struct tm_pidns_info { /* uapi struct bpf_pidns_info (not in vmlinux.h) */
	__u32 pid, tgid;
};

static __always_inline __u64 current_pid_tgid(void)
{
	struct tm_pidns_info ns;

	if (!tm_cfg.pidns_ino)
		return bpf_get_current_pid_tgid();
	if (bpf_get_ns_current_pid_tgid(tm_cfg.pidns_dev, tm_cfg.pidns_ino, (void *)&ns, sizeof(ns)))
		return 0;
	return (__u64)ns.tgid << 32 | ns.pid;
}

/* Per-process counters: slot cfg.mem_slot, TM_CNT_MAX each. */
static __always_inline void count_slot(__u32 slot, __u32 which)
{
	__u32 idx = slot * TM_CNT_MAX + which;
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1;
}

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

#endif
