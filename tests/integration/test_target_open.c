/* tm_target_open and tm_symbolize_frame against every installed CPython.
 *
 * Each interpreter runs a script that reports, from inside, what tmbpf must
 * find from outside: its version, &_PyRuntime and exported functions (dlsym
 * through ctypes), the live allocators (PyMem_GetAllocator), its thread
 * states (PyThreadState_Get), code object ids, and the traceback of a
 * spinning main thread (holding the GIL, through a generator and a C call)
 * and of a second thread sleeping without the GIL. File names are latin-1,
 * UCS-2 and UCS-4 strings. The test then ptrace-stops the threads, takes
 * their fsbase from the kernel, follows every tstate route of t->cfg the way
 * BPF does, walks the frames with the cfg offsets and symbolizes them.
 * Needs root (ptrace, /proc/PID/mem of another process); skips otherwise. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "placement/elf_file.h"
#include "patch/launch.h"
#include "target/layouts.h"
#include "target/symbolize.h"
#include "placement/code_refs.h"
#include "target/target.h"

static const char target_py[] =
	"import ctypes, sys, threading, time, traceback\n"
	"\n"
	"api = ctypes.pythonapi\n"
	"api.PyThreadState_Get.restype = ctypes.c_void_p\n"
	"\n"
	"class Alloc(ctypes.Structure):\n"
	"    _fields_ = [(n, ctypes.c_void_p) for n in (\"ctx\", \"malloc\", \"calloc\", \"realloc\", \"free\")]\n"
	"\n"
	"def hexname(s):\n"
	"    return s.encode(\"utf-8\", \"surrogatepass\").hex()\n"
	"\n"
	"def report(tag, stack, spin_next):\n"
	"    out = [\"STACK %s %d\" % (tag, len(stack))]\n"
	"    for i, fr in enumerate(reversed(stack)):\n"
	"        line = fr.lineno + 1 if (i == 0 and spin_next) else fr.lineno\n"
	"        out.append(\"F %s %d\" % (hexname(fr.filename), line))\n"
	"    return out\n"
	"\n"
	"lines = []\n"
	"def emit(*parts):\n"
	"    lines.append(\" \".join(str(p) for p in parts))\n"
	"\n"
	"INNER = \"\\n\\n# padding\\ndef inner(flag):\\n    emit_stack('main', True)\\n    while flag[0]: pass\\n\"\n"
	"GEN = \"def gen(flag):\\n    yield 1\\n    inner(flag)\\n    yield 2\\n\"\n"
	"MIDDLE = \"def middle(flag):\\n    x = [1]\\n    return list(gen(flag))\\n\"\n"
	"def emit_stack(tag, nxt):\n"
	"    lines.extend(report(tag, traceback.extract_stack()[:-1], nxt))\n"
	"    sys.stdout.write(\"\\n\".join(lines) + \"\\nREADY\\n\")\n"
	"    sys.stdout.flush()\n"
	"ns = {\"emit_stack\": emit_stack}\n"
	"exec(compile(INNER, \"/srv/tmbpf-names/\\U0001d518/ucs4_\\U0001f600.py\", \"exec\"), ns)\n"
	"exec(compile(GEN, \"/srv/tmbpf-names/\\u4e2d\\u6587/ucs2.py\", \"exec\"), ns)\n"
	"exec(compile(MIDDLE, \"/srv/tmbpf-names/\\xc4/lat\\xe9.py\", \"exec\"), ns)\n"
	"emit(\"VERSION\", *sys.version_info[:3])\n"
	"emit(\"RUNTIME\", ctypes.addressof(ctypes.c_char.in_dll(api, \"_PyRuntime\")))\n"
	"for name in (\"PyTraceMalloc_Track\", \"PyTraceMalloc_Untrack\", \"Py_FinalizeEx\"):\n"
	"    emit(\"FUNC\", name, ctypes.cast(getattr(api, name), ctypes.c_void_p).value)\n"
	"for dom in range(3):\n"
	"    a = Alloc()\n"
	"    api.PyMem_GetAllocator(dom, ctypes.byref(a))\n"
	"    emit(\"ALLOC\", dom, a.ctx or 0, a.malloc, a.calloc, a.realloc, a.free)\n"
	"for fn in (\"inner\", \"gen\", \"middle\"):\n"
	"    emit(\"CODE\", fn, id(ns[fn].__code__))\n"
	"emit(\"TSTATE main\", api.PyThreadState_Get(), threading.get_native_id())\n"
	"\n"
	"started = threading.Event()\n"
	"def sleeper():\n"
	"    emit(\"TSTATE thread\", api.PyThreadState_Get(), threading.get_native_id())\n"
	"    st = traceback.extract_stack(); lines.extend(report(\"thread\", st, True)); started.set()\n"
	"    time.sleep(120)\n"
	"t = threading.Thread(target=sleeper, daemon=True)\n"
	"t.start()\n"
	"started.wait()\n"
	"\n"
	"def run():\n"
	"    ns[\"middle\"]([True])\n"
	"run()\n";

#define MAX_FRAMES 32

struct pyframe {
	char filename[512];
	uint32_t line;
};

struct pystack {
	int n;
	struct pyframe f[MAX_FRAMES];
};

struct report {
	int major, minor, micro;
	uint64_t runtime, track, untrack, finalize;
	uint64_t alloc[TM_NDOMAINS][5];
	uint64_t code_inner, code_gen, code_middle;
	uint64_t tstate_main, tstate_thread;
	pid_t tid_main, tid_thread;
	struct pystack main, thread;
};

static char script_path[256];

static int unhex(const char *h, char *out, size_t outlen)
{
	size_t n = strlen(h) / 2;

	if (n + 1 > outlen)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(h + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (char)v;
	}
	out[n] = '\0';
	return 0;
}

static int parse_line(struct report *r, char *line, struct pystack **cur)
{
	char a[64], b[1100];
	unsigned long long v[6];

	if (sscanf(line, "VERSION %d %d %d", &r->major, &r->minor, &r->micro) == 3)
		return 0;
	if (sscanf(line, "RUNTIME %llu", &v[0]) == 1)
		return r->runtime = v[0], 0;
	if (sscanf(line, "FUNC %63s %llu", a, &v[0]) == 2) {
		if (!strcmp(a, "PyTraceMalloc_Track"))
			r->track = v[0];
		else if (!strcmp(a, "PyTraceMalloc_Untrack"))
			r->untrack = v[0];
		else
			r->finalize = v[0];
		return 0;
	}
	if (sscanf(line, "ALLOC %llu %llu %llu %llu %llu %llu", &v[5], &v[0], &v[1], &v[2], &v[3],
		   &v[4]) == 6 && v[5] < TM_NDOMAINS) {
		for (int i = 0; i < 5; i++)
			r->alloc[v[5]][i] = v[i];
		return 0;
	}
	if (sscanf(line, "CODE %63s %llu", a, &v[0]) == 2) {
		if (!strcmp(a, "inner"))
			r->code_inner = v[0];
		else if (!strcmp(a, "gen"))
			r->code_gen = v[0];
		else
			r->code_middle = v[0];
		return 0;
	}
	if (sscanf(line, "TSTATE %63s %llu %llu", a, &v[0], &v[1]) == 3) {
		if (!strcmp(a, "main"))
			r->tstate_main = v[0], r->tid_main = (pid_t)v[1];
		else
			r->tstate_thread = v[0], r->tid_thread = (pid_t)v[1];
		return 0;
	}
	if (sscanf(line, "STACK %63s", a) == 1) {
		*cur = !strcmp(a, "main") ? &r->main : &r->thread;
		return 0;
	}
	if (sscanf(line, "F %1099s %llu", b, &v[0]) == 2 && *cur && (*cur)->n < MAX_FRAMES) {
		struct pyframe *f = &(*cur)->f[(*cur)->n++];

		f->line = (uint32_t)v[0];
		return unhex(b, f->filename, sizeof(f->filename));
	}
	return 0;
}

/* Start python on the script; fill r from its report. Returns the pid or -1. */
static pid_t spawn(const char *python, const char *pythonmalloc, struct report *r)
{
	int fds[2];
	pid_t pid;
	char buf[65536];
	size_t len = 0;
	struct pystack *cur = NULL;

	memset(r, 0, sizeof(*r));
	if (pipe(fds))
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		if (pythonmalloc)
			setenv("PYTHONMALLOC", pythonmalloc, 1);
		else
			unsetenv("PYTHONMALLOC");
		execl(python, python, script_path, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		struct pollfd p = { .fd = fds[0], .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 30000) <= 0 || len + 1 >= sizeof(buf))
			break;
		n = read(fds[0], buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\nREADY\n"))
			break;
	}
	close(fds[0]);
	if (!strstr(buf, "\nREADY\n")) {
		printf("# %s did not get ready: %.400s\n", python, buf);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		parse_line(r, line, &cur);
	return pid;
}

static void stop_process(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* READY is written just before the main thread enters its spin loop: wait
 * until it runs (state R) so that it is stopped in the loop, holding the GIL. */
static void wait_spinning(pid_t pid)
{
	char path[64], buf[256];

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	usleep(50 * 1000);
	for (int i = 0; i < 200; i++) {
		FILE *f = fopen(path, "re");
		char *p = NULL;

		if (f) {
			p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
			fclose(f);
		}
		if (p && p[1] == ' ' && p[2] == 'R')
			return;
		usleep(10 * 1000);
	}
}

/* ptrace-stop one thread and read its fsbase from the kernel. */
static int seize_thread(pid_t tid, uint64_t *fsbase)
{
	int status;
	long v;

	if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) || ptrace(PTRACE_INTERRUPT, tid, NULL, NULL))
		return -errno;
	if (waitpid(tid, &status, __WALL) < 0)
		return -errno;
	errno = 0;
	v = ptrace(PTRACE_PEEKUSER, tid, (void *)offsetof(struct user_regs_struct, fs_base), NULL);
	if (errno)
		return -errno;
	*fsbase = (uint64_t)v;
	return 0;
}

static uint64_t rd64(pid_t pid, uint64_t addr)
{
	uint64_t v = 0;

	if (tm_target_read(pid, addr, &v, sizeof(v)))
		return 0;
	return v;
}

/* The tstate routes of cfg for the thread whose fsbase is given, as BPF
 * takes them. Fills each route's result separately. */
struct routes {
	uint64_t tls, gilstate, tsd;
	uint32_t key;
};

static void follow_routes(const struct tm_target *t, uint64_t fsbase, struct routes *r)
{
	const struct tm_proc_config *c = &t->cfg;

	memset(r, 0, sizeof(*r));
	if (c->tstate_routes & TM_TSTATE_TLS)
		r->tls = rd64(t->pid, fsbase + (uint64_t)c->tls_tstate_offset);
	if (c->tstate_routes & TM_TSTATE_GILSTATE) {
		uint64_t ts = rd64(t->pid, c->tstate_current_addr);

		if (ts && rd64(t->pid, ts + c->ts_thread_id) == fsbase)
			r->gilstate = ts;
	}
	if (c->tstate_routes & TM_TSTATE_TSD) {
		tm_target_read(t->pid, c->tss_key_addr, &r->key, sizeof(r->key));
		if (r->key < 32)
			r->tsd = rd64(t->pid, fsbase + c->tsd_specific_offset + 16 * r->key + 8);
	}
}

/* Walk the frames from tstate exactly as BPF does with cfg, then symbolize. */
static int walk(const struct tm_target *t, struct tm_symbolizer *s, uint64_t tstate,
		struct pystack *out, uint64_t *codes, int *ncodes)
{
	const struct tm_proc_config *c = &t->cfg;
	uint64_t f = rd64(t->pid, tstate + c->ts_frame);
	uint8_t buf[256];

	out->n = 0;
	*ncodes = 0;
	if (c->cframe_current_frame != TM_NO_OFFSET && f)
		f = rd64(t->pid, f + c->cframe_current_frame);
	for (int depth = 0; f && depth < 64 && out->n < MAX_FRAMES; depth++) {
		uint64_t code, lasti = 0, back;
		const char *fn;
		uint32_t line;

		if (c->f_read_size > sizeof(buf) || tm_target_read(t->pid, f, buf, c->f_read_size))
			return -EFAULT;
		memcpy(&code, buf + c->f_code, 8);
		memcpy(&back, buf + c->f_back, 8);
		if (c->frame_kind == TM_FRAMES_OBJECT)
			memcpy(&lasti, buf + c->f_lasti, 4); /* int, zero-extended */
		else
			memcpy(&lasti, buf + c->f_lasti, 8);
		f = back;
		if (c->f_owner != TM_NO_OFFSET && buf[c->f_owner] == TM_OWNER_CSTACK)
			continue;
		if (*ncodes < 64)
			codes[(*ncodes)++] = code;
		int rc = tm_symbolize_frame(s, code, lasti, &fn, &line);
		if (rc == 1)
			continue;
		snprintf(out->f[out->n].filename, sizeof(out->f[0].filename), "%s", fn);
		out->f[out->n++].line = line;
	}
	return 0;
}

static int same_stack(const char *what, const struct pystack *got, const struct pystack *want)
{
	int ok = got->n == want->n;

	for (int i = 0; ok && i < got->n; i++)
		ok = got->f[i].line == want->f[i].line &&
		     !strcmp(got->f[i].filename, want->f[i].filename);
	if (!ok) {
		printf("#   %s: got %d frames, want %d\n", what, got->n, want->n);
		for (int i = 0; i < got->n || i < want->n; i++)
			printf("#   [%d] got %s:%u  want %s:%u\n", i,
			       i < got->n ? got->f[i].filename : "-", i < got->n ? got->f[i].line : 0,
			       i < want->n ? want->f[i].filename : "-",
			       i < want->n ? want->f[i].line : 0);
	}
	return ok;
}

static int has_code(const uint64_t *codes, int n, uint64_t code)
{
	for (int i = 0; i < n; i++)
		if (codes[i] == code)
			return 1;
	return 0;
}

static uint64_t symaddr(const struct tm_elf *e, const struct tm_target *t, const char *name)
{
	struct tm_elf_sym s;

	return tm_elf_symbol(e, name, &s) ? 0 : s.value + t->load_bias;
}

/* Allocator checks: live pointers as PyMem_GetAllocator returns them, and
 * the implementation symbols where the build has a .symtab. */
static void check_allocators(const char *name, const struct tm_target *t, const struct report *r,
			     const char *mode)
{
	int same = 1;

	for (int d = 0; d < TM_NDOMAINS; d++) {
		const struct tm_allocator *a = &t->alloc[d];

		same &= a->ctx == r->alloc[d][0] && a->malloc_fn == r->alloc[d][1] &&
			a->calloc_fn == r->alloc[d][2] && a->realloc_fn == r->alloc[d][3] &&
			a->free_fn == r->alloc[d][4];
	}
	CHECK(same, "%s %s: allocators equal PyMem_GetAllocator for raw/mem/obj", name, mode);
	if (mode[0] != 'd')
		return;
	struct tm_elf *e = tm_elf_open(t->elf_path);
	if (!e)
		return;
	if (!t->stripped) {
		CHECK(t->alloc[TM_DOM_OBJ].malloc_fn == symaddr(e, t, "_PyObject_Malloc") &&
		      t->alloc[TM_DOM_OBJ].free_fn == symaddr(e, t, "_PyObject_Free") &&
		      t->alloc[TM_DOM_RAW].malloc_fn == symaddr(e, t, "_PyMem_RawMalloc") &&
		      t->alloc[TM_DOM_RAW].realloc_fn == symaddr(e, t, "_PyMem_RawRealloc"),
		      "%s: default allocators are .symtab's _PyObject_* and _PyMem_Raw*", name);
	}
	if (t->minor <= 11) {
		uint64_t v[TM_NDOMAINS];
		struct tm_elf *e = tm_elf_open(t->elf_path);
		int ok = e && tm_code_allocator_structs(e, v) == 0;

		tm_elf_close(e);
		for (int d = 0; ok && d < TM_NDOMAINS; d++)
			ok = v[d] + t->load_bias == t->alloc[d].struct_addr;
		CHECK(ok, "%s: allocator structs from the wrappers' code match %s", name,
		      t->stripped ? "the found ones" : ".symtab _PyMem_Raw/_PyMem/_PyObject");
	}
	if (t->stripped) {
		/* LTO: PyObject_Malloc inlines `cmp $impl,%rax` against the default. */
		struct tm_elf_sym s;
		uint8_t code[64];
		int found = 0;

		if (tm_elf_dynsym(e, "PyObject_Malloc", &s) == 0 &&
		    tm_elf_read(e, s.value, code, sizeof(code)) == 0)
			for (size_t i = 0; i + 6 <= sizeof(code); i++) {
				uint32_t imm;

				memcpy(&imm, code + i + 2, 4);
				if (code[i] == 0x48 && code[i + 1] == 0x3d &&
				    imm == t->alloc[TM_DOM_OBJ].malloc_fn)
					found = 1;
			}
		CHECK(found, "%s: obj malloc is the impl PyObject_Malloc's inlined guard compares to",
		      name);
	}
	tm_elf_close(e);
}

static void check_routes(const char *name, const struct tm_target *t, const struct report *r,
			 uint64_t fs_main, uint64_t fs_thread)
{
	const struct tm_proc_config *c = &t->cfg;
	struct routes m, th;

	follow_routes(t, fs_main, &m);
	follow_routes(t, fs_thread, &th);
	CHECK(rd64(t->pid, r->tstate_main + c->ts_thread_id) == fs_main &&
	      rd64(t->pid, r->tstate_thread + c->ts_thread_id) == fs_thread,
	      "%s: tstate->thread_id (cfg.ts_thread_id) is the thread's fsbase", name);
	CHECK(m.key < 32 && m.tsd == r->tstate_main && th.tsd == r->tstate_thread,
	      "%s: TSD route (key %u, specific 0x%x%s) gives each thread its tstate", name, m.key,
	      c->tsd_specific_offset, t->tsd_offset_decoded ? " decoded from libc" : "");
	if (t->minor <= 11) {
		CHECK((c->tstate_routes & TM_TSTATE_GILSTATE) && m.gilstate == r->tstate_main &&
		      th.gilstate == 0,
		      "%s: GILSTATE route gives the GIL holder, rejected for the sleeping thread",
		      name);
	} else {
		CHECK((c->tstate_routes & TM_TSTATE_TLS) && m.tls == r->tstate_main &&
		      (th.tls == 0 || th.tls == r->tstate_thread),
		      "%s: TLS route fsbase%+lld gives the main tstate (%s)", name,
		      (long long)c->tls_tstate_offset, t->tstate_note);
	}
}

static void check_stacks(const char *name, const struct tm_target *t, const struct report *r)
{
	struct tm_symbolizer *s = tm_symbolizer_new(t);
	struct pystack got;
	uint64_t codes[64];
	int ncodes = 0;

	if (!s) {
		CHECK(0, "%s: tm_symbolizer_new", name);
		return;
	}
	CHECK(walk(t, s, r->tstate_main, &got, codes, &ncodes) == 0 &&
	      same_stack("main", &got, &r->main),
	      "%s: main thread frames symbolize to traceback.extract_stack() (%d frames, "
	      "latin-1/UCS-2/UCS-4 names, generator, C call)", name, r->main.n);
	CHECK(has_code(codes, ncodes, r->code_inner) && has_code(codes, ncodes, r->code_gen) &&
	      has_code(codes, ncodes, r->code_middle),
	      "%s: walked code pointers include id() of inner, gen, middle", name);
	/* Second time from the cache, and with a validation pass. */
	tm_symbolizer_begin_pass(s);
	CHECK(walk(t, s, r->tstate_main, &got, codes, &ncodes) == 0 &&
	      same_stack("main cached", &got, &r->main), "%s: cached symbolization agrees", name);
	CHECK(walk(t, s, r->tstate_thread, &got, codes, &ncodes) == 0 &&
	      same_stack("thread", &got, &r->thread),
	      "%s: sleeping thread frames symbolize (%d frames)", name, r->thread.n);
	const char *fn;
	uint32_t line;
	if (t->minor >= 11) {
		/* A generator's code starts RETURN_GENERATOR, POP_TOP, RESUME: before
		 * _co_firsttraceable the frame is incomplete and tracemalloc skips it. */
		const struct tm_layout *l = tm_layout_get(t->minor);
		int32_t ft = 0;
		uint64_t base = r->code_gen + l->co_code_adaptive;

		tm_target_read(t->pid, r->code_gen + l->co_firsttraceable, &ft, sizeof(ft));
		CHECK(ft > 0 && tm_symbolize_frame(s, r->code_gen, base, &fn, &line) == 1 &&
		      tm_symbolize_frame(s, r->code_gen, base + 2 * (uint64_t)ft, &fn, &line) == 0 &&
		      line == 1,
		      "%s: generator prologue (firsttraceable %d) skipped, RESUME at def line", name,
		      ft);
	}
	CHECK(tm_symbolize_frame(s, r->tstate_main, 0, &fn, &line) == -ENOENT &&
	      !strcmp(fn, "<unknown>") && line == 0 &&
	      tm_symbolize_frame(s, 0, 0, &fn, &line) == -ENOENT,
	      "%s: a non-code object gives <unknown>:0", name);
	tm_symbolizer_free(s);
}

/* tmbpf run: the child is stopped at its entry point (no thread state yet);
 * the record must be the same as for the running interpreter. */
static void check_launched(const char *name, const char *python, const struct tm_target *running)
{
	char *argv[] = { (char *)python, "-c", "pass", NULL };
	struct tm_target *t = calloc(1, sizeof(*t));
	struct tm_launch_event ev = { 0 };
	struct tm_launch *l;
	char err[256];
	int rc;

	if (!t)
		return;
	rc = tm_launch_start(argv, 0, &l, err, sizeof(err));
	if (rc) {
		CHECK(0, "%s: launch stopped at entry: %s", name, err);
		free(t);
		return;
	}
	for (int i = 0; i < 100 && ev.kind != TM_LAUNCH_CPYTHON; i++)
		if (tm_launch_next(l, 100, &ev) < 0)
			break;
	rc = ev.kind == TM_LAUNCH_CPYTHON ? tm_target_open(ev.pid, t, err, sizeof(err)) : -ECHILD;
	const struct tm_proc_config *a = &t->cfg, *b = &running->cfg;
	CHECK(rc == 0 && a->tstate_routes == b->tstate_routes &&
	      a->tls_tstate_offset == b->tls_tstate_offset &&
	      a->tsd_specific_offset == b->tsd_specific_offset && a->ts_frame == b->ts_frame &&
	      a->f_lasti == b->f_lasti && a->f_read_size == b->f_read_size &&
	      !memcmp(t->version, running->version, sizeof(t->version)),
	      "%s: at the entry point (before Py_Initialize) the record matches: %s", name,
	      rc ? err : t->tstate_note);
	tm_launch_abort(l);
	tm_launch_free(l);
	free(t);
}

static void test_interpreter(const char *name, const char *python)
{
	struct report r;
	struct tm_target *t = calloc(1, sizeof(*t));
	char err[256], want[32];
	uint64_t fs_main = 0, fs_thread = 0;
	pid_t pid = spawn(python, NULL, &r);
	int rc;

	if (pid < 0 || !t) {
		CHECK(0, "%s: start %s", name, python);
		free(t);
		return;
	}
	rc = tm_target_open(pid, t, err, sizeof(err));
	CHECK(rc == 0, "%s: tm_target_open (%s)", name, rc ? err : t->elf_path);
	if (rc)
		goto cleanup;
	snprintf(want, sizeof(want), "%d.%d.%d", r.major, r.minor, r.micro);
	CHECK(!strcmp(t->version, want) && t->major == r.major && t->minor == r.minor &&
	      t->micro == r.micro && t->cfg.py_version == (uint32_t)(r.major << 8 | r.minor),
	      "%s: version %s (want %s)", name, t->version, want);
	CHECK(t->runtime_addr == r.runtime, "%s: &_PyRuntime 0x%llx equals dlsym's", name,
	      (unsigned long long)t->runtime_addr);
	CHECK(t->track_fn == r.track && t->untrack_fn == r.untrack && t->finalize_fn == r.finalize,
	      "%s: PyTraceMalloc_Track/Untrack, Py_FinalizeEx equal dlsym's", name);
	uint64_t off;
	CHECK(tm_target_file_offset(t, t->alloc[TM_DOM_OBJ].malloc_fn, &off) == 0 &&
	      tm_target_file_offset(t, t->runtime_addr, &off) == -ENOENT,
	      "%s: tm_target_file_offset maps code, refuses data", name);
	check_allocators(name, t, &r, "default");
	wait_spinning(r.tid_main);
	if (seize_thread(r.tid_main, &fs_main) || seize_thread(r.tid_thread, &fs_thread)) {
		CHECK(0, "%s: ptrace the target threads", name);
		goto cleanup;
	}
	check_routes(name, t, &r, fs_main, fs_thread);
	check_stacks(name, t, &r);
	ptrace(PTRACE_DETACH, r.tid_thread, NULL, NULL);
	ptrace(PTRACE_DETACH, r.tid_main, NULL, NULL);
	check_launched(name, python, t);
cleanup:
	stop_process(pid);
	/* PYTHONMALLOC=malloc: every domain points at the raw functions. */
	pid = spawn(python, "malloc", &r);
	if (pid > 0) {
		rc = tm_target_open(pid, t, err, sizeof(err));
		if (rc == 0)
			check_allocators(name, t, &r, "PYTHONMALLOC=malloc");
		CHECK(rc == 0 && t->alloc[TM_DOM_OBJ].malloc_fn == t->alloc[TM_DOM_RAW].malloc_fn,
		      "%s PYTHONMALLOC=malloc: obj malloc is the raw malloc", name);
		stop_process(pid);
	}
	free(t);
}

/* A process that is not what tmbpf wants: one line naming the problem. */
static void expect_error(const char *what, pid_t pid, const char *want)
{
	struct tm_target *t = calloc(1, sizeof(*t));
	char err[256] = "";
	int rc = t ? tm_target_open(pid, t, err, sizeof(err)) : -ENOMEM;

	CHECK(rc < 0 && !strcmp(err, want), "%s: \"%s\"", what, err);
	if (strcmp(err, want))
		printf("#   want \"%s\"\n", want);
	free(t);
}

static pid_t spawn_sleeper(const char *prog, char *const argv[])
{
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		dup2(null, 2);
		execv(prog, argv);
		_exit(127);
	}
	usleep(300 * 1000); /* let the loader map everything */
	return pid;
}

static void test_errors(const char *pyenv)
{
	static const char *const old[] = { "2.7", "3.6", "3.7" };
	char want[128], path[512];

	for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++) {
		DIR *d;
		struct dirent *de;
		int found = 0;

		if (snprintf(path, sizeof(path), "%s/versions", pyenv) >= (int)sizeof(path))
			break;
		d = opendir(path);
		while (d && (de = readdir(d)) && !found) {
			if (strncmp(de->d_name, old[i], 3) || de->d_name[3] != '.')
				continue;
			if (snprintf(path, sizeof(path), "%s/versions/%s/bin/python%s", pyenv,
				     de->d_name, old[i]) >= (int)sizeof(path))
				continue;
			char *argv[] = { path, "-c", "import time; time.sleep(30)", NULL };
			pid_t pid = spawn_sleeper(path, argv);

			snprintf(want, sizeof(want),
				 "CPython %s is not supported (tmbpf supports 3.8-3.15)", old[i]);
			expect_error(de->d_name, pid, want);
			stop_process(pid);
			found = 1;
		}
		if (d)
			closedir(d);
		if (!found)
			printf("skip - CPython %s error: not installed\n", old[i]);
	}
	char *argv[] = { "/bin/sleep", "30", NULL };
	pid_t pid = spawn_sleeper("/bin/sleep", argv);
	snprintf(want, sizeof(want), "PID %d is not a CPython process", (int)pid);
	expect_error("not Python (/bin/sleep)", pid, want);
	stop_process(pid);
	snprintf(want, sizeof(want), "no process with PID %d", (int)pid);
	expect_error("PID that does not exist", pid, want);
}

/* Without root: reading another user's process must say what to do. */
static void test_not_permitted(const char *python)
{
	char *argv[] = { (char *)python, "-c", "import time; time.sleep(30)", NULL };
	pid_t pid = spawn_sleeper(python, argv), child;
	int status = 0;

	child = fork();
	if (child == 0) {
		struct tm_target t;
		char err[256] = "", want[128];

		if (setgid(65534) || setuid(65534))
			_exit(2);
		snprintf(want, sizeof(want), "not permitted to read PID %d: run as root", (int)pid);
		tm_target_open(pid, &t, err, sizeof(err));
		_exit(strcmp(err, want) ? 1 : 0);
	}
	waitpid(child, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "unprivileged tm_target_open says \"not permitted to read PID N: run as root\"");
	stop_process(pid);
}

/* The script goes into a directory of our own (tests run as root: never a
 * predictable name in a shared /tmp). */
static char script_dir[64];

static int write_script(void)
{
	FILE *f;

	snprintf(script_dir, sizeof(script_dir), "/tmp/tmbpf-test-target.XXXXXX");
	if (!mkdtemp(script_dir))
		return -1;
	snprintf(script_path, sizeof(script_path), "%s/target.py", script_dir);
	f = fopen(script_path, "wx");
	if (!f)
		return -1;
	fputs(target_py, f);
	return fclose(f);
}

static void remove_script(void)
{
	if (script_path[0])
		unlink(script_path);
	if (script_dir[0])
		rmdir(script_dir);
}

int main(void)
{
	const char *pyenv = getenv("PYENV_ROOT");
	char home_pyenv[512], path[600], name[64];
	int ran = 0;

	if (geteuid() != 0) {
		printf("skip - test_target_open: needs root (ptrace, /proc/PID/mem)\n");
		return 0;
	}
	if (!pyenv || !*pyenv) {
		snprintf(home_pyenv, sizeof(home_pyenv), "%s/.pyenv",
			 getenv("HOME") ? getenv("HOME") : "/root");
		pyenv = home_pyenv;
	}
	if (write_script()) {
		CHECK(0, "write %s", script_path);
		return CHECK_DONE();
	}
	for (int minor = 8; minor <= 13; minor++) {
		if (snprintf(path, sizeof(path), "%s/versions", pyenv) >= (int)sizeof(path))
			break;
		DIR *d = opendir(path);
		struct dirent *de;

		while (d && (de = readdir(d))) {
			char prefix[16];

			snprintf(prefix, sizeof(prefix), "3.%d.", minor);
			if (strncmp(de->d_name, prefix, strlen(prefix)))
				continue;
			if (snprintf(path, sizeof(path), "%s/versions/%s/bin/python3.%d", pyenv,
				     de->d_name, minor) >= (int)sizeof(path) || access(path, X_OK))
				continue;
			if (snprintf(name, sizeof(name), "pyenv %s", de->d_name) >= (int)sizeof(name))
				continue;
			test_interpreter(name, path);
			ran++;
		}
		if (d)
			closedir(d);
	}
	if (access("/usr/bin/python3.11", X_OK) == 0) {
		test_interpreter("debian 3.11", "/usr/bin/python3.11");
		test_not_permitted("/usr/bin/python3.11");
		ran++;
	}
	CHECK(ran > 0, "found CPython interpreters to test (%d)", ran);
	test_errors(pyenv);
	remove_script();
	return CHECK_DONE();
}
