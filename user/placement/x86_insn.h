/* The one x86-64 instruction decoder of tmbpf. Every file that reads machine
 * code (probe placement, guard detection, call sites, data references found
 * in code) uses it, so there is one definition of an instruction's length,
 * operands, control flow and effect on registers.
 *
 * Coverage: the legacy and REX encodings of the one-byte, 0f, 0f38 and 0f3a
 * maps, which is every instruction in CPython's and glibc's integer code.
 * VEX/EVEX (AVX), 3DNow! and encodings invalid in 64-bit mode are "not
 * decoded" (return -1): callers treat that as "stop here", never as a guess.
 * Lengths were checked against objdump on every instruction of six pyenv
 * libpythons and Debian's python3.11 (4.2 M instructions, 0 mismatches;
 * tests/unit/test_placement_probe_point.c keeps the tricky cases).
 * Pure code: no I/O. */
#ifndef TM_PLACEMENT_X86_INSN_H
#define TM_PLACEMENT_X86_INSN_H

#include <stddef.h>
#include <stdint.h>

/* Register numbers as in ModRM (rax 0 .. rdi 7, r8 8 .. r15 15). */
enum tm_x86_reg {
	TM_REG_RAX = 0, TM_REG_RCX, TM_REG_RDX, TM_REG_RBX, TM_REG_RSP, TM_REG_RBP,
	TM_REG_RSI, TM_REG_RDI, TM_REG_R8, TM_REG_R9, TM_REG_R10, TM_REG_R11,
	TM_REG_R12, TM_REG_R13, TM_REG_R14, TM_REG_R15,
};
#define TM_X86_NO_REG 0xff

struct tm_x86_insn {
	uint8_t len;
	uint8_t prefixes;     /* legacy prefixes (count) */
	uint8_t p66, p67;     /* operand / address size overrides present */
	uint8_t seg;          /* segment override byte (0x64 %fs, 0x65 %gs, ...), 0: none */
	uint8_t rep;          /* 0xf2 / 0xf3 prefix byte, 0: none */
	uint8_t rex;          /* REX byte, 0: none */
	uint8_t map;          /* 0: one byte, 1: 0f, 2: 0f38, 3: 0f3a */
	uint8_t op;           /* the opcode byte in its map */
	uint8_t has_modrm;
	uint8_t mod, reg, rm; /* reg and rm include REX.R / REX.B (rm: the register when mod == 3) */
	uint8_t modrm_at;     /* index of the ModRM byte */
	/* Memory operand (has_modrm && mod != 3): base + index * scale + disp,
	 * or rip + len + disp when rip_relative, or disp alone (absolute). */
	uint8_t base, index;  /* TM_X86_NO_REG when absent (include REX.B / REX.X) */
	uint8_t scale;        /* 1, 2, 4, 8 */
	uint8_t rip_relative;
	uint8_t disp_len, imm_len;
	int32_t disp;
	int64_t imm;          /* sign-extended immediate (rel8/rel32 for branches) */
};

/* Decode the instruction at code (len bytes available). 0, or -1 when it is
 * not decoded (see above) or runs past len. */
int tm_x86_decode(const uint8_t *code, size_t len, struct tm_x86_insn *in);

/* Its length, or 0 when not decoded. */
size_t tm_x86_insn_len(const uint8_t *code, size_t len);

/* Control flow of a decoded instruction. */
enum tm_x86_flow {
	TM_X86_NEXT = 0,      /* falls through */
	TM_X86_JMP,           /* jmp rel8/rel32: target in tm_x86_branch_target */
	TM_X86_JCC,           /* jcc rel8/rel32 (also jrcxz, loop) */
	TM_X86_CALL,          /* call rel32 */
	TM_X86_JMP_INDIRECT,  /* jmp *r/m */
	TM_X86_CALL_INDIRECT, /* call *r/m */
	TM_X86_RET,           /* ret, iret, int3, ud2, syscall...: the path ends here */
};
enum tm_x86_flow tm_x86_flow(const struct tm_x86_insn *in);

/* The target of a rel8/rel32 jmp, jcc or call at vaddr. 0, or -1 when in
 * has no relative target. */
int tm_x86_branch_target(const struct tm_x86_insn *in, uint64_t vaddr, uint64_t *target);

/* The data address a memory operand names: rip-relative (vaddr + len +
 * disp) or absolute (no base, no index: disp zero-extended as a link-time
 * address). 0, or -1 for any other operand. index_ok: accept an index
 * register (`mov table(,%idx,8)`), giving the table's address. */
int tm_x86_mem_target(const struct tm_x86_insn *in, uint64_t vaddr, int index_ok,
		      uint64_t *target);

/* What an instruction does to the general registers, for following where an
 * argument lives. Conservative: unknown semantics set unknown. */
struct tm_x86_effect {
	uint32_t writes;   /* bit per register whose old value is gone */
	int copy_from;     /* 64-bit mov reg->reg: source register, else -1 */
	int copy_to;
	int branch;        /* transfers control */
	int unknown;       /* semantics not modelled */
};
void tm_x86_effect(const struct tm_x86_insn *in, struct tm_x86_effect *e);

/* 1 when the kernel's uprobes emulate the instruction at code (decoded as
 * in) instead of single-stepping it (arch/x86/kernel/uprobes.c:
 * branch_setup_xol_ops, push_setup_xol_ops): push %reg (no prefix or REX
 * 0x41), nop and the canonical multi-byte nops, jmp/jcc rel, call rel32
 * (branches with 0x66 are refused). name gets a short mnemonic. */
int tm_x86_uprobe_emulated(const uint8_t *code, const struct tm_x86_insn *in, char *name,
			   size_t nlen);

/* 1 for the 5-byte nop `0f 1f 44 00 00`, which kernel 6.18 optimizes into a
 * call of its uprobe trampoline (the cheapest kernel entry a uprobe has). */
int tm_x86_is_nop5(const uint8_t *code, size_t len);

/* "rax" .. "r15". */
const char *tm_x86_reg_name(unsigned reg);

#endif
