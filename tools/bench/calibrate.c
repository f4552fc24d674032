/* calibrate: what one kernel entry costs on this machine, in ns per call.
 *
 * Built by make into build/bench/calibrate; tools/bench/driver.py runs it at the start and at the
 * end of the capture benchmark and prints its line first (docs/performance.md, issue 11). One line:
 *   calibration: syscall X ns, uprobe push Y ns, uprobe nop5 Z ns, uretprobe W ns,
 *   single-step V ns, nop5 empty-prog U ns
 * (one line; wrapped here). Each figure is the wall time of a loop of calls to a tiny function of
 * this binary (written in assembly, so its first instruction is known) divided by the number of
 * calls:
 *   syscall     getppid() through syscall(2), no probe
 *   push        uprobe on a function starting with `push %rbx` (emulated by the kernel)
 *   nop5        uprobe on `nopl 0x0(%rax,%rax,1)` (0f 1f 44 00 00): kernel 6.18 rewrites it into a
 *               call of its uprobe trampoline after the first hit ("optimized"); " (int3)" follows
 *               the figure when the bytes did not become e8 xx xx xx xx
 *   uretprobe   return probe on a `push %rbx` function (entry hijack + return trampoline)
 *   single-step uprobe on `mov %rdi,%rax` (executed out of line with TF: a second trap)
 *   empty-prog  nop5 uprobe whose program only returns (the probe mechanism alone)
 * Every probe but the last runs a counter program (array map, index = BPF cookie); the counts are
 * checked against the calls made, so a probe that did not fire is an error, not a fast figure.
 *
 * Self-contained: raw bpf(2) and, by default, one uprobe_multi link per program (kernel 6.6+;
 * Debian's libbpf 1.1 has no API for them); -p uses perf-event uprobes (uprobe PMU +
 * BPF_LINK_CREATE) instead. Each kind runs up to 200,000 calls or 300 ms, whichever comes first,
 * so a run takes about 2 s even where a single-stepped probe costs 30 us. -v prints details on
 * stderr. Needs root. Exit: 0 ok, 1 failure (one line on stderr), 2 usage. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The probed functions. 16-byte alignment keeps each nop5 inside one page (the kernel does not
 * optimize a nop5 that crosses one). */
__asm__(".text\n"
	".p2align 4\n cal_plain: push %rbx\n pop %rbx\n ret\n"
	".p2align 4\n cal_push: push %rbx\n pop %rbx\n ret\n"
	".p2align 4\n cal_nop5: .byte 0x0f,0x1f,0x44,0x00,0x00\n ret\n"
	".p2align 4\n cal_ret: push %rbx\n pop %rbx\n ret\n"
	".p2align 4\n cal_sstep: mov %rdi,%rax\n ret\n"
	".p2align 4\n cal_empty: .byte 0x0f,0x1f,0x44,0x00,0x00\n ret\n");
void cal_plain(void), cal_push(void), cal_nop5(void), cal_ret(void), cal_sstep(void), cal_empty(void);

enum kind { K_SYSCALL, K_PUSH, K_NOP5, K_RET, K_SSTEP, K_EMPTY, K_N };
static const char *const kind_name[K_N] = { "syscall", "uprobe push", "uprobe nop5", "uretprobe",
					    "single-step", "nop5 empty-prog" };

#define MAX_CALLS 200000
#define BUDGET_NS 300000000LL
#define WARMUP 1000
#define CHUNK 1000

/* BPF_TRACE_UPROBE_MULTI (uapi enum bpf_attach_type, 6.6+; newer than Debian 12's headers) */
#define ATTACH_UPROBE_MULTI 48
#define UPROBE_MULTI_RETURN 1u

/* union bpf_attr as BPF_LINK_CREATE reads it for uprobe_multi and perf_event links */
struct link_attr {
	uint32_t prog_fd, target_fd, attach_type, flags;
	union {
		struct {
			uint64_t path, offsets, ref_ctr_offsets, cookies;
			uint32_t cnt, flags, pid, pad;
		} multi;
		struct {
			uint64_t bpf_cookie;
		} perf;
	};
};

static long sys_bpf(int cmd, void *attr, unsigned size)
{
	return syscall(__NR_bpf, cmd, attr, size);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The counter array (one slot per kind); its fd, or -errno. */
static int map_create(void)
{
	union bpf_attr a;
	int fd;

	memset(&a, 0, sizeof(a));
	a.map_type = BPF_MAP_TYPE_ARRAY;
	a.key_size = 4;
	a.value_size = 8;
	a.max_entries = K_N;
	fd = (int)sys_bpf(BPF_MAP_CREATE, &a, sizeof(a));
	return fd < 0 ? -errno : fd;
}

/* counter: map[cookie] += 1; empty: return 0. The program's fd, or -errno. */
static int prog_load(int map_fd, int empty, unsigned expected_attach_type)
{
	int fd;
	struct bpf_insn counter[] = {
		{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_get_attach_cookie },
		{ .code = BPF_STX | BPF_MEM | BPF_W, .dst_reg = BPF_REG_10, .src_reg = BPF_REG_0, .off = -4 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_2, .src_reg = BPF_REG_10 },
		{ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = BPF_REG_2, .imm = -4 },
		{ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = BPF_REG_1, .src_reg = BPF_PSEUDO_MAP_FD,
		  .imm = map_fd },
		{ 0 },
		{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_map_lookup_elem },
		{ .code = BPF_JMP | BPF_JEQ | BPF_K, .dst_reg = BPF_REG_0, .off = 2, .imm = 0 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_1, .imm = 1 },
		{ .code = BPF_STX | BPF_ATOMIC | BPF_DW, .dst_reg = BPF_REG_0, .src_reg = BPF_REG_1,
		  .imm = BPF_ADD },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	struct bpf_insn nothing[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_KPROBE;
	a.insns = (uint64_t)(uintptr_t)(empty ? nothing : counter);
	a.insn_cnt = empty ? 2 : sizeof(counter) / sizeof(counter[0]);
	a.license = (uint64_t)(uintptr_t)"GPL";
	a.expected_attach_type = expected_attach_type;
	fd = (int)sys_bpf(BPF_PROG_LOAD, &a, sizeof(a));
	return fd < 0 ? -errno : fd;
}

static uint64_t map_get(int map_fd, uint32_t key)
{
	union bpf_attr a;
	uint64_t v = 0;

	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)map_fd;
	a.key = (uint64_t)(uintptr_t)&key;
	a.value = (uint64_t)(uintptr_t)&v;
	if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &a, sizeof(a)) < 0)
		return UINT64_MAX;
	return v;
}

/* The file that maps fn and fn's offset in it, from /proc/self/maps; 0 or -errno. */
static int file_offset(void (*fn)(void), char *path, size_t path_size, uint64_t *off)
{
	uintptr_t addr = (uintptr_t)fn;
	char line[4096];
	FILE *f = fopen("/proc/self/maps", "re");
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end, pgoff;
		int name_at = 0;

		if (sscanf(line, "%lx-%lx %*s %lx %*s %*s %n", &start, &end, &pgoff, &name_at) < 3 ||
		    addr < start || addr >= end || !name_at)
			continue;
		line[strcspn(line, "\n")] = 0;
		if (snprintf(path, path_size, "%s", line + name_at) >= (int)path_size) {
			err = -ENAMETOOLONG;
			break;
		}
		*off = addr - start + pgoff;
		err = 0;
		break;
	}
	fclose(f);
	return err;
}

/* The name of the mapping that holds addr ("" for an anonymous one), for -v. */
static const char *mapping_name(uintptr_t addr, char *buf, size_t size)
{
	char line[4096];
	FILE *f = fopen("/proc/self/maps", "re");

	snprintf(buf, size, "no mapping");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long start, end;
		int name_at = 0;

		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &start, &end, &name_at) >= 2 && addr >= start &&
		    addr < end) {
			line[strcspn(line, "\n")] = 0;
			snprintf(buf, size, "%s", name_at ? line + name_at : "");
			break;
		}
	}
	if (f)
		fclose(f);
	return buf;
}

static int uprobe_pmu_type(int *retprobe_bit)
{
	char buf[64];
	FILE *f = fopen("/sys/bus/event_source/devices/uprobe/type", "re");
	int type = -1;

	if (!f || fscanf(f, "%d", &type) != 1)
		type = -1;
	if (f)
		fclose(f);
	*retprobe_bit = 0;
	f = fopen("/sys/bus/event_source/devices/uprobe/format/retprobe", "re");
	if (f && fgets(buf, sizeof(buf), f))
		sscanf(buf, "config:%d", retprobe_bit);
	if (f)
		fclose(f);
	return type;
}

/* One probe: prog at path+off, cookie, entry or return; a uprobe_multi link or a perf-event link.
 * The link's fd, or -errno. */
static int attach(int prog_fd, const char *path, uint64_t off, uint64_t cookie, int ret, int perf)
{
	struct link_attr a;

	memset(&a, 0, sizeof(a));
	a.prog_fd = (uint32_t)prog_fd;
	if (perf) {
		struct perf_event_attr pe;
		int bit, type = uprobe_pmu_type(&bit);
		long pfd;

		if (type < 0)
			return -ENOENT;
		memset(&pe, 0, sizeof(pe));
		pe.size = sizeof(pe);
		pe.type = (uint32_t)type;
		pe.config = ret ? 1ull << bit : 0;
		pe.config1 = (uint64_t)(uintptr_t)path; /* uprobe_path */
		pe.config2 = off;                       /* probe_offset */
		pfd = syscall(__NR_perf_event_open, &pe, getpid(), -1, -1, PERF_FLAG_FD_CLOEXEC);
		if (pfd < 0)
			return -errno;
		a.target_fd = (uint32_t)pfd;
		a.attach_type = BPF_PERF_EVENT;
		a.perf.bpf_cookie = cookie;
		long lfd = sys_bpf(BPF_LINK_CREATE, &a, sizeof(a));
		int err = -errno;

		close((int)pfd); /* the link holds the event */
		return lfd < 0 ? err : (int)lfd;
	}
	a.attach_type = ATTACH_UPROBE_MULTI;
	a.multi.path = (uint64_t)(uintptr_t)path;
	a.multi.offsets = (uint64_t)(uintptr_t)&off;
	a.multi.cookies = (uint64_t)(uintptr_t)&cookie;
	a.multi.cnt = 1;
	a.multi.flags = ret ? UPROBE_MULTI_RETURN : 0;
	a.multi.pid = (uint32_t)getpid();
	long lfd = sys_bpf(BPF_LINK_CREATE, &a, sizeof(a));
	return lfd < 0 ? -errno : (int)lfd;
}

/* ns per call of fn (or getppid), after WARMUP calls; *calls gets the number timed. */
static double time_calls(void (*volatile fn)(void), long *calls)
{
	int64_t t0, dt;
	long n = 0;

	for (int i = 0; i < WARMUP; i++)
		fn ? fn() : (void)syscall(SYS_getppid);
	t0 = now_ns();
	do {
		if (fn)
			for (int i = 0; i < CHUNK; i++)
				fn();
		else
			for (int i = 0; i < CHUNK; i++)
				syscall(SYS_getppid);
		n += CHUNK;
		dt = now_ns() - t0;
	} while (n < MAX_CALLS && dt < BUDGET_NS);
	*calls = n;
	return (double)dt / (double)n;
}

static void (*const probed_fn[K_N])(void) = { NULL, cal_push, cal_nop5, cal_ret, cal_sstep, cal_empty };

/* One link per probed kind into link[] (the counter program, or the empty one for K_EMPTY);
 * 0 or -errno after reporting which probe failed. */
static int attach_all(int prog_count, int prog_empty, int perf, int link[K_N])
{
	char path[4096];
	uint64_t off = 0;

	for (int k = K_PUSH; k < K_N; k++) {
		int err = file_offset(probed_fn[k], path, sizeof(path), &off);

		if (!err)
			err = attach(k == K_EMPTY ? prog_empty : prog_count, path, off, (uint64_t)k, k == K_RET,
				     perf);
		if (err < 0) {
			fprintf(stderr, "calibrate: attaching %s probe at %s+0x%" PRIx64 ": %s%s\n", kind_name[k],
				path, off, strerror(-err),
				!perf && err == -EINVAL ? " (no uprobe_multi before kernel 6.6: try -p)" : "");
			return err;
		}
		link[k] = err;
	}
	return 0;
}

/* Every counted probe ran once per call (timed calls + warm-up); 0 or -EIO after reporting. */
static int check_counts(int map_fd, const long calls[K_N])
{
	for (int k = K_PUSH; k < K_EMPTY; k++) {
		uint64_t got = map_get(map_fd, (uint32_t)k);

		if (got != (uint64_t)(calls[k] + WARMUP)) {
			fprintf(stderr, "calibrate: %s probe ran %" PRIu64 " times for %ld calls\n", kind_name[k], got,
				calls[k] + WARMUP);
			return -EIO;
		}
	}
	return 0;
}

/* -v: link kind, the unprobed call, each kind's calls, the nop5 bytes and where the call goes. */
static void print_details(int perf, double base, long base_calls, const double ns[K_N], const long calls[K_N],
			  const unsigned char nop5[5], const unsigned char empty[5])
{
	char name[4096];

	fprintf(stderr, "links: %s; unprobed call %.1f ns (%ld calls)\n",
		perf ? "perf-event uprobes" : "uprobe_multi", base, base_calls);
	for (int k = 0; k < K_N; k++)
		fprintf(stderr, "  %-16s %8.1f ns x %ld calls\n", kind_name[k], ns[k], calls[k]);
	fprintf(stderr, "  nop5 bytes now %02x %02x %02x %02x %02x, empty-prog nop5 %02x %02x %02x %02x %02x\n",
		nop5[0], nop5[1], nop5[2], nop5[3], nop5[4], empty[0], empty[1], empty[2], empty[3], empty[4]);
	if (nop5[0] == 0xe8) {
		int32_t rel;

		memcpy(&rel, nop5 + 1, 4);
		uintptr_t target = (uintptr_t)cal_nop5 + 5 + (uintptr_t)(intptr_t)rel;

		fprintf(stderr, "  call target %#lx in %s, %+ld bytes from the probe\n", (unsigned long)target,
			mapping_name(target, name, sizeof(name)), (long)(target - (uintptr_t)cal_nop5));
	}
}

static int usage(const char *argv0, FILE *out, int rc)
{
	fprintf(out, "usage: %s [-p] [-v]\n  -p  perf-event uprobes instead of uprobe_multi links\n"
		     "  -v  details on stderr\n", argv0);
	return rc;
}

int main(int argc, char **argv)
{
	int link[K_N], perf = 0, verbose = 0, map_fd = -1, prog_count = -1, prog_empty = -1, rc = 1, opt;
	double ns[K_N], base;
	long calls[K_N], base_calls;
	unsigned char nop5_bytes[5], empty_bytes[5];

	for (int k = 0; k < K_N; k++)
		link[k] = -1;
	while ((opt = getopt(argc, argv, "pvh")) != -1) {
		if (opt == 'p')
			perf = 1;
		else if (opt == 'v')
			verbose = 1;
		else
			return opt == 'h' ? usage(argv[0], stdout, 0) : usage(argv[0], stderr, 2);
	}
	if (optind < argc)
		return usage(argv[0], stderr, 2);
	map_fd = map_create();
	prog_count = map_fd < 0 ? map_fd : prog_load(map_fd, 0, perf ? 0 : ATTACH_UPROBE_MULTI);
	prog_empty = prog_count < 0 ? prog_count : prog_load(map_fd, 1, perf ? 0 : ATTACH_UPROBE_MULTI);
	if (prog_empty < 0) {
		fprintf(stderr, "calibrate: loading BPF programs: %s%s\n", strerror(-prog_empty),
			geteuid() ? " (run as root)" : "");
		goto cleanup;
	}
	if (attach_all(prog_count, prog_empty, perf, link) < 0)
		goto cleanup;

	base = time_calls(cal_plain, &base_calls);
	for (int k = 0; k < K_N; k++)
		ns[k] = time_calls(probed_fn[k], &calls[k]);
	memcpy(nop5_bytes, (const void *)cal_nop5, 5);
	memcpy(empty_bytes, (const void *)cal_empty, 5);
	if (check_counts(map_fd, calls) < 0)
		goto cleanup;

	printf("calibration: syscall %.0f ns, uprobe push %.0f ns, uprobe nop5 %.0f ns%s, uretprobe %.0f ns, "
	       "single-step %.0f ns, nop5 empty-prog %.0f ns\n",
	       ns[K_SYSCALL], ns[K_PUSH], ns[K_NOP5], nop5_bytes[0] == 0xe8 ? "" : " (int3)", ns[K_RET],
	       ns[K_SSTEP], ns[K_EMPTY]);
	if (verbose)
		print_details(perf, base, base_calls, ns, calls, nop5_bytes, empty_bytes);
	rc = 0;
cleanup:
	for (int k = 0; k < K_N; k++)
		if (link[k] >= 0)
			close(link[k]);
	if (prog_empty >= 0)
		close(prog_empty);
	if (prog_count >= 0)
		close(prog_count);
	if (map_fd >= 0)
		close(map_fd);
	return rc;
}
