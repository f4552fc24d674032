/* CPython's allocator vocabulary, shared by every layer that reasons about
 * the allocator pointers: the three domains of PyMem_SetAllocator, the four
 * functions of a PyMemAllocatorEx, and the values one such struct holds. */
#ifndef TM_PLACEMENT_ALLOCATORS_H
#define TM_PLACEMENT_ALLOCATORS_H

#include <stdint.h>

/* PYMEM_DOMAIN_RAW, _MEM, _OBJ (tracemalloc records all three as domain 0). */
enum tm_alloc_domain { TM_DOM_RAW = 0, TM_DOM_MEM = 1, TM_DOM_OBJ = 2, TM_NDOMAINS = 3 };

/* The four functions of a PyMemAllocatorEx, in struct order (after ctx). */
enum tm_alloc_fn { TM_FN_MALLOC = 0, TM_FN_CALLOC, TM_FN_REALLOC, TM_FN_FREE, TM_NFNS };

/* One allocator struct as a target holds it (PyMemAllocatorEx), or as its
 * file initializes it. */
struct tm_allocator {
	uint64_t ctx;
	uint64_t malloc_fn, calloc_fn, realloc_fn, free_fn; /* absolute addresses in the target */
	uint64_t struct_addr;                               /* where the struct lives */
};

/* The function pointer fn of a (its malloc_fn .. free_fn). */
static inline uint64_t tm_allocator_fn(const struct tm_allocator *a, enum tm_alloc_fn fn)
{
	const uint64_t f[TM_NFNS] = { a->malloc_fn, a->calloc_fn, a->realloc_fn, a->free_fn };

	return (unsigned)fn < TM_NFNS ? f[fn] : 0;
}

/* "malloc" .. "free"; "raw", "mem", "obj". */
const char *tm_alloc_fn_name(enum tm_alloc_fn fn);
const char *tm_alloc_domain_name(enum tm_alloc_domain d);

#endif
