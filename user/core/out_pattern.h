/* File names of a system-wide session's snapshots, from a pattern like
 * core_pattern's: "/var/lib/tmbpf/%h-%c-%p-%t.tmbpf". Plain string work,
 * no I/O.
 *   %p  the process's pid          %c  its comm (/proc/PID/comm; '/' -> '_')
 *   %h  the host name              %t  the snapshot time, UTC, sortable
 *                                      (20261202T031502Z)
 *   %n  the process's snapshot sequence number (0001, 0002, ...)
 *   %%  a '%'
 * Any other '%' sequence is an error, so a typo is refused at start. */
#ifndef TM_CORE_OUT_PATTERN_H
#define TM_CORE_OUT_PATTERN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct tm_out_fields {
	pid_t pid;
	const char *comm;
	const char *host;
	time_t when;       /* UTC seconds */
	unsigned seq;
};

/* The expanded name in buf. 0, -EINVAL (an unknown '%' sequence, or a
 * pattern ending in '%'), -ENAMETOOLONG. */
int tm_out_expand(const char *pattern, const struct tm_out_fields *f, char *buf, size_t len);

/* 1 when the pattern names each process apart (holds %p), 0 if not,
 * -EINVAL when it is malformed. */
int tm_out_per_process(const char *pattern);

/* 1 when the pattern's expansions differ from one snapshot of a process
 * to the next (holds %t or %n): --every and --keep need that. */
int tm_out_per_snapshot(const char *pattern);

#endif
