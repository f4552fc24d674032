/* Capture session: skeleton lifecycle, traced processes, ring buffer,
 * counters and memory figures. Probe placement and attaching are in
 * capture_attach.c, map reading and snapshots in capture_snapshot.c. */
#include <errno.h>
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
#include "target/layouts.h"
#include "capture/uprobe_multi.h"

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
	char line[1024];
	size_t n;

	if (level == LIBBPF_DEBUG)
		l = TM_LOG_TRACE;
	if (!tm_log_enabled(l))
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	tm_log(l, "libbpf: %s", line);
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

	if (size < sizeof(*e))
		return 0;
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

	err = bpf_map__set_max_entries(skel->maps.live_blocks, o->max_blocks);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.stacks, o->max_stacks);
	if (!err)
		err = bpf_map__set_value_size(skel->maps.stacks, TM_STACK_BYTES(o->max_frames));
	return err;
}

static int open_and_load(struct tm_capture *c)
{
	struct bpf_program *prog;
	int e;

	c->skel = tmbpf_bpf__open();
	if (!c->skel)
		return -errno;
	c->skel->rodata->tm_cfg.walk_limit = c->opts.walk_limit;
	e = size_maps(c->skel, &c->opts);
	if (e)
		return e;
	if (c->multi)
		bpf_object__for_each_program(prog, c->skel->obj)
			bpf_program__set_expected_attach_type(prog,
				(enum bpf_attach_type)tm_uprobe_multi_attach_type());
	if (c->session) {
		bpf_program__set_expected_attach_type(c->skel->progs.allocator_session,
			(enum bpf_attach_type)tm_uprobe_session_attach_type());
		/* Every malloc/calloc/realloc then uses allocator_session. */
		bpf_program__set_autoload(c->skel->progs.allocator_enter, false);
		bpf_program__set_autoload(c->skel->progs.allocator_exit, false);
	} else
		bpf_program__set_autoload(c->skel->progs.allocator_session, false);
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
	c->mem_len = (size_t)sysconf(_SC_PAGESIZE);
	c->mem = mmap(NULL, c->mem_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		      bpf_map__fd(c->skel->maps.traced_memory), 0);
	if (c->mem == MAP_FAILED) {
		e = -errno;
		c->mem = NULL;
		snprintf(err, errlen, "cannot map the traced memory counters: %s", strerror(-e));
		goto cleanup;
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
	for (size_t i = c->nprocs; i > 0; i--)
		proc_detach(&c->procs[i - 1]);
	ring_buffer__free(c->rb);
	if (c->mem)
		munmap(c->mem, c->mem_len);
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

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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
	if (bpf_map_update_elem(bpf_map__fd(c->skel->maps.procs), &slot, &cfg, BPF_ANY)) {
		e = -errno;
		snprintf(err, errlen, "PID %d: cannot configure the BPF maps: %s", (int)t->pid,
			 strerror(-e));
		goto cleanup;
	}
	c->nprocs++;
	c->slots_used |= 1ull << slot;
	e = tm_capture_attach_probes(c, p, err, errlen);
	if (e) {
		c->nprocs--;
		c->slots_used &= ~(1ull << slot);
		goto cleanup;
	}
	return 0;
cleanup:
	proc_detach(p);
	clear_proc_config(c, slot);
	return e;
}

/* Delete every live block of pid (batches of keys, then deletes). */
static void forget_blocks(struct tm_capture *c, pid_t pid)
{
	int fd = bpf_map__fd(c->skel->maps.live_blocks);
	struct tm_block_key key, next, *del = NULL;
	size_t ndel = 0, cap = 0;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		if (next.pid == (__u32)pid) {
			if (ndel == cap) {
				size_t ncap = cap ? 2 * cap : 1024;
				void *n = realloc(del, ncap * sizeof(*del));

				if (!n)
					break;
				del = n;
				cap = ncap;
			}
			del[ndel++] = next;
		}
		key = next;
		prev = &key;
	}
	for (size_t i = 0; i < ndel; i++)
		bpf_map_delete_elem(fd, &del[i]);
	free(del);
}

int tm_capture_remove_target(struct tm_capture *c, pid_t pid)
{
	struct tm_capture_proc *p = tm_capture_proc_find(c, pid);

	if (!p)
		return -ENOENT;
	proc_detach(p);
	clear_proc_config(c, p->slot);
	forget_blocks(c, pid);
	c->slots_used &= ~(1ull << p->slot);
	*p = c->procs[--c->nprocs];
	return 0;
}

int tm_capture_poll(struct tm_capture *c, int timeout_ms)
{
	int n, m;

	/* One pass per batch: each code object is read once while its new
	 * stacks are symbolized (the consumer must keep up at start-up). */
	for (size_t i = 0; i < c->nprocs; i++) {
		tm_capture_begin_pass(&c->procs[i]);
		tm_capture_try_predict(c, &c->procs[i]);
	}
	n = ring_buffer__poll(c->rb, timeout_ms);
	if (n < 0)
		return n;
	m = ring_buffer__consume(c->rb); /* what arrived while handling the first batch */
	return m < 0 ? m : n + m;
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
	st->coverage = p->devirt_ok ? tm_coverage_str(p->dv.coverage) : "unknown (ELF not scanned)";
	st->finalizing = tm_capture_finalizing(c, pid) == 1;
	return 0;
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
