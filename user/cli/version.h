/* tmbpf --version (versions and the kernel features the capture uses) and
 * tmbpf --dump-options (every command's option table, for the man page,
 * the shell completion and their tests: tools/gen_docs.sh). */
#ifndef TM_CLI_VERSION_H
#define TM_CLI_VERSION_H

#include <stdio.h>

#ifndef TMBPF_VERSION
#define TMBPF_VERSION "0.6.0"
#endif

/* The exit statuses, one text for --help, the man page and README. */
extern const char cli_exit_status_text[];

/* Print the versions and features (JSON with json); returns 0. */
int cli_version(FILE *out, int json);
/* "version\tV", "exit\tTEXT", then per command "command\tNAME\tUSAGE\t
 * SUMMARY\tDETAILS" and one line per option ("option\tCOMMAND\tLONG\t
 * SHORT\tARG\tHEADING\tHELP"; SHORT and ARG "-" when none), --help
 * included. Newlines in texts are written "\n". Returns 0. */
int cli_dump_options(FILE *out);

#endif
