/* Attaching one process's probes: the functions its live allocator pointers
 * name, PyTraceMalloc_Track/Untrack and Py_FinalizeEx, each at the probe
 * point probe_point.c picks from the function's bytes in the ELF file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "capture/capture_priv.h"
#include "core/log.h"
#include "placement/code_refs.h"
#include "placement/newref_sites.h"
#include "target/pymalloc_predict.h"
#include "capture/uprobe_multi.h"
#include "placement/probe_point.h"
#include "patch/stub.h"

struct probe_fn {
	const char *role;   /* "obj.malloc", "PyTraceMalloc_Track" */
	uint64_t addr;      /* absolute, in the target */
	enum tm_probe_kind kind;
	int pymalloc;       /* pymalloc's malloc or calloc: a session probe when predicting */
};

static const char *const domain_names[TM_NDOMAINS] = { "raw", "mem", "obj" };

/* Arguments each kind reads (bit i: SysV argument i) and whether it returns. */
static unsigned kind_args(enum tm_probe_kind k)
{
	switch (k) {
	case TM_PROBE_MALLOC: case TM_PROBE_FREE: return 1u << 1;
	case TM_PROBE_CALLOC: case TM_PROBE_REALLOC: return (1u << 1) | (1u << 2);
	case TM_PROBE_TRACK: return 7u;
	case TM_PROBE_UNTRACK: return 3u;
	case TM_PROBE_NEWREF: return 1u;
	case TM_PROBE_FREELIST: return 0u;
	default: return 0;
	}
}

static int kind_returns(enum tm_probe_kind k)
{
	return k == TM_PROBE_MALLOC || k == TM_PROBE_CALLOC || k == TM_PROBE_REALLOC ||
	       k == TM_PROBE_FREELIST;
}

static struct bpf_program *kind_prog(struct tm_capture *c, enum tm_probe_kind k, int ret)
{
	if (ret)
		return k == TM_PROBE_FREELIST ? c->skel->progs.freelist_exit
					      : c->skel->progs.allocator_exit;
	switch (k) {
	case TM_PROBE_FREE: return c->skel->progs.allocator_free;
	case TM_PROBE_TRACK: return c->skel->progs.track_enter;
	case TM_PROBE_UNTRACK: return c->skel->progs.untrack_enter;
	case TM_PROBE_FINALIZE: return c->skel->progs.finalize_enter;
	case TM_PROBE_NEWREF: return c->skel->progs.newref_enter;
	case TM_PROBE_FREELIST: return c->skel->progs.freelist_enter;
	default: return c->skel->progs.allocator_enter;
	}
}

static int add_link(struct tm_capture_proc *p, struct bpf_link *l)
{
	if (p->nlinks == p->caplinks) {
		size_t ncap = p->caplinks ? 2 * p->caplinks : 16;
		struct bpf_link **n = realloc(p->links, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		p->links = n;
		p->caplinks = ncap;
	}
	p->links[p->nlinks++] = l;
	return 0;
}

/* Read the function's first bytes from the ELF file: process memory may
 * already hold the int3 of another tool's uprobe. */
static int read_code(int fd, uint64_t off, uint8_t *buf, size_t len, size_t *got)
{
	ssize_t n = pread(fd, buf, len, (off_t)off);

	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	*got = (size_t)n;
	return 0;
}

/* Probes are gathered per (program, entry or return) and attached at the
 * end: as one uprobe_multi link per group when the kernel has them (fast to
 * close, uprobe_multi.h), else one perf-event link per probe. */
struct probe_group {
	struct bpf_program *prog;
	int ret;
	const char *path;   /* the file probed: NULL for the interpreter's ELF, else the stub's memfd */
	size_t n, cap;
	uint64_t *offsets, *cookies;
};

#define MAX_GROUPS 12

struct probe_batch {
	struct probe_group g[MAX_GROUPS];
	size_t ng;
};

static void batch_free(struct probe_batch *b)
{
	for (size_t i = 0; i < b->ng; i++) {
		free(b->g[i].offsets);
		free(b->g[i].cookies);
	}
	b->ng = 0;
}

static int batch_add_path(struct probe_batch *b, struct bpf_program *prog, int ret,
			  const char *path, uint64_t off, uint64_t cookie)
{
	struct probe_group *g = NULL;

	for (size_t i = 0; i < b->ng && !g; i++)
		if (b->g[i].prog == prog && b->g[i].ret == ret && b->g[i].path == path)
			g = &b->g[i];
	if (!g) {
		if (b->ng == MAX_GROUPS)
			return -E2BIG;
		g = &b->g[b->ng++];
		memset(g, 0, sizeof(*g));
		g->prog = prog;
		g->ret = ret;
		g->path = path;
	}
	for (size_t i = 0; i < g->n; i++)
		if (g->offsets[i] == off)
			return 0; /* the same instruction named twice (aliases) */
	if (g->n == g->cap) {
		size_t ncap = g->cap ? 2 * g->cap : 16;
		uint64_t *o = realloc(g->offsets, ncap * sizeof(*o));

		if (!o)
			return -ENOMEM;
		g->offsets = o;
		o = realloc(g->cookies, ncap * sizeof(*o));
		if (!o)
			return -ENOMEM;
		g->cookies = o;
		g->cap = ncap;
	}
	g->offsets[g->n] = off;
	g->cookies[g->n] = cookie;
	g->n++;
	return 0;
}

static int batch_add(struct probe_batch *b, struct bpf_program *prog, int ret, uint64_t off,
		     uint64_t cookie)
{
	return batch_add_path(b, prog, ret, NULL, off, cookie);
}

static int add_link_fd(struct tm_capture_proc *p, int fd)
{
	if (p->nlink_fds == sizeof(p->link_fds) / sizeof(p->link_fds[0])) {
		close(fd);
		return -E2BIG;
	}
	p->link_fds[p->nlink_fds++] = fd;
	return 0;
}

/* Return probes first: an entry seen without its return would leave a
 * pending record that makes the thread's next calls look nested. */
static int batch_attach(struct tm_capture *c, struct tm_capture_proc *p, struct probe_batch *b,
			char *err, size_t errlen)
{
	const struct tm_target *t = p->t;
	int e = 0;

	for (int pass = 0; pass < 2 && !e; pass++) {
		for (size_t i = 0; i < b->ng && !e; i++) {
			struct probe_group *g = &b->g[i];
			int ret = g->ret;

			if ((pass == 0) != (ret == 1) || !g->n)
				continue;
			const char *path = g->path ? g->path : t->elf_path;

			for (size_t j = 0; j < g->n; j++)
				g->cookies[j] |= TM_COOKIE_WITH_SLOT(p->slot);
			if (c->multi) {
				int fd = tm_uprobe_multi_link(bpf_program__fd(g->prog), path,
							      g->offsets, g->cookies, (uint32_t)g->n,
							      ret, t->pid);

				e = fd < 0 ? fd : add_link_fd(p, fd);
			} else {
				for (size_t j = 0; j < g->n && !e; j++) {
					LIBBPF_OPTS(bpf_uprobe_opts, uo, .retprobe = ret == 1,
						    .bpf_cookie = g->cookies[j]);
					struct bpf_link *l = bpf_program__attach_uprobe_opts(
						g->prog, t->pid, path, (size_t)g->offsets[j], &uo);

					if (!l) {
						e = -errno;
						break;
					}
					e = add_link(p, l);
					if (e)
						bpf_link__destroy(l);
				}
			}
			if (e)
				snprintf(err, errlen, "PID %d: cannot attach %s (%zu %s): %s%s",
					 (int)t->pid, bpf_program__name(g->prog), g->n,
					 ret == 1 ? "uretprobes" : ret ? "session uprobes" : "uprobes", strerror(-e),
					 e == -EPERM || e == -EACCES ? ": run as root" : "");
		}
	}
	return e;
}

static int plan_one(struct tm_capture *c, struct tm_capture_proc *p, int fd,
		    const struct probe_fn *fn, struct probe_batch *b, char *err, size_t errlen)
{
	const struct tm_target *t = p->t;
	uint8_t code[TM_PROBE_SCAN_BYTES];
	struct tm_probe_point pp;
	uint64_t off;
	size_t got = 0;
	int e, session, ret = kind_returns(fn->kind);

	e = tm_target_file_offset(t, fn->addr, &off);
	if (e) {
		snprintf(err, errlen,
			 "PID %d: %s at 0x%llx is not in %s (allocator hooked by another library?): not supported",
			 (int)t->pid, fn->role, (unsigned long long)fn->addr, t->elf_path);
		return e;
	}
	e = read_code(fd, off, code, sizeof(code), &got);
	if (e) {
		snprintf(err, errlen, "PID %d: cannot read %s at file offset 0x%llx of %s: %s",
			 (int)t->pid, fn->role, (unsigned long long)off, t->elf_path, strerror(-e));
		return e;
	}
	tm_probe_point_find(code, got, kind_args(fn->kind), ret, &pp);
	if (!pp.emulated)
		p->nsinglestep++;
	if (pp.emulated)
		tm_log(TM_LOG_DEBUG, "PID %d: %s 0x%llx+%u: %s (emulated)", (int)t->pid, fn->role,
		       (unsigned long long)fn->addr, pp.offset, pp.insn);
	else
		tm_log(TM_LOG_DEBUG,
		       "PID %d: %s 0x%llx+0: %s: single-stepped, ~20 us per call on this machine",
		       (int)t->pid, fn->role, (unsigned long long)fn->addr, pp.why);
	/* Entry and return in one session program when the kernel has them:
	 * returns it need not see (nested calls, predicted pymalloc blocks)
	 * then cost no trap. */
	session = c->session && (fn->kind == TM_PROBE_MALLOC || fn->kind == TM_PROBE_CALLOC ||
				 fn->kind == TM_PROBE_REALLOC);
	if (session)
		e = batch_add(b, c->skel->progs.allocator_session, TM_UPROBE_SESSION, off + pp.offset,
			      TM_COOKIE(fn->kind, pp.arg_reg[0], pp.arg_reg[1], pp.arg_reg[2]) |
				      (fn->pymalloc ? TM_COOKIE_PYMALLOC : 0));
	for (int r = ret; r >= 0 && !e && !session; r--)
		e = batch_add(b, kind_prog(c, fn->kind, r), r, off + pp.offset,
			      TM_COOKIE(fn->kind, pp.arg_reg[0], pp.arg_reg[1], pp.arg_reg[2]));
	if (e)
		snprintf(err, errlen, "out of memory");
	return e;
}

/* pymalloc prediction (pymalloc_predict.h) needs session uprobes and the
 * default pymalloc functions (known from the file's initializers): then
 * pymalloc's malloc and calloc get allocator_session, which behaves as entry
 * plus return until tm_capture_try_predict() has found usedpools. */
static void choose_pymalloc(struct tm_capture *c, struct tm_capture_proc *p)
{
	p->predict = 0;
	p->predict_tries = 0;
	p->pymalloc_fn[0] = p->pymalloc_fn[1] = 0;
	if (!c->session || !p->devirt_ok || !p->dv.defaults_known)
		return;
	/* pymalloc has no ctx; a debug build's defaults are the debug hooks
	 * (ctx = their api record), whose result is not pymalloc's block. */
	if (p->dv.file_alloc[TM_DOM_OBJ].ctx || p->t->debug_build)
		return;
	p->pymalloc_fn[0] = p->dv.file_alloc[TM_DOM_OBJ].malloc_fn;
	p->pymalloc_fn[1] = p->dv.file_alloc[TM_DOM_OBJ].calloc_fn;
}

/* Before Py_Initialize (tmbpf run attaches at the entry point) there is no
 * interpreter yet: tried again from tm_capture_poll() until it is there.
 * Any failure leaves the return probes in charge, never a guess. */
void tm_capture_try_predict(struct tm_capture *c, struct tm_capture_proc *p)
{
	struct tm_pymalloc_state st;
	struct tm_proc_config cfg;
	uint32_t key = p->slot;
	char why[128];
	int fd = bpf_map__fd(c->skel->maps.procs), e;

	if (p->predict || !p->pymalloc_fn[0] || p->predict_tries >= 200)
		return;
	p->predict_tries++;
	e = tm_pymalloc_find(p->t, p->pymalloc_fn[0], &st, why, sizeof(why));
	if (e) {
		if (e != -EAGAIN)
			p->predict_tries = 200; /* this build cannot be predicted: give up */
		if (p->predict_tries == 200)
			tm_log(TM_LOG_DEBUG, "PID %d: pymalloc not predicted: %s", (int)p->pid, why);
		return;
	}
	if (bpf_map_lookup_elem(fd, &key, &cfg))
		return;
	cfg.usedpools = st.usedpools;
	cfg.main_interp = st.main_interp;
	cfg.ts_interp = st.ts_interp;
	cfg.predict = TM_PREDICT_ON | (c->opts.check_prediction ? TM_PREDICT_CHECK : 0);
	if (bpf_map_update_elem(fd, &key, &cfg, BPF_EXIST))
		return;
	p->predict = 1;
	tm_log(TM_LOG_DEBUG, "PID %d: pymalloc predicted at entry: usedpools 0x%llx (%s)%s",
	       (int)p->pid, (unsigned long long)st.usedpools, st.how,
	       (cfg.predict & TM_PREDICT_CHECK) ? ", checked at return" : "");
}

enum { NEWREF_OFF, NEWREF_AT_ENTRY, NEWREF_AT_SITES };

/* The probe list, without duplicates: several domains often name the same
 * function (mem and obj both use pymalloc; PYTHONMALLOC=malloc points all
 * three at the raw functions). While redirected, the entry of each (domain,
 * function) is what redirect.h says (an existing jmp stub or the
 * implementation), never the padding stub the pointer holds. */
static size_t list_probes(const struct tm_capture_proc *p, struct probe_fn *out, char roles[][32],
			  int newref, int allocators)
{
	static const enum tm_probe_kind kinds[4] = { TM_PROBE_MALLOC, TM_PROBE_CALLOC,
						     TM_PROBE_REALLOC, TM_PROBE_FREE };
	static const char *const kind_names[4] = { "malloc", "calloc", "realloc", "free" };
	const struct tm_target *t = p->t;
	size_t n = 0;

	for (int d = 0; d < TM_NDOMAINS && allocators; d++) {
		/* Not redirecting: what the pointers mean (devirt.h), never a
		 * padding stub left by a tmbpf that died. */
		const struct tm_allocator *a = p->devirt_ok ? &p->dv.effective[d] : &t->alloc[d];
		uint64_t fns[4] = { a->malloc_fn, a->calloc_fn, a->realloc_fn, a->free_fn };
		int pm[4] = { a->malloc_fn && a->malloc_fn == p->pymalloc_fn[0],
			      a->calloc_fn && a->calloc_fn == p->pymalloc_fn[1], 0, 0 };

		for (int k = 0; k < 4; k++) {
			int dup = 0;

			if (p->rd.applied)
				fns[k] = p->rd.probe[d][k].entry;
			if (!fns[k])
				continue;
			for (size_t i = 0; i < n; i++)
				dup |= out[i].addr == fns[k] && out[i].kind == kinds[k];
			if (dup)
				continue;
			snprintf(roles[n], 32, "%s.%s%s", domain_names[d], kind_names[k],
				 !p->rd.applied || !p->rd.probe[d][k].via_stub ? ""
				 : p->rd.probe[d][k].nop_stub ? " (nop stub)" : " (jmp stub)");
			out[n].role = roles[n];
			out[n].addr = fns[k];
			out[n].kind = kinds[k];
			out[n].pymalloc = pm[k];
			n++;
		}
	}
	if (t->track_fn)
		out[n++] = (struct probe_fn){ "PyTraceMalloc_Track", t->track_fn, TM_PROBE_TRACK, 0 };
	if (t->untrack_fn)
		out[n++] = (struct probe_fn){ "PyTraceMalloc_Untrack", t->untrack_fn, TM_PROBE_UNTRACK, 0 };
	if (t->finalize_fn)
		out[n++] = (struct probe_fn){ "Py_FinalizeEx", t->finalize_fn, TM_PROBE_FINALIZE, 0 };
	if (t->newref_fn && newref == NEWREF_AT_ENTRY)
		out[n++] = (struct probe_fn){ "_Py_NewReference", t->newref_fn, TM_PROBE_NEWREF, 0 };
	for (int i = 0; i < TM_FREELIST_FNS && newref != NEWREF_OFF; i++)
		if (t->freelist_fn[i])
			out[n++] = (struct probe_fn){ "free list (3.8)", t->freelist_fn[i],
						      TM_PROBE_FREELIST, 0 };
	return n;
}

/* Builds that inline the allocator behind guards (LTO) hide most calls from
 * the out-of-line functions: redirect the pointers when allowed, else warn. */
static void check_coverage(struct tm_capture *c, struct tm_capture_proc *p)
{
	char err[256];
	int e;

	e = tm_devirt_scan(p->t->elf_path, p->t->load_bias, p->t->alloc, &p->dv);
	p->devirt_ok = e == 0;
	if (e) {
		tm_log(TM_LOG_DEBUG, "PID %d: cannot scan %s for inlined allocators: %s", (int)p->pid,
		       p->t->elf_path, strerror(-e));
		return;
	}
	tm_log(TM_LOG_DEBUG, "PID %d: %s", (int)p->pid, p->dv.detail);
	/* Stubs left by a tmbpf that died: adopt them (restored on exit). */
	if (p->dv.coverage != TM_COVERAGE_PARTIAL &&
	    !(p->dv.coverage == TM_COVERAGE_REDIRECT && p->dv.leftover_stubs && c->opts.redirect))
		return;
	if (!c->opts.redirect) {
		tm_log(TM_LOG_WARN, "PID %d: coverage %s", (int)p->pid,
			tm_coverage_str(p->dv.coverage));
		return;
	}
	if (tm_redirect_apply(p->t, &p->dv, &p->rd, err, sizeof(err)) == 0)
		tm_log(TM_LOG_INFO, "%s", p->rd.summary);
	else
		tm_log(TM_LOG_WARN, "%s; coverage %s", err, tm_coverage_str(p->dv.coverage));
}

/* 3.13+ stripped LTO builds: the inlined copies of _Py_NewReference too
 * (newref_sites.h), besides its entry. Best effort: without them only the
 * re-attribution of objects made at the inlined copies is missed. */
static void plan_newref_inline(struct tm_capture *c, struct tm_capture_proc *p,
			       const struct tm_elf *elf, struct probe_batch *b)
{
	const struct tm_target *t = p->t;
	struct tm_newref_inline *in;
	struct tm_elf_sym rt, nr;
	uint64_t tracer;
	size_t n = 0;
	int e;

	if (t->minor < 13 || tm_elf_symbol(elf, "_PyRuntime", &rt) ||
	    tm_elf_symbol(elf, "_Py_NewReference", &nr) ||
	    tm_code_first_ref_in(elf, "_Py_NewReference", rt.value, rt.value + rt.size, &tracer))
		return;
	in = malloc(sizeof(*in));
	if (!in)
		return;
	e = tm_newref_inline_sites(elf, tracer, nr.value, nr.value + (nr.size ? nr.size : 1), in);
	for (size_t i = 0; i < in->n && !e; i++) {
		uint64_t off;

		if (tm_elf_vaddr_to_offset(elf, in->vaddr[i], 1, &off))
			continue;
		e = batch_add(b, c->skel->progs.newref_enter, 0, off,
			      TM_COOKIE(TM_PROBE_NEWREF, in->reg[i], 0, 0));
		n += !e;
	}
	tm_log(TM_LOG_DEBUG, "PID %d: _Py_NewReference: %zu inlined copies probed at their jcc "
	       "(emulated)%s", (int)t->pid, n, e ? " (some left out: out of memory)" : "");
	free(in);
}

/* _Py_NewReference at the call sites that may reuse an object
 * (newref_sites.h): each site is a `call rel32`, which the kernel emulates,
 * with the object in %rdi. Returns 0, or -ENOENT when the sites are unknown
 * (the caller then probes the entry, which sees every call). */
static int plan_newref_sites(struct tm_capture *c, struct tm_capture_proc *p,
			     struct probe_batch *b, char *err, size_t errlen)
{
	const struct tm_target *t = p->t;
	struct tm_newref_sites *sites = calloc(1, sizeof(*sites));
	struct tm_elf *elf = NULL;
	int e;

	if (!sites)
		return -ENOMEM;
	elf = tm_elf_open(t->elf_path);
	if (!elf) {
		e = -ENOENT;
		goto cleanup;
	}
	e = tm_newref_sites_find(elf, t->newref_fn - t->load_bias, sites);
	tm_log(TM_LOG_DEBUG, "PID %d: _Py_NewReference: %s", (int)t->pid,
	       e ? "call sites unknown, probing its entry" : "probing its call sites");
	if (e) {
		plan_newref_inline(c, p, elf, b);
		e = -ENOENT;
		goto cleanup;
	}
	tm_log(TM_LOG_DEBUG,
	       "PID %d: _Py_NewReference: %zu call sites probed (call, emulated), %zu left out (fresh allocations), %zu functions decoded",
	       (int)t->pid, sites->n, sites->nfresh, sites->nfuncs);
	for (size_t i = 0; i < sites->n && !e; i++) {
		uint64_t off;

		e = tm_elf_vaddr_to_offset(elf, sites->vaddr[i], 1, &off);
		if (!e)
			tm_log(TM_LOG_DEBUG, "PID %d: _Py_NewReference call site 0x%llx+0: call (emulated)",
			       (int)t->pid, (unsigned long long)(sites->vaddr[i] + t->load_bias));
		if (!e)
			e = batch_add(b, c->skel->progs.newref_enter, 0, off,
				      TM_COOKIE(TM_PROBE_NEWREF, TM_REG_RDI, 0, 0));
	}
	if (e)
		snprintf(err, errlen, "PID %d: cannot plan the _Py_NewReference call sites: %s",
			 (int)t->pid, strerror(-e));
cleanup:
	tm_elf_close(elf);
	free(sites);
	return e;
}

/* Stub mode (patch/stub.h): the allocator pointers and, where possible,
 * the object-creation hook go through the stub; its report points are
 * probed in its memfd. Returns 0 with p->stub_ready, or a negative errno
 * with err saying why (the caller falls back to entry probes, except for
 * -EBUSY: another tmbpf owns the process). */
static int plan_stub(struct tm_capture *c, struct tm_capture_proc *p, struct probe_batch *b,
		     char *err, size_t errlen)
{
	struct tm_stub_opts so = { .newref = !c->opts.no_newref,
				   .sample_bytes = c->opts.sample_bytes,
				   .sample_slots = c->opts.sample_slots };
	struct tm_devirt *dv = NULL;
	int e;

	/* Sampled mode leaves pymalloc's frees alone when they are the build's
	 * own (patch/stub.h): its initial allocator structs say so. */
	if (c->opts.sample_bytes && (dv = calloc(1, sizeof(*dv))) &&
	    tm_devirt_scan(p->t->elf_path, p->t->load_bias, p->t->alloc, dv) == 0 && dv->defaults_known)
		so.defaults = dv->file_alloc;
	e = tm_stub_prepare(p->t, p->t->stopped_tid, &so, &p->stub, err, errlen);
	free(dv);
	if (e)
		return e;
	for (size_t i = 0; i < p->stub.nprobes && !e; i++)
		e = batch_add_path(b, c->skel->progs.stub_event, 0, p->stub.code_path,
				   p->stub.probes[i].offset, TM_COOKIE_STUB(p->stub.probes[i].event));
	if (e) {
		snprintf(err, errlen, "out of memory");
		return e;
	}
	p->stub_ready = 1;
	for (size_t i = 0; i < p->stub.nprobes; i++)
		tm_log(TM_LOG_DEBUG, "PID %d: stub report point 0x%llx+%llu: nop5 (optimized)",
		       (int)p->pid, (unsigned long long)p->stub.area.base,
		       (unsigned long long)p->stub.probes[i].offset);
	return 0;
}

int tm_capture_attach_probes(struct tm_capture *c, struct tm_capture_proc *p, char *err,
			     size_t errlen)
{
	/* 3.8 has no out-of-line _Py_NewReference: its free-list functions are
	 * probed (list_probes) whenever newref is not off. */
	int newref = c->opts.no_newref ? NEWREF_OFF : p->t->newref_fn ? NEWREF_AT_SITES
								      : NEWREF_AT_ENTRY;
	struct probe_fn fns[TM_NDOMAINS * 4 + 4 + TM_FREELIST_FNS];
	char roles[TM_NDOMAINS * 4 + 4 + TM_FREELIST_FNS][32];
	struct probe_batch b = { .ng = 0 };
	size_t n;
	int fd, e = 0;

	if (c->opts.probe_mode == TM_PROBE_MODE_STUB || c->opts.sample_bytes) {
		e = plan_stub(c, p, &b, err, errlen);
		tm_capture_idle(c);
		if (e == -EBUSY)
			goto cleanup;
		if (e && c->opts.sample_bytes) {
			/* entry probes would trace every call: not what was asked */
			size_t l = strlen(err);

			snprintf(err + l, errlen - l, ": sampled mode needs the stub");
			goto cleanup;
		}
		if (e) {
			tm_log(TM_LOG_WARN, "%s; using entry probes (--probe-mode entry)", err);
			e = 0;
		}
	}
	if (p->stub_ready) {
		p->coverage = c->opts.sample_bytes ? "sampled (stub: byte-weighted Poisson samples)"
						   : "full (stub: every allocator call reported)";
		if (c->opts.sample_bytes)
			newref = NEWREF_OFF; /* sampled mode follows no object creation */
		/* the hook reports re-used objects; without one, probes as before */
		if (p->stub.newref_hook != TM_HOOK_NONE || newref == NEWREF_OFF)
			newref = NEWREF_OFF;
	} else {
		int left = tm_stub_pass_leftover(p->t, err, errlen);

		if (left == -EBUSY) {
			e = left;
			goto cleanup;
		}
		if (left > 0)
			tm_log(TM_LOG_INFO, "PID %d: an earlier tmbpf's stub stays in the call path, "
			       "passing calls through; probing the %d functions it calls",
			       (int)p->t->pid, left);
		check_coverage(c, p);
		choose_pymalloc(c, p);
	}
	if (newref == NEWREF_AT_SITES) {
		e = plan_newref_sites(c, p, &b, err, errlen);
		if (e == -ENOENT)
			newref = NEWREF_AT_ENTRY;
		else if (e)
			goto cleanup;
		e = 0;
	}
	n = list_probes(p, fns, roles, newref, !p->stub_ready);
	fd = open(p->t->elf_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = -errno;
		snprintf(err, errlen, "PID %d: cannot open %s: %s", (int)p->t->pid, p->t->elf_path,
			 strerror(-e));
		goto cleanup;
	}
	for (size_t i = 0; i < n && !e; i++)
		e = plan_one(c, p, fd, &fns[i], &b, err, errlen);
	close(fd);
	if (!e)
		e = batch_attach(c, p, &b, err, errlen);
	if (!e && p->stub_ready) {
		char why[256];
		int a = tm_stub_arm(&p->stub, why, sizeof(why));

		if (a == -EBUSY)
			tm_log(TM_LOG_WARN, "%s", why);
		else if (a) {
			snprintf(err, errlen, "%s", why);
			e = a;
		}
		if (!e)
			tm_log(TM_LOG_INFO, "%s", p->stub.summary);
	}
	if (!e && !p->stub_ready)
		tm_capture_try_predict(c, p);
cleanup:
	batch_free(&b);
	return e;
}

/* The stub's pointers stay ours: one the target put back (a start-up
 * window of PyMem_SetAllocator that opened before the stub came, an
 * embedder) is taken again within RETAKE_NS, and counted as a loss. */
#define RETAKE_NS 200000000ull

void tm_capture_keep_stub(struct tm_capture_proc *p, uint64_t now_ns)
{
	char why[256];
	int n;

	/* (past Py_FinalizeEx the blocks are frozen, and exit's own windows,
	 * pymain_free's, would read as resets: nothing to take back) */
	if (!p->stub_ready || p->finalizing || now_ns - p->retake_checked_ns < RETAKE_NS)
		return;
	p->retake_checked_ns = now_ns;
	n = tm_stub_retake(&p->stub, why, sizeof(why));
	if (n <= 0)
		return;
	p->allocator_resets++;
	tm_log(TM_LOG_WARN, "%s (%d pointer%s; what they carried meanwhile went unseen: counted as "
	       "allocator_reset)", why, n, n == 1 ? "" : "s");
}
