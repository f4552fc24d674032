/* Stub-area injection (inject.h). After a prototype measured on kernel 6.18
 * (docs/capture-design.md, "The stub"). */
#include "patch/inject.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "patch/mem_write.h"
#include "patch/seccomp_check.h"
#include "target/proc_maps.h"
#include "target/target.h"

extern const unsigned char tm_parasite_start[], tm_parasite_end[];
extern const unsigned char tm_parasite_rip[], tm_parasite_rsp[], tm_parasite_hint[],
	tm_parasite_map_flags[], tm_parasite_code_len[], tm_parasite_state_len[], tm_parasite_id[],
	tm_parasite_id_off[];

#define FIELD(f) ((size_t)((f) - tm_parasite_start))
#define PARASITE_MAX 1024

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
#define ERESTARTSYS_ 512
#define ERESTARTNOINTR_ 513
#define ERESTARTNOHAND_ 514
#define ERESTART_RESTARTBLOCK_ 516
#define STUB_NAME "/memfd:tmbpf-stub"

static long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

/* Does the padding hold a parasite an earlier injection left (ours, of this
 * build: its code and name, any field values) at start, zeros elsewhere?
 * It ran long ago (an injection completes within microseconds, a SIGKILLed
 * tmbpf included), so the place may be used again: without this, every
 * injection would use up one padding for good (measured: the 8th of
 * alternating full/sampled sessions on pyenv 3.12 found none left). */
static int leftover_parasite(const unsigned char *pad, uint64_t len, uint64_t start_off)
{
	const size_t size = (size_t)(tm_parasite_end - tm_parasite_start);
	const size_t code = FIELD(tm_parasite_rip), name = FIELD(tm_parasite_id_off) + 8;

	if (start_off + size > len || memcmp(pad + start_off, tm_parasite_start, code) ||
	    memcmp(pad + start_off + name, tm_parasite_start + name, size - name))
		return 0;
	for (uint64_t k = 0; k < len; k++)
		if ((k < start_off || k >= start_off + size) && pad[k])
			return 0;
	return 1;
}

/* Zero padding of at least need bytes after the end of an executable
 * PT_LOAD, up to its mapping's end, zero in the process too (or holding a
 * leftover parasite) (libc's first: it is in every process). *at is
 * 16-byte aligned. */
static int padding_in(pid_t pid, const struct tm_map *m, size_t need, uint64_t *at)
{
	unsigned char buf[4096];
	char path[96];
	Elf64_Ehdr eh;
	int fd, found = 0;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int)pid,
		 (unsigned long long)m->start, (unsigned long long)m->end);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64)
		goto out;
	for (int i = 0; i < eh.e_phnum && !found; i++) {
		Elf64_Phdr ph;
		uint64_t seg_end, start;
		int zero = 1;

		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) !=
		    sizeof(ph))
			break;
		if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X) ||
		    ph.p_offset > m->offset + (m->end - m->start) ||
		    ph.p_offset + ph.p_filesz <= m->offset)
			continue;
		seg_end = m->start + (ph.p_offset + ph.p_filesz - m->offset);
		start = (seg_end + 15) & ~15ull;
		if (seg_end >= m->end || m->end - seg_end > sizeof(buf) || m->end < start + need)
			continue;
		if (tm_target_read(pid, seg_end, buf, m->end - seg_end))
			continue;
		for (uint64_t k = 0; k < m->end - seg_end; k++)
			zero &= buf[k] == 0;
		if (zero || leftover_parasite(buf, m->end - seg_end, start - seg_end)) {
			*at = start;
			found = 1;
		}
	}
out:
	close(fd);
	return found;
}

static int find_padding(pid_t pid, size_t need, uint64_t *at)
{
	struct tm_maps maps;
	int err = -ENOSPC;

	if (tm_maps_read(pid, &maps))
		return -ESRCH;
	for (int pass = 0; pass < 2 && err; pass++) {
		for (size_t i = 0; i < maps.n && err; i++) {
			const struct tm_map *m = &maps.maps[i];
			int libc = strstr(m->path, "/libc.so") != NULL;

			if (!tm_map_is_exec(m) || m->path[0] != '/' || (pass == 0) != libc)
				continue;
			if (padding_in(pid, m, need, at))
				err = 0;
		}
	}
	tm_maps_release(&maps);
	return err;
}

/* PTRACE_SEIZE (no options) + PTRACE_INTERRUPT until a PTRACE_EVENT_STOP;
 * a signal-delivery-stop met first is passed on. */
static int seize_stop(pid_t tid)
{
	int status;

	if (ptrace(PTRACE_SEIZE, tid, 0, 0))
		return -errno;
	for (int tries = 0; tries < 100; tries++) {
		if (ptrace(PTRACE_INTERRUPT, tid, 0, 0))
			return -errno;
		if (waitpid(tid, &status, __WALL) < 0)
			return -errno;
		if (!WIFSTOPPED(status))
			return -ESRCH;
		if (status >> 16 == PTRACE_EVENT_STOP)
			return 0;
		if (ptrace(PTRACE_CONT, tid, 0, WSTOPSIG(status)))
			return -errno;
	}
	return -EAGAIN;
}

/* Inside the thread's current rseq critical section? The kernel would
 * abort it on resume; resuming it from the parasite could commit it on
 * another CPU. Try another moment then. */
static int in_rseq_cs(pid_t pid, pid_t tid, uint64_t rip)
{
	struct {
		uint64_t rseq_abi_pointer;
		uint32_t rseq_abi_size, signature, flags, pad;
	} conf;
	struct {
		uint32_t version, flags;
		uint64_t start_ip, post_commit_offset, abort_ip;
	} cs;
	uint64_t cs_ptr;

	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, sizeof(conf), &conf) != sizeof(conf) ||
	    !conf.rseq_abi_pointer)
		return 0;
	if (tm_target_read(pid, conf.rseq_abi_pointer + 8, &cs_ptr, 8) || !cs_ptr)
		return 0;
	if (tm_target_read(pid, cs_ptr, &cs, sizeof(cs)))
		return 0;
	return rip >= cs.start_ip && rip < cs.start_ip + cs.post_commit_offset;
}

/* Where the thread resumes: a syscall the stop interrupted is restarted as
 * the kernel would have (no handler runs: arch_do_signal_or_restart). */
static int resume_point(pid_t pid, const struct user_regs_struct *r, uint64_t *rip, uint64_t *rax,
			char *how, size_t howlen)
{
	long rc = (long)r->rax;

	*rip = r->rip;
	*rax = r->rax;
	snprintf(how, howlen, "in user code");
	if ((long)r->orig_rax < 0)
		return 0;
	snprintf(how, howlen, "just after syscall %lld", r->orig_rax);
	if (rc == -ERESTARTSYS_ || rc == -ERESTARTNOINTR_ || rc == -ERESTARTNOHAND_ ||
	    rc == -ERESTART_RESTARTBLOCK_) {
		unsigned char insn[2] = { 0 };

		if (tm_target_read(pid, r->rip - 2, insn, 2) || insn[0] != 0x0f || insn[1] != 0x05)
			return -EILSEQ; /* not after a `syscall` instruction */
		*rip = r->rip - 2;
		*rax = rc == -ERESTART_RESTARTBLOCK_ ? SYS_restart_syscall : r->orig_rax;
		snprintf(how, howlen, "in syscall %lld, restarted", r->orig_rax);
	}
	return 0;
}

/* The syscalls the parasite makes, as it makes them (seccomp_check.h). */
static int check_seccomp(pid_t pid, pid_t tid, uint64_t at, uint64_t code_len,
			 uint64_t state_len, char *err, size_t errlen)
{
	const uint64_t len = code_len + state_len;
	const struct tm_syscall_use calls[] = {
		{ SYS_memfd_create, { at, 1 }, "memfd_create" },
		{ SYS_ftruncate, { 3, code_len }, "ftruncate" },
		{ SYS_mmap, { 0, len, 5, 2, 3, 0 }, "mmap" },
		{ SYS_mmap, { 0x7f0000000000ull, state_len, 3, 0x32, (uint64_t)-1, 0 }, "mmap" },
		{ SYS_madvise, { 0x7f0000000000ull, state_len, 18 }, "madvise" },
		{ SYS_munmap, { 0x7f0000000000ull, len }, "munmap" },
		{ SYS_close, { 3 }, "close" },
	};

	return tm_seccomp_allows(pid, tid, at, calls, sizeof(calls) / sizeof(calls[0]), err, errlen);
}

static void set_field(unsigned char *blob, const unsigned char *field, uint64_t v)
{
	memcpy(blob + FIELD(field), &v, 8);
}

/* tmbpf run: the caller holds tid stopped. Run it through the parasite's
 * syscalls with PTRACE_SYSCALL and stop after the last one (close), the
 * area complete; the caller resumes it later, or the kernel does if tmbpf
 * dies (the parasite then restores and returns by itself). Syscall stops
 * are SIGTRAP, or SIGTRAP | 0x80 for a tracer that set TRACESYSGOOD (the
 * start-up catch). A signal that arrives meanwhile is not delivered inside
 * the parasite: it is sent again once the parasite is done. */
static int run_traced(pid_t pid, pid_t tid)
{
	int sigs[8], nsigs = 0, e = -ETIMEDOUT;

	for (int stops = 0; stops < 64; stops++) {
		struct user_regs_struct r;
		int status;

		if (ptrace(PTRACE_SYSCALL, tid, 0, 0)) {
			e = -errno;
			break;
		}
		if (waitpid(tid, &status, __WALL) < 0) {
			e = -errno;
			break;
		}
		if (!WIFSTOPPED(status)) {
			e = -ESRCH;
			break;
		}
		if ((WSTOPSIG(status) & ~0x80) != SIGTRAP) {
			if (status >> 16 == 0 && nsigs < 8) /* a signal-delivery stop */
				sigs[nsigs++] = WSTOPSIG(status);
			continue;
		}
		if (status >> 16 || ptrace(PTRACE_GETREGS, tid, 0, &r))
			continue; /* an event stop: not a syscall's */
		/* the exit of close: rax holds its result (entries show -ENOSYS) */
		if (r.orig_rax == SYS_close && (long)r.rax != -ENOSYS) {
			e = 0;
			break;
		}
	}
	for (int i = 0; i < nsigs; i++)
		syscall(SYS_tgkill, pid, tid, sigs[i]);
	return e;
}

static int find_area_id(pid_t pid, uint64_t code_len, uint64_t id_off, uint64_t want_id,
			struct tm_inject_area *a);

int tm_inject_area(pid_t pid, pid_t traced_tid, uint64_t code_len, uint64_t state_len,
		   uint64_t id_off, struct tm_inject_area *a, char *err, size_t errlen)
{
	const size_t size = (size_t)(tm_parasite_end - tm_parasite_start);
	pid_t tid = traced_tid ? traced_tid : pid;
	struct user_regs_struct regs, set;
	unsigned char blob[PARASITE_MAX];
	uint64_t at, rip, rax, id;
	long t_stop = 0;
	int e, attached = 0;

	memset(a, 0, sizeof(*a));
	if (size > sizeof(blob))
		return -E2BIG;
	e = find_padding(pid, size, &at);
	if (e) {
		snprintf(err, errlen, "PID %d: no zero padding of %zu bytes after an executable "
			 "segment for the injection", (int)pid, size);
		return e;
	}
	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		id = (uint64_t)now_us() * 0x9e3779b97f4a7c15ull;
	id |= 1;

	for (int attempt = 0;; attempt++) {
		if (!traced_tid) {
			e = seize_stop(tid);
			if (e) {
				snprintf(err, errlen, e == -EPERM ? "not permitted to ptrace PID %d (traced by "
					 "another process, or ptrace restricted): %s" : "cannot stop PID %d: %s",
					 (int)pid, strerror(-e));
				goto fail;
			}
			attached = 1;
		}
		t_stop = now_us();
		if (ptrace(PTRACE_GETREGS, tid, 0, &regs)) {
			e = -errno;
			snprintf(err, errlen, "PID %d: cannot read registers: %s", (int)pid, strerror(-e));
			goto fail;
		}
		if (regs.rip >= at && regs.rip < at + size) {
			e = -EBUSY;
			snprintf(err, errlen, "PID %d: thread %d is still in an earlier injection", (int)pid,
				 (int)tid);
			goto fail;
		}
		if (regs.cs != 0x33) {
			e = -ENOEXEC;
			snprintf(err, errlen, "PID %d: thread %d is not in 64-bit mode", (int)pid, (int)tid);
			goto fail;
		}
		if (traced_tid || !in_rseq_cs(pid, tid, regs.rip) || attempt >= 20)
			break;
		ptrace(PTRACE_DETACH, tid, 0, 0);
		attached = 0;
		usleep(100);
	}
	e = check_seccomp(pid, tid, at, code_len, state_len, err, errlen);
	if (e) {
		if (e != -EPERM)
			e = -EPERM;
		goto fail;
	}
	e = resume_point(pid, &regs, &rip, &rax, a->how, sizeof(a->how));
	if (e) {
		snprintf(err, errlen, "PID %d: interrupted at an unexpected place", (int)pid);
		goto fail;
	}
	memcpy(blob, tm_parasite_start, size);
	set_field(blob, tm_parasite_rip, rip);
	set_field(blob, tm_parasite_rsp, regs.rsp);
	set_field(blob, tm_parasite_hint, 0);
	set_field(blob, tm_parasite_map_flags, 2 /* MAP_PRIVATE */);
	set_field(blob, tm_parasite_code_len, code_len);
	set_field(blob, tm_parasite_state_len, state_len);
	set_field(blob, tm_parasite_id, id);
	set_field(blob, tm_parasite_id_off, id_off);
	e = tm_mem_write_pid(pid, at, blob, size);
	if (e) {
		snprintf(err, errlen, "PID %d: cannot write the injection code: %s", (int)pid,
			 strerror(-e));
		goto fail;
	}
	set = regs;
	set.rip = at;
	set.rsp = (regs.rsp - 128 - 64) & ~15ull; /* below the red zone */
	set.rax = rax;
	set.orig_rax = (unsigned long long)-1;
	if (ptrace(PTRACE_SETREGS, tid, 0, &set)) {
		e = -errno;
		snprintf(err, errlen, "PID %d: cannot set registers: %s", (int)pid, strerror(-e));
		goto fail;
	}
	/* From here on the target completes the injection by itself. */
	if (traced_tid) {
		e = run_traced(pid, tid);
	} else {
		ptrace(PTRACE_DETACH, tid, 0, 0);
		attached = 0;
	}
	a->stopped_us = now_us() - t_stop;
	for (int i = 0; i < 2000; i++) {
		if (find_area_id(pid, code_len, id_off, id, a) == 0)
			break;
		if (traced_tid)
			break; /* stopped after the parasite's last syscall: it is there or never */
		usleep(1000);
	}
	if (!a->base) {
		snprintf(err, errlen, "PID %d: the stub area did not appear (%s)", (int)pid,
			 e ? strerror(-e) : "the injected syscalls failed");
		return e ? e : -ETIMEDOUT;
	}
	a->code_len = code_len;
	a->state_len = state_len;
	tm_log(TM_LOG_DEBUG, "PID %d: stub area at 0x%llx (%llu + %llu bytes), injected from 0x%llx; "
	       "thread %d stopped %ld us, %s", (int)pid, (unsigned long long)a->base,
	       (unsigned long long)code_len, (unsigned long long)state_len, (unsigned long long)at,
	       (int)tid, a->stopped_us, a->how);
	return 0;
fail:
	if (attached)
		ptrace(PTRACE_DETACH, tid, 0, 0);
	return e;
}

/* The area of an injection: the memfd mapping named STUB_NAME at file
 * offset 0 with state_len bytes after it; want_id 0: any completed one. */
static int find_area_id(pid_t pid, uint64_t code_len, uint64_t id_off, uint64_t want_id,
			struct tm_inject_area *a)
{
	struct tm_maps maps;
	int err = -ENOENT;

	if (tm_maps_read(pid, &maps))
		return -ESRCH;
	for (size_t i = 0; i < maps.n && err; i++) {
		const struct tm_map *m = &maps.maps[i];
		uint64_t id = 0;

		if (strncmp(m->path, STUB_NAME, strlen(STUB_NAME)) || m->offset != 0 ||
		    m->end - m->start != code_len)
			continue;
		if (tm_target_read(pid, m->start + code_len + id_off, &id, sizeof(id)) || !id ||
		    (want_id && id != want_id))
			continue;
		a->base = m->start;
		a->id = id;
		a->code_len = code_len;
		a->state_len = i + 1 < maps.n && maps.maps[i + 1].start == m->end
				       ? maps.maps[i + 1].end - maps.maps[i + 1].start : 0;
		err = 0;
	}
	tm_maps_release(&maps);
	return err;
}

int tm_inject_find(pid_t pid, uint64_t code_len, uint64_t id_off, struct tm_inject_area *a)
{
	memset(a, 0, sizeof(*a));
	return find_area_id(pid, code_len, id_off, 0, a);
}

int tm_inject_code_path(pid_t pid, const struct tm_inject_area *a, char *buf, size_t len)
{
	int n = snprintf(buf, len, "/proc/%d/map_files/%llx-%llx", (int)pid,
			 (unsigned long long)a->base, (unsigned long long)(a->base + a->code_len));

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int tm_inject_open_code(pid_t pid, const struct tm_inject_area *a, int flags)
{
	char path[96];
	int fd;

	if (tm_inject_code_path(pid, a, path, sizeof(path)))
		return -ENAMETOOLONG;
	fd = open(path, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}
