/* Finding a CPython in a live process: the ELF that holds the interpreter,
 * its version and load bias, _PyRuntime, the live allocator structs, and the
 * per-process record BPF needs to find the current thread's frames. Reads
 * the target's memory only; never writes it. */
#include "target/target.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <unistd.h>

#include "placement/code_refs.h"
#include "placement/elf_file.h"
#include "target/layouts.h"
#include "target/proc_maps.h"

#define TM_MIN_MINOR 8
#define TM_MAX_MINOR 13
#define GLIBC_SPECIFIC_1STBLOCK 0x310 /* glibc 2.36 x86-64, used when decoding fails */

/* Discovery state that does not outlive tm_target_open. */
struct probe_ctx {
	struct tm_target *t;
	struct tm_maps maps;
	struct tm_elf *elf;
	const struct tm_layout *layout;
	const char *mapped_path; /* elf's path as the target sees it (in maps) */
	char *err;
	size_t errlen;
};

static int read_mem_file(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	char path[64];
	int fd, err = 0;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	ssize_t n = pread(fd, buf, len, (off_t)addr);
	if (n < 0)
		err = -errno;
	else if ((size_t)n != len)
		err = -EFAULT;
	close(fd);
	return err;
}

int tm_target_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };
	ssize_t n;

	if (!len)
		return 0;
	n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		return -EFAULT;
	if (errno == ENOSYS || errno == EPERM)
		return read_mem_file(pid, addr, buf, len);
	return -errno;
}

static int read_u64(pid_t pid, uint64_t addr, uint64_t *v)
{
	return tm_target_read(pid, addr, v, sizeof(*v));
}

static int fail(struct probe_ctx *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct probe_ctx *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (c->err && c->errlen)
		vsnprintf(c->err, c->errlen, fmt, ap);
	va_end(ap);
	return err;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* Open a mapped file through /proc/PID/root and check it is the file mapped
 * (same inode), so a replaced file on disk is not mistaken for the image. */
static struct tm_elf *open_mapped(struct probe_ctx *c, const struct tm_map *m, char *host,
				  size_t hostlen)
{
	struct stat st;

	if (tm_maps_host_path(c->t->pid, m->path, host, hostlen))
		return NULL;
	if (stat(host, &st) || st.st_ino != m->inode)
		return NULL;
	return tm_elf_open(host);
}

static int has_defined(const struct tm_elf *e, const char *name)
{
	struct tm_elf_sym s;

	return tm_elf_symbol(e, name, &s) == 0;
}

/* The interpreter's ELF: the executable (first mapping, or the inode of
 * /proc/PID/exe) when it defines
 * Py_GetVersion (static libpython), else a mapped libpython*. */
static int find_interpreter_elf(struct probe_ctx *c)
{
	const char *tried = NULL;
	char exe[64];
	struct stat st;
	uint64_t exe_ino = 0;

	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)c->t->pid);
	if (stat(exe, &st) == 0)
		exe_ino = st.st_ino;

	for (size_t i = 0; i < c->maps.n; i++) {
		const struct tm_map *m = &c->maps.maps[i];
		char host[PATH_MAX];
		struct tm_elf *e;

		if (m->path[0] != '/' || m->offset != 0)
			continue;
		if (i != 0 && m->inode != exe_ino && strncmp(base_name(m->path), "libpython", 9))
			continue;
		if (tried && !strcmp(tried, m->path))
			continue;
		tried = m->path;
		e = open_mapped(c, m, host, sizeof(host));
		if (!e)
			continue;
		if (has_defined(e, "Py_GetVersion")) {
			c->elf = e;
			c->mapped_path = m->path;
			snprintf(c->t->elf_path, sizeof(c->t->elf_path), "%s", host);
			return 0;
		}
		tm_elf_close(e);
	}
	return fail(c, -ENOEXEC, "PID %d is not a CPython process", (int)c->t->pid);
}

/* Load bias from the mapping of the first PT_LOAD: ELF vaddr + bias = address. */
static int compute_bias(struct probe_ctx *c)
{
	const struct tm_elf_segment *s0 = tm_elf_segment(c->elf, 0);
	const char *want = c->mapped_path;

	if (!s0)
		return fail(c, -ENOEXEC, "%s has no PT_LOAD segment", c->t->elf_path);
	for (size_t i = 0; i < c->maps.n; i++) {
		const struct tm_map *m = &c->maps.maps[i];

		if (strcmp(m->path, want) || m->offset != (s0->offset & ~0xfffULL))
			continue;
		c->t->load_bias = m->start - (s0->vaddr & ~0xfffULL);
		return 0;
	}
	return fail(c, -ENOEXEC, "PID %d: cannot find where %s is mapped", (int)c->t->pid, want);
}

static int parse_version(const char *s, int *major, int *minor, int *micro)
{
	char tail;
	int n = sscanf(s, "%d.%d.%d%c", major, minor, micro, &tail);

	if (n == 3 || (n == 4 && ((tail >= 'a' && tail <= 'z') || tail == '+')))
		return 0;
	return -EINVAL;
}

/* <3.11: PY_VERSION is the string Py_GetVersion passes to PyOS_snprintf
 * ("%.80s (%.80s) %.80s", PY_VERSION, ...); find it among the rip-relative
 * lea targets of the function. */
static int version_from_getversion(struct probe_ctx *c)
{
	struct tm_code_ref refs[32];
	struct tm_elf_sym sym;
	int n;

	if (tm_elf_symbol(c->elf, "Py_GetVersion", &sym))
		return -ENOENT;
	n = tm_code_refs(c->elf, sym.value, 128, refs, 32);
	for (int i = 0; i < n; i++) {
		char s[24] = { 0 };

		if (refs[i].opcode != 0x8d || tm_elf_read(c->elf, refs[i].target, s, sizeof(s) - 1))
			continue;
		if (strnlen(s, sizeof(s)) >= sizeof(s) - 1)
			continue;
		if (parse_version(s, &c->t->major, &c->t->minor, &c->t->micro) == 0) {
			snprintf(c->t->version, sizeof(c->t->version), "%s", s);
			return 0;
		}
	}
	return -ENOENT;
}

/* "libpython3.9.so.1.0", "python3.9", "libpython3.6m.so" -> major, minor. */
static int version_from_name(const char *path, int *major, int *minor)
{
	const char *b = base_name(path);

	if (!strncmp(b, "lib", 3))
		b += 3;
	if (strncmp(b, "python", 6) || sscanf(b + 6, "%d.%d", major, minor) != 2)
		return -ENOENT;
	return 0;
}

static int find_version(struct probe_ctx *c)
{
	struct tm_target *t = c->t;
	struct tm_elf_sym sym;
	uint32_t hex;
	int maj, min;

	if (tm_elf_symbol(c->elf, "Py_Version", &sym) == 0 &&
	    tm_elf_read(c->elf, sym.value, &hex, sizeof(hex)) == 0) {
		t->major = hex >> 24;
		t->minor = (hex >> 16) & 0xff;
		t->micro = (hex >> 8) & 0xff;
		snprintf(t->version, sizeof(t->version), "%d.%d.%d", t->major, t->minor, t->micro);
	} else if (version_from_getversion(c)) {
		if (version_from_name(t->elf_path, &t->major, &t->minor))
			return fail(c, -ENOEXEC, "PID %d: cannot tell the CPython version of %s",
				    (int)t->pid, t->elf_path);
		snprintf(t->version, sizeof(t->version), "%d.%d", t->major, t->minor);
	}
	/* The file name, when it carries a version, must agree. */
	if (version_from_name(t->elf_path, &maj, &min) == 0 && (maj != t->major || min != t->minor))
		return fail(c, -ENOEXEC, "PID %d: %s reports CPython %s", (int)t->pid,
			    t->elf_path, t->version);
	if (t->major != 3 || t->minor < TM_MIN_MINOR || t->minor > TM_MAX_MINOR)
		return fail(c, -EPROTONOSUPPORT,
			    "CPython %d.%d is not supported yet (tmbpf supports 3.%d-3.%d)", t->major,
			    t->minor, TM_MIN_MINOR, TM_MAX_MINOR);
	c->layout = tm_layout_get(t->minor);
	return c->layout ? 0 : -EPROTONOSUPPORT;
}

static int symbol_addr(struct probe_ctx *c, const char *name, uint64_t *addr)
{
	struct tm_elf_sym sym;

	if (tm_elf_symbol(c->elf, name, &sym))
		return -ENOENT;
	*addr = sym.value + c->t->load_bias;
	return 0;
}

int tm_target_file_offset(const struct tm_target *t, uint64_t addr, uint64_t *offset)
{
	struct tm_elf *e;
	int err;

	if (addr < t->load_bias)
		return -ENOENT;
	e = tm_elf_open(t->elf_path);
	if (!e)
		return -errno;
	err = tm_elf_vaddr_to_offset(e, addr - t->load_bias, 1, offset);
	tm_elf_close(e);
	return err;
}

/* ---- allocators ------------------------------------------------------ */

static int find_allocators(struct probe_ctx *c)
{
	static const char *const names[TM_NDOMAINS] = { "_PyMem_Raw", "_PyMem", "_PyObject" };
	struct tm_target *t = c->t;
	const struct tm_layout *l = c->layout;
	uint64_t from_code[TM_NDOMAINS];
	int code_err = -1; /* not decoded yet */

	for (int d = 0; d < TM_NDOMAINS; d++) {

		if (t->minor >= 12) {
			const uint32_t off[TM_NDOMAINS] = { l->rt_alloc_raw, l->rt_alloc_mem,
							    l->rt_alloc_obj };
			t->alloc[d].struct_addr = t->runtime_addr + off[d];
			continue;
		}
		if (symbol_addr(c, names[d], &t->alloc[d].struct_addr) == 0)
			continue;
		if (code_err == -1)
			code_err = tm_code_allocator_structs(c->elf, from_code);
		if (code_err)
			return fail(c, -ENOENT, "PID %d: cannot locate the %s allocator in %s",
				    (int)t->pid, names[d], t->elf_path);
		t->alloc[d].struct_addr = from_code[d] + t->load_bias;
	}
	return tm_target_read_allocators(t);
}

int tm_target_read_allocators(struct tm_target *t)
{
	for (int d = 0; d < TM_NDOMAINS; d++) {
		uint64_t v[5];
		int err = tm_target_read(t->pid, t->alloc[d].struct_addr, v, sizeof(v));

		if (err)
			return err;
		t->alloc[d].ctx = v[0];
		t->alloc[d].malloc_fn = v[1];
		t->alloc[d].calloc_fn = v[2];
		t->alloc[d].realloc_fn = v[3];
		t->alloc[d].free_fn = v[4];
		if (!v[1] || !v[2] || !v[3] || !v[4])
			return -EPROTO;
	}
	return 0;
}

/* ---- thread state routes ------------------------------------------------ */

/* glibc's TSD offset from the code of pthread_getspecific in the libc the
 * process maps (code_refs.h). */
static int decode_tsd_offset(struct probe_ctx *c, uint32_t *off)
{
	int err = -ENOENT;

	for (size_t i = 0; i < c->maps.n && err; i++) {
		const struct tm_map *m = &c->maps.maps[i];
		char host[PATH_MAX];
		struct tm_elf *e;

		if (m->offset != 0 || strncmp(base_name(m->path), "libc.so", 7))
			continue;
		e = open_mapped(c, m, host, sizeof(host));
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

	if (read_u64(pid, c->t->runtime_addr + l->rt_interpreters_head, &interp) || !interp)
		return 0;
	if (read_u64(pid, interp + l->is_threads_head, &ts))
		return 0;
	for (int guard = 0; ts && guard < 4096 && n < max; guard++) {
		uint64_t tid, self;

		if (read_u64(pid, ts + l->ts_thread_id, &tid))
			break;
		if (tid && read_u64(pid, tid + 0x10, &self) == 0 && self == tid)
			bases[n++] = tid;
		if (read_u64(pid, ts + l->ts_next, &ts))
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

/* 3.12+: _Py_tss_tstate lives in libpython's TLS block. For a library loaded
 * at startup the block sits at a fixed distance below each thread's TCB, so
 * fsbase + constant reaches it; measure that constant through the DTV of every
 * known thread (dtv = *(fsbase + 8); block = dtv[modid].val) and require
 * agreement. */
static int find_tls_offset(struct probe_ctx *c)
{
	struct tm_target *t = c->t;
	uint64_t got = 0, bases[64], modid = 0;
	int64_t off = 0, le_off = 0;
	struct tm_elf_sym sym;
	int n, rc;

	rc = tm_code_tls_access(c->elf, "_PyThreadState_GetCurrent", &got, &le_off);
	if (rc == 1) {
		if (tm_elf_symbol(c->elf, "_Py_tss_tstate", &sym) == 0 && sym.type == STT_TLS)
			t->tls_dtpoff = sym.value;
		t->cfg.tls_tstate_offset = le_off;
		snprintf(t->tstate_note, sizeof(t->tstate_note), "TLS local-exec %%fs:%lld",
			 (long long)le_off);
		return 0;
	}
	if (rc == 0) {
		if (read_u64(t->pid, got + t->load_bias, &modid) ||
		    read_u64(t->pid, got + t->load_bias + 8, &t->tls_dtpoff))
			return -ENOENT;
	} else {
		if (tm_elf_symbol(c->elf, "_Py_tss_tstate", &sym) || sym.type != STT_TLS ||
		    tm_elf_dtpmod_slot(c->elf, &got) || read_u64(t->pid, got + t->load_bias, &modid))
			return -ENOENT;
		t->tls_dtpoff = sym.value;
	}
	if (tm_elf_symbol(c->elf, "_Py_tss_tstate", &sym) == 0 && sym.value != t->tls_dtpoff)
		return -EPROTO; /* the decoded GOT pair names another variable */
	if (!modid || modid > 4096)
		return -ENOENT;
	t->tls_modid = (int)modid;
	const char *source = "thread";
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

		if (read_u64(t->pid, bases[i] + 8, &dtv) || read_u64(t->pid, dtv + 16 * modid, &block))
			return -EFAULT;
		if (block == 0 || block == (uint64_t)-1)
			return -ENOENT; /* dynamic TLS not allocated for this thread */
		o = (int64_t)(block + t->tls_dtpoff - bases[i]);
		if (i && o != off)
			return -ERANGE; /* not static TLS: offsets differ per thread */
		off = o;
	}
	if (off > 0 || off < -(1 << 24))
		return -ERANGE;
	t->cfg.tls_tstate_offset = off;
	snprintf(t->tstate_note, sizeof(t->tstate_note),
		 "TLS modid %d dtpoff 0x%llx -> fsbase%lld (DTV of %d %s%s)", t->tls_modid,
		 (unsigned long long)t->tls_dtpoff, (long long)off, n, source, n == 1 ? "" : "s");
	return 0;
}

static int fill_config(struct probe_ctx *c)
{
	struct tm_target *t = c->t;
	const struct tm_layout *l = c->layout;
	struct tm_proc_config *cfg = &t->cfg;
	uint32_t tsd;
	int err;

	memset(cfg, 0, sizeof(*cfg));
	cfg->py_version = (uint32_t)(t->major << 8 | t->minor);
	cfg->tss_key_addr = t->runtime_addr + l->rt_autotss_key + TM_PY_TSS_KEY;
	cfg->tstate_routes = TM_TSTATE_TSD;
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
	} else {
		err = find_tls_offset(c);
		if (err == 0)
			cfg->tstate_routes |= TM_TSTATE_TLS;
		else
			snprintf(t->tstate_note, sizeof(t->tstate_note),
				 "TSD only: static TLS offset of _Py_tss_tstate unknown (%s)",
				 strerror(-err));
	}
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

/* 3.13+: the runtime carries its own offsets; refuse a build that disagrees
 * (free-threaded, debug, or a patch release that moved a field). */
static int check_debug_offsets(struct probe_ctx *c)
{
	uint8_t buf[TM_DEBUG_OFFSETS_SIZE];
	char what[96];
	int err;

	if (c->t->minor < 13)
		return 0;
	err = tm_target_read(c->t->pid, c->t->runtime_addr, buf, sizeof(buf));
	if (err)
		return err;
	if (tm_layout_check_debug_offsets(c->layout, buf, sizeof(buf), what, sizeof(what)))
		return fail(c, -EPROTO, "PID %d: CPython %s layout differs from tmbpf's table (%s)",
			    (int)c->t->pid, c->t->version, what);
	return 0;
}

/* 3.8: where its free lists are popped (_Py_NewReference inlined there).
 * new_dict is static: .symtab only (pyenv); a stripped build misses it. */
static void find_freelist_functions(struct probe_ctx *c)
{
	static const char *const names[TM_FREELIST_FNS] = {
		"PyTuple_New", "_PyFrame_New_NoTrack", "PyList_New", "new_dict",
		"PyFloat_FromDouble", "PyCFunction_NewEx", "PyMethod_New",
	};

	for (int i = 0; i < TM_FREELIST_FNS; i++)
		if (symbol_addr(c, names[i], &c->t->freelist_fn[i]))
			c->t->freelist_fn[i] = 0;
}

static int find_functions(struct probe_ctx *c)
{
	struct tm_target *t = c->t;

	if (symbol_addr(c, "_PyRuntime", &t->runtime_addr))
		return fail(c, -ENOEXEC, "PID %d: %s has no _PyRuntime", (int)t->pid, t->elf_path);
	if (symbol_addr(c, "PyTraceMalloc_Track", &t->track_fn) ||
	    symbol_addr(c, "PyTraceMalloc_Untrack", &t->untrack_fn) ||
	    symbol_addr(c, "Py_FinalizeEx", &t->finalize_fn) ||
	    symbol_addr(c, "PyCode_Type", &t->code_type_addr) ||
	    symbol_addr(c, "_Py_NoneStruct", &t->none_addr))
		return fail(c, -ENOEXEC, "PID %d: %s lacks an exported CPython function",
			    (int)t->pid, t->elf_path);
	/* 3.8 inlines it everywhere (a static inline in object.h): no probe. */
	if (t->minor < 9 || symbol_addr(c, "_Py_NewReference", &t->newref_fn))
		t->newref_fn = 0;
	if (t->minor == 8)
		find_freelist_functions(c);
	return 0;
}

/* 1 when this process has CAP_SYS_PTRACE (/proc/self/status CapEff, bit 19). */
static int have_sys_ptrace(void)
{
	char line[128];
	unsigned long long caps = 0;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &caps) == 1)
			break;
	fclose(f);
	return (caps >> 19) & 1;
}

/* Reading /proc/PID was refused: say why as far as we can tell. As root
 * the kernel's ptrace access check still refuses a process that is not
 * dumpable, lives in a user namespace above ours, or that a security
 * module protects (seen: PID 1 of a sandbox). */
static int access_error(struct probe_ctx *c)
{
	pid_t pid = c->t->pid;
	char path[64];
	int scope = -1;
	FILE *f;

	if (geteuid() != 0)
		return fail(c, -EPERM, "not permitted to read PID %d: run as root", (int)pid);
	if (!have_sys_ptrace())
		return fail(c, -EPERM, "not permitted to read PID %d: tmbpf runs as root but without "
				       "CAP_SYS_PTRACE (run it outside the restricted container or with "
				       "that capability)", (int)pid);
	f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
	if (f) {
		if (fscanf(f, "%d", &scope) != 1)
			scope = -1;
		fclose(f);
	}
	if (scope == 3)
		return fail(c, -EPERM, "not permitted to read PID %d: kernel.yama.ptrace_scope is 3 "
				       "(no process may be traced, even by root)", (int)pid);
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	return fail(c, -EPERM, "PID %d: the kernel refused to let root read %s (ptrace access "
			       "check): the process is not dumpable, belongs to a user namespace "
			       "above tmbpf's, or a security module (SELinux, AppArmor) protects it",
		    (int)pid, path);
}

static int open_error(struct probe_ctx *c, int err)
{
	pid_t pid = c->t->pid;

	if (err == -ESRCH || err == -ENOENT)
		return fail(c, -ESRCH, "no process with PID %d", (int)pid);
	if (err == -EACCES || err == -EPERM)
		return access_error(c);
	return fail(c, err, "PID %d: %s", (int)pid, strerror(-err));
}

int tm_target_open(pid_t pid, struct tm_target *t, char *err, size_t errlen)
{
	struct probe_ctx c = { .t = t, .err = err, .errlen = errlen };
	int rc;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	if (err && errlen)
		err[0] = '\0';
	if (pid <= 0) {
		rc = fail(&c, -ESRCH, "no process with PID %d", (int)pid);
		goto cleanup;
	}
	rc = tm_maps_read(pid, &c.maps);
	if (rc) {
		rc = open_error(&c, rc);
		goto cleanup;
	}
	rc = find_interpreter_elf(&c);
	if (rc)
		goto cleanup;
	rc = find_version(&c);
	if (rc)
		goto cleanup;
	rc = compute_bias(&c);
	if (rc)
		goto cleanup;
	t->stripped = !tm_elf_has_symtab(c.elf);
	rc = find_functions(&c);
	if (rc)
		goto cleanup;
	rc = check_debug_offsets(&c);
	if (rc)
		goto cleanup;
	rc = find_allocators(&c);
	if (rc) {
		if (!err || !err[0])
			rc = open_error(&c, rc);
		goto cleanup;
	}
	rc = fill_config(&c);
cleanup:
	if (rc && err && errlen && !err[0])
		open_error(&c, rc);
	tm_elf_close(c.elf);
	tm_maps_release(&c.maps);
	return rc;
}
