/* text_encoding.c: JSON strings as every tmbpf JSON writer makes them. The
 * expected bytes come from CPython 3.11 for each name's bytes b:
 *   s = b.decode("utf-8", "surrogateescape")   (os.fsdecode; "surrogatepass"
 *                                                for an encoded surrogate)
 *   json.dumps(s, ensure_ascii=False), with each lone surrogate written as
 *   json.dumps(ensure_ascii=True) writes it (\udXXX): UTF-8 cannot carry it.
 * So json.loads() of tmbpf's output is the str Python holds for the name. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/text_encoding.h"

struct quote_case {
	const char *name, *in, *want;
};

static const struct quote_case cases[] = {
	{ "plain", "plain.py", "\"plain.py\"" },
	{ "quote and backslash", "q\"uote\\\\back.py", "\"q\\\"uote\\\\\\\\back.py\"" },
	{ "control characters", "ctl\n\t\r\b\f\x01\x1f.py", "\"ctl\\n\\t\\r\\b\\f\\u0001\\u001f.py\"" },
	{ "non-ASCII as UTF-8", "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80.py",
	  "\"caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80.py\"" },
	{ "invalid bytes (surrogateescape)", "/srv/\xff\xfe.py", "\"/srv/\\udcff\\udcfe.py\"" },
	{ "truncated sequence", "half \xe4\xb8.py", "\"half \\udce4\\udcb8.py\"" },
	{ "encoded lone surrogate (WTF-8)", "\xed\xa0\x80 encoded surrogate",
	  "\"\\ud800 encoded surrogate\"" },
	{ "empty", "", "\"\"" },
};

int main(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *q = tm_json_quote(cases[i].in);

		CHECK_STREQ(q, cases[i].want, "json string: %s as CPython's json.dumps", cases[i].name);
		free(q);
	}
	return CHECK_DONE();
}
