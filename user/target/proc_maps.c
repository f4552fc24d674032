/* Parsing /proc/PID/maps. */
#include "target/proc_maps.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int parse_line(char *line, struct tm_map *map)
{
	unsigned long long start, end, off, ino;
	unsigned int maj, min;
	char perms[8];
	int pos = 0;

	if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &start, &end, perms, &off, &maj,
		   &min, &ino, &pos) < 7)
		return -EINVAL;
	memset(map, 0, sizeof(*map));
	map->start = start;
	map->end = end;
	map->offset = off;
	map->inode = ino;
	map->dev_major = maj;
	map->dev_minor = min;
	snprintf(map->perms, sizeof(map->perms), "%.4s", perms);
	char *path = line + pos;
	size_t len = strlen(path);
	while (len && (path[len - 1] == '\n' || path[len - 1] == ' '))
		path[--len] = '\0';
	map->path = strdup(path);
	return map->path ? 0 : -ENOMEM;
}

int tm_maps_read(pid_t pid, struct tm_maps *m)
{
	char fname[64], *line = NULL;
	size_t cap = 0, linecap = 0;
	FILE *f = NULL;
	int err = 0;

	memset(m, 0, sizeof(*m));
	snprintf(fname, sizeof(fname), "/proc/%d/maps", (int)pid);
	f = fopen(fname, "re");
	if (!f) {
		err = errno == ENOENT ? -ESRCH : -errno;
		goto cleanup;
	}
	while (getline(&line, &linecap, f) > 0) {
		if (m->n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct tm_map *nm = realloc(m->maps, ncap * sizeof(*nm));
			if (!nm) {
				err = -ENOMEM;
				goto cleanup;
			}
			m->maps = nm;
			cap = ncap;
		}
		err = parse_line(line, &m->maps[m->n]);
		if (err == -EINVAL) {
			err = 0;
			continue;
		}
		if (err)
			goto cleanup;
		m->n++;
	}
	if (ferror(f))
		err = -EIO;
	else if (m->n == 0)
		err = -ESRCH; /* a zombie or kernel thread has no maps */
cleanup:
	free(line);
	if (f)
		fclose(f);
	if (err)
		tm_maps_release(m);
	return err;
}

void tm_maps_release(struct tm_maps *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->maps[i].path);
	free(m->maps);
	m->maps = NULL;
	m->n = 0;
}

const struct tm_map *tm_maps_find(const struct tm_maps *m, uint64_t addr)
{
	for (size_t i = 0; i < m->n; i++)
		if (addr >= m->maps[i].start && addr < m->maps[i].end)
			return &m->maps[i];
	return NULL;
}

int tm_map_is_exec(const struct tm_map *map)
{
	return map->perms[2] == 'x';
}

int tm_maps_host_path(pid_t pid, const char *path, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "/proc/%d/root%s", (int)pid, path);

	if (n < 0 || (size_t)n >= outlen)
		return -ENAMETOOLONG;
	return 0;
}

static int names_inode(const char *path, uint64_t inode)
{
	struct stat st;

	return stat(path, &st) == 0 && (uint64_t)st.st_ino == inode;
}

int tm_maps_open_path(pid_t pid, const struct tm_map *map, char *out, size_t outlen)
{
	int n;

	if (map->path[0] == '/' && tm_maps_host_path(pid, map->path, out, outlen) == 0 &&
	    names_inode(out, map->inode))
		return 0;
	n = snprintf(out, outlen, "/proc/%d/map_files/%llx-%llx", (int)pid,
		     (unsigned long long)map->start, (unsigned long long)map->end);
	if (n < 0 || (size_t)n >= outlen)
		return -ENAMETOOLONG;
	if (names_inode(out, map->inode))
		return 0;
	if (map->path[0] == '/' && strlen(map->path) < outlen && names_inode(map->path, map->inode)) {
		snprintf(out, outlen, "%s", map->path);
		return 0;
	}
	return -ENOENT;
}
