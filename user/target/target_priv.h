/* Internals of tm_target_open shared by target.c (the interpreter, its
 * version, layout and allocators) and target_tstate.c (how BPF finds the
 * current thread state). Not an API: only these files include it. */
#ifndef TM_TARGET_TARGET_PRIV_H
#define TM_TARGET_TARGET_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "placement/elf_file.h"
#include "target/layouts.h"
#include "target/proc_maps.h"
#include "target/target.h"

/* Discovery state that does not outlive tm_target_open. */
struct probe_ctx {
	struct tm_target *t;
	struct tm_maps maps;
	struct tm_elf *elf;
	const struct tm_layout *layout; /* &t->layout once known */
	const char *mapped_path; /* elf's path as the target sees it (in maps) */
	char *err;
	size_t errlen;
};

int tm_target_fail(struct probe_ctx *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int tm_target_read_u64(pid_t pid, uint64_t addr, uint64_t *v);
const char *tm_target_base_name(const char *path);
/* The mapped file m opened from the host (proc_maps.h), its host path in host. */
struct tm_elf *tm_target_open_mapped(struct probe_ctx *c, const struct tm_map *m, char *host,
				     size_t hostlen);

/* target_tstate.c: t->cfg, the BPF record (tstate routes, offsets). */
int tm_target_fill_config(struct probe_ctx *c);

#endif
