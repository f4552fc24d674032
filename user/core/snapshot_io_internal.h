/* Private helpers shared by the snapshot file readers and writers
 * (pickle_read.c, pickle_write.c, native_format.c, json_write.c, snapshot_io.c).
 * Not part of the library API. */
#ifndef TM_CORE_SNAPSHOT_IO_INTERNAL_H
#define TM_CORE_SNAPSHOT_IO_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/snapshot.h"

/* Write one formatted line into err (always NUL-terminated, truncated to fit). */
void tm_io_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#include "core/text_encoding.h"

/* Buffered output to a FILE; the first write error sticks in err. */
struct tm_out {
	FILE *fp;
	unsigned char *buf;
	size_t len, cap;
	int err; /* 0 or negative errno */
};

int tm_out_init(struct tm_out *o, FILE *fp, size_t cap);
int tm_out_flush(struct tm_out *o);
void tm_out_release(struct tm_out *o);
int tm_out_write(struct tm_out *o, const void *data, size_t len);

static inline int tm_out_byte(struct tm_out *o, unsigned char c)
{
	if (o->len == o->cap && tm_out_flush(o))
		return o->err;
	o->buf[o->len++] = c;
	return 0;
}

/* Map from (pointer, tag) to a u32, for writers that number what they have
 * written (strings, frames). */
struct tm_ptrmap_slot {
	const void *ptr; /* NULL: empty */
	uint64_t tag;
	uint32_t value;
};

struct tm_ptrmap {
	struct tm_ptrmap_slot *slots;
	size_t cap, count;
};

/* The slot for (ptr, tag): ptr is NULL when absent, then the caller may fill
 * it (ptr, tag, value) and increment count. NULL on allocation failure. The
 * pointer is valid until the next lookup. */
struct tm_ptrmap_slot *tm_ptrmap_lookup(struct tm_ptrmap *m, const void *ptr, uint64_t tag);
void tm_ptrmap_release(struct tm_ptrmap *m);

/* Writers: the whole snapshot to fp (not flushed to disk; the caller fsyncs). */
int tm_pickle_write(const struct tm_snapshot *snap, FILE *fp, char *err, size_t errlen);
int tm_native_write(const struct tm_snapshot *snap, FILE *fp, char *err, size_t errlen);
int tm_json_write(const struct tm_snapshot *snap, FILE *fp, char *err, size_t errlen);
int tm_pprof_write(const struct tm_snapshot *snap, FILE *fp, char *err, size_t errlen);
int tm_folded_write(const struct tm_snapshot *snap, FILE *fp, char *err, size_t errlen);
int tm_flamegraph_write(const struct tm_snapshot *snap, FILE *fp, char *err, size_t errlen);

/* Native loader over any byte source: read() returns bytes read (short only at
 * end of input) or a negative errno. size_hint: total input size when known
 * (bounds header claims before allocating), else 0. */
typedef long (*tm_read_fn)(void *ctx, void *buf, size_t len);
struct tm_snapshot *tm_native_load_stream(tm_read_fn read, void *ctx, uint64_t size_hint,
					  char *err, size_t errlen);

/* Native format constants shared by native_format.c and native_read.c. */
#define TM_NATIVE_HEADER_LEN 16
#define TM_NATIVE_CHUNK_HDR_LEN 20
#define TM_NATIVE_MAX_CHUNK_RAW (16u << 20)

enum tm_native_chunk {
	CH_META = 0x4154454d, /* "META" as a little-endian u32 */
	CH_STRS = 0x53525453, /* "STRS" */
	CH_FRMS = 0x534d5246, /* "FRMS" */
	CH_TBKS = 0x534b4254, /* "TBKS" */
	CH_TRCS = 0x53435254, /* "TRCS" */
	CH_END = 0x21444e45,  /* "END!" */
};

enum tm_native_meta_tag {
	M_PID = 1, M_CMDLINE, M_PYTHON, M_HOST, M_COVERAGE, M_START_NS, M_SNAPSHOT_NS,
	M_TRACED_CURRENT, M_TRACED_PEAK, M_DROP, M_TRACEBACK_LIMIT, M_COUNTS,
	M_SAMPLE_INTERVAL = 13, /* mean bytes between samples (absent: not sampled) */
};

#endif
