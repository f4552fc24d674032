/* The native format: round trips with every field, every truncation and
 * byte flip of a real file, and hand-built hostile files (valid checksums,
 * lying contents) such as a header claiming 2^40 traces. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "core/snapshot_io.h"
#include "snapshot_samples.h"

static unsigned char *read_all(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	unsigned char *buf;
	long n;

	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

static unsigned char *write_native(const struct tm_snapshot *s, size_t *len, char *path)
{
	char err[256];
	int fd = mkstemp(path);

	if (fd < 0)
		return NULL;
	close(fd);
	if (tm_snapshot_save(s, path, TM_FORMAT_NATIVE, err, sizeof(err)))
		return NULL;
	return read_all(path, len);
}

static int same_meta(const struct tm_snapshot_meta *a, const struct tm_snapshot_meta *b)
{
	return a->pid == b->pid && !strcmp(a->cmdline, b->cmdline) &&
	       !strcmp(a->python_version, b->python_version) && !strcmp(a->hostname, b->hostname) &&
	       !strcmp(a->coverage_mode, b->coverage_mode) && a->start_ns == b->start_ns &&
	       a->snapshot_ns == b->snapshot_ns && a->has_traced_memory == b->has_traced_memory &&
	       a->traced_current_bytes == b->traced_current_bytes &&
	       a->traced_peak_bytes == b->traced_peak_bytes && a->ndrops == b->ndrops &&
	       !memcmp(a->drops, b->drops, sizeof(a->drops[0]) * a->ndrops);
}

static void test_round_trip(size_t n)
{
	char path[] = "/tmp/tmbpf-test-native-XXXXXX", err[256] = "";
	struct tm_snapshot *a = sample_snapshot(n), *b, *c;
	unsigned char *buf;
	size_t len = 0;

	buf = write_native(a, &len, path);
	CHECK(buf != NULL, "native: write %zu traces", n);
	b = tm_snapshot_load(path, err, sizeof(err));
	CHECK(b && same_traces(a, b, 1), "native: %zu traces round-trip from a file (%zu bytes) %s",
	      n, len, err);
	CHECK(b && same_meta(&a->meta, &b->meta), "native: %zu traces: metadata kept", n);
	CHECK(b && tm_snapshot_ntracebacks(a) == tm_snapshot_ntracebacks(b),
	      "native: %zu traces: traceback table kept", n);
	c = buf ? tm_snapshot_load_mem(buf, len, err, sizeof(err)) : NULL;
	CHECK(c && same_traces(a, c, 1), "native: %zu traces round-trip from memory", n);
	tm_snapshot_free(a);
	tm_snapshot_free(b);
	tm_snapshot_free(c);
	free(buf);
	unlink(path);
}

static void test_every_byte(void)
{
	char path[] = "/tmp/tmbpf-test-native-XXXXXX", err[256];
	struct tm_snapshot *a = sample_snapshot(30);
	size_t len = 0, loaded = 0, bad_err = 0;
	unsigned char *buf = write_native(a, &len, path);

	if (!buf) {
		CHECK(0, "native: write a small file");
		return;
	}
	for (size_t n = 0; n < len; n++) {
		struct tm_snapshot *s;

		err[0] = '\0';
		s = tm_native_load_mem(buf, n, err, sizeof(err));
		loaded += s != NULL;
		bad_err += !s && (!err[0] || strchr(err, '\n'));
		tm_snapshot_free(s);
	}
	CHECK(!loaded && !bad_err, "native: all %zu truncations rejected with one line", len);
	loaded = bad_err = 0;
	for (size_t i = 0; i < len; i++) {
		for (unsigned bit = 0; bit < 8; bit++) {
			struct tm_snapshot *s;

			buf[i] ^= (unsigned char)(1u << bit);
			err[0] = '\0';
			s = tm_native_load_mem(buf, len, err, sizeof(err));
			loaded += s != NULL;
			bad_err += !s && !err[0];
			tm_snapshot_free(s);
			buf[i] ^= (unsigned char)(1u << bit);
		}
	}
	CHECK(!loaded && !bad_err, "native: all %zu single-bit flips detected (checksums)", len * 8);
	tm_snapshot_free(a);
	free(buf);
	unlink(path);
}

/* Hand-built files with correct checksums. */
struct fb {
	unsigned char b[4096];
	size_t len;
};

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void fb_header(struct fb *f, unsigned version)
{
	memcpy(f->b, TM_NATIVE_MAGIC, TM_NATIVE_MAGIC_LEN);
	f->b[8] = (unsigned char)version;
	f->b[9] = 0;
	f->b[10] = f->b[11] = 0;
	put32(f->b + 12, (uint32_t)crc32(0, f->b, 12));
	f->len = 16;
}

static void fb_chunk(struct fb *f, const char *type, const void *raw, size_t raw_len,
		     uint32_t claim_raw)
{
	unsigned char *h = f->b + f->len;
	uLongf clen = sizeof(f->b) - f->len - 20;

	compress2(h + 20, &clen, raw, (uLong)raw_len, 6);
	memcpy(h, type, 4);
	put32(h + 4, claim_raw ? claim_raw : (uint32_t)raw_len);
	put32(h + 8, (uint32_t)clen);
	put32(h + 12, (uint32_t)crc32(0, h + 20, (uInt)clen));
	put32(h + 16, (uint32_t)crc32(0, h, 16));
	f->len += 20 + clen;
}

static size_t varint(unsigned char *p, uint64_t v)
{
	size_t n = 0;

	do {
		p[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return n;
}

/* META holding only a counts field: ntraces, 1, 1, 1. */
static size_t meta_counts(unsigned char *m, uint64_t ntraces)
{
	unsigned char c[40];
	size_t cl = varint(c, ntraces), n = 0;

	cl += varint(c + cl, 1);
	cl += varint(c + cl, 1);
	cl += varint(c + cl, 1);
	m[n++] = 12; /* M_COUNTS */
	n += varint(m + n, cl);
	memcpy(m + n, c, cl);
	return n + cl;
}

static void expect_fail(struct fb *f, const char *want, const char *name)
{
	char err[256] = "";
	struct tm_snapshot *s = tm_native_load_mem(f->b, f->len, err, sizeof(err));

	CHECK(!s && strstr(err, want), "native: %s rejected: %s", name, err);
	tm_snapshot_free(s);
}

static void test_hostile(void)
{
	unsigned char m[64];
	struct fb f;

	fb_header(&f, 1);
	fb_chunk(&f, "META", m, meta_counts(m, 1ULL << 40), 0);
	expect_fail(&f, "claims 1099511627776 traces", "header claiming 2^40 traces");

	fb_header(&f, 1);
	fb_chunk(&f, "META", m, meta_counts(m, 1000000000), 0);
	expect_fail(&f, "more records than", "header claiming 10^9 traces in a tiny file");

	fb_header(&f, 3);
	expect_fail(&f, "version 3 is not supported", "format version 3");

	fb_header(&f, 1);
	f.b[0] = 'X';
	expect_fail(&f, "not a tmbpf native snapshot", "bad magic");

	fb_header(&f, 1);
	fb_chunk(&f, "META", m, meta_counts(m, 0), 0);
	fb_chunk(&f, "ABCD", "x", 1, 0);
	expect_fail(&f, "unknown chunk type", "unknown chunk type");

	fb_header(&f, 1);
	fb_chunk(&f, "META", m, meta_counts(m, 0), 0x7fffffff);
	expect_fail(&f, "too large", "chunk claiming 2 GiB");

	fb_header(&f, 1);
	fb_chunk(&f, "STRS", "\x00", 1, 0);
	expect_fail(&f, "first chunk is not META", "missing META");

	fb_header(&f, 1);
	fb_chunk(&f, "META", m, meta_counts(m, 0), 0);
	fb_chunk(&f, "FRMS", "\x01\x05\x01", 3, 0);
	expect_fail(&f, "string reference", "frame naming a missing string");

	fb_header(&f, 1);
	fb_chunk(&f, "META", m, meta_counts(m, 0), 0);
	fb_chunk(&f, "STRS", "\x01\x01" "a", 3, 0);
	fb_chunk(&f, "FRMS", "\x01\x00\x01", 3, 0);
	fb_chunk(&f, "TBKS", "\x01\x00\x00", 3, 0);
	expect_fail(&f, "empty traceback", "empty traceback");

	fb_header(&f, 1);
	fb_chunk(&f, "META", m, meta_counts(m, 0), 0);
	fb_chunk(&f, "STRS", "\x01\x01" "a", 3, 0);
	fb_chunk(&f, "FRMS", "\x01\x00\x01", 3, 0);
	fb_chunk(&f, "TBKS", "\x02\x01\x00\x00" "\x03\x01\x02\x00", 8, 0);
	expect_fail(&f, "shared frames 2 out of range", "sharing more frames than the earlier traceback has");

	fb_header(&f, 1);
	fb_chunk(&f, "META", m, meta_counts(m, 0), 0);
	fb_chunk(&f, "STRS", "\x01\x01" "a", 3, 0);
	fb_chunk(&f, "FRMS", "\x01\x00\x01", 3, 0);
	fb_chunk(&f, "TBKS", "\x01\x01\x02\x01\x00", 5, 0);
	expect_fail(&f, "traceback reference 2 out of range", "sharing with a traceback not yet read");

	fb_header(&f, 1);
	fb_chunk(&f, "META", m, meta_counts(m, 0), 0);
	fb_chunk(&f, "STRS", "\x01\x02" "a\x00", 4, 0);
	expect_fail(&f, "NUL", "NUL in a file name");

	fb_header(&f, 1);
	fb_chunk(&f, "META", m, meta_counts(m, 0), 0);
	fb_chunk(&f, "END!", "\x00\x00\x00\x00", 4, 0);
	f.b[f.len++] = 0;
	expect_fail(&f, "after the END", "data after END");

	fb_header(&f, 1);
	fb_chunk(&f, "META", m, meta_counts(m, 0), 0);
	fb_chunk(&f, "END!", "\x05\x00\x00\x00", 4, 0);
	expect_fail(&f, "trace count 5", "END count mismatch");

	fb_header(&f, 1);
	fb_chunk(&f, "META", m, meta_counts(m, 0), 0);
	expect_fail(&f, "no END chunk", "missing END");
}

/* Columns whose values are all equal are stored once. */
static void test_constant_columns(void)
{
	char path[] = "/tmp/tmbpf-test-native-XXXXXX", err[256] = "";
	struct tm_snapshot *a = tm_snapshot_new(), *b;
	struct tm_frame f = { tm_snapshot_intern_str(a, "x.py", 4), 1, NULL };
	struct tm_trace t = { .size_bytes = 64, .total_nframe = 1, .thread_id = 7,
			      .alloc_ns = 1000 };
	unsigned char *buf;
	size_t len = 0;

	t.traceback = tm_snapshot_intern_traceback(a, &f, 1);
	for (int i = 0; i < 70000; i++)
		tm_snapshot_add_trace(a, &t);
	buf = write_native(a, &len, path);
	b = tm_snapshot_load(path, err, sizeof(err));
	CHECK(b && same_traces(a, b, 1), "native: 70000 equal traces round-trip (%s)", err);
	CHECK(buf && len < 2000, "native: equal traces take %zu bytes", len);
	free(buf);
	unlink(path);
	tm_snapshot_free(a);
	tm_snapshot_free(b);
}

int main(void)
{
	test_constant_columns();
	test_round_trip(0);
	test_round_trip(1);
	test_round_trip(5000);
	test_round_trip(140000); /* several TRCS chunks */
	test_every_byte();
	test_hostile();
	return CHECK_DONE();
}
