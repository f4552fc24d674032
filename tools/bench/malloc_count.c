/* LD_PRELOAD allocation counter for the capture benchmark.
 *
 * With PYTHONMALLOC=malloc every PyMem_Raw*, PyMem_* and PyObject_* call becomes exactly one
 * libc call, so counting malloc/calloc/realloc/free counts the allocation events that
 * tracemalloc (and tmbpf) see.  benchlib.py reads the counters through ctypes before and after
 * the timed window.  Built by make into build/bench/malloc_count.so.
 *
 * What is counted, exactly: every call of malloc, calloc and realloc (realloc(NULL, n) and
 * realloc(p, 0) included) and every free of a non-NULL pointer, made through the interposable
 * symbols by anyone in the process: the interpreter, extension modules, and libc itself where
 * it calls malloc (strdup, fopen, ...).  posix_memalign, aligned_alloc, memalign, valloc and
 * pvalloc are not counted (CPython's allocators do not use them).
 *
 * Only used for a separate counting run: its timings are never reported. */
#include <stddef.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t nmemb, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);

unsigned long tmbench_mallocs;
unsigned long tmbench_callocs;
unsigned long tmbench_reallocs;
unsigned long tmbench_frees;

static inline void bump(unsigned long *counter)
{
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

void *malloc(size_t size)
{
	bump(&tmbench_mallocs);
	return __libc_malloc(size);
}

void *calloc(size_t nmemb, size_t size)
{
	bump(&tmbench_callocs);
	return __libc_calloc(nmemb, size);
}

void *realloc(void *ptr, size_t size)
{
	bump(&tmbench_reallocs);
	return __libc_realloc(ptr, size);
}

void free(void *ptr)
{
	if (ptr)
		bump(&tmbench_frees);
	__libc_free(ptr);
}
