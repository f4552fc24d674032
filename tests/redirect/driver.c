/* Test driver for user/placement/devirt.c and user/patch/redirect.c (tests/redirect/run.sh).
 *
 *   driver scan-file PATH BIAS ADDR...   guard counts for absolute ADDRs in PATH
 *   driver scan PID                      locate the allocators of PID, scan, print coverage
 *   driver cycle PID N                   N x (apply; sleep; restore), check pointers after each
 *   driver hold PID                      apply, print probe points, wait for SIGTERM or
 *                                        SIGINT, restore
 *   driver count PID CTL ACK ADDR...     count calls of the functions at ADDR in PID with
 *                                        perf-event uprobes (no tracefs), enabled and disabled
 *                                        by "enable"/"disable" lines on the CTL fifo (each
 *                                        acknowledged with "ack" on ACK, as perf --control)
 *
 * The allocator structs are located here by a test-only helper (non-PIE
 * executables such as Debian's python3.11): the first rip-relative load in the
 * exported PyMem_RawMalloc / PyMem_Malloc / PyObject_Malloc names the struct's
 * malloc (or ctx) slot. tm_target_open() does the real job in tmbpf. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "placement/devirt.h"
#include "placement/probe_point.h"
#include "patch/redirect.h"

struct file {
	const uint8_t *p;
	size_t size;
	const Elf64_Ehdr *eh;
};

static int file_open(const char *path, struct file *f)
{
	struct stat st;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) < 0)
		return -1;
	f->p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (f->p == MAP_FAILED)
		return -1;
	f->size = st.st_size;
	f->eh = (const Elf64_Ehdr *)f->p;
	return 0;
}

static const uint8_t *file_at(const struct file *f, uint64_t va, size_t len, int *exec)
{
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(f->p + f->eh->e_phoff);

	for (int i = 0; i < f->eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD || va < ph[i].p_vaddr ||
		    va + len > ph[i].p_vaddr + ph[i].p_filesz)
			continue;
		if (exec)
			*exec = !!(ph[i].p_flags & PF_X);
		return f->p + ph[i].p_offset + (va - ph[i].p_vaddr);
	}
	return NULL;
}

static uint64_t dynsym(const struct file *f, const char *name)
{
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(f->p + f->eh->e_shoff);

	for (int i = 0; i < f->eh->e_shnum; i++) {
		const Elf64_Sym *sym = (const Elf64_Sym *)(f->p + sh[i].sh_offset);
		const char *str = (const char *)(f->p + sh[sh[i].sh_link].sh_offset);

		if (sh[i].sh_type != SHT_DYNSYM)
			continue;
		for (size_t j = 0; j < sh[i].sh_size / sizeof(*sym); j++)
			if (sym[j].st_shndx && !strcmp(str + sym[j].st_name, name))
				return sym[j].st_value;
	}
	return 0;
}

static int is_code(const struct file *f, uint64_t va)
{
	int exec = 0;

	return va && file_at(f, va, 1, &exec) && exec;
}

/* Struct address from the exported wrapper's first rip-relative load. */
static uint64_t locate_struct(const struct file *f, const char *fn)
{
	uint64_t va = dynsym(f, fn);
	const uint8_t *c = va ? file_at(f, va, 128, NULL) : NULL;

	for (size_t off = 0; c && off < 128;) {
		size_t n = tm_x86_insn_len(c + off, 128 - off);
		const uint8_t *i = c + off;

		if (!n)
			break;
		if (n == 7 && (i[0] & 0xf8) == 0x48 && i[1] == 0x8b && (i[2] & 0xc7) == 0x05) {
			int32_t d;
			uint64_t t, v[5];
			const uint8_t *img;

			memcpy(&d, i + 3, 4);
			t = va + off + 7 + d;
			/* t is the malloc slot (ctx before it) or the ctx slot. */
			for (int back = 8; back >= 0; back -= 8) {
				img = file_at(f, t - back, 40, NULL);
				if (!img)
					continue;
				memcpy(v, img, 40);
				if (is_code(f, v[1]) && is_code(f, v[2]) && is_code(f, v[3]) &&
				    is_code(f, v[4]))
					return t - back;
			}
			return 0;
		}
		off += n;
	}
	return 0;
}

static int read_struct(pid_t pid, struct tm_allocator *a)
{
	char path[64];
	uint64_t v[5];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = pread(fd, v, sizeof(v), (off_t)a->struct_addr);
	close(fd);
	if (n != (ssize_t)sizeof(v))
		return -EIO;
	a->ctx = v[0];
	a->malloc_fn = v[1];
	a->calloc_fn = v[2];
	a->realloc_fn = v[3];
	a->free_fn = v[4];
	return 0;
}

static int target_for(pid_t pid, struct tm_target *t)
{
	static const char *const fns[TM_NDOMAINS] = {"PyMem_RawMalloc", "PyMem_Malloc",
						     "PyObject_Malloc"};
	struct file f;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	snprintf(t->elf_path, sizeof(t->elf_path), "/proc/%d/exe", (int)pid);
	if (file_open(t->elf_path, &f) || f.eh->e_type != ET_EXEC) {
		fprintf(stderr, "driver: %s: not a non-PIE ELF executable\n", t->elf_path);
		return -1;
	}
	for (int d = 0; d < TM_NDOMAINS; d++) {
		t->alloc[d].struct_addr = locate_struct(&f, fns[d]);
		if (!t->alloc[d].struct_addr || read_struct(pid, &t->alloc[d])) {
			fprintf(stderr, "driver: PID %d: cannot locate the %s allocator\n", (int)pid,
				tm_alloc_domain_name(d));
			return -1;
		}
	}
	return 0;
}

static void print_target(const struct tm_target *t)
{
	for (int d = 0; d < TM_NDOMAINS; d++)
		printf("alloc %s struct 0x%" PRIx64 " ctx 0x%" PRIx64 " malloc 0x%" PRIx64
		       " calloc 0x%" PRIx64 " realloc 0x%" PRIx64 " free 0x%" PRIx64 "\n",
		       tm_alloc_domain_name(d), t->alloc[d].struct_addr, t->alloc[d].ctx,
		       t->alloc[d].malloc_fn, t->alloc[d].calloc_fn, t->alloc[d].realloc_fn,
		       t->alloc[d].free_fn);
}

static void print_devirt(const struct tm_devirt *dv)
{
	printf("stripped %d pie %d defaults %d/%d guards %u pad 0x%" PRIx64 "+%u leftover %u\n",
	       dv->stripped, dv->pie, dv->defaults_known, dv->defaults, dv->guards, dv->pad_addr,
	       dv->pad_len, dv->leftover_stubs);
	for (unsigned k = 0; k < dv->nimpls; k++)
		printf("impl 0x%" PRIx64 " %s guards %u compares %u jmps %u stub 0x%" PRIx64
		       " probe_ok %d\n", dv->impl[k].addr, tm_alloc_fn_name(dv->impl[k].fn),
		       dv->impl[k].guards, dv->impl[k].compares, dv->impl[k].jmps,
		       dv->impl[k].jmp_stub, dv->impl[k].jmp_stub_probe_ok);
	printf("coverage: %s\n", tm_devirt_coverage_str(dv));
	printf("detail: %s\n", dv->detail);
}

static int cmd_scan_file(int argc, char **argv)
{
	uint64_t addrs[TM_DEVIRT_MAX_IMPLS];
	struct tm_devirt_impl out[TM_DEVIRT_MAX_IMPLS];
	unsigned n = 0;
	int stripped, pie, err;

	for (int i = 4; i < argc && n < TM_DEVIRT_MAX_IMPLS; i++)
		addrs[n++] = strtoull(argv[i], NULL, 0);
	err = tm_devirt_scan_file(argv[2], strtoull(argv[3], NULL, 0), addrs, n, out, &stripped,
				  &pie);
	if (err) {
		fprintf(stderr, "driver: %s: %s\n", argv[2], strerror(-err));
		return 1;
	}
	printf("stripped %d pie %d\n", stripped, pie);
	for (unsigned k = 0; k < n; k++)
		printf("impl 0x%" PRIx64 " guards %u compares %u jmps %u stub 0x%" PRIx64
		       " probe_ok %d\n", out[k].addr, out[k].guards, out[k].compares, out[k].jmps,
		       out[k].jmp_stub, out[k].jmp_stub_probe_ok);
	return 0;
}

static int setup(pid_t pid, struct tm_target *t, struct tm_devirt *dv)
{
	int err;

	if (target_for(pid, t))
		return -1;
	err = tm_devirt_scan(t->elf_path, t->load_bias, t->alloc, dv);
	if (err) {
		fprintf(stderr, "driver: scan %s: %s\n", t->elf_path, strerror(-err));
		return -1;
	}
	return 0;
}

static int cmd_scan(pid_t pid)
{
	struct tm_target t;
	struct tm_devirt dv;

	if (setup(pid, &t, &dv))
		return 1;
	print_target(&t);
	print_devirt(&dv);
	return 0;
}

/* 1 when the live pointers equal want[] (all 12 and the ctx values). */
static int pointers_equal(pid_t pid, const struct tm_allocator want[TM_NDOMAINS])
{
	for (int d = 0; d < TM_NDOMAINS; d++) {
		struct tm_allocator a = {.struct_addr = want[d].struct_addr};

		if (read_struct(pid, &a) || a.ctx != want[d].ctx || a.malloc_fn != want[d].malloc_fn ||
		    a.calloc_fn != want[d].calloc_fn || a.realloc_fn != want[d].realloc_fn ||
		    a.free_fn != want[d].free_fn)
			return 0;
	}
	return 1;
}

static int cmd_cycle(pid_t pid, int n)
{
	struct tm_allocator orig[TM_NDOMAINS];
	struct tm_target t;
	struct tm_devirt dv;
	struct tm_redirect rd;
	char err[256];
	int rc;

	if (setup(pid, &t, &dv))
		return 1;
	memcpy(orig, dv.effective, sizeof(orig)); /* stubs of a dead run resolved */
	srand(pid);
	for (int i = 0; i < n; i++) {
		struct timespec ts = {0, (rand() % 20 + 1) * 1000000L};

		rc = tm_redirect_apply(&t, &dv, &rd, err, sizeof(err));
		if (rc) {
			printf("cycle %d: apply: %s\n", i, err);
			return 1;
		}
		if (pointers_equal(pid, orig)) {
			printf("cycle %d: pointers unchanged after apply\n", i);
			return 1;
		}
		nanosleep(&ts, NULL);
		rc = tm_redirect_restore(&rd, err, sizeof(err));
		if (rc) {
			printf("cycle %d: restore: %s\n", i, err);
			return 1;
		}
		if (!pointers_equal(pid, orig)) {
			printf("cycle %d: pointers not restored\n", i);
			return 1;
		}
		nanosleep(&ts, NULL);
	}
	printf("cycles %d ok (%u existing stubs, %u written)\n", n, rd.existing_stubs,
	       rd.written_stubs);
	return 0;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int cmd_hold(pid_t pid)
{
	struct tm_target t;
	struct tm_devirt dv;
	struct tm_redirect rd;
	char err[256];
	int rc;

	if (setup(pid, &t, &dv))
		return 1;
	rc = tm_redirect_apply(&t, &dv, &rd, err, sizeof(err));
	if (rc) {
		printf("apply failed: %s\n", err);
		return 1;
	}
	printf("applied: %s\ncoverage: %s\n", rd.summary, tm_coverage_str(dv.coverage));
	for (int d = 0; d < TM_NDOMAINS; d++)
		for (int f = 0; f < TM_NFNS; f++)
			printf("probe %s %s impl 0x%" PRIx64 " entry 0x%" PRIx64 " ret 0x%" PRIx64
			       " via_stub %d\n", tm_alloc_domain_name(d), tm_alloc_fn_name(f),
			       rd.probe[d][f].impl, rd.probe[d][f].entry, rd.probe[d][f].ret,
			       rd.probe[d][f].via_stub);
	fflush(stdout);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	while (!stop)
		pause();
	rc = tm_redirect_restore(&rd, err, sizeof(err));
	printf("restored: %s\n", rc ? err : "ok");
	return rc ? 1 : 0;
}

/* File offset of an executable vaddr (non-PIE: absolute address). */
static int file_offset(const struct file *f, uint64_t va, uint64_t *off)
{
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(f->p + f->eh->e_phoff);

	for (int i = 0; i < f->eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD && (ph[i].p_flags & PF_X) && va >= ph[i].p_vaddr &&
		    va < ph[i].p_vaddr + ph[i].p_filesz) {
			*off = ph[i].p_offset + (va - ph[i].p_vaddr);
			return 0;
		}
	}
	return -1;
}

static int uprobe_pmu_type(void)
{
	FILE *fp = fopen("/sys/bus/event_source/devices/uprobe/type", "r");
	int type = -1;

	if (fp) {
		if (fscanf(fp, "%d", &type) != 1)
			type = -1;
		fclose(fp);
	}
	return type;
}

#define MAX_COUNTERS 16

static int cmd_count(int argc, char **argv)
{
	pid_t pid = atoi(argv[2]);
	char exe[PATH_MAX], line[64], link[64];
	int fds[MAX_COUNTERS], n = 0, type = uprobe_pmu_type(), rc = 1;
	uint64_t addr[MAX_COUNTERS], off[MAX_COUNTERS];
	struct file f;
	FILE *ctl = NULL, *ack = NULL;
	ssize_t len;

	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	len = readlink(link, exe, sizeof(exe) - 1);
	if (len <= 0 || type < 0 || file_open(link, &f)) {
		fprintf(stderr, "driver: PID %d: no executable or no uprobe PMU\n", (int)pid);
		return 1;
	}
	exe[len] = 0;
	for (int i = 5; i < argc && n < MAX_COUNTERS; i++, n++) {
		struct perf_event_attr attr;
		struct tm_probe_point pp;
		const uint8_t *code;

		addr[n] = strtoull(argv[i], NULL, 0);
		code = file_at(&f, addr[n], TM_PROBE_SCAN_BYTES, NULL);
		if (!code || file_offset(&f, addr[n], &off[n])) {
			fprintf(stderr, "driver: 0x%" PRIx64 " is not code\n", addr[n]);
			return 1;
		}
		/* The first emulated instruction every path executes (as capture). */
		tm_probe_point_find(code, TM_PROBE_SCAN_BYTES, 0, 0, &pp);
		off[n] += pp.offset;
		memset(&attr, 0, sizeof(attr));
		attr.size = sizeof(attr);
		attr.type = type;
		attr.config1 = (uint64_t)(uintptr_t)exe;
		attr.config2 = off[n];
		attr.disabled = 1;
		fds[n] = syscall(SYS_perf_event_open, &attr, pid, -1, -1, 0);
		if (fds[n] < 0) {
			fprintf(stderr, "driver: perf_event_open uprobe %s:0x%" PRIx64 ": %s\n", exe,
				off[n], strerror(errno));
			return 1;
		}
	}
	ctl = fopen(argv[3], "r");
	ack = fopen(argv[4], "w");
	if (!ctl || !ack)
		goto cleanup;
	while (fgets(line, sizeof(line), ctl)) {
		int on = !strncmp(line, "enable", 6);

		for (int i = 0; i < n; i++)
			ioctl(fds[i], on ? PERF_EVENT_IOC_ENABLE : PERF_EVENT_IOC_DISABLE, 0);
		fputs("ack\n", ack);
		fflush(ack);
		if (!on)
			break;
	}
	for (int i = 0; i < n; i++) {
		uint64_t v = 0;

		if (read(fds[i], &v, sizeof(v)) != sizeof(v))
			goto cleanup;
		printf("count 0x%" PRIx64 " off 0x%" PRIx64 " hits %" PRIu64 "\n", addr[i], off[i], v);
	}
	rc = 0;
cleanup:
	if (ctl)
		fclose(ctl);
	if (ack)
		fclose(ack);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "scan-file"))
		return cmd_scan_file(argc, argv);
	if (argc == 3 && !strcmp(argv[1], "scan"))
		return cmd_scan(atoi(argv[2]));
	if (argc == 4 && !strcmp(argv[1], "cycle"))
		return cmd_cycle(atoi(argv[2]), atoi(argv[3]));
	if (argc >= 6 && !strcmp(argv[1], "count"))
		return cmd_count(argc, argv);
	if (argc == 3 && !strcmp(argv[1], "hold"))
		return cmd_hold(atoi(argv[2]));
	fprintf(stderr, "usage: driver scan-file PATH BIAS ADDR... | scan PID | cycle PID N | "
		"hold PID | count PID CTL ACK ADDR...\n");
	return 2;
}
