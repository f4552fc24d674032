/* Redirect mode: full coverage on builds that inline the allocator
 * (devirt.h), with no restart and nothing injected but 8-byte pointers.
 *
 * Every inlined call site first checks `ptr == impl`. tm_redirect_apply()
 * writes, into the target's 12 live allocator pointers (raw/mem/obj x
 * malloc/calloc/realloc/free), the address of a stub that only jumps to the
 * same implementation. Every check then fails and every call goes
 * `call *ptr` -> stub -> impl, through code that uprobes can see. The new
 * pointer means exactly what the old one meant, so the process keeps running
 * while the 8-byte aligned words are written through /proc/PID/mem.
 *
 * Stubs, per distinct implementation:
 *  1. an existing `jmp rel32 <impl>` in the file's text (Debian python3.11:
 *     three for _PyObject_Malloc). Nothing is written. When devirt proved it an
 *     instruction boundary it may carry a uprobe and a uretprobe: at the jmp,
 *     (%rsp) still holds the caller's return address and the arguments are
 *     untouched, and the kernel emulates jmp rel32 (no single-step).
 *  2. otherwise a 5-byte `jmp rel32 <impl>` written into the zero padding after
 *     the last executable segment (bytes checked zero in the file and in the
 *     process, or already our own stub from an earlier run). The process gets a
 *     private copy of that page. Never probe these stubs: a uprobe decodes the
 *     file's bytes (zeros). Probe the implementation instead.
 *  Before 2, a nop stub (devirt.h): padding between two functions where a
 *     nop the kernel emulates is followed by room for a jmp; the 5-byte
 *     `jmp rel32 <impl>` is written right after the nop (those padding bytes
 *     checked to be the file's nops in the process, or already our jmp). The
 *     pointer names the nop: a uprobe there emulates the FILE's nop, so the
 *     stub carries entry and return probes like an existing jmp, which an
 *     implementation whose prologue moves %rsp first cannot.
 * Stubs are never removed: a thread may hold a loaded pointer for a while.
 *
 * Safety rules:
 *  - Only a process whose 12 pointers and ctx values all equal the file's
 *    initializers is redirected. Pointers already hooked (tracemalloc, memray,
 *    PYTHONMALLOC=*_debug or malloc) are refused with -EBUSY: trace the
 *    functions they name (they are out of line already). A pointer that
 *    holds the very stub this redirect would write (left by a tmbpf that
 *    died) counts as default: it is adopted and restored at the end.
 *  - Each pointer is re-read just before its write and skipped (-EBUSY, rolled
 *    back) if it changed.
 *  - tm_redirect_restore() writes a pointer back only while it still equals
 *    our stub; anything else (someone hooked it meanwhile) is left alone.
 *  - If tmbpf dies without restoring, the stubs keep jumping to the real
 *    implementation: the process only loses the inlined fast path.
 *
 * How capture uses it (tm_capture_add_target):
 *    tm_devirt_scan(t, &dv);                          coverage = dv.coverage
 *    if (dv.coverage == TM_COVERAGE_PARTIAL && !no_redirect) {
 *        if (tm_redirect_apply(t, &dv, &rd, err, n) == 0)
 *            fprintf(stderr, "tmbpf: %s\n", rd.summary);   announce it
 *        else
 *            fprintf(stderr, "tmbpf: %s\n", err);          stays PARTIAL
 *    }
 *    for each domain d, fn f: attach to rd.probe[d][f] when rd.applied,
 *        else to dv.effective[d].*_fn (never to t->alloc[]: it may hold a
 *        padding stub left by an earlier run):
 *        entry uprobe at .entry (choose the instruction with probe_point.h
 *        when .entry_is_impl, the stub is already an emulated jmp),
 *        uretprobe at .ret for malloc/calloc/realloc (a stub or the impl).
 *    ...
 *    tm_redirect_restore(&rd, err, n);  on detach (before closing the links,
 *        so no call is missed between the two), Ctrl-C, target exit (harmless).
 * Note: the probes of one implementation are shared by the domains that name
 * it (mem and obj both name pymalloc); nested calls (raw under obj, malloc
 * inside realloc through the same stubs) still need capture's depth guard. */
#ifndef TM_PATCH_REDIRECT_H
#define TM_PATCH_REDIRECT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "placement/devirt.h"
#include "target/target.h"

struct tm_redirect_slot {
	uint64_t addr;     /* absolute address of the pointer in the target */
	uint64_t orig;     /* the implementation it held */
	uint64_t stub;     /* what tm_redirect_apply wrote */
	int written;       /* 1 while the slot holds our stub (as far as we know) */
};

/* Where capture attaches for one (domain, function) while redirected. */
struct tm_redirect_probe {
	uint64_t impl;     /* the out-of-line implementation every call reaches */
	uint64_t entry;    /* entry uprobe: the stub when probe_ok, else impl */
	uint64_t ret;      /* uretprobe: same address as entry */
	int entry_is_impl; /* 1: entry == impl, pick the emulated instruction (probe_point.h) */
	int via_stub;      /* 1: entry is a stub that carries the probes: an existing jmp of
			    * the file, or a nop stub */
	int nop_stub;      /* 1: that stub is a padding nop followed by our jmp (devirt.h) */
};

struct tm_redirect {
	pid_t pid;
	int applied;       /* 1 after a successful apply, until restore */
	unsigned nslots;
	struct tm_redirect_slot slot[TM_NDOMAINS * TM_NFNS]; /* domain-major, fn-minor */
	struct tm_redirect_probe probe[TM_NDOMAINS][TM_NFNS];
	unsigned existing_stubs; /* implementations served by a jmp already in the file */
	unsigned written_stubs;  /* implementations served by a stub in the padding */
	unsigned nop_stubs;      /* implementations served by a jmp after a padding nop */
	unsigned adopted;        /* pointers that already held our stub (earlier tmbpf died) */
	char summary[256];       /* one line for stderr, e.g. "redirected 12 allocator
				  * pointers of PID 42 to jmp stubs (1 existing, 7 in padding)" */
};

/* Redirect the live pointers of t->pid (see the rules above). d comes from
 * tm_devirt_scan(t, d) on the same target; on success d->coverage becomes
 * TM_COVERAGE_REDIRECT and t->alloc[] is set to the implementations (what
 * the pointers mean; on failure it holds the values just read). Never probe
 * pointer values read from the process while redirected: padding stubs must
 * not carry a uprobe. Returns 0, or a negative
 * errno with one line in err:
 *   -EBUSY   pointers not the defaults (already hooked), or changed meanwhile
 *   -ENOSPC  no jmp in the file and no zero padding for a stub
 *   -EPERM/-EACCES  /proc/PID/mem not writable: run as root
 *   -ESRCH   the process is gone
 * On failure nothing stays redirected (what was written is rolled back). */
int tm_redirect_apply(struct tm_target *t, struct tm_devirt *d, struct tm_redirect *r, char *err,
		      size_t errlen);

/* Put back every pointer that still holds our stub. Safe to call twice, or
 * on a redirect that was never applied. Returns 0, -EBUSY when some pointer
 * had been changed by someone else (left alone; err says which), -ESRCH when
 * the process is gone (nothing to do). */
int tm_redirect_restore(struct tm_redirect *r, char *err, size_t errlen);

#endif
