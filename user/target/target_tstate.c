/* How BPF finds the current thread's PyThreadState (the routes of target.h)
 * and the rest of the per-process BPF record. Reads the target's memory and
 * the code of its interpreter and libc; never writes. */
#include <elf.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>

#include "placement/code_refs.h"
#include "target/target_priv.h"

#define GLIBC_SPECIFIC_1STBLOCK 0x310 /* glibc 2.36 x86-64, used when decoding fails */

/* glibc's TSD offset from the code of pthread_getspecific in the libc the
 * process maps (code_refs.h). */
static int decode_tsd_offset(struct probe_ctx *c, uint32_t *off)
{
	int err = -ENOENT;

	for (size_t i = 0; i < c->maps.n && err; i++) {
		const struct tm_map *m = &c->maps.maps[i];
		char host[PATH_MAX];
		struct tm_elf *e;

		if (m->offset != 0 || strncmp(tm_target_base_name(m->path), "libc.so", 7))
			continue;
		e = tm_target_open_mapped(c, m, host, sizeof(host));
		if (!e)
			continue;
		err = tm_code_tsd_offset(e, off);
		tm_elf_close(e);
	}
	return err;
}

/* fsbase of the threads the interpreter knows: PyThreadState.thread_id is
 * pthread_self(), which is the TCB address on glibc x86-64. */
static int thread_bases(struct probe_ctx *c, uint64_t *bases, int max)
{
	const struct tm_layout *l = c->layout;
	pid_t pid = c->t->pid;
	uint64_t interp, ts;
	int n = 0;

	if (tm_target_read_u64(pid, c->t->runtime_addr + l->rt_interpreters_head, &interp) ||
	    !interp)
		return 0;
	if (tm_target_read_u64(pid, interp + l->is_threads_head, &ts))
		return 0;
	for (int guard = 0; ts && guard < 4096 && n < max; guard++) {
		uint64_t tid, self;

		if (tm_target_read_u64(pid, ts + l->ts_thread_id, &tid))
			break;
		if (tid && tm_target_read_u64(pid, tid + 0x10, &self) == 0 && self == tid)
			bases[n++] = tid;
		if (tm_target_read_u64(pid, ts + l->ts_next, &ts))
			break;
	}
	return n;
}

/* The main thread's fsbase when we are its ptrace tracer (tmbpf run stops
 * the child at its entry point, before any thread state exists). */
static int traced_fsbase(pid_t pid, uint64_t *base)
{
	long v;

	errno = 0;
	v = ptrace(PTRACE_PEEKUSER, pid, (void *)offsetof(struct user_regs_struct, fs_base), NULL);
	if (errno)
		return -errno;
	*base = (uint64_t)v;
	return 0;
}

/* The static TLS offset (from fsbase) of the thread-local var, which the
 * exported one-line getter fn returns. A static executable reads it local-
 * exec (`mov %fs:OFF,%rax`): OFF. A libpython reads it general dynamic:
 * the block sits at a fixed distance below each thread's TCB for a library
 * loaded at startup, so measure that distance through the DTV of every
 * known thread (dtv = *(fsbase + 8); block = dtv[modid].val) and require
 * agreement. note gets how. */
static int tls_offset(struct probe_ctx *c, const char *fn, const char *var, int64_t *out,
		      char *note, size_t notelen)
{
	struct tm_target *t = c->t;
	uint64_t got = 0, bases[64], modid = 0, dtpoff = 0;
	int64_t off = 0, le_off = 0;
	struct tm_elf_sym sym;
	const char *source = "thread";
	int n, rc;

	rc = tm_code_tls_access(c->elf, fn, &got, &le_off);
	if (rc == 1) {
		*out = le_off;
		snprintf(note, notelen, "TLS local-exec %%fs:%lld", (long long)le_off);
		return 0;
	}
	if (rc == 0) {
		if (tm_target_read_u64(t->pid, got + t->load_bias, &modid) ||
		    tm_target_read_u64(t->pid, got + t->load_bias + 8, &dtpoff))
			return -ENOENT;
	} else {
		if (tm_elf_symbol(c->elf, var, &sym) || sym.type != STT_TLS ||
		    tm_elf_dtpmod_slot(c->elf, &got) ||
		    tm_target_read_u64(t->pid, got + t->load_bias, &modid))
			return -ENOENT;
		dtpoff = sym.value;
	}
	if (tm_elf_symbol(c->elf, var, &sym) == 0 && sym.value != dtpoff)
		return -EPROTO; /* the decoded GOT pair names another variable */
	if (!modid || modid > 4096)
		return -ENOENT;
	n = thread_bases(c, bases, 64);
	if (n == 0 && traced_fsbase(t->pid, &bases[0]) == 0 && bases[0]) {
		n = 1;
		source = "ptrace-stopped thread";
	}
	if (n == 0)
		return -ENOENT;
	for (int i = 0; i < n; i++) {
		uint64_t dtv, block;
		int64_t o;

		if (tm_target_read_u64(t->pid, bases[i] + 8, &dtv) ||
		    tm_target_read_u64(t->pid, dtv + 16 * modid, &block))
			return -EFAULT;
		if (block == 0 || block == (uint64_t)-1)
			return -ENOENT; /* dynamic TLS not allocated for this thread */
		o = (int64_t)(block + dtpoff - bases[i]);
		if (i && o != off)
			return -ERANGE; /* not static TLS: offsets differ per thread */
		off = o;
	}
	if (off > 0 || off < -(1 << 24))
		return -ERANGE;
	*out = off;
	if (!strcmp(var, "_Py_tss_tstate")) {
		t->tls_modid = (int)modid;
		t->tls_dtpoff = dtpoff;
	}
	snprintf(note, notelen, "TLS modid %d dtpoff 0x%llx -> fsbase%lld (DTV of %d %s%s)",
		 (int)modid, (unsigned long long)dtpoff, (long long)off, n, source,
		 n == 1 ? "" : "s");
	return 0;
}

/* &autoTSSkey (Py_tss_t), <=3.14: 3.13+ from the code of the exported
 * PyGILState_GetThisThreadState (its first reference into _PyRuntime is
 * the Py_tss_t's _is_initialized), so a patch release or a debug build that
 * moved it is still right; the layout table otherwise. 0: none (3.15+). */
static uint64_t tss_key(struct probe_ctx *c)
{
	struct tm_target *t = c->t;
	struct tm_elf_sym rt;
	uint64_t v, table;

	table = c->layout->rt_autotss_key == TM_NO_OFFSET ? 0
							  : t->runtime_addr + c->layout->rt_autotss_key;
	if (t->minor < 13 || tm_elf_symbol(c->elf, "_PyRuntime", &rt))
		return table;
	if (tm_code_first_ref_in(c->elf, "PyGILState_GetThisThreadState", rt.value,
				 rt.value + rt.size, &v) == 0) {
		/* 3.15 reaches no _PyRuntime field there: its thread-local
		 * replaced the key, and the function reads %fs only. */
		return v + t->load_bias;
	}
	return table;
}

static void tstate_routes(struct probe_ctx *c)
{
	struct tm_target *t = c->t;
	const struct tm_layout *l = c->layout;
	struct tm_proc_config *cfg = &t->cfg;
	char tls_note[96] = "", gil_note[96] = "";
	uint64_t key = tss_key(c);
	int64_t off = 0;
	uint32_t tsd;
	int err;

	if (key) {
		cfg->tss_key_addr = key + TM_PY_TSS_KEY;
		cfg->tstate_routes = TM_TSTATE_TSD;
	}
	if (decode_tsd_offset(c, &tsd) == 0) {
		cfg->tsd_specific_offset = tsd;
		t->tsd_offset_decoded = 1;
	} else {
		cfg->tsd_specific_offset = GLIBC_SPECIFIC_1STBLOCK;
	}
	if (t->minor <= 11) {
		cfg->tstate_current_addr = t->runtime_addr + l->rt_tstate_current;
		cfg->tstate_routes |= TM_TSTATE_GILSTATE;
		snprintf(t->tstate_note, sizeof(t->tstate_note), "gilstate.tstate_current, then TSD");
		return;
	}
	err = tls_offset(c, "_PyThreadState_GetCurrent", "_Py_tss_tstate", &off, tls_note,
			 sizeof(tls_note));
	if (err == 0) {
		cfg->tls_tstate_offset = off;
		cfg->tstate_routes |= TM_TSTATE_TLS;
	} else
		snprintf(tls_note, sizeof(tls_note), "static TLS offset of _Py_tss_tstate unknown (%s)",
			 strerror(-err));
	/* 3.15: PyGILState_GetThisThreadState returns the thread-local
	 * _Py_tss_gilstate (no _PyRuntime key any more). */
	if (!key && t->minor >= 15 &&
	    tls_offset(c, "PyGILState_GetThisThreadState", "_Py_tss_gilstate", &off, gil_note,
		       sizeof(gil_note)) == 0) {
		cfg->tls_gilstate_offset = off;
		cfg->tstate_routes |= TM_TSTATE_TLS_GILSTATE;
	}
	snprintf(t->tstate_note, sizeof(t->tstate_note), "%s; %s%s", tls_note,
		 cfg->tstate_routes & TM_TSTATE_TLS_GILSTATE ? "gilstate " : "",
		 cfg->tstate_routes & TM_TSTATE_TLS_GILSTATE ? gil_note
		 : key ? "then autoTSSkey TSD" : "no gilstate route");
}

int tm_target_fill_config(struct probe_ctx *c)
{
	struct tm_target *t = c->t;
	const struct tm_layout *l = c->layout;
	struct tm_proc_config *cfg = &t->cfg;

	memset(cfg, 0, sizeof(*cfg));
	cfg->py_version = (uint32_t)(t->major << 8 | t->minor);
	tstate_routes(c);
	cfg->frame_kind = l->frame_kind;
	cfg->ts_thread_id = (uint16_t)l->ts_thread_id;
	cfg->ts_frame = (uint16_t)l->ts_frame;
	cfg->cframe_current_frame = (uint16_t)l->cframe_current_frame;
	cfg->ts_datastack_chunk = (uint16_t)l->ts_datastack_chunk;
	cfg->ts_status = (uint16_t)l->ts_status;
	cfg->f_back = (uint16_t)l->f_back;
	cfg->f_code = (uint16_t)l->f_code;
	cfg->f_lasti = (uint16_t)l->f_lasti;
	cfg->f_owner = (uint16_t)l->f_owner;
	cfg->f_read_size = (uint16_t)l->f_read_size;
	/* _PyType_PreHeaderSize: Py_TPFLAGS_HAVE_GC (1 << 14) adds PyGC_Head;
	 * 3.11 Py_TPFLAGS_MANAGED_DICT (1 << 4), 3.12+ also MANAGED_WEAKREF (1 << 3),
	 * add two pointers. */
	cfg->newref_gc_mask = 1u << 14;
	cfg->newref_preheader_mask = t->minor == 11 ? 1u << 4 : t->minor >= 12 ? 3u << 3 : 0;
	return 0;
}
