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
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "placement/code_refs.h"
#include "target/debug_offsets.h"
#include "target/target_priv.h"

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

int tm_target_read_u64(pid_t pid, uint64_t addr, uint64_t *v)
{
	return tm_target_read(pid, addr, v, sizeof(*v));
}

#define read_u64 tm_target_read_u64
#define fail tm_target_fail
#define base_name tm_target_base_name
#define open_mapped tm_target_open_mapped

int tm_target_fail(struct probe_ctx *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (c->err && c->errlen)
		vsnprintf(c->err, c->errlen, fmt, ap);
	va_end(ap);
	return err;
}

const char *tm_target_base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* Open a mapped file from the host: the very inode mapped (proc_maps.h), so
 * a file replaced on disk is not mistaken for the image, in a container or
 * a plain chroot alike. */
struct tm_elf *tm_target_open_mapped(struct probe_ctx *c, const struct tm_map *m, char *host,
				     size_t hostlen)
{
	if (tm_maps_open_path(c->t->pid, m, host, hostlen))
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
			snprintf(c->t->map_path, sizeof(c->t->map_path), "%s", m->path);
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
		return fail(c, -ENOEXEC, "%s has no PT_LOAD segment", c->t->map_path);
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
		if (version_from_name(t->map_path, &t->major, &t->minor))
			return fail(c, -ENOEXEC, "PID %d: cannot tell the CPython version of %s",
				    (int)t->pid, t->map_path);
		snprintf(t->version, sizeof(t->version), "%d.%d", t->major, t->minor);
	}
	/* The file name, when it carries a version, must agree. */
	if (version_from_name(t->map_path, &maj, &min) == 0 && (maj != t->major || min != t->minor))
		return fail(c, -ENOEXEC, "PID %d: %s reports CPython %s", (int)t->pid,
			    t->map_path, t->version);
	if (t->major != 3 || t->minor < TM_TARGET_MIN_MINOR)
		return fail(c, -EPROTONOSUPPORT,
			    "CPython %d.%d is not supported (tmbpf supports 3.%d-3.%d)", t->major,
			    t->minor, TM_TARGET_MIN_MINOR, TM_TARGET_MAX_MINOR);
	/* A newer minor: its own _Py_DebugOffsets decide (find_layout). */
	t->newer = t->minor > TM_TARGET_MAX_MINOR;
	return 0;
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

/* 3.13+: allocators.standard.{raw,mem,obj} inside _PyRuntime. The layout
 * table knows them per minor; a newer minor must have them from the code of
 * the exported wrappers (PyMem_RawMalloc...: code_refs.h), which must land
 * inside _PyRuntime. */
static int runtime_allocators(struct probe_ctx *c, uint64_t addr[TM_NDOMAINS])
{
	struct tm_target *t = c->t;
	const struct tm_layout *l = c->layout;
	const uint32_t off[TM_NDOMAINS] = { l->rt_alloc_raw, l->rt_alloc_mem, l->rt_alloc_obj };
	uint64_t code[TM_NDOMAINS];
	struct tm_elf_sym rt;
	int decoded = tm_code_allocator_structs(c->elf, code) == 0 &&
		      tm_elf_symbol(c->elf, "_PyRuntime", &rt) == 0;

	for (int d = 0; d < TM_NDOMAINS && decoded; d++)
		if (code[d] < rt.value || code[d] + TM_PY_ALLOCATOR_SIZE > rt.value + rt.size)
			decoded = 0;
	for (int d = 0; d < TM_NDOMAINS; d++) {
		if (t->newer) {
			if (!decoded)
				return fail(c, -EPROTONOSUPPORT, "PID %d: CPython %s: cannot find its "
					    "allocators in _PyRuntime from the code of PyMem_*Malloc "
					    "(tmbpf knows the layout up to 3.%d)", (int)t->pid,
					    t->version, TM_TARGET_MAX_MINOR);
			addr[d] = code[d] + t->load_bias;
			continue;
		}
		addr[d] = t->runtime_addr + off[d];
		if (decoded && code[d] + t->load_bias != addr[d])
			tm_log(TM_LOG_DEBUG, "PID %d: the code of the allocator wrappers names "
			       "0x%llx for domain %d, the table 0x%llx: using the table", (int)t->pid,
			       (unsigned long long)(code[d] + t->load_bias), d,
			       (unsigned long long)addr[d]);
	}
	return 0;
}

static int find_allocators(struct probe_ctx *c)
{
	static const char *const names[TM_NDOMAINS] = { "_PyMem_Raw", "_PyMem", "_PyObject" };
	struct tm_target *t = c->t;
	const struct tm_layout *l = c->layout;
	uint64_t from_code[TM_NDOMAINS];
	int code_err = -1; /* not decoded yet */

	if (t->minor >= 13) {
		uint64_t addr[TM_NDOMAINS];
		int err = runtime_allocators(c, addr);

		if (err)
			return err;
		for (int d = 0; d < TM_NDOMAINS; d++)
			t->alloc[d].struct_addr = addr[d];
		return tm_target_read_allocators(t);
	}
	for (int d = 0; d < TM_NDOMAINS; d++) {

		if (t->minor == 12) {
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
				    (int)t->pid, names[d], t->map_path);
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

/* The version's layout: the table (3.8-3.12), or the target's own
 * _Py_DebugOffsets (3.13+), read from its memory (the same bytes as the
 * file image: they are constant), completed by layouts.c. */
static int find_layout(struct probe_ctx *c)
{
	struct tm_target *t = c->t;
	uint8_t buf[TM_DEBUG_OFFSETS_MAX];
	struct tm_debug_offsets o;
	struct tm_elf_sym rt;
	char why[160];
	size_t len = sizeof(buf);
	int err, newer;

	if (t->minor < 13) {
		t->layout = *tm_layout_get(t->minor);
		c->layout = &t->layout;
		return 0;
	}
	if (tm_elf_symbol(c->elf, "_PyRuntime", &rt) || rt.size < 16)
		return fail(c, -ENOEXEC, "PID %d: %s has no sized _PyRuntime", (int)t->pid,
			    t->map_path);
	if (rt.size < len)
		len = rt.size;
	err = tm_target_read(t->pid, t->runtime_addr, buf, len);
	if (err)
		return err;
	err = tm_debug_offsets_parse(buf, len, rt.size, &o, &newer, why, sizeof(why));
	if (!err && ((o.version >> 16) & 0xff) != (uint64_t)t->minor) {
		snprintf(why, sizeof(why), "_Py_DebugOffsets say version 0x%llx",
			 (unsigned long long)o.version);
		err = -EPROTO;
	}
	if (!err)
		err = tm_layout_from_debug_offsets(&o, &t->layout, why, sizeof(why));
	if (err && t->newer)
		return fail(c, -EPROTONOSUPPORT, "CPython %s is not supported: its _Py_DebugOffsets "
			    "do not fit the newest layout tmbpf knows (3.%d): %s", t->version,
			    TM_TARGET_MAX_MINOR, why);
	if (err)
		return fail(c, err == -EPROTONOSUPPORT ? err : -EPROTO,
			    "PID %d: CPython %s is not supported: %s", (int)t->pid, t->version, why);
	c->layout = &t->layout;
	if (newer)
		tm_log(TM_LOG_WARN, "PID %d: CPython %s is newer than tmbpf knows (3.%d-3.%d): "
		       "tracing it with the layout its _Py_DebugOffsets give, the 3.%d rules for "
		       "the rest; check the results", (int)t->pid, t->version, TM_TARGET_MIN_MINOR,
		       TM_TARGET_MAX_MINOR, TM_TARGET_MAX_MINOR);
	return 0;
}

/* With an interpreter running, the layout must walk: the main interpreter's
 * first thread state points back at it, and every frame of its chain names
 * a code object (the C-stack and interpreter frames aside). Refuses a build
 * whose offsets tmbpf misreads before any probe goes in. Before Py_Initialize
 * (tmbpf run's entry stop) there is nothing to check yet. */
static int validate_live(struct probe_ctx *c)
{
	struct tm_target *t = c->t;
	const struct tm_layout *l = c->layout;
	uint64_t interp, ts, back, frame, type;
	uint8_t f[256];

	if (!l->from_debug_offsets)
		return 0; /* the tables were checked against each version's headers */
	if (read_u64(t->pid, t->runtime_addr + l->rt_interpreters_head, &interp) || !interp ||
	    read_u64(t->pid, interp + l->is_threads_head, &ts) || !ts)
		return 0;
	if (read_u64(t->pid, ts + l->ts_interp, &back) || back != interp)
		return fail(c, -EPROTO, "PID %d: CPython %s: its thread state does not point back at "
			    "its interpreter (offsets misread): not supported", (int)t->pid,
			    t->version);
	if (read_u64(t->pid, ts + l->ts_frame, &frame))
		return 0;
	for (int i = 0; frame && i < 64; i++) {
		uint64_t code;

		if (tm_target_read(t->pid, frame, f, l->f_read_size))
			return 0; /* the thread moved on: nothing proven either way */
		memcpy(&code, f + l->f_code, 8);
		code &= ~(uint64_t)l->f_code_tags;
		memcpy(&back, f + l->f_back, 8);
		if (f[l->f_owner] < TM_OWNER_CSTACK &&
		    (read_u64(t->pid, code + TM_PY_OB_TYPE, &type) || type != t->code_type_addr)) {
			/* A running thread's chain changes under us: re-read the
			 * head once before calling it a misread layout. */
			uint64_t now;

			if (read_u64(t->pid, ts + l->ts_frame, &now) || now != frame)
				return 0;
			return fail(c, -EPROTO, "PID %d: CPython %s: a frame's code is no code object "
				    "(offsets misread): not supported", (int)t->pid, t->version);
		}
		frame = back;
	}
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
		return fail(c, -ENOEXEC, "PID %d: %s has no _PyRuntime", (int)t->pid, t->map_path);
	if (symbol_addr(c, "PyTraceMalloc_Track", &t->track_fn) ||
	    symbol_addr(c, "PyTraceMalloc_Untrack", &t->untrack_fn) ||
	    symbol_addr(c, "Py_FinalizeEx", &t->finalize_fn) ||
	    symbol_addr(c, "PyCode_Type", &t->code_type_addr) ||
	    symbol_addr(c, "_Py_NoneStruct", &t->none_addr))
		return fail(c, -ENOEXEC, "PID %d: %s lacks an exported CPython function",
			    (int)t->pid, t->map_path);
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
	uint64_t dbg;
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
	rc = find_layout(&c);
	if (rc)
		goto cleanup;
	t->debug_build = symbol_addr(&c, "_Py_GetGlobalRefTotal", &dbg) == 0 ||
			 symbol_addr(&c, "_Py_RefTotal", &dbg) == 0;
	rc = validate_live(&c);
	if (rc)
		goto cleanup;
	rc = find_allocators(&c);
	if (rc) {
		if (!err || !err[0])
			rc = open_error(&c, rc);
		goto cleanup;
	}
	rc = tm_target_fill_config(&c);
cleanup:
	if (rc && err && errlen && !err[0])
		open_error(&c, rc);
	tm_elf_close(c.elf);
	tm_maps_release(&c.maps);
	return rc;
}
