/* The stub of a traced process (stub.h): its area, code, state and the
 * pointers it takes over. */
#include "patch/stub.h"

#include <errno.h>
#include <sys/random.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/sampling.h"
#include "patch/inject.h"
#include "patch/mem_write.h"
#include "patch/stub/stub_abi.h"
#include "placement/code_refs.h"
#include "placement/elf_file.h"
#include "stub/stub_blob.h"

#define STATE(sym) (TM_STUB_##sym - STUB_CODE_SIZE) /* offset of a state field */
#define STATE_LEN 4096

_Static_assert(TM_STUB_stub_state_end - STUB_CODE_SIZE <= STATE_LEN, "stub state too big");
_Static_assert(sizeof(tm_stub_code) <= STUB_CODE_SIZE, "stub code too big");

/* The report points and what each reports (bpf/tmbpf_stub.h). */
static const struct tm_stub_probe full_probes[] = {
	{ TM_STUB_probe_full_raw_malloc, TM_STUB_MALLOC },
	{ TM_STUB_probe_full_raw_calloc, TM_STUB_CALLOC },
	{ TM_STUB_probe_full_raw_realloc, TM_STUB_REALLOC },
	{ TM_STUB_probe_full_raw_free, TM_STUB_FREE },
	{ TM_STUB_probe_full_mem_malloc, TM_STUB_MALLOC },
	{ TM_STUB_probe_full_mem_calloc, TM_STUB_CALLOC },
	{ TM_STUB_probe_full_mem_realloc, TM_STUB_REALLOC },
	{ TM_STUB_probe_full_obj_malloc, TM_STUB_MALLOC },
	{ TM_STUB_probe_full_obj_calloc, TM_STUB_CALLOC },
	{ TM_STUB_probe_full_obj_realloc, TM_STUB_REALLOC },
	{ TM_STUB_probe_full_free_batch, TM_STUB_FREE_BATCH },
};

/* Entries per domain and function (placement/allocators.h order). */
static const uint64_t full_entries[TM_NDOMAINS][TM_NFNS] = {
	{ TM_STUB_full_raw_malloc, TM_STUB_full_raw_calloc, TM_STUB_full_raw_realloc,
	  TM_STUB_full_raw_free },
	{ TM_STUB_full_mem_malloc, TM_STUB_full_mem_calloc, TM_STUB_full_mem_realloc,
	  TM_STUB_full_mem_free },
	{ TM_STUB_full_obj_malloc, TM_STUB_full_obj_calloc, TM_STUB_full_obj_realloc,
	  TM_STUB_full_obj_free },
};

static const struct tm_stub_probe sampled_probes[] = {
	{ TM_STUB_probe_sampled_raw_malloc, TM_STUB_MALLOC },
	{ TM_STUB_probe_sampled_raw_calloc, TM_STUB_CALLOC },
	{ TM_STUB_probe_sampled_raw_realloc, TM_STUB_SAMPLED_REALLOC },
	{ TM_STUB_probe_sampled_raw_free, TM_STUB_FREE },
	{ TM_STUB_probe_sampled_mem_malloc, TM_STUB_MALLOC },
	{ TM_STUB_probe_sampled_mem_calloc, TM_STUB_CALLOC },
	{ TM_STUB_probe_sampled_mem_realloc, TM_STUB_SAMPLED_REALLOC },
	{ TM_STUB_probe_sampled_mem_free, TM_STUB_FREE },
	{ TM_STUB_probe_sampled_obj_malloc, TM_STUB_MALLOC },
	{ TM_STUB_probe_sampled_obj_calloc, TM_STUB_CALLOC },
	{ TM_STUB_probe_sampled_obj_realloc, TM_STUB_SAMPLED_REALLOC },
	{ TM_STUB_probe_sampled_obj_free, TM_STUB_FREE },
};

static const uint64_t sampled_entries[TM_NDOMAINS][TM_NFNS] = {
	{ TM_STUB_sampled_raw_malloc, TM_STUB_sampled_raw_calloc, TM_STUB_sampled_raw_realloc,
	  TM_STUB_sampled_raw_free },
	{ TM_STUB_sampled_mem_malloc, TM_STUB_sampled_mem_calloc, TM_STUB_sampled_mem_realloc,
	  TM_STUB_sampled_mem_free },
	{ TM_STUB_sampled_obj_malloc, TM_STUB_sampled_obj_calloc, TM_STUB_sampled_obj_realloc,
	  TM_STUB_sampled_obj_free },
};

static const int orig_base[TM_NDOMAINS] = { STUB_ORIG_RAW, STUB_ORIG_MEM, STUB_ORIG_OBJ };

#define SAMPLE_SLOTS_DEFAULT (1u << 16)

/* Field 22 of /proc/PID/stat: the start time, which tells a PID reused
 * by another process apart. 0 when unreadable. */
static uint64_t start_time(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long v = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
			 "%*d %*d %*d %llu", &v) != 1)
		return 0;
	return v;
}

/* seen: the pointer's value when planned (an earlier stub's entry, maybe of
 * the other mode, or orig itself). */
static void add_slot(struct tm_stub *s, uint64_t addr, uint64_t orig, uint64_t seen, uint64_t entry,
		     const char *what)
{
	struct tm_stub_slot *sl;

	if (s->nslots == TM_STUB_MAX_SLOTS)
		return;
	sl = &s->slot[s->nslots++];
	sl->addr = addr;
	sl->orig = orig;
	sl->seen = seen;
	sl->entry = entry;
	sl->written = 0;
	snprintf(sl->what, sizeof(sl->what), "%s", what);
}

/* What a pointer value means: an entry of an earlier stub (area a) stands
 * for what that stub calls (its constant orig[k]); anything else for
 * itself. */
static uint64_t resolve(pid_t pid, const struct tm_inject_area *a, uint64_t v, int k)
{
	uint64_t real;

	if (!a->base || v < a->base || v >= a->base + STUB_CODE_SIZE)
		return v;
	if (tm_target_read(pid, a->base + TM_STUB_c_orig + 8 * (uint64_t)k, &real, 8))
		return v;
	return real;
}

/* _Py_NewReference's GOT entries (3.9-3.12 shared libpython: every call of
 * it inside libpython goes through the PLT). The stub calls the function
 * itself, not the GOT's value, which may still be the lazy-binding PLT stub
 * (put back as it was on exit). Returns how many. */
static int plan_got_hook(const struct tm_target *t, struct tm_elf *e, const struct tm_inject_area *old,
			 struct tm_stub *s, uint64_t orig[STUB_NORIG])
{
	static const char *const names[2] = { "_Py_NewReference", "_Py_NewReferenceNoTotal" };
	static const uint64_t entries[2] = { TM_STUB_full_newref, TM_STUB_full_newref2 };
	int n = 0;

	if (t->minor < 9 || t->minor > 12 || !tm_elf_is_dyn(e))
		return 0;
	for (int k = 0; k < 2; k++) {
		struct tm_elf_sym fn;
		uint64_t got, live, cur;

		if (tm_elf_dynsym(e, names[k], &fn) || tm_elf_got_slot(e, names[k], &got) ||
		    tm_target_read(t->pid, got + t->load_bias, &live, sizeof(live)))
			continue;
		cur = resolve(t->pid, old, live, STUB_ORIG_NEWREF + k);
		if (!tm_elf_vaddr_is_exec(e, cur - t->load_bias))
			continue; /* someone else's hook: leave it */
		orig[STUB_ORIG_NEWREF + k] = fn.value + t->load_bias;
		add_slot(s, got + t->load_bias, cur, live, entries[k], names[k]);
		n++;
	}
	return n;
}

/* 3.13+: _PyRuntime.ref_tracer.tracer_func, found in the code of
 * PyRefTracer_GetTracer (func and data are its two fields, func first).
 * The tracer already there (tracemalloc's, if it runs) is chained. */
static int plan_tracer_hook(const struct tm_target *t, struct tm_elf *e,
			    const struct tm_inject_area *old, struct tm_stub *s,
			    uint64_t orig[STUB_NORIG])
{
	struct tm_elf_sym rt;
	uint64_t off[8], func = UINT64_MAX, live, cur;
	int n;

	if (t->minor < 13 || tm_elf_dynsym(e, "_PyRuntime", &rt))
		return 0;
	n = tm_code_field_offsets(e, "PyRefTracer_GetTracer", 64, "_PyRuntime", rt.value, rt.size,
				  off, 8);
	for (int i = 0; i < n; i++)
		if (off[i] < func)
			func = off[i];
	if (n != 2 || off[0] + off[1] != 2 * func + 8)
		return 0; /* not the two adjacent fields we expect */
	if (tm_target_read(t->pid, t->runtime_addr + func, &live, sizeof(live)))
		return 0;
	cur = resolve(t->pid, old, live, STUB_ORIG_TRACER);
	orig[STUB_ORIG_TRACER] = cur;
	add_slot(s, t->runtime_addr + func, cur, live, TM_STUB_full_reftracer, "ref tracer");
	return 1;
}

/* Another tmbpf that owns this area and still runs. */
static int owned_by_live_session(pid_t pid, const struct tm_inject_area *a, pid_t *owner)
{
	uint64_t who[2];

	if (tm_target_read(pid, a->base + a->code_len + STATE(st_session_pid), who, sizeof(who)))
		return 0;
	if (!who[0] || (pid_t)who[0] == getpid())
		return 0;
	*owner = (pid_t)who[0];
	return start_time((pid_t)who[0]) == who[1];
}

/* The code bytes of an area (the memfd), to reuse it: same stub, same
 * real functions. */
static int area_matches(pid_t pid, const struct tm_inject_area *a, const unsigned char *blob)
{
	unsigned char cur[sizeof(tm_stub_code)];
	int fd = tm_inject_open_code(pid, a, O_RDONLY), ok;

	if (fd < 0)
		return 0;
	ok = pread(fd, cur, sizeof(cur), 0) == (ssize_t)sizeof(cur) &&
	     !memcmp(cur, blob, sizeof(cur));
	close(fd);
	return ok;
}

static int write_code(pid_t pid, const struct tm_inject_area *a, const unsigned char *blob,
		      char *err, size_t errlen)
{
	int fd = tm_inject_open_code(pid, a, O_RDWR), e = 0;

	if (fd < 0) {
		snprintf(err, errlen, "PID %d: cannot open the stub's memfd: %s", (int)pid,
			 strerror(-fd));
		return fd;
	}
	if (pwrite(fd, blob, sizeof(tm_stub_code), 0) != (ssize_t)sizeof(tm_stub_code)) {
		e = errno ? -errno : -EIO;
		snprintf(err, errlen, "PID %d: cannot write the stub: %s", (int)pid, strerror(-e));
	}
	close(fd);
	return e;
}

/* Are t's mem and obj frees pymalloc's own, which hands every block it did
 * not allocate to the raw free? They are when both domains hold the build's
 * initial functions (orig[], what the stub would call) with no context, and
 * those are not the raw domain's (a build without pymalloc, PYTHONMALLOC=
 * malloc); debug hooks have a context. Free-threaded builds (mimalloc) are
 * refused before this. */
static int pymalloc_frees(const struct tm_target *t, const struct tm_allocator *def,
			  const uint64_t orig[STUB_NORIG])
{
	if (!def)
		return 0;
	for (int d = TM_DOM_MEM; d <= TM_DOM_OBJ; d++) {
		if (t->alloc[d].ctx || def[d].ctx || def[d].free_fn == def[TM_DOM_RAW].free_fn)
			return 0;
		for (int f = 0; f < TM_NFNS; f++)
			if (orig[orig_base[d] + f] != tm_allocator_fn(&def[d], f))
				return 0;
	}
	return 1;
}

static void fill_constants(unsigned char *blob, const struct tm_target *t,
			   const uint64_t orig[STUB_NORIG], uint64_t sample_floor)
{
	uint64_t magic = STUB_MAGIC, v;

	memcpy(blob, tm_stub_code, sizeof(tm_stub_code));
	memcpy(blob + TM_STUB_c_magic, &magic, 8);
	memcpy(blob + TM_STUB_c_orig, orig, 8 * STUB_NORIG);
	v = 0xa8; /* offsetof(PyTypeObject, tp_flags), 3.8-3.15 */
	memcpy(blob + TM_STUB_c_tp_flags_off, &v, 8);
	v = t->cfg.newref_gc_mask;
	memcpy(blob + TM_STUB_c_gc_mask, &v, 8);
	v = t->cfg.newref_preheader_mask;
	memcpy(blob + TM_STUB_c_pre_mask, &v, 8);
	memcpy(blob + TM_STUB_c_sample_floor, &sample_floor, 8);
}

/* Sampled mode's state: the set empty and sized, the stub's generator
 * seeded, the first interval in each counter. */
static int init_sampling(struct tm_stub *s, uint64_t slots)
{
	uint64_t w[8] = { 0 }, zero[512] = { 0 };
	int fd, rc;
	char line[160];

	fd = tm_mem_open(s->pid, line, sizeof(line));
	if (fd < 0)
		return fd;
	w[0] = s->rng;          /* st_rng: the stub draws every later interval itself */
	w[1] = s->sample_bytes; /* st_sample_mean */
	rc = tm_mem_write(fd, s->state_addr + STATE(st_rng), w, 2 * 8);
	/* an adopted area's filter and set may hold an earlier session's blocks */
	uint64_t clear = STATE(st_set) + 8 * slots - STATE(st_filter);

	for (uint64_t at = 0; !rc && at < clear; at += sizeof(zero))
		rc = tm_mem_write(fd, s->state_addr + STATE(st_filter) + at, zero,
				  clear - at < sizeof(zero) ? clear - at : sizeof(zero));
	w[0] = slots - 1;     /* st_set_mask */
	w[1] = slots / 4 * 3; /* st_set_limit */
	if (!rc)
		rc = tm_mem_write(fd, s->state_addr + STATE(st_set_mask), w, 4 * 8); /* mask..lost */
	w[0] = tm_sample_draw(&s->rng, s->sample_bytes);
	if (!rc)
		rc = tm_mem_write(fd, s->state_addr + STATE(st_remaining_obj), w, 8);
	w[0] = tm_sample_draw(&s->rng, s->sample_bytes);
	if (!rc)
		rc = tm_mem_write(fd, s->state_addr + STATE(st_remaining_raw), w, 8);
	close(fd);
	return rc;
}

int tm_stub_samples_lost(const struct tm_stub *s, uint64_t *n)
{
	*n = 0;
	if (!s->sample_bytes)
		return 0;
	return tm_target_read(s->pid, s->state_addr + STATE(st_samples_lost), n, 8);
}

int tm_stub_prepare(const struct tm_target *t, pid_t traced_tid, const struct tm_stub_opts *o,
		    struct tm_stub *s, char *err, size_t errlen)
{
	struct tm_inject_area old = { 0 };
	uint64_t orig[STUB_NORIG] = { 0 };
	unsigned char *blob = NULL;
	struct tm_elf *e = NULL;
	pid_t owner = 0;
	int rc;

	memset(s, 0, sizeof(*s));
	s->mem_fd = -1;
	s->pid = t->pid;
	blob = malloc(sizeof(tm_stub_code));
	e = tm_elf_open(t->elf_path);
	if (!blob || !e) {
		rc = -errno;
		snprintf(err, errlen, "PID %d: cannot open %s: %s", (int)t->pid, t->elf_path,
			 strerror(errno));
		goto out;
	}
	/* An area an earlier tmbpf left (detached or killed): pointers that
	 * name its entries stand for what it calls. */
	if (tm_inject_find(t->pid, STUB_CODE_SIZE, STATE(st_inject_id), &old) == 0 &&
	    owned_by_live_session(t->pid, &old, &owner)) {
		rc = -EBUSY;
		snprintf(err, errlen, "PID %d is already traced by tmbpf PID %d", (int)t->pid,
			 (int)owner);
		goto out;
	}
	s->sample_bytes = o->sample_bytes;
	s->state_len = STATE_LEN;
	if (s->sample_bytes) {
		uint64_t slots = o->sample_slots ? o->sample_slots : SAMPLE_SLOTS_DEFAULT;

		if (slots & (slots - 1) || slots < 1024 || slots > (1u << 24)) {
			rc = -EINVAL;
			snprintf(err, errlen, "the stub's set of sampled blocks must hold a power of two "
				 "from 1024 to 2^24 blocks");
			goto out;
		}
		s->state_len = STATE(st_set) + 8 * slots;
		/* every session samples other points: runs are independent */
		if (getrandom(&s->rng, sizeof(s->rng), 0) != sizeof(s->rng))
			s->rng = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)time(NULL);
		if (!s->rng)
			s->rng = 1;
	}
	/* Frees first, then reallocs, then allocations: arming writes the
	 * slots in this order and disarming in the reverse one, so that no
	 * block allocated through the stub is freed around it (a free missed:
	 * measured 39 blocks per attach with mallocs first). */
	for (int d = 0; d < TM_NDOMAINS; d++)
		for (int f = 0; f < TM_NFNS; f++)
			orig[orig_base[d] + f] = resolve(t->pid, &old, tm_allocator_fn(&t->alloc[d], f),
							 orig_base[d] + f);
	/* Sampled mode on pymalloc: its frees stay as they are (on an LTO build
	 * every pointer taken over loses its inlined fast path), and sampled
	 * blocks go where the raw free sees them. */
	s->raw_frees_only = s->sample_bytes && pymalloc_frees(t, o->defaults, orig);
	for (int f = TM_NFNS - 1; f >= 0; f--)
		for (int d = 0; d < TM_NDOMAINS; d++) {
			int k = orig_base[d] + f;
			char what[24];

			/* (unless an earlier stub is there: taken over, to put pymalloc's back) */
			if (s->raw_frees_only && f == TM_FN_FREE && d != TM_DOM_RAW &&
			    tm_allocator_fn(&t->alloc[d], f) == orig[k])
				continue;
			snprintf(what, sizeof(what), "%s.%s", tm_alloc_domain_name(d), tm_alloc_fn_name(f));
			add_slot(s, t->alloc[d].struct_addr + 8 + 8 * (uint64_t)f, orig[k],
				 tm_allocator_fn(&t->alloc[d], f), s->sample_bytes ? sampled_entries[d][f] : full_entries[d][f], what);
		}
	/* Sampled mode follows no object creation: re-attributing a sampled
	 * block reused from a free list would cost a lookup per object. */
	if (o->newref && !s->sample_bytes) {
		if (plan_tracer_hook(t, e, &old, s, orig))
			s->newref_hook = TM_HOOK_TRACER;
		else if (plan_got_hook(t, e, &old, s, orig))
			s->newref_hook = TM_HOOK_GOT;
	}
	fill_constants(blob, t, orig, s->raw_frees_only ? STUB_SAMPLE_FLOOR : 0);
	if (old.base && area_matches(t->pid, &old, blob) && old.state_len >= s->state_len) {
		s->area = old;
		s->adopted = 1;
	} else {
		rc = tm_inject_area(t->pid, traced_tid, STUB_CODE_SIZE, s->state_len, STATE(st_inject_id),
				    &s->area, err, errlen);
		if (!rc)
			rc = write_code(t->pid, &s->area, blob, err, errlen);
		if (rc)
			goto out;
	}
	s->old_base = old.base != s->area.base ? old.base : 0;
	s->state_addr = s->area.base + STUB_CODE_SIZE;
	/* The state: ours, guard off until armed. */
	{
		uint64_t who[2] = { (uint64_t)getpid(), start_time(getpid()) };
		uint8_t guard = STUB_GUARD_OFF;

		rc = tm_mem_write_pid(t->pid, s->state_addr + STATE(st_session_pid), who, sizeof(who));
		if (!rc)
			rc = tm_mem_write_pid(t->pid, s->state_addr + STATE(st_guard), &guard, 1);
		if (rc) {
			snprintf(err, errlen, "PID %d: cannot write the stub's state: %s", (int)t->pid,
				 strerror(-rc));
			goto out;
		}
	}
	if (s->sample_bytes) {
		rc = init_sampling(s, o->sample_slots ? o->sample_slots : SAMPLE_SLOTS_DEFAULT);
		if (rc) {
			snprintf(err, errlen, "PID %d: cannot set up sampling in the stub: %s",
				 (int)t->pid, strerror(-rc));
			goto out;
		}
	}
	rc = tm_inject_code_path(t->pid, &s->area, s->code_path, sizeof(s->code_path));
	if (rc)
		goto out;
	if (s->sample_bytes)
		for (size_t i = 0; i < sizeof(sampled_probes) / sizeof(sampled_probes[0]); i++)
			s->probes[s->nprobes++] = sampled_probes[i];
	else
		for (size_t i = 0; i < sizeof(full_probes) / sizeof(full_probes[0]); i++)
			s->probes[s->nprobes++] = full_probes[i];
	if (s->newref_hook == TM_HOOK_GOT) {
		s->probes[s->nprobes++] = (struct tm_stub_probe){ TM_STUB_probe_full_newref, TM_STUB_NEWREF };
		s->probes[s->nprobes++] = (struct tm_stub_probe){ TM_STUB_probe_full_newref2, TM_STUB_NEWREF };
	} else if (s->newref_hook == TM_HOOK_TRACER) {
		s->probes[s->nprobes++] = (struct tm_stub_probe){ TM_STUB_probe_full_reftracer, TM_STUB_NEWREF };
	}
	snprintf(s->summary, sizeof(s->summary),
		 "PID %d: %s stub at 0x%llx: %zu allocator%s pointers go through it (restored on exit, "
		 "harmless if tmbpf dies)%s", (int)t->pid, s->adopted ? "reusing the" : "injected a",
		 (unsigned long long)s->area.base, s->nslots,
		 s->newref_hook == TM_HOOK_TRACER ? " and ref-tracer" :
		 s->newref_hook == TM_HOOK_GOT ? " and _Py_NewReference" : "",
		 s->raw_frees_only ? "; sampled blocks under 513 bytes are asked for at 513 (from the "
				     "raw allocator)" : "");
	rc = 0;
out:
	tm_elf_close(e);
	free(blob);
	return rc;
}

static int write_guard(struct tm_stub *s, uint8_t g)
{
	if (s->mem_fd >= 0)
		return tm_mem_write(s->mem_fd, s->state_addr + STATE(st_guard), &g, 1);
	return tm_mem_write_pid(s->pid, s->state_addr + STATE(st_guard), &g, 1);
}

int tm_stub_arm(struct tm_stub *s, char *err, size_t errlen)
{
	char line[160];
	int fd, rc, busy = 0;

	fd = tm_mem_open(s->pid, line, sizeof(line));
	if (fd < 0) {
		snprintf(err, errlen, "%s", line);
		return fd;
	}
	if (s->mem_fd >= 0)
		close(s->mem_fd);
	s->mem_fd = fd; /* kept for retake and disarm: this address space only */
	rc = write_guard(s, STUB_GUARD_ON);
	for (size_t i = 0; i < s->nslots && !rc; i++) {
		struct tm_stub_slot *sl = &s->slot[i];
		uint64_t cur;

		uint64_t ours = s->area.base + sl->entry;

		rc = tm_mem_read(fd, sl->addr, &cur, 8);
		if (rc)
			break;
		if (cur == ours) {
			sl->written = 1; /* left by the session before */
			continue;
		}
		/* the real function, or what was there when planned: an earlier
		 * stub's entry for it (of either mode: their entries differ) */
		if (cur != sl->orig && cur != sl->seen) {
			snprintf(err, errlen, "PID %d: %s changed since attach (0x%llx): left as is",
				 (int)s->pid, sl->what, (unsigned long long)cur);
			busy = 1;
			continue;
		}
		rc = tm_mem_write(fd, sl->addr, &ours, 8);
		sl->written = rc == 0;
	}
	if (rc) {
		snprintf(err, errlen, "PID %d: cannot redirect the allocator pointers: %s", (int)s->pid,
			 strerror(-rc));
		tm_stub_disarm(s, line, sizeof(line));
		return rc;
	}
	s->armed = 1;
	return busy ? -EBUSY : 0;
}

int tm_stub_disarm(struct tm_stub *s, char *err, size_t errlen)
{
	char line[160];
	int fd, busy = 0;

	if (!s->pid)
		return 0;
	/* Armed: the descriptor of the address space we wrote into (after an
	 * exec it fails: the new image is not ours to write). Else (a setup
	 * that failed before arming) the process as it is. */
	fd = s->mem_fd >= 0 ? s->mem_fd : tm_mem_open(s->pid, line, sizeof(line));
	s->mem_fd = -1;
	if (fd < 0)
		return fd == -ESRCH ? 0 : fd;
	/* Pointers first: no new call enters the stub; calls inside finish.
	 * In the reverse order of arming: allocations stop being seen before
	 * frees do. */
	for (size_t i = s->nslots; i-- > 0;) {
		struct tm_stub_slot *sl = &s->slot[i];
		uint64_t cur;

		if (!sl->written)
			continue;
		if (tm_mem_read(fd, sl->addr, &cur, 8))
			break;
		if (cur != s->area.base + sl->entry) {
			snprintf(err, errlen, "PID %d: %s was changed while traced (0x%llx): left as "
				 "is, it still reaches the real function", (int)s->pid, sl->what,
				 (unsigned long long)cur);
			busy = 1;
		} else if (tm_mem_write(fd, sl->addr, &sl->orig, 8)) {
			break;
		}
		sl->written = 0;
	}
	if (s->state_addr) {
		uint64_t none[2] = { 0, 0 };
		uint8_t g = STUB_GUARD_DRAIN;

		tm_mem_write(fd, s->state_addr + STATE(st_guard), &g, 1);
		tm_mem_write(fd, s->state_addr + STATE(st_session_pid), none, sizeof(none));
	}
	close(fd);
	s->armed = 0;
	return busy ? -EBUSY : 0;
}

int tm_stub_retake(struct tm_stub *s, char *err, size_t errlen)
{
	int fd, n = 0;
	uint64_t magic = 0, who = 0;
	int mine = -1; /* unknown until a pointer needs us */

	if (!s->armed || s->mem_fd < 0)
		return 0;
	fd = s->mem_fd;
	for (size_t i = 0; i < s->nslots; i++) {
		struct tm_stub_slot *sl = &s->slot[i];
		uint64_t cur, ours = s->area.base + sl->entry;

		/* (a slot with nothing behind it, the 3.13 ref tracer, is set to
		 * NULL by tracemalloc.stop(): not a reset) */
		if (!sl->written || !sl->orig || tm_mem_read(fd, sl->addr, &cur, 8) || cur == ours)
			continue;
		/* what we replaced: put back by the target (PyMem_SetAllocator
		 * with a copy saved before we came); anything else wraps or
		 * replaces us on purpose (tracemalloc.start()): left as is */
		if (cur != sl->orig)
			continue;
		/* Only into the image the stub went into: the descriptor fails
		 * after an exec; the magic and session pid are checked as
		 * well, since writing into an image without our area would
		 * crash it. */
		if (mine < 0)
			mine = tm_mem_read(fd, s->area.base + TM_STUB_c_magic, &magic, 8) == 0 &&
			       magic == STUB_MAGIC &&
			       tm_mem_read(fd, s->state_addr + STATE(st_session_pid), &who, 8) == 0 &&
			       who == (uint64_t)getpid();
		if (!mine)
			break;
		if (tm_mem_write(fd, sl->addr, &ours, 8))
			continue;
		if (!n++)
			snprintf(err, errlen, "PID %d: its %s pointer was put back to 0x%llx; taken again",
				 (int)s->pid, sl->what, (unsigned long long)cur);
	}
	return n;
}

int tm_stub_pass_leftover(struct tm_target *t, char *err, size_t errlen)
{
	struct tm_inject_area old = { 0 };
	pid_t owner = 0;
	int n = 0;

	if (tm_inject_find(t->pid, STUB_CODE_SIZE, STATE(st_inject_id), &old))
		return 0;
	if (owned_by_live_session(t->pid, &old, &owner)) {
		snprintf(err, errlen, "PID %d is already traced by tmbpf PID %d", (int)t->pid,
			 (int)owner);
		return -EBUSY;
	}
	for (int d = 0; d < TM_NDOMAINS; d++) {
		uint64_t *fn[TM_NFNS] = { &t->alloc[d].malloc_fn, &t->alloc[d].calloc_fn,
					  &t->alloc[d].realloc_fn, &t->alloc[d].free_fn };

		for (int f = 0; f < TM_NFNS; f++) {
			uint64_t real = resolve(t->pid, &old, *fn[f], orig_base[d] + f);

			if (real != *fn[f]) {
				*fn[f] = real;
				n++;
			}
		}
	}
	if (n) {
		/* every entry passes through; frees first release the quarantine */
		uint8_t g = STUB_GUARD_DRAIN;

		tm_mem_write_pid(t->pid, old.base + old.code_len + STATE(st_guard), &g, 1);
	}
	return n;
}

int tm_stub_pending_frees(const struct tm_stub *s, uint64_t *out, size_t max)
{
	uint64_t n, q[STUB_QUARANTINE * STUB_QENTRY_SIZE / 8];
	size_t k = 0;

	if (!s->state_addr ||
	    tm_target_read(s->pid, s->state_addr + STATE(st_q_n), &n, sizeof(n)) ||
	    tm_target_read(s->pid, s->state_addr + STATE(st_q), q, sizeof(q)))
		return -EFAULT;
	for (uint64_t i = 0; i < n && i < STUB_QUARANTINE && k < max; i++)
		out[k++] = q[i * (STUB_QENTRY_SIZE / 8)];
	return (int)k;
}
