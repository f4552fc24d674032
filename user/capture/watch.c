/* A system-wide session: selection, and following processes (watch.h). */
#include "capture/watch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "capture/capture_priv.h"
#include "core/log.h"
#include "patch/catch.h"
#include "target/proc_info.h"

#define RESCAN_US 5000000L  /* /proc again, for what events missed */
#define CATCH_MS 3000       /* a CPython must be ready this soon after its exec */
#define SKIP_MAX 512        /* processes not to look at again (not CPython, refused) */

struct watched {
	pid_t pid;
	uint64_t start;      /* tm_proc_start_time: the pid names this process only */
	struct tm_target *t; /* borrowed by the capture */
	int ending;          /* in hooks.ending: its events are ignored meanwhile */
	uint64_t since_ns;   /* CLOCK_MONOTONIC before its image was read: an exec
			      * event older than this is the one that made it */
};

struct skipped {
	pid_t pid;
	uint64_t start;
};

/* A process seized at its exec or fork event, stopped until caught: the
 * event loop seizes at once and catches one per tm_watch_tick, so a burst
 * of starts is not left running while the first ones are attached. */
#define PENDING_MAX 128
struct pending {
	pid_t pid;
	int copy_from;       /* a fork: the traced parent; 0: an exec */
	struct tm_catch k;
};

struct tm_watch {
	struct tm_capture *c;
	struct tm_watch_select sel;
	struct tm_watch_hooks h;
	struct watched procs[TM_MAX_PROCS];
	size_t n;
	struct skipped skip[SKIP_MAX];
	size_t nskip, skip_next;
	struct tm_exe_answer exe_cache[64];
	long last_scan_us;
	struct pending pend[PENDING_MAX];
	size_t npend;
	/* While a process is caught or attached (busy), events are taken as
	 * they come so that new processes are held at once; those that would
	 * end a traced process wait here for the next tick. */
	int busy;
	struct tm_proc_event deferred[64];
	size_t ndeferred;
};

static long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

static uint64_t now_ns(void) /* the clock of bpf_ktime_get_ns (event ts_ns) */
{
	return (uint64_t)now_us() * 1000u;
}

static int in_list(char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], s))
			return 1;
	return 0;
}

/* The filters (comm, cgroup) alone. */
static int filters_take(const struct tm_watch_select *sel, pid_t pid)
{
	char comm[64];
	int ok;

	if ((sel->ncomms || sel->nexclude) && tm_proc_comm(pid, comm, sizeof(comm)))
		return 0;
	if (sel->ncomms && !in_list(sel->comms, sel->ncomms, comm))
		return 0;
	if (sel->nexclude && in_list(sel->exclude_comms, sel->nexclude, comm))
		return 0;
	if (!sel->ncgroups)
		return 1;
	ok = 0;
	for (size_t i = 0; i < sel->ncgroups && !ok; i++)
		ok = tm_proc_in_cgroup(pid, sel->cgroups[i]) == 1;
	return ok;
}

int tm_watch_selects(const struct tm_watch_select *sel, pid_t pid)
{
	int ok = sel->all;

	for (size_t i = 0; !ok && i < sel->npids; i++)
		ok = sel->pids[i] == pid;
	return ok && filters_take(sel, pid);
}

static struct watched *find(struct tm_watch *w, pid_t pid)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->procs[i].pid == pid)
			return &w->procs[i];
	return NULL;
}

/* Held, waiting to be caught (hold()). */
static int pending(const struct tm_watch *w, pid_t pid)
{
	for (size_t i = 0; i < w->npend; i++)
		if (w->pend[i].pid == pid)
			return 1;
	return 0;
}

static int skipped(struct tm_watch *w, pid_t pid, uint64_t start)
{
	for (size_t i = 0; i < w->nskip; i++)
		if (w->skip[i].pid == pid && w->skip[i].start == start)
			return 1;
	return 0;
}

static void skip(struct tm_watch *w, pid_t pid, uint64_t start)
{
	w->skip[w->skip_next] = (struct skipped){ pid, start };
	w->skip_next = (w->skip_next + 1) % SKIP_MAX;
	if (w->nskip < SKIP_MAX)
		w->nskip++;
}

/* Trace t (opened; held at start-up when t->stopped_tid). */
static int add(struct tm_watch *w, struct tm_target *t, int from_start, uint64_t since_ns)
{
	char err[512];
	int e;

	if (w->n == TM_MAX_PROCS) {
		tm_log(TM_LOG_WARN, "PID %d: not traced: %d processes are traced already", (int)t->pid,
		       TM_MAX_PROCS);
		return -ENOSPC;
	}
	e = tm_capture_add_target(w->c, t, err, sizeof(err));
	if (e) {
		tm_log(TM_LOG_WARN, "%s", err);
		return e;
	}
	w->procs[w->n++] = (struct watched){ t->pid, tm_proc_start_time(t->pid), t, 0, since_ns };
	if (w->h.attached)
		w->h.attached(w->h.ctx, t->pid, t, from_start);
	return 0;
}

static int attach_running(struct tm_watch *w, pid_t pid)
{
	uint64_t start = tm_proc_start_time(pid), since_ns = now_ns();
	struct tm_target *t;
	char err[512];
	int e;

	/* A held process is caught at its tick: attaching it here too fails
	 * (we ptrace it already) and marks it skipped, or traces it late. */
	if (!start || find(w, pid) || pending(w, pid) || skipped(w, pid, start) ||
	    !tm_watch_selects(&w->sel, pid))
		return 0;
	if (tm_proc_exe_is_cpython(pid, w->exe_cache, 64) != 1) {
		skip(w, pid, start);
		return 0;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	e = tm_target_open(pid, t, err, sizeof(err));
	w->busy = 1;
	if (!e)
		e = add(w, t, 0, since_ns);
	else
		tm_log(TM_LOG_WARN, "%s", err);
	w->busy = 0;
	if (e) {
		free(t);
		skip(w, pid, start);
	}
	return e;
}

/* pid's blocks are frozen: let the caller write, then forget it. */
static void end(struct tm_watch *w, struct watched *p, const char *why)
{
	pid_t pid = p->pid;
	struct tm_target *t = p->t;
	int busy;

	if (p->ending)
		return;
	/* The hook may poll the capture (to symbolize its last stacks), which
	 * brings this process's exit event, or ends others: p is found again
	 * by pid afterwards. */
	p->ending = 1;
	busy = w->busy;
	w->busy = 1; /* the hook writes a snapshot: new processes are held meanwhile */
	if (w->h.ending)
		w->h.ending(w->h.ctx, pid, why);
	w->busy = busy;
	tm_capture_remove_target(w->c, pid);
	p = find(w, pid);
	if (p)
		*p = w->procs[--w->n];
	free(t);
}

/* A process just exec'd a CPython: catch it at start-up, attach, release. */
/* A process just exec'd a CPython (copy_from 0) or was forked by a traced
 * one: hold it now, catch it at the next tick. */
static void hold(struct tm_watch *w, pid_t pid, int copy_from)
{
	struct pending *q;
	int e;

	if (pending(w, pid))
		return;
	if (w->npend == PENDING_MAX) {
		tm_log(TM_LOG_WARN, "PID %d: %d processes wait to be caught already; caught late, "
		       "when /proc is scanned", (int)pid, PENDING_MAX);
		return;
	}
	q = &w->pend[w->npend];
	q->pid = pid;
	q->copy_from = copy_from;
	e = tm_catch_seize(pid, &q->k);
	if (e) {
		if (e != -ESRCH)
			tm_log(TM_LOG_WARN, "PID %d: cannot hold it to catch it at start-up: %s",
			       (int)pid, strerror(-e));
		return;
	}
	w->npend++;
	tm_log(TM_LOG_TRACE, "PID %d: held, %zu waiting", (int)pid, w->npend);
}

/* While one process is stepped: take the events that came meanwhile, so
 * that processes exec'd now are held at once too. */
static void between_stops(void *ctx)
{
	struct tm_watch *w = ctx;

	tm_capture_poll_processes(w->c);
}

/* Catch a held process (at start-up for an exec), attach, release. */
static void caught(struct tm_watch *w, struct pending *q)
{
	struct tm_target *t = calloc(1, sizeof(*t));
	pid_t pid = q->pid;
	int copy_from = q->copy_from, from_start;
	char err[512];
	int e;

	if (!t) {
		tm_catch_release(&q->k);
		return;
	}
	q->k.between = between_stops;
	q->k.ctx = w;
	e = tm_catch_exec(pid, CATCH_MS, t, &q->k, err, sizeof(err));
	if (e) {
		tm_log(e != -ENOEXEC && e != -ESRCH ? TM_LOG_WARN : TM_LOG_DEBUG, "%s", err);
		skip(w, pid, tm_proc_start_time(pid));
		free(t);
		return;
	}
	from_start = copy_from || !q->k.late;
	tm_log(TM_LOG_DEBUG, "PID %d: caught %s after %u syscall stops, held %ld us", (int)pid,
	       copy_from ? "after its fork" : q->k.no_interpreter ? "where it was (no interpreter "
	       "0.3 s after its exec)" : from_start ? "at start-up" : "late (its interpreter "
	       "had started)", q->k.stops, q->k.held_us);
	e = add(w, t, from_start, now_ns());
	if (!e && copy_from) {
		long n = tm_capture_copy_blocks(w->c, copy_from, pid);

		if (n < 0)
			tm_log(TM_LOG_WARN, "PID %d: cannot take over its parent's blocks: %s", (int)pid,
			       strerror((int)-n));
		else
			tm_log(TM_LOG_DEBUG, "PID %d: %ld blocks of parent %d at the fork", (int)pid, n,
			       copy_from);
	}
	tm_catch_release(&q->k);
	if (e) {
		free(t);
		skip(w, pid, tm_proc_start_time(pid));
	}
}

/* The children of pid not traced yet (a fork seen from a PID namespace of
 * our own, where BPF cannot name the child). */
static void untraced_children(struct tm_watch *w, pid_t pid, pid_t *out, size_t *n, size_t max)
{
	char path[96];
	FILE *f;
	int child;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (*n < max && fscanf(f, "%d", &child) == 1)
		if (!find(w, child))
			out[(*n)++] = child;
	fclose(f);
}

static void on_process(void *ctx, const struct tm_proc_event *e)
{
	struct tm_watch *w = ctx;
	struct watched *p = find(w, (pid_t)e->pid);

	if (w->busy && p && e->type != TM_EVENT_FORK) {
		/* ends a traced process: not in the middle of an attach. If the
		 * queue is full, the tick's start-time check finds it later. */
		if (w->ndeferred < sizeof(w->deferred) / sizeof(w->deferred[0]))
			w->deferred[w->ndeferred++] = *e;
		return;
	}
	switch (e->type) {
	case TM_EVENT_EXEC:
		tm_log(TM_LOG_TRACE, "PID %u exec'd (read %.2f ms after)", e->pid,
		       (double)(now_ns() - e->ts_ns) / 1e6);
		/* A /proc scan may attach a process before its exec event is read:
		 * that exec made the image traced, it does not end it. */
		if (p && e->ts_ns < p->since_ns)
			return;
		if (p)
			end(w, p, "exec'd");
		if (!tm_watch_selects(&w->sel, (pid_t)e->pid))
			return;
		if (tm_proc_exe_is_cpython((pid_t)e->pid, w->exe_cache, 64) != 1) {
			tm_log(TM_LOG_TRACE, "PID %u: not a CPython", e->pid);
			return;
		}
		hold(w, (pid_t)e->pid, 0);
		break;
	case TM_EVENT_FORK: {
		pid_t kids[16];
		size_t nk = 0;

		if (!p)
			return;
		if (w->c->skel->rodata->tm_cfg.pidns_ino)
			untraced_children(w, p->pid, kids, &nk, 16);
		else
			kids[nk++] = (pid_t)e->child;
		for (size_t i = 0; i < nk; i++)
			/* a traced process's children are followed, listed or not */
			if (!find(w, kids[i]) && filters_take(&w->sel, kids[i]))
				hold(w, kids[i], (int)e->pid);
		break;
	}
	case TM_EVENT_EXIT:
		if (p)
			end(w, p, "exited");
		break;
	}
}

/* A process is caught at start-up only if its exec event is read before
 * its interpreter exists: 1-3 ms after the exec for pyenv's 3.12. The
 * kernel wakes us on the CPU of the process that exec'd, where we waited
 * for its slice to end: 3.3 ms after the exec, 5 of 6 lone execs caught
 * late (measured; 0.05-0.1 ms and 6 of 6 at start-up with the two on
 * different CPUs). A short slice of our own (EEVDF's sched_runtime for a
 * SCHED_OTHER task, kernel 6.12+) gives our wake-up an earlier deadline, so
 * it preempts: no more CPU than our fair share, no real-time policy.
 * Older kernels refuse the call (EINVAL): the wake-up is then as it was. */
#define WATCH_SLICE_NS 100000ull /* the smallest slice the kernel accepts */

struct tm_sched_attr { /* struct sched_attr (include/uapi/linux/sched/types.h) */
	uint32_t size, sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
};

static void short_slice(void)
{
	struct tm_sched_attr a = { .size = sizeof(a), .sched_policy = 0 /* SCHED_OTHER */ };

	if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0))
		return;
	a.size = sizeof(a);
	a.sched_runtime = WATCH_SLICE_NS;
	if (a.sched_policy == 0 && syscall(SYS_sched_setattr, 0, &a, 0))
		tm_log(TM_LOG_DEBUG, "no short scheduler slice (%s): exec events may be read "
		       "after a slice of the process that exec'd", strerror(errno));
}

struct tm_watch *tm_watch_new(struct tm_capture *c, const struct tm_watch_select *sel,
			      const struct tm_watch_hooks *hooks)
{
	struct tm_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->c = c;
	w->sel = *sel;
	if (hooks)
		w->h = *hooks;
	tm_capture_on_process(c, on_process, w);
	tm_capture_set_idle(c, between_stops, w);
	short_slice();
	return w;
}

void tm_watch_free(struct tm_watch *w)
{
	if (!w)
		return;
	tm_capture_on_process(w->c, NULL, NULL);
	tm_capture_set_idle(w->c, NULL, NULL);
	for (size_t i = 0; i < w->npend; i++)
		tm_catch_release(&w->pend[i].k);
	while (w->n) {
		struct watched *p = &w->procs[w->n - 1];

		tm_capture_remove_target(w->c, p->pid);
		free(p->t);
		w->n--;
	}
	free(w);
}

int tm_watch_scan(struct tm_watch *w)
{
	pid_t *pids = malloc(65536 * sizeof(*pids));
	int n;

	w->last_scan_us = now_us();
	if (!pids)
		return -ENOMEM;
	/* Exec and fork events not read yet hold their processes first: the
	 * scan would otherwise find them running and trace them late. */
	tm_capture_poll_processes(w->c);
	if (w->sel.all) {
		n = tm_proc_list(pids, 65536);
	} else {
		n = (int)w->sel.npids;
		memcpy(pids, w->sel.pids, w->sel.npids * sizeof(*pids));
	}
	for (int i = 0; i < n; i++) {
		attach_running(w, pids[i]);
		/* a scan of a busy host takes tens of ms: a process exec'd
		 * meanwhile is held at once, not found running later */
		if (i % 32 == 31)
			tm_capture_poll_processes(w->c);
	}
	free(pids);
	return (int)w->n;
}

void tm_watch_tick(struct tm_watch *w)
{
	while (w->ndeferred) {
		struct tm_proc_event e = w->deferred[0];

		memmove(w->deferred, w->deferred + 1, --w->ndeferred * sizeof(e));
		on_process(w, &e);
	}
	if (w->npend) {
		struct pending q = w->pend[0];

		memmove(w->pend, w->pend + 1, --w->npend * sizeof(*w->pend));
		w->busy = 1;
		caught(w, &q);
		w->busy = 0;
	}
	for (size_t i = 0; i < w->n;) {
		struct watched *p = &w->procs[i];

		if (!p->ending && tm_capture_finalizing(w->c, p->pid) == 1) {
			end(w, p, "finalized");
			i = 0; /* the array changed under us */
			continue;
		}
		if (!p->ending && tm_proc_start_time(p->pid) != p->start) {
			end(w, p, "exited"); /* its exit event was lost */
			i = 0;
			continue;
		}
		i++;
	}
	if (w->sel.all && now_us() - w->last_scan_us > RESCAN_US)
		tm_watch_scan(w);
}

size_t tm_watch_pids(const struct tm_watch *w, pid_t *out, size_t max)
{
	size_t n = 0;

	for (; n < w->n && n < max; n++)
		out[n] = w->procs[n].pid;
	return n;
}
