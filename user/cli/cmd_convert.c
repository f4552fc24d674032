/* Placeholder: replaced by the file-format work (issue 2). */
#include <stdio.h>
#include "cli/commands.h"
int cmd_convert(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "tmbpf: convert: not built yet\n"); return 1; }
int cmd_info(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "tmbpf: info: not built yet\n"); return 1; }
