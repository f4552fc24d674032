/* tracemalloc's text, byte for byte (CPython 3.12 Lib/tracemalloc.py).
 *
 * Everything here writes into caller storage: either a fixed buffer (the size
 * functions) or a growable tm_strbuf. Nothing prints.
 *
 * Frames are passed as stored in the snapshot: frames[0] is the most recent
 * frame, frames[nframe-1] the oldest. tracemalloc's Traceback sequence is the
 * reverse, so str(Traceback) is the OLDEST frame (frames[nframe-1]) and
 * Traceback.format() walks from frames[nframe-1] down to frames[0].
 */
#ifndef TM_CORE_FORMAT_H
#define TM_CORE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "core/snapshot.h"

struct tm_statistic;
struct tm_statistic_diff;

/* A growable NUL-terminated string. After a failed append the buffer keeps
 * its previous content and the function returns -ENOMEM (or -EOVERFLOW). */
struct tm_strbuf {
	char *data; /* NULL until the first append; then always NUL-terminated */
	size_t len;
	size_t cap;
};

void tm_strbuf_init(struct tm_strbuf *sb);
void tm_strbuf_release(struct tm_strbuf *sb);
/* Keep the allocation, forget the content. */
void tm_strbuf_reset(struct tm_strbuf *sb);
int tm_strbuf_append(struct tm_strbuf *sb, const char *s, size_t len);
int tm_strbuf_appends(struct tm_strbuf *sb, const char *s);
int tm_strbuf_appendf(struct tm_strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The content, "" when empty (never NULL). */
const char *tm_strbuf_str(const struct tm_strbuf *sb);

/* Large enough for any _format_size() result. */
#define TM_SIZE_STRLEN 48

/* _format_size(size, sign) for a Python int (Statistic.size, size_diff) and
 * for a Python float (the average). Returns 0 or -ENOSPC. */
int tm_format_size_u64(char *buf, size_t buflen, uint64_t size, int sign);
int tm_format_size_i64(char *buf, size_t buflen, int64_t size, int sign);
int tm_format_size_double(char *buf, size_t buflen, double size, int sign);

/* Python's a / b for two ints (true division, correctly rounded). b > 0. */
double tm_div_u64(uint64_t a, uint64_t b);

/* str(Frame): "FILENAME:LINENO". */
int tm_format_frame(struct tm_strbuf *sb, const struct tm_frame *frame);
/* str(Traceback): str() of the oldest frame. nframe >= 1. */
int tm_format_traceback_str(struct tm_strbuf *sb, const struct tm_frame *frames, uint32_t nframe);
/* str(Trace): "TRACEBACK: SIZE". */
int tm_format_trace(struct tm_strbuf *sb, const struct tm_trace *trace);
/* str(Statistic), str(StatisticDiff); no trailing newline. */
int tm_format_statistic(struct tm_strbuf *sb, const struct tm_statistic *stat);
int tm_format_statistic_diff(struct tm_strbuf *sb, const struct tm_statistic_diff *diff);

/* linecache: source lines read once per file name and kept.
 * Mirrors linecache.getline(filename, lineno).strip() for a process whose
 * sys.path is empty: names like "<string>" give nothing, relative names are
 * relative to the current directory, the file is decoded as tokenize.open()
 * would (UTF-8 BOM, coding cookie, universal newlines); an unreadable or
 * undecodable file has no lines. */
struct tm_linecache;

struct tm_linecache *tm_linecache_new(void);
void tm_linecache_free(struct tm_linecache *lc);
/* The stripped line (UTF-8, not NUL-terminated inside the file data) or
 * *len = 0 when there is none. Returns 0 or -ENOMEM. */
int tm_linecache_getline(struct tm_linecache *lc, const char *filename, uint32_t lineno,
			 const char **line, size_t *len);

/* Traceback.format(limit, most_recent_first): appends each line followed by
 * '\n'. has_limit = 0 is limit=None. lc may be NULL (no source lines). */
int tm_traceback_format(struct tm_strbuf *sb, const struct tm_frame *frames, uint32_t nframe,
			int has_limit, long limit, int most_recent_first, struct tm_linecache *lc);

#endif
