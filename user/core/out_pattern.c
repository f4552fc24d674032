/* Snapshot file names from a pattern (out_pattern.h). */
#include "core/out_pattern.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Append n bytes of s; -ENAMETOOLONG when buf is full. */
static int put(char *buf, size_t len, size_t *at, const char *s, size_t n)
{
	if (*at + n >= len)
		return -ENAMETOOLONG;
	memcpy(buf + *at, s, n);
	*at += n;
	buf[*at] = '\0';
	return 0;
}

/* A name part taken from the process (its comm): no directory separators,
 * no leading dot, nothing empty. */
static int put_name(char *buf, size_t len, size_t *at, const char *s)
{
	char clean[64];
	size_t n = 0;

	for (; s && *s && n < sizeof(clean) - 1; s++, n++)
		clean[n] = (*s == '/' || (unsigned char)*s < 0x20 || (n == 0 && *s == '.')) ? '_' : *s;
	if (!n)
		clean[n++] = '_';
	return put(buf, len, at, clean, n);
}

int tm_out_expand(const char *pattern, const struct tm_out_fields *f, char *buf, size_t len)
{
	char tmp[64];
	size_t at = 0;
	struct tm tm;
	int e = 0;

	if (!len)
		return -ENAMETOOLONG;
	buf[0] = '\0';
	for (const char *p = pattern; *p && !e; p++) {
		if (*p != '%') {
			e = put(buf, len, &at, p, 1);
			continue;
		}
		switch (*++p) {
		case 'p':
			snprintf(tmp, sizeof(tmp), "%d", (int)f->pid);
			e = put(buf, len, &at, tmp, strlen(tmp));
			break;
		case 'c':
			e = put_name(buf, len, &at, f->comm);
			break;
		case 'h':
			e = put_name(buf, len, &at, f->host);
			break;
		case 't':
			gmtime_r(&f->when, &tm);
			strftime(tmp, sizeof(tmp), "%Y%m%dT%H%M%SZ", &tm);
			e = put(buf, len, &at, tmp, strlen(tmp));
			break;
		case 'n':
			snprintf(tmp, sizeof(tmp), "%04u", f->seq);
			e = put(buf, len, &at, tmp, strlen(tmp));
			break;
		case '%':
			e = put(buf, len, &at, "%", 1);
			break;
		default: /* includes the end of the pattern */
			return -EINVAL;
		}
	}
	return e;
}

/* 1 when pattern holds one of the conversions in `which`. */
static int holds(const char *pattern, const char *which)
{
	int found = 0;

	for (const char *p = pattern; *p; p++) {
		if (*p != '%')
			continue;
		if (!*++p || !strchr("pchtn%", *p))
			return -EINVAL;
		if (strchr(which, *p))
			found = 1;
	}
	return found;
}

int tm_out_per_process(const char *pattern)
{
	return holds(pattern, "p");
}

int tm_out_per_snapshot(const char *pattern)
{
	return holds(pattern, "tn");
}
