/* Turn captured (code object, instruction position) pairs into
 * Frame(filename, lineno) by reading the target's memory and decoding each
 * version's line table (co_lnotab, 3.10 co_linetable, 3.11+ location table).
 * Results are cached per code object; the cache key includes fields that
 * change when a code object's address is reused (filename and line table
 * pointers, first line), so an address reused by another code object is
 * read again; an entry whose object has died since it was
 * read keeps answering for it, and a code object first read after it died
 * is "<unknown>", never decoded from freed memory. Code objects die long
 * before the snapshot that names them (`python prog.py` frees the module's
 * code object, with its comprehensions and class bodies, before
 * Py_FinalizeEx): symbolize a stack soon after BPF records it.
 * What cannot be resolved is reported as tracemalloc shows it: "<unknown>", 0. */
#ifndef TM_TARGET_SYMBOLIZE_H
#define TM_TARGET_SYMBOLIZE_H

#include <stdint.h>

#include "target/target.h"

struct tm_symbolizer;

struct tm_symbolizer *tm_symbolizer_new(const struct tm_target *t);
void tm_symbolizer_free(struct tm_symbolizer *s);

/* Resolve one frame. lasti is struct tm_frame_raw.lasti as BPF stored it:
 * f_lasti (<=3.10; the low 32 bits are taken as a signed int) or the
 * instruction pointer (3.11+). When the target has exited, entries cached
 * earlier still answer. *filename points into the symbolizer's storage and stays
 * valid until tm_symbolizer_free. Returns 0 when resolved, -ENOENT when the
 * frame is unknown (then *filename = "<unknown>", *lineno = 0), or
 * 1 when the frame must be skipped as tracemalloc skips it (3.11+ frames still
 * in their prologue). */
int tm_symbolize_frame(struct tm_symbolizer *s, uint64_t code, uint64_t lasti,
		       const char **filename, uint32_t *lineno);

/* The same, and *name (when name is not NULL) the code object's
 * co_qualname (3.11+) or co_name (3.8-3.10), interned like *filename, or
 * NULL when unknown or unreadable. */
int tm_symbolize_frame_named(struct tm_symbolizer *s, uint64_t code, uint64_t lasti,
			     const char **filename, uint32_t *lineno, const char **name);

/* The same for a frame BPF recorded with the identity check of its code
 * object (TM_CODE_CHECK: co_filename pointer and co_firstlineno as they were
 * while the frame ran; 0: unknown, as tm_symbolize_frame). An object read
 * with that identity answers without reading memory again, whatever the
 * address holds now; one never read is looked for in the images BPF sent
 * (tm_symbolizer_add_image), then in memory, which must still hold that
 * identity: otherwise the frame is "<unknown>", never another function's. */
int tm_symbolize_frame_checked(struct tm_symbolizer *s, uint64_t code, uint64_t lasti,
			       uint64_t check, const char **filename, uint32_t *lineno,
			       const char **name);

/* A copy of a code object and the objects it points at, taken by BPF the
 * first time a stack named it (struct tm_code_image of bpf/tmbpf.h, size
 * bytes): used instead of the target's memory when the object is
 * symbolized, even after it died. Returns 0, -EINVAL for a malformed
 * image, -ENOMEM. */
int tm_symbolizer_add_image(struct tm_symbolizer *s, const void *image, size_t size);

/* Start a pass (e.g. one snapshot): from now until the next call, each code
 * object is checked against the target's memory once instead of at every
 * tm_symbolize_frame call. Without any call, every lookup is checked. */
void tm_symbolizer_begin_pass(struct tm_symbolizer *s);

/* Drop cached code objects (e.g. between periodic snapshots of a long run). */
void tm_symbolizer_flush(struct tm_symbolizer *s);

#endif
