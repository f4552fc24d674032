/* The memory check that guards pymalloc prediction (pymalloc_predict.c):
 * usedpools[] as CPython lays it out must pass, anything else must not. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "target/pymalloc_predict.h"

#define BASE 0x7f0000100000ull

static void fresh(uint64_t *u)
{
	/* PTA(i): every class an empty list head, 16 bytes below its entry. */
	for (int i = 0; i < 32; i++)
		u[2 * i] = u[2 * i + 1] = BASE + 16 * (uint64_t)i - 16;
}

int main(void)
{
	uint64_t u[64];

	fresh(u);
	CHECK(tm_pymalloc_usedpools_valid(u, BASE), "fresh usedpools (all classes empty) passes");
	u[4] = 0x7f0000204000ull;
	u[5] = 0x7f0000208000ull;
	CHECK(tm_pymalloc_usedpools_valid(u, BASE), "a class with 4 KiB-aligned pools passes");
	CHECK(!tm_pymalloc_usedpools_valid(u, BASE + 8), "the same bytes at another address fail");
	u[6] = 0x7f0000204010ull;
	u[7] = 0x7f0000204010ull;
	CHECK(!tm_pymalloc_usedpools_valid(u, BASE), "an unaligned pool pointer fails");
	fresh(u);
	for (int i = 0; i < 32; i++)
		u[2 * i] = u[2 * i + 1] = 0x7f0000200000ull + 0x4000ull * (uint64_t)i;
	CHECK(tm_pymalloc_usedpools_valid(u, BASE),
	      "no empty class at all passes the array check (the pool headers decide)");
	memset(u, 0, sizeof(u));
	CHECK(!tm_pymalloc_usedpools_valid(u, BASE), "zeros fail");
	return CHECK_DONE();
}
