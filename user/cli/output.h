/* Output files of the commands: opened (and so checked) before the work
 * that fills them, written atomically at the end (core tm_save_*). */
#ifndef TM_CLI_OUTPUT_H
#define TM_CLI_OUTPUT_H

#include "core/snapshot_io.h"

struct cli_output {
	struct tm_save save;
	int open;
};

/* Prepare path: 0, or 1 after one line "tmbpf: PATH: why" on stderr. */
int cli_output_begin(struct cli_output *o, const char *path, enum tm_file_format fmt);
/* Write snap into it: 0 and "tmbpf: wrote PATH (N traces, FORMAT)", or 1
 * after one line. Says so when a file of another user was replaced. */
int cli_output_commit(struct cli_output *o, const struct tm_snapshot *snap);
/* Drop a prepared output (no file appears). Accepts one never begun. */
void cli_output_abort(struct cli_output *o);

#endif
