/* libFuzzer target: the tracemalloc pickle reader on arbitrary bytes.
 * Seeds: tests/fuzz/corpus/pickle (Snapshot.dump() files from CPython
 * 3.8-3.13 and files tmbpf wrote). Loaded snapshots are also written back as
 * a pickle to exercise the writer on whatever the reader accepted. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/snapshot_io.h"
#include "core/snapshot_io_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct tm_snapshot *s = tm_pickle_load_mem(data, size, err, sizeof(err));
	char *buf = NULL;
	size_t len = 0;
	FILE *fp;

	if (!s)
		return 0;
	fp = open_memstream(&buf, &len);
	if (fp) {
		tm_pickle_write(s, fp, err, sizeof(err));
		fclose(fp);
	}
	if (buf) {
		struct tm_snapshot *again = tm_pickle_load_mem(buf, len, err, sizeof(err));

		if (!again || again->ntraces != s->ntraces)
			abort(); /* what we write, we must read */
		tm_snapshot_free(again);
	}
	free(buf);
	tm_snapshot_free(s);
	return 0;
}
