/* libFuzzer target: the native snapshot reader (the streaming loader over
 * memory). Seeds: tests/fuzz/corpus/native.
 *
 * Checksums and compression stop most random mutations at the first chunk,
 * so inputs starting with 'B' are "build scripts" instead: records of
 * (type index, u16 length, payload) that the harness turns into a file with a
 * valid header, valid checksums and compressed chunks. That lets the fuzzer
 * reach every payload parser; other inputs are loaded as they are, which
 * fuzzes the framing. Accepted snapshots are written back and must load again. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/snapshot_io.h"
#include "core/snapshot_io_internal.h"

static const char *const types[] = { "META", "STRS", "FRMS", "TBKS", "TRCS", "END!" };

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* Turn a build script into a well-framed native file; NULL if malformed. */
static unsigned char *build(const uint8_t *data, size_t size, size_t *out_len)
{
	size_t cap = 16 + size * 2 + 4096, len = 16, pos = 1;
	unsigned char *out = malloc(cap);

	if (!out)
		return NULL;
	memcpy(out, TM_NATIVE_MAGIC, TM_NATIVE_MAGIC_LEN);
	/* both layouts of FRMS: version 1, and 2 (with function names) */
	out[8] = (unsigned char)(1 + (size > 1 && (data[1] & 0x80))), out[9] = 0, out[10] = 0, out[11] = 0;
	put32(out + 12, (uint32_t)crc32(0, out, 12));
	while (pos + 3 <= size) {
		unsigned type = data[pos] % 6;
		size_t n = (size_t)data[pos + 1] | (size_t)data[pos + 2] << 8;
		uLongf clen;
		unsigned char *h;

		pos += 3;
		if (n > size - pos)
			n = size - pos;
		clen = compressBound((uLong)n);
		if (cap - len < 20 + clen)
			break;
		h = out + len;
		if (compress2(h + 20, &clen, data + pos, (uLong)n, 1) != Z_OK)
			break;
		memcpy(h, types[type], 4);
		put32(h + 4, (uint32_t)n);
		put32(h + 8, (uint32_t)clen);
		put32(h + 12, (uint32_t)crc32(0, h + 20, (uInt)clen));
		put32(h + 16, (uint32_t)crc32(0, h, 16));
		len += 20 + clen;
		pos += n;
	}
	*out_len = len;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	unsigned char *built = NULL;
	struct tm_snapshot *s;
	char *buf = NULL;
	size_t len = 0;
	FILE *fp;

	if (size && data[0] == 'B') {
		built = build(data, size, &len);
		if (!built)
			return 0;
		data = built;
		size = len;
	}
	s = tm_native_load_mem(data, size, err, sizeof(err));
	free(built);
	if (!s)
		return 0;
	fp = open_memstream(&buf, &len);
	if (fp) {
		tm_native_write(s, fp, err, sizeof(err));
		fclose(fp);
	}
	if (buf) {
		struct tm_snapshot *again = tm_native_load_mem(buf, len, err, sizeof(err));

		if (!again || again->ntraces != s->ntraces)
			abort(); /* what we write, we must read */
		tm_snapshot_free(again);
	}
	free(buf);
	tm_snapshot_free(s);
	return 0;
}
