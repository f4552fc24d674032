/* What /proc says about a process, for choosing which ones to trace
 * (tmbpf --all, --comm, --cgroup): the process list, a process's command
 * name, cgroup and start time, and whether its executable is a CPython.
 * Reads only. */
#ifndef TM_TARGET_PROC_INFO_H
#define TM_TARGET_PROC_INFO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The pids of /proc (processes, not threads), ascending, into out[max];
 * their number, or a negative errno. */
int tm_proc_list(pid_t *out, size_t max);

/* /proc/PID/comm without its newline. 0 or a negative errno. */
int tm_proc_comm(pid_t pid, char *buf, size_t len);

/* 1 when the process lies in cgroup `prefix` or under it, in any hierarchy
 * of /proc/PID/cgroup: the v2 one ("0::/system.slice/nginx.service") or a
 * v1 one ("4:memory:/docker/ab12..."), for hosts that still mount v1.
 * 0 when not, a negative errno when the process is gone. */
int tm_proc_in_cgroup(pid_t pid, const char *prefix);

/* Field 22 of /proc/PID/stat (clock ticks since boot), 0 when gone: with
 * the pid, it names one process for good. */
uint64_t tm_proc_start_time(pid_t pid);

/* 1 when /proc/PID/exe is a CPython executable: it defines _PyRuntime
 * (static builds) or needs libpython3.* (shared ones); 0 when not, or a
 * negative errno. A cache of answers by file identity (dev, inode) keeps
 * a busy host's execs cheap: cache[n] of zeroed entries, owned by the
 * caller. */
struct tm_exe_answer {
	uint64_t dev, ino, mtime;
	int is_cpython;
};
int tm_proc_exe_is_cpython(pid_t pid, struct tm_exe_answer *cache, size_t n);

/* The cgroup a --cgroup argument names: a path as /proc/PID/cgroup names
 * it ("/system.slice/app.service") or a directory of a mounted hierarchy
 * ("/sys/fs/cgroup/system.slice/app.service"), which must exist in one of
 * the hierarchies mounted (v2 or v1; /proc/self/mountinfo, with each
 * mount's root). Its /proc/PID/cgroup form
 * into out: 0, -ENOENT (no hierarchy has it), -ENAMETOOLONG. */
int tm_cgroup_resolve(const char *arg, char *out, size_t len);

/* 1 when cgroup path `path` is `prefix` or lies under it. */
int tm_cgroup_under(const char *path, const char *prefix);

#endif
