/* Snapshot files: tracemalloc's pickle (what Snapshot.dump() writes, CPython
 * 3.8-3.13), tmbpf's native format, and the write-only views: JSON, pprof,
 * folded stacks and a flame graph page.
 *
 * Loaders never trust their input: every length is checked against what is
 * left of the file before anything is allocated. On failure they return
 * NULL/negative errno and write one line (no file name, no newline) into err;
 * the caller prefixes the file name.
 * Writers are atomic: they write PATH.tmp.XXXXXX and rename it over PATH.
 */
#ifndef TM_CORE_SNAPSHOT_IO_H
#define TM_CORE_SNAPSHOT_IO_H

#include <stddef.h>
#include <stdint.h>

#include "core/snapshot.h"

enum tm_file_format {
	TM_FORMAT_AUTO = 0, /* load: sniff the content; save: from the extension, else native */
	TM_FORMAT_PICKLE,
	TM_FORMAT_NATIVE,
	TM_FORMAT_JSON,
	TM_FORMAT_PPROF,  /* write-only: gzip'd profile.proto */
	TM_FORMAT_FOLDED, /* write-only: folded stacks, bytes as weights */
	TM_FORMAT_HTML,   /* write-only: a self-contained flame graph page */
};

/* Native files start with these 8 bytes; the layout is in docs/formats.md. */
#define TM_NATIVE_MAGIC "TMBPF\x89\r\n"
#define TM_NATIVE_MAGIC_LEN 8
/* The newest version written (2 when a frame has a function name, else 1,
 * so older readers open files without names); readers take 1..this. */
#define TM_NATIVE_VERSION 2

/* What a loader saw besides the snapshot (for `tmbpf info`). */
struct tm_load_info {
	enum tm_file_format format;
	unsigned version;    /* pickle protocol, or native format version */
	uint64_t file_bytes;
};

/* Load any supported file (format sniffed from content). Native files are
 * read as a stream, one chunk in memory at a time; pickles are mapped. */
struct tm_snapshot *tm_snapshot_load(const char *path, char *err, size_t errlen);
/* Same; info (may be NULL) receives format and version. */
struct tm_snapshot *tm_snapshot_load_ex(const char *path, struct tm_load_info *info, char *err,
					size_t errlen);
/* Load from memory (used by the fuzzers). */
struct tm_snapshot *tm_snapshot_load_mem(const void *data, size_t len, char *err, size_t errlen);
/* The format-specific loaders behind the two above. */
struct tm_snapshot *tm_pickle_load_mem(const void *data, size_t len, char *err, size_t errlen);
struct tm_snapshot *tm_native_load_mem(const void *data, size_t len, char *err, size_t errlen);

int tm_snapshot_save(const struct tm_snapshot *snap, const char *path, enum tm_file_format fmt,
		     char *err, size_t errlen);

/* The same in two steps, so that a command which traces for minutes learns
 * before it starts that its output cannot be written: tm_save_begin creates
 * the file's content, unnamed (O_TMPFILE; else PATH.tmp.XXXXXX), mode 0600
 * (snapshots hold command lines and source paths), in PATH's directory;
 * tm_save_commit writes the snapshot into it, fsyncs it and renames it over
 * PATH; tm_save_abort drops it. Snapshot files are only ever replaced
 * whole. */
struct tm_save {
	char *path, *tmp; /* tmp: the named temporary (no O_TMPFILE), or NULL */
	int fd;
	enum tm_file_format fmt; /* resolved from PATH when TM_FORMAT_AUTO */
	int replaced_other_owner; /* commit replaced a file of another user... */
	unsigned replaced_uid;    /* ... this one */
};
int tm_save_begin(struct tm_save *s, const char *path, enum tm_file_format fmt, char *err,
		  size_t errlen);
int tm_save_commit(struct tm_save *s, const struct tm_snapshot *snap, char *err, size_t errlen);
void tm_save_abort(struct tm_save *s);

/* By extension: *.pickle / *.pkl, *.json, *.pb.gz / *.pb / *.pprof,
 * *.folded, *.html / *.htm; anything else TM_FORMAT_NATIVE. */
enum tm_file_format tm_format_from_path(const char *path);
/* A name of tm_format_name -> format; -EINVAL otherwise. */
int tm_format_parse(const char *name, enum tm_file_format *fmt);
/* "pickle", "native", "json", "pprof", "folded", "html" or "auto". */
const char *tm_format_name(enum tm_file_format fmt);
/* Every name tm_format_parse takes, "|"-separated (for help texts). */
#define TM_FORMAT_NAMES "pickle|native|json|pprof|folded|html"

#endif
