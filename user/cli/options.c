/* Option tables to getopt_long, --help and usage errors (options.h). */
#include "cli/options.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPTIONS 128

const struct cli_option cli_help_option = { "help", KEY_HELP, NULL, "show this help and exit" };

static size_t table_len(const struct cli_table *t)
{
	size_t n = 0;

	while (t->options[n].name)
		n++;
	return n;
}

/* The option with getopt key k, and its table. */
static const struct cli_option *find_key(const struct cli_command *cmd, int k,
					 const struct cli_table **table)
{
	for (size_t i = 0; i < cmd->ntables; i++)
		for (const struct cli_option *o = cmd->tables[i].options; o->name; o++)
			if (o->key == k) {
				*table = &cmd->tables[i];
				return o;
			}
	return NULL;
}

int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "tmbpf %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (try 'tmbpf %s --help')\n", cmd->name);
	return CLI_USAGE;
}

int cli_parse(const struct cli_command *cmd, void *ctx, int argc, char **argv)
{
	struct option longopts[MAX_OPTIONS + 2];
	char shorts[2 * MAX_OPTIONS + 4], prog[64];
	size_t n = 0, s = 0;
	int c, noperands;

	snprintf(prog, sizeof(prog), "tmbpf %s", cmd->name);
	/* '+': options end at the first operand; ':': report missing values */
	if (cmd->options_first)
		shorts[s++] = '+';
	shorts[s++] = ':';
	shorts[s++] = 'h';
	for (size_t i = 0; i < cmd->ntables; i++) {
		const struct cli_table *t = &cmd->tables[i];

		if (n + table_len(t) > MAX_OPTIONS)
			return cli_usage_error(cmd, "too many options (a tmbpf bug)");
		for (const struct cli_option *o = t->options; o->name; o++) {
			longopts[n++] = (struct option){ o->name, o->arg ? required_argument : no_argument,
							 NULL, o->key };
			if (o->key < KEY_FIRST_LONG) {
				shorts[s++] = (char)o->key;
				if (o->arg)
					shorts[s++] = ':';
			}
		}
	}
	longopts[n++] = (struct option){ cli_help_option.name, no_argument, NULL, KEY_HELP };
	longopts[n] = (struct option){ 0 };
	shorts[s] = '\0';

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
		const struct cli_table *t = NULL;
		const struct cli_option *o;

		if (c == KEY_HELP) {
			cli_help(cmd, stdout);
			return CLI_HELP;
		}
		if (c == '?') {
			if (optopt && optopt < KEY_FIRST_LONG)
				return cli_usage_error(cmd, "unknown option '-%c'", optopt);
			return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
		if (c == ':')
			return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		o = find_key(cmd, c, &t);
		if (!o)
			return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		if (t->set((char *)ctx + t->offset, o, o->arg ? optarg : NULL, prog))
			return CLI_USAGE;
	}
	noperands = argc - optind;
	if (noperands < cmd->operands_min || (cmd->operands_max >= 0 && noperands > cmd->operands_max)) {
		if (noperands > 0 && cmd->operands_max >= 0 && noperands > cmd->operands_max)
			return cli_usage_error(cmd, "unexpected argument '%s'",
					       argv[optind + cmd->operands_max]);
		fprintf(stderr, "usage: tmbpf %s\n", cmd->usage);
		return CLI_USAGE;
	}
	return optind;
}

static void print_option(FILE *out, const struct cli_option *o)
{
	char left[64];

	if (o->key < KEY_FIRST_LONG)
		snprintf(left, sizeof(left), "-%c, --%s%s%s", o->key, o->name, o->arg ? " " : "",
			 o->arg ? o->arg : "");
	else
		snprintf(left, sizeof(left), "    --%s%s%s", o->name, o->arg ? " " : "",
			 o->arg ? o->arg : "");
	if (strlen(left) < 30)
		fprintf(out, "  %-30s %s\n", left, o->help);
	else
		fprintf(out, "  %s\n  %-30s %s\n", left, "", o->help);
}

void cli_help(const struct cli_command *cmd, FILE *out)
{
	fprintf(out, "usage: tmbpf %s\n%s\n", cmd->usage, cmd->summary);
	if (cmd->details)
		fprintf(out, "%s", cmd->details);
	for (size_t i = 0; i < cmd->ntables; i++) {
		fprintf(out, "\n%s:\n", cmd->tables[i].heading);
		for (const struct cli_option *o = cmd->tables[i].options; o->name; o++)
			print_option(out, o);
	}
	fprintf(out, "\n");
	print_option(out, &cli_help_option);
}

int cli_parse_u32(const char *prog, const char *opt, const char *v, uint32_t lo, uint32_t hi,
		  uint32_t *out)
{
	char *end;
	unsigned long long x;

	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || end == v || *end || *v == '-' || x < lo || x > hi) {
		fprintf(stderr, "%s: --%s takes a whole number from %u to %u, not '%s'\n", prog, opt,
			lo, hi, v);
		return -1;
	}
	*out = (uint32_t)x;
	return 0;
}

int cli_parse_seconds(const char *prog, const char *opt, const char *v, double min, double *out)
{
	char *end;
	double x;

	errno = 0;
	x = strtod(v, &end);
	if (errno || end == v || *end || !(x >= min) || x > 1e7) {
		fprintf(stderr, "%s: --%s takes a number of seconds from %g to 1e7, not '%s'\n", prog,
			opt, min, v);
		return -1;
	}
	*out = x;
	return 0;
}

int cli_parse_bytes(const char *prog, const char *opt, const char *v, uint64_t lo, uint64_t hi,
		    uint64_t *out)
{
	unsigned long long x;
	char *end;
	int shift = 0;

	errno = 0;
	x = strtoull(v, &end, 10);
	if (end != v && *end && !end[1]) {
		switch (*end | 0x20) {
		case 'k': shift = 10; end++; break;
		case 'm': shift = 20; end++; break;
		case 'g': shift = 30; end++; break;
		}
	}
	if (errno || end == v || *end || *v == '-' || x > (hi >> shift) || (x << shift) < lo) {
		fprintf(stderr, "%s: --%s takes a byte count from %llu to %llu (suffixes k, m, g), "
			"not '%s'\n", prog, opt, (unsigned long long)lo, (unsigned long long)hi, v);
		return -1;
	}
	*out = (uint64_t)x << shift;
	return 0;
}

int cli_parse_duration(const char *prog, const char *opt, const char *v, uint64_t *ns)
{
	static const struct { const char *unit; double s; } units[] = {
		{ "", 1 }, { "s", 1 }, { "ms", 1e-3 }, { "m", 60 }, { "min", 60 }, { "h", 3600 },
		{ "d", 86400 },
	};
	char *end;
	double x;

	errno = 0;
	x = strtod(v, &end);
	if (!errno && end != v && x >= 0) {
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			double t = x * units[i].s;

			if (strcmp(end, units[i].unit) || t > 10 * 366 * 86400.0)
				continue;
			*ns = (uint64_t)(t * 1e9 + 0.5);
			return 0;
		}
	}
	fprintf(stderr, "%s: --%s takes a duration such as 30, 90s, 500ms, 10m, 2h or 1d, not '%s'\n",
		prog, opt, v);
	return -1;
}
