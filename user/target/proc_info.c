/* /proc facts for choosing processes (proc_info.h). */
#include "target/proc_info.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "placement/elf_file.h"

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return x < y ? -1 : x > y;
}

int tm_proc_list(pid_t *out, size_t max)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d)) && n < max) {
		char *end;
		long v;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		v = strtol(de->d_name, &end, 10);
		if (*end || v <= 0)
			continue;
		out[n++] = (pid_t)v;
	}
	closedir(d);
	qsort(out, n, sizeof(*out), cmp_pid);
	return (int)n;
}

static int read_small(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	return (int)n;
}

int tm_proc_comm(pid_t pid, char *buf, size_t len)
{
	char path[64];
	int n;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	n = read_small(path, buf, len);
	if (n < 0)
		return n;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

int tm_proc_in_cgroup(pid_t pid, const char *prefix)
{
	char path[64], line[4096], *cg;
	FILE *f;
	int in = 0;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	/* "ID:CONTROLLERS:PATH"; the controllers may hold no ':' */
	while (!in && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		cg = strchr(line, ':');
		cg = cg ? strchr(cg + 1, ':') : NULL;
		if (cg)
			in = tm_cgroup_under(cg + 1, prefix);
	}
	fclose(f);
	return in;
}

uint64_t tm_proc_start_time(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long v;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small(path, buf, sizeof(buf)) <= 0)
		return 0;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
			 "%*d %*d %*d %llu", &v) != 1)
		return 0;
	return v;
}

int tm_proc_exe_is_cpython(pid_t pid, struct tm_exe_answer *cache, size_t n)
{
	char path[64];
	struct stat st;
	struct tm_elf *e;
	struct tm_elf_sym sym;
	size_t slot;
	int yes;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	if (stat(path, &st))
		return -errno;
	slot = n ? (size_t)((st.st_ino * 0x9e3779b97f4a7c15ull ^ st.st_dev) % n) : 0;
	if (n && cache[slot].ino == st.st_ino && cache[slot].dev == st.st_dev &&
	    cache[slot].mtime == (uint64_t)st.st_mtime)
		return cache[slot].is_cpython;
	e = tm_elf_open(path);
	if (!e)
		return errno == ENOEXEC ? 0 : -errno;
	yes = tm_elf_dynsym(e, "_PyRuntime", &sym) == 0 || tm_elf_needs(e, "libpython3.");
	tm_elf_close(e);
	if (n)
		cache[slot] = (struct tm_exe_answer){ st.st_dev, st.st_ino, (uint64_t)st.st_mtime, yes };
	return yes;
}

int tm_cgroup_under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	while (n > 1 && prefix[n - 1] == '/')
		n--;
	return !strncmp(path, prefix, n) && (path[n] == '\0' || path[n] == '/' || n == 1);
}

/* 1 when dir is a cgroup's directory (it lists its processes). */
static int is_cgroup_dir(const char *dir)
{
	char f[4096 + 16];
	struct stat st;

	snprintf(f, sizeof(f), "%s/cgroup.procs", dir);
	return stat(f, &st) == 0;
}

/* /proc/mounts writes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
	char *w = s;

	for (; *s; s++, w++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*w = *s;
		}
	}
	*w = '\0';
}

/* 1 when path is prefix or lies under it ("/" holds everything). */
static int path_under(const char *path, const char *prefix, size_t *n)
{
	*n = strcmp(prefix, "/") ? strlen(prefix) : 0;
	return !strncmp(path, prefix, *n) && (path[*n] == '/' || !path[*n]);
}

int tm_cgroup_resolve(const char *arg, char *out, size_t len)
{
	char line[8192], dir[4096], root[2048], mnt[2048], type[64];
	FILE *f;
	int e = -ENOENT;

	if (arg[0] != '/')
		return -ENOENT;
	/* mountinfo, for each hierarchy's root: a container without a cgroup
	 * namespace on a v1 host mounts /docker/ID at /sys/fs/cgroup/memory */
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while (e == -ENOENT && fgets(line, sizeof(line), f)) {
		const char *sep = strstr(line, " - ");
		size_t m, r;

		if (!sep || sscanf(line, "%*s %*s %*s %2047s %2047s", root, mnt) != 2 ||
		    sscanf(sep + 3, "%63s", type) != 1 ||
		    (strcmp(type, "cgroup2") && strcmp(type, "cgroup")))
			continue;
		unescape_octal(root);
		unescape_octal(mnt);
		/* a directory of this hierarchy: root + its path below the mount */
		if (path_under(arg, mnt, &m) && is_cgroup_dir(arg)) {
			const char *below = arg + m;

			e = snprintf(out, len, "%s%s", strcmp(root, "/") ? root : "",
				     *below ? below : (strcmp(root, "/") ? "" : "/")) < (int)len ?
				    0 : -ENAMETOOLONG;
			continue;
		}
		/* as /proc/PID/cgroup names it: under this mount's root */
		if (path_under(arg, root, &r) &&
		    (size_t)snprintf(dir, sizeof(dir), "%s%s", mnt, arg + r) < sizeof(dir) &&
		    is_cgroup_dir(dir))
			e = snprintf(out, len, "%s", arg) < (int)len ? 0 : -ENAMETOOLONG;
	}
	fclose(f);
	return e;
}
