/* Snapshot files: format detection, loading by content, atomic saving, and
 * the small helpers the format modules share. */
#include "core/snapshot_io.h"
#include "core/snapshot_io_internal.h"
#include "core/text_encoding.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void tm_io_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int tm_out_init(struct tm_out *o, FILE *fp, size_t cap)
{
	memset(o, 0, sizeof(*o));
	o->fp = fp;
	o->buf = malloc(cap);
	if (!o->buf)
		return -ENOMEM;
	o->cap = cap;
	return 0;
}

int tm_out_flush(struct tm_out *o)
{
	if (o->err)
		return o->err;
	if (o->len && fwrite(o->buf, 1, o->len, o->fp) != o->len)
		o->err = errno ? -errno : -EIO;
	o->len = 0;
	return o->err;
}

void tm_out_release(struct tm_out *o)
{
	free(o->buf);
	o->buf = NULL;
}

int tm_out_write(struct tm_out *o, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len) {
		size_t n;

		if (o->len == o->cap && tm_out_flush(o))
			return o->err;
		n = o->cap - o->len < len ? o->cap - o->len : len;
		memcpy(o->buf + o->len, p, n);
		o->len += n;
		p += n;
		len -= n;
	}
	return o->err;
}

static uint64_t ptrmap_hash(const void *ptr, uint64_t tag)
{
	uint64_t h = ((uintptr_t)ptr ^ (tag * 0x9e3779b97f4a7c15ULL)) * 0xff51afd7ed558ccdULL;

	return h ^ (h >> 29);
}

static int ptrmap_grow(struct tm_ptrmap *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 4096, j;
	struct tm_ptrmap_slot *n = calloc(ncap, sizeof(*n));

	if (!n)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->slots[i].ptr)
			continue;
		for (j = ptrmap_hash(m->slots[i].ptr, m->slots[i].tag) & (ncap - 1); n[j].ptr;
		     j = (j + 1) & (ncap - 1))
			;
		n[j] = m->slots[i];
	}
	free(m->slots);
	m->slots = n;
	m->cap = ncap;
	return 0;
}

struct tm_ptrmap_slot *tm_ptrmap_lookup(struct tm_ptrmap *m, const void *ptr, uint64_t tag)
{
	size_t j;

	if ((m->count + 1) * 2 > m->cap && ptrmap_grow(m))
		return NULL;
	for (j = ptrmap_hash(ptr, tag) & (m->cap - 1); m->slots[j].ptr; j = (j + 1) & (m->cap - 1)) {
		if (m->slots[j].ptr == ptr && m->slots[j].tag == tag)
			break;
	}
	return &m->slots[j];
}

void tm_ptrmap_release(struct tm_ptrmap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->count = 0;
}

static const struct {
	const char *ext;
	enum tm_file_format fmt;
} extensions[] = {
	{ ".pickle", TM_FORMAT_PICKLE }, { ".pkl", TM_FORMAT_PICKLE }, { ".json", TM_FORMAT_JSON },
	{ ".pb.gz", TM_FORMAT_PPROF }, { ".pb", TM_FORMAT_PPROF }, { ".pprof", TM_FORMAT_PPROF },
	{ ".folded", TM_FORMAT_FOLDED }, { ".html", TM_FORMAT_HTML }, { ".htm", TM_FORMAT_HTML },
};

static const char *const format_names[] = {
	[TM_FORMAT_AUTO] = "auto", [TM_FORMAT_PICKLE] = "pickle", [TM_FORMAT_NATIVE] = "native",
	[TM_FORMAT_JSON] = "json", [TM_FORMAT_PPROF] = "pprof", [TM_FORMAT_FOLDED] = "folded",
	[TM_FORMAT_HTML] = "html",
};

enum tm_file_format tm_format_from_path(const char *path)
{
	const char *base = strrchr(path, '/');
	size_t len;

	base = base ? base + 1 : path;
	len = strlen(base);
	for (size_t i = 0; i < sizeof(extensions) / sizeof(extensions[0]); i++) {
		size_t n = strlen(extensions[i].ext);

		/* ".pickle" alone is a hidden file's name, not an extension */
		if (len > n && !strcmp(base + len - n, extensions[i].ext))
			return extensions[i].fmt;
	}
	return TM_FORMAT_NATIVE;
}

int tm_format_parse(const char *name, enum tm_file_format *fmt)
{
	for (size_t i = TM_FORMAT_PICKLE; i < sizeof(format_names) / sizeof(format_names[0]); i++)
		if (!strcmp(name, format_names[i])) {
			*fmt = (enum tm_file_format)i;
			return 0;
		}
	return -EINVAL;
}

const char *tm_format_name(enum tm_file_format fmt)
{
	if ((size_t)fmt < sizeof(format_names) / sizeof(format_names[0]))
		return format_names[fmt];
	return "auto";
}

struct mem_src {
	const unsigned char *p;
	size_t left;
};

static long mem_read(void *ctx, void *buf, size_t len)
{
	struct mem_src *m = ctx;

	if (len > m->left)
		len = m->left;
	memcpy(buf, m->p, len);
	m->p += len;
	m->left -= len;
	return (long)len;
}

struct tm_snapshot *tm_native_load_mem(const void *data, size_t len, char *err, size_t errlen)
{
	struct mem_src m = { data, len };

	return tm_native_load_stream(mem_read, &m, len, err, errlen);
}

struct tm_snapshot *tm_snapshot_load_mem(const void *data, size_t len, char *err, size_t errlen)
{
	const unsigned char *b = data;

	if (len >= TM_NATIVE_MAGIC_LEN && !memcmp(b, TM_NATIVE_MAGIC, TM_NATIVE_MAGIC_LEN))
		return tm_native_load_mem(data, len, err, errlen);
	if (len >= 1 && b[0] == 0x80)
		return tm_pickle_load_mem(data, len, err, errlen);
	if (len == 0)
		tm_io_errf(err, errlen, "empty file");
	else if (b[0] == '{')
		tm_io_errf(err, errlen, "JSON snapshots are write-only; load the native or pickle file");
	else
		tm_io_errf(err, errlen, "not a snapshot: neither a tmbpf native file nor a tracemalloc pickle");
	errno = EINVAL;
	return NULL;
}

/* A file being read, with progress reported through log.h's callback once
 * loading has taken PROGRESS_AFTER_NS: quick loads stay silent. */
struct fd_src {
	int fd;
	uint64_t done, total, next_report, start_ns;
	int reporting;
};

#define PROGRESS_AFTER_NS 300000000ull

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long fd_read(void *ctx, void *buf, size_t len)
{
	struct fd_src *src = ctx;
	int fd = src->fd;
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	src->done += got;
	if (src->done >= src->next_report && src->done < src->total) {
		src->next_report = src->done + (1u << 20);
		if (src->reporting || mono_ns() - src->start_ns >= PROGRESS_AFTER_NS) {
			src->reporting = 1;
			tm_progress("loading", src->done, src->total);
		}
	}
	return (long)got;
}

/* Pickles are parsed from memory in one go: from this size on, the load is
 * announced (and the line erased at the end). */
#define PROGRESS_PICKLE_BYTES (32u << 20)

struct tm_snapshot *tm_snapshot_load(const char *path, char *err, size_t errlen)
{
	return tm_snapshot_load_ex(path, NULL, err, errlen);
}

static void fill_info(struct tm_load_info *info, const unsigned char *head, long n,
		      uint64_t size)
{
	if (!info)
		return;
	memset(info, 0, sizeof(*info));
	info->file_bytes = size;
	if (n >= TM_NATIVE_MAGIC_LEN + 2 && !memcmp(head, TM_NATIVE_MAGIC, TM_NATIVE_MAGIC_LEN)) {
		info->format = TM_FORMAT_NATIVE;
		info->version = head[TM_NATIVE_MAGIC_LEN] | head[TM_NATIVE_MAGIC_LEN + 1] << 8;
	} else if (n >= 2 && head[0] == 0x80) {
		info->format = TM_FORMAT_PICKLE;
		info->version = head[1];
	}
}

/* Native files stream chunk by chunk; pickles are mapped whole. */
struct tm_snapshot *tm_snapshot_load_ex(const char *path, struct tm_load_info *info, char *err,
					size_t errlen)
{
	struct tm_snapshot *snap = NULL;
	unsigned char head[TM_NATIVE_MAGIC_LEN + 2];
	void *map = MAP_FAILED;
	struct fd_src src = { .fd = -1, .start_ns = mono_ns() };
	struct stat st;
	int fd, saved = 0;
	long n;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer; only regular
	 * files are read, so the flag changes nothing else. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		saved = errno;
		tm_io_errf(err, errlen, "cannot open: %s", strerror(saved));
		goto cleanup;
	}
	if (fstat(fd, &st) < 0) {
		saved = errno;
		tm_io_errf(err, errlen, "cannot stat: %s", strerror(saved));
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		saved = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		tm_io_errf(err, errlen, "%s, not a snapshot file",
			   S_ISDIR(st.st_mode)    ? "is a directory"
			   : S_ISFIFO(st.st_mode) ? "is a FIFO (pipe)"
			   : S_ISSOCK(st.st_mode) ? "is a socket"
			   : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "is a device"
						  : "is not a regular file");
		goto cleanup;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	src.fd = fd;
	src.total = (uint64_t)st.st_size;
	n = fd_read(&src, head, sizeof(head));
	fill_info(info, head, n, (uint64_t)st.st_size);
	if (n >= TM_NATIVE_MAGIC_LEN && !memcmp(head, TM_NATIVE_MAGIC, TM_NATIVE_MAGIC_LEN)) {
		if (lseek(fd, 0, SEEK_SET) < 0) {
			saved = errno;
			tm_io_errf(err, errlen, "cannot seek: %s", strerror(saved));
			goto cleanup;
		}
		src.done = 0;
		snap = tm_native_load_stream(fd_read, &src, (uint64_t)st.st_size, err, errlen);
		saved = snap ? 0 : errno;
		if (src.reporting)
			tm_progress("loading", src.total, src.total);
		goto cleanup;
	}
	if (st.st_size == 0) {
		snap = tm_snapshot_load_mem("", 0, err, errlen);
		saved = errno;
		goto cleanup;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		saved = errno;
		tm_io_errf(err, errlen, "cannot map: %s", strerror(saved));
		goto cleanup;
	}
	madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL | MADV_WILLNEED);
	src.reporting = src.total >= PROGRESS_PICKLE_BYTES;
	if (src.reporting)
		tm_progress("loading a pickle", 0, src.total);
	snap = tm_snapshot_load_mem(map, (size_t)st.st_size, err, errlen);
	if (src.reporting)
		tm_progress("loading a pickle", src.total, src.total);
	saved = snap ? 0 : errno;
cleanup:
	if (map != MAP_FAILED)
		munmap(map, (size_t)st.st_size);
	if (fd >= 0)
		close(fd);
	if (!snap)
		errno = saved ? saved : EINVAL;
	return snap;
}

static int write_format(const struct tm_snapshot *snap, FILE *fp, enum tm_file_format fmt,
			char *err, size_t errlen)
{
	switch (fmt) {
	case TM_FORMAT_PICKLE: return tm_pickle_write(snap, fp, err, errlen);
	case TM_FORMAT_JSON: return tm_json_write(snap, fp, err, errlen);
	case TM_FORMAT_PPROF: return tm_pprof_write(snap, fp, err, errlen);
	case TM_FORMAT_FOLDED: return tm_folded_write(snap, fp, err, errlen);
	case TM_FORMAT_HTML: return tm_flamegraph_write(snap, fp, err, errlen);
	default: return tm_native_write(snap, fp, err, errlen);
	}
}

static void save_release(struct tm_save *s)
{
	if (s->fd >= 0)
		close(s->fd);
	if (s->tmp)
		unlink(s->tmp);
	free(s->tmp);
	free(s->path);
	s->fd = -1;
	s->tmp = s->path = NULL;
}

void tm_save_abort(struct tm_save *s)
{
	if (s)
		save_release(s);
}

/* PATH's directory ("." when it has none), malloc'ed. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

int tm_save_begin(struct tm_save *s, const char *path, enum tm_file_format fmt, char *err,
		  size_t errlen)
{
	struct stat st;
	char *dir = NULL;
	int ret = 0;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->fmt = fmt == TM_FORMAT_AUTO ? tm_format_from_path(path) : fmt;
	s->path = strdup(path);
	dir = dir_of(path);
	if (!s->path || !dir) {
		ret = -ENOMEM;
		tm_io_errf(err, errlen, "out of memory");
		goto cleanup;
	}
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		ret = -EISDIR;
		tm_io_errf(err, errlen, "is a directory");
		goto cleanup;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		ret = stat(dir, &st) < 0 ? -errno : -ENOTDIR;
		tm_io_errf(err, errlen, "directory %s %s", dir,
			   ret == -ENOENT ? "does not exist" : strerror(-ret));
		goto cleanup;
	}
	/* No name until it is complete: nothing is left behind if we die. */
	s->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (s->fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
		ret = -errno;
		tm_io_errf(err, errlen, "cannot write in %s: %s", dir, strerror(-ret));
		goto cleanup;
	}
	if (s->fd < 0) {
		if (asprintf(&s->tmp, "%s.tmp.XXXXXX", path) < 0) {
			s->tmp = NULL;
			ret = -ENOMEM;
			tm_io_errf(err, errlen, "out of memory");
			goto cleanup;
		}
		s->fd = mkostemp(s->tmp, O_CLOEXEC); /* mode 0600 */
		if (s->fd < 0) {
			ret = -errno;
			tm_io_errf(err, errlen, "cannot create %s: %s", s->tmp, strerror(-ret));
			free(s->tmp);
			s->tmp = NULL;
			goto cleanup;
		}
	}
cleanup:
	free(dir);
	if (ret)
		save_release(s);
	return ret;
}

/* Give the O_TMPFILE content a temporary name next to PATH. */
static int link_tmpfile(struct tm_save *s)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", s->fd);
	for (unsigned n = 0; n < 1000; n++) {
		free(s->tmp);
		if (asprintf(&s->tmp, "%s.tmp.%d.%u", s->path, (int)getpid(), n) < 0) {
			s->tmp = NULL;
			return -ENOMEM;
		}
		if (linkat(AT_FDCWD, proc, AT_FDCWD, s->tmp, AT_SYMLINK_FOLLOW) == 0 ||
		    linkat(s->fd, "", AT_FDCWD, s->tmp, AT_EMPTY_PATH) == 0)
			return 0;
		if (errno != EEXIST) {
			int e = -errno;

			free(s->tmp);
			s->tmp = NULL;
			return e;
		}
	}
	free(s->tmp);
	s->tmp = NULL;
	return -EEXIST;
}

int tm_save_commit(struct tm_save *s, const struct tm_snapshot *snap, char *err, size_t errlen)
{
	FILE *fp = fdopen(s->fd, "wb");
	struct stat st;
	int ret;

	if (!fp) {
		ret = -errno;
		tm_io_errf(err, errlen, "cannot write: %s", strerror(-ret));
		goto cleanup;
	}
	s->fd = -1; /* fp owns it now */
	ret = write_format(snap, fp, s->fmt, err, errlen);
	if (ret)
		goto cleanup;
	if (fflush(fp) || fsync(fileno(fp))) {
		ret = -errno;
		tm_io_errf(err, errlen, "cannot write: %s", strerror(-ret));
		goto cleanup;
	}
	if (!s->tmp) {
		s->fd = fileno(fp);
		ret = link_tmpfile(s);
		s->fd = -1;
		if (ret) {
			tm_io_errf(err, errlen, "cannot name the new file: %s", strerror(-ret));
			goto cleanup;
		}
	}
	ret = fclose(fp) ? -errno : 0;
	fp = NULL;
	if (ret) {
		tm_io_errf(err, errlen, "cannot write: %s", strerror(-ret));
		goto cleanup;
	}
	if (lstat(s->path, &st) == 0 && st.st_uid != geteuid()) {
		s->replaced_other_owner = 1;
		s->replaced_uid = (unsigned)st.st_uid;
	}
	if (rename(s->tmp, s->path) < 0) {
		ret = -errno;
		tm_io_errf(err, errlen, "cannot rename the temporary file: %s", strerror(-ret));
		goto cleanup;
	}
	free(s->tmp);
	s->tmp = NULL;
cleanup:
	if (fp)
		fclose(fp);
	save_release(s);
	return ret;
}

int tm_snapshot_save(const struct tm_snapshot *snap, const char *path, enum tm_file_format fmt,
		     char *err, size_t errlen)
{
	struct tm_save s;
	int ret = tm_save_begin(&s, path, fmt, err, errlen);

	return ret ? ret : tm_save_commit(&s, snap, err, errlen);
}
