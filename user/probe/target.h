/* A traced CPython process: where its interpreter lives and what BPF needs.
 * Filled by tm_target_open() from /proc/PID/maps, the ELF that defines
 * _PyRuntime (opened through /proc/PID/root so containers work) and the
 * process's memory. Nothing is attached here. */
#ifndef TM_PROBE_TARGET_H
#define TM_PROBE_TARGET_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "tmbpf.h"

enum tm_alloc_domain { TM_DOM_RAW = 0, TM_DOM_MEM = 1, TM_DOM_OBJ = 2, TM_NDOMAINS = 3 };

/* One allocator struct as the target holds it now (PyMemAllocatorEx). */
struct tm_allocator {
	uint64_t ctx;
	uint64_t malloc_fn, calloc_fn, realloc_fn, free_fn; /* absolute addresses in the target */
	uint64_t struct_addr;                               /* where the struct lives */
};

struct tm_target {
	pid_t pid;
	char elf_path[PATH_MAX];  /* host path of the ELF defining _PyRuntime: /proc/PID/root/... */
	uint64_t load_bias;       /* absolute address = ELF vaddr + load_bias */
	int major, minor, micro;
	char version[32];         /* "3.12.1" */
	int stripped;             /* no .symtab: static impl symbols unknown */
	uint64_t runtime_addr;    /* &_PyRuntime */
	struct tm_allocator alloc[TM_NDOMAINS];
	uint64_t track_fn, untrack_fn, finalize_fn; /* PyTraceMalloc_Track/Untrack, Py_FinalizeEx */
	struct tm_proc_config cfg; /* ready for the BPF `procs` map (max_frames left 0) */
};

/* Inspect PID. On failure returns a negative errno and one line in err, e.g.
 * "PID 123 is not a CPython process", "CPython 3.14 is not supported yet",
 * "no process with PID 123", "not permitted to read PID 123: run as root". */
int tm_target_open(pid_t pid, struct tm_target *t, char *err, size_t errlen);

/* Re-read the live allocator pointers (they change when someone hooks them). */
int tm_target_read_allocators(struct tm_target *t);

/* Map an absolute address in the target to an offset in t->elf_path, as
 * uprobes want it. Returns 0 or -ENOENT when no executable segment holds it. */
int tm_target_file_offset(const struct tm_target *t, uint64_t addr, uint64_t *offset);

/* Read len bytes of the target's memory. Returns 0 or negative errno. */
int tm_target_read(pid_t pid, uint64_t addr, void *buf, size_t len);

#endif
