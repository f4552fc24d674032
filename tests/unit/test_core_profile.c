/* The views (pprof, folded stacks, flame graph page), block ages, frame
 * names in the native format, and outputs prepared before the work. The
 * pprof file is decoded here with a minimal protobuf reader; go tool pprof
 * reads it in tests/reports. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "core/age.h"
#include "core/snapshot_io.h"
#include "snapshot_samples.h"

static char dir[] = "/tmp/tmbpf-test-profile-XXXXXX";

/* a.py:1 <- main.py:10 (x3, 100 B each), b.py:2 <- main.py:10 (x1, 50 B);
 * allocated 1, 2, 3 and 10 s before the snapshot. */
static struct tm_snapshot *small_snapshot(int names)
{
	struct tm_snapshot *s = tm_snapshot_new();
	const char *main_py = tm_snapshot_intern_str(s, "main.py", 7);
	struct tm_frame fa[2] = { { tm_snapshot_intern_str(s, "a.py", 4), 1, NULL },
				  { main_py, 10, NULL } };
	struct tm_frame fb[2] = { { tm_snapshot_intern_str(s, "b.py", 4), 2, NULL },
				  { main_py, 10, NULL } };
	const struct tm_traceback *ta, *tb;
	uint64_t now = 1700000000000000000ull, s1 = 1000000000ull;

	if (names) {
		fa[0].name = tm_snapshot_intern_str(s, "Cache.get", 9);
		fa[1].name = fb[1].name = tm_snapshot_intern_str(s, "<module>", 8);
	}
	ta = tm_snapshot_intern_traceback(s, fa, 2);
	tb = tm_snapshot_intern_traceback(s, fb, 2);
	s->traceback_limit = 2;
	s->meta.snapshot_ns = now;
	for (int i = 0; i < 4; i++) {
		struct tm_trace t = { .size_bytes = i < 3 ? 100 : 50, .traceback = i < 3 ? ta : tb,
				      .thread_id = 7, .domain = 0, .total_nframe = 2 };

		t.alloc_ns = now - (i < 3 ? (uint64_t)(i + 1) * s1 : 10 * s1);
		tm_snapshot_add_trace(s, &t);
	}
	return s;
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[n] = '\0';
	*len = (size_t)n;
	fclose(f);
	return buf;
}

static void test_folded(void)
{
	struct tm_snapshot *s = small_snapshot(1);
	char path[256], err[256] = "";
	size_t len = 0;
	char *text;

	snprintf(path, sizeof(path), "%s/a.folded", dir);
	CHECK(!tm_snapshot_save(s, path, TM_FORMAT_AUTO, err, sizeof(err)), "folded: written (%s)", err);
	text = read_all(path, &len);
	CHECK_STREQ(text, "<module> (main.py:10);Cache.get (a.py:1) 300\n"
			  "<module> (main.py:10);b.py:2 50\n",
		    "folded: root first, labels with names, bytes per traceback");
	free(text);
	tm_snapshot_free(s);
}

/* ---- a minimal protobuf reader for the pprof check --------------------------- */

struct pbr {
	const unsigned char *p, *end;
};

static int pb_varint(struct pbr *r, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; r->p < r->end && shift < 64; shift += 7) {
		unsigned char b = *r->p++;

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

/* Next field: number, wire type, and (wire type 2) its bytes. */
static int pb_field(struct pbr *r, unsigned *num, uint64_t *v, struct pbr *sub)
{
	uint64_t key;

	if (r->p >= r->end || pb_varint(r, &key))
		return -1;
	*num = (unsigned)(key >> 3);
	if ((key & 7) == 0)
		return pb_varint(r, v);
	if ((key & 7) != 2 || pb_varint(r, v) || *v > (uint64_t)(r->end - r->p))
		return -1;
	sub->p = r->p;
	sub->end = r->p + *v;
	r->p += *v;
	return 0;
}

static void test_pprof(void)
{
	struct tm_snapshot *s = small_snapshot(1);
	char path[256], err[256] = "";
	unsigned char *buf = malloc(1 << 20);
	const char *strs[64];
	int nstrs = 0, nsamples = 0, nlocs = 0, nfuncs = 0, bad = 0, labels = 0;
	uint64_t total_bytes = 0, total_count = 0, v, sample_type_units = 0;
	struct pbr r, sub;
	unsigned num;
	gzFile gz;
	int n;

	snprintf(path, sizeof(path), "%s/a.pb.gz", dir);
	CHECK(!tm_snapshot_save(s, path, TM_FORMAT_AUTO, err, sizeof(err)), "pprof: written (%s)", err);
	gz = gzopen(path, "rb");
	n = gz ? gzread(gz, buf, 1 << 20) : -1;
	if (gz)
		gzclose(gz);
	CHECK(n > 0, "pprof: the file is gzip (%d bytes inflated)", n);
	r.p = buf;
	r.end = buf + (n > 0 ? n : 0);
	while (r.p < r.end && !bad) {
		if (pb_field(&r, &num, &v, &sub)) {
			bad = 1;
			break;
		}
		if (num == 6 && nstrs < 64)
			strs[nstrs++] = strndup((const char *)sub.p, (size_t)(sub.end - sub.p));
		else if (num == 1)
			sample_type_units++;
		else if (num == 4)
			nlocs++;
		else if (num == 5)
			nfuncs++;
		else if (num == 2) {
			struct pbr f = sub, vals;

			nsamples++;
			while (f.p < f.end && !pb_field(&f, &num, &v, &vals)) {
				if (num == 2) { /* packed values: count, bytes */
					uint64_t c = 0, b = 0;

					if (pb_varint(&vals, &c) || pb_varint(&vals, &b))
						bad = 1;
					total_count += c;
					total_bytes += b;
				} else if (num == 3) {
					labels++;
				}
			}
		}
	}
	CHECK(!bad, "pprof: well-formed protobuf");
	CHECK(nstrs > 0 && strs[0][0] == '\0', "pprof: string_table[0] is \"\"");
	CHECK(sample_type_units == 2, "pprof: two sample types");
	CHECK(nsamples == 2 && total_bytes == 350 && total_count == 4,
	      "pprof: 2 samples hold 350 bytes in 4 blocks (%d, %llu, %llu)", nsamples,
	      (unsigned long long)total_bytes, (unsigned long long)total_count);
	CHECK(labels == 4, "pprof: domain and thread labels on each sample (%d)", labels);
	CHECK(nlocs == 3 && nfuncs == 3, "pprof: 3 locations, 3 functions (%d, %d)", nlocs, nfuncs);
	{
		int seen = 0;

		for (int i = 0; i < nstrs; i++)
			seen |= (!strcmp(strs[i], "inuse_space")) | (!strcmp(strs[i], "Cache.get")) << 1 |
				(!strcmp(strs[i], "b.py")) << 2;
		CHECK(seen == 7, "pprof: strings hold the sample type, a function name and a file (%d)",
		      seen);
	}
	for (int i = 0; i < nstrs; i++)
		free((void *)strs[i]);
	free(buf);
	tm_snapshot_free(s);
}

static void test_flamegraph(void)
{
	struct tm_snapshot *s = small_snapshot(1);
	char path[256], err[256] = "";
	size_t len = 0;
	char *page;

	snprintf(path, sizeof(path), "%s/a.html", dir);
	CHECK(!tm_snapshot_save(s, path, TM_FORMAT_AUTO, err, sizeof(err)), "flamegraph: written (%s)", err);
	page = read_all(path, &len);
	CHECK(page && strstr(page, "<!DOCTYPE html>") && !strstr(page, "\nTMBPF_DATA\n") &&
	      strstr(page, "\"Cache.get (a.py:1)\"") && strstr(page, "\"total\":350"),
	      "flamegraph: the page holds the tree");
	CHECK(page && !strstr(page, "http://") && !strstr(page, "https://") && !strstr(page, "src="),
	      "flamegraph: no external resource");
	free(page);
	tm_snapshot_free(s);
}

static void test_ages(void)
{
	struct tm_snapshot *s = small_snapshot(0), *f;
	struct tm_age_filter older = { .has_older = 1, .older_ns = 2500000000ull };
	struct tm_age_filter younger = { .has_younger = 1, .younger_ns = 2500000000ull };
	struct tm_age_bucket b[TM_AGE_NBUCKETS];

	CHECK(tm_snapshot_ntimed(s) == 4, "age: 4 traces with a time");
	f = tm_snapshot_filter_age(s, NULL, 0, &older);
	CHECK(f && f->ntraces == 2, "age: --older-than 2.5s keeps 2 (3 s and 10 s old)");
	tm_snapshot_free(f);
	f = tm_snapshot_filter_age(s, NULL, 0, &younger);
	CHECK(f && f->ntraces == 2, "age: --younger-than 2.5s keeps 2");
	tm_snapshot_free(f);
	CHECK(!tm_age_histogram(s, b) && b[1].count == 3 && b[1].size_bytes == 300 &&
	      b[2].count == 1 && b[2].min_ns == 10000000000ull,
	      "age: buckets [1 s, 10 s) 3 blocks, [10 s, 1 min) 1");
	s->meta.snapshot_ns = 0;
	errno = 0;
	f = tm_snapshot_filter_age(s, NULL, 0, &older);
	CHECK(!f && errno == ENODATA, "age: a snapshot without times is ENODATA");
	tm_snapshot_free(s);
}

static void test_native_names(void)
{
	struct tm_snapshot *a = small_snapshot(1), *b = small_snapshot(0), *c;
	char path[256], err[256] = "";
	struct tm_load_info info;

	snprintf(path, sizeof(path), "%s/named.tmbpf", dir);
	tm_snapshot_save(a, path, TM_FORMAT_NATIVE, err, sizeof(err));
	c = tm_snapshot_load_ex(path, &info, err, sizeof(err));
	CHECK(c && info.version == 2 && same_traces(a, c, 1) &&
	      !strcmp(c->traces[0].traceback->frames[0].name, "Cache.get") &&
	      !c->traces[3].traceback->frames[0].name,
	      "native: frames with names: version 2, names read back (%s)", err);
	tm_snapshot_free(c);
	tm_snapshot_save(b, path, TM_FORMAT_NATIVE, err, sizeof(err));
	c = tm_snapshot_load_ex(path, &info, err, sizeof(err));
	CHECK(c && info.version == 1 && same_traces(b, c, 1),
	      "native: no names: version 1, as older readers expect");
	tm_snapshot_free(c);
	tm_snapshot_free(a);
	tm_snapshot_free(b);
}

static void test_save_steps(void)
{
	struct tm_snapshot *s = small_snapshot(0);
	char path[256], err[256] = "", cmd[512];
	struct tm_save sv;
	struct stat st;
	int entries;

	snprintf(path, sizeof(path), "%s/steps.pickle", dir);
	CHECK(!tm_save_begin(&sv, path, TM_FORMAT_AUTO, err, sizeof(err)) && sv.fmt == TM_FORMAT_PICKLE,
	      "save: begin (%s)", err);
	CHECK(stat(path, &st) < 0, "save: nothing named before commit");
	CHECK(!tm_save_commit(&sv, s, err, sizeof(err)) && stat(path, &st) == 0 &&
	      (st.st_mode & 0777) == 0600, "save: commit writes it, mode 0600 (%s)", err);
	CHECK(!tm_save_begin(&sv, path, TM_FORMAT_AUTO, err, sizeof(err)), "save: begin again");
	tm_save_abort(&sv);
	snprintf(cmd, sizeof(cmd), "test $(ls %s | grep -c tmp) -eq 0", dir);
	entries = system(cmd);
	CHECK(entries == 0, "save: abort leaves no temporary file");
	snprintf(path, sizeof(path), "%s/none/x.tmbpf", dir);
	CHECK(tm_save_begin(&sv, path, TM_FORMAT_AUTO, err, sizeof(err)) == -ENOENT &&
	      strstr(err, "does not exist"), "save: a missing directory fails at begin: %s", err);
	CHECK(tm_save_begin(&sv, dir, TM_FORMAT_AUTO, err, sizeof(err)) == -EISDIR,
	      "save: a directory as output fails at begin");
	tm_snapshot_free(s);
}

static void test_inputs(void)
{
	char path[256], err[256] = "";
	enum tm_file_format f;

	snprintf(path, sizeof(path), "%s/fifo", dir);
	CHECK(!mkfifo(path, 0600) && !tm_snapshot_load(path, err, sizeof(err)) && strstr(err, "FIFO"),
	      "load: a FIFO is refused without blocking (%s)", err);
	CHECK(tm_format_from_path("x.pb.gz") == TM_FORMAT_PPROF &&
	      tm_format_from_path("a/x.folded") == TM_FORMAT_FOLDED &&
	      tm_format_from_path("x.html") == TM_FORMAT_HTML &&
	      tm_format_from_path("x.gz") == TM_FORMAT_NATIVE,
	      "formats: .pb.gz, .folded, .html by extension");
	CHECK(!tm_format_parse("pprof", &f) && f == TM_FORMAT_PPROF && !tm_format_parse("html", &f) &&
	      !strcmp(tm_format_name(TM_FORMAT_FOLDED), "folded"), "formats: names parse");
}

int main(void)
{
	char cmd[128];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_folded();
	test_pprof();
	test_flamegraph();
	test_ages();
	test_native_names();
	test_save_steps();
	test_inputs();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		return 1;
	return CHECK_DONE();
}
