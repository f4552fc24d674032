/* snapshot_io: format names and extensions, content sniffing, atomic saves
 * that leave no temporary file behind, and the JSON export. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "core/snapshot_io.h"
#include "snapshot_samples.h"

static void test_format_names(void)
{
	enum tm_file_format f = TM_FORMAT_AUTO;

	CHECK(tm_format_from_path("a.pickle") == TM_FORMAT_PICKLE &&
	      tm_format_from_path("dir.json/a.pkl") == TM_FORMAT_PICKLE,
	      "io: .pickle and .pkl mean pickle");
	CHECK(tm_format_from_path("x.json") == TM_FORMAT_JSON, "io: .json means JSON");
	CHECK(tm_format_from_path("x.tmbpf") == TM_FORMAT_NATIVE &&
	      tm_format_from_path("x.pickle/snap") == TM_FORMAT_NATIVE &&
	      tm_format_from_path("snap") == TM_FORMAT_NATIVE, "io: anything else is native");
	CHECK(!tm_format_parse("json", &f) && f == TM_FORMAT_JSON && !tm_format_parse("native", &f) &&
	      f == TM_FORMAT_NATIVE && !tm_format_parse("pickle", &f) && f == TM_FORMAT_PICKLE,
	      "io: format names parse");
	CHECK(tm_format_parse("Pickle", &f) == -22 && tm_format_parse("", &f) == -22,
	      "io: unknown format names are -EINVAL");
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *fp = fopen(path, "wb");

	if (fp) {
		fwrite(data, 1, len, fp);
		fclose(fp);
	}
}

static void test_save_and_sniff(void)
{
	char dir[] = "/tmp/tmbpf-test-io-XXXXXX", path[300], err[256] = "";
	struct tm_snapshot *a = sample_snapshot(100), *b;
	struct tm_load_info info;
	static const char *names[] = { "s.tmbpf", "s.pickle", "s" };

	if (!mkdtemp(dir)) {
		CHECK(0, "io: temporary directory");
		return;
	}
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		CHECK(!tm_snapshot_save(a, path, TM_FORMAT_AUTO, err, sizeof(err)), "io: save %s", names[i]);
		b = tm_snapshot_load_ex(path, &info, err, sizeof(err));
		CHECK(b && same_traces(a, b, i != 1), "io: %s loads back by content (%s)", names[i], err);
		CHECK(info.format == (i == 1 ? TM_FORMAT_PICKLE : TM_FORMAT_NATIVE) &&
		      info.version == (i == 1 ? 4u : 2u), "io: %s: format and version reported", names[i]);
		tm_snapshot_free(b);
	}
	CHECK(count_entries(dir) == 3, "io: saves leave no temporary files");
	snprintf(path, sizeof(path), "%s/s.tmbpf", dir);
	CHECK(!tm_snapshot_save(a, path, TM_FORMAT_PICKLE, err, sizeof(err)), "io: overwrite in place");
	b = tm_snapshot_load_ex(path, &info, err, sizeof(err));
	CHECK(b && info.format == TM_FORMAT_PICKLE, "io: explicit format beats the extension");
	tm_snapshot_free(b);

	snprintf(path, sizeof(path), "%s/missing/s.tmbpf", dir);
	CHECK(tm_snapshot_save(a, path, TM_FORMAT_AUTO, err, sizeof(err)) < 0 && strstr(err, "does not exist"),
	      "io: save into a missing directory fails: %s", err);

	snprintf(path, sizeof(path), "%s/empty", dir);
	write_file(path, "", 0);
	b = tm_snapshot_load(path, err, sizeof(err));
	CHECK(!b && strstr(err, "empty file"), "io: empty file: %s", err);
	snprintf(path, sizeof(path), "%s/text", dir);
	write_file(path, "hello\n", 6);
	b = tm_snapshot_load(path, err, sizeof(err));
	CHECK(!b && strstr(err, "not a snapshot"), "io: text file: %s", err);
	b = tm_snapshot_load(dir, err, sizeof(err));
	CHECK(!b && strstr(err, "directory"), "io: directory: %s", err);
	snprintf(path, sizeof(path), "%s/nope", dir);
	b = tm_snapshot_load(path, err, sizeof(err));
	CHECK(!b && strstr(err, "No such file"), "io: missing file: %s", err);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	if (system(path))
		CHECK(0, "io: cleanup");
	tm_snapshot_free(a);
}

static void test_json(void)
{
	char path[] = "/tmp/tmbpf-test-json-XXXXXX.json", err[256] = "", buf[1 << 16];
	struct tm_snapshot *a = sample_snapshot(3), *b;
	FILE *fp;
	size_t n;
	int fd = mkstemps(path, 5);

	close(fd);
	CHECK(!tm_snapshot_save(a, path, TM_FORMAT_AUTO, err, sizeof(err)), "json: save by extension");
	fp = fopen(path, "rb");
	n = fp ? fread(buf, 1, sizeof(buf) - 1, fp) : 0;
	buf[n] = '\0';
	if (fp)
		fclose(fp);
	CHECK(strstr(buf, "\"format\": \"tmbpf-snapshot\"") && strstr(buf, "\"trace_count\": 3"),
	      "json: header fields");
	CHECK(strstr(buf, "\"pid\": 4242") && strstr(buf, "\"live_blocks_full\": 7"), "json: metadata");
	CHECK(strstr(buf, "\"caf\\udce9.py\""), "json: lone surrogate escaped as \\udce9");
	CHECK(strstr(buf, "with \\\"quote\\\" and \\\\ backslash.py"), "json: quotes and backslashes escaped");
	CHECK(strstr(buf, "\"size\": 18446744073709551615") && strstr(buf, "\"total_nframe\": null"),
	      "json: 64-bit sizes and unknown total_nframe");
	b = tm_snapshot_load(path, err, sizeof(err));
	CHECK(!b && strstr(err, "write-only"), "json: loading JSON says it is write-only: %s", err);
	unlink(path);
	tm_snapshot_free(a);
}

/* File names captured as raw bytes (not UTF-8) are written as Python would
 * hold them: each undecodable byte becomes a lone surrogate. */
static void test_raw_bytes_names(void)
{
	static const enum tm_file_format fmts[] = { TM_FORMAT_NATIVE, TM_FORMAT_PICKLE };
	char path[] = "/tmp/tmbpf-test-raw-XXXXXX", err[256] = "";
	struct tm_snapshot *a = tm_snapshot_new(), *b;
	struct tm_trace t = { .size_bytes = 10, .total_nframe = 1 };
	struct tm_frame f = { tm_snapshot_intern_str(a, "bad\xff\xc3.py", 8), 3, NULL };
	int fd = mkstemp(path);

	close(fd);
	t.traceback = tm_snapshot_intern_traceback(a, &f, 1);
	tm_snapshot_add_trace(a, &t);
	for (size_t i = 0; i < 2; i++) {
		CHECK(!tm_snapshot_save(a, path, fmts[i], err, sizeof(err)), "io: save a raw-bytes name (%s)",
		      tm_format_name(fmts[i]));
		b = tm_snapshot_load(path, err, sizeof(err));
		CHECK(b && b->ntraces == 1 &&
		      !strcmp(b->traces[0].traceback->frames[0].filename, "bad\xed\xb3\xbf\xed\xb3\x83.py"),
		      "io: %s: undecodable bytes become U+DCFF U+DCC3 (%s)", tm_format_name(fmts[i]), err);
		tm_snapshot_free(b);
	}
	unlink(path);
	tm_snapshot_free(a);
}

int main(void)
{
	test_raw_bytes_names();
	test_format_names();
	test_save_and_sniff();
	test_json();
	return CHECK_DONE();
}
