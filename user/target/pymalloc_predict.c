/* Finding pymalloc's usedpools[] (pymalloc_predict.h). */
#include "target/pymalloc_predict.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "placement/code_refs.h"
#include "placement/elf_file.h"
#include "target/layouts.h"

#define NCLASS 32 /* size classes of 16 bytes up to 512 */

/* offsetof(PyInterpreterState, obmalloc), x86-64 release builds: 3.12.x
 * embeds struct _obmalloc_state there, 3.13+ holds a pointer to it (read
 * from pyenv 3.12.1 and 3.13.0 _PyObject_Malloc, offsetof() against the
 * 3.13.18/3.14.10/3.15.2 headers; checked at run time). Debug builds have
 * it 8 bytes further (PyInterpreterState grows before it). */
#define INTERP_OBMALLOC_312 0xf78
static const struct { int minor; uint32_t off; } interp_obmalloc[] = {
	{ 13, 0x2a30 }, { 14, 0x2a98 }, { 15, 0x2a80 },
};
#define DEBUG_BUILD_SHIFT 8

int tm_pymalloc_usedpools_valid(const uint64_t *u, uint64_t addr)
{
	for (int i = 0; i < NCLASS; i++) {
		uint64_t head = addr + 16 * (uint64_t)i - 16;

		if (u[2 * i] == head && u[2 * i + 1] == head)
			continue;
		if (!u[2 * i] || (u[2 * i] & 0xfff) || !u[2 * i + 1] || (u[2 * i + 1] & 0xfff))
			return 0;
	}
	return 1;
}

/* The pool header: prevpool +24, szidx +36. */
struct pool_head {
	uint64_t ref, freeblock, nextpool, prevpool;
	uint32_t arenaindex, szidx;
};

/* The array check, then every class's first pool: it must link back to the
 * list head (prevpool) and be of that size class (szidx). A long-running
 * process may have no empty class left, so the pools prove it. */
static int check(const struct tm_target *t, uint64_t addr)
{
	uint64_t u[2 * NCLASS];

	if (!addr || tm_target_read(t->pid, addr, u, sizeof(u)) ||
	    !tm_pymalloc_usedpools_valid(u, addr))
		return 0;
	for (int i = 0; i < NCLASS; i++) {
		uint64_t head = addr + 16 * (uint64_t)i - 16;
		struct pool_head ph;

		if (u[2 * i] == head)
			continue;
		if (tm_target_read(t->pid, u[2 * i], &ph, sizeof(ph)) || ph.prevpool != head ||
		    ph.szidx != (uint32_t)i)
			return 0;
	}
	return 1;
}

/* Stripped 3.8-3.11: usedpools is referenced near the start of the malloc
 * implementation (code_refs.h); every candidate must pass the memory check. */
static int from_code(const struct tm_target *t, struct tm_elf *e, uint64_t malloc_impl,
		     uint64_t *addr)
{
	uint64_t cand[64];
	int n = tm_code_usedpools_candidates(e, malloc_impl - t->load_bias, cand, 64);

	for (int i = 0; i < n; i++) {
		if (check(t, cand[i] + t->load_bias)) {
			*addr = cand[i] + t->load_bias;
			return 0;
		}
	}
	return -ENOENT;
}

int tm_pymalloc_find(const struct tm_target *t, uint64_t malloc_impl,
		     struct tm_pymalloc_state *st, char *why, size_t whylen)
{
	const struct tm_layout *l = t->layout.minor ? &t->layout : NULL;
	struct tm_elf *e = NULL;
	struct tm_elf_sym sym;
	uint64_t a = 0;
	int err = -ENOENT;

	memset(st, 0, sizeof(*st));
	st->ts_interp = TM_NO_OFFSET;
	if (!l || tm_target_read(t->pid, t->runtime_addr + l->rt_interpreters_head + 8,
				 &st->main_interp, sizeof(st->main_interp))) {
		snprintf(why, whylen, "cannot read _PyRuntime.interpreters.main");
		return -ENOENT;
	}
	/* 3.12+ keep usedpools in the interpreter; 3.8-3.11's static array is
	 * valid from the start (statically initialised), before Py_Initialize. */
	if (!st->main_interp && t->minor >= 12) {
		snprintf(why, whylen, "no interpreter yet");
		return -EAGAIN;
	}
	if (t->minor >= 12) {
		st->ts_interp = (uint16_t)l->ts_interp;
		if (t->minor == 12)
			a = st->main_interp + INTERP_OBMALLOC_312;
		for (size_t i = 0; i < sizeof(interp_obmalloc) / sizeof(interp_obmalloc[0]); i++) {
			uint64_t off = interp_obmalloc[i].off + (t->debug_build ? DEBUG_BUILD_SHIFT : 0);

			if (interp_obmalloc[i].minor != t->minor ||
			    tm_target_read(t->pid, st->main_interp + off, &a, sizeof(a)))
				continue;
		}
		if (check(t, a)) {
			snprintf(st->how, sizeof(st->how), "interp->obmalloc (3.%d)", t->minor);
			err = 0;
		} else {
			/* Set a little after the interpreter appears: ask again
			 * (the caller gives up after a while). */
			snprintf(why, whylen, "interp->obmalloc of 3.%d not where expected", t->minor);
			err = -EAGAIN;
		}
		goto out;
	}
	e = tm_elf_open(t->elf_path);
	if (!e) {
		snprintf(why, whylen, "cannot open %s", t->elf_path);
		goto out;
	}
	if (tm_elf_symbol(e, "usedpools", &sym) == 0 && check(t, sym.value + t->load_bias)) {
		a = sym.value + t->load_bias;
		snprintf(st->how, sizeof(st->how), "symbol usedpools");
		err = 0;
	} else if (from_code(t, e, malloc_impl, &a) == 0) {
		snprintf(st->how, sizeof(st->how), "referenced by the malloc implementation");
		err = 0;
	} else {
		snprintf(why, whylen, "usedpools not found");
	}
out:
	tm_elf_close(e);
	if (!err)
		st->usedpools = a;
	return err;
}
