/* Probe placement on the real first bytes of CPython's allocator functions
 * (objdump of pyenv 3.8.18, 3.9.18, 3.13.0 and Debian's LTO python3.11),
 * plus the x86-64 length decoder on instructions with tricky encodings. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "placement/probe_point.h"

#define MALLOC_ARGS (1u << 1)
#define TWO_ARGS ((1u << 1) | (1u << 2))

struct placement {
	const char *name;
	uint8_t code[48];
	size_t len;
	unsigned args;
	int ret;
	uint32_t want_off;
	int want_emulated;
	int want_reg1, want_reg2; /* registers of arguments 1 and 2 at the probe, -1: any */
};

static const struct placement cases[] = {
	{ "3.8 _PyObject_Malloc: push %rbx at +0",
	  { 0x53, 0x48, 0x89, 0xf7, 0x48, 0x89, 0xf3, 0xe8, 0xd4, 0xfa, 0xff, 0xff }, 12,
	  MALLOC_ARGS, 1, 0, 1, TM_REG_RSI, -1 },
	{ "3.9 _PyObject_Malloc: lea, then push %rbx at +4",
	  { 0x48, 0x8d, 0x46, 0xff, 0x53, 0x48, 0x89, 0xf3, 0x48, 0x3d, 0xff, 0x01, 0x00, 0x00,
	    0x77, 0x60 }, 16,
	  MALLOC_ARGS, 1, 4, 1, TM_REG_RSI, -1 },
	{ "3.13 _PyObject_Malloc: push %rbp at +0",
	  { 0x55, 0x53, 0x48, 0x89, 0xf3, 0x48, 0x83, 0xec, 0x08 }, 9,
	  MALLOC_ARGS, 1, 0, 1, TM_REG_RSI, -1 },
	{ "_PyObject_Free: test, je at +3",
	  { 0x48, 0x85, 0xf6, 0x0f, 0x84, 0xcf, 0x01, 0x00, 0x00, 0x48, 0x89, 0xf0 }, 12,
	  MALLOC_ARGS, 0, 3, 1, TM_REG_RSI, -1 },
	{ "_PyMem_RawMalloc: cmovne keeps %rsi, tail jmp at +15",
	  { 0x48, 0x85, 0xf6, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x48, 0x0f, 0x45, 0xc6, 0x48, 0x89,
	    0xc7, 0xe9, 0x2c, 0xb2, 0xf8, 0xff }, 20,
	  MALLOC_ARGS, 1, 15, 1, TM_REG_RSI, -1 },
	{ "_PyMem_RawCalloc: arguments moved to %rdi/%rsi, je at +9",
	  { 0x48, 0x89, 0xf7, 0x48, 0x89, 0xd6, 0x48, 0x85, 0xff, 0x74, 0x0d, 0x48, 0x85, 0xd2 },
	  14, TWO_ARGS, 1, 9, 1, TM_REG_RDI, TM_REG_RDX },
	{ "_PyMem_RawRealloc: ptr in %rdi, size in %rdx, jmp at +18",
	  { 0x48, 0x85, 0xd2, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x48, 0x89, 0xf7, 0x48, 0x0f, 0x45,
	    0xc2, 0x48, 0x89, 0xc6, 0xe9, 0x99, 0xa6, 0xf8, 0xff }, 23,
	  TWO_ARGS, 1, 18, 1, TM_REG_RDI, TM_REG_RDX },
	{ "_PyMem_RawFree: mov %rsi,%rdi, jmp at +3 (ptr still in %rsi)",
	  { 0x48, 0x89, 0xf7, 0xe9, 0xc0, 0xb2, 0xf8, 0xff }, 8,
	  MALLOC_ARGS, 0, 3, 1, TM_REG_RSI, -1 },
	{ "3.9 PyTraceMalloc_Untrack: rip-relative mov, je at +12",
	  { 0x48, 0x8b, 0x05, 0xa1, 0x2a, 0x0f, 0x00, 0x8b, 0x40, 0x04, 0x85, 0xc0, 0x0f, 0x84,
	    0x86, 0x00, 0x00, 0x00 }, 18,
	  3u, 0, 12, 1, TM_REG_RSI, -1 },
	{ "3.13 Py_FinalizeEx: first branch jne at +15",
	  { 0x48, 0x8b, 0x05, 0x79, 0xac, 0x25, 0x00, 0x8b, 0x80, 0x58, 0x02, 0x00, 0x00, 0x85,
	    0xc0, 0x75, 0x07, 0x31, 0xc0, 0xc3 }, 20,
	  0, 0, 15, 1, -1, -1 },
	{ "_PyMem_DebugRawCalloc: imul overwrites nelem: fallback +0",
	  { 0x48, 0xb8, 0xe7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x48, 0x0f, 0xaf, 0xf2,
	    0x48, 0x39, 0xf0, 0x72, 0x6d }, 19,
	  TWO_ARGS, 1, 0, 0, TM_REG_RSI, TM_REG_RDX },
	{ "Debian 3.11 LTO _PyObject_Malloc: ja after sub %rsp: no return probe there",
	  { 0x48, 0x8d, 0x46, 0xff, 0x48, 0x83, 0xec, 0x18, 0x48, 0x3d, 0xff, 0x01, 0x00, 0x00,
	    0x0f, 0x87, 0xca, 0x00, 0x00, 0x00 }, 20,
	  MALLOC_ARGS, 1, 0, 0, TM_REG_RSI, -1 },
	{ "Debian 3.11 LTO _PyObject_Malloc, entry only: ja at +14",
	  { 0x48, 0x8d, 0x46, 0xff, 0x48, 0x83, 0xec, 0x18, 0x48, 0x3d, 0xff, 0x01, 0x00, 0x00,
	    0x0f, 0x87, 0xca, 0x00, 0x00, 0x00 }, 20,
	  MALLOC_ARGS, 0, 14, 1, TM_REG_RSI, -1 },
	{ "3.13 __tls_get_addr call with 0x66 prefixes is not emulated",
	  { 0x66, 0x48, 0x8d, 0x3d, 0x4f, 0xf8, 0x37, 0x00, 0x66, 0x66, 0x48, 0xe8, 0xb7, 0xcc,
	    0xf1, 0xff }, 16,
	  0, 0, 0, 0, -1, -1 },
	{ "nop5 is never the probe (6.18 optimizes it into a call forks lose): push after it",
	  { 0x0f, 0x1f, 0x44, 0x00, 0x00, 0x55 }, 6,
	  MALLOC_ARGS, 1, 5, 1, TM_REG_RSI, -1 },
	{ "canonical nop7 is emulated",
	  { 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00, 0x55 }, 8,
	  MALLOC_ARGS, 1, 0, 1, TM_REG_RSI, -1 },
	{ "nop9 (66 0f 1f 84) is single-stepped on 6.18: push after it",
	  { 0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00, 0x55 }, 10,
	  MALLOC_ARGS, 1, 9, 1, TM_REG_RSI, -1 },
	/* Debian sid (gcc 16, -fcf-protection): every function opens with endbr64. */
	{ "sid 3.13 PyTraceMalloc_Track: endbr64, push %r15 at +4",
	  { 0xf3, 0x0f, 0x1e, 0xfa, 0x41, 0x57, 0x49, 0x89, 0xf7 }, 9,
	  7u, 0, 4, 1, TM_REG_RSI, TM_REG_RDX },
	{ "sid 3.14 _Py_NewReference: endbr64, rip load, store, test, jne at +0x15",
	  { 0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x8b, 0x05, 0x65, 0x31, 0x4b, 0x00, 0x48, 0xc7, 0x07,
	    0x01, 0x00, 0x00, 0x00, 0x48, 0x85, 0xc0, 0x75, 0x01, 0xc3 }, 24,
	  1u, 0, 0x15, 1, -1, -1 },
	{ "sid 3.13 _PyMem_RawCalloc: endbr64, moves, je at +0xd",
	  { 0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x89, 0xf7, 0x48, 0x89, 0xd6, 0x48, 0x85, 0xff, 0x74,
	    0x0a, 0x48, 0x85, 0xd2 }, 18,
	  TWO_ARGS, 1, 0xd, 1, TM_REG_RDI, TM_REG_RDX },
	{ "sid 3.14 _PyObject_Calloc: endbr64, sub %rsp: no return probe (a stub carries it)",
	  { 0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x83, 0xec, 0x28, 0x48, 0x89, 0xd1 }, 11,
	  TWO_ARGS, 1, 0, 0, TM_REG_RSI, TM_REG_RDX },
	{ "push %r12 (REX.B 0x41) is emulated",
	  { 0x41, 0x54, 0x55 }, 3,
	  MALLOC_ARGS, 1, 0, 1, TM_REG_RSI, -1 },
	{ "xor %esi,%esi kills the argument: fallback",
	  { 0x31, 0xf6, 0x55 }, 3,
	  MALLOC_ARGS, 0, 0, 0, TM_REG_RSI, -1 },
};

static void check_placement(const struct placement *c)
{
	struct tm_probe_point pp;
	int rc = tm_probe_point_find(c->code, c->len, c->args, c->ret, &pp);
	int regs_ok = (c->want_reg1 < 0 || pp.arg_reg[1] == c->want_reg1) &&
		      (c->want_reg2 < 0 || pp.arg_reg[2] == c->want_reg2);

	CHECK(rc == 0 && pp.offset == c->want_off && (int)pp.emulated == c->want_emulated && regs_ok,
	      "%s (got +%u %s, %s, args in %u/%u%s%s)", c->name, pp.offset, pp.insn,
	      pp.emulated ? "emulated" : "single-stepped", pp.arg_reg[1], pp.arg_reg[2],
	      pp.why[0] ? ": " : "", pp.why);
}

struct length_case {
	const char *name;
	uint8_t code[16];
	size_t len, want;
};

static const struct length_case lengths[] = {
	{ "rex.W call rel32 with two 0x66", { 0x66, 0x66, 0x48, 0xe8, 1, 2, 3, 4 }, 8, 8 },
	{ "movabs imm64", { 0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8 }, 10, 10 },
	{ "mov $imm32,%eax", { 0xb8, 1, 0, 0, 0 }, 5, 5 },
	{ "mov $imm16,%ax", { 0x66, 0xb8, 1, 0 }, 4, 4 },
	{ "rip-relative mov", { 0x48, 0x8b, 0x05, 1, 2, 3, 4 }, 7, 7 },
	{ "SIB + disp32 base rbp-less", { 0x8b, 0x04, 0x25, 1, 2, 3, 4 }, 7, 7 },
	{ "cmpq $imm8,disp8(%rsp)", { 0x48, 0x83, 0x7c, 0x24, 0x08, 0x00 }, 6, 6 },
	{ "testb $imm8,(%rdi) (f6 /0 imm8)", { 0xf6, 0x07, 0x01 }, 3, 3 },
	{ "negq %rax (f7 /3 no imm)", { 0x48, 0xf7, 0xd8 }, 3, 3 },
	{ "0f 3a with imm8", { 0x66, 0x0f, 0x3a, 0x0f, 0xc1, 0x08 }, 6, 6 },
	{ "jcc rel32", { 0x0f, 0x84, 1, 2, 3, 4 }, 6, 6 },
	{ "nopw cs:0(%rax,%rax)", { 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0 }, 10, 10 },
	{ "truncated instruction", { 0x48, 0x8b, 0x05, 1 }, 4, 0 },
	{ "VEX is not decoded", { 0xc5, 0xf9, 0x6f, 0xc1 }, 4, 0 },
};

int main(void)
{
	struct tm_probe_point pp;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_placement(&cases[i]);
	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		size_t got = tm_x86_insn_len(lengths[i].code, lengths[i].len);

		CHECK(got == lengths[i].want, "length: %s (got %zu, want %zu)", lengths[i].name, got,
		      lengths[i].want);
	}
	CHECK(tm_probe_point_find((const uint8_t *)"\x55", 1, 1u << 6, 0, &pp) == -EINVAL,
	      "argument mask beyond 6 registers is rejected");
	return CHECK_DONE();
}
