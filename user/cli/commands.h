/* user/cli/ -- the command line: the only layer that prints results and
 * picks exit codes (0 ok, 1 failure, 2 usage), and that reads the
 * environment (TMBPF_* switches into the capture options). Each command
 * is declared once, with its options (options.h).
 *
 * The commands (one struct cli_command each, in its cmd_*.c file): run()
 * returns the process exit code: 0 ok, 1 failure (one line on stderr
 * already printed), 2 usage error; tmbpf run: CMD's status, or 125-127
 * (cli_exit_status_text, version.h). */
#ifndef TM_CLI_COMMANDS_H
#define TM_CLI_COMMANDS_H

#include "cli/options.h"

extern const struct cli_command cmd_stats;    /* cmd_stats.c: tmbpf stats FILE */
extern const struct cli_command cmd_compare;  /* cmd_stats.c: tmbpf compare OLD NEW */
extern const struct cli_command cmd_convert;  /* cmd_convert.c: tmbpf convert IN OUT */
extern const struct cli_command cmd_merge;    /* cmd_merge.c: tmbpf merge FILE... -o OUT */
extern const struct cli_command cmd_info;     /* cmd_info.c: tmbpf info FILE */
extern const struct cli_command cmd_flamegraph; /* cmd_convert.c: tmbpf flamegraph FILE -o OUT */
extern const struct cli_command cmd_leaks;    /* cmd_leaks.c: tmbpf leaks -p PID --window S */
extern const struct cli_command cmd_top;      /* cmd_top.c: tmbpf [top] -p PID */
extern const struct cli_command cmd_snapshot; /* cmd_snapshot.c: tmbpf snapshot -p PID -o FILE */
extern const struct cli_command cmd_run;      /* cmd_run.c: tmbpf run -- CMD */

#endif
