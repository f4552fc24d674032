/* /proc/PID/maps of a traced process: the file-backed mappings and a way to
 * open the mapped files from the host, whatever the target's root and mount
 * namespace (tm_maps_open_path). */
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

/* A path from which this process opens the very file (same inode) that map
 * maps in pid, tried in this order:
 *   1. /proc/PID/root + path: the path as the target sees it, which is what
 *      maps shows for a target in another mount namespace (a container,
 *      pivot_root): its root resolves it;
 *   2. /proc/PID/map_files/START-END: the mapping itself, whatever the
 *      roots and namespaces (a plain chroot, where maps shows the path from
 *      our root and /proc/PID/root already is the chroot; a deleted file);
 *      needs CAP_SYS_ADMIN, and names the file only while the mapping lives;
 *   3. path itself (a chroot when map_files is refused).
 * Returns 0, -ENOENT (none names that inode), -ENAMETOOLONG. */
int tm_maps_open_path(pid_t pid, const struct tm_map *map, char *out, size_t outlen);

#endif
