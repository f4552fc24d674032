/* tmbpf entry point: one table of commands, exact match only (bpftool
 * style); each command's synopsis, summary and options live with it
 * (commands.h, options.h). "tmbpf -p PID ..." with no command is `top`. */
#include <stdio.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "cli/commands.h"
#include "core/log.h"

const struct cli_command *const cli_commands[] = {
	&cmd_top, &cmd_snapshot, &cmd_run, &cmd_stats, &cmd_compare, &cmd_convert, &cmd_info,
};
const size_t cli_ncommands = sizeof(cli_commands) / sizeof(cli_commands[0]);

#ifndef TMBPF_VERSION
#define TMBPF_VERSION "0.5.0"
#endif

static void usage(FILE *out)
{
	fprintf(out, "usage: tmbpf COMMAND [OPTIONS]\n"
		     "Python's tracemalloc, from outside the process, with eBPF.\n\n");
	for (size_t i = 0; i < cli_ncommands; i++)
		fprintf(out, "  tmbpf %s\n      %s\n", cli_commands[i]->usage, cli_commands[i]->summary);
	fprintf(out, "\n'tmbpf COMMAND --help' lists a command's options; 'tmbpf --version' the "
		     "versions and kernel features.\n");
}

static int version(void)
{
	printf("tmbpf %s (libbpf %s)\n", TMBPF_VERSION, libbpf_version_string());
	return 0;
}

/* Every library diagnostic is one line on stderr. */
static void log_to_stderr(enum tm_log_level level, const char *line)
{
	(void)level;
	fprintf(stderr, "tmbpf: %s\n", line);
}

int main(int argc, char **argv)
{
	tm_log_set(log_to_stderr);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))
		return version();
	if (argv[1][0] == '-') {
		/* tmbpf -p PID ...: the top view, its options from argv[1] on */
		argv[0] = (char *)"top";
		return cmd_top.run(&cmd_top, argc, argv);
	}
	for (size_t i = 0; i < cli_ncommands; i++) {
		if (!strcmp(argv[1], cli_commands[i]->name))
			return cli_commands[i]->run(cli_commands[i], argc - 1, argv + 1);
	}
	fprintf(stderr, "tmbpf: unknown command '%s' (try 'tmbpf --help')\n", argv[1]);
	return 2;
}
