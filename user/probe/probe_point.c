/* Probe placement: a small x86-64 decoder (lengths plus which general
 * registers an instruction writes), and the choice of the first instruction
 * the kernel emulates (arch/x86/kernel/uprobes.c: branch_setup_xol_ops,
 * push_setup_xol_ops). Anything not understood ends the scan: the answer is
 * then the conservative one (offset 0, single-stepped). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "probe/probe_point.h"

struct insn {
	size_t len;
	int p66, p67, prefixes; /* operand/address size overrides, legacy prefix count */
	uint8_t rex;
	int map;                /* 0: one byte, 1: 0f, 2: 0f38, 3: 0f3a */
	uint8_t op;
	int has_modrm;
	uint8_t mod, reg, rm;   /* reg and rm include REX.R / REX.B */
	size_t modrm_at;        /* index of the ModRM byte */
};

static const char *const reg_names[16] = {
	"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
};

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
static int map0_imm(const struct insn *in)
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

/* Decode one instruction; 0 on success, -1 when not understood. */
static int decode(const uint8_t *c, size_t len, struct insn *in)
{
	size_t i = 0;
	int imm;

	memset(in, 0, sizeof(*in));
	while (i < len && i < 14 && is_legacy_prefix(c[i])) {
		in->p66 |= c[i] == 0x66;
		in->p67 |= c[i] == 0x67;
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
		in->modrm_at = i;
		m = c[i++];
		in->mod = m >> 6;
		in->reg = ((m >> 3) & 7) | ((in->rex & 4) ? 8 : 0);
		in->rm = (m & 7) | ((in->rex & 1) ? 8 : 0);
		if (in->mod != 3) {
			int disp = in->mod == 1 ? 1 : in->mod == 2 ? 4 : 0;

			if ((m & 7) == 4) {
				if (i >= len)
					return -1;
				if (in->mod == 0 && (c[i] & 7) == 5)
					disp = 4;
				i++;
			} else if (in->mod == 0 && (m & 7) == 5) {
				disp = 4; /* rip-relative */
			}
			i += disp;
		}
	}
	if (in->map == 0)
		imm = map0_imm(in);
	else if (in->map == 1)
		imm = map1_imm(in->op);
	else
		imm = in->map == 3 ? 1 : 0;
	if (imm < 0)
		return -1;
	i += imm;
	if (i > len || i > 15)
		return -1;
	in->len = i;
	return 0;
}

size_t tm_x86_insn_len(const uint8_t *code, size_t len)
{
	struct insn in;

	return decode(code, len, &in) ? 0 : in.len;
}

/* What one instruction does to the state the scan follows. */
struct effect {
	uint32_t writes;   /* bit per general register written (its old value is gone) */
	int copy_from;     /* 64-bit mov reg->reg: source register, else -1 */
	int copy_to;
	int branch;        /* transfers control (the scan ends after it) */
	int unknown;       /* semantics not understood: stop before it */
};

#define W(r) (1u << (r))

static void effect_of(const struct insn *in, struct effect *e)
{
	uint8_t op = in->op;
	uint8_t sub = in->reg & 7;
	uint32_t rm_w = in->mod == 3 ? W(in->rm) : 0;

	memset(e, 0, sizeof(*e));
	e->copy_from = e->copy_to = -1;
	if (in->map == 1) {
		if (op >= 0x80 && op <= 0x8f) {
			e->branch = 1;
		} else if (op == 0x1f || op == 0x18 || op == 0x0d) {
			/* nop, prefetch: nothing */
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
		{ 0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00 },
	};
	static const uint8_t lens[] = { 3, 4, 5, 6, 7, 8, 9 };

	for (size_t k = 0; k < sizeof(lens); k++)
		if (n == lens[k] && memcmp(c, nops[k], n) == 0)
			return 1;
	return 0;
}

/* The kernel emulates this instruction (no single-step). */
static int is_emulated(const uint8_t *c, const struct insn *in, char *name, size_t nlen)
{
	const char *cc[16] = { "jo", "jno", "jb", "jae", "je", "jne", "jbe", "ja",
			       "js", "jns", "jp", "jnp", "jl", "jge", "jle", "jg" };

	if (in->map == 0 && in->op >= 0x50 && in->op <= 0x57 && in->prefixes == 0 &&
	    (in->rex == 0 || in->rex == 0x41)) {
		snprintf(name, nlen, "push %%%s", reg_names[(in->op & 7) | (in->rex ? 8 : 0)]);
		return 1;
	}
	if (in->map == 0 && in->op == 0x90 && !(in->rex & 1)) {
		snprintf(name, nlen, "nop");
		return 1;
	}
	if (is_canonical_nop(c, in->len)) {
		snprintf(name, nlen, "nop%zu", in->len);
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

static const uint8_t sysv_args[TM_PROBE_MAX_ARGS] = {
	TM_REG_RDI, TM_REG_RSI, TM_REG_RDX, TM_REG_RCX, TM_REG_R8, TM_REG_R9,
};

int tm_probe_point_find(const uint8_t *code, size_t len, unsigned arg_mask, int need_return,
			struct tm_probe_point *pp)
{
	uint32_t holds[TM_PROBE_MAX_ARGS]; /* registers holding argument i's entry value */
	int rsp_moved = 0;
	size_t off = 0;

	if (!code || !pp || arg_mask >= (1u << TM_PROBE_MAX_ARGS))
		return -EINVAL;
	memset(pp, 0, sizeof(*pp));
	for (unsigned a = 0; a < TM_PROBE_MAX_ARGS; a++) {
		pp->arg_reg[a] = sysv_args[a];
		holds[a] = W(sysv_args[a]);
	}
	if (len > TM_PROBE_SCAN_BYTES)
		len = TM_PROBE_SCAN_BYTES;
	snprintf(pp->why, sizeof(pp->why), "no emulated instruction in the first %zu bytes", len);
	while (off < len) {
		struct insn in;
		struct effect e;
		char name[sizeof(pp->insn)];
		int args_ok = 1;

		if (decode(code + off, len - off, &in)) {
			snprintf(pp->why, sizeof(pp->why), "undecoded instruction at +%zu", off);
			break;
		}
		for (unsigned a = 0; a < TM_PROBE_MAX_ARGS; a++)
			if (arg_mask & (1u << a))
				args_ok &= holds[a] != 0;
		if (!args_ok) {
			snprintf(pp->why, sizeof(pp->why), "arguments overwritten before +%zu", off);
			break;
		}
		if (need_return && rsp_moved) {
			snprintf(pp->why, sizeof(pp->why), "%%rsp changes before +%zu", off);
			break;
		}
		if (is_emulated(code + off, &in, name, sizeof(name))) {
			pp->offset = off;
			pp->emulated = 1;
			pp->insn_len = in.len;
			snprintf(pp->insn, sizeof(pp->insn), "%s", name);
			pp->why[0] = '\0';
			for (unsigned a = 0; a < TM_PROBE_MAX_ARGS; a++)
				for (int r = 0; r < 16; r++)
					if (holds[a] & W(r)) {
						/* Prefer the entry register when it still holds the value. */
						pp->arg_reg[a] = (holds[a] & W(sysv_args[a])) ? sysv_args[a] : r;
						break;
					}
			return 0;
		}
		effect_of(&in, &e);
		if (e.unknown) {
			snprintf(pp->why, sizeof(pp->why), "unmodelled instruction at +%zu", off);
			break;
		}
		if (e.branch) {
			snprintf(pp->why, sizeof(pp->why), "non-emulated branch at +%zu", off);
			break;
		}
		if (e.writes & W(TM_REG_RSP))
			rsp_moved = 1;
		for (unsigned a = 0; a < TM_PROBE_MAX_ARGS; a++) {
			int had = e.copy_from >= 0 && (holds[a] & W(e.copy_from));

			holds[a] &= ~e.writes;
			if (had)
				holds[a] |= W(e.copy_to);
		}
		off += in.len;
	}
	/* Fallback: the entry, single-stepped, arguments in their ABI registers. */
	pp->offset = 0;
	pp->emulated = 0;
	for (unsigned a = 0; a < TM_PROBE_MAX_ARGS; a++)
		pp->arg_reg[a] = sysv_args[a];
	{
		struct insn in;

		if (decode(code, len, &in) == 0)
			pp->insn_len = in.len;
		snprintf(pp->insn, sizeof(pp->insn), "single-stepped");
	}
	return 0;
}
