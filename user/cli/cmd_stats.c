/* Placeholder: replaced by the snapshot-library work (issue 2). */
#include <stdio.h>
#include "cli/commands.h"
int cmd_stats(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "tmbpf: stats: not built yet\n"); return 1; }
int cmd_compare(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "tmbpf: compare: not built yet\n"); return 1; }
