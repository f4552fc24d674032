/* n blocks of 8 bytes from PyMem_Malloc, never freed: one call from one
 * Python line makes them all (tests/e2e/live/sampled_lines.py), without the
 * objects a ctypes call per block would allocate. Called through
 * ctypes.PyDLL, so the GIL is held as PyMem_Malloc requires. */
#include <stddef.h>

void *PyMem_Malloc(size_t n);

long tm_alloc8(long n)
{
	long made = 0;

	for (long i = 0; i < n; i++)
		made += PyMem_Malloc(8) != NULL;
	return made;
}
