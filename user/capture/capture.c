/* Capture session: skeleton lifecycle, traced processes, ring buffer,
 * counters and memory figures. Probe placement and attaching are in
 * capture_attach.c, map reading and snapshots in capture_snapshot.c. */
#include <errno.h>
#include <sys/stat.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "capture/capture_priv.h"
#include "core/log.h"
#include "core/sampling.h"
#include "target/layouts.h"
#include "capture/uprobe_multi.h"

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct counter_info {
	const char *name, *what, *remedy;
	int loss;
};

static const struct counter_info counters[TM_CNT_MAX] = {
#define TM_COUNTER_INFO(e, n, l, w, r) [TM_CNT_##e] = { .name = n, .what = w, .remedy = r, .loss = l },
	TM_COUNTERS(TM_COUNTER_INFO)
#undef TM_COUNTER_INFO
};

const char *tm_counter_name(enum tm_counter k)
{
	return (unsigned)k < TM_CNT_MAX ? counters[k].name : "unknown";
}

const char *tm_counter_meaning(enum tm_counter k)
{
	return (unsigned)k < TM_CNT_MAX ? counters[k].what : "";
}

const char *tm_counter_remedy(enum tm_counter k)
{
	return (unsigned)k < TM_CNT_MAX ? counters[k].remedy : "";
}

int tm_counter_is_loss(enum tm_counter k)
{
	return (unsigned)k < TM_CNT_MAX && counters[k].loss;
}

#define DEFAULT_MAX_BLOCKS (1u << 20)
#define DEFAULT_MAX_STACKS (1u << 16)

/* libbpf's messages go through the log callback: warnings as warnings,
 * its info and debug lines as debug (libbpf prints them with a newline). */
static int libbpf_to_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum tm_log_level l = level == LIBBPF_WARN ? TM_LOG_WARN : TM_LOG_DEBUG;
	char *msg = NULL, *p, *nl;

	if (level == LIBBPF_DEBUG)
		l = TM_LOG_TRACE;
	if (!tm_log_enabled(l) || vasprintf(&msg, fmt, ap) < 0)
		return 0;
	/* one log line per line (a verifier log is thousands of them) */
	for (p = msg; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		if (*p)
			tm_log(l, "libbpf: %s", p);
		if (!nl)
			break;
	}
	free(msg);
	return 0;
}

struct tm_capture_proc *tm_capture_proc_find(struct tm_capture *c, pid_t pid)
{
	for (size_t i = 0; i < c->nprocs; i++)
		if (c->procs[i].pid == pid)
			return &c->procs[i];
	return NULL;
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct tm_capture *c = ctx;
	const struct tm_event *e = data;
	struct tm_capture_proc *p;

	if (size >= offsetof(struct tm_code_image, data) &&
	    ((const struct tm_code_image *)data)->type == TM_EVENT_CODE) {
		p = tm_capture_proc_find(c, (pid_t)((const struct tm_code_image *)data)->pid);
		if (p && p->sym)
			tm_symbolizer_add_image(p->sym, data, size);
		return 0;
	}
	if (size < sizeof(*e))
		return 0;
	if ((e->type == TM_EVENT_EXEC || e->type == TM_EVENT_FORK || e->type == TM_EVENT_EXIT) &&
	    size >= sizeof(struct tm_proc_event)) {
		/* Handed to the hook after the ring is read: libbpf moves its
		 * consumer position past a record only once this returns, so a
		 * hook that polls again (to write a snapshot) would get the
		 * same record again. */
		if (c->nproc_queue < PROC_QUEUE_MAX)
			c->proc_queue[c->nproc_queue++] = *(const struct tm_proc_event *)data;
		else
			c->proc_queue_lost++;
		return 0;
	}
	if (e->type == TM_EVENT_FINALIZING) {
		p = tm_capture_proc_find(c, (pid_t)e->pid);
		if (p)
			p->finalizing = 1;
	} else if (e->type == TM_EVENT_NEW_STACK) {
		tm_capture_stack_announced(c, (pid_t)e->pid, e->stack_id);
	}
	return 0;
}

static int size_maps(struct tmbpf_bpf *skel, const struct tm_capture_opts *o)
{
	int err;

	/* A system-wide session announces the stacks and code images of many
	 * processes at once: a 4 MiB ring overflowed with 20 starting together. */
	err = o->watch ? bpf_map__set_max_entries(skel->maps.events, WATCH_EVENTS_BYTES) : 0;
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.live_blocks, o->max_blocks);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.stacks, o->max_stacks);
	if (!err)
		err = bpf_map__set_value_size(skel->maps.stacks, TM_STACK_BYTES(o->max_frames));
	return err;
}

/* include/linux/proc_ns.h: the initial PID namespace's inode number */
#define PROC_PID_INIT_INO 0xEFFFFFFCu

static int open_and_load(struct tm_capture *c)
{
	struct bpf_program *prog;
	int e;

	c->skel = tmbpf_bpf__open();
	if (!c->skel)
		return -errno;
	c->skel->rodata->tm_cfg.walk_limit = c->opts.walk_limit;
	{
		/* In a PID namespace of its own (a container), tmbpf names
		 * processes by that namespace's pids; BPF must too. */
		struct stat ns;

		if (stat("/proc/self/ns/pid", &ns) == 0 && ns.st_ino != PROC_PID_INIT_INO) {
			c->skel->rodata->tm_cfg.pidns_dev = ns.st_dev;
			c->skel->rodata->tm_cfg.pidns_ino = ns.st_ino;
			tm_log(TM_LOG_DEBUG, "in PID namespace %llu: BPF translates pids",
			       (unsigned long long)ns.st_ino);
		}
	}
	e = size_maps(c->skel, &c->opts);
	if (e)
		return e;
	if (c->multi)
		bpf_object__for_each_program(prog, c->skel->obj) {
			/* uprobes only: the process-watch tracepoints keep the
			 * attach type their section gives (BTF is looked up by it) */
			if (bpf_program__type(prog) != BPF_PROG_TYPE_KPROBE)
				continue;
			bpf_program__set_expected_attach_type(prog,
				(enum bpf_attach_type)tm_uprobe_multi_attach_type());
		}
	if (c->session) {
		bpf_program__set_expected_attach_type(c->skel->progs.allocator_session,
			(enum bpf_attach_type)tm_uprobe_session_attach_type());
		/* Every malloc/calloc/realloc then uses allocator_session. */
		bpf_program__set_autoload(c->skel->progs.allocator_enter, false);
		bpf_program__set_autoload(c->skel->progs.allocator_exit, false);
	} else
		bpf_program__set_autoload(c->skel->progs.allocator_session, false);
	if (!c->opts.watch) {
		bpf_program__set_autoload(c->skel->progs.watch_exec, false);
		bpf_program__set_autoload(c->skel->progs.watch_fork, false);
		bpf_program__set_autoload(c->skel->progs.watch_exit, false);
	}
	return tmbpf_bpf__load(c->skel);
}

struct tm_capture *tm_capture_new(const struct tm_capture_opts *opts, char *err, size_t errlen)
{
	struct tm_capture *c;
	int e;

	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	c->opts = *opts;
	c->stats_fd = -1;
	if (!c->opts.max_frames)
		c->opts.max_frames = 1;
	if (c->opts.max_frames > TM_BPF_MAX_FRAMES) {
		snprintf(err, errlen, "--frames %u is over the limit of %u", c->opts.max_frames,
			 TM_BPF_MAX_FRAMES);
		e = -EINVAL;
		goto cleanup;
	}
	if (c->opts.max_memory &&
	    !tm_capture_budget(c->opts.max_memory, c->opts.max_frames, c->opts.watch,
			       &c->opts.max_blocks, &c->opts.max_stacks)) {
		snprintf(err, errlen, "a memory budget of %llu MiB is below the %llu MiB the maps need",
			 (unsigned long long)(c->opts.max_memory >> 20),
			 (unsigned long long)(TM_CAPTURE_MIN_BUDGET >> 20));
		e = -EINVAL;
		goto cleanup;
	}
	if (!c->opts.max_blocks)
		c->opts.max_blocks = DEFAULT_MAX_BLOCKS;
	if (!c->opts.max_stacks)
		c->opts.max_stacks = DEFAULT_MAX_STACKS;
	if (!c->opts.walk_limit)
		c->opts.walk_limit = TM_WALK_LIMIT_DEFAULT;
	c->stack_buf = calloc(1, TM_STACK_BYTES(c->opts.max_frames));
	if (!c->stack_buf) {
		snprintf(err, errlen, "out of memory");
		e = -ENOMEM;
		goto cleanup;
	}
	if (c->opts.walk_limit > 65535)
		c->opts.walk_limit = 65535;
	libbpf_set_print(libbpf_to_log);

	/* uprobe_multi links when the kernel has them (TMBPF_PERF_LINKS=1 forces
	 * perf-event links, for tests); a load that fails that way is retried
	 * the old way before giving up. */
	c->multi = tm_uprobe_multi_attach_type() != 0 && !c->opts.perf_links;
	c->session = c->multi && tm_uprobe_session_attach_type() != 0 && !c->opts.no_predict;
	for (;;) {
		e = open_and_load(c);
		if (e == 0 || !c->multi)
			break;
		tm_capture_gc_free(c);
	tmbpf_bpf__destroy(c->skel);
		c->skel = NULL;
		if (c->session)
			c->session = 0;
		else
			c->multi = 0;
	}
	if (e) {
		snprintf(err, errlen,
			 e == -EPERM ? "cannot load the BPF programs: %s: run as root"
				     : "cannot load the BPF programs: %s (kernel with BTF and bpf_loop, 5.17+, needed)",
			 strerror(-e));
		goto cleanup;
	}
	c->rb = ring_buffer__new(bpf_map__fd(c->skel->maps.events), on_event, c, NULL);
	if (!c->rb) {
		e = -errno;
		snprintf(err, errlen, "cannot open the BPF ring buffer: %s", strerror(-e));
		goto cleanup;
	}
	if (c->opts.watch) {
		/* process events wake the main poll too, and can be taken alone */
		e = ring_buffer__add(c->rb, bpf_map__fd(c->skel->maps.proc_events), on_event, c);
		c->proc_rb = e ? NULL : ring_buffer__new(bpf_map__fd(c->skel->maps.proc_events),
							 on_event, c, NULL);
		if (!c->proc_rb) {
			e = e ? e : -errno;
			snprintf(err, errlen, "cannot open the BPF ring buffer of process events: %s",
				 strerror(-e));
			goto cleanup;
		}
	}
	c->mem_len = (size_t)sysconf(_SC_PAGESIZE);
	c->mem = mmap(NULL, c->mem_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		      bpf_map__fd(c->skel->maps.traced_memory), 0);
	if (c->mem == MAP_FAILED) {
		e = -errno;
		c->mem = NULL;
		snprintf(err, errlen, "cannot map the traced memory counters: %s", strerror(-e));
		goto cleanup;
	}
	if (c->opts.sample_bytes) {
		/* PyTraceMalloc_Track's intervals (sampled in BPF) */
		uint64_t rng = realtime_ns() | 1;

		for (__u32 k = 0; k < TM_SAMPLE_INTERVALS; k++) {
			uint64_t v = tm_sample_draw(&rng, c->opts.sample_bytes);

			bpf_map_update_elem(bpf_map__fd(c->skel->maps.sample_intervals), &k, &v, BPF_ANY);
		}
	}
	if (c->opts.watch) {
		struct bpf_program *w[3] = { c->skel->progs.watch_exec, c->skel->progs.watch_fork,
					     c->skel->progs.watch_exit };

		for (int i = 0; i < 3; i++) {
			c->watch_links[i] = bpf_program__attach(w[i]);
			if (!c->watch_links[i]) {
				e = -errno;
				snprintf(err, errlen, "cannot watch process %s: %s",
					 i == 0 ? "execs" : i == 1 ? "forks" : "exits", strerror(-e));
				goto cleanup;
			}
		}
	}
	if (c->opts.bpf_stats) {
		c->stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
		if (c->stats_fd < 0)
			tm_log(TM_LOG_DEBUG, "cannot enable BPF run-time stats: %s", strerror(errno));
	}
	return c;
cleanup:
	tm_capture_free(c);
	errno = -e;
	return NULL;
}

static void *destroy_link(void *link)
{
	bpf_link__destroy(link);
	return NULL;
}

/* Closing a uprobe link waits for the kernel to unregister it, ~0.2 s each on
 * 6.18: one at a time, a session with ~18 probes took 3-8 s to detach. The
 * waits overlap when the links are closed from threads of their own. */
static void destroy_links(struct bpf_link **links, size_t n)
{
	pthread_t tids[64];
	size_t started = 0, i;

	for (i = 0; i < n; i++) {
		if (started < sizeof(tids) / sizeof(tids[0]) &&
		    pthread_create(&tids[started], NULL, destroy_link, links[i]) == 0)
			started++;
		else
			bpf_link__destroy(links[i]);
	}
	for (i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
}

static void proc_detach(struct tm_capture_proc *p)
{
	char err[256];

	/* Pointers first: no call may reach a stub after its probe is gone
	 * (harmless, but then unseen). */
	if (p->rd.applied && tm_redirect_restore(&p->rd, err, sizeof(err)) == -EBUSY)
		tm_log(TM_LOG_WARN, "%s", err);
	if (p->stub_ready && tm_stub_disarm(&p->stub, err, sizeof(err)) == -EBUSY)
		tm_log(TM_LOG_WARN, "%s", err);
	destroy_links(p->links, p->nlinks);
	for (size_t i = 0; i < p->nlink_fds; i++)
		close(p->link_fds[i]);
	p->nlink_fds = 0;
	free(p->links);
	p->links = NULL;
	p->nlinks = p->caplinks = 0;
	tm_stack_cache_release(&p->stacks);
	free(p->seen);
	p->seen = NULL;
	tm_symbolizer_free(p->sym);
	p->sym = NULL;
}

void tm_capture_free(struct tm_capture *c)
{
	if (!c)
		return;
	for (int i = 0; i < 3; i++)
		bpf_link__destroy(c->watch_links[i]);
	for (size_t i = c->nprocs; i > 0; i--)
		proc_detach(&c->procs[i - 1]);
	ring_buffer__free(c->rb);
	ring_buffer__free(c->proc_rb);
	if (c->mem)
		munmap(c->mem, c->mem_len);
	tm_capture_gc_free(c);
	tmbpf_bpf__destroy(c->skel);
	if (c->stats_fd >= 0)
		close(c->stats_fd);
	free(c->stack_buf);
	free(c);
}

/* A reused slot starts from zero. */
/* Zero entries [first, first + n) of a per-CPU array of u64. */
static void clear_percpu_u64(int fd, uint32_t first, uint32_t n)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *zero;

	if (ncpu <= 0)
		return;
	zero = calloc((size_t)ncpu, sizeof(*zero));
	if (!zero)
		return;
	for (__u32 idx = first; idx < first + n; idx++)
		bpf_map_update_elem(fd, &idx, zero, BPF_ANY);
	free(zero);
}

/* A slot's per-CPU state starts empty: its counters, and its pool hints (a
 * previous owner's pool addresses mean nothing in this process). */
static void clear_slot_percpu(struct tm_capture *c, uint32_t slot)
{
	clear_percpu_u64(bpf_map__fd(c->skel->maps.counters), slot * TM_CNT_MAX, TM_CNT_MAX);
	clear_percpu_u64(bpf_map__fd(c->skel->maps.pool_hints), slot * TM_PYMALLOC_CLASSES,
			 TM_PYMALLOC_CLASSES);
}

/* procs is an array: a slot no process owns holds pid 0, which no probe's
 * tgid matches. */
static void clear_proc_config(struct tm_capture *c, uint32_t slot)
{
	struct tm_proc_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	bpf_map_update_elem(bpf_map__fd(c->skel->maps.procs), &slot, &cfg, BPF_ANY);
}


int tm_capture_add_target(struct tm_capture *c, struct tm_target *t, char *err, size_t errlen)
{
	struct tm_proc_config cfg = t->cfg;
	struct tm_capture_proc *p;
	uint32_t slot = 0;
	int e;

	if (tm_capture_proc_find(c, t->pid)) {
		snprintf(err, errlen, "PID %d is already traced", (int)t->pid);
		return -EEXIST;
	}
	if (c->nprocs >= TM_CAPTURE_MAX_PROCS) {
		snprintf(err, errlen, "cannot trace PID %d: at most %d processes at once", (int)t->pid,
			 TM_CAPTURE_MAX_PROCS);
		return -ENOSPC;
	}
	while (c->slots_used & (1ull << slot))
		slot++;
	p = &c->procs[c->nprocs];
	memset(p, 0, sizeof(*p));
	p->slot = slot;
	memset(&c->mem[slot], 0, sizeof(c->mem[slot]));
	clear_slot_percpu(c, slot);
	p->pid = t->pid;
	p->t = t;
	p->start_ns = realtime_ns();
	p->seen = calloc(TM_CODE_SEEN, sizeof(*p->seen));
	p->sym = tm_symbolizer_new(t);
	if (!p->sym || !p->seen) {
		e = -errno;
		snprintf(err, errlen, "PID %d: cannot set up the symbolizer: %s", (int)t->pid,
			 strerror(-e));
		goto cleanup; /* frees whichever of the two was allocated */
	}
	cfg.max_frames = c->opts.max_frames;
	cfg.finalizing = 0;
	cfg.stop_on_finalize = c->opts.stop_on_finalize ? 1 : 0;
	cfg.finalize_signal = (__u32)c->opts.finalize_signal;
	cfg.sample_bytes = c->opts.sample_bytes;
	if (cfg.sample_bytes) {
		uint64_t rng = (uint64_t)t->pid * 0x9e3779b97f4a7c15ull ^ realtime_ns();
		struct tm_sample_state st = { .remaining = (int64_t)tm_sample_draw(&rng, cfg.sample_bytes),
					      .next = rng };

		bpf_map_update_elem(bpf_map__fd(c->skel->maps.sample_state), &slot, &st, BPF_ANY);
	}
	cfg.mem_slot = slot;
	cfg.pid = (__u32)t->pid;
	p->layout = t->layout.minor ? &t->layout : NULL;
	if (!p->layout) {
		snprintf(err, errlen, "CPython %d.%d is not supported yet", t->major, t->minor);
		e = -ENOTSUP;
		goto cleanup;
	}
	cfg.co_filename = (__u16)p->layout->co_filename;
	cfg.co_firstlineno = (__u16)p->layout->co_firstlineno;
	cfg.co_lines = (__u16)p->layout->co_lines;
	cfg.co_code = p->layout->co_code == TM_NO_OFFSET ? TM_NO_OFFSET : (__u16)p->layout->co_code;
	cfg.str_ascii_data = (__u16)p->layout->ascii_data;
	cfg.str_compact_data = (__u16)p->layout->compact_data;
	if (bpf_map_update_elem(bpf_map__fd(c->skel->maps.procs), &slot, &cfg, BPF_ANY)) {
		e = -errno;
		snprintf(err, errlen, "PID %d: cannot configure the BPF maps: %s", (int)t->pid,
			 strerror(-e));
		goto cleanup;
	}
	c->nprocs++;
	c->slots_used |= 1ull << slot;
	tm_capture_idle(c);
	e = tm_capture_attach_probes(c, p, err, errlen);
	tm_capture_idle(c);
	if (e) {
		c->nprocs--;
		c->slots_used &= ~(1ull << slot);
		goto cleanup;
	}
	{
		__u32 tgid = (__u32)t->pid;

		bpf_map_update_elem(bpf_map__fd(c->skel->maps.traced_tgids), &tgid, &slot, BPF_ANY);
	}
	return 0;
cleanup:
	proc_detach(p);
	clear_proc_config(c, slot);
	return e;
}

/* Delete every live block of pid: the shared map read in batches (one
 * syscall per 4096 blocks: a key at a time took ~1 s per million), then the
 * process's keys deleted in batches. */
static void forget_blocks(struct tm_capture *c, pid_t pid)
{
	int fd = bpf_map__fd(c->skel->maps.live_blocks);
	enum { BATCH = 4096 };
	struct tm_block_key *keys = calloc(BATCH, sizeof(*keys)), *del = NULL, in_b, out_b;
	struct tm_block *vals = calloc(BATCH, sizeof(*vals));
	size_t ndel = 0, cap = 0;
	void *in = NULL;

	while (keys && vals) {
		__u32 n = BATCH;
		int r = bpf_map_lookup_batch(fd, in, &out_b, keys, vals, &n, NULL);
		int last = r < 0 && errno == ENOENT;

		if (r < 0 && !last)
			break;
		for (__u32 k = 0; k < n; k++) {
			if (keys[k].pid != (__u32)pid)
				continue;
			if (ndel == cap) {
				size_t ncap = cap ? 2 * cap : BATCH;
				void *nd = realloc(del, ncap * sizeof(*del));

				if (!nd)
					goto out;
				del = nd;
				cap = ncap;
			}
			del[ndel++] = keys[k];
		}
		if (last)
			break;
		in_b = out_b;
		in = &in_b;
	}
out:
	for (size_t at = 0; at < ndel;) {
		__u32 n = ndel - at > BATCH ? BATCH : (__u32)(ndel - at);

		if (bpf_map_delete_batch(fd, del + at, &n, NULL) && !n)
			break;
		at += n ? n : 1;
	}
	free(del);
	free(keys);
	free(vals);
}

int tm_capture_remove_target(struct tm_capture *c, pid_t pid)
{
	struct tm_capture_proc *p = tm_capture_proc_find(c, pid);

	if (!p)
		return -ENOENT;
	{
		__u32 tgid = (__u32)pid;

		bpf_map_delete_elem(bpf_map__fd(c->skel->maps.traced_tgids), &tgid);
	}
	proc_detach(p);
	clear_proc_config(c, p->slot);
	forget_blocks(c, pid);
	c->slots_used &= ~(1ull << p->slot);
	*p = c->procs[--c->nprocs];
	return 0;
}

/* The process events read so far, to the hook, outside libbpf's callback. */
static void dispatch_process_events(struct tm_capture *c)
{
	while (c->nproc_queue) {
		struct tm_proc_event e = c->proc_queue[0];

		memmove(c->proc_queue, c->proc_queue + 1, --c->nproc_queue * sizeof(e));
		if (c->on_process)
			c->on_process(c->on_process_ctx, &e);
	}
	if (c->proc_queue_lost) {
		tm_log(TM_LOG_WARN, "%u process events came faster than they were handled: the next "
		       "scan of /proc finds those processes", c->proc_queue_lost);
		c->proc_queue_lost = 0;
	}
}

int tm_capture_poll(struct tm_capture *c, int timeout_ms)
{
	int n, m;

	/* One pass per batch: each code object is read once while its new
	 * stacks are symbolized (the consumer must keep up at start-up). */
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	for (size_t i = 0; i < c->nprocs; i++) {
		struct tm_capture_proc *p = &c->procs[i];
		tm_capture_begin_pass(p);
		tm_capture_try_predict(c, p);
		tm_capture_keep_stub(p, (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
	}
	n = ring_buffer__poll(c->rb, timeout_ms);
	if (n < 0)
		return n;
	m = ring_buffer__consume(c->rb); /* what arrived while handling the first batch */
	dispatch_process_events(c);
	return m < 0 ? m : n + m;
}

void tm_capture_set_idle(struct tm_capture *c, void (*fn)(void *ctx), void *ctx)
{
	c->idle = fn;
	c->idle_ctx = ctx;
}

void tm_capture_idle(struct tm_capture *c)
{
	if (c->idle)
		c->idle(c->idle_ctx);
}

int tm_capture_poll_processes(struct tm_capture *c)
{
	int n = c->proc_rb ? ring_buffer__consume(c->proc_rb) : 0;

	dispatch_process_events(c);
	return n;
}

int tm_capture_fd(struct tm_capture *c)
{
	return ring_buffer__epoll_fd(c->rb);
}

int tm_capture_finalizing(struct tm_capture *c, pid_t pid)
{
	struct tm_capture_proc *p = tm_capture_proc_find(c, pid);
	struct tm_proc_config cfg;

	if (!p)
		return -ENOENT;
	if (!p->finalizing &&
	    bpf_map_lookup_elem(bpf_map__fd(c->skel->maps.procs), &p->slot, &cfg) == 0 && cfg.finalizing)
		p->finalizing = 1;
	return p->finalizing;
}

int tm_capture_resume(struct tm_capture *c, pid_t pid)
{
	struct tm_capture_proc *p = tm_capture_proc_find(c, pid);

	if (!p)
		return -ENOENT;
	if (c->opts.stop_on_finalize && kill(pid, SIGCONT) < 0 && errno != ESRCH)
		return -errno;
	return 0;
}

int tm_capture_read_counters(struct tm_capture *c, const struct tm_capture_proc *p,
			     uint64_t out[TM_CNT_MAX])
{
	int fd = bpf_map__fd(c->skel->maps.counters);
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *v;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (__u32 k = 0; k < TM_CNT_MAX; k++) {
		__u32 idx = p->slot * TM_CNT_MAX + k;

		out[k] = 0;
		if (bpf_map_lookup_elem(fd, &idx, v))
			continue;
		for (int i = 0; i < ncpu; i++)
			out[k] += v[i];
	}
	free(v);
	/* counted in the target, by the stub */
	if (p->stub_ready)
		tm_stub_samples_lost(&p->stub, &out[TM_CNT_SAMPLES_LOST]);
	out[TM_CNT_ALLOCATOR_RESET] = p->allocator_resets; /* counted by capture */
	return 0;
}

/* "memlock:" of a map's fdinfo: the kernel's own account of its memory. */
static uint64_t map_memlock(int fd)
{
	char path[64], line[256];
	uint64_t bytes = 0;
	FILE *f;

	if (snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd) >= (int)sizeof(path))
		return 0;
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %lu", &bytes) == 1)
			break;
	fclose(f);
	return bytes;
}

static uint64_t self_rss(void)
{
	unsigned long size, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &rss) != 2)
		rss = 0;
	fclose(f);
	return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void prog_stats(struct tm_capture *c, struct tm_capture_stats *st)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, c->skel->obj) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);

		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
			continue;
		st->bpf_run_cnt += info.run_cnt;
		st->bpf_run_ns += info.run_time_ns;
	}
}

int tm_capture_stats(struct tm_capture *c, pid_t pid, struct tm_capture_stats *st)
{
	struct tm_capture_proc *p = tm_capture_proc_find(c, pid);
	const volatile struct tm_traced_memory *m;
	struct bpf_map *map;
	int e;

	memset(st, 0, sizeof(*st));
	if (!p)
		return -ENOENT;
	m = &c->mem[p->slot];
	st->current_bytes = (int64_t)m->current_bytes < 0 ? 0 : m->current_bytes;
	st->peak_bytes = m->peak_bytes;
	e = tm_capture_read_counters(c, p, st->counters);
	if (e)
		return e;
	/* BPF counts a block where it enters or leaves live_blocks (traced_add). */
	{
		int64_t live = (int64_t)(st->counters[TM_CNT_ALLOCS] - st->counters[TM_CNT_FREES] -
					 st->counters[TM_CNT_REPLACED]);

		st->live_blocks = live < 0 ? 0 : (uint64_t)live;
	}
	bpf_object__for_each_map(map, c->skel->obj)
		st->bpf_map_bytes += map_memlock(bpf_map__fd(map));
	st->process_rss_bytes = self_rss();
	prog_stats(c, st);
	st->single_stepped = p->nsinglestep;
	st->coverage = p->coverage ? p->coverage
		     : p->devirt_ok ? tm_coverage_str(p->dv.coverage) : "unknown (ELF not scanned)";
	st->finalizing = tm_capture_finalizing(c, pid) == 1;
	return 0;
}

void tm_capture_own_memory(struct tm_capture *c, uint64_t *map_bytes, uint64_t *rss_bytes)
{
	struct bpf_map *map;

	*map_bytes = 0;
	bpf_object__for_each_map(map, c->skel->obj)
		*map_bytes += map_memlock(bpf_map__fd(map));
	*rss_bytes = self_rss();
}

int tm_capture_reset_peak(struct tm_capture *c, pid_t pid)
{
	struct tm_capture_proc *p = tm_capture_proc_find(c, pid);
	volatile struct tm_traced_memory *m;

	if (!p)
		return -ENOENT;
	/* In place: BPF keeps adding to current_bytes meanwhile. */
	m = &c->mem[p->slot];
	m->peak_bytes = m->current_bytes;
	return 0;
}

void tm_capture_on_process(struct tm_capture *c,
			   void (*fn)(void *ctx, const struct tm_proc_event *e), void *ctx)
{
	c->on_process = fn;
	c->on_process_ctx = ctx;
}

long tm_capture_copy_blocks(struct tm_capture *c, pid_t from, pid_t to)
{
	struct tm_capture_proc *dst = tm_capture_proc_find(c, to);
	int fd = bpf_map__fd(c->skel->maps.live_blocks);
	enum { BATCH = 4096 };
	struct tm_block_key *keys = calloc(BATCH, sizeof(*keys)), in_b, out_b;
	struct tm_block *vals = calloc(BATCH, sizeof(*vals));
	uint64_t bytes = 0;
	long copied = 0;
	void *in = NULL;
	int e = 0;

	if (!dst) {
		e = -ENOENT;
		goto out;
	}
	if (!keys || !vals) {
		e = -ENOMEM;
		goto out;
	}
	for (;;) {
		__u32 n = BATCH, m = 0;
		int r = bpf_map_lookup_batch(fd, in, &out_b, keys, vals, &n, NULL);
		int last = r < 0 && errno == ENOENT;

		if (r < 0 && !last) {
			e = -errno;
			break;
		}
		/* keep the parent's entries of this batch, renamed to the child */
		for (__u32 k = 0; k < n; k++) {
			if (keys[k].pid != (__u32)from)
				continue;
			keys[m] = keys[k];
			keys[m].pid = (__u32)to;
			vals[m] = vals[k];
			bytes += vals[k].size_bytes;
			m++;
		}
		for (__u32 at = 0; at < m;) {
			__u32 cnt = m - at;
			LIBBPF_OPTS(bpf_map_batch_opts, bo, .elem_flags = BPF_NOEXIST);

			if (bpf_map_update_batch(fd, keys + at, vals + at, &cnt, &bo) && !cnt) {
				/* full (live_blocks_full counts it in BPF; here: stop) */
				e = -errno;
				goto out;
			}
			at += cnt;
			copied += cnt;
		}
		if (last)
			break;
		in_b = out_b;
		in = &in_b;
	}
	if (c->mem) {
		c->mem[dst->slot].current_bytes += bytes;
		if (c->mem[dst->slot].peak_bytes < c->mem[dst->slot].current_bytes)
			c->mem[dst->slot].peak_bytes = c->mem[dst->slot].current_bytes;
	}
out:
	free(keys);
	free(vals);
	return e ? e : copied;
}
