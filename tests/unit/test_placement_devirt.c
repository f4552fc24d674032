/* Guard detection (devirt.c) on a fixture compiled here
 * (tests/unit/fixtures/devirt_guards.c), non-PIE and PIE: three allocator
 * structs as CPython lays them out, call sites that compare the live pointer
 * with the default before calling through it, and one compare that is not a
 * guard. Expected counts are in the fixture's header comment. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "placement/devirt.h"
#include "placement/elf_file.h"

static const char *const struct_names[TM_NDOMAINS] = { "alloc_raw", "alloc_mem", "alloc_obj" };

/* The structs as the file initializes them (what a fresh process holds). */
static int file_allocators(struct tm_elf *e, struct tm_allocator live[TM_NDOMAINS])
{
	for (int d = 0; d < TM_NDOMAINS; d++) {
		struct tm_elf_sym sym;
		const char *fns[4] = { "raw_malloc", "raw_calloc", "raw_realloc", "raw_free" };
		const char *obj[4] = { "obj_malloc", "obj_calloc", "obj_realloc", "obj_free" };
		uint64_t v[4];

		if (tm_elf_symbol(e, struct_names[d], &sym))
			return -ENOENT;
		for (int f = 0; f < 4; f++) {
			struct tm_elf_sym fs;

			if (tm_elf_symbol(e, d == TM_DOM_RAW ? fns[f] : obj[f], &fs))
				return -ENOENT;
			v[f] = fs.value;
		}
		live[d] = (struct tm_allocator){ .ctx = 0, .malloc_fn = v[0], .calloc_fn = v[1],
						 .realloc_fn = v[2], .free_fn = v[3],
						 .struct_addr = sym.value };
	}
	return 0;
}

static const struct tm_devirt_impl *impl_of(const struct tm_devirt *d, uint64_t addr)
{
	for (unsigned k = 0; k < d->nimpls; k++)
		if (d->impl[k].addr == addr)
			return &d->impl[k];
	return NULL;
}

static void test_fixture(const char *path, const char *tag)
{
	struct tm_allocator live[TM_NDOMAINS];
	const struct tm_devirt_impl *om, *of, *rm, *rc;
	struct tm_elf_sym stub;
	uint64_t obj_malloc = 0;
	struct tm_devirt *d = calloc(1, sizeof(*d));
	struct tm_elf *e = tm_elf_open(path);
	int err;

	CHECK(e != NULL, "devirt %s: fixture %s opens", tag, path);
	if (!e || !d || file_allocators(e, live)) {
		CHECK(0, "devirt %s: fixture symbols", tag);
		goto out;
	}
	/* A fresh process: every pointer holds its default. */
	err = tm_devirt_scan(path, 0, live, d);
	CHECK(err == 0, "devirt %s: scan succeeds (%d)", tag, err);
	CHECK(d->defaults_known && d->defaults, "devirt %s: defaults read from the file (%s) and live",
	      tag, d->pie ? "RELATIVE relocations" : "initialized data");
	CHECK(d->pie == !strcmp(tag, "PIE"), "devirt %s: PIE detected as %d", tag, d->pie);
	CHECK(d->nimpls == 8, "devirt %s: 8 distinct live functions (%u)", tag, d->nimpls);
	om = impl_of(d, live[TM_DOM_OBJ].malloc_fn);
	of = impl_of(d, live[TM_DOM_OBJ].free_fn);
	rm = impl_of(d, live[TM_DOM_RAW].malloc_fn);
	CHECK(om && om->guards == 3 && om->compares == 4,
	      "devirt %s: obj malloc: 3 guards, 4 compares (got %u, %u)", tag, om ? om->guards : 0,
	      om ? om->compares : 0);
	CHECK(om && om->domains == ((1u << TM_DOM_MEM) | (1u << TM_DOM_OBJ)) && om->guards_live,
	      "devirt %s: obj malloc named by mem and obj, guards live", tag);
	CHECK(of && of->guards == 2, "devirt %s: obj free: 2 guards (got %u)", tag,
	      of ? of->guards : 0);
	CHECK(rm && rm->guards == 1, "devirt %s: raw malloc: 1 guard (got %u)", tag,
	      rm ? rm->guards : 0);
	rc = impl_of(d, live[TM_DOM_RAW].calloc_fn);
	CHECK(rc && tm_elf_symbol(e, "jmp_stub", &stub) == 0 && rc->jmps == 1 &&
		      rc->jmp_stub == stub.value && rc->jmp_stub_probe_ok,
	      "devirt %s: the `jmp rel32 <raw_calloc>` stub found and proven an instruction", tag);
	obj_malloc = om ? om->addr : 0;
	CHECK(d->guards == 6 && d->coverage == TM_COVERAGE_PARTIAL,
	      "devirt %s: 6 live guards, coverage partial (%u, %s)", tag, d->guards,
	      tm_coverage_str(d->coverage));
	CHECK(strstr(d->detail, "mem/obj malloc 3") != NULL, "devirt %s: detail names the counts: %s",
	      tag, d->detail);
	CHECK(d->pad_addr && d->pad_len >= 16 && d->pad_addr % 16 == 0,
	      "devirt %s: zero padding after the text (%u bytes)", tag, d->pad_len);

	/* PYTHONMALLOC=malloc: mem and obj name the raw functions. obj's guards
	 * compare against obj_malloc, which nobody names: not live. */
	live[TM_DOM_MEM].malloc_fn = live[TM_DOM_OBJ].malloc_fn = live[TM_DOM_RAW].malloc_fn;
	live[TM_DOM_MEM].free_fn = live[TM_DOM_OBJ].free_fn = live[TM_DOM_RAW].free_fn;
	err = tm_devirt_scan(path, 0, live, d);
	rm = impl_of(d, live[TM_DOM_RAW].malloc_fn);
	CHECK(err == 0 && obj_malloc && !impl_of(d, obj_malloc) && rm && rm->guards_live &&
		      rm->guards == 1,
	      "devirt %s: pointers moved to the raw functions: obj guards gone, raw guard live", tag);
	CHECK(d->defaults_known && !d->defaults && d->coverage == TM_COVERAGE_PARTIAL &&
		      strstr(tm_devirt_coverage_str(d), "already changed"),
	      "devirt %s: changed pointers reported (%s)", tag, tm_devirt_coverage_str(d));

	/* Every pointer moved away from its default (a foreign hook): no live guard. */
	for (int dom = 0; dom < TM_NDOMAINS; dom++)
		live[dom].malloc_fn = live[dom].calloc_fn = live[dom].realloc_fn =
			live[dom].free_fn = live[TM_DOM_RAW].struct_addr + 0x1000;
	err = tm_devirt_scan(path, 0, live, d);
	CHECK(err == 0 && d->guards == 0 && d->coverage == TM_COVERAGE_FULL,
	      "devirt %s: hooked pointers: no live guard, coverage full", tag);
out:
	tm_elf_close(e);
	free(d);
}

int main(int argc, char **argv)
{
	char dir[4096], path[4200];
	int err;

	(void)argc;
	/* build/tests/test_placement_devirt -> build/fixtures/ */
	snprintf(dir, sizeof(dir), "%s", argv[0]);
	snprintf(path, sizeof(path), "%s/../fixtures/devirt_guards", dirname(dir));
	test_fixture(path, "non-PIE");
	snprintf(dir, sizeof(dir), "%s", argv[0]);
	snprintf(path, sizeof(path), "%s/../fixtures/devirt_guards_pie", dirname(dir));
	test_fixture(path, "PIE");
	err = tm_devirt_scan("/nonexistent/tmbpf-fixture", 0, (struct tm_allocator[3]){ 0 },
			     &(struct tm_devirt){ 0 });
	CHECK(err == -ENOENT, "devirt: a missing file is -ENOENT (%d)", err);
	return CHECK_DONE();
}
