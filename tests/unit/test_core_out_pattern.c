/* Snapshot file name patterns (core/out_pattern.h). */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "core/out_pattern.h"

int main(void)
{
	struct tm_out_fields f = { .pid = 4242, .comm = "gunicorn: work", .host = "web-1",
				   .when = 1796181302, /* 2026-12-02T03:15:02Z */ .seq = 7 };
	char buf[256];
	int rc;

	rc = tm_out_expand("/var/lib/tmbpf/%h-%c-%p-%t.%n.tmbpf", &f, buf, sizeof(buf));
	CHECK(rc == 0 && !strcmp(buf, "/var/lib/tmbpf/web-1-gunicorn: work-4242-20261202T031502Z.0007.tmbpf"),
	      "every conversion expands (%d: %s)", rc, buf);
	f.comm = "../../etc";
	rc = tm_out_expand("/d/%c.pickle", &f, buf, sizeof(buf));
	CHECK(rc == 0 && !strcmp(buf, "/d/_._.._etc.pickle"),
	      "a comm cannot leave the directory (%d: %s)", rc, buf);
	f.comm = "";
	rc = tm_out_expand("%c%%", &f, buf, sizeof(buf));
	CHECK(rc == 0 && !strcmp(buf, "_%"), "empty comm -> '_', %%%% -> '%%' (%s)", buf);
	CHECK(tm_out_expand("x-%q", &f, buf, sizeof(buf)) == -EINVAL, "unknown conversion refused");
	CHECK(tm_out_expand("x-%", &f, buf, sizeof(buf)) == -EINVAL, "trailing %% refused");
	CHECK(tm_out_expand("%p-%p-%p", &f, buf, 8) == -ENAMETOOLONG, "too long for the buffer");
	CHECK(tm_out_per_process("a-%p.tmbpf") == 1 && tm_out_per_process("a-%c.tmbpf") == 0 &&
	      tm_out_per_process("a-%z") == -EINVAL && tm_out_per_process("%%p") == 0,
	      "per-process test (%%p only, not %%%%p)");
	CHECK(tm_out_per_snapshot("a-%p-%t") == 1 && tm_out_per_snapshot("a-%n") == 1 &&
	      tm_out_per_snapshot("a-%p") == 0, "per-snapshot test (%%t or %%n)");
	return CHECK_DONE();
}
