/* Names of the allocator vocabulary (allocators.h). */
#include "placement/allocators.h"

const char *tm_alloc_fn_name(enum tm_alloc_fn fn)
{
	static const char *const names[TM_NFNS] = {"malloc", "calloc", "realloc", "free"};

	return (unsigned)fn < TM_NFNS ? names[fn] : "?";
}

const char *tm_alloc_domain_name(enum tm_alloc_domain d)
{
	static const char *const names[TM_NDOMAINS] = {"raw", "mem", "obj"};

	return (unsigned)d < TM_NDOMAINS ? names[d] : "?";
}
