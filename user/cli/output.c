/* Output files of the commands (output.h). */
#include "cli/output.h"

#include <pwd.h>
#include <stdio.h>
#include <string.h>

int cli_output_begin(struct cli_output *o, const char *path, enum tm_file_format fmt)
{
	char err[512];

	o->open = 0;
	if (tm_save_begin(&o->save, path, fmt, err, sizeof(err))) {
		fprintf(stderr, "tmbpf: %s: %s\n", path, err);
		return 1;
	}
	o->open = 1;
	return 0;
}

int cli_output_commit(struct cli_output *o, const struct tm_snapshot *snap)
{
	enum tm_file_format fmt = o->save.fmt;
	char err[512], path[4096];
	int ret;

	snprintf(path, sizeof(path), "%s", o->save.path);
	o->open = 0;
	ret = tm_save_commit(&o->save, snap, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "tmbpf: %s: %s\n", path, err);
		return 1;
	}
	if (o->save.replaced_other_owner) {
		struct passwd *pw = getpwuid(o->save.replaced_uid);

		fprintf(stderr, "tmbpf: %s: replaced a file owned by %s (uid %u); the new one is "
				"yours, mode 0600\n",
			path, pw ? pw->pw_name : "another user", o->save.replaced_uid);
	}
	fprintf(stderr, "tmbpf: wrote %s (%zu traces, %s)\n", path, snap->ntraces,
		tm_format_name(fmt));
	return 0;
}

void cli_output_abort(struct cli_output *o)
{
	if (o->open)
		tm_save_abort(&o->save);
	o->open = 0;
}
