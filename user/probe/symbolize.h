/* Turn captured (code object, instruction position) pairs into
 * Frame(filename, lineno) by reading the target's memory and decoding each
 * version's line table (co_lnotab, 3.10 co_linetable, 3.11+ location table).
 * Results are cached per code object; the cache key includes fields that
 * change when a code object's address is reused (filename and line table
 * pointers, first line), so a reused address is re-read, never misattributed.
 * What cannot be resolved is reported as tracemalloc shows it: "<unknown>", 0. */
#ifndef TM_PROBE_SYMBOLIZE_H
#define TM_PROBE_SYMBOLIZE_H

#include <stdint.h>

#include "probe/target.h"

struct tm_symbolizer;

struct tm_symbolizer *tm_symbolizer_new(const struct tm_target *t);
void tm_symbolizer_free(struct tm_symbolizer *s);

/* Resolve one frame. *filename points into the symbolizer's storage and stays
 * valid until tm_symbolizer_free. Returns 0 when resolved, -ENOENT when the
 * frame is unknown (then *filename = "<unknown>", *lineno = 0), or
 * 1 when the frame must be skipped as tracemalloc skips it (3.11+ frames still
 * in their prologue). */
int tm_symbolize_frame(struct tm_symbolizer *s, uint64_t code, uint64_t lasti,
		       const char **filename, uint32_t *lineno);

/* Drop cached code objects (e.g. between periodic snapshots of a long run). */
void tm_symbolizer_flush(struct tm_symbolizer *s);

#endif
