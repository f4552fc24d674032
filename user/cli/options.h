/* Command-line options, declared once per command.
 *
 * Each command is one struct cli_command (in its cmd_*.c file): its name,
 * synopsis, one-line summary and the option tables it accepts. Parsing
 * (getopt_long: "--opt=value" and "--opt value" alike, short options where
 * declared), --help, the top-level command list, the man page test and the
 * shell completion all come from these tables, so they cannot drift apart.
 * A table is a group of options shared by several commands (statistics
 * options, capture options...) with the function that stores them into the
 * command's context. */
#ifndef TM_CLI_OPTIONS_H
#define TM_CLI_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct cli_option;
/* --help, which every command takes (not in any table). */
extern const struct cli_option cli_help_option;

/* Keys of every option of every command (getopt_long's val): short options
 * are their letter; the others come from this list, so tables can be
 * combined freely. */
enum cli_key {
	KEY_HELP = 'h',
	KEY_PID = 'p',
	KEY_OUTPUT = 'o',
	KEY_VERBOSE = 'v',
	KEY_FIRST_LONG = 256,
	/* statistics */
	KEY_KEY, KEY_CUMULATIVE, KEY_LIMIT, KEY_TRACEBACK, KEY_TRACEBACK_LIMIT,
	KEY_MOST_RECENT_FIRST, KEY_INCLUDE, KEY_EXCLUDE, KEY_INCLUDE_ANY, KEY_EXCLUDE_ANY,
	KEY_DOMAIN, KEY_EXCLUDE_DOMAIN, KEY_JSON, KEY_OLDER_THAN, KEY_YOUNGER_THAN,
	/* capture */
	KEY_FRAMES, KEY_MAX_BLOCKS, KEY_MAX_STACKS, KEY_NO_REDIRECT, KEY_NO_NEWREF, KEY_PROBE_MODE,
	KEY_SAMPLE_BYTES, KEY_SAMPLE_SET,
	/* outputs and timing */
	KEY_FORMAT, KEY_INTERVAL, KEY_RESET_PEAK, KEY_DURATION, KEY_EVERY, KEY_SORT, KEY_WINDOW,
	KEY_BATCH,
	/* run */
	KEY_FOLLOW_CHILDREN,
	/* system-wide: selection, memory, rotation */
	KEY_ALL, KEY_COMM, KEY_EXCLUDE_COMM, KEY_CGROUP, KEY_MAX_MEMORY, KEY_KEEP,
};

struct cli_option {
	const char *name;   /* long name without "--"; NULL ends a table */
	int key;            /* enum cli_key; a letter also makes it a short option */
	const char *arg;    /* placeholder of its value ("PID"), NULL for a flag */
	const char *help;   /* one line for --help and the man page */
};

struct cli_option;
/* Stores one option (value NULL for a flag) into dst: 0, or -1 after one
 * usage line on stderr (prefixed with prog, e.g. "tmbpf stats"). */
typedef int (*cli_set_fn)(void *dst, const struct cli_option *opt, const char *value,
			  const char *prog);

struct cli_table {
	const char *heading;              /* "Statistics options" */
	const struct cli_option *options; /* ends with name == NULL */
	cli_set_fn set;
	size_t offset;                    /* dst = (char *)ctx + offset */
};

struct cli_command {
	const char *name;       /* "stats" */
	const char *usage;      /* after "tmbpf ": "stats FILE [OPTIONS]" */
	const char *summary;    /* one line */
	const char *details;    /* more lines for --help, or NULL */
	int (*run)(const struct cli_command *cmd, int argc, char **argv);
	const struct cli_table *tables; /* ntables of them */
	size_t ntables;
	int operands_min, operands_max; /* operands accepted (after the options) */
	int options_first;      /* options end at the first operand: `run -- CMD ARGS` */
};

#define CLI_HELP (-1)  /* cli_parse printed --help: exit 0 */
#define CLI_USAGE (-2) /* cli_parse printed a usage error: exit 2 */

/* Parse argv[1..argc) (argv[0] names the command) into ctx with cmd's
 * tables. Returns the index in argv of the first operand (argc when none),
 * CLI_HELP or CLI_USAGE. Unknown options, options of another command,
 * missing values and a wrong operand count are usage errors naming the
 * command. */
int cli_parse(const struct cli_command *cmd, void *ctx, int argc, char **argv);

/* "usage: tmbpf SYNOPSIS", the summary and every option of cmd, one line
 * each, with headings. */
void cli_help(const struct cli_command *cmd, FILE *out);

/* One usage line on stderr: "tmbpf CMD: MESSAGE (try 'tmbpf CMD --help')".
 * Returns CLI_USAGE. */
int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Value parsers: 0, or -1 after one line "PROG: --opt takes ..., not 'v'". */
int cli_parse_u32(const char *prog, const char *opt, const char *v, uint32_t lo, uint32_t hi,
		  uint32_t *out);
int cli_parse_seconds(const char *prog, const char *opt, const char *v, double min, double *out);
/* A byte count with an optional suffix k, m, g (powers of 1024). */
int cli_parse_bytes(const char *prog, const char *opt, const char *v, uint64_t lo, uint64_t hi,
		    uint64_t *out);
/* A duration: a number with an optional unit, ms, s (the default), m, h
 * or d ("90", "1.5m", "2h"); up to 10 years. */
int cli_parse_duration(const char *prog, const char *opt, const char *v, uint64_t *ns);

/* The commands, for the top-level help, the man page and completion
 * (main.c). */
extern const struct cli_command *const cli_commands[];
extern const size_t cli_ncommands;

#endif
