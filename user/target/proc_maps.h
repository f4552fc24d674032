/* /proc/PID/maps of a traced process: the file-backed mappings and a way to
 * open the mapped files from the host (through /proc/PID/root, so a target
 * in a container resolves in its own mount namespace). */
#ifndef TM_TARGET_PROC_MAPS_H
#define TM_TARGET_PROC_MAPS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tm_map {
	uint64_t start, end;  /* [start, end) in the target's address space */
	uint64_t offset;      /* file offset of start */
	uint64_t inode;
	unsigned int dev_major, dev_minor;
	char perms[5];        /* "r-xp" */
	char *path;           /* as the target sees it; "" for anonymous; owned */
};

struct tm_maps {
	struct tm_map *maps;
	size_t n;
};

/* Read /proc/PID/maps. Returns 0, -ESRCH (no such process), -EACCES/-EPERM,
 * -ENOMEM. Release with tm_maps_release (accepts a zeroed struct). */
int tm_maps_read(pid_t pid, struct tm_maps *m);
void tm_maps_release(struct tm_maps *m);

/* The mapping containing addr, or NULL. */
const struct tm_map *tm_maps_find(const struct tm_maps *m, uint64_t addr);

/* 1 when the mapping is executable. */
int tm_map_is_exec(const struct tm_map *map);

/* Host path of a mapped file: "/proc/PID/root" + path. Returns 0 or
 * -ENAMETOOLONG. A " (deleted)" suffix is kept: opening fails then. */
int tm_maps_host_path(pid_t pid, const char *path, char *out, size_t outlen);

#endif
