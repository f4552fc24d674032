/* user/core/ -- the tracemalloc model and its file formats, in plain C.
 * May: compute (snapshots, filters, statistics, compare_to, text and JSON
 * exactly as CPython's Lib/tracemalloc.py), read and write files (pickle,
 * native, JSON), hand diagnostics to the log callback (log.h). May not:
 * include anything but libc and zlib, touch a process, need root, print or
 * exit. The layer check (tests/check_layers.sh) enforces the includes. This
 * header is the model's centre; each format and algorithm has its own. */
/* tmbpf snapshot model: what tracemalloc.Snapshot holds, in plain C.
 *
 * A snapshot owns everything reachable from it: traces, interned tracebacks and
 * interned strings. Strings and tracebacks are interned per snapshot, so within
 * one snapshot two equal filenames are the same pointer and two equal
 * tracebacks are the same pointer; comparing pointers is comparing values.
 * Across snapshots (compare_to) compare by value.
 *
 * Frame order follows CPython's raw trace tuples: frames[0] is the MOST RECENT
 * frame (the allocation site), frames[nframe-1] the oldest. tracemalloc's
 * Traceback object reverses that for its sequence interface; the text
 * functions in format.h do the same.
 *
 * Functions return 0 or a negative errno; pointer functions return NULL and set
 * errno. Nothing here prints or exits.
 */
#ifndef TM_CORE_SNAPSHOT_H
#define TM_CORE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

/* tracemalloc's total_nframe is None in 3-tuple traces (pickles from 3.8). */
#define TM_NFRAME_UNKNOWN UINT32_MAX
/* Largest traceback we accept from any input (tracemalloc caps at 65535). */
#define TM_MAX_FRAMES 65535u

/* A frame is identified by (filename, lineno), as in tracemalloc: name is an
 * annotation (live captures read co_qualname, 3.11+, or co_name; pickles
 * have none) and takes no part in hashing, comparing or interning, so a
 * traceback keeps the names it was first interned with. */
struct tm_frame {
	const char *filename; /* interned, NUL-terminated UTF-8 (may hold surrogates) */
	uint32_t lineno;      /* 0: unknown, as tracemalloc prints it */
	const char *name;     /* interned function name, or NULL: unknown */
};

struct tm_traceback {
	uint32_t nframe;          /* frames stored, >= 1 for real traces */
	uint32_t index;           /* dense id within its snapshot, 0..ntracebacks-1 */
	uint64_t hash;            /* of (filename, lineno) values, stable across snapshots */
	struct tm_frame frames[]; /* most recent first */
};

struct tm_trace {
	uint64_t size_bytes;
	const struct tm_traceback *traceback;
	uint64_t thread_id; /* native tid; 0: unknown */
	uint64_t alloc_ns;  /* CLOCK_REALTIME of the allocation; 0: unknown */
	uint32_t domain;
	uint32_t total_nframe; /* TM_NFRAME_UNKNOWN: None */
};

/* What tracemalloc lacks; every field may be unknown (0, NULL, -1). */
#define TM_MAX_DROP_COUNTERS 16
struct tm_drop_counter {
	char name[32]; /* e.g. "live_blocks_full" */
	uint64_t count;
};

struct tm_snapshot_meta {
	int64_t pid;           /* -1: unknown */
	char *cmdline;         /* owned; args joined by single spaces */
	char *python_version;  /* owned; "3.12.1" */
	char *hostname;        /* owned */
	char *coverage_mode;   /* owned; how capture saw allocations */
	uint64_t start_ns;     /* CLOCK_REALTIME when tracing started */
	uint64_t snapshot_ns;  /* CLOCK_REALTIME when the snapshot was taken */
	uint64_t traced_current_bytes;
	uint64_t traced_peak_bytes;
	uint32_t has_traced_memory; /* 1 when the two fields above are known */
	uint64_t sample_interval_bytes; /* 0: every allocation traced; else the traces are
					 * byte-weighted samples at this mean interval and
					 * statistics estimate (core/sampling.h) */
	uint32_t ndrops;
	struct tm_drop_counter drops[TM_MAX_DROP_COUNTERS];
};

struct tm_snapshot {
	struct tm_trace *traces;
	size_t ntraces;
	uint32_t traceback_limit;
	struct tm_snapshot_meta meta;
	struct tm_snapshot_pools *pools; /* private: interning tables and arenas */
};

struct tm_snapshot *tm_snapshot_new(void);
void tm_snapshot_free(struct tm_snapshot *snap);

/* Intern len bytes (no NUL inside: -EINVAL). Returns the snapshot-owned copy. */
const char *tm_snapshot_intern_str(struct tm_snapshot *snap, const char *s, size_t len);

/* Intern a traceback; frames[i].filename (and name, when set) must already be
 * interned in snap.
 * nframe must be 1..TM_MAX_FRAMES. Returns the snapshot-owned traceback. */
const struct tm_traceback *tm_snapshot_intern_traceback(struct tm_snapshot *snap,
							const struct tm_frame *frames,
							uint32_t nframe);

/* Append one trace; traceback must be interned in snap. */
int tm_snapshot_add_trace(struct tm_snapshot *snap, const struct tm_trace *trace);

/* Reserve room for n more traces (an optimisation; loaders use it only after
 * checking n against the input's size). */
int tm_snapshot_reserve(struct tm_snapshot *snap, size_t n);

size_t tm_snapshot_ntracebacks(const struct tm_snapshot *snap);
/* The interned traceback with the given index, or NULL. */
const struct tm_traceback *tm_snapshot_traceback_at(const struct tm_snapshot *snap, size_t index);

/* Set an owned metadata string (NULL clears it). */
int tm_snapshot_meta_set(char **field, const char *value);
/* Add or increase a named drop counter. */
int tm_snapshot_meta_add_drop(struct tm_snapshot_meta *meta, const char *name, uint64_t count);

uint64_t tm_frames_hash(const struct tm_frame *frames, uint32_t nframe);
int tm_frame_cmp(const struct tm_frame *a, const struct tm_frame *b);

#endif
