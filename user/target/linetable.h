/* Line-number tables of CPython code objects, decoded exactly as each
 * version's PyCode_Addr2Line does. Pure functions over bytes copied out of
 * the target: no I/O.
 *
 *   3.8, 3.9  co_lnotab: (addr_incr u8, line_incr i8) pairs; addresses in
 *             bytes of co_code; lines accumulate while addr <= lasti.
 *   3.10      co_linetable: (sdelta u8 bytes, ldelta i8) ranges; ldelta -128
 *             marks a range without a line.
 *   3.11+     location table: entries of (header byte with bit 7 set, code
 *             (b >> 3) & 15, length (b & 7) + 1 code units) plus varints;
 *             code 15 = no location, 13/14 carry a signed line delta,
 *             10-12 add code - 10, 0-9 keep the line.
 * addr is always a byte offset into the code (callers convert: 3.10's
 * f_lasti is in code units, 3.11+ have an instruction pointer). */
#ifndef TM_TARGET_LINETABLE_H
#define TM_TARGET_LINETABLE_H

#include <stddef.h>
#include <stdint.h>

#include "target/layouts.h"

/* Line of byte offset addr, or -1 when the table gives none (tracemalloc
 * then shows 0). A negative addr (frame not started) gives firstlineno. */
int tm_lnotab_line(const uint8_t *tab, size_t len, int firstlineno, int64_t addr);
int tm_linetable310_line(const uint8_t *tab, size_t len, int firstlineno, int64_t addr);
int tm_locations_line(const uint8_t *tab, size_t len, int firstlineno, int64_t addr);

/* Dispatch on kind. */
int tm_linetable_line(enum tm_linetable_kind kind, const uint8_t *tab, size_t len,
		      int firstlineno, int64_t addr);

#endif
