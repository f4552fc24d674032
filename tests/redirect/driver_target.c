/* Cross-check of devirt.c and redirect.c with the real target discovery
 * (tm_target_open, user/target/target.c), on any CPython: PIE shared
 * libpython included. tests/redirect/run.sh skips it when target.c does not
 * build yet.
 *
 *   driver_target scan PID       coverage line and defaults
 *   driver_target cycle PID N    N x (apply; sleep; restore), pointers checked
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "placement/devirt.h"
#include "patch/redirect.h"
#include "target/target.h"

static int same(const struct tm_target *a, const struct tm_allocator *b)
{
	return !memcmp(a->alloc, b, sizeof(a->alloc));
}

int main(int argc, char **argv)
{
	struct tm_allocator orig[TM_NDOMAINS];
	struct tm_target t;
	struct tm_devirt d;
	struct tm_redirect r;
	char err[256];
	int n, rc;

	if (argc < 3 || (strcmp(argv[1], "scan") && (strcmp(argv[1], "cycle") || argc != 4))) {
		fprintf(stderr, "usage: driver_target scan PID | cycle PID N\n");
		return 2;
	}
	rc = tm_target_open(atoi(argv[2]), &t, err, sizeof(err));
	if (!rc)
		rc = tm_devirt_scan(t.elf_path, t.load_bias, t.alloc, &d);
	if (rc) {
		printf("open/scan: %s\n", err);
		return 1;
	}
	printf("elf %s pie %d stripped %d defaults %d/%d guards %u pad 0x%" PRIx64 "+%u\n",
	       t.elf_path, d.pie, d.stripped, d.defaults_known, d.defaults, d.guards, d.pad_addr,
	       d.pad_len);
	printf("coverage: %s\n", tm_devirt_coverage_str(&d));
	if (!strcmp(argv[1], "scan"))
		return 0;
	memcpy(orig, t.alloc, sizeof(orig));
	n = atoi(argv[3]);
	for (int i = 0; i < n; i++) {
		struct timespec ts = {0, 5000000};

		rc = tm_redirect_apply(&t, &d, &r, err, sizeof(err));
		if (rc) {
			printf("cycle %d: apply: %s\n", i, err);
			return 1;
		}
		nanosleep(&ts, NULL);
		rc = tm_redirect_restore(&r, err, sizeof(err));
		if (!rc)
			rc = tm_target_read_allocators(&t);
		if (rc || !same(&t, orig)) {
			printf("cycle %d: restore: %s\n", i, rc ? err : "pointers differ");
			return 1;
		}
	}
	printf("cycles %d ok: %s\n", n, r.summary);
	return 0;
}
