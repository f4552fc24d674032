/* Probe placement: the first instruction of a function that the kernel
 * emulates, decoded with x86_insn.h. Anything not understood ends the scan:
 * the answer is then the conservative one (offset 0, single-stepped). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "placement/probe_point.h"
#include "placement/x86_insn.h"

#define W(r) (1u << (r))

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
		struct tm_x86_insn in;
		struct tm_x86_effect e;
		char name[sizeof(pp->insn)];
		int args_ok = 1;

		if (tm_x86_decode(code + off, len - off, &in)) {
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
		/* Never the 5-byte nop: 6.18 turns a probed nop5 into a call of a
		 * trampoline page that fork does not copy, so a child forked
		 * after the first hit crashes there. It is a nop: go on past it. */
		if (!tm_x86_is_nop5(code + off, len - off) &&
		    tm_x86_uprobe_emulated(code + off, &in, name, sizeof(name))) {
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
		tm_x86_effect(&in, &e);
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
		struct tm_x86_insn in;

		if (tm_x86_decode(code, len, &in) == 0)
			pp->insn_len = in.len;
		snprintf(pp->insn, sizeof(pp->insn), "single-stepped");
	}
	return 0;
}
