/* The tracemalloc pickle reader and writer: real CPython 3.8 and 3.12 dumps,
 * every truncation and single-byte corruption of them, hand-made hostile
 * pickles, and write/read round trips. */
#include <errno.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/snapshot_io.h"
#include "snapshot_samples.h"

/* tm_pickle_write is private to the library; reach it through save+load. */
static unsigned char *write_pickle(const struct tm_snapshot *snap, size_t *len)
{
	char path[] = "/tmp/tmbpf-test-pickle-XXXXXX", err[256];
	unsigned char *buf = NULL;
	FILE *fp;
	long n;
	int fd = mkstemp(path);

	if (fd < 0)
		return NULL;
	close(fd);
	if (tm_snapshot_save(snap, path, TM_FORMAT_PICKLE, err, sizeof(err)))
		goto out;
	fp = fopen(path, "rb");
	if (!fp)
		goto out;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	*len = (size_t)n;
	fclose(fp);
out:
	unlink(path);
	return buf;
}

static void test_real_pickles(void)
{
	char err[256] = "";
	struct tm_snapshot *s = tm_pickle_load_mem(py312_pickle, sizeof(py312_pickle), err, sizeof(err));
	const struct tm_traceback *tb;

	CHECK(s != NULL, "pickle: CPython 3.12 dump loads (%s)", err);
	if (!s)
		return;
	CHECK(s->ntraces == 10 && s->traceback_limit == 5, "pickle: 3.12: 10 traces, limit 5");
	CHECK(tm_snapshot_ntracebacks(s) == 3, "pickle: 3.12: shared tracebacks interned to 3");
	tb = s->traces[1].traceback;
	CHECK(tb->nframe == 5 && tb->frames[0].lineno == 5 && tb->frames[4].lineno == 7,
	      "pickle: 3.12: frames kept most recent first");
	CHECK_STREQ(tb->frames[0].filename, "/tmp/pk/gen.py", "pickle: 3.12: file name");
	CHECK(s->traces[1].size_bytes == 101 && s->traces[1].total_nframe == 5 &&
	      s->traces[1].domain == 0, "pickle: 3.12: trace fields");
	CHECK(s->traces[0].traceback->frames[0].filename == tb->frames[0].filename,
	      "pickle: 3.12: file names interned");
	tm_snapshot_free(s);

	{
		unsigned char extra[sizeof(py312_pickle) + 1];

		memcpy(extra, py312_pickle, sizeof(py312_pickle));
		extra[sizeof(py312_pickle)] = '.';
		s = tm_pickle_load_mem(extra, sizeof(extra), err, sizeof(err));
		CHECK(!s && strstr(err, "after STOP"), "pickle: data after STOP rejected: %s", err);
		tm_snapshot_free(s);
	}
	s = tm_pickle_load_mem(py38_pickle, sizeof(py38_pickle), err, sizeof(err));
	CHECK(s != NULL, "pickle: CPython 3.8 dump (3-tuples) loads (%s)", err);
	if (!s)
		return;
	CHECK(s->ntraces == 11 && s->traces[0].total_nframe == TM_NFRAME_UNKNOWN,
	      "pickle: 3.8: 11 traces, total_nframe unknown");
	tm_snapshot_free(s);
}

/* Every prefix fails cleanly; every byte changed either fails or loads. */
static void test_truncated_and_corrupt(const unsigned char *data, size_t len, const char *name)
{
	unsigned char *copy = malloc(len);
	size_t bad_prefix = 0, bad_err = 0, loaded = 0, failed = 0;
	char err[256];

	for (size_t n = 0; n < len; n++) {
		struct tm_snapshot *s;

		err[0] = '\0';
		s = tm_pickle_load_mem(data, n, err, sizeof(err));
		bad_prefix += s != NULL;
		bad_err += !s && (!err[0] || strchr(err, '\n'));
		tm_snapshot_free(s);
	}
	CHECK(!bad_prefix && !bad_err, "pickle: %s: all %zu truncations rejected with one line",
	      name, len);
	for (size_t i = 0; i < len; i++) {
		static const unsigned char vals[] = { 0x00, 0xff, 0x80, 0x7f, '(', 't', 'h', 0x94 };

		for (size_t v = 0; v < sizeof(vals); v++) {
			struct tm_snapshot *s;

			memcpy(copy, data, len);
			copy[i] = copy[i] == vals[v] ? (unsigned char)(vals[v] ^ 1) : vals[v];
			err[0] = '\0';
			s = tm_pickle_load_mem(copy, len, err, sizeof(err));
			loaded += s != NULL;
			failed += !s;
			bad_err += !s && !err[0];
			tm_snapshot_free(s);
		}
	}
	CHECK(!bad_err && failed > 0, "pickle: %s: %zu corruptions rejected, %zu still valid, no crash",
	      name, failed, loaded);
	free(copy);
}

struct hostile {
	const char *name;
	const char *bytes;
	size_t len;
	const char *want; /* substring of the error */
};

#define H(name, lit, want) { name, lit, sizeof(lit) - 1, want }

static const struct hostile hostile[] = {
	H("empty", "", "not a pickle"),
	H("not a pickle", "hello", "not a pickle"),
	H("protocol 0", "\x80\x00N.", "protocol"),
	H("a bare None", "\x80\x05N.", "another object"),
	H("no STOP", "\x80\x05N", "no STOP"),
	H("huge string length", "\x80\x05X\xff\xff\xff\x7f", "truncated"),
	H("huge BINUNICODE8", "\x80\x05\x8d\xff\xff\xff\xff\xff\xff\xff\xff", "truncated"),
	H("huge FRAME", "\x80\x05\x95\xff\xff\xff\xff\xff\xff\xff\x7fN.", "frame"),
	H("memo out of range", "\x80\x05j\xff\xff\xff\x00.", "memo index"),
	H("other module", "\x80\x05\x8c\x02os\x8c\x06system\x93.", "another module"),
	H("other class", "\x80\x05\x8c\x0btracemalloc\x8c\x05Trace\x93.", "unexpected class"),
	H("REDUCE opcode", "\x80\x05NNR.", "unsupported pickle opcode 0x52"),
	H("marks without end", "\x80\x05((((((((((((.", "another object"),
	H("tuple without mark", "\x80\x05t.", "no MARK"),
	H("bad UTF-8", "\x80\x05\x8c\x02\xc3\x28.", "UTF-8"),
	H("overlong UTF-8", "\x80\x05\x8c\x02\xc0\x80.", "UTF-8"),
	H("append to nothing", "\x80\x05Na.", "traces list"),
	H("negative domain", "\x80\x05J\xff\xff\xff\xffK\x01\x8c\x01" "a\x94K\x01\x86\x85\x87.", "domain"),
	H("integer wider than 64 bits", "\x80\x05\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.", "64 bits"),
	H("empty traceback", "\x80\x05K\x00K\x01)\x87.", "unexpected 3-tuple"),
	H("NUL in file name", "\x80\x05\x8c\x02" "a\x00K\x01\x86\x85.", "NUL"),
	H("trailing data", "\x80\x05N.extra", "another object"),
};

static void test_hostile(void)
{
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		char err[256] = "";
		struct tm_snapshot *s = tm_pickle_load_mem(hostile[i].bytes, hostile[i].len, err,
							   sizeof(err));

		CHECK(!s && strstr(err, hostile[i].want), "pickle: hostile '%s' rejected: %s",
		      hostile[i].name, err);
		tm_snapshot_free(s);
	}
}

static void test_round_trip(size_t n)
{
	struct tm_snapshot *a = sample_snapshot(n), *b;
	unsigned char *buf;
	size_t len = 0;
	char err[256] = "";

	buf = write_pickle(a, &len);
	CHECK(buf != NULL, "pickle: write %zu traces", n);
	if (!buf) {
		tm_snapshot_free(a);
		return;
	}
	b = tm_pickle_load_mem(buf, len, err, sizeof(err));
	CHECK(b && same_traces(a, b, 0), "pickle: %zu traces round-trip (%zu bytes) %s", n, len, err);
	CHECK(b && tm_snapshot_ntracebacks(b) == tm_snapshot_ntracebacks(a),
	      "pickle: %zu traces: tracebacks stay shared", n);
	CHECK(len > 20 && !memcmp(buf, "\x80\x04\x95", 3), "pickle: protocol 4 with FRAME opcodes");
	free(buf);
	tm_snapshot_free(a);
	tm_snapshot_free(b);
}

int main(void)
{
	test_real_pickles();
	test_truncated_and_corrupt(py312_pickle, sizeof(py312_pickle), "3.12 dump");
	test_truncated_and_corrupt(py38_pickle, sizeof(py38_pickle), "3.8 dump");
	test_hostile();
	test_round_trip(0);
	test_round_trip(1);
	test_round_trip(2);
	test_round_trip(2345);
	return CHECK_DONE();
}
