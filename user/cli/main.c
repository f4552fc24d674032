/* tmbpf entry point: one table of commands, exact match only (bpftool
 * style); each command's synopsis, summary and options live with it
 * (commands.h, options.h). "tmbpf -p PID ..." with no command is `top`. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/version.h"
#include "core/log.h"

const struct cli_command *const cli_commands[] = {
	&cmd_top, &cmd_snapshot, &cmd_run, &cmd_leaks, &cmd_stats, &cmd_compare, &cmd_merge,
	&cmd_convert, &cmd_flamegraph, &cmd_info,
};
const size_t cli_ncommands = sizeof(cli_commands) / sizeof(cli_commands[0]);

static void usage(FILE *out)
{
	fprintf(out, "usage: tmbpf COMMAND [OPTIONS]\n"
		     "Python's tracemalloc, from outside the process, with eBPF.\n\n");
	for (size_t i = 0; i < cli_ncommands; i++)
		fprintf(out, "  tmbpf %s\n      %s\n", cli_commands[i]->usage, cli_commands[i]->summary);
	fprintf(out, "\n'tmbpf COMMAND --help' lists a command's options; 'tmbpf --version' the "
		     "versions and kernel features.\n%s", cli_exit_status_text);
}

/* Every library diagnostic is one line on stderr. */
static void log_to_stderr(enum tm_log_level level, const char *line)
{
	(void)level;
	fprintf(stderr, "tmbpf: %s\n", line);
}

/* Loading a large file: one line on the terminal, redrawn at most 5 times a
 * second, erased at the end. */
static void progress_to_tty(const char *what, unsigned long long done, unsigned long long total)
{
	static struct timespec last;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (done >= total) {
		fprintf(stderr, "\r\033[K");
		last.tv_sec = 0;
		return;
	}
	if (last.tv_sec && (now.tv_sec - last.tv_sec) * 1000 + (now.tv_nsec - last.tv_nsec) / 1000000 < 200)
		return;
	last = now;
	fprintf(stderr, "\rtmbpf: %s: %llu%% (%llu of %llu MiB)\033[K", what,
		total ? done * 100 / total : 0, done >> 20, total >> 20);
}

int main(int argc, char **argv)
{
	tm_log_set(log_to_stderr);
	if (isatty(STDERR_FILENO))
		tm_progress_set(progress_to_tty);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))
		return cli_version(stdout, argc > 2 && !strcmp(argv[2], "--json"));
	if (!strcmp(argv[1], "--dump-options")) /* for tools/gen_docs.sh and the tests */
		return cli_dump_options(stdout);
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
