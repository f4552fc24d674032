/* The x86-64 decoder (x86_insn.h). Opcode tables after the Intel SDM vol. 2
 * appendix A; uprobe emulation after arch/x86/kernel/uprobes.c. */
#include "placement/x86_insn.h"

#include <stdio.h>
#include <string.h>

static const char *const reg_names[16] = {
	"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
};

const char *tm_x86_reg_name(unsigned reg)
{
	return reg < 16 ? reg_names[reg] : "?";
}

/* One-byte opcodes that take a ModRM byte. */
static int map0_has_modrm(uint8_t op)
{
	if (op < 0x40)
		return (op & 7) < 4;
	switch (op) {
	case 0x63: case 0x69: case 0x6b:
	case 0xc0: case 0xc1: case 0xc6: case 0xc7:
	case 0xd0: case 0xd1: case 0xd2: case 0xd3:
	case 0xf6: case 0xf7: case 0xfe: case 0xff:
		return 1;
	}
	return (op >= 0x80 && op <= 0x8f) || (op >= 0xd8 && op <= 0xdf);
}

/* Immediate bytes of a one-byte opcode; -1: not decoded. */
static int map0_imm(const struct tm_x86_insn *in)
{
	uint8_t op = in->op;
	int z = in->p66 ? 2 : 4;

	if (op < 0x40) {
		if ((op & 7) == 4)
			return 1;
		if ((op & 7) == 5)
			return z;
		if ((op & 7) >= 6)
			return -1; /* segment push/pop, daa...: invalid in 64-bit mode */
		return 0;
	}
	if (op >= 0x70 && op <= 0x7f)
		return 1;
	if (op >= 0xb0 && op <= 0xb7)
		return 1;
	if (op >= 0xb8 && op <= 0xbf)
		return (in->rex & 8) ? 8 : z;
	if (op >= 0xe0 && op <= 0xe7)
		return 1;
	switch (op) {
	case 0x68: case 0x69: case 0x81: case 0xa9: case 0xc7:
		return z;
	case 0xe8: case 0xe9:
		return 4; /* rel32 even with 0x66 in 64-bit mode */
	case 0x6a: case 0x6b: case 0x80: case 0x83: case 0xa8: case 0xc0: case 0xc1:
	case 0xc6: case 0xcd: case 0xeb:
		return 1;
	case 0xc2: case 0xca:
		return 2;
	case 0xc8:
		return 3;
	case 0xa0: case 0xa1: case 0xa2: case 0xa3:
		return in->p67 ? 4 : 8;
	case 0xf6:
		return in->reg % 8 < 2 ? 1 : 0;
	case 0xf7:
		return in->reg % 8 < 2 ? z : 0;
	case 0x62: case 0x82: case 0x9a: case 0xc4: case 0xc5: case 0xd4: case 0xd5:
	case 0xd6: case 0xea:
		return -1; /* EVEX/VEX or invalid in 64-bit mode */
	}
	return 0;
}

/* 0f xx opcodes without a ModRM byte. */
static int map1_no_modrm(uint8_t op)
{
	if (op >= 0x80 && op <= 0x8f)
		return 1;
	if (op >= 0xc8 && op <= 0xcf)
		return 1;
	if (op >= 0x30 && op <= 0x37)
		return 1;
	switch (op) {
	case 0x05: case 0x06: case 0x07: case 0x08: case 0x09: case 0x0b: case 0x0e:
	case 0x77: case 0xa0: case 0xa1: case 0xa2: case 0xa8: case 0xa9: case 0xaa:
		return 1;
	}
	return 0;
}

static int map1_imm(uint8_t op)
{
	if (op >= 0x80 && op <= 0x8f)
		return 4;
	switch (op) {
	case 0x70: case 0x71: case 0x72: case 0x73: case 0xa4: case 0xac: case 0xba:
	case 0xc2: case 0xc4: case 0xc5: case 0xc6:
		return 1;
	case 0x0f:
		return -1; /* 3DNow! */
	}
	return 0;
}

static int is_legacy_prefix(uint8_t b)
{
	switch (b) {
	case 0x26: case 0x2e: case 0x36: case 0x3e: case 0x64: case 0x65:
	case 0x66: case 0x67: case 0xf0: case 0xf2: case 0xf3:
		return 1;
	}
	return 0;
}

static int32_t rd32(const uint8_t *p)
{
	int32_t v;

	memcpy(&v, p, 4);
	return v;
}

int tm_x86_decode(const uint8_t *c, size_t len, struct tm_x86_insn *in)
{
	size_t i = 0;
	int imm;

	memset(in, 0, sizeof(*in));
	in->base = in->index = TM_X86_NO_REG;
	in->scale = 1;
	while (i < len && i < 14 && is_legacy_prefix(c[i])) {
		in->p66 |= c[i] == 0x66;
		in->p67 |= c[i] == 0x67;
		if (c[i] == 0xf2 || c[i] == 0xf3)
			in->rep = c[i];
		else if (c[i] != 0x66 && c[i] != 0x67 && c[i] != 0xf0)
			in->seg = c[i];
		in->prefixes++;
		i++;
	}
	if (i < len && (c[i] & 0xf0) == 0x40)
		in->rex = c[i++];
	if (i >= len)
		return -1;
	if (c[i] == 0x0f) {
		if (++i >= len)
			return -1;
		if (c[i] == 0x38 || c[i] == 0x3a) {
			in->map = c[i] == 0x38 ? 2 : 3;
			if (++i >= len)
				return -1;
		} else {
			in->map = 1;
		}
	}
	in->op = c[i++];
	switch (in->map) {
	case 0:
		in->has_modrm = map0_has_modrm(in->op);
		break;
	case 1:
		in->has_modrm = !map1_no_modrm(in->op);
		break;
	default:
		in->has_modrm = 1;
		break;
	}
	if (in->has_modrm) {
		uint8_t m;

		if (i >= len)
			return -1;
		in->modrm_at = (uint8_t)i;
		m = c[i++];
		in->mod = m >> 6;
		in->reg = ((m >> 3) & 7) | ((in->rex & 4) ? 8 : 0);
		in->rm = (m & 7) | ((in->rex & 1) ? 8 : 0);
		if (in->mod != 3) {
			int disp = in->mod == 1 ? 1 : in->mod == 2 ? 4 : 0;

			if ((m & 7) == 4) {
				uint8_t sib;

				if (i >= len)
					return -1;
				sib = c[i++];
				in->scale = (uint8_t)(1u << (sib >> 6));
				in->index = ((sib >> 3) & 7) | ((in->rex & 2) ? 8 : 0);
				if (in->index == TM_REG_RSP)
					in->index = TM_X86_NO_REG; /* no index */
				in->base = (sib & 7) | ((in->rex & 1) ? 8 : 0);
				if (in->mod == 0 && (sib & 7) == 5) {
					disp = 4;
					in->base = TM_X86_NO_REG; /* disp32, no base */
				}
			} else if (in->mod == 0 && (m & 7) == 5) {
				disp = 4;
				in->rip_relative = 1;
			} else {
				in->base = in->rm;
			}
			if (i + (size_t)disp > len)
				return -1;
			if (disp == 1)
				in->disp = (int8_t)c[i];
			else if (disp == 4)
				in->disp = rd32(c + i);
			in->disp_len = (uint8_t)disp;
			i += disp;
		}
	}
	if (in->map == 0)
		imm = map0_imm(in);
	else if (in->map == 1)
		imm = map1_imm(in->op);
	else
		imm = in->map == 3 ? 1 : 0;
	if (imm < 0 || i + (size_t)imm > len || i + (size_t)imm > 15)
		return -1;
	if (imm == 1)
		in->imm = (int8_t)c[i];
	else if (imm == 2)
		in->imm = (int16_t)(c[i] | c[i + 1] << 8);
	else if (imm == 4)
		in->imm = rd32(c + i);
	else if (imm == 8)
		memcpy(&in->imm, c + i, 8);
	else if (imm == 3) /* enter imm16, imm8 */
		in->imm = c[i] | c[i + 1] << 8;
	in->imm_len = (uint8_t)imm;
	i += imm;
	in->len = (uint8_t)i;
	return 0;
}

size_t tm_x86_insn_len(const uint8_t *code, size_t len)
{
	struct tm_x86_insn in;

	return tm_x86_decode(code, len, &in) ? 0 : in.len;
}

enum tm_x86_flow tm_x86_flow(const struct tm_x86_insn *in)
{
	uint8_t op = in->op;

	if (in->map == 1) {
		if (op >= 0x80 && op <= 0x8f)
			return TM_X86_JCC;
		if (op == 0x05 || op == 0x07 || op == 0x0b)
			return TM_X86_RET; /* syscall, sysret, ud2 */
		return TM_X86_NEXT;
	}
	if (in->map != 0)
		return TM_X86_NEXT;
	if ((op >= 0x70 && op <= 0x7f) || (op >= 0xe0 && op <= 0xe3))
		return TM_X86_JCC;
	switch (op) {
	case 0xe8:
		return TM_X86_CALL;
	case 0xe9: case 0xeb:
		return TM_X86_JMP;
	case 0xc2: case 0xc3: case 0xca: case 0xcb: case 0xcc: case 0xcd: case 0xcf:
		return TM_X86_RET;
	case 0xff:
		if ((in->reg & 7) == 2 || (in->reg & 7) == 3)
			return TM_X86_CALL_INDIRECT;
		if ((in->reg & 7) == 4 || (in->reg & 7) == 5)
			return TM_X86_JMP_INDIRECT;
		return TM_X86_NEXT;
	}
	return TM_X86_NEXT;
}

int tm_x86_branch_target(const struct tm_x86_insn *in, uint64_t vaddr, uint64_t *target)
{
	enum tm_x86_flow f = tm_x86_flow(in);

	if ((f != TM_X86_JMP && f != TM_X86_JCC && f != TM_X86_CALL) || !in->imm_len)
		return -1;
	*target = vaddr + in->len + (uint64_t)in->imm;
	return 0;
}

int tm_x86_mem_target(const struct tm_x86_insn *in, uint64_t vaddr, int index_ok,
		      uint64_t *target)
{
	if (!in->has_modrm || in->mod == 3)
		return -1;
	if (in->rip_relative) {
		*target = vaddr + in->len + (uint64_t)(int64_t)in->disp;
		return 0;
	}
	if (in->base == TM_X86_NO_REG && in->disp_len == 4 &&
	    (in->index == TM_X86_NO_REG || index_ok)) {
		*target = (uint64_t)(uint32_t)in->disp;
		return 0;
	}
	return -1;
}

#define W(r) (1u << (r))

void tm_x86_effect(const struct tm_x86_insn *in, struct tm_x86_effect *e)
{
	uint8_t op = in->op;
	uint8_t sub = in->reg & 7;
	uint32_t rm_w = in->mod == 3 ? W(in->rm) : 0;

	memset(e, 0, sizeof(*e));
	e->copy_from = e->copy_to = -1;
	if (in->map == 1) {
		if (op >= 0x80 && op <= 0x8f) {
			e->branch = 1;
		} else if ((op >= 0x18 && op <= 0x1f) || op == 0x0d) {
			/* prefetch, hint nops (endbr64 is f3 0f 1e fa: its ModRM
			 * names no register it writes), nop r/m: nothing */
		} else if (op == 0x05 || op == 0x0b) {
			e->branch = 1; /* syscall, ud2 */
		} else if (op == 0xa2) {
			e->writes = W(0) | W(1) | W(2) | W(3);
		} else if (op == 0x31) {
			e->writes = W(0) | W(2);
		} else if (op == 0xb0 || op == 0xb1) {
			e->writes = W(0) | rm_w;
		} else if (op == 0xc7) {
			e->writes = W(0) | W(2);
		} else if (op == 0xa3 || (op == 0xba && sub == 4)) {
			/* bt: flags only */
		} else if ((op >= 0x40 && op <= 0x4f) || op == 0xaf || op == 0xb6 || op == 0xb7 ||
			   op == 0xbe || op == 0xbf || op == 0xbc || op == 0xbd || op == 0xb8) {
			e->writes = W(in->reg); /* cmovcc, imul, movzx/movsx, bsf/bsr, popcnt */
		} else if (op >= 0xc8 && op <= 0xcf) {
			e->writes = W((op & 7) | ((in->rex & 1) ? 8 : 0));
		} else if (in->has_modrm) {
			/* Conservative: either operand may be a general register written. */
			e->writes = W(in->reg) | rm_w;
		} else {
			e->unknown = 1;
		}
		return;
	}
	if (in->map != 0) {
		e->writes = in->has_modrm ? W(in->reg) | rm_w : 0;
		return;
	}
	if (op < 0x40 && (op & 7) < 4) {
		int is_cmp = (op & 0x38) == 0x38;
		int to_reg = op & 2;

		if (!is_cmp)
			e->writes = to_reg ? W(in->reg) : rm_w;
		return;
	}
	if (op < 0x40) { /* op al/eax, imm */
		if ((op & 0x38) != 0x38)
			e->writes = W(0);
		return;
	}
	if (op >= 0x50 && op <= 0x57) {
		e->writes = W(TM_REG_RSP);
		return;
	}
	if (op >= 0x58 && op <= 0x5f) {
		e->writes = W(TM_REG_RSP) | W((op & 7) | ((in->rex & 1) ? 8 : 0));
		return;
	}
	if ((op >= 0x70 && op <= 0x7f) || (op >= 0xe0 && op <= 0xe3) || op == 0xe8 ||
	    op == 0xe9 || op == 0xeb || op == 0xc2 || op == 0xc3 || op == 0xca ||
	    op == 0xcb || op == 0xcc || op == 0xcd || op == 0xcf) {
		e->branch = 1;
		return;
	}
	if (op >= 0xb0 && op <= 0xbf) {
		e->writes = W((op & 7) | ((in->rex & 1) ? 8 : 0));
		return;
	}
	if (op >= 0x91 && op <= 0x97) {
		e->writes = W(0) | W((op & 7) | ((in->rex & 1) ? 8 : 0));
		return;
	}
	if (op >= 0xa4 && op <= 0xaf) { /* string ops */
		e->writes = W(0) | W(1) | W(6) | W(7);
		return;
	}
	switch (op) {
	case 0x90:
		if (in->rex & 1)
			e->writes = W(0) | W(8);
		return;
	case 0x63: case 0x69: case 0x6b: case 0x8a: case 0x8d:
		e->writes = W(in->reg);
		return;
	case 0x8b:
		e->writes = W(in->reg);
		if (in->mod == 3 && (in->rex & 8) && !in->p66) {
			e->copy_from = in->rm;
			e->copy_to = in->reg;
		}
		return;
	case 0x88: case 0xc6: case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xd2:
	case 0xd3: case 0xc7: case 0x86: case 0x87:
		e->writes = rm_w | ((op == 0x86 || op == 0x87) ? W(in->reg) : 0);
		return;
	case 0x89:
		e->writes = rm_w;
		if (in->mod == 3 && (in->rex & 8) && !in->p66) {
			e->copy_from = in->reg;
			e->copy_to = in->rm;
		}
		return;
	case 0x80: case 0x81: case 0x83:
		if (sub != 7)
			e->writes = rm_w;
		return;
	case 0x84: case 0x85: case 0xa8: case 0xa9:
		return;
	case 0x98: case 0x99:
		e->writes = W(0) | W(2);
		return;
	case 0x68: case 0x6a:
		e->writes = W(TM_REG_RSP);
		return;
	case 0x8f:
		e->writes = W(TM_REG_RSP) | rm_w;
		return;
	case 0xc8: case 0xc9:
		e->writes = W(TM_REG_RSP) | W(TM_REG_RBP);
		return;
	case 0xf6: case 0xf7:
		if (sub >= 4)
			e->writes = W(0) | W(2);
		else if (sub >= 2)
			e->writes = rm_w;
		return;
	case 0xfe:
		e->writes = rm_w;
		return;
	case 0xff:
		if (sub <= 1)
			e->writes = rm_w;
		else if (sub <= 5)
			e->branch = 1;
		else if (sub == 6)
			e->writes = W(TM_REG_RSP);
		else
			e->unknown = 1;
		return;
	}
	e->unknown = 1;
}

/* Canonical multi-byte nops (x86_nops[] in the kernel), which uprobes emulate. */
static int is_canonical_nop(const uint8_t *c, size_t n)
{
	static const uint8_t nops[][9] = {
		{ 0x0f, 0x1f, 0x00 },
		{ 0x0f, 0x1f, 0x40, 0x00 },
		{ 0x0f, 0x1f, 0x44, 0x00, 0x00 },
		{ 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 },
		{ 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00 },
		{ 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00 },
	};
	/* Measured on 6.18 (tracefs uprobe, 50,000 hits): these cost what a
	 * push costs; the 9-byte `66 0f 1f 84 00..` is single-stepped (its
	 * cost is a mov's), so it is not listed. */
	static const uint8_t lens[] = { 3, 4, 5, 6, 7, 8 };

	for (size_t k = 0; k < sizeof(lens); k++)
		if (n == lens[k] && memcmp(c, nops[k], n) == 0)
			return 1;
	return 0;
}

/* The kernel emulates this instruction (no single-step). */
int tm_x86_uprobe_emulated(const uint8_t *c, const struct tm_x86_insn *in, char *name, size_t nlen)
{
	const char *cc[16] = { "jo", "jno", "jb", "jae", "je", "jne", "jbe", "ja",
			       "js", "jns", "jp", "jnp", "jl", "jge", "jle", "jg" };

	if (in->map == 0 && in->op >= 0x50 && in->op <= 0x57 && in->prefixes == 0 &&
	    (in->rex == 0 || in->rex == 0x41)) {
		snprintf(name, nlen, "push %%%s", tm_x86_reg_name((in->op & 7) | (in->rex ? 8 : 0)));
		return 1;
	}
	if (in->map == 0 && in->op == 0x90 && !(in->rex & 1) && !in->rep) { /* not pause */
		snprintf(name, nlen, "nop");
		return 1;
	}
	if (is_canonical_nop(c, in->len)) {
		snprintf(name, nlen, "nop%u", (unsigned)in->len);
		return 1;
	}
	if (in->p66)
		return 0; /* the kernel rejects branches with a 0x66 prefix */
	if (in->map == 0 && (in->op == 0xe9 || in->op == 0xeb)) {
		snprintf(name, nlen, "jmp");
		return 1;
	}
	if (in->map == 0 && in->op == 0xe8) {
		snprintf(name, nlen, "call");
		return 1;
	}
	if (in->map == 0 && in->op >= 0x70 && in->op <= 0x7f) {
		snprintf(name, nlen, "%s", cc[in->op & 15]);
		return 1;
	}
	if (in->map == 1 && in->op >= 0x80 && in->op <= 0x8f) {
		snprintf(name, nlen, "%s", cc[in->op & 15]);
		return 1;
	}
	return 0;
}

int tm_x86_is_nop5(const uint8_t *code, size_t len)
{
	static const uint8_t nop5[5] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };

	return len >= 5 && memcmp(code, nop5, 5) == 0;
}
