/* A system-wide session (tmbpf --all, or a -p list): which processes a
 * capture traces, and following them as they come and go.
 *
 * tm_watch_scan() attaches every running CPython the selection takes;
 * process events of the capture (opts.watch) do the rest:
 *  - exec of a CPython executable (a new program, or a traced process
 *    replacing its image): the process is caught at start-up (patch/catch.h)
 *    and attached before it runs Python, so its snapshot holds what
 *    `tmbpf run` would;
 *  - fork of a traced process: the child is stopped, given its parent's live
 *    blocks (tracemalloc's view in a forked child: every trace of the parent
 *    at the fork), attached with a stub of its own, and let go;
 *  - finalization, exec or exit of a traced process: its blocks are frozen
 *    (by BPF), hooks.ending is called (write its last snapshot now), then it
 *    is detached and its blocks forgotten. A pid is only ever reused after
 *    that, so two processes never mix.
 * /proc is rescanned every few seconds for what events missed (a full ring
 * buffer, a CPython exec'd through a path the exec check did not know).
 * Messages go through core/log.h. */
#ifndef TM_CAPTURE_WATCH_H
#define TM_CAPTURE_WATCH_H

#include <stddef.h>
#include <sys/types.h>

#include "capture/capture.h"

/* Which processes: all filters must hold; each list is "any of". */
struct tm_watch_select {
	int all;                 /* every CPython (else only pids[]) */
	const pid_t *pids;       /* -p PID[,PID...] */
	size_t npids;
	char *const *comms;      /* --comm NAME: /proc/PID/comm equals one of these */
	size_t ncomms;
	char *const *exclude_comms; /* --exclude-comm NAME */
	size_t nexclude;
	char *const *cgroups;    /* --cgroup PATH: cgroup v2 path at or under one of these */
	size_t ncgroups;
};

struct tm_watch_hooks {
	/* pid is traced now; from_start: caught at its start-up (everything
	 * seen), else attached while running (what it allocated before is not
	 * seen, as with tracemalloc started late). */
	void (*attached)(void *ctx, pid_t pid, const struct tm_target *t, int from_start);
	/* pid's blocks are frozen (why: "finalized", "exited", "exec'd"): write
	 * its last snapshot now; it is detached when this returns. */
	void (*ending)(void *ctx, pid_t pid, const char *why);
	void *ctx;
};

struct tm_watch;

/* The capture must have opts.watch set. sel's arrays are borrowed. */
struct tm_watch *tm_watch_new(struct tm_capture *c, const struct tm_watch_select *sel,
			      const struct tm_watch_hooks *hooks);
void tm_watch_free(struct tm_watch *w);

/* Attach every running process the selection takes that is not traced yet.
 * Returns how many are traced in all. */
int tm_watch_scan(struct tm_watch *w);

/* Call after each tm_capture_poll: ends finalized processes, rescans /proc
 * now and then. */
void tm_watch_tick(struct tm_watch *w);

/* The traced pids (at most max), their number. */
size_t tm_watch_pids(const struct tm_watch *w, pid_t *out, size_t max);

/* 1 when sel takes pid (listed or --all, and by its comm and cgroup now).
 * A traced process's forked children need only pass the comm and cgroup
 * filters. */
int tm_watch_selects(const struct tm_watch_select *sel, pid_t pid);

#endif
