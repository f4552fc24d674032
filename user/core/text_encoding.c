/* WTF-8, surrogateescape and JSON strings (text_encoding.h). */
#include "core/text_encoding.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the UTF-8 sequence at s[0] (surrogates allowed), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
	unsigned c = s[0], n;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 1, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 2, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 3, cp = c & 0x07;
	else
		return 0;
	if (left <= n)
		return 0;
	for (unsigned k = 1; k <= n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	/* Overlong forms and beyond U+10FFFF; surrogates pass (surrogatepass). */
	if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n + 1;
}

int tm_utf8_valid(const unsigned char *s, size_t len)
{
	for (size_t i = 0, n; i < len; i += n) {
		if (s[i] < 0x80) {
			n = 1;
			continue;
		}
		n = utf8_seq(s + i, len - i);
		if (!n)
			return 0;
	}
	return 1;
}

const char *tm_utf8_escape(const char *s, char **owned)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t len = strlen(s), k = 0;
	char *out;

	*owned = NULL;
	if (tm_utf8_valid(u, len))
		return s;
	out = malloc(len * 3 + 1);
	if (!out)
		return NULL;
	for (size_t i = 0, n; i < len; i += n) {
		n = utf8_seq(u + i, len - i);
		if (n) {
			memcpy(out + k, s + i, n);
			k += n;
			continue;
		}
		/* U+DC80 + byte - 0x80, as Python's surrogateescape decodes it. */
		out[k++] = (char)0xed;
		out[k++] = (char)(0xb0 | (u[i] >> 6));
		out[k++] = (char)(0x80 | (u[i] & 0x3f));
		n = 1;
	}
	out[k] = '\0';
	*owned = out;
	return out;
}

char *tm_json_quote(const char *str)
{
	char *owned = NULL, *out;
	const unsigned char *p;
	const char *s = tm_utf8_escape(str, &owned);
	size_t k = 0;

	if (!s)
		return NULL;
	/* at most 6 output bytes per input byte (\u00XX), plus quotes */
	out = malloc(strlen(s) * 6 + 3);
	if (!out) {
		free(owned);
		return NULL;
	}
	out[k++] = '"';
	for (p = (const unsigned char *)s; *p;) {
		unsigned char c = *p;

		if (c == '"' || c == '\\') {
			out[k++] = '\\';
			out[k++] = (char)c;
			p++;
		} else if (c < 0x20) {
			static const char short_esc[] = "btn\0fr"; /* 8..13, json.dumps' set */

			out[k++] = '\\';
			if (c >= 8 && c <= 13 && c != 11) {
				out[k++] = short_esc[c - 8];
			} else {
				k += (size_t)snprintf(out + k, 6, "u%04x", c);
			}
			p++;
		} else if (c == 0xed && (p[1] & 0xe0) == 0xa0 && (p[2] & 0xc0) == 0x80) {
			/* An encoded surrogate (U+D800-U+DFFF) is not valid UTF-8. */
			k += (size_t)snprintf(out + k, 7, "\\u%04x",
					      0xd000 | (p[1] & 0x3f) << 6 | (p[2] & 0x3f));
			p += 3;
		} else {
			out[k++] = (char)c;
			p++;
		}
	}
	out[k++] = '"';
	out[k] = '\0';
	free(owned);
	return out;
}
