/* Placeholder: replaced by the capture work (issue 3). */
#include <stdio.h>
#include "cli/commands.h"
int cmd_top(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "tmbpf: live tracing: not built yet\n"); return 1; }
int cmd_snapshot(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "tmbpf: snapshot: not built yet\n"); return 1; }
int cmd_run(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "tmbpf: run: not built yet\n"); return 1; }
