/* Text as Python holds it. File and function names come from the target as
 * raw bytes (or as str objects with lone surrogates, for names that were not
 * valid UTF-8 on disk); everything tmbpf writes must give back, in Python,
 * the str that os.fsdecode() would have made of them.
 *   - WTF-8 in memory: UTF-8 with lone surrogates allowed ("surrogatepass").
 *   - A byte that decodes as nothing becomes U+DC80..U+DCFF, as Python's
 *     surrogateescape error handler maps it.
 *   - JSON: the same string as CPython's json.dumps(s, ensure_ascii=False)
 *     would give for every valid character, and \udcXX escapes for lone
 *     surrogates (json.dumps escapes those even then, since they cannot be
 *     written as UTF-8): json.loads() of the output is exactly the str. */
#ifndef TM_CORE_TEXT_ENCODING_H
#define TM_CORE_TEXT_ENCODING_H

#include <stddef.h>

/* 1 when s[0..len) is UTF-8 as Python's "utf-8"/"surrogatepass" codec accepts
 * it (lone surrogates allowed, overlong forms and values above U+10FFFF not). */
int tm_utf8_valid(const unsigned char *s, size_t len);

/* s as Python holds it: returned as is when valid (see above), else a copy
 * (*owned, to free) in which every byte that does not decode is replaced by
 * the surrogate U+DC80..U+DCFF that Python's surrogateescape gives it. Used by
 * writers so that file names captured as raw bytes stay loadable. NULL on
 * allocation failure. */
const char *tm_utf8_escape(const char *s, char **owned);

/* s as a JSON string literal, quotes included (see above): '"', '\\' and
 * control characters escaped as json.dumps does (\" \\ \n \r \t \b \f,
 * else \u00XX), lone surrogates as \udXXX, other characters as UTF-8.
 * Returns a string to free, or NULL on allocation failure (errno ENOMEM). */
char *tm_json_quote(const char *s);

#endif
