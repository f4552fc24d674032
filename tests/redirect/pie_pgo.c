/* A PIE whose indirect allocator calls gcc's PGO turns into guards, the
 * shape CPython's PGO builds have: `lea impl(%rip),%reg; cmp %reg,%rax;
 * jne -> call *%rax`, else the inlined body. tests/redirect/run.sh builds it
 * with -fprofile-generate, runs it, rebuilds with -fprofile-use and checks
 * that devirt.c counts one guard per function. */
#include <stdio.h>
#include <stdlib.h>

struct alloc {
	void *ctx;
	void *(*malloc)(void *ctx, size_t n);
	void (*free)(void *ctx, void *p);
};

static long nmalloc, nfree;

static void *my_malloc(void *ctx, size_t n)
{
	(void)ctx;
	nmalloc++;
	return malloc(n);
}

static void my_free(void *ctx, void *p)
{
	(void)ctx;
	nfree++;
	free(p);
}

struct alloc allocator = {NULL, my_malloc, my_free};

__attribute__((noinline)) char *obj_new(size_t n)
{
	char *p = allocator.malloc(allocator.ctx, n);

	if (p)
		p[0] = 1;
	return p;
}

__attribute__((noinline)) void obj_del(char *p)
{
	if (p[0])
		allocator.free(allocator.ctx, p);
	nfree += 2;
}

int main(void)
{
	long s = 0;

	for (long i = 0; i < 1000000; i++) {
		char *p = obj_new(16 + (i & 7));

		s += p[0];
		obj_del(p);
	}
	printf("%ld %ld %ld\n", s, nmalloc, nfree);
	return 0;
}
