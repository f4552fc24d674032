/* tmbpf entry point: one table of subcommands, exact match only (bpftool style).
 * "tmbpf -p PID ..." with no subcommand is the live top view. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "core/log.h"

struct command {
	const char *name;
	int (*handler)(int argc, char **argv);
	const char *synopsis;
};

static const struct command commands[] = {
	{ "stats", cmd_stats, "stats FILE [--key lineno|filename|traceback] [--cumulative] [--limit N] [filters] [--json]" },
	{ "compare", cmd_compare, "compare OLD NEW [same options as stats]" },
	{ "convert", cmd_convert, "convert IN OUT [--format pickle|native|json]" },
	{ "info", cmd_info, "info FILE" },
	{ "snapshot", cmd_snapshot, "snapshot -p PID -o FILE [--frames N] [--duration S | --every S]" },
	{ "run", cmd_run, "run [--frames N] [-o FILE] -- CMD [ARGS]" },
	{ "top", cmd_top, "[top] -p PID [--frames N] [--interval S] [--key K] [--limit N] [filters]" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: tmbpf COMMAND [OPTIONS]\n"
		     "Python's tracemalloc, from outside the process, with eBPF.\n\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  tmbpf %s\n", commands[i].synopsis);
	fprintf(out, "\nFilters: --include SPEC --exclude SPEC --include-any SPEC --exclude-any SPEC\n"
		     "         --domain N --exclude-domain N   (SPEC: fnmatch pattern[:LINENO])\n"
		     "Live options (top, snapshot, run; root):\n"
		     "  --frames N        frames kept per traceback, 1-128 (default 1, as tracemalloc)\n"
		     "  --max-blocks N    live blocks the BPF map holds, reserved at start, ~100 B each (default 1048576)\n"
		     "  --max-stacks N    distinct stacks the BPF map holds (default 262144)\n"
		     "  --no-redirect     never redirect an LTO build's allocator pointers (coverage drops)\n"
		     "  --no-newref       do not re-attribute objects reused from free lists\n"
		     "  --reset-peak      reset the peak after each report (top)\n"
		     "  --format F        file format for -o: pickle, native, json (default: by extension)\n"
		     "  -v                probe placement, coverage and every counter on stderr\n");
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
	if (argv[1][0] == '-')
		return cmd_top(argc, argv);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].handler(argc - 1, argv + 1);
	}
	fprintf(stderr, "tmbpf: unknown command '%s' (try 'tmbpf --help')\n", argv[1]);
	return 2;
}
