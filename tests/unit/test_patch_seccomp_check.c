/* tm_seccomp_run, the classic-BPF interpreter that decides whether the
 * parasite's syscalls may run in a target (patch/seccomp_check.h), on
 * filters written the way systemd, Docker and Chromium write them: arch
 * check, syscall number tests, argument tests (both halves of a 64-bit
 * argument), ALU on the accumulator, the X register, and malformed
 * programs, which must answer KILL. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "check.h"
#include "patch/seccomp_check.h"

#define ARCH_X86_64 AUDIT_ARCH_X86_64
#define LD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define LD_ARCH BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch))
#define LD_ARG_LO(i) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[i]))
#define LD_ARG_HI(i) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[i]) + 4)
#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))

static const uint64_t no_args[6];

static uint32_t run(const struct sock_filter *f, size_t n, int nr, uint32_t arch, const uint64_t *args)
{
	return tm_seccomp_run(f, n, nr, arch, 0x401000, args ? args : no_args);
}

int main(void)
{
	/* Docker-like: wrong arch kills, mmap with PROT_EXEC denied with EPERM,
	 * memfd_create killed, everything else allowed. */
	const struct sock_filter docker[] = {
		LD_ARCH,
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH_X86_64, 1, 0),
		RET(SECCOMP_RET_KILL_PROCESS),
		LD_NR,
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_memfd_create, 0, 1),
		RET(SECCOMP_RET_KILL_PROCESS),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mmap, 0, 3),
		LD_ARG_LO(2),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 0, 1),
		RET(SECCOMP_RET_ERRNO | EPERM),
		RET(SECCOMP_RET_ALLOW),
	};
	const size_t nd = sizeof(docker) / sizeof(docker[0]);
	uint64_t rx[6] = { 0, 8192, PROT_READ | PROT_EXEC, MAP_PRIVATE, 3, 0 };
	uint64_t rw[6] = { 0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0 };

	CHECK(run(docker, nd, SYS_getpid, ARCH_X86_64, NULL) == SECCOMP_RET_ALLOW, "docker-like: getpid allowed");
	CHECK(run(docker, nd, SYS_getpid, AUDIT_ARCH_I386, NULL) == SECCOMP_RET_KILL_PROCESS,
	      "docker-like: another arch killed");
	CHECK(run(docker, nd, SYS_memfd_create, ARCH_X86_64, NULL) == SECCOMP_RET_KILL_PROCESS,
	      "docker-like: memfd_create killed");
	CHECK(run(docker, nd, SYS_mmap, ARCH_X86_64, rx) == (SECCOMP_RET_ERRNO | EPERM),
	      "docker-like: mmap PROT_EXEC -> ERRNO(EPERM)");
	CHECK(run(docker, nd, SYS_mmap, ARCH_X86_64, rw) == SECCOMP_RET_ALLOW, "docker-like: mmap rw allowed");

	/* The high half of a 64-bit argument, JGE/JGT, ALU and the X register:
	 * allow madvise only for advice < 0x20 with a length under 4 GiB;
	 * X = nr, A = X & 0xff, then compare. */
	const struct sock_filter alu[] = {
		LD_NR,
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_MISC | BPF_TXA, 0),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xff),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_madvise & 0xff, 1, 0),
		RET(SECCOMP_RET_ALLOW),
		LD_ARG_HI(1),
		BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 0, 3, 0),
		LD_ARG_LO(2),
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x20, 1, 0),
		RET(SECCOMP_RET_ALLOW),
		RET(SECCOMP_RET_TRAP),
	};
	const size_t na = sizeof(alu) / sizeof(alu[0]);
	uint64_t wipe[6] = { 0x7f0000000000, 4096, MADV_WIPEONFORK, 0, 0, 0 };
	uint64_t huge[6] = { 0x7f0000000000, 1ull << 33, MADV_WIPEONFORK, 0, 0, 0 };
	uint64_t bad_advice[6] = { 0x7f0000000000, 4096, 0x40, 0, 0, 0 };

	CHECK(run(alu, na, SYS_madvise, ARCH_X86_64, wipe) == SECCOMP_RET_ALLOW,
	      "alu/X: madvise(WIPEONFORK, 4 KiB) allowed");
	CHECK(run(alu, na, SYS_madvise, ARCH_X86_64, huge) == SECCOMP_RET_TRAP,
	      "alu/X: a length with its high half set -> TRAP");
	CHECK(run(alu, na, SYS_madvise, ARCH_X86_64, bad_advice) == SECCOMP_RET_TRAP,
	      "alu/X: advice >= 0x20 -> TRAP");
	CHECK(run(alu, na, SYS_write, ARCH_X86_64, NULL) == SECCOMP_RET_ALLOW, "alu/X: write allowed");

	/* The instruction pointer: allow only calls made from below 0x500000. */
	const struct sock_filter by_ip[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer)),
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x500000, 0, 1),
		RET(SECCOMP_RET_KILL_THREAD),
		RET(SECCOMP_RET_ALLOW),
	};
	CHECK(tm_seccomp_run(by_ip, 4, SYS_mmap, ARCH_X86_64, 0x401000, no_args) == SECCOMP_RET_ALLOW,
	      "instruction pointer read: low ip allowed");
	CHECK(tm_seccomp_run(by_ip, 4, SYS_mmap, ARCH_X86_64, 0x600000, no_args) ==
		      SECCOMP_RET_KILL_THREAD,
	      "instruction pointer read: high ip killed");

	/* Malformed programs never answer yes. */
	const struct sock_filter off_end[] = { LD_NR };
	const struct sock_filter wild_jump[] = {
		LD_NR,
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mmap, 40, 40),
		RET(SECCOMP_RET_ALLOW),
	};
	const struct sock_filter wild_load[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 4096),
		RET(SECCOMP_RET_ALLOW),
	};
	const struct sock_filter bad_opcode[] = {
		BPF_STMT(0xff, 0),
		RET(SECCOMP_RET_ALLOW),
	};
	CHECK(run(off_end, 1, SYS_mmap, ARCH_X86_64, NULL) == SECCOMP_RET_KILL_PROCESS,
	      "malformed: falling off the end -> KILL");
	CHECK(run(wild_jump, 3, SYS_mmap, ARCH_X86_64, NULL) == SECCOMP_RET_KILL_PROCESS,
	      "malformed: a jump past the end -> KILL");
	CHECK(run(wild_load, 2, SYS_mmap, ARCH_X86_64, NULL) == SECCOMP_RET_KILL_PROCESS,
	      "malformed: a load outside seccomp_data -> KILL");
	CHECK(run(bad_opcode, 2, SYS_mmap, ARCH_X86_64, NULL) == SECCOMP_RET_KILL_PROCESS,
	      "malformed: an unknown opcode -> KILL");
	CHECK(run(docker, 0, SYS_mmap, ARCH_X86_64, NULL) == SECCOMP_RET_KILL_PROCESS,
	      "malformed: an empty program -> KILL");
	return CHECK_DONE();
}
