/* Seccomp filters of a target, evaluated here (seccomp_check.h). */
#include "patch/seccomp_check.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <unistd.h>

#ifndef PTRACE_SECCOMP_GET_FILTER
#define PTRACE_SECCOMP_GET_FILTER 0x420c
#endif

/* struct seccomp_data, little-endian, as the kernel lays it out */
struct sdata {
	int32_t nr;
	uint32_t arch;
	uint64_t instruction_pointer;
	uint64_t args[6];
};

#define MAX_INSNS 4096 /* BPF_MAXINSNS */

uint32_t tm_seccomp_run(const void *filter, size_t len, int nr, uint32_t arch, uint64_t ip,
			const uint64_t args[6])
{
	const struct sock_filter *f = filter;
	struct sdata d = { .nr = nr, .arch = arch, .instruction_pointer = ip };
	uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = { 0 };
	unsigned char bytes[sizeof(d)];

	memcpy(d.args, args, sizeof(d.args));
	memcpy(bytes, &d, sizeof(d));
	if (len > MAX_INSNS)
		return SECCOMP_RET_KILL_PROCESS;
	for (size_t pc = 0; pc < len; pc++) {
		const struct sock_filter *in = &f[pc];
		uint32_t k = in->k, src = BPF_SRC(in->code) == BPF_X ? x : k;

		switch (BPF_CLASS(in->code)) {
		case BPF_LD:
			if (in->code == (BPF_LD | BPF_W | BPF_ABS)) {
				if (k % 4 || k + 4 > sizeof(bytes))
					return SECCOMP_RET_KILL_PROCESS;
				memcpy(&a, bytes + k, 4);
			} else if (in->code == (BPF_LD | BPF_W | BPF_LEN)) {
				a = sizeof(bytes);
			} else if (in->code == (BPF_LD | BPF_IMM)) {
				a = k;
			} else if (in->code == (BPF_LD | BPF_MEM) && k < BPF_MEMWORDS) {
				a = mem[k];
			} else {
				return SECCOMP_RET_KILL_PROCESS;
			}
			break;
		case BPF_LDX:
			if (in->code == (BPF_LDX | BPF_W | BPF_LEN))
				x = sizeof(bytes);
			else if (in->code == (BPF_LDX | BPF_IMM))
				x = k;
			else if (in->code == (BPF_LDX | BPF_MEM) && k < BPF_MEMWORDS)
				x = mem[k];
			else
				return SECCOMP_RET_KILL_PROCESS;
			break;
		case BPF_ST:
			if (k >= BPF_MEMWORDS)
				return SECCOMP_RET_KILL_PROCESS;
			mem[k] = a;
			break;
		case BPF_STX:
			if (k >= BPF_MEMWORDS)
				return SECCOMP_RET_KILL_PROCESS;
			mem[k] = x;
			break;
		case BPF_ALU:
			switch (BPF_OP(in->code)) {
			case BPF_ADD: a += src; break;
			case BPF_SUB: a -= src; break;
			case BPF_MUL: a *= src; break;
			case BPF_DIV: if (!src) return SECCOMP_RET_KILL_PROCESS; a /= src; break;
			case BPF_MOD: if (!src) return SECCOMP_RET_KILL_PROCESS; a %= src; break;
			case BPF_OR: a |= src; break;
			case BPF_AND: a &= src; break;
			case BPF_XOR: a ^= src; break;
			case BPF_LSH: a = src < 32 ? a << src : 0; break;
			case BPF_RSH: a = src < 32 ? a >> src : 0; break;
			case BPF_NEG: a = -a; break;
			default: return SECCOMP_RET_KILL_PROCESS;
			}
			break;
		case BPF_JMP: {
			int taken;

			if (BPF_OP(in->code) == BPF_JA) {
				pc += k;
				continue;
			}
			switch (BPF_OP(in->code)) {
			case BPF_JEQ: taken = a == src; break;
			case BPF_JGT: taken = a > src; break;
			case BPF_JGE: taken = a >= src; break;
			case BPF_JSET: taken = (a & src) != 0; break;
			default: return SECCOMP_RET_KILL_PROCESS;
			}
			pc += taken ? in->jt : in->jf;
			break;
		}
		case BPF_RET:
			return BPF_RVAL(in->code) == BPF_A ? a : k;
		case BPF_MISC: /* exactly TAX or TXA: the kernel refuses other codes */
			if (in->code == (BPF_MISC | BPF_TAX))
				x = a;
			else if (in->code == (BPF_MISC | BPF_TXA))
				a = x;
			else
				return SECCOMP_RET_KILL_PROCESS;
			break;
		default:
			return SECCOMP_RET_KILL_PROCESS;
		}
	}
	return SECCOMP_RET_KILL_PROCESS; /* fell off the end: the kernel refuses such filters */
}

/* Precedence of actions (the kernel keeps the most restrictive answer of
 * all filters): lower is stronger. */
static int action_rank(uint32_t ret)
{
	switch (ret & SECCOMP_RET_ACTION_FULL) {
	case SECCOMP_RET_KILL_PROCESS: return 0;
	case SECCOMP_RET_KILL_THREAD: return 1;
	case SECCOMP_RET_TRAP: return 2;
	case SECCOMP_RET_ERRNO: return 3;
	case SECCOMP_RET_USER_NOTIF: return 4;
	case SECCOMP_RET_TRACE: return 5;
	case SECCOMP_RET_LOG: return 6;
	case SECCOMP_RET_ALLOW: return 7;
	}
	return 0;
}

static const char *action_name(uint32_t ret)
{
	static const char *const names[] = { "KILL_PROCESS", "KILL_THREAD", "TRAP", "ERRNO",
					     "USER_NOTIF", "TRACE", "LOG", "ALLOW" };

	return names[action_rank(ret)];
}

/* "Seccomp:" of /proc/PID/status: 0 none, 1 strict, 2 filter; -1 unknown. */
static int seccomp_mode(pid_t pid)
{
	char path[64], line[256];
	int mode = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Seccomp: %d", &mode) == 1)
			break;
	fclose(f);
	return mode;
}

int tm_seccomp_allows(pid_t pid, pid_t tid, uint64_t ip, const struct tm_syscall_use *calls,
		      size_t n, char *why, size_t whylen)
{
	struct sock_filter *insns = NULL;
	int mode = seccomp_mode(pid), err = 0, nfilters;
	int worst[64];

	if (mode == 0)
		return 0;
	if (mode == 1) {
		snprintf(why, whylen, "PID %d runs in strict seccomp mode", (int)pid);
		return -EPERM;
	}
	if (mode != 2) {
		snprintf(why, whylen, "cannot read the seccomp mode of PID %d", (int)pid);
		return -EIO;
	}
	insns = malloc(MAX_INSNS * sizeof(*insns));
	if (!insns)
		return -ENOMEM;
	for (size_t c = 0; c < n && c < 64; c++)
		worst[c] = 7;
	for (nfilters = 0;; nfilters++) {
		long len = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)(long)nfilters, NULL);

		if (len < 0 && errno == ENOENT)
			break;
		if (len <= 0 || len > MAX_INSNS ||
		    ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)(long)nfilters, insns) != len) {
			err = errno ? -errno : -EIO;
			snprintf(why, whylen, "cannot read seccomp filter %d of PID %d: %s", nfilters,
				 (int)pid, strerror(-err));
			goto out;
		}
		for (size_t c = 0; c < n && c < 64; c++) {
			uint32_t r = tm_seccomp_run(insns, (size_t)len, calls[c].nr, AUDIT_ARCH_X86_64,
						    ip, calls[c].args);

			if (action_rank(r) < worst[c])
				worst[c] = action_rank(r);
			if (action_rank(r) < 6 && !err) {
				snprintf(why, whylen, "the seccomp filter of PID %d answers %s to %s",
					 (int)pid, action_name(r), calls[c].name);
				err = -EPERM;
			}
		}
	}
	if (!nfilters && !err) {
		snprintf(why, whylen, "PID %d is in seccomp filter mode but no filter could be read",
			 (int)pid);
		err = -EIO;
	}
out:
	free(insns);
	return err;
}
