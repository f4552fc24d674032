/* The stub of a traced process: one kernel entry per allocation event.
 *
 * tmbpf puts a small allocator hook of its own (stub/stub.S) into the
 * target and points the allocator pointers at it: the 12 of
 * PyMem_SetAllocator's three domains and, for the re-attribution of
 * objects taken from free lists, libpython's GOT entries of
 * _Py_NewReference (3.9-3.12, shared builds) or the ref tracer
 * (_PyRuntime.ref_tracer, 3.13+). Each entry calls the real function and
 * reports at a 5-byte nop that carries a uprobe (optimized by the kernel
 * into a call: ~1.3 us here against ~5.6 us for an emulated push), so
 * every event costs one kernel entry and no return probe; mem/obj frees
 * are reported 16 at a time (the quarantine, stub_abi.h).
 *
 * Lifecycle (capture drives it):
 *   tm_stub_prepare()  reuse the area an earlier tmbpf left, or inject one
 *                      (inject.h), write code and constants into its memfd,
 *                      initialise its state (guard off): nothing calls it yet
 *   attach uprobes at tm_stub probes[] (path code_path, file offsets)
 *   tm_stub_arm()      guard on, then each pointer re-read and redirected
 *   tm_stub_disarm()   each pointer put back while it still holds our entry,
 *                      guard DRAIN (the quarantine is freed at the next free,
 *                      unreported), then the probes may go
 * Announced on stderr by the caller (tm_stub.summary).
 *
 * Safety, whatever happens to tmbpf (SIGKILL included): the injection
 * completes or leaves nothing (inject.h); a redirected pointer always
 * names code that does what the real function does, probed or not: a
 * probe that is gone leaves a nop; the state is MADV_WIPEONFORK, so a
 * forked child passes straight through (its copy of an optimized probe has
 * no trampoline); the area is never unmapped (a thread may be inside).
 * Two sessions never share a stub: the state names its session (pid and
 * start time), and a live one makes tm_stub_prepare refuse. */
#ifndef TM_PATCH_STUB_H
#define TM_PATCH_STUB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "patch/inject.h"
#include "target/target.h"

enum tm_stub_hook {
	TM_HOOK_NONE = 0,
	TM_HOOK_GOT,    /* libpython's GOT entries of _Py_NewReference(+NoTotal) */
	TM_HOOK_TRACER, /* _PyRuntime.ref_tracer.tracer_func */
};

/* One pointer the stub took over. */
struct tm_stub_slot {
	uint64_t addr;      /* where the pointer lives in the target */
	uint64_t orig;      /* what it stands for (what the stub calls) */
	uint64_t seen;      /* what it held when planned (orig, or an earlier stub's entry) */
	uint64_t entry;     /* offset of the stub entry written there */
	int written;        /* 1 while it holds ours, as far as we know */
	char what[24];      /* "obj.malloc", "_Py_NewReference" */
};

#define TM_STUB_MAX_SLOTS 16
#define TM_STUB_MAX_PROBES 24

struct tm_stub_probe {
	uint64_t offset;    /* in the code file (the memfd): uprobe offset */
	uint32_t event;     /* TM_STUB_* of bpf/tmbpf.h */
};

struct tm_stub {
	pid_t pid;
	struct tm_inject_area area;
	int adopted;        /* an area left by an earlier tmbpf was reused */
	uint64_t old_base;  /* an earlier area not reused (pointers into it are replaced) */
	int armed;
	int mem_fd;         /* /proc/PID/mem opened when arming, -1: none. Bound to that
			     * address space: after an exec (or in a reused PID) its reads
			     * and writes fail instead of landing in another image */
	enum tm_stub_hook newref_hook;
	char code_path[96]; /* what uprobes attach to: /proc/PID/map_files/... */
	struct tm_stub_probe probes[TM_STUB_MAX_PROBES];
	size_t nprobes;
	struct tm_stub_slot slot[TM_STUB_MAX_SLOTS];
	size_t nslots;
	uint64_t state_addr; /* absolute address of the state (BPF reads the quarantine there) */
	uint64_t state_len;
	uint64_t sample_bytes; /* sampled mode's mean interval, 0: full mode */
	uint64_t rng;          /* sampled mode: the seed of the stub's generator */
	int raw_frees_only;    /* sampled mode: mem/obj frees left alone, their sampled blocks
				* asked for at STUB_SAMPLE_FLOOR (stub_abi.h) */
	char summary[320];  /* one line for stderr */
};

struct tm_stub_opts {
	int newref;         /* also take over _Py_NewReference / the ref tracer when possible
			     * (full mode only) */
	uint64_t sample_bytes; /* > 0: sampled mode, one sample per this many bytes on average */
	uint32_t sample_slots; /* sampled blocks the stub's set holds (a power of two; 0: 2^16) */
	const struct tm_allocator *defaults; /* the build's initial allocator structs (devirt.h's
					      * file_alloc[TM_NDOMAINS]), NULL if unknown: sampled
					      * mode leaves pymalloc's frees alone when they are */
};

/* Make the stub ready in t's process (not armed). On error nothing of it
 * is in use; -EBUSY: another live tmbpf session owns the stub; -EPERM:
 * ptrace or seccomp refused; -ENOTSUP: this build cannot take it (err
 * says why; capture then uses entry probes). */
int tm_stub_prepare(const struct tm_target *t, pid_t traced_tid, const struct tm_stub_opts *o,
		    struct tm_stub *s, char *err, size_t errlen);

/* Turn it on: the guard, then the pointers (each re-read just before its
 * write; one that changed since prepare is left alone and reported in
 * err, with -EBUSY, the others still redirected). */
int tm_stub_arm(struct tm_stub *s, char *err, size_t errlen);

/* Put the pointers back (those that still hold our entries), then the
 * guard to DRAIN, through the descriptor opened when arming (then closed).
 * Safe twice. -EBUSY when some pointer had been changed by
 * someone else (left as is: it wraps our entry, which stays valid). */
int tm_stub_disarm(struct tm_stub *s, char *err, size_t errlen);

/* Armed: each pointer the target put back to what the stub replaced (a
 * PyMem_SetAllocator() of a copy saved before the stub came) is taken
 * again. Returns how many were (err names the first; what they carried
 * meanwhile went unseen), or a negative errno. One pread per pointer, on
 * the descriptor opened when arming. */
int tm_stub_retake(struct tm_stub *s, char *err, size_t errlen);

/* Sampled mode: samples the stub could not take (its set was full). */
int tm_stub_samples_lost(const struct tm_stub *s, uint64_t *n);

/* Entry probes in a process an earlier tmbpf left its stub in: -EBUSY
 * (err says who) when that session still runs; else each of t's allocator
 * functions that names a stub entry is replaced by the real function it
 * calls (those are probed) and the stub is put in DRAIN, passing every call
 * through. Returns how many were replaced. */
int tm_stub_pass_leftover(struct tm_target *t, char *err, size_t errlen);

/* The quarantine's current entries (frees not yet reported), for a
 * snapshot taken meanwhile: up to max block addresses into out; their
 * number, or a negative errno. */
int tm_stub_pending_frees(const struct tm_stub *s, uint64_t *out, size_t max);

#endif
