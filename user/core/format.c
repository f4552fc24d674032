/* tracemalloc's text. Python formats sizes with '%.1f' / '%.0f' on a binary
 * double, correctly rounded with ties to even on the exact binary value;
 * glibc's printf does the same, so the work here is computing the very same
 * double: int -> float conversion and true division must round exactly as
 * Python's do. */
#include "core/format.h"

#include <errno.h>
#include <iconv.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/statistics.h"

void tm_strbuf_init(struct tm_strbuf *sb)
{
	sb->data = NULL;
	sb->len = 0;
	sb->cap = 0;
}

void tm_strbuf_release(struct tm_strbuf *sb)
{
	if (!sb)
		return;
	free(sb->data);
	tm_strbuf_init(sb);
}

void tm_strbuf_reset(struct tm_strbuf *sb)
{
	sb->len = 0;
	if (sb->data)
		sb->data[0] = '\0';
}

static int strbuf_reserve(struct tm_strbuf *sb, size_t extra)
{
	size_t need, ncap;
	char *n;

	if (extra > SIZE_MAX - sb->len - 1)
		return -EOVERFLOW;
	need = sb->len + extra + 1;
	if (need <= sb->cap)
		return 0;
	ncap = sb->cap ? sb->cap : 256;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	n = realloc(sb->data, ncap);
	if (!n)
		return -ENOMEM;
	sb->data = n;
	sb->cap = ncap;
	return 0;
}

int tm_strbuf_append(struct tm_strbuf *sb, const char *s, size_t len)
{
	int err = strbuf_reserve(sb, len);

	if (err)
		return err;
	memcpy(sb->data + sb->len, s, len);
	sb->len += len;
	sb->data[sb->len] = '\0';
	return 0;
}

int tm_strbuf_appends(struct tm_strbuf *sb, const char *s)
{
	return tm_strbuf_append(sb, s, strlen(s));
}

int tm_strbuf_appendf(struct tm_strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n, err;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	err = strbuf_reserve(sb, (size_t)n);
	if (err)
		return err;
	va_start(ap, fmt);
	vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
	return 0;
}

const char *tm_strbuf_str(const struct tm_strbuf *sb)
{
	return sb->data ? sb->data : "";
}

/* ---- _format_size ---------------------------------------------------- */

static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };

static int checked(int n, size_t buflen)
{
	return n < 0 || (size_t)n >= buflen ? -ENOSPC : 0;
}

/* The loop of _format_size() from unit index u on, size already a float. */
static int format_size_from(char *buf, size_t buflen, double size, int sign, int u)
{
	for (;; u++) {
		if (fabs(size) < 100 && u != 0)
			return checked(snprintf(buf, buflen, sign ? "%+.1f %s" : "%.1f %s", size,
						units[u]), buflen);
		if (fabs(size) < 10 * 1024 || u == 4)
			return checked(snprintf(buf, buflen, sign ? "%+.0f %s" : "%.0f %s", size,
						units[u]), buflen);
		size /= 1024;
	}
}

int tm_format_size_double(char *buf, size_t buflen, double size, int sign)
{
	return format_size_from(buf, buflen, size, sign, 0);
}

/* An int below 10 KiB prints as itself ('%.0f' of an exact integer). Above,
 * Python's int / 1024 is correctly rounded; so is (double)int / 1024, since
 * dividing by a power of two commutes with rounding to 53 bits. */
int tm_format_size_u64(char *buf, size_t buflen, uint64_t size, int sign)
{
	if (size < 10 * 1024)
		return checked(snprintf(buf, buflen, sign ? "+%llu B" : "%llu B",
					(unsigned long long)size), buflen);
	return format_size_from(buf, buflen, (double)size / 1024, sign, 1);
}

int tm_format_size_i64(char *buf, size_t buflen, int64_t size, int sign)
{
	if (size > -10 * 1024 && size < 10 * 1024)
		return checked(snprintf(buf, buflen, sign ? "%+lld B" : "%lld B", (long long)size),
			       buflen);
	return format_size_from(buf, buflen, (double)size / 1024, sign, 1);
}

static int bit_length(unsigned __int128 v)
{
	int n = 0;

	while (v) {
		v >>= 1;
		n++;
	}
	return n;
}

double tm_div_u64(uint64_t a, uint64_t b)
{
	unsigned __int128 num, q;
	int shift;

	/* Both exact as doubles: one IEEE division, correctly rounded. */
	if (a <= (1ULL << 53) && b <= (1ULL << 53))
		return (double)a / (double)b;
	if (a == 0)
		return 0.0;
	/* Scale the numerator so the quotient has >= 62 bits, fold the remainder
	 * into a sticky bit, and let the 128-bit conversion round once. */
	shift = 127 - bit_length(a);
	num = (unsigned __int128)a << shift;
	q = num / b;
	if (num % b)
		q |= 1;
	return ldexp((double)q, -shift);
}

/* ---- str() of the model objects ------------------------------------- */

int tm_format_frame(struct tm_strbuf *sb, const struct tm_frame *frame)
{
	return tm_strbuf_appendf(sb, "%s:%u", frame->filename, frame->lineno);
}

int tm_format_traceback_str(struct tm_strbuf *sb, const struct tm_frame *frames, uint32_t nframe)
{
	if (nframe == 0)
		return -EINVAL;
	return tm_format_frame(sb, &frames[nframe - 1]);
}

int tm_format_trace(struct tm_strbuf *sb, const struct tm_trace *trace)
{
	char size[TM_SIZE_STRLEN];
	int err;

	if ((err = tm_format_traceback_str(sb, trace->traceback->frames, trace->traceback->nframe)))
		return err;
	if ((err = tm_format_size_u64(size, sizeof(size), trace->size_bytes, 0)))
		return err;
	return tm_strbuf_appendf(sb, ": %s", size);
}

static int append_average(struct tm_strbuf *sb, uint64_t size, uint64_t count)
{
	char avg[TM_SIZE_STRLEN];
	int err;

	if (!count)
		return 0;
	if ((err = tm_format_size_double(avg, sizeof(avg), tm_div_u64(size, count), 0)))
		return err;
	return tm_strbuf_appendf(sb, ", average=%s", avg);
}

int tm_format_statistic(struct tm_strbuf *sb, const struct tm_statistic *stat)
{
	char size[TM_SIZE_STRLEN];
	int err;

	if ((err = tm_format_traceback_str(sb, stat->frames, stat->nframe)) ||
	    (err = tm_format_size_u64(size, sizeof(size), stat->size_bytes, 0)) ||
	    (err = tm_strbuf_appendf(sb, ": size=%s, count=%llu", size,
				     (unsigned long long)stat->count)))
		return err;
	return append_average(sb, stat->size_bytes, stat->count);
}

int tm_format_statistic_diff(struct tm_strbuf *sb, const struct tm_statistic_diff *diff)
{
	char size[TM_SIZE_STRLEN], size_diff[TM_SIZE_STRLEN];
	int err;

	if ((err = tm_format_traceback_str(sb, diff->frames, diff->nframe)) ||
	    (err = tm_format_size_u64(size, sizeof(size), diff->size_bytes, 0)) ||
	    (err = tm_format_size_i64(size_diff, sizeof(size_diff), diff->size_diff, 1)) ||
	    (err = tm_strbuf_appendf(sb, ": size=%s (%s), count=%llu (%+lld)", size, size_diff,
				     (unsigned long long)diff->count, (long long)diff->count_diff)))
		return err;
	return append_average(sb, diff->size_bytes, diff->count);
}

/* ---- Traceback.format ----------------------------------------------- */

static int format_frame_lines(struct tm_strbuf *sb, const struct tm_frame *frame,
			      struct tm_linecache *lc)
{
	const char *line = NULL;
	size_t len = 0;
	int err;

	if ((err = tm_strbuf_appendf(sb, "  File \"%s\", line %u\n", frame->filename, frame->lineno)))
		return err;
	if (lc && (err = tm_linecache_getline(lc, frame->filename, frame->lineno, &line, &len)))
		return err;
	if (!len)
		return 0;
	if ((err = tm_strbuf_append(sb, "    ", 4)) || (err = tm_strbuf_append(sb, line, len)))
		return err;
	return tm_strbuf_append(sb, "\n", 1);
}

int tm_traceback_format(struct tm_strbuf *sb, const struct tm_frame *frames, uint32_t nframe,
			int has_limit, long limit, int most_recent_first, struct tm_linecache *lc)
{
	/* Python indices into the oldest-first sequence: [lo, hi). */
	long n = nframe, lo = 0, hi = n;
	int err;

	if (has_limit && limit > 0) {
		lo = limit < n ? n - limit : 0; /* self[-limit:] */
	} else if (has_limit) {
		hi = n + limit > 0 ? n + limit : 0; /* self[:limit], limit <= 0 */
		if (limit == 0)
			hi = 0;
	}
	for (long k = 0; k < hi - lo; k++) {
		long pos = most_recent_first ? hi - 1 - k : lo + k;

		/* Sequence position pos is stored frame nframe-1-pos. */
		if ((err = format_frame_lines(sb, &frames[n - 1 - pos], lc)))
			return err;
	}
	return 0;
}

/* ---- linecache ------------------------------------------------------ */

#define LC_BUCKETS 1024
#define LC_MAX_FILE_BYTES (256u << 20)

struct lc_line {
	size_t off, len; /* into text, without the line end */
};

struct lc_entry {
	struct lc_entry *next;
	char *filename;
	char *text; /* the file decoded to UTF-8, newlines unified */
	struct lc_line *lines;
	size_t nlines;
};

struct tm_linecache {
	struct lc_entry *buckets[LC_BUCKETS];
};

struct tm_linecache *tm_linecache_new(void)
{
	return calloc(1, sizeof(struct tm_linecache));
}

static void lc_entry_free(struct lc_entry *e)
{
	free(e->filename);
	free(e->text);
	free(e->lines);
	free(e);
}

void tm_linecache_free(struct tm_linecache *lc)
{
	if (!lc)
		return;
	for (size_t i = 0; i < LC_BUCKETS; i++) {
		struct lc_entry *e = lc->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			lc_entry_free(e);
		}
	}
	free(lc);
}

/* Decode one strict UTF-8 sequence (what Python's utf-8 codec accepts).
 * Returns its length, or 0 when invalid. */
static size_t utf8_strict(const unsigned char *s, size_t n, uint32_t *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf && n >= 2 && (s[1] & 0xc0) == 0x80) {
		*cp = ((uint32_t)(s[0] & 0x1f) << 6) | (s[1] & 0x3f);
		return 2;
	}
	if (s[0] >= 0xe0 && s[0] <= 0xef && n >= 3 && (s[1] & 0xc0) == 0x80 &&
	    (s[2] & 0xc0) == 0x80) {
		*cp = ((uint32_t)(s[0] & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
		if (*cp < 0x800 || (*cp >= 0xd800 && *cp <= 0xdfff))
			return 0;
		return 3;
	}
	if (s[0] >= 0xf0 && s[0] <= 0xf4 && n >= 4 && (s[1] & 0xc0) == 0x80 &&
	    (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80) {
		*cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) |
		      ((uint32_t)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
		if (*cp < 0x10000 || *cp > 0x10ffff)
			return 0;
		return 4;
	}
	return 0;
}

static int utf8_valid(const char *s, size_t n)
{
	uint32_t cp;

	for (size_t i = 0, k; i < n; i += k) {
		k = utf8_strict((const unsigned char *)s + i, n - i, &cp);
		if (!k)
			return 0;
	}
	return 1;
}

/* tokenize's cookie_re: ^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)  (re.ASCII) */
static int find_cookie_name(const char *line, size_t n, char *name, size_t namelen)
{
	size_t i = 0;

	while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\f'))
		i++;
	if (i >= n || line[i] != '#')
		return 0;
	for (i++; i + 7 <= n && line[i] != '\n'; i++) {
		size_t j = i + 7, start;

		if (memcmp(line + i, "coding", 6) || (line[i + 6] != ':' && line[i + 6] != '='))
			continue;
		while (j < n && (line[j] == ' ' || line[j] == '\t'))
			j++;
		for (start = j; j < n; j++) {
			char c = line[j];

			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
				break;
		}
		if (j == start)
			continue;
		if (j - start >= namelen)
			return -1;
		memcpy(name, line + start, j - start);
		name[j - start] = '\0';
		return 1;
	}
	return 0;
}

enum lc_codec { LC_UTF8, LC_LATIN1, LC_OTHER };

/* tokenize._get_normal_name, then which decoder to use. */
static enum lc_codec normal_codec(const char *orig)
{
	char enc[13];
	size_t i;

	for (i = 0; i < 12 && orig[i]; i++) {
		char c = orig[i];

		c = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
		enc[i] = c == '_' ? '-' : c;
	}
	enc[i] = '\0';
	if (!strcmp(enc, "utf-8") || !strncmp(enc, "utf-8-", 6))
		return LC_UTF8;
	if (!strcmp(enc, "latin-1") || !strcmp(enc, "iso-8859-1") || !strcmp(enc, "iso-latin-1") ||
	    !strncmp(enc, "latin-1-", 8) || !strncmp(enc, "iso-8859-1-", 11) ||
	    !strncmp(enc, "iso-latin-1-", 12))
		return LC_LATIN1;
	return LC_OTHER;
}

/* Python opens the file by encoding the name with surrogateescape: the
 * lone surrogates U+DC80..U+DCFF (stored as WTF-8) become raw bytes. Any
 * other surrogate cannot be encoded: the file has no lines (-EILSEQ). */
static int lc_path(const char *filename, char **path)
{
	const unsigned char *s = (const unsigned char *)filename;
	size_t n = strlen(filename), o = 0;
	char *p = malloc(n + 1);

	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == 0xed && i + 2 < n && s[i + 1] >= 0xa0 && s[i + 1] <= 0xbf) {
			uint32_t cp = 0xd000 | ((uint32_t)(s[i + 1] & 0x3f) << 6) | (s[i + 2] & 0x3f);

			if (cp < 0xdc80 || cp > 0xdcff) {
				free(p);
				return -EILSEQ;
			}
			p[o++] = (char)(cp - 0xdc00);
			i += 2;
		} else {
			p[o++] = (char)s[i];
		}
	}
	p[o] = '\0';
	*path = p;
	return 0;
}

/* Whole regular file into memory; -errno when unreadable. */
static int lc_read_file(const char *path, char **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 0, n = 0;
	char *buf = NULL;
	int err = 0;

	if (!f)
		return -errno;
	for (;;) {
		size_t got;

		if (n == cap) {
			char *nb;

			if (cap >= LC_MAX_FILE_BYTES) {
				err = -EFBIG;
				goto cleanup;
			}
			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap);
			if (!nb) {
				err = -ENOMEM;
				goto cleanup;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f))
				err = -EIO; /* EISDIR and friends */
			break;
		}
	}
cleanup:
	fclose(f);
	if (err) {
		free(buf);
		return err;
	}
	*data = buf;
	*len = n;
	return 0;
}

/* tokenize.detect_encoding on the raw bytes. Returns 0 and sets *codec
 * (and name for LC_OTHER) plus *skip (3 after a UTF-8 BOM), or -EILSEQ for
 * what Python reports as SyntaxError. */
static int lc_detect(const char *d, size_t n, enum lc_codec *codec, char *name, size_t namelen,
		     size_t *skip)
{
	const char *line = d, *nl;
	int bom = 0;

	*codec = LC_UTF8;
	*skip = 0;
	if (n >= 3 && !memcmp(d, "\xef\xbb\xbf", 3)) {
		bom = 1;
		*skip = 3;
		line += 3;
		n -= 3;
	}
	for (int k = 0; k < 2 && n > 0; k++) {
		size_t len;
		int found;

		nl = memchr(line, '\n', n);
		len = nl ? (size_t)(nl - line) + 1 : n;
		if (!utf8_valid(line, len))
			return -EILSEQ;
		found = find_cookie_name(line, len, name, namelen);
		if (found < 0)
			return -EILSEQ;
		if (found) {
			*codec = normal_codec(name);
			if (bom && *codec != LC_UTF8)
				return -EILSEQ;
			return 0;
		}
		if (k == 0) {
			/* blank_re: only a blank or comment-only first line lets
			 * the second line carry the cookie. */
			size_t i = 0;

			while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\f'))
				i++;
			if (i < len && line[i] != '#' && line[i] != '\r' && line[i] != '\n')
				return 0;
		}
		line += len;
		n -= len;
	}
	return 0;
}

static int append_utf8(struct tm_strbuf *sb, uint32_t cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	}
	return tm_strbuf_append(sb, b, n);
}

/* Any other codec through libc's iconv; Python's codec names mostly match
 * iconv's, else retry with '_' spelled '-'. Unknown codec: -EILSEQ. */
static int lc_iconv(const char *d, size_t n, const char *name, struct tm_strbuf *sb)
{
	char alt[64], out[4096];
	iconv_t cd = iconv_open("UTF-8", name);
	char *in = (char *)d;
	size_t inleft = n;
	int err = 0;

	if (cd == (iconv_t)-1) {
		size_t i;

		for (i = 0; name[i] && i + 1 < sizeof(alt); i++)
			alt[i] = name[i] == '_' ? '-' : name[i];
		alt[i] = '\0';
		cd = iconv_open("UTF-8", alt);
		if (cd == (iconv_t)-1)
			return -EILSEQ;
	}
	while (inleft > 0 && !err) {
		char *o = out;
		size_t oleft = sizeof(out);

		if (iconv(cd, &in, &inleft, &o, &oleft) == (size_t)-1 && errno != E2BIG)
			err = -EILSEQ;
		if (!err)
			err = tm_strbuf_append(sb, out, sizeof(out) - oleft);
	}
	iconv_close(cd);
	if (!err && !utf8_valid(tm_strbuf_str(sb), sb->len))
		err = -EILSEQ;
	return err;
}

/* Decode to UTF-8 into sb. -EILSEQ: undecodable (Python: no lines). */
static int lc_decode(const char *d, size_t n, enum lc_codec codec, const char *name,
		     struct tm_strbuf *sb)
{
	int err = 0;

	if (codec == LC_UTF8) {
		if (!utf8_valid(d, n))
			return -EILSEQ;
		return tm_strbuf_append(sb, d, n);
	}
	if (codec == LC_LATIN1) {
		for (size_t i = 0; i < n && !err; i++)
			err = append_utf8(sb, (unsigned char)d[i]);
		return err;
	}
	return lc_iconv(d, n, name, sb);
}

/* Universal newlines: "\r\n", "\r" and "\n" each end a line. */
static int lc_split(struct lc_entry *e, size_t len)
{
	size_t cap = 0, start = 0;

	for (size_t i = 0; i <= len; i++) {
		int end = i == len || e->text[i] == '\n' || e->text[i] == '\r';

		if (!end || (i == len && start == len))
			continue;
		if (e->nlines == cap) {
			struct lc_line *nl;

			cap = cap ? cap * 2 : 256;
			nl = realloc(e->lines, cap * sizeof(*nl));
			if (!nl)
				return -ENOMEM;
			e->lines = nl;
		}
		e->lines[e->nlines].off = start;
		e->lines[e->nlines].len = i - start;
		e->nlines++;
		if (i < len && e->text[i] == '\r' && i + 1 < len && e->text[i + 1] == '\n')
			i++;
		start = i + 1;
	}
	return 0;
}

/* Read and decode filename as linecache.updatecache() would. Failures to
 * read or decode leave the entry without lines; only -ENOMEM is an error. */
static int lc_load(struct lc_entry *e)
{
	size_t n = strlen(e->filename), len = 0, skip;
	struct tm_strbuf sb;
	enum lc_codec codec;
	char name[64], *path = NULL, *data = NULL;
	int err;

	tm_strbuf_init(&sb);
	if (n == 0 || (e->filename[0] == '<' && e->filename[n - 1] == '>'))
		return 0;
	err = lc_path(e->filename, &path);
	if (err)
		goto cleanup;
	err = lc_read_file(path, &data, &len);
	if (err)
		goto cleanup;
	err = lc_detect(data, len, &codec, name, sizeof(name), &skip);
	if (err)
		goto cleanup;
	err = lc_decode(data + skip, len - skip, codec, name, &sb);
	if (err)
		goto cleanup;
	e->text = sb.data ? sb.data : strdup("");
	len = sb.len;
	tm_strbuf_init(&sb);
	if (!e->text) {
		err = -ENOMEM;
		goto cleanup;
	}
	err = lc_split(e, len);
cleanup:
	tm_strbuf_release(&sb);
	free(path);
	free(data);
	return err == -ENOMEM ? err : 0;
}

/* str.isspace() for one code point. */
static int py_isspace(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
	       c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
	       c == 0x202f || c == 0x205f || c == 0x3000;
}

/* str.strip() on valid UTF-8. */
static void py_strip(const char **s, size_t *len)
{
	const unsigned char *p = (const unsigned char *)*s;
	size_t lo = 0, hi = *len;
	uint32_t cp;

	while (lo < hi) {
		size_t k = utf8_strict(p + lo, hi - lo, &cp);

		if (!k || !py_isspace(cp))
			break;
		lo += k;
	}
	while (hi > lo) {
		size_t start = hi - 1;

		while (start > lo && (p[start] & 0xc0) == 0x80)
			start--;
		if (!utf8_strict(p + start, hi - start, &cp) || !py_isspace(cp))
			break;
		hi = start;
	}
	*s += lo;
	*len = hi - lo;
}

int tm_linecache_getline(struct tm_linecache *lc, const char *filename, uint32_t lineno,
			 const char **line, size_t *len)
{
	uint64_t h = tm_frames_hash(&(struct tm_frame){ filename, 0, NULL }, 1);
	struct lc_entry **head = &lc->buckets[h % LC_BUCKETS], *e;
	int err;

	*line = NULL;
	*len = 0;
	for (e = *head; e; e = e->next) {
		if (!strcmp(e->filename, filename))
			break;
	}
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e || !(e->filename = strdup(filename))) {
			free(e);
			return -ENOMEM;
		}
		err = lc_load(e);
		if (err) {
			lc_entry_free(e);
			return err;
		}
		e->next = *head;
		*head = e;
	}
	if (lineno < 1 || lineno > e->nlines)
		return 0;
	*line = e->text + e->lines[lineno - 1].off;
	*len = e->lines[lineno - 1].len;
	py_strip(line, len);
	return 0;
}
