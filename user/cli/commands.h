/* Subcommand handlers. Each returns the process exit code:
 * 0 ok, 1 failure (one line on stderr already printed), 2 usage error. */
#ifndef TM_CLI_COMMANDS_H
#define TM_CLI_COMMANDS_H

int cmd_stats(int argc, char **argv);    /* cmd_stats.c: tmbpf stats FILE */
int cmd_compare(int argc, char **argv);  /* cmd_stats.c: tmbpf compare OLD NEW */
int cmd_convert(int argc, char **argv);  /* cmd_convert.c: tmbpf convert IN OUT */
int cmd_info(int argc, char **argv);     /* cmd_convert.c: tmbpf info FILE */
int cmd_top(int argc, char **argv);      /* cmd_live.c: tmbpf -p PID */
int cmd_snapshot(int argc, char **argv); /* cmd_live.c: tmbpf snapshot -p PID -o FILE */
int cmd_run(int argc, char **argv);      /* cmd_live.c: tmbpf run -- CMD */

#endif
